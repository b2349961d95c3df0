// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The span exporter (otlp.c) against vmtests/tools/otlp_sink.py, a strict OTLP/HTTP JSON
 * receiver started per test on 127.0.0.1 (a free port; killed by the fixture's .fini, pass
 * or fail, and by PR_SET_PDEATHSIG if the test process dies). The sink answers 400 to any
 * body that is not exact OTLP JSON, so every delivery test also checks the encoding; the
 * spans it accepted are read back from its output file with jansson. Skips without python3.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include "otlp.h"

struct sink {
	pid_t pid;
	char dir[64];
	char out[96], reqs[96], portf[96], log[96];
	char url[64];
	int port;
};

/* Fixture state: each test runs in its own process. */
static struct sink sk = {.pid = -1};
static struct sl_otlp *ex;

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Under valgrind everything is ~50x slower: time bounds scale. */
static int slowdown(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int slow = 1;

	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "vgpreload"))
			slow = 50;
	if (f)
		fclose(f);
	return slow;
}

/* Debian's python3 (which valgrind's --trace-children-skip=/usr/bin/ * leaves alone); NULL
 * if missing. */
static const char *python3(void)
{
	return access("/usr/bin/python3", X_OK) ? NULL : "/usr/bin/python3";
}

/* The sink script: $SLUICE_OTLP_SINK, else from the source tree (cwd or the binary's). */
static int sink_script(char *out, size_t n)
{
	const char *env = getenv("SLUICE_OTLP_SINK");
	char exe[PATH_MAX];
	ssize_t len;
	char *slash;

	if (env) {
		snprintf(out, n, "%s", env);
		return access(out, R_OK);
	}
	snprintf(out, n, "vmtests/tools/otlp_sink.py");
	if (!access(out, R_OK))
		return 0;
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		return -1;
	exe[len] = '\0';
	slash = strrchr(exe, '/'); /* build/unit-tests -> build */
	if (!slash)
		return -1;
	*slash = '\0';
	if ((size_t)snprintf(out, n, "%.*s/../vmtests/tools/otlp_sink.py", PATH_MAX - 64, exe) >= n)
		return -1;
	return access(out, R_OK);
}

/* A TCP port on 127.0.0.1 that nothing listens on (bound, then released). */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void setup(void)
{
	snprintf(sk.dir, sizeof(sk.dir), "/tmp/sluice-otlp-XXXXXX");
	if (!mkdtemp(sk.dir)) {
		sk.dir[0] = '\0';
		return;
	}
	snprintf(sk.out, sizeof(sk.out), "%s/spans.jsonl", sk.dir);
	snprintf(sk.reqs, sizeof(sk.reqs), "%s/requests.jsonl", sk.dir);
	snprintf(sk.portf, sizeof(sk.portf), "%s/port", sk.dir);
	snprintf(sk.log, sizeof(sk.log), "%s/sink.log", sk.dir);
}

static void sink_kill(void)
{
	if (sk.pid > 0) {
		kill(sk.pid, SIGKILL);
		waitpid(sk.pid, NULL, 0);
	}
	sk.pid = -1;
}

static void teardown(void)
{
	const char *files[] = {sk.out, sk.reqs, sk.portf, sk.log};
	size_t i;

	sl_otlp_free(ex);
	ex = NULL;
	sink_kill();
	if (!sk.dir[0])
		return;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(files[i]);
	rmdir(sk.dir);
}

TestSuite(otlp, .init = setup, .fini = teardown, .timeout = 120);

/* Start the sink with extra arguments (NULL-terminated; port 0: any). 0 once it listens
 * (within 10 s), else -1. */
static int sink_start(int port, const char *const *extra)
{
	char script[PATH_MAX], portarg[16], line[32];
	const char *argv[32] = {python3(),    script,  "--out",		sk.out,
				"--requests", sk.reqs, "--port-file",	sk.portf,
				"--port",     portarg, "--max-seconds", "300"};
	size_t n = 12, i;
	uint64_t end = mono_us() + 10000000;

	if (sink_script(script, sizeof(script)))
		return -1;
	snprintf(portarg, sizeof(portarg), "%d", port);
	for (i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	unlink(sk.portf);
	sk.pid = fork();
	if (!sk.pid) {
		int fd = open(sk.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ||
		    prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() == 1)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (sk.pid < 0)
		return -1;
	while (mono_us() < end) {
		FILE *f = fopen(sk.portf, "r");

		if (f) {
			int ok = fgets(line, sizeof(line), f) && sscanf(line, "%d", &sk.port) == 1;

			fclose(f);
			if (ok) {
				snprintf(sk.url, sizeof(sk.url), "http://127.0.0.1:%d", sk.port);
				return 0;
			}
		}
		if (waitpid(sk.pid, NULL, WNOHANG) == sk.pid) {
			sk.pid = -1;
			return -1;
		}
		sleep_ms(20);
	}
	return -1;
}

#define A(...) ((const char *const[]){__VA_ARGS__, NULL})

#define START_SINK(port, extra)                                                                    \
	do {                                                                                       \
		if (!python3())                                                                    \
			cr_skip_test("/usr/bin/python3 is not installed (make deps)");             \
		cr_assert_eq(sink_start(port, extra), 0, "otlp_sink.py did not start; see %s",     \
			     sk.log);                                                              \
	} while (0)

/* Every line of a JSON-lines file, as an array (empty if the file is missing); NULL when a
 * line is not JSON. */
static json_t *load_lines(const char *path)
{
	json_t *arr = json_array();
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	while (arr && f && getline(&line, &cap, f) > 0) {
		json_t *v = json_loads(line, 0, NULL);

		if (!v || json_array_append_new(arr, v)) {
			json_decref(arr);
			arr = NULL;
		}
	}
	free(line);
	if (f)
		fclose(f);
	return arr;
}

static size_t count_lines(const char *path)
{
	json_t *a = load_lines(path);
	size_t n = json_array_size(a);

	json_decref(a);
	return n;
}

/* Wait until the sink wrote at least n spans; their number. */
static size_t wait_spans(size_t n, int timeout_ms)
{
	uint64_t end = mono_us() + (uint64_t)timeout_ms * 1000;
	size_t got;

	while ((got = count_lines(sk.out)) < n && mono_us() < end)
		sleep_ms(20);
	return got;
}

static struct sl_otlp *exporter(struct sl_otlp_opts o)
{
	char err[256] = "";
	struct sl_otlp *e;

	if (!o.endpoint)
		o.endpoint = sk.url;
	if (!o.host_name)
		o.host_name = "node-1";
	e = sl_otlp_new(&o, err, sizeof(err));
	if (!e)
		cr_log_error("sl_otlp_new: %s", err);
	return e;
}

/* Span i: ids and numbers derived from i, so that a received span tells which it was. */
static void mk_span(struct sl_span *s, unsigned int i)
{
	unsigned int k;

	memset(s, 0, sizeof(*s));
	for (k = 0; k < 16; k++)
		s->trace_id[k] = (uint8_t)(0xa0 + k);
	s->span_id[0] = 0x5a;
	for (k = 0; k < 4; k++)
		s->span_id[4 + k] = (uint8_t)((i + 1) >> (24 - 8 * k));
	s->trace_flags = 1;
	s->start_ns = 1700000000000000000ull + (uint64_t)i * 1000;
	s->end_ns = s->start_ns + 5000 + i;
	s->frontend.family = AF_INET;
	s->frontend.port = 80;
	inet_pton(AF_INET, "198.18.0.10", s->frontend.addr);
	s->backend.family = AF_INET;
	s->backend.port = (uint16_t)(8080 + i % 3);
	inet_pton(AF_INET, "198.18.1.2", s->backend.addr);
	snprintf(s->service, sizeof(s->service), "web");
	snprintf(s->source, sizeof(s->source), "frontend");
	s->bytes_sent = (uint64_t)i * 10;
	s->bytes_received = (uint64_t)i * 20 + 1;
	s->retransmits = i % 4;
}

/* The value object of attribute key, or NULL. */
static json_t *attr(json_t *span, const char *key)
{
	json_t *a = json_object_get(span, "attributes"), *kv;
	size_t i;

	json_array_foreach(a, i,
			   kv) if (!strcmp(json_string_value(json_object_get(kv, "key")) ?: "",
					   key)) return json_object_get(kv, "value");
	return NULL;
}

static const char *attr_s(json_t *span, const char *key)
{
	return json_string_value(json_object_get(attr(span, key), "stringValue"));
}

static const char *attr_i(json_t *span, const char *key)
{
	return json_string_value(json_object_get(attr(span, key), "intValue"));
}

static const char *field(json_t *span, const char *key)
{
	return json_string_value(json_object_get(span, key));
}

/* i of a span made by mk_span, from its spanId; -1 if not one. */
static long span_index(json_t *span)
{
	const char *id = field(span, "spanId");
	unsigned long v;

	if (!id || strlen(id) != 16 || strncmp(id, "5a000000", 8) ||
	    sscanf(id + 8, "%8lx", &v) != 1 || !v)
		return -1;
	return (long)v - 1;
}

/* 1 if span is exactly what mk_span(i) encodes to. */
static int span_is(json_t *span, unsigned int i)
{
	struct sl_span s;
	char num[32], start[32], end[32], port[8];

	mk_span(&s, i);
	snprintf(start, sizeof(start), "%" PRIu64, s.start_ns);
	snprintf(end, sizeof(end), "%" PRIu64, s.end_ns);
	snprintf(port, sizeof(port), "%u", 8080 + i % 3);
	if (strcmp(field(span, "traceId") ?: "", "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf") ||
	    strcmp(field(span, "name") ?: "", "web") ||
	    json_integer_value(json_object_get(span, "kind")) != 3 ||
	    json_integer_value(json_object_get(span, "flags")) != 0x101 ||
	    strcmp(field(span, "startTimeUnixNano") ?: "", start) ||
	    strcmp(field(span, "endTimeUnixNano") ?: "", end) ||
	    json_object_get(span, "parentSpanId") || json_object_get(span, "status") ||
	    json_array_size(json_object_get(span, "attributes")) != 9 ||
	    strcmp(attr_s(span, "sluice.service") ?: "", "web") ||
	    strcmp(attr_s(span, "server.address") ?: "", "198.18.0.10") ||
	    strcmp(attr_i(span, "server.port") ?: "", "80") ||
	    strcmp(attr_s(span, "network.peer.address") ?: "", "198.18.1.2") ||
	    strcmp(attr_i(span, "network.peer.port") ?: "", port) ||
	    strcmp(attr_s(span, "sluice.source") ?: "", "frontend"))
		return 0;
	snprintf(num, sizeof(num), "%u", i * 10);
	if (strcmp(attr_i(span, "sluice.bytes_sent") ?: "", num))
		return 0;
	snprintf(num, sizeof(num), "%u", i * 20 + 1);
	if (strcmp(attr_i(span, "sluice.bytes_received") ?: "", num))
		return 0;
	snprintf(num, sizeof(num), "%u", i % 4);
	return !strcmp(attr_i(span, "sluice.retransmits") ?: "", num);
}

static void submit_n(unsigned int from, unsigned int n)
{
	struct sl_span s;
	unsigned int i;

	for (i = from; i < from + n; i++) {
		mk_span(&s, i);
		sl_otlp_submit(ex, &s);
	}
}

/* Every span the sink wrote is one of [0, n), each exactly once, each encoded exactly. */
static int check_delivered(unsigned int n, char *why, size_t len)
{
	json_t *spans = load_lines(sk.out), *sp;
	char *seen = calloc(n ? n : 1, 1);
	size_t i, total = json_array_size(spans);
	int r = -1;

	snprintf(why, len, "spans file unreadable");
	if (!spans || !seen)
		goto out;
	json_array_foreach(spans, i, sp)
	{
		long k = span_index(sp);

		if (k < 0 || (size_t)k >= n || seen[k]++) {
			snprintf(why, len, "span %zu: unknown or duplicate spanId %s", i,
				 field(sp, "spanId") ?: "(none)");
			goto out;
		}
		if (!span_is(sp, (unsigned int)k)) {
			snprintf(why, len, "span %ld: encoded wrong", k);
			goto out;
		}
	}
	snprintf(why, len, "%zu spans of %u", total, n);
	r = total == n ? 0 : -1;
out:
	free(seen);
	json_decref(spans);
	return r;
}

/* The status of each request the sink saw, in order, as text: "503 503 200". */
static void request_statuses(char *out, size_t len)
{
	json_t *reqs = load_lines(sk.reqs), *r;
	size_t i, off = 0;

	out[0] = '\0';
	json_array_foreach(reqs, i, r)
	{
		int w = snprintf(out + off, len - off, "%s%lld", i ? " " : "",
				 json_integer_value(json_object_get(r, "status")));

		if (w < 0 || (size_t)w >= len - off)
			break;
		off += (size_t)w;
	}
	json_decref(reqs);
}

static void stats(struct sl_otlp_stats *st)
{
	sl_otlp_get_stats(ex, st);
}

/* ---- encoding, without a collector ---- */

Test(otlp, encode)
{
	struct sl_span s[3];
	json_t *req, *rs, *sp, *st;
	char *text;

	mk_span(&s[0], 7);
	mk_span(&s[1], 8); /* a refused connect in a caller's trace, over IPv6, no identity */
	memset(&s[1].backend, 0, sizeof(s[1].backend));
	s[1].error = 1;
	snprintf(s[1].reason, sizeof(s[1].reason), "no_backend");
	memcpy(s[1].parent_span_id, "\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8);
	s[1].frontend.family = AF_INET6;
	s[1].frontend.port = 443;
	inet_pton(AF_INET6, "2001:db8::10", s[1].frontend.addr);
	s[1].source[0] = '\0';
	mk_span(&s[2], 9); /* counters beyond int64 are cut; a full-length service name */
	s[2].bytes_sent = UINT64_MAX;
	s[2].end_ns = s[2].start_ns - 1; /* clock skew: the span ends when it starts */
	memset(s[2].service, 'x', sizeof(s[2].service));

	text = sl_otlp_encode(s, 3, "node-1");
	cr_assert_not_null(text);
	req = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	cr_assert_not_null(req);
	cr_assert_eq(json_object_size(req), 1);
	cr_assert_eq(json_array_size(json_object_get(req, "resourceSpans")), 1);
	rs = json_array_get(json_object_get(req, "resourceSpans"), 0);
	text = json_dumps(json_object_get(rs, "resource"), JSON_COMPACT);
	cr_expect_str_eq(text,
			 "{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":"
			 "\"sluice\"}},{\"key\":\"host.name\",\"value\":{\"stringValue\":"
			 "\"node-1\"}}]}");
	free(text);
	rs = json_array_get(json_object_get(rs, "scopeSpans"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(rs, "scope"), "name")),
			 "sluice");
	cr_expect_str_eq(
	    json_string_value(json_object_get(json_object_get(rs, "scope"), "version")),
	    SLUICE_VERSION);
	cr_assert_eq(json_array_size(json_object_get(rs, "spans")), 3);

	sp = json_array_get(json_object_get(rs, "spans"), 0);
	cr_expect(span_is(sp, 7), "span 0 encoded wrong");
	cr_expect(json_is_integer(json_object_get(sp, "kind")), "kind is not a number");
	cr_expect(json_is_string(json_object_get(sp, "startTimeUnixNano")), "time not a string");
	cr_expect_str_eq(field(sp, "spanId"), "5a00000000000008");

	sp = json_array_get(json_object_get(rs, "spans"), 1);
	cr_expect_str_eq(field(sp, "parentSpanId"), "00f067aa0ba902b7");
	cr_expect_eq(json_integer_value(json_object_get(sp, "flags")), 0x301);
	st = json_object_get(sp, "status");
	cr_expect_eq(json_object_size(st), 2);
	cr_expect(json_is_integer(json_object_get(st, "code")), "status.code is not a number");
	cr_expect_eq(json_integer_value(json_object_get(st, "code")), 2);
	cr_expect_str_eq(json_string_value(json_object_get(st, "message")), "no_backend");
	cr_expect_str_eq(attr_s(sp, "sluice.reason"), "no_backend");
	cr_expect_str_eq(attr_s(sp, "server.address"), "2001:db8::10");
	cr_expect_str_eq(attr_i(sp, "server.port"), "443");
	cr_expect_null(attr(sp, "network.peer.address"));
	cr_expect_null(attr(sp, "network.peer.port"));
	cr_expect_str_eq(attr_s(sp, "sluice.source"), "unknown");
	cr_expect_eq(json_array_size(json_object_get(sp, "attributes")), 8);

	sp = json_array_get(json_object_get(rs, "spans"), 2);
	cr_expect_str_eq(attr_i(sp, "sluice.bytes_sent"), "9223372036854775807");
	cr_expect_str_eq(field(sp, "endTimeUnixNano"), field(sp, "startTimeUnixNano"));
	cr_expect_eq(strlen(field(sp, "name")), sizeof(s[2].service));
	json_decref(req);

	snprintf(s[0].service, sizeof(s[0].service), "bad\xff");
	text = sl_otlp_encode(s, 1, "node-1");
	cr_expect_null(text, "a name that is not UTF-8 was encoded");
	free(text);
}

Test(otlp, bad_options)
{
	static const struct {
		const char *endpoint;
		unsigned int queue, batch, bmin, bmax;
	} bad[] = {
	    {NULL, 0, 0, 0, 0},
	    {"127.0.0.1:4318", 0, 0, 0, 0},
	    {"ftp://127.0.0.1", 0, 0, 0, 0},
	    {"http://", 0, 0, 0, 0},
	    {"http:///x", 0, 0, 0, 0},
	    {"http://127.0.0.1:4318?a=b", 0, 0, 0, 0},
	    {"http://127.0.0.1:99999", 0, 0, 0, 0},
	    {"http://127.0.0.1:4318", 16, 32, 0, 0},
	    {"http://127.0.0.1:4318", (1u << 20) + 1, 0, 0, 0},
	    {"http://127.0.0.1:4318", 0, 0, 900, 100},
	};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sl_otlp_opts o = {.endpoint = bad[i].endpoint,
					 .queue_size = bad[i].queue,
					 .batch_size = bad[i].batch,
					 .backoff_min_ms = bad[i].bmin,
					 .backoff_max_ms = bad[i].bmax};
		struct sl_otlp *e;

		err[0] = '\0';
		e = sl_otlp_new(&o, err, sizeof(err));
		cr_expect_null(e, "accepted case %zu", i);
		cr_expect(!strncmp(err, "otlp: ", 6), "case %zu: no message: %s", i, err);
		sl_otlp_free(e);
	}
	ex = exporter((struct sl_otlp_opts){.endpoint = "http://127.0.0.1:4318/"});
	cr_expect_not_null(ex, "a trailing slash was refused");
}

/* ---- the sink itself: it must refuse what is not exact OTLP JSON ---- */

static size_t discard(char *d, size_t size, size_t n, void *arg)
{
	(void)d;
	(void)arg;
	return size * n;
}

/* POST body to the sink; the HTTP status, or -1. */
static long post(const char *path, const char *ctype, const char *body)
{
	struct curl_slist *h = NULL, *t;
	char url[128], hdr[128];
	CURL *c = curl_easy_init();
	long code = -1;

	snprintf(url, sizeof(url), "%s%s", sk.url, path);
	snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
	t = curl_slist_append(h, hdr);
	if (c && t && !curl_easy_setopt(c, CURLOPT_URL, url) &&
	    !curl_easy_setopt(c, CURLOPT_PROXY, "") &&
	    !curl_easy_setopt(c, CURLOPT_HTTPHEADER, t) &&
	    !curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) &&
	    !curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L) &&
	    !curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard) && !curl_easy_perform(c) &&
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code))
		code = -1;
	curl_slist_free_all(t);
	curl_easy_cleanup(c);
	return code;
}

/* text with the first 'from' replaced by 'to' (malloc'd), or NULL if from is absent. */
static char *replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out;

	if (!at || asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) < 0)
		return NULL;
	return out;
}

Test(otlp, sink_is_strict)
{
	static const char *const bad[][2] = {
	    {"\"kind\":3", "\"kind\":\"3\""},
	    {"\"kind\":3", "\"kind\":\"SPAN_KIND_CLIENT\""},
	    {"\"spanId\":\"5a", "\"spanId\":\"5A"},
	    {"\"traceId\":\"a0a1", "\"traceId\":\"oKGi"},
	    {"\"traceId\":\"a0a1", "\"traceId\":\"a0"},
	    {"\"spanId\":\"5a00000000000001\"", "\"spanId\":\"0000000000000000\""},
	    {"\"startTimeUnixNano\":\"1700000000000000000\"",
	     "\"startTimeUnixNano\":1700000000000000000"},
	    {"{\"intValue\":\"80\"}", "{\"intValue\":80}"},
	    {"\"code\":2", "\"code\":\"STATUS_CODE_ERROR\""},
	    {"\"key\":\"sluice.source\"", "\"key\":\"sluice.src\""},
	    {"\"key\":\"sluice.reason\"", "\"key\":\"sluice.why\""},
	    {"\"flags\":", "\"Flags\":"},
	    {"\"name\":\"web\"", "\"name\":\"web\",\"name\":\"web\""},
	    {"\"stringValue\":\"sluice\"", "\"stringValue\":\"other\""},
	};
	struct sl_span s[2];
	char *good, *b;
	size_t i;

	START_SINK(0, NULL);
	mk_span(&s[0], 0);
	mk_span(&s[1], 1);
	s[1].error = 1;
	snprintf(s[1].reason, sizeof(s[1].reason), "refused");
	good = sl_otlp_encode(s, 2, "node-1");
	cr_assert_not_null(good);
	cr_expect_eq(post("/v1/traces", "application/json", good), 200);
	cr_expect_eq(post("/v1/traces", "application/x-protobuf", good), 400);
	cr_expect_eq(post("/v1/trace", "application/json", good), 400);
	cr_expect_eq(post("/v1/traces", "application/json", "{\"resourceSpans\":[]}"), 400);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = replace(good, bad[i][0], bad[i][1]);
		cr_expect_not_null(b, "case %zu: %s not in the body", i, bad[i][0]);
		if (b)
			cr_expect_eq(post("/v1/traces", "application/json", b), 400,
				     "case %zu (%s) accepted", i, bad[i][1]);
		free(b);
	}
	free(good);
	cr_expect_eq(count_lines(sk.out), 2, "the sink wrote spans of invalid requests");
}

/* ---- delivery ---- */

Test(otlp, delivers_exactly_once)
{
	const unsigned int n = 300;
	struct sl_otlp_stats st;
	json_t *reqs, *r, *sc;
	struct sl_span s;
	char why[128];
	size_t i;

	START_SINK(0, NULL);
	ex = exporter((struct sl_otlp_opts){.batch_size = 64, .max_delay_ms = 100});
	cr_assert_not_null(ex);
	submit_n(0, n);
	cr_assert_eq(sl_otlp_flush(ex, 10000), 0, "flush timed out");
	cr_expect_eq(check_delivered(n, why, sizeof(why)), 0, "%s", why);

	/* The resource and scope of every request. */
	reqs = load_lines(sk.reqs);
	json_array_foreach(reqs, i, r)
	{
		cr_expect_eq(json_integer_value(json_object_get(r, "status")), 200);
		sc = json_object_get(r, "scope");
		cr_expect_str_eq(json_string_value(json_object_get(sc, "version")), SLUICE_VERSION);
		sc = json_array_get(json_object_get(json_object_get(r, "resource"), "attributes"),
				    1);
		cr_expect_str_eq(
		    json_string_value(json_object_get(json_object_get(sc, "value"), "stringValue")),
		    "node-1");
	}
	json_decref(reqs);
	stats(&st);
	cr_expect_eq(st.submitted, n);
	cr_expect_eq(st.exported, n);
	cr_expect_eq(st.dropped, 0);
	cr_expect_eq(st.queued + st.in_flight, 0);

	/* Zero ids: the exporter makes them up, random and distinct. */
	for (i = 0; i < 2; i++) {
		mk_span(&s, 0);
		memset(s.trace_id, 0, sizeof(s.trace_id));
		memset(s.span_id, 0, sizeof(s.span_id));
		cr_assert_eq(sl_otlp_submit(ex, &s), 0);
	}
	cr_assert_eq(sl_otlp_flush(ex, 10000), 0);
	reqs = load_lines(sk.out);
	cr_assert_eq(json_array_size(reqs), n + 2);
	r = json_array_get(reqs, n);
	sc = json_array_get(reqs, n + 1);
	cr_expect_str_neq(field(r, "traceId"), field(sc, "traceId"));
	cr_expect_str_neq(field(r, "spanId"), field(sc, "spanId"));
	json_decref(reqs);
}

Test(otlp, flush_sends_partial_batch)
{
	char why[128];
	uint64_t us;

	START_SINK(0, NULL);
	ex = exporter((struct sl_otlp_opts){.max_delay_ms = 60000});
	cr_assert_not_null(ex);
	submit_n(0, 10);
	us = mono_us();
	cr_assert_eq(sl_otlp_flush(ex, 10000), 0);
	us = mono_us() - us;
	cr_expect_lt(us, 2000000u * (uint64_t)slowdown(), "flush took %" PRIu64 " us", us);
	cr_expect_eq(check_delivered(10, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq(sl_otlp_flush(ex, 0), 0, "nothing left, yet flush timed out");
}

Test(otlp, batching)
{
	const unsigned int n = 1000, batch = 512;
	uint64_t t0;
	json_t *reqs, *r;
	char why[128];
	size_t i, got;

	START_SINK(0, NULL);
	ex = exporter((struct sl_otlp_opts){.batch_size = batch, .max_delay_ms = 300});
	cr_assert_not_null(ex);
	t0 = mono_us();
	submit_n(0, n); /* no flush: full batches leave at once, the rest after max_delay */
	got = wait_spans(n, 10000 * slowdown());
	cr_assert_eq(got, n, "%zu spans of %u arrived", got, n);
	cr_expect_eq(check_delivered(n, why, sizeof(why)), 0, "%s", why);
	reqs = load_lines(sk.reqs);
	cr_expect_leq(json_array_size(reqs), (n + batch - 1) / batch + 1, "%zu requests",
		      json_array_size(reqs));
	json_array_foreach(reqs, i, r)
	    cr_expect_leq(json_integer_value(json_object_get(r, "spans")), batch);
	json_decref(reqs);

	/* One span alone leaves after about max_delay. */
	unlink(sk.out);
	t0 = mono_us();
	submit_n(0, 1);
	cr_assert_eq(wait_spans(1, 5000 * slowdown()), 1);
	t0 = (mono_us() - t0) / 1000;
	cr_expect_geq(t0, 250, "a lone span left after %" PRIu64 " ms, before max_delay", t0);
	cr_expect_leq(t0, 300 + 1500 * (uint64_t)slowdown(), "a lone span took %" PRIu64 " ms", t0);
}

/* ---- a collector that fails ---- */

Test(otlp, retry_503_retry_after)
{
	struct sl_otlp_stats st;
	char why[128], sts[64];
	uint64_t t0;

	START_SINK(0, A("--fail-first", "2", "--fail-code", "503", "--retry-after", "1"));
	ex = exporter((struct sl_otlp_opts){.backoff_min_ms = 20, .backoff_max_ms = 40});
	cr_assert_not_null(ex);
	t0 = mono_us();
	submit_n(0, 10);
	cr_assert_eq(sl_otlp_flush(ex, 10000), 0, "flush timed out");
	t0 = (mono_us() - t0) / 1000;
	request_statuses(sts, sizeof(sts));
	cr_expect_str_eq(sts, "503 503 200");
	cr_expect_geq(t0, 1900, "Retry-After: 1 not honoured: done after %" PRIu64 " ms", t0);
	cr_expect_eq(check_delivered(10, why, sizeof(why)), 0, "%s", why);
	stats(&st);
	cr_expect_eq(st.requests_failed, 2);
	cr_expect_eq(st.requests_ok, 1);
	cr_expect_eq(st.exported, 10);
	cr_expect_eq(st.dropped, 0);
}

Test(otlp, retry_backoff_then_give_up)
{
	struct sl_otlp_stats st;
	char why[128], sts[64];

	/* 429 without Retry-After: the backoff (20, 40, 80 ms...) and success on the 4th try. */
	START_SINK(0, A("--fail-first", "3", "--fail-code", "429"));
	ex = exporter((struct sl_otlp_opts){.backoff_min_ms = 20, .backoff_max_ms = 80});
	cr_assert_not_null(ex);
	submit_n(0, 5);
	cr_assert_eq(sl_otlp_flush(ex, 10000), 0);
	request_statuses(sts, sizeof(sts));
	cr_expect_str_eq(sts, "429 429 429 200");
	cr_expect_eq(check_delivered(5, why, sizeof(why)), 0, "%s", why);

	/* 502 for longer than retry_max_ms: the batch is dropped, counted. */
	sl_otlp_free(ex);
	sink_kill();
	unlink(sk.reqs);
	unlink(sk.out);
	START_SINK(0, A("--fail-first", "1000", "--fail-code", "502"));
	ex = exporter(
	    (struct sl_otlp_opts){.backoff_min_ms = 20, .backoff_max_ms = 40, .retry_max_ms = 300});
	cr_assert_not_null(ex);
	submit_n(0, 5);
	cr_assert_eq(sl_otlp_flush(ex, 10000), 0);
	stats(&st);
	cr_expect_eq(st.dropped_retries, 5);
	cr_expect_eq(st.dropped, 5);
	cr_expect_eq(st.exported, 0);
	cr_expect_geq(st.requests_failed, 3);
	cr_expect_eq(count_lines(sk.reqs), st.requests_failed);
}

Test(otlp, rejected_400_dropped_not_retried)
{
	struct sl_otlp_stats st;
	char why[128], sts[64];

	START_SINK(0, A("--fail-first", "1", "--fail-code", "400"));
	ex = exporter((struct sl_otlp_opts){.backoff_min_ms = 20, .backoff_max_ms = 40});
	cr_assert_not_null(ex);
	submit_n(100, 5);
	cr_assert_eq(sl_otlp_flush(ex, 10000), 0);
	submit_n(0, 7);
	cr_assert_eq(sl_otlp_flush(ex, 10000), 0);
	request_statuses(sts, sizeof(sts));
	cr_expect_str_eq(sts, "400 200");
	cr_expect_eq(check_delivered(7, why, sizeof(why)), 0, "%s", why);
	stats(&st);
	cr_expect_eq(st.dropped_rejected, 5);
	cr_expect_eq(st.dropped, 5);
	cr_expect_eq(st.exported, 7);
	cr_expect_eq(st.requests_failed, 1);
	cr_expect_eq(st.requests_ok, 1);
}

Test(otlp, partial_success)
{
	struct sl_otlp_stats st;

	START_SINK(0, A("--partial", "3"));
	ex = exporter((struct sl_otlp_opts){0});
	cr_assert_not_null(ex);
	submit_n(0, 10);
	cr_assert_eq(sl_otlp_flush(ex, 10000), 0);
	stats(&st);
	cr_expect_eq(st.exported, 7);
	cr_expect_eq(st.dropped_rejected, 3);
	cr_expect_eq(st.requests_ok, 1);
}

/* ---- a collector that hangs, is slow, or is down: the agent never waits ---- */

static long rss_kib(void)
{
	long pages = -1, size;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f && fscanf(f, "%ld %ld", &size, &pages) != 2)
		pages = -1;
	if (f)
		fclose(f);
	return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Submit n spans; the time it took, in microseconds. */
static uint64_t timed_submits(unsigned int n)
{
	struct sl_span s;
	uint64_t t0;
	unsigned int i;

	mk_span(&s, 1);
	t0 = mono_us();
	for (i = 0; i < n; i++)
		sl_otlp_submit(ex, &s);
	return mono_us() - t0;
}

Test(otlp, hung_collector_drops_and_counts)
{
	const unsigned int n = 100000, queue = 4096, batch = 512;
	struct sl_otlp_stats st;
	uint64_t us, t_end;
	long rss1, rss2;

	START_SINK(0, A("--hang"));
	ex = exporter(
	    (struct sl_otlp_opts){.queue_size = queue, .batch_size = batch, .timeout_ms = 60000});
	cr_assert_not_null(ex);
	us = timed_submits(n);
	cr_expect_lt(us, 200000u * (uint64_t)slowdown(), "%u submits took %" PRIu64 " us", n, us);

	/* The worker took one batch, sent it, and waits for an answer that never comes. */
	t_end = mono_us() + 5000000ull * (uint64_t)slowdown();
	do {
		sleep_ms(20);
		stats(&st);
	} while ((!st.in_flight || count_lines(sk.reqs) < 1) && mono_us() < t_end);
	cr_expect_eq(count_lines(sk.reqs), 1, "requests sent to a hung collector");
	cr_expect_gt(st.in_flight, 0);
	cr_expect_leq(st.in_flight, batch);
	cr_expect_eq(st.exported, 0);
	cr_expect_eq(st.submitted, n);
	cr_expect_eq(st.dropped, st.dropped_queue_full);
	cr_expect_eq(st.dropped_queue_full, n - st.queued - st.in_flight);
	cr_expect_geq(st.queued, queue - batch);

	/* As many again: as fast, not one byte more, every one dropped. */
	rss1 = rss_kib();
	us = timed_submits(n);
	rss2 = rss_kib();
	cr_expect_lt(us, 200000u * (uint64_t)slowdown(), "%u submits took %" PRIu64 " us", n, us);
	cr_expect(rss1 > 0 && rss2 - rss1 < 256, "RSS grew from %ld to %ld KiB", rss1, rss2);
	/* The worker still waits: the queue is full, the rest was dropped. */
	stats(&st);
	cr_expect_eq(st.queued, queue);
	cr_expect_eq(st.dropped_queue_full, 2 * n - queue - st.in_flight, "dropped %" PRIu64,
		     st.dropped_queue_full);
	cr_expect_eq(count_lines(sk.reqs), 1);

	/* A flush gives up at its deadline; free abandons the request at once. */
	us = mono_us();
	cr_expect_eq(sl_otlp_flush(ex, 200), -ETIMEDOUT);
	sl_otlp_free(ex);
	ex = NULL;
	us = mono_us() - us;
	cr_expect_lt(us, 1000000u * (uint64_t)slowdown(), "flush + free took %" PRIu64 " us", us);
}

Test(otlp, slow_collector)
{
	const unsigned int n = 2000, queue = 1000;
	struct sl_otlp_stats st;
	uint64_t us;

	START_SINK(0, A("--delay", "0.3"));
	ex = exporter((struct sl_otlp_opts){.queue_size = queue, .batch_size = 100});
	cr_assert_not_null(ex);
	us = timed_submits(n);
	cr_expect_lt(us, 20000u * (uint64_t)slowdown(), "%u submits took %" PRIu64 " us", n, us);
	cr_assert_eq(sl_otlp_flush(ex, 30000 * slowdown()), 0);
	stats(&st);
	cr_expect_geq(st.exported, queue);
	cr_expect_eq(st.exported + st.dropped, n);
	cr_expect_eq(st.dropped, st.dropped_queue_full);
	cr_expect_eq(count_lines(sk.out), st.exported);
}

Test(otlp, down_then_back)
{
	const unsigned int n = 1000, queue = 256;
	struct sl_otlp_stats st;
	char url[64], why[128];
	uint64_t us, t_end;
	int port = free_port();

	if (!python3())
		cr_skip_test("/usr/bin/python3 is not installed (make deps)");
	cr_assert_gt(port, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	ex = exporter((struct sl_otlp_opts){.endpoint = url,
					    .queue_size = queue,
					    .batch_size = 64,
					    .max_delay_ms = 50,
					    .backoff_min_ms = 20,
					    .backoff_max_ms = 50,
					    .retry_max_ms = 200});
	cr_assert_not_null(ex);
	us = timed_submits(n);
	cr_expect_lt(us, 20000u * (uint64_t)slowdown(), "%u submits took %" PRIu64 " us", n, us);
	/* Refused, retried, given up: every span is dropped and counted, none is left. */
	t_end = mono_us() + 10000000ull * (uint64_t)slowdown();
	do {
		sleep_ms(20);
		stats(&st);
	} while (st.dropped < n && mono_us() < t_end);
	cr_expect_eq(st.dropped, n);
	cr_expect_gt(st.dropped_retries, 0);
	cr_expect_eq(st.dropped_queue_full + st.dropped_retries, n);
	cr_expect_eq(st.exported + st.requests_ok, 0);
	cr_expect_gt(st.requests_failed, 0);

	/* The collector comes back on the same port: export resumes. */
	START_SINK(port, NULL);
	submit_n(0, 10);
	cr_assert_eq(sl_otlp_flush(ex, 10000), 0);
	cr_expect_eq(check_delivered(10, why, sizeof(why)), 0, "%s", why);
	stats(&st);
	cr_expect_eq(st.exported, 10);
}

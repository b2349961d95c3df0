// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sluicectl register`, `deregister`, `drain` and `undrain`: requests to the
 * agent's control API, HTTP over its unix socket (--api).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"
#include "mem.h"
#include "parse.h"
#include "services.h"

/* An answer's body as it arrives: len bytes and a NUL, in cap bytes (malloc'd). */
struct api_reply {
	char *body;
	size_t len, cap;
};

static size_t api_collect(char *data, size_t size, size_t n, void *cls)
{
	struct api_reply *r = cls;
	size_t total = size * n;

	if (r->len + total > 1 << 24)
		return 0;
	if (SL_ENSURE(&r->body, &r->cap, r->len + total + 1))
		return 0;
	memcpy(r->body + r->len, data, total);
	r->len += total;
	r->body[r->len] = '\0';
	return total;
}

/*
 * One request to the control API: 0 with *out its JSON answer (NULL if it
 * has none), or the exit code after the error (the agent's, if it sent one)
 * was printed.
 */
static int api_call(struct cli *c, const char *method, const char *path, const char *body,
		    json_t **out)
{
	char errbuf[CURL_ERROR_SIZE] = "", url[1024];
	struct api_reply r = {0};
	struct curl_slist *hdrs = NULL;
	long status = 0;
	CURLcode rc;
	CURL *curl;
	int ret;

	*out = NULL;
	if (curl_global_init(CURL_GLOBAL_NOTHING))
		return fail(c, EXIT_FAIL, "cannot initialise libcurl");
	curl = curl_easy_init();
	if (!curl) {
		curl_global_cleanup();
		return fail(c, EXIT_FAIL, "cannot initialise libcurl");
	}
	snprintf(url, sizeof(url), "http://localhost%s", path);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->api);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	if (body)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, api_collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	if (rc != CURLE_OK) {
		free(r.body);
		return fail(c, EXIT_FAIL, "the agent's API at %s: %s", c->api,
			    *errbuf ? errbuf : curl_easy_strerror(rc));
	}
	*out = r.body ? json_loads(r.body, 0, NULL) : NULL;
	if (status >= 200 && status < 300) {
		ret = EXIT_OK;
	} else {
		const char *msg = json_string_value(json_object_get(*out, "error"));
		const char *field = json_string_value(json_object_get(*out, "field"));

		ret = fail(c, EXIT_FAIL, "%s (HTTP %ld%s%s)", msg ? msg : "request failed", status,
			   field ? ", field " : "", field ? field : "");
		json_decref(*out);
		*out = NULL;
	}
	free(r.body);
	return ret;
}

/*
 * "/v1/services/NAME/backends[/ADDRESS[/TAIL]]", each path segment
 * percent-encoded (IPv6 addresses have ':' and '[]'). -1 if it does not fit
 * (or out of memory).
 */
static int api_path(char *buf, size_t len, const char *svc, const char *addr, const char *tail)
{
	char *es = curl_easy_escape(NULL, svc, 0),
	     *ea = addr ? curl_easy_escape(NULL, addr, 0) : NULL;
	int n;

	if (!es || (addr && !ea)) {
		curl_free(es);
		curl_free(ea);
		return -1;
	}
	n = snprintf(buf, len, "/v1/services/%s/backends%s%s%s%s", es, ea ? "/" : "", ea ? ea : "",
		     tail ? "/" : "", tail ? tail : "");
	curl_free(es);
	curl_free(ea);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

static int api_done(struct cli *c, json_t *o, const char *what)
{
	if (c->json)
		return emit(o);
	printf("%s\n", what);
	json_decref(o);
	return EXIT_OK;
}

int do_register(struct cli *c, int argc, char **argv)
{
	const char *svc = NULL, *addr = NULL, *subset = NULL, *ttl = NULL, *zone = NULL, *why;
	struct sl_problem p = {0};
	uint64_t weight = 1, ms;
	char path[1024], what[512];
	json_t *body, *o;
	char *text;
	int err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--weight") && i + 1 < argc) {
			if (sl_parse_uint(argv[++i], 1, 1000, &weight, &why))
				return fail(c, EXIT_USAGE, "--weight %s: %s (1..1000)", argv[i],
					    why);
		} else if (!strcmp(argv[i], "--subset") && i + 1 < argc) {
			subset = argv[++i];
		} else if (!strcmp(argv[i], "--zone") && i + 1 < argc) {
			zone = argv[++i];
			if (sl_zone_check(zone, &p))
				return fail(c, EXIT_USAGE, "--zone: %s", p.msg);
		} else if (!strcmp(argv[i], "--ttl") && i + 1 < argc) {
			ttl = argv[++i];
			if (sl_parse_duration(ttl, &ms, &why))
				return fail(c, EXIT_USAGE, "--ttl %s: %s", ttl, why);
		} else if (argv[i][0] == '-') {
			return fail(c, EXIT_USAGE, "register: unknown or incomplete option '%s'",
				    argv[i]);
		} else if (!svc) {
			svc = argv[i];
		} else if (!addr) {
			addr = argv[i];
		} else {
			return fail(c, EXIT_USAGE, "register: unexpected '%s'", argv[i]);
		}
	}
	if (!svc || !addr)
		return fail(c, EXIT_USAGE,
			    "usage: register SERVICE ADDRESS [--weight N] "
			    "[--subset S] [--zone Z] [--ttl DUR]");
	body = json_pack("{s:s, s:I}", "address", addr, "weight", (json_int_t)weight);
	if (body && subset)
		json_object_set_new(body, "subset", json_string(subset));
	if (body && zone)
		json_object_set_new(body, "zone", json_string(zone));
	if (body && ttl)
		json_object_set_new(body, "ttl", json_string(ttl));
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text || api_path(path, sizeof(path), svc, NULL, NULL)) {
		free(text);
		return fail(c, EXIT_FAIL, "out of memory");
	}
	err = api_call(c, "POST", path, text, &o);
	free(text);
	if (err)
		return err;
	snprintf(what, sizeof(what), "registered %s with %s%s%s", addr, svc, ttl ? ", ttl " : "",
		 ttl ? ttl : "");
	return api_done(c, o, what);
}

/* deregister, drain and undrain: SERVICE ADDRESS. */
static int backend_cmd(struct cli *c, int argc, char **argv, const char *method, const char *tail,
		       const char *done)
{
	char path[1024], what[512];
	json_t *o;
	int err;

	if (argc != 3)
		return fail(c, EXIT_USAGE, "usage: %s SERVICE ADDRESS", argv[0]);
	if (api_path(path, sizeof(path), argv[1], argv[2], tail))
		return fail(c, EXIT_USAGE, "service or address too long");
	err = api_call(c, method, path, NULL, &o);
	if (err)
		return err;
	snprintf(what, sizeof(what), "%s %s of %s", done, argv[2], argv[1]);
	return api_done(c, o, what);
}

int do_deregister(struct cli *c, int argc, char **argv)
{
	return backend_cmd(c, argc, argv, "DELETE", NULL, "deregistered");
}

int do_drain(struct cli *c, int argc, char **argv)
{
	return backend_cmd(c, argc, argv, "POST", "drain", "draining");
}

int do_undrain(struct cli *c, int argc, char **argv)
{
	return backend_cmd(c, argc, argv, "POST", "undrain", "undrained");
}

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * spans_dump: print the records of the pinned sluice_spans ring buffer, one
 * JSON object per line, for vmtests.
 *
 *   spans_dump --pin PATH [--seconds S] [--count N] [--idle-ms MS]
 *
 * Ends after S seconds (default 10, at most 600), after N records, or once
 * MS milliseconds (default 0: never) passed without a record, whichever
 * comes first. Exit 0, 1 when the ring buffer cannot be opened or polled,
 * 2 on usage errors. Keys: trace_id, parent_id (hex), start_ns, end_ns,
 * connect_ns, cookie, bytes_sent, bytes_received, src, fe, be ("addr" and
 * port), svc_id, be_id, identity, retrans, family, reason, drop, flags.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include <sluice/abi.h>

struct dump {
	long count;
	long max;
	int failed;
};

static void hex(char *out, const __u8 *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void addr(char *out, size_t len, __u8 family, const union sluice_addr *a)
{
	if (!inet_ntop(family == SLUICE_AF_INET6 ? AF_INET6 : AF_INET, a->a8, out, (socklen_t)len))
		snprintf(out, len, "?");
}

static int on_record(void *ctx, void *data, size_t len)
{
	const struct sluice_span_rec *r = data;
	char tid[33], pid[17], src[INET6_ADDRSTRLEN], fe[INET6_ADDRSTRLEN], be[INET6_ADDRSTRLEN];
	struct dump *d = ctx;
	json_t *o;

	if (len < sizeof(*r)) {
		fprintf(stderr, "spans_dump: short record (%zu bytes)\n", len);
		d->failed = 1;
		return 0;
	}
	hex(tid, r->trace_id, sizeof(r->trace_id));
	hex(pid, r->parent_id, sizeof(r->parent_id));
	addr(src, sizeof(src), r->family, &r->src);
	addr(fe, sizeof(fe), r->family, &r->fe_addr);
	addr(be, sizeof(be), r->family, &r->be_addr);
	o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:i, s:s, s:i, s:s, s:i,"
		      " s:I, s:I, s:I, s:I, s:i, s:i, s:i, s:i}",
		      "trace_id", tid, "parent_id", pid, "start_ns", (json_int_t)r->start_ns,
		      "end_ns", (json_int_t)r->end_ns, "connect_ns", (json_int_t)r->connect_ns,
		      "cookie", (json_int_t)r->cookie, "bytes_sent", (json_int_t)r->bytes_sent,
		      "bytes_received", (json_int_t)r->bytes_received, "src", src, "sport",
		      (int)r->sport, "fe", fe, "fe_port", (int)r->fe_port, "be", be, "be_port",
		      (int)r->be_port, "svc_id", (json_int_t)r->svc_id, "be_id",
		      (json_int_t)r->be_id, "identity", (json_int_t)r->identity, "retrans",
		      (json_int_t)r->retrans, "family", (int)r->family, "reason", (int)r->reason,
		      "drop", (int)r->drop, "flags", (int)r->flags);
	if (!o || json_dumpf(o, stdout, JSON_COMPACT) || putchar('\n') == EOF) {
		fprintf(stderr, "spans_dump: cannot print a record\n");
		d->failed = 1;
	}
	json_decref(o);
	fflush(stdout);
	d->count++;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: spans_dump --pin PATH [--seconds S] [--count N] [--idle-ms MS]\n");
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"pin", required_argument, NULL, 'p'},   {"seconds", required_argument, NULL, 's'},
	    {"count", required_argument, NULL, 'n'}, {"idle-ms", required_argument, NULL, 'i'},
	    {"help", no_argument, NULL, 'h'},	     {NULL, 0, NULL, 0},
	};
	struct dump d = {.max = -1};
	const char *pin = NULL;
	double end, last;
	long seconds = 10, idle_ms = 0, before;
	struct ring_buffer *rb;
	int opt, fd, n;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			pin = optarg;
			break;
		case 's':
			seconds = strtol(optarg, NULL, 10);
			break;
		case 'n':
			d.max = strtol(optarg, NULL, 10);
			break;
		case 'i':
			idle_ms = strtol(optarg, NULL, 10);
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (!pin || optind != argc || seconds < 1 || seconds > 600 || idle_ms < 0)
		usage(2);
	fd = bpf_obj_get(pin);
	if (fd < 0) {
		fprintf(stderr, "spans_dump: open %s: %s\n", pin, strerror(errno));
		return 1;
	}
	rb = ring_buffer__new(fd, on_record, &d, NULL);
	if (!rb) {
		fprintf(stderr, "spans_dump: ring buffer on %s: %s\n", pin, strerror(errno));
		close(fd);
		return 1;
	}
	last = now_s();
	end = last + (double)seconds;
	while (!d.failed && (d.max < 0 || d.count < d.max)) {
		double t = now_s();

		if (t >= end || (idle_ms && (t - last) * 1000 >= (double)idle_ms))
			break;
		before = d.count;
		n = ring_buffer__poll(rb, 50);
		if (n < 0 && n != -EINTR) {
			fprintf(stderr, "spans_dump: poll %s: %s\n", pin, strerror(-n));
			d.failed = 1;
		}
		if (d.count != before)
			last = now_s();
	}
	ring_buffer__free(rb);
	close(fd);
	return d.failed;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * sl_churn - registry churn through sluiced's control API, for vmtests and make bench. Bounded
 * in count and in time.
 *
 *   sl_churn --socket PATH --services N [--prefix d] [--rate R] [--seconds S]
 *            [--concurrency C] [--max M]
 *
 * C workers, each in a loop: POST /v1/services/<prefix><k>/backends {"address": A} then
 * DELETE /v1/services/<prefix><k>/backends/A, k going round the N services and A a fresh
 * address:port each time (198.18.254.0/24), so the registry never grows by more than C. Starts
 * are paced to R requests per second in all (0: as fast as answers come). Stops after S
 * seconds or M requests, whichever comes first; then each worker deregisters what it
 * registered, and the answers in flight are waited for (11 s at most). Prints:
 *   requests N / ok N (2xx) / failed N / status CODE N (each other answer) / errors N (no
 *   answer) / elapsed_ms N / rate_per_s X (answered requests per second) /
 *   latency_us p50 X p99 X max X (request sent to answer read, of the answered)
 * Exits 0 when it ran, whatever the answers; 2 on bad arguments or setup.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_WORKERS 64
#define MAX_STATUS  600

struct worker {
	CURL *h;
	struct curl_slist *hdrs;
	int registered; /* the next request is its DELETE */
	unsigned int svc;
	char addr[32];
	char url[256];
	char body[96];
	uint64_t sent_ns;
};

struct run {
	const char *sock, *prefix;
	unsigned int services, next_svc, next_addr;
	double rate;
	uint64_t requests, answered, ok, failed, errors, status[MAX_STATUS];
	uint64_t *lat_us;
	size_t n_lat, cap_lat;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The worker's next request, set up on its handle. 0, or -1 when curl refused an option. */
static int prepare(struct run *r, struct worker *w)
{
	CURLcode rc = CURLE_OK;

	if (!w->registered) {
		unsigned int k = r->next_addr++;

		w->svc = r->next_svc++ % r->services;
		snprintf(w->addr, sizeof(w->addr), "198.18.254.%u:%u", 1 + k % 250,
			 10000 + (k / 250) % 50000);
		snprintf(w->url, sizeof(w->url), "http://localhost/v1/services/%s%u/backends",
			 r->prefix, w->svc);
		snprintf(w->body, sizeof(w->body), "{\"address\": \"%s\"}", w->addr);
		rc |= curl_easy_setopt(w->h, CURLOPT_CUSTOMREQUEST, "POST");
		rc |= curl_easy_setopt(w->h, CURLOPT_POSTFIELDS, w->body);
	} else {
		snprintf(w->url, sizeof(w->url), "http://localhost/v1/services/%s%u/backends/%s",
			 r->prefix, w->svc, w->addr);
		rc |= curl_easy_setopt(w->h, CURLOPT_POSTFIELDS, NULL);
		rc |= curl_easy_setopt(w->h, CURLOPT_HTTPGET, 1L);
		rc |= curl_easy_setopt(w->h, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
	rc |= curl_easy_setopt(w->h, CURLOPT_URL, w->url);
	return rc == CURLE_OK ? 0 : -1;
}

static int setup_handle(struct run *r, struct worker *w)
{
	CURLcode rc = CURLE_OK;

	w->h = curl_easy_init();
	w->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (!w->h || !w->hdrs)
		return -1;
	rc |= curl_easy_setopt(w->h, CURLOPT_UNIX_SOCKET_PATH, r->sock);
	rc |= curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, w->hdrs);
	rc |= curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, discard);
	rc |= curl_easy_setopt(w->h, CURLOPT_TIMEOUT_MS, 10000L);
	rc |= curl_easy_setopt(w->h, CURLOPT_PRIVATE, w);
	return rc == CURLE_OK ? 0 : -1;
}

/* One answer (or none) of worker w. */
static void settle(struct run *r, struct worker *w, CURLcode res)
{
	long code = 0;

	if (res != CURLE_OK) {
		r->errors++;
		w->registered = 0; /* start again with a fresh address */
		return;
	}
	curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &code);
	r->answered++;
	if (r->n_lat == r->cap_lat) {
		size_t cap = r->cap_lat ? 2 * r->cap_lat : 4096;
		uint64_t *v = realloc(r->lat_us, cap * sizeof(*v));

		if (v) {
			r->lat_us = v;
			r->cap_lat = cap;
		}
	}
	if (r->n_lat < r->cap_lat)
		r->lat_us[r->n_lat++] = (now_ns() - w->sent_ns) / 1000;
	if (code >= 200 && code < 300) {
		r->ok++;
		w->registered = !w->registered;
		return;
	}
	r->failed++;
	if (code > 0 && code < MAX_STATUS)
		r->status[code]++;
	w->registered = 0;
}

static int any_registered(const struct worker *ws, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (ws[i].registered)
			return 1;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: sl_churn --socket PATH --services N [--prefix P] [--rate R] "
			"[--seconds S] [--concurrency C] [--max M]\n");
	exit(2);
}

static double num(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0) {
		fprintf(stderr, "sl_churn: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 'S'},
	    {"services", required_argument, NULL, 'n'},
	    {"prefix", required_argument, NULL, 'p'},
	    {"rate", required_argument, NULL, 'r'},
	    {"seconds", required_argument, NULL, 's'},
	    {"concurrency", required_argument, NULL, 'c'},
	    {"max", required_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0},
	};
	struct run r = {.prefix = "d"};
	struct worker ws[MAX_WORKERS] = {0};
	double seconds = 10, max = 100000, conc = 4;
	uint64_t start, deadline, drain_deadline;
	CURLM *multi;
	int opt, running = 0;
	unsigned int n_workers;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'S':
			r.sock = optarg;
			break;
		case 'n':
			r.services = (unsigned int)num(optarg, "--services");
			break;
		case 'p':
			r.prefix = optarg;
			break;
		case 'r':
			r.rate = num(optarg, "--rate");
			break;
		case 's':
			seconds = num(optarg, "--seconds");
			break;
		case 'c':
			conc = num(optarg, "--concurrency");
			break;
		case 'm':
			max = num(optarg, "--max");
			break;
		default:
			usage();
		}
	}
	if (!r.sock || !r.services || conc < 1 || conc > MAX_WORKERS || seconds > 600 || max < 1)
		usage();
	n_workers = (unsigned int)conc;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) || !(multi = curl_multi_init())) {
		fprintf(stderr, "sl_churn: curl setup failed\n");
		return 2;
	}
	for (unsigned int i = 0; i < n_workers; i++)
		if (setup_handle(&r, &ws[i])) {
			fprintf(stderr, "sl_churn: curl handle setup failed\n");
			return 2;
		}
	start = now_ns();
	deadline = start + (uint64_t)(seconds * 1e9);
	drain_deadline = deadline + 11000000000ull;
	for (;;) {
		uint64_t t = now_ns();
		int stop = t >= deadline || r.requests >= (uint64_t)max, msgs;
		CURLMsg *m;

		/* Idle workers start their next request while the pace allows; once stopped,
		 * only the DELETEs of what they registered. */
		for (unsigned int i = 0; i < n_workers; i++) {
			struct worker *w = &ws[i];
			double due = r.rate > 0 ? (double)r.requests / r.rate * 1e9 : 0;

			if (w->sent_ns || (stop && !w->registered) ||
			    (!stop && (double)(t - start) < due))
				continue;
			if (prepare(&r, w) || curl_multi_add_handle(multi, w->h)) {
				fprintf(stderr, "sl_churn: cannot start a request\n");
				return 2;
			}
			w->sent_ns = now_ns();
			r.requests++;
			running++;
		}
		if (stop && !running && !any_registered(ws, n_workers))
			break;
		if (t >= drain_deadline)
			break;
		curl_multi_perform(multi, &running);
		while ((m = curl_multi_info_read(multi, &msgs))) {
			struct worker *w;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&w);
			settle(&r, w, m->data.result);
			curl_multi_remove_handle(multi, w->h);
			w->sent_ns = 0;
		}
		curl_multi_poll(multi, NULL, 0, r.rate > 0 ? 1 : 10, NULL);
	}
	{
		uint64_t el = (now_ns() - start) / 1000000;
		uint64_t p50 = 0, p99 = 0, mx = 0;

		if (r.n_lat) {
			qsort(r.lat_us, r.n_lat, sizeof(*r.lat_us), cmp_u64);
			p50 = r.lat_us[r.n_lat / 2];
			p99 = r.lat_us[(r.n_lat * 99) / 100 < r.n_lat ? (r.n_lat * 99) / 100
								      : r.n_lat - 1];
			mx = r.lat_us[r.n_lat - 1];
		}
		printf("requests %llu\nok %llu\nfailed %llu\n", (unsigned long long)r.requests,
		       (unsigned long long)r.ok, (unsigned long long)r.failed);
		for (int c = 0; c < MAX_STATUS; c++)
			if (r.status[c])
				printf("status %d %llu\n", c, (unsigned long long)r.status[c]);
		printf("errors %llu\nunanswered %llu\nelapsed_ms %llu\nrate_per_s %.1f\n",
		       (unsigned long long)r.errors,
		       (unsigned long long)(r.requests - r.answered - r.errors),
		       (unsigned long long)el, el ? (double)r.answered * 1000.0 / (double)el : 0.0);
		printf("latency_us p50 %llu p99 %llu max %llu\n", (unsigned long long)p50,
		       (unsigned long long)p99, (unsigned long long)mx);
	}
	for (unsigned int i = 0; i < n_workers; i++) {
		curl_multi_remove_handle(multi, ws[i].h);
		curl_easy_cleanup(ws[i].h);
		curl_slist_free_all(ws[i].hdrs);
	}
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	free(r.lat_us);
	return 0;
}

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `sluicectl monitor`: the agent's event stream (/v1/events), until interrupted. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"

/* Set from the SIGINT/SIGTERM handler; the transfer polls it. */
static volatile sig_atomic_t monitor_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	monitor_stop = 1;
}

struct monitor {
	struct cli *c;
	const char *type; /* --type: only events of this type */
	char line[8192];
	size_t len;
	unsigned long long events;
};

/* One event line from the agent: as is for -o json, one readable line otherwise. */
static void monitor_line(struct monitor *mon, const char *line)
{
	json_t *o, *v;
	const char *key;

	o = json_loads(line, 0, NULL);
	if (mon->type &&
	    (!o || strcmp(json_string_value(json_object_get(o, "type")) ?: "", mon->type))) {
		json_decref(o);
		return;
	}
	mon->events++;
	if (mon->c->json) {
		json_decref(o);
		printf("%s\n", line);
		fflush(stdout);
		return;
	}
	if (!o) {
		printf("%s\n", line);
		return;
	}
	printf("%-15s", json_string_value(json_object_get(o, "type")));
	json_object_foreach(o, key, v)
	{
		if (!strcmp(key, "type") || !strcmp(key, "time_ns") || !strcmp(key, "cookie"))
			continue;
		if (json_is_string(v))
			printf(" %s=%s", key, *json_string_value(v) ? json_string_value(v) : "-");
		else if (json_is_real(v))
			printf(" %s=%.3f", key, json_real_value(v));
		else if (json_is_integer(v))
			printf(" %s=%lld", key, (long long)json_integer_value(v));
	}
	printf("\n");
	fflush(stdout);
	json_decref(o);
}

static size_t monitor_write(char *data, size_t size, size_t n, void *cls)
{
	struct monitor *mon = cls;
	size_t total = size * n;

	for (size_t i = 0; i < total; i++) {
		if (data[i] == '\n') {
			mon->line[mon->len] = '\0';
			if (mon->len)
				monitor_line(mon, mon->line);
			mon->len = 0;
		} else if (mon->len + 1 < sizeof(mon->line)) {
			mon->line[mon->len++] = data[i];
		}
	}
	return total;
}

static int monitor_progress(void *cls, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)cls, (void)dt, (void)dn, (void)ut, (void)un;
	return monitor_stop; /* non-zero aborts the transfer */
}

int do_monitor(struct cli *c, int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_stop_signal};
	struct monitor mon = {.c = c};
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;
	CURL *curl;

	if (argc == 3 && !strcmp(argv[1], "--type"))
		mon.type = argv[2];
	else if (argc > 1)
		return fail(c, EXIT_USAGE, "usage: monitor [--type TYPE]");
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return fail(c, EXIT_FAIL, "sigaction: %s", strerror(errno));
	if (curl_global_init(CURL_GLOBAL_NOTHING))
		return fail(c, EXIT_FAIL, "cannot initialise libcurl");
	curl = curl_easy_init();
	if (!curl) {
		curl_global_cleanup();
		return fail(c, EXIT_FAIL, "cannot initialise libcurl");
	}
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->api);
	curl_easy_setopt(curl, CURLOPT_URL, "http://localhost/v1/events");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, monitor_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &mon);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, monitor_progress);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
	if (!c->json)
		fprintf(stderr, "monitoring datapath events from %s; Ctrl-C to stop\n", c->api);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	if (rc == CURLE_ABORTED_BY_CALLBACK && monitor_stop)
		return EXIT_OK;
	if (rc != CURLE_OK)
		return fail(c, EXIT_FAIL, "monitor via %s: %s", c->api,
			    *errbuf ? errbuf : curl_easy_strerror(rc));
	if (status != 200)
		return fail(c, EXIT_FAIL, "monitor via %s: HTTP %ld", c->api, status);
	/* The agent closed the stream (it stopped). */
	return fail(c, EXIT_FAIL, "the agent ended the event stream after %llu events", mon.events);
}

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluicectl: reads the pinned maps directly, so it works while the agent is
 * down. Commands are dispatched through a table with prefix matching.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <time.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>

#include "completion.h"
#include "config.h"
#include "kfeatures.h"
#include "maps.h"
#include "parse.h"
#include "report.h"
#include "plan.h"
#include "tc.h"

#define DEFAULT_BPFFS "/sys/fs/bpf/sluice"
#define DEFAULT_API   "/run/sluice/sluiced.sock"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
};

struct cli {
	const char *bpffs;
	const char *api;
	int json;
};

struct cmd {
	const char *name;
	const char *args;
	const char *help;
	int (*fn)(struct cli *c, int argc, char **argv);
};

static void usage(FILE *f);

/* An error: {"error": ...} on stdout for -o json, a line on stderr else. */
static int fail(struct cli *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct cli *c, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->json) {
		json_t *o = json_pack("{s:s}", "error", msg);

		json_dumpf(o, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(o);
	} else {
		fprintf(stderr, "sluicectl: %s\n", msg);
	}
	return code;
}

static int emit(json_t *o)
{
	int err = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	fputc('\n', stdout);
	json_decref(o);
	return err ? EXIT_FAIL : EXIT_OK;
}

static int open_maps(struct cli *c, struct sl_maps *m)
{
	int err = sl_maps_open_pinned(c->bpffs, 1, m);

	if (err == -ENOENT)
		return fail(c, EXIT_FAIL,
			    "no sluice datapath is pinned at %s (is sluiced started? --bpffs?)",
			    c->bpffs);
	if (err)
		return fail(c, EXIT_FAIL, "open pinned maps in %s: %s", c->bpffs, strerror(-err));
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct sl_svc_state *)a)->name,
		      ((const struct sl_svc_state *)b)->name);
}

/* The table is printed from the same JSON object that -o json prints. */
static void service_table(const struct sl_svc_state *s, json_t *o)
{
	json_t *bes = json_object_get(o, "backends"), *rej = json_object_get(o, "rejected"), *b;
	size_t i;

	printf("%-20s %-28s %-4s %-12s backends=%zu active=%lld rejected: no_backend=%lld "
	       "circuit_breaker=%lld rate_limit=%lld\n",
	       s->name, json_string_value(json_object_get(o, "frontend")), sl_proto_name(s->proto),
	       sl_lb_name(s->lb), json_array_size(bes),
	       json_integer_value(json_object_get(o, "active_connections")),
	       json_integer_value(json_object_get(rej, "no_backend")),
	       json_integer_value(json_object_get(rej, "circuit_breaker")),
	       json_integer_value(json_object_get(rej, "rate_limit")));
	json_array_foreach(bes, i, b)
	{
		const char *subset = json_string_value(json_object_get(b, "subset"));
		json_t *left = json_object_get(b, "ejected_remaining_s");
		char state[48];

		if (left)
			snprintf(state, sizeof(state), "ejected(%.0fs left)",
				 json_real_value(left) + 0.5);
		else
			snprintf(state, sizeof(state), "%s",
				 json_string_value(json_object_get(b, "state")));
		printf("  %-44s weight=%-4lld subset=%-10s %-18s active=%-6lld "
		       "connections_total=%lld failures=%lld\n",
		       json_string_value(json_object_get(b, "address")),
		       json_integer_value(json_object_get(b, "weight")), *subset ? subset : "-",
		       state, json_integer_value(json_object_get(b, "active_connections")),
		       json_integer_value(json_object_get(b, "connections_total")),
		       json_integer_value(json_object_get(b, "connect_failures_total")));
	}
}

static int cmd_services(struct cli *c, int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	struct sl_maps m;
	struct sl_state st;
	json_t *arr = NULL, *o;
	int err, found = 0;

	if (argc > 2)
		return fail(c, EXIT_USAGE, "services takes at most one NAME");
	err = open_maps(c, &m);
	if (err)
		return err;
	err = sl_maps_read_state(&m, &st);
	if (err) {
		sl_maps_close(&m);
		return fail(c, EXIT_FAIL, "read the maps: %s", strerror(-err));
	}
	qsort(st.svcs, st.n_svcs, sizeof(*st.svcs), by_name);
	if (c->json)
		arr = json_array();
	for (size_t i = 0; i < st.n_svcs; i++) {
		if (only && strcmp(only, st.svcs[i].name))
			continue;
		found++;
		o = sl_report_service(&m, &st.svcs[i]);
		if (c->json) {
			json_array_append_new(arr, o);
		} else {
			service_table(&st.svcs[i], o);
			json_decref(o);
		}
	}
	sl_state_free(&st);
	sl_maps_close(&m);
	if (only && !found) {
		json_decref(arr);
		return fail(c, EXIT_FAIL, "service '%s' not found", only);
	}
	if (c->json)
		return emit(arr);
	if (!found)
		printf("no services\n");
	return EXIT_OK;
}

/* The process holding one of these link ids open is the agent. */
static int find_agent(const uint32_t *link_ids, size_t n)
{
	char path[512], line[128];
	struct dirent *pde, *fde;
	DIR *proc = opendir("/proc");
	int pid = 0;

	if (!proc)
		return 0;
	while (!pid && (pde = readdir(proc))) {
		int p = atoi(pde->d_name);
		DIR *fds;

		if (p <= 0 || p == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo", p);
		fds = opendir(path);
		if (!fds)
			continue;
		while (!pid && (fde = readdir(fds))) {
			FILE *f;

			if (fde->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", p, fde->d_name);
			f = fopen(path, "re");
			if (!f)
				continue;
			while (fgets(line, sizeof(line), f)) {
				unsigned int id;

				if (sscanf(line, "link_id: %u", &id) != 1)
					continue;
				for (size_t i = 0; i < n; i++)
					if (link_ids[i] == id)
						pid = p;
			}
			fclose(f);
		}
		closedir(fds);
	}
	closedir(proc);
	return pid;
}

static int cmd_status(struct cli *c, int argc, char **argv)
{
	char dir[4096], path[4400];
	uint32_t link_ids[16];
	json_t *progs = json_array(), *maps = json_array(), *o;
	struct dirent *de;
	struct sl_maps m;
	size_t n_links = 0;
	DIR *d;
	int err, pid;

	(void)argv;
	if (argc > 1) {
		json_decref(progs);
		json_decref(maps);
		return fail(c, EXIT_USAGE, "status takes no arguments");
	}
	err = open_maps(c, &m);
	if (err) {
		json_decref(progs);
		json_decref(maps);
		return err;
	}
	snprintf(dir, sizeof(dir), "%s/links", c->bpffs);
	d = opendir(dir);
	while (d && (de = readdir(d)) && n_links < 16) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
			const char *at = libbpf_bpf_attach_type_str(info.cgroup.attach_type);

			link_ids[n_links++] = info.id;
			json_array_append_new(
			    progs, json_pack("{s:s, s:s, s:i, s:i}", "name", de->d_name,
					     "attach_type", at ? at : "unknown", "link_id",
					     (int)info.id, "prog_id", (int)info.prog_id));
		}
		close(fd);
	}
	if (d)
		closedir(d);
	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++) {
		uint32_t entries = 0, cap = 0;
		int rc = sl_maps_fill(*sl_maps_fd(&m, i), &entries, &cap);

		/* Per-id arrays have no fill: their entries are null. */
		json_array_append_new(maps, json_pack("{s:s, s:o, s:i}", "name", sl_map_names[i],
						      "entries",
						      rc == 0 ? json_integer(entries) : json_null(),
						      "capacity", (int)cap));
	}
	sl_maps_close(&m);
	pid = find_agent(link_ids, n_links);
	o = json_pack("{s:s, s:{s:b, s:i}, s:o, s:o}", "bpffs", c->bpffs, "agent", "running",
		      pid > 0, "pid", pid, "programs", progs, "maps", maps);
	if (c->json)
		return emit(o);
	printf("bpffs:    %s\n", c->bpffs);
	if (pid > 0)
		printf("agent:    running (pid %d)\n", pid);
	else
		printf("agent:    not running; the pinned datapath keeps serving the last state\n");
	printf("programs: %zu attached\n", json_array_size(progs));
	for (size_t i = 0; i < json_array_size(progs); i++) {
		json_t *p = json_array_get(progs, i);

		printf("  %-26s %-26s link %-6lld prog %lld\n",
		       json_string_value(json_object_get(p, "name")),
		       json_string_value(json_object_get(p, "attach_type")),
		       json_integer_value(json_object_get(p, "link_id")),
		       json_integer_value(json_object_get(p, "prog_id")));
	}
	printf("maps:\n");
	for (size_t i = 0; i < json_array_size(maps); i++) {
		json_t *p = json_array_get(maps, i);
		json_t *entries = json_object_get(p, "entries");
		long long e = json_integer_value(entries);
		long long cap = json_integer_value(json_object_get(p, "capacity"));

		if (json_is_null(entries))
			printf("  %-22s %8s   %-8lld (indexed by id)\n",
			       json_string_value(json_object_get(p, "name")), "", cap);
		else
			printf("  %-22s %8lld / %-8lld %5.1f%%\n",
			       json_string_value(json_object_get(p, "name")), e, cap,
			       cap ? 100.0 * (double)e / (double)cap : 0.0);
	}
	json_decref(o);
	return EXIT_OK;
}

/* The service and backend a flow's remote end is, when it is one. */
static const struct sl_svc_state *flow_backend(const struct sl_state *st,
					       const struct sluice_tc_flow_key *k,
					       const struct sl_be_state **be)
{
	for (size_t i = 0; i < st->n_svcs; i++) {
		if (st->svcs[i].proto != k->proto)
			continue;
		for (size_t j = 0; j < st->svcs[i].n_bes; j++) {
			const struct sl_be_state *b = &st->svcs[i].bes[j];

			if (b->addr.family == k->family && b->addr.port == ntohs(k->remote_port) &&
			    !memcmp(b->addr.addr.a8, k->remote.a8, sizeof(k->remote.a8))) {
				*be = b;
				return &st->svcs[i];
			}
		}
	}
	*be = NULL;
	return NULL;
}

static json_t *flow_json(const struct sl_tc_flow_entry *f, const struct sl_svc_state *svc,
			 uint64_t now_ns)
{
	struct sl_sockaddr l = {
	    .addr = f->key.local, .port = ntohs(f->key.local_port), .family = f->key.family};
	struct sl_sockaddr r = {
	    .addr = f->key.remote, .port = ntohs(f->key.remote_port), .family = f->key.family};
	char local[SL_HOSTPORT_LEN], remote[SL_HOSTPORT_LEN], ifname[IF_NAMESIZE] = "";
	const struct sluice_tc_flow_dir *in = &f->flow.dir[SLUICE_TC_INGRESS];
	const struct sluice_tc_flow_dir *out = &f->flow.dir[SLUICE_TC_EGRESS];

	sl_format_hostport(&l, local, sizeof(local));
	sl_format_hostport(&r, remote, sizeof(remote));
	if (!if_indextoname(f->key.ifindex, ifname))
		snprintf(ifname, sizeof(ifname), "#%u", f->key.ifindex);
	return json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:f}", "protocol",
	    sl_proto_name(f->key.proto), "interface", ifname, "local", local, "remote", remote,
	    "service", svc ? svc->name : "", "backend", svc ? remote : "", "state",
	    sl_tc_flow_state(&f->key, &f->flow), "packets_out", (json_int_t)out->packets,
	    "packets_in", (json_int_t)in->packets, "bytes_out", (json_int_t)out->bytes, "bytes_in",
	    (json_int_t)in->bytes, "age_s",
	    now_ns > f->flow.first_ns ? (double)(now_ns - f->flow.first_ns) / 1e9 : 0.0, "idle_s",
	    now_ns > f->flow.last_ns ? (double)(now_ns - f->flow.last_ns) / 1e9 : 0.0);
}

static int cmd_flows(struct cli *c, int argc, char **argv)
{
	const char *only = NULL;
	struct sl_tc_flow_entry *flows = NULL;
	int if_fd = -1, flows_fd = -1, err;
	struct timespec ts;
	struct sl_state st = {0};
	struct sl_maps m;
	json_t *arr, *o;
	size_t n = 0, shown = 0;
	uint64_t now;

	if (argc == 3 && !strcmp(argv[1], "--service"))
		only = argv[2];
	else if (argc != 1)
		return fail(c, EXIT_USAGE, "usage: flows [--service NAME]");
	err = sl_tc_open_pinned(c->bpffs, 1, &if_fd, &flows_fd);
	if (err == -ENOENT)
		return fail(c, EXIT_FAIL, "no TC flow table is pinned at %s (set agent.interfaces)",
			    c->bpffs);
	if (err)
		return fail(c, EXIT_FAIL, "open the flow table in %s: %s", c->bpffs,
			    strerror(-err));
	err = sl_tc_read_flows(flows_fd, &flows, &n);
	close(if_fd);
	close(flows_fd);
	if (err)
		return fail(c, EXIT_FAIL, "read the flow table: %s", strerror(-err));
	/* Services are optional here: without them, flows show no service. */
	if (!sl_maps_open_pinned(c->bpffs, 1, &m)) {
		if (sl_maps_read_state(&m, &st))
			memset(&st, 0, sizeof(st));
		sl_maps_close(&m);
	}
	if (only && !sl_state_find(&st, only)) {
		free(flows);
		sl_state_free(&st);
		return fail(c, EXIT_FAIL, "service '%s' not found", only);
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct sl_be_state *be;
		const struct sl_svc_state *svc = flow_backend(&st, &flows[i].key, &be);

		if (only && (!svc || strcmp(svc->name, only)))
			continue;
		o = flow_json(&flows[i], svc, now);
		if (!o)
			continue;
		shown++;
		if (c->json) {
			json_array_append_new(arr, o);
			continue;
		}
		if (shown == 1)
			printf("%-5s %-10s %-44s %-44s %-14s %-11s %9s %9s %11s %11s %8s\n",
			       "PROTO", "IFACE", "LOCAL", "REMOTE", "SERVICE", "STATE", "PKTS_OUT",
			       "PKTS_IN", "BYTES_OUT", "BYTES_IN", "AGE_S");
		printf("%-5s %-10s %-44s %-44s %-14s %-11s %9lld %9lld %11lld %11lld %8.1f\n",
		       json_string_value(json_object_get(o, "protocol")),
		       json_string_value(json_object_get(o, "interface")),
		       json_string_value(json_object_get(o, "local")),
		       json_string_value(json_object_get(o, "remote")), svc ? svc->name : "-",
		       json_string_value(json_object_get(o, "state")),
		       json_integer_value(json_object_get(o, "packets_out")),
		       json_integer_value(json_object_get(o, "packets_in")),
		       json_integer_value(json_object_get(o, "bytes_out")),
		       json_integer_value(json_object_get(o, "bytes_in")),
		       json_real_value(json_object_get(o, "age_s")));
		json_decref(o);
	}
	free(flows);
	sl_state_free(&st);
	if (c->json)
		return emit(arr);
	json_decref(arr);
	if (!shown)
		printf("no flows\n");
	return EXIT_OK;
}

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

static int cmd_monitor(struct cli *c, int argc, char **argv)
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

static int cmd_version(struct cli *c, int argc, char **argv)
{
	struct sl_features f;

	(void)argv;
	if (argc > 1)
		return fail(c, EXIT_USAGE, "version takes no arguments");
	sl_features_probe(&f);
	if (c->json)
		return emit(sl_version_json("sluicectl", &f));
	sl_version_print(stdout, "sluicectl", &f);
	return EXIT_OK;
}

static int cmd_completion(struct cli *c, int argc, char **argv);

/* Identity names by id, from sluice_identities. */
static void identity_names(const struct sl_maps *m, char names[][SLUICE_NAME_LEN])
{
	for (uint32_t id = 1; id <= SLUICE_MAX_IDENTITIES; id++) {
		struct sluice_identity_info info;

		names[id][0] = '\0';
		if (!bpf_map_lookup_elem(m->identities, &id, &info))
			snprintf(names[id], SLUICE_NAME_LEN, "%s", info.name);
	}
}

static json_t *mask_names(uint64_t mask, char names[][SLUICE_NAME_LEN])
{
	json_t *arr = json_array();

	for (uint32_t id = 1; id <= SLUICE_MAX_IDENTITIES; id++)
		if (mask & (1ULL << (id - 1)))
			json_array_append_new(arr, json_string(names[id][0] ? names[id] : "?"));
	return arr;
}

static void ipcache_prefix(const struct sluice_ipcache_key *k, char *buf, size_t len)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char a[INET6_ADDRSTRLEN];

	if (k->prefixlen >= 96 && !memcmp(k->addr, mapped, sizeof(mapped))) {
		inet_ntop(AF_INET, &k->addr[12], a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, k->prefixlen - 96);
	} else {
		inet_ntop(AF_INET6, k->addr, a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, k->prefixlen);
	}
}

static int cmd_identities(struct cli *c, int argc, char **argv)
{
	static char names[SLUICE_MAX_IDENTITIES + 1][SLUICE_NAME_LEN];
	json_t *ids[SLUICE_MAX_IDENTITIES + 1] = {0}, *arr;
	struct sluice_ipcache_key ik, inext;
	uint64_t ck, cnext;
	struct sl_maps m;
	void *prev;
	uint32_t id;
	int err;

	(void)argv;
	if (argc > 1)
		return fail(c, EXIT_USAGE, "identities takes no arguments");
	err = open_maps(c, &m);
	if (err)
		return err;
	identity_names(&m, names);
	for (id = 1; id <= SLUICE_MAX_IDENTITIES; id++)
		if (names[id][0])
			ids[id] = json_pack("{s:s, s:i, s:[], s:[]}", "name", names[id], "id",
					    (int)id, "cgroup_ids", "addresses");
	prev = NULL;
	while (!bpf_map_get_next_key(m.cgroup_ids, prev, &cnext)) {
		ck = cnext;
		prev = &ck;
		if (!bpf_map_lookup_elem(m.cgroup_ids, &ck, &id) && id <= SLUICE_MAX_IDENTITIES &&
		    ids[id])
			json_array_append_new(json_object_get(ids[id], "cgroup_ids"),
					      json_integer((json_int_t)ck));
	}
	prev = NULL;
	while (!bpf_map_get_next_key(m.ipcache, prev, &inext)) {
		char pfx[INET6_ADDRSTRLEN + 8];

		ik = inext;
		prev = &ik;
		if (bpf_map_lookup_elem(m.ipcache, &ik, &id) || id > SLUICE_MAX_IDENTITIES ||
		    !ids[id])
			continue;
		ipcache_prefix(&ik, pfx, sizeof(pfx));
		json_array_append_new(json_object_get(ids[id], "addresses"), json_string(pfx));
	}
	sl_maps_close(&m);
	arr = json_array();
	for (id = 1; id <= SLUICE_MAX_IDENTITIES; id++)
		if (ids[id])
			json_array_append_new(arr, ids[id]);
	if (c->json)
		return emit(arr);
	if (!json_array_size(arr))
		printf("no identities\n");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *o = json_array_get(arr, i), *v;
		size_t k;

		printf("%-20s id=%-3lld cgroup_ids=", json_string_value(json_object_get(o, "name")),
		       json_integer_value(json_object_get(o, "id")));
		json_array_foreach(json_object_get(o, "cgroup_ids"), k, v)
		{
			printf("%s%lld", k ? "," : "", json_integer_value(v));
		}
		printf(" addresses=");
		json_array_foreach(json_object_get(o, "addresses"), k, v)
		{
			printf("%s%s", k ? "," : "", json_string_value(v));
		}
		printf("\n");
	}
	json_decref(arr);
	return EXIT_OK;
}

static int cmd_policy(struct cli *c, int argc, char **argv)
{
	static char names[SLUICE_MAX_IDENTITIES + 1][SLUICE_NAME_LEN];
	const char *only = argc > 1 ? argv[1] : NULL;
	struct sl_maps m;
	struct sl_state st;
	json_t *arr;
	int err, found = 0;

	if (argc > 2)
		return fail(c, EXIT_USAGE, "policy takes at most one SERVICE");
	err = open_maps(c, &m);
	if (err)
		return err;
	err = sl_maps_read_state(&m, &st);
	if (err) {
		sl_maps_close(&m);
		return fail(c, EXIT_FAIL, "read the maps: %s", strerror(-err));
	}
	identity_names(&m, names);
	qsort(st.svcs, st.n_svcs, sizeof(*st.svcs), by_name);
	arr = json_array();
	for (size_t i = 0; i < st.n_svcs; i++) {
		const struct sluice_service *v = &st.svcs[i].value;
		uint64_t rej[SLUICE_DROP__MAX] = {0};

		if (only && strcmp(only, st.svcs[i].name))
			continue;
		found++;
		sl_maps_service_rejected(&m, st.svcs[i].id, rej);
		if (!(v->flags & SLUICE_SVC_F_POLICY)) {
			json_array_append_new(
			    arr, json_pack("{s:s, s:b}", "service", st.svcs[i].name, "policy", 0));
			continue;
		}
		json_array_append_new(
		    arr, json_pack("{s:s, s:b, s:s, s:o, s:o, s:I}", "service", st.svcs[i].name,
				   "policy", 1, "default",
				   (v->flags & SLUICE_SVC_F_DEFAULT_DENY) ? "deny" : "allow",
				   "allow_from", mask_names(v->allow_mask, names), "deny_from",
				   mask_names(v->deny_mask, names), "rejected",
				   (json_int_t)rej[SLUICE_DROP_POLICY]));
	}
	sl_state_free(&st);
	sl_maps_close(&m);
	if (only && !found) {
		json_decref(arr);
		return fail(c, EXIT_FAIL, "service '%s' not found", only);
	}
	if (c->json)
		return emit(arr);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *o = json_array_get(arr, i), *v;
		size_t k;

		if (!json_is_true(json_object_get(o, "policy"))) {
			printf("%-20s no policy: everyone is allowed\n",
			       json_string_value(json_object_get(o, "service")));
			continue;
		}
		printf("%-20s default=%s allow_from=",
		       json_string_value(json_object_get(o, "service")),
		       json_string_value(json_object_get(o, "default")));
		json_array_foreach(json_object_get(o, "allow_from"), k, v)
		{
			printf("%s%s", k ? "," : "", json_string_value(v));
		}
		printf(" deny_from=");
		json_array_foreach(json_object_get(o, "deny_from"), k, v)
		{
			printf("%s%s", k ? "," : "", json_string_value(v));
		}
		printf(" rejected=%lld\n", json_integer_value(json_object_get(o, "rejected")));
	}
	json_decref(arr);
	return EXIT_OK;
}

/* The control API: one request, its status and JSON answer (malloc'd). */
struct api_reply {
	char *body;
	size_t len;
};

static size_t api_collect(char *data, size_t size, size_t n, void *cls)
{
	struct api_reply *r = cls;
	size_t total = size * n;
	char *grown;

	if (r->len + total > 1 << 24)
		return 0;
	grown = realloc(r->body, r->len + total + 1);
	if (!grown)
		return 0;
	r->body = grown;
	memcpy(r->body + r->len, data, total);
	r->len += total;
	r->body[r->len] = '\0';
	return total;
}

/* A path segment, percent-encoded (IPv6 addresses have ':' and '[]'). */
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

/* "/v1/services/NAME[/backends[/ADDRESS[/TAIL]]]" with each part escaped. */
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

static int cmd_register(struct cli *c, int argc, char **argv)
{
	const char *svc = NULL, *addr = NULL, *subset = NULL, *ttl = NULL, *why;
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
			    "[--subset S] [--ttl DUR]");
	body = json_pack("{s:s, s:I}", "address", addr, "weight", (json_int_t)weight);
	if (body && subset)
		json_object_set_new(body, "subset", json_string(subset));
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

static int cmd_deregister(struct cli *c, int argc, char **argv)
{
	return backend_cmd(c, argc, argv, "DELETE", NULL, "deregistered");
}

static int cmd_drain(struct cli *c, int argc, char **argv)
{
	return backend_cmd(c, argc, argv, "POST", "drain", "draining");
}

static int cmd_undrain(struct cli *c, int argc, char **argv)
{
	return backend_cmd(c, argc, argv, "POST", "undrain", "undrained");
}

static const struct cmd commands[] = {
    {"status", "", "agent reachable?, programs attached, map fill", cmd_status},
    {"services", "[NAME]", "services, backends, backend state and counters", cmd_services},
    {"flows", "[--service NAME]", "live and recent flows seen by the TC programs", cmd_flows},
    {"monitor", "[--type TYPE]", "stream datapath events until interrupted", cmd_monitor},
    {"identities", "", "identities: cgroup ids and address prefixes", cmd_identities},
    {"policy", "[SERVICE]", "each service's policy and its denials", cmd_policy},
    {"drain", "SERVICE ADDRESS", "no new connections to that backend; existing ones stay",
     cmd_drain},
    {"undrain", "SERVICE ADDRESS", "let the backend take new connections again", cmd_undrain},
    {"register", "SERVICE ADDRESS [--weight N] [--subset S] [--ttl DUR]",
     "add a backend through the agent's API", cmd_register},
    {"deregister", "SERVICE ADDRESS", "remove a registered backend", cmd_deregister},
    {"version", "", "version, commit, libbpf and kernel features", cmd_version},
    {"completion", "bash", "print a bash completion script", cmd_completion},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static int cmd_completion(struct cli *c, int argc, char **argv)
{
	struct sl_cmd_spec specs[N_COMMANDS];

	if (argc != 2 || strcmp(argv[1], "bash"))
		return fail(c, EXIT_USAGE, "usage: completion bash");
	for (size_t i = 0; i < N_COMMANDS; i++)
		specs[i] = (struct sl_cmd_spec){commands[i].name, commands[i].args};
	sl_completion_bash(stdout, specs, N_COMMANDS);
	return EXIT_OK;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sluicectl [--bpffs DIR] [--api SOCK] [-o table|json] COMMAND [ARGS]\n"
		   "options:\n"
		   "  --bpffs DIR        where the datapath is pinned (default " DEFAULT_BPFFS ")\n"
		   "  --api SOCK         the agent's API socket (default " DEFAULT_API ")\n"
		   "  -o, --output FMT   table (default) or json\n"
		   "  -h, --help         this help\n"
		   "commands (any unique prefix):\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %-17s %s\n", commands[i].name, commands[i].args,
			commands[i].help);
}

/* Exact name, else a unique prefix. */
static const struct cmd *find_cmd(const char *name, int *ambiguous)
{
	const struct cmd *hit = NULL;

	*ambiguous = 0;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(commands[i].name, name))
			return &commands[i];
		if (!strncmp(commands[i].name, name, strlen(name))) {
			if (hit)
				*ambiguous = 1;
			hit = &commands[i];
		}
	}
	return *ambiguous ? NULL : hit;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"bpffs", required_argument, NULL, 'b'},
	    {"api", required_argument, NULL, 'a'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cli c = {.bpffs = DEFAULT_BPFFS, .api = DEFAULT_API};
	const struct cmd *cmd;
	int opt, ambiguous;

	while ((opt = getopt_long(argc, argv, "+o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			c.bpffs = optarg;
			break;
		case 'a':
			c.api = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "json")) {
				c.json = 1;
			} else if (strcmp(optarg, "table")) {
				fprintf(stderr, "sluicectl: -o: want table or json, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = find_cmd(argv[optind], &ambiguous);
	if (!cmd) {
		fail(&c, EXIT_USAGE, "%s command '%s'", ambiguous ? "ambiguous" : "unknown",
		     argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	return cmd->fn(&c, argc - optind, argv + optind);
}

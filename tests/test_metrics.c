// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sl_metrics_render (userspace/lib/metrics.c) against a known state: a config applied to the
 * agent's real maps (tests/world.h), counters written into the per-CPU maps (split over two
 * CPUs, so the sum is tested too), backend states set, and what the agent adds (version,
 * reloads, interfaces, health probes). Every family, label and value of the page is checked,
 * and the page goes through `promtool check metrics` when promtool is installed. Needs root
 * (skipped otherwise).
 *
 * The fixture (Criterion .init/.fini) owns the datapath, the config and the promtool input
 * file. A failed cr_assert in a test still runs .fini; .init cleans up after itself before it
 * asserts or skips, since .fini does not run then.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "metrics.h"
#include "fixtures.h"
#include "world.h"

#define PROMTOOL "/usr/bin/promtool"

static const char cfg_yaml[] = "services:\n"
			       "  - name: web\n"
			       "    frontend: 198.19.0.10:80\n"
			       "    backends:\n"
			       "      - address: 198.18.1.2:8080\n"
			       "      - address: 198.18.1.3:8080\n"
			       "      - address: 198.18.1.4:8080\n"
			       "      - address: 198.18.1.5:8080\n"
			       "  - name: dns\n"
			       "    frontend: \"[2001:db8:f::53]:53\"\n"
			       "    protocol: udp\n"
			       "    backends:\n"
			       "      - address: \"[2001:db8:1::6]:53\"\n";

static struct test_world w; /* owns cfg */
static struct sl_config cfg;
static struct sl_prom *page;
static char tmp_path[] = "/tmp/sluice-metrics-XXXXXX";
static int tmp_made;

static void teardown(void)
{
	test_world_down(&w);
	sl_prom_free(page);
	page = NULL;
	if (tmp_made)
		unlink(tmp_path);
	tmp_made = 0;
}

static void setup(void)
{
	const struct test_world_cfg cfgs[] = {{cfg_yaml, &cfg}};
	char why[512];
	int err, fd;

	err = test_world_setup(&w, cfgs, 1, NULL, why, sizeof(why));
	if (!err) {
		fd = mkstemp(tmp_path);
		if (fd < 0) {
			err = -errno;
			snprintf(why, sizeof(why), "mkstemp %s: %s", tmp_path, strerror(errno));
		} else {
			tmp_made = 1;
			close(fd);
		}
	}
	if (err)
		teardown(); /* .fini does not run when .init fails */
	if (err == -EPERM || err == -EACCES)
		cr_skip_test("%s", why);
	cr_assert_eq(err, 0, "%s", why);
	page = sl_prom_new();
	cr_assert_not_null(page, "sl_prom_new: out of memory");
}

TestSuite(metrics, .init = setup, .fini = teardown);

/* Put a per-CPU value made of 64-bit counters: a third of each counter on the last CPU, the
 * rest on CPU 0, so that only a sum over CPUs gives 'total'. */
static int percpu_put(int fd, uint32_t key, const void *total, size_t size)
{
	int ncpu = libbpf_num_possible_cpus();
	const uint64_t *t = total;
	uint64_t *v;
	int err = 0;

	if (ncpu < 1)
		return ncpu < 0 ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, size);
	if (!v)
		return -ENOMEM;
	for (size_t f = 0; f < size / sizeof(uint64_t); f++) {
		uint64_t third = ncpu > 1 ? t[f] / 3 : 0;

		v[f] = t[f] - third;
		v[(size_t)(ncpu - 1) * (size / sizeof(uint64_t)) + f] += third;
	}
	if (bpf_map_update_elem(fd, &key, v, BPF_ANY))
		err = -errno;
	free(v);
	return err;
}

static const struct sl_svc_state *find(const struct sl_state *st, const char *name)
{
	const struct sl_svc_state *s = sl_state_find(st, name);

	cr_assert_not_null(s, "service %s is not in the maps", name);
	return s;
}

/* The health probes' counters: only web's first backend is probed. */
static int health_stats(void *arg, uint32_t be_id, uint64_t *ok, uint64_t *failed)
{
	if (be_id != *(const uint32_t *)arg)
		return 1;
	*ok = 7;
	*failed = 2;
	return 0;
}

/* Lines that start with prefix and, unless it is NULL, end with suffix. */
static size_t lines_with(const char *text, const char *prefix, const char *suffix)
{
	size_t n = 0, plen = strlen(prefix), slen = suffix ? strlen(suffix) : 0;

	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		if (len >= plen && !strncmp(p, prefix, plen) &&
		    (!suffix || (len >= slen && !strncmp(p + len - slen, suffix, slen))))
			n++;
		p += len + (eol != NULL);
	}
	return n;
}

/* promtool's verdict on the page: its exit status, and what it said in out. */
static int promtool(const char *text, char *out, size_t len)
{
	char cmd[128];
	size_t got;
	FILE *f;

	f = fopen(tmp_path, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	if (fclose(f))
		return -errno;
	snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1", PROMTOOL, tmp_path);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	got = fread(out, 1, len - 1, f);
	out[got] = '\0';
	return pclose(f);
}

/* The # TYPE lines of the page, in order. */
static const char *const families[] = {
    "sluice_build_info gauge",
    "sluice_config_reloads_total counter",
    "sluice_connections_total counter",
    "sluice_active_connections gauge",
    "sluice_connect_failures_total counter",
    "sluice_sent_bytes_total counter",
    "sluice_received_bytes_total counter",
    "sluice_backend_state gauge",
    "sluice_health_checks_total counter",
    "sluice_rejected_connections_total counter",
    "sluice_edge_connections_total counter",
    "sluice_edge_connect_failures_total counter",
    "sluice_edge_rejected_connections_total counter",
    "sluice_connect_duration_seconds histogram",
    "sluice_tcp_rtt_seconds histogram",
    "sluice_interface_packets_total counter",
    "sluice_interface_bytes_total counter",
    "sluice_events_lost_total counter",
    "sluice_redirected_bytes_total counter",
    "sluice_redirected_connections_total counter",
    "sluice_audit_events_suppressed_total counter",
    "sluice_revnat_update_failures_total counter",
    "sluice_map_entries gauge",
    "sluice_map_capacity gauge",
};

/* The families of the page, in order, each a HELP line and then its TYPE line. */
static void expect_families(const char *text, int with_health, int with_ifs)
{
	const size_t n = sizeof(families) / sizeof(families[0]);
	size_t k = 0, seen = 0;

	for (const char *p = strstr(text, "# TYPE "); p; p = strstr(p + 1, "# TYPE ")) {
		const char *eol = strchr(p, '\n'), *help = p - 1;
		size_t name_len = strcspn(p + 7, " ");

		while (k < n && ((!with_health && strstr(families[k], "health")) ||
				 (!with_ifs && strstr(families[k], "interface"))))
			k++;
		cr_assert_lt(k, n, "extra family: %.*s", (int)(eol - p), p);
		cr_expect(eol && (size_t)(eol - p - 7) == strlen(families[k]) &&
			      !strncmp(p + 7, families[k], strlen(families[k])),
			  "family %zu: %.*s, want %s", k, (int)(eol - p), p, families[k]);
		while (help > text && help[-1] != '\n')
			help--;
		cr_expect(!strncmp(help, "# HELP ", 7) && !strncmp(help + 7, p + 7, name_len) &&
			      help[7 + name_len] == ' ',
			  "no HELP line right before %.*s", (int)(eol - p), p);
		k++;
		seen++;
	}
	cr_expect_eq(seen, n - (with_health ? 0 : 1) - (with_ifs ? 0 : 2), "%zu families", seen);
}

Test(metrics, known_state_renders_exactly)
{
	static const struct sl_if_counters ifs[] = {
	    {.name = "veth-a", .packets = {10, 20}, .bytes = {1000, 2000}},
	    {.name = "eth0", .packets = {0, 5}, .bytes = {0, 300}},
	};
	struct sluice_backend_stats bs = {.connections = 15,
					  .connect_failures = 4,
					  .sent_bytes = 123456789012ULL,
					  .received_bytes = 6000,
					  .retransmits = 9};
	struct sluice_svc_hist hist = {0};
	struct sluice_svc_stats rej = {
	    .rejected = {[SLUICE_DROP_NO_BACKEND] = 7, [SLUICE_DROP_RATE_LIMIT] = 2}};
	struct sluice_global_stats gs = {
	    .events_lost = 11, .redirected_bytes = 4096, .redirected_conns = 2};
	struct sluice_backend_rt rt = {0};
	struct sl_metrics_ctx ctx = {.version = "9.9.9-test",
				     .reloads_ok = 4,
				     .reloads_error = 1,
				     .ifs = ifs,
				     .n_ifs = 2,
				     .health_stats = health_stats};
	const struct sl_svc_state *web, *dns;
	uint32_t be2, be3, be4, be5;
	struct sl_state st;
	char why[512], out[4096];
	const char *text;
	int status;

	cr_assert_eq(test_world_apply(&w, &cfg, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(sl_maps_read_state(w.maps, &st), 0);
	web = find(&st, "web");
	dns = find(&st, "dns");
	cr_assert_eq(web->n_bes, 4);
	be2 = web->bes[0].id, be3 = web->bes[1].id, be4 = web->bes[2].id, be5 = web->bes[3].id;
	ctx.health_arg = &be2;

	/* .2 healthy with counters; .3 draining, its active count a negative transient; .4
	 * ejected for another minute; .5 unhealthy. */
	cr_assert_eq(percpu_put(w.maps->backend_stats, be2, &bs, sizeof(bs)), 0);
	/* The active count is the high half of active_gen (SLUICE_RT_ONE); keep the id's
	 * generation the agent gave it. */
	cr_assert_eq(bpf_map_lookup_elem(w.maps->backend_rt, &be2, &rt), 0);
	rt.active_gen = 3 * SLUICE_RT_ONE + sluice_rt_gen(rt.active_gen);
	cr_assert_eq(bpf_map_update_elem(w.maps->backend_rt, &be2, &rt, BPF_ANY), 0);
	cr_assert_eq(bpf_map_lookup_elem(w.maps->backend_rt, &be3, &rt), 0);
	rt.active_gen = (uint64_t)(-2LL * (int64_t)SLUICE_RT_ONE) + sluice_rt_gen(rt.active_gen);
	cr_assert_eq(bpf_map_update_elem(w.maps->backend_rt, &be3, &rt, BPF_ANY), 0);
	cr_assert_eq(sl_maps_set_state(w.maps, be3, SLUICE_BE_DRAINING), 0);
	cr_assert_eq(bpf_map_lookup_elem(w.maps->backend_rt, &be4, &rt), 0);
	rt.active_gen = sluice_rt_gen(rt.active_gen);
	rt.ejected_until_ns = sl_mono_ns() + 60ULL * 1000000000ULL;
	cr_assert_eq(bpf_map_update_elem(w.maps->backend_rt, &be4, &rt, BPF_ANY), 0);
	cr_assert_eq(sl_maps_set_state(w.maps, be5, SLUICE_BE_UNHEALTHY), 0);
	/* web's connect times: 3 under 1 us, 4 in [8, 16) us, 1 beyond the last bucket; RTTs:
	 * 5 in [2, 4) us. */
	hist.connect.buckets[0] = 3;
	hist.connect.buckets[3] = 4;
	hist.connect.overflow = 1;
	hist.connect.sum_us = 1234567;
	hist.rtt.buckets[1] = 5;
	hist.rtt.sum_us = 15;
	cr_assert_eq(percpu_put(w.maps->svc_hist, web->id, &hist, sizeof(hist)), 0);
	cr_assert_eq(percpu_put(w.maps->svc_stats, web->id, &rej, sizeof(rej)), 0);
	cr_assert_eq(percpu_put(w.maps->global_stats, 0, &gs, sizeof(gs)), 0);

	cr_assert_eq(sl_metrics_render(w.maps, &ctx, page), 0);
	text = sl_prom_data(page, NULL);
	cr_assert_not_null(text);

	expect_families(text, 1, 1);
	EXPECT_LINE(text, "sluice_build_info{version=\"9.9.9-test\"} 1");
	EXPECT_LINE(text, "sluice_config_reloads_total{result=\"ok\"} 4");
	EXPECT_LINE(text, "sluice_config_reloads_total{result=\"error\"} 1");

	EXPECT_LINE(text,
		    "sluice_connections_total{service=\"web\",backend=\"198.18.1.2:8080\"} 15");
	/* The others have counted nothing (.3's negative active count is a transient): left
	 * out of all five families. */
	cr_expect_eq(lines_with(text, "sluice_connections_total{", NULL), 1);
	cr_expect_eq(lines_with(text, "sluice_active_connections{", NULL), 1);
	cr_expect_eq(lines_with(text, "sluice_connect_failures_total{", NULL), 1);
	cr_expect_eq(lines_with(text, "sluice_sent_bytes_total{", NULL), 1);
	cr_expect_eq(lines_with(text, "sluice_received_bytes_total{", NULL), 1);
	EXPECT_LINE(text,
		    "sluice_active_connections{service=\"web\",backend=\"198.18.1.2:8080\"} 3");
	EXPECT_LINE(text,
		    "sluice_connect_failures_total{service=\"web\",backend=\"198.18.1.2:8080\"} 4");
	EXPECT_LINE(text, "sluice_sent_bytes_total{service=\"web\",backend=\"198.18.1.2:8080\"} "
			  "123456789012");
	EXPECT_LINE(
	    text, "sluice_received_bytes_total{service=\"web\",backend=\"198.18.1.2:8080\"} 6000");

	/* One state line per backend, on its current state. */
	cr_expect_eq(lines_with(text, "sluice_backend_state{", NULL), 5);
	EXPECT_LINE(text, "sluice_backend_state{service=\"web\",backend=\"198.18.1.2:8080\","
			  "state=\"healthy\"} 1");
	EXPECT_LINE(text, "sluice_backend_state{service=\"web\",backend=\"198.18.1.3:8080\","
			  "state=\"draining\"} 1");
	EXPECT_LINE(text, "sluice_backend_state{service=\"web\",backend=\"198.18.1.4:8080\","
			  "state=\"ejected\"} 1");
	EXPECT_LINE(text, "sluice_backend_state{service=\"web\",backend=\"198.18.1.5:8080\","
			  "state=\"unhealthy\"} 1");
	EXPECT_LINE(text, "sluice_backend_state{service=\"dns\",backend=\"[2001:db8:1::6]:53\","
			  "state=\"healthy\"} 1");
	cr_expect_eq(lines_with(text, "sluice_backend_state{", "} 1"), 5);

	/* Probed backends only. */
	cr_expect_eq(lines_with(text, "sluice_health_checks_total{", NULL), 2);
	EXPECT_LINE(text, "sluice_health_checks_total{service=\"web\",backend=\"198.18.1.2:8080\","
			  "result=\"ok\"} 7");
	EXPECT_LINE(text, "sluice_health_checks_total{service=\"web\",backend=\"198.18.1.2:8080\","
			  "result=\"failed\"} 2");

	/* The reasons that are not 0. */
	cr_expect_eq(lines_with(text, "sluice_rejected_connections_total{", NULL), 2);
	EXPECT_LINE(text,
		    "sluice_rejected_connections_total{service=\"web\",reason=\"no_backend\"} 7");
	EXPECT_LINE(text,
		    "sluice_rejected_connections_total{service=\"web\",reason=\"rate_limit\"} 2");

	/* Histograms: cumulative buckets with le in seconds, +Inf, _sum, _count. */
	EXPECT_LINE(text, "sluice_connect_duration_seconds_bucket{service=\"web\",le=\"1e-06\"} 3");
	EXPECT_LINE(text, "sluice_connect_duration_seconds_bucket{service=\"web\",le=\"7e-06\"} 3");
	EXPECT_LINE(text,
		    "sluice_connect_duration_seconds_bucket{service=\"web\",le=\"1.5e-05\"} 7");
	EXPECT_LINE(text, "sluice_connect_duration_seconds_bucket{service=\"web\",le=\"+Inf\"} 8");
	EXPECT_LINE(text, "sluice_connect_duration_seconds_sum{service=\"web\"} 1.234567");
	EXPECT_LINE(text, "sluice_connect_duration_seconds_count{service=\"web\"} 8");
	/* dns has counted no connection: no histograms. */
	cr_expect(!strstr(text, "{service=\"dns\",le="), "dns: a histogram of nothing");
	cr_expect(!strstr(text, "_count{service=\"dns\"}"), "dns: a histogram of nothing");
	EXPECT_LINE(text, "sluice_tcp_rtt_seconds_bucket{service=\"web\",le=\"1e-06\"} 0");
	EXPECT_LINE(text, "sluice_tcp_rtt_seconds_bucket{service=\"web\",le=\"3e-06\"} 5");
	EXPECT_LINE(text, "sluice_tcp_rtt_seconds_sum{service=\"web\"} 1.5e-05");
	EXPECT_LINE(text, "sluice_tcp_rtt_seconds_count{service=\"web\"} 5");
	cr_expect_eq(lines_with(text, "sluice_tcp_rtt_seconds_bucket{service=\"web\"", NULL),
		     SLUICE_HIST_BUCKETS + 1);

	EXPECT_LINE(
	    text, "sluice_interface_packets_total{interface=\"veth-a\",direction=\"ingress\"} 10");
	EXPECT_LINE(text,
		    "sluice_interface_packets_total{interface=\"veth-a\",direction=\"egress\"} 20");
	EXPECT_LINE(
	    text, "sluice_interface_bytes_total{interface=\"veth-a\",direction=\"ingress\"} 1000");
	EXPECT_LINE(text,
		    "sluice_interface_bytes_total{interface=\"eth0\",direction=\"egress\"} 300");

	EXPECT_LINE(text, "sluice_events_lost_total 11");
	EXPECT_LINE(text, "sluice_redirected_bytes_total 4096");
	EXPECT_LINE(text, "sluice_redirected_connections_total 2");

	/* Entries of the hash maps only; capacities from agent.limits (hashes twice over). */
	EXPECT_LINE(text, "sluice_map_entries{map=\"sluice_services\"} 2");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sluice_frontends\"} 2");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sluice_backends\"} 5");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sluice_slots\"} 5");
	cr_expect(!strstr(text, "sluice_map_entries{map=\"sluice_backend_stats\"}"),
		  "an array has no entry count");
	cr_expect_eq(lines_with(text, "sluice_map_capacity{", NULL), SL_MAPS_COUNT);
	{
		char line[128];

		snprintf(line, sizeof(line), "sluice_map_capacity{map=\"sluice_backends\"} %d",
			 2 * TEST_WORLD_BACKENDS);
		EXPECT_LINE(text, line);
		snprintf(line, sizeof(line), "sluice_map_capacity{map=\"sluice_services\"} %d",
			 2 * TEST_WORLD_SERVICES);
		EXPECT_LINE(text, line);
	}
	cr_expect_eq(dns->n_bes, 1);
	sl_state_free(&st);

	if (access(PROMTOOL, X_OK) != 0) {
		cr_log_warn("%s not installed (Debian package prometheus): not checked", PROMTOOL);
		return;
	}
	status = promtool(text, out, sizeof(out));
	cr_expect(status == 0 && !out[0], "promtool check metrics: status %d, said:\n%s\n%s",
		  status, out, text);
}

/* No services, no health checker, no TC interfaces: the families that need them are left
 * out, the others are there without samples, and the page is still valid. */
Test(metrics, empty_state_without_extras)
{
	struct sl_metrics_ctx ctx = {.version = "0.0.1"};
	char out[4096];
	const char *text;
	int status;

	cr_assert_eq(sl_metrics_render(w.maps, &ctx, page), 0);
	text = sl_prom_data(page, NULL);
	cr_assert_not_null(text);
	expect_families(text, 0, 0);
	cr_expect(!strstr(text, "sluice_health_checks_total"));
	cr_expect(!strstr(text, "sluice_interface_"));
	cr_expect_eq(lines_with(text, "sluice_connections_total{", NULL), 0);
	cr_expect_eq(lines_with(text, "sluice_connect_duration_seconds_bucket{", NULL), 0);
	EXPECT_LINE(text, "sluice_build_info{version=\"0.0.1\"} 1");
	EXPECT_LINE(text, "sluice_config_reloads_total{result=\"ok\"} 0");
	EXPECT_LINE(text, "sluice_events_lost_total 0");
	EXPECT_LINE(text, "sluice_map_entries{map=\"sluice_services\"} 0");
	if (access(PROMTOOL, X_OK) != 0) {
		cr_log_warn("%s not installed (Debian package prometheus): not checked", PROMTOOL);
		return;
	}
	status = promtool(text, out, sizeof(out));
	cr_expect(status == 0 && !out[0], "promtool check metrics: status %d, said:\n%s\n%s",
		  status, out, text);
}

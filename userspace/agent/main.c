// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluiced: loads and pins the datapath, keeps the maps in step with the
 * config, and reloads on SIGHUP or when the config file changes. One epoll
 * loop (loop.c) over a signalfd, an inotify watch, two timerfds, the ring
 * buffer, the probes, TC, etcd and the HTTP listeners; all state lives in
 * struct agent (agent.h). This file: options, --check, --teardown, start.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent.h"
#include "caps.h"
#include "kfeatures.h"
#include "log.h"
#include "maps.h"
#include "notify.h"

#define DEFAULT_CONFIG "/etc/sluice/sluice.yaml"

enum {
	EXIT_OK = 0,
	EXIT_CONFIG = 1,
	EXIT_USAGE = 2,
	EXIT_ENV = 3,
};

/* Config file events within this window are coalesced into one reload. */
#define RELOAD_DEBOUNCE_MS 200

static void usage(FILE *f)
{
	fprintf(f, "usage: sluiced [-c FILE] [--check] [--teardown] "
		   "[--log-level debug|info|warn|error]\n"
		   "               [--log-format logfmt|journal] [--version]\n"
		   "  -c, --config FILE    config file (default " DEFAULT_CONFIG ")\n"
		   "      --check          validate the config, print each error as "
		   "FILE:LINE:COL, exit\n"
		   "      --teardown       detach every program, remove every pin under "
		   "agent.bpffs, exit\n"
		   "      --log-level L    debug, info (default), warn or error\n"
		   "      --log-format F   logfmt (default) or journal (<N> syslog priority "
		   "prefixes;\n"
		   "                       the default when stderr is the journal, "
		   "see $JOURNAL_STREAM)\n"
		   "      --version        version, commit, libbpf and kernel features\n"
		   "  -h, --help           this help\n");
}

static void on_inotify(void *arg)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct agent *a = arg;
	ssize_t len;
	int hit = 0;

	while ((len = read(a->inofd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->len && !strcmp(ev->name, a->config_base))
				hit = 1;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (hit && sl_timer_arm(a->debouncefd, RELOAD_DEBOUNCE_MS, 0))
		sl_warn("cannot arm the reload timer", "error=\"%s\"", strerror(errno));
}

static void on_signal(void *arg)
{
	struct agent *a = arg;
	struct signalfd_siginfo si;

	while (read(a->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			agent_reload(a, "SIGHUP");
			agent_tracing_sync(a);
			agent_mtls_reload(a, "SIGHUP");
		} else if (si.ssi_signo == SIGUSR1) {
			if (a->ident.audit && !sl_audit_reopen(a->ident.audit))
				sl_info("audit log reopened", "path=%s", a->cfg.agent.audit_log);
		} else {
			sl_info("stopping; programs stay attached and maps pinned", "signal=%s",
				si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			sl_loop_stop(&a->loop);
		}
	}
}

/* Whether the config file holds the bytes applied last: a SIGHUP after an edit already applied
 * it, and the watcher's event for the same edit would only redo the work. A file that cannot be
 * read counts as changed (the reload reports why). */
static int config_unchanged(const struct agent *a)
{
	const char *step;
	char *text;
	size_t len;
	int same;

	if (!a->cfg_text || sl_config_read(a->config_path, &text, &len, &step))
		return 0;
	same = len == a->cfg_len && !memcmp(text, a->cfg_text, len);
	free(text);
	return same;
}

static void on_debounce(void *arg)
{
	struct agent *a = arg;

	sl_timer_drain(a->debouncefd);
	if (config_unchanged(a)) {
		sl_info("config file unchanged since it was applied; not reloading", "file=%s",
			a->config_path);
		return;
	}
	agent_reload(a, "file-changed");
	agent_tracing_sync(a);
}

/* Every second. */
static void on_tick(void *arg)
{
	struct agent *a = arg;

	sl_timer_drain(a->tickfd);
	agent_reap(a);
	agent_watch_ejections(a);
	agent_registry_tick(a);
	if (a->ident_on)
		sl_ident_tick(&a->ident, &a->eff);
	sl_http_run(a->http); /* also follows the monitors (cbs.ran) */
}

/* At most AGENT_RING_BUDGET records a wakeup: a flood of events leaves
 * the rest readable (level-triggered) for the next round, after the other
 * sources had their turn. */
static void on_ring(void *arg)
{
	struct agent *a = arg;
	int n;

	a->ring_left = AGENT_RING_BUDGET;
	n = ring_buffer__consume(a->events);
	if (n < 0 && n != AGENT_RING_SPENT)
		sl_warn("cannot read datapath events", "error=\"%s\"", strerror(-n));
}

static void on_health(void *arg)
{
	sl_health_dispatch(((struct agent *)arg)->health);
}

static void on_tc(void *arg)
{
	sl_tc_on_readable(((struct agent *)arg)->tc);
}

static void on_http_ran(void *arg)
{
	agent_sync_event_switch(arg);
}

/* The fds the loop serves, one source each. */
static int loop_sources(struct agent *a)
{
	struct sl_loop *l = &a->loop;
	struct agent_srcs *s = &a->src;
	int err;

	err = sl_loop_add(l, &s->sig, a->sigfd, on_signal, a);
	if (!err)
		err = sl_loop_add(l, &s->ino, a->inofd, on_inotify, a);
	if (!err)
		err = sl_loop_add(l, &s->tick, a->tickfd, on_tick, a);
	if (!err)
		err = sl_loop_add(l, &s->debounce, a->debouncefd, on_debounce, a);
	if (!err)
		err = sl_loop_add(l, &s->events, ring_buffer__epoll_fd(a->events), on_ring, a);
	if (!err && sl_tc_fd(a->tc) >= 0)
		err = sl_loop_add(l, &s->tc, sl_tc_fd(a->tc), on_tc, a);
	if (!err)
		err = sl_loop_add(l, &s->health, sl_health_fd(a->health), on_health, a);
	if (!err && a->etcd)
		err = sl_loop_add(l, &s->etcd, sl_etcd_fd(a->etcd), agent_on_etcd, a);
	if (!err)
		err = sl_http_watch(a->http, l);
	return err;
}

/* The signals the loop reads from its signalfd. */
static void loop_signals(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGHUP);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGUSR1);
}

/*
 * First thing in a run: the loop's signals are blocked, so that one sent
 * while the first config is still loading or applying waits for the
 * signalfd instead of killing the agent (SIGHUP's default action), and
 * every thread started later (etcd, libcurl's resolver) inherits the mask,
 * so that none of them takes a signal either. SIGPIPE is ignored.
 */
static int block_signals(void)
{
	sigset_t mask;

	loop_signals(&mask);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "sluiced: cannot block signals: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* The loop's own fds, and the ring buffer; sources are added later. */
static int loop_setup(struct agent *a)
{
	char copy[4096];
	sigset_t mask;

	snprintf(copy, sizeof(copy), "%s", a->config_path);
	snprintf(a->config_dir, sizeof(a->config_dir), "%s", dirname(copy));
	snprintf(copy, sizeof(copy), "%s", a->config_path);
	snprintf(a->config_base, sizeof(a->config_base), "%s", basename(copy));

	loop_signals(&mask);
	a->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a->inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	a->tickfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->debouncefd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->sigfd < 0 || a->inofd < 0 || a->tickfd < 0 || a->debouncefd < 0 ||
	    sl_loop_open(&a->loop))
		return -errno;
	/* Watch the directory: editors replace the file rather than write it. */
	if (inotify_add_watch(a->inofd, a->config_dir,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB) < 0)
		return -errno;
	if (sl_timer_arm(a->tickfd, 1000, 1000))
		return -errno;
	a->events = ring_buffer__new(a->dp.events_fd, agent_on_ring_event, a, NULL);
	return a->events ? 0 : -errno;
}

static void agent_close(struct agent *a)
{
	int *fds[] = {&a->sigfd, &a->inofd, &a->tickfd, &a->debouncefd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	sl_loop_close(&a->loop);
	ring_buffer__free(a->events);
	agent_tracing_stop(a); /* before the maps it reads */
	sl_http_stop(a->http);
	sl_tc_close(a->tc);
	sl_etcd_close(a->etcd);
	agent_mtls_stop(a); /* before the maps and the audit log its thread uses */
	sl_health_free(a->health);
	if (a->ident_on)
		sl_ident_close(&a->ident);
	free(a->probed);
	free(a->watched);
	agent_backends_free(a);
	sl_state_free(&a->applied_st); /* a start that failed before its first "config applied" */
	sl_dp_close(&a->dp);
	sl_config_free(&a->cfg);
	free(a->cfg_text);
	a->cfg_text = NULL;
	sl_config_free(&a->eff);
	sl_registry_free(&a->reg);
	agent_batch_free(a);
	free(a->retired);
}

/* TC flow programs on the interfaces agent.interfaces names. */
static int start_tc(struct agent *a)
{
	const char *globs[SL_MAX_INTERFACES];
	struct sl_problem e = {0};
	int err;

	for (size_t i = 0; i < a->cfg.agent.n_interfaces; i++)
		globs[i] = a->cfg.agent.interfaces[i];
	err = sl_tc_open(&a->tc, a->cfg.agent.bpffs, globs, a->cfg.agent.n_interfaces, &e);
	if (err)
		sl_error("cannot start TC flow metrics", "error=\"%s\"", e.msg);
	return err;
}

/* The threads of this process; -1 when /proc cannot tell. */
static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * Before any thread starts, the agent keeps only what the loop needs
 * (README, "Running it as a node agent", Privileges and After start):
 * capset(2) and PR_CAPBSET_DROP change the calling thread alone, and a
 * thread started later (etcd's worker, libcurl's resolver) inherits its
 * creator's sets. CAP_BPF: map updates and the Maglev tables an apply
 * creates. CAP_NET_ADMIN: TC filters on interfaces that appear later.
 * CAP_PERFMON: kept as the README's table lists it. CAP_SYS_ADMIN
 * (adopting TC programs by id) is needed only before: later, tc.c knows its
 * own programs by id. The agent stays uid 0, so PR_SET_KEEPCAPS is moot.
 */
static int drop_privileges(void)
{
	const uint64_t keep = 1ULL << CAP_BPF | 1ULL << CAP_NET_ADMIN | 1ULL << CAP_PERFMON;
	char why[256] = "", kept[128];
	int threads = count_threads(), err;

	if (threads > 1) {
		sl_error("cannot drop capabilities: other threads would keep them", "threads=%d",
			 threads);
		return -EBUSY;
	}
	err = sl_caps_keep_only(keep, why, sizeof(why));
	if (err) {
		sl_error("cannot drop capabilities", "error=\"%s\"", why);
		return err;
	}
	sl_caps_format(sl_caps_effective(), kept, sizeof(kept));
	sl_info("capabilities dropped", "kept=%s", kept);
	return 0;
}

/*
 * agent.state and the audit log's directory, when they exist, must be
 * root's and not writable by everyone: the agent trusts what it reads
 * there and writes what it logs there.
 */
static int check_dir(const char *key, const char *dir)
{
	struct stat st;

	if (stat(dir, &st)) {
		if (errno == ENOENT)
			return 0; /* made 0700 when first needed */
		sl_error("cannot check a directory", "key=%s dir=%s error=\"%s\"", key, dir,
			 strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		sl_error("not a directory; refusing it", "key=%s dir=%s", key, dir);
		return -ENOTDIR;
	}
	if (st.st_uid != 0) {
		sl_error("directory not owned by root; refusing it (chown root)",
			 "key=%s dir=%s uid=%u", key, dir, (unsigned int)st.st_uid);
		return -EPERM;
	}
	if (st.st_mode & S_IWOTH) {
		sl_error("directory writable by everyone; refusing it (chmod o-w)",
			 "key=%s dir=%s mode=%04o", key, dir, (unsigned int)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

static int check_dirs(const struct sl_config *cfg)
{
	char copy[sizeof(cfg->agent.audit_log)];

	snprintf(copy, sizeof(copy), "%s", cfg->agent.audit_log);
	if (check_dir("agent.state", cfg->agent.state))
		return -1;
	return cfg->agent.audit_log[0] ? check_dir("agent.audit_log", dirname(copy)) : 0;
}

/* The datapath attached or adopted. Backends in no live slot (retired by a
 * previous run, or left by an apply cut short) are retired now and reaped
 * after the grace period. Then what needs privileges: TC (adopting its
 * programs), the listeners, the loop's fds. An exit code, or -1 to go on. */
static int start_privileged(struct agent *a)
{
	const struct sl_http_cbs cbs = {
	    .metrics_snapshot = agent_metrics_snapshot,
	    .metrics_render = agent_metrics_render,
	    .metrics_drop = agent_metrics_drop,
	    .render_live = agent_render_live,
	    .api = agent_on_api_request,
	    .api_joined = agent_api_joined,
	    .api_flush = agent_api_flush,
	    .ran = on_http_ran,
	    .ctx = a,
	    .maps = &a->dp.maps,
	};
	struct sl_problem e = {0};
	struct sl_state st;
	uint32_t *dead = NULL;
	size_t n_dead = 0;
	char why[512] = "";
	int err;

	sl_log_hook_libbpf();
	err = sl_dp_open(&a->dp, &a->cfg, &e);
	if (err) {
		sl_error("cannot start the datapath", "error=\"%s\"", e.msg);
		return e.env ? EXIT_ENV : EXIT_CONFIG;
	}
	sl_info(a->dp.adopted ? "adopted the pinned datapath" : "datapath attached",
		"cgroup=%s bpffs=%s programs=%zu", a->dp.cgroup, a->dp.bpffs, a->dp.n_links);
	err = sl_maps_read_state(&a->dp.maps, &st);
	if (!err) {
		err = sl_maps_retire(&a->dp.maps, st.dead_be_ids, st.n_dead, &dead, &n_dead);
		if (!err)
			err = agent_track_retired(a, dead, n_dead);
		free(dead);
		sl_state_free(&st);
	}
	if (err) {
		sl_error("cannot apply the config", "error=\"%s\"", strerror(-err));
		return EXIT_CONFIG;
	}
	if (start_tc(a))
		return EXIT_ENV;
	err = sl_http_start(&a->http, &a->cfg, &cbs, why, sizeof(why));
	if (err) {
		sl_error("cannot start the HTTP endpoints", "error=\"%s\"", why);
		return EXIT_ENV;
	}
	err = loop_setup(a);
	if (err) {
		sl_error("cannot set up the event loop", "error=\"%s\"", strerror(-err));
		return EXIT_ENV;
	}
	return -1;
}

/* With the capabilities dropped: the registry (etcd's thread), the first
 * apply, probes, identities. An exit code, or -1 to go on. */
static int start_apply(struct agent *a)
{
	int err = agent_load_registry(a);

	if (!err && a->cfg.agent.n_etcd)
		err = agent_start_etcd(a);
	if (!err)
		err = agent_reconcile(a, &a->eff);
	if (err) {
		sl_error("cannot apply the config", "error=\"%s\"", strerror(-err));
		return EXIT_CONFIG;
	}
	a->health = sl_health_new(agent_on_health_change, a);
	if (!a->health) {
		sl_error("cannot start health checks", "error=\"%s\"", strerror(errno));
		return EXIT_ENV;
	}
	err = agent_sync_backends(a, &a->eff);
	if (err) {
		sl_error("cannot start health checks", "error=\"%s\"", strerror(-err));
		return EXIT_ENV;
	}
	sl_ident_init(&a->ident, &a->dp.maps, a->dp.settings_fd, &a->cfg);
	a->ident_on = 1;
	agent_sync_identities(a);
	agent_log_applied(a);
	/* The engine's thread inherits the capabilities, so it starts after the drop. */
	if (a->cfg.agent.mtls.on && agent_mtls_start(a))
		return EXIT_ENV;
	if (agent_tracing_start(a)) /* its exporter's thread too */
		return EXIT_ENV;
	a->reloads_ok++;
	a->events_on = -1;
	agent_sync_event_switch(a); /* off until a monitor attaches */
	err = loop_sources(a);
	if (err) {
		sl_error("cannot set up the event loop", "error=\"%s\"", strerror(-err));
		return EXIT_ENV;
	}
	return -1;
}

static int start(struct agent *a)
{
	char hp[SL_HOSTPORT_LEN] = "";
	int rc;

	if (geteuid() != 0) {
		fprintf(stderr, "sluiced: must be started as root (it loads BPF programs "
				"and attaches them to cgroups)\n");
		return EXIT_ENV;
	}
	if (agent_resolve_cgroup(&a->cfg)) {
		fprintf(stderr, "sluiced: no cgroup v2 mount in /proc/mounts and no "
				"agent.cgroup set\n");
		return EXIT_ENV;
	}
	if (check_dirs(&a->cfg))
		return EXIT_ENV;
	if (a->cfg.agent.mtls.on)
		agent_raise_nofile(); /* while CAP_SYS_RESOURCE may raise the hard limit */
	rc = start_privileged(a);
	if (rc < 0)
		rc = drop_privileges() ? EXIT_ENV : start_apply(a);
	if (rc >= 0)
		return rc;
	if (a->cfg.agent.metrics_on)
		sl_format_hostport(&a->cfg.agent.metrics, hp, sizeof(hp));
	sl_info("ready", "services=%zu metrics=%s api=%s node=%s zone=%s", a->cfg.n_services, hp,
		a->cfg.agent.api, sl_agent_node(&a->cfg.agent),
		a->cfg.agent.zone[0] ? a->cfg.agent.zone : "none");
	/* systemd (Type=notify): the datapath is attached, the config applied. */
	rc = sl_notifyf("READY=1\nSTATUS=serving %zu services", a->cfg.n_services);
	if (rc)
		sl_warn("cannot notify the service manager", "error=\"%s\"", strerror(-rc));
	return sl_loop_run(&a->loop) ? EXIT_ENV : EXIT_OK;
}

/* --teardown: TC filters first, they are found through the pins. */
static int teardown(const struct sl_config *cfg)
{
	struct sl_problem e = {0};
	int rc = sl_tc_teardown(cfg->agent.bpffs, &e) || sl_dp_teardown(cfg->agent.bpffs, &e)
		     ? (e.env ? EXIT_ENV : EXIT_CONFIG)
		     : EXIT_OK;

	if (rc)
		sl_error("teardown failed", "error=\"%s\"", e.msg);
	else
		sl_info("torn down: programs detached, pins removed", "bpffs=%s", cfg->agent.bpffs);
	return rc;
}

enum mode { MODE_RUN, MODE_CHECK, MODE_TEARDOWN };

/* The options; an exit code when done (--help, --version, a bad option), or -1. */
static int parse_options(int argc, char **argv, struct agent *a, enum mode *mode)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'C'},
	    {"teardown", no_argument, NULL, 'T'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"log-format", required_argument, NULL, 'F'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	enum sl_log_level level;
	enum sl_log_format format;
	struct sl_features feats;
	int check = 0, down = 0, format_set = 0, opt;

	while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			a->config_path = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'T':
			down = 1;
			break;
		case 'l':
			if (sl_log_parse_level(optarg, &level)) {
				fprintf(stderr, "sluiced: --log-level: unknown level '%s'\n",
					optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			sl_log_set_level(level);
			break;
		case 'F':
			if (sl_log_parse_format(optarg, &format)) {
				fprintf(stderr,
					"sluiced: --log-format: want logfmt or journal, not '%s'\n",
					optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			sl_log_set_format(format);
			format_set = 1;
			break;
		case 'V':
			sl_features_probe(&feats);
			sl_version_print(stdout, "sluiced", &feats);
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (check && down)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!format_set && sl_log_stderr_is_journal())
		sl_log_set_format(SL_LOG_FMT_JOURNAL);
	*mode = check ? MODE_CHECK : down ? MODE_TEARDOWN : MODE_RUN;
	return -1;
}

int main(int argc, char **argv)
{
	struct agent a = {.config_path = DEFAULT_CONFIG,
			  .loop.epfd = -1,
			  .sigfd = -1,
			  .inofd = -1,
			  .tickfd = -1,
			  .debouncefd = -1};
	struct sl_problems d = {0};
	enum mode mode = MODE_RUN;
	int rc;

	a.dp.cgroup_fd = -1;
	rc = parse_options(argc, argv, &a, &mode);
	if (rc >= 0)
		return rc;
	if (mode == MODE_RUN && block_signals())
		return EXIT_ENV;
	if (sl_config_load_text(a.config_path, &a.cfg, &d, &a.cfg_text, &a.cfg_len)) {
		free(a.cfg_text);
		agent_print_problems(&d, 0);
		sl_problems_free(&d);
		return EXIT_CONFIG;
	}
	if (mode != MODE_RUN) {
		free(a.cfg_text);
		a.cfg_text = NULL;
	}
	if (mode == MODE_CHECK) {
		sl_config_free(&a.cfg);
		printf("%s: ok\n", a.config_path);
		return EXIT_OK;
	}
	if (mode == MODE_TEARDOWN) {
		rc = teardown(&a.cfg);
		sl_config_free(&a.cfg);
		return rc;
	}
	rc = start(&a);
	sl_notify("STOPPING=1");
	agent_close(&a);
	return rc;
}

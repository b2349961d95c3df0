/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluicectl's shared parts: the context every command gets, exit codes, the
 * output helpers, and the do_* functions each command file exposes to the
 * command table in main.c (one file per command group, as bpftool does).
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <stdio.h>

#include <jansson.h>

#include "maps.h"
#include "plan.h"

#define DEFAULT_BPFFS "/sys/fs/bpf/sluice"
#define DEFAULT_API   "/run/sluice/sluiced.sock"

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
};

/* main()'s context: the global options. */
struct cli {
	const char *bpffs;
	const char *api;
	int json; /* -o json */
	int dot;  /* -o dot (graph only) */
};

/* An error: {"error": ...} on stdout for -o json, a line on stderr else. Returns code. */
int fail(struct cli *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Print o (for -o json), indented, and free it. */
int emit(json_t *o);

/*
 * The pinned maps at --bpffs, opened read-only, and with st, the state read
 * from them with the services sorted by name. 0, or the exit code after the
 * error was printed (nothing is left open then).
 */
int cli_open_state(struct cli *c, struct sl_maps *m, struct sl_state *st);

/* status.c */
int do_status(struct cli *c, int argc, char **argv);
/* services.c: services, identities, policy */
int do_services(struct cli *c, int argc, char **argv);
int do_identities(struct cli *c, int argc, char **argv);
int do_policy(struct cli *c, int argc, char **argv);
/* flows.c */
int do_flows(struct cli *c, int argc, char **argv);
/* monitor.c */
int do_monitor(struct cli *c, int argc, char **argv);
/* api_client.c: the agent's API */
int do_register(struct cli *c, int argc, char **argv);
int do_deregister(struct cli *c, int argc, char **argv);
int do_drain(struct cli *c, int argc, char **argv);
int do_undrain(struct cli *c, int argc, char **argv);
/* graph.c */
int do_graph(struct cli *c, int argc, char **argv);

#endif /* SLUICE_CLI_H */

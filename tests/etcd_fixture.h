/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A real etcd for the etcd client's tests (test_etcd.c, test_etcd_tls.c): on 127.0.0.1, free
 * client and peer ports, a temporary directory that a janitor removes even when the test
 * process dies (etcd itself dies of PR_SET_PDEATHSIG). With tls, the directory holds a small
 * PKI made with the openssl CLI (etf_pki) and etcd serves https:// with --client-cert-auth.
 * And what a test has seen of a client (struct view).
 *
 * No assert in here: each helper returns, and the test decides.
 */
#ifndef SLUICE_TEST_ETCD_FIXTURE_H
#define SLUICE_TEST_ETCD_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "etcd.h"

struct etf {
	pid_t pid; /* etcd; -1: not running */
	char dir[64];
	char url[64]; /* the client URL */
	int cport, pport;
	int tls;
	const char *extra[4]; /* more etcd flags, NULL-terminated */
	pid_t janitor_pid;
	int janitor_fd;
};

uint64_t etf_ms(void);
void etf_sleep_ms(int ms);
int etf_in_path(const char *name);
/* Two distinct free TCP ports on 127.0.0.1. 0 or -1. */
int etf_free_ports(int *a, int *b);
/* Run argv with stdout and stderr to log (NULL: /dev/null); it dies with this process. */
pid_t etf_spawn(char *const argv[], const char *log);
/* Run argv to its end: its exit status, or -1. */
int etf_run(char *const argv[]);

/* The directory, its janitor and the ports (with tls: and the PKI). 0, or -1. */
int etf_init(struct etf *f, int tls);
/* Start etcd; 0 once /health answers (within 10 s), else -1. */
int etf_start(struct etf *f);
void etf_kill(struct etf *f);
/* Kill etcd, remove the directory, let the janitor go. */
void etf_fini(struct etf *f);
void etf_set_client_port(struct etf *f, int port);
/* dir/name in buf. */
const char *etf_path(const struct etf *f, const char *name, char *buf, size_t len);
/* etcdctl against f (with tls: as root, by root's certificate) with args (NULL-terminated);
 * its exit status. */
int etf_ctl(const struct etf *f, const char *const *args);

/*
 * The PKI, in dir/pki (EC P-256, 1 day), each NAME as NAME.pem + NAME.key:
 *   ca, ca2        two CAs; ca2 is "another CA";
 *   server         by ca, for etcd: IP SAN 127.0.0.1, server and client auth (the gateway
 *                  connects to etcd's gRPC with it);
 *   root           by ca, CN=root: etcdctl as etcd's root user (gRPC maps the CN);
 *   node-a, reader by ca, no CN (O=sluice, OU=the name): a node and a read-only client;
 *   cn-node-a      by ca, CN=node-a: refused by etcd's gateway once auth is on;
 *   intruder       by ca2, the subject of node-a;
 *   enc            by ca, its key encrypted (passphrase "x");
 * and node-a.pw, reader.pw: the passwords of the etcd users node-a and reader.
 */
int etf_pki(const struct etf *f);
/* dir/pki/name in buf. */
const char *etf_pki_path(const struct etf *f, const char *name, char *buf, size_t len);

/* What a test has seen of a client: the last snapshot taken, and connectedness. */
struct view {
	struct sl_etcd_kv *kvs;
	size_t n;
	int connected;
	int takes; /* snapshots taken */
};

void view_free(struct view *v);
const struct sl_etcd_kv *view_get(const struct view *v, const char *key);
/* want: "key=value" strings, NULL-terminated: the exact snapshot. */
int view_is(const struct view *v, const char *const *want);
/* sl_etcd_take into v: its result. */
int view_take(struct sl_etcd *c, struct view *v);
/* Wait (driven by the eventfd, as the agent would be) until connected == conn (unless
 * conn < 0) and the snapshot is want (unless NULL). 0, or -ETIMEDOUT. */
int wait_for(struct sl_etcd *c, struct view *v, int conn, const char *const *want, int timeout_ms);

#define W(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE   ((const char *const[]){NULL})

#endif /* SLUICE_TEST_ETCD_FIXTURE_H */

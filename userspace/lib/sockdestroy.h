/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Closing the sockets stuck on dead backends: bpf/sock_destroy.bpf.c's
 * socket iterators, which call bpf_sock_destroy() (kernel 6.5+). Where the
 * kernel lacks the kfunc, nothing is loaded and nothing is ever closed.
 */
#ifndef SLUICE_SOCKDESTROY_H
#define SLUICE_SOCKDESTROY_H

#include <stddef.h>
#include <stdint.h>

#include "parse.h"

struct sl_sd;

/* A dead backend of one service, as the sockets' translations name it. */
struct sl_sd_target {
	struct sl_sockaddr backend;
	struct sl_sockaddr frontend; /* the service's (an IPv4 one for a v4-mapped caller) */
	uint8_t proto;		     /* enum sluice_proto: which sockets are looked at */
	uint64_t closed;	     /* out: sockets closed */
};

/*
 * Load and attach the iterators, sharing sock_lb's socket storage (the two
 * fds), for the sockets under the cgroup with this id. Logs what it did.
 * 0; -EOPNOTSUPP when the kernel lacks bpf_sock_destroy (*out stays NULL);
 * another -errno when the load failed.
 */
int sl_sd_open(struct sl_sd **out, int revnat_fd, int sk_backend_fd, unsigned long long cgroup_id);
/* Close the served sockets of the agent's network namespace whose peer is
 * one of the targets; fill each target's 'closed'. 0 or -errno. */
int sl_sd_run(struct sl_sd *sd, struct sl_sd_target *t, size_t n);
void sl_sd_free(struct sl_sd *sd);

#endif /* SLUICE_SOCKDESTROY_H */

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's one epoll loop. Each source is a fd and the callback that
 * serves it, carried in epoll_event.data.ptr: adding a source is one
 * sl_loop_add() call, and a fd nobody added is never served by mistake.
 */
#ifndef SLUICE_AGENT_LOOP_H
#define SLUICE_AGENT_LOOP_H

#include <stdint.h>

/* A source: called when fd is readable. The caller owns the storage, which
 * must outlive the loop. */
struct sl_loop_src {
	int fd;
	void (*ready)(void *ctx);
	void *ctx;
};

struct sl_loop {
	int epfd;
	int running;
};

/* 0 or -errno. */
int sl_loop_open(struct sl_loop *l);
/* Fill src and watch fd for readability (level-triggered). 0 or -errno. */
int sl_loop_add(struct sl_loop *l, struct sl_loop_src *src, int fd, void (*ready)(void *ctx),
		void *ctx);
/* Serve the sources until sl_loop_stop(). 0, or -errno when epoll_wait fails. */
int sl_loop_run(struct sl_loop *l);
void sl_loop_stop(struct sl_loop *l);
void sl_loop_close(struct sl_loop *l);

/* A timerfd: first expiry after first_ms, then every every_ms (0: once). 0 or -errno. */
int sl_timer_arm(int fd, uint64_t first_ms, uint64_t every_ms);
/* Read a timerfd's expirations, so that it stops being readable. */
void sl_timer_drain(int fd);

#endif /* SLUICE_AGENT_LOOP_H */

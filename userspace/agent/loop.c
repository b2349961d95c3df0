// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

/* Events taken per epoll_wait: the ready sources beyond it come next round. */
#define LOOP_BATCH 8

int sl_loop_open(struct sl_loop *l)
{
	l->running = 0;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? -errno : 0;
}

int sl_loop_add(struct sl_loop *l, struct sl_loop_src *src, int fd, void (*ready)(void *ctx),
		void *ctx)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = src};

	src->fd = fd;
	src->ready = ready;
	src->ctx = ctx;
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int sl_loop_run(struct sl_loop *l)
{
	struct epoll_event evs[LOOP_BATCH];

	l->running = 1;
	while (l->running) {
		int n = epoll_wait(l->epfd, evs, LOOP_BATCH, -1);

		if (n < 0) {
			int err = errno;

			if (err == EINTR)
				continue;
			sl_error("epoll_wait failed", "error=\"%s\"", strerror(err));
			return -err;
		}
		for (int i = 0; i < n; i++) {
			struct sl_loop_src *src = evs[i].data.ptr;

			src->ready(src->ctx);
		}
	}
	return 0;
}

void sl_loop_stop(struct sl_loop *l)
{
	l->running = 0;
}

void sl_loop_close(struct sl_loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

int sl_timer_arm(int fd, uint64_t first_ms, uint64_t every_ms)
{
	struct itimerspec its = {
	    .it_value = {.tv_sec = (time_t)(first_ms / 1000),
			 .tv_nsec = (long)(first_ms % 1000) * 1000000},
	    .it_interval = {.tv_sec = (time_t)(every_ms / 1000),
			    .tv_nsec = (long)(every_ms % 1000) * 1000000},
	};

	return timerfd_settime(fd, 0, &its, NULL) ? -errno : 0;
}

void sl_timer_drain(int fd)
{
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		sl_warn("timer read failed", "error=\"%s\"", strerror(errno));
}

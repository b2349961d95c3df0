// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Moving a tunnel's bytes (tunnel_int.h): up = plain -> TLS, down = TLS -> plain. A direction
 * whose TLS key is in the kernel moves through a pipe with splice(); the other moves through a
 * 64 KiB buffer with SSL_read/SSL_write. A source is read only while its direction has room,
 * so a slow destination stops its source (backpressure), and one pump call moves at most
 * TUN_PUMP_ROUNDS rounds before the tunnel goes to the back of the run queue.
 *
 * Ends: a FIN from the plain side becomes close_notify + shutdown(SHUT_WR) on the TLS side; a
 * close_notify becomes shutdown(SHUT_WR) on the plain side; the tunnel closes once both
 * directions have ended. Any error, a reset, or a TLS stream cut without close_notify aborts
 * the tunnel (tun_abort: resets on both sides).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "tunnel_int.h"

#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
#define IO_TRIES     8 /* syscalls per operation per round */

static const char *plain_name(const struct tun *u)
{
	return u->dir == SL_TUNNEL_OUTBOUND ? "caller" : "backend";
}

static int flow_buf(struct sl_tunnel *t, struct tun_flow *f)
{
	if (!f->buf)
		f->buf = t->n_spare ? t->spare[--t->n_spare] : malloc(TUN_BUF_SIZE);
	return f->buf ? 0 : -ENOMEM;
}

/* f's buffer back to the engine's spares, or to the heap when there are enough. */
static void flow_buf_put(struct sl_tunnel *t, struct tun_flow *f)
{
	if (f->buf && t->n_spare < TUN_SPARE_BUFS)
		t->spare[t->n_spare++] = f->buf;
	else
		free(f->buf);
	f->buf = NULL;
	f->off = f->len = 0;
}

/* kTLS in this direction: a pipe to splice through (0), or -errno (then use a buffer). */
static int flow_pipe(struct tun_flow *f)
{
	if (pipe2(f->pipe, O_NONBLOCK | O_CLOEXEC))
		return -errno;
	return 0;
}

/* An empty buffer goes back while its flow waits: idle tunnels cost no buffers. */
static void flow_idle(struct sl_tunnel *t, struct tun_flow *f)
{
	if (f->buf && f->off == f->len)
		flow_buf_put(t, f);
}

int tun_relay_start(struct tun *u)
{
	struct sl_tunnel_stats *st = &u->t->st;

	u->up.splice = BIO_get_ktls_send(SSL_get_wbio(u->ssl)) && !flow_pipe(&u->up);
	u->down.splice = BIO_get_ktls_recv(SSL_get_rbio(u->ssl)) && !flow_pipe(&u->down);
	if (u->up.splice)
		tun_count(&st->ktls_tx[u->dir], 1);
	if (u->down.splice)
		tun_count(&st->ktls_rx[u->dir], 1);
	return 0;
}

void tun_relay_free(struct tun *u)
{
	struct tun_flow *fl[2] = {&u->up, &u->down};

	for (int i = 0; i < 2; i++) {
		flow_buf_put(u->t, fl[i]);
		for (int j = 0; j < 2; j++)
			if (fl[i]->pipe[j] >= 0) {
				close(fl[i]->pipe[j]);
				fl[i]->pipe[j] = -1;
			}
	}
}

/* up, source side: the plain socket into the pipe or the buffer. */
static void up_read(struct tun *u, int *progress)
{
	struct tun_flow *f = &u->up;
	int fd = u->plain.src.fd;
	ssize_t n;

	for (int i = 0; i < IO_TRIES && !f->eof && !f->src_block; i++) {
		if (f->splice) {
			if (f->in_pipe >= TUN_BUF_SIZE)
				return;
			n = splice(fd, NULL, f->pipe[1], NULL, TUN_BUF_SIZE - f->in_pipe,
				   SPLICE_FLAGS);
		} else {
			if (f->len >= TUN_BUF_SIZE)
				return;
			if (flow_buf(u->t, f))
				return tun_abort(u, "out of memory");
			n = recv(fd, f->buf + f->len, TUN_BUF_SIZE - f->len, 0);
		}
		if (n > 0) {
			*(f->splice ? &f->in_pipe : &f->len) += (size_t)n;
			*progress = 1;
		} else if (n == 0) {
			f->eof = 1;
			*progress = 1;
		} else if (errno == EAGAIN) {
			/* with data in the pipe, EAGAIN may mean a full pipe: try again once it
			 * drained rather than wait for an edge that may not come */
			if (!f->in_pipe)
				f->src_block = EPOLLIN;
			return;
		} else if (errno != EINTR) {
			return tun_abort(u, "%s: %s", plain_name(u), strerror(errno));
		}
	}
}

/* up, destination side: the pipe or the buffer into TLS. */
static void up_write(struct tun *u, int *progress)
{
	struct tun_flow *f = &u->up;
	int r, e;

	for (int i = 0; i < IO_TRIES && !f->dst_block; i++) {
		if (f->splice && f->in_pipe) {
			ssize_t n =
			    splice(f->pipe[0], NULL, u->tls.src.fd, NULL, f->in_pipe, SPLICE_FLAGS);
			if (n < 0 && errno == EAGAIN) {
				f->dst_block = EPOLLOUT;
				return;
			}
			if (n <= 0)
				return tun_abort(u, "peer: %s",
						 n ? strerror(errno) : "splice gave 0");
			f->in_pipe -= (size_t)n;
			r = (int)n;
		} else if (!f->splice && f->off < f->len) {
			ERR_clear_error();
			r = SSL_write(u->ssl, f->buf + f->off, (int)(f->len - f->off));
			if (r <= 0) {
				e = SSL_get_error(u->ssl, r);
				if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
					return tun_abort(u, "peer: %s", tun_ssl_why(u->ssl, r, e));
				f->dst_block = e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN;
				return;
			}
			f->off += (size_t)r;
			if (f->off == f->len)
				f->off = f->len = 0;
		} else {
			return;
		}
		f->bytes += (uint64_t)r;
		tun_count(&u->t->st.tx_bytes[u->dir], (uint64_t)r);
		*progress = 1;
	}
}

/* up, end: the plain side's FIN becomes close_notify, then a TCP half-close. */
static void up_end(struct tun *u, int *progress)
{
	struct tun_flow *f = &u->up;
	int r, e;

	if (!f->eof || f->done || f->in_pipe || f->off != f->len || f->dst_block)
		return;
	ERR_clear_error();
	r = SSL_shutdown(u->ssl);
	if (r < 0) {
		e = SSL_get_error(u->ssl, r);
		if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
			return tun_abort(u, "peer: close_notify: %s", tun_ssl_why(u->ssl, r, e));
		f->dst_block = e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN;
		return;
	}
	if (shutdown(u->tls.src.fd, SHUT_WR) && errno != ENOTCONN)
		return tun_abort(u, "peer: shutdown: %s", strerror(errno));
	f->done = 1;
	*progress = 1;
}

void tun_relay_up(struct tun *u, int *progress)
{
	if (u->up.done)
		return;
	up_read(u, progress);
	if (u->state != TS_DEAD)
		up_write(u, progress);
	if (u->state != TS_DEAD)
		up_end(u, progress);
}

enum { SPL_MORE, SPL_STOP, SPL_SSL };

/* down, source side through splice (kTLS receive). SPL_SSL: read with SSL_read this time (a
 * non-data record is next, or OpenSSL holds bytes already). */
static int down_splice(struct tun *u, int *progress)
{
	struct tun_flow *f = &u->down;
	ssize_t n;

	if (f->ctl || f->off != f->len || SSL_has_pending(u->ssl))
		return SPL_SSL;
	if (f->in_pipe >= TUN_BUF_SIZE)
		return SPL_STOP;
	n = splice(u->tls.src.fd, NULL, f->pipe[1], NULL, TUN_BUF_SIZE - f->in_pipe, SPLICE_FLAGS);
	if (n > 0) {
		f->in_pipe += (size_t)n;
		*progress = 1;
		return SPL_MORE;
	}
	if (n == 0) {
		tun_abort(u, "peer: the TLS stream ended without close_notify");
	} else if (errno == EAGAIN) {
		if (!f->in_pipe) /* else maybe a full pipe: retried once it drained */
			f->src_block = EPOLLIN;
	} else if (errno == EINVAL || errno == EIO) {
		/* splice carries data records only: an alert (close_notify) or a handshake
		 * message is next */
		f->ctl = 1;
		return SPL_SSL;
	} else if (errno != EINTR) {
		tun_abort(u, "peer: %s", strerror(errno));
	}
	return SPL_STOP;
}

/* down, source side: TLS into the pipe (splice) or the buffer (SSL_read). */
static void down_read(struct tun *u, int *progress)
{
	struct tun_flow *f = &u->down;
	int r, e, s;

	for (int i = 0; i < IO_TRIES && !f->eof && !f->src_block; i++) {
		s = f->splice ? down_splice(u, progress) : SPL_SSL;
		if (s == SPL_MORE)
			continue;
		if (s == SPL_STOP || f->in_pipe) /* SSL_read's bytes must not overtake the pipe's */
			return;
		if (flow_buf(u->t, f))
			return tun_abort(u, "out of memory");
		if (f->len >= TUN_BUF_SIZE)
			return;
		ERR_clear_error();
		r = SSL_read(u->ssl, f->buf + f->len, (int)(TUN_BUF_SIZE - f->len));
		if (r > 0) {
			f->len += (size_t)r;
			f->ctl = 0;
			*progress = 1;
			continue;
		}
		e = SSL_get_error(u->ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN) {
			f->eof = 1;
			*progress = 1;
		} else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			f->src_block = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
		} else {
			/* includes a stream cut without close_notify: never pass on a truncated
			 * stream as a complete one */
			return tun_abort(u, "peer: %s", tun_ssl_why(u->ssl, r, e));
		}
		return;
	}
}

/* down, destination side: the pipe or the buffer into the plain socket. */
static void down_write(struct tun *u, int *progress)
{
	struct tun_flow *f = &u->down;
	int fd = u->plain.src.fd;
	ssize_t n;

	for (int i = 0; i < IO_TRIES && !f->dst_block; i++) {
		if (f->in_pipe)
			n = splice(f->pipe[0], NULL, fd, NULL, f->in_pipe, SPLICE_FLAGS);
		else if (f->off < f->len)
			n = send(fd, f->buf + f->off, f->len - f->off, MSG_NOSIGNAL);
		else
			return;
		if (n < 0 && errno == EAGAIN) {
			f->dst_block = EPOLLOUT;
			return;
		}
		if (n <= 0)
			return tun_abort(u, "%s: %s", plain_name(u),
					 n ? strerror(errno) : "wrote nothing");
		if (f->in_pipe) {
			f->in_pipe -= (size_t)n;
		} else {
			f->off += (size_t)n;
			if (f->off == f->len)
				f->off = f->len = 0;
		}
		f->bytes += (uint64_t)n;
		tun_count(&u->t->st.rx_bytes[u->dir], (uint64_t)n);
		*progress = 1;
	}
}

/* down, end: close_notify becomes a TCP half-close towards the plain side. */
static void down_end(struct tun *u, int *progress)
{
	struct tun_flow *f = &u->down;

	if (!f->eof || f->done || f->in_pipe || f->off != f->len)
		return;
	if (shutdown(u->plain.src.fd, SHUT_WR) && errno != ENOTCONN)
		return tun_abort(u, "%s: shutdown: %s", plain_name(u), strerror(errno));
	f->done = 1;
	*progress = 1;
}

void tun_relay_pump(struct tun *u)
{
	for (int i = 0; i < TUN_PUMP_ROUNDS; i++) {
		int progress = 0;

		tun_relay_up(u, &progress);
		if (u->state == TS_DEAD)
			return;
		if (!u->down.done) {
			down_read(u, &progress);
			if (u->state != TS_DEAD)
				down_write(u, &progress);
			if (u->state != TS_DEAD)
				down_end(u, &progress);
			if (u->state == TS_DEAD)
				return;
		}
		if (u->up.done && u->down.done)
			return tun_finish(u);
		if (!progress) {
			flow_idle(u->t, &u->up);
			flow_idle(u->t, &u->down);
			return;
		}
	}
	tun_runq_add(u); /* more to do: after the others had their turn */
}

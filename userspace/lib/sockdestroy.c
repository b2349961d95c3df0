// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The socket iterators of bpf/sock_destroy.bpf.c: open -> set the cgroup ->
 * reuse sock_lb's socket storage -> load -> attach (iterator links, not
 * pinned: they live as long as the agent). A run lists the dead backends in
 * sluice_dead, reads each iterator that has targets once, and reads back
 * what each entry closed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <sluice/abi.h>

#include "sock_destroy.skel.h"

#include "kfeatures.h"
#include "log.h"
#include "sockdestroy.h"

struct sl_sd {
	struct sock_destroy *skel;
	struct bpf_link *udp, *tcp;
};

void sl_sd_free(struct sl_sd *sd)
{
	if (!sd)
		return;
	bpf_link__destroy(sd->udp);
	bpf_link__destroy(sd->tcp);
	sock_destroy__destroy(sd->skel);
	free(sd);
}

static int sd_load(struct sl_sd *sd, int revnat_fd, int sk_backend_fd, unsigned long long cgroup_id)
{
	int err;

	sd->skel = sock_destroy__open();
	if (!sd->skel)
		return -errno;
	sd->skel->rodata->sd_cgroup_id = cgroup_id;
	err = bpf_map__reuse_fd(sd->skel->maps.sluice_revnat, revnat_fd);
	if (!err)
		err = bpf_map__reuse_fd(sd->skel->maps.sluice_sk_backend, sk_backend_fd);
	if (!err)
		err = sock_destroy__load(sd->skel);
	if (err)
		return err;
	sd->udp = bpf_program__attach_iter(sd->skel->progs.sluice_sd_udp, NULL);
	if (!sd->udp)
		return -errno;
	sd->tcp = bpf_program__attach_iter(sd->skel->progs.sluice_sd_tcp, NULL);
	return sd->tcp ? 0 : -errno;
}

int sl_sd_open(struct sl_sd **out, int revnat_fd, int sk_backend_fd, unsigned long long cgroup_id)
{
	struct sl_sd *sd;
	int err;

	*out = NULL;
	if (sl_kfunc_exists("bpf_sock_destroy") <= 0) {
		sl_warn("the kernel lacks bpf_sock_destroy (6.5+): connected UDP sockets stay on "
			"a removed or unhealthy backend until the application reconnects, and "
			"close_on_removal closes nothing");
		return -EOPNOTSUPP;
	}
	sd = calloc(1, sizeof(*sd));
	if (!sd)
		return -ENOMEM;
	err = sd_load(sd, revnat_fd, sk_backend_fd, cgroup_id);
	if (err) {
		sl_warn("cannot load the socket iterators: sockets on dead backends stay open",
			"object=sock_destroy error=\"%s\"", strerror(-err));
		sl_sd_free(sd);
		return err;
	}
	sl_info("sockets on dead backends are closed with bpf_sock_destroy", "cgroup_id=%llu",
		cgroup_id);
	*out = sd;
	return 0;
}

static void sd_key(struct sluice_dead_key *k, const struct sl_sd_target *t)
{
	memset(k, 0, sizeof(*k));
	k->be_addr = t->backend.addr;
	k->fe_addr = t->frontend.addr;
	k->be_port = htons(t->backend.port);
	k->fe_port = htons(t->frontend.port);
	k->family = t->backend.family;
	k->proto = t->proto;
}

/* Read an iterator once: its program runs on every socket of this netns. */
static int sd_iterate(struct bpf_link *link)
{
	char buf[64];
	ssize_t n;
	int fd = bpf_iter_create(bpf_link__fd(link));

	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, sizeof(buf));
	while (n > 0 || (n < 0 && errno == EINTR));
	n = n < 0 ? -errno : 0;
	close(fd);
	return (int)n;
}

/* One batch of at most SLUICE_DEAD_MAX targets. */
static int sd_batch(struct sl_sd *sd, struct sl_sd_target *t, size_t n)
{
	int fd = bpf_map__fd(sd->skel->maps.sluice_dead), err = 0, udp = 0, tcp = 0;
	struct sluice_dead_key k;
	uint64_t zero = 0, closed;
	size_t i;

	for (i = 0; i < n && !err; i++) {
		sd_key(&k, &t[i]);
		if (bpf_map_update_elem(fd, &k, &zero, BPF_ANY))
			err = -errno;
		udp |= t[i].proto == SLUICE_PROTO_UDP;
		tcp |= t[i].proto == SLUICE_PROTO_TCP;
	}
	if (!err && udp)
		err = sd_iterate(sd->udp);
	if (!err && tcp)
		err = sd_iterate(sd->tcp);
	for (size_t j = 0; j < i; j++) {
		sd_key(&k, &t[j]);
		if (!bpf_map_lookup_elem(fd, &k, &closed))
			t[j].closed += closed;
		bpf_map_delete_elem(fd, &k);
	}
	return err;
}

int sl_sd_run(struct sl_sd *sd, struct sl_sd_target *t, size_t n)
{
	int err = 0;

	if (!sd)
		return -EOPNOTSUPP;
	for (size_t i = 0; i < n && !err; i += SLUICE_DEAD_MAX)
		err = sd_batch(sd, t + i, n - i < SLUICE_DEAD_MAX ? n - i : SLUICE_DEAD_MAX);
	return err;
}

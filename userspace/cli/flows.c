// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `sluicectl flows`: the flow table the TC programs keep, with the service each flow is to. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "tc.h"

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

/* One table row from flow_json()'s object; the header before the first. */
static void flow_row(const json_t *o, const struct sl_svc_state *svc, int first)
{
	if (first)
		printf("%-5s %-10s %-44s %-44s %-14s %-11s %9s %9s %11s %11s %8s\n", "PROTO",
		       "IFACE", "LOCAL", "REMOTE", "SERVICE", "STATE", "PKTS_OUT", "PKTS_IN",
		       "BYTES_OUT", "BYTES_IN", "AGE_S");
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
}

/* The flow table pinned at --bpffs, read whole. 0, or the exit code after the error. */
static int read_flows(struct cli *c, struct sl_tc_flow_entry **flows, size_t *n)
{
	int if_fd = -1, flows_fd = -1, err;

	err = sl_tc_open_pinned(c->bpffs, 1, &if_fd, &flows_fd);
	if (err == -ENOENT)
		return fail(c, EXIT_FAIL, "no TC flow table is pinned at %s (set agent.interfaces)",
			    c->bpffs);
	if (err)
		return fail(c, EXIT_FAIL, "open the flow table in %s: %s", c->bpffs,
			    strerror(-err));
	err = sl_tc_read_flows(flows_fd, flows, n);
	close(if_fd);
	close(flows_fd);
	if (err)
		return fail(c, EXIT_FAIL, "read the flow table: %s", strerror(-err));
	return 0;
}

int do_flows(struct cli *c, int argc, char **argv)
{
	const char *only = NULL;
	struct sl_tc_flow_entry *flows = NULL;
	struct sl_state st = {0};
	struct sl_maps m;
	json_t *arr, *o;
	size_t n = 0, shown = 0;
	uint64_t now;
	int err;

	if (argc == 3 && !strcmp(argv[1], "--service"))
		only = argv[2];
	else if (argc != 1)
		return fail(c, EXIT_USAGE, "usage: flows [--service NAME]");
	err = read_flows(c, &flows, &n);
	if (err)
		return err;
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
	now = sl_mono_ns();
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
		flow_row(o, svc, shown == 1);
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

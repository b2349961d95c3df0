// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `sluicectl services`, `identities` and `policy`: what the pinned maps hold. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include "cli.h"
#include "config.h"
#include "report.h"

/* The table is printed from the same JSON object that -o json prints. */
static void service_table(const struct sl_svc_state *s, json_t *o)
{
	json_t *bes = json_object_get(o, "backends"), *rej = json_object_get(o, "rejected"), *b;
	size_t i;

	printf("%-20s %-28s %-4s %-12s backends=%zu active=%lld rejected: no_backend=%lld "
	       "circuit_breaker=%lld rate_limit=%lld\n",
	       s->name, json_string_value(json_object_get(o, "frontend")), sl_proto_name(s->proto),
	       sl_lb_name(s->lb), json_array_size(bes),
	       json_integer_value(json_object_get(o, "active_connections")),
	       json_integer_value(json_object_get(rej, "no_backend")),
	       json_integer_value(json_object_get(rej, "circuit_breaker")),
	       json_integer_value(json_object_get(rej, "rate_limit")));
	json_array_foreach(bes, i, b)
	{
		const char *subset = json_string_value(json_object_get(b, "subset"));
		const char *zone = json_string_value(json_object_get(b, "zone"));
		json_t *left = json_object_get(b, "ejected_remaining_s");
		char state[48];

		if (left)
			snprintf(state, sizeof(state), "ejected(%.0fs left)",
				 json_real_value(left) + 0.5);
		else
			snprintf(state, sizeof(state), "%s",
				 json_string_value(json_object_get(b, "state")));
		printf("  %-44s weight=%-4lld subset=%-10s zone=%-10s %-18s active=%-6lld "
		       "connections_total=%lld failures=%lld\n",
		       json_string_value(json_object_get(b, "address")),
		       json_integer_value(json_object_get(b, "weight")), *subset ? subset : "-",
		       zone && *zone ? zone : "-", state,
		       json_integer_value(json_object_get(b, "active_connections")),
		       json_integer_value(json_object_get(b, "connections_total")),
		       json_integer_value(json_object_get(b, "connect_failures_total")));
	}
}

int do_services(struct cli *c, int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	struct sl_maps m;
	struct sl_state st;
	json_t *arr = NULL, *o;
	int err, found = 0;

	if (argc > 2)
		return fail(c, EXIT_USAGE, "services takes at most one NAME");
	err = cli_open_state(c, &m, &st);
	if (err)
		return err;
	if (c->json)
		arr = json_array();
	for (size_t i = 0; i < st.n_svcs; i++) {
		if (only && strcmp(only, st.svcs[i].name))
			continue;
		found++;
		o = sl_report_service(&m, &st.svcs[i]);
		if (c->json) {
			json_array_append_new(arr, o);
		} else {
			service_table(&st.svcs[i], o);
			json_decref(o);
		}
	}
	sl_state_free(&st);
	sl_maps_close(&m);
	if (only && !found) {
		json_decref(arr);
		return fail(c, EXIT_FAIL, "service '%s' not found", only);
	}
	if (c->json)
		return emit(arr);
	if (!found)
		printf("no services\n");
	return EXIT_OK;
}

/* Identity names by id (names[0] is unused), from sluice_identities. */
static void identity_names(const struct sl_maps *m, char names[][SLUICE_NAME_LEN])
{
	for (uint32_t id = 1; id <= SLUICE_MAX_IDENTITIES; id++) {
		struct sluice_identity_info info;

		names[id][0] = '\0';
		if (!bpf_map_lookup_elem(m->identities, &id, &info))
			snprintf(names[id], SLUICE_NAME_LEN, "%s", info.name);
	}
}

static json_t *mask_names(uint64_t mask, char names[][SLUICE_NAME_LEN])
{
	json_t *arr = json_array();

	for (uint32_t id = 1; id <= SLUICE_MAX_IDENTITIES; id++)
		if (mask & (1ULL << (id - 1)))
			json_array_append_new(arr, json_string(names[id][0] ? names[id] : "?"));
	return arr;
}

static void ipcache_prefix(const struct sluice_ipcache_key *k, char *buf, size_t len)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char a[INET6_ADDRSTRLEN];

	if (k->prefixlen >= 96 && !memcmp(k->addr, mapped, sizeof(mapped))) {
		inet_ntop(AF_INET, &k->addr[12], a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, k->prefixlen - 96);
	} else {
		inet_ntop(AF_INET6, k->addr, a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, k->prefixlen);
	}
}

/* Add each identity's cgroup ids and address prefixes to its object in ids[]. */
static void identity_members(const struct sl_maps *m, json_t **ids)
{
	struct sluice_ipcache_key ik, inext;
	uint64_t ck, cnext;
	void *prev = NULL;
	uint32_t id;

	while (!bpf_map_get_next_key(m->cgroup_ids, prev, &cnext)) {
		ck = cnext;
		prev = &ck;
		if (!bpf_map_lookup_elem(m->cgroup_ids, &ck, &id) && id <= SLUICE_MAX_IDENTITIES &&
		    ids[id])
			json_array_append_new(json_object_get(ids[id], "cgroup_ids"),
					      json_integer((json_int_t)ck));
	}
	prev = NULL;
	while (!bpf_map_get_next_key(m->ipcache, prev, &inext)) {
		char pfx[INET6_ADDRSTRLEN + 8];

		ik = inext;
		prev = &ik;
		if (bpf_map_lookup_elem(m->ipcache, &ik, &id) || id > SLUICE_MAX_IDENTITIES ||
		    !ids[id])
			continue;
		ipcache_prefix(&ik, pfx, sizeof(pfx));
		json_array_append_new(json_object_get(ids[id], "addresses"), json_string(pfx));
	}
}

/* ",a,b" style: the strings or integers of arr, comma-separated. */
static void print_list(json_t *arr)
{
	json_t *v;
	size_t k;

	json_array_foreach(arr, k, v)
	{
		if (json_is_integer(v))
			printf("%s%lld", k ? "," : "", json_integer_value(v));
		else
			printf("%s%s", k ? "," : "", json_string_value(v));
	}
}

int do_identities(struct cli *c, int argc, char **argv)
{
	char names[SLUICE_MAX_IDENTITIES + 1][SLUICE_NAME_LEN];
	json_t *ids[SLUICE_MAX_IDENTITIES + 1] = {0}, *arr;
	struct sl_maps m;
	uint32_t id;
	int err;

	(void)argv;
	if (argc > 1)
		return fail(c, EXIT_USAGE, "identities takes no arguments");
	err = cli_open_state(c, &m, NULL);
	if (err)
		return err;
	identity_names(&m, names);
	for (id = 1; id <= SLUICE_MAX_IDENTITIES; id++)
		if (names[id][0])
			ids[id] = json_pack("{s:s, s:i, s:[], s:[]}", "name", names[id], "id",
					    (int)id, "cgroup_ids", "addresses");
	identity_members(&m, ids);
	sl_maps_close(&m);
	arr = json_array();
	for (id = 1; id <= SLUICE_MAX_IDENTITIES; id++)
		if (ids[id])
			json_array_append_new(arr, ids[id]);
	if (c->json)
		return emit(arr);
	if (!json_array_size(arr))
		printf("no identities\n");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *o = json_array_get(arr, i);

		printf("%-20s id=%-3lld cgroup_ids=", json_string_value(json_object_get(o, "name")),
		       json_integer_value(json_object_get(o, "id")));
		print_list(json_object_get(o, "cgroup_ids"));
		printf(" addresses=");
		print_list(json_object_get(o, "addresses"));
		printf("\n");
	}
	json_decref(arr);
	return EXIT_OK;
}

/* One service's policy, as -o json prints it. */
static json_t *policy_json(const struct sl_maps *m, const struct sl_svc_state *s,
			   char names[][SLUICE_NAME_LEN])
{
	const struct sluice_service *v = &s->value;
	uint64_t rej[SLUICE_DROP__MAX] = {0};

	sl_maps_service_rejected(m, s->id, rej);
	if (!(v->flags & SLUICE_SVC_F_POLICY))
		return json_pack("{s:s, s:b}", "service", s->name, "policy", 0);
	return json_pack("{s:s, s:b, s:s, s:o, s:o, s:I}", "service", s->name, "policy", 1,
			 "default", (v->flags & SLUICE_SVC_F_DEFAULT_DENY) ? "deny" : "allow",
			 "allow_from", mask_names(v->allow_mask, names), "deny_from",
			 mask_names(v->deny_mask, names), "rejected",
			 (json_int_t)rej[SLUICE_DROP_POLICY]);
}

static void policy_table(json_t *arr)
{
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *o = json_array_get(arr, i);

		if (!json_is_true(json_object_get(o, "policy"))) {
			printf("%-20s no policy: everyone is allowed\n",
			       json_string_value(json_object_get(o, "service")));
			continue;
		}
		printf("%-20s default=%s allow_from=",
		       json_string_value(json_object_get(o, "service")),
		       json_string_value(json_object_get(o, "default")));
		print_list(json_object_get(o, "allow_from"));
		printf(" deny_from=");
		print_list(json_object_get(o, "deny_from"));
		printf(" rejected=%lld\n", json_integer_value(json_object_get(o, "rejected")));
	}
}

int do_policy(struct cli *c, int argc, char **argv)
{
	char names[SLUICE_MAX_IDENTITIES + 1][SLUICE_NAME_LEN];
	const char *only = argc > 1 ? argv[1] : NULL;
	struct sl_maps m;
	struct sl_state st;
	json_t *arr;
	int err, found = 0;

	if (argc > 2)
		return fail(c, EXIT_USAGE, "policy takes at most one SERVICE");
	err = cli_open_state(c, &m, &st);
	if (err)
		return err;
	identity_names(&m, names);
	arr = json_array();
	for (size_t i = 0; i < st.n_svcs; i++) {
		if (only && strcmp(only, st.svcs[i].name))
			continue;
		found++;
		json_array_append_new(arr, policy_json(&m, &st.svcs[i], names));
	}
	sl_state_free(&st);
	sl_maps_close(&m);
	if (only && !found) {
		json_decref(arr);
		return fail(c, EXIT_FAIL, "service '%s' not found", only);
	}
	if (c->json)
		return emit(arr);
	policy_table(arr);
	json_decref(arr);
	return EXIT_OK;
}

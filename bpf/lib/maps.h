/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of the socket load balancer. Capacities here are compile-time
 * defaults; the agent sets the real ones from agent.limits before loading.
 * Each map is pinned by name under agent.bpffs.
 */
#ifndef SLUICE_BPF_MAPS_H
#define SLUICE_BPF_MAPS_H

#include <sluice/abi.h>

#include "shared_maps.h"

/* frontend (VIP, port, protocol) -> service id */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLUICE_DEFAULT_SERVICES);
	__type(key, struct sluice_frontend_key);
	__type(value, struct sluice_frontend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_frontends SEC(".maps");

/* service id -> name and frontend, for the CLI and adoption; never read here */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLUICE_DEFAULT_SERVICES);
	__type(key, __u32);
	__type(value, struct sluice_svc_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_svc_info SEC(".maps");

/* (service id, generation, slot) -> backend id */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * SLUICE_DEFAULT_BACKENDS);
	__type(key, struct sluice_slot_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_slots SEC(".maps");

/* one view's table: position -> backend id, two positions per entry (SLUICE_TABLE_ID);
 * the size varies per view */
struct sluice_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, SLUICE_TABLE_ENTRIES(SLUICE_MAGLEV_M_DEFAULT));
	__type(key, __u32);
	__type(value, __u64);
};

/* (service id, generation, view) -> that view's table */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 2 * SLUICE_DEFAULT_SERVICES);
	__type(key, struct sluice_table_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct sluice_table);
} sluice_tables SEC(".maps");

/* backend id -> address, port, weight, state, owning service */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLUICE_DEFAULT_BACKENDS);
	__type(key, __u32);
	__type(value, struct sluice_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_backends SEC(".maps");

/* backend id -> per-CPU counters */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_DEFAULT_BACKENDS + 1);
	__type(key, __u32);
	__type(value, struct sluice_backend_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_backend_stats SEC(".maps");

/* backend id -> active connections and outlier state (atomics) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_DEFAULT_BACKENDS + 1);
	__type(key, __u32);
	__type(value, struct sluice_backend_rt);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_backend_rt SEC(".maps");

/* service id -> active connections and rate limiter */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_DEFAULT_SERVICES + 1);
	__type(key, __u32);
	__type(value, struct sluice_svc_rt);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_svc_rt SEC(".maps");

/* cgroup id -> identity id (the identities' cgroups; their subtrees are
 * found by walking the caller's ancestors) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLUICE_DEFAULT_CGROUP_IDS);
	__type(key, __u64);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_cgroup_ids SEC(".maps");

/* identity id -> its name (for the CLI; never read here) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_IDENTITIES + 1);
	__type(key, __u32);
	__type(value, struct sluice_identity_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_identities SEC(".maps");

/* (client, service) -> the backend it was last given (affinity) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_DEFAULT_AFFINITY);
	__type(key, struct sluice_affinity_key);
	__type(value, struct sluice_affinity);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_affinity SEC(".maps");

/* service id -> this CPU's round-robin position */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_DEFAULT_SERVICES + 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_rr SEC(".maps");

/* UDP socket -> its translations: backend -> the frontend it asked for */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sluice_sk_revnat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_revnat SEC(".maps");

/* TCP socket -> the backend its connect() was given, and its translation */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sluice_sk_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_sk_backend SEC(".maps");

/* service id -> per-CPU connect-duration and RTT histograms */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_DEFAULT_SERVICES + 1);
	__type(key, __u32);
	__type(value, struct sluice_svc_hist);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_svc_hist SEC(".maps");

/* established same-node TCP socket (its own view of the 4-tuple) -> the socket */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SLUICE_DEFAULT_SOCKHASH);
	__type(key, struct sluice_sock_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_sockhash SEC(".maps");

/* active end of a same-node connection, not yet paired -> 1 (LRU: an end
 * whose peer never joins ages out) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_DEFAULT_SOCKHASH);
	__type(key, struct sluice_sock_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_redir_pending SEC(".maps");

/* TCP socket sent to the agent's outbound listener (mtls) -> its original
 * destination and caller, until sockops moves it to sluice_mtls_conn */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sluice_mtls_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_mtls_sk SEC(".maps");

/* the caller's end (loopback address, port) of a tunnelled connection ->
 * its original destination and caller; the agent deletes it at accept()
 * (LRU: one the agent never accepted ages out) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_DEFAULT_MTLS_CONNS);
	__type(key, struct sluice_mtls_conn_key);
	__type(value, struct sluice_mtls_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_mtls_conn SEC(".maps");

/* (caller identity, service id) -> per-CPU edge counters (the service map) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLUICE_DEFAULT_EDGES);
	__type(key, struct sluice_edge_key);
	__type(value, struct sluice_edge_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_edges SEC(".maps");

/* traced connections' records (struct sluice_span_rec) for the agent */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SLUICE_SPANS_RINGBUF_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_spans SEC(".maps");

/* traced TCP socket -> its trace context and redirected bytes (only traced
 * sockets have one: bpf/lib/trace.h) */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sluice_sk_trace);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_sk_trace SEC(".maps");

/* a traced redirected socket's own sluice_sockhash key -> the payload bytes
 * its peer redirected to it (LRU: one whose close was missed ages out) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_TRACE_REDIR_ENTRIES);
	__type(key, struct sluice_sock_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_trace_redir SEC(".maps");

/* 0, 1 -> this CPU's buffers for the traceparent scan (bpf/lib/traceparent.h) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct sluice_trace_scratch);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_trace_scratch SEC(".maps");

/* Every map that include/sluice/maps.def gives these objects is defined above
 * or in shared_maps.h: one listed there but not defined fails the build here.
 * (One defined here but not listed there, the agent refuses to load.) */
#define SLUICE_MAP_DEFINED_SOCK(name)	_Static_assert(sizeof(name) > 0, #name);
#define SLUICE_MAP_DEFINED_SHARED(name) SLUICE_MAP_DEFINED_SOCK(name)
#define SLUICE_MAP_DEFINED_TC(name)
#define SLUICE_MAP_DEFINED_AGENT(name)

#define SLUICE_MAP(id, name, field, objects, fd, capacity) SLUICE_MAP_DEFINED_##objects(name)
#include <sluice/maps.def>
#undef SLUICE_MAP
#undef SLUICE_MAP_DEFINED_SOCK
#undef SLUICE_MAP_DEFINED_SHARED
#undef SLUICE_MAP_DEFINED_TC
#undef SLUICE_MAP_DEFINED_AGENT

#endif /* SLUICE_BPF_MAPS_H */

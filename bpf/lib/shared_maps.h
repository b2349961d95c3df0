/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maps that the TC programs share with the socket programs: the same
 * definitions in both objects, so that libbpf reuses one pinned map (the
 * agent sizes the TC object's copies from the pins before loading).
 */
#ifndef SLUICE_BPF_SHARED_MAPS_H
#define SLUICE_BPF_SHARED_MAPS_H

#include <sluice/abi.h>

/* service id -> live slot generation, views, lb and limits (replaced whole) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLUICE_DEFAULT_SERVICES);
	__type(key, __u32);
	__type(value, struct sluice_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_services SEC(".maps");

/* service id -> per-CPU rejection counters */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_DEFAULT_SERVICES + 1);
	__type(key, __u32);
	__type(value, struct sluice_svc_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_svc_stats SEC(".maps");

/* datapath events (struct sluice_event) for the agent */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SLUICE_RINGBUF_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_events SEC(".maps");

/* 0 -> per-CPU datapath-wide counters */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_global_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_global_stats SEC(".maps");

/* 0 -> run-time settings from the agent */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_settings);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_settings SEC(".maps");

/* 0 -> this CPU's audit-event budget (a token bucket) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_audit_budget);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_audit_budget SEC(".maps");

/* address prefix -> identity id: peers on other nodes (the "ipcache") */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLUICE_DEFAULT_IPCACHE);
	__type(key, struct sluice_ipcache_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_ipcache SEC(".maps");

/* (backend address, port, protocol) of a service with a policy -> service id */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SLUICE_DEFAULT_BACKENDS);
	__type(key, struct sluice_frontend_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_policy_backends SEC(".maps");

#endif /* SLUICE_BPF_SHARED_MAPS_H */

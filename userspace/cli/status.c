// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `sluicectl status`: is the agent running, which programs are attached, how full the maps are. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cli.h"
#include "mem.h"

#define MAX_LINKS 16

/* The process holding one of these link ids open is the agent. */
static int find_agent(const uint32_t *link_ids, size_t n)
{
	char path[512], line[128];
	struct dirent *pde, *fde;
	DIR *proc = opendir("/proc");
	int pid = 0;

	if (!proc)
		return 0;
	while (!pid && (pde = readdir(proc))) {
		int p = atoi(pde->d_name);
		DIR *fds;

		if (p <= 0 || p == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo", p);
		fds = opendir(path);
		if (!fds)
			continue;
		while (!pid && (fde = readdir(fds))) {
			FILE *f;

			if (fde->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", p, fde->d_name);
			f = fopen(path, "re");
			if (!f)
				continue;
			while (fgets(line, sizeof(line), f)) {
				unsigned int id;

				if (sscanf(line, "link_id: %u", &id) != 1)
					continue;
				for (size_t i = 0; i < n; i++)
					if (link_ids[i] == id)
						pid = p;
			}
			fclose(f);
		}
		closedir(fds);
	}
	closedir(proc);
	return pid;
}

/* The links pinned under --bpffs/links (at most MAX_LINKS): their ids, and one object each. */
static json_t *pinned_links(struct cli *c, uint32_t *link_ids, size_t *n_links)
{
	char dir[4096], path[4400];
	json_t *progs = json_array();
	struct dirent *de;
	DIR *d;

	*n_links = 0;
	snprintf(dir, sizeof(dir), "%s/links", c->bpffs);
	d = opendir(dir);
	while (d && (de = readdir(d)) && *n_links < MAX_LINKS) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
			const char *at = libbpf_bpf_attach_type_str(info.cgroup.attach_type);

			link_ids[(*n_links)++] = info.id;
			json_array_append_new(
			    progs, json_pack("{s:s, s:s, s:i, s:i}", "name", de->d_name,
					     "attach_type", at ? at : "unknown", "link_id",
					     (int)info.id, "prog_id", (int)info.prog_id));
		}
		close(fd);
	}
	if (d)
		closedir(d);
	return progs;
}

/* Each map's fill and capacity. */
static json_t *map_fill(struct sl_maps *m)
{
	json_t *maps = json_array();

	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++) {
		uint32_t entries = 0, cap = 0;
		int rc = sl_maps_fill(*sl_maps_fd(m, i), &entries, &cap);

		/* Per-id arrays have no fill: their entries are null. */
		json_array_append_new(maps, json_pack("{s:s, s:o, s:i}", "name", sl_map_names[i],
						      "entries",
						      rc == 0 ? json_integer(entries) : json_null(),
						      "capacity", (int)cap));
	}
	return maps;
}

/* A reply body as it arrives (at most 1 MiB). */
struct body {
	char *p;
	size_t len, cap;
};

static size_t body_collect(char *data, size_t size, size_t n, void *cls)
{
	struct body *b = cls;
	size_t total = size * n;

	if (b->len + total > 1 << 20 || SL_ENSURE(&b->p, &b->cap, b->len + total + 1))
		return 0;
	memcpy(b->p + b->len, data, total);
	b->len += total;
	b->p[b->len] = '\0';
	return total;
}

/*
 * The certificates' status: only the running agent knows which set it loaded and what it
 * found wrong, so it is asked (GET /v1/mtls on --api). NULL when the agent has no mtls: or
 * cannot be asked; status goes on without the lines.
 */
static json_t *mtls_status(const struct cli *c)
{
	struct body b = {0};
	long code = 0;
	json_t *o = NULL;
	CURL *curl;

	if (curl_global_init(CURL_GLOBAL_NOTHING))
		return NULL;
	curl = curl_easy_init();
	if (curl) {
		curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->api);
		curl_easy_setopt(curl, CURLOPT_URL, "http://localhost/v1/mtls");
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_collect);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, 3L);
		if (curl_easy_perform(curl) == CURLE_OK &&
		    !curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) && code == 200 && b.p)
			o = json_loads(b.p, 0, NULL);
		curl_easy_cleanup(curl);
	}
	curl_global_cleanup();
	free(b.p);
	return o;
}

static void mtls_table(const json_t *m)
{
	json_t *certs = json_object_get(m, "certificates");

	printf("mtls:     trust domain %s, port %lld, crypto in the kernel (ktls): %s\n",
	       json_string_value(json_object_get(m, "trust_domain")),
	       json_integer_value(json_object_get(m, "port")),
	       json_is_true(json_object_get(m, "ktls")) ? "yes" : "no (OpenSSL)");
	for (size_t i = 0; i < json_array_size(certs); i++) {
		json_t *e = json_array_get(certs, i);
		int valid = json_is_true(json_object_get(e, "valid"));

		printf("  %-8s %-20s %-7s expires %-20s serial %s%s%s\n",
		       json_string_value(json_object_get(e, "kind")),
		       json_string_value(json_object_get(e, "name")), valid ? "valid" : "INVALID",
		       json_string_value(json_object_get(e, "not_after")),
		       json_string_value(json_object_get(e, "serial")), valid ? "" : "\n    ",
		       valid ? "" : json_string_value(json_object_get(e, "error")));
	}
}

/* The table, from the same objects that -o json prints. */
static void status_table(const struct cli *c, int pid, const json_t *progs, const json_t *maps)
{
	printf("bpffs:    %s\n", c->bpffs);
	if (pid > 0)
		printf("agent:    running (pid %d)\n", pid);
	else
		printf("agent:    not running; the pinned datapath keeps serving the last state\n");
	printf("programs: %zu attached\n", json_array_size(progs));
	for (size_t i = 0; i < json_array_size(progs); i++) {
		json_t *p = json_array_get(progs, i);

		printf("  %-26s %-26s link %-6lld prog %lld\n",
		       json_string_value(json_object_get(p, "name")),
		       json_string_value(json_object_get(p, "attach_type")),
		       json_integer_value(json_object_get(p, "link_id")),
		       json_integer_value(json_object_get(p, "prog_id")));
	}
	printf("maps:\n");
	for (size_t i = 0; i < json_array_size(maps); i++) {
		json_t *p = json_array_get(maps, i);
		json_t *entries = json_object_get(p, "entries");
		long long e = json_integer_value(entries);
		long long cap = json_integer_value(json_object_get(p, "capacity"));

		if (json_is_null(entries))
			printf("  %-22s %8s   %-8lld (indexed by id)\n",
			       json_string_value(json_object_get(p, "name")), "", cap);
		else
			printf("  %-22s %8lld / %-8lld %5.1f%%\n",
			       json_string_value(json_object_get(p, "name")), e, cap,
			       cap ? 100.0 * (double)e / (double)cap : 0.0);
	}
}

int do_status(struct cli *c, int argc, char **argv)
{
	uint32_t link_ids[MAX_LINKS];
	json_t *progs, *maps, *o, *mtls;
	struct sl_maps m;
	size_t n_links;
	int err, pid;

	(void)argv;
	if (argc > 1)
		return fail(c, EXIT_USAGE, "status takes no arguments");
	err = cli_open_state(c, &m, NULL);
	if (err)
		return err;
	progs = pinned_links(c, link_ids, &n_links);
	maps = map_fill(&m);
	sl_maps_close(&m);
	pid = find_agent(link_ids, n_links);
	mtls = pid > 0 ? mtls_status(c) : NULL;
	o = json_pack("{s:s, s:{s:b, s:i}, s:o, s:o, s:o}", "bpffs", c->bpffs, "agent", "running",
		      pid > 0, "pid", pid, "programs", progs, "maps", maps, "mtls",
		      mtls ? mtls : json_null());
	if (c->json)
		return emit(o);
	status_table(c, pid, progs, maps);
	if (mtls)
		mtls_table(mtls);
	json_decref(o);
	return EXIT_OK;
}

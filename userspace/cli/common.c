// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* What every sluicectl command shares: error and JSON output, opening the pinned maps. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int fail(struct cli *c, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->json) {
		json_t *o = json_pack("{s:s}", "error", msg);

		json_dumpf(o, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(o);
	} else {
		fprintf(stderr, "sluicectl: %s\n", msg);
	}
	return code;
}

int emit(json_t *o)
{
	int err = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	fputc('\n', stdout);
	json_decref(o);
	return err ? EXIT_FAIL : EXIT_OK;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct sl_svc_state *)a)->name,
		      ((const struct sl_svc_state *)b)->name);
}

int cli_open_state(struct cli *c, struct sl_maps *m, struct sl_state *st)
{
	int err = sl_maps_open_pinned(c->bpffs, 1, m);

	if (err == -ENOENT)
		return fail(c, EXIT_FAIL,
			    "no sluice datapath is pinned at %s (is sluiced started? --bpffs?)",
			    c->bpffs);
	if (err)
		return fail(c, EXIT_FAIL, "open pinned maps in %s: %s", c->bpffs, strerror(-err));
	if (!st)
		return 0;
	err = sl_maps_read_state(m, st);
	if (err) {
		sl_maps_close(m);
		return fail(c, EXIT_FAIL, "read the maps: %s", strerror(-err));
	}
	qsort(st->svcs, st->n_svcs, sizeof(*st->svcs), by_name);
	return 0;
}

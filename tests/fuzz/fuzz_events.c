// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: sl_event_json() on arbitrary 96-byte ring buffer records
 * (the rest of the input is the service name). A record is either refused
 * (NULL) or becomes an object that jansson can serialise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sluice_event ev;
	char service[SLUICE_NAME_LEN];
	size_t n;
	json_t *o;
	char *line;

	if (size < sizeof(ev))
		return 0;
	memcpy(&ev, data, sizeof(ev));
	n = size - sizeof(ev);
	if (n >= sizeof(service))
		n = sizeof(service) - 1;
	memcpy(service, data + sizeof(ev), n);
	service[n] = '\0';

	o = sl_event_json(&ev, service);
	if (!o)
		return 0;
	line = json_dumps(o, JSON_COMPACT);
	/* A service name that is not UTF-8 makes json_pack fail: then o is NULL. */
	if (!line || !json_object_get(o, "type") || !json_object_get(o, "client"))
		abort();
	free(line);
	json_decref(o);
	return 0;
}

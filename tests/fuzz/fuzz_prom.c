// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the Prometheus writer fed fuzzed label values and help
 * text (NUL-separated pieces of the input). Whatever the values, the page
 * must stay well-formed: one sample per line, every quote escaped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Each line is a comment or starts with the family's name; label values
 * never hold a raw newline or an unescaped quote. */
static void check_page(const char *text, size_t len)
{
	const char *line = text, *end = text + len;

	if (len && text[len - 1] != '\n')
		abort();
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		int quotes = 0;

		if (!nl)
			abort();
		if (*line != '#') {
			if (strncmp(line, "fuzz_metric", 11))
				abort();
			for (const char *c = line; c < nl; c++) {
				if (*c == '\\')
					c++;
				else if (*c == '"')
					quotes++;
			}
			if (quotes % 2)
				abort();
		}
		line = nl + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const double bounds[] = {0.001, 0.01, 0.1};
	static const uint64_t counts[] = {1, 2, 3};
	char *buf, *piece[3] = {"", "", ""};
	const char *labels[5], *text;
	struct sl_prom *p;
	size_t n = 0, len;

	if (size > 8192)
		return 0;
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (char *c = buf; n < 3 && c <= buf + size; c += strlen(c) + 1)
		piece[n++] = c;

	labels[0] = "service";
	labels[1] = piece[0];
	labels[2] = "backend";
	labels[3] = piece[1];
	labels[4] = NULL;
	p = sl_prom_new();
	sl_prom_family(p, "fuzz_metric", piece[2], SL_PROM_GAUGE);
	sl_prom_sample(p, labels, (double)size);
	sl_prom_family(p, "fuzz_metric_seconds", piece[2], SL_PROM_HISTOGRAM);
	sl_prom_histogram(p, labels, bounds, counts, 3, (uint64_t)size, 0.5);
	if (sl_prom_failed(p))
		abort(); /* valid names: only allocation may fail, and it does not here */
	text = sl_prom_data(p, &len);
	if (!text || strlen(text) != len)
		abort();
	check_page(text, len);
	sl_prom_free(p);
	free(buf);
	return 0;
}

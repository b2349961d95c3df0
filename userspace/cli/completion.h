/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* `sluicectl completion bash`: a bash completion script made from the command table. */
#ifndef SLUICE_COMPLETION_H
#define SLUICE_COMPLETION_H

#include <stddef.h>
#include <stdio.h>

struct sl_cmd_spec {
	const char *name;
	const char *args; /* as in the usage: "[NAME]", "[--service NAME]", "bash" */
};

/*
 * Print the script. Arguments are completed from each command's args:
 * NAME or SERVICE -> service names (`sluicectl -o json services` at
 * completion time, with the --bpffs given on the line), --options -> those
 * options, a lowercase word (alternatives joined by '|') -> those words.
 */
void sl_completion_bash(FILE *out, const struct sl_cmd_spec *cmds, size_t n);

#endif /* SLUICE_COMPLETION_H */

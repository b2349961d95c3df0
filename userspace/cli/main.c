// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluicectl: reads the pinned maps directly, so it works while the agent is
 * down. Commands are dispatched through a table with prefix matching; each
 * command group is in its own file (cli.h lists them).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "completion.h"
#include "kfeatures.h"

struct cmd {
	const char *name;
	const char *args;
	const char *help;
	int (*fn)(struct cli *c, int argc, char **argv);
};

static int do_version(struct cli *c, int argc, char **argv)
{
	struct sl_features f;

	(void)argv;
	if (argc > 1)
		return fail(c, EXIT_USAGE, "version takes no arguments");
	sl_features_probe(&f);
	if (c->json)
		return emit(sl_version_json("sluicectl", &f));
	sl_version_print(stdout, "sluicectl", &f);
	return EXIT_OK;
}

/* completion is in the table and prints it. */
static int do_completion(struct cli *c, int argc, char **argv);

static const struct cmd commands[] = {
    {"status", "", "agent reachable?, programs attached, map fill", do_status},
    {"services", "[NAME]", "services, backends, backend state and counters", do_services},
    {"flows", "[--service NAME]", "live and recent flows seen by the TC programs", do_flows},
    {"monitor", "[--type TYPE]", "stream datapath events until interrupted", do_monitor},
    {"identities", "", "identities: cgroup ids and address prefixes", do_identities},
    {"policy", "[SERVICE]", "each service's policy and its denials", do_policy},
    {"drain", "SERVICE ADDRESS", "no new connections to that backend; existing ones stay",
     do_drain},
    {"undrain", "SERVICE ADDRESS", "let the backend take new connections again", do_undrain},
    {"register", "SERVICE ADDRESS [--weight N] [--subset S] [--zone Z] [--ttl DUR]",
     "add a backend through the agent's API", do_register},
    {"deregister", "SERVICE ADDRESS", "remove a registered backend", do_deregister},
    {"graph", "", "the service map: identities -> services -> backends (-o dot: Graphviz)",
     do_graph},
    {"version", "", "version, commit, libbpf and kernel features", do_version},
    {"completion", "bash", "print a bash completion script", do_completion},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static int do_completion(struct cli *c, int argc, char **argv)
{
	struct sl_cmd_spec specs[N_COMMANDS];

	if (argc != 2 || strcmp(argv[1], "bash"))
		return fail(c, EXIT_USAGE, "usage: completion bash");
	for (size_t i = 0; i < N_COMMANDS; i++)
		specs[i] = (struct sl_cmd_spec){commands[i].name, commands[i].args};
	sl_completion_bash(stdout, specs, N_COMMANDS);
	return EXIT_OK;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sluicectl [--bpffs DIR] [--api SOCK] [-o table|json] COMMAND [ARGS]\n"
		   "options:\n"
		   "  --bpffs DIR        where the datapath is pinned (default " DEFAULT_BPFFS ")\n"
		   "  --api SOCK         the agent's API socket (default " DEFAULT_API ")\n"
		   "  -o, --output FMT   table (default) or json; dot for graph\n"
		   "  -h, --help         this help\n"
		   "commands (any unique prefix):\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-10s %-17s %s\n", commands[i].name, commands[i].args,
			commands[i].help);
}

/* Exact name, else a unique prefix. */
static const struct cmd *find_cmd(const char *name, int *ambiguous)
{
	const struct cmd *hit = NULL;

	*ambiguous = 0;
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (!strcmp(commands[i].name, name))
			return &commands[i];
		if (!strncmp(commands[i].name, name, strlen(name))) {
			if (hit)
				*ambiguous = 1;
			hit = &commands[i];
		}
	}
	return *ambiguous ? NULL : hit;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"bpffs", required_argument, NULL, 'b'},
	    {"api", required_argument, NULL, 'a'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cli c = {.bpffs = DEFAULT_BPFFS, .api = DEFAULT_API};
	const struct cmd *cmd;
	int opt, ambiguous;

	while ((opt = getopt_long(argc, argv, "+o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			c.bpffs = optarg;
			break;
		case 'a':
			c.api = optarg;
			break;
		case 'o':
			c.json = !strcmp(optarg, "json");
			c.dot = !strcmp(optarg, "dot");
			if (!c.json && !c.dot && strcmp(optarg, "table")) {
				fprintf(stderr,
					"sluicectl: -o: want table, json or dot, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = find_cmd(argv[optind], &ambiguous);
	if (!cmd) {
		fail(&c, EXIT_USAGE, "%s command '%s'", ambiguous ? "ambiguous" : "unknown",
		     argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (c.dot && cmd->fn != do_graph)
		return fail(&c, EXIT_USAGE, "-o dot is for graph only");
	return cmd->fn(&c, argc - optind, argv + optind);
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One problem type for every kind of bad input or failed step: a config file's
 * diagnostics (where, line, column), an API request's error (HTTP status, field),
 * and a start-up step that failed (env: the environment lacks something, exit 3).
 * The fields that do not apply are zero or "".
 */
#ifndef SLUICE_PROBLEM_H
#define SLUICE_PROBLEM_H

#include <stddef.h>

struct sl_problem {
	char msg[512];		/* what is wrong, on what, and why */
	char text[768];		/* "WHERE:LINE:COL: msg" when from a file, else msg */
	char field[64];		/* the offending key ("backends[0].weight"), or "" */
	unsigned int line, col; /* 1-based; 0 when not from a file */
	unsigned int status;	/* HTTP status for the API (400, 404, 409, ...), or 0 */
	int env;		/* 1: the environment lacks something */
};

/* A list of problems, e.g. every error of one config file. */
struct sl_problems {
	struct sl_problem *list;
	size_t n, cap;
};

/* Append "WHERE:LINE:COL: message". Out of memory drops the problem. */
void sl_problems_add(struct sl_problems *ps, const char *where, unsigned int line, unsigned int col,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same, naming the offending key path in field ("services[0].backends[1].weight"). */
void sl_problems_add_field(struct sl_problems *ps, const char *where, unsigned int line,
			   unsigned int col, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void sl_problems_free(struct sl_problems *ps);

/* Set *p to an API request's error. */
void sl_problem_http(struct sl_problem *p, unsigned int status, const char *field, const char *fmt,
		     ...) __attribute__((format(printf, 4, 5)));

/* Set *p to a failed step and return err if it is a negative errno, else
 * -EINVAL. env: the environment lacks something. */
int sl_problem_sys(struct sl_problem *p, int env, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* SLUICE_PROBLEM_H */

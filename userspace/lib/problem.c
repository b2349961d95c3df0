/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#include "problem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

static void problems_vadd(struct sl_problems *ps, const char *where, unsigned int line,
			  unsigned int col, const char *field, const char *fmt, va_list ap)
{
	struct sl_problem *p;

	if (SL_ENSURE(&ps->list, &ps->cap, ps->n + 1))
		return;
	p = &ps->list[ps->n++];
	memset(p, 0, sizeof(*p));
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	snprintf(p->field, sizeof(p->field), "%s", field);
	p->line = line;
	p->col = col;
	snprintf(p->text, sizeof(p->text), "%s:%u:%u: %s", where, line, col, p->msg);
}

void sl_problems_add(struct sl_problems *ps, const char *where, unsigned int line, unsigned int col,
		     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	problems_vadd(ps, where, line, col, "", fmt, ap);
	va_end(ap);
}

void sl_problems_add_field(struct sl_problems *ps, const char *where, unsigned int line,
			   unsigned int col, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	problems_vadd(ps, where, line, col, field, fmt, ap);
	va_end(ap);
}

void sl_problems_free(struct sl_problems *ps)
{
	free(ps->list);
	memset(ps, 0, sizeof(*ps));
}

void sl_problem_http(struct sl_problem *p, unsigned int status, const char *field, const char *fmt,
		     ...)
{
	va_list ap;

	memset(p, 0, sizeof(*p));
	p->status = status;
	snprintf(p->field, sizeof(p->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	snprintf(p->text, sizeof(p->text), "%s", p->msg);
}

int sl_problem_sys(struct sl_problem *p, int env, int err, const char *fmt, ...)
{
	va_list ap;

	memset(p, 0, sizeof(*p));
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	snprintf(p->text, sizeof(p->text), "%s", p->msg);
	p->env = env;
	return err < 0 ? err : -EINVAL;
}

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

void sl_state_free(struct sl_state *st)
{
	for (size_t i = 0; i < st->n_svcs; i++)
		free(st->svcs[i].bes);
	free(st->svcs);
	free(st->dead_be_ids);
	memset(st, 0, sizeof(*st));
}

const struct sl_svc_state *sl_state_find(const struct sl_state *st, const char *name)
{
	for (size_t i = 0; i < st->n_svcs; i++)
		if (!strcmp(st->svcs[i].name, name))
			return &st->svcs[i];
	return NULL;
}

/* A bitmap of ids in use, so that allocation is one pass. */
struct idset {
	uint64_t *bits;
	uint32_t max;
	uint32_t hint;
};

static int idset_init(struct idset *s, uint32_t max)
{
	s->max = max;
	s->hint = 1;
	s->bits = calloc((size_t)max / 64 + 1, sizeof(*s->bits));
	return s->bits ? 0 : -ENOMEM;
}

static void idset_mark(struct idset *s, uint32_t id)
{
	if (id && id <= s->max)
		s->bits[id / 64] |= 1ULL << (id % 64);
}

static uint32_t idset_alloc(struct idset *s)
{
	for (uint32_t id = s->hint; id <= s->max; id++) {
		if (!(s->bits[id / 64] & (1ULL << (id % 64)))) {
			idset_mark(s, id);
			s->hint = id + 1;
			return id;
		}
	}
	return 0;
}

static const struct sl_be_state *find_be(const struct sl_svc_state *cur,
					 const struct sl_sockaddr *addr)
{
	for (size_t i = 0; cur && i < cur->n_bes; i++)
		if (sl_sockaddr_equal(&cur->bes[i].addr, addr))
			return &cur->bes[i];
	return NULL;
}

static int backend_differs(const struct sl_be_state *b, const struct sl_backend_cfg *c)
{
	return b->weight != c->weight || strcmp(b->subset, c->subset);
}

/* Does the service need a new slot generation or any backend write? */
static int service_differs(const struct sl_svc_state *cur, const struct sl_service_cfg *want)
{
	if (cur->proto != want->proto || cur->lb != want->lb ||
	    !sl_sockaddr_equal(&cur->frontend, &want->frontend) || cur->n_bes != want->n_backends)
		return 1;
	for (size_t i = 0; i < want->n_backends; i++) {
		const struct sl_be_state *b = &cur->bes[i];

		/* Slot order is config order: a reorder is a change too. */
		if (!sl_sockaddr_equal(&b->addr, &want->backends[i].addr) ||
		    backend_differs(b, &want->backends[i]))
			return 1;
	}
	return 0;
}

static struct sl_svc_op *plan_push(struct sl_plan *plan)
{
	struct sl_svc_op *ops = realloc(plan->ops, (plan->n_ops + 1) * sizeof(*ops));

	if (!ops)
		return NULL;
	plan->ops = ops;
	memset(&ops[plan->n_ops], 0, sizeof(*ops));
	return &ops[plan->n_ops++];
}

static int plan_backends(struct sl_svc_op *op, struct idset *be_ids)
{
	const struct sl_service_cfg *want = op->want;
	const struct sl_svc_state *cur = op->cur;
	size_t n = want->n_backends;

	op->be_ids = calloc(n ? n : 1, sizeof(*op->be_ids));
	op->be_new = calloc(n ? n : 1, sizeof(*op->be_new));
	op->gone_ids = calloc(cur && cur->n_bes ? cur->n_bes : 1, sizeof(*op->gone_ids));
	if (!op->be_ids || !op->be_new || !op->gone_ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct sl_be_state *b = find_be(cur, &want->backends[i].addr);

		if (b) {
			op->be_ids[i] = b->id;
			continue;
		}
		op->be_ids[i] = idset_alloc(be_ids);
		if (!op->be_ids[i])
			return -ENOSPC;
		op->be_new[i] = 1;
	}
	for (size_t i = 0; cur && i < cur->n_bes; i++) {
		int kept = 0;

		for (size_t j = 0; j < n && !kept; j++)
			kept = sl_sockaddr_equal(&cur->bes[i].addr, &want->backends[j].addr);
		if (!kept)
			op->gone_ids[op->n_gone++] = cur->bes[i].id;
	}
	return 0;
}

int sl_plan_build(const struct sl_state *cur, const struct sl_config *want, uint32_t max_svc_id,
		  uint32_t max_be_id, struct sl_plan *plan)
{
	struct idset svc_ids, be_ids;
	int err;

	memset(plan, 0, sizeof(*plan));
	if (idset_init(&svc_ids, max_svc_id) || idset_init(&be_ids, max_be_id)) {
		free(svc_ids.bits);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cur->n_svcs; i++) {
		idset_mark(&svc_ids, cur->svcs[i].id);
		for (size_t j = 0; j < cur->svcs[i].n_bes; j++)
			idset_mark(&be_ids, cur->svcs[i].bes[j].id);
	}
	for (size_t i = 0; i < cur->n_dead; i++)
		idset_mark(&be_ids, cur->dead_be_ids[i]);

	for (size_t i = 0; i < want->n_services; i++) {
		const struct sl_service_cfg *w = &want->services[i];
		const struct sl_svc_state *c = sl_state_find(cur, w->name);
		struct sl_svc_op *op;

		if (c && !service_differs(c, w))
			continue;
		op = plan_push(plan);
		if (!op) {
			err = -ENOMEM;
			goto fail;
		}
		op->want = w;
		op->cur = c;
		if (c) {
			op->kind = SL_OP_UPDATE;
			op->svc_id = c->id;
			op->frontend_changed =
			    c->proto != w->proto || !sl_sockaddr_equal(&c->frontend, &w->frontend);
			plan->n_update++;
		} else {
			op->kind = SL_OP_ADD;
			op->svc_id = idset_alloc(&svc_ids);
			op->frontend_changed = 1;
			plan->n_add++;
			if (!op->svc_id) {
				err = -ENOSPC;
				goto fail;
			}
		}
		err = plan_backends(op, &be_ids);
		if (err)
			goto fail;
	}
	for (size_t i = 0; i < cur->n_svcs; i++) {
		const struct sl_svc_state *c = &cur->svcs[i];
		struct sl_svc_op *op;
		int kept = 0;

		for (size_t j = 0; j < want->n_services && !kept; j++)
			kept = !strcmp(want->services[j].name, c->name);
		if (kept)
			continue;
		op = plan_push(plan);
		if (!op) {
			err = -ENOMEM;
			goto fail;
		}
		op->kind = SL_OP_REMOVE;
		op->svc_id = c->id;
		op->cur = c;
		op->gone_ids = calloc(c->n_bes ? c->n_bes : 1, sizeof(*op->gone_ids));
		if (!op->gone_ids) {
			err = -ENOMEM;
			goto fail;
		}
		for (size_t j = 0; j < c->n_bes; j++)
			op->gone_ids[op->n_gone++] = c->bes[j].id;
		plan->n_remove++;
	}
	free(svc_ids.bits);
	free(be_ids.bits);
	return 0;
fail:
	free(svc_ids.bits);
	free(be_ids.bits);
	sl_plan_free(plan);
	return err;
}

void sl_plan_free(struct sl_plan *plan)
{
	for (size_t i = 0; i < plan->n_ops; i++) {
		free(plan->ops[i].be_ids);
		free(plan->ops[i].be_new);
		free(plan->ops[i].gone_ids);
	}
	free(plan->ops);
	memset(plan, 0, sizeof(*plan));
}

/* stats.c - what the live table says of each partner: the verdict-map
 * elements admitting it (per direction and family) and its
 * accepted-connection counters; and the drop counters.  Read from the
 * IR alone, so that status and the metrics file show the same numbers.
 */
#include "engine/engine.h"
#include "generator/generator.h"

#include <stdlib.h>
#include <string.h>

/* The drop counters (docs/RULESET.md): per direction, strangers (new
 * connections no rule admitted), invalid packets and new TCP without a
 * SYN that no partner map picked up. */
const struct engine_drop engine_drops[ENGINE_NDROPS] = {
	{ "dropped_in", "in", "stranger" },
	{ "dropped_in_invalid", "in", "invalid" },
	{ "dropped_in_nosyn", "in", "nosyn" },
	{ "dropped_out", "out", "stranger" },
	{ "dropped_out_invalid", "out", "invalid" },
	{ "dropped_out_nosyn", "out", "nosyn" },
};

static struct engine_pstat *partner(struct engine_stats *v, const char *chain, bool *in)
{
	const char *name = ir_chain_partner(chain);
	struct engine_pstat p = { .name = name };

	if (!name)
		return NULL;
	*in = chain[0] == 'i';
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i].name, name))
			return &v->v[i];
	VEC_PUSH(v, p);
	return &v->v[v->n - 1];
}

static int pstat_cmp(const void *x, const void *y)
{
	return strcmp(((const struct engine_pstat *)x)->name,
		      ((const struct engine_pstat *)y)->name);
}

static void map_elems(const struct ir_ruleset *rs, struct engine_stats *v)
{
	bool in;

	for (size_t i = 0; i < rs->nsets; i++) {
		const struct ir_set *s = &rs->sets[i];

		for (size_t k = 0; s->is_map && k < s->nelems; k++) {
			uint32_t c = s->elems[k].chain;
			struct engine_pstat *p = c < rs->nchains
						 ? partner(v, rs->chains[c].name, &in) : NULL;

			if (p) {
				struct engine_dir_stat *d = in ? &p->in : &p->out;

				d->elems++;
				d->elems_fam[s->elems[k].addr.family == 6]++;
			}
		}
		if (!s->is_map)
			v->other += s->nelems;
	}
}

void engine_stats(const struct ir_ruleset *rs, struct engine_stats *v)
{
	bool in;

	memset(v, 0, sizeof(*v));
	for (size_t i = 0; i < rs->nchains; i++)
		partner(v, rs->chains[i].name, &in);
	map_elems(rs, v);
	for (size_t i = 0; i < rs->ncounters; i++) {
		const struct ir_counter *c = &rs->counters[i];
		struct engine_pstat *p = partner(v, c->name, &in);
		struct engine_dir_stat *d;

		if (!p)
			continue;
		d = in ? &p->in : &p->out;
		d->has_counter = true;
		d->packets = c->packets;
		d->bytes = c->bytes;
	}
	if (v->n)
		qsort(v->v, v->n, sizeof(*v->v), pstat_cmp);
	v->digest = engine_ruleset_digest(rs);
}

void engine_stats_free(struct engine_stats *v)
{
	free(v->v);
	memset(v, 0, sizeof(*v));
}

const struct ir_counter *engine_counter(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->ncounters; i++)
		if (!strcmp(rs->counters[i].name, name))
			return &rs->counters[i];
	return NULL;
}

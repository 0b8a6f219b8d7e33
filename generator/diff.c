/* diff.c - what turns one ruleset into another.
 *
 * Structural: the table's shape (chains with their hooks and rules, sets'
 * names and types, counters' names) differs; the back end then replaces
 * the table.  Otherwise only set elements differ, and the delta per set is
 * found by one merge walk over the two sorted element arrays.  Comments of
 * the table, chains, sets and counters are not part of the shape; rule
 * comments are (they live in the rule).  Chains, sets and counters are
 * matched by name, so the order the kernel lists them in does not matter.
 */
#include "generator/internal.h"

#include <stdlib.h>
#include <string.h>

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Only the fields a rule kind uses take part, so that a reader that
 * leaves unused fields alone compares equal. */
static bool rule_eq(const struct ir_rule *a, const struct ir_rule *b)
{
	if (a->kind != b->kind || a->verdict != b->verdict || !str_eq(a->comment, b->comment))
		return false;
	switch (a->kind) {
	case IR_R_CT_STATE:
	case IR_R_NEW_NOT_SYN:
		return str_eq(a->target, b->target);
	case IR_R_LOOPBACK:
		return a->ifdir == b->ifdir;
	case IR_R_JUMP:
		if (!str_eq(a->ifname, b->ifname) || !str_eq(a->set, b->set) ||
		    !str_eq(a->target, b->target))
			return false;
		if (a->ifname && a->ifdir != b->ifdir)
			return false;
		return !a->set || (a->family == b->family && a->field == b->field);
	case IR_R_ICMP:
		return a->family == b->family && a->icmp_type == b->icmp_type;
	case IR_R_LOOKUP:
	case IR_R_VMAP:
		return a->family == b->family && a->field == b->field && str_eq(a->set, b->set);
	case IR_R_PORT_VMAP:
		return str_eq(a->set, b->set);
	case IR_R_LOG:
		return str_eq(a->set, b->set) && a->rate == b->rate && a->unit == b->unit &&
		       str_eq(a->log_prefix, b->log_prefix);
	case IR_R_COUNTER:
		return str_eq(a->set, b->set) && str_eq(a->target, b->target);
	case IR_R_PROTO:
		if (!str_eq(a->ifname, b->ifname) || !str_eq(a->set, b->set) ||
		    !str_eq(a->target, b->target) || a->l4proto != b->l4proto ||
		    a->dport != b->dport || (a->ifname && a->ifdir != b->ifdir))
			return false;
		return !a->set || (a->family == b->family && a->field == b->field);
	}
	return false;
}

static char *why(const char *fmt, ...) PRINTF(1, 2);
static char *why(const char *fmt, ...)
{
	struct strbuf sb = { 0 };
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	return sb.s;
}

static char *chain_diff(const struct ir_chain *l, const struct ir_chain *w)
{
	if (l->hook != w->hook || l->priority != w->priority ||
	    (w->hook != IR_HOOK_NONE && l->policy != w->policy))
		return why("chain '%s' changes its hook, priority or policy", w->name);
	for (size_t i = 0; i < w->nrules && i < l->nrules; i++)
		if (!rule_eq(&l->rules[i], &w->rules[i]))
			return why("chain '%s': rule %zu changes", w->name, i + 1);
	if (l->nrules != w->nrules)
		return why("chain '%s' has %zu rules instead of %zu", w->name,
			   w->nrules, l->nrules);
	return NULL;
}

static char *chains_diff(const struct ir_ruleset *l, const struct ir_ruleset *w)
{
	char *r;

	for (size_t i = 0; i < w->nchains; i++) {
		const struct ir_chain *lc = ir_find_chain(l, w->chains[i].name);

		if (!lc)
			return why("chain '%s' is new", w->chains[i].name);
		if ((r = chain_diff(lc, &w->chains[i])))
			return r;
	}
	for (size_t i = 0; i < l->nchains; i++)
		if (!ir_find_chain(w, l->chains[i].name))
			return why("chain '%s' goes away", l->chains[i].name);
	return NULL;
}

static bool set_same_type(const struct ir_set *a, const struct ir_set *b)
{
	return a->key == b->key && a->is_map == b->is_map;
}

static char *sets_diff(const struct ir_ruleset *l, const struct ir_ruleset *w)
{
	for (size_t i = 0; i < w->nsets; i++) {
		const struct ir_set *ls = ir_find_set(l, w->sets[i].name);

		if (!ls)
			return why("%s '%s' is new", w->sets[i].is_map ? "map" : "set",
				   w->sets[i].name);
		if (!set_same_type(ls, &w->sets[i]))
			return why("set '%s' changes its type", w->sets[i].name);
	}
	for (size_t i = 0; i < l->nsets; i++)
		if (!ir_find_set(w, l->sets[i].name))
			return why("%s '%s' goes away", l->sets[i].is_map ? "map" : "set",
				   l->sets[i].name);
	return NULL;
}

static bool has_counter(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->ncounters; i++)
		if (!strcmp(rs->counters[i].name, name))
			return true;
	return false;
}

static char *counters_diff(const struct ir_ruleset *l, const struct ir_ruleset *w)
{
	for (size_t i = 0; i < w->ncounters; i++)
		if (!has_counter(l, w->counters[i].name))
			return why("counter '%s' is new", w->counters[i].name);
	for (size_t i = 0; i < l->ncounters; i++)
		if (!has_counter(w, l->counters[i].name))
			return why("counter '%s' goes away", l->counters[i].name);
	return NULL;
}

static char *structural(const struct ir_ruleset *l, const struct ir_ruleset *w)
{
	char *r;

	if (!l)
		return why("table inet %s does not exist", w->table);
	if (strcmp(l->table, w->table))
		return why("table inet %s replaces table inet %s", w->table, l->table);
	if ((l->flags & IR_TABLE_F_DORMANT) && !(w->flags & IR_TABLE_F_DORMANT))
		return why("table is dormant (flags dormant): filtering is off");
	if (l->flags != w->flags)
		return why("table has flags 0x%x instead of 0x%x", (unsigned)l->flags,
			   (unsigned)w->flags);
	if ((r = chains_diff(l, w)) || (r = sets_diff(l, w)) || (r = counters_diff(l, w)))
		return r;
	return NULL;
}

/* ---- element deltas ------------------------------------------------- */

/* The elements of `s` in ir_elem_cmp order: the array itself when it is
 * sorted (always, for generated sets), else a sorted view. */
struct view {
	const struct ir_elem *v;
	const struct ir_elem **p;       /* NULL when v is sorted */
	size_t n;
};

static int elem_pcmp(const void *x, const void *y)
{
	return ir_elem_cmp(*(const struct ir_elem *const *)x,
			   *(const struct ir_elem *const *)y);
}

static void view_init(struct view *vw, const struct ir_set *s)
{
	vw->v = s ? s->elems : NULL;
	vw->n = s ? s->nelems : 0;
	vw->p = NULL;
	for (size_t i = 1; i < vw->n; i++) {
		if (ir_elem_cmp(&vw->v[i - 1], &vw->v[i]) < 0)
			continue;
		vw->p = xcalloc(vw->n, sizeof(*vw->p));
		for (size_t j = 0; j < vw->n; j++)
			vw->p[j] = &vw->v[j];
		qsort(vw->p, vw->n, sizeof(*vw->p), elem_pcmp);
		return;
	}
}

static const struct ir_elem *view_at(const struct view *vw, size_t i)
{
	return vw->p ? vw->p[i] : &vw->v[i];
}

static const char *target(const struct ir_ruleset *rs, const struct ir_elem *e)
{
	return e->chain < rs->nchains ? rs->chains[e->chain].name : "";
}

static void set_delta(const struct ir_ruleset *live, const struct ir_set *ls,
		      const struct ir_ruleset *want, const struct ir_set *ws,
		      struct ir_set_delta *d)
{
	struct view l, w;
	size_t i = 0, j = 0;

	view_init(&l, ls);
	view_init(&w, ws);
	d->add = xcalloc(w.n + 1, sizeof(*d->add));
	d->del = xcalloc(l.n + 1, sizeof(*d->del));
	while (i < l.n || j < w.n) {
		const struct ir_elem *a = i < l.n ? view_at(&l, i) : NULL;
		const struct ir_elem *b = j < w.n ? view_at(&w, j) : NULL;
		int c = !a ? 1 : !b ? -1 : ir_elem_cmp(a, b);

		if (c < 0) {
			d->del[d->ndel++] = a;
			i++;
		} else if (c > 0) {
			d->add[d->nadd++] = b;
			j++;
		} else {
			if (ws->is_map && strcmp(target(live, a), target(want, b))) {
				d->del[d->ndel++] = a;
				d->add[d->nadd++] = b;
			}
			i++;
			j++;
		}
	}
	free(l.p);
	free(w.p);
}

void ir_diff(const struct ir_ruleset *live, const struct ir_ruleset *want,
	     struct ir_diff *out)
{
	memset(out, 0, sizeof(*out));
	out->why = structural(live, want);
	out->structural = out->why != NULL;
	out->sets = xcalloc(want->nsets + 1, sizeof(*out->sets));
	for (size_t i = 0; i < want->nsets; i++) {
		const struct ir_set *ws = &want->sets[i];
		const struct ir_set *ls = live ? ir_find_set(live, ws->name) : NULL;
		struct ir_set_delta d = { .set = ws };

		if (ls && !set_same_type(ls, ws))
			ls = NULL;      /* replaced whole: every element is new */
		set_delta(live, ls, want, ws, &d);
		if (d.nadd || d.ndel) {
			out->sets[out->nsets++] = d;
		} else {
			free(d.add);
			free(d.del);
		}
	}
}

bool ir_diff_empty(const struct ir_diff *d)
{
	return !d->structural && d->nsets == 0;
}

void ir_diff_free(struct ir_diff *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nsets; i++) {
		free(d->sets[i].add);
		free(d->sets[i].del);
	}
	free(d->sets);
	free(d->why);
	memset(d, 0, sizeof(*d));
}

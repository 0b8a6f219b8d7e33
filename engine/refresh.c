/* refresh.c - the refresh cycle of `fedwall refresh` (cron) and the
 * daemon: resolve what is due, read every list, fall back on the last
 * known good state where a source fails, hold back partners the guards
 * refuse, apply what changed in one transaction (engine_apply), save the
 * state.
 *
 * Quiet when nothing changed; one line per changed partner to r->out;
 * errors and notes through `d`.  Whatever fails, the kernel keeps a whole
 * ruleset: never half a refresh, never open. */
#include "engine/engine.h"
#include "generator/generator.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the want builder keeps between engine_apply's tries. */
struct rctx {
	struct engine_refresh *r;
	const struct state *st;         /* as it was before this cycle */
	int64_t now;
	size_t n;                       /* partners */
	struct ir_ruleset *want;
	struct addr_list *before;       /* per partner, live in the kernel */
	struct addr_list *after;        /* per partner, in `want` */
	struct addr_list *prop;         /* per partner, proposed: inline + sources;
					 * built by the first build_want() (a run
					 * that finds nothing changed needs none) */
	char **refused;                 /* per partner: why the guards said no */
	bool had_table;
	uint64_t inputs;                /* engine_inputs_digest(); 0 once a partner is held back */
	bool reloaded;                  /* engine_refresh.reloaded */
	/* The incremental refresh (engine_incr): */
	bool may_patch;                 /* the state can vouch for the table */
	struct spans *old;              /* per partner, what the state says the
					 * table was built from (built when first
					 * wanted); NULL: no patching */
	struct spans *given;            /* per partner, what the sources give */
	uint64_t old_inputs;            /* their digest */
	uint64_t live_inputs;           /* engine_apply_opts.live_inputs */
	struct engine_incr inc;         /* what the patch did */
	bool patched;                   /* `want` is live, patched */
};

static void lists_free(struct addr_list *l, size_t n)
{
	for (size_t i = 0; l && i < n; i++)
		addr_list_free(&l[i]);
	free(l);
}

static void rctx_reset(struct rctx *c)
{
	ir_free(c->want);
	lists_free(c->before, c->n);
	lists_free(c->after, c->n);
	for (size_t i = 0; c->refused && i < c->n; i++)
		free(c->refused[i]);
	free(c->refused);
	c->want = NULL;
	c->before = c->after = NULL;
	c->refused = NULL;
	c->patched = false;
	ir_diff_free(&c->inc.diff);
}

static void push_inline(const struct partner *pt, struct addr_list *out)
{
	for (size_t k = 0; k < pt->naddresses; k++)
		addr_list_push(out, &pt->addresses[k].p, &pt->addresses[k].loc);
}

/* What becomes of a partner the guards refused (`why`, taken): it keeps
 * what it has, unless that breaks the guards itself (a table from before
 * them, or one forced past them): then it is admitted nowhere, and the
 * hole is closed rather than kept.  Only a shrink may be forced. */
static char *held_back(const struct guards *g, struct addr_list *have, char *why,
		       bool shrink)
{
	char *old = guard_width(g, have);
	struct strbuf sb = { 0 };

	sb_addf(&sb, "%s; ", why);
	if (old) {
		sb_addf(&sb, "what it has now breaks the guards too (%s): it is admitted"
			" nowhere until that is fixed", old);
		have->n = 0;
	} else {
		sb_addf(&sb, "it keeps its previous addresses%s",
			shrink ? " (fedwall refresh --force applies it)" : "");
	}
	free(old);
	free(why);
	return sb.s;
}

/* Partner i's addresses now (live, or the state when there is no table);
 * whether the guards let it move to `prop`. */
static void guard_one(struct rctx *c, size_t i, const struct ir_ruleset *live,
		      struct addr_list *have, const struct addr_list *prop)
{
	const struct policy *p = c->r->p;
	struct addr_list stale = { 0 };
	bool shrink = false;
	char *why;

	if (!live) {
		push_inline(&p->partners[i], have);
		srcset_state_addrs(c->r->src, p, i, c->st, c->now, have);
	}
	srcset_stale_addrs(c->r->src, i, &stale);
	/* --force overrides max_shrink, never the width or the entry cap. */
	why = guard_width(&p->guards, prop);
	if (!why && !c->r->force) {
		why = guard_max_shrink(&p->guards, have->v, have->n, prop->v, prop->n,
				       stale.v, stale.n);
		shrink = why != NULL;
	}
	if (why)
		c->refused[i] = held_back(&p->guards, have, why, shrink);
	addr_list_free(&stale);
}

/* Generates quietly: overlap warnings each cron run would be noise (check
 * and generate show them); errors and -v show everything. */
static struct ir_ruleset *gen_quiet(const struct policy *p, const struct gen_addrs *extra,
				    bool verbose, struct diag *d)
{
	struct diag g;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	struct ir_ruleset *rs;

	diag_init(&g, mem);
	rs = generate(p, extra, &g);
	if (mem)
		fclose(mem);
	if ((g.errors || verbose) && buf && d->out)
		fputs(buf, d->out);
	d->errors += g.errors;
	free(buf);
	if (rs && g.errors) {
		ir_free(rs);
		rs = NULL;
	}
	return rs;
}

/* The state is behind the table (a commit went through, its save did
 * not): for a source that did not answer now, the state's last known good
 * may be older than what the table holds, and going back to it would
 * revert the table to older addresses.  The table is then the better
 * record: its partner keeps what the table holds.  Without a table (a
 * reboot) the state is all there is. */
static char *behind_hold(const struct rctx *c, size_t i, const struct ir_ruleset *live)
{
	const struct srcset *s = c->r->src;
	struct strbuf sb = { 0 };

	if (!c->st->behind || !live)
		return NULL;
	for (size_t k = 0; k < s->n; k++) {
		const struct src *x = &s->v[k];

		/* A source gone stale is dropped as ever: dropping never
		 * admits older addresses. */
		if (x->partner != i || x->status == SRC_FRESH || x->status == SRC_STALE)
			continue;
		sb_addf(&sb, "its %s '%s' did not answer, and the state is behind the"
			" table (a save failed), so the table's addresses are the last"
			" known good", state_kind_name(x->kind), x->key);
		return sb.s;
	}
	return NULL;
}

/* Whether the state can vouch for what the table was built from: not
 * behind it, and no source gone stale (stale addresses leave by the full
 * derivation's rules).  Otherwise the table is not patched. */
static bool state_vouches(const struct engine_refresh *r, const struct state *st)
{
	if (st->behind)
		return false;
	for (size_t i = 0; i < r->src->n; i++)
		if (r->src->v[i].status == SRC_STALE)
			return false;
	return true;
}

/* Per partner, the addresses a patch weighs, as spans: borrowed from
 * the one array that holds them when there is one (a partner with one
 * list and no inline addresses: no copy), else gathered into `own`. */
struct spans {
	struct prefix_span *v;
	struct prefix **own;
	uint8_t **own_scope;    /* the spans' scope arrays */
	size_t n;
};

typedef VEC(struct prefix_span) span_vec;

static void spans_free(struct spans *sp)
{
	for (size_t i = 0; sp && i < sp->n; i++) {
		free(sp->own[i]);
		free(sp->own_scope[i]);
	}
	if (sp) {
		free(sp->own);
		free(sp->own_scope);
		free(sp->v);
	}
	free(sp);
}

/* The scope array of partner i's span when a piece has one: each piece's
 * addresses share their source's scope (pscope, parallel to pc). */
static void spans_scope(struct spans *sp, size_t i, const span_vec *pc, const uint8_t *pscope)
{
	size_t total = 0, k = 0;
	bool any = false;
	uint8_t *sc;

	for (size_t j = 0; j < pc->n; j++) {
		total += pc->v[j].n;
		any |= pscope[j] != 0;
	}
	if (!any)
		return;
	sc = xcalloc(total + 1, sizeof(*sc));
	for (size_t j = 0; j < pc->n; j++)
		for (size_t q = 0; q < pc->v[j].n; q++)
			sc[k++] = pscope[j];
	sp->own_scope[i] = sc;
	sp->v[i].scope = sc;
}

/* Partner i's span from its pieces (none empty). */
static void spans_set(struct spans *sp, size_t i, const span_vec *pc)
{
	size_t total = 0, k = 0;
	struct prefix *m;

	if (pc->n == 1)
		sp->v[i] = pc->v[0];
	if (pc->n <= 1)
		return;
	for (size_t j = 0; j < pc->n; j++)
		total += pc->v[j].n;
	m = xreallocarray(NULL, total, sizeof(*m));
	for (size_t j = 0; j < pc->n; j++) {
		memcpy(m + k, pc->v[j].v, pc->v[j].n * sizeof(*m));
		k += pc->v[j].n;
	}
	sp->own[i] = m;
	sp->v[i] = (struct prefix_span){ m, total, NULL };
}

/* Partner i's inline addresses, then its sources' from `state` (their
 * last known good not stale at `now`) or, state NULL, what they give
 * now (fresh or kept): the order engine_proposed() builds them in. */
static void spans_partner(const struct rctx *c, size_t i, const struct state *state,
			  struct spans *sp)
{
	const struct partner *pt = &c->r->p->partners[i];
	const struct srcset *s = c->r->src;
	span_vec pc = { 0 };
	VEC(uint8_t) pscope = { 0 };
	struct prefix *inl = NULL;

	if (pt->naddresses) {
		inl = xreallocarray(NULL, pt->naddresses, sizeof(*inl));
		for (size_t k = 0; k < pt->naddresses; k++)
			inl[k] = pt->addresses[k].p;
		VEC_PUSH(&pc, ((struct prefix_span){ inl, pt->naddresses, NULL }));
		VEC_PUSH(&pscope, 0);
	}
	for (size_t k = 0; k < s->n; k++) {
		const struct src *x = &s->v[k];
		const struct state_entry *e;

		if (x->partner != i)
			continue;
		e = state ? srcset_state_of(s, c->r->p, k, state, c->now) : NULL;
		if (e && e->naddrs)
			VEC_PUSH(&pc, ((struct prefix_span){ e->addrs, e->naddrs, NULL }));
		else if (!state && x->naddrs && src_contributes(x))
			VEC_PUSH(&pc, ((struct prefix_span){ x->addrs, x->naddrs, NULL }));
		else
			continue;
		VEC_PUSH(&pscope, x->scope);
	}
	spans_set(sp, i, &pc);
	spans_scope(sp, i, &pc, pscope.v);
	free(pscope.v);
	if (sp->own[i] || !inl)
		free(inl);
	else
		sp->own[i] = inl;       /* the span is the inline copy */
	free(pc.v);
}

static struct spans *spans_build(const struct rctx *c, const struct state *state)
{
	struct spans *sp = xcalloc(1, sizeof(*sp));

	sp->n = c->n;
	sp->v = xcalloc(c->n + 1, sizeof(*sp->v));
	sp->own = xcalloc(c->n + 1, sizeof(*sp->own));
	sp->own_scope = xcalloc(c->n + 1, sizeof(*sp->own_scope));
	for (size_t i = 0; i < c->n; i++)
		spans_partner(c, i, state, sp);
	return sp;
}

/* FEDWALL_INCR: "0" never patches, "verify" checks every patch against
 * the full derivation (tests). */
static const char *incr_mode(void)
{
	const char *m = getenv("FEDWALL_INCR");

	return m ? m : "";
}

/* Why the table cannot be patched (NULL: it can be tried). */
static const char *no_patch(const struct rctx *c, const struct ir_ruleset *live)
{
	if (!strcmp(incr_mode(), "0"))
		return "off (FEDWALL_INCR=0)";
	if (!live)
		return "there is no table";
	if (!c->old)
		return "a source did not answer, went stale or the state is behind";
	if (!c->live_inputs)
		return "the live table was read back, not from a cache that names its inputs";
	if (c->live_inputs != c->old_inputs)
		return "the live table was not built from what the state records";
	return NULL;
}

/* FEDWALL_INCR=verify: the patch against the full derivation. */
static bool patch_verified(struct rctx *c, const struct ir_ruleset *want, struct diag *d)
{
	struct gen_addrs *extra = xcalloc(c->n + 1, sizeof(*extra));
	struct ir_ruleset *full;
	struct ir_diff diff = { 0 };
	bool same;

	if (!c->prop)
		c->prop = engine_proposed(c->r->p, c->r->src, NULL);
	for (size_t i = 0; i < c->n; i++)
		extra[i] = engine_gen_addrs(&c->prop[i]);
	full = gen_quiet(c->r->p, extra, false, d);
	if (full)
		ir_diff(want, full, &diff);
	same = full && ir_diff_empty(&diff);
	if (!same)
		diag_error(d, NULL, "FEDWALL_INCR=verify: the patched table inet %s is not the"
			   " full derivation's: %s", c->r->p->table,
			   !full ? "no full derivation" : diff.why ? diff.why : "elements differ");
	ir_diff_free(&diff);
	ir_free(full);
	free(extra);
	return same;
}

/* The wanted table as `live` patched with what the sources changed
 * (engine_incr), when the live table is exactly what the state's
 * addresses make: 1; 0: derive it in full; -1 after an error. */
static int try_patch(struct rctx *c, const struct ir_ruleset *live, struct diag *d)
{
	const char *why;

	if (c->may_patch && !c->old && live) {
		c->old = spans_build(c, c->st);
		c->given = spans_build(c, NULL);
		c->old_inputs = engine_spans_digest(c->r->p, c->old->v);
	}
	why = no_patch(c, live);
	struct ir_ruleset *want = NULL;

	if (!why) {
		want = engine_incr(c->r->p, live, c->old->v, c->given->v, c->r->force, &c->inc);
		why = want ? NULL : c->inc.why;
	}
	if (want && !strcmp(incr_mode(), "verify") && !patch_verified(c, want, d)) {
		ir_free(want);
		return -1;      /* the error stands: nothing is committed */
	}
	if (c->r->verbose && want)
		diag_note(d, NULL, "table inet %s: incremental: %zu partner%s patched, +%zu -%zu"
			  " elements", c->r->p->table, c->inc.npartners,
			  c->inc.npartners == 1 ? "" : "s", c->inc.nadd, c->inc.ndel);
	else if (c->r->verbose)
		diag_note(d, NULL, "table inet %s: full derivation: %s", c->r->p->table, why);
	if (!want)
		return 0;
	c->want = want;
	c->patched = true;
	c->had_table = true;
	return 1;
}

/* A partner held back keeps each address on the services the table
 * admits it on (engine_partner_scopes), read only when one is. */
static void held_scopes(const struct rctx *c, const struct ir_ruleset *live,
			struct addr_list *have, struct gen_addrs *extra)
{
	bool any = false;

	for (size_t i = 0; i < c->n; i++)
		any |= c->refused[i] != NULL;
	if (!any || !live)
		return;
	engine_partner_scopes(live, c->r->p, have);
	for (size_t i = 0; i < c->n; i++)
		if (c->refused[i])
			extra[i].scope = have[i].scope;
}

static const struct ir_ruleset *build_want(void *arg, const struct ir_ruleset *live,
					   struct diag *d)
{
	struct rctx *c = arg;
	const struct policy *p = c->r->p;
	struct addr_list *have = xcalloc(c->n + 1, sizeof(*have));
	struct gen_addrs *extra = xcalloc(c->n + 1, sizeof(*extra));

	int patched;

	rctx_reset(c);
	patched = try_patch(c, live, d);
	if (patched)
		goto out_free;
	if (!c->prop)
		c->prop = engine_proposed(p, c->r->src, NULL);
	c->refused = xcalloc(c->n + 1, sizeof(*c->refused));
	c->before = xcalloc(c->n + 1, sizeof(*c->before));
	c->after = xcalloc(c->n + 1, sizeof(*c->after));
	c->had_table = live != NULL;
	if (live) {
		engine_partner_addrs(live, p, have);
		engine_addr_lists_copy(c->before, have, c->n);
	}
	for (size_t i = 0; i < c->n; i++) {
		const struct addr_list *use;

		guard_one(c, i, live, &have[i], &c->prop[i]);
		if (!c->refused[i])
			c->refused[i] = behind_hold(c, i, live);
		if (c->refused[i])
			c->inputs = 0;  /* the table is not what the inputs make */
		/* Held back: what it had (the generator adds the inline ones). */
		use = c->refused[i] ? &have[i] : &c->prop[i];
		extra[i] = engine_gen_addrs(use);        /* with a feed's ports */
	}
	held_scopes(c, live, have, extra);
	c->want = gen_quiet(p, extra, c->r->verbose, d);
	if (c->want)
		engine_partner_addrs(c->want, p, c->after);
out_free:
	free(extra);
	lists_free(have, c->n);
	return c->want;
}

/* The patch's diff (engine_incr) for the table it patched: the commit
 * takes it as it is. */
static bool patch_diff(void *arg, const struct ir_ruleset *live, const struct ir_ruleset *want,
		       struct ir_diff *out)
{
	struct rctx *c = arg;

	if (!c->patched || want != c->want || !c->inc.diff.sets)
		return false;
	(void)live;     /* the one build_want() patched */
	*out = c->inc.diff;
	memset(&c->inc.diff, 0, sizeof(c->inc.diff));
	return true;
}

/* ---- reporting --------------------------------------------------------- */

/* Entries of a not in b (both sorted, unique). */
static size_t minus(const struct addr_list *a, const struct addr_list *b)
{
	size_t n = 0, j = 0;

	for (size_t i = 0; i < a->n; i++) {
		while (j < b->n && prefix_cmp(&b->v[j], &a->v[i]) < 0)
			j++;
		n += !(j < b->n && prefix_cmp(&b->v[j], &a->v[i]) == 0);
	}
	return n;
}

static bool moved(const struct src *x)
{
	return x->changed || x->status == SRC_STALE;
}

/* Whether x is a name's AAAA source whose A source (right before it,
 * srcset_build) moved too: the name is said once. */
static bool said_with_a(const struct srcset *s, size_t i)
{
	const struct src *x = &s->v[i], *a = i ? &s->v[i - 1] : NULL;

	return a && x->family == 6 && a->family == 4 && a->partner == x->partner &&
	       a->kind == x->kind && !strcmp(a->key, x->key) && moved(a);
}

/* "hosts a b; lists /x": the partner's sources that moved. */
static void moved_sources(const struct srcset *s, size_t partner, struct strbuf *sb)
{
	static const char *const words[] = { "hosts", "domains", "lists", "list URLs",
					      "feeds" };

	for (int kind = STATE_HOST; kind <= STATE_FEED; kind++) {
		bool first = true;

		for (size_t i = 0; i < s->n; i++) {
			const struct src *x = &s->v[i];

			if (x->partner != partner || (int)x->kind != kind || !moved(x) ||
			    said_with_a(s, i))
				continue;
			/* a feed's key adds its partner and filters' digest */
			sb_addf(sb, "%s%s %s", first ? (sb->len ? "; " : "") : "",
				first ? words[kind] : "", kind == STATE_FEED ? x->name : x->key);
			first = false;
		}
	}
}

/* A feed of partner i changed what ports its addresses have, maybe
 * without adding or removing one. */
static bool feed_moved(const struct srcset *s, size_t i)
{
	for (size_t k = 0; k < s->n; k++)
		if (s->v[k].partner == i && s->v[k].kind == STATE_FEED && s->v[k].changed)
			return true;
	return false;
}

static void report(struct rctx *c, bool created)
{
	const struct policy *p = c->r->p;

	for (size_t i = 0; i < c->n; i++) {
		size_t add = c->patched ? c->inc.padd[i] : minus(&c->after[i], &c->before[i]);
		size_t del = c->patched ? c->inc.pdel[i] : minus(&c->before[i], &c->after[i]);
		struct strbuf why = { 0 };

		if (!add && !del && !feed_moved(c->r->src, i))
			continue;
		c->r->changed++;
		moved_sources(c->r->src, i, &why);
		if (!c->r->out)
			goto next;
		fprintf(c->r->out, "fedwall: partner %s: +%zu -%zu address%s%s (%s)\n",
			p->partners[i].name, add, del, add + del == 1 ? "" : "es",
			!add && !del ? ", ports moved" : "",
			why.len ? sb_str(&why) : created ? "table created"
			: c->reloaded ? "reloaded the policy"
			: "the table differed from the policy: restored");
		fflush(c->r->out);
next:
		sb_free(&why);
	}
}

/* A commit no partner's addresses explain: the table was flushed or
 * edited behind fedwall's back, or the policy changed (c->reloaded when
 * the daemon knows it did; a one-shot refresh cannot tell).  Said once. */
static void report_restored(struct engine_refresh *r, const struct rctx *c,
			    const struct engine_applied *res)
{
	if (!res->changed || !c->had_table || r->changed || !r->out)
		return;
	fprintf(r->out, "fedwall: table inet %s: %s%s%s%s\n", r->p->table,
		c->reloaded ? "reloaded the policy: the table follows it"
		: "restored: it differed from the policy",
		res->why[0] ? " (" : "", res->why, res->why[0] ? ")" : "");
	fflush(r->out);
}

static void report_refused(struct rctx *c, struct diag *d)
{
	const struct policy *p = c->r->p;

	for (size_t i = 0; c->refused && i < c->n; i++) {
		if (!c->refused[i])
			continue;
		c->r->refused++;
		diag_error(d, &p->partners[i].loc, "partner '%s': refresh refused: %s",
			   p->partners[i].name, c->refused[i]);
	}
}

static void report_sources(struct engine_refresh *r, struct diag *d)
{
	for (size_t i = 0; i < r->src->n; i++) {
		const struct src *x = &r->src->v[i];

		r->failed += x->failed;
		if (r->verbose && x->due && x->status == SRC_FRESH)
			diag_note(d, &x->loc, "partner '%s': %s: %zu address%s%s",
				  r->p->partners[x->partner].name, x->key, x->naddrs,
				  x->naddrs == 1 ? "" : "es", x->changed ? " (changed)" : "");
	}
}

/* ---- the cycle ----------------------------------------------------------- */

static bool any_dns_due(const struct srcset *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].due && src_is_dns(&s->v[i]))
			return true;
	return false;
}

/* A save that fails after a commit leaves the state older than the
 * table: marked (state_mark_behind), so that no later run takes the
 * state's older addresses over the table's (behind_hold).  The mark goes
 * with the first save of a run in which every partner took what its
 * sources gave: the state then records exactly what the table holds. */
static void save_failed(struct state *st, bool committed, const char *path, int err,
			struct diag *d)
{
	diag_error(d, NULL, "cannot save the state to '%s': %s", path, strerror(-err));
	if (!committed && !st->behind)
		return;         /* the state still vouches for what the table holds */
	err = state_mark_behind(path);
	if (err)
		diag_error(d, NULL, "cannot mark the state as behind the table either"
			   " ('%s%s': %s): until a save succeeds, a source that does not"
			   " answer falls back on the older addresses it records", path,
			   STATE_BEHIND_SUFFIX, strerror(-err));
	else
		diag_note(d, NULL, "the state is behind the table until a save succeeds;"
			  " until then a partner whose source does not answer keeps what"
			  " the table holds");
}

static int save(struct rctx *c, struct state *st, bool committed, const char *path,
		struct diag *d)
{
	bool *skip = xcalloc(c->n + 1, sizeof(*skip));
	bool held = false;
	int err;

	for (size_t i = 0; c->refused && i < c->n; i++)
		held |= skip[i] = c->refused[i] != NULL;
	srcset_record(c->r->src, c->r->p, skip, st, c->now);
	err = state_write(st, path, d);
	if (err)
		save_failed(st, committed, path, err, d);
	else if (st->behind && !held)
		state_clear_behind(path);
	free(skip);
	return err;
}

/* Every source is read again while the state is behind the table: the
 * daemon's sources that are not due would otherwise take the state's
 * older addresses, and the mark goes only once all of them answered. */
static void behind_all_due(struct engine_refresh *r, const char *path, struct diag *d)
{
	for (size_t i = 0; i < r->src->n; i++)
		r->src->v[i].due = true;
	diag_warn(d, NULL, "the state '%s' is behind the table (a save failed after a"
		  " commit: '%s%s'): every source is read again, and a partner whose"
		  " source does not answer keeps what the table holds", path, path,
		  STATE_BEHIND_SUFFIX);
}

/* A refresh builds them once a cycle (cycle_apply): the inputs digest
 * and every try of build_want() use them. */
struct addr_list *engine_proposed(const struct policy *p, const struct srcset *s,
				  const struct addr_list *src)
{
	struct addr_list *prop = xcalloc(p->npartners + 1, sizeof(*prop));

	for (size_t i = 0; i < p->npartners; i++) {
		push_inline(&p->partners[i], &prop[i]);
		if (s)
			srcset_partner_addrs(s, i, &prop[i]);
		for (size_t k = 0; !s && src && k < src[i].n; k++) {
			const struct portset *g = addr_list_ports(&src[i], k);

			if (g)
				addr_list_push_ports(&prop[i], &src[i].v[k], &src[i].locs[k],
						     g->v, g->n);
			else
				addr_list_push_scoped(&prop[i], &src[i].v[k], &src[i].locs[k],
						      src[i].scope ? src[i].scope[k] : 0);
		}
	}
	return prop;
}

/* One address of partner i, mixed (mix64): the digest sums them, so
 * that it does not depend on the order the sources gave them in and a
 * refresh can keep it up to date change by change.  `scope`
 * (addr_list.scope) counts: the same address on other services is
 * another table. */
static uint64_t addr_mix(size_t i, const struct prefix *p, unsigned scope)
{
	uint64_t a, b;

	memcpy(&a, p->a, sizeof(a));
	memcpy(&b, p->a + 8, sizeof(b));
	return mix64(mix64(a ^ ((uint64_t)i << 16 | (uint64_t)p->family << 8 | p->len)) ^ b ^
		     ((uint64_t)scope << 56));
}

/* An address on a feed's ports of its own is another table than the
 * same address on all its partner's: the ports count, by their values. */
static uint64_t ports_mix(uint64_t m, const struct portset *g)
{
	uint64_t h = FNV1A64_INIT;

	if (!g)
		return m;
	for (size_t k = 0; k < g->n; k++) {
		uint8_t b[5] = { g->v[k].proto, (uint8_t)(g->v[k].lo >> 8), (uint8_t)g->v[k].lo,
				 (uint8_t)(g->v[k].hi >> 8), (uint8_t)g->v[k].hi };

		h = fnv1a64(h, b, sizeof(b));
	}
	return mix64(m ^ h);
}

static uint64_t digest_of(const struct policy *p, uint64_t sum)
{
	uint64_t h = mix64(fnv1a64(FNV1A64_INIT, &p->digest, sizeof(p->digest)) ^ sum);

	return h ? h : 1;
}

uint64_t engine_inputs_digest(const struct policy *p, const struct addr_list *prop)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < p->npartners; i++)
		for (size_t k = 0; k < prop[i].n; k++)
			sum += ports_mix(addr_mix(i, &prop[i].v[k],
						  prop[i].scope ? prop[i].scope[k] : 0),
					 addr_list_ports(&prop[i], k));
	return digest_of(p, sum);
}

uint64_t engine_spans_digest(const struct policy *p, const struct prefix_span *sp)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < p->npartners; i++)
		for (size_t k = 0; k < sp[i].n; k++)
			sum += addr_mix(i, &sp[i].v[k], sp[i].scope ? sp[i].scope[k] : 0);
	return digest_of(p, sum);
}

uint64_t engine_sources_digest(const struct policy *p, const struct srcset *s)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < p->npartners; i++)
		for (size_t k = 0; k < p->partners[i].naddresses; k++)
			sum += addr_mix(i, &p->partners[i].addresses[k].p, 0);
	for (size_t k = 0; k < s->n; k++) {
		const struct src *x = &s->v[k];

		if (!src_contributes(x))
			continue;
		for (size_t j = 0; j < x->naddrs; j++)
			sum += ports_mix(addr_mix(x->partner, &x->addrs[j], x->scope),
					 x->grp && x->grp[j] ? &x->groups[x->grp[j] - 1] : NULL);
	}
	return digest_of(p, sum);
}

static int cycle_apply(struct engine_refresh *r, struct state *st, const char *path,
		       int64_t now, struct diag *d)
{
	struct rctx c = { .r = r, .st = st, .now = now, .n = r->p->npartners,
			  .inputs = engine_sources_digest(r->p, r->src),
			  .reloaded = r->reloaded, .may_patch = state_vouches(r, st) };
	struct engine_apply_opts ao = { .want = build_want, .arg = &c, .verbose = r->verbose,
					.out = r->verbose ? r->out : NULL,
					.cache_dir = r->state_dir, .inputs = &c.inputs,
					.policy = r->p, .live_inputs = &c.live_inputs,
					.known_diff = patch_diff };
	struct engine_applied res;
	int ret;

	c.inc.padd = xcalloc(c.n + 1, sizeof(*c.inc.padd));
	c.inc.pdel = xcalloc(c.n + 1, sizeof(*c.inc.pdel));
	ret = engine_apply(r->p->table, &ao, &res, d);
	report_refused(&c, d);
	if (!ret && res.unchanged) {
		ret = save(&c, st, false, path, d);
	} else if (!ret) {
		report(&c, !c.had_table);
		report_restored(r, &c, &res);
		ret = save(&c, st, res.changed, path, d);
	}
	rctx_reset(&c);
	lists_free(c.prop, c.n);
	spans_free(c.old);
	spans_free(c.given);
	free(c.inc.padd);
	free(c.inc.pdel);
	return ret;
}

int engine_refresh_cycle(struct engine_refresh *r, struct diag *d)
{
	struct src_opts so = { .fetch = true, .now = (int64_t)time(NULL) };
	struct state st = { 0 };
	struct strbuf path = { 0 };
	int ret;

	r->refused = r->failed = r->changed = 0;
	sb_addf(&path, "%s/%s", r->state_dir, STATE_FILE_NAME);
	ret = state_load(&st, path.s, d);
	if (ret)
		diag_warn(d, NULL, "cannot read the state '%s': %s; starting without last"
			  " known good addresses", path.s, strerror(-ret));
	if (st.behind)
		behind_all_due(r, path.s, d);
	if (any_dns_due(r->src)) {
		struct dns_opts dopt = {
			.timeout_ms = r->p->resolve.timeout * 1000,
			.deadline_ms = r->p->resolve.timeout * 3000 > DNS_DEFAULT_DEADLINE_MS
				       ? r->p->resolve.timeout * 3000 : 0,
		};

		so.dns = dns_ctx_new(&dopt, d);
		if (!so.dns)
			diag_warn(d, NULL, "no DNS resolver: host names and domains keep"
				  " their last known good addresses");
	}
	srcset_fill(r->p, r->src, &st, &so, d);
	dns_ctx_free(so.dns);
	report_sources(r, d);
	ret = cycle_apply(r, &st, path.s, so.now, d);
	state_free(&st);
	sb_free(&path);
	return ret;
}

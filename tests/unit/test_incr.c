/* test_incr.c - the incremental refresh (engine/incr.c) against the full
 * derivation: for random partner addresses and random changes to them
 * (overlaps between partners, nesting and joins within one, duplicates,
 * removals), a patched table must equal, element for element, the table
 * generate() makes from the new addresses, and a patch must never be made
 * where the full derivation's guards would hold a partner back.  Pure: no
 * root, no kernel.  Fixed seed; INCR_SEED overrides it. */
#include "engine/engine.h"
#include "generator/generator.h"
#include "refresh/refresh.h"
#include "../harness.h"

#include <stdlib.h>
#include <string.h>

#define ROUNDS 3000
#define NPART 4

static unsigned rng_state = 20261207;

static uint32_t rnd(void)
{
	return th_xorshift(&rng_state);
}

static unsigned below(unsigned n)
{
	return n ? rnd() % n : 0;
}

/* Guards low enough that a few random neighbours can join past them. */
static const char POLICY[] =
	"version: 1\n"
	"partners:\n"
	"  alpha:\n    services: [sip-federation]\n    direction: both\n"
	"    hosts: [alpha.example.test]\n"
	"  beta:\n    services: [sip-federation, xmpp-s2s]\n    direction: inbound\n"
	"    lists: [beta.txt]\n"
	"  gamma:\n    services: [xmpp-s2s]\n    direction: outbound\n"
	"    hosts: [gamma.example.test]\n"
	"  delta:\n    services: [av-edge]\n    direction: both\n"
	"    lists: [delta.txt]\n"
	"guards: {min_prefix_v4: 21, min_prefix_v6: 56, max_shrink: 30%}\n";

/* A prefix inside 198.51.96.0/20 or 2001:db8:0:ff00::/56, where random
 * ones overlap, nest and touch often. */
static struct prefix rand_prefix(void)
{
	struct prefix p = { 0 };

	if (below(4)) {
		p.family = 4;
		p.len = (uint8_t)(22 + below(11));
		p.a[0] = 198;
		p.a[1] = 51;
		p.a[2] = (uint8_t)(96 + below(16));
		p.a[3] = (uint8_t)rnd();
	} else {
		p.family = 6;
		p.len = (uint8_t)(120 + below(9));
		memcpy(p.a, "\x20\x01\x0d\xb8\x00\x00\xff\x00", 8);
		p.a[15] = (uint8_t)rnd();
		p.a[14] = (uint8_t)below(2);
	}
	prefix_mask(&p);
	return p;
}

/* The other half of p's parent: the prefix p joins with. */
static struct prefix sibling(struct prefix p)
{
	p.a[(p.len - 1) / 8] ^= (uint8_t)(0x80 >> ((p.len - 1) % 8));
	return p;
}

static void rand_list(struct addr_list *l)
{
	for (unsigned k = 0, n = below(12); k < n; k++) {
		struct prefix p = rand_prefix();

		addr_list_push(l, &p, NULL);
	}
}

/* `after`: `before` with a few random changes. */
static void rand_change(const struct addr_list *before, struct addr_list *after)
{
	for (size_t k = 0; k < before->n; k++)
		if (below(8))
			addr_list_push(after, &before->v[k], NULL);
	for (unsigned k = 0, n = below(3); k < n; k++) {
		struct prefix p = rand_prefix();

		switch (below(5)) {
		case 0:         /* next to one it has: they may join */
			if (before->n)
				p = sibling(before->v[below((unsigned)before->n)]);
			break;
		case 1:         /* inside one it has */
			if (before->n && before->v[0].len < prefix_maxlen(&before->v[0])) {
				p = before->v[0];
				p.len++;
			}
			break;
		case 2:         /* a duplicate */
			if (before->n)
				p = before->v[below((unsigned)before->n)];
			break;
		default:
			break;
		}
		addr_list_push(after, &p, NULL);
	}
}

static void lists_free(struct addr_list *before, struct addr_list *after)
{
	for (size_t i = 0; i < NPART; i++) {
		addr_list_free(&before[i]);
		addr_list_free(&after[i]);
	}
}

/* Whether the patch `got` is the full derivation `full`, element for
 * element (false when either is missing). */
static bool same_table(const struct ir_ruleset *got, const struct ir_ruleset *full)
{
	struct ir_diff diff = { 0 };
	bool same;

	if (!got || !full)
		return false;
	ir_diff(got, full, &diff);
	same = ir_diff_empty(&diff);
	ir_diff_free(&diff);
	return same;
}

static struct ir_ruleset *gen(const struct policy *p, const struct addr_list *l)
{
	struct gen_addrs x[NPART];
	struct diag d;

	for (size_t i = 0; i < NPART; i++)
		x[i] = (struct gen_addrs){ l[i].v, l[i].n, NULL, l[i].scope, NULL, NULL, 0 };
	diag_init(&d, NULL);
	return generate(p, x, &d);
}

/* Whether the full derivation's guards let every partner move from what
 * `live` holds to `after` (engine/refresh.c guard_one, without --force). */
static bool guards_pass(const struct policy *p, const struct ir_ruleset *live,
			const struct addr_list *after)
{
	struct addr_list have[NPART] = { 0 };
	bool ok = true;

	engine_partner_addrs(live, p, have);
	for (size_t i = 0; i < NPART; i++) {
		char *w = guard_width(&p->guards, &after[i]);
		char *s = w ? NULL : guard_max_shrink(&p->guards, have[i].v, have[i].n,
						      after[i].v, after[i].n, NULL, 0);

		ok &= !w && !s;
		free(w);
		free(s);
		addr_list_free(&have[i]);
	}
	return ok;
}

/* The counts refresh reports ("+A -R addresses"), as the full
 * derivation's report computes them from the two tables. */
static size_t minus_count(const struct addr_list *a, const struct addr_list *b)
{
	size_t n = 0;

	for (size_t i = 0; i < a->n; i++) {
		bool found = false;

		for (size_t j = 0; j < b->n && !found; j++)
			found = !prefix_cmp(&a->v[i], &b->v[j]);
		n += !found;
	}
	return n;
}

static void check_counts(const struct policy *p, const struct ir_ruleset *live,
			 const struct ir_ruleset *full, const struct engine_incr *inc)
{
	struct addr_list b[NPART] = { 0 }, a[NPART] = { 0 };

	engine_partner_addrs(live, p, b);
	engine_partner_addrs(full, p, a);
	for (size_t i = 0; i < NPART; i++) {
		CHECK_INT((long)inc->padd[i], (long)minus_count(&a[i], &b[i]));
		CHECK_INT((long)inc->pdel[i], (long)minus_count(&b[i], &a[i]));
		addr_list_free(&a[i]);
		addr_list_free(&b[i]);
	}
}

/* engine_incr over the lists' spans. */
static struct ir_ruleset *incr(const struct policy *p, const struct ir_ruleset *live,
			       const struct addr_list *before, const struct addr_list *after,
			       struct engine_incr *out)
{
	struct prefix_span b[NPART], a[NPART];

	for (size_t i = 0; i < NPART; i++) {
		b[i] = (struct prefix_span){ before[i].v, before[i].n, before[i].scope };
		a[i] = (struct prefix_span){ after[i].v, after[i].n, after[i].scope };
	}
	return engine_incr(p, live, b, a, false, out);
}

static unsigned n_patched, n_full, n_guarded, n_rounds;

/* The same sets with the same elements added and removed (pointers into
 * the same two tables), in any order of sets. */
static bool same_diff(const struct ir_diff *a, const struct ir_diff *b)
{
	if (a->structural || b->structural || a->nsets != b->nsets)
		return false;
	for (size_t i = 0; i < a->nsets; i++) {
		const struct ir_set_delta *x = &a->sets[i], *y = NULL;

		for (size_t j = 0; j < b->nsets && !y; j++)
			y = b->sets[j].set == x->set ? &b->sets[j] : NULL;
		if (!y || x->nadd != y->nadd || x->ndel != y->ndel ||
		    (x->nadd && memcmp(x->add, y->add, x->nadd * sizeof(*x->add))) ||
		    (x->ndel && memcmp(x->del, y->del, x->ndel * sizeof(*x->del))))
			return false;
	}
	return true;
}

/* The diff a patch hands the commit is the one ir_diff() finds. */
static void check_handed_diff(const struct ir_ruleset *live, const struct ir_ruleset *got,
			      const struct engine_incr *inc)
{
	struct ir_diff diff = { 0 };

	ir_diff(live, got, &diff);
	CHECK(same_diff(&diff, &inc->diff));
	ir_diff_free(&diff);
}

static void one_round(const struct policy *p)
{
	struct addr_list before[NPART] = { 0 }, after[NPART] = { 0 };
	size_t padd[NPART], pdel[NPART];
	struct engine_incr inc = { .padd = padd, .pdel = pdel };
	struct ir_ruleset *live, *full, *got;
	struct ir_diff diff = { 0 };

	for (size_t i = 0; i < NPART; i++) {
		char *w;

		rand_list(&before[i]);
		/* what is live went through the guards once */
		w = guard_width(&p->guards, &before[i]);
		if (w)
			before[i].n = 0;
		free(w);
		if (below(2))
			rand_change(&before[i], &after[i]);
		else            /* most partners unchanged, as in a real refresh */
			for (size_t k = 0; k < before[i].n; k++)
				addr_list_push(&after[i], &before[i].v[k], NULL);
	}
	live = gen(p, before);
	full = gen(p, after);
	CHECK(live && full);
	got = live && full ? incr(p, live, before, after, &inc) : NULL;
	n_rounds++;
	if (got) {
		n_patched++;
		ir_diff(got, full, &diff);
		CHECK(ir_diff_empty(&diff));
		if (!ir_diff_empty(&diff))
			fprintf(stderr, "  seed %u round %u: the patch is not the full derivation"
				" (%s)\n", rng_state, n_rounds, diff.why ? diff.why : "elements");
		ir_diff_free(&diff);
		check_handed_diff(live, got, &inc);
		/* never where the full path's guards would hold a partner back */
		CHECK(guards_pass(p, live, after));
		check_counts(p, live, full, &inc);
		ir_diff_free(&diff);
	} else if (live && full) {
		n_full++;
		n_guarded += !guards_pass(p, live, after);
		CHECK(inc.why[0] != '\0');
	}
	ir_diff_free(&inc.diff);
	ir_free(got);
	ir_free(live);
	ir_free(full);
	lists_free(before, after);
}

static struct policy *load(void)
{
	struct diag d;

	diag_init(&d, stderr);
	return policy_parse("incr.yaml", POLICY, strlen(POLICY), &d);
}

TEST(patch_equals_full_derivation)
{
	struct policy *p = load();
	unsigned before = th_failed_checks;

	if (getenv("INCR_SEED"))
		rng_state = (uint32_t)strtoul(getenv("INCR_SEED"), NULL, 10);
	CHECK(p != NULL);
	for (unsigned i = 0; p && i < ROUNDS && th_failed_checks == before; i++)
		one_round(p);
	fprintf(stderr, "  %u rounds: %u patched, %u derived in full (%u of them with a"
		" partner the guards hold back)\n", n_rounds, n_patched, n_full, n_guarded);
	/* the random changes reached both sides, and the guards */
	CHECK(n_patched > ROUNDS / 5);
	CHECK(n_full > ROUNDS / 10);
	CHECK(n_guarded > 0);
	policy_free(p);
}

/* The same change patched and derived: one address of a partner with
 * many, another partner's addresses elsewhere. */
TEST(one_address_of_many)
{
	struct policy *p = load();
	struct addr_list before[NPART] = { 0 }, after[NPART] = { 0 };
	size_t padd[NPART], pdel[NPART];
	struct engine_incr inc = { .padd = padd, .pdel = pdel };
	struct ir_ruleset *live, *full, *got;

	CHECK(p != NULL);
	if (!p)
		return;
	for (unsigned k = 0; k < 200; k++) {
		struct prefix a = { .family = 4, .len = 32, .a = { 203, 0, 113, (uint8_t)k } };

		a.a[2] = (uint8_t)(113 + (k >= 100));
		a.a[3] = (uint8_t)(2 * (k % 100));
		addr_list_push(&before[1], &a, NULL);
		if (k != 7)
			addr_list_push(&after[1], &a, NULL);
	}
	{
		struct prefix n = { .family = 4, .len = 32, .a = { 203, 0, 114, 201 } };

		addr_list_push(&after[1], &n, NULL);
	}
	live = gen(p, before);
	full = gen(p, after);
	got = incr(p, live, before, after, &inc);
	CHECK(got != NULL);
	CHECK_INT((long)inc.npartners, 1);
	CHECK_INT((long)inc.padd[1], 1);
	CHECK_INT((long)inc.pdel[1], 1);
	CHECK(same_table(got, full));
	ir_diff_free(&inc.diff);
	ir_free(got);
	ir_free(live);
	ir_free(full);
	lists_free(before, after);
	policy_free(p);
}

/* Patches partner `who` adding `add` to `before`, the /24 beta holds:
 * the patch (or NULL), and the full derivation in *full. */
static struct ir_ruleset *add_over_beta(const struct policy *p, size_t who,
					struct engine_incr *inc, struct ir_ruleset **full)
{
	struct addr_list before[NPART] = { 0 }, after[NPART] = { 0 };
	struct prefix wide = { .family = 4, .len = 24, .a = { 198, 51, 100, 0 } };
	struct prefix host = { .family = 4, .len = 32, .a = { 198, 51, 100, 9 } };
	struct ir_ruleset *live, *got;

	addr_list_push(&before[1], &wide, NULL);
	addr_list_push(&after[1], &wide, NULL);
	addr_list_push(&after[who], &host, NULL);
	live = gen(p, before);
	*full = gen(p, after);
	got = incr(p, live, before, after, inc);
	ir_free(live);
	lists_free(before, after);
	return got;
}

/* A changed prefix another partner of the same port class also claims:
 * the full derivation decides who wins, never the patch.  A partner of
 * other ports (delta: av-edge; beta: SIP and XMPP) never meets beta in a
 * map: its change is patched, and is the full derivation's. */
TEST(overlap_with_another_partner_derives)
{
	struct policy *p = load();
	size_t padd[NPART], pdel[NPART];
	struct engine_incr inc = { .padd = padd, .pdel = pdel };
	struct ir_ruleset *got, *full = NULL;

	CHECK(p != NULL);
	if (!p)
		return;
	got = add_over_beta(p, 0, &inc, &full);         /* alpha: SIP, as beta */
	CHECK(got == NULL);
	CHECK(strstr(inc.why, "overlaps another partner's") != NULL);
	ir_free(full);
	got = add_over_beta(p, 3, &inc, &full);         /* delta: av-edge */
	CHECK(got != NULL);
	CHECK(same_table(got, full));
	ir_diff_free(&inc.diff);
	ir_free(got);
	ir_free(full);
	policy_free(p);
}

/* A refresh digests its sources without building the proposed lists
 * (engine_sources_digest): the same digest as the lists' (what apply and
 * the cache store), whatever order, and a failed-and-unknown source
 * contributes nothing to either. */
TEST(sources_digest_is_the_lists_digest)
{
	struct policy *p = load();
	struct srcset s = { 0 };
	struct addr_list *prop;
	uint64_t a, b;

	CHECK(p != NULL);
	if (!p)
		return;
	srcset_build(p, &s);
	for (size_t k = 0; k < s.n; k++) {
		struct src *x = &s.v[k];

		x->status = k == 1 ? SRC_UNKNOWN : k % 2 ? SRC_KEPT : SRC_FRESH;
		x->naddrs = 3;
		x->addrs = xcalloc(3, sizeof(*x->addrs));
		for (size_t j = 0; j < 3; j++)
			x->addrs[j] = rand_prefix();
	}
	prop = engine_proposed(p, &s, NULL);
	a = engine_sources_digest(p, &s);
	b = engine_inputs_digest(p, prop);
	CHECK(a == b);
	/* the order of a source's addresses does not change it; another
	 * address does */
	{
		struct prefix t = s.v[0].addrs[0];

		s.v[0].addrs[0] = s.v[0].addrs[2];
		s.v[0].addrs[2] = t;
	}
	CHECK(engine_sources_digest(p, &s) == a);
	s.v[0].addrs[0] = s.v[0].addrs[1];
	CHECK(engine_sources_digest(p, &s) != a);
	for (size_t i = 0; i < NPART; i++)
		addr_list_free(&prop[i]);
	free(prop);
	srcset_free(&s);
	policy_free(p);
}

/* ---- addresses per service ---------------------------------------------- */

/* beta and delta learn addresses from SIP and XMPP SRV records that only
 * some of their services have (partner_srv_scoped): each address of
 * theirs has a scope. */
static const char POLICY_SCOPED[] =
	"version: 1\n"
	"partners:\n"
	"  alpha:\n    services: [sip-federation]\n    direction: both\n"
	"    hosts: [alpha.example.test]\n"
	"  beta:\n    services: [sip-federation, xmpp-s2s]\n    direction: inbound\n"
	"    domains: [beta.example.test]\n"
	"  gamma:\n    services: [xmpp-s2s]\n    direction: both\n"
	"    hosts: [gamma.example.test]\n"
	"  delta:\n    services: [av-edge, xmpp-s2s]\n    direction: both\n"
	"    domains: [delta.example.test]\n    lists: [delta.txt]\n"
	"guards: {min_prefix_v4: 21, min_prefix_v6: 56, max_shrink: 30%}\n";

/* l's scopes: random (0: all services, else SRV_SIP, SRV_XMPP or both). */
static void rand_scopes(struct addr_list *l)
{
	free(l->scope);
	l->scope = xcalloc(l->cap + 1, sizeof(*l->scope));
	for (size_t k = 0; k < l->n; k++)
		l->scope[k] = (uint8_t)below(4);
}

struct scoped {
	struct prefix p;
	uint8_t scope;
};

static int scoped_cmp(const void *x, const void *y)
{
	const struct scoped *a = x, *b = y;
	int c = prefix_cmp(&a->p, &b->p);

	return c ? c : (int)a->scope - (int)b->scope;
}

static struct scoped *scoped_sorted(const struct addr_list *l)
{
	struct scoped *v = xcalloc(l->n + 1, sizeof(*v));

	for (size_t k = 0; k < l->n; k++)
		v[k] = (struct scoped){ l->v[k], l->scope ? l->scope[k] : 0 };
	qsort(v, l->n, sizeof(*v), scoped_cmp);
	return v;
}

/* Whether a and b hold the same addresses with the same scopes, in any
 * order. */
static bool same_scoped(const struct addr_list *a, const struct addr_list *b)
{
	struct scoped *x, *y;
	bool same;

	if (a->n != b->n)
		return false;
	x = scoped_sorted(a);
	y = scoped_sorted(b);
	same = !a->n || !memcmp(x, y, a->n * sizeof(*x));
	free(x);
	free(y);
	return same;
}

static unsigned s_patched, s_full, s_moved;

static void one_round_scoped(const struct policy *p)
{
	struct addr_list before[NPART] = { 0 }, after[NPART] = { 0 };
	size_t padd[NPART], pdel[NPART];
	struct engine_incr inc = { .padd = padd, .pdel = pdel };
	struct ir_ruleset *live, *full, *got;

	for (size_t i = 0; i < NPART; i++) {
		bool scoped = partner_srv_scoped(p, &p->partners[i]) != 0;
		char *w;

		rand_list(&before[i]);
		w = guard_width(&p->guards, &before[i]);
		if (w)
			before[i].n = 0;
		free(w);
		if (scoped)
			rand_scopes(&before[i]);
		if (below(2)) {
			rand_change(&before[i], &after[i]);
			if (scoped)
				rand_scopes(&after[i]);
			continue;
		}
		for (size_t k = 0; k < before[i].n; k++)
			addr_list_push_scoped(&after[i], &before[i].v[k], NULL,
					      before[i].scope ? before[i].scope[k] : 0);
		/* the same prefixes, now on other services */
		if (scoped && !below(4)) {
			rand_scopes(&after[i]);
			s_moved += !same_scoped(&before[i], &after[i]);
		}
	}
	live = gen(p, before);
	full = gen(p, after);
	CHECK(live && full);
	got = live && full ? incr(p, live, before, after, &inc) : NULL;
	if (got) {
		s_patched++;
		CHECK(same_table(got, full));
		if (!same_table(got, full))
			fprintf(stderr, "  seed %u: the patch is not the full derivation\n",
				rng_state);
		/* a partner with addresses per service is never patched */
		for (size_t i = 0; i < NPART; i++)
			if (partner_srv_scoped(p, &p->partners[i]))
				CHECK(same_scoped(&before[i], &after[i]));
		check_handed_diff(live, got, &inc);
	} else if (live && full) {
		s_full++;
		CHECK(inc.why[0] != '\0');
	}
	ir_diff_free(&inc.diff);
	ir_free(got);
	ir_free(live);
	ir_free(full);
	lists_free(before, after);
}

static struct policy *load_scoped(void)
{
	struct diag d;

	diag_init(&d, stderr);
	return policy_parse("scoped.yaml", POLICY_SCOPED, strlen(POLICY_SCOPED), &d);
}

/* With SRV-sourced addresses per service: every patch is the full
 * derivation, and a change of a partner with addresses per service,
 * a move between services with no prefix changing included, is derived
 * in full. */
TEST(patch_equals_full_derivation_per_service)
{
	struct policy *p = load_scoped();
	unsigned before = th_failed_checks;

	CHECK(p != NULL);
	CHECK(p && partner_srv_scoped(p, &p->partners[1]) == (SRV_SIP | SRV_XMPP));
	CHECK(p && !strcmp(p->partners[2].name, "delta"));
	CHECK(p && partner_srv_scoped(p, &p->partners[2]) == (SRV_SIP | SRV_XMPP));
	CHECK(p && !partner_srv_scoped(p, &p->partners[0]));
	for (unsigned i = 0; p && i < ROUNDS && th_failed_checks == before; i++)
		one_round_scoped(p);
	fprintf(stderr, "  per service: %u patched, %u derived in full, %u moves between"
		" services\n", s_patched, s_full, s_moved);
	CHECK(s_patched > ROUNDS / 20);
	CHECK(s_full > ROUNDS / 10);
	CHECK(s_moved > 0);
	policy_free(p);
}

/* A move between services alone (the same prefix, another SRV kind)
 * changes the inputs digest (the cached table was built from other
 * inputs) and is derived in full, never patched. */
TEST(move_between_services_derives)
{
	struct policy *p = load_scoped();
	struct addr_list before[NPART] = { 0 }, after[NPART] = { 0 };
	size_t padd[NPART], pdel[NPART];
	struct engine_incr inc = { .padd = padd, .pdel = pdel };
	struct prefix a = { .family = 4, .len = 32, .a = { 198, 51, 100, 12 } };
	struct ir_ruleset *live, *full, *got;
	struct prefix_span sb[NPART] = { { 0 } }, sa[NPART] = { { 0 } };

	CHECK(p != NULL);
	if (!p)
		return;
	addr_list_push_scoped(&before[1], &a, NULL, SRV_XMPP);
	addr_list_push_scoped(&after[1], &a, NULL, SRV_SIP);
	live = gen(p, before);
	full = gen(p, after);
	CHECK(!same_table(live, full));
	got = incr(p, live, before, after, &inc);
	CHECK(got == NULL);
	CHECK(strstr(inc.why, "partner 'beta' has addresses per service") != NULL);
	for (size_t i = 0; i < NPART; i++) {
		sb[i] = (struct prefix_span){ before[i].v, before[i].n, before[i].scope };
		sa[i] = (struct prefix_span){ after[i].v, after[i].n, after[i].scope };
	}
	CHECK(engine_spans_digest(p, sb) != engine_spans_digest(p, sa));
	CHECK(engine_inputs_digest(p, before) == engine_spans_digest(p, sb));
	ir_diff_free(&inc.diff);
	ir_free(got);
	ir_free(live);
	ir_free(full);
	lists_free(before, after);
	policy_free(p);
}

/* Drops from l[i] what overlaps an address of an earlier partner. */
static void disjoint(struct addr_list *l, size_t i)
{
	size_t n = 0;

	for (size_t k = 0; k < l[i].n; k++) {
		bool clash = false;

		for (size_t j = 0; j < i && !clash; j++)
			for (size_t q = 0; q < l[j].n && !clash; q++)
				clash = prefix_overlaps(&l[j].v[q], &l[i].v[k]);
		if (clash)
			continue;
		if (l[i].scope)
			l[i].scope[n] = l[i].scope[k];
		l[i].v[n++] = l[i].v[k];
	}
	l[i].n = n;
}

/* A partner held back keeps what the table holds (engine/refresh.c):
 * each address read back with the services it is on
 * (engine_partner_scopes) makes the same table again.  (Where partners'
 * addresses overlap, a prefix nested in the partner's own reads back
 * merged into it, with or without services: not weighed here.) */
TEST(held_back_keeps_services)
{
	struct policy *p = load_scoped();
	unsigned scoped_rounds = 0;

	CHECK(p != NULL);
	for (unsigned r = 0; p && r < 500; r++) {
		struct addr_list l[NPART] = { { 0 } }, have[NPART] = { { 0 } };
		struct ir_ruleset *live, *again;

		for (size_t i = 0; i < NPART; i++) {
			char *w;

			rand_list(&l[i]);
			w = guard_width(&p->guards, &l[i]);
			if (w)
				l[i].n = 0;
			free(w);
			if (partner_srv_scoped(p, &p->partners[i]))
				rand_scopes(&l[i]);
			disjoint(l, i);
		}
		live = gen(p, l);
		engine_partner_addrs(live, p, have);
		engine_partner_scopes(live, p, have);
		scoped_rounds += have[1].scope || have[2].scope;
		again = gen(p, have);
		CHECK(same_table(again, live));
		ir_free(again);
		ir_free(live);
		lists_free(l, have);
	}
	CHECK(scoped_rounds > 100);
	policy_free(p);
}

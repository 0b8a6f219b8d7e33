/* overlap.c - building the elements of a map or set from its owners.
 *
 * Ports are cut into atoms: maximal ranges on which the set of owners is
 * constant.  Atoms with the same owners form a class.  A partner map is
 * one address-only map per class (gen_classes): every address gets
 * exactly one owner per class: the longest prefix wins (as in a routing
 * table), equal prefixes go to the owner whose name sorts first, and the
 * loser's prefix is carved around the winner's.  A set (gen_elems) is
 * `address . proto . port`: owners' addresses are simply merged per
 * class, and elements that differ only by adjacent atoms joined again.
 */
#include "generator/internal.h"

#include <stdlib.h>
#include <string.h>

typedef VEC(uint32_t) u32_vec;

struct atom {
	struct portrange r;
	u32_vec owners;         /* indices into the owner array, ascending */
	uint64_t hash;
	size_t cls;
};

struct cls {
	const u32_vec *owners;  /* borrowed from its first atom */
	uint64_t hash;
	VEC(struct portrange) atoms;
};

struct entry {
	struct prefix p;
	uint32_t owner;
	uint32_t id;            /* the owner's id: equal prefixes go to the lower;
				 * a partner's owners (its groups) share it */
	uint32_t chain;         /* won pieces: the owner's */
	const struct loc *loc;
};

struct frame {
	size_t entry;
	size_t hole_start;
};

struct resolver {
	const struct gen_owner *o;
	const struct cls *c;
	elem_vec *v4, *v6;
	overlap_vec *ov;
	struct entry *e;
	VEC(struct frame) stack;
	VEC(struct prefix) holes;
	VEC(struct entry) won;  /* pieces each owner keeps, before joining */
	bool addr_only;         /* one element per prefix, no port (classes) */
};

/* ---- port atoms ---------------------------------------------------- */

struct point {
	uint8_t proto;
	uint32_t at;
};

static int point_cmp(const void *x, const void *y)
{
	const struct point *a = x, *b = y;

	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	return a->at < b->at ? -1 : a->at > b->at;
}

static bool owner_has_port(const struct gen_owner *o, uint8_t proto, uint16_t port)
{
	for (size_t i = 0; i < o->nports; i++)
		if (o->ports[i].proto == proto && o->ports[i].lo <= port &&
		    port <= o->ports[i].hi)
			return true;
	return false;
}

static void atom_fill(struct atom *a, const struct gen_owner *o, size_t n)
{
	a->hash = FNV1A64_INIT;
	for (uint32_t i = 0; i < n; i++) {
		if (!owner_has_port(&o[i], a->r.proto, a->r.lo))
			continue;
		VEC_PUSH(&a->owners, i);
		a->hash = fnv1a64(a->hash, &i, sizeof(i));
	}
}

/* The atoms of the owners' ports in port order; atoms nobody uses are
 * left out. */
static size_t make_atoms(const struct gen_owner *o, size_t n, struct atom **out)
{
	VEC(struct point) pts = { 0 };
	VEC(struct atom) atoms = { 0 };

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < o[i].nports; j++) {
			const struct portrange *r = &o[i].ports[j];

			VEC_PUSH(&pts, ((struct point){ r->proto, r->lo }));
			VEC_PUSH(&pts, ((struct point){ r->proto, (uint32_t)r->hi + 1 }));
		}
	if (pts.n)
		qsort(pts.v, pts.n, sizeof(*pts.v), point_cmp);
	for (size_t i = 0; i + 1 < pts.n; i++) {
		struct atom a = { 0 };

		if (pts.v[i].proto != pts.v[i + 1].proto || pts.v[i].at == pts.v[i + 1].at)
			continue;
		a.r = (struct portrange){ pts.v[i].proto, (uint16_t)pts.v[i].at,
					  (uint16_t)(pts.v[i + 1].at - 1) };
		atom_fill(&a, o, n);
		if (a.owners.n)
			VEC_PUSH(&atoms, a);
		else
			free(a.owners.v);
	}
	free(pts.v);
	*out = atoms.v;
	return atoms.n;
}

static bool same_owners(const u32_vec *x, const u32_vec *y)
{
	return x->n == y->n && !memcmp(x->v, y->v, x->n * sizeof(*x->v));
}

static size_t make_classes(struct atom *a, size_t na, struct cls **out)
{
	VEC(struct cls) c = { 0 };

	for (size_t i = 0; i < na; i++) {
		size_t k;

		for (k = 0; k < c.n; k++)
			if (c.v[k].hash == a[i].hash &&
			    same_owners(c.v[k].owners, &a[i].owners))
				break;
		if (k == c.n)
			VEC_PUSH(&c, ((struct cls){ .owners = &a[i].owners,
						     .hash = a[i].hash }));
		VEC_PUSH(&c.v[k].atoms, a[i].r);
	}
	*out = c.v;
	return c.n;
}

/* ---- elements -------------------------------------------------------- */

/* prefix_contains, a byte at a time: the walk calls it for every entry. */
static bool contains(const struct prefix *outer, const struct prefix *inner)
{
	unsigned full = outer->len / 8, rest = outer->len % 8;

	if (outer->family != inner->family || outer->len > inner->len)
		return false;
	if (memcmp(outer->a, inner->a, full))
		return false;
	return !rest || !((outer->a[full] ^ inner->a[full]) & (uint8_t)(0xff << (8 - rest)));
}

static void emit(struct resolver *rv, const struct prefix *p, uint32_t chain)
{
	elem_vec *v = p->family == 4 ? rv->v4 : rv->v6;

	if (rv->addr_only) {
		VEC_PUSH(v, ((struct ir_elem){ .addr = *p, .chain = chain }));
		return;
	}
	for (size_t i = 0; i < rv->c->atoms.n; i++)
		VEC_PUSH(v, ((struct ir_elem){ .addr = *p, .port = rv->c->atoms.v[i],
					       .chain = chain }));
}

static void half(const struct prefix *p, bool upper, struct prefix *out)
{
	*out = *p;
	out->len++;
	if (upper)
		out->a[p->len / 8] |= (uint8_t)(0x80 >> (p->len % 8));
}

/* Owners of one partner (its groups: generator.h) share its chain: their
 * pieces join as one owner's. */
static void keep(struct resolver *rv, const struct prefix *p, uint32_t owner)
{
	VEC_PUSH(&rv->won, ((struct entry){ .p = *p, .owner = owner,
					     .chain = rv->o[owner].chain }));
}

/* Keeps `p` minus the holes (sorted, disjoint, inside p) as the fewest
 * prefixes: one hole is prefix_subtract, several split p in halves. */
static void carve(struct resolver *rv, const struct prefix *p,
		  const struct prefix *h, size_t nh, uint32_t owner)
{
	struct prefix lo, hi, pieces[128];
	size_t k = 0, split = 0;

	if (nh == 0) {
		keep(rv, p, owner);
		return;
	}
	if (nh == 1) {
		prefix_subtract(p, &h[0], pieces, &k);
		for (size_t i = 0; i < k; i++)
			keep(rv, &pieces[i], owner);
		return;
	}
	half(p, false, &lo);
	half(p, true, &hi);
	while (split < nh && contains(&lo, &h[split]))
		split++;
	carve(rv, &lo, h, split, owner);
	carve(rv, &hi, h + split, nh - split, owner);
}

static void note_overlap(struct resolver *rv, const struct entry *loser,
			 const struct entry *winner)
{
	for (size_t i = 0; i < rv->c->atoms.n; i++) {
		struct gen_overlap g = {
			.loser = rv->o[loser->owner].id,
			.winner = rv->o[winner->owner].id,
			.lprefix = loser->p,
			.shared = winner->p,
			.port = rv->c->atoms.v[i],
			.loc = loser->loc,
		};

		VEC_PUSH(rv->ov, g);
	}
}

static int entry_cmp(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;
	int c = prefix_cmp(&a->p, &b->p);

	if (c)
		return c;
	return a->id < b->id ? -1 : a->id > b->id;
}

static void pop_frame(struct resolver *rv)
{
	struct frame f = rv->stack.v[--rv->stack.n];
	const struct entry *e = &rv->e[f.entry];
	size_t nh = rv->holes.n - f.hole_start;

	/* holes.v is NULL until a first hole: no arithmetic on it then. */
	carve(rv, &e->p, nh ? rv->holes.v + f.hole_start : NULL, nh, e->owner);
	rv->holes.n = f.hole_start;
}

/* Entries come in prefix order, so prefixes nest like a tree walked in
 * preorder: the stack holds the chain of enclosing prefixes.  An owner's
 * own prefixes may nest too (a /32 listed inside its /24): the inner one
 * is then its own, and counts as more specific against other owners. */
static void walk(struct resolver *rv, size_t ne)
{
	for (size_t i = 0; i < ne; i++) {
		const struct entry *e = &rv->e[i];

		while (rv->stack.n &&
		       !contains(&rv->e[rv->stack.v[rv->stack.n - 1].entry].p, &e->p))
			pop_frame(rv);
		if (rv->stack.n) {
			const struct entry *top = &rv->e[rv->stack.v[rv->stack.n - 1].entry];

			if (!prefix_cmp(&top->p, &e->p)) {
				if (top->id != e->id)
					note_overlap(rv, e, top);
				continue;
			}
			for (size_t s = 0; s < rv->stack.n; s++)
				if (rv->e[rv->stack.v[s].entry].id != e->id)
					note_overlap(rv, &rv->e[rv->stack.v[s].entry], e);
			VEC_PUSH(&rv->holes, e->p);
		}
		VEC_PUSH(&rv->stack, ((struct frame){ i, rv->holes.n }));
	}
	while (rv->stack.n)
		pop_frame(rv);
}

static int won_cmp(const void *x, const void *y)
{
	return prefix_cmp(&((const struct entry *)x)->p, &((const struct entry *)y)->p);
}

/* Whether a and b (a first) are the two halves of one prefix. */
static bool siblings(const struct prefix *a, const struct prefix *b)
{
	struct prefix pa = *a, pb = *b;

	if (a->family != b->family || a->len != b->len || a->len == 0)
		return false;
	pa.len--;
	pb.len--;
	prefix_mask(&pa);
	prefix_mask(&pb);
	return !memcmp(pa.a, pb.a, sizeof(pa.a));
}

/* Won pieces are disjoint.  In address order the two halves of a prefix
 * are neighbours (anything between them would overlap one), so one pass
 * with a stack joins each owner's siblings into their parent, and what it
 * emits is in address order: no sort per owner, none afterwards. */
static void emit_won(struct resolver *rv)
{
	struct entry *w = rv->won.v;
	size_t n = rv->won.n, top = 0;

	/* in order already unless prefixes nested: the walk emits them so */
	sort_unless_sorted(w, n, sizeof(*w), won_cmp);
	for (size_t i = 0; i < n; i++) {
		w[top++] = w[i];
		while (top >= 2 && w[top - 2].chain == w[top - 1].chain &&
		       siblings(&w[top - 2].p, &w[top - 1].p)) {
			w[top - 2].p.len--;
			top--;
		}
	}
	for (size_t i = 0; i < top; i++)
		emit(rv, &w[i].p, rv->o[w[i].owner].chain);
	rv->won.n = 0;
}

/* `all`: every owner's entries in entry_cmp order; a class walks the
 * entries of its own owners, which a filter leaves in that order.  `sub`
 * has room for all of them. */
static void resolve_class(struct resolver *rv, const struct entry *all, size_t nall,
			  const bool *member, struct entry *sub)
{
	size_t n = 0;

	for (size_t i = 0; i < nall; i++)
		if (member[all[i].owner])
			sub[n++] = all[i];
	rv->e = sub;
	walk(rv, n);
	emit_won(rv);
}

/* A min-heap of owners by their next address: each owner's addresses are
 * sorted already, so all of them in entry_cmp order is an n-way merge. */
struct cursor {
	struct entry next;
	size_t at;
};

static void heap_down(struct cursor *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		struct cursor t;

		if (l < n && entry_cmp(&h[l].next, &h[m].next) < 0)
			m = l;
		if (l + 1 < n && entry_cmp(&h[l + 1].next, &h[m].next) < 0)
			m = l + 1;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static struct entry entry_of(const struct gen_owner *o, uint32_t oi, size_t j)
{
	return (struct entry){ .p = o[oi].addrs[j].p, .owner = oi, .id = o[oi].id,
				.loc = o[oi].addrs[j].loc };
}

/* Every owner's addresses as entries, in entry_cmp order once for all
 * classes. */
static struct entry *all_entries(const struct gen_owner *o, size_t n, size_t *count)
{
	struct cursor *h = xcalloc(n + 1, sizeof(*h));
	size_t total = 0, k = 0, nh = 0;
	struct entry *e;

	for (uint32_t oi = 0; oi < n; oi++) {
		total += o[oi].naddrs;
		if (o[oi].naddrs)
			h[nh++] = (struct cursor){ entry_of(o, oi, 0), 0 };
	}
	e = xcalloc(total + 1, sizeof(*e));
	for (size_t i = nh; i-- > 0;)
		heap_down(h, nh, i);
	while (nh) {
		uint32_t oi = h[0].next.owner;

		e[k++] = h[0].next;
		if (++h[0].at < o[oi].naddrs)
			h[0].next = entry_of(o, oi, h[0].at);
		else
			h[0] = h[--nh];
		heap_down(h, nh, 0);
	}
	free(h);
	*count = k;
	return e;
}

static void union_class(struct resolver *rv)
{
	VEC(struct prefix) p = { 0 };

	for (size_t k = 0; k < rv->c->owners->n; k++) {
		const struct gen_owner *o = &rv->o[rv->c->owners->v[k]];

		for (size_t j = 0; j < o->naddrs; j++)
			VEC_PUSH(&p, o->addrs[j].p);
	}
	p.n = prefixes_merge(p.v, p.n);
	for (size_t i = 0; i < p.n; i++)
		emit(rv, &p.v[i], 0);
	free(p.v);
}

/* ---- joining atoms again --------------------------------------------- */

static int addr_first_cmp(const void *x, const void *y)
{
	const struct ir_elem *a = x, *b = y;
	int c = prefix_cmp(&a->addr, &b->addr);

	if (c)
		return c;
	if (a->chain != b->chain)
		return a->chain < b->chain ? -1 : 1;
	return portrange_cmp(&a->port, &b->port);
}

/* Joins elements of one prefix and chain whose port ranges touch. */
static void join_ports(elem_vec *v, size_t from)
{
	size_t n = v->n - from, top = 0;
	struct ir_elem *e;

	if (n == 0)
		return;         /* v->v may be NULL: no pointer arithmetic on it */
	e = v->v + from;
	qsort(e, n, sizeof(*e), addr_first_cmp);
	for (size_t i = 0; i < n; i++) {
		struct ir_elem *last = top ? &e[top - 1] : NULL;

		if (last && !prefix_cmp(&last->addr, &e[i].addr) &&
		    last->chain == e[i].chain && last->port.proto == e[i].port.proto &&
		    (uint32_t)last->port.hi + 1 == e[i].port.lo) {
			last->port.hi = e[i].port.hi;
			continue;
		}
		e[top++] = e[i];
	}
	v->n = from + top;
	ir_sort_elems(e, top);
}

void gen_elems(const struct gen_owner *o, size_t n, elem_vec *v4, elem_vec *v6)
{
	struct atom *atoms;
	struct cls *cls;
	size_t na = make_atoms(o, n, &atoms);
	size_t nc = make_classes(atoms, na, &cls);
	size_t from4 = v4->n, from6 = v6->n;
	struct resolver rv = { .o = o, .v4 = v4, .v6 = v6 };

	for (size_t k = 0; k < nc; k++) {
		rv.c = &cls[k];
		union_class(&rv);
		free(cls[k].atoms.v);
	}
	join_ports(v4, from4);
	join_ports(v6, from6);
	for (size_t i = 0; i < na; i++)
		free(atoms[i].owners.v);
	free(atoms);
	free(cls);
}

size_t gen_classes(const struct gen_owner *o, size_t n, struct gen_class **out,
		   overlap_vec *ov)
{
	struct atom *atoms;
	struct cls *cls;
	size_t na = make_atoms(o, n, &atoms);
	size_t nc = make_classes(atoms, na, &cls);
	struct gen_class *gc = xcalloc(nc + 1, sizeof(*gc));
	struct resolver rv = { .o = o, .ov = ov, .addr_only = true };
	bool *member = xcalloc(n + 1, sizeof(*member));
	size_t nall;
	struct entry *all = all_entries(o, n, &nall);
	struct entry *sub = xcalloc(nall + 1, sizeof(*sub));

	for (size_t k = 0; k < nc; k++) {
		rv.c = &cls[k];
		rv.v4 = &gc[k].v4;
		rv.v6 = &gc[k].v6;
		memset(member, 0, n * sizeof(*member));
		for (size_t i = 0; i < cls[k].owners->n; i++)
			member[cls[k].owners->v[i]] = true;
		resolve_class(&rv, all, nall, member, sub);
		ir_sort_elems(gc[k].v4.v, gc[k].v4.n);  /* in order already: a check */
		ir_sort_elems(gc[k].v6.v, gc[k].v6.n);
		gc[k].atoms = cls[k].atoms.v;
		gc[k].natoms = cls[k].atoms.n;
	}
	free(rv.stack.v);
	free(rv.holes.v);
	free(rv.won.v);
	free(member);
	free(all);
	free(sub);
	for (size_t i = 0; i < na; i++)
		free(atoms[i].owners.v);
	free(atoms);
	free(cls);
	*out = gc;
	return nc;
}

void gen_classes_free(struct gen_class *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++) {
		free(c[i].atoms);
		free(c[i].v4.v);
		free(c[i].v6.v);
	}
	free(c);
}

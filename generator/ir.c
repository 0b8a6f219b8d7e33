/* ir.c - the ruleset model: ordering, lookup, freeing. */
#include "generator/internal.h"

#include <stdlib.h>
#include <string.h>

int ir_elem_cmp(const struct ir_elem *x, const struct ir_elem *y)
{
	int c = portrange_cmp(&x->port, &y->port);

	return c ? c : prefix_cmp(&x->addr, &y->addr);
}

static int elem_qcmp(const void *x, const void *y)
{
	return ir_elem_cmp(x, y);
}

void ir_sort_elems(struct ir_elem *v, size_t n)
{
	sort_unless_sorted(v, n, sizeof(*v), elem_qcmp);
}

static bool has_addr(enum ir_keytype k)
{
	return k != IR_KEY_PROTO_PORT;
}

static bool has_port(enum ir_keytype k)
{
	return k != IR_KEY_ADDR4 && k != IR_KEY_ADDR6;
}

static bool elem_holds(const struct ir_set *s, const struct ir_elem *e,
		       const struct prefix *host, uint8_t proto, uint16_t port)
{
	if (has_addr(s->key) && !prefix_contains(&e->addr, host))
		return false;
	return !has_port(s->key) ||
	       (e->port.proto == proto && e->port.lo <= port && port <= e->port.hi);
}

/* Single-field keys are disjoint and sorted by their start: the only
 * candidate is the last element that starts at or before the key. */
static const struct ir_elem *lookup_sorted(const struct ir_set *s, const struct prefix *host,
					   uint8_t proto, uint16_t port)
{
	struct ir_elem key = { .addr = *host, .port = { proto, port, 0xffff } };
	size_t lo = 0, hi = s->nelems;

	if (!has_addr(s->key))
		key.addr = (struct prefix){ 0 };
	if (!has_port(s->key))
		key.port = (struct portrange){ 0 };
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ir_elem_cmp(&s->elems[mid], &key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && elem_holds(s, &s->elems[lo - 1], host, proto, port))
		return &s->elems[lo - 1];
	return NULL;
}

const struct ir_elem *ir_set_lookup(const struct ir_set *s, uint8_t family,
				    const uint8_t *addr, uint8_t proto, uint16_t port)
{
	struct prefix host = { .family = family, .len = family == 6 ? 128 : 32 };

	if (addr)
		memcpy(host.a, addr, family == 6 ? 16 : 4);
	if (has_addr(s->key) && (s->key == IR_KEY_ADDR6 || s->key == IR_KEY_ADDR6_PROTO_PORT) !=
				    (family == 6))
		return NULL;
	if (!has_addr(s->key) || !has_port(s->key))
		return lookup_sorted(s, &host, proto, port);
	/* address . proto . port (management): few elements, not disjoint
	 * by address alone */
	for (size_t i = 0; i < s->nelems; i++)
		if (elem_holds(s, &s->elems[i], &host, proto, port))
			return &s->elems[i];
	return NULL;
}

/* The address map rule of `family` on field `f` in chain `c`. */
static const struct ir_set *class_map(const struct ir_ruleset *rs, const struct ir_chain *c,
				      enum ir_field f, uint8_t family)
{
	for (size_t i = 0; i < c->nrules; i++) {
		const struct ir_rule *r = &c->rules[i];

		if (r->kind == IR_R_VMAP && r->field == f && r->family == family && r->set)
			return ir_find_set(rs, r->set);
	}
	return NULL;
}

/* The address map a rule sends (proto, port) to, if any: through the
 * port dispatch map to its class chain's address map, or directly when
 * an address vmap's key has the ports too. */
static const struct ir_set *admitting_map(const struct ir_ruleset *rs, const struct ir_rule *r,
					  enum ir_field f, uint8_t family, uint8_t proto,
					  uint16_t port)
{
	const struct ir_set *s = r->set ? ir_find_set(rs, r->set) : NULL;
	const struct ir_elem *pe;

	if (!s || !s->is_map)
		return NULL;
	if (r->kind == IR_R_VMAP)
		return r->field == f && r->family == family && has_port(s->key) ? s : NULL;
	/* no field on a port rule: the class chain's address rule tells the
	 * direction */
	if (r->kind != IR_R_PORT_VMAP || !(pe = ir_set_lookup(s, family, NULL, proto, port)) ||
	    pe->chain >= rs->nchains)
		return NULL;
	return class_map(rs, &rs->chains[pe->chain], f, family);
}

void ir_gates_find(const struct ir_ruleset *rs, struct ir_gates *out)
{
	VEC(const struct ir_rule *) v = { 0 };

	for (size_t i = 0; rs && i < rs->nchains; i++)
		for (size_t j = 0; j < rs->chains[i].nrules; j++) {
			const struct ir_rule *r = &rs->chains[i].rules[j];

			if (r->set && (r->kind == IR_R_PORT_VMAP || r->kind == IR_R_VMAP))
				VEC_PUSH(&v, r);
		}
	out->v = v.v;
	out->n = v.n;
}

void ir_gates_free(struct ir_gates *g)
{
	free(g->v);
	memset(g, 0, sizeof(*g));
}

bool ir_admits_via(const struct ir_ruleset *rs, const struct ir_gates *g, enum ir_field f,
		   uint8_t family, const uint8_t *addr, uint8_t proto, uint16_t port,
		   const struct ir_set **set, const struct ir_elem **elem)
{
	for (size_t i = 0; i < g->n; i++) {
		const struct ir_set *as = admitting_map(rs, g->v[i], f, family, proto, port);
		const struct ir_elem *ae;

		if (!as || !(ae = ir_set_lookup(as, family, addr, proto, port)))
			continue;
		if (set)
			*set = as;
		if (elem)
			*elem = ae;
		return true;
	}
	return false;
}

bool ir_admits(const struct ir_ruleset *rs, enum ir_field f, uint8_t family,
	       const uint8_t *addr, uint8_t proto, uint16_t port,
	       const struct ir_set **set, const struct ir_elem **elem)
{
	struct ir_gates g;
	bool yes;

	ir_gates_find(rs, &g);
	yes = ir_admits_via(rs, &g, f, family, addr, proto, port, set, elem);
	ir_gates_free(&g);
	return yes;
}

/* ---- one new connection through the whole ruleset --------------------- */

#define EVAL_DEPTH 16           /* fedwall's chains nest 4 deep */

enum ev_result { EV_CONTINUE = 0, EV_ACCEPT, EV_DROP };

void ir_eval_init(const struct ir_ruleset *rs, struct ir_eval *out)
{
	size_t n = 0;

	out->rs = rs;
	out->first = xcalloc(rs->nchains + 1, sizeof(*out->first));
	for (size_t i = 0; i < rs->nchains; i++) {
		out->first[i] = n;
		n += rs->chains[i].nrules;
	}
	out->set = xcalloc(n + 1, sizeof(*out->set));
	out->target = xcalloc(n + 1, sizeof(*out->target));
	for (size_t i = 0, k = 0; i < rs->nchains; i++)
		for (size_t j = 0; j < rs->chains[i].nrules; j++, k++) {
			const struct ir_rule *r = &rs->chains[i].rules[j];
			const struct ir_chain *t = r->kind == IR_R_JUMP && r->target
						   ? ir_find_chain(rs, r->target) : NULL;

			out->set[k] = r->set ? ir_find_set(rs, r->set) : NULL;
			out->target[k] = t ? (uint32_t)(t - rs->chains) : UINT32_MAX;
		}
}

void ir_eval_free(struct ir_eval *ev)
{
	free(ev->set);
	free(ev->target);
	free(ev->first);
	memset(ev, 0, sizeof(*ev));
}

/* Whether a rule on interface `want` (NULL: any) matches the packet's. */
static bool if_matches(const struct ir_conn *c, const char *want)
{
	return !want || !c->ifname || !strcmp(c->ifname, want);
}

/* The element of `s` the packet's address on field `f` (with its protocol
 * and port where the key has them) falls in; NULL also when the rule is
 * for the other family. */
static const struct ir_elem *rule_lookup(const struct ir_set *s, const struct ir_rule *r,
					 const struct ir_conn *c)
{
	const uint8_t *a = r->field == IR_DADDR ? c->daddr : c->saddr;

	if (!s || (has_addr(s->key) && r->family && r->family != c->family))
		return NULL;
	return ir_set_lookup(s, c->family, a, c->proto, c->dport);
}

static enum ev_result eval_chain(const struct ir_eval *ev, uint32_t ci,
				 const struct ir_conn *c, unsigned depth);

/* A verdict map's jump (or nothing when no element holds the packet). */
static enum ev_result eval_vmap(const struct ir_eval *ev, const struct ir_set *s,
				const struct ir_rule *r, const struct ir_conn *c, unsigned depth)
{
	const struct ir_elem *e = s && s->is_map ? rule_lookup(s, r, c) : NULL;

	return e ? eval_chain(ev, e->chain, c, depth + 1) : EV_CONTINUE;
}

static enum ev_result verdict(enum ir_verdict v)
{
	return v == IR_ACCEPT ? EV_ACCEPT : v == IR_DROP ? EV_DROP : EV_CONTINUE;
}

/* Rule k (flat index) of chain `ch` for the first packet of `c`.  A new
 * connection's SYN never matches the conntrack state rules nor the
 * "new TCP must start with a SYN" drop; ICMP rules never match TCP/UDP. */
static enum ev_result eval_rule(const struct ir_eval *ev, const struct ir_rule *r, size_t k,
				const struct ir_conn *c, unsigned depth)
{
	const struct ir_set *s = ev->set[k];

	switch (r->kind) {
	case IR_R_LOOPBACK:
		return c->ifname && !strcmp(c->ifname, "lo") ? verdict(r->verdict) : EV_CONTINUE;
	case IR_R_JUMP:
		if (!if_matches(c, r->ifname) || (r->set && !rule_lookup(s, r, c)) ||
		    ev->target[k] == UINT32_MAX)
			return EV_CONTINUE;
		return eval_chain(ev, ev->target[k], c, depth + 1);
	case IR_R_LOOKUP:
		return rule_lookup(s, r, c) ? verdict(r->verdict) : EV_CONTINUE;
	case IR_R_VMAP:
	case IR_R_PORT_VMAP:
		return eval_vmap(ev, s, r, c, depth);
	case IR_R_COUNTER:
		return !r->set || rule_lookup(s, r, c) ? verdict(r->verdict) : EV_CONTINUE;
	case IR_R_PROTO:
		if (c->proto != r->l4proto || (r->dport && c->dport != r->dport) ||
		    !if_matches(c, r->ifname) || (r->set && !rule_lookup(s, r, c)))
			return EV_CONTINUE;
		return verdict(r->verdict);
	default:
		return EV_CONTINUE;
	}
}

/* A regular chain that ends returns to its caller; a base chain ends in
 * its policy.  Too deep (a loop the kernel would refuse) drops. */
static enum ev_result eval_chain(const struct ir_eval *ev, uint32_t ci,
				 const struct ir_conn *c, unsigned depth)
{
	const struct ir_chain *ch;

	if (ci >= ev->rs->nchains || depth > EVAL_DEPTH)
		return EV_DROP;
	ch = &ev->rs->chains[ci];
	for (size_t j = 0; j < ch->nrules; j++) {
		enum ev_result v = eval_rule(ev, &ch->rules[j], ev->first[ci] + j, c, depth);

		if (v != EV_CONTINUE)
			return v;
	}
	if (ch->hook == IR_HOOK_NONE)
		return EV_CONTINUE;
	return ch->policy == IR_DROP ? EV_DROP : EV_ACCEPT;
}

bool ir_admits_conn(const struct ir_eval *ev, const struct ir_conn *c)
{
	/* accept ends one base chain; the others of the hook still see it */
	for (size_t i = 0; ev->rs && i < ev->rs->nchains; i++)
		if (ev->rs->chains[i].hook == c->hook && c->hook != IR_HOOK_NONE &&
		    eval_chain(ev, (uint32_t)i, c, 0) == EV_DROP)
			return false;
	return true;
}

const struct ir_set *ir_find_set(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; rs && i < rs->nsets; i++)
		if (!strcmp(rs->sets[i].name, name))
			return &rs->sets[i];
	return NULL;
}

const struct ir_chain *ir_find_chain(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; rs && i < rs->nchains; i++)
		if (!strcmp(rs->chains[i].name, name))
			return &rs->chains[i];
	return NULL;
}

/* Length of the UTF-8 sequence starting with byte c (1 for stray bytes). */
static size_t utf8_len(unsigned char c)
{
	if (c >= 0xf0)
		return 4;
	if (c >= 0xe0)
		return 3;
	if (c >= 0xc0)
		return 2;
	return 1;
}

/* nft's scanner ends a quoted string at the first '"' and has no escape
 * for it; the kernel keeps at most 128 bytes of comment. */
char *ir_comment_dup(const char *s)
{
	size_t n = 0, len;
	char *out;

	if (!s)
		return NULL;
	len = strlen(s);
	while (n < len) {
		size_t k = utf8_len((unsigned char)s[n]);

		if (n + k > len || n + k > IR_COMMENT_MAX)
			break;
		n += k;
	}
	out = xstrndup(s, n);
	for (char *c = out; *c; c++) {
		if (*c == '"')
			*c = '\'';
		else if (*c == '\\')
			*c = '/';
		else if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	}
	return out;
}

static void rule_free(struct ir_rule *r)
{
	free(r->ifname);
	free(r->set);
	free(r->target);
	free(r->log_prefix);
	free(r->comment);
}

void ir_free(struct ir_ruleset *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->nchains; i++) {
		struct ir_chain *c = &rs->chains[i];

		for (size_t j = 0; j < c->nrules; j++)
			rule_free(&c->rules[j]);
		free(c->rules);
		free(c->name);
		free(c->comment);
	}
	for (size_t i = 0; i < rs->nsets; i++) {
		free(rs->sets[i].name);
		free(rs->sets[i].comment);
		free(rs->sets[i].elems);
	}
	for (size_t i = 0; i < rs->ncounters; i++) {
		free(rs->counters[i].name);
		free(rs->counters[i].comment);
	}
	free(rs->chains);
	free(rs->sets);
	free(rs->counters);
	free(rs->table);
	free(rs->comment);
	free(rs);
}

const char *ir_chain_partner(const char *chain)
{
	if (!chain)
		return NULL;
	if (!strncmp(chain, "in_", 3) && chain[3])
		return chain + 3;
	if (!strncmp(chain, "out_", 4) && chain[4])
		return chain + 4;
	return NULL;
}

/* ---- a deep copy ------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void *dup_array(const void *v, size_t n, size_t size)
{
	void *out = xreallocarray(NULL, n ? n : 1, size);

	if (n)
		memcpy(out, v, n * size);
	return out;
}

static void dup_chain(struct ir_chain *c)
{
	c->name = dup_or_null(c->name);
	c->comment = dup_or_null(c->comment);
	c->rules = dup_array(c->rules, c->nrules, sizeof(*c->rules));
	for (size_t j = 0; j < c->nrules; j++) {
		struct ir_rule *r = &c->rules[j];

		r->ifname = dup_or_null(r->ifname);
		r->set = dup_or_null(r->set);
		r->target = dup_or_null(r->target);
		r->log_prefix = dup_or_null(r->log_prefix);
		r->comment = dup_or_null(r->comment);
	}
}

struct ir_ruleset *ir_dup(const struct ir_ruleset *rs)
{
	struct ir_ruleset *out = dup_array(rs, 1, sizeof(*rs));

	out->table = dup_or_null(rs->table);
	out->comment = dup_or_null(rs->comment);
	out->chains = dup_array(rs->chains, rs->nchains, sizeof(*rs->chains));
	for (size_t i = 0; i < rs->nchains; i++)
		dup_chain(&out->chains[i]);
	out->sets = dup_array(rs->sets, rs->nsets, sizeof(*rs->sets));
	for (size_t i = 0; i < rs->nsets; i++) {
		struct ir_set *s = &out->sets[i];

		s->name = dup_or_null(s->name);
		s->comment = dup_or_null(s->comment);
		s->elems = dup_array(s->elems, s->nelems, sizeof(*s->elems));
	}
	out->counters = dup_array(rs->counters, rs->ncounters, sizeof(*rs->counters));
	for (size_t i = 0; i < rs->ncounters; i++) {
		out->counters[i].name = dup_or_null(rs->counters[i].name);
		out->counters[i].comment = dup_or_null(rs->counters[i].comment);
	}
	return out;
}

/* digest.c - one number for what a table admits, so that the two nodes
 * of an HA pair (each refreshing on its own) can be seen to admit the
 * same: status and the metrics show it.
 *
 * Over the shape and the elements, as ir_diff compares them: chains with
 * their hooks and rules (the fields each rule kind uses), sets with their
 * keys and elements (a map's by its target's name), counters by name.
 * Not over what differs between nodes that admit the same: comments
 * (they name the policy file's path), rule handles, counter values, the
 * interface index of "lo".  The generated table and its read-back give
 * the same digest (a plan after an apply has nothing to do).
 */
#include "engine/engine.h"
#include "generator/generator.h"

#include <string.h>

static uint64_t h_u(uint64_t h, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return fnv1a64(h, b, sizeof(b));
}

/* With its NUL, so that "ab"+"c" and "a"+"bc" differ; NULL as "\xff". */
static uint64_t h_s(uint64_t h, const char *s)
{
	return s ? fnv1a64(h, s, strlen(s) + 1) : fnv1a64(h, "\xff", 1);
}

static uint64_t h_match(uint64_t h, const struct ir_rule *r)
{
	h = h_s(h, r->set);
	return r->set ? h_u(h_u(h, r->family), r->field) : h;
}

static uint64_t h_iface(uint64_t h, const struct ir_rule *r)
{
	h = h_s(h, r->ifname);
	return r->ifname ? h_u(h, r->ifdir) : h;
}

/* The fields rule_eq() compares, kind by kind. */
static uint64_t h_rule(uint64_t h, const struct ir_rule *r)
{
	h = h_u(h_u(h, r->kind), r->verdict);
	switch (r->kind) {
	case IR_R_CT_STATE:
	case IR_R_NEW_NOT_SYN:
		return h_s(h, r->target);
	case IR_R_LOOPBACK:
		return h_u(h, r->ifdir);
	case IR_R_JUMP:
		return h_s(h_match(h_iface(h, r), r), r->target);
	case IR_R_ICMP:
		return h_u(h_u(h, r->family), r->icmp_type);
	case IR_R_LOOKUP:
	case IR_R_VMAP:
		return h_match(h, r);
	case IR_R_PORT_VMAP:
		return h_s(h, r->set);
	case IR_R_LOG:
		h = h_u(h_u(h_s(h, r->set), r->rate), r->unit);
		return h_s(h, r->log_prefix);
	case IR_R_COUNTER:
		return h_s(h_s(h, r->set), r->target);
	case IR_R_PROTO:
		h = h_s(h_match(h_iface(h, r), r), r->target);
		return h_u(h_u(h, r->l4proto), r->dport);
	}
	return h;
}

static uint64_t h_set(uint64_t h, const struct ir_ruleset *rs, const struct ir_set *s)
{
	h = h_u(h_u(h_s(h, s->name), s->key), s->is_map);
	h = h_u(h, s->nelems);
	for (size_t i = 0; i < s->nelems; i++) {
		const struct ir_elem *e = &s->elems[i];

		h = h_u(h_u(h, e->addr.family), e->addr.len);
		h = fnv1a64(h, e->addr.a, sizeof(e->addr.a));
		h = h_u(h_u(h_u(h, e->port.proto), e->port.lo), e->port.hi);
		if (s->is_map)
			h = h_s(h, e->chain < rs->nchains ? rs->chains[e->chain].name : NULL);
	}
	return h;
}

static uint64_t h_chain(const struct ir_chain *c)
{
	uint64_t h = h_u(h_s(FNV1A64_INIT, c->name), c->hook);

	if (c->hook != IR_HOOK_NONE)
		h = h_u(h_u(h, (uint64_t)(int64_t)c->priority), c->policy);
	h = h_u(h, c->nrules);
	for (size_t j = 0; j < c->nrules; j++)
		h = h_rule(h, &c->rules[j]);
	return h;
}

/* Chains, sets and counters are matched by name, not by their order (the
 * kernel's listing order is not the generator's): a sum of their own. */
uint64_t engine_ruleset_digest(const struct ir_ruleset *rs)
{
	uint64_t h;

	if (!rs)
		return 0;
	h = mix64(h_u(h_s(FNV1A64_INIT, rs->table), rs->flags));
	for (size_t i = 0; i < rs->nchains; i++)
		h += mix64(h_chain(&rs->chains[i]));
	for (size_t i = 0; i < rs->nsets; i++)
		h += mix64(h_set(FNV1A64_INIT, rs, &rs->sets[i]));
	for (size_t i = 0; i < rs->ncounters; i++)
		h += mix64(h_s(FNV1A64_INIT ^ 1, rs->counters[i].name));
	return mix64(h);
}

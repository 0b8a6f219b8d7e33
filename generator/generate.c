/* generate.c - struct policy + addresses -> ruleset IR (docs/RULESET.md).
 *
 * The shape of the IR (chains, rules, sets, counters) depends only on the
 * policy's shape; addresses only ever become set elements, so that an
 * address change is an element change and per-packet cost stays two map
 * lookups per direction (port class, then address).
 */
#include "generator/internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define NO_CHAIN UINT32_MAX
#define HA_PROTO_VRRP 112       /* IANA protocol number, VRRP v2 and v3 */

/* ICMP types by number (linux/icmp.h, linux/icmpv6.h). */
enum {
	ICMP_DEST_UNREACH = 3, ICMP_ECHO_REQ = 8, ICMP_TIME_EXCEEDED = 11,
	ICMP_PARAMETERPROB = 12,
	ICMP6_DEST_UNREACH = 1, ICMP6_PKT_TOOBIG = 2, ICMP6_TIME_EXCEED = 3,
	ICMP6_PARAMPROB = 4, ICMP6_ECHO_REQ = 128, ICMP6_ND_RA = 134,
	ICMP6_ND_NS = 135, ICMP6_ND_NA = 136,
};

/* Addresses of a partner on some of its ports: all its ports and the
 * addresses for all its services, or one SRV kind's services and what
 * that kind's SRV records gave (gen_addrs.scope), or the ports of one
 * of those that a provider feed publishes some addresses for too
 * (gen_addrs.pgrp): one per distinct set of ports. */
struct pgroup {
	struct gen_src *addrs;  /* sorted, unique */
	size_t naddrs, cap;
	struct portrange *ports;        /* merged */
	size_t nports;
};

/* What the generator knows about one partner. */
struct pstate {
	struct pgroup *grp;     /* [0]: all its services; then one per scoped
				 * SRV kind (nbase in all); then the narrowed */
	size_t ngrp, nbase;
	uint32_t in_chain, out_chain;   /* NO_CHAIN if not that direction */
};

struct gen {
	const struct policy *p;
	struct diag *d;
	struct pstate *ps;
	VEC(struct ir_chain) chains;
	VEC(struct ir_set) sets;
	VEC(struct ir_counter) counters;
	overlap_vec ov;
};

/* ---- per-partner inputs -------------------------------------------- */

static int src_cmp(const void *x, const void *y)
{
	return prefix_cmp(&((const struct gen_src *)x)->p, &((const struct gen_src *)y)->p);
}

/* Drops repeated prefixes from `src` (sorted), keeping the first loc.
 * Nested prefixes stay: the more specific one counts against others. */
static size_t dedupe_src(struct gen_src *src, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (!k || prefix_cmp(&src[k - 1].p, &src[i].p))
			src[k++] = src[i];
	return k;
}

/* The base groups of partner pt: [0] all its services, then one per SRV
 * kind scoped to some of them (bit order); grp_of[kind bit] its group. */
static void partner_groups(struct pstate *s, const struct policy *p,
			   const struct partner *pt, size_t grp_of[SRV_KINDS])
{
	unsigned scoped = partner_srv_scoped(p, pt);

	s->nbase = 1;
	for (unsigned b = 0; b < SRV_KINDS; b++)
		grp_of[b] = scoped & (1u << b) ? s->nbase++ : 0;
}

/* The groups (a mask of group indices) an address of SRV kinds `scope`
 * goes to: each kind's own if every kind of it is scoped, else the
 * common one (0: inline, hosts, lists). */
static unsigned scope_groups(unsigned scope, const size_t grp_of[SRV_KINDS])
{
	unsigned mask = 0;

	for (unsigned b = 0; b < SRV_KINDS; b++) {
		if (!(scope & (1u << b)))
			continue;
		if (!grp_of[b])
			return 1;       /* a kind all its services share */
		mask |= 1u << grp_of[b];
	}
	return mask ? mask : 1;
}

static void group_push(struct pgroup *gr, const struct gen_src *x)
{
	if (gr->naddrs == gr->cap) {
		gr->cap = gr->cap ? gr->cap * 2 : 8;
		gr->addrs = xreallocarray(gr->addrs, gr->cap, sizeof(*gr->addrs));
	}
	gr->addrs[gr->naddrs++] = *x;
}

/* The kind bit whose group is k (k > 0). */
static unsigned grp_bit(const size_t grp_of[SRV_KINDS], size_t k)
{
	for (unsigned b = 0; b < SRV_KINDS; b++)
		if (grp_of[b] == k)
			return b;
	return 0;
}

/* Base group 0 gets the ports of all the partner's services, a kind's
 * group those of its services of that kind. */
static void partner_ports(struct pstate *s, const struct policy *p,
			  const struct partner *pt)
{
	size_t grp_of[SRV_KINDS];

	partner_groups(s, p, pt, grp_of);
	s->grp = xcalloc(s->nbase, sizeof(*s->grp));
	s->ngrp = s->nbase;
	for (size_t k = 0; k < s->nbase; k++) {
		VEC(struct portrange) v = { 0 };

		for (size_t i = 0; i < pt->nservices; i++) {
			const struct service *sv = &p->services[pt->services[i].idx];
			unsigned kind = service_srv(sv->name);

			if (k && !(kind & (1u << (grp_bit(grp_of, k)))))
				continue;
			for (size_t j = 0; j < sv->nports; j++)
				VEC_PUSH(&v, sv->ports[j].r);
		}
		s->grp[k].nports = portranges_merge(v.v, v.n);
		s->grp[k].ports = v.v ? v.v : xcalloc(1, sizeof(*v.v));
	}
}

static char *ports_text(const struct portrange *r, size_t n);

/* ---- ports a feed publishes (gen_addrs.pgrp) --------------------------- */

/* a ∩ b, both merged: into out (room for na + nb), merged.  Returns how
 * many. */
static size_t ports_meet(const struct portrange *a, size_t na, const struct portrange *b,
			 size_t nb, struct portrange *out)
{
	size_t n = 0;

	for (size_t i = 0; i < na; i++) {
		for (size_t j = 0; j < nb; j++) {
			uint16_t lo = a[i].lo > b[j].lo ? a[i].lo : b[j].lo;
			uint16_t hi = a[i].hi < b[j].hi ? a[i].hi : b[j].hi;

			if (a[i].proto == b[j].proto && lo <= hi)
				out[n++] = (struct portrange){ a[i].proto, lo, hi };
		}
	}
	return portranges_merge(out, n);
}

/* The group of s holding base group b's ports narrowed to `ps`: an
 * existing one with exactly those ports (the base itself when ps covers
 * them), else a new one; SIZE_MAX when they have no port in common. */
static size_t narrowed(struct pstate *s, size_t b, const struct portset *ps)
{
	const struct pgroup *base = &s->grp[b];
	struct portrange *v = xcalloc(base->nports + ps->n + 1, sizeof(*v));
	size_t n = ports_meet(base->ports, base->nports, ps->v, ps->n, v);

	if (!n) {
		free(v);
		return SIZE_MAX;
	}
	for (size_t k = 0; k < s->ngrp; k++) {
		if (s->grp[k].nports == n && !memcmp(s->grp[k].ports, v, n * sizeof(*v))) {
			free(v);
			return k;
		}
	}
	s->grp = xreallocarray(s->grp, s->ngrp + 1, sizeof(*s->grp));
	s->grp[s->ngrp] = (struct pgroup){ .ports = v, .nports = n };
	return s->ngrp++;
}

/* Per (base group, port group): the group its addresses go to, found
 * once (SIZE_MAX - 1: not yet). */
struct narrow {
	size_t *to;
	size_t npg;
	size_t *nowhere;        /* per port group: addresses admitted nowhere */
	const struct loc **at;  /* per port group: the first of them */
};

static size_t narrow_to(struct narrow *nw, struct pstate *s, const struct gen_addrs *x,
			size_t b, uint32_t k)
{
	size_t *t = &nw->to[b * nw->npg + (k - 1)];

	if (*t == SIZE_MAX - 1)
		*t = narrowed(s, b, &x->pgroups[k - 1]);
	return *t;
}

/* The address goes to base group b, or, with ports of its own (k > 0),
 * to b's ports among them; nowhere when none is (counted). */
static void place(struct pstate *s, struct narrow *nw, const struct gen_addrs *x,
		  size_t i, size_t b, const struct gen_src *e)
{
	uint32_t k = x->pgrp ? x->pgrp[i] : 0;
	size_t t;

	if (k > x->npgroups)
		return;         /* a group that is not there opens nothing */
	t = k ? narrow_to(nw, s, x, b, k) : b;

	if (t != SIZE_MAX) {
		group_push(&s->grp[t], e);
	} else if (!nw->nowhere[k - 1]++) {
		nw->at[k - 1] = e->loc;
	}
}

/* "partner 'x': 8 addresses a feed publishes for tcp/80 only are admitted
 * nowhere: none of its services opens those ports" (a warning: the feed
 * is fine, the policy does not want what it adds). */
static void warn_nowhere(struct gen *g, const struct partner *pt, const struct narrow *nw,
			 const struct gen_addrs *x)
{
	for (size_t k = 0; k < nw->npg; k++) {
		char *ports;

		if (!nw->nowhere[k])
			continue;
		ports = ports_text(x->pgroups[k].v, x->pgroups[k].n);
		diag_warn(g->d, nw->at[k], "partner '%s': %zu address%s published for %s only"
			  " %s admitted nowhere: none of its services opens those ports",
			  pt->name, nw->nowhere[k], nw->nowhere[k] == 1 ? "" : "es",
			  ports ? ports : "no port", nw->nowhere[k] == 1 ? "is" : "are");
		free(ports);
	}
}

static void partner_addrs(struct gen *g, struct pstate *s, const struct partner *pt,
			  const struct gen_addrs *x)
{
	size_t grp_of[SRV_KINDS], npg = x && x->pgrp ? x->npgroups : 0;
	struct narrow nw = { xcalloc(s->nbase * npg + 1, sizeof(size_t)), npg,
			     xcalloc(npg + 1, sizeof(size_t)), xcalloc(npg + 1, sizeof(void *)) };

	partner_groups(s, g->p, pt, grp_of);
	for (size_t k = 0; k < s->nbase * npg; k++)
		nw.to[k] = SIZE_MAX - 1;
	for (size_t i = 0; i < pt->naddresses; i++)
		group_push(&s->grp[0], &(struct gen_src){ pt->addresses[i].p,
							  &pt->addresses[i].loc });
	for (size_t i = 0; x && i < x->n; i++) {
		struct gen_src e = { x->v[i], x->locs ? &x->locs[i] : NULL };
		unsigned mask = scope_groups(x->scope ? x->scope[i] : 0, grp_of);

		for (size_t b = 0; b < s->nbase; b++)
			if (mask & (1u << b))
				place(s, &nw, x, i, b, &e);
	}
	for (size_t k = 0; k < s->ngrp; k++) {
		struct pgroup *gr = &s->grp[k];

		if (!gr->addrs)
			gr->addrs = xcalloc(1, sizeof(*gr->addrs));
		sort_unless_sorted(gr->addrs, gr->naddrs, sizeof(*gr->addrs), src_cmp);
		gr->naddrs = dedupe_src(gr->addrs, gr->naddrs);
	}
	warn_nowhere(g, pt, &nw, x);
	free(nw.to);
	free(nw.nowhere);
	free(nw.at);
}

/* ---- object builders ------------------------------------------------- */

static char *xasprintf(const char *fmt, ...) PRINTF(1, 2);
static char *xasprintf(const char *fmt, ...)
{
	struct strbuf sb = { 0 };
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	return sb.s ? sb.s : xstrdup("");
}

static struct ir_chain *add_chain(struct gen *g, const char *name, enum ir_hook hook)
{
	struct ir_chain c = { .name = xstrdup(name), .hook = hook };

	if (hook != IR_HOOK_NONE)
		c.policy = IR_ACCEPT;
	VEC_PUSH(&g->chains, c);
	return &g->chains.v[g->chains.n - 1];
}

static struct ir_rule *add_rule(struct ir_chain *c, enum ir_rule_kind kind,
				enum ir_verdict v)
{
	struct ir_rule *r;

	c->rules = xreallocarray(c->rules, c->nrules + 1, sizeof(*c->rules));
	r = &c->rules[c->nrules++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->verdict = v;
	return r;
}

static struct ir_set *add_set(struct gen *g, const char *name, enum ir_keytype key,
			      bool is_map, const char *comment)
{
	struct ir_set s = { .name = xstrdup(name), .key = key, .is_map = is_map,
			    .comment = ir_comment_dup(comment) };

	VEC_PUSH(&g->sets, s);
	return &g->sets.v[g->sets.n - 1];
}

static void set_elems(struct ir_set *s, elem_vec *v)
{
	s->elems = v->v;
	s->nelems = v->n;
	*v = (elem_vec){ 0 };
}

static void add_counter(struct gen *g, const char *name, const char *comment,
			const struct loc *l)
{
	struct ir_counter c = { .name = xstrdup(name), .comment = ir_comment_dup(comment) };

	if (l)
		c.loc = *l;
	VEC_PUSH(&g->counters, c);
}

/* "DESCRIPTION (file:line)", the description cut so that the place fits. */
static char *partner_comment(const struct partner *pt)
{
	struct strbuf sb = { 0 };
	char where[96] = "";
	size_t room;
	char *out;

	if (pt->loc.file && pt->loc.line)
		snprintf(where, sizeof(where), " (%s:%u)", pt->loc.file, pt->loc.line);
	if (strlen(where) > IR_COMMENT_MAX / 2)
		where[0] = '\0';
	room = IR_COMMENT_MAX - strlen(where);
	if (pt->description)
		sb_addf(&sb, "%.*s", (int)room, pt->description);
	else
		sb_addf(&sb, "partner %s", pt->name);
	sb_addf(&sb, "%s", where);
	out = ir_comment_dup(sb_str(&sb));
	sb_free(&sb);
	return out;
}

/* ---- chains ------------------------------------------------------------ */

static void rule_jump(struct ir_chain *c, enum ir_ifdir dir, const char *ifname,
		      uint8_t family, enum ir_field f, const char *set, const char *target)
{
	struct ir_rule *r = add_rule(c, IR_R_JUMP, IR_JUMP);

	r->ifdir = ifname ? dir : IR_IF_NONE;
	r->ifname = ifname ? xstrdup(ifname) : NULL;
	r->family = set ? family : 0;
	r->field = f;
	r->set = set ? xstrdup(set) : NULL;
	r->target = xstrdup(target);
}

static void host_chain(struct gen *g, const char *name, enum ir_hook hook,
		       enum ir_ifdir dir, const char *target)
{
	struct ir_chain *c = add_chain(g, name, hook);
	const struct policy *p = g->p;

	add_rule(c, IR_R_LOOPBACK, IR_ACCEPT)->ifdir = dir;
	if (p->ha.present)
		rule_jump(c, IR_IF_NONE, NULL, 0, IR_SADDR, NULL,
			  hook == IR_HOOK_INPUT ? "ha_in" : "ha_out");
	if (p->edge.ninterfaces == 0)
		rule_jump(c, dir, NULL, 0, IR_SADDR, NULL, target);
	for (size_t i = 0; i < p->edge.ninterfaces; i++)
		rule_jump(c, dir, p->edge.interfaces[i].s, 0, IR_SADDR, NULL, target);
}

/* Gateway mode dispatches on the edge's addresses alone, on every
 * interface: traffic that reaches the edge by a path nobody named is still
 * filtered, so a wrong or missing interface name can never open it. */
static void gateway_chain(struct gen *g)
{
	struct ir_chain *c = add_chain(g, "forward", IR_HOOK_FORWARD);

	rule_jump(c, IR_IF_NONE, NULL, 4, IR_DADDR, "edge4", "edge_in");
	rule_jump(c, IR_IF_NONE, NULL, 6, IR_DADDR, "edge6", "edge_in");
	rule_jump(c, IR_IF_NONE, NULL, 4, IR_SADDR, "edge4", "edge_out");
	rule_jump(c, IR_IF_NONE, NULL, 6, IR_SADDR, "edge6", "edge_out");
	/* The pair's own traffic ends on the node, not behind it: only its
	 * input is filtered (gateway mode leaves the node's output alone). */
	if (g->p->ha.present)
		rule_jump(add_chain(g, "input", IR_HOOK_INPUT), IR_IF_NONE, NULL, 0,
			  IR_SADDR, NULL, "ha_in");
}

static void rule_icmp(struct ir_chain *c, uint8_t family, uint8_t type)
{
	struct ir_rule *r = add_rule(c, IR_R_ICMP, IR_ACCEPT);

	r->family = family;
	r->icmp_type = type;
}

static void rule_match(struct ir_chain *c, enum ir_rule_kind k, enum ir_verdict v,
		       uint8_t family, enum ir_field f, const char *set)
{
	struct ir_rule *r = add_rule(c, k, v);

	r->family = family;
	r->field = f;
	r->set = xstrdup(set);
}

static void rule_log(struct gen *g, struct ir_chain *c, const char *set)
{
	struct ir_rule *r;

	if (!g->p->log.enabled)
		return;
	r = add_rule(c, IR_R_LOG, IR_VERDICT_NONE);
	r->set = set ? xstrdup(set) : NULL;
	r->rate = g->p->log.rate;
	r->unit = g->p->log.unit;
	r->log_prefix = xstrdup(g->p->log.prefix ? g->p->log.prefix : "");
}

static void rule_counter(struct ir_chain *c, const char *set, const char *counter,
			 enum ir_verdict v)
{
	struct ir_rule *r = add_rule(c, IR_R_COUNTER, v);

	r->set = set ? xstrdup(set) : NULL;
	r->target = xstrdup(counter);
}

/* Every drop has its counter: invalid packets (`ct state invalid`), new
 * TCP without a SYN that no partner map admitted, and strangers. */
static void ct_rules(struct ir_chain *c, const char *invalid)
{
	add_rule(c, IR_R_CT_STATE, IR_ACCEPT);
	add_rule(c, IR_R_CT_STATE, IR_DROP)->target = xstrdup(invalid);
}

/* With the kernel's default nf_conntrack_tcp_loose=1 conntrack picks up a
 * connection in mid-stream.  This rule stands after the port dispatch
 * (and the management and allowance lookups): a session of an admitted
 * partner that conntrack never saw (the first apply on a live edge) is
 * picked up through its partner chain, while a revoked address, no longer
 * in any map, or a stranger reaches it and is dropped: after revocation
 * deleted a session's entry, its next segment (the edge's retransmission
 * above all) would otherwise create a fresh entry and the cut session
 * would live on. */
static void rule_new_not_syn(struct ir_chain *c, const char *counter)
{
	struct ir_rule *r = add_rule(c, IR_R_NEW_NOT_SYN, IR_DROP);

	r->target = xstrdup(counter);
	r->comment = ir_comment_dup("new TCP without a SYN: only admitted partners "
				    "are picked up in mid-stream");
}

static void edge_in_chain(struct gen *g)
{
	static const uint8_t v4[] = { ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED,
				      ICMP_PARAMETERPROB };
	static const uint8_t v6[] = { ICMP6_DEST_UNREACH, ICMP6_PKT_TOOBIG,
				      ICMP6_TIME_EXCEED, ICMP6_PARAMPROB };
	static const uint8_t nd[] = { ICMP6_ND_NS, ICMP6_ND_NA, ICMP6_ND_RA };
	struct ir_chain *c = add_chain(g, "edge_in", IR_HOOK_NONE);

	c->comment = ir_comment_dup("new connections to the edge");
	ct_rules(c, "dropped_in_invalid");
	for (size_t i = 0; i < ARRAY_SIZE(v4); i++)
		rule_icmp(c, 4, v4[i]);
	for (size_t i = 0; i < ARRAY_SIZE(v6); i++)
		rule_icmp(c, 6, v6[i]);
	for (size_t i = 0; g->p->mode == MODE_HOST && i < ARRAY_SIZE(nd); i++)
		rule_icmp(c, 6, nd[i]);
	if (g->p->icmp_echo) {
		rule_icmp(c, 4, ICMP_ECHO_REQ);
		rule_icmp(c, 6, ICMP6_ECHO_REQ);
	}
	rule_match(c, IR_R_LOOKUP, IR_ACCEPT, 4, IR_SADDR, "mgmt4");
	rule_match(c, IR_R_LOOKUP, IR_ACCEPT, 6, IR_SADDR, "mgmt6");
	rule_match(c, IR_R_PORT_VMAP, IR_VERDICT_NONE, 0, IR_SADDR, "in_ports");
	rule_new_not_syn(c, "dropped_in_nosyn");
	rule_log(g, c, NULL);
	rule_counter(c, NULL, "dropped_in", IR_DROP);
}

static void edge_out_chain(struct gen *g)
{
	struct ir_chain *c = add_chain(g, "edge_out", IR_HOOK_NONE);

	c->comment = ir_comment_dup("new connections from the edge");
	ct_rules(c, "dropped_out_invalid");
	rule_match(c, IR_R_PORT_VMAP, IR_VERDICT_NONE, 0, IR_SADDR, "out_ports");
	rule_match(c, IR_R_LOOKUP, IR_ACCEPT, 4, IR_DADDR, "outallow4");
	rule_match(c, IR_R_LOOKUP, IR_ACCEPT, 6, IR_DADDR, "outallow6");
	rule_new_not_syn(c, "dropped_out_nosyn");
	rule_log(g, c, "fedports");
	rule_counter(c, "fedports", "dropped_out", IR_DROP);
}

/* ---- the HA pair ------------------------------------------------------- */

/* One HA rule: [IF] [ADDR @set] PROTO [dport] [counter] verdict. */
static void rule_proto(struct ir_chain *c, enum ir_ifdir dir, const char *ifname,
		       uint8_t family, const char *set, uint16_t dport,
		       const char *counter, enum ir_verdict v)
{
	struct ir_rule *r = add_rule(c, IR_R_PROTO, v);

	r->ifdir = ifname ? dir : IR_IF_NONE;
	r->ifname = ifname ? xstrdup(ifname) : NULL;
	r->family = set ? family : 0;
	r->field = dir == IR_OIF ? IR_DADDR : IR_SADDR;
	r->set = set ? xstrdup(set) : NULL;
	r->l4proto = dport ? PROTO_UDP : HA_PROTO_VRRP;
	r->dport = dport;
	r->target = counter ? xstrdup(counter) : NULL;
}

/* VRRP (v2 and v3 alike: IP protocol 112, to 224.0.0.18, ff02::12 or a
 * peer) and conntrackd's datagrams (from any port to its port: FTFW's
 * acks too) are admitted from the peers, on ha.interface when named;
 * from anybody else, or on another interface, they are dropped and
 * counted.  Before the conntrack state rules, so that all of it is
 * counted: unicast VRRP turns "established" after one advert each way. */
static void ha_in_chain(struct gen *g)
{
	const struct hacfg *ha = &g->p->ha;
	const char *ifn = ha->interface.s;
	struct ir_chain *c = add_chain(g, "ha_in", IR_HOOK_NONE);
	uint16_t kinds[2];
	size_t n = 0;

	c->comment = ir_comment_dup("HA pair: VRRP and conntrackd's sync from the peers only");
	if (ha->vrrp)
		kinds[n++] = 0;
	if (ha->conntrackd)
		kinds[n++] = ha->conntrackd;
	for (size_t k = 0; k < n; k++) {
		rule_proto(c, IR_IIF, ifn, 4, "ha4", kinds[k], "ha_peers", IR_ACCEPT);
		rule_proto(c, IR_IIF, ifn, 6, "ha6", kinds[k], "ha_peers", IR_ACCEPT);
	}
	for (size_t k = 0; k < n; k++)
		rule_proto(c, IR_IF_NONE, NULL, 0, NULL, kinds[k], "dropped_ha", IR_DROP);
}

/* Host mode filters the node's output: its own adverts (to a peer or
 * VRRP's group) and sync datagrams (to a peer) are let out by name, not
 * left to what edge_out happens to let through; to anybody else they
 * meet edge_out like any other packet. */
static void ha_out_chain(struct gen *g)
{
	const struct hacfg *ha = &g->p->ha;
	struct ir_chain *c = add_chain(g, "ha_out", IR_HOOK_NONE);

	c->comment = ir_comment_dup("HA pair: this node's VRRP and conntrackd's sync");
	if (ha->vrrp) {
		rule_proto(c, IR_OIF, ha->interface.s, 4, "ha_vrrp4", 0, NULL, IR_ACCEPT);
		rule_proto(c, IR_OIF, ha->interface.s, 6, "ha_vrrp6", 0, NULL, IR_ACCEPT);
	}
	if (ha->conntrackd) {
		rule_proto(c, IR_OIF, ha->interface.s, 4, "ha4", ha->conntrackd, NULL,
			   IR_ACCEPT);
		rule_proto(c, IR_OIF, ha->interface.s, 6, "ha6", ha->conntrackd, NULL,
			   IR_ACCEPT);
	}
}

/* Where this node's adverts may go: the peers (unicast VRRP) and VRRP's
 * group, 224.0.0.18 and ff02::12 (RFC 5798), above every unicast peer
 * (validate refuses multicast peers), so the sets stay sorted. */
static void ha_vrrp_sets(struct gen *g, const elem_vec peers[2])
{
	static const char *const group[2] = { "224.0.0.18", "ff02::12" };
	elem_vec v[2] = { { 0 }, { 0 } };

	for (int f = 0; f < 2; f++) {
		struct ir_elem e = { 0 };

		for (size_t i = 0; i < peers[f].n; i++)
			VEC_PUSH(&v[f], peers[f].v[i]);
		prefix_parse(group[f], &e.addr);
		VEC_PUSH(&v[f], e);
	}
	set_elems(add_set(g, "ha_vrrp4", IR_KEY_ADDR4, false,
			  "HA pair: where this node's adverts go"), &v[0]);
	set_elems(add_set(g, "ha_vrrp6", IR_KEY_ADDR6, false,
			  "HA pair: where this node's adverts go"), &v[1]);
}

static void ha_build(struct gen *g)
{
	const struct hacfg *ha = &g->p->ha;
	elem_vec v[2] = { { 0 }, { 0 } };

	if (!ha->present)
		return;
	ha_in_chain(g);
	if (g->p->mode == MODE_HOST)
		ha_out_chain(g);
	add_counter(g, "ha_peers", "HA pair: VRRP and conntrackd's sync from the peers,"
		    " admitted", &ha->loc);
	add_counter(g, "dropped_ha", "HA pair: VRRP and conntrackd's port, not from a"
		    " peer (or not on the HA interface), dropped", &ha->loc);
	for (size_t i = 0; i < ha->npeers; i++)
		VEC_PUSH(&v[ha->peers[i].p.family == 6],
			 ((struct ir_elem){ .addr = ha->peers[i].p }));
	if (ha->vrrp && g->p->mode == MODE_HOST)
		ha_vrrp_sets(g, v);
	set_elems(add_set(g, "ha4", IR_KEY_ADDR4, false, "HA pair: the peers"), &v[0]);
	set_elems(add_set(g, "ha6", IR_KEY_ADDR6, false, "HA pair: the peers"), &v[1]);
}

static uint32_t partner_chain(struct gen *g, const struct partner *pt, const char *dir)
{
	char *name = xasprintf("%s_%s", dir, pt->name);
	struct ir_chain *c = add_chain(g, name, IR_HOOK_NONE);
	char *comment = partner_comment(pt);

	c->comment = xstrdup(comment);
	c->loc = pt->loc;
	rule_counter(c, NULL, name, IR_ACCEPT);
	add_counter(g, name, comment, &pt->loc);
	free(comment);
	free(name);
	return (uint32_t)(g->chains.n - 1);
}

static void build_chains(struct gen *g)
{
	const struct policy *p = g->p;

	if (p->mode == MODE_GATEWAY) {
		gateway_chain(g);
	} else {
		host_chain(g, "input", IR_HOOK_INPUT, IR_IIF, "edge_in");
		host_chain(g, "output", IR_HOOK_OUTPUT, IR_OIF, "edge_out");
	}
	edge_in_chain(g);
	edge_out_chain(g);
	add_counter(g, "dropped_in", "new connections to the edge not admitted, dropped",
		    NULL);
	add_counter(g, "dropped_in_invalid", "to the edge, invalid for conntrack, dropped",
		    NULL);
	add_counter(g, "dropped_in_nosyn", "new TCP to the edge without a SYN, not from a"
		    " partner, dropped", NULL);
	add_counter(g, "dropped_out", "new connections to signalling ports, not to a"
		    " partner, dropped", NULL);
	add_counter(g, "dropped_out_invalid", "from the edge, invalid for conntrack,"
		    " dropped", NULL);
	add_counter(g, "dropped_out_nosyn", "new TCP from the edge without a SYN, not to"
		    " a partner, dropped", NULL);
	ha_build(g);
	for (size_t i = 0; i < p->npartners; i++) {
		const struct partner *pt = &p->partners[i];

		g->ps[i].in_chain = g->ps[i].out_chain = NO_CHAIN;
		if (pt->direction & DIR_INBOUND)
			g->ps[i].in_chain = partner_chain(g, pt, "in");
		if (pt->direction & DIR_OUTBOUND)
			g->ps[i].out_chain = partner_chain(g, pt, "out");
	}
}

/* ---- sets ---------------------------------------------------------------- */

/* "tcp/5061, udp/3478-3481, ..." for a class's comments. */
static char *ports_text(const struct portrange *r, size_t n)
{
	struct strbuf sb = { 0 };
	char buf[PORTRANGE_STRLEN];
	char *out;

	for (size_t i = 0; i < n; i++)
		sb_addf(&sb, "%s%s", i ? ", " : "", portrange_fmt(&r[i], buf, sizeof(buf)));
	out = ir_comment_dup(sb_str(&sb));
	sb_free(&sb);
	return out;
}

static struct ir_set *partner_set(struct gen *g, const char *dir, int family, size_t k,
				  elem_vec *v, bool out, const char *ports)
{
	char *name = xasprintf("%s%d_%zu", dir, family, k + 1);
	char *comment = xasprintf("%s: partner %s address -> the partner's chain", ports,
				  out ? "destination" : "source");
	struct ir_set *s = add_set(g, name, family == 6 ? IR_KEY_ADDR6 : IR_KEY_ADDR4,
				   true, comment);

	set_elems(s, v);
	s->revoke = true;
	s->revoke_field = out ? IR_DADDR : IR_SADDR;
	free(comment);
	free(name);
	return s;
}

/* One port class: chain edge_DIR_N looks the address up in DIR4_N or
 * DIR6_N, whose elements jump to the partner that owns the address on
 * these ports.  Returns the chain's index. */
static uint32_t class_chain(struct gen *g, bool out, size_t k, struct gen_class *gc)
{
	const char *dir = out ? "out" : "in";
	enum ir_field f = out ? IR_DADDR : IR_SADDR;
	char *name = xasprintf("edge_%s_%zu", dir, k + 1);
	char *ports = ports_text(gc->atoms, gc->natoms);
	char *set4 = xasprintf("%s4_%zu", dir, k + 1), *set6 = xasprintf("%s6_%zu", dir, k + 1);
	struct ir_chain *c = add_chain(g, name, IR_HOOK_NONE);

	c->comment = xasprintf("port class %s", ports);
	rule_match(c, IR_R_VMAP, IR_VERDICT_NONE, 4, f, set4);
	rule_match(c, IR_R_VMAP, IR_VERDICT_NONE, 6, f, set6);
	partner_set(g, dir, 4, k, &gc->v4, out, ports);
	partner_set(g, dir, 6, k, &gc->v6, out, ports);
	free(set4);
	free(set6);
	free(ports);
	free(name);
	return (uint32_t)(g->chains.n - 1);
}

/* The partners of one direction: the port dispatch map DIR_ports sends
 * each port class to its chain (class_chain).  Per packet: one lookup in
 * a map of a few port ranges, one in an address map (an rbtree: O(log n)
 * lookups, inserts and deletes), one element per prefix and class. */
static void partner_map(struct gen *g, bool out)
{
	struct gen_owner *o;
	elem_vec dv = { 0 };
	struct gen_class *gc;
	struct ir_set *ds;
	size_t n = 0, nc;

	for (size_t i = 0; i < g->p->npartners; i++)
		n += g->ps[i].ngrp;
	o = xcalloc(n + 1, sizeof(*o));
	n = 0;

	for (size_t i = 0; i < g->p->npartners; i++) {
		const struct pstate *s = &g->ps[i];
		uint32_t chain = out ? s->out_chain : s->in_chain;

		if (chain == NO_CHAIN)
			continue;
		for (size_t k = 0; k < s->ngrp; k++)
			o[n++] = (struct gen_owner){ s->grp[k].addrs, s->grp[k].naddrs,
						     s->grp[k].ports, s->grp[k].nports,
						     chain, (uint32_t)i };
	}
	nc = gen_classes(o, n, &gc, &g->ov);
	for (size_t k = 0; k < nc; k++) {
		uint32_t chain = class_chain(g, out, k, &gc[k]);

		for (size_t a = 0; a < gc[k].natoms; a++)
			VEC_PUSH(&dv, ((struct ir_elem){ .port = gc[k].atoms[a], .chain = chain }));
	}
	ir_sort_elems(dv.v, dv.n);
	ds = add_set(g, out ? "out_ports" : "in_ports", IR_KEY_PROTO_PORT, true,
		     out ? "protocol . port: jump to the port class's partners"
			 : "protocol . edge port: jump to the port class's partners");
	set_elems(ds, &dv);
	gen_classes_free(gc, nc);
	free(o);
}

/* Addresses and ports of one management entry or outbound allowance. */
struct plain_src {
	const struct addr_ent *a;
	size_t na;
	const struct port_ent *p;
	size_t np;
};

/* The union of `ps` as `address . proto . port` sets set4 and set6. */
static void addr_port_sets(struct gen *g, const struct plain_src *ps, size_t n,
			   const char *set4, const char *set6, const char *comment)
{
	struct gen_owner *o = xcalloc(n + 1, sizeof(*o));
	struct gen_src **src = xcalloc(n + 1, sizeof(*src));
	struct portrange **ports = xcalloc(n + 1, sizeof(*ports));
	elem_vec v4 = { 0 }, v6 = { 0 };

	for (size_t i = 0; i < n; i++) {
		src[i] = xcalloc(ps[i].na + 1, sizeof(**src));
		for (size_t j = 0; j < ps[i].na; j++)
			src[i][j] = (struct gen_src){ ps[i].a[j].p, &ps[i].a[j].loc };
		ports[i] = xcalloc(ps[i].np + 1, sizeof(**ports));
		for (size_t j = 0; j < ps[i].np; j++)
			ports[i][j] = ps[i].p[j].r;
		o[i] = (struct gen_owner){ src[i], ps[i].na, ports[i], ps[i].np, 0, (uint32_t)i };
	}
	gen_elems(o, n, &v4, &v6);
	set_elems(add_set(g, set4, IR_KEY_ADDR4_PROTO_PORT, false, comment), &v4);
	set_elems(add_set(g, set6, IR_KEY_ADDR6_PROTO_PORT, false, comment), &v6);
	for (size_t i = 0; i < n; i++) {
		free(src[i]);
		free(ports[i]);
	}
	free(ports);
	free(src);
	free(o);
}

static void mgmt_sets(struct gen *g)
{
	const struct policy *p = g->p;
	struct plain_src *ps = xcalloc(p->nmanagement + 1, sizeof(*ps));

	for (size_t i = 0; i < p->nmanagement; i++) {
		const struct mgmt *m = &p->management[i];

		ps[i] = (struct plain_src){ m->from, m->nfrom, m->to, m->nto };
	}
	addr_port_sets(g, ps, p->nmanagement, "mgmt4", "mgmt6", "management: always admitted");
	free(ps);
}

/* outbound: {allow}: destination . proto . port the edge may always call. */
static void outallow_sets(struct gen *g)
{
	const struct policy *p = g->p;
	struct plain_src *ps = xcalloc(p->noutallow + 1, sizeof(*ps));

	for (size_t i = 0; i < p->noutallow; i++) {
		const struct outallow *a = &p->outallow[i];

		ps[i] = (struct plain_src){ a->to, a->nto, a->ports, a->nports };
	}
	addr_port_sets(g, ps, p->noutallow, "outallow4", "outallow6",
		       "outbound allowances: the edge may always call these");
	free(ps);
}

/* The signalling ports of every service some partner uses, whatever its
 * direction: the edge may call only partners on them (and what an
 * outbound allowance names).  Shared ports (tcp/443, media ranges) are
 * not among them unless a service says so (service.restricts). */
static void fedports_set(struct gen *g)
{
	const struct policy *p = g->p;
	VEC(struct portrange) v = { 0 };
	struct ir_set *s;

	for (size_t i = 0; i < p->npartners; i++)
		for (size_t k = 0; k < p->partners[i].nservices; k++) {
			const struct service *sv = &p->services[p->partners[i].services[k].idx];

			for (size_t j = 0; j < sv->nrestricts; j++)
				VEC_PUSH(&v, sv->restricts[j].r);
		}
	v.n = portranges_merge(v.v, v.n);
	s = add_set(g, "fedports", IR_KEY_PROTO_PORT, false,
		    "signalling ports: the edge may call only partners on them");
	s->elems = xcalloc(v.n + 1, sizeof(*s->elems));
	for (size_t i = 0; i < v.n; i++)
		s->elems[i].port = v.v[i];
	s->nelems = v.n;
	free(v.v);
}

static void edge_sets(struct gen *g)
{
	const struct policy *p = g->p;
	struct prefix *a = xcalloc(p->edge.naddresses + 1, sizeof(*a));
	elem_vec v[2] = { { 0 }, { 0 } };
	size_t n;

	for (size_t i = 0; i < p->edge.naddresses; i++)
		a[i] = p->edge.addresses[i].p;
	n = prefixes_merge(a, p->edge.naddresses);
	for (size_t i = 0; i < n; i++)
		VEC_PUSH(&v[a[i].family == 6], ((struct ir_elem){ .addr = a[i] }));
	set_elems(add_set(g, "edge4", IR_KEY_ADDR4, false, "edge addresses"), &v[0]);
	set_elems(add_set(g, "edge6", IR_KEY_ADDR6, false, "edge addresses"), &v[1]);
	free(a);
}

static void build_sets(struct gen *g)
{
	partner_map(g, false);
	partner_map(g, true);
	mgmt_sets(g);
	outallow_sets(g);
	fedports_set(g);
	if (g->p->mode == MODE_GATEWAY)
		edge_sets(g);
}

/* ---- overlap warnings ------------------------------------------------ */

#define OVERLAPS_PER_PAIR 20    /* then one summary line */

static int overlap_cmp(const void *x, const void *y)
{
	const struct gen_overlap *a = x, *b = y;
	int c;

	if (a->loser != b->loser)
		return a->loser < b->loser ? -1 : 1;
	if (a->winner != b->winner)
		return a->winner < b->winner ? -1 : 1;
	if ((c = prefix_cmp(&a->shared, &b->shared)))
		return c;
	if ((c = prefix_cmp(&a->lprefix, &b->lprefix)))
		return c;
	return portrange_cmp(&a->port, &b->port);
}

static bool same_overlap(const struct gen_overlap *a, const struct gen_overlap *b)
{
	return a->loser == b->loser && a->winner == b->winner &&
	       !prefix_cmp(&a->shared, &b->shared) && !prefix_cmp(&a->lprefix, &b->lprefix);
}

/* Reports ov[i..) that share partners and prefixes; returns the next. */
static size_t warn_overlap(struct gen *g, const struct gen_overlap *ov, size_t i, size_t n)
{
	const struct gen_overlap *o = &ov[i];
	const char *l = g->p->partners[o->loser].name, *w = g->p->partners[o->winner].name;
	char sp[PREFIX_STRLEN], lp[PREFIX_STRLEN], pr[PORTRANGE_STRLEN];
	VEC(struct portrange) pv = { 0 };
	struct strbuf ports = { 0 };
	size_t j;

	for (j = i; j < n && same_overlap(o, &ov[j]); j++)
		VEC_PUSH(&pv, ov[j].port);
	pv.n = portranges_merge(pv.v, pv.n);
	for (size_t k = 0; k < pv.n; k++)
		sb_addf(&ports, "%s%s", k ? ", " : "", portrange_fmt(&pv.v[k], pr, sizeof(pr)));
	free(pv.v);
	prefix_fmt(&o->shared, sp, sizeof(sp));
	prefix_fmt(&o->lprefix, lp, sizeof(lp));
	if (!prefix_cmp(&o->shared, &o->lprefix))
		diag_warn(g->d, o->loc, "partners '%s' and '%s' overlap on %s (%s): same prefix,"
			  " '%s' sorts first and gets it", l, w, sp, sb_str(&ports), w);
	else
		diag_warn(g->d, o->loc, "partners '%s' and '%s' overlap on %s (%s): '%s' has"
			  " the longer prefix and gets it, '%s' keeps the rest of %s",
			  l, w, sp, sb_str(&ports), w, l, lp);
	sb_free(&ports);
	return j;
}

static void report_overlaps(struct gen *g)
{
	overlap_vec *ov = &g->ov;
	size_t i = 0;

	if (ov->n)
		qsort(ov->v, ov->n, sizeof(*ov->v), overlap_cmp);
	while (i < ov->n) {
		size_t shown = 0, more = 0;
		uint32_t l = ov->v[i].loser, w = ov->v[i].winner;

		while (i < ov->n && ov->v[i].loser == l && ov->v[i].winner == w) {
			if (shown++ < OVERLAPS_PER_PAIR) {
				i = warn_overlap(g, ov->v, i, ov->n);
				continue;
			}
			for (const struct gen_overlap *o = &ov->v[i];
			     i < ov->n && same_overlap(o, &ov->v[i]); i++)
				;
			more++;
		}
		if (more)
			diag_warn(g->d, &g->p->partners[l].loc, "partners '%s' and '%s' overlap"
				  " on %zu more prefixes", g->p->partners[l].name,
				  g->p->partners[w].name, more);
	}
}

/* ---- the whole ------------------------------------------------------------ */

/* nft's scanner reads a name that starts with a digit as a number. */
static bool nft_name_ok(const char *s)
{
	return isalpha((unsigned char)s[0]) || s[0] == '_';
}

static struct ir_ruleset *finish(struct gen *g)
{
	struct ir_ruleset *rs = xcalloc(1, sizeof(*rs));

	rs->table = xstrdup(g->p->table ? g->p->table : POLICY_DEFAULT_TABLE);
	rs->comment = ir_comment_dup("managed by fedwall: edits are overwritten");
	rs->chains = g->chains.v;
	rs->nchains = g->chains.n;
	rs->sets = g->sets.v;
	rs->nsets = g->sets.n;
	rs->counters = g->counters.v;
	rs->ncounters = g->counters.n;
	return rs;
}

struct ir_ruleset *generate(const struct policy *p, const struct gen_addrs *extra,
			    struct diag *d)
{
	struct gen g = { .p = p, .d = d };
	const char *table = p->table ? p->table : POLICY_DEFAULT_TABLE;
	struct ir_ruleset *rs;

	if (!nft_name_ok(table)) {
		diag_error(d, NULL, "table name '%s': nftables needs a name that starts"
			   " with a letter", table);
		return NULL;
	}
	g.ps = xcalloc(p->npartners + 1, sizeof(*g.ps));
	for (size_t i = 0; i < p->npartners; i++) {
		partner_ports(&g.ps[i], p, &p->partners[i]);
		partner_addrs(&g, &g.ps[i], &p->partners[i], extra ? &extra[i] : NULL);
	}
	build_chains(&g);
	build_sets(&g);
	report_overlaps(&g);
	rs = finish(&g);
	for (size_t i = 0; i < p->npartners; i++) {
		for (size_t k = 0; k < g.ps[i].ngrp; k++) {
			free(g.ps[i].grp[k].addrs);
			free(g.ps[i].grp[k].ports);
		}
		free(g.ps[i].grp);
	}
	free(g.ps);
	free(g.ov.v);
	return rs;
}

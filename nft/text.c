/* text.c - the IR as an `nft -f` script.
 *
 * Written for nftables 1.0.6 (Debian 12): no `destroy`, so the table is
 * created empty, deleted and declared again, which works whether or not
 * it existed and is applied as one transaction.  Layout follows
 * `nft list ruleset`: tabs, one object per block, blank lines between
 * objects, one set element per line.  Sets come before the chains that
 * use them.
 */
#include "nft/nft.h"

#include <string.h>

static const char *hook_name(enum ir_hook h)
{
	switch (h) {
	case IR_HOOK_INPUT:
		return "input";
	case IR_HOOK_FORWARD:
		return "forward";
	case IR_HOOK_OUTPUT:
		return "output";
	case IR_HOOK_NONE:
		break;
	}
	return "?";
}

static const char *verdict_name(enum ir_verdict v)
{
	switch (v) {
	case IR_ACCEPT:
		return "accept";
	case IR_DROP:
		return "drop";
	case IR_JUMP:
		return "jump";
	case IR_VERDICT_NONE:
		break;
	}
	return "";
}

static const char *unit_name(enum log_unit u)
{
	static const char *const n[] = { "second", "minute", "hour", "day" };

	return (unsigned)u < ARRAY_SIZE(n) ? n[u] : "minute";
}

static const char *key_type(enum ir_keytype k)
{
	switch (k) {
	case IR_KEY_ADDR4:
		return "ipv4_addr";
	case IR_KEY_ADDR6:
		return "ipv6_addr";
	case IR_KEY_ADDR4_PROTO_PORT:
		return "ipv4_addr . inet_proto . inet_service";
	case IR_KEY_ADDR6_PROTO_PORT:
		return "ipv6_addr . inet_proto . inet_service";
	case IR_KEY_PROTO_PORT:
		return "inet_proto . inet_service";
	}
	return "?";
}

/* nft's names for the ICMP types fedwall uses; others print as numbers. */
static const char *icmp_name(uint8_t family, uint8_t type)
{
	static const struct { uint8_t f, t; const char *n; } names[] = {
		{ 4, 0, "echo-reply" }, { 4, 3, "destination-unreachable" },
		{ 4, 8, "echo-request" }, { 4, 11, "time-exceeded" },
		{ 4, 12, "parameter-problem" },
		{ 6, 1, "destination-unreachable" }, { 6, 2, "packet-too-big" },
		{ 6, 3, "time-exceeded" }, { 6, 4, "parameter-problem" },
		{ 6, 128, "echo-request" }, { 6, 129, "echo-reply" },
		{ 6, 133, "nd-router-solicit" }, { 6, 134, "nd-router-advert" },
		{ 6, 135, "nd-neighbor-solicit" }, { 6, 136, "nd-neighbor-advert" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].f == family && names[i].t == type)
			return names[i].n;
	return NULL;
}

/* A quoted string: nft has no escape for '"', so it cannot appear. */
static void add_quoted(struct strbuf *sb, const char *s)
{
	sb_addc(sb, '"');
	for (; s && *s; s++)
		sb_addc(sb, *s == '"' ? '\'' : *s);
	sb_addc(sb, '"');
}

static void add_comment_line(struct strbuf *sb, const char *indent, const char *c)
{
	if (!c)
		return;
	sb_addf(sb, "%scomment ", indent);
	add_quoted(sb, c);
	sb_addc(sb, '\n');
}

/* ---- rules ------------------------------------------------------------- */

static void add_addr_match(struct strbuf *sb, const struct ir_rule *r)
{
	sb_addf(sb, "%s %s ", r->family == 6 ? "ip6" : "ip",
		r->field == IR_DADDR ? "daddr" : "saddr");
}

/* "ip saddr . meta l4proto . th dport" */
static void add_concat(struct strbuf *sb, const struct ir_rule *r)
{
	add_addr_match(sb, r);
	sb_addf(sb, ". meta l4proto . th dport ");
}

/* An address vmap's key is its map's: the address alone (port class
 * maps) or address . proto . port (a map the rule sees every port of). */
static bool vmap_has_ports(const struct ir_ruleset *rs, const struct ir_rule *r)
{
	const struct ir_set *s = ir_find_set(rs, r->set);

	return s && (s->key == IR_KEY_ADDR4_PROTO_PORT || s->key == IR_KEY_ADDR6_PROTO_PORT);
}

/* `iifname "IF" ip saddr @S ` as far as the rule has them. */
static void add_if_set(struct strbuf *sb, const struct ir_rule *r)
{
	if (r->ifname) {
		sb_addf(sb, "%s ", r->ifdir == IR_OIF ? "oifname" : "iifname");
		add_quoted(sb, r->ifname);
		sb_addc(sb, ' ');
	}
	if (r->set) {
		add_addr_match(sb, r);
		sb_addf(sb, "@%s ", r->set);
	}
}

static void add_jump(struct strbuf *sb, const struct ir_rule *r)
{
	add_if_set(sb, r);
	sb_addf(sb, "jump %s", r->target);
}

static void add_icmp(struct strbuf *sb, const struct ir_rule *r)
{
	const char *n = icmp_name(r->family, r->icmp_type);

	sb_addf(sb, "%s type ", r->family == 6 ? "icmpv6" : "icmp");
	if (n)
		sb_addf(sb, "%s", n);
	else
		sb_addf(sb, "%u", r->icmp_type);
	sb_addf(sb, " %s", verdict_name(r->verdict));
}

/* `counter name "C" ` before a verdict, when the rule counts. */
static void add_counter_ref(struct strbuf *sb, const char *counter)
{
	if (!counter)
		return;
	sb_addf(sb, "counter name ");
	add_quoted(sb, counter);
	sb_addc(sb, ' ');
}

/* nft lists protocol 112 by its /etc/protocols name, and a port match
 * as `udp dport N` (the protocol guard implied). */
static void add_proto(struct strbuf *sb, const struct ir_rule *r)
{
	add_if_set(sb, r);
	if (r->dport)
		sb_addf(sb, "%s dport %u ", proto_name(r->l4proto), r->dport);
	else if (r->l4proto == 112)
		sb_addf(sb, "meta l4proto vrrp ");
	else
		sb_addf(sb, "meta l4proto %u ", r->l4proto);
	add_counter_ref(sb, r->target);
	sb_addf(sb, "%s", verdict_name(r->verdict));
}

static void add_rule_body(struct strbuf *sb, const struct ir_ruleset *rs,
			  const struct ir_rule *r)
{
	switch (r->kind) {
	case IR_R_CT_STATE:
		sb_addf(sb, "ct state %s ", r->verdict == IR_ACCEPT ?
			"established,related" : "invalid");
		add_counter_ref(sb, r->target);
		sb_addf(sb, "%s", verdict_name(r->verdict));
		break;
	case IR_R_NEW_NOT_SYN:
		/* nft's own listing of `tcp flags & (fin | syn | rst | ack)
		 * != syn`, so that the text reads back as nft lists it */
		sb_addf(sb, "tcp flags != syn / fin,syn,rst,ack ct state new ");
		add_counter_ref(sb, r->target);
		sb_addf(sb, "%s", verdict_name(r->verdict));
		break;
	case IR_R_LOOPBACK:
		sb_addf(sb, "%s \"lo\" %s", r->ifdir == IR_OIF ? "oif" : "iif",
			verdict_name(r->verdict));
		break;
	case IR_R_JUMP:
		add_jump(sb, r);
		break;
	case IR_R_ICMP:
		add_icmp(sb, r);
		break;
	case IR_R_LOOKUP:
		add_concat(sb, r);
		sb_addf(sb, "@%s %s", r->set, verdict_name(r->verdict));
		break;
	case IR_R_VMAP:
		if (vmap_has_ports(rs, r))
			add_concat(sb, r);
		else
			add_addr_match(sb, r);
		sb_addf(sb, "vmap @%s", r->set);
		break;
	case IR_R_PORT_VMAP:
		sb_addf(sb, "meta l4proto . th dport vmap @%s", r->set);
		break;
	case IR_R_LOG:
		if (r->set)
			sb_addf(sb, "meta l4proto . th dport @%s ", r->set);
		sb_addf(sb, "limit rate %u/%s log prefix ", r->rate, unit_name(r->unit));
		add_quoted(sb, r->log_prefix);
		break;
	case IR_R_COUNTER:
		if (r->set)
			sb_addf(sb, "meta l4proto . th dport @%s ", r->set);
		sb_addf(sb, "counter name ");
		add_quoted(sb, r->target);
		sb_addf(sb, " %s", verdict_name(r->verdict));
		break;
	case IR_R_PROTO:
		add_proto(sb, r);
		break;
	}
}

static void add_rule(struct strbuf *sb, const struct ir_ruleset *rs, const struct ir_rule *r)
{
	sb_addc(sb, '\t');
	sb_addc(sb, '\t');
	add_rule_body(sb, rs, r);
	if (r->comment) {
		sb_addf(sb, " comment ");
		add_quoted(sb, r->comment);
	}
	sb_addc(sb, '\n');
}

/* ---- objects ------------------------------------------------------------ */

static void add_chain(struct strbuf *sb, const struct ir_ruleset *rs, const struct ir_chain *c)
{
	sb_addf(sb, "\tchain %s {\n", c->name);
	add_comment_line(sb, "\t\t", c->comment);
	if (c->hook != IR_HOOK_NONE) {
		sb_addf(sb, "\t\ttype filter hook %s priority ", hook_name(c->hook));
		if (c->priority)
			sb_addf(sb, "filter %c %d", c->priority < 0 ? '-' : '+',
				c->priority < 0 ? -c->priority : c->priority);
		else
			sb_addf(sb, "filter");
		sb_addf(sb, "; policy %s;\n", c->policy == IR_DROP ? "drop" : "accept");
	}
	for (size_t i = 0; i < c->nrules; i++)
		add_rule(sb, rs, &c->rules[i]);
	sb_addf(sb, "\t}\n");
}

static void add_elem(struct strbuf *sb, const struct ir_ruleset *rs,
		     const struct ir_set *s, const struct ir_elem *e)
{
	char a[PREFIX_STRLEN];

	switch (s->key) {
	case IR_KEY_ADDR4:
	case IR_KEY_ADDR6:
		sb_addf(sb, "%s", prefix_fmt(&e->addr, a, sizeof(a)));
		break;
	case IR_KEY_ADDR4_PROTO_PORT:
	case IR_KEY_ADDR6_PROTO_PORT:
		sb_addf(sb, "%s . ", prefix_fmt(&e->addr, a, sizeof(a)));
		/* fall through */
	case IR_KEY_PROTO_PORT:
		sb_addf(sb, "%s . %u", proto_name(e->port.proto), e->port.lo);
		if (e->port.hi != e->port.lo)
			sb_addf(sb, "-%u", e->port.hi);
		break;
	}
	if (s->is_map)
		sb_addf(sb, " : jump %s", e->chain < rs->nchains ?
			rs->chains[e->chain].name : "?");
}

/* nft 1.0.6 refuses `elements = { }`: an empty set has no elements line. */
static void add_set(struct strbuf *sb, const struct ir_ruleset *rs, const struct ir_set *s)
{
	sb_addf(sb, "\t%s %s {\n", s->is_map ? "map" : "set", s->name);
	sb_addf(sb, "\t\ttype %s%s\n", key_type(s->key), s->is_map ? " : verdict" : "");
	sb_addf(sb, "\t\tflags interval\n");
	add_comment_line(sb, "\t\t", s->comment);
	if (s->nelems) {
		sb_addf(sb, "\t\telements = {\n");
		for (size_t i = 0; i < s->nelems; i++) {
			sb_addf(sb, "\t\t\t");
			add_elem(sb, rs, s, &s->elems[i]);
			sb_addf(sb, "%s\n", i + 1 < s->nelems ? "," : "");
		}
		sb_addf(sb, "\t\t}\n");
	}
	sb_addf(sb, "\t}\n");
}

static void add_counter(struct strbuf *sb, const struct ir_counter *c)
{
	sb_addf(sb, "\tcounter %s {\n", c->name);
	add_comment_line(sb, "\t\t", c->comment);
	sb_addf(sb, "\t}\n");
}

static void add_header(struct strbuf *sb, const struct ir_ruleset *rs,
		       const struct nft_text_opts *o)
{
	sb_addf(sb, "#!/usr/sbin/nft -f\n");
	sb_addf(sb, "# Generated by %s", o && o->generator ? o->generator :
		"fedwall " FEDWALL_VERSION);
	if (o && o->source)
		sb_addf(sb, " from %s", o->source);
	sb_addf(sb, ".\n# Do not edit: change the policy and generate again.\n");
	sb_addf(sb, "# Replaces table inet %s in one transaction and touches nothing"
		" else;\n# loading it again is harmless.\n\n", rs->table);
	/* nft 1.0.6 has no `destroy`: create (no-op if present), then delete. */
	sb_addf(sb, "table inet %s {}\ndelete table inet %s\n\n", rs->table, rs->table);
}

void nft_text(struct strbuf *out, const struct ir_ruleset *rs,
	      const struct nft_text_opts *o)
{
	bool first = true;

	add_header(out, rs, o);
	sb_addf(out, "table inet %s {\n", rs->table);
	if (rs->comment) {
		add_comment_line(out, "\t", rs->comment);
		first = false;
	}
	for (size_t i = 0; i < rs->ncounters; i++, first = false) {
		sb_addf(out, "%s", first ? "" : "\n");
		add_counter(out, &rs->counters[i]);
	}
	for (size_t i = 0; i < rs->nsets; i++, first = false) {
		sb_addf(out, "%s", first ? "" : "\n");
		add_set(out, rs, &rs->sets[i]);
	}
	for (size_t i = 0; i < rs->nchains; i++, first = false) {
		sb_addf(out, "%s", first ? "" : "\n");
		add_chain(out, rs, &rs->chains[i]);
	}
	sb_addf(out, "}\n");
}

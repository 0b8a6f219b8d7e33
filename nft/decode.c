/* decode.c - kernel rules -> IR rules, the inverse of lower.c: matches
 * the expression patterns lower.c emits.  A rule is accepted only if
 * lowering the decoded rule gives back the very same expressions; anything
 * else makes the live table "foreign" (replace, never patch).  readback.c
 * calls nft_decode_rule() for each rule of a dump and nft_udata_str() for
 * each object's comment; test_nft checks a lowering round trip with it. */
#include "nft/kernel-int.h"

#include <arpa/inet.h>     /* IPPROTO_TCP, before the kernel's linux/in.h */
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <libnftnl/expr.h>
#include <libnftnl/udata.h>

/* ---- userdata -------------------------------------------------------------- */

/* The string TLV of `type` at the top level of a userdata blob, copied. */
char *nft_udata_str(const void *data, uint32_t len, uint8_t type)
{
	const struct nftnl_udata *a;

	if (!data)
		return NULL;
	nftnl_udata_for_each_data((const char *)data, len, a) {
		uint8_t n = nftnl_udata_len(a);

		if ((const char *)nftnl_udata_get(a) + n > (const char *)data + len)
			break;
		if (nftnl_udata_type(a) == type && n > 0)
			return xstrndup(nftnl_udata_get(a), n);
	}
	return NULL;
}

/* ---- rule decoding ----------------------------------------------------------- */

/* What a rule matches, collected expression by expression. */
struct shape {
	uint32_t ifkey;         /* NFT_META_IIF... or 0 */
	char ifname[IFNAMSIZ + 1];
	bool ct;
	uint32_t ctmask;
	uint8_t nfproto;        /* 0: no family guard */
	uint8_t l4proto;        /* icmp guard, 0: none */
	bool icmp;
	uint8_t icmp_type;
	bool tcpflags;          /* tcp flags & MASK != VALUE */
	uint16_t dport;         /* th dport == N (host order), 0: none */
	bool addr;
	uint8_t addr_family;
	enum ir_field field;
	const char *set;
	bool vmap;
	bool limit;
	uint64_t rate, unit;
	bool log;
	const char *prefix;
	const char *counter;
	enum ir_verdict verdict;
	const char *jump;
};

enum load { L_NONE, L_META, L_CT, L_CTMASKED, L_ICMPTYPE, L_TCPFLAGS, L_TCPMASKED,
	    L_DPORT };

struct dec {
	struct shape s;
	enum load last;
	uint32_t meta;
	bool bad;
};

static void dec_meta(struct dec *d, const struct nftnl_expr *e)
{
	d->last = L_META;
	d->meta = nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY);
	if (!nftnl_expr_is_set(e, NFTNL_EXPR_META_DREG))
		d->bad = true;
}

static void dec_cmp(struct dec *d, const struct nftnl_expr *e)
{
	uint32_t op = nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP), len = 0;
	const uint8_t *v = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
	uint32_t u32 = 0;
	bool masked = d->last == L_CTMASKED || d->last == L_TCPMASKED;

	if (!v || (op != NFT_CMP_EQ && !(op == NFT_CMP_NEQ && masked))) {
		d->bad = true;
		return;
	}
	memcpy(&u32, v, len < 4 ? len : 4);
	if (d->last == L_CTMASKED) {
		d->s.ct = u32 == 0 && len == 4;
	} else if (d->last == L_TCPMASKED) {
		d->s.tcpflags = op == NFT_CMP_NEQ && len == 1;  /* values: re-lowering */
	} else if (d->last == L_ICMPTYPE) {
		d->s.icmp = true;
		d->s.icmp_type = v[0];
	} else if (d->last == L_DPORT && len == 2) {
		d->s.dport = (uint16_t)(v[0] << 8 | v[1]);
	} else if (d->last != L_META) {
		d->bad = true;
	} else if (d->meta == NFT_META_IIF || d->meta == NFT_META_OIF) {
		d->s.ifkey = d->meta;
	} else if (d->meta == NFT_META_IIFNAME || d->meta == NFT_META_OIFNAME) {
		d->s.ifkey = d->meta;
		memcpy(d->s.ifname, v, len < IFNAMSIZ ? len : IFNAMSIZ);
	} else if (d->meta == NFT_META_NFPROTO) {
		d->s.nfproto = v[0];
	} else if (d->meta == NFT_META_L4PROTO) {
		d->s.l4proto = v[0];
	} else {
		d->bad = true;
	}
	d->last = L_NONE;
}

static void dec_payload(struct dec *d, const struct nftnl_expr *e)
{
	uint32_t base = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE);
	uint32_t off = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET);
	uint32_t len = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN);

	d->last = L_NONE;
	if (base == NFT_PAYLOAD_TRANSPORT_HEADER && off == 0 && len == 1) {
		d->last = L_ICMPTYPE;
	} else if (base == NFT_PAYLOAD_TRANSPORT_HEADER && off == NFT_TCP_FLAGS_OFFSET &&
		   len == 1) {
		d->last = L_TCPFLAGS;
	} else if (base == NFT_PAYLOAD_NETWORK_HEADER && len == 4 && (off == 12 || off == 16)) {
		d->s.addr = true;
		d->s.addr_family = 4;
		d->s.field = off == 16 ? IR_DADDR : IR_SADDR;
	} else if (base == NFT_PAYLOAD_NETWORK_HEADER && len == 16 && (off == 8 || off == 24)) {
		d->s.addr = true;
		d->s.addr_family = 6;
		d->s.field = off == 24 ? IR_DADDR : IR_SADDR;
	} else if (base == NFT_PAYLOAD_TRANSPORT_HEADER && off == 2 && len == 2) {
		d->last = L_DPORT;      /* a cmp follows (PROTO), or it is a key part */
	} else {
		d->bad = true;
	}
}

static void dec_immediate(struct dec *d, const struct nftnl_expr *e)
{
	int32_t v = (int32_t)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT);

	if (nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG) != NFT_REG_VERDICT) {
		d->bad = true;
	} else if (v == NF_ACCEPT) {
		d->s.verdict = IR_ACCEPT;
	} else if (v == NF_DROP) {
		d->s.verdict = IR_DROP;
	} else if (v == NFT_JUMP && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN)) {
		d->s.verdict = IR_JUMP;
		d->s.jump = nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN);
	} else {
		d->bad = true;
	}
}

static void dec_expr(struct dec *d, const struct nftnl_expr *e)
{
	const char *n = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (!strcmp(n, "meta")) {
		dec_meta(d, e);
	} else if (!strcmp(n, "cmp")) {
		dec_cmp(d, e);
	} else if (!strcmp(n, "ct")) {
		d->last = nftnl_expr_get_u32(e, NFTNL_EXPR_CT_KEY) == NFT_CT_STATE ? L_CT : L_NONE;
		d->bad |= d->last != L_CT;
	} else if (!strcmp(n, "bitwise") && d->last == L_CT) {
		uint32_t len = 0;
		const void *m = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &len);

		if (m && len == 4)
			memcpy(&d->s.ctmask, m, 4);
		d->last = L_CTMASKED;
	} else if (!strcmp(n, "bitwise") && d->last == L_TCPFLAGS) {
		d->last = L_TCPMASKED;  /* mask checked by re-lowering */
	} else if (!strcmp(n, "payload")) {
		dec_payload(d, e);
	} else if (!strcmp(n, "byteorder")) {
		d->last = L_NONE;       /* l4proto as a key part, not a guard */
	} else if (!strcmp(n, "lookup")) {
		d->s.set = nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET);
		d->s.vmap = nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_DREG);
	} else if (!strcmp(n, "limit")) {
		d->s.limit = true;
		d->s.rate = nftnl_expr_get_u64(e, NFTNL_EXPR_LIMIT_RATE);
		d->s.unit = nftnl_expr_get_u64(e, NFTNL_EXPR_LIMIT_UNIT);
	} else if (!strcmp(n, "log")) {
		d->s.log = true;
		if (nftnl_expr_is_set(e, NFTNL_EXPR_LOG_PREFIX))
			d->s.prefix = nftnl_expr_get_str(e, NFTNL_EXPR_LOG_PREFIX);
	} else if (!strcmp(n, "objref")) {
		d->s.counter = nftnl_expr_get_str(e, NFTNL_EXPR_OBJREF_IMM_NAME);
	} else if (!strcmp(n, "immediate")) {
		dec_immediate(d, e);
	} else {
		d->bad = true;
	}
}

static bool unit_from(uint64_t secs, enum log_unit *u)
{
	static const uint64_t s[] = { 1, 60, 3600, 86400 };

	for (unsigned i = 0; i < ARRAY_SIZE(s); i++) {
		if (s[i] == secs) {
			*u = (enum log_unit)i;
			return true;
		}
	}
	return false;
}

static enum ir_ifdir ifdir_of(uint32_t key)
{
	return key == NFT_META_OIF || key == NFT_META_OIFNAME ? IR_OIF : IR_IIF;
}

static void classify_match(const struct shape *s, struct ir_rule *r)
{
	if (s->set)
		r->set = xstrdup(s->set);
	if (s->addr) {
		r->family = s->addr_family;
		r->field = s->field;
	}
}

/* Shape -> IR rule, normalised the way the generator builds them. */
static bool classify(const struct shape *s, struct ir_rule *r)
{
	memset(r, 0, sizeof(*r));
	r->verdict = s->verdict;
	if (s->tcpflags && s->ct && s->l4proto == IPPROTO_TCP && s->verdict == IR_DROP) {
		r->kind = IR_R_NEW_NOT_SYN;
		r->target = s->counter ? xstrdup(s->counter) : NULL;
	} else if (s->tcpflags) {
		return false;
	} else if (s->ct) {
		r->kind = IR_R_CT_STATE;
		r->target = s->counter ? xstrdup(s->counter) : NULL;
	} else if (s->verdict == IR_JUMP) {
		r->kind = IR_R_JUMP;
		r->target = xstrdup(s->jump);
		if (s->ifkey == NFT_META_IIFNAME || s->ifkey == NFT_META_OIFNAME) {
			r->ifdir = ifdir_of(s->ifkey);
			r->ifname = xstrdup(s->ifname);
		}
		classify_match(s, r);
	} else if (s->ifkey == NFT_META_IIF || s->ifkey == NFT_META_OIF) {
		r->kind = IR_R_LOOPBACK;
		r->ifdir = ifdir_of(s->ifkey);
	} else if (s->icmp) {
		r->kind = IR_R_ICMP;
		r->family = s->nfproto == NFPROTO_IPV6 ? 6 : 4;
		r->icmp_type = s->icmp_type;
	} else if ((s->l4proto == 112 && !s->dport) || (s->l4proto == IPPROTO_UDP && s->dport)) {
		r->kind = IR_R_PROTO;
		r->l4proto = s->l4proto;
		r->dport = s->dport;
		r->target = s->counter ? xstrdup(s->counter) : NULL;
		if (s->ifkey == NFT_META_IIFNAME || s->ifkey == NFT_META_OIFNAME) {
			r->ifdir = ifdir_of(s->ifkey);
			r->ifname = xstrdup(s->ifname);
		}
		classify_match(s, r);
	} else if (s->limit || s->log) {
		r->kind = IR_R_LOG;
		r->rate = (unsigned)s->rate;
		if (!unit_from(s->unit, &r->unit))
			return false;
		r->log_prefix = xstrdup(s->prefix ? s->prefix : "");
		classify_match(s, r);
	} else if (s->counter) {
		r->kind = IR_R_COUNTER;
		r->target = xstrdup(s->counter);
		classify_match(s, r);
	} else if (s->set) {
		r->kind = !s->vmap ? IR_R_LOOKUP : s->addr ? IR_R_VMAP : IR_R_PORT_VMAP;
		classify_match(s, r);
	} else {
		return false;
	}
	return true;
}

static void rule_clear(struct ir_rule *r)
{
	free(r->ifname);
	free(r->set);
	free(r->target);
	free(r->log_prefix);
	free(r->comment);
	memset(r, 0, sizeof(*r));
}

/* The expressions of a rule as text, one line each: what `nft
 * --debug=netlink` shows, to compare a kernel rule with our lowering. */
static void exprs_text(const struct nftnl_rule *r, struct strbuf *sb)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e;
	char buf[1024];

	while ((e = nftnl_expr_iter_next(it))) {
		nftnl_expr_snprintf(buf, sizeof(buf), e, NFTNL_OUTPUT_DEFAULT, 0);
		sb_addf(sb, "%s %s\n", nftnl_expr_get_str(e, NFTNL_EXPR_NAME), buf);
	}
	nftnl_expr_iter_destroy(it);
}

/* FEDWALL_DEBUG_DECODE=1 prints both expression lists when they differ:
 * the way to see why a newer kernel's dump makes fedwall's own rules look
 * foreign (every apply would then replace the table). */
static bool same_as_lowered(const struct ir_ruleset *rs, const struct nftnl_rule *kr,
			    const struct ir_rule *r)
{
	struct ir_chain c = { .name = (char *)nftnl_rule_get_str(kr, NFTNL_RULE_CHAIN) };
	struct strbuf a = { 0 }, b = { 0 };
	const char *err = NULL;
	struct nftnl_rule *mine = nft_lower_rule(rs, &c, r, NULL, &err);
	bool same = false;

	if (mine) {
		exprs_text(kr, &a);
		exprs_text(mine, &b);
		same = !strcmp(sb_str(&a), sb_str(&b));
		if (!same && getenv("FEDWALL_DEBUG_DECODE"))
			fprintf(stderr, "kernel:\n%slowered:\n%s", sb_str(&a), sb_str(&b));
		nftnl_rule_free(mine);
	}
	sb_free(&a);
	sb_free(&b);
	return same;
}

bool nft_decode_rule(const struct ir_ruleset *rs, const struct nftnl_rule *kr,
		     struct ir_rule *out)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(kr);
	struct dec d = { 0 };
	struct nftnl_expr *e;

	memset(out, 0, sizeof(*out));
	while ((e = nftnl_expr_iter_next(it)) && !d.bad)
		dec_expr(&d, e);
	nftnl_expr_iter_destroy(it);
	if (d.bad || !classify(&d.s, out)) {
		rule_clear(out);
		return false;
	}
	if (!same_as_lowered(rs, kr, out)) {
		rule_clear(out);
		return false;
	}
	out->comment = GET_UDATA_STR(nftnl_rule_get_data, kr, NFTNL_RULE_USERDATA,
				     NFTNL_UDATA_RULE_COMMENT);
	return true;
}


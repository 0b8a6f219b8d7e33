/* readback.c - kernel -> IR: dumps fedwall's table and decodes it by
 * matching the expression patterns lower.c emits.  A rule is accepted
 * only if lowering the decoded rule gives back the very same expressions;
 * anything else makes the live table "foreign" (replace, never patch). */
#include "nft/kernel-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <libnftnl/expr.h>
#include <libnftnl/udata.h>

#define READ_TRIES 5

/* ---- userdata -------------------------------------------------------------- */

/* The string TLV of `type` at the top level of a userdata blob, copied. */
static char *udata_str(const void *data, uint32_t len, uint8_t type)
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

#define GET_UDATA_STR(getter, obj, attr, type)                                  \
	({                                                                     \
		uint32_t ulen_ = 0;                                            \
		const void *u_ = getter(obj, attr, &ulen_);                    \
		udata_str(u_, ulen_, type);                                    \
	})

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

enum load { L_NONE, L_META, L_CT, L_CTMASKED, L_ICMPTYPE, L_TCPFLAGS, L_TCPMASKED };

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
	} else if (!(base == NFT_PAYLOAD_TRANSPORT_HEADER && off == 2 && len == 2)) {
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
	} else if (s->tcpflags) {
		return false;
	} else if (s->ct) {
		r->kind = IR_R_CT_STATE;
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

/* ---- dumps ---------------------------------------------------------------------- */

struct objs {
	const char *table;
	struct nftnl_table *t;
	VEC(struct nftnl_chain *) chains;
	VEC(struct nftnl_set *) sets;
	VEC(struct nftnl_rule *) rules;
	VEC(struct nftnl_obj *) counters;
};

static int expr_name_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == NFTA_EXPR_NAME && mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
		*(const struct nlattr **)data = a;
	return MNL_CB_OK;
}

/* The first nested attribute of `type` in `nest`, or NULL. */
static const struct nlattr *nested(const struct nlattr *nest, uint16_t type)
{
	const struct nlattr *a;

	if (!nest || mnl_attr_get_payload_len(nest) < MNL_ATTR_HDRLEN)
		return NULL;
	mnl_attr_for_each_nested(a, nest)
		if (mnl_attr_get_type(a) == type)
			return a;
	return NULL;
}

/* libnftnl (1.2.x) dereferences the missing chain of a jump or goto
 * verdict: `data` (NFTA_*_DATA, holding NFTA_DATA_VERDICT) must name one. */
static bool verdict_named(const struct nlattr *data)
{
	const struct nlattr *v = nested(data, NFTA_DATA_VERDICT);
	const struct nlattr *code = nested(v, NFTA_VERDICT_CODE);
	const struct nlattr *chain = nested(v, NFTA_VERDICT_CHAIN);
	int32_t c;

	if (!code || mnl_attr_validate(code, MNL_TYPE_U32) < 0)
		return true;    /* libnftnl refuses or ignores it */
	c = (int32_t)ntohl(mnl_attr_get_u32(code));
	return (c != NFT_JUMP && c != NFT_GOTO) ||
	       (chain && mnl_attr_validate(chain, MNL_TYPE_STRING) >= 0);
}

/* libnftnl (1.2.x) dereferences a missing expression name: an
 * expression (of a rule, a set or an element) must have one. */
/* A verdict naming a chain where no verdict belongs (a key, a cmp
 * value...): libnftnl copies the chain and never frees it. */
static bool stray_chain(const struct nlattr *data)
{
	return nested(nested(data, NFTA_DATA_VERDICT), NFTA_VERDICT_CHAIN) != NULL;
}

static bool expr_ok(const struct nlattr *e)
{
	const struct nlattr *name = NULL, *data, *a;
	bool imm;

	if (mnl_attr_parse_nested(e, expr_name_cb, &name) < 0 || !name)
		return false;
	imm = !strcmp(mnl_attr_get_str(name), "immediate");
	data = nested(e, NFTA_EXPR_DATA);
	if (data && mnl_attr_get_payload_len(data) >= MNL_ATTR_HDRLEN) {
		mnl_attr_for_each_nested(a, data)
			if (!(imm && mnl_attr_get_type(a) == NFTA_IMMEDIATE_DATA) &&
			    stray_chain(a))
				return false;
	}
	return verdict_named(nested(data, NFTA_IMMEDIATE_DATA));
}

static bool exprs_ok(const struct nlattr *list)
{
	const struct nlattr *e;

	mnl_attr_for_each_nested(e, list)
		if (!expr_ok(e))
			return false;
	return true;
}

/* Refuses a message libnftnl would trip over: every expression of
 * attribute `one` (single) and `list` (a list) of `nest` (the message's
 * attributes when NULL) must be sound. */
static bool msg_exprs_ok(const struct nlmsghdr *nlh, const struct nlattr *nest,
			 uint16_t one, uint16_t list)
{
	const struct nlattr *a;

	if (!nest) {
		mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
			if ((mnl_attr_get_type(a) == one && !expr_ok(a)) ||
			    (mnl_attr_get_type(a) == list && !exprs_ok(a)))
				return false;
		return true;
	}
	mnl_attr_for_each_nested(a, nest)
		if ((mnl_attr_get_type(a) == one && !expr_ok(a)) ||
		    (mnl_attr_get_type(a) == list && !exprs_ok(a)))
			return false;
	return true;
}

static bool ours(const char *table, const char *got, uint32_t family)
{
	return family == NFPROTO_INET && got && !strcmp(table, got);
}

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct objs *o = data;
	struct nftnl_table *t = nftnl_table_alloc();

	if (nftnl_table_nlmsg_parse(nlh, t) < 0 ||
	    !ours(o->table, nftnl_table_get_str(t, NFTNL_TABLE_NAME),
		  nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY)) || o->t) {
		nftnl_table_free(t);
		return MNL_CB_OK;
	}
	o->t = t;
	return MNL_CB_OK;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct objs *o = data;
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (nftnl_chain_nlmsg_parse(nlh, c) < 0 ||
	    !nftnl_chain_is_set(c, NFTNL_CHAIN_NAME) ||
	    !ours(o->table, nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE),
		  nftnl_chain_get_u32(c, NFTNL_CHAIN_FAMILY))) {
		nftnl_chain_free(c);
		return MNL_CB_OK;
	}
	VEC_PUSH(&o->chains, c);
	return MNL_CB_OK;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct objs *o = data;
	struct nftnl_set *s = nftnl_set_alloc();

	if (!msg_exprs_ok(nlh, NULL, NFTA_SET_EXPR, NFTA_SET_EXPRESSIONS) ||
	    nftnl_set_nlmsg_parse(nlh, s) < 0 || !nftnl_set_is_set(s, NFTNL_SET_NAME) ||
	    !ours(o->table, nftnl_set_get_str(s, NFTNL_SET_TABLE),
		  nftnl_set_get_u32(s, NFTNL_SET_FAMILY))) {
		nftnl_set_free(s);
		return MNL_CB_OK;
	}
	VEC_PUSH(&o->sets, s);
	return MNL_CB_OK;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct objs *o = data;
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (!msg_exprs_ok(nlh, NULL, 0, NFTA_RULE_EXPRESSIONS) ||
	    nftnl_rule_nlmsg_parse(nlh, r) < 0 ||
	    !ours(o->table, nftnl_rule_get_str(r, NFTNL_RULE_TABLE),
		  nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY))) {
		nftnl_rule_free(r);
		return MNL_CB_OK;
	}
	VEC_PUSH(&o->rules, r);
	return MNL_CB_OK;
}

static int obj_cb(const struct nlmsghdr *nlh, void *data)
{
	struct objs *o = data;
	struct nftnl_obj *c = nftnl_obj_alloc();

	if (nftnl_obj_nlmsg_parse(nlh, c) < 0 || !nftnl_obj_is_set(c, NFTNL_OBJ_NAME) ||
	    !ours(o->table, nftnl_obj_get_str(c, NFTNL_OBJ_TABLE),
		  nftnl_obj_get_u32(c, NFTNL_OBJ_FAMILY))) {
		nftnl_obj_free(c);
		return MNL_CB_OK;
	}
	VEC_PUSH(&o->counters, c);
	return MNL_CB_OK;
}

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a, *e;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(e, a)
			if (!verdict_named(nested(e, NFTA_SET_ELEM_DATA)) ||
			    stray_chain(nested(e, NFTA_SET_ELEM_KEY)) ||
			    stray_chain(nested(e, NFTA_SET_ELEM_KEY_END)) ||
			    !msg_exprs_ok(nlh, e, NFTA_SET_ELEM_EXPR, NFTA_SET_ELEM_EXPRESSIONS))
				return MNL_CB_ERROR;
	}
	return nftnl_set_elems_nlmsg_parse(nlh, data) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

static void objs_free(struct objs *o)
{
	if (o->t)
		nftnl_table_free(o->t);
	for (size_t i = 0; i < o->chains.n; i++)
		nftnl_chain_free(o->chains.v[i]);
	for (size_t i = 0; i < o->sets.n; i++)
		nftnl_set_free(o->sets.v[i]);
	for (size_t i = 0; i < o->rules.n; i++)
		nftnl_rule_free(o->rules.v[i]);
	for (size_t i = 0; i < o->counters.n; i++)
		nftnl_obj_free(o->counters.v[i]);
	free(o->chains.v);
	free(o->sets.v);
	free(o->rules.v);
	free(o->counters.v);
	memset(o, 0, sizeof(*o));
}

/* `buf` has MNL_SOCKET_BUFFER_SIZE bytes; zeroed because libmnl 1.0.4
 * leaves attribute padding unwritten and it would reach the kernel. */
static struct nlmsghdr *req(struct nft_ctx *ctx, char *buf, uint16_t type, uint16_t flags)
{
	memset(buf, 0, MNL_SOCKET_BUFFER_SIZE);
	return nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, flags, ++ctx->seq);
}

static int dump_table(struct nft_ctx *ctx, struct objs *o)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh = req(ctx, buf, NFT_MSG_GETTABLE, NLM_F_ACK);
	int ret;

	nftnl_table_set_str(t, NFTNL_TABLE_NAME, o->table);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	ret = nft_talk(ctx, nlh, table_cb, o);
	if (!ret && !o->t)
		ret = -ENOENT;
	return ret;
}

static int dump_all(struct nft_ctx *ctx, struct objs *o)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct nftnl_obj *filter;
	int ret;

	nlh = req(ctx, buf, NFT_MSG_GETCHAIN, NLM_F_DUMP);
	ret = nft_talk(ctx, nlh, chain_cb, o);
	if (ret)
		return ret;
	nlh = req(ctx, buf, NFT_MSG_GETSET, NLM_F_DUMP);
	mnl_attr_put_strz(nlh, NFTA_SET_TABLE, o->table);
	ret = nft_talk(ctx, nlh, set_cb, o);
	if (ret)
		return ret;
	nlh = req(ctx, buf, NFT_MSG_GETRULE, NLM_F_DUMP);
	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, o->table);
	ret = nft_talk(ctx, nlh, rule_cb, o);
	if (ret)
		return ret;
	nlh = req(ctx, buf, NFT_MSG_GETOBJ, NLM_F_DUMP);
	filter = nftnl_obj_alloc();
	nftnl_obj_set_str(filter, NFTNL_OBJ_TABLE, o->table);
	nftnl_obj_set_u32(filter, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nftnl_obj_nlmsg_build_payload(nlh, filter);
	nftnl_obj_free(filter);
	ret = nft_talk(ctx, nlh, obj_cb, o);
	for (size_t i = 0; !ret && i < o->sets.n; i++) {
		nlh = req(ctx, buf, NFT_MSG_GETSETELEM, NLM_F_DUMP);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, o->table);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET,
				  nftnl_set_get_str(o->sets.v[i], NFTNL_SET_NAME));
		ret = nft_talk(ctx, nlh, elem_cb, o->sets.v[i]);
	}
	return ret;
}

/* ---- objects -> IR ------------------------------------------------------------------ */

struct conv {
	struct ir_ruleset *rs;
	struct strbuf foreign;  /* first reason, "" if all decoded */
};

static void foreign(struct conv *cv, const char *fmt, const char *name)
{
	if (!cv->foreign.len)
		sb_addf(&cv->foreign, fmt, name);
}

static bool conv_chain(const struct nftnl_chain *kc, struct ir_chain *c)
{
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(nftnl_chain_get_str(kc, NFTNL_CHAIN_NAME));
	c->comment = GET_UDATA_STR(nftnl_chain_get_data, kc, NFTNL_CHAIN_USERDATA,
				   NFTNL_UDATA_CHAIN_COMMENT);
	if (!nftnl_chain_is_set(kc, NFTNL_CHAIN_HOOKNUM))
		return true;
	switch (nftnl_chain_get_u32(kc, NFTNL_CHAIN_HOOKNUM)) {
	case NF_INET_LOCAL_IN: c->hook = IR_HOOK_INPUT; break;
	case NF_INET_FORWARD: c->hook = IR_HOOK_FORWARD; break;
	case NF_INET_LOCAL_OUT: c->hook = IR_HOOK_OUTPUT; break;
	default: return false;
	}
	c->priority = nftnl_chain_get_s32(kc, NFTNL_CHAIN_PRIO);
	c->policy = nftnl_chain_get_u32(kc, NFTNL_CHAIN_POLICY) == NF_DROP ? IR_DROP : IR_ACCEPT;
	return nftnl_chain_is_set(kc, NFTNL_CHAIN_TYPE) &&
	       !strcmp(nftnl_chain_get_str(kc, NFTNL_CHAIN_TYPE), "filter");
}

static void conv_counter(struct nftnl_obj *ko, struct ir_counter *c)
{
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(nftnl_obj_get_str(ko, NFTNL_OBJ_NAME));
	c->comment = GET_UDATA_STR(nftnl_obj_get_data, ko, NFTNL_OBJ_USERDATA,
				   NFTNL_UDATA_OBJ_COMMENT);
	c->packets = nftnl_obj_get_u64(ko, NFTNL_OBJ_CTR_PKTS);
	c->bytes = nftnl_obj_get_u64(ko, NFTNL_OBJ_CTR_BYTES);
}

/* [first, last] as a prefix, if it is one. */
static bool range_prefix(const uint8_t *first, const uint8_t *last, size_t al,
			 struct prefix *p)
{
	unsigned host = 0;
	bool in_host = true;

	memset(p, 0, sizeof(*p));
	p->family = al == 4 ? 4 : 6;
	for (size_t i = al; i-- > 0;) {
		for (unsigned bit = 0; bit < 8; bit++) {
			unsigned f = (first[i] >> bit) & 1, l = (last[i] >> bit) & 1;

			if (in_host && f == 0 && l == 1)
				host++;
			else if (f == l)
				in_host = false;
			else
				return false;
		}
	}
	memcpy(p->a, first, al);
	p->len = (uint8_t)(al * 8 - host);
	return true;
}

static long chain_index(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; name && i < rs->nchains; i++)
		if (!strcmp(rs->chains[i].name, name))
			return (long)i;
	return -1;
}

static bool elem_verdict(const struct ir_ruleset *rs, struct nftnl_set_elem *ke,
			 struct ir_elem *e)
{
	long ci;

	if (!nftnl_set_elem_is_set(ke, NFTNL_SET_ELEM_VERDICT) ||
	    (int32_t)nftnl_set_elem_get_u32(ke, NFTNL_SET_ELEM_VERDICT) != NFT_JUMP)
		return false;
	ci = chain_index(rs, nftnl_set_elem_get_str(ke, NFTNL_SET_ELEM_CHAIN));
	if (ci < 0)
		return false;
	e->chain = (uint32_t)ci;
	return true;
}

static bool conv_concat_elem(const struct ir_ruleset *rs, const struct ir_set *s,
			     struct nftnl_set_elem *ke, struct ir_elem *e)
{
	const struct nft_keyinfo *ki = nft_keyinfo(s->key);
	uint32_t kl = 0, el = 0;
	const uint8_t *k = nftnl_set_elem_get(ke, NFTNL_SET_ELEM_KEY, &kl);
	const uint8_t *end = nftnl_set_elem_get(ke, NFTNL_SET_ELEM_KEY_END, &el);
	size_t al = ki->addr_len;
	uint16_t lo, hi;

	memset(e, 0, sizeof(*e));
	if (!k || !end || kl != ki->len || el != ki->len)
		return false;
	if (al && !range_prefix(k, end, al, &e->addr))
		return false;
	if (k[al] != end[al] || (k[al] != PROTO_TCP && k[al] != PROTO_UDP))
		return false;
	memcpy(&lo, k + al + 4, 2);
	memcpy(&hi, end + al + 4, 2);
	e->port.proto = k[al];
	e->port.lo = ntohs(lo);
	e->port.hi = ntohs(hi);
	if (!e->port.lo || e->port.hi < e->port.lo)
		return false;
	return !s->is_map || elem_verdict(rs, ke, e);
}

struct bound {
	uint8_t key[16];
	bool end;
};

static int bound_cmp(const void *x, const void *y)
{
	const struct bound *a = x, *b = y;
	int c = memcmp(a->key, b->key, sizeof(a->key));

	/* An interval's end sorts before the next one's start at the same key. */
	return c ? c : (int)b->end - (int)a->end;
}

typedef VEC(struct ir_elem) elem_vec;

static bool conv_single_elems(const struct ir_set *s, struct bound *v, size_t n,
			      elem_vec *out)
{
	size_t al = nft_keyinfo(s->key)->addr_len;
	uint8_t open[16], last[16];
	bool have = false;

	if (n)
		qsort(v, n, sizeof(*v), bound_cmp);
	for (size_t i = 0; i <= n; i++) {
		struct ir_elem e = { 0 };

		if (i < n && !v[i].end) {
			if (have)
				return false;
			memcpy(open, v[i].key, al);
			have = true;
			continue;
		}
		if (!have)
			continue;       /* nft's closing element at zero */
		if (i < n) {
			memcpy(last, v[i].key, al);
			for (size_t b = al; b-- > 0 && last[b]-- == 0;)
				;
		} else {
			memset(last, 0xff, al);
		}
		if (!range_prefix(open, last, al, &e.addr))
			return false;
		VEC_PUSH(out, e);
		have = false;
	}
	return true;
}

static int elem_qcmp(const void *x, const void *y)
{
	return ir_elem_cmp(x, y);
}

static bool conv_elems(const struct ir_ruleset *rs, struct ir_set *s, struct nftnl_set *ks)
{
	const struct nft_keyinfo *ki = nft_keyinfo(s->key);
	struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(ks);
	elem_vec out = { 0 };
	VEC(struct bound) bounds = { 0 };
	struct nftnl_set_elem *ke;
	bool ok = true;

	while (ok && (ke = nftnl_set_elems_iter_next(it))) {
		if (ki->nfields > 1) {
			struct ir_elem e;

			ok = conv_concat_elem(rs, s, ke, &e);
			VEC_PUSH(&out, e);
		} else {
			uint32_t kl = 0;
			const void *k = nftnl_set_elem_get(ke, NFTNL_SET_ELEM_KEY, &kl);
			struct bound b = { .end = nftnl_set_elem_is_set(ke, NFTNL_SET_ELEM_FLAGS) &&
						  (nftnl_set_elem_get_u32(ke, NFTNL_SET_ELEM_FLAGS) &
						   NFT_SET_ELEM_INTERVAL_END) };

			ok = k && kl == ki->len && !s->is_map;
			if (ok)
				memcpy(b.key, k, kl);
			VEC_PUSH(&bounds, b);
		}
	}
	nftnl_set_elems_iter_destroy(it);
	if (ok && ki->nfields == 1)
		ok = conv_single_elems(s, bounds.v, bounds.n, &out);
	free(bounds.v);
	if (out.n)
		qsort(out.v, out.n, sizeof(*out.v), elem_qcmp);
	s->elems = out.v;
	s->nelems = out.n;
	return ok;
}

static bool conv_set(const struct nftnl_set *ks, struct ir_set *s)
{
	uint32_t flags = nftnl_set_get_u32(ks, NFTNL_SET_FLAGS);
	uint32_t known = NFT_SET_INTERVAL | NFT_SET_CONCAT | NFT_SET_MAP;

	memset(s, 0, sizeof(*s));
	s->name = xstrdup(nftnl_set_get_str(ks, NFTNL_SET_NAME));
	s->comment = GET_UDATA_STR(nftnl_set_get_data, ks, NFTNL_SET_USERDATA,
				   NFTNL_UDATA_SET_COMMENT);
	s->is_map = flags & NFT_SET_MAP;
	if ((flags & ~known) || !(flags & NFT_SET_INTERVAL) ||
	    nftnl_set_is_set(ks, NFTNL_SET_TIMEOUT))
		return false;
	if (s->is_map && nftnl_set_get_u32(ks, NFTNL_SET_DATA_TYPE) != NFT_DATA_VERDICT)
		return false;
	return nft_keytype_from(nftnl_set_get_u32(ks, NFTNL_SET_KEY_TYPE),
				nftnl_set_get_u32(ks, NFTNL_SET_KEY_LEN),
				flags & NFT_SET_CONCAT, &s->key);
}

static void set_clear(struct ir_set *s)
{
	free(s->name);
	free(s->comment);
	free(s->elems);
	memset(s, 0, sizeof(*s));
}

static void conv_sets(struct conv *cv, struct objs *o)
{
	struct ir_ruleset *rs = cv->rs;

	rs->sets = xcalloc(o->sets.n + 1, sizeof(*rs->sets));
	for (size_t i = 0; i < o->sets.n; i++) {
		struct ir_set *s = &rs->sets[rs->nsets];

		if (!conv_set(o->sets.v[i], s) || !conv_elems(rs, s, o->sets.v[i])) {
			char *name = xstrdup(s->name);

			foreign(cv, "set '%s' is not one fedwall writes", s->name);
			set_clear(s);
			s->name = name;
			s->key = IR_KEY_ADDR4;
			s->is_map = true;
		}
		rs->nsets++;
	}
}

/* Stands in for what cannot be decoded, so that ir_diff() sees a
 * structural difference even for a caller that ignores nft_foreign():
 * the generator never makes a ct state rule without a verdict, nor an
 * address-only map. */
static void foreign_rule(struct ir_rule *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = IR_R_CT_STATE;
	r->verdict = IR_VERDICT_NONE;
	r->comment = xstrdup("fedwall: foreign rule");
}

static void add_rule(struct ir_chain *c, const struct ir_rule *r)
{
	c->rules = xreallocarray(c->rules, c->nrules + 1, sizeof(*c->rules));
	c->rules[c->nrules++] = *r;
}

static void conv_rules(struct conv *cv, struct objs *o)
{
	struct ir_ruleset *rs = cv->rs;

	for (size_t i = 0; i < o->rules.n; i++) {
		const struct nftnl_rule *kr = o->rules.v[i];
		long ci = chain_index(rs, nftnl_rule_get_str(kr, NFTNL_RULE_CHAIN));
		struct ir_chain *c;
		struct ir_rule r;

		if (ci < 0)
			continue;       /* a rule of a foreign chain */
		c = &rs->chains[ci];
		if (!nft_decode_rule(rs, kr, &r)) {
			foreign(cv, "a rule of chain '%s' is not one fedwall writes", c->name);
			foreign_rule(&r);
		}
		r.handle = nftnl_rule_get_u64(kr, NFTNL_RULE_HANDLE);
		add_rule(c, &r);
	}
}

/* The maps a vmap rule looks up are the partner maps (RULESET.md): their
 * removed elements revoke connections on the field the rule matches. */
static void mark_revoke(struct ir_ruleset *rs)
{
	for (size_t i = 0; i < rs->nchains; i++) {
		const struct ir_chain *c = &rs->chains[i];

		for (size_t j = 0; j < c->nrules; j++) {
			const struct ir_rule *r = &c->rules[j];
			struct ir_set *s;

			if (r->kind != IR_R_VMAP || !r->set)
				continue;
			s = (struct ir_set *)ir_find_set(rs, r->set);
			if (s && s->is_map && nft_keyinfo(s->key)->addr_len) {
				s->revoke = true;
				s->revoke_field = r->field;
			}
		}
	}
}

static struct ir_ruleset *convert(struct objs *o, char **why_foreign)
{
	struct ir_ruleset *rs = xcalloc(1, sizeof(*rs));
	struct conv conv = { .rs = rs }, *cv = &conv;

	rs->table = xstrdup(o->table);
	rs->comment = GET_UDATA_STR(nftnl_table_get_data, o->t, NFTNL_TABLE_USERDATA,
				    NFTNL_UDATA_TABLE_COMMENT);
	rs->chains = xcalloc(o->chains.n + 1, sizeof(*rs->chains));
	for (size_t i = 0; i < o->chains.n; i++) {
		struct ir_chain *c = &rs->chains[rs->nchains];

		if (!conv_chain(o->chains.v[i], c)) {
			struct ir_rule r;

			foreign(cv, "chain '%s' is not one fedwall writes", c->name);
			foreign_rule(&r);
			add_rule(c, &r);
		}
		rs->nchains++;
	}
	rs->counters = xcalloc(o->counters.n + 1, sizeof(*rs->counters));
	for (size_t i = 0; i < o->counters.n; i++)
		conv_counter(o->counters.v[i], &rs->counters[rs->ncounters++]);
	conv_sets(cv, o);
	conv_rules(cv, o);
	mark_revoke(rs);
	*why_foreign = cv->foreign.len ? xstrdup(sb_str(&cv->foreign)) : NULL;
	sb_free(&cv->foreign);
	return rs;
}

static int read_once(struct nft_ctx *ctx, const char *table, struct ir_ruleset **out,
		     uint32_t *genid)
{
	struct objs o = { .table = table };
	uint32_t after = 0;
	int ret;

	ret = nft_genid(ctx, genid);
	if (!ret)
		ret = dump_table(ctx, &o);
	if (!ret)
		ret = dump_all(ctx, &o);
	if ((!ret || ret == -ENOENT) && !nft_genid(ctx, &after) && after != *genid)
		ret = -EINTR;   /* the ruleset changed under the dump */
	if (ret)
		goto out_free_objs;
	free(ctx->foreign);
	*out = convert(&o, &ctx->foreign);
out_free_objs:
	objs_free(&o);
	return ret;
}

int nft_read(struct nft_ctx *ctx, const char *table, struct ir_ruleset **out,
	     uint32_t *genid)
{
	int ret = -EINTR;

	*out = NULL;
	free(ctx->foreign);
	ctx->foreign = NULL;
	for (int i = 0; i < READ_TRIES && ret == -EINTR; i++)
		ret = read_once(ctx, table, out, genid);
	return ret == -EINTR ? -EAGAIN : ret;
}

/* ---- recorded dumps --------------------------------------------------------------------- */

static struct nftnl_set *set_named(const struct objs *o, const char *name)
{
	for (size_t i = 0; name && i < o->sets.n; i++) {
		const char *n = nftnl_set_get_str(o->sets.v[i], NFTNL_SET_NAME);

		if (n && !strcmp(n, name))
			return o->sets.v[i];
	}
	return NULL;
}

static int elem_list_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_SET &&
	    mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
		tb[0] = a;
	return MNL_CB_OK;
}

/* An element message goes to the set it names (the live read asks set
 * by set); elements of a set not (yet) seen are not ours. */
static int dump_elem_cb(const struct nlmsghdr *nlh, struct objs *o)
{
	const struct nlattr *tb[1] = { NULL };
	struct nftnl_set *s;

	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), elem_list_attr_cb, tb) < 0 ||
	    !tb[0])
		return MNL_CB_OK;
	s = set_named(o, mnl_attr_get_str(tb[0]));
	return s ? elem_cb(nlh, s) : MNL_CB_OK;
}

int nft_decode_dump(const char *table, const void *buf, size_t len,
		    struct ir_ruleset **out, char **why_foreign)
{
	struct objs o = { .table = table };
	const struct nlmsghdr *nlh = buf;
	int left = len > INT_MAX ? INT_MAX : (int)len;
	char *why = NULL;
	int ret = 0;

	*out = NULL;
	if (why_foreign)
		*why_foreign = NULL;
	/* mnl_nlmsg_ok() compares nlmsg_len as an int: a length of 2 GiB
	 * and more passes it; the second test keeps the walk in `buf`. */
	for (; !ret && mnl_nlmsg_ok(nlh, left) && nlh->nlmsg_len <= (unsigned)left;
	     nlh = mnl_nlmsg_next(nlh, &left)) {
		int cb = MNL_CB_OK;

		if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES ||
		    nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)))
			continue;       /* control messages, acks, truncated */
		switch (NFNL_MSG_TYPE(nlh->nlmsg_type)) {
		case NFT_MSG_NEWTABLE: cb = table_cb(nlh, &o); break;
		case NFT_MSG_NEWCHAIN: cb = chain_cb(nlh, &o); break;
		case NFT_MSG_NEWSET: cb = set_cb(nlh, &o); break;
		case NFT_MSG_NEWRULE: cb = rule_cb(nlh, &o); break;
		case NFT_MSG_NEWOBJ: cb = obj_cb(nlh, &o); break;
		case NFT_MSG_NEWSETELEM: cb = dump_elem_cb(nlh, &o); break;
		default: break;
		}
		if (cb < MNL_CB_OK)
			ret = -EBADMSG;
	}
	if (!ret && !o.t)
		ret = -ENOENT;
	if (!ret) {
		*out = convert(&o, &why);
		if (why_foreign)
			*why_foreign = why;
		else
			free(why);
	}
	objs_free(&o);
	return ret;
}

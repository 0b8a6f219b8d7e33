/* readback.c - kernel -> IR: dumps fedwall's table and decodes it by
 * matching the expression patterns lower.c emits.  A rule is accepted
 * only if lowering the decoded rule gives back the very same expressions;
 * anything else makes the live table "foreign" (replace, never patch). */
#define _GNU_SOURCE     /* qsort_r */
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

/* The IR keeps the kernel's table flags as they are. */
_Static_assert((int)IR_TABLE_F_DORMANT == (int)NFT_TABLE_F_DORMANT &&
	       (int)IR_TABLE_F_OWNER == (int)NFT_TABLE_F_OWNER, "table flags");

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

/* ---- elements as dumped --------------------------------------------------------- */

/* Elements are read straight from the netlink attributes into one packed
 * array per set: a libnftnl object per element (calloc, copies, free)
 * was most of the read-back's time and memory on large sets (issue 6).
 * Every attribute is checked for type and length here, since
 * nft_decode_dump() is fed arbitrary bytes.  Two outcomes besides
 * success: malformed netlink (a truncated, duplicated or wrongly sized
 * attribute) fails the message; a well-formed element fedwall never
 * writes marks its set foreign. */

#define NO_CHAIN UINT32_MAX
#define KEY_MAX 24              /* sizeof(struct nft_kelem.key) */

/* Interned jump target names: an element keeps its target as an id,
 * resolved to a chain index once per name at conversion, because a
 * recorded dump may bring the chains after the elements. */
struct names {
	VEC(char *) v;
	uint32_t *slot;         /* id + 1, 0: free (open addressing) */
	size_t nslot;           /* a power of two, > 2 * v.n */
};

/* One set's elements: `stride` bytes each, the key, the key_end
 * (concatenations), a flags byte (NFT_SET_ELEM_INTERVAL_END) and, for
 * maps, the jump target's name id (host order, unaligned). */
struct kelems {
	uint32_t klen;
	bool concat, map;
	bool bad;               /* an element fedwall never writes */
	size_t stride;
	uint8_t *rec;
	size_t n, cap;
};

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;       /* FNV-1a */

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

/* The slot of `s`: where it is, or the free one where it would go. */
static size_t names_slot(const struct names *nm, const char *s)
{
	size_t mask = nm->nslot - 1, i = name_hash(s) & mask;

	while (nm->slot[i] && strcmp(nm->v.v[nm->slot[i] - 1], s))
		i = (i + 1) & mask;
	return i;
}

static void names_grow(struct names *nm)
{
	size_t n = nm->nslot ? nm->nslot * 2 : 16;

	free(nm->slot);
	nm->slot = xcalloc(n, sizeof(*nm->slot));
	nm->nslot = n;
	for (size_t id = 0; id < nm->v.n; id++)
		nm->slot[names_slot(nm, nm->v.v[id])] = (uint32_t)id + 1;
}

static uint32_t names_intern(struct names *nm, const char *s)
{
	size_t i;

	if (2 * (nm->v.n + 1) >= nm->nslot)
		names_grow(nm);
	i = names_slot(nm, s);
	if (!nm->slot[i]) {
		VEC_PUSH(&nm->v, xstrdup(s));
		nm->slot[i] = (uint32_t)nm->v.n;
	}
	return nm->slot[i] - 1;
}

/* The id of `s`, or NO_CHAIN when no element named it. */
static uint32_t names_find(const struct names *nm, const char *s)
{
	size_t i;

	if (!nm->nslot)
		return NO_CHAIN;
	i = names_slot(nm, s);
	return nm->slot[i] ? nm->slot[i] - 1 : NO_CHAIN;
}

static void names_free(struct names *nm)
{
	for (size_t i = 0; i < nm->v.n; i++)
		free(nm->v.v[i]);
	free(nm->v.v);
	free(nm->slot);
	memset(nm, 0, sizeof(*nm));
}

/* Where a record's flags byte is: after the key (and key_end). */
static size_t flags_at(const struct kelems *k)
{
	return (size_t)k->klen * (k->concat ? 2 : 1);
}

static void kelems_init(struct kelems *k, const struct nftnl_set *ks)
{
	uint32_t flags = nftnl_set_get_u32(ks, NFTNL_SET_FLAGS);

	memset(k, 0, sizeof(*k));
	k->klen = nftnl_set_get_u32(ks, NFTNL_SET_KEY_LEN);
	k->concat = flags & NFT_SET_CONCAT;
	k->map = flags & NFT_SET_MAP;
	k->bad = !k->klen || k->klen > KEY_MAX;         /* conv_set refuses it */
	if (!k->bad)
		k->stride = flags_at(k) + 1 + (k->map ? sizeof(uint32_t) : 0);
}

static void kelems_free(struct kelems *k)
{
	free(k->rec);
	k->rec = NULL;
	k->n = k->cap = 0;
}

static uint8_t *rec_at(const struct kelems *k, size_t i)
{
	return k->rec + i * k->stride;
}

static uint8_t rec_flags(const struct kelems *k, const uint8_t *r)
{
	return r[flags_at(k)];
}

static uint32_t rec_chain(const struct kelems *k, const uint8_t *r)
{
	uint32_t id = NO_CHAIN;

	if (k->map)
		memcpy(&id, r + flags_at(k) + 1, sizeof(id));
	return id;
}

/* One element's attributes, checked. */
struct pelem {
	const struct nlattr *key, *key_end;     /* NFTA_DATA_VALUE */
	uint32_t flags;
	bool verdict;
	int32_t code;
	const char *chain;
	bool foreign;           /* holds what fedwall never writes */
};

struct attrs {
	const struct nlattr **tb;
	const enum mnl_attr_data_type *type;    /* of tb[0..max] */
	uint16_t max;
	bool extra;             /* a type beyond max */
};

static int attrs_cb(const struct nlattr *a, void *data)
{
	struct attrs *at = data;
	uint16_t t = mnl_attr_get_type(a);

	if (t > at->max) {
		at->extra = true;       /* a newer kernel's; libnftnl skipped them */
		return MNL_CB_OK;
	}
	if (at->tb[t] || mnl_attr_validate(a, at->type[t]) < 0)
		return MNL_CB_ERROR;
	at->tb[t] = a;
	return MNL_CB_OK;
}

/* The attributes nested in `nest` into tb[0..max], each validated
 * against type[]; false when one is duplicated, of the wrong size, or
 * overruns the nest (libmnl's walk stops there silently). */
static bool parse_nest(const struct nlattr *nest, const struct nlattr **tb, uint16_t max,
		       const enum mnl_attr_data_type *type, bool *extra)
{
	struct attrs at = { tb, type, max, false };
	const char *end = (const char *)mnl_attr_get_payload(nest) +
			  mnl_attr_get_payload_len(nest);
	const struct nlattr *a;

	memset(tb, 0, (max + 1u) * sizeof(*tb));
	mnl_attr_for_each_nested(a, nest)
		if (attrs_cb(a, &at) != MNL_CB_OK)
			return false;
	*extra |= at.extra;
	return (const char *)a >= end;
}

static const enum mnl_attr_data_type data_type[NFTA_DATA_MAX + 1] = {
	[NFTA_DATA_VALUE] = MNL_TYPE_BINARY,
	[NFTA_DATA_VERDICT] = MNL_TYPE_NESTED,
};

static const enum mnl_attr_data_type verdict_type[NFTA_VERDICT_MAX + 1] = {
	[NFTA_VERDICT_CODE] = MNL_TYPE_U32,
	[NFTA_VERDICT_CHAIN] = MNL_TYPE_NUL_STRING,
	[NFTA_VERDICT_CHAIN_ID] = MNL_TYPE_U32,
};

/* A key (NFTA_SET_ELEM_KEY, _KEY_END): a value, nothing else. */
static bool parse_key(const struct nlattr *nest, const struct nlattr **out, bool *foreign)
{
	const struct nlattr *tb[NFTA_DATA_MAX + 1];

	*out = NULL;
	if (!nest)
		return true;
	if (!parse_nest(nest, tb, NFTA_DATA_MAX, data_type, foreign))
		return false;
	*foreign |= tb[NFTA_DATA_VERDICT] != NULL;
	*out = tb[NFTA_DATA_VALUE];
	return true;
}

/* NFTA_SET_ELEM_DATA: for fedwall, always a verdict naming a chain. */
static bool parse_verdict(const struct nlattr *nest, struct pelem *pe)
{
	const struct nlattr *tb[NFTA_DATA_MAX + 1], *v[NFTA_VERDICT_MAX + 1];

	if (!nest)
		return true;
	if (!parse_nest(nest, tb, NFTA_DATA_MAX, data_type, &pe->foreign))
		return false;
	pe->foreign |= tb[NFTA_DATA_VALUE] || !tb[NFTA_DATA_VERDICT];
	if (!tb[NFTA_DATA_VERDICT])
		return true;
	if (!parse_nest(tb[NFTA_DATA_VERDICT], v, NFTA_VERDICT_MAX, verdict_type,
			&pe->foreign))
		return false;
	pe->foreign |= !v[NFTA_VERDICT_CODE] || v[NFTA_VERDICT_CHAIN_ID];
	pe->verdict = true;
	if (v[NFTA_VERDICT_CODE])
		pe->code = (int32_t)ntohl(mnl_attr_get_u32(v[NFTA_VERDICT_CODE]));
	if (v[NFTA_VERDICT_CHAIN])
		pe->chain = mnl_attr_get_str(v[NFTA_VERDICT_CHAIN]);
	return true;
}

static const enum mnl_attr_data_type elem_type[NFTA_SET_ELEM_MAX + 1] = {
	[NFTA_SET_ELEM_KEY] = MNL_TYPE_NESTED,
	[NFTA_SET_ELEM_DATA] = MNL_TYPE_NESTED,
	[NFTA_SET_ELEM_FLAGS] = MNL_TYPE_U32,
	[NFTA_SET_ELEM_TIMEOUT] = MNL_TYPE_U64,
	[NFTA_SET_ELEM_EXPIRATION] = MNL_TYPE_U64,
	[NFTA_SET_ELEM_USERDATA] = MNL_TYPE_BINARY,
	[NFTA_SET_ELEM_EXPR] = MNL_TYPE_NESTED,
	[NFTA_SET_ELEM_OBJREF] = MNL_TYPE_NUL_STRING,
	[NFTA_SET_ELEM_KEY_END] = MNL_TYPE_NESTED,
	[NFTA_SET_ELEM_EXPRESSIONS] = MNL_TYPE_NESTED,
};

static bool parse_elem(const struct nlattr *nest, struct pelem *pe)
{
	const struct nlattr *tb[NFTA_SET_ELEM_MAX + 1];
	bool extra = false;     /* unknown attributes: ignored, as libnftnl did */

	memset(pe, 0, sizeof(*pe));
	if (!parse_nest(nest, tb, NFTA_SET_ELEM_MAX, elem_type, &extra))
		return false;
	if (tb[NFTA_SET_ELEM_FLAGS])
		pe->flags = ntohl(mnl_attr_get_u32(tb[NFTA_SET_ELEM_FLAGS]));
	/* Timeouts, comments, counters, object references: never fedwall's. */
	pe->foreign = tb[NFTA_SET_ELEM_TIMEOUT] || tb[NFTA_SET_ELEM_EXPIRATION] ||
		      tb[NFTA_SET_ELEM_USERDATA] || tb[NFTA_SET_ELEM_EXPR] ||
		      tb[NFTA_SET_ELEM_OBJREF] || tb[NFTA_SET_ELEM_EXPRESSIONS];
	return parse_key(tb[NFTA_SET_ELEM_KEY], &pe->key, &pe->foreign) &&
	       parse_key(tb[NFTA_SET_ELEM_KEY_END], &pe->key_end, &pe->foreign) &&
	       parse_verdict(tb[NFTA_SET_ELEM_DATA], pe);
}

static bool value_is(const struct nlattr *v, uint32_t len)
{
	return v && mnl_attr_get_payload_len(v) == len;
}

/* Whether `pe` is an element fedwall writes into a set shaped as `k`:
 * see nft_elem_encode() and nft_elem_add(). */
static bool elem_fits(const struct kelems *k, const struct pelem *pe)
{
	bool end = pe->flags & NFT_SET_ELEM_INTERVAL_END;

	if (pe->foreign || (pe->flags & ~(uint32_t)NFT_SET_ELEM_INTERVAL_END) ||
	    !value_is(pe->key, k->klen))
		return false;
	if (k->concat ? end || !value_is(pe->key_end, k->klen) : pe->key_end != NULL)
		return false;
	if (!k->map || end)
		return !pe->verdict;    /* an interval's end carries no verdict */
	return pe->verdict && pe->code == NFT_JUMP && pe->chain;
}

static void kelems_add(struct kelems *k, struct names *nm, const struct pelem *pe)
{
	uint32_t id = NO_CHAIN;
	uint8_t *r;

	if (k->bad)
		return;
	if (!elem_fits(k, pe)) {
		k->bad = true;
		kelems_free(k);         /* the set is foreign: its elements go unused */
		return;
	}
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 64;
		k->rec = xreallocarray(k->rec, k->cap, k->stride);
	}
	r = rec_at(k, k->n++);
	memcpy(r, mnl_attr_get_payload(pe->key), k->klen);
	if (k->concat)
		memcpy(r + k->klen, mnl_attr_get_payload(pe->key_end), k->klen);
	r[flags_at(k)] = pe->flags & NFT_SET_ELEM_INTERVAL_END;
	if (pe->chain)
		id = names_intern(nm, pe->chain);
	if (k->map)
		memcpy(r + flags_at(k) + 1, &id, sizeof(id));
}

/* NFTA_SET_ELEM_LIST_ELEMENTS: each a nested NFTA_LIST_ELEM. */
static bool parse_elem_list(const struct nlattr *list, struct kelems *k, struct names *nm)
{
	const char *end = (const char *)mnl_attr_get_payload(list) +
			  mnl_attr_get_payload_len(list);
	const struct nlattr *e;
	struct pelem pe;

	if (mnl_attr_validate(list, MNL_TYPE_NESTED) < 0)
		return false;
	mnl_attr_for_each_nested(e, list) {
		if (mnl_attr_get_type(e) != NFTA_LIST_ELEM ||
		    mnl_attr_validate(e, MNL_TYPE_NESTED) < 0 || !parse_elem(e, &pe))
			return false;
		kelems_add(k, nm, &pe);
	}
	return (const char *)e >= end;
}

/* The elements of one NFT_MSG_NEWSETELEM message into `k`; false when
 * the message is malformed.  The walk ends at nlmsg_len, not at its
 * aligned tail as libmnl's does (a recorded dump may end unaligned). */
static bool parse_elem_msg(const struct nlmsghdr *nlh, struct kelems *k, struct names *nm)
{
	const char *end = (const char *)nlh + nlh->nlmsg_len;
	const struct nlattr *a = mnl_nlmsg_get_payload_offset(nlh, sizeof(struct nfgenmsg));

	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)))
		return false;
	for (; mnl_attr_ok(a, (int)(end - (const char *)a)); a = mnl_attr_next(a))
		if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_ELEMENTS &&
		    !parse_elem_list(a, k, nm))
			return false;
	return (const char *)a >= end;
}

/* ---- dumps ---------------------------------------------------------------------- */

struct objs {
	const char *table;
	struct nftnl_table *t;
	VEC(struct nftnl_chain *) chains;
	VEC(struct nftnl_set *) sets;
	VEC(struct kelems) elems;       /* parallel to sets */
	struct names names;             /* the elements' jump targets */
	VEC(struct nftnl_rule *) rules;
	VEC(struct nftnl_obj *) counters;
	bool no_elems;                  /* nft_read_shape(): sets left empty */
};

/* NUL_STRING: the name is compared (here and by libnftnl) with strcmp(),
 * which must stop inside the attribute. */
static int expr_name_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == NFTA_EXPR_NAME &&
	    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
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

/* A verdict naming a chain where no verdict belongs (a cmp value...):
 * libnftnl copies the chain and never frees it. */
static bool stray_chain(const struct nlattr *data)
{
	return nested(nested(data, NFTA_DATA_VERDICT), NFTA_VERDICT_CHAIN) != NULL;
}

/* libnftnl (1.2.x) dereferences a missing expression name: an
 * expression (of a rule or a set) must have one. */
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
	VEC_GROW(&o->elems);
	kelems_init(&o->elems.v[o->elems.n++], s);
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

/* Where the live read puts the elements of the set it asked for. */
struct elem_sink {
	struct kelems *k;
	struct names *names;
};

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct elem_sink *sink = data;

	if (parse_elem_msg(nlh, sink->k, sink->names))
		return MNL_CB_OK;
	errno = EBADMSG;        /* what nl_talk() returns */
	return MNL_CB_ERROR;
}

static void objs_free(struct objs *o)
{
	if (o->t)
		nftnl_table_free(o->t);
	for (size_t i = 0; i < o->chains.n; i++)
		nftnl_chain_free(o->chains.v[i]);
	for (size_t i = 0; i < o->sets.n; i++)
		nftnl_set_free(o->sets.v[i]);
	for (size_t i = 0; i < o->elems.n; i++)
		kelems_free(&o->elems.v[i]);
	names_free(&o->names);
	for (size_t i = 0; i < o->rules.n; i++)
		nftnl_rule_free(o->rules.v[i]);
	for (size_t i = 0; i < o->counters.n; i++)
		nftnl_obj_free(o->counters.v[i]);
	free(o->chains.v);
	free(o->sets.v);
	free(o->elems.v);
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
	for (size_t i = 0; !ret && !o->no_elems && i < o->sets.n; i++) {
		struct elem_sink sink = { &o->elems.v[i], &o->names };

		nlh = req(ctx, buf, NFT_MSG_GETSETELEM, NLM_F_DUMP);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, o->table);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET,
				  nftnl_set_get_str(o->sets.v[i], NFTNL_SET_NAME));
		ret = nft_talk(ctx, nlh, elem_cb, &sink);
	}
	return ret;
}

/* ---- objects -> IR ------------------------------------------------------------------ */

struct conv {
	struct ir_ruleset *rs;
	struct strbuf foreign;  /* first reason, "" if all decoded */
	uint32_t *cmap;         /* element target name id -> chain index */
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

/* The elements' target name ids -> chain indexes (NO_CHAIN: none of
 * that name), one hash lookup per chain; the first of a name wins, as
 * chain_index() has it. */
static uint32_t *chain_map(const struct ir_ruleset *rs, const struct names *nm)
{
	uint32_t *m = xreallocarray(NULL, nm->v.n + 1, sizeof(*m));

	for (size_t i = 0; i < nm->v.n; i++)
		m[i] = NO_CHAIN;
	for (size_t i = rs->nchains; i-- > 0;) {
		uint32_t id = names_find(nm, rs->chains[i].name);

		if (id != NO_CHAIN)
			m[id] = (uint32_t)i;
	}
	return m;
}

/* A map element's jump target (NFT_JUMP, checked by elem_fits()). */
static bool elem_chain(const struct conv *cv, const struct kelems *k, const uint8_t *r,
		       struct ir_elem *e)
{
	uint32_t id = rec_chain(k, r);

	if (!k->map)
		return true;
	if (id == NO_CHAIN || cv->cmap[id] == NO_CHAIN)
		return false;
	e->chain = cv->cmap[id];
	return true;
}

static bool zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* proto (padded to 4) . port (padded to 4), as put_proto_port() writes. */
static bool proto_port_at(const uint8_t *k, uint8_t *proto, uint16_t *port)
{
	uint16_t be;

	memcpy(&be, k + 4, 2);
	*proto = k[0];
	*port = ntohs(be);
	return zero(k + 1, 3) && zero(k + 6, 2);
}

static bool conv_concat_elem(const struct conv *cv, const struct ir_set *s,
			     const struct kelems *k, const uint8_t *r, struct ir_elem *e)
{
	size_t al = nft_keyinfo(s->key)->addr_len;
	const uint8_t *end = r + k->klen;
	uint8_t proto_end;

	memset(e, 0, sizeof(*e));
	if (al && !range_prefix(r, end, al, &e->addr))
		return false;
	if (!proto_port_at(r + al, &e->port.proto, &e->port.lo) ||
	    !proto_port_at(end + al, &proto_end, &e->port.hi))
		return false;
	if (proto_end != e->port.proto ||
	    (e->port.proto != PROTO_TCP && e->port.proto != PROTO_UDP))
		return false;
	if (!e->port.lo || e->port.hi < e->port.lo)
		return false;
	return elem_chain(cv, k, r, e);
}

static int elem_qcmp(const void *x, const void *y)
{
	return ir_elem_cmp(x, y);
}

static bool conv_concat_elems(const struct conv *cv, struct ir_set *s, const struct kelems *k)
{
	bool sorted = true;

	s->elems = k->n ? xreallocarray(NULL, k->n, sizeof(*s->elems)) : NULL;
	for (size_t i = 0; i < k->n; i++) {
		if (!conv_concat_elem(cv, s, k, rec_at(k, i), &s->elems[i]))
			return false;
		s->nelems++;
		sorted &= i == 0 || ir_elem_cmp(&s->elems[i - 1], &s->elems[i]) < 0;
	}
	if (!sorted)
		qsort(s->elems, s->nelems, sizeof(*s->elems), elem_qcmp);
	return true;
}

/* Single-field bounds in key order; at the same key an interval's end
 * sorts before the next one's start.  `arg`: the key length. */
static int bound_cmp(const void *x, const void *y, void *arg)
{
	size_t kl = *(const uint32_t *)arg;
	const uint8_t *a = x, *b = y;
	int c = memcmp(a, b, kl);

	return c ? c : (int)(b[kl] & NFT_SET_ELEM_INTERVAL_END) -
		       (int)(a[kl] & NFT_SET_ELEM_INTERVAL_END);
}

/* The kernel's rbtree dumps in descending order: that is reversed, not
 * sorted, and sorted input is left alone. */
static void sort_bounds(struct kelems *k)
{
	uint8_t tmp[KEY_MAX + 1 + sizeof(uint32_t)];
	bool asc = true, desc = true;

	for (size_t i = 1; i < k->n && (asc || desc); i++) {
		int c = bound_cmp(rec_at(k, i - 1), rec_at(k, i), &k->klen);

		asc &= c <= 0;
		desc &= c >= 0;
	}
	if (asc)
		return;
	if (!desc) {
		qsort_r(k->rec, k->n, k->stride, bound_cmp, &k->klen);
		return;
	}
	for (size_t i = 0, j = k->n - 1; i < j; i++, j--) {
		memcpy(tmp, rec_at(k, i), k->stride);
		memcpy(rec_at(k, i), rec_at(k, j), k->stride);
		memcpy(rec_at(k, j), tmp, k->stride);
	}
}

/* Start and end bounds -> prefixes (maps: with the start's target).
 * Besides the pairs, only what fedwall writes (add_elems(), as nft
 * does): an end at zero before everything, and no end after an
 * interval that reaches the top of the space. */
static bool conv_single_elems(const struct conv *cv, struct ir_set *s, struct kelems *k)
{
	size_t al = k->klen, nstart = 0;
	const uint8_t *open = NULL;

	sort_bounds(k);
	for (size_t i = 0; i < k->n; i++)
		nstart += !(rec_flags(k, rec_at(k, i)) & NFT_SET_ELEM_INTERVAL_END);
	s->elems = nstart ? xreallocarray(NULL, nstart, sizeof(*s->elems)) : NULL;
	for (size_t i = 0; i <= k->n; i++) {
		const uint8_t *r = i < k->n ? rec_at(k, i) : NULL;
		uint8_t last[KEY_MAX];
		struct ir_elem *e;

		if (r && !(rec_flags(k, r) & NFT_SET_ELEM_INTERVAL_END)) {
			if (open)
				return false;   /* two starts in a row */
			open = r;
			continue;
		}
		if (!open) {
			if (!r || (i == 0 && zero(r, al)))
				continue;
			return false;           /* an end without a start */
		}
		memset(last, 0xff, al);
		if (r) {
			memcpy(last, r, al);    /* above open: no borrow out */
			for (size_t b = al; b-- > 0 && last[b]-- == 0;)
				;
		}
		e = &s->elems[s->nelems];       /* a start was counted: elems is set */
		memset(e, 0, sizeof(*e));
		if (!range_prefix(open, last, al, &e->addr) || !elem_chain(cv, k, open, e))
			return false;
		s->nelems++;
		open = NULL;
	}
	return true;
}

static bool conv_elems(const struct conv *cv, struct ir_set *s, struct kelems *k)
{
	const struct nft_keyinfo *ki = nft_keyinfo(s->key);

	if (k->bad || k->klen != ki->len || k->concat != (ki->nfields > 1) ||
	    k->map != s->is_map)
		return false;
	return k->concat ? conv_concat_elems(cv, s, k) : conv_single_elems(cv, s, k);
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
		bool ok = conv_set(o->sets.v[i], s) && conv_elems(cv, s, &o->elems.v[i]);

		kelems_free(&o->elems.v[i]);    /* done with: keeps the peak low */
		if (!ok) {
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
	/* Kept, not foreign: a dormant table is ours, switched off; the diff
	 * calls any flag structural and the commit replaces the table. */
	rs->flags = nftnl_table_get_u32(o->t, NFTNL_TABLE_FLAGS);
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
	cv->cmap = chain_map(rs, &o->names);
	conv_sets(cv, o);
	conv_rules(cv, o);
	mark_revoke(rs);
	*why_foreign = cv->foreign.len ? xstrdup(sb_str(&cv->foreign)) : NULL;
	sb_free(&cv->foreign);
	free(cv->cmap);
	return rs;
}

static int read_once(struct nft_ctx *ctx, const char *table, bool elems,
		     struct ir_ruleset **out, uint32_t *genid)
{
	struct objs o = { .table = table, .no_elems = !elems };
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

static int read_tries(struct nft_ctx *ctx, const char *table, bool elems,
		      struct ir_ruleset **out, uint32_t *genid)
{
	int ret = -EINTR;

	*out = NULL;
	free(ctx->foreign);
	ctx->foreign = NULL;
	for (int i = 0; i < READ_TRIES && ret == -EINTR; i++)
		ret = read_once(ctx, table, elems, out, genid);
	return ret == -EINTR ? -EAGAIN : ret;
}

int nft_read(struct nft_ctx *ctx, const char *table, struct ir_ruleset **out,
	     uint32_t *genid)
{
	return read_tries(ctx, table, true, out, genid);
}

int nft_read_shape(struct nft_ctx *ctx, const char *table, struct ir_ruleset **out,
		   uint32_t *genid)
{
	return read_tries(ctx, table, false, out, genid);
}

/* ---- recorded dumps --------------------------------------------------------------------- */

static long set_index(const struct objs *o, const char *name)
{
	for (size_t i = 0; i < o->sets.n; i++) {
		const char *n = nftnl_set_get_str(o->sets.v[i], NFTNL_SET_NAME);

		if (n && !strcmp(n, name))
			return (long)i;
	}
	return -1;
}

static int elem_list_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	/* NUL_STRING: strcmp() must stop inside the attribute. */
	if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_SET &&
	    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
		tb[0] = a;
	return MNL_CB_OK;
}

/* An element message goes to the set it names (the live read asks set
 * by set); elements of a set not (yet) seen are not ours. */
static int dump_elem_cb(const struct nlmsghdr *nlh, struct objs *o)
{
	const struct nlattr *tb[1] = { NULL };
	struct elem_sink sink = { NULL, &o->names };
	long i;

	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), elem_list_attr_cb, tb) < 0 ||
	    !tb[0])
		return MNL_CB_OK;
	i = set_index(o, mnl_attr_get_str(tb[0]));
	if (i < 0)
		return MNL_CB_OK;
	sink.k = &o->elems.v[i];
	return elem_cb(nlh, &sink);
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
	 * and more passes it; the second test keeps the walk in `buf`.
	 * libmnl's attribute walks run to the aligned end of a message: a
	 * last message of unaligned length would let them read past `buf`. */
	for (; !ret && mnl_nlmsg_ok(nlh, left) && nlh->nlmsg_len <= (unsigned)left &&
	       MNL_ALIGN(nlh->nlmsg_len) <= (unsigned)left;
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

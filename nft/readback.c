/* readback.c - kernel -> IR: dumps fedwall's table (or walks a recorded
 * dump) and converts the objects to IR, the rules through decode.c's
 * nft_decode_rule(), the elements parsed by elems.c into packed arrays.
 * Anything the conversion does not recognise makes the live table
 * "foreign" (replace, never patch).  The public readers, nft_read(),
 * nft_read_shape() and nft_decode_dump() (nft.h), serve the apply,
 * refresh, status and confirm paths, kcost and the fuzzer. */
#define _GNU_SOURCE     /* qsort_r */
#include "nft/kernel-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdlib.h>
#include <string.h>

#include <libnftnl/udata.h>

#define READ_TRIES 5

/* The IR keeps the kernel's table flags as they are. */
_Static_assert((int)IR_TABLE_F_DORMANT == (int)NFT_TABLE_F_DORMANT &&
	       (int)IR_TABLE_F_OWNER == (int)NFT_TABLE_F_OWNER, "table flags");

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

	if (kelems_parse_msg(nlh, sink->k, sink->names))
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

/* The elements' target name ids -> chain indexes (KELEMS_NO_CHAIN: none of
 * that name), one hash lookup per chain; the first of a name wins, as
 * chain_index() has it. */
static uint32_t *chain_map(const struct ir_ruleset *rs, const struct names *nm)
{
	uint32_t *m = xreallocarray(NULL, nm->v.n + 1, sizeof(*m));

	for (size_t i = 0; i < nm->v.n; i++)
		m[i] = KELEMS_NO_CHAIN;
	for (size_t i = rs->nchains; i-- > 0;) {
		uint32_t id = names_find(nm, rs->chains[i].name);

		if (id != KELEMS_NO_CHAIN)
			m[id] = (uint32_t)i;
	}
	return m;
}

/* A map element's jump target (NFT_JUMP, checked by elem_fits()). */
static bool elem_chain(const struct conv *cv, const struct kelems *k, const uint8_t *r,
		       struct ir_elem *e)
{
	uint32_t id = kelems_rec_chain(k, r);

	if (!k->map)
		return true;
	if (id == KELEMS_NO_CHAIN || cv->cmap[id] == KELEMS_NO_CHAIN)
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
		if (!conv_concat_elem(cv, s, k, kelems_rec_at(k, i), &s->elems[i]))
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
	uint8_t tmp[KELEMS_KEY_MAX + 1 + sizeof(uint32_t)];
	bool asc = true, desc = true;

	for (size_t i = 1; i < k->n && (asc || desc); i++) {
		int c = bound_cmp(kelems_rec_at(k, i - 1), kelems_rec_at(k, i), &k->klen);

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
		memcpy(tmp, kelems_rec_at(k, i), k->stride);
		memcpy(kelems_rec_at(k, i), kelems_rec_at(k, j), k->stride);
		memcpy(kelems_rec_at(k, j), tmp, k->stride);
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
		nstart += !(kelems_rec_flags(k, kelems_rec_at(k, i)) & NFT_SET_ELEM_INTERVAL_END);
	s->elems = nstart ? xreallocarray(NULL, nstart, sizeof(*s->elems)) : NULL;
	for (size_t i = 0; i <= k->n; i++) {
		const uint8_t *r = i < k->n ? kelems_rec_at(k, i) : NULL;
		uint8_t last[KELEMS_KEY_MAX];
		struct ir_elem *e;

		if (r && !(kelems_rec_flags(k, r) & NFT_SET_ELEM_INTERVAL_END)) {
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

/* lower.c - IR -> libnftnl objects, expression by expression what nft
 * 1.0.6 sends for the equivalent text (checked with `nft --debug=netlink`),
 * so that `nft list ruleset` prints fedwall's table the way RULESET.md
 * shows it. */
#include "nft/kernel-int.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include <libnftnl/expr.h>
#include <libnftnl/udata.h>

/* nft's datatype ids and its concat encoding (datatype.h: TYPE_BITS 6). */
enum { DT_IPADDR = 7, DT_IP6ADDR = 8, DT_INET_PROTO = 12, DT_INET_SERVICE = 13 };
#define CONCAT2(a, b) (((a) << 6) | (b))
#define CONCAT3(a, b, c) (((a) << 12) | ((b) << 6) | (c))

/* nft's enum byteorder and the udata of a `type a . b` concat key. */
enum { BYTEORDER_INVALID = 0, BYTEORDER_BIG_ENDIAN = 2 };
enum { NFT_EXPR_CONCAT_ETYPE = 13 };

static const struct nft_keyinfo keyinfo[] = {
	[IR_KEY_ADDR4] = { DT_IPADDR, 4, 1, { 4 }, 4, false },
	[IR_KEY_ADDR6] = { DT_IP6ADDR, 16, 1, { 16 }, 16, false },
	[IR_KEY_ADDR4_PROTO_PORT] = { CONCAT3(DT_IPADDR, DT_INET_PROTO, DT_INET_SERVICE),
				      12, 3, { 4, 1, 2 }, 4, true },
	[IR_KEY_ADDR6_PROTO_PORT] = { CONCAT3(DT_IP6ADDR, DT_INET_PROTO, DT_INET_SERVICE),
				      24, 3, { 16, 1, 2 }, 16, true },
	[IR_KEY_PROTO_PORT] = { CONCAT2(DT_INET_PROTO, DT_INET_SERVICE), 8, 2, { 1, 2 },
				0, true },
};

const struct nft_keyinfo *nft_keyinfo(enum ir_keytype k)
{
	return &keyinfo[k];
}

bool nft_keytype_from(uint32_t type, uint32_t len, bool concat, enum ir_keytype *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(keyinfo); i++) {
		if (keyinfo[i].type == type && keyinfo[i].len == len &&
		    (keyinfo[i].nfields > 1) == concat) {
			*out = (enum ir_keytype)i;
			return true;
		}
	}
	return false;
}

bool nft_udata_comment(struct nftnl_udata_buf *ud, uint8_t type, const char *c)
{
	return nftnl_udata_put_strz(ud, type, c);
}

/* Sets `attr` of an object from a userdata buffer through `setter`. */
#define SET_UDATA(obj, setter, attr, ud)                                        \
	setter(obj, attr, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud))

static struct nftnl_udata_buf *comment_udata(uint8_t type, const char *comment)
{
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(256);

	if (!ud)
		return NULL;
	if (!comment || !nft_udata_comment(ud, type, comment)) {
		nftnl_udata_buf_free(ud);
		return NULL;
	}
	return ud;
}

struct nftnl_table *nft_lower_table(const struct ir_ruleset *rs)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nftnl_udata_buf *ud;

	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, rs->table);
	nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, 0);
	ud = comment_udata(NFTNL_UDATA_TABLE_COMMENT, rs->comment);
	if (ud) {
		SET_UDATA(t, nftnl_table_set_data, NFTNL_TABLE_USERDATA, ud);
		nftnl_udata_buf_free(ud);
	}
	return t;
}

struct nftnl_obj *nft_lower_counter(const char *table, const struct ir_counter *c)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct nftnl_udata_buf *ud;

	nftnl_obj_set_u32(o, NFTNL_OBJ_FAMILY, NFPROTO_INET);
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, table);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, c->name);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	ud = comment_udata(NFTNL_UDATA_OBJ_COMMENT, c->comment);
	if (ud) {
		SET_UDATA(o, nftnl_obj_set_data, NFTNL_OBJ_USERDATA, ud);
		nftnl_udata_buf_free(ud);
	}
	nftnl_obj_set_u64(o, NFTNL_OBJ_CTR_BYTES, 0);
	nftnl_obj_set_u64(o, NFTNL_OBJ_CTR_PKTS, 0);
	return o;
}

static const uint32_t hooknum[] = {
	[IR_HOOK_INPUT] = NF_INET_LOCAL_IN,
	[IR_HOOK_FORWARD] = NF_INET_FORWARD,
	[IR_HOOK_OUTPUT] = NF_INET_LOCAL_OUT,
};

struct nftnl_chain *nft_lower_chain(const char *table, const struct ir_chain *c)
{
	struct nftnl_chain *ch = nftnl_chain_alloc();
	struct nftnl_udata_buf *ud;

	nftnl_chain_set_u32(ch, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, c->name);
	if (c->hook != IR_HOOK_NONE) {
		nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_POLICY,
				    c->policy == IR_DROP ? NF_DROP : NF_ACCEPT);
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM, hooknum[c->hook]);
		nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO, c->priority);
	}
	ud = comment_udata(NFTNL_UDATA_CHAIN_COMMENT, c->comment);
	if (ud) {
		SET_UDATA(ch, nftnl_chain_set_data, NFTNL_CHAIN_USERDATA, ud);
		nftnl_udata_buf_free(ud);
	}
	return ch;
}

/* The userdata nft 1.0.6 attaches to a set declared with `type`. */
static void set_udata(struct nftnl_set *set, const struct ir_set *s)
{
	const struct nft_keyinfo *ki = nft_keyinfo(s->key);
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(512);
	struct nftnl_udata *nest, *nest2;

	nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER,
			    ki->nfields > 1 ? BYTEORDER_INVALID : BYTEORDER_BIG_ENDIAN);
	if (s->is_map)
		nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_DATABYTEORDER, BYTEORDER_INVALID);
	if (ki->nfields > 1) {
		nest = nftnl_udata_nest_start(ud, NFTNL_UDATA_SET_KEY_TYPEOF);
		nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_TYPEOF_EXPR, NFT_EXPR_CONCAT_ETYPE);
		nest2 = nftnl_udata_nest_start(ud, NFTNL_UDATA_SET_TYPEOF_DATA);
		nftnl_udata_nest_end(ud, nest2);
		nftnl_udata_nest_end(ud, nest);
	}
	if (s->is_map)
		nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_DATA_INTERVAL, 0);
	if (s->comment)
		nft_udata_comment(ud, NFTNL_UDATA_SET_COMMENT, s->comment);
	SET_UDATA(set, nftnl_set_set_data, NFTNL_SET_USERDATA, ud);
	nftnl_udata_buf_free(ud);
}

struct nftnl_set *nft_lower_set(const char *table, const struct ir_set *s, uint32_t id)
{
	const struct nft_keyinfo *ki = nft_keyinfo(s->key);
	struct nftnl_set *set = nftnl_set_alloc();
	uint32_t flags = NFT_SET_INTERVAL;

	if (ki->nfields > 1)
		flags |= NFT_SET_CONCAT;
	if (s->is_map)
		flags |= NFT_SET_MAP;
	nftnl_set_set_u32(set, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(set, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(set, NFTNL_SET_NAME, s->name);
	nftnl_set_set_u32(set, NFTNL_SET_FLAGS, flags);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_TYPE, ki->type);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_LEN, ki->len);
	if (s->is_map) {
		nftnl_set_set_u32(set, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		nftnl_set_set_u32(set, NFTNL_SET_DATA_LEN, 0);
	}
	if (id)
		nftnl_set_set_u32(set, NFTNL_SET_ID, id);
	if (ki->nfields > 1) {
		uint8_t fl[NFT_REG32_COUNT] = { 0 };

		memcpy(fl, ki->field_len, ki->nfields);
		nftnl_set_set_data(set, NFTNL_SET_DESC_CONCAT, fl, ki->nfields);
	}
	set_udata(set, s);
	return set;
}

/* ---- elements ---------------------------------------------------------- */

/* Adds one to a big-endian number; false when it wraps to zero. */
static bool be_inc(uint8_t *v, size_t n)
{
	while (n--) {
		if (++v[n] != 0)
			return true;
	}
	return false;
}

static void put_proto_port(uint8_t *p, uint8_t proto, uint16_t port)
{
	uint16_t be = htons(port);

	memset(p, 0, 8);
	p[0] = proto;
	memcpy(p + 4, &be, 2);
}

size_t nft_elem_encode(const struct ir_set *s, const struct ir_elem *e,
		       struct nft_kelem out[2])
{
	const struct nft_keyinfo *ki = nft_keyinfo(s->key);
	uint8_t first[16] = { 0 }, last[16] = { 0 };
	size_t al = ki->addr_len;

	memset(out, 0, 2 * sizeof(*out));
	if (al) {
		prefix_first(&e->addr, first);
		prefix_last(&e->addr, last);
	}
	if (!ki->proto_port) {
		memcpy(out[0].key, first, al);
		memcpy(out[1].key, last, al);
		out[1].interval_end = true;
		return be_inc(out[1].key, al) ? 2 : 1;
	}
	memcpy(out[0].key, first, al);
	memcpy(out[0].key_end, last, al);
	put_proto_port(out[0].key + al, e->port.proto, e->port.lo);
	put_proto_port(out[0].key_end + al, e->port.proto, e->port.hi);
	out[0].has_end = true;
	return 1;
}

void nft_elem_add(struct nftnl_set *set, const struct ir_ruleset *rs,
		  const struct ir_set *s, const struct ir_elem *e,
		  const struct nft_kelem *k)
{
	const struct nft_keyinfo *ki = nft_keyinfo(s->key);
	struct nftnl_set_elem *el = nftnl_set_elem_alloc();

	if (k->interval_end)
		nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
	nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, k->key, ki->len);
	if (k->has_end)
		nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY_END, k->key_end, ki->len);
	if (s->is_map && e && !k->interval_end && e->chain < rs->nchains) {
		nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_JUMP);
		nftnl_set_elem_set_str(el, NFTNL_SET_ELEM_CHAIN, rs->chains[e->chain].name);
	}
	nftnl_set_elem_add(set, el);
}

#define NLA_SZ(n) (4 + (((n) + 3) & ~3u))

size_t nft_elem_cost(const struct ir_ruleset *rs, const struct ir_set *s,
		     const struct ir_elem *e)
{
	const struct nft_keyinfo *ki = nft_keyinfo(s->key);
	size_t n = 4 + NLA_SZ(0) * 2 + NLA_SZ(ki->len) * 2 + NLA_SZ(4);

	if (s->is_map && e->chain < rs->nchains)
		n += 3 * 4 + NLA_SZ(4) + NLA_SZ(strlen(rs->chains[e->chain].name) + 1);
	return n;
}

void nft_elem_fmt(const struct ir_set *s, const struct ir_elem *e, struct strbuf *sb)
{
	const struct nft_keyinfo *ki = nft_keyinfo(s->key);
	char buf[PREFIX_STRLEN];

	if (ki->addr_len) {
		sb_addf(sb, "%s", prefix_fmt(&e->addr, buf, sizeof(buf)));
		if (ki->proto_port)
			sb_addf(sb, " . ");
	}
	if (ki->proto_port) {
		sb_addf(sb, "%s . %u", proto_name(e->port.proto), e->port.lo);
		if (e->port.hi != e->port.lo)
			sb_addf(sb, "-%u", e->port.hi);
	}
}

/* ---- rules --------------------------------------------------------------- */

/* nft's register allocation: 32-bit slot k, named as a 128-bit register
 * when aligned (netlink_put_register). */
static uint32_t reg32(unsigned k)
{
	return k % 4 == 0 ? NFT_REG_1 + k / 4 : NFT_REG32_00 + k;
}

static struct nftnl_expr *add_expr(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);

	nftnl_rule_add_expr(r, e);
	return e;
}

static void e_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = add_expr(r, "meta");

	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
}

static void e_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = add_expr(r, "cmp");

	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
}

static void e_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len,
		      uint32_t dreg)
{
	struct nftnl_expr *e = add_expr(r, "payload");

	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
}

static void e_u8_match(struct nftnl_rule *r, uint32_t metakey, uint8_t v)
{
	e_meta(r, metakey, NFT_REG_1);
	e_cmp(r, NFT_CMP_EQ, &v, 1);
}

static void e_verdict(struct nftnl_rule *r, enum ir_verdict v, const char *chain)
{
	struct nftnl_expr *e = add_expr(r, "immediate");

	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	if (v == IR_JUMP) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)NFT_JUMP);
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	} else {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, v == IR_DROP ? NF_DROP : NF_ACCEPT);
	}
}

static void e_ct_state(struct nftnl_rule *r, uint32_t mask)
{
	struct nftnl_expr *e = add_expr(r, "ct");
	uint32_t zero = 0;

	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	e = add_expr(r, "bitwise");
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
	e_cmp(r, NFT_CMP_NEQ, &zero, 4);
}

/* `tcp flags & (fin | syn | rst | ack) != syn`, as nft 1.0.6 lowers it:
 * the l4proto guard, the flags byte masked, compared with SYN alone. */
static void e_tcp_not_syn(struct nftnl_rule *r)
{
	struct nftnl_expr *e;
	uint8_t mask = TH_FIN | TH_SYN | TH_RST | TH_ACK, syn = TH_SYN, zero = 0;

	e_u8_match(r, NFT_META_L4PROTO, IPPROTO_TCP);
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, NFT_TCP_FLAGS_OFFSET, 1, NFT_REG_1);
	e = add_expr(r, "bitwise");
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 1);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 1);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 1);
	e_cmp(r, NFT_CMP_NEQ, &syn, 1);
}

static void e_ifname(struct nftnl_rule *r, enum ir_ifdir dir, const char *name)
{
	char buf[IFNAMSIZ] = { 0 };

	strncpy(buf, name, IFNAMSIZ - 1);
	e_meta(r, dir == IR_OIF ? NFT_META_OIFNAME : NFT_META_IIFNAME, NFT_REG_1);
	e_cmp(r, NFT_CMP_EQ, buf, IFNAMSIZ);
}

static void e_ifindex(struct nftnl_rule *r, enum ir_ifdir dir, const char *name)
{
	uint32_t idx = if_nametoindex(name ? name : "lo");

	if (!idx)
		idx = 1;        /* "lo" is 1 in every network namespace */
	e_meta(r, dir == IR_OIF ? NFT_META_OIF : NFT_META_IIF, NFT_REG_1);
	e_cmp(r, NFT_CMP_EQ, &idx, 4);
}

static void e_family(struct nftnl_rule *r, uint8_t family)
{
	e_u8_match(r, NFT_META_NFPROTO, family == 6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
}

/* Loads the key of `ki` into consecutive registers from reg 1 and looks
 * it up; dreg verdict for maps. */
/* Lowering for comparison with a dumped rule: the kernel reports the
 * defaults nft leaves out (lookup flags 0, log level warn). */
static __thread bool as_dumped;

static void e_lookup(struct nftnl_rule *r, const struct nft_keyinfo *ki, uint8_t family,
		     enum ir_field field, const char *set, uint32_t set_id, bool vmap)
{
	unsigned k = 0;
	struct nftnl_expr *e;

	if (ki->addr_len) {
		uint32_t off = family == 6 ? (field == IR_DADDR ? 24 : 8)
					   : (field == IR_DADDR ? 16 : 12);

		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, off, ki->addr_len, reg32(k));
		k += ki->addr_len / 4;
	}
	if (ki->proto_port) {
		e_meta(r, NFT_META_L4PROTO, reg32(k));
		e = add_expr(r, "byteorder");
		nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SREG, reg32(k));
		nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_DREG, reg32(k));
		nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_LEN, 1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SIZE, 2);
		k++;
		e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg32(k));
	}
	e = add_expr(r, "lookup");
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	if (set_id)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	if (vmap)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
	if (as_dumped)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, 0);
}

static const uint64_t unit_secs[] = {
	[LOG_SECOND] = 1, [LOG_MINUTE] = 60, [LOG_HOUR] = 3600, [LOG_DAY] = 86400,
};

static void e_limit_log(struct nftnl_rule *r, const struct ir_rule *ir)
{
	struct nftnl_expr *e = add_expr(r, "limit");

	nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_RATE, ir->rate);
	nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_UNIT, unit_secs[ir->unit]);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_BURST, 5);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_FLAGS, 0);
	e = add_expr(r, "log");
	if (ir->log_prefix && ir->log_prefix[0])
		nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, ir->log_prefix);
	if (as_dumped)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOG_LEVEL, 4);     /* LOG_WARNING */
}

static void e_objref(struct nftnl_rule *r, const char *counter)
{
	struct nftnl_expr *e = add_expr(r, "objref");

	nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
	nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, counter);
}

/* The key shape of a rule's set: from the set when the ruleset has it,
 * else what the rule kind implies. */
static const struct nft_keyinfo *rule_key(const struct ir_ruleset *rs,
					  const struct ir_rule *r)
{
	const struct ir_set *s = ir_find_set(rs, r->set);

	if (s)
		return nft_keyinfo(s->key);
	switch (r->kind) {
	case IR_R_JUMP:
		return nft_keyinfo(r->family == 6 ? IR_KEY_ADDR6 : IR_KEY_ADDR4);
	case IR_R_LOG:
	case IR_R_COUNTER:
	case IR_R_PORT_VMAP:
		return nft_keyinfo(IR_KEY_PROTO_PORT);
	case IR_R_VMAP:
	case IR_R_PROTO:
		return nft_keyinfo(r->family == 6 ? IR_KEY_ADDR6 : IR_KEY_ADDR4);
	default:
		return nft_keyinfo(r->family == 6 ? IR_KEY_ADDR6_PROTO_PORT
						  : IR_KEY_ADDR4_PROTO_PORT);
	}
}

static void lower_match(struct nftnl_rule *kr, const struct ir_ruleset *rs,
			const struct ir_rule *r, uint32_t set_id, bool vmap)
{
	const struct nft_keyinfo *ki;

	if (!r->set)
		return;
	ki = rule_key(rs, r);
	if (ki->addr_len)
		e_family(kr, r->family);
	e_lookup(kr, ki, r->family, r->field, r->set, set_id, vmap);
}

/* As nft 1.0.6 lowers `iifname "IF" ip saddr @S udp dport N`: the
 * interface, the address lookup, the protocol, the port. */
static void lower_proto(struct nftnl_rule *kr, const struct ir_ruleset *rs,
			const struct ir_rule *r, uint32_t set_id)
{
	uint16_t be = htons(r->dport);

	if (r->ifname)
		e_ifname(kr, r->ifdir, r->ifname);
	lower_match(kr, rs, r, set_id, false);
	e_u8_match(kr, NFT_META_L4PROTO, r->l4proto);
	if (r->dport) {
		e_payload(kr, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
		e_cmp(kr, NFT_CMP_EQ, &be, 2);
	}
	if (r->target)
		e_objref(kr, r->target);
}

static bool lower_body(struct nftnl_rule *kr, const struct ir_ruleset *rs,
		       const struct ir_rule *r, uint32_t set_id, const char **err)
{
	switch (r->kind) {
	case IR_R_CT_STATE:
		e_ct_state(kr, r->verdict == IR_ACCEPT ? NF_CT_STATE_BIT(IP_CT_ESTABLISHED) |
				       NF_CT_STATE_BIT(IP_CT_RELATED)
						       : NF_CT_STATE_INVALID_BIT);
		if (r->target)
			e_objref(kr, r->target);
		break;
	case IR_R_NEW_NOT_SYN:
		if (r->verdict != IR_DROP) {
			*err = "a SYN check that does not drop";
			return false;
		}
		e_tcp_not_syn(kr);
		e_ct_state(kr, NF_CT_STATE_BIT(IP_CT_NEW));
		if (r->target)
			e_objref(kr, r->target);
		break;
	case IR_R_LOOPBACK:
		e_ifindex(kr, r->ifdir, r->ifname);
		break;
	case IR_R_JUMP:
		if (r->ifname)
			e_ifname(kr, r->ifdir, r->ifname);
		lower_match(kr, rs, r, set_id, false);
		break;
	case IR_R_ICMP:
		e_family(kr, r->family);
		e_u8_match(kr, NFT_META_L4PROTO, r->family == 6 ? 58 : 1);
		e_payload(kr, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		e_cmp(kr, NFT_CMP_EQ, &r->icmp_type, 1);
		break;
	case IR_R_LOOKUP:
	case IR_R_VMAP:
	case IR_R_PORT_VMAP:
		if (!r->set) {
			*err = "lookup without a set";
			return false;
		}
		lower_match(kr, rs, r, set_id, r->kind != IR_R_LOOKUP);
		return true;    /* VMAP: the map gives the verdict */
	case IR_R_LOG:
		lower_match(kr, rs, r, set_id, false);
		e_limit_log(kr, r);
		return true;
	case IR_R_COUNTER:
		lower_match(kr, rs, r, set_id, false);
		e_objref(kr, r->target);
		break;
	case IR_R_PROTO:
		lower_proto(kr, rs, r, set_id);
		break;
	default:
		*err = "unknown rule kind";
		return false;
	}
	return true;
}

static bool lower_verdict(struct nftnl_rule *kr, const struct ir_rule *r, const char **err)
{
	if (r->kind == IR_R_VMAP || r->kind == IR_R_PORT_VMAP || r->kind == IR_R_LOG)
		return true;
	if (r->kind == IR_R_JUMP) {
		if (!r->target) {
			*err = "jump without a target";
			return false;
		}
		e_verdict(kr, IR_JUMP, r->target);
		return true;
	}
	if (r->verdict != IR_ACCEPT && r->verdict != IR_DROP) {
		*err = "rule without a verdict";
		return false;
	}
	e_verdict(kr, r->verdict, NULL);
	return true;
}

struct nftnl_rule *nft_lower_rule(const struct ir_ruleset *rs, const struct ir_chain *c,
				  const struct ir_rule *r,
				  uint32_t (*set_id)(const struct ir_ruleset *, const char *),
				  const char **err)
{
	struct nftnl_rule *kr = nftnl_rule_alloc();
	uint32_t sid = r->set && set_id ? set_id(rs, r->set) : 0;
	struct nftnl_udata_buf *ud;

	as_dumped = !set_id;
	nftnl_rule_set_u32(kr, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(kr, NFTNL_RULE_TABLE, rs->table);
	nftnl_rule_set_str(kr, NFTNL_RULE_CHAIN, c->name);
	if (!lower_body(kr, rs, r, sid, err) || !lower_verdict(kr, r, err)) {
		nftnl_rule_free(kr);
		return NULL;
	}
	ud = comment_udata(NFTNL_UDATA_RULE_COMMENT, r->comment);
	if (ud) {
		SET_UDATA(kr, nftnl_rule_set_data, NFTNL_RULE_USERDATA, ud);
		nftnl_udata_buf_free(ud);
	}
	return kr;
}

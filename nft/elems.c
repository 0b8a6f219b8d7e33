/* elems.c - element dumps -> packed per-set arrays (struct kelems), parsed
 * with libmnl; readback.c's dump callbacks, live and recorded, feed it
 * each NFT_MSG_NEWSETELEM message and convert the arrays to IR.
 *
 * Elements are read straight from the netlink attributes into one packed
 * array per set: a libnftnl object per element (calloc, copies, free)
 * was most of the read-back's time and memory on large sets (issue 6).
 * Every attribute is checked for type and length here, since
 * nft_decode_dump() is fed arbitrary bytes.  Two outcomes besides
 * success: malformed netlink (a truncated, duplicated or wrongly sized
 * attribute) fails the message; a well-formed element fedwall never
 * writes marks its set foreign. */
#include "nft/kernel-int.h"

#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdlib.h>
#include <string.h>

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

/* The id of `s`, or KELEMS_NO_CHAIN when no element named it. */
uint32_t names_find(const struct names *nm, const char *s)
{
	size_t i;

	if (!nm->nslot)
		return KELEMS_NO_CHAIN;
	i = names_slot(nm, s);
	return nm->slot[i] ? nm->slot[i] - 1 : KELEMS_NO_CHAIN;
}

void names_free(struct names *nm)
{
	for (size_t i = 0; i < nm->v.n; i++)
		free(nm->v.v[i]);
	free(nm->v.v);
	free(nm->slot);
	memset(nm, 0, sizeof(*nm));
}

void kelems_init(struct kelems *k, const struct nftnl_set *ks)
{
	uint32_t flags = nftnl_set_get_u32(ks, NFTNL_SET_FLAGS);

	memset(k, 0, sizeof(*k));
	k->klen = nftnl_set_get_u32(ks, NFTNL_SET_KEY_LEN);
	k->concat = flags & NFT_SET_CONCAT;
	k->map = flags & NFT_SET_MAP;
	k->bad = !k->klen || k->klen > KELEMS_KEY_MAX;  /* conv_set refuses it */
	if (!k->bad)
		k->stride = kelems_flags_at(k) + 1 + (k->map ? sizeof(uint32_t) : 0);
}

void kelems_free(struct kelems *k)
{
	free(k->rec);
	k->rec = NULL;
	k->n = k->cap = 0;
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
	uint32_t id = KELEMS_NO_CHAIN;
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
	r = kelems_rec_at(k, k->n++);
	memcpy(r, mnl_attr_get_payload(pe->key), k->klen);
	if (k->concat)
		memcpy(r + k->klen, mnl_attr_get_payload(pe->key_end), k->klen);
	r[kelems_flags_at(k)] = pe->flags & NFT_SET_ELEM_INTERVAL_END;
	if (pe->chain)
		id = names_intern(nm, pe->chain);
	if (k->map)
		memcpy(r + kelems_flags_at(k) + 1, &id, sizeof(id));
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
bool kelems_parse_msg(const struct nlmsghdr *nlh, struct kelems *k, struct names *nm)
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

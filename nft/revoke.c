/* revoke.c - cutting what a commit no longer admits.
 *
 * The ruleset accepts `ct state established` first, so a connection a
 * partner map admitted lives on after its element is gone: federation TLS
 * sessions last for days.  After a commit, the conntrack entries such an
 * element admitted are deleted over ctnetlink (NETLINK_NETFILTER,
 * subsystem CTNETLINK: one GET dump, one DELETE per entry), with libmnl,
 * in the caller's network namespace.
 *
 * An entry is cut when it matches an element that left a revoking set
 * (ir_set.revoke: the partner maps) -- its original-direction source
 * (inbound maps) or destination (outbound maps) address inside the
 * element's prefix, its protocol and original destination port inside
 * the element's port range -- and nothing the new ruleset admits on the
 * same field (any set a vmap or lookup-accept rule looks up) still
 * matches it, nor a management set of the old one.  So an address that
 * moves between partners, a prefix that shrinks to a part of itself, a
 * port range that narrows, and the operator's SSH session are left
 * alone.  Entries are matched on the original tuple, as the rules saw the
 * first packet (no NAT on the edge; DNAT in front of it would hide the
 * port the rules matched).
 *
 * Nothing is dumped unless some element left.  Failures are warnings: the
 * rules are committed already and refuse new connections either way.
 */
#include "nft/kernel-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CT_RECV_SIZE (64 * 1024)

/* ---- prefix . proto . port lookups ------------------------------------- */

/* One element to match, with what it counts hits for (NULL: a keeper). */
struct pent {
	struct prefix p;
	struct portrange port;
	const struct ir_set *set;
	const struct ir_elem *e;
	size_t *hits;
};

/* Elements of one family and field, sorted by (length, address), so that
 * a lookup is one binary search per prefix length in use. */
struct pindex {
	VEC(struct pent) v;
	bool len_used[129];
	bool sorted;
};

static int pent_cmp(const void *x, const void *y)
{
	const struct pent *a = x, *b = y;

	if (a->p.len != b->p.len)
		return a->p.len < b->p.len ? -1 : 1;
	return memcmp(a->p.a, b->p.a, sizeof(a->p.a));
}

static void pindex_add(struct pindex *ix, const struct pent *pe)
{
	VEC_PUSH(&ix->v, *pe);
	ix->len_used[pe->p.len] = true;
	ix->sorted = false;
}

static const struct pent *pindex_find(struct pindex *ix, const uint8_t *addr, uint8_t family,
				      uint8_t proto, uint16_t port)
{
	unsigned max = family == 6 ? 128 : 32;

	if (!ix->sorted && ix->v.n)
		qsort(ix->v.v, ix->v.n, sizeof(*ix->v.v), pent_cmp);
	ix->sorted = true;
	for (unsigned len = 0; len <= max; len++) {
		struct pent key = { .p = { family, (uint8_t)len, { 0 } } };
		size_t lo = 0, hi = ix->v.n;

		if (!ix->len_used[len])
			continue;
		memcpy(key.p.a, addr, family == 6 ? 16 : 4);
		prefix_mask(&key.p);
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (pent_cmp(&ix->v.v[mid], &key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < ix->v.n && !pent_cmp(&ix->v.v[lo], &key); lo++) {
			const struct pent *pe = &ix->v.v[lo];

			if (pe->port.proto == proto && port >= pe->port.lo && port <= pe->port.hi)
				return pe;
		}
	}
	return NULL;
}

/* [family 4/6][field SADDR/DADDR] */
struct pindexes {
	struct pindex ix[2][2];
};

static struct pindex *pick(struct pindexes *px, uint8_t family, enum ir_field f)
{
	return &px->ix[family == 6][f == IR_DADDR];
}

static void pindexes_free(struct pindexes *px)
{
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			free(px->ix[i][j].v.v);
}

static uint8_t key_family(const struct ir_set *s)
{
	return nft_keyinfo(s->key)->addr_len == 16 ? 6 : 4;
}

static bool addr_port_key(const struct ir_set *s)
{
	const struct nft_keyinfo *ki = nft_keyinfo(s->key);

	return ki->addr_len && ki->proto_port;
}

static void index_set(struct pindexes *px, const struct ir_set *s, enum ir_field f)
{
	struct pindex *ix = pick(px, key_family(s), f);

	for (size_t i = 0; i < s->nelems; i++)
		pindex_add(ix, &(struct pent){ .p = s->elems[i].addr,
					       .port = s->elems[i].port });
}

/* Every set `rs` admits new connections by, on the field its rule
 * matches; with `mgmt_only`, only the plain (lookup-accept) ones. */
static void index_admitting(struct pindexes *px, const struct ir_ruleset *rs, bool mgmt_only)
{
	for (size_t i = 0; rs && i < rs->nchains; i++) {
		const struct ir_chain *c = &rs->chains[i];

		for (size_t j = 0; j < c->nrules; j++) {
			const struct ir_rule *r = &c->rules[j];
			const struct ir_set *s = r->set ? ir_find_set(rs, r->set) : NULL;
			bool lookup = r->kind == IR_R_LOOKUP && r->verdict == IR_ACCEPT;

			if (s && addr_port_key(s) && (lookup || (!mgmt_only && r->kind == IR_R_VMAP)))
				index_set(px, s, r->field);
		}
	}
}

/* ---- what left ------------------------------------------------------------ */

static int elem_pcmp(const void *x, const void *y)
{
	return ir_elem_cmp(*(const struct ir_elem *const *)x, *(const struct ir_elem *const *)y);
}

/* The elements of `s` in ir_elem_cmp order (borrowed pointers). */
static const struct ir_elem **sorted(const struct ir_set *s)
{
	const struct ir_elem **v = xcalloc(s->nelems + 1, sizeof(*v));
	bool in_order = true;

	for (size_t i = 0; i < s->nelems; i++) {
		v[i] = &s->elems[i];
		in_order &= !i || ir_elem_cmp(v[i - 1], v[i]) < 0;
	}
	if (!in_order)
		qsort(v, s->nelems, sizeof(*v), elem_pcmp);
	return v;
}

/* Indexes the elements of live revoking set `ls` that `ws` (may be NULL)
 * has not: one merge walk.  Returns how many. */
static size_t index_removed(struct pindexes *px, const struct ir_set *ls, const struct ir_set *ws,
			    size_t *hits)
{
	const struct ir_elem **l = sorted(ls), **w = ws ? sorted(ws) : NULL;
	size_t nw = ws ? ws->nelems : 0, i = 0, j = 0, n = 0;
	struct pindex *ix = pick(px, key_family(ls), ls->revoke_field);

	while (i < ls->nelems) {
		int c = j < nw ? ir_elem_cmp(l[i], w[j]) : -1;

		if (c > 0) {
			j++;
			continue;
		}
		if (c < 0) {
			pindex_add(ix, &(struct pent){ .p = l[i]->addr, .port = l[i]->port,
						       .set = ls, .e = l[i],
						       .hits = &hits[l[i] - ls->elems] });
			n++;
		} else {
			j++;
		}
		i++;
	}
	free(l);
	free(w);
	return n;
}

/* ---- ctnetlink -------------------------------------------------------------- */

struct ct {
	uint8_t family, proto;
	uint8_t src[16], dst[16];
	uint16_t dport;
	struct nlattr *tuple;           /* copy of CTA_TUPLE_ORIG (owned) */
	uint32_t id;                    /* CTA_ID, network order */
	uint16_t zone;                  /* CTA_ZONE, network order */
	bool has_id, has_zone;
	size_t *hits;
};

struct dump {
	struct pindexes *removed;
	VEC(struct ct) cut;
};

static bool parse_ip(const struct nlattr *nest, struct ct *c)
{
	const struct nlattr *a;
	bool src = false, dst = false;

	mnl_attr_for_each_nested(a, nest) {
		uint16_t t = mnl_attr_get_type(a);
		size_t len = mnl_attr_get_payload_len(a);

		if ((t == CTA_IP_V4_SRC || t == CTA_IP_V4_DST) && len == 4)
			c->family = 4;
		else if ((t == CTA_IP_V6_SRC || t == CTA_IP_V6_DST) && len == 16)
			c->family = 6;
		else
			continue;
		if (t == CTA_IP_V4_SRC || t == CTA_IP_V6_SRC) {
			memcpy(c->src, mnl_attr_get_payload(a), len);
			src = true;
		} else {
			memcpy(c->dst, mnl_attr_get_payload(a), len);
			dst = true;
		}
	}
	return src && dst;
}

static bool parse_proto(const struct nlattr *nest, struct ct *c)
{
	const struct nlattr *a;
	bool num = false, port = false;

	mnl_attr_for_each_nested(a, nest) {
		uint16_t t = mnl_attr_get_type(a);

		if (t == CTA_PROTO_NUM && mnl_attr_get_payload_len(a) >= 1) {
			c->proto = mnl_attr_get_u8(a);
			num = true;
		} else if (t == CTA_PROTO_DST_PORT && mnl_attr_get_payload_len(a) >= 2) {
			c->dport = ntohs(mnl_attr_get_u16(a));
			port = true;
		}
	}
	return num && port;
}

static bool parse_tuple(const struct nlattr *nest, struct ct *c)
{
	const struct nlattr *a;
	bool ip = false, proto = false;

	mnl_attr_for_each_nested(a, nest) {
		if (mnl_attr_get_type(a) == CTA_TUPLE_IP)
			ip = parse_ip(a, c);
		else if (mnl_attr_get_type(a) == CTA_TUPLE_PROTO)
			proto = parse_proto(a, c);
	}
	return ip && proto;
}

/* One dumped entry: kept aside when it matches an element that left. */
static int ct_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump *dp = data;
	const struct nlattr *a, *orig = NULL;
	const struct pent *pe;
	struct ct c = { 0 };

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		switch (mnl_attr_get_type(a)) {
		case CTA_TUPLE_ORIG:
			orig = a;
			break;
		case CTA_ID:
			c.id = mnl_attr_get_u32(a);
			c.has_id = true;
			break;
		case CTA_ZONE:
			c.zone = mnl_attr_get_u16(a);
			c.has_zone = true;
			break;
		}
	}
	if (!orig || !parse_tuple(orig, &c))
		return MNL_CB_OK;       /* ICMP and other portless entries */
	pe = pindex_find(pick(dp->removed, c.family, IR_SADDR), c.src, c.family, c.proto,
			 c.dport);
	if (!pe)
		pe = pindex_find(pick(dp->removed, c.family, IR_DADDR), c.dst, c.family,
				 c.proto, c.dport);
	if (!pe)
		return MNL_CB_OK;
	c.hits = pe->hits;
	c.tuple = xmalloc(orig->nla_len);
	memcpy(c.tuple, orig, orig->nla_len);
	VEC_PUSH(&dp->cut, c);
	return MNL_CB_OK;
}

static struct nlmsghdr *ct_msg(char *buf, uint16_t type, uint16_t flags, uint8_t family,
			       uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	return nlh;
}

static int ct_dump(struct mnl_socket *nl, uint32_t *seq, struct dump *dp)
{
	char req[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg))];
	struct nlmsghdr *nlh = ct_msg(req, IPCTNL_MSG_CT_GET, NLM_F_DUMP, AF_UNSPEC, ++*seq);

	return nl_talk(nl, nlh, CT_RECV_SIZE, ct_cb, dp);
}

static int ct_ack_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return MNL_CB_OK;
}

/* Deletes one entry; -ENOENT when it went by itself meanwhile.  CTA_ID
 * makes sure a new connection that reused the tuple is not the one cut. */
static int ct_delete(struct mnl_socket *nl, uint32_t *seq, const struct ct *c)
{
	char buf[1024];
	struct nlmsghdr *nlh = ct_msg(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK,
				      c->family == 6 ? AF_INET6 : AF_INET, ++*seq);
	uint32_t portid = mnl_socket_get_portid(nl);
	ssize_t n;
	int ret;

	if (c->tuple->nla_len > sizeof(buf) - 256)
		return -EINVAL;
	memcpy((char *)nlh + nlh->nlmsg_len, c->tuple, c->tuple->nla_len);
	nlh->nlmsg_len += MNL_ALIGN(c->tuple->nla_len);
	if (c->has_zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, c->zone);
	if (c->has_id)
		mnl_attr_put_u32(nlh, CTA_ID, c->id);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	ret = mnl_cb_run(buf, (size_t)n, *seq, portid, ct_ack_cb, NULL);
	return ret < 0 ? -errno : 0;
}

/* ---- the whole step ------------------------------------------------------------ */

static void report_hits(const struct ir_ruleset *live, size_t **hits, struct diag *d)
{
	for (size_t i = 0; i < live->nsets; i++) {
		const struct ir_set *s = &live->sets[i];

		for (size_t k = 0; hits[i] && k < s->nelems; k++) {
			const struct ir_elem *e = &s->elems[k];
			char a[PREFIX_STRLEN], p[PORTRANGE_STRLEN];

			if (!hits[i][k])
				continue;
			diag_note(d, NULL, "revoked %zu connection%s of %s (%s) in map '%s'%s%s",
				  hits[i][k], hits[i][k] == 1 ? "" : "s",
				  prefix_fmt(&e->addr, a, sizeof(a)),
				  portrange_fmt(&e->port, p, sizeof(p)), s->name,
				  e->chain < live->nchains ? ", was jump " : "",
				  e->chain < live->nchains ? live->chains[e->chain].name : "");
		}
	}
}

/* Deletes the entries of `dp->cut` that nothing in `want` (nor a
 * management set of `live`) admits; returns how many went. */
static size_t cut(struct mnl_socket *nl, uint32_t *seq, struct dump *dp,
		  const struct ir_ruleset *live, const struct ir_ruleset *want, int *err)
{
	struct pindexes keep = { 0 };
	size_t n = 0;

	index_admitting(&keep, want, false);
	index_admitting(&keep, live, true);
	for (size_t i = 0; i < dp->cut.n; i++) {
		const struct ct *c = &dp->cut.v[i];
		int ret;

		if (pindex_find(pick(&keep, c->family, IR_SADDR), c->src, c->family, c->proto,
				c->dport) ||
		    pindex_find(pick(&keep, c->family, IR_DADDR), c->dst, c->family, c->proto,
				c->dport))
			continue;
		ret = ct_delete(nl, seq, c);
		if (!ret) {
			(*c->hits)++;
			n++;
		} else if (ret != -ENOENT && !*err) {
			*err = ret;
		}
	}
	pindexes_free(&keep);
	return n;
}

static int revoke_ct(struct pindexes *removed, const struct ir_ruleset *live,
		     const struct ir_ruleset *want, size_t *n)
{
	struct dump dp = { .removed = removed };
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	uint32_t seq = (uint32_t)time(NULL);
	int ret = 0;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out_close;
	}
	ret = ct_dump(nl, &seq, &dp);
	if (!ret)
		*n = cut(nl, &seq, &dp, live, want, &ret);
	for (size_t i = 0; i < dp.cut.n; i++)
		free(dp.cut.v[i].tuple);
	free(dp.cut.v);
out_close:
	mnl_socket_close(nl);
	return ret;
}

size_t nft_revoke(const struct ir_ruleset *live, const struct ir_ruleset *want, struct diag *d)
{
	size_t **hits = xcalloc(live->nsets + 1, sizeof(*hits)), nremoved = 0, n = 0;
	struct pindexes removed = { 0 };
	int ret = 0;

	for (size_t i = 0; i < live->nsets; i++) {
		const struct ir_set *ls = &live->sets[i];
		const struct ir_set *ws = ir_find_set(want, ls->name);

		if (!ls->revoke || !addr_port_key(ls) || !ls->nelems)
			continue;
		if (ws && ws->key != ls->key)
			ws = NULL;
		hits[i] = xcalloc(ls->nelems, sizeof(**hits));
		nremoved += index_removed(&removed, ls, ws, hits[i]);
	}
	if (nremoved)
		ret = revoke_ct(&removed, live, want, &n);
	/* No conntrack here at all (module absent): nothing to cut. */
	if (ret && ret != -EOPNOTSUPP && ret != -EPROTONOSUPPORT && ret != -ENOENT)
		diag_warn(d, NULL, "the rules are committed, but cutting the established"
			  " connections of removed addresses failed: conntrack: %s",
			  strerror(-ret));
	report_hits(live, hits, d);
	for (size_t i = 0; i < live->nsets; i++)
		free(hits[i]);
	free(hits);
	pindexes_free(&removed);
	return n;
}

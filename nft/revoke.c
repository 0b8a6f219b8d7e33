/* revoke.c - cutting what a commit no longer admits.
 *
 * The ruleset accepts `ct state established` first, so a connection a
 * partner map admitted lives on after its element is gone: federation TLS
 * sessions last for days.  After a commit, the conntrack entries such an
 * element admitted are deleted over ctnetlink (NETLINK_NETFILTER,
 * subsystem CTNETLINK: one GET dump, one DELETE per entry), with libmnl,
 * in the caller's network namespace.
 *
 * An entry is cut when the old ruleset admitted it through a partner map
 * (ir_admits: the port dispatch map sends its protocol and original
 * destination port to a port class whose address map holds its
 * original-direction source, inbound, or destination, outbound) and the
 * new ruleset does not, nor a management set of either.  So an address
 * that moves between partners, a prefix that shrinks to a part of
 * itself, a port range that narrows, and the operator's SSH session are
 * left alone.  Entries are matched on the original tuple, as the rules
 * saw the first packet (no NAT on the edge; DNAT in front of it would
 * hide the port the rules matched).
 *
 * Nothing is dumped unless some element left a map.  Failures are warnings: the
 * rules are committed already and refuse new connections either way.
 *
 * The sweep: when a commit creates or replaces the table (the first
 * apply, a policy change), or changes a set that is no partner map
 * (management, fedports, outbound allowances, edge addresses), every TCP
 * and UDP entry in the table's scope is judged by what the new ruleset
 * does with its first packet (ir_admits_conn: the hook's base chains,
 * walked as the kernel would), and cut when that is a drop.  The hook is
 * found from this host's addresses (rtnetlink, one dump): original
 * destination local, input; original source local, output; neither,
 * forward; both, or a loopback address, left alone.  Where the verdict
 * depends on the interface (host mode with `interfaces`), the interface
 * is the route's towards the peer (one RTM_GETROUTE, only for entries
 * about to be cut).  Entries with NAT are left alone (the rules saw
 * other addresses, maybe another hook), and so are the sessions the old
 * management sets admitted: fedwall never cuts its operator.
 */
#include "nft/kernel-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CT_RECV_SIZE (64 * 1024)
#define RT_RECV_SIZE (8 * 1024)
#define SWEEP_NOTES 20          /* address pairs named, then one summary */
#define NO_HIT SIZE_MAX
#define DEL_BATCH 64            /* conntrack deletes a sendto */
#define DEL_MSG_MAX 512         /* bytes of one delete message, at most */

/* ---- prefix . proto . port lookups ------------------------------------- */

/* One management element to match. */
struct pent {
	struct prefix p;
	struct portrange port;
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

/* The management sets of `rs`: what lookup-accept rules admit (on the
 * source address alone with `saddr_only`: no outbound allowances). */
static void index_mgmt(struct pindexes *px, const struct ir_ruleset *rs, bool saddr_only)
{
	for (size_t i = 0; rs && i < rs->nchains; i++) {
		const struct ir_chain *c = &rs->chains[i];

		for (size_t j = 0; j < c->nrules; j++) {
			const struct ir_rule *r = &c->rules[j];
			const struct ir_set *s = r->set ? ir_find_set(rs, r->set) : NULL;

			if (s && addr_port_key(s) && r->kind == IR_R_LOOKUP &&
			    r->verdict == IR_ACCEPT && (!saddr_only || r->field == IR_SADDR))
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

/* Whether live map `ls` has a key that `ws` (may be NULL) has not: one
 * merge walk. */
static bool lost_elems(const struct ir_set *ls, const struct ir_set *ws)
{
	const struct ir_elem **l = sorted(ls), **w = ws ? sorted(ws) : NULL;
	size_t nw = ws ? ws->nelems : 0, i = 0, j = 0;
	bool lost = false;

	while (i < ls->nelems && !lost) {
		int c = j < nw ? ir_elem_cmp(l[i], w[j]) : -1;

		lost = c < 0;
		if (c >= 0)
			j++;
		if (c <= 0)
			i++;
	}
	free(l);
	free(w);
	return lost;
}

/* Whether a set that is no partner map (management, fedports, outbound
 * allowances, edge addresses, port dispatch) gained or lost elements:
 * what the ruleset admits changed beyond what revocation looks at. */
static bool others_changed(const struct ir_ruleset *live, const struct ir_ruleset *want)
{
	for (size_t i = 0; i < want->nsets; i++) {
		const struct ir_set *ws = &want->sets[i];
		const struct ir_set *ls = ir_find_set(live, ws->name);

		if (ws->revoke)
			continue;
		if (!ls || ls->key != ws->key || lost_elems(ls, ws) || lost_elems(ws, ls))
			return true;
	}
	for (size_t i = 0; i < live->nsets; i++)
		if (!live->sets[i].revoke && !ir_find_set(want, live->sets[i].name))
			return true;
	return false;
}

/* ---- this host's addresses and routes (rtnetlink) --------------------------- */

struct haddr {
	uint8_t family;
	uint8_t a[16];
};

static int haddr_cmp(const void *x, const void *y)
{
	const struct haddr *a = x, *b = y;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->a, b->a, sizeof(a->a));
}

typedef VEC(struct haddr) haddr_vec;

/* One RTM_NEWADDR: its local address (IFA_LOCAL; IFA_ADDRESS is the peer
 * on point-to-point links, and the address itself on IPv6). */
static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const void *local = NULL, *addr = NULL;
	struct haddr h = { 0 };
	const struct nlattr *a;

	if (nlh->nlmsg_type != RTM_NEWADDR ||
	    (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
		return MNL_CB_OK;
	h.family = ifa->ifa_family == AF_INET6 ? 6 : 4;
	mnl_attr_for_each(a, nlh, sizeof(*ifa)) {
		if (mnl_attr_get_payload_len(a) != (h.family == 6 ? 16u : 4u))
			continue;
		if (mnl_attr_get_type(a) == IFA_LOCAL)
			local = mnl_attr_get_payload(a);
		else if (mnl_attr_get_type(a) == IFA_ADDRESS)
			addr = mnl_attr_get_payload(a);
	}
	if (local || addr) {
		memcpy(h.a, local ? local : addr, h.family == 6 ? 16 : 4);
		VEC_PUSH((haddr_vec *)data, h);
	}
	return MNL_CB_OK;
}

static int host_addrs(struct mnl_socket *rt, uint32_t *seq, haddr_vec *out)
{
	char req[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct ifaddrmsg))];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct ifaddrmsg *ifa;
	int ret;

	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++*seq;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_UNSPEC;
	ret = nl_talk(rt, nlh, CT_RECV_SIZE, addr_cb, out);
	if (!ret && out->n)
		qsort(out->v, out->n, sizeof(*out->v), haddr_cmp);
	return ret;
}

static bool is_local(const haddr_vec *h, uint8_t family, const uint8_t *a)
{
	struct haddr key = { .family = family };

	memcpy(key.a, a, family == 6 ? 16 : 4);
	return h->n && bsearch(&key, h->v, h->n, sizeof(*h->v), haddr_cmp);
}

static bool loopback(uint8_t family, const uint8_t *a)
{
	static const uint8_t v6lo[16] = { [15] = 1 };

	return family == 6 ? !memcmp(a, v6lo, 16) : a[0] == 127;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a;

	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(struct rtmsg))
		if (mnl_attr_get_type(a) == RTA_OIF && mnl_attr_get_payload_len(a) == 4)
			*(uint32_t *)data = mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

/* The name of the interface the route to `addr` leaves by (the kernel's
 * own lookup, policy routing included): what output's oifname sees, and
 * for input, with symmetric routing, what the peer's packets came in by.
 * 0 or -errno (-ENODEV: no route with an interface). */
static int route_ifname(struct mnl_socket *rt, uint32_t *seq, uint8_t family,
			const uint8_t *addr, char name[IF_NAMESIZE])
{
	char req[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct rtmsg)) + MNL_ATTR_HDRLEN + 16];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct rtmsg *rtm;
	uint32_t oif = 0;
	int ret;

	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++*seq;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = family == 6 ? AF_INET6 : AF_INET;
	rtm->rtm_dst_len = family == 6 ? 128 : 32;
	mnl_attr_put(nlh, RTA_DST, family == 6 ? 16 : 4, addr);
	ret = nl_talk(rt, nlh, RT_RECV_SIZE, route_cb, &oif);
	if (ret)
		return ret;
	return oif && if_indextoname(oif, name) ? 0 : -ENODEV;
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
	bool nat;                       /* CTA_STATUS: source or destination NAT */
	bool ask_route;                 /* sweep: the verdict depends on the interface */
	enum ir_hook hook;              /* sweep: the hook its first packet went through */
	size_t hit;                     /* index into dump.hits, or NO_HIT */
};

/* Cuts counted by the element that admitted them and the port used. */
struct hit {
	const struct ir_set *set;       /* of the live ruleset */
	const struct ir_elem *e;
	uint8_t proto;
	uint16_t port;
	size_t n;
};

struct dump {
	const struct ir_ruleset *live, *want;   /* live may be NULL (sweep) */
	struct ir_gates live_gates, want_gates;
	VEC(struct hit) hits;
	VEC(struct ct) cut;
	/* the sweep */
	bool sweep;
	struct ir_eval want_eval;
	haddr_vec local;                /* this host's addresses, sorted */
	struct pindexes keep;           /* the old management sets */
	VEC(struct ct) swept;           /* cut, no partner element to name */
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

static size_t hit_index(struct dump *dp, const struct ir_set *s, const struct ir_elem *e,
			const struct ct *c)
{
	for (size_t i = 0; i < dp->hits.n; i++) {
		const struct hit *h = &dp->hits.v[i];

		if (h->set == s && h->e == e && h->proto == c->proto && h->port == c->dport)
			return i;
	}
	VEC_PUSH(&dp->hits, ((struct hit){ s, e, c->proto, c->dport, 0 }));
	return dp->hits.n - 1;
}

/* Whether the old ruleset admitted `c` by its address `a` on field `f`
 * and the new one does not; notes which element admitted it. */
static bool revoked(struct dump *dp, struct ct *c, enum ir_field f, const uint8_t *a)
{
	const struct ir_set *s;
	const struct ir_elem *e;

	if (!ir_admits_via(dp->live, &dp->live_gates, f, c->family, a, c->proto, c->dport,
			   &s, &e) ||
	    ir_admits_via(dp->want, &dp->want_gates, f, c->family, a, c->proto, c->dport,
			  NULL, NULL))
		return false;
	c->hit = hit_index(dp, s, e, c);
	return true;
}

/* Which hook the first packet of `c` went through, by this host's
 * addresses; false when no filter of fedwall's could have seen it
 * (loopback, between two local addresses). */
static bool sweep_hook(const struct dump *dp, struct ct *c)
{
	bool sl, dl;

	if (loopback(c->family, c->src) || loopback(c->family, c->dst))
		return false;
	sl = is_local(&dp->local, c->family, c->src);
	dl = is_local(&dp->local, c->family, c->dst);
	if (sl && dl)
		return false;
	c->hook = dl ? IR_HOOK_INPUT : sl ? IR_HOOK_OUTPUT : IR_HOOK_FORWARD;
	return true;
}

static struct ir_conn conn_of(const struct ct *c, const char *ifname)
{
	return (struct ir_conn){ .hook = c->hook, .ifname = ifname, .family = c->family,
				 .proto = c->proto, .saddr = c->src, .daddr = c->dst,
				 .dport = c->dport };
}

/* The old partner element that admitted `c`, if any, to name in the
 * note ("revoked ..."); else NO_HIT. */
static size_t old_partner(struct dump *dp, const struct ct *c)
{
	const struct ir_set *s;
	const struct ir_elem *e;

	if (dp->live &&
	    (ir_admits_via(dp->live, &dp->live_gates, IR_SADDR, c->family, c->src, c->proto,
			   c->dport, &s, &e) ||
	     ir_admits_via(dp->live, &dp->live_gates, IR_DADDR, c->family, c->dst, c->proto,
			   c->dport, &s, &e)))
		return hit_index(dp, s, e, c);
	return NO_HIT;
}

/* Whether the new ruleset refuses `c` as a new connection, on an edge
 * interface at least (ask_route: maybe not on the one it uses), and the
 * old management sets did not admit it. */
static bool swept(struct dump *dp, struct ct *c)
{
	struct ir_conn ic;

	if ((c->proto != PROTO_TCP && c->proto != PROTO_UDP) || c->nat || !sweep_hook(dp, c))
		return false;
	ic = conn_of(c, NULL);
	if (ir_admits_conn(&dp->want_eval, &ic) ||
	    pindex_find(pick(&dp->keep, c->family, IR_SADDR), c->src, c->family, c->proto,
			c->dport))
		return false;
	ic.ifname = "";         /* an interface no rule names */
	c->ask_route = ir_admits_conn(&dp->want_eval, &ic);
	c->hit = old_partner(dp, c);
	return true;
}

/* One dumped entry: kept aside when the commit took away what admitted it. */
static int ct_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump *dp = data;
	const struct nlattr *a, *orig = NULL;
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
		case CTA_STATUS:
			c.nat = ntohl(mnl_attr_get_u32(a)) & IPS_NAT_MASK;
			break;
		}
	}
	if (!orig || !parse_tuple(orig, &c))
		return MNL_CB_OK;       /* ICMP and other portless entries */
	if (dp->sweep ? !swept(dp, &c)
		      : !revoked(dp, &c, IR_SADDR, c.src) && !revoked(dp, &c, IR_DADDR, c.dst))
		return MNL_CB_OK;
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

/* One delete message for `c` at `at` (room: DEL_MSG_MAX); its length, 0
 * when the tuple does not fit.  CTA_ID makes sure a new connection that
 * reused the tuple is not the one cut. */
static size_t ct_put_delete(char *at, uint32_t seq, const struct ct *c)
{
	struct nlmsghdr *nlh = ct_msg(at, IPCTNL_MSG_CT_DELETE, NLM_F_ACK,
				      c->family == 6 ? AF_INET6 : AF_INET, seq);

	if (c->tuple->nla_len > DEL_MSG_MAX - 128)
		return 0;
	memcpy((char *)nlh + nlh->nlmsg_len, c->tuple, c->tuple->nla_len);
	nlh->nlmsg_len += MNL_ALIGN(c->tuple->nla_len);
	if (c->has_zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, c->zone);
	if (c->has_id)
		mnl_attr_put_u32(nlh, CTA_ID, c->id);
	return nlh->nlmsg_len;
}

/* Deletes sent in one sendto, their ACKs read after (a first apply may
 * cut a hundred thousand entries: one round trip each took 45 us). */
struct delq {
	struct mnl_socket *nl;
	uint32_t seq;                   /* its own: route lookups come between */
	struct dump *dp;
	char buf[DEL_BATCH * DEL_MSG_MAX];
	size_t len, n;
	uint32_t seq0;                  /* sequence number of v[0] */
	const struct ct *v[DEL_BATCH];
	bool acked[DEL_BATCH];
	size_t cut;                     /* entries deleted */
	int err;                        /* first error but -ENOENT (went by itself) */
};

/* The kernel's answer to delete v[i]: counted with its element, or among
 * the swept. */
static void delq_done(struct delq *q, size_t i, int error)
{
	const struct ct *c = q->v[i];

	q->acked[i] = true;
	if (error) {
		if (error != -ENOENT && !q->err)
			q->err = error;
		return;
	}
	q->cut++;
	if (c->hit != NO_HIT)
		q->dp->hits.v[c->hit].n++;
	else
		VEC_PUSH(&q->dp->swept, *c);
}

/* Reads ACKs until every message of the batch has one.  False on a
 * receive error (q->err set). */
static bool delq_acks(struct delq *q, char *buf, size_t size)
{
	uint32_t portid = mnl_socket_get_portid(q->nl);
	size_t got = 0;

	while (got < q->n) {
		ssize_t len = mnl_socket_recvfrom(q->nl, buf, size);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int left = (int)len;

		if (len < 0) {
			q->err = q->err ? q->err : -errno;
			return false;
		}
		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
			size_t i = nlh->nlmsg_seq - q->seq0;

			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_pid != portid ||
			    mnl_nlmsg_get_payload_len(nlh) < sizeof(*e) || i >= q->n ||
			    q->acked[i])
				continue;
			delq_done(q, i, e->error);
			got++;
		}
	}
	return true;
}

static void delq_flush(struct delq *q)
{
	char *buf;

	if (!q->n)
		return;
	if (mnl_socket_sendto(q->nl, q->buf, q->len) < 0) {
		q->err = q->err ? q->err : -errno;
	} else {
		buf = xmalloc(CT_RECV_SIZE);
		delq_acks(q, buf, CT_RECV_SIZE);
		free(buf);
	}
	q->n = q->len = 0;
}

static void delq_add(struct delq *q, const struct ct *c)
{
	size_t len;

	if (q->n == DEL_BATCH)
		delq_flush(q);
	len = ct_put_delete(q->buf + q->len, ++q->seq, c);
	if (!len) {
		q->err = q->err ? q->err : -EINVAL;
		return;
	}
	if (!q->n)
		q->seq0 = q->seq;
	q->acked[q->n] = false;
	q->v[q->n++] = c;
	q->len += MNL_ALIGN(len);
}

static struct delq *delq_new(struct mnl_socket *nl, uint32_t *seq, struct dump *dp)
{
	struct delq *q = xcalloc(1, sizeof(*q));

	q->nl = nl;
	q->seq = *seq + 0x10000;        /* clear of the dump's */
	q->dp = dp;
	return q;
}

/* Flushes and frees `q`; returns how many it deleted, the first error in
 * *err (unless one is there). */
static size_t delq_end(struct delq *q, int *err)
{
	size_t n;

	delq_flush(q);
	n = q->cut;
	if (q->err && !*err)
		*err = q->err;
	free(q);
	return n;
}

/* ---- the whole step ------------------------------------------------------------ */

static void report_hits(const struct dump *dp, struct diag *d)
{
	for (size_t i = 0; i < dp->hits.n; i++) {
		const struct hit *h = &dp->hits.v[i];
		uint32_t ch = h->e->chain;
		char a[PREFIX_STRLEN];

		if (!h->n)
			continue;
		diag_note(d, NULL, "revoked %zu connection%s of %s (%s/%u) in map '%s'%s%s",
			  h->n, h->n == 1 ? "" : "s", prefix_fmt(&h->e->addr, a, sizeof(a)),
			  proto_name(h->proto), h->port, h->set->name,
			  ch < dp->live->nchains ? ", was jump " : "",
			  ch < dp->live->nchains ? dp->live->chains[ch].name : "");
	}
}

/* Swept entries in the order their notes come: by address pair, then
 * protocol and port. */
static int swept_cmp(const void *x, const void *y)
{
	const struct ct *a = x, *b = y;
	int c;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if ((c = memcmp(a->src, b->src, sizeof(a->src))) ||
	    (c = memcmp(a->dst, b->dst, sizeof(a->dst))))
		return c;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	return a->dport < b->dport ? -1 : a->dport > b->dport;
}

static void note_swept(const struct ct *c, size_t n, struct diag *d)
{
	char s[INET6_ADDRSTRLEN], t[INET6_ADDRSTRLEN];
	int af = c->family == 6 ? AF_INET6 : AF_INET;

	diag_note(d, NULL, "cut %zu connection%s from %s to %s (%s/%u): the new ruleset does"
		  " not admit %s", n, n == 1 ? "" : "s", inet_ntop(af, c->src, s, sizeof(s)),
		  inet_ntop(af, c->dst, t, sizeof(t)), proto_name(c->proto), c->dport,
		  n == 1 ? "it" : "them");
}

/* One note per address pair and port, the first SWEEP_NOTES of them; a
 * busy edge's first apply may cut thousands. */
static void report_swept(struct dump *dp, struct diag *d)
{
	size_t groups = 0, more = 0, i = 0;

	if (dp->swept.n)
		qsort(dp->swept.v, dp->swept.n, sizeof(*dp->swept.v), swept_cmp);
	while (i < dp->swept.n) {
		size_t j = i + 1;

		while (j < dp->swept.n && !swept_cmp(&dp->swept.v[i], &dp->swept.v[j]))
			j++;
		if (groups++ < SWEEP_NOTES)
			note_swept(&dp->swept.v[i], j - i, d);
		else
			more += j - i;
		i = j;
	}
	if (more)
		diag_note(d, NULL, "cut %zu more connection%s (%zu more address pairs and ports)"
			  " that the new ruleset does not admit", more, more == 1 ? "" : "s",
			  groups - SWEEP_NOTES);
}

/* Deletes the entries of `dp->cut` that no management set admits; returns
 * how many went. */
static size_t cut(struct mnl_socket *nl, uint32_t *seq, struct dump *dp, int *err)
{
	struct delq *q = delq_new(nl, seq, dp);
	struct pindexes keep = { 0 };

	index_mgmt(&keep, dp->want, false);
	index_mgmt(&keep, dp->live, false);
	for (size_t i = 0; i < dp->cut.n; i++) {
		const struct ct *c = &dp->cut.v[i];

		if (pindex_find(pick(&keep, c->family, IR_SADDR), c->src, c->family, c->proto,
				c->dport) ||
		    pindex_find(pick(&keep, c->family, IR_DADDR), c->dst, c->family, c->proto,
				c->dport))
			continue;
		delq_add(q, c);
	}
	pindexes_free(&keep);
	return delq_end(q, err);
}

/* The address whose route tells the interface: output and forward, the
 * destination; input, the source (symmetric routing assumed). */
static const uint8_t *peer_of(const struct ct *c)
{
	return c->hook == IR_HOOK_INPUT ? c->src : c->dst;
}

static int peer_cmp(const void *x, const void *y)
{
	const struct ct *a = x, *b = y;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(peer_of(a), peer_of(b), 16);
}

/* The last route asked for: entries sorted by peer ask once a peer. */
struct route_memo {
	bool valid;
	uint8_t family;
	uint8_t peer[16];
	int ret;
	char name[IF_NAMESIZE];
};

/* Whether the new ruleset refuses `c` on the interface of the route to
 * its peer.  No route: as on an edge interface, refused. */
static bool refused_on_route(struct mnl_socket *rt, uint32_t *seq, const struct dump *dp,
			     const struct ct *c, struct route_memo *m)
{
	struct ir_conn ic;

	if (!m->valid || m->family != c->family || memcmp(m->peer, peer_of(c), 16)) {
		m->valid = true;
		m->family = c->family;
		memcpy(m->peer, peer_of(c), 16);
		m->ret = route_ifname(rt, seq, c->family, m->peer, m->name);
	}
	if (m->ret)
		return true;
	ic = conn_of(c, m->name);
	return !ir_admits_conn(&dp->want_eval, &ic);
}

/* Deletes the swept entries (those whose verdict depends on the
 * interface only when the route's is one the rules filter). */
static size_t sweep_cut(struct mnl_socket *nl, struct mnl_socket *rt, uint32_t *seq,
			struct dump *dp, int *err)
{
	struct delq *q = delq_new(nl, seq, dp);
	struct route_memo m = { 0 };

	if (dp->cut.n)
		qsort(dp->cut.v, dp->cut.n, sizeof(*dp->cut.v), peer_cmp);
	for (size_t i = 0; i < dp->cut.n; i++) {
		const struct ct *c = &dp->cut.v[i];

		if (!c->ask_route || refused_on_route(rt, seq, dp, c, &m))
			delq_add(q, c);
	}
	return delq_end(q, err);
}

static int open_bound(int bus, struct mnl_socket **out)
{
	struct mnl_socket *nl = mnl_socket_open(bus);

	*out = NULL;
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int ret = -errno;

		mnl_socket_close(nl);
		return ret;
	}
	*out = nl;
	return 0;
}

/* The sweep's dump and cuts; this host's addresses first (rtnetlink
 * trouble: nothing cut, reported as such). */
static int sweep_ct(struct mnl_socket *nl, uint32_t *seq, struct dump *dp, size_t *n,
		    const char **what)
{
	struct mnl_socket *rt;
	int ret = open_bound(NETLINK_ROUTE, &rt);

	*what = "rtnetlink";
	if (!ret)
		ret = host_addrs(rt, seq, &dp->local);
	if (ret)
		goto out_close;
	*what = "conntrack";
	ret = ct_dump(nl, seq, dp);
	if (!ret)
		*n = sweep_cut(nl, rt, seq, dp, &ret);
out_close:
	if (rt)
		mnl_socket_close(rt);
	return ret;
}

static int revoke_ct(struct dump *dp, size_t *n, const char **what)
{
	struct mnl_socket *nl;
	uint32_t seq = (uint32_t)time(NULL);
	int ret = open_bound(NETLINK_NETFILTER, &nl);

	*what = "conntrack";
	if (ret)
		return ret;
	if (dp->sweep) {
		ret = sweep_ct(nl, &seq, dp, n, what);
	} else {
		ret = ct_dump(nl, &seq, dp);
		if (!ret)
			*n = cut(nl, &seq, dp, &ret);
	}
	mnl_socket_close(nl);
	return ret;
}

/* How many conntrack entries this network namespace holds (its own
 * net.netfilter.nf_conntrack_count), or -1 when that cannot be read (no
 * conntrack: the dump says so).  With none there is nothing to cut, and
 * the dump would still walk every bucket of the host's hash (~14 ms on
 * an idle 2-CPU machine, a commit's worth). */
static long ct_count(void)
{
	FILE *f = fopen("/proc/sys/net/netfilter/nf_conntrack_count", "re");
	long n = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &n) != 1)
		n = -1;
	fclose(f);
	return n;
}

/* Whether some partner map of `live` lost an element. */
static bool partner_lost(const struct ir_ruleset *live, const struct ir_ruleset *want)
{
	for (size_t i = 0; i < live->nsets; i++) {
		const struct ir_set *ls = &live->sets[i];
		const struct ir_set *ws = ir_find_set(want, ls->name);

		if (ls->is_map && ls->nelems &&
		    lost_elems(ls, ws && ws->key == ls->key ? ws : NULL))
			return true;
	}
	return false;
}

static void dump_free(struct dump *dp)
{
	for (size_t i = 0; i < dp->cut.n; i++)
		free(dp->cut.v[i].tuple);
	free(dp->cut.v);
	free(dp->hits.v);
	free(dp->swept.v);
	free(dp->local.v);
	pindexes_free(&dp->keep);
	ir_eval_free(&dp->want_eval);
	ir_gates_free(&dp->live_gates);
	ir_gates_free(&dp->want_gates);
}

size_t nft_revoke(const struct ir_ruleset *live, const struct ir_ruleset *want,
		  bool replaced, struct diag *d)
{
	struct dump dp = { .live = live, .want = want };
	const char *what = "conntrack";
	size_t n = 0;
	int ret = 0;

	dp.sweep = replaced || !live || others_changed(live, want);
	if (dp.sweep) {
		ir_eval_init(want, &dp.want_eval);
		index_mgmt(&dp.keep, live, true);
	}
	/* The count first: with no connection at all, nothing can be cut, and
	 * partner_lost() is a sort and a walk of every partner map. */
	if (ct_count() != 0 && (dp.sweep || partner_lost(live, want))) {
		ir_gates_find(live, &dp.live_gates);
		ir_gates_find(want, &dp.want_gates);
		ret = revoke_ct(&dp, &n, &what);
	}
	/* No conntrack here at all (module absent): nothing to cut. */
	if (ret && ret != -EOPNOTSUPP && ret != -EPROTONOSUPPORT && ret != -ENOENT)
		diag_warn(d, NULL, "the rules are committed, but cutting the established"
			  " connections they do not admit failed: %s: %s", what,
			  strerror(-ret));
	report_hits(&dp, d);
	report_swept(&dp, d);
	dump_free(&dp);
	return n;
}

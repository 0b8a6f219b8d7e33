/* kernel.c - the netlink transaction: one batch (begin ... end) per
 * commit, every message acknowledged so that each error maps back by
 * sequence number (and the extended ack's attribute offset) to the object
 * and element that caused it, and through the IR's loc to the policy. */
#include "nft/kernel-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* Element messages stay well below the 64 KiB an attribute nest can
 * hold; the element count cap keeps each kernel step short. */
#define ELEM_MSG_BUDGET 32768
#define ELEM_MSG_MAX 4096
#define MSG_ROOM (128 * 1024)   /* free space before building a message */
#define RECV_SIZE (128 * 1024)

/* The socket of the last context that committed, still open.  The
 * kernel frees a commit's transaction only after an RCU grace period,
 * and closing a netfilter netlink socket waits for that (nf_tables'
 * NETLINK_URELEASE handler flushes the destroy work): 10-15 ms here,
 * more than the commit of a small change.  Closed at the next
 * nft_open(), or by the exit, by when the work the caller does after
 * the commit (the state, the cache, the report) has overlapped the
 * grace period instead of waiting behind it. */
static struct mnl_socket *lingering;

int nft_open(struct nft_ctx **out)
{
	struct nft_ctx *ctx = xcalloc(1, sizeof(*ctx));
	int one = 1, err;

	if (lingering)
		mnl_socket_close(lingering);
	lingering = NULL;
	ctx->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!ctx->nl) {
		err = -errno;
		free(ctx);
		return err;
	}
	if (mnl_socket_bind(ctx->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		mnl_socket_close(ctx->nl);
		free(ctx);
		return err;
	}
	/* Extended acks point at the element that failed; capped acks keep
	 * a refused 30 KiB element message from being echoed back whole. */
	mnl_socket_setsockopt(ctx->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(ctx->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	ctx->portid = mnl_socket_get_portid(ctx->nl);
	ctx->seq = (uint32_t)time(NULL);
	*out = ctx;
	return 0;
}

void nft_close(struct nft_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->committed && !lingering)
		lingering = ctx->nl;
	else
		mnl_socket_close(ctx->nl);
	free(ctx->foreign);
	free(ctx);
}

const char *nft_foreign(const struct nft_ctx *ctx)
{
	return ctx->foreign;
}

/* Grows a socket buffer (the kernel doubles what it is given); FORCE
 * first, as nft does, since root may exceed rmem_max/wmem_max. */
static void sock_buf(struct nft_ctx *ctx, int opt, int force, unsigned *cur, size_t want)
{
	int fd = mnl_socket_get_fd(ctx->nl), v;

	if (want <= *cur)
		return;
	v = want > (size_t)1 << 30 ? 1 << 30 : (int)want;
	if (setsockopt(fd, SOL_SOCKET, force, &v, sizeof(v)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v)) < 0)
		return;
	*cur = (unsigned)v;
}

/* ---- simple requests ----------------------------------------------------- */

/* FEDWALL_RECORD_DUMP=FILE appends every answer received to FILE: how the
 * read-back fuzzer's seed dumps were recorded (tests/fuzz/corpus). */
static void record_answer(const void *buf, size_t n)
{
	const char *path = getenv("FEDWALL_RECORD_DUMP");
	FILE *f = path && *path ? fopen(path, "ab") : NULL;

	if (f) {
		fwrite(buf, 1, n, f);
		fclose(f);
	}
}

int nl_talk(struct mnl_socket *nl, const struct nlmsghdr *req, size_t bufsize,
	    mnl_cb_t cb, void *data)
{
	char *buf = xmalloc(bufsize);
	uint32_t seq = req->nlmsg_seq, portid = mnl_socket_get_portid(nl);
	int ret;

	if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0) {
		ret = -errno;
		goto out_free_buf;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, bufsize);

		if (n < 0) {
			ret = -errno;
			break;
		}
		record_answer(buf, (size_t)n);
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
		if (ret <= MNL_CB_STOP) {
			ret = ret < 0 ? -errno : 0;
			break;
		}
	}
out_free_buf:
	free(buf);
	return ret;
}

int nft_talk(struct nft_ctx *ctx, struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	return nl_talk(ctx->nl, req, RECV_SIZE, cb, data);
}

int nft_netns_cookie(struct nft_ctx *ctx, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);

	*cookie = 0;
	if (getsockopt(mnl_socket_get_fd(ctx->nl), SOL_SOCKET, SO_NETNS_COOKIE, cookie,
		       &len) < 0)
		return -errno;
	return len == sizeof(*cookie) && *cookie ? 0 : -ENOPROTOOPT;
}

static int gen_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) == NFTA_GEN_ID &&
		    mnl_attr_get_payload_len(a) >= 4)
			*(uint32_t *)data = ntohl(mnl_attr_get_u32(a));
	}
	return MNL_CB_OK;
}

int nft_genid(struct nft_ctx *ctx, uint32_t *genid)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;

	memset(buf, 0, sizeof(buf));    /* see batch_room() */
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, NFPROTO_UNSPEC, NLM_F_ACK,
				    ++ctx->seq);
	*genid = 0;
	return nft_talk(ctx, nlh, gen_cb, genid);
}

/* ---- the batch ------------------------------------------------------------ */

enum rec_kind { REC_TABLE, REC_COUNTER, REC_CHAIN, REC_SET, REC_RULE, REC_ELEMS };

static const char *const kind_name[] = {
	[REC_TABLE] = "table", [REC_COUNTER] = "counter", [REC_CHAIN] = "chain",
	[REC_SET] = "set", [REC_RULE] = "rule", [REC_ELEMS] = "set",
};

/* What one message of the batch was about, to name it in errors. */
struct rec {
	uint32_t seq;
	size_t off;                     /* of the message in batch.buf */
	enum rec_kind kind;
	const char *name;
	const struct loc *loc;
	const struct ir_ruleset *rs;    /* whose chains elements jump to */
	const struct ir_set *set;       /* REC_ELEMS */
	const struct ir_elem **elems;   /* REC_ELEMS: per element nest (owned) */
	size_t nelems;
	bool del;
	const char *table_op;           /* REC_TABLE: claim, delete, create */
	const char *chain;              /* REC_RULE */
	size_t rule;                    /* REC_RULE: 1-based position */
};

struct batch {
	char *buf;
	size_t len, cap;
	uint32_t begin_seq;
	VEC(struct rec) recs;
};

static char *batch_room(struct batch *b)
{
	if (b->cap - b->len < MSG_ROOM) {
		size_t old = b->cap;

		b->cap = b->cap * 2 + MSG_ROOM;
		b->buf = xrealloc(b->buf, b->cap);
		/* libmnl 1.0.4 leaves attribute padding unwritten: zeroed
		 * here, the kernel never gets uninitialised bytes. */
		memset(b->buf + old, 0, b->cap - old);
	}
	return b->buf + b->len;
}

static void batch_ctl(struct batch *b, struct nft_ctx *ctx, uint16_t type, uint32_t genid)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(batch_room(b));
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = ++ctx->seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
	/* The kernel refuses the whole batch with ERESTART when the
	 * ruleset generation moved past what we read. */
	if (type == NFNL_MSG_BATCH_BEGIN && genid)
		mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(genid));
	if (type == NFNL_MSG_BATCH_BEGIN)
		b->begin_seq = nlh->nlmsg_seq;
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* Starts a message of the batch and records what it is about; the caller
 * fills the payload and calls batch_push(). */
static struct nlmsghdr *batch_msg(struct batch *b, struct nft_ctx *ctx, uint16_t type,
				  uint16_t flags, struct rec r)
{
	struct nlmsghdr *nlh;

	nlh = nftnl_nlmsg_build_hdr(batch_room(b), type, NFPROTO_INET,
				    flags | NLM_F_ACK, ++ctx->seq);
	r.seq = nlh->nlmsg_seq;
	r.off = b->len;
	VEC_PUSH(&b->recs, r);
	return nlh;
}

static void batch_push(struct batch *b, struct nlmsghdr *nlh)
{
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->recs.n; i++)
		free(b->recs.v[i].elems);
	free(b->recs.v);
	free(b->buf);
}

/* ---- building ------------------------------------------------------------ */

static void add_table(struct batch *b, struct nft_ctx *ctx, const char *name,
		      uint16_t type, const struct ir_ruleset *rs)
{
	struct nftnl_table *t;
	struct nlmsghdr *nlh;

	if (rs) {
		t = nft_lower_table(rs);
	} else {
		t = nftnl_table_alloc();
		nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
		nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	}
	nlh = batch_msg(b, ctx, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0,
			(struct rec){ .kind = REC_TABLE, .name = name,
				      .del = type == NFT_MSG_DELTABLE,
				      .table_op = type == NFT_MSG_DELTABLE ? "delete"
						  : rs ? "create" : "claim" });
	nftnl_table_nlmsg_build_payload(nlh, t);
	batch_push(b, nlh);
	nftnl_table_free(t);
}

static void add_chain(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *rs,
		      const struct ir_chain *c)
{
	struct nftnl_chain *ch = nft_lower_chain(rs->table, c);
	struct nlmsghdr *nlh;

	nlh = batch_msg(b, ctx, NFT_MSG_NEWCHAIN, NLM_F_CREATE,
			(struct rec){ .kind = REC_CHAIN, .name = c->name, .loc = &c->loc });
	nftnl_chain_nlmsg_build_payload(nlh, ch);
	batch_push(b, nlh);
	nftnl_chain_free(ch);
}

static void add_counter(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *rs,
			const struct ir_counter *c)
{
	struct nftnl_obj *o = nft_lower_counter(rs->table, c);
	struct nlmsghdr *nlh;

	nlh = batch_msg(b, ctx, NFT_MSG_NEWOBJ, NLM_F_CREATE,
			(struct rec){ .kind = REC_COUNTER, .name = c->name, .loc = &c->loc });
	nftnl_obj_nlmsg_build_payload(nlh, o);
	batch_push(b, nlh);
	nftnl_obj_free(o);
}

/* Transaction ids of the sets created in a replace batch: position + 1. */
static uint32_t set_id_of(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->nsets; i++)
		if (!strcmp(rs->sets[i].name, name))
			return (uint32_t)i + 1;
	return 0;
}

static void add_set(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *rs,
		    const struct ir_set *s)
{
	struct nftnl_set *set = nft_lower_set(rs->table, s, set_id_of(rs, s->name));
	struct nlmsghdr *nlh;

	nlh = batch_msg(b, ctx, NFT_MSG_NEWSET, NLM_F_CREATE,
			(struct rec){ .kind = REC_SET, .name = s->name });
	nftnl_set_nlmsg_build_payload(nlh, set);
	batch_push(b, nlh);
	nftnl_set_free(set);
}

static int add_rules(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *rs,
		     const struct ir_chain *c, struct diag *d)
{
	for (size_t i = 0; i < c->nrules; i++) {
		const char *err = NULL;
		struct nftnl_rule *r = nft_lower_rule(rs, c, &c->rules[i], set_id_of, &err);
		struct nlmsghdr *nlh;

		if (!r) {
			diag_error(d, c->loc.file ? &c->loc : NULL,
				   "cannot lower rule %zu of chain '%s': %s", i + 1, c->name, err);
			return -EINVAL;
		}
		nlh = batch_msg(b, ctx, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
				(struct rec){ .kind = REC_RULE, .name = c->name,
					      .loc = &c->loc, .chain = c->name, .rule = i + 1 });
		nftnl_rule_nlmsg_build_payload(nlh, r);
		batch_push(b, nlh);
		nftnl_rule_free(r);
	}
	return 0;
}

/* A growing element message: one nftnl_set holding the elements of the
 * current chunk, and for each kernel element the IR element it came from
 * (NULL: nft's closing element at zero). */
struct chunk {
	struct nftnl_set *ks;
	VEC(const struct ir_elem *) src;
	size_t bytes;
};

struct elem_job {
	const struct ir_ruleset *rs;    /* owner of `set` and the elements */
	const struct ir_set *set;
	bool del;
	uint32_t set_id;                /* 0 outside a replace batch */
};

static void chunk_flush(struct batch *b, struct nft_ctx *ctx, const struct elem_job *j,
			struct chunk *c)
{
	struct nlmsghdr *nlh;

	if (!c->ks)
		return;
	nlh = batch_msg(b, ctx, j->del ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM,
			j->del ? 0 : NLM_F_CREATE | NLM_F_EXCL,
			(struct rec){ .kind = REC_ELEMS, .name = j->set->name, .rs = j->rs,
				      .set = j->set, .elems = c->src.v, .nelems = c->src.n,
				      .del = j->del });
	nftnl_set_elems_nlmsg_build_payload(nlh, c->ks);
	batch_push(b, nlh);
	nftnl_set_free(c->ks);
	memset(c, 0, sizeof(*c));
}

static void chunk_add(struct batch *b, struct nft_ctx *ctx, const struct elem_job *j,
		      struct chunk *c, const struct ir_elem *e, const struct nft_kelem *k)
{
	size_t cost = e ? nft_elem_cost(j->rs, j->set, e) : 64;

	if (c->ks && (c->bytes + cost > ELEM_MSG_BUDGET || c->src.n >= ELEM_MSG_MAX))
		chunk_flush(b, ctx, j, c);
	if (!c->ks) {
		c->ks = nftnl_set_alloc();
		nftnl_set_set_u32(c->ks, NFTNL_SET_FAMILY, NFPROTO_INET);
		nftnl_set_set_str(c->ks, NFTNL_SET_TABLE, j->rs->table);
		nftnl_set_set_str(c->ks, NFTNL_SET_NAME, j->set->name);
		if (j->set_id)
			nftnl_set_set_u32(c->ks, NFTNL_SET_ID, j->set_id);
	}
	nft_elem_add(c->ks, j->rs, j->set, j->del ? NULL : e, k);
	VEC_PUSH(&c->src, e);
	c->bytes += cost;
}

/* Sends elements v[0..n) (or vp[0..n) when vp is set) of one set. */
static void add_elems(struct batch *b, struct nft_ctx *ctx, const struct elem_job *j,
		      const struct ir_elem *v, const struct ir_elem *const *vp, size_t n,
		      bool zero_end)
{
	struct chunk c = { 0 };
	struct nft_kelem k[2];

	for (size_t i = 0; i < n; i++) {
		const struct ir_elem *e = vp ? vp[i] : &v[i];
		size_t nk = nft_elem_encode(j->set, e, k);

		/* nft closes the range below a single-field interval set's
		 * first element with an end element at zero. */
		if (i == 0 && zero_end && nk == 2 &&
		    memcmp(k[0].key, (uint8_t[16]){ 0 }, nft_keyinfo(j->set->key)->len)) {
			struct nft_kelem z = { .interval_end = true };

			chunk_add(b, ctx, j, &c, NULL, &z);
		}
		for (size_t m = 0; m < nk; m++)
			chunk_add(b, ctx, j, &c, e, &k[m]);
	}
	chunk_flush(b, ctx, j, &c);
}

static int build_replace(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *want,
			 struct diag *d)
{
	int err;

	/* `table T {}` + `delete table T`: deletes whatever is there, and
	 * never fails for want of a table. */
	add_table(b, ctx, want->table, NFT_MSG_NEWTABLE, NULL);
	add_table(b, ctx, want->table, NFT_MSG_DELTABLE, NULL);
	add_table(b, ctx, want->table, NFT_MSG_NEWTABLE, want);
	for (size_t i = 0; i < want->nchains; i++)
		add_chain(b, ctx, want, &want->chains[i]);
	for (size_t i = 0; i < want->ncounters; i++)
		add_counter(b, ctx, want, &want->counters[i]);
	for (size_t i = 0; i < want->nsets; i++) {
		const struct ir_set *s = &want->sets[i];
		struct elem_job j = { want, s, false, (uint32_t)i + 1 };

		add_set(b, ctx, want, s);
		add_elems(b, ctx, &j, s->elems, NULL, s->nelems, true);
	}
	for (size_t i = 0; i < want->nchains; i++) {
		err = add_rules(b, ctx, want, &want->chains[i], d);
		if (err)
			return err;
	}
	return 0;
}

/* ---- swapping a set in: delete and re-create it with its rules ------------ */

static bool refs_any(const struct ir_rule *r, const char *const *names, size_t n)
{
	for (size_t i = 0; r->set && i < n; i++)
		if (!strcmp(r->set, names[i]))
			return true;
	return false;
}

static void del_rule(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *live,
		     const struct ir_chain *c, size_t i)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;

	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, live->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, c->name);
	nftnl_rule_set_u64(r, NFTNL_RULE_HANDLE, c->rules[i].handle);
	nlh = batch_msg(b, ctx, NFT_MSG_DELRULE, 0,
			(struct rec){ .kind = REC_RULE, .name = c->name, .loc = &c->loc,
				      .chain = c->name, .rule = i + 1, .del = true });
	nftnl_rule_nlmsg_build_payload(nlh, r);
	batch_push(b, nlh);
	nftnl_rule_free(r);
}

static void del_set(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *live,
		    const char *name)
{
	struct nftnl_set *set = nftnl_set_alloc();
	struct nlmsghdr *nlh;

	nftnl_set_set_u32(set, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(set, NFTNL_SET_TABLE, live->table);
	nftnl_set_set_str(set, NFTNL_SET_NAME, name);
	nlh = batch_msg(b, ctx, NFT_MSG_DELSET, 0,
			(struct rec){ .kind = REC_SET, .name = name, .del = true });
	nftnl_set_nlmsg_build_payload(nlh, set);
	batch_push(b, nlh);
	nftnl_set_free(set);
}

/* Inserts rule k of `c` after the rule with handle `anchor` (0: at the
 * head of the chain). */
static int put_rule(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *want,
		    const struct ir_chain *c, size_t k, uint64_t anchor, struct diag *d)
{
	const char *err = NULL;
	struct nftnl_rule *r = nft_lower_rule(want, c, &c->rules[k], set_id_of, &err);
	struct nlmsghdr *nlh;

	if (!r) {
		diag_error(d, c->loc.file ? &c->loc : NULL,
			   "cannot lower rule %zu of chain '%s': %s", k + 1, c->name, err);
		return -EINVAL;
	}
	if (anchor)
		nftnl_rule_set_u64(r, NFTNL_RULE_POSITION, anchor);
	nlh = batch_msg(b, ctx, NFT_MSG_NEWRULE, NLM_F_CREATE | (anchor ? NLM_F_APPEND : 0),
			(struct rec){ .kind = REC_RULE, .name = c->name, .loc = &c->loc,
				      .chain = c->name, .rule = k + 1 });
	nftnl_rule_nlmsg_build_payload(nlh, r);
	batch_push(b, nlh);
	nftnl_rule_free(r);
	return 0;
}

/* Puts back, in each chain, the rules deleted for the swap where they
 * were: a run of them goes after the live rule before it (handle from
 * the read-back), inserted last first so the run keeps its order. */
static int put_rules_back(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *live,
			  const struct ir_ruleset *want, const char *const *names, size_t n,
			  struct diag *d)
{
	for (size_t ci = 0; ci < live->nchains; ci++) {
		const struct ir_chain *lc = &live->chains[ci];
		const struct ir_chain *wc = ir_find_chain(want, lc->name);
		uint64_t anchor = 0;
		size_t i = 0, j;

		while (wc && i < lc->nrules && i < wc->nrules) {
			if (!refs_any(&lc->rules[i], names, n)) {
				anchor = lc->rules[i++].handle;
				continue;
			}
			for (j = i; j < lc->nrules && refs_any(&lc->rules[j], names, n); j++)
				;
			for (size_t k = j; k-- > i;) {
				int err = put_rule(b, ctx, want, wc, k, anchor, d);

				if (err)
					return err;
			}
			i = j;
		}
	}
	return 0;
}

/* One transaction step per swapped set, and no window without a rule:
 * the rules that look the sets up are deleted, the sets deleted and
 * created again with every element, the rules put back at their place.
 * Table, chains, other rules and named counters stay as they are. */
static int build_swaps(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *live,
		       const struct ir_ruleset *want, const char *const *names, size_t n,
		       struct diag *d)
{
	for (size_t ci = 0; ci < live->nchains; ci++)
		for (size_t i = 0; i < live->chains[ci].nrules; i++)
			if (refs_any(&live->chains[ci].rules[i], names, n))
				del_rule(b, ctx, live, &live->chains[ci], i);
	for (size_t i = 0; i < n; i++)
		del_set(b, ctx, live, names[i]);
	for (size_t i = 0; i < n; i++) {
		const struct ir_set *ws = ir_find_set(want, names[i]);
		struct elem_job j = { want, ws, false, set_id_of(want, names[i]) };

		add_set(b, ctx, want, ws);
		add_elems(b, ctx, &j, ws->elems, NULL, ws->nelems, true);
	}
	return put_rules_back(b, ctx, live, want, names, n, d);
}

/* A delete message without elements flushes the set. */
static void flush_set(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *live,
		      const struct ir_set *ls)
{
	struct nlmsghdr *nlh;

	nlh = batch_msg(b, ctx, NFT_MSG_DELSETELEM, 0,
			(struct rec){ .kind = REC_ELEMS, .name = ls->name, .rs = live,
				      .set = ls, .del = true });
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, live->table);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, ls->name);
	batch_push(b, nlh);
}

/* Every rule of `live` that looks up set `name` has a kernel handle. */
static bool handles_known(const struct ir_ruleset *live, const char *name)
{
	for (size_t ci = 0; ci < live->nchains; ci++)
		for (size_t i = 0; i < live->chains[ci].nrules; i++) {
			const struct ir_rule *r = &live->chains[ci].rules[i];

			if (r->set && !strcmp(r->set, name) && !r->handle)
				return false;
		}
	return true;
}

static bool swap_cheaper(const struct ir_ruleset *live, const struct ir_set_delta *sd);

/* How the elements of one changed set reach the kernel. */
static enum nft_path set_path(enum nft_path force, const struct ir_ruleset *live,
			      const struct ir_set_delta *sd)
{
	enum nft_path p = force;

	if (p == NFT_PATH_AUTO)
		p = swap_cheaper(live, sd) ? NFT_PATH_SWAP : NFT_PATH_DELTA;
	if (p == NFT_PATH_SWAP && !handles_known(live, sd->set->name))
		p = NFT_PATH_REPLACE;
	return p;
}

/* Sets `*swapped` to how many sets it swaps in. */
static int build_delta(struct batch *b, struct nft_ctx *ctx, const struct ir_ruleset *live,
		       const struct ir_ruleset *want, const struct ir_diff *diff,
		       size_t *swapped, struct diag *d)
{
	const char **swap = xcalloc(diff->nsets + 1, sizeof(*swap));
	enum nft_path *path = xcalloc(diff->nsets + 1, sizeof(*path));
	size_t nswap = 0;
	int ret = 0;

	for (size_t i = 0; i < diff->nsets; i++) {
		const struct ir_set_delta *sd = &diff->sets[i];

		if (!ir_find_set(live, sd->set->name)) {
			diag_error(d, NULL, "set '%s' is not in the live table", sd->set->name);
			ret = -EINVAL;
			goto out_free;
		}
		path[i] = set_path(ctx->force, live, sd);
		if (path[i] == NFT_PATH_SWAP)
			swap[nswap++] = sd->set->name;
	}
	*swapped = nswap;
	if (nswap && (ret = build_swaps(b, ctx, live, want, swap, nswap, d)))
		goto out_free;
	/* Deletes first: an element whose verdict changes is deleted and
	 * added again in the same transaction. */
	for (size_t i = 0; i < diff->nsets; i++) {
		const struct ir_set_delta *sd = &diff->sets[i];
		const struct ir_set *old = ir_find_set(live, sd->set->name);
		struct elem_job j = { live, old, true, 0 };

		if (path[i] == NFT_PATH_FLUSH)
			flush_set(b, ctx, live, old);
		else if (path[i] == NFT_PATH_DELTA && sd->ndel)
			add_elems(b, ctx, &j, NULL, sd->del, sd->ndel, false);
	}
	for (size_t i = 0; i < diff->nsets; i++) {
		const struct ir_set_delta *sd = &diff->sets[i];
		struct elem_job j = { want, sd->set, false, 0 };

		if (path[i] == NFT_PATH_FLUSH)
			add_elems(b, ctx, &j, sd->set->elems, NULL, sd->set->nelems, true);
		else if (path[i] == NFT_PATH_DELTA)
			add_elems(b, ctx, &j, NULL, sd->add, sd->nadd, false);
	}
out_free:
	free(swap);
	free(path);
	return ret;
}

/* Whether some set needs a path build_delta() cannot take. */
static bool needs_replace(const struct nft_ctx *ctx, const struct ir_ruleset *live,
			  const struct ir_diff *diff)
{
	if (ctx->force == NFT_PATH_REPLACE)
		return true;
	for (size_t i = 0; i < diff->nsets; i++)
		if (set_path(ctx->force, live, &diff->sets[i]) == NFT_PATH_REPLACE)
			return true;
	return false;
}

/* ---- sending and collecting every answer --------------------------------- */

static struct rec *rec_by_seq(struct batch *b, uint32_t seq)
{
	size_t lo = 0, hi = b->recs.n;

	/* Sequence numbers increase along the batch (modulo wrap-around,
	 * hence the linear fallback). */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (b->recs.v[mid].seq == seq)
			return &b->recs.v[mid];
		if ((int32_t)(b->recs.v[mid].seq - seq) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < b->recs.n; i++)
		if (b->recs.v[i].seq == seq)
			return &b->recs.v[i];
	return NULL;
}

/* Index of the element nest of an element message that holds byte `off`
 * of the message, or -1. */
static long elem_at(const struct batch *b, const struct rec *r, uint32_t off)
{
	const struct nlmsghdr *nlh = (const void *)(b->buf + r->off);
	const struct nlattr *a, *e;
	long i = 0;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(e, a) {
			size_t start = (size_t)((const char *)e - (const char *)nlh);

			if (off >= start && off < start + e->nla_len)
				return i;
			i++;
		}
	}
	return -1;
}

static const struct loc *elem_loc(const struct rec *r, const struct ir_elem *e)
{
	if (e && r->set->is_map && e->chain < r->rs->nchains &&
	    r->rs->chains[e->chain].loc.file)
		return &r->rs->chains[e->chain].loc;
	return NULL;
}

static void report(struct diag *d, const struct batch *b, const struct rec *r, int err,
		   long off, const char *msg)
{
	const char *why = strerror(-err);
	const char *extra = msg ? msg : "";
	const char *sep = msg ? ": " : "";
	const struct loc *l = r->loc && r->loc->file ? r->loc : NULL;
	struct strbuf sb = { 0 };
	long i;

	switch (r->kind) {
	case REC_TABLE:
		/* EPERM on a table: another process holds it (NFT_TABLE_F_OWNER). */
		diag_error(d, NULL, "kernel refused to %s table inet %s%s%s: %s%s", r->table_op,
			   r->name, sep, extra, why,
			   err == -EPERM ? " (the table is owned by another process)" : "");
		return;
	case REC_RULE:
		diag_error(d, l, "kernel refused rule %zu of chain '%s'%s%s: %s", r->rule,
			   r->chain, sep, extra, why);
		return;
	case REC_ELEMS:
		i = off >= 0 ? elem_at(b, r, (uint32_t)off) : -1;
		if (i >= 0 && (size_t)i < r->nelems && r->elems[i]) {
			nft_elem_fmt(r->set, r->elems[i], &sb);
			diag_error(d, elem_loc(r, r->elems[i]),
				   "kernel refused set '%s' element %s%s%s%s: %s", r->name,
				   sb_str(&sb), r->del ? " (delete)" : "", sep, extra, why);
			sb_free(&sb);
		} else {
			diag_error(d, NULL, "kernel refused %s of %zu elements of set '%s'%s%s: %s",
				   r->del ? "deletion" : "addition", r->nelems, r->name, sep,
				   extra, why);
		}
		return;
	default:
		diag_error(d, l, "kernel refused %s '%s'%s%s: %s", kind_name[r->kind], r->name,
			   sep, extra, why);
	}
}

struct acks {
	struct batch *b;
	struct diag *d;
	size_t got;
	int first_err;
	bool batch_refused;
};

static void ack_tlvs(const struct nlmsghdr *nlh, long *off, const char **msg)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t skip = sizeof(*e);
	const struct nlattr *a;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		skip += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	mnl_attr_for_each(a, nlh, skip) {
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_OFFS)
			*off = (long)mnl_attr_get_u32(a);
		else if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
			*msg = mnl_attr_get_str(a);
	}
}

static void on_ack(struct acks *st, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const char *msg = NULL;
	struct rec *r;
	long off = -1;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
		return;
	st->got++;
	if (!e->error)
		return;
	if (!st->first_err)
		st->first_err = e->error;
	ack_tlvs(nlh, &off, &msg);
	if (nlh->nlmsg_seq == st->b->begin_seq) {
		st->batch_refused = true;
		if (e->error != -ERESTART)
			diag_error(st->d, NULL, "kernel refused the transaction: %s",
				   strerror(-e->error));
		return;
	}
	r = rec_by_seq(st->b, nlh->nlmsg_seq);
	if (r)
		report(st->d, st->b, r, e->error, off, msg);
	else
		diag_error(st->d, NULL, "kernel error for unknown message %u: %s",
			   nlh->nlmsg_seq, strerror(-e->error));
}

static int recv_acks(struct nft_ctx *ctx, struct acks *st)
{
	char *buf = xmalloc(RECV_SIZE);
	int ret = 0;

	while (st->got < st->b->recs.n && !st->batch_refused) {
		struct pollfd p = { .fd = mnl_socket_get_fd(ctx->nl), .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		n = mnl_socket_recvfrom(ctx->nl, buf, RECV_SIZE);
		if (n < 0) {
			ret = -errno;
			break;
		}
		for (const struct nlmsghdr *nlh = (void *)buf; mnl_nlmsg_ok(nlh, (int)n);
		     nlh = mnl_nlmsg_next(nlh, (int *)&n)) {
			if (nlh->nlmsg_type == NLMSG_ERROR && nlh->nlmsg_pid == ctx->portid)
				on_ack(st, nlh);
		}
	}
	free(buf);
	return ret;
}

static int batch_send(struct nft_ctx *ctx, struct batch *b, struct diag *d)
{
	struct acks st = { .b = b, .d = d };
	int ret;

	sock_buf(ctx, SO_SNDBUF, SO_SNDBUFFORCE, &ctx->sndbuf, b->len);
	sock_buf(ctx, SO_RCVBUF, SO_RCVBUFFORCE, &ctx->rcvbuf,
		 b->recs.n * 2048 + 256 * 1024);
	if (mnl_socket_sendto(ctx->nl, b->buf, b->len) < 0) {
		ret = -errno;
		diag_error(d, NULL, "cannot send the transaction to the kernel: %s",
			   strerror(-ret));
		return ret;
	}
	ctx->committed = true;
	ret = recv_acks(ctx, &st);
	if (ret && !st.first_err) {
		diag_error(d, NULL, "no answer from the kernel for %zu of %zu messages: %s",
			   b->recs.n - st.got, b->recs.n, strerror(-ret));
		return ret;
	}
	return st.first_err;
}

/* Kernel cost model, in microseconds, measured with tools/kcost.c on
 * kernel 6.18 (docs/KERNEL-COSTS.md): one map `ipv4_addr . inet_proto .
 * inet_service : verdict` of 20k / 100k elements, whole nft_commit():
 *   load or swap in a set       ~7.5 us an element (100k: 0.65-0.73 s),
 *                               plus ~20-70 ms a transaction
 *   delete from it (pipapo)     ~0.3-0.4 us times the set's size, per
 *                               element deleted (20k: 10 take 81 ms, 200
 *                               take 1.2 s; 100k: 10 take 0.36 s)
 *   flush it and add again      quadratic: 8k elements 4.4-6 s, dearest
 *                               of all, never used
 * so past ~20 deletes from a large concatenated set, rebuilding it and
 * swapping it in (same table, chains and counters) is cheaper.  Deletes
 * from single-field interval (rbtree) sets are cheap: never swapped. */
#define COST_LOAD_US 7.5
#define COST_SWAP_FIXED_US 20000.0
#define COST_DEL_US_PER_ELEM 0.4

/* Whether rebuilding set sd->set and swapping it in costs the kernel less
 * than deleting sd->ndel elements from the live set one by one: deletes
 * from a concatenated interval (pipapo) set are linear in its size each;
 * single-field interval (rbtree) sets are cheap both ways. */
static bool swap_cheaper(const struct ir_ruleset *live, const struct ir_set_delta *sd)
{
	const struct ir_set *old = ir_find_set(live, sd->set->name);
	double del, load;

	if (!old || !sd->ndel || nft_keyinfo(sd->set->key)->nfields < 2)
		return false;
	del = COST_DEL_US_PER_ELEM * (double)sd->ndel * (double)old->nelems;
	load = COST_SWAP_FIXED_US + COST_LOAD_US * (double)sd->set->nelems;
	return del > load;
}

bool nft_set_rebuilt(const struct ir_ruleset *live, const struct ir_set_delta *sd)
{
	return live && swap_cheaper(live, sd);
}

bool nft_delta_too_dear(const struct ir_ruleset *live, const struct ir_ruleset *want,
			const struct ir_diff *diff)
{
	(void)want;
	for (size_t i = 0; diff && i < diff->nsets; i++)
		if (nft_set_rebuilt(live, &diff->sets[i]))
			return true;
	return false;
}

int nft_commit(struct nft_ctx *ctx, const struct ir_ruleset *live,
	       const struct ir_ruleset *want, const struct ir_diff *diff,
	       uint32_t genid, struct nft_commit_result *res, struct diag *d)
{
	struct batch b = { 0 };
	int ret;

	memset(res, 0, sizeof(*res));
	batch_ctl(&b, ctx, NFNL_MSG_BATCH_BEGIN, genid);
	res->replaced = !live || !diff || diff->structural || ctx->foreign ||
			needs_replace(ctx, live, diff);
	if (res->replaced)
		ret = build_replace(&b, ctx, want, d);
	else
		ret = build_delta(&b, ctx, live, want, diff, &res->swapped, d);
	ctx->last_msgs = b.recs.n;
	ctx->last_elem_msgs = 0;
	for (size_t i = 0; i < b.recs.n; i++)
		ctx->last_elem_msgs += b.recs.v[i].kind == REC_ELEMS;
	if (ret || !b.recs.n)
		goto out_free_batch;
	batch_ctl(&b, ctx, NFNL_MSG_BATCH_END, 0);
	ret = batch_send(ctx, &b, d);
	if (!ret && genid)
		res->genid = genid + 1 ? genid + 1 : 1;
	/* The rules are in: what they do not admit is cut now (a sweep of
	 * every entry when the table is new or replaced).  Trouble there is
	 * a warning, never a failure. */
	if (!ret)
		res->revoked = nft_revoke(live, want, res->replaced, d);
out_free_batch:
	batch_free(&b);
	return ret;
}

int nft_delete_table(struct nft_ctx *ctx, const char *table, struct diag *d)
{
	struct batch b = { 0 };
	struct diag quiet;
	int ret;

	/* Absent is not an error worth a line: the caller decides. */
	diag_init(&quiet, NULL);
	batch_ctl(&b, ctx, NFNL_MSG_BATCH_BEGIN, 0);
	add_table(&b, ctx, table, NFT_MSG_DELTABLE, NULL);
	batch_ctl(&b, ctx, NFNL_MSG_BATCH_END, 0);
	ret = batch_send(ctx, &b, &quiet);
	if (ret && ret != -ENOENT)
		diag_error(d, NULL, "kernel refused to delete table inet %s: %s", table,
			   strerror(-ret));
	batch_free(&b);
	return ret;
}

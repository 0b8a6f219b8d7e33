/* counters.c - the values of a table's named counters, alone: what a
 * live table taken from the cache (engine/cache.c) lacks.  One dump of the
 * table's counter objects; no rules, sets or elements. */
#include "nft/kernel-int.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdlib.h>
#include <string.h>

struct ctr_read {
	struct ir_ruleset *rs;
	bool *seen;             /* parallel to rs->counters */
};

static void ctr_fill(struct ctr_read *cr, struct nftnl_obj *o)
{
	const char *name = nftnl_obj_get_str(o, NFTNL_OBJ_NAME);

	for (size_t i = 0; name && i < cr->rs->ncounters; i++) {
		struct ir_counter *c = &cr->rs->counters[i];

		if (strcmp(c->name, name))
			continue;
		c->packets = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS);
		c->bytes = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES);
		cr->seen[i] = true;
		return;
	}
}

static int ctr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ctr_read *cr = data;
	struct nftnl_obj *o = nftnl_obj_alloc();
	const char *table;

	if (nftnl_obj_nlmsg_parse(nlh, o) == 0 &&
	    nftnl_obj_get_u32(o, NFTNL_OBJ_FAMILY) == NFPROTO_INET &&
	    nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) == NFT_OBJECT_COUNTER &&
	    (table = nftnl_obj_get_str(o, NFTNL_OBJ_TABLE)) && !strcmp(table, cr->rs->table))
		ctr_fill(cr, o);
	nftnl_obj_free(o);
	return MNL_CB_OK;
}

int nft_read_counters(struct nft_ctx *ctx, struct ir_ruleset *rs)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ctr_read cr = { rs, xcalloc(rs->ncounters + 1, sizeof(bool)) };
	struct nftnl_obj *filter = nftnl_obj_alloc();
	struct nlmsghdr *nlh;
	int ret;

	/* zeroed: libmnl 1.0.4 leaves attribute padding unwritten */
	memset(buf, 0, sizeof(buf));
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETOBJ, NFPROTO_INET, NLM_F_DUMP, ++ctx->seq);
	nftnl_obj_set_str(filter, NFTNL_OBJ_TABLE, rs->table);
	nftnl_obj_set_u32(filter, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nftnl_obj_nlmsg_build_payload(nlh, filter);
	nftnl_obj_free(filter);
	ret = nft_talk(ctx, nlh, ctr_cb, &cr);
	for (size_t i = 0; !ret && i < rs->ncounters; i++)
		if (!cr.seen[i])
			ret = -ESRCH;
	free(cr.seen);
	return ret;
}

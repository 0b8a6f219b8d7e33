/* kernel-int.h - shared by the kernel half of nft/ (lower.c, decode.c,
 * elems.c, readback.c, kernel.c).  Not a face: nothing outside nft/
 * includes it; nft.h is the module's face.  The only other header that
 * may name libnftnl types. */
#ifndef FEDWALL_NFT_KERNEL_INT_H
#define FEDWALL_NFT_KERNEL_INT_H

#include "nft/nft.h"

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <string.h>

/* How nft_commit() removes elements from a set (tests and cost
 * measurements force one; AUTO follows the cost model in kernel.c). */
enum nft_path {
	NFT_PATH_AUTO = 0,
	NFT_PATH_DELTA,         /* delete the elements one by one */
	NFT_PATH_SWAP,          /* delete and re-create the set and its rules */
	NFT_PATH_FLUSH,         /* flush the set, add every element again */
	NFT_PATH_REPLACE,       /* replace the whole table */
};

struct nft_ctx {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	unsigned sndbuf, rcvbuf;        /* current socket buffer sizes */
	char *foreign;                  /* why the last read was not ours */
	/* What the last commit sent (for tests and -v): messages between
	 * batch begin and end, and how many of them were element messages. */
	size_t last_msgs, last_elem_msgs;
	enum nft_path force;            /* NFT_PATH_AUTO but in tests */
	bool committed;                 /* a batch went out on this socket */
};

/* Offset of the flags byte in the TCP header (nft's `tcp flags`). */
#define NFT_TCP_FLAGS_OFFSET 13

/* The shape of each key type: what nft would declare for it. */
struct nft_keyinfo {
	uint32_t type;          /* nft datatype id, concat: (t1 << 6) | t2 ... */
	uint32_t len;           /* key length, fields padded to 4 bytes */
	uint8_t nfields;
	uint8_t field_len[3];   /* unpadded field lengths */
	uint8_t addr_len;       /* 0, 4 or 16 */
	bool proto_port;        /* ends in inet_proto . inet_service */
};

const struct nft_keyinfo *nft_keyinfo(enum ir_keytype k);
bool nft_keytype_from(uint32_t type, uint32_t len, bool concat, enum ir_keytype *out);

/* One kernel element of a set as sent or read: key (and key_end for
 * concatenated intervals), or a single-field interval bound. */
struct nft_kelem {
	uint8_t key[24], key_end[24];
	bool has_end;           /* key_end valid */
	bool interval_end;      /* single field: NFT_SET_ELEM_INTERVAL_END */
};

/* ---- lowering (lower.c) ------------------------------------------------ */

/* Userdata TLVs in the format nft writes (and `nft list` shows). */
struct nftnl_udata_buf;
bool nft_udata_comment(struct nftnl_udata_buf *ud, uint8_t type, const char *c);

struct nftnl_table *nft_lower_table(const struct ir_ruleset *rs);
struct nftnl_obj *nft_lower_counter(const char *table, const struct ir_counter *c);
struct nftnl_chain *nft_lower_chain(const char *table, const struct ir_chain *c);
/* `id` is the set's transaction id (NFTA_SET_ID) for later references. */
struct nftnl_set *nft_lower_set(const char *table, const struct ir_set *s, uint32_t id);
/* Returns NULL and sets *err to a reason when the rule cannot be
 * expressed.  `set_id` gives the transaction id of a set by name (0 when
 * the set is not created in the same batch); NULL asks for the form the
 * kernel dumps back (defaults explicit), to compare with a read rule. */
struct nftnl_rule *nft_lower_rule(const struct ir_ruleset *rs, const struct ir_chain *c,
				  const struct ir_rule *r,
				  uint32_t (*set_id)(const struct ir_ruleset *, const char *),
				  const char **err);

/* Kernel elements of one IR element (1 for concatenations; start and end
 * bound for single fields, the end omitted at the top of the space).
 * Returns how many were written to out[2]. */
size_t nft_elem_encode(const struct ir_set *s, const struct ir_elem *e,
		       struct nft_kelem out[2]);
/* Adds kernel element `k` (with the verdict of `e` for maps) to `set`. */
void nft_elem_add(struct nftnl_set *set, const struct ir_ruleset *rs,
		  const struct ir_set *s, const struct ir_elem *e,
		  const struct nft_kelem *k);
/* Upper bound of the netlink bytes of one kernel element. */
size_t nft_elem_cost(const struct ir_ruleset *rs, const struct ir_set *s,
		     const struct ir_elem *e);
/* "64.4.9.181 . tcp . 5061" */
void nft_elem_fmt(const struct ir_set *s, const struct ir_elem *e, struct strbuf *sb);

/* ---- rule decoding (decode.c) ------------------------------------------ */

/* Decodes a kernel rule of chain `c` (of `rs`, whose sets are decoded
 * already) into `out`.  False when the rule is not one fedwall writes. */
bool nft_decode_rule(const struct ir_ruleset *rs, const struct nftnl_rule *kr,
		     struct ir_rule *out);

/* The string TLV of `type` at the top level of a userdata blob, copied. */
char *nft_udata_str(const void *data, uint32_t len, uint8_t type);

#define GET_UDATA_STR(getter, obj, attr, type)                                  \
	({                                                                     \
		uint32_t ulen_ = 0;                                            \
		const void *u_ = getter(obj, attr, &ulen_);                    \
		nft_udata_str(u_, ulen_, type);                                \
	})

/* ---- element dumps (elems.c) -------------------------------------------- */

#define KELEMS_NO_CHAIN UINT32_MAX
#define KELEMS_KEY_MAX 24       /* sizeof(struct nft_kelem.key) */

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

/* Where a record's flags byte is: after the key (and key_end).  These
 * accessors are inline: the conversion calls them once per element. */
static inline size_t kelems_flags_at(const struct kelems *k)
{
	return (size_t)k->klen * (k->concat ? 2 : 1);
}

static inline uint8_t *kelems_rec_at(const struct kelems *k, size_t i)
{
	return k->rec + i * k->stride;
}

static inline uint8_t kelems_rec_flags(const struct kelems *k, const uint8_t *r)
{
	return r[kelems_flags_at(k)];
}

static inline uint32_t kelems_rec_chain(const struct kelems *k, const uint8_t *r)
{
	uint32_t id = KELEMS_NO_CHAIN;

	if (k->map)
		memcpy(&id, r + kelems_flags_at(k) + 1, sizeof(id));
	return id;
}

/* Empty arrays shaped for the elements of kernel set `ks`; bad when no
 * element fedwall writes fits it. */
void kelems_init(struct kelems *k, const struct nftnl_set *ks);
void kelems_free(struct kelems *k);
/* The elements of one NFT_MSG_NEWSETELEM message into `k`, their jump
 * targets interned in `nm`; false when the message is malformed.  An
 * element fedwall never writes marks `k` bad and drops its elements. */
bool kelems_parse_msg(const struct nlmsghdr *nlh, struct kelems *k, struct names *nm);
/* The id of `s`, or KELEMS_NO_CHAIN when no element named it. */
uint32_t names_find(const struct names *nm, const char *s);
void names_free(struct names *nm);

/* ---- revocation (revoke.c) --------------------------------------------- */

/* After a commit that turned `live` (NULL: no table) into `want`:
 * deletes the conntrack entries that elements gone from revoking sets
 * admitted and nothing in `want` admits still; when the commit
 * `replaced` the table, there was none, or a set other than a partner
 * map changed, sweeps instead: every TCP/UDP entry in the table's scope
 * that `want` would not admit as a new connection (sessions of the old
 * management sets kept).  Notes what was cut, warns (never fails) when
 * conntrack cannot be reached.  Returns how many went. */
size_t nft_revoke(const struct ir_ruleset *live, const struct ir_ruleset *want,
		  bool replaced, struct diag *d);

/* ---- kernel I/O (kernel.c) --------------------------------------------- */

/* Runs a request and feeds every reply message to `cb`.  0 or -errno. */
/* Sends one request on `nl` and runs `cb` over every answer until the
 * dump or the ACK ends it, receiving into a buffer of `bufsize`.  0 or
 * -errno. */
int nl_talk(struct mnl_socket *nl, const struct nlmsghdr *req, size_t bufsize,
	    mnl_cb_t cb, void *data);
int nft_talk(struct nft_ctx *ctx, struct nlmsghdr *req, mnl_cb_t cb, void *data);

#endif

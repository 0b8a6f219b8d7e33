/* nft.h - the nftables back end: IR -> text, IR <-> kernel.
 *
 * The only module that includes libnftnl/libmnl headers.  It knows
 * tables, chains, sets, rules and counters, never partners or DNS: what it
 * reports about an object it names by the object (and the loc the IR gave
 * it), and the caller maps that to the policy.
 *
 * Return convention: kernel and system calls return 0 or -errno; text
 * rendering cannot fail.
 */
#ifndef FEDWALL_NFT_H
#define FEDWALL_NFT_H

#include "common/common.h"
#include "generator/generator.h"

/* ---- text ------------------------------------------------------------ */

struct nft_text_opts {
	const char *source;     /* policy file named in the header comment */
	const char *generator;  /* e.g. "fedwall 0.1.0" */
};

/* Renders `rs` as an nft -f script that replaces the table atomically and
 * can be loaded again and again: `table inet T {}` / `delete table inet T`
 * / `table inet T { ... }`.  Output is deterministic. */
void nft_text(struct strbuf *out, const struct ir_ruleset *rs,
	      const struct nft_text_opts *o);

/* ---- kernel ---------------------------------------------------------- */

struct nft_ctx;

int nft_open(struct nft_ctx **out);
void nft_close(struct nft_ctx *ctx);

/* Reads table inet `table` into a new IR (with counter values), and the
 * ruleset generation id it was read at (the dump is retried when the
 * generation moves during it; -EAGAIN if it keeps moving).  -ENOENT when
 * there is no table (*genid is still set). */
int nft_read(struct nft_ctx *ctx, const char *table, struct ir_ruleset **out,
	     uint32_t *genid);

/* nft_read() without the elements: the table, its chains, rules (with
 * their kernel handles, decoded the same way), sets and counters, every
 * set empty; one dump of each kind, none of elements, so its cost does
 * not grow with the sets.  For a caller that knows the elements already
 * (it has just committed them) and needs what only the kernel knows:
 * rule handles, the order of chains and sets.  The generation, the
 * retries, -ENOENT and nft_foreign() (but for what only elements would
 * show) as nft_read(). */
int nft_read_shape(struct nft_ctx *ctx, const char *table, struct ir_ruleset **out,
		   uint32_t *genid);

/* Decodes a recorded dump (`len` bytes of netlink messages, as the
 * kernel answered nft_read()'s requests, in any order, control messages
 * and acks among them) the way nft_read() decodes the live one: the same
 * object callbacks, the same IR and foreign detection.  *why_foreign (if
 * not NULL) gets what nft_foreign() would say, to free.  0, -ENOENT
 * without the table, -EBADMSG when an element message does not parse.
 * For the read-back fuzzer: any input is safe. */
int nft_decode_dump(const char *table, const void *buf, size_t len,
		    struct ir_ruleset **out, char **why_foreign);

/* What one nft_commit() did, in place of state kept on the context: it
 * zeroes `res` (which may not be NULL) on entry and fills it as it goes,
 * so a failed commit leaves `replaced` and `swapped` as it had decided
 * them, `revoked` and `genid` 0. */
struct nft_commit_result {
	/* It replaced the table (counters restart) rather than changing
	 * sets in it. */
	bool replaced;
	/* How many sets it rebuilt and swapped in. */
	size_t swapped;
	/* How many established connections it cut (revoked and swept);
	 * 0 unless the commit succeeded. */
	size_t revoked;
	/* The generation it left the ruleset at, or 0 when that is not
	 * known (it failed, sent nothing, or had no genid to check).  The
	 * kernel checks the batch against `genid` and commits it under the
	 * same lock, and a commit moves the generation by exactly one
	 * (nf_tables_commit: ++base_seq, skipping 0): genid + 1. */
	uint32_t genid;
};

/* Commits, in one transaction, whatever turns `live` (NULL: no table) into
 * `want`: when `diff` has no structural change, element adds/deletes,
 * except that a set whose element deletes would cost the kernel more than
 * building it afresh is rebuilt and swapped in (its rules deleted and put
 * back at their place; table, chains, other sets and named counters stay:
 * see kernel.c); a replacement of the whole table otherwise.  The commit
 * is refused by the kernel if the ruleset generation moved past `genid`
 * (-ERESTART: read again and retry).  Every error the kernel returns is
 * reported through `d`, naming the object that caused it.
 *
 * After a successful commit, the established connections that elements
 * gone from a partner map (ir_set.revoke) admitted, and nothing in `want`
 * admits still, are cut: their conntrack entries are deleted.  When the
 * table was created or replaced, or a set other than a partner map
 * changed, every TCP/UDP entry in the table's scope is swept instead:
 * cut unless `want` would admit it as a new connection (or the old
 * management sets did).  Each cut is a note on `d` ("revoked 3
 * connections of 198.51.100.7 (tcp/5061) ...", "cut 1 connection from
 * ... the new ruleset does not admit it"); trouble with conntrack is a
 * warning, never a failed commit. */
int nft_commit(struct nft_ctx *ctx, const struct ir_ruleset *live,
	       const struct ir_ruleset *want, const struct ir_diff *diff,
	       uint32_t genid, struct nft_commit_result *res, struct diag *d);

/* Whether nft_commit() would rebuild and swap in the set of `sd` rather
 * than delete its elements one by one (the kernel cost of deletes grows
 * with the size of concatenated sets).  Counters are kept either way. */
bool nft_set_rebuilt(const struct ir_ruleset *live, const struct ir_set_delta *sd);

/* Whether nft_set_rebuilt() holds for some set of a non-structural
 * `diff`. */
bool nft_delta_too_dear(const struct ir_ruleset *live, const struct ir_ruleset *want,
			const struct ir_diff *diff);

/* Why the table the last nft_read() found holds objects fedwall did not
 * write (a rule, set or chain it cannot decode: they are left out of the
 * IR), or NULL.  nft_commit() then replaces the table whatever the diff
 * says; callers should treat the diff as structural. */
const char *nft_foreign(const struct nft_ctx *ctx);

/* The ruleset generation id now (one NFT_MSG_GETGEN; every commit in
 * this network namespace, by anybody, moves it).  0 or -errno. */
int nft_genid(struct nft_ctx *ctx, uint32_t *genid);

/* The identity of the network namespace ctx talks to, never reused
 * while the machine is up (SO_NETNS_COOKIE, Linux 5.14; the namespace's
 * inode number can be reused once it is gone).  0 or -errno
 * (-ENOPROTOOPT on older kernels). */
int nft_netns_cookie(struct nft_ctx *ctx, uint64_t *cookie);

/* Fills in the packets and bytes of the named counters of `rs` (table
 * rs->table) from the kernel: one dump of the table's counter objects,
 * no rules, sets or elements.  -ESRCH when one of them is not there.
 * 0 or -errno. */
int nft_read_counters(struct nft_ctx *ctx, struct ir_ruleset *rs);

/* Deletes table inet `table` and nothing else.  -ENOENT if absent. */
int nft_delete_table(struct nft_ctx *ctx, const char *table, struct diag *d);

#endif

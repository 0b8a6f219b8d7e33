/* engine.h - what every verb that changes the kernel goes through, just
 * before the commit (DESIGN.md: read live -> diff -> final guard ->
 * commit): the check that a host-mode policy's interfaces exist, and the
 * final guard; the apply loop joins them later.
 *
 * Contract of the final guard: it looks at the ruleset about to be
 * committed, never at how it was made (apply, refresh, the daemon,
 * --resolve, --force, a rollback), so that no path, flag or bug above
 * it can put into the kernel an address range the guards forbid:
 *
 *   - per set or map and per owner (the chain a map element jumps to:
 *     in_P and out_P are partner P; a set's elements have one owner, the
 *     set), no contiguous run of admitted addresses (prefix_run_next:
 *     after every join, whether its prefixes overlap, nest or touch) is
 *     wider than guards.min_prefix_v4 / min_prefix_v6;
 *   - per set or map as a whole, no run covers a whole family
 *     (0.0.0.0/0, ::/0), whoever owns its pieces.
 *
 * It reads the IR only (no I/O, no kernel, no policy beyond its guards)
 * and reports each violation through `d`, naming the set, the partner
 * (or chain) and the range.  Return convention: 0, or -EPERM after
 * reporting; the caller then commits nothing.
 */
#ifndef FEDWALL_ENGINE_H
#define FEDWALL_ENGINE_H

#include "common/common.h"
#include "generator/generator.h"
#include "policy/policy.h"

#include <net/if.h>

/* ---- interfaces (engine/iface.c) ---------------------------------------- */

/* Whether a host-mode policy's edge.interfaces exist on this machine:
 * iifname "X" with no interface X matches nothing, and the edge would be
 * open with a ruleset that looks normal. */
enum iface_state {
	IFACE_PRESENT = 0,
	IFACE_ABSENT,           /* no interface of that name */
	IFACE_ALTNAME,          /* an alternative name: iifname never matches it */
};

/* What ifaces_check() makes of an absent interface. */
enum iface_how {
	IFACE_REFUSE = 0,       /* an error: apply, refresh, the daemon */
	IFACE_WARN,             /* a warning (--allow-missing-interfaces, status) */
	IFACE_NOTE,             /* a note (check, plan) */
};

/* The state of interface `name`; `real` gets the name the kernel gives it
 * ("" when absent). */
enum iface_state iface_state(const char *name, char real[IF_NAMESIZE]);
/* Reports each interface of a host-mode policy that is not present (an
 * alternative name is refused even under IFACE_WARN); how many. */
size_t ifaces_check(const struct policy *p, enum iface_how how, struct diag *d);

/* ---- the final guard (engine/guard.c) ----------------------------------- */

/* The guards when no policy is at hand (a rollback to a snapshot). */
#define ENGINE_DEFAULT_MIN4 8
#define ENGINE_DEFAULT_MIN6 32

/* Checks `want` against p's guards (p NULL: ENGINE_DEFAULT_MIN4/6).
 * 0 when every address element passes; -EPERM after reporting each
 * violation ("map in4_1: partner 'msn' (chain in_msn): 0.0.0.0/1 and
 * 128.0.0.0/1 join into 0.0.0.0/0, the whole IPv4 Internet"). */
int engine_guard(const struct policy *p, const struct ir_ruleset *want, struct diag *d);

/* ---- the live table's cache (engine/cache.c) ----------------------------- */

/* STATE_DIR/live.cache: the table as fedwall last knew it in the kernel
 * and the key that proves the kernel holds it still (engine/cache.c says
 * why it can be trusted).  Nothing here ever fails a run because of the
 * cache: one that does not hold is read around, with a -v note. */
#define LIVE_CACHE_FILE "live.cache"

struct nft_ctx;

/* Where the cache is and what goes with it; the caller owns the strings,
 * which must outlive the calls. */
struct engine_cache {
	const char *dir;        /* the state directory; NULL: always read back */
	bool verbose;           /* -v notes: from the cache, or why not */
	uint64_t inputs;        /* stored with the table by engine_live_put (0: none) */
};

/* What engine_live_get() found. */
struct engine_live {
	struct ir_ruleset *rs;  /* the live table, the caller's to free; NULL: none */
	uint32_t genid;         /* the generation it is true at */
	bool cached;            /* from the cache (else read back) */
};

/* The live table `table` and the generation it is true at: from the
 * cache when its key holds (this fedwall binary, boot, network namespace,
 * table, and the ruleset generation now: one GETGEN), its counters read
 * (one dump of the table's counters); else read back (nft_read), as
 * always when cc->dir is NULL or `fresh` (a retry).  `out` is zeroed on
 * entry.  Changes nothing in the kernel or the state directory.  0 (no
 * table: out->rs NULL) or -errno after reporting; under
 * FEDWALL_LIVE_CACHE=verify, -EPROTO when the cache was wrong. */
int engine_live_get(struct nft_ctx *ctx, const char *table, const struct engine_cache *cc,
		    bool fresh, struct engine_live *out, struct diag *d);

/* Caches `live` (borrowed) as the table the kernel holds at generation
 * `genid`, replacing STATE_DIR/live.cache: after a read-back (that found
 * nothing foreign), an element-only commit (ir_take_elems(), genid from
 * the commit's result), or a commit that created or replaced the table
 * or swapped sets in (its shape read back, nft_read_shape(), with the
 * committed elements).  Nothing for genid 0, live NULL or cc->dir NULL.
 * A failure to write is a -v note (refusing a file others may write, an
 * error): the next run reads back. */
void engine_live_put(struct nft_ctx *ctx, const struct engine_cache *cc,
		     const struct ir_ruleset *live, uint32_t genid, struct diag *d);

/* Whether the cache's key holds now (one GETGEN; *genid gets the
 * generation) and the table in it was built from inputs `cc->inputs`
 * (not 0): then nothing needs doing.  Reads the cache's header line only;
 * changes nothing.  Never under FEDWALL_LIVE_CACHE=0 or =verify. */
bool engine_live_unchanged(struct nft_ctx *ctx, const char *table,
			   const struct engine_cache *cc, uint32_t *genid);

/* Forgets the cache (removes the file; a -v note says `why`): a commit
 * left the table in a state the cache cannot vouch for (the shape read
 * after it moved on, or differs from what was committed).  Nothing when
 * cc->dir is NULL. */
void engine_live_drop(const struct engine_cache *cc, const char *why, struct diag *d);

#endif

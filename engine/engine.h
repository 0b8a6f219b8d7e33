/* engine.h - what every verb that changes the kernel goes through
 * (DESIGN.md: read live -> diff -> final guard -> commit), inside
 * libfedwall so that unit tests reach it (tests/unit/test_engine.c):
 *
 *   - the apply loop of apply, apply --confirm, refresh, the daemon and
 *     the rollback (engine_apply: read, build, diff, guard, commit, retry
 *     when the ruleset moved; engine/apply.c);
 *   - the live table's cache in the state directory (engine_live_*;
 *     engine/cache.c);
 *   - each partner's addresses in the live table (engine/addrs.c);
 *   - the check that a host-mode policy's interfaces exist (iface.c);
 *   - the final guard (guard.c), the last look before every commit;
 *   - the ruleset a policy asks for, offline or --resolve (engine_want_build;
 *     want.c) and what an apply would change (engine_plan; plan.c);
 *   - the refresh cycle of refresh and the daemon (engine_refresh_cycle;
 *     engine/refresh.c), the incremental refresh (engine_incr; incr.c)
 *     and the record of the last refresh (record.c);
 *   - the daemon's schedule: when each source is due, the table's check,
 *     the sleep, the backoff (engine_sched_*; schedule.c);
 *   - apply --confirm's snapshot of the table before and the rollback to
 *     it (engine_snapshot_want, engine_rollback; engine/rollback.c), its
 *     watcher and pending record (engine_confirm_*; confirm.c);
 *   - what the live table says per partner (engine_stats; stats.c) and
 *     the Prometheus metrics of status and the metrics file of refresh
 *     and the daemon (engine_metrics_*; metrics.c).
 *
 * cli/ keeps each verb's options, output and exit status.
 * Return convention: what talks to the kernel or the file system returns
 * 0 or -errno, reported through `d`.
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
/* Reports each interface of a host-mode policy, and ha.interface in
 * either mode, that is not present (an alternative name is refused even
 * under IFACE_WARN); how many. */
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
	uint64_t inputs;        /* cached: the inputs digest stored with it (0: none) */
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

/* ---- the apply loop (engine/apply.c) -------------------------------------- */

/* Builds the ruleset wanted given what is live (`live` NULL: no table;
 * borrowed, valid during the call).  Returns a ruleset it owns, valid
 * until its next call or the end of engine_apply(), or NULL after
 * reporting.  It may set *engine_apply_opts.inputs to 0. */
typedef const struct ir_ruleset *(*engine_want_fn)(void *arg, const struct ir_ruleset *live,
						   struct diag *d);

/* What engine_apply() is to do; the caller owns every pointer, which
 * must outlive the call. */
struct engine_apply_opts {
	engine_want_fn want;    /* called once per try */
	void *arg;              /* want's */
	bool verbose;
	FILE *out;              /* the one-line summary ("no changes" too); NULL: none */
	/* Use and keep the live table's cache in this state directory
	 * (apply, apply --confirm, refresh, daemon); NULL: read the table
	 * back every time. */
	const char *cache_dir;
	/* With cache_dir: a digest of everything `want` builds the table
	 * from (the policy, each partner's proposed addresses), or 0.  When
	 * the cache proves the kernel still holds the table built from the
	 * same inputs, nothing is built, read or compared: "no changes".
	 * `want` sets it to 0 when what it builds is not the table those
	 * inputs make (a partner held back by its guards), so it is not
	 * stored. */
	uint64_t *inputs;
	/* Whose guards bound what is committed (engine_guard, the last look
	 * before every commit); NULL: the default guards. */
	const struct policy *policy;
	/* Out, before each call of `want` (may be NULL): the inputs digest
	 * the live table it is given was built from, when it came from the
	 * cache with one (else 0), so that `want` may patch it rather than
	 * build it again (the incremental refresh). */
	uint64_t *live_inputs;
	/* How many times the table is read and `want` built when the
	 * ruleset moves before the commit; 0: 3 (the rollback: 10). */
	unsigned tries;
	/* A read the kernel interrupted because the ruleset changed
	 * (-EAGAIN) is another try, not a failure (the rollback). */
	bool retry_read;
	/* The final guard only when something is to be committed: a table
	 * that is `want` already stays as it is (the rollback). */
	bool guard_changes_only;
	/* After `want` (may be NULL): when it knows the diff from the live
	 * table it was given to what it returned (it patched it), moves that
	 * into `out` (ir_diff()'s, pointers into both) and says true; else
	 * false, and the two are compared. */
	bool (*known_diff)(void *arg, const struct ir_ruleset *live,
			   const struct ir_ruleset *want, struct ir_diff *out);
};

/* What engine_apply() did. */
struct engine_applied {
	bool unchanged;         /* the inputs are the live table's: `want` not called */
	bool changed;           /* something was committed */
	bool replaced;          /* ... by creating or replacing the table */
	size_t nadd, ndel;      /* element changes */
	char why[160];          /* a structural change: why ("" if none) */
};

/* Reads table inet `table` (engine_live_get, with o->cache_dir), calls
 * o->want with it, diffs (engine_diff), passes the result through the
 * final guard (engine_guard, o->policy) and commits the difference in one
 * transaction checked against the generation read, then keeps the cache
 * in step (or drops it).  When the ruleset moved in between (the commit
 * refused with -ERESTART), reads the table back and calls o->want again,
 * a few times.  Opens and closes its own nft context; `res` is zeroed on
 * entry.  Changes the table, and STATE_DIR/live.cache with a cache_dir;
 * nothing else.  0 or -errno after reporting: -EINVAL when o->want
 * refused, -EPERM when the final guard did, -ERESTART when the ruleset
 * kept moving; nothing was committed then. */
int engine_apply(const char *table, const struct engine_apply_opts *o,
		 struct engine_applied *res, struct diag *d);

/* ir_diff(live, want), with a table holding objects fedwall did not
 * write (nft_foreign(ctx), as the last read of `ctx` found it) a
 * structural difference, its why.  The caller frees `diff`. */
void engine_diff(const struct nft_ctx *ctx, const struct ir_ruleset *live,
		 const struct ir_ruleset *want, struct ir_diff *diff);

/* ---- each partner's addresses in a ruleset (engine/addrs.c) ------------- */

struct addr_list;

/* Each partner's addresses in ruleset `rs` (borrowed; may be NULL), from
 * its verdict maps' elements by jump target (in_P, out_P): `out` is
 * parallel to p->partners, zeroed lists the call fills, sorted and
 * deduplicated, for the caller to free (addr_list_free).  The locs are
 * zeroed: the kernel keeps no provenance. */
void engine_partner_addrs(const struct ir_ruleset *rs, const struct policy *p,
			  struct addr_list *out);

/* The scope (addr_list.scope) of each address engine_partner_addrs()
 * found, as `rs` admits it: for a partner with SRV kinds scoped to some
 * of its services (partner_srv_scoped), an address that every port class
 * of its services holds, or one that serves none of those kinds, is
 * theirs all (0); else it counts for the kinds whose classes hold it.
 * What a refused partner keeps stays on the services it was on: the
 * table generate() makes from them again is `rs`. */
void engine_partner_scopes(const struct ir_ruleset *rs, const struct policy *p,
			   struct addr_list *out);

/* dst[i] = a copy of src[i] (dst zeroed, the caller's to free), for n
 * lists. */
void engine_addr_lists_copy(struct addr_list *dst, const struct addr_list *src, size_t n);
/* What generate() is given of a partner's addresses l (borrowed): every
 * parallel array, scopes and a feed's port groups included.  Build
 * gen_addrs with this, never field by field: a missing port group would
 * admit a feed's address on all the partner's ports. */
struct gen_addrs engine_gen_addrs(const struct addr_list *l);

/* ---- the refresh cycle (engine/refresh.c) -------------------------------- */

struct srcset;

/* One refresh cycle: what it is given and what it found. */
struct engine_refresh {
	/* in: */
	const struct policy *p;
	struct srcset *src;     /* its `due` flags say what to resolve or read */
	const char *state_dir;
	bool force, verbose;
	/* The daemon runs another policy than its previous cycle (a SIGHUP
	 * that changed the file): a change to the table is the policy's, not
	 * drift to be called "restored". */
	bool reloaded;
	FILE *out;              /* per changed partner, one line; NULL: none */
	/* out: */
	unsigned refused;       /* partners the guards held back */
	unsigned failed;        /* due sources that did not answer */
	unsigned changed;       /* partners whose addresses changed */
};

/* Resolves and reads what is due (r->src), falls back on the last known
 * good state in r->state_dir, guards each partner against what is live,
 * applies the changes in one transaction (engine_apply, with the live
 * table's cache in r->state_dir) and saves the state.  Prints one line
 * per changed partner to r->out; errors, warnings and -v notes through
 * `d`.  Call with the state directory's lock held (state_lock).  Changes
 * the table, the state and the cache; the out fields are zeroed on
 * entry.  0 or -errno after reporting (a refused partner or a failed
 * source is not an error here: see r->refused, r->failed). */
int engine_refresh_cycle(struct engine_refresh *r, struct diag *d);

/* Each partner's proposed addresses, before the guards, the one way
 * refresh and apply build them: its inline ones, then what its sources
 * give, in srcset_build's order (srcset_partner_addrs), so that a refresh
 * and an apply that got the same answers build the same lists, address
 * for address.  The sources' addresses come from `s` (refresh: the
 * cycle's sources, appended straight into the lists) or else from
 * `src[i]` (apply: sources_offline's lists); both NULL: inline ones only.
 * An array of p->npartners lists for the caller to free. */
struct addr_list *engine_proposed(const struct policy *p, const struct srcset *s,
				  const struct addr_list *src);

/* What the table is built from: the policy (its digest) and the proposed
 * addresses (engine_proposed), as engine_apply_opts.inputs; never 0.
 * Equal inputs make an equal table (generate() is deterministic), so a
 * digest stored with a table describes it, whoever stored it: refresh,
 * or apply (which never holds a partner back: it refuses the whole
 * policy instead). */
uint64_t engine_inputs_digest(const struct policy *p, const struct addr_list *prop);
/* The same over spans (one per partner, inline addresses included). */
struct prefix_span;
uint64_t engine_spans_digest(const struct policy *p, const struct prefix_span *sp);
/* The same digest straight from a refresh's sources (the inline
 * addresses, then every fresh or kept source's), without building the
 * lists: engine_inputs_digest(p, engine_proposed(p, s, NULL)). */
uint64_t engine_sources_digest(const struct policy *p, const struct srcset *s);

/* ---- the incremental refresh (engine/incr.c) ------------------------------ */

/* A run of prefixes borrowed from whoever holds them (a source, the
 * state), in any order. */
struct prefix_span {
	const struct prefix *v;
	size_t n;
	const uint8_t *scope;   /* parallel to v, or NULL: all 0 (addr_list.scope) */
};

/* What engine_incr() patched, or why it did not. */
struct engine_incr {
	size_t npartners;       /* partners whose addresses changed */
	size_t nadd, ndel;      /* elements added, removed (all maps) */
	size_t *padd, *pdel;    /* in: arrays of p->npartners; out: per partner,
				 * merged prefixes added, removed */
	char why[256];          /* NULL returned: why the full derivation is needed */
	/* Out, with a table returned: live -> that table as ir_diff() finds
	 * it (its pointers borrow from both; ir_diff_free), so that the
	 * commit need not compare every element again. */
	struct ir_diff diff;
};

/* The table a full derivation (generate()) would make from proposed
 * addresses `after`, made by patching `live` (borrowed), which must be
 * exactly what the full derivation made from `before` (the caller
 * proves it: the inputs digest stored with the cached table): each
 * partner's merged addresses that left or came (prefixes_merge of
 * before[i] and after[i]) become element deletions and additions in its
 * port classes' address maps.  Only where no other partner of the same
 * port class has addresses (before or after) overlapping a changed
 * prefix (merged, or as given: a nested one is more specific), every
 * removed prefix is an element of the partner's maps and every added one
 * meets none but those the patch removes, an added
 * prefix joins no run wider than the guards, the count stays within
 * guards.max_entries and the net shrink within guards.max_shrink (unless
 * `force`); otherwise NULL, and out->why says which: the full derivation
 * then decides (and refuses with the whole story).  Pure: no I/O.  The
 * result is the caller's to ir_free(); its locs borrow from `live`. */
struct ir_ruleset *engine_incr(const struct policy *p, const struct ir_ruleset *live,
			       const struct prefix_span *before, const struct prefix_span *after,
			       bool force, struct engine_incr *out);

/* ---- the record of the last refresh (engine/record.c) -------------------- */

/* Written by refresh and the daemon after every run; status reads it. */
#define LAST_REFRESH_FILE "last-refresh"

enum last_result { LAST_OK, LAST_REFUSED, LAST_FAILED };

struct last_refresh {
	int64_t time;           /* seconds since the epoch */
	enum last_result result;
	unsigned changed;       /* partners whose addresses changed */
};

/* The result of a cycle: failed (ret, or a source did not answer),
 * refused (a partner held back by its guards) or ok.  Pure. */
enum last_result last_result_of(const struct engine_refresh *r, int ret);

/* Replaces STATE_DIR/last-refresh ("TIME RESULT CHANGED\n", mode 0600)
 * atomically, creating state_dir (0700) when missing.  0 or -errno after
 * reporting. */
int last_refresh_write(const char *state_dir, const struct last_refresh *l, struct diag *d);

/* Reads it, refusing a file others may write (file_check_private).  0;
 * -ENOENT, unreported, when there is none; another -errno after
 * reporting (a damaged record is a warning and -EINVAL).  Changes
 * nothing. */
int last_refresh_read(const char *state_dir, struct last_refresh *l, struct diag *d);

/* ---- the rollback of apply --confirm (engine/rollback.c) ----------------- */

/* engine_snapshot_want's argument: what is applied, and the table it
 * replaced. */
struct engine_snapshot {
	const struct ir_ruleset *want;  /* in: borrowed */
	struct ir_ruleset *prev;        /* out: a copy of the table before, the
					 * caller's to free; NULL: there was none */
	bool foreign;                   /* out: it held objects fedwall did not write */
};

/* engine_apply's want builder (arg: struct engine_snapshot) that keeps a
 * copy of `live` in ->prev and returns ->want.  The commit is checked
 * against the generation `live` is true at: when it goes through, ->prev
 * is exactly the table it replaced.  NULL (after reporting) when the copy
 * cannot be made. */
const struct ir_ruleset *engine_snapshot_want(void *arg, const struct ir_ruleset *live,
					     struct diag *d);

/* Turns table inet `table` back into `prev` (borrowed; NULL: deletes the
 * table, nothing when there is none), whatever was done to it since:
 * engine_apply with `prev` as what is wanted, quiet, the table read back
 * every time (never the cache), the final guard (p's guards, or the
 * defaults when p is NULL) only when something differs, and read again
 * when the ruleset moved (or moved during the read), up to 10 times.
 * Changes the table only.  0 or -errno after reporting (-EPERM: the
 * guard refused; -ERESTART: it kept moving). */
int engine_rollback(const char *table, const struct ir_ruleset *prev, const struct policy *p,
		    struct diag *d);

/* ---- the ruleset a policy asks for (engine/want.c) ----------------------- */

/* What engine_want_build() is to build from, and what it found; the
 * caller owns the strings, which must outlive the call. */
struct engine_want {
	/* in: */
	const char *policy;     /* the policy file */
	const char *state_dir;  /* its last known good state */
	bool resolve;           /* every name now (DNS), not the state's answers */
	bool digest;            /* compute `inputs` */
	/* apply: record in the state what the sources read (struct
	 * sources' `record`: the lists, with their identity) */
	bool record;
	/* out: */
	struct policy *p;       /* the policy when it loaded, the caller's to free */
	uint64_t inputs;        /* with `digest`: engine_inputs_digest of what the
				 * ruleset is built from; else 0 */
};

/* The ruleset a policy asks for (check, generate, plan, apply): offline
 * (inline addresses, list files, the state directory: sources_offline)
 * unless w->resolve, generated and passed through the final guard
 * (engine_guard), so that what apply would refuse shows offline.  NULL
 * after reporting; w->p is set whenever the policy loaded.  Changes
 * nothing, but the state with w->record. */
struct ir_ruleset *engine_want_build(struct engine_want *w, struct diag *d);

/* ---- what an apply would change (engine/plan.c) ------------------------- */

/* engine_plan()'s in and out. */
struct engine_plan {
	const struct ir_ruleset *want;  /* in: borrowed; its table is read */
	struct ir_ruleset *live;        /* out: the live table; NULL: none */
	struct ir_diff diff;            /* out: engine_diff(live, want) */
	bool rebuild;                   /* out: an element delta would cost more
					 * than a rebuild (nft_delta_too_dear) */
};

/* Reads pl->want's table back (never the cache) and diffs it against
 * pl->want (a table holding foreign objects is a structural difference).
 * Changes nothing.  0 or -errno after reporting; free the outs with
 * engine_plan_free() either way. */
int engine_plan(struct engine_plan *pl, struct diag *d);
void engine_plan_free(struct engine_plan *pl);

/* ---- what the live table says per partner (engine/stats.c) -------------- */

/* One direction of a partner: its verdict-map elements and the counter
 * of the connections admitted. */
struct engine_dir_stat {
	size_t elems;
	size_t elems_fam[2];    /* IPv4, IPv6 */
	bool has_counter;
	uint64_t packets, bytes;
};

struct engine_pstat {
	const char *name;       /* borrowed from the IR */
	struct engine_dir_stat in, out;
};

/* Every partner the table has a chain, map element or counter of, sorted
 * by name (a VEC), and the elements of the plain sets. */
struct engine_stats {
	struct engine_pstat *v;
	size_t n, cap;
	size_t other;           /* elements of the plain sets (management, ports, edge) */
	uint64_t digest;        /* engine_ruleset_digest() of the table */
};

/* Fills `st` (zeroed on entry) from `rs`, borrowed: the names point into
 * it.  Pure. */
void engine_stats(const struct ir_ruleset *rs, struct engine_stats *st);
void engine_stats_free(struct engine_stats *st);

/* The drop counters (docs/RULESET.md), by direction and reason. */
struct engine_drop {
	const char *counter, *direction, *reason;
};

#define ENGINE_NDROPS 6
extern const struct engine_drop engine_drops[ENGINE_NDROPS];

/* rs's named counter `name`, or NULL. */
const struct ir_counter *engine_counter(const struct ir_ruleset *rs, const char *name);

/* ---- what the two nodes of an HA pair compare (engine/digest.c) -------- */

/* A digest of what `rs` admits: its chains and rules, sets and elements,
 * counters' names; not comments (they name the policy file), handles or
 * counter values.  The same on both nodes for the same policy and the
 * same addresses, for the generated table and its read-back alike;
 * 0 for NULL. */
uint64_t engine_ruleset_digest(const struct ir_ruleset *rs);

/* The HA pair's counters (docs/RULESET.md), in a table only when the
 * policy has `ha`: the peers' VRRP and sync admitted, others' dropped. */
#define ENGINE_HA_ADMITTED "ha_peers"
#define ENGINE_HA_DROPPED "dropped_ha"

/* ---- the metrics (engine/metrics.c) ------------------------------------- */

/* What engine_metrics_print() shows; all borrowed. */
struct engine_metrics {
	const char *table;
	const struct ir_ruleset *live;          /* NULL: the table is not loaded */
	const struct engine_stats *stats;       /* of `live` */
	const char *foreign;                    /* nft_foreign() of the read, or NULL */
	const struct policy *p;                 /* NULL: no per-source metrics */
	const char *state_dir;
};

/* The Prometheus text exposition (0.0.4) of `status --format prometheus`:
 * the table's, each partner's and the drop counters, each source's last
 * confirmation and the state file's age (from m->state_dir, with m->p),
 * the edge interfaces, the record of the last refresh.  Reads the state
 * directory; problems with it are warnings through `d`. */
void engine_metrics_print(FILE *out, const struct engine_metrics *m, struct diag *d);

/* The metrics file of refresh and the daemon (--metrics): what
 * `status --format prometheus -o path` writes for policy p, the live
 * table taken from the cache in state_dir when its key holds (and cached
 * after a read-back), replacing `path` atomically ("-": stdout).  Nothing
 * is written, silently, when path's directory does not exist
 * (node_exporter's textfile directory is missing: not installed).  0 or
 * -errno after reporting. */
int engine_metrics_write(const struct policy *p, const char *state_dir, const char *path,
			 struct diag *d);

/* ---- apply --confirm: the watcher and its pending record (engine/confirm.c) */

/* STATE_DIR/confirm.pending: the watcher waiting for `fedwall confirm`. */
#define CONFIRM_PENDING_FILE "confirm.pending"

struct engine_pending {
	long pid;               /* the watcher */
	int64_t deadline;       /* wall clock, seconds */
	uint64_t token;         /* what `fedwall confirm` sends with SIGUSR1 */
	char table[256];
};

/* What engine_confirm_apply() is to do; all borrowed. */
struct engine_confirm {
	const struct ir_ruleset *want;  /* what to apply */
	const struct policy *p;         /* whose guards bound the apply and the rollback */
	const char *state_dir;
	unsigned secs;                  /* until the rollback */
	bool verbose;
	FILE *out;                      /* the apply's summary, the deadline; NULL: none */
};

/* Applies c->want from a detached watcher (fork, setsid, fork) that rolls
 * the table back to its state before (engine_rollback) unless `fedwall
 * confirm` signals it within c->secs, under the state directory's lock;
 * refused while another is pending.  Returns twice: in the caller (0 once
 * the watcher reported that it applied and recorded the pending confirm,
 * else -errno after reporting) and in the watcher when it is done (both
 * free what they hold and return from main).  Changes the table,
 * STATE_DIR/confirm.pending, rollback, confirm.rolledback, live.cache. */
int engine_confirm_apply(const struct engine_confirm *c, struct diag *d);

/* Reads STATE_DIR/confirm.pending.  0; -ENOENT; -EPERM for a file that is
 * no private regular file (reported through `d`, when not NULL); -EINVAL
 * for a damaged one.  Changes nothing. */
int engine_pending_read(const char *state_dir, struct engine_pending *pd, struct diag *d);

/* Whether pid runs `fedwall apply --confirm` (/proc/PID/cmdline): a
 * recycled pid is left alone. */
bool engine_confirm_watcher(long pid);

/* Sends the watcher of `pd` its token (SIGUSR1, sigqueue).  0 or -errno. */
int engine_confirm_send(const struct engine_pending *pd);

/* The first line of the note a rollback left (STATE_DIR/confirm.rolledback,
 * without its newline) and its token; NULL when there is none.  The
 * caller frees. */
char *engine_confirm_marker(const char *state_dir, uint64_t *token);

/* Prints to `out` a pending apply --confirm and the note an earlier
 * rollback left in the state directory; `clear` removes that note. */
void engine_confirm_notes(const char *state_dir, bool clear, FILE *out);

/* ---- the daemon's schedule (engine/schedule.c) -------------------------- */

#define ENGINE_LIST_PERIOD_MS 60000     /* lists are read again at least this often */
#define ENGINE_LIST_STAT_MS 2000        /* and their mtime looked at this often */
#define ENGINE_LOCK_RETRY_MS 5000       /* after the lock was busy */
#define ENGINE_CHECK_MAX_MS 60000       /* the table is compared at least this often */
#define ENGINE_CHECK_MIN_MS 1000
#define ENGINE_WAIT_MAX_MS 3600000      /* the longest sleep */

/* When each source of a policy is due and when the next cycle is.  All
 * times are milliseconds of the caller's monotonic clock (`now`). */
struct engine_sched {
	const struct policy *p;         /* borrowed */
	struct srcset *src;             /* owned: the policy's sources; their `due`
					 * flags are what the next cycle does */
	uint64_t *due;                  /* per source: when it is due */
	uint64_t next_stat;             /* lists' mtimes looked at */
	uint64_t next_check;            /* the kernel's table compared, even when no
					 * source is due */
	double (*rnd)(void);            /* the jitter's draw in [0, 1), set by the
					 * caller; NULL: random() */
};

/* (Re)builds the schedule of p's sources (s zeroed, or initialised
 * before: what it held is freed): lists due at once, names too when
 * `dns_now`, else just after (the start: the state is enough to
 * protect). */
void engine_sched_init(struct engine_sched *s, const struct policy *p, bool dns_now,
		       uint64_t now);
void engine_sched_free(struct engine_sched *s);

/* Sets each source's `due` flag (its time came, or it is a list whose
 * mtime changed, looked at every ENGINE_LIST_STAT_MS); whether a cycle is
 * due: a source is, or the table's check (every resolve.ttl_min, between
 * ENGINE_CHECK_MIN_MS and ENGINE_CHECK_MAX_MS). */
bool engine_sched_due(struct engine_sched *s, uint64_t now);

/* After a cycle: each source that was due is due again (a list after
 * ENGINE_LIST_PERIOD_MS; a name at its TTL, or at ttl_min after a failure,
 * jittered: sched_delay_ms; a list URL or feed after its interval, sooner
 * after a failure: sched_fetch_delay_ms), its flag cleared; the next
 * check set. */
void engine_sched_done(struct engine_sched *s, uint64_t now);

/* The lock was busy: what was due, and the check, are tried again after
 * ENGINE_LOCK_RETRY_MS. */
void engine_sched_busy(struct engine_sched *s, uint64_t now);

/* Every name due now (after the start's cycle from the state). */
void engine_sched_names_now(struct engine_sched *s, uint64_t now);

/* How long to sleep until the next due time (0: now), at most
 * ENGINE_WAIT_MAX_MS. */
int engine_sched_wait_ms(const struct engine_sched *s, uint64_t now);

/* ---- why an address is admitted or dropped (engine/explain.c) ----------- */

/* Contract of `fedwall explain`: what a table does with one address (and
 * one port, when asked) is read from the IR alone (explain_table), so that
 * the table the policy and the state make and the live table read back
 * are asked the same way, and an element added behind fedwall's back
 * shows; where the policy and its sources name the address
 * (explain_sources) comes from the policy and the sources as plan and
 * generate see them (list files read now, every line that covers it; host
 * names and SRV domains from the state directory), never from the kernel,
 * which keeps no provenance.  Nothing here changes the kernel or the
 * state directory. */

/* What admits an address: an element of a partner's address map, a
 * management entry (inbound), an outbound allowance, a peer of the HA
 * pair (inbound; its port: udp/PORT for conntrackd, protocol 112 and
 * port 0 for VRRP). */
enum explain_via { EXPLAIN_BY_PARTNER = 0, EXPLAIN_BY_MGMT, EXPLAIN_BY_ALLOW, EXPLAIN_BY_HA };

/* One admission: who, in which direction, on which port range, by which
 * element.  Strings borrowed from the ruleset explained. */
struct explain_admit {
	enum explain_via via;
	bool inbound;           /* from the address (else: to it) */
	const char *partner;    /* EXPLAIN_BY_PARTNER: whose chain the element jumps to */
	const char *set;        /* the map or set that holds the element */
	struct prefix elem;     /* the element (its address part) */
	struct portrange port;  /* the ports it is admitted on */
};

/* What a table does with the address (a VEC of admissions), and when
 * nothing admits it in a direction, the rule that drops it: the counter
 * of the last drop of edge_in / edge_out, and the ports that drop is
 * limited to (the restricting ports, `fedports`; NULL: every port).
 * drop_out is NULL for a port no service restricts: the edge calls
 * anybody there.  Borrowed from the ruleset. */
struct explain_table {
	struct explain_admit *v;
	size_t n, cap;
	const char *drop_in, *drop_out;
	const struct ir_set *drop_in_ports, *drop_out_ports;
	const char *drop_in_chain;      /* the chain of drop_in: edge_in, or ha_in
					 * (the HA pair's port from a non-peer) */
};

/* Fills `t` (zeroed on entry) with what `rs` (may be NULL: nothing) does
 * with host address `addr`: every port class's address map holding it
 * (through the port dispatch maps, each port range) and every management
 * or allowance element covering it; with `port` (NULL: every port; else
 * one port, lo == hi) only what admits it on that port.  Pure. */
void explain_table(const struct ir_ruleset *rs, const struct prefix *addr,
		   const struct portrange *port, struct explain_table *t);
void explain_table_free(struct explain_table *t);
/* Whether two tables admit the address alike (same via, direction,
 * partner, element and ports), and whether `t` has admission `a`. */
bool explain_tables_agree(const struct explain_table *a, const struct explain_table *b);
bool explain_admitted(const struct explain_table *t, const struct explain_admit *a);

enum explain_kind {
	EXPLAIN_INLINE = 0,     /* a partner's `addresses:` */
	EXPLAIN_HOST,           /* a DNS name (A/AAAA) of `hosts:` */
	EXPLAIN_SRV,            /* an SRV record of a `domains:` entry */
	EXPLAIN_LIST,           /* a line of a list file of `lists:` */
	EXPLAIN_MGMT,           /* a `management:` entry's `from:` */
	EXPLAIN_ALLOW,          /* an `outbound: {allow}` entry's `to:` */
	EXPLAIN_URL,            /* a list URL of `lists:` (what the state keeps) */
	EXPLAIN_FEED,           /* a provider feed of `feeds:` */
	EXPLAIN_HA,             /* a peer of `ha:` */
};

/* One place that names the address. */
struct explain_source {
	enum explain_kind kind;
	size_t partner;         /* index into p->partners; SIZE_MAX: management, allowance */
	size_t entry;           /* EXPLAIN_MGMT, EXPLAIN_ALLOW: index of the entry */
	const char *name;       /* host, domain or list path as written (the policy's) */
	char *record;           /* EXPLAIN_SRV: the SRV record asked
				 * ("_sipfederationtls._tcp.example.com"), owned */
	const char *service;    /* EXPLAIN_SRV: its SRV label (static) */
	/* EXPLAIN_SRV: the SRV kind (policy.h) whose services alone admit
	 * its addresses (partner_srv_scoped); 0: all the partner's. */
	unsigned scope;
	struct loc at;          /* the policy's entry */
	struct loc line;        /* EXPLAIN_LIST: the list's line (else = at) */
	struct prefix prefix;   /* what it says: the prefix that holds the address */
	const char *status;     /* "inline", "read now", "confirmed now", "last
				 * known good", "stale (dropped)" (static) */
	bool counts;            /* its addresses count now (inline, fresh, kept) */
	bool dnssec;            /* the state's answer was DNSSEC-validated */
	uint32_t ttl;
	int64_t confirmed;      /* last confirmed (lists: the file's mtime); 0: never */
	/* EXPLAIN_URL, EXPLAIN_FEED: when its body was last fetched (0:
	 * never), the validator in use ("ETag \"x\"", "Last-Modified ...",
	 * "version ..."; owned, NULL: none) and the feed's ports for the
	 * address, with the publisher's entries that give them ("tcp/443
	 * (feed entry 12)"; NULL: all the partner's; owned). */
	int64_t fetched;
	char *validator;
	char *ports;
};

struct explain_sources {
	struct explain_source *v;
	size_t n, cap;
};

struct srcset;

/* Every place of policy `p` and of its sources `s` (filled; may be NULL)
 * that names `addr`, in the policy's order then the sources': each
 * inline prefix, management and allowance entry that covers it; each
 * source whose addresses (fresh, kept or gone stale) cover it, and for a
 * list every line of the file that covers it (read again: exact or a
 * containing prefix).  `out` is zeroed on entry.  Reads list files. */
void explain_sources(const struct policy *p, const struct srcset *s, const struct prefix *addr,
		     int64_t now, struct explain_sources *out);
void explain_sources_free(struct explain_sources *s);
/* Whether some source that counts names admission `a`'s element for its
 * partner (or its management / allowance entry): else the table holds
 * what the policy does not say (added behind fedwall's back, or the
 * state moved on since the last apply). */
bool explain_backed(const struct policy *p, const struct explain_sources *s,
		    const struct explain_admit *a);

/* engine_explain()'s question and answer; the caller owns the strings,
 * which must outlive the call. */
struct engine_explain {
	/* in: */
	const char *policy;     /* the policy file */
	const char *state_dir;
	bool from_live;         /* answer from the live table (else the policy's) */
	struct prefix addr;     /* a host address */
	bool has_port;
	struct portrange port;  /* with has_port: one port (lo == hi) */
	int64_t now;            /* unix time; 0: now */
	/* out (engine_explain_free frees): */
	struct policy *p;               /* when it loaded */
	struct ir_ruleset *want;        /* the table policy and state make (engine_want_build) */
	struct ir_ruleset *live;        /* from_live: the table read back */
	struct explain_table table;     /* of live (from_live) or want */
	struct explain_table policy_table;      /* of want */
	struct explain_sources sources;
};

/* Why partner i (which some source names the address for) admits it on
 * none of the ports asked, in e->table: what names it does not count,
 * the port is not its services', the live table lacks it, or another
 * partner's longer prefix owns it there; NULL when it does admit it.
 * A static string. */
const char *explain_partner_why(const struct engine_explain *e, size_t i);

/* Answers `e`: the policy's table built as plan builds it (offline:
 * engine_want_build), with from_live the table read back (nft_read,
 * never the cache), each explained (explain_table), and the provenance
 * (explain_sources) from the policy, its lists and the state directory.
 * 0, or -errno after reporting (-EINVAL: the policy or its sources were
 * refused; -ENOENT: no live table).  Changes nothing. */
int engine_explain(struct engine_explain *e, struct diag *d);
void engine_explain_free(struct engine_explain *e);

#endif

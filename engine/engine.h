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

#endif

/* iface.c - whether the interfaces a host-mode policy filters exist, and
 * the HA pair's interface (ha.interface) in either mode.
 *
 * nftables matches `iifname "ens3"` against the name of the interface a
 * packet came in on, and a name that no interface has matches nothing:
 * the edge chain is never entered and every port is open, with a
 * ruleset that looks perfectly normal.  So a name this machine does not
 * have fails closed (the caller refuses to load the policy), unless the
 * operator said the interface comes later; then status reports it.
 */
#include "engine/engine.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>

enum iface_state iface_state(const char *name, char real[IF_NAMESIZE])
{
	unsigned idx = if_nametoindex(name);

	real[0] = '\0';
	if (!idx)
		return IFACE_ABSENT;
	/* The kernel finds a device by an alternative name too (ip link
	 * property add ... altname), but iifname compares the name alone. */
	if (!if_indextoname(idx, real))
		return IFACE_ABSENT;
	return strcmp(real, name) ? IFACE_ALTNAME : IFACE_PRESENT;
}

/* What a missing interface does, by the key that names it. */
static const char *consequence(const char *key)
{
	if (!strcmp(key, "ha.interface"))
		return "the peers' VRRP and sync would be dropped on every interface"
		       " (both nodes would take the virtual addresses)";
	return "the ruleset would filter nothing on it, and nothing on the interfaces"
	       " this machine has";
}

static void report(struct diag *d, enum iface_how how, const struct strval *iface,
		   const char *key, enum iface_state st, const char *real)
{
	static const char *const then[] = {
		[IFACE_REFUSE] = "nothing was applied (--allow-missing-interfaces"
				 " loads it all the same, for an interface that comes later)",
		[IFACE_WARN] = "its rule filters nothing until it exists",
		[IFACE_NOTE] = "apply, refresh and the daemon refuse this policy here"
			       " unless --allow-missing-interfaces",
	};
	void (*say)(struct diag *, const struct loc *, const char *, ...) PRINTF(3, 4) =
		how == IFACE_REFUSE ? diag_error : how == IFACE_WARN ? diag_warn : diag_note;

	if (st == IFACE_ALTNAME)
		say(d, &iface->loc, "interface '%s' is an alternative name of '%s', and"
		    " nftables matches the name alone: write '%s'; %s", iface->s, real, real,
		    then[how]);
	else
		say(d, &iface->loc, "this machine has no interface '%s' (%s): %s; %s",
		    iface->s, key, consequence(key),
		    how == IFACE_WARN && !strcmp(key, "ha.interface")
		    ? "the peers' traffic is dropped until it exists" : then[how]);
}

/* One interface the policy names under `key`; true when it is absent. */
static bool iface_check(const struct strval *iface, const char *key, enum iface_how how,
			struct diag *d)
{
	char real[IF_NAMESIZE];
	enum iface_state st = iface_state(iface->s, real);

	if (st == IFACE_PRESENT)
		return false;
	/* An alternative name never starts to match: nothing to wait for. */
	if (st == IFACE_ALTNAME && how == IFACE_WARN)
		how = IFACE_REFUSE;
	report(d, how, iface, key, st, real);
	return true;
}

size_t ifaces_check(const struct policy *p, enum iface_how how, struct diag *d)
{
	size_t bad = 0;

	/* ha.interface in either mode: the pair's traffic ends on the node. */
	if (p->ha.interface.s)
		bad += iface_check(&p->ha.interface, "ha.interface", how, d);
	if (p->mode != MODE_HOST)
		return bad;
	for (size_t i = 0; i < p->edge.ninterfaces; i++)
		bad += iface_check(&p->edge.interfaces[i], "edge.interfaces", how, d);
	return bad;
}

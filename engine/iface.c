/* iface.c - whether the interfaces a host-mode policy filters exist.
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

static void report(struct diag *d, enum iface_how how, const struct strval *iface,
		   enum iface_state st, const char *real)
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
		say(d, &iface->loc, "this machine has no interface '%s' (edge.interfaces):"
		    " the ruleset would filter nothing on it, and nothing on the interfaces"
		    " this machine has; %s", iface->s, then[how]);
}

size_t ifaces_check(const struct policy *p, enum iface_how how, struct diag *d)
{
	char real[IF_NAMESIZE];
	size_t bad = 0;

	if (p->mode != MODE_HOST)
		return 0;
	for (size_t i = 0; i < p->edge.ninterfaces; i++) {
		enum iface_state st = iface_state(p->edge.interfaces[i].s, real);
		enum iface_how h = how;

		if (st == IFACE_PRESENT)
			continue;
		/* An alternative name never starts to match: nothing to wait for. */
		if (st == IFACE_ALTNAME && h == IFACE_WARN)
			h = IFACE_REFUSE;
		bad++;
		report(d, h, &p->edge.interfaces[i], st, real);
	}
	return bad;
}

/* feed.h - provider feeds (a partner's `feeds:`): a fetched body ->
 * addresses, each with the ports its publisher names for it.
 *
 * Internal header of the refresh module, part of refresh/refresh.h.
 * refresh/feed.c is the only file that includes <jansson.h>; its parsers
 * are pure (no I/O): the fetch hands them a whole body.
 *
 * Every format's parser (one per enum feed_format, policy.h) refuses a
 * body over FEED_MAX_BODY before parsing, JSON nested deeper than
 * FEED_MAX_DEPTH, duplicate keys, a wrong type or a missing key, and a
 * bad prefix: one error naming the feed (`name`), the JSON path or entry
 * id and the value, and nothing from that body.  Prefixes obey the
 * guards as list lines do (min_prefix_v4/v6; more than max_entries
 * prefixes refuses the body).
 *
 * m365 (Microsoft 365 endpoints web service): each endpoint set that
 * passes the filters gives its `ips`, on its own tcpPorts/udpPorts; a
 * set without ips gives nothing.  aws (ip-ranges.json): prefixes[] and
 * ipv6_prefixes[] that pass the filters, on all the partner's ports.
 * plain: list_parse()'s syntax, on all the partner's ports.
 *
 * Ownership: a feed_addrs owns its arrays; feed_addrs_free() on a zeroed
 * one is a no-op.
 */
#ifndef FEDWALL_FEED_H
#define FEDWALL_FEED_H

#include "common/common.h"
#include "policy/policy.h"

#define FEED_MAX_BODY (256u << 20)      /* bytes: LIST_MAX_FILE, FETCH_MAX_MAX_SIZE */
#define FEED_MAX_DEPTH 32               /* JSON nesting; the feeds use 3 */
#define FEED_ALL_PORTS UINT32_MAX

/* The ports some of a feed's addresses are published for. */
struct feed_group {
	struct portrange *ports;        /* merged, sorted; never empty */
	size_t nports;
	char *id;               /* the publisher's entries that gave them, for
				 * messages: m365 set ids "11", "13,22" */
};

struct feed_addrs {
	struct prefix *v;       /* sorted (prefix_cmp), unique */
	/* Parallel to v: index into grps (the address is admitted on those
	 * ports at most), or FEED_ALL_PORTS (on all the partner's).  An m365
	 * prefix in several sets is one entry on the union of their ports. */
	uint32_t *grp;
	size_t n;
	struct feed_group *grps;
	size_t ngrps;
};

/* Parses the body of feed `f`; `name` (the URL, say) is what diagnostics
 * call it.  `g` (may be NULL: no guards) bounds prefixes as for lists.
 * On any problem reports it, leaves `out` zeroed and returns false. */
bool feed_parse(const struct feed *f, const char *name, const char *body, size_t len,
		const struct guards *g, struct feed_addrs *out, struct diag *d);

/* The Microsoft 365 version answer (`/version/<instance>`):
 * {"instance": "Worldwide", "latest": "2024053100"}.  *latest: malloc'd,
 * [0-9A-Za-z._-]{1,64}.  False after reporting a body that is not that. */
bool feed_version_parse(const char *name, const char *body, size_t len, char **latest,
			struct diag *d);

void feed_addrs_free(struct feed_addrs *a);

/* Appends what `a` holds to `l`, each address at `at` (the feed's loc),
 * grouped addresses with their ports (addr_list_push_ports). */
struct addr_list;
void feed_addrs_push(const struct feed_addrs *a, const struct loc *at,
		     struct addr_list *l);

#endif

/* dns.h - resolving partners' host names (A/AAAA) and federation domains
 * (SRV, then every target's A/AAAA) through libunbound.
 *
 * Internal header of the refresh module; it will be folded into
 * refresh/refresh.h.  Only refresh/ includes <unbound.h>.
 *
 * Many names resolve in parallel (ub_resolve_async), each DNS lookup with
 * its own timeout and the whole batch under one deadline: a dead server
 * costs at most the per-query timeout and never stalls the other names.
 *
 * What comes back is never trusted blindly: addresses that are not global
 * unicast (0.0.0.0/8, 127/8, 169.254/16, 224/4, 240/4, ::, ::1, ::/96,
 * ::ffff:0:0/96, fe80::/10, ff00::/8) are dropped with a warning, so whoever
 * controls a partner's DNS cannot open the firewall to our own loopback or
 * to the world; at most DNS_MAX_ADDRS addresses per queried name are kept
 * (and per family of it).  Each family (A, AAAA) is answered on its own
 * too (struct dns_fam), so that one failing never discards the other.
 *
 * Ownership: a struct dns_query borrows `name` and `service`; its results
 * (addrs, msg) are owned by it and freed by dns_query_clear().
 */
#ifndef FEDWALL_DNS_H
#define FEDWALL_DNS_H

#include "common/common.h"
#include "policy/policy.h"

#define DNS_MAX_ADDRS 256       /* per queried name (host, or domain in total) */
#define DNS_MAX_TARGETS 32      /* SRV targets followed per domain */
#define DNS_DEFAULT_TIMEOUT_MS 3000
#define DNS_DEFAULT_DEADLINE_MS 10000
#define DNS_DEFAULT_TRUST_ANCHOR POLICY_DEFAULT_TRUST_ANCHOR

#define DNS_SRV_SIP "_sipfederationtls._tcp"
#define DNS_SRV_XMPP "_xmpp-server._tcp"

enum dns_kind {
	DNS_HOST = 0,           /* A + AAAA of name */
	DNS_DOMAIN,             /* SRV of service.name, then each target's A + AAAA */
};

/* Only DNS_OK means "these are the name's addresses now".  Every other
 * status is a failure the caller answers with the last known good
 * addresses (DNS_NOSERVICE is the one definitive "nothing here"). */
enum dns_status {
	DNS_OK = 0,
	DNS_NXDOMAIN,           /* the name does not exist */
	DNS_NODATA,             /* the name exists, but no usable address (or SRV) */
	DNS_NOSERVICE,          /* SRV target "." alone: the service is not offered */
	DNS_SERVFAIL,           /* server failure, refused, or other rcode */
	DNS_TIMEOUT,            /* no answer within the timeout or the deadline */
	DNS_BOGUS,              /* DNSSEC validation failed (dnssec_require) */
	DNS_INSECURE,           /* answer not DNSSEC-validated (dnssec_require) */
	DNS_ERROR,              /* local failure: bad name, resolver setup */
};

/* One address family of a query's answer: a host's A (or AAAA) records,
 * or those of every SRV target of a domain (the SRV answer itself counts
 * for both).  Each family is a source of its own: one failing (SERVFAIL,
 * REFUSED, a timeout) leaves the other's answer whole.  A family without
 * addresses is DNS_OK (a valid empty answer: NODATA) when the other
 * family has addresses or failed; when neither has any, both take the
 * name's status (DNS_NXDOMAIN, DNS_NOSERVICE or DNS_NODATA), as a whole
 * name without addresses always did. */
struct dns_fam {
	enum dns_status status;
	struct prefix *addrs;   /* host prefixes of this family, sorted, unique
				 * (with a failed status: partial, as above) */
	size_t naddrs;
	uint32_t ttl;           /* lowest TTL of the records used for it (the
				 * SRV's too) that had data; an empty family
				 * takes the name's (ttl below) */
	bool secure;            /* every answer used was DNSSEC-validated */
	char *msg;              /* "NAME AAAA: servfail (...)", never NULL
				 * after resolve */
};

struct dns_query {
	/* in: */
	enum dns_kind kind;
	const char *name;       /* host or domain, borrowed; trailing dot optional */
	const char *service;    /* DNS_DOMAIN: SRV label; NULL = DNS_SRV_SIP */
	bool dnssec_require;    /* refuse answers that are not secure: a
				 * bogus one is DNS_BOGUS ("DNSSEC: bogus:
				 * WHY"), an unvalidated one DNS_INSECURE */
	const char *trust_anchor;  /* dnssec_require: the anchor file,
				    * borrowed (policy's resolve.trust_anchor);
				    * NULL: dns_opts' */
	bool srv_in_domain;     /* DNS_DOMAIN: a target must be name, or one
				 * of srv_targets, or lie under one of them;
				 * others are dropped with a warning (what
				 * refresh asks for every service; false
				 * follows any target) */
	const struct strval *srv_targets;  /* borrowed: suffixes, lowercase,
					    * no trailing dot (policy's) */
	size_t nsrv_targets;
	struct loc loc;         /* where the name stood; for warnings (may be 0) */

	/* out (dns_resolve fills, dns_query_clear frees): */
	enum dns_status status;
	struct prefix *addrs;   /* host prefixes, sorted, unique.  With a
				 * failed status of a domain: the addresses of
				 * the targets that did resolve (partial) */
	size_t naddrs;
	uint32_t ttl;           /* lowest TTL over every record used (the SRV
				 * and each target's A/AAAA) that had data; 0
				 * if none (negative answers do not count) */
	bool secure;            /* every answer used was DNSSEC-validated */
	unsigned dropped;       /* addresses refused (not unicast, over cap) */
	char *msg;              /* one line for the log, never NULL after resolve */
	struct dns_fam fam[2];  /* [0]: IPv4 (A), [1]: IPv6 (AAAA); the fields
				 * above are both together */
};

struct dns_opts {
	const char *resolv_conf;  /* NULL: /etc/resolv.conf */
	const char *hosts;        /* NULL: /etc/hosts; "": none */
	const char *forwarder;    /* an explicit resolver address ("127.0.0.1",
				   * "2001:db8::53@5353"), used instead of
				   * resolv_conf (tests, or an operator choice) */
	const char *trust_anchor; /* for dnssec_require queries without their
				   * own; NULL: DNS_DEFAULT_TRUST_ANCHOR */
	unsigned timeout_ms;      /* per DNS lookup; 0: DNS_DEFAULT_TIMEOUT_MS */
	unsigned deadline_ms;     /* per dns_resolve() call; 0: DNS_DEFAULT_DEADLINE_MS */
};

struct dns_ctx;

/* Builds a resolver from `o` (NULL: all defaults).  NULL after reporting
 * through `d` (unreadable resolv.conf or hosts, bad forwarder address).
 * The trust anchor is read only when a dnssec_require query comes (one
 * anchor per context): one that is missing or unusable fails those
 * queries (DNS_ERROR, "DNSSEC: trust anchor 'FILE': why"), not the
 * others. */
struct dns_ctx *dns_ctx_new(const struct dns_opts *o, struct diag *d);
void dns_ctx_free(struct dns_ctx *c);

/* `check`'s look at the policy's DNSSEC: resolve.trust_anchor must be a
 * readable file (an error at its FILE:LINE:COL); the default
 * (DNS_DEFAULT_TRUST_ANCHOR) missing while a partner requires DNSSEC is
 * a warning (its refresh would fail those partners' names).  False
 * after an error. */
bool dns_anchor_check(const struct policy *p, struct diag *d);

/* Resolves the n queries in parallel and fills their results; returns
 * when every one is answered, or when the deadline passes (what is left
 * then reports DNS_TIMEOUT).  Dropped addresses and refused targets are
 * warned about through `d`; failures are in each query's status and msg,
 * not in `d`.  Results of a previous call are cleared first. */
void dns_resolve(struct dns_ctx *c, struct dns_query *q, size_t n,
		 struct diag *d);
void dns_query_clear(struct dns_query *q);

/* From now on every dns_resolve() stops waiting as soon as `fd` is
 * readable (-1: never): what is unanswered then reports DNS_TIMEOUT ("no
 * answer before fedwall was asked to stop").  The daemon passes its
 * signalfd of SIGTERM and SIGINT, which it reads only after the cycle:
 * whatever resolve.timeout says, a stop is answered at once.  The fd is
 * only polled, never read. */
void dns_stop_on(int fd);

const char *dns_status_name(enum dns_status s);

/* True for addresses a partner may have: not unspecified, loopback,
 * link-local, multicast, reserved, or IPv4-mapped/-compatible IPv6. */
bool dns_addr_usable(const struct prefix *p);

#endif

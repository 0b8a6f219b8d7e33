/* refresh.h - where partner addresses beyond the inline ones come from:
 * list files, the state directory, DNS, list URLs and provider feeds.
 * The module's face: it includes refresh/dns.h (resolution),
 * refresh/fetch.h (HTTPS), refresh/feed.h (feed formats) and
 * refresh/state.h (last known good), whose declarations are part of it.
 *
 * Offline (sources_offline, srcset_fill without a DNS context): list files
 * are read directly (they are local); host names, SRV domains, list URLs
 * and feeds contribute what the state directory knows, never a live DNS
 * query or fetch, so `check`, `generate`, `plan` and `apply` work offline
 * and reproducibly.  Online (refresh, daemon, --resolve): names are
 * resolved, URLs and feeds fetched (src_opts.fetch), and a source that
 * fails keeps its last known good addresses until stale_after.
 *
 * List file format: one address or CIDR prefix a line; `#` starts a
 * comment; blank lines, surrounding whitespace and CRLF line ends are
 * fine.  A bad line is an error `PATH:LINE:COL: error: 'VALUE': reason`
 * and refuses the whole list.  List prefixes obey the same guards as
 * inline ones (min_prefix_v4, min_prefix_v6, and the runs they join
 * into: guard_width); a list of more than guards.max_entries entries is
 * refused as it is read, before it is held in memory.
 *
 * Ownership: an addr_list owns its arrays; its locs borrow the path
 * string given to list_read (the policy's, which must outlive them).
 * addr_list_free() and sources_free() on zeroed structs are no-ops.
 */
#ifndef FEDWALL_REFRESH_H
#define FEDWALL_REFRESH_H

#include "common/common.h"
#include "policy/policy.h"
#include "refresh/dns.h"
#include "refresh/feed.h"
#include "refresh/fetch.h"
#include "refresh/state.h"

#define LIST_MAX_LINE 1024              /* bytes, line end excluded */
#define LIST_MAX_FILE (256u << 20)      /* bytes */
#define LIST_MAX_ERRORS 20              /* reported per file, then one summary */

/* Addresses with where each was read (VEC-like: v, n, cap). */
struct addr_list {
	struct prefix *v;
	struct loc *locs;       /* parallel to v */
	size_t n, cap;
	/* Parallel to v, or NULL (all 0): the SRV kinds (policy.h) whose
	 * services alone admit the address; 0: all the partner's services.
	 * Allocated by the first push of a scoped address. */
	uint8_t *scope;
	/* Parallel to v, or NULL (all 0): 0, the address is admitted on all
	 * the ports its scope gives; k > 0: on those of them that are in
	 * pgroups[k - 1] too (a provider feed's ports for it), never beyond
	 * the partner's services.  Equal port sets share one group.
	 * Allocated by the first push with ports (refresh/portgroup.c). */
	uint32_t *pgrp;
	struct portset *pgroups;
	size_t npgroups;
};

void addr_list_push(struct addr_list *l, const struct prefix *p, const struct loc *at);
void addr_list_push_scoped(struct addr_list *l, const struct prefix *p,
			   const struct loc *at, unsigned scope);
/* Room for `more` entries beyond l->n, so that a run of pushes copies
 * the arrays at most once. */
void addr_list_reserve(struct addr_list *l, size_t more);
/* addr_list_push(), the address admitted on `ports` (nports of them, any
 * order) at most: on those of its partner's services' ports that are
 * among them, and nowhere when none is. */
void addr_list_push_ports(struct addr_list *l, const struct prefix *p,
			  const struct loc *at, const struct portrange *ports,
			  size_t nports);
/* The port group of address i of l: NULL when it has none (all ports). */
const struct portset *addr_list_ports(const struct addr_list *l, size_t i);
/* Address i (< l->n) of l admitted on `ports` at most, as a push with
 * them would have made it. */
void addr_list_set_ports(struct addr_list *l, size_t i, const struct portrange *ports,
			 size_t nports);
void addr_list_free(struct addr_list *l);

/* Appends the addresses of list file `path` to `out`.  `g` (may be NULL)
 * gives the minimum prefix lengths.  On any problem, reports every bad
 * line (or the file's errno), leaves `out` as it was and returns false. */
bool list_read(const char *path, const struct guards *g, struct addr_list *out,
	       struct diag *d);
/* list_read(), and *id (may be NULL) the identity of the file read, or
 * zero when it cannot vouch for the bytes read: the file changed while
 * read, or its ctime is within LIST_RACY_NS of now (2 s on a file system
 * without sub-second timestamps), when a second write in the same
 * timestamp tick would go unseen.  Zero on failure too. */
bool list_read_id(const char *path, const struct guards *g, struct addr_list *out,
		  struct state_ident *id, struct diag *d);
#define LIST_RACY_NS 50000000   /* 50 ms: a few of the kernel's timestamp ticks */
struct stat;
/* The identity state_ident keeps of a file stat() describes. */
void list_ident(const struct stat *sb, struct state_ident *id);
/* The same from memory (`len` bytes, NULs included); `name` is what the
 * locs and diagnostics call the file and must outlive `out`.  list_read()
 * refuses, before parsing, what is not a regular file (a FIFO, a
 * directory, a device such as /dev/zero) and a file over LIST_MAX_FILE. */
bool list_parse(const char *name, const char *buf, size_t len, const struct guards *g,
		struct addr_list *out, struct diag *d);

/* Per partner, the addresses beyond its inline ones. */
struct sources {
	struct addr_list *partners;     /* parallel to policy->partners */
	size_t n;
	/* in (apply): record in the state directory what was read fresh,
	 * when all of it was good: each list file with its identity,
	 * --resolve's answers, as refresh saves them (under the state
	 * directory's lock; not while the state is behind the table), so
	 * that the first refresh after an apply does not read an unchanged
	 * list again, and patches a changed one onto the table the apply
	 * left.  A state that cannot be written is a note, nothing more. */
	bool record;
};

/* Fills `out` from the partners' list files and what `state_dir` knows of
 * their hosts and domains.  False after reporting an error (a list that
 * cannot be read or has a bad line); `out` is then still freeable. */
bool sources_offline(const struct policy *p, const char *state_dir,
		     struct sources *out, struct diag *d);
/* The same with every host name and domain resolved through `dns` now;
 * those that fail keep their last known good addresses from the state. */
bool sources_online(const struct policy *p, const char *state_dir,
		    struct dns_ctx *dns, struct sources *out, struct diag *d);
void sources_free(struct sources *s);

/* ---- sources with last known good ------------------------------------ */

#define DNS_SRV_MATRIX "_matrix-fed._tcp"
#define SRV_MAX_SERVICES 3

/* The SRV services a partner's domains are queried for, from its
 * services: sip-federation, av-edge, web-conferencing and
 * teams-direct-routing -> DNS_SRV_SIP; xmpp-s2s -> DNS_SRV_XMPP;
 * matrix-federation -> DNS_SRV_MATRIX.  Each at most once, in that order;
 * a partner with none of them gets DNS_SRV_SIP (the federation fedwall
 * was made for).  Returns how many (1..SRV_MAX_SERVICES). */
size_t srv_services(const struct policy *p, const struct partner *pt,
		    const char *out[SRV_MAX_SERVICES]);

/* The SRV kind (policy.h: SRV_SIP, ...) of an SRV label, 0 if none; the
 * labels of kinds `kinds` ("_sipfederationtls._tcp, _xmpp-server._tcp")
 * into `out` (returned). */
unsigned srv_kind(const char *label);
char *srv_labels(unsigned kinds, char *out, size_t size);

enum src_status {
	SRC_UNKNOWN = 0,        /* never confirmed: contributes nothing */
	SRC_FRESH,              /* confirmed now */
	SRC_KEPT,               /* not due, or failed: last known good from the state */
	SRC_STALE,              /* failed past stale_after: its addrs are dropped */
	SRC_DROPPED,            /* failed, and an earlier run dropped its addrs
				 * (the state's dropped mark): contributes
				 * nothing until it answers, reported stale */
};

/* One address source of one partner: one family (A or AAAA records) of a
 * host name or of a (domain, SRV service)'s targets, a list file, or a
 * list URL (STATE_URL: fetched by refresh, the daemon and --resolve,
 * from the state otherwise).  A
 * name's two families are two sources, each with its own last known
 * good, TTL and staleness: one failing never discards or freezes the
 * other. */
struct src {
	enum state_kind kind;
	uint8_t family;         /* 4: A records, 6: AAAA; 0: a list file or URL */
	char *key;              /* state name: host, "_svc._tcp.domain", list path, URL */
	const char *name;       /* as written (borrowed from the policy) */
	const char *service;    /* STATE_DOMAIN: SRV label (static) */
	/* STATE_DOMAIN: the SRV kind (policy.h) whose services alone admit
	 * its addresses (partner_srv_scoped); 0: all the partner's services. */
	uint8_t scope;
	size_t partner;         /* index into policy->partners */
	struct loc loc;         /* borrowed from the policy */
	/* The partner requires DNSSEC: only a validated answer counts, and
	 * the state's last known good only when it was validated (one from
	 * before `dnssec: require` is as good as none). */
	bool dnssec;
	bool due;               /* in: resolve or read it now (else: state) */
	/* out of srcset_fill: */
	enum src_status status;
	bool failed;            /* was due and did not answer */
	const char *why;        /* failed: what failed (static; lists only) */
	bool changed;           /* fresh, and not what the state had */
	struct prefix *addrs;   /* owned; SRC_STALE: the ones dropped */
	struct loc *locs;       /* owned, parallel to addrs, or NULL: a list
				 * read now says where each stands (file:line);
				 * the others stand at `loc` */
	size_t naddrs;
	uint32_t ttl;           /* fresh DNS answers */
	enum state_from from;
	int64_t confirmed;      /* unix time; 0 if never */
	int64_t mtime;          /* lists: of the file last read */
	struct state_ident ident;       /* lists: of the file read (list_read_id),
					 * or the state's when it was unchanged */
	/* STATE_URL: */
	bool insecure_http;     /* the list's opt-in (policy list_opt) */
	unsigned interval;      /* seconds between the daemon's fetches */
	bool not_modified;      /* fetched now: a 304, the state's confirmed */
	int64_t fetched;        /* unix time the body was last fetched */
	char *etag, *last_modified;     /* owned: the validators in use */
	char *fetch_why;        /* owned: why the fetch failed (why points here) */
	/* STATE_FEED (key: the URL, '#', partner and a digest of the format
	 * and filters, so that another filter is another source): */
	const struct feed *feed;        /* borrowed from the policy */
	char *version;          /* owned: the feed's version (m365 `latest`) */
	/* Owned, parallel to addrs, or NULL (ngroups 0): 0, the address is
	 * admitted on all the partner's ports; k, on groups[k - 1] among
	 * them (the feed's own ports for it). */
	uint32_t *grp;
	struct portset *groups;
	size_t ngroups;
	char *group_ids;        /* owned: state_entry.group_ids */
};

/* Whether x is a DNS source (a host name's or a domain's family). */
bool src_is_dns(const struct src *x);

struct srcset {
	struct src *v;          /* partners' order, then hosts, domains, lists;
				 * a name's family 4 right before its family 6 */
	size_t n;
};

/* Every source of every partner, nothing due. */
void srcset_build(const struct policy *p, struct srcset *s);
void srcset_free(struct srcset *s);

struct src_opts {
	struct dns_ctx *dns;    /* NULL: host names and domains from the state */
	bool fetch;             /* fetch due list URLs (else: the state's) */
	bool strict_lists;      /* a bad list is an error (offline commands),
				 * not a failed source kept on its last known
				 * good addresses (refresh, daemon) */
	int64_t now;            /* unix time */
};

/* Fills each source's result: due ones are resolved (with o->dns) or read,
 * the others and the failed ones take their last known good addresses
 * from `st` unless older than guards.stale_after (then they are dropped
 * and that is warned about, naming partner, source and age; a failing
 * source an earlier run dropped is SRC_DROPPED, and said to be still
 * stale).  A name's two sources are resolved in one query when either
 * is due (dns.h: an empty family is told from an empty name by the
 * other's answer); only the due ones take its answer.  Failures
 * are warnings through `d`; false only when strict_lists and a list could
 * not be read (an error then). */
bool srcset_fill(const struct policy *p, struct srcset *s, const struct state *st,
		 const struct src_opts *o, struct diag *d);

/* Whether source x's addresses count now: fresh, or kept on its last
 * known good (the one rule every consumer of the sources applies). */
bool src_contributes(const struct src *x);
/* Appends partner i's addresses from its fresh and kept sources. */
void srcset_partner_addrs(const struct srcset *s, size_t partner,
			  struct addr_list *out);
/* The state's last known good of source k (s->v[k]), unless stale at
 * `now`; NULL when it has none.  Borrowed from `st`. */
const struct state_entry *srcset_state_of(const struct srcset *s, const struct policy *p,
					  size_t k, const struct state *st, int64_t now);
/* Appends what the state holds (not stale at `now`) for partner i. */
void srcset_state_addrs(const struct srcset *s, const struct policy *p, size_t partner,
			const struct state *st, int64_t now, struct addr_list *out);
/* Appends partner i's addresses that went stale. */
void srcset_stale_addrs(const struct srcset *s, size_t partner, struct addr_list *out);

/* "A" or "AAAA" for a name's source, NULL for a list; "ipv4", "ipv6" or
 * NULL. */
const char *src_rr(const struct src *x);
const char *src_family_name(const struct src *x);

/* What the state says of source k at `now`, for status and the metrics. */
struct src_seen {
	int64_t confirmed;      /* unix time last confirmed; 0: never */
	bool stale;             /* confirmed more than stale_after ago */
	bool dropped;           /* its addresses were dropped (stale_after
				 * passed at a refresh): it admits nothing
				 * until it answers again */
	size_t naddrs;          /* last known good held (0 when dropped) */
	size_t ndropped;        /* dropped: how many it had */
	bool dnssec;            /* its last answer was DNSSEC-validated */
	/* A list URL or a feed (borrowed from the state; NULL: none): */
	int64_t fetched;        /* unix time its body was last fetched; 0: never */
	const char *etag, *last_modified, *version;     /* the validators in use */
};
void srcset_seen(const struct srcset *s, const struct policy *p, size_t k,
		 const struct state *st, int64_t now, struct src_seen *out);

/* Records every fresh source of a partner not in `skip` (may be NULL,
 * parallel to partners) in `st`, forgets entries that no source of `s`
 * names any more, and drops the addresses of those older than
 * stale_after (state_expire: the entry stays, marked dropped, so that
 * the source stays reported stale until it answers again). */
void srcset_record(const struct srcset *s, const struct policy *p, const bool *skip,
		   struct state *st, int64_t now);
/* Its parts: records every fresh source of a partner not in `skip`;
 * forgets the entries no source of `s` names (apply's record of what it
 * read is these two, without expiring what went stale). */
void srcset_record_fresh(const struct srcset *s, const bool *skip, struct state *st);
void srcset_forget_unnamed(const struct srcset *s, struct state *st);

/* ---- guards ------------------------------------------------------------ */

/* Why partner addresses `want` (inline ones and every source's, with
 * their locs; any order) may not be admitted at all: a contiguous run
 * of them (prefix_run_next: after every join, whether the prefixes
 * overlap, nest or touch) wider than guards.min_prefix_v4/v6, or a whole
 * family (never admitted, whatever the guards say), or more than
 * guards.max_entries prefixes once merged.  No flag overrides this and
 * nothing is exempt for being live already.  NULL if fine, else why
 * (malloc'd, one line, naming FILE:LINE of the prefixes of the run:
 * "lp.txt:2: 0.0.0.0/0 is the whole IPv4 Internet (never admitted)",
 * "0.0.0.0/1 (p.yaml:12) and 128.0.0.0/1 (p.yaml:12) join into
 * 0.0.0.0/0, ..."). */
char *guard_width(const struct guards *g, const struct addr_list *want);

/* Whether a partner may shrink from `have` (what is live) to `want`: NULL
 * if so, else why not (malloc'd, one line).  Refused: a net shrink of
 * more than guards.max_shrink percent of `have`'s addresses, IPv4 and
 * IPv6 each on its own, counted exactly (addresses removed minus those
 * added: a moved A record is no shrink; addresses covered by `exempt`,
 * those of sources gone stale, do not count): "would remove 1 prefix,
 * 256 of its 257 IPv4 addresses (99% fewer, more than guards.max_shrink
 * 50%)".  The one guard `fedwall refresh --force` overrides, and the one
 * the incremental refresh asks too.  The arrays need not be sorted. */
char *guard_max_shrink(const struct guards *g, const struct prefix *have, size_t nhave,
		       const struct prefix *want, size_t nwant,
		       const struct prefix *exempt, size_t nexempt);

/* ---- the daemon's schedule --------------------------------------------- */

#define SCHED_JITTER_PCT 10
#define SCHED_FLOOR_MS 500

/* Milliseconds until a DNS source is due again: `ttl` (0 after a failure:
 * retry at ttl_min) clamped to [ttl_min, ttl_max], then moved by up to
 * SCHED_JITTER_PCT percent either way (rnd in [0, 1) picks where), so that
 * a fleet does not resolve in lockstep; never below SCHED_FLOOR_MS. */
uint64_t sched_delay_ms(uint32_t ttl, const struct resolvecfg *r, double rnd);

#define SCHED_FETCH_RETRY_DIV 8         /* a failed fetch is retried sooner: */
#define SCHED_FETCH_RETRY_MIN 10        /* after interval/8, in [10 s, 5 min], */
#define SCHED_FETCH_RETRY_MAX 300       /* never later than the interval */

/* Milliseconds until a list URL is fetched again: its `interval`
 * (seconds), or after a failure interval / SCHED_FETCH_RETRY_DIV clamped
 * to [SCHED_FETCH_RETRY_MIN, SCHED_FETCH_RETRY_MAX] and to the interval;
 * jittered as sched_delay_ms, so that a fleet's fetches spread out. */
uint64_t sched_fetch_delay_ms(unsigned interval, bool failed, double rnd);

#endif

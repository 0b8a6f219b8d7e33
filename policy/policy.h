/* policy.h - the policy language: YAML file -> validated struct policy.
 *
 * The only module that includes <yaml.h>.  Parsers return NULL/false and
 * report every problem through struct diag; a policy that comes back
 * non-NULL is complete and valid (every reference resolved, every address
 * normalised), so the layers above never re-validate.  Every node keeps
 * the file:line:col it came from.
 *
 * Ownership: struct policy owns everything reachable from it, including
 * `file`, the string every loc.file inside points at.  policy_free(NULL)
 * is a no-op.
 */
#ifndef FEDWALL_POLICY_H
#define FEDWALL_POLICY_H

#include "common/common.h"

#define POLICY_DEFAULT_PATH "/etc/fedwall/policy.yaml"
#define POLICY_DEFAULT_TABLE "fedwall"
#define POLICY_NAME_MAX 32      /* partner, service and table names */
/* Debian's root trust anchor (dns-root-data; the file unbound uses). */
#define POLICY_DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key"

enum policy_mode { MODE_HOST = 0, MODE_GATEWAY };

enum direction {
	DIR_INBOUND = 1,        /* partner -> edge */
	DIR_OUTBOUND = 2,       /* edge -> partner */
	DIR_BOTH = 3,
};

enum log_unit { LOG_SECOND = 0, LOG_MINUTE, LOG_HOUR, LOG_DAY };

/* A string from the file, with where it stood. */
struct strval {
	char *s;
	struct loc loc;
};

struct addr_ent {
	struct prefix p;        /* normalised */
	struct loc loc;
};

struct port_ent {
	struct portrange r;
	struct loc loc;
};

struct service {
	char *name;
	char *description;      /* NULL if none */
	struct loc loc;         /* builtins: file "<builtin>", line 0 */
	struct port_ent *ports; /* merged, sorted */
	size_t nports;
	/* The ports of `ports` on which the edge may call partners only, as
	 * soon as any partner uses the service, whatever its direction
	 * (`outbound:`; the others never restrict the edge's outbound
	 * connections).  Merged, sorted, each inside `ports`. */
	struct port_ent *restricts;
	size_t nrestricts;
	bool builtin;           /* shipped with fedwall and not overridden */
};

/* A reference from a partner to a service, as written. */
struct service_ref {
	size_t idx;             /* into policy->services */
	struct loc loc;
};

/* ---- provider feeds (`feeds:` of a partner) ---------------------------- */

/* The formats a feed may be published in.  Each has its own filter keys
 * (feed_format_keys) and its own parser (refresh/feed.c); a new format
 * (Azure service tags, Google's cloud.json) is one more entry in both
 * tables. */
enum feed_format {
	FEED_PLAIN = 0,         /* a list file's syntax, as a lists URL */
	FEED_M365,              /* Microsoft 365 endpoints web service */
	FEED_AWS,               /* AWS ip-ranges.json */
};
#define FEED_FORMATS 3

/* Every filter key of every format, one index each. */
enum feed_key {
	FK_SERVICE_AREA = 0,    /* m365: serviceArea */
	FK_CATEGORY,            /* m365: category */
	FK_REQUIRED,            /* m365: required ("true" / "false") */
	FK_IDS,                 /* m365: id (decimal) */
	FK_SERVICE,             /* aws: service */
	FK_REGION,              /* aws: region */
	FK_NBG,                 /* aws: network_border_group */
};
#define FEED_KEYS 7

/* One filter: an entry of the feed passes when its value is any of v
 * (n == 0: no filter on that key).  Values normalised: ids in decimal,
 * required "true" or "false"; sorted, unique. */
struct feed_filter {
	struct strval *v;
	size_t n;
	struct loc loc;         /* the key's */
};

struct feed {
	struct strval url;      /* https://, or http:// with insecure_http */
	struct loc loc;         /* the entry's */
	enum feed_format format;
	bool insecure_http;
	unsigned interval;      /* seconds between fetches; 0: the policy default */
	/* m365: where its version (`latest`) is asked: `version_url` as
	 * written, else derived from url (".../endpoints/INSTANCE?q" ->
	 * ".../version/INSTANCE?q"); s NULL: none, the endpoints are
	 * fetched every time (conditionally). */
	struct strval version_url;
	bool version_url_given; /* written in the file (printed back) */
	struct feed_filter filter[FEED_KEYS];
};

/* "plain", "m365", "aws"; the key's name as written ("service_area"). */
const char *feed_format_name(enum feed_format f);
const char *feed_key_name(enum feed_key k);
/* Whether format f takes filter key k. */
bool feed_format_has(enum feed_format f, enum feed_key k);
/* Whether format f publishes ports per address (m365), which narrow the
 * partner's for them. */
bool feed_format_ports(enum feed_format f);

/* How a `lists` entry is read (parallel to partner->lists). */
struct list_opt {
	/* An https:// URL (or http:// with insecure_http) that refresh, the
	 * daemon and --resolve fetch; false: a file, read where it is. */
	bool url;
	bool insecure_http;     /* the entry's opt-in to plain http:// */
	unsigned interval;      /* seconds between fetches; 0: fetch.interval */
};

struct partner {
	char *name;             /* [a-z0-9][a-z0-9_-]*, at most POLICY_NAME_MAX */
	char *description;      /* NULL if none */
	struct loc loc;
	enum direction direction;       /* default DIR_BOTH: federation is two-way */
	struct service_ref *services;   /* at least one; no duplicates */
	size_t nservices;
	struct addr_ent *addresses;     /* inline; merged (own overlaps and
					 * adjacent prefixes joined), sorted */
	size_t naddresses;
	struct strval *hosts;           /* DNS names (A/AAAA) */
	size_t nhosts;
	struct strval *lists;           /* list files, absolute paths, and
					 * list URLs (list_opts says which) */
	size_t nlists;
	struct list_opt *list_opts;     /* parallel to lists */
	struct strval *domains;         /* DNS SRV discovery */
	size_t ndomains;
	/* Where SRV targets may lie besides the partner's domains (a hosted
	 * service's edge: online.lync.com): DNS suffixes, lowercase, without
	 * the trailing dot; a target is the suffix or a name under it.
	 * Only with `domains`. */
	struct strval *srv_targets;
	size_t nsrv_targets;
	/* `dnssec: require`: its hosts' and domains' answers count only
	 * when DNSSEC-validated (resolve.trust_anchor); an unvalidated or
	 * bogus one is a failed source.  `dnssec: off` or absent: any. */
	bool dnssec_require;
	struct loc dnssec_loc;          /* where `dnssec` stood (file 0: absent) */
	struct feed *feeds;             /* provider feeds, file order */
	size_t nfeeds;
};

struct mgmt {
	struct loc loc;
	char *description;      /* NULL if none */
	struct addr_ent *from;  /* merged, sorted */
	size_t nfrom;
	struct port_ent *to;    /* merged, sorted */
	size_t nto;
};

/* outbound: {allow: [...]}: destinations the edge may always call on
 * these ports, partner or not. */
struct outallow {
	struct loc loc;
	char *description;      /* NULL if none */
	struct addr_ent *to;    /* merged, sorted */
	size_t nto;
	struct port_ent *ports; /* merged, sorted */
	size_t nports;
};

struct guards {
	unsigned max_shrink;    /* percent, 0..100; default 50 */
	unsigned min_prefix_v4; /* default 8 */
	unsigned min_prefix_v6; /* default 32 */
	unsigned stale_after;   /* seconds; default 86400 */
	unsigned max_entries;   /* prefixes per partner, merged, and per list
				 * file; default GUARD_MAX_ENTRIES */
};

/* Real lists fit (Azure's public ranges: some 56000 prefixes); a runaway
 * one (millions of lines) is refused before it costs gigabytes. */
#define GUARD_MAX_ENTRIES 250000

/* How the daemon schedules DNS sources (`resolve:`). */
struct resolvecfg {
	unsigned ttl_min;       /* seconds; a record is re-resolved no sooner; default 30 */
	unsigned ttl_max;       /* seconds; and no later; default 3600 */
	unsigned timeout;       /* seconds per DNS lookup; default 3 */
	/* The DNSSEC trust anchor file (DS or DNSKEY records, zone-file
	 * syntax), absolute; s NULL: POLICY_DEFAULT_TRUST_ANCHOR, which
	 * only partners with `dnssec: require` need. */
	struct strval trust_anchor;
};

/* How list URLs and feeds are fetched (`fetch:`). */
struct fetchcfg {
	/* CA certificates (PEM) a server must chain to, absolute; s NULL:
	 * the system's trust store. */
	struct strval ca_file;
	unsigned timeout;       /* seconds, a whole fetch; default 30 */
	uint64_t max_size;      /* bytes, a body's cap; default 16 MiB */
	unsigned interval;      /* seconds, the daemon's default per URL; 1h */
	bool written;           /* the file has `fetch:` (printed back) */
};
#define FETCH_MAX_SIZE_MAX (256ull << 20)       /* LIST_MAX_FILE */

struct logcfg {
	bool enabled;           /* default true */
	unsigned rate;          /* default 10 */
	enum log_unit unit;     /* default LOG_MINUTE */
	char *prefix;           /* default "fedwall drop: " */
};

/* ha: this node is one of a pair (keepalived's VRRP, conntrackd's state
 * sync): what the peers may send it, whatever else the policy admits. */
struct hacfg {
	bool present;           /* `ha` written */
	struct loc loc;         /* of the `ha` key */
	struct addr_ent *peers; /* single addresses (/32, /128), sorted, unique;
				 * both nodes' own may be among them */
	size_t npeers;
	struct strval interface;        /* s NULL: any interface */
	bool vrrp;              /* IP protocol 112 (VRRP v2 and v3) */
	uint16_t conntrackd;    /* udp port of conntrackd's sync; 0: none */
};

#define HA_CONNTRACKD_PORT 3780 /* conntrackd's default (conntrackd.conf(5)) */

struct policy {
	char *file;             /* as given on the command line */
	uint64_t digest;        /* FNV-1a of the file's bytes: the same policy */
	unsigned version;       /* 1 */
	char *table;            /* default POLICY_DEFAULT_TABLE */
	enum policy_mode mode;  /* default MODE_HOST */
	struct {
		struct strval *interfaces;      /* empty: every interface */
		size_t ninterfaces;
		struct addr_ent *addresses;     /* required in gateway mode */
		size_t naddresses;
	} edge;
	bool icmp_echo;         /* answer ping (icmp: {echo: true}); default false */
	struct service *services;       /* builtins first (sorted), then the
					 * file's own in file order; an
					 * override replaces the builtin */
	size_t nservices;
	struct partner *partners;       /* sorted by name */
	size_t npartners;
	struct mgmt *management;        /* file order */
	size_t nmanagement;
	struct outallow *outallow;      /* outbound: {allow}, file order */
	size_t noutallow;
	struct guards guards;
	struct resolvecfg resolve;
	struct fetchcfg fetch;
	struct logcfg log;
	struct hacfg ha;
};

/* Reads and validates a policy file.  NULL after reporting every problem. */
struct policy *policy_load(const char *path, struct diag *d);
/* Same, from memory; `name` is what diagnostics call the file. */
struct policy *policy_parse(const char *name, const char *buf, size_t len,
			    struct diag *d);
/* `check` alone: the same, but a file that parses as YAML gives a policy
 * even with errors (d->errors grows), holding the parts that were valid
 * (a partner under its name as written, its lists that were good), so
 * that the list files it names are read in the same run.  Such a policy
 * breaks the promise above (a partner may lack services, addresses or a
 * valid name): read its partners' lists and its guards, never generate
 * from it.  NULL when the file cannot be read or is not YAML. */
struct policy *policy_load_partial(const char *path, struct diag *d);
struct policy *policy_parse_partial(const char *name, const char *buf, size_t len,
				    struct diag *d);
void policy_free(struct policy *p);

/* Prints the normalised policy as YAML that policy_parse() accepts and that
 * prints back identically (the round trip the tests check).  Builtin
 * services that the file did not override are not printed. */
void policy_print(FILE *out, const struct policy *p);

/* The services fedwall ships with (see docs/fedwall-policy.5). */
const struct service *policy_builtin_services(size_t *n);

/* ---- SRV discovery per service ---------------------------------------- */

/* The SRV records a partner's `domains` are looked up as, one bit each
 * (refresh/ queries them; the generator places what they give). */
enum srv_kind { SRV_SIP = 1, SRV_XMPP = 2, SRV_MATRIX = 4 };
#define SRV_KINDS 3

/* The SRV kind whose records name the servers of a service, by its name:
 * sip-federation, av-edge, web-conferencing, teams-direct-routing ->
 * SRV_SIP; xmpp-s2s -> SRV_XMPP; matrix-federation -> SRV_MATRIX; 0 for
 * any other. */
unsigned service_srv(const char *service);
/* The SRV kinds whose targets partner `pt` admits on part of its services
 * only: those of its `domains` that some of its services have and some
 * have not.  An address learnt from such a kind's SRV record goes to the
 * ports of the services of that kind alone; every other address of the
 * partner (inline, hosts, lists, SRV kinds all its services share, the
 * SIP fallback of a partner none of whose services has a kind) to all
 * of them.  0: one set of addresses for all its services. */
unsigned partner_srv_scoped(const struct policy *p, const struct partner *pt);
/* Services of `pt` of SRV kind(s) `kinds` ("xmpp-s2s", "sip-federation,
 * av-edge") into `out`, for the messages that say where an address is
 * admitted.  Returns out. */
char *partner_srv_services(const struct policy *p, const struct partner *pt,
			   unsigned kinds, char *out, size_t size);

/* Whether some of pt's feeds publish ports per address (feed_format_ports):
 * then its addresses may be on part of its ports only. */
bool partner_feed_ports(const struct partner *pt);

const char *direction_name(enum direction d);
const char *mode_name(enum policy_mode m);
const char *log_unit_name(enum log_unit u);

#endif

/* dns.c - parallel A/AAAA and SRV resolution through libunbound.
 *
 * One dns_resolve() call is a batch: every query becomes one or more
 * lookups (ub_resolve_async), all in flight at once on a resolver thread.
 * We poll the contexts' fds with the nearest expiry as timeout, so that a
 * lookup that outlives its own timeout (or the batch deadline) is
 * cancelled and reported as a timeout while the others go on.  Callbacks
 * only queue the answer; the loop handles it, which may start follow-up
 * lookups (an SRV answer starts its targets' A and AAAA).
 */
#include "refresh/dns.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

enum { RR_A = 1, RR_AAAA = 28, RR_SRV = 33, CLASS_IN = 1 };
enum { RCODE_NXDOMAIN = 3 };
#define DNS_NAME_MAX 253

struct lookup;

struct dns_ctx {
	struct ub_ctx *plain;           /* no trust anchor: like the system resolver */
	/* The validating context, made at the first query that requires
	 * DNSSEC (a policy without such a partner never reads an anchor):
	 * for `anchor`; NULL with `valid_err` when that cannot be used. */
	struct ub_ctx *valid;
	char *anchor;                   /* the one it was made (or tried) for */
	char *valid_err;
	char *def_anchor;               /* dns_opts.trust_anchor, or the default */
	struct dns_opts o;              /* its strings owned: for `valid` */
	unsigned timeout_ms, deadline_ms;
	VEC(struct lookup *) orphans;   /* cancel failed: callback may still come */
};

/* What one address family of a job found (dns_fam). */
struct fam_job {
	VEC(struct prefix) addrs;
	enum dns_status fail;           /* first failure, DNS_OK if none */
	char *fail_msg;
	bool have_ttl, secure;
	uint32_t ttl;
};

/* One query's progress. */
struct job {
	struct dns_query *q;
	char *qname;                    /* normalised name, or the SRV owner */
	char *domain;                   /* DNS_DOMAIN: normalised name */
	VEC(struct prefix) addrs;
	unsigned lookups, answered;     /* started, finished */
	unsigned targets;               /* SRV targets followed */
	enum dns_status fail;           /* first transient failure, DNS_OK if none */
	char *fail_msg;
	bool nxdomain, nodata_srv, nosrv;
	bool secure;
	bool have_ttl;
	uint32_t ttl;
	struct fam_job fam[2];          /* [0]: A, [1]: AAAA */
	struct ub_ctx *ub;              /* dnssec_require: the validating one */
};

/* One ub_resolve_async in flight. */
struct lookup {
	struct batch *b;
	struct job *job;
	char *name;
	int rrtype;
	struct ub_ctx *ub;
	int id;
	uint64_t expires;               /* monotonic ms */
	bool answered, orphan, late;    /* late: an orphan's answer came */
	int err;
	struct ub_result *res;
};

struct batch {
	struct dns_ctx *c;
	struct diag *d;
	VEC(struct lookup *) all;
	VEC(struct lookup *) ready;     /* answered, not yet handled */
	size_t pending;
	uint64_t deadline;
	bool stopping;                  /* stop_fd became readable */
};

/* dns_stop_on(): readable means "stop waiting" (the daemon's signalfd of
 * SIGTERM and SIGINT); -1: none. */
static int stop_fd = -1;

void dns_stop_on(int fd)
{
	stop_fd = fd;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *dns_status_name(enum dns_status s)
{
	static const char *const names[] = {
		[DNS_OK] = "ok",
		[DNS_NXDOMAIN] = "nxdomain",
		[DNS_NODATA] = "nodata",
		[DNS_NOSERVICE] = "no service",
		[DNS_SERVFAIL] = "servfail",
		[DNS_TIMEOUT] = "timeout",
		[DNS_BOGUS] = "bogus",
		[DNS_INSECURE] = "insecure",
		[DNS_ERROR] = "error",
	};

	if ((unsigned)s < ARRAY_SIZE(names) && names[s])
		return names[s];
	return "?";
}

static const char *rr_name(int rrtype)
{
	return rrtype == RR_A ? "A" : rrtype == RR_AAAA ? "AAAA" : "SRV";
}

/* The family a lookup answers for: 0 (A), 1 (AAAA), or -1 for both (the
 * SRV record, which both families' targets hang on). */
static int rr_fam(int rrtype)
{
	return rrtype == RR_A ? 0 : rrtype == RR_AAAA ? 1 : -1;
}

/* ---- address policy ---------------------------------------------------- */

static bool in(const struct prefix *p, const char *net)
{
	struct prefix n;

	if (prefix_parse(net, &n) != PREFIX_OK)
		return false;
	return prefix_contains(&n, p);
}

static const char *unusable_why(const struct prefix *p)
{
	static const struct { const char *net, *why; } bad[] = {
		{ "0.0.0.0/8", "unspecified" },
		{ "127.0.0.0/8", "loopback" },
		{ "169.254.0.0/16", "link-local" },
		{ "224.0.0.0/4", "multicast" },
		{ "240.0.0.0/4", "reserved or broadcast" },
		{ "::/128", "unspecified" },
		{ "::1/128", "loopback" },
		{ "::ffff:0:0/96", "IPv4-mapped" },
		{ "::/96", "IPv4-compatible" },
		{ "fe80::/10", "link-local" },
		{ "ff00::/8", "multicast" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (in(p, bad[i].net))
			return bad[i].why;
	return NULL;
}

bool dns_addr_usable(const struct prefix *p)
{
	return unusable_why(p) == NULL;
}

/* ---- names ------------------------------------------------------------- */

/* Lowercased, without the trailing dot; NULL if not a plausible DNS name. */
static char *norm_name(const char *s)
{
	size_t n = strlen(s);
	char *out;

	if (n && s[n - 1] == '.')
		n--;
	if (n == 0 || n > DNS_NAME_MAX)
		return NULL;
	out = xstrndup(s, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)out[i];

		if (!(ch == '-' || ch == '_' || ch == '.' ||
		      (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z')) ||
		    (ch == '.' && (i == 0 || out[i - 1] == '.'))) {
			free(out);
			return NULL;
		}
		if (ch >= 'A' && ch <= 'Z')
			out[i] = (char)(ch - 'A' + 'a');
	}
	return out;
}

/* Decodes an uncompressed wire-format name (SRV rdata) into "a.b.c", "."
 * for the root; NULL if malformed or not made of hostname characters. */
static char *wire_name(const unsigned char *p, size_t len)
{
	struct strbuf sb = { 0 };
	size_t i = 0;
	char *out;

	while (i < len && p[i] != 0) {
		size_t l = p[i++];

		if (l > 63 || i + l > len)
			goto out_bad;
		if (sb.len)
			sb_addc(&sb, '.');
		sb_add(&sb, (const char *)p + i, l);
		i += l;
	}
	if (i >= len)
		goto out_bad;
	if (sb.len == 0) {
		sb_free(&sb);
		return xstrdup(".");
	}
	out = norm_name(sb_str(&sb));
	sb_free(&sb);
	return out;
out_bad:
	sb_free(&sb);
	return NULL;
}

static bool under_domain(const char *target, const char *domain)
{
	size_t t = strlen(target), d = strlen(domain);

	if (t == d)
		return strcmp(target, domain) == 0;
	return t > d && target[t - d - 1] == '.' &&
	       strcmp(target + t - d, domain) == 0;
}

/* The partner's domain, or where the policy says its hosted service's
 * targets lie: whoever edits the partner's zone must not point us at
 * any host on the Internet. */
static bool target_allowed(const struct dns_query *q, const char *target,
			   const char *domain)
{
	if (under_domain(target, domain))
		return true;
	for (size_t i = 0; i < q->nsrv_targets; i++)
		if (under_domain(target, q->srv_targets[i].s))
			return true;
	return false;
}

/* ---- context ----------------------------------------------------------- */

static bool ub_check(int err, const char *what, const char *arg, struct diag *d)
{
	if (err == 0)
		return true;
	diag_error(d, NULL, "DNS: %s '%s': %s", what, arg, ub_strerror(err));
	return false;
}

static struct ub_ctx *ub_new(const struct dns_opts *o, const char *anchor,
			     struct diag *d)
{
	struct ub_ctx *ub = ub_ctx_create();
	const char *rc = o->resolv_conf ? o->resolv_conf : "/etc/resolv.conf";

	if (!ub) {
		diag_error(d, NULL, "DNS: cannot create a libunbound context");
		return NULL;
	}
	/* 127.0.0.53 (systemd-resolved) and test servers live on loopback. */
	if (!ub_check(ub_ctx_set_option(ub, "do-not-query-localhost:", "no"),
		      "option", "do-not-query-localhost", d) ||
	    !ub_check(ub_ctx_async(ub, 1), "async", "thread", d))
		goto out_delete;
	if (o->forwarder) {
		if (!ub_check(ub_ctx_set_fwd(ub, o->forwarder), "forwarder",
			      o->forwarder, d))
			goto out_delete;
	} else if (!ub_check(ub_ctx_resolvconf(ub, rc), "cannot use", rc, d)) {
		goto out_delete;
	}
	if (!(o->hosts && !*o->hosts) &&
	    !ub_check(ub_ctx_hosts(ub, o->hosts), "cannot use",
		      o->hosts ? o->hosts : "/etc/hosts", d))
		goto out_delete;
	if (anchor && !ub_check(ub_ctx_add_ta_file(ub, anchor),
				"trust anchor", anchor, d))
		goto out_delete;
	/* unbound answers the special-use .test (RFC 6761) NXDOMAIN by
	 * itself; the system resolver would ask its servers (a lab's
	 * dnsmasq).  Behave like it.  This finalizes the context: last. */
	if (!ub_check(ub_ctx_zone_add(ub, "test.", "transparent"), "zone",
		      "test.", d))
		goto out_delete;
	return ub;
out_delete:
	ub_ctx_delete(ub);
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct dns_ctx *dns_ctx_new(const struct dns_opts *o, struct diag *d)
{
	static const struct dns_opts defaults;
	struct dns_ctx *c = xcalloc(1, sizeof(*c));

	if (!o)
		o = &defaults;
	c->timeout_ms = o->timeout_ms ? o->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
	c->deadline_ms = o->deadline_ms ? o->deadline_ms : DNS_DEFAULT_DEADLINE_MS;
	c->def_anchor = xstrdup(o->trust_anchor ? o->trust_anchor
						: DNS_DEFAULT_TRUST_ANCHOR);
	c->o.resolv_conf = dup_or_null(o->resolv_conf);
	c->o.hosts = dup_or_null(o->hosts);
	c->o.forwarder = dup_or_null(o->forwarder);
	c->plain = ub_new(o, NULL, d);
	if (!c->plain) {
		dns_ctx_free(c);
		return NULL;
	}
	return c;
}

/* The validating context for `anchor`, made on first use; NULL with
 * *why when it cannot be (the anchor is missing or unreadable, or not
 * in the format libunbound reads: DS or DNSKEY records, zone-file
 * syntax).  One anchor per context: a policy has one. */
static struct ub_ctx *valid_ctx(struct dns_ctx *c, const char *anchor, const char **why)
{
	struct strbuf sb = { 0 };
	struct diag quiet;

	if (c->anchor && strcmp(c->anchor, anchor)) {
		*why = "a second trust anchor for one resolver";
		return NULL;
	}
	if (c->anchor) {
		*why = c->valid_err;
		return c->valid;
	}
	c->anchor = xstrdup(anchor);
	diag_init(&quiet, NULL);
	if (access(anchor, R_OK) != 0)
		sb_addf(&sb, "DNSSEC: trust anchor '%s': %s", anchor, strerror(errno));
	else if (!(c->valid = ub_new(&c->o, anchor, &quiet)))
		sb_addf(&sb, "DNSSEC: trust anchor '%s': not usable (libunbound reads DS"
			" or DNSKEY records in zone-file syntax)", anchor);
	if (!strcmp(anchor, DNS_DEFAULT_TRUST_ANCHOR) && sb.s)
		sb_addf(&sb, " (install dns-root-data, or set resolve.trust_anchor)");
	c->valid_err = sb.s;
	*why = c->valid_err;
	return c->valid;
}

void dns_ctx_free(struct dns_ctx *c)
{
	if (!c)
		return;
	/* After ub_ctx_delete no callback can come: orphans may go. */
	if (c->plain)
		ub_ctx_delete(c->plain);
	if (c->valid)
		ub_ctx_delete(c->valid);
	for (size_t i = 0; i < c->orphans.n; i++) {
		free(c->orphans.v[i]->name);
		free(c->orphans.v[i]);
	}
	free(c->orphans.v);
	free(c->anchor);
	free(c->valid_err);
	free(c->def_anchor);
	free((char *)c->o.resolv_conf);
	free((char *)c->o.hosts);
	free((char *)c->o.forwarder);
	free(c);
}

bool dns_anchor_check(const struct policy *p, struct diag *d)
{
	const struct strval *a = &p->resolve.trust_anchor;
	int err;

	if (a->s) {
		if (access(a->s, R_OK) == 0)
			return true;
		diag_error(d, &a->loc, "trust_anchor '%s': %s", a->s, strerror(errno));
		return false;
	}
	if (access(DNS_DEFAULT_TRUST_ANCHOR, R_OK) == 0)
		return true;
	err = errno;
	for (size_t i = 0; i < p->npartners; i++)
		if (p->partners[i].dnssec_require)
			diag_warn(d, &p->partners[i].dnssec_loc, "partner '%s' requires"
				  " DNSSEC, but the default trust anchor '%s' cannot be read"
				  " (%s): its names will fail to refresh (install dns-root-data,"
				  " or set resolve.trust_anchor)", p->partners[i].name,
				  DNS_DEFAULT_TRUST_ANCHOR, strerror(err));
	return true;
}

/* ---- results ----------------------------------------------------------- */

void dns_query_clear(struct dns_query *q)
{
	for (int f = 0; f < 2; f++) {
		free(q->fam[f].addrs);
		free(q->fam[f].msg);
		q->fam[f] = (struct dns_fam){ 0 };
	}
	free(q->addrs);
	free(q->msg);
	q->addrs = NULL;
	q->naddrs = 0;
	q->msg = NULL;
	q->status = DNS_OK;
	q->ttl = 0;
	q->secure = false;
	q->dropped = 0;
}

static const struct loc *qloc(const struct dns_query *q)
{
	return q->loc.file ? &q->loc : NULL;
}

static void job_fail(struct job *j, int fam, enum dns_status s, const char *fmt, ...)
	PRINTF(4, 5);

/* A failure of family `fam` (0, 1; -1: both), and of the job as a whole.
 * The first failure of each tells its story. */
static void job_fail(struct job *j, int fam, enum dns_status s, const char *fmt, ...)
{
	struct strbuf sb = { 0 };
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	for (int f = 0; f < 2; f++) {
		if ((fam >= 0 && f != fam) || j->fam[f].fail != DNS_OK)
			continue;
		j->fam[f].fail = s;
		j->fam[f].fail_msg = xstrdup(sb_str(&sb));
	}
	if (j->fail == DNS_OK) {
		j->fail = s;
		j->fail_msg = sb.s;
	} else {
		sb_free(&sb);
	}
}

static void ttl_min(bool *have, uint32_t *ttl, uint32_t t)
{
	if (!*have || t < *ttl) {
		*ttl = t;
		*have = true;
	}
}

static void job_ttl(struct job *j, int rrtype, const struct ub_result *r)
{
	uint32_t t = r->ttl > 0 ? (uint32_t)r->ttl : 0;
	int fam = rr_fam(rrtype);

	/* Negative answers' TTLs are left out: without an SOA, unbound
	 * makes one up. */
	for (int f = 0; f < 2; f++) {
		if (fam >= 0 && f != fam)
			continue;
		if (r->havedata)
			ttl_min(&j->fam[f].have_ttl, &j->fam[f].ttl, t);
		if (!r->secure)
			j->fam[f].secure = false;
	}
	if (r->havedata)
		ttl_min(&j->have_ttl, &j->ttl, t);
	if (!r->secure)
		j->secure = false;
}

/* What one answer says, before looking at its data. */
static enum dns_status classify(const struct lookup *l, struct strbuf *why)
{
	const struct ub_result *r = l->res;

	if (l->err || !r) {
		sb_addf(why, "%s", ub_strerror(l->err));
		return l->err == UB_SERVFAIL ? DNS_SERVFAIL : DNS_ERROR;
	}
	if (l->job->q->dnssec_require) {
		if (r->bogus) {
			sb_addf(why, "DNSSEC: bogus: %s",
				r->why_bogus ? r->why_bogus : "validation failed");
			return DNS_BOGUS;
		}
		if (!r->secure) {
			sb_addf(why, "DNSSEC: answer not validated (insecure)");
			return DNS_INSECURE;
		}
	}
	if (r->rcode == RCODE_NXDOMAIN || r->nxdomain)
		return DNS_NXDOMAIN;
	if (r->rcode != 0) {
		sb_addf(why, "rcode %d", r->rcode);
		return DNS_SERVFAIL;
	}
	return r->havedata ? DNS_OK : DNS_NODATA;
}

static void take_addrs(struct batch *b, struct lookup *l)
{
	const struct ub_result *r = l->res;
	int want = l->rrtype == RR_A ? 4 : 16;

	for (size_t i = 0; r->data[i]; i++) {
		struct prefix p = { .family = want == 4 ? 4 : 6,
				    .len = want == 4 ? 32 : 128 };
		char buf[PREFIX_STRLEN];
		const char *why;

		if (r->len[i] != want)
			continue;
		memcpy(p.a, r->data[i], (size_t)want);
		why = unusable_why(&p);
		if (why) {
			l->job->q->dropped++;
			diag_warn(b->d, qloc(l->job->q),
				  "DNS: '%s' %s: dropping %s address '%s'",
				  l->name, rr_name(l->rrtype), why,
				  prefix_fmt(&p, buf, sizeof(buf)));
			continue;
		}
		VEC_PUSH(&l->job->addrs, p);
		VEC_PUSH(&l->job->fam[want == 16].addrs, p);
	}
}

/* ---- lookups ----------------------------------------------------------- */

static void on_answer(void *arg, int err, struct ub_result *res)
{
	struct lookup *l = arg;

	if (l->orphan) {
		ub_resolve_free(res);
		l->late = true;
		return;
	}
	l->answered = true;
	l->err = err;
	l->res = res;
	l->b->pending--;
	VEC_PUSH(&l->b->ready, l);
}

static void lookup_start(struct batch *b, struct job *j, const char *name,
			 int rrtype)
{
	struct lookup *l = xcalloc(1, sizeof(*l));
	uint64_t now = now_ms();
	int err;

	l->b = b;
	l->job = j;
	l->name = xstrdup(name);
	l->rrtype = rrtype;
	l->ub = j->q->dnssec_require ? j->ub : b->c->plain;
	l->expires = now + b->c->timeout_ms;
	if (l->expires > b->deadline)
		l->expires = b->deadline;
	VEC_PUSH(&b->all, l);
	j->lookups++;
	b->pending++;
	err = ub_resolve_async(l->ub, name, rrtype, CLASS_IN, l, on_answer,
			       &l->id);
	if (err)
		on_answer(l, err, NULL);
}

/* A lookup that ran out of time: cancel it, and if the cancel fails (the
 * answer is racing us), hand it to the context so the late callback finds
 * valid memory. */
static void lookup_expire(struct batch *b, struct lookup *l, uint64_t now)
{
	struct job *j = l->job;

	if (ub_cancel(l->ub, l->id) != 0) {
		l->orphan = true;
		VEC_PUSH(&b->c->orphans, l);
	}
	l->answered = true;
	b->pending--;
	j->answered++;
	job_fail(j, rr_fam(l->rrtype), DNS_TIMEOUT, "%s %s: no answer %s",
		 l->name, rr_name(l->rrtype),
		 b->stopping ? "before fedwall was asked to stop"
		 : now >= b->deadline ? "by the deadline" : "within the timeout");
}

static void on_srv(struct batch *b, struct lookup *l)
{
	struct job *j = l->job;
	const struct ub_result *r = l->res;
	size_t nrec = 0, dots = 0;
	VEC(char *) seen = { 0 };

	for (size_t i = 0; r->data[i]; i++, nrec++) {
		const unsigned char *p = (const unsigned char *)r->data[i];
		char *t = r->len[i] > 6 ? wire_name(p + 6, (size_t)r->len[i] - 6) : NULL;
		bool dup = false;

		if (!t) {
			diag_warn(b->d, qloc(j->q), "DNS: '%s' SRV: ignoring a "
				  "malformed target", l->name);
			continue;
		}
		for (size_t k = 0; k < seen.n && !dup; k++)
			dup = strcmp(seen.v[k], t) == 0;
		if (dup || strcmp(t, ".") == 0) {
			dots += !dup;
			free(t);
			continue;
		}
		if (j->q->srv_in_domain && !target_allowed(j->q, t, j->domain)) {
			diag_warn(b->d, qloc(j->q), "DNS: '%s' SRV: ignoring target "
				  "'%s' outside the domain '%s'%s", l->name, t, j->domain,
				  j->q->nsrv_targets ? " and its srv_targets"
				  : " (a hosting provider's? add its suffix to the partner's"
				  " srv_targets)");
			free(t);
			continue;
		}
		if (seen.n == DNS_MAX_TARGETS) {
			diag_warn(b->d, qloc(j->q), "DNS: '%s' SRV: following only "
				  "the first %d targets", l->name, DNS_MAX_TARGETS);
			free(t);
			break;
		}
		VEC_PUSH(&seen, t);
	}
	j->nosrv = nrec > 0 && dots == nrec;
	j->targets = (unsigned)seen.n;
	for (size_t k = 0; k < seen.n; k++) {
		lookup_start(b, j, seen.v[k], RR_A);
		lookup_start(b, j, seen.v[k], RR_AAAA);
		free(seen.v[k]);
	}
	free(seen.v);
}

static void lookup_handle(struct batch *b, struct lookup *l)
{
	struct job *j = l->job;
	struct strbuf why = { 0 };
	enum dns_status s = classify(l, &why);

	j->answered++;
	if (l->res)
		job_ttl(j, l->rrtype, l->res);
	switch (s) {
	case DNS_OK:
		if (l->rrtype == RR_SRV)
			on_srv(b, l);
		else
			take_addrs(b, l);
		break;
	case DNS_NXDOMAIN:
		if (strcmp(l->name, j->qname) == 0)
			j->nxdomain = true;
		else if (l->rrtype == RR_A)  /* a target: say it once */
			diag_warn(b->d, qloc(j->q), "DNS: SRV target '%s' of '%s' "
				  "does not exist", l->name, j->qname);
		break;
	case DNS_NODATA:
		if (l->rrtype == RR_SRV)
			j->nodata_srv = true;
		break;
	default:
		job_fail(j, rr_fam(l->rrtype), s, "%s %s: %s", l->name,
			 rr_name(l->rrtype), sb_str(&why));
		break;
	}
	sb_free(&why);
}

/* ---- the batch --------------------------------------------------------- */

/* Waits for answers until the nearest expiry, or until stop_fd is
 * readable (then every lookup left is cancelled at the next call: a
 * daemon told to stop must not sit out resolve.timeout); cancels what
 * expired. */
static void batch_wait(struct batch *b)
{
	struct pollfd pfd[3];
	struct ub_ctx *ubs[2];
	nfds_t n = 0, nub;
	uint64_t now = now_ms(), next = b->deadline;
	int rc;

	for (size_t i = 0; i < b->all.n; i++) {
		struct lookup *l = b->all.v[i];

		if (l->answered)
			continue;
		if (l->expires <= now || b->stopping)
			lookup_expire(b, l, now);
		else if (l->expires < next)
			next = l->expires;
	}
	if (b->pending == 0)
		return;
	ubs[n] = b->c->plain;
	pfd[n++] = (struct pollfd){ .fd = ub_fd(b->c->plain), .events = POLLIN };
	if (b->c->valid) {
		ubs[n] = b->c->valid;
		pfd[n++] = (struct pollfd){ .fd = ub_fd(b->c->valid), .events = POLLIN };
	}
	nub = n;
	if (stop_fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = stop_fd, .events = POLLIN };
	rc = poll(pfd, n, next > now ? (int)(next - now) + 1 : 0);
	for (nfds_t i = 0; rc > 0 && i < nub; i++)
		if (pfd[i].revents)
			ub_process(ubs[i]);
	if (rc > 0 && n > nub && pfd[nub].revents)
		b->stopping = true;
}

static void job_start(struct batch *b, struct job *j)
{
	struct dns_query *q = j->q;
	const char *svc = q->service ? q->service : DNS_SRV_SIP;
	const char *why;
	char *owner;

	j->secure = j->fam[0].secure = j->fam[1].secure = true;
	j->domain = q->name ? norm_name(q->name) : NULL;
	if (!j->domain) {
		job_fail(j, -1, DNS_ERROR, "not a DNS name");
		return;
	}
	if (q->dnssec_require &&
	    !(j->ub = valid_ctx(b->c, q->trust_anchor ? q->trust_anchor
				: b->c->def_anchor, &why))) {
		job_fail(j, -1, DNS_ERROR, "%s", why);
		return;
	}
	if (q->kind == DNS_HOST) {
		j->qname = xstrdup(j->domain);
		lookup_start(b, j, j->qname, RR_A);
		lookup_start(b, j, j->qname, RR_AAAA);
		return;
	}
	owner = xmalloc(strlen(svc) + strlen(j->domain) + 2);
	sprintf(owner, "%s.%s", svc, j->domain);
	if (svc[0] == '_')
		j->qname = norm_name(owner);
	free(owner);
	if (!j->qname) {
		job_fail(j, -1, DNS_ERROR, "bad SRV service label '%s'", svc);
		return;
	}
	lookup_start(b, j, j->qname, RR_SRV);
}

static int cmp_prefix(const void *x, const void *y)
{
	return prefix_cmp(x, y);
}

static size_t uniq_addrs(struct prefix *v, size_t n)
{
	size_t k = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_prefix);
	for (size_t i = 1; i < n; i++)
		if (prefix_cmp(&v[k], &v[i]) != 0)
			v[++k] = v[i];
	return k + 1;
}

static enum dns_status job_status(const struct job *j)
{
	if (j->fail != DNS_OK)
		return j->fail;
	if (j->addrs.n)
		return DNS_OK;
	if (j->nxdomain)
		return DNS_NXDOMAIN;
	if (j->nosrv)
		return DNS_NOSERVICE;
	return DNS_NODATA;
}

/* A family without addresses beside the other family's addresses or
 * failure: the name's valid "no such record" (NODATA).  Only when
 * neither family has any does the name's emptiness stand, for both. */
static enum dns_status fam_status(const struct job *j, int f)
{
	const struct fam_job *m = &j->fam[f], *o = &j->fam[!f];

	if (m->fail != DNS_OK)
		return m->fail;
	if (m->addrs.n || o->addrs.n || o->fail != DNS_OK)
		return DNS_OK;
	return job_status(j);
}

static void fam_finish(struct job *j, int f, const char *name)
{
	const char *rr = f ? "AAAA" : "A";
	struct fam_job *m = &j->fam[f];
	struct dns_fam *r = &j->q->fam[f];
	struct strbuf sb = { 0 };
	size_t n = uniq_addrs(m->addrs.v, m->addrs.n);

	if (n > DNS_MAX_ADDRS)
		n = DNS_MAX_ADDRS;      /* job_finish warns about the name */
	r->addrs = m->addrs.v;
	r->naddrs = n;
	m->addrs.v = NULL;
	r->status = fam_status(j, f);
	/* An empty family is asked again with its name. */
	r->ttl = m->have_ttl ? m->ttl : j->have_ttl ? j->ttl : 0;
	r->secure = m->secure && j->lookups > 0 && r->status == DNS_OK;
	sb_addf(&sb, "%s %s: %s", name, rr, dns_status_name(r->status));
	if (m->fail_msg)
		sb_addf(&sb, " (%s)", m->fail_msg);
	else if (r->status == DNS_OK && n == 0)
		sb_addf(&sb, " (no %s record)", rr);
	else if (r->status == DNS_NODATA && j->q->kind == DNS_DOMAIN && j->nodata_srv)
		sb_addf(&sb, " (no SRV record)");
	if (j->q->kind == DNS_DOMAIN && j->targets)
		sb_addf(&sb, ", %u target%s", j->targets, j->targets == 1 ? "" : "s");
	if (r->status == DNS_OK || n)
		sb_addf(&sb, ", %zu address%s, ttl %u s", n, n == 1 ? "" : "es", r->ttl);
	if (r->secure)
		sb_addf(&sb, ", dnssec");
	r->msg = sb.s;
}

static void job_finish(struct batch *b, struct job *j)
{
	struct dns_query *q = j->q;
	const char *name = j->qname ? j->qname : q->name ? q->name : "";
	struct strbuf sb = { 0 };
	size_t n = uniq_addrs(j->addrs.v, j->addrs.n);

	if (n > DNS_MAX_ADDRS) {
		diag_warn(b->d, qloc(q), "DNS: '%s': %zu addresses, keeping the "
			  "first %d", name, n, DNS_MAX_ADDRS);
		q->dropped += (unsigned)(n - DNS_MAX_ADDRS);
		n = DNS_MAX_ADDRS;
	}
	q->addrs = j->addrs.v;
	q->naddrs = n;
	q->status = job_status(j);
	q->ttl = j->have_ttl ? j->ttl : 0;
	q->secure = j->secure && j->lookups > 0 && q->status == DNS_OK;
	sb_addf(&sb, "%s: %s", name, dns_status_name(q->status));
	if (j->fail_msg)
		sb_addf(&sb, " (%s)", j->fail_msg);
	else if (q->status == DNS_NODATA && q->kind == DNS_DOMAIN && j->nodata_srv)
		sb_addf(&sb, " (no SRV record)");
	if (q->kind == DNS_DOMAIN && j->targets)
		sb_addf(&sb, ", %u target%s", j->targets, j->targets == 1 ? "" : "s");
	/* A failure with nothing resolved has no addresses or TTL to tell
	 * ("0 addresses, ttl 0" read as if the name had a TTL of 0). */
	if (q->status == DNS_OK || n)
		sb_addf(&sb, ", %zu address%s, ttl %u s", n, n == 1 ? "" : "es", q->ttl);
	if (q->dropped)
		sb_addf(&sb, ", %u dropped", q->dropped);
	if (q->secure)
		sb_addf(&sb, ", dnssec");
	q->msg = sb.s;
	for (int f = 0; f < 2; f++)
		fam_finish(j, f, name);
}

/* Frees the orphans whose late answer has come (and been dropped). */
static void reap_orphans(struct dns_ctx *c)
{
	size_t k = 0;

	for (size_t i = 0; i < c->orphans.n; i++) {
		struct lookup *l = c->orphans.v[i];

		if (l->late) {
			free(l->name);
			free(l);
		} else {
			c->orphans.v[k++] = l;
		}
	}
	c->orphans.n = k;
}

void dns_resolve(struct dns_ctx *c, struct dns_query *q, size_t n,
		 struct diag *d)
{
	struct batch b = { .c = c, .d = d };
	struct job *jobs = xcalloc(n ? n : 1, sizeof(*jobs));

	reap_orphans(c);

	b.deadline = now_ms() + c->deadline_ms;
	for (size_t i = 0; i < n; i++) {
		dns_query_clear(&q[i]);
		jobs[i].q = &q[i];
		job_start(&b, &jobs[i]);
	}
	while (b.pending || b.ready.n) {
		while (b.ready.n) {
			struct lookup *l = b.ready.v[--b.ready.n];

			lookup_handle(&b, l);
		}
		if (b.pending)
			batch_wait(&b);
	}
	for (size_t i = 0; i < n; i++) {
		job_finish(&b, &jobs[i]);
		free(jobs[i].qname);
		free(jobs[i].domain);
		free(jobs[i].fail_msg);
		for (int f = 0; f < 2; f++) {
			free(jobs[i].fam[f].addrs.v);
			free(jobs[i].fam[f].fail_msg);
		}
	}
	for (size_t i = 0; i < b.all.n; i++) {
		struct lookup *l = b.all.v[i];

		if (l->res)
			ub_resolve_free(l->res);
		if (l->orphan)
			continue;
		free(l->name);
		free(l);
	}
	free(b.all.v);
	free(b.ready.v);
	free(jobs);
}

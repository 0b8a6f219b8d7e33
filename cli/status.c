/* status.c - `fedwall status`: what is live in the kernel: per partner
 * the elements admitting it and its accepted-connection counters, and the
 * drop counters.  Read from the kernel alone (the policy only names the
 * table), so it shows what is really there.  `--format prometheus` is
 * the metrics file of refresh and the daemon (engine/metrics.c), which
 * adds, from the policy and the state directory, when each address source
 * was last confirmed, for node_exporter's textfile collector.  With a
 * policy, the text names every stale source (a name's A and AAAA records
 * each), and the JSON has every source: stale ones stay reported, with
 * when they were last confirmed, after stale_after dropped their
 * addresses, until they answer again. */
#include "cli.h"
#include "engine/engine.h"
#include "generator/generator.h"
#include "nft/nft.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USAGE "[-f POLICY | --table NAME] [--state-dir DIR]\n" \
	"       [--json | --format text|json|prometheus] [-o FILE]"

enum format { FMT_TEXT, FMT_JSON, FMT_PROM, FMT_UNSET };

static bool dormant(const struct ir_ruleset *rs)
{
	return rs && (rs->flags & IR_TABLE_F_DORMANT);
}

static void text_dir(FILE *out, const struct engine_dir_stat *d)
{
	if (d->has_counter || d->elems)
		fprintf(out, " %9zu %12llu %14llu", d->elems, (unsigned long long)d->packets,
		       (unsigned long long)d->bytes);
	else
		fprintf(out, " %9s %12s %14s", "-", "-", "-");
}

/* The HA pair's counters, when the table has them (policy `ha`). */
static void text_ha(FILE *out, const struct ir_ruleset *rs)
{
	static const char *const names[] = { ENGINE_HA_ADMITTED, ENGINE_HA_DROPPED };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const struct ir_counter *c = engine_counter(rs, names[i]);

		if (c)
			fprintf(out, "%s: %llu packets, %llu bytes\n", names[i],
				(unsigned long long)c->packets, (unsigned long long)c->bytes);
	}
}

static void print_text(FILE *out, const struct ir_ruleset *rs, const struct engine_stats *v,
		       const char *foreign)
{
	fprintf(out, "table inet %s: %zu chains, %zu sets, %zu counters\n", rs->table, rs->nchains,
	       rs->nsets, rs->ncounters);
	fprintf(out, "digest: %016llx (what the table admits; the same on both nodes of a pair)\n",
		(unsigned long long)v->digest);
	if (foreign)
		fprintf(out, "warning: %s (the next apply replaces the table)\n", foreign);
	fprintf(out, "%-20s %9s %12s %14s %9s %12s %14s\n", "partner", "in-elems", "in-packets",
	       "in-bytes", "out-elems", "out-packets", "out-bytes");
	for (size_t i = 0; i < v->n; i++) {
		fprintf(out, "%-20s", v->v[i].name);
		text_dir(out, &v->v[i].in);
		text_dir(out, &v->v[i].out);
		fprintf(out, "\n");
	}
	for (size_t i = 0; i < ENGINE_NDROPS; i++) {
		const struct ir_counter *c = engine_counter(rs, engine_drops[i].counter);

		if (c)
			fprintf(out, "%s: %llu packets, %llu bytes\n", engine_drops[i].counter,
			       (unsigned long long)c->packets, (unsigned long long)c->bytes);
	}
	text_ha(out, rs);
	fprintf(out, "other set elements (management, ports, edge): %zu\n", v->other);
}

static void json_dir(FILE *out, const char *key, const struct engine_dir_stat *d)
{
	fprintf(out, "\"%s\": {\"elements\": %zu, \"packets\": %llu, \"bytes\": %llu}", key, d->elems,
	       (unsigned long long)d->packets, (unsigned long long)d->bytes);
}

/* `: {"packets": N, "bytes": N}` or `: null` */
static void json_counter_body(FILE *out, const struct ir_ruleset *rs, const char *name)
{
	const struct ir_counter *c = engine_counter(rs, name);

	fprintf(out, ": ");
	if (c)
		fprintf(out, "{\"packets\": %llu, \"bytes\": %llu}", (unsigned long long)c->packets,
		       (unsigned long long)c->bytes);
	else
		fprintf(out, "null");
}

static void json_counter(FILE *out, const struct ir_ruleset *rs, const char *name)
{
	fprintf(out, ", \"%s\"", name);
	json_counter_body(out, rs, name);
}

/* What status also reports as problems (after the output, exit 1): each
 * edge interface (and ha.interface) the policy names that is absent, and
 * a state file behind the table. */
static void json_problems(FILE *out, const struct policy *p, const char *state_dir)
{
	struct strbuf path = { 0 };
	char real[IF_NAMESIZE];
	bool first = true;

	fprintf(out, ", \"interfaces_missing\": [");
	if (p && p->ha.interface.s && iface_state(p->ha.interface.s, real) != IFACE_PRESENT) {
		json_str(out, p->ha.interface.s);
		first = false;
	}
	for (size_t i = 0; p && p->mode == MODE_HOST && i < p->edge.ninterfaces; i++) {
		if (iface_state(p->edge.interfaces[i].s, real) == IFACE_PRESENT)
			continue;
		fprintf(out, "%s", first ? "" : ", ");
		json_str(out, p->edge.interfaces[i].s);
		first = false;
	}
	sb_addf(&path, "%s/%s", state_dir, STATE_FILE_NAME);
	fprintf(out, "], \"state_behind\": %s", state_behind(sb_str(&path)) ? "true" : "false");
	sb_free(&path);
}

/* ---- sources: what the state says of each ------------------------------- */

/* The policy's sources and the state, loaded quietly: a state refresh
 * cannot trust is reported by refresh (and by the metrics' gauges). */
struct seen_run {
	struct srcset s;
	struct state st;
	int64_t now;
};

static void seen_load(struct seen_run *r, const struct policy *p, const char *state_dir)
{
	struct strbuf path = { 0 };
	struct diag quiet;

	memset(r, 0, sizeof(*r));
	r->now = (int64_t)time(NULL);
	if (!p)
		return;
	diag_init(&quiet, NULL);
	sb_addf(&path, "%s/%s", state_dir, STATE_FILE_NAME);
	(void)state_load(&r->st, sb_str(&path), &quiet);
	srcset_build(p, &r->s);
	sb_free(&path);
}

static void seen_free(struct seen_run *r)
{
	srcset_free(&r->s);
	state_free(&r->st);
}

/* "services": the services its addresses are admitted on: an SRV source
 * of a kind scoped to some of them (partner_srv_scoped) counts for those
 * only, every other source for all of them. */
static void json_services(FILE *out, const struct policy *p, const struct src *x)
{
	const struct partner *pt = &p->partners[x->partner];
	bool first = true;

	fprintf(out, ", \"services\": [");
	for (size_t i = 0; i < pt->nservices; i++) {
		const char *name = p->services[pt->services[i].idx].name;

		if (x->scope && !(service_srv(name) & x->scope))
			continue;
		fprintf(out, "%s", first ? "" : ", ");
		json_str(out, name);
		first = false;
	}
	fprintf(out, "]");
}

static void json_opt_str(FILE *out, const char *key, const char *v)
{
	fprintf(out, ", \"%s\": ", key);
	if (v)
		json_str(out, v);
	else
		fprintf(out, "null");
}

/* A list URL's or a feed's: when its body was last fetched, and the
 * validators the next conditional request sends. */
static void json_fetch(FILE *out, const struct src_seen *e)
{
	if (e->fetched)
		fprintf(out, ", \"last_fetched\": %lld", (long long)e->fetched);
	else
		fprintf(out, ", \"last_fetched\": null");
	json_opt_str(out, "etag", e->etag);
	json_opt_str(out, "last_modified", e->last_modified);
	json_opt_str(out, "version", e->version);
}

static void json_source(FILE *out, const struct policy *p, const struct src *x,
			const struct src_seen *e)
{
	fprintf(out, "{\"partner\": ");
	json_str(out, p->partners[x->partner].name);
	fprintf(out, ", \"kind\": \"%s\", \"source\": ", state_kind_name(x->kind));
	json_str(out, x->key);
	fprintf(out, ", \"family\": ");
	if (src_family_name(x))
		json_str(out, src_family_name(x));
	else
		fprintf(out, "null");
	if (e->confirmed)
		fprintf(out, ", \"last_confirmed\": %lld", (long long)e->confirmed);
	else
		fprintf(out, ", \"last_confirmed\": null");
	json_services(out, p, x);
	if (!src_is_dns(x) && x->kind != STATE_LIST)
		json_fetch(out, e);
	fprintf(out, ", \"stale\": %s, \"dropped\": %s, \"addresses\": %zu,"
		" \"dropped_addresses\": %zu, \"dnssec\": %s, \"dnssec_required\": %s}",
		e->stale ? "true" : "false", e->dropped ? "true" : "false", e->naddrs,
		e->ndropped, e->dnssec ? "true" : "false",
		p->partners[x->partner].dnssec_require ? "true" : "false");
}

/* Every source of the policy (none with --table). */
static void json_sources(FILE *out, const struct policy *p, const char *state_dir)
{
	struct seen_run r;

	seen_load(&r, p, state_dir);
	fprintf(out, ", \"sources\": [");
	for (size_t k = 0; k < r.s.n; k++) {
		struct src_seen e;

		srcset_seen(&r.s, p, k, &r.st, r.now, &e);
		fprintf(out, "%s", k ? ", " : "");
		json_source(out, p, &r.s.v[k], &e);
	}
	fprintf(out, "]");
	seen_free(&r);
}

/* One line per stale source: an alert on staleness must not resolve
 * just as the outage begins, when stale_after drops its addresses. */
static void text_stale(FILE *out, const struct policy *p, const char *state_dir)
{
	struct seen_run r;

	seen_load(&r, p, state_dir);
	for (size_t k = 0; k < r.s.n; k++) {
		const struct src *x = &r.s.v[k];
		time_t t;
		struct tm tm;
		char when[32];
		struct src_seen e;

		srcset_seen(&r.s, p, k, &r.st, r.now, &e);
		if (!e.stale)
			continue;
		t = (time_t)e.confirmed;
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
		fprintf(out, "stale source: partner %s, %s %s%s%s%s: last confirmed %s (%lld s ago,"
			" stale_after %u s); ", p->partners[x->partner].name,
			state_kind_name(x->kind), x->key, src_rr(x) ? " (" : "",
			src_rr(x) ? src_rr(x) : "", src_rr(x) ? ")" : "", when,
			(long long)(r.now - e.confirmed), p->guards.stale_after);
		if (e.dropped)
			fprintf(out, "its %zu address%s dropped: it admits nothing until it"
				" answers again\n", e.ndropped, e.ndropped == 1 ? "" : "es");
		else
			fprintf(out, "its %zu address%s go%s at the next refresh\n", e.naddrs,
				e.naddrs == 1 ? "" : "es", e.naddrs == 1 ? "es" : "");
	}
	seen_free(&r);
}

static void put_when(FILE *out, const char *what, int64_t t, int64_t now)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char when[32];

	if (!t) {
		fprintf(out, "%s never", what);
		return;
	}
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&tt, &tm));
	fprintf(out, "%s %s (%lld s ago)", what, when, (long long)(now - t));
}

/* One line per list URL and feed: when it was fetched and confirmed, and
 * the validator its next fetch goes by (a feed's version, an ETag, else
 * Last-Modified). */
static void text_urls(FILE *out, const struct policy *p, const char *state_dir)
{
	struct seen_run r;

	seen_load(&r, p, state_dir);
	for (size_t k = 0; k < r.s.n; k++) {
		const struct src *x = &r.s.v[k];
		struct src_seen e;

		if (x->kind != STATE_URL && x->kind != STATE_FEED)
			continue;
		srcset_seen(&r.s, p, k, &r.st, r.now, &e);
		if (x->kind == STATE_FEED)
			fprintf(out, "feed: partner %s, %s (%s): ", p->partners[x->partner].name,
				x->name, feed_format_name(x->feed->format));
		else
			fprintf(out, "list URL: partner %s, %s: ", p->partners[x->partner].name,
				x->name);
		fprintf(out, "%zu address%s; ", e.naddrs, e.naddrs == 1 ? "" : "es");
		put_when(out, "fetched", e.fetched, r.now);
		put_when(out, ", confirmed", e.confirmed, r.now);
		if (e.version)
			fprintf(out, "; version %s", e.version);
		else if (e.etag)
			fprintf(out, "; ETag %s", e.etag);
		else if (e.last_modified)
			fprintf(out, "; Last-Modified %s", e.last_modified);
		else
			fprintf(out, "; no validator (every fetch is a full one)");
		fprintf(out, "%s\n", e.stale ? "; stale" : "");
	}
	seen_free(&r);
}

/* One line per DNS source validated by DNSSEC, or of a partner that
 * requires it: which addresses a signature vouches for, and which
 * partner's names do not (yet) validate. */
static void text_dnssec(FILE *out, const struct policy *p, const char *state_dir)
{
	struct seen_run r;

	seen_load(&r, p, state_dir);
	for (size_t k = 0; k < r.s.n; k++) {
		const struct src *x = &r.s.v[k];
		struct src_seen e;

		srcset_seen(&r.s, p, k, &r.st, r.now, &e);
		if (!src_is_dns(x) ||
		    !(e.dnssec || p->partners[x->partner].dnssec_require))
			continue;
		fprintf(out, "dnssec: partner %s, %s %s (%s): ", p->partners[x->partner].name,
			state_kind_name(x->kind), x->key, src_rr(x));
		/* A requiring partner's state holds validated answers only
		 * (srcset_seen): anything else is no answer. */
		if (e.dnssec)
			fprintf(out, "%zu address%s validated by DNSSEC%s\n", e.naddrs,
				e.naddrs == 1 ? "" : "es", e.stale ? " (stale)" : "");
		else
			fprintf(out, "not validated by DNSSEC: no validated answer yet,"
				" it admits nothing\n");
	}
	seen_free(&r);
}

/* ---- addresses per service ------------------------------------------------ */

/* The SRV kinds whose scoped sources (state, not stale) of partner i hold
 * `a`; *all when an inline address or another source holds it too. */
static unsigned addr_kinds(const struct seen_run *r, const struct policy *p, size_t i,
			   const struct prefix *a, bool *all)
{
	const struct partner *pt = &p->partners[i];
	unsigned kinds = 0;

	*all = false;
	for (size_t k = 0; k < pt->naddresses; k++)
		*all |= !prefix_cmp(&pt->addresses[k].p, a);
	for (size_t k = 0; k < r->s.n; k++) {
		const struct src *x = &r->s.v[k];
		const struct state_entry *e = x->partner == i
					      ? srcset_state_of(&r->s, p, k, &r->st, r->now) : NULL;

		for (size_t j = 0; e && j < e->naddrs; j++) {
			if (prefix_cmp(&e->addrs[j], a))
				continue;
			kinds |= x->scope;
			*all |= !x->scope;
		}
	}
	return kinds;
}

/* Whether `a` was printed already: an earlier source of partner i held it. */
static bool addr_seen_before(const struct seen_run *r, const struct policy *p, size_t i,
			     size_t upto, const struct prefix *a)
{
	for (size_t k = 0; k < upto; k++) {
		const struct src *x = &r->s.v[k];
		const struct state_entry *e = x->partner == i && x->scope
					      ? srcset_state_of(&r->s, p, k, &r->st, r->now)
					      : NULL;

		for (size_t j = 0; e && j < e->naddrs; j++)
			if (!prefix_cmp(&e->addrs[j], a))
				return true;
	}
	return false;
}

static bool all_services(const struct policy *p, const struct partner *pt, unsigned kinds)
{
	for (size_t i = 0; i < pt->nservices; i++)
		if (!(service_srv(p->services[pt->services[i].idx].name) & kinds))
			return false;
	return true;
}

/* For a partner whose SRV kinds are scoped to some of its services
 * (partner_srv_scoped), each address an SRV record of such a kind gave
 * (the state's last known good) and the services it is admitted on. */
static void text_scoped(FILE *out, const struct policy *p, const char *state_dir)
{
	struct seen_run r;

	seen_load(&r, p, state_dir);
	for (size_t k = 0; k < r.s.n; k++) {
		const struct src *x = &r.s.v[k];
		const struct partner *pt = &p->partners[x->partner];
		const struct state_entry *e = x->scope
					      ? srcset_state_of(&r.s, p, k, &r.st, r.now) : NULL;

		for (size_t j = 0; e && j < e->naddrs; j++) {
			char pb[PREFIX_STRLEN], lb[128], sb[256];
			bool all;
			unsigned kinds = addr_kinds(&r, p, x->partner, &e->addrs[j], &all);

			if (addr_seen_before(&r, p, x->partner, k, &e->addrs[j]))
				continue;
			fprintf(out, "per service: partner %s: %s via SRV %s: ", pt->name,
				prefix_fmt(&e->addrs[j], pb, sizeof(pb)),
				srv_labels(kinds, lb, sizeof(lb)));
			if (all)
				fprintf(out, "all its services (another source has it too)\n");
			else if (all_services(p, pt, kinds))
				fprintf(out, "all its services\n");
			else
				fprintf(out, "%s only\n",
					partner_srv_services(p, pt, kinds, sb, sizeof(sb)));
		}
	}
	seen_free(&r);
}

static void print_json(FILE *out, const struct ir_ruleset *rs, const struct engine_stats *v,
		       const char *foreign, const struct policy *p, const char *state_dir)
{
	fprintf(out, "{\"table\": ");
	json_str(out, rs->table);
	fprintf(out, ", \"loaded\": true, \"foreign\": ");
	if (foreign)
		json_str(out, foreign);
	else
		fprintf(out, "null");
	fprintf(out, ", \"partners\": {");
	for (size_t i = 0; i < v->n; i++) {
		fprintf(out, "%s", i ? ", " : "");
		json_str(out, v->v[i].name);
		fprintf(out, ": {");
		json_dir(out, "in", &v->v[i].in);
		fprintf(out, ", ");
		json_dir(out, "out", &v->v[i].out);
		fprintf(out, "}");
	}
	fprintf(out, "}");
	for (size_t i = 0; i < ENGINE_NDROPS; i++)
		json_counter(out, rs, engine_drops[i].counter);
	fprintf(out, ", \"ha\": ");
	if (engine_counter(rs, ENGINE_HA_ADMITTED)) {
		fprintf(out, "{\"admitted\"");
		json_counter_body(out, rs, ENGINE_HA_ADMITTED);
		fprintf(out, ", \"dropped\"");
		json_counter_body(out, rs, ENGINE_HA_DROPPED);
		fprintf(out, "}");
	} else {
		fprintf(out, "null");
	}
	fprintf(out, ", \"digest\": \"%016llx\"", (unsigned long long)v->digest);
	fprintf(out, ", \"flags\": %u, \"dormant\": %s", (unsigned)rs->flags,
		dormant(rs) ? "true" : "false");
	json_problems(out, p, state_dir);
	json_sources(out, p, state_dir);
	fprintf(out, ", \"other_elements\": %zu}\n", v->other);
}

/* ---- output: stdout, or FILE replaced atomically ------------------------ */

/* What one status run shows, and where. */
struct status_run {
	const char *table;
	enum format fmt;
	const struct policy *p;         /* NULL: --table */
	const char *state_dir;
	bool dormant;                   /* out: the table is dormant */
};

/* Everything is written to memory first, so that the file is replaced in
 * one rename (readers never see half a file) and only when the output is
 * whole. */
struct sink {
	FILE *f;
	char *buf;
	size_t len;
	const char *path;       /* NULL: stdout */
};

static int sink_open(struct sink *k, const char *path)
{
	k->buf = NULL;
	k->len = 0;
	k->path = path && strcmp(path, "-") ? path : NULL;
	k->f = open_memstream(&k->buf, &k->len);
	return k->f ? 0 : -errno;
}

static int sink_close(struct sink *k, bool ok, struct diag *d)
{
	int ret = fclose(k->f) ? -errno : 0;

	if (!ret && ok && k->path) {
		ret = file_write_atomic(k->path, k->buf, k->len, 0644);
		if (ret)
			diag_error(d, NULL, "cannot write '%s': %s", k->path,
				   file_write_strerror(ret));
	} else if (!ret && k->len) {
		/* stdout gets what there is, even after an error (a missing
		 * table is still reported). */
		if (fwrite(k->buf, 1, k->len, stdout) != k->len || fflush(stdout))
			ret = -EIO;
	}
	free(k->buf);
	return ret;
}

/* `status` always reads the table back, never the cache: it is what
 * shows the kernel's truth. */
static int live_table(struct nft_ctx *ctx, const char *table, struct ir_ruleset **live,
		      struct diag *d)
{
	uint32_t genid;
	int ret = nft_read(ctx, table, live, &genid);

	if (ret && ret != -ENOENT)
		diag_error(d, NULL, "cannot read table inet %s: %s", table, strerror(-ret));
	return ret;
}

/* A dormant table filters nothing: a problem for people (status exits
 * 1), a gauge for the metrics. */
static void dormant_note(const struct ir_ruleset *rs, struct status_run *st, struct diag *d)
{
	if (!dormant(rs))
		return;
	st->dormant = true;
	diag_error(d, NULL, "table inet %s is dormant (flags dormant): it filters nothing;"
		   " fedwall apply, or the next refresh, replaces it", rs->table);
}

static void show_missing(FILE *out, const struct status_run *st)
{
	if (st->fmt == FMT_JSON) {
		fprintf(out, "{\"table\": ");
		json_str(out, st->table);
		fprintf(out, ", \"loaded\": false");
		json_problems(out, st->p, st->state_dir);
		json_sources(out, st->p, st->state_dir);
		fprintf(out, "}\n");
	} else if (st->fmt == FMT_TEXT) {
		fprintf(out, "fedwall: table inet %s is not loaded\n", st->table);
	}
}

static int show(struct nft_ctx *ctx, struct status_run *st, FILE *out, struct diag *d)
{
	struct ir_ruleset *live = NULL;
	struct engine_stats v = { 0 };
	int ret = live_table(ctx, st->table, &live, d);

	if (ret && ret != -ENOENT)
		return ret;
	if (ret == -ENOENT)
		show_missing(out, st);
	if (live)
		engine_stats(live, &v);
	if (st->fmt == FMT_PROM) {
		struct engine_metrics m = { st->table, live, &v, nft_foreign(ctx), st->p,
					    st->state_dir };

		engine_metrics_print(out, &m, d);
	} else if (live && st->fmt == FMT_JSON) {
		print_json(out, live, &v, nft_foreign(ctx), st->p, st->state_dir);
	} else if (live) {
		print_text(out, live, &v, nft_foreign(ctx));
	}
	if (st->fmt == FMT_TEXT && st->p) {
		text_stale(out, st->p, st->state_dir);
		text_urls(out, st->p, st->state_dir);
		text_dnssec(out, st->p, st->state_dir);
		text_scoped(out, st->p, st->state_dir);
	}
	if (st->fmt != FMT_PROM)
		dormant_note(live, st, d);
	engine_stats_free(&v);
	ir_free(live);
	/* A missing table is news for people (exit 1) but just a value for
	 * the metrics, which are written either way. */
	return st->fmt == FMT_PROM ? 0 : ret;
}

/* Whether the state directory's state file lags the table (reported). */
static bool state_behind_note(const char *state_dir, struct diag *d)
{
	struct strbuf path = { 0 };
	bool behind;

	sb_addf(&path, "%s/%s", state_dir, STATE_FILE_NAME);
	behind = state_behind(sb_str(&path));
	if (behind)
		diag_warn(d, NULL, "%s is older than the table: a save failed after a commit"
			  " (is the state directory full or read-only?); the next refresh that"
			  " can save clears %s" STATE_BEHIND_SUFFIX, sb_str(&path), sb_str(&path));
	sb_free(&path);
	return behind;
}

/* Takes --format out of argv (common_parse knows the shared options
 * only); --json is --format json.  Returns the new argc, or -1 after a
 * usage error. */
static int take_format(int argc, const char *argv[], const char *av[], enum format *fmt)
{
	static const char *const names[] = { "text", "json", "prometheus" };
	int n = 0;

	*fmt = FMT_UNSET;
	for (int i = 0; i < argc; i++) {
		const char *val = NULL;
		size_t k = 0;

		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				av[n++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "--format") && i + 1 < argc)
			val = argv[++i];
		else if (!strncmp(argv[i], "--format=", 9))
			val = argv[i] + 9;
		else if (!strcmp(argv[i], "--format"))
			val = "";
		if (!val) {
			av[n++] = argv[i];
			continue;
		}
		while (k < ARRAY_SIZE(names) && strcmp(val, names[k]))
			k++;
		*fmt = (enum format)k;
		if (k == ARRAY_SIZE(names)) {
			fprintf(stderr, "fedwall status: unknown format '%s' (expected text, "
				"json or prometheus)\nUsage: fedwall status %s\n", val, USAGE);
			return -1;
		}
	}
	av[n] = NULL;
	return n;
}

/* status's output to `path` (NULL or "-": stdout); 0 or -errno after
 * reporting. */
static int status_write(struct status_run *st, const char *path, struct diag *d)
{
	struct nft_ctx *ctx;
	struct sink out;
	int ret = sink_open(&out, path);

	if (ret) {
		diag_error(d, NULL, "out of memory");
		return ret;
	}
	ret = nft_open(&ctx);
	if (ret) {
		diag_error(d, NULL, "cannot talk to nf_tables: %s", strerror(-ret));
	} else {
		ret = show(ctx, st, out.f, d);
		nft_close(ctx);
	}
	if (st->fmt == FMT_TEXT)
		engine_confirm_notes(st->state_dir, false, stderr);
	if (!ret)
		ret = sink_close(&out, true, d);
	else
		sink_close(&out, false, d);
	return ret;
}

int status_main(int argc, const char *argv[])
{
	const char **av = xmalloc((size_t)(argc + 1) * sizeof(*av));
	struct common_opts o;
	struct policy *p = NULL;
	enum format fmt;
	struct diag d;
	char *table = NULL;
	struct status_run st;
	int n = take_format(argc, argv, av, &fmt), i, rc = EXIT_USAGE;

	i = n < 0 ? -1 : common_parse(n, av, "fvjot", USAGE, &o);
	if (i == -2)
		rc = EXIT_OK;
	if (i < 0)
		goto out_free_av;
	if (o.json && fmt != FMT_UNSET && fmt != FMT_JSON) {
		fprintf(stderr, "fedwall status: --json and --format %s contradict each other\n"
			"Usage: fedwall status %s\n", fmt == FMT_PROM ? "prometheus" : "text", USAGE);
		goto out_free_av;
	}
	if (o.json)
		fmt = FMT_JSON;
	if (fmt == FMT_UNSET)
		fmt = FMT_TEXT;
	rc = EXIT_ERROR;
	diag_init(&d, stderr);
	if (o.table) {
		table = xstrdup(o.table);
	} else {
		p = policy_load(o.policy, &d);
		if (!p)
			goto out_free_av;
		table = xstrdup(p->table);
	}
	st = (struct status_run){ table, fmt, p, o.state_dir, false };
	if (status_write(&st, o.output, &d) == 0 && !st.dormant)
		rc = EXIT_OK;
	/* Problems to report after the output, as well as in the metrics:
	 * an interface the table cannot filter, a state that lags it. */
	if (p && fmt != FMT_PROM && ifaces_check(p, IFACE_WARN, &d))
		rc = EXIT_ERROR;
	if (fmt != FMT_PROM && state_behind_note(o.state_dir, &d))
		rc = EXIT_ERROR;
	free(table);
	policy_free(p);
out_free_av:
	free(av);
	return rc;
}

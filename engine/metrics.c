/* metrics.c - the Prometheus text exposition (version 0.0.4) of
 * `status --format prometheus` and of the metrics file refresh and the
 * daemon write after each run (--metrics): what the live table holds per
 * partner (engine_stats), the drop counters, when each address source was
 * last confirmed (the state directory), the edge interfaces, the record
 * of the last refresh.  For node_exporter's textfile collector.
 */
#include "engine/engine.h"
#include "generator/generator.h"
#include "nft/nft.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- Prometheus text exposition format (version 0.0.4) ---------------- */

/* A label value: backslash, double quote and newline escaped. */
static void prom_label(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(out, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

static void prom_head(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_partner_counters(FILE *out, const struct engine_stats *v, bool bytes)
{
	static const char *const dirs[] = { "in", "out" };

	for (size_t i = 0; i < v->n; i++) {
		for (int k = 0; k < 2; k++) {
			const struct engine_dir_stat *d = k ? &v->v[i].out : &v->v[i].in;

			if (!d->has_counter)
				continue;
			fprintf(out, "fedwall_partner_accepted_%s_total{partner=",
				bytes ? "bytes" : "packets");
			prom_label(out, v->v[i].name);
			fprintf(out, ",direction=\"%s\"} %llu\n", dirs[k],
				(unsigned long long)(bytes ? d->bytes : d->packets));
		}
	}
}

static void prom_elements(FILE *out, const struct engine_stats *v)
{
	static const char *const dirs[] = { "in", "out" };

	prom_head(out, "fedwall_partner_elements", "gauge",
		  "Live verdict-map elements (address . protocol . port) admitting a partner.");
	for (size_t i = 0; i < v->n; i++) {
		for (int k = 0; k < 2; k++) {
			const struct engine_dir_stat *d = k ? &v->v[i].out : &v->v[i].in;

			for (int f = 0; f < 2; f++) {
				fprintf(out, "fedwall_partner_elements{partner=");
				prom_label(out, v->v[i].name);
				fprintf(out, ",direction=\"%s\",family=\"ipv%d\"} %zu\n", dirs[k],
					f ? 6 : 4, d->elems_fam[f]);
			}
		}
	}
}

/* What the two nodes of an HA pair compare: the digest (a label: 64
 * bits do not fit a sample's double), and the pair's counters. */
static void prom_ha(FILE *out, const struct ir_ruleset *rs, const struct engine_stats *v)
{
	static const char *const names[] = { ENGINE_HA_ADMITTED, ENGINE_HA_DROPPED };
	static const char *const verdicts[] = { "admitted", "dropped" };

	prom_head(out, "fedwall_ruleset_info", "gauge",
		  "The digest of what the table admits: equal on both nodes of a pair.");
	fprintf(out, "fedwall_ruleset_info{digest=\"%016llx\"} 1\n",
		(unsigned long long)v->digest);
	if (!engine_counter(rs, ENGINE_HA_ADMITTED))
		return;
	for (int b = 0; b < 2; b++) {
		prom_head(out, b ? "fedwall_ha_bytes_total" : "fedwall_ha_packets_total", "counter",
			  b ? "Bytes of the HA pair's VRRP and sync: from the peers admitted,"
			      " from others dropped."
			    : "Packets of the HA pair's VRRP and sync: from the peers admitted,"
			      " from others dropped.");
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			const struct ir_counter *c = engine_counter(rs, names[i]);

			if (c)
				fprintf(out, "fedwall_ha_%s_total{verdict=\"%s\"} %llu\n",
					b ? "bytes" : "packets", verdicts[i],
					(unsigned long long)(b ? c->bytes : c->packets));
		}
	}
}

static void prom_kernel(FILE *out, const struct ir_ruleset *rs, const struct engine_stats *v,
			const char *foreign)
{
	prom_head(out, "fedwall_partner_accepted_packets_total", "counter",
		  "Packets of new connections admitted from or to a partner.");
	prom_partner_counters(out, v, false);
	prom_head(out, "fedwall_partner_accepted_bytes_total", "counter",
		  "Bytes of new connections admitted from or to a partner.");
	prom_partner_counters(out, v, true);
	prom_elements(out, v);
	for (int b = 0; b < 2; b++) {
		prom_head(out, b ? "fedwall_dropped_bytes_total" : "fedwall_dropped_packets_total",
			  "counter", b ? "Bytes dropped by fedwall's table, by direction and reason."
				       : "Packets dropped by fedwall's table, by direction and reason.");
		for (size_t i = 0; i < ENGINE_NDROPS; i++) {
			const struct ir_counter *c = engine_counter(rs, engine_drops[i].counter);

			if (c)
				fprintf(out, "fedwall_dropped_%s_total{direction=\"%s\","
					"reason=\"%s\"} %llu\n", b ? "bytes" : "packets",
					engine_drops[i].direction, engine_drops[i].reason,
					(unsigned long long)(b ? c->bytes : c->packets));
		}
	}
	prom_ha(out, rs, v);
	prom_head(out, "fedwall_other_elements", "gauge",
		  "Elements of fedwall's plain sets (management, ports, edge).");
	fprintf(out, "fedwall_other_elements %zu\n", v->other);
	prom_head(out, "fedwall_table_foreign", "gauge",
		  "1 if the table holds objects fedwall did not write.");
	fprintf(out, "fedwall_table_foreign %d\n", foreign ? 1 : 0);
	prom_head(out, "fedwall_table_dormant", "gauge",
		  "1 if the table is dormant (flags dormant): it filters nothing.");
	fprintf(out, "fedwall_table_dormant %d\n", (rs->flags & IR_TABLE_F_DORMANT) != 0);
}

/* ---- per-source freshness, from the policy and the state directory ---- */

/* One row of the per-source metrics: a source of srcset_build (a name's
 * A and AAAA records are two) with what the state says of it. */
struct srow {
	const char *partner, *kind, *source, *family;   /* borrowed; family NULL: a list */
	struct src_seen seen;
};

typedef VEC(struct srow) srow_vec;

/* Every source of every partner, with what the state says of it; a
 * source the state does not know is reported as never confirmed.  `s`
 * must outlive the rows. */
static void source_rows(const struct policy *p, const struct srcset *s,
			const struct state *st, int64_t now, srow_vec *v)
{
	for (size_t k = 0; k < s->n; k++) {
		const struct src *x = &s->v[k];
		struct srow r = { p->partners[x->partner].name, state_kind_name(x->kind),
				  x->key, src_family_name(x), { 0 } };

		srcset_seen(s, p, k, st, now, &r.seen);
		VEC_PUSH(v, r);
	}
}

static void prom_row(FILE *out, const char *metric, const struct srow *r, long long val)
{
	fprintf(out, "%s{partner=", metric);
	prom_label(out, r->partner);
	fprintf(out, ",kind=\"%s\",source=", r->kind);
	prom_label(out, r->source);
	if (r->family)
		fprintf(out, ",family=\"%s\"", r->family);
	fprintf(out, "} %lld\n", val);
}

static bool fetched_kind(const struct srow *r)
{
	return !strcmp(r->kind, "url") || !strcmp(r->kind, "feed");
}

/* List URLs and feeds: when their body was last fetched (a 304 confirms
 * without fetching), and the validators in use. */
static void prom_fetch_rows(FILE *out, const srow_vec *v)
{
	prom_head(out, "fedwall_source_last_fetched_timestamp_seconds", "gauge",
		  "When a list URL's or a feed's body was last fetched and taken; 0 if"
		  " never.  A 304 (not modified) confirms it without fetching.");
	for (size_t i = 0; i < v->n; i++)
		if (fetched_kind(&v->v[i]))
			prom_row(out, "fedwall_source_last_fetched_timestamp_seconds", &v->v[i],
				 (long long)v->v[i].seen.fetched);
	prom_head(out, "fedwall_source_validator_info", "gauge",
		  "The validators a list URL's or a feed's next fetch sends (ETag,"
		  " Last-Modified) and a feed's version; empty when none.");
	for (size_t i = 0; i < v->n; i++) {
		const struct srow *r = &v->v[i];

		if (!fetched_kind(r))
			continue;
		fprintf(out, "fedwall_source_validator_info{partner=");
		prom_label(out, r->partner);
		fprintf(out, ",kind=\"%s\",source=", r->kind);
		prom_label(out, r->source);
		fprintf(out, ",etag=");
		prom_label(out, r->seen.etag ? r->seen.etag : "");
		fprintf(out, ",last_modified=");
		prom_label(out, r->seen.last_modified ? r->seen.last_modified : "");
		fprintf(out, ",version=");
		prom_label(out, r->seen.version ? r->seen.version : "");
		fprintf(out, "} 1\n");
	}
}

static void prom_source_rows(FILE *out, const srow_vec *v)
{
	prom_head(out, "fedwall_source_last_confirmed_timestamp_seconds", "gauge",
		  "When a partner's address source (host, domain, list; a name's A and AAAA"
		  " records each) was last confirmed; 0 if never.  Kept after stale_after"
		  " dropped its addresses, until it answers again.");
	for (size_t i = 0; i < v->n; i++)
		prom_row(out, "fedwall_source_last_confirmed_timestamp_seconds", &v->v[i],
			 (long long)v->v[i].seen.confirmed);
	prom_head(out, "fedwall_source_stale", "gauge",
		  "1 if a source was last confirmed longer ago than guards.stale_after"
		  " (also once its addresses were dropped, until it answers again).");
	for (size_t i = 0; i < v->n; i++)
		prom_row(out, "fedwall_source_stale", &v->v[i], v->v[i].seen.stale);
	prom_head(out, "fedwall_source_dropped", "gauge",
		  "1 if a stale source's addresses were dropped: it admits nothing until it"
		  " answers again.");
	for (size_t i = 0; i < v->n; i++)
		prom_row(out, "fedwall_source_dropped", &v->v[i], v->v[i].seen.dropped);
	prom_head(out, "fedwall_source_addresses", "gauge",
		  "Addresses a source's last known good holds (0 once dropped).");
	for (size_t i = 0; i < v->n; i++)
		prom_row(out, "fedwall_source_addresses", &v->v[i],
			 (long long)v->v[i].seen.naddrs);
	prom_fetch_rows(out, v);
	prom_head(out, "fedwall_source_dnssec_validated", "gauge",
		  "1 if a DNS source's last known good came from a DNSSEC-validated"
		  " answer (a partner with dnssec: require counts no other).");
	for (size_t i = 0; i < v->n; i++)
		if (v->v[i].family)     /* lists have nothing to validate */
			prom_row(out, "fedwall_source_dnssec_validated", &v->v[i],
				 v->v[i].seen.dnssec);
}

static void prom_sources(FILE *out, const struct policy *p, const char *state_dir,
			 struct diag *d)
{
	struct state st = { 0 };
	struct strbuf path = { 0 };
	struct srcset s = { 0 };
	srow_vec v = { 0 };
	struct stat sb;
	bool loaded;

	sb_addf(&path, "%s/%s", state_dir, STATE_FILE_NAME);
	loaded = state_load(&st, sb_str(&path), d) == 0 && stat(sb_str(&path), &sb) == 0 &&
		 !st.discarded;
	srcset_build(p, &s);
	source_rows(p, &s, &st, time(NULL), &v);
	prom_head(out, "fedwall_state_behind", "gauge",
		  "1 if the state file is older than the table (a save failed after a"
		  " commit: the state directory is full or read-only).");
	fprintf(out, "fedwall_state_behind %d\n", st.behind);
	prom_head(out, "fedwall_state_write_timestamp_seconds", "gauge",
		  "When the state file (last known good addresses) was last written; 0 if none.");
	fprintf(out, "fedwall_state_write_timestamp_seconds %lld\n",
		loaded ? (long long)sb.st_mtime : 0LL);
	prom_source_rows(out, &v);
	prom_head(out, "fedwall_partner_stale_sources", "gauge",
		  "Number of a partner's sources past guards.stale_after (dropped ones too).");
	for (size_t i = 0; i < p->npartners; i++) {
		unsigned n = 0;

		for (size_t k = 0; k < v.n; k++)
			n += v.v[k].partner == p->partners[i].name && v.v[k].seen.stale;
		fprintf(out, "fedwall_partner_stale_sources{partner=");
		prom_label(out, p->partners[i].name);
		fprintf(out, "} %u\n", n);
	}
	free(v.v);
	srcset_free(&s);
	state_free(&st);
	sb_free(&path);
}

/* From STATE_DIR/last-refresh; both omitted before the first refresh (or
 * when the record cannot be trusted, after a warning), so that a 0 is
 * never mistaken for a failure: alert on absent() as well. */
static void prom_last_refresh(FILE *out, const char *state_dir, struct diag *d)
{
	struct last_refresh l;

	if (last_refresh_read(state_dir, &l, d))
		return;
	prom_head(out, "fedwall_last_refresh_timestamp_seconds", "gauge",
		  "When the last refresh (fedwall refresh or a daemon cycle) ended.");
	fprintf(out, "fedwall_last_refresh_timestamp_seconds %lld\n", (long long)l.time);
	prom_head(out, "fedwall_last_refresh_success", "gauge",
		  "1 if the last refresh succeeded; 0 if a source failed or a partner was"
		  " refused.");
	fprintf(out, "fedwall_last_refresh_success %d\n", l.result == LAST_OK);
}

/* Each edge interface of a host-mode policy: 0 when this machine has no
 * interface of that name (apply --allow-missing-interfaces): the table
 * then filters nothing on it. */
static void prom_iface(FILE *out, const char *name)
{
	char real[IF_NAMESIZE];

	fprintf(out, "fedwall_interface_present{interface=");
	prom_label(out, name);
	fprintf(out, "} %d\n", iface_state(name, real) == IFACE_PRESENT);
}

/* And the HA pair's interface (ha.interface), in either mode. */
static void prom_ifaces(FILE *out, const struct policy *p)
{
	size_t n = p->mode == MODE_HOST ? p->edge.ninterfaces : 0;

	if (!n && !p->ha.interface.s)
		return;
	prom_head(out, "fedwall_interface_present", "gauge",
		  "1 if an interface the policy names (edge, ha) exists (by that name).");
	for (size_t i = 0; i < n; i++)
		prom_iface(out, p->edge.interfaces[i].s);
	if (p->ha.interface.s)
		prom_iface(out, p->ha.interface.s);
}

void engine_metrics_print(FILE *out, const struct engine_metrics *m, struct diag *d)
{
	prom_head(out, "fedwall_info", "gauge", "fedwall's version and table; always 1.");
	fprintf(out, "fedwall_info{version=\"%s\",table=", FEDWALL_VERSION);
	prom_label(out, m->table);
	fprintf(out, "} 1\n");
	prom_head(out, "fedwall_table_present", "gauge",
		  "1 if fedwall's table is loaded in the kernel.");
	fprintf(out, "fedwall_table_present %d\n", m->live ? 1 : 0);
	if (m->live)
		prom_kernel(out, m->live, m->stats, m->foreign);
	if (m->p)
		prom_sources(out, m->p, m->state_dir, d);
	if (m->p)
		prom_ifaces(out, m->p);
	prom_last_refresh(out, m->state_dir, d);
}

/* ---- the metrics file ---------------------------------------------------- */

/* The live table from the cache when its key holds (its counters read);
 * after a read-back, it is cached.  -ENOENT: no table. */
static int live_table(struct nft_ctx *ctx, const char *table, const struct engine_cache *cc,
		      struct ir_ruleset **live, struct diag *d)
{
	struct engine_live got;
	int ret = engine_live_get(ctx, table, cc, false, &got, d);

	*live = got.rs;
	if (!ret && !got.cached)
		engine_live_put(ctx, cc, *live, got.genid, d);
	return ret || *live ? ret : -ENOENT;
}

static int render(FILE *out, const struct policy *p, const char *state_dir, struct diag *d)
{
	struct engine_cache cc = { state_dir, false, 0 };
	struct engine_metrics m = { .table = p->table, .p = p, .state_dir = state_dir };
	struct engine_stats st = { 0 };
	struct ir_ruleset *live = NULL;
	struct nft_ctx *ctx;
	int ret = nft_open(&ctx);

	if (ret) {
		diag_error(d, NULL, "cannot talk to nf_tables: %s", strerror(-ret));
		return ret;
	}
	ret = live_table(ctx, p->table, &cc, &live, d);
	if (ret && ret != -ENOENT)
		goto out_close;
	if (live)
		engine_stats(live, &st);
	m.live = live;
	m.stats = &st;
	m.foreign = nft_foreign(ctx);
	engine_metrics_print(out, &m, d);
	ret = 0;
	engine_stats_free(&st);
	ir_free(live);
out_close:
	nft_close(ctx);
	return ret;
}

/* Everything is written to memory first, so that the file is replaced in
 * one rename (readers of the textfile collector never see half a file)
 * and only when the output is whole. */
int engine_metrics_write(const struct policy *p, const char *state_dir, const char *path,
			 struct diag *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	int ret;

	if (!mem) {
		diag_error(d, NULL, "out of memory");
		return -errno;
	}
	ret = render(mem, p, state_dir, d);
	if (fclose(mem) && !ret)
		ret = -errno;
	if (ret)
		goto out_free;
	if (!path || !strcmp(path, "-")) {
		if (len && (fwrite(buf, 1, len, stdout) != len || fflush(stdout)))
			ret = -EIO;
		goto out_free;
	}
	ret = file_write_atomic(path, buf, len, 0644);
	if (ret == -ENOENT)     /* (mkostemp: no directory, not installed) */
		ret = 0;
	else if (ret)
		diag_error(d, NULL, "cannot write '%s': %s", path, file_write_strerror(ret));
out_free:
	free(buf);
	return ret;
}

/* status.c - `fedwall status`: what is live in the kernel: per partner
 * the elements admitting it and its accepted-connection counters, and the
 * drop counters.  Read from the kernel alone (the policy only names the
 * table), so it shows what is really there.  `--format prometheus` adds,
 * from the policy and the state directory, when each address source was
 * last confirmed, for node_exporter's textfile collector. */
#include "cli.h"
#include "engine/engine.h"
#include "generator/generator.h"
#include "nft/nft.h"
#include "policy/policy.h"
#include "refresh/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define USAGE "[-f POLICY | --table NAME] [--state-dir DIR]\n" \
	"       [--json | --format text|json|prometheus] [-o FILE]"

enum format { FMT_TEXT, FMT_JSON, FMT_PROM, FMT_UNSET };

struct dir_stat {
	size_t elems;
	size_t elems_fam[2];    /* IPv4, IPv6 */
	bool has_counter;
	uint64_t packets, bytes;
};

struct pstat {
	const char *name;       /* borrowed from the live IR */
	struct dir_stat in, out;
};

typedef VEC(struct pstat) pstat_vec;

static struct pstat *partner(pstat_vec *v, const char *chain, bool *in)
{
	const char *name = ir_chain_partner(chain);
	struct pstat p = { .name = name };

	if (!name)
		return NULL;
	*in = chain[0] == 'i';
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i].name, name))
			return &v->v[i];
	VEC_PUSH(v, p);
	return &v->v[v->n - 1];
}

static int pstat_cmp(const void *x, const void *y)
{
	return strcmp(((const struct pstat *)x)->name, ((const struct pstat *)y)->name);
}

static void collect(const struct ir_ruleset *rs, pstat_vec *v)
{
	bool in;

	for (size_t i = 0; i < rs->nchains; i++)
		partner(v, rs->chains[i].name, &in);
	for (size_t i = 0; i < rs->nsets; i++) {
		const struct ir_set *s = &rs->sets[i];

		for (size_t k = 0; s->is_map && k < s->nelems; k++) {
			uint32_t c = s->elems[k].chain;
			struct pstat *p = c < rs->nchains ? partner(v, rs->chains[c].name, &in)
							  : NULL;

			if (p) {
				struct dir_stat *d = in ? &p->in : &p->out;

				d->elems++;
				d->elems_fam[s->elems[k].addr.family == 6]++;
			}
		}
	}
	for (size_t i = 0; i < rs->ncounters; i++) {
		const struct ir_counter *c = &rs->counters[i];
		struct pstat *p = partner(v, c->name, &in);
		struct dir_stat *d;

		if (!p)
			continue;
		d = in ? &p->in : &p->out;
		d->has_counter = true;
		d->packets = c->packets;
		d->bytes = c->bytes;
	}
	if (v->n)
		qsort(v->v, v->n, sizeof(*v->v), pstat_cmp);
}

static const struct ir_counter *counter(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->ncounters; i++)
		if (!strcmp(rs->counters[i].name, name))
			return &rs->counters[i];
	return NULL;
}

static size_t plain_elems(const struct ir_ruleset *rs)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->nsets; i++)
		if (!rs->sets[i].is_map)
			n += rs->sets[i].nelems;
	return n;
}

/* The drop counters (docs/RULESET.md): per direction, strangers (new
 * connections no rule admitted), invalid packets and new TCP without a
 * SYN that no partner map picked up. */
static const struct {
	const char *counter, *direction, *reason;
} drops[] = {
	{ "dropped_in", "in", "stranger" },
	{ "dropped_in_invalid", "in", "invalid" },
	{ "dropped_in_nosyn", "in", "nosyn" },
	{ "dropped_out", "out", "stranger" },
	{ "dropped_out_invalid", "out", "invalid" },
	{ "dropped_out_nosyn", "out", "nosyn" },
};

static bool dormant(const struct ir_ruleset *rs)
{
	return rs && (rs->flags & IR_TABLE_F_DORMANT);
}

static void text_dir(FILE *out, const struct dir_stat *d)
{
	if (d->has_counter || d->elems)
		fprintf(out, " %9zu %12llu %14llu", d->elems, (unsigned long long)d->packets,
		       (unsigned long long)d->bytes);
	else
		fprintf(out, " %9s %12s %14s", "-", "-", "-");
}

static void print_text(FILE *out, const struct ir_ruleset *rs, const pstat_vec *v, const char *foreign)
{
	fprintf(out, "table inet %s: %zu chains, %zu sets, %zu counters\n", rs->table, rs->nchains,
	       rs->nsets, rs->ncounters);
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
	for (size_t i = 0; i < ARRAY_SIZE(drops); i++) {
		const struct ir_counter *c = counter(rs, drops[i].counter);

		if (c)
			fprintf(out, "%s: %llu packets, %llu bytes\n", drops[i].counter,
			       (unsigned long long)c->packets, (unsigned long long)c->bytes);
	}
	fprintf(out, "other set elements (management, ports, edge): %zu\n", plain_elems(rs));
}

static void json_dir(FILE *out, const char *key, const struct dir_stat *d)
{
	fprintf(out, "\"%s\": {\"elements\": %zu, \"packets\": %llu, \"bytes\": %llu}", key, d->elems,
	       (unsigned long long)d->packets, (unsigned long long)d->bytes);
}

static void json_counter(FILE *out, const struct ir_ruleset *rs, const char *name)
{
	const struct ir_counter *c = counter(rs, name);

	fprintf(out, ", \"%s\": ", name);
	if (c)
		fprintf(out, "{\"packets\": %llu, \"bytes\": %llu}", (unsigned long long)c->packets,
		       (unsigned long long)c->bytes);
	else
		fprintf(out, "null");
}

/* What status also reports as problems (after the output, exit 1): each
 * edge interface the policy names that is absent, and a state file behind
 * the table. */
static void json_problems(FILE *out, const struct policy *p, const char *state_dir)
{
	struct strbuf path = { 0 };
	char real[IF_NAMESIZE];
	bool first = true;

	fprintf(out, ", \"interfaces_missing\": [");
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

static void print_json(FILE *out, const struct ir_ruleset *rs, const pstat_vec *v,
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
	for (size_t i = 0; i < ARRAY_SIZE(drops); i++)
		json_counter(out, rs, drops[i].counter);
	fprintf(out, ", \"flags\": %u, \"dormant\": %s", (unsigned)rs->flags,
		dormant(rs) ? "true" : "false");
	json_problems(out, p, state_dir);
	fprintf(out, ", \"other_elements\": %zu}\n", plain_elems(rs));
}

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

static void prom_partner_counters(FILE *out, const pstat_vec *v, bool bytes)
{
	static const char *const dirs[] = { "in", "out" };

	for (size_t i = 0; i < v->n; i++) {
		for (int k = 0; k < 2; k++) {
			const struct dir_stat *d = k ? &v->v[i].out : &v->v[i].in;

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

static void prom_elements(FILE *out, const pstat_vec *v)
{
	static const char *const dirs[] = { "in", "out" };

	prom_head(out, "fedwall_partner_elements", "gauge",
		  "Live verdict-map elements (address . protocol . port) admitting a partner.");
	for (size_t i = 0; i < v->n; i++) {
		for (int k = 0; k < 2; k++) {
			const struct dir_stat *d = k ? &v->v[i].out : &v->v[i].in;

			for (int f = 0; f < 2; f++) {
				fprintf(out, "fedwall_partner_elements{partner=");
				prom_label(out, v->v[i].name);
				fprintf(out, ",direction=\"%s\",family=\"ipv%d\"} %zu\n", dirs[k],
					f ? 6 : 4, d->elems_fam[f]);
			}
		}
	}
}

static void prom_kernel(FILE *out, const struct ir_ruleset *rs, const pstat_vec *v,
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
		for (size_t i = 0; i < ARRAY_SIZE(drops); i++) {
			const struct ir_counter *c = counter(rs, drops[i].counter);

			if (c)
				fprintf(out, "fedwall_dropped_%s_total{direction=\"%s\","
					"reason=\"%s\"} %llu\n", b ? "bytes" : "packets",
					drops[i].direction, drops[i].reason,
					(unsigned long long)(b ? c->bytes : c->packets));
		}
	}
	prom_head(out, "fedwall_other_elements", "gauge",
		  "Elements of fedwall's plain sets (management, ports, edge).");
	fprintf(out, "fedwall_other_elements %zu\n", plain_elems(rs));
	prom_head(out, "fedwall_table_foreign", "gauge",
		  "1 if the table holds objects fedwall did not write.");
	fprintf(out, "fedwall_table_foreign %d\n", foreign ? 1 : 0);
	prom_head(out, "fedwall_table_dormant", "gauge",
		  "1 if the table is dormant (flags dormant): it filters nothing.");
	fprintf(out, "fedwall_table_dormant %d\n", dormant(rs));
}

/* ---- per-source freshness, from the policy and the state directory ---- */

/* One row of the per-source metrics. */
struct srow {
	const char *partner, *kind, *source;    /* borrowed */
	int64_t confirmed;                      /* 0: never */
	bool stale;
};

typedef VEC(struct srow) srow_vec;

/* Whether `e` is an SRV owner of `domain` ("_xmpp-server._tcp.DOMAIN"). */
static bool srv_of(const struct state_entry *e, const char *domain)
{
	size_t n = strlen(e->name), k = strlen(domain);

	return e->kind == STATE_DOMAIN && e->name[0] == '_' && n > k + 1 &&
	       e->name[n - k - 1] == '.' && !strcmp(e->name + n - k, domain);
}

static void srow_add(srow_vec *v, const struct partner *pt, enum state_kind kind,
		     const char *source, const struct state_entry *e, int64_t now,
		     unsigned stale_after)
{
	struct srow r = { pt->name, state_kind_name(kind), e ? e->name : source, 0, false };

	if (e) {
		r.confirmed = e->confirmed;
		r.stale = now - e->confirmed > (int64_t)stale_after;
	}
	VEC_PUSH(v, r);
}

/* Every source of every partner, with what the state says of it; a
 * source the state does not know is reported as never confirmed.
 * TODO(refresh): take the rows from srcset_build/srcset_fill once those
 * are committed. */
static void source_rows(const struct policy *p, const struct state *st, int64_t now,
			srow_vec *v)
{
	unsigned sa = p->guards.stale_after;

	for (size_t i = 0; i < p->npartners; i++) {
		const struct partner *pt = &p->partners[i];

		for (size_t k = 0; k < pt->nhosts; k++)
			srow_add(v, pt, STATE_HOST, pt->hosts[k].s,
				 state_lookup(st, STATE_HOST, pt->hosts[k].s), now, sa);
		for (size_t k = 0; k < pt->ndomains; k++) {
			bool found = false;

			for (size_t e = 0; e < st->n; e++)
				if (srv_of(&st->v[e], pt->domains[k].s)) {
					srow_add(v, pt, STATE_DOMAIN, NULL, &st->v[e], now, sa);
					found = true;
				}
			if (!found)
				srow_add(v, pt, STATE_DOMAIN, pt->domains[k].s, NULL, now, sa);
		}
		for (size_t k = 0; k < pt->nlists; k++)
			srow_add(v, pt, STATE_LIST, pt->lists[k].s,
				 state_lookup(st, STATE_LIST, pt->lists[k].s), now, sa);
	}
}

static void prom_row(FILE *out, const char *metric, const struct srow *r, long long val)
{
	fprintf(out, "%s{partner=", metric);
	prom_label(out, r->partner);
	fprintf(out, ",kind=\"%s\",source=", r->kind);
	prom_label(out, r->source);
	fprintf(out, "} %lld\n", val);
}

static void prom_sources(FILE *out, const struct policy *p, const char *state_dir,
			 struct diag *d)
{
	struct state st = { 0 };
	struct strbuf path = { 0 };
	srow_vec v = { 0 };
	struct stat sb;
	bool loaded;

	sb_addf(&path, "%s/%s", state_dir, STATE_FILE_NAME);
	loaded = state_load(&st, sb_str(&path), d) == 0 && stat(sb_str(&path), &sb) == 0 &&
		 !st.discarded;
	source_rows(p, &st, time(NULL), &v);
	prom_head(out, "fedwall_state_behind", "gauge",
		  "1 if the state file is older than the table (a save failed after a"
		  " commit: the state directory is full or read-only).");
	fprintf(out, "fedwall_state_behind %d\n", st.behind);
	prom_head(out, "fedwall_state_write_timestamp_seconds", "gauge",
		  "When the state file (last known good addresses) was last written; 0 if none.");
	fprintf(out, "fedwall_state_write_timestamp_seconds %lld\n",
		loaded ? (long long)sb.st_mtime : 0LL);
	prom_head(out, "fedwall_source_last_confirmed_timestamp_seconds", "gauge",
		  "When a partner's address source (host, domain, list) was last confirmed; "
		  "0 if never.");
	for (size_t i = 0; i < v.n; i++)
		prom_row(out, "fedwall_source_last_confirmed_timestamp_seconds", &v.v[i],
			 (long long)v.v[i].confirmed);
	prom_head(out, "fedwall_source_stale", "gauge",
		  "1 if a source was last confirmed longer ago than guards.stale_after.");
	for (size_t i = 0; i < v.n; i++)
		prom_row(out, "fedwall_source_stale", &v.v[i], v.v[i].stale);
	prom_head(out, "fedwall_partner_stale_sources", "gauge",
		  "Number of a partner's sources past guards.stale_after.");
	for (size_t i = 0; i < p->npartners; i++) {
		unsigned n = 0;

		for (size_t k = 0; k < v.n; k++)
			n += v.v[k].partner == p->partners[i].name && v.v[k].stale;
		fprintf(out, "fedwall_partner_stale_sources{partner=");
		prom_label(out, p->partners[i].name);
		fprintf(out, "} %u\n", n);
	}
	free(v.v);
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
static void prom_ifaces(FILE *out, const struct policy *p)
{
	char real[IF_NAMESIZE];

	if (p->mode != MODE_HOST || !p->edge.ninterfaces)
		return;
	prom_head(out, "fedwall_interface_present", "gauge",
		  "1 if the edge interface the policy names exists (by that name).");
	for (size_t i = 0; i < p->edge.ninterfaces; i++) {
		const char *name = p->edge.interfaces[i].s;

		fprintf(out, "fedwall_interface_present{interface=");
		prom_label(out, name);
		fprintf(out, "} %d\n", iface_state(name, real) == IFACE_PRESENT);
	}
}

static void print_prom(FILE *out, const char *table, const struct ir_ruleset *rs,
		       const pstat_vec *v, const char *foreign, const struct policy *p,
		       const char *state_dir, struct diag *d)
{
	prom_head(out, "fedwall_info", "gauge", "fedwall's version and table; always 1.");
	fprintf(out, "fedwall_info{version=\"%s\",table=", FEDWALL_VERSION);
	prom_label(out, table);
	fprintf(out, "} 1\n");
	prom_head(out, "fedwall_table_present", "gauge",
		  "1 if fedwall's table is loaded in the kernel.");
	fprintf(out, "fedwall_table_present %d\n", rs ? 1 : 0);
	if (rs)
		prom_kernel(out, rs, v, foreign);
	if (p)
		prom_sources(out, p, state_dir, d);
	if (p)
		prom_ifaces(out, p);
	prom_last_refresh(out, state_dir, d);
}

/* ---- output: stdout, or FILE replaced atomically ------------------------ */

/* Everything is written to memory first, so that the file is replaced in
 * one rename (readers of the textfile collector never see half a file)
 * and only when the output is whole. */
struct sink {
	FILE *f;
	char *buf;
	size_t len;
	const char *path;       /* NULL: stdout */
	bool missing_dir_ok;    /* a missing directory: write nothing, say nothing */
};

static int sink_open(struct sink *k, const char *path)
{
	k->buf = NULL;
	k->len = 0;
	k->path = path && strcmp(path, "-") ? path : NULL;
	k->missing_dir_ok = false;
	k->f = open_memstream(&k->buf, &k->len);
	return k->f ? 0 : -errno;
}

static int sink_close(struct sink *k, bool ok, struct diag *d)
{
	int ret = fclose(k->f) ? -errno : 0;

	if (!ret && ok && k->path) {
		ret = file_write_atomic(k->path, k->buf, k->len, 0644);
		if (ret == -ENOENT && k->missing_dir_ok)
			ret = 0;        /* (mkostemp: no directory) */
		else if (ret)
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

/* `status` itself always reads the table back: it is what shows the
 * kernel's truth.  The metrics of refresh and the daemon (`cache`) take
 * it from the live table's cache when that holds, with the counters
 * read; after a read-back, they cache it. */
static int live_table(struct nft_ctx *ctx, const char *table, const struct engine_cache *cache,
		      struct ir_ruleset **live, struct diag *d)
{
	struct engine_live got;
	uint32_t genid;
	int ret;

	if (cache) {
		ret = engine_live_get(ctx, table, cache, false, &got, d);
		*live = got.rs;
		if (!ret && !got.cached)
			engine_live_put(ctx, cache, *live, got.genid, d);
		return ret || *live ? ret : -ENOENT;
	}
	ret = nft_read(ctx, table, live, &genid);
	if (ret && ret != -ENOENT)
		diag_error(d, NULL, "cannot read table inet %s: %s", table, strerror(-ret));
	return ret;
}

/* A dormant table filters nothing: a problem for people (status exits
 * 1), a gauge for the metrics. */
static void dormant_note(const struct ir_ruleset *rs, bool *dormant_out, struct diag *d)
{
	if (!dormant(rs) || !dormant_out)
		return;
	*dormant_out = true;
	diag_error(d, NULL, "table inet %s is dormant (flags dormant): it filters nothing;"
		   " fedwall apply, or the next refresh, replaces it", rs->table);
}

static int show(struct nft_ctx *ctx, const char *table, enum format fmt,
		const struct policy *p, const char *state_dir, const struct engine_cache *cache,
		FILE *out, bool *is_dormant, struct diag *d)
{
	struct ir_ruleset *live = NULL;
	pstat_vec v = { 0 };
	int ret = live_table(ctx, table, cache, &live, d);

	if (ret && ret != -ENOENT)
		return ret;
	if (ret == -ENOENT && fmt == FMT_JSON) {
		fprintf(out, "{\"table\": ");
		json_str(out, table);
		fprintf(out, ", \"loaded\": false");
		json_problems(out, p, state_dir);
		fprintf(out, "}\n");
	} else if (ret == -ENOENT && fmt == FMT_TEXT) {
		fprintf(out, "fedwall: table inet %s is not loaded\n", table);
	}
	if (live)
		collect(live, &v);
	if (fmt == FMT_PROM)
		print_prom(out, table, live, &v, nft_foreign(ctx), p, state_dir, d);
	else if (live && fmt == FMT_JSON)
		print_json(out, live, &v, nft_foreign(ctx), p, state_dir);
	else if (live)
		print_text(out, live, &v, nft_foreign(ctx));
	if (fmt != FMT_PROM)
		dormant_note(live, is_dormant, d);
	free(v.v);
	ir_free(live);
	/* A missing table is news for people (exit 1) but just a value for
	 * the metrics file, which is written either way. */
	return fmt == FMT_PROM ? 0 : ret;
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

/* status's output for `table` to `path` (NULL or "-": stdout); 0 or
 * -errno after reporting. */
static int status_write(const char *table, enum format fmt, const struct policy *p,
			const char *state_dir, const struct engine_cache *cache, const char *path,
			bool missing_dir_ok, bool *is_dormant, struct diag *d)
{
	struct nft_ctx *ctx;
	struct sink out;
	int ret = sink_open(&out, path);

	if (ret) {
		diag_error(d, NULL, "out of memory");
		return ret;
	}
	out.missing_dir_ok = missing_dir_ok;
	ret = nft_open(&ctx);
	if (ret) {
		diag_error(d, NULL, "cannot talk to nf_tables: %s", strerror(-ret));
	} else {
		ret = show(ctx, table, fmt, p, state_dir, cache, out.f, is_dormant, d);
		nft_close(ctx);
	}
	if (fmt == FMT_TEXT)
		confirm_notes(state_dir, false, stderr);
	if (!ret)
		ret = sink_close(&out, true, d);
	else
		sink_close(&out, false, d);
	return ret;
}

int cli_metrics_write(const struct policy *p, const char *state_dir, const char *path,
		      struct diag *d)
{
	struct engine_cache cache = { state_dir, false, 0 };

	return status_write(p->table, FMT_PROM, p, state_dir, &cache, path, true, NULL, d);
}

int status_main(int argc, const char *argv[])
{
	const char **av = xmalloc((size_t)(argc + 1) * sizeof(*av));
	struct common_opts o;
	struct policy *p = NULL;
	enum format fmt;
	struct diag d;
	char *table = NULL;
	bool is_dormant = false;
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
	if (status_write(table, fmt, p, o.state_dir, NULL, o.output, false, &is_dormant,
			 &d) == 0 && !is_dormant)
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

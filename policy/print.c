/* print.c - struct policy -> normalised YAML: keys in one order, names
 * sorted, prefixes and port ranges merged, every default written out.
 * Parsing the output and printing it again gives the same text, which is
 * what makes `fedwall check -v` useful for diffs and reviews. */
#include "policy/internal.h"

#include <stdlib.h>
#include <string.h>

static bool plain_char(char c, bool flow)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	/* In flow context libyaml takes every ':' for a value indicator. */
	return strchr("._/-%", c) || (!flow && c == ':');
}

/* Plain when it reads back as the same string, double-quoted otherwise. */
static void put_str(FILE *out, const char *s, bool flow)
{
	size_t len = strlen(s);
	/* Nor may it end in ':' ("2001:db8::" would read as a mapping key). */
	bool plain = len && strchr(":-%", s[0]) == NULL && s[len - 1] != ':' &&
		     strcmp(s, "null") && strcmp(s, "Null") && strcmp(s, "NULL");

	for (const char *c = s; plain && *c; c++)
		plain = plain_char(*c, flow);
	if (plain) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c == '\n')
			fputs("\\n", out);
		else if (*c == '\t')
			fputs("\\t", out);
		else if (*c < 0x20 || *c == 0x7f)
			fprintf(out, "\\x%02x", *c);
		else
			fputc(*c, out);
	}
	fputc('"', out);
}

static void put_desc(FILE *out, int indent, const char *desc)
{
	if (!desc)
		return;
	fprintf(out, "%*sdescription: ", indent, "");
	put_str(out, desc, false);
	fputc('\n', out);
}

/* `kindent` spaces before the key, `indent` + 2 before each item. */
static void put_addrs_at(FILE *out, int kindent, int indent, const char *key,
			 const struct addr_ent *a, size_t n)
{
	char buf[PREFIX_STRLEN];

	fprintf(out, "%*s%s:%s\n", kindent, "", key, n ? "" : " []");
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%*s  - ", indent, "");
		put_str(out, prefix_fmt(&a[i].p, buf, sizeof(buf)), false);
		fputc('\n', out);
	}
}

static void put_addrs(FILE *out, int indent, const char *key,
		      const struct addr_ent *a, size_t n)
{
	put_addrs_at(out, indent, indent, key, a, n);
}

static void put_ports(FILE *out, int indent, const char *key,
		      const struct port_ent *pe, size_t n)
{
	char buf[PORTRANGE_STRLEN];

	fprintf(out, "%*s%s: [", indent, "", key);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? ", " : "",
			portrange_fmt(&pe[i].r, buf, sizeof(buf)));
	fputs("]\n", out);
}

/* Partner sources are printed only when present; edge lists always. */
static void put_strs(FILE *out, int indent, const char *key,
		     const struct strval *sv, size_t n, bool always)
{
	if (!n && !always)
		return;
	fprintf(out, "%*s%s:%s\n", indent, "", key, n ? "" : " []");
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%*s  - ", indent, "");
		put_str(out, sv[i].s, false);
		fputc('\n', out);
	}
}

static int svc_name_cmp(const void *x, const void *y)
{
	const struct service *a = *(const struct service *const *)x;
	const struct service *b = *(const struct service *const *)y;

	return strcmp(a->name, b->name);
}

/* The effective choice, written out: restrict (every port), open (none)
 * or the ports that restrict. */
static void put_outbound(FILE *out, const struct service *s)
{
	bool all = s->nrestricts == s->nports;

	for (size_t i = 0; all && i < s->nports; i++)
		all = !portrange_cmp(&s->restricts[i].r, &s->ports[i].r);
	if (!s->nrestricts)
		fputs("    outbound: open\n", out);
	else if (all)
		fputs("    outbound: restrict\n", out);
	else
		put_ports(out, 4, "outbound", s->restricts, s->nrestricts);
}

static void put_services(FILE *out, const struct policy *p)
{
	const struct service **v = xcalloc(p->nservices + 1, sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; i < p->nservices; i++)
		if (!p->services[i].builtin)
			v[n++] = &p->services[i];
	qsort(v, n, sizeof(*v), svc_name_cmp);
	fprintf(out, "services:%s\n", n ? "" : " {}");
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "  %s:\n", v[i]->name);
		put_desc(out, 4, v[i]->description);
		put_ports(out, 4, "ports", v[i]->ports, v[i]->nports);
		put_outbound(out, v[i]);
	}
	free(v);
}

static void put_duration(FILE *out, unsigned secs);

/* A list URL with options is a mapping; a file or a bare URL a string. */
static void put_lists(FILE *out, const struct partner *pt)
{
	if (!pt->nlists)
		return;
	fputs("    lists:\n", out);
	for (size_t i = 0; i < pt->nlists; i++) {
		const struct list_opt *o = &pt->list_opts[i];

		fputs("      - ", out);
		if (!o->insecure_http && !o->interval) {
			put_str(out, pt->lists[i].s, false);
			fputc('\n', out);
			continue;
		}
		fputs("url: ", out);
		put_str(out, pt->lists[i].s, false);
		if (o->interval) {
			fputs("\n        interval: ", out);
			put_duration(out, o->interval);
		}
		if (o->insecure_http)
			fputs("\n        insecure_http: true", out);
		fputc('\n', out);
	}
}

/* A feed entry: url and format first, then its filters (flow lists) and
 * options in a fixed order. */
static void put_feed(FILE *out, const struct feed *f)
{
	fputs("      - url: ", out);
	put_str(out, f->url.s, false);
	fprintf(out, "\n        format: %s\n", feed_format_name(f->format));
	for (unsigned k = 0; k < FEED_KEYS; k++) {
		const struct feed_filter *ff = &f->filter[k];

		if (!ff->n)
			continue;
		fprintf(out, "        %s: ", feed_key_name(k));
		if (k == FK_REQUIRED) {
			fprintf(out, "%s\n", ff->v[0].s);
			continue;
		}
		fputc('[', out);
		for (size_t i = 0; i < ff->n; i++) {
			fputs(i ? ", " : "", out);
			put_str(out, ff->v[i].s, true);
		}
		fputs("]\n", out);
	}
	if (f->version_url_given) {
		fputs("        version_url: ", out);
		put_str(out, f->version_url.s, false);
		fputc('\n', out);
	}
	if (f->interval) {
		fputs("        interval: ", out);
		put_duration(out, f->interval);
		fputc('\n', out);
	}
	if (f->insecure_http)
		fputs("        insecure_http: true\n", out);
}

static void put_feeds(FILE *out, const struct partner *pt)
{
	if (!pt->nfeeds)
		return;
	fputs("    feeds:\n", out);
	for (size_t i = 0; i < pt->nfeeds; i++)
		put_feed(out, &pt->feeds[i]);
}

static void put_partner(FILE *out, const struct policy *p, const struct partner *pt)
{
	fprintf(out, "  %s:\n", pt->name);
	put_desc(out, 4, pt->description);
	fputs("    services: [", out);
	for (size_t i = 0; i < pt->nservices; i++)
		fprintf(out, "%s%s", i ? ", " : "", p->services[pt->services[i].idx].name);
	fputs("]\n", out);
	fprintf(out, "    direction: %s\n", direction_name(pt->direction));
	if (pt->naddresses)
		put_addrs(out, 4, "addresses", pt->addresses, pt->naddresses);
	put_strs(out, 4, "hosts", pt->hosts, pt->nhosts, false);
	put_lists(out, pt);
	put_strs(out, 4, "domains", pt->domains, pt->ndomains, false);
	put_strs(out, 4, "srv_targets", pt->srv_targets, pt->nsrv_targets, false);
	if (pt->dnssec_require)
		fputs("    dnssec: require\n", out);
	put_feeds(out, pt);
}

static void put_management(FILE *out, const struct policy *p)
{
	fprintf(out, "management:%s\n", p->nmanagement ? "" : " []");
	for (size_t i = 0; i < p->nmanagement; i++) {
		const struct mgmt *m = &p->management[i];

		fputs("  - ", out);
		put_addrs_at(out, 0, 4, "from", m->from, m->nfrom);
		put_ports(out, 4, "to", m->to, m->nto);
		put_desc(out, 4, m->description);
	}
}

static void put_outallow(FILE *out, const struct policy *p)
{
	fprintf(out, "outbound:\n  allow:%s\n", p->noutallow ? "" : " []");
	for (size_t i = 0; i < p->noutallow; i++) {
		const struct outallow *a = &p->outallow[i];

		fputs("    - ", out);
		put_addrs_at(out, 0, 6, "to", a->to, a->nto);
		put_ports(out, 6, "ports", a->ports, a->nports);
		put_desc(out, 6, a->description);
	}
}

static void put_duration(FILE *out, unsigned secs)
{
	static const struct { char c; unsigned mul; } units[] = {
		{ 'd', 86400 }, { 'h', 3600 }, { 'm', 60 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (secs % units[i].mul == 0) {
			fprintf(out, "%u%c", secs / units[i].mul, units[i].c);
			return;
		}
	}
	fprintf(out, "%us", secs);
}

/* Whether anything is fetched: `fetch:` is printed then (or when the
 * file wrote it), and not in every policy of list files alone. */
static bool fetches(const struct policy *p)
{
	if (p->fetch.written)
		return true;
	for (size_t i = 0; i < p->npartners; i++) {
		if (p->partners[i].nfeeds)
			return true;
		for (size_t k = 0; k < p->partners[i].nlists; k++)
			if (p->partners[i].list_opts[k].url)
				return true;
	}
	return false;
}

static void put_fetch(FILE *out, const struct policy *p)
{
	const struct fetchcfg *f = &p->fetch;

	if (!fetches(p))
		return;
	fputs("\nfetch:", out);
	if (f->ca_file.s) {
		fputs("\n  ca_file: ", out);
		put_str(out, f->ca_file.s, false);
	}
	fputs("\n  timeout: ", out);
	put_duration(out, f->timeout);
	if (f->max_size % (1u << 20) == 0)
		fprintf(out, "\n  max_size: %lluMiB", (unsigned long long)(f->max_size >> 20));
	else
		fprintf(out, "\n  max_size: %lluKiB", (unsigned long long)(f->max_size >> 10));
	fputs("\n  interval: ", out);
	put_duration(out, f->interval);
}

static void put_tail(FILE *out, const struct policy *p)
{
	const struct guards *g = &p->guards;

	fprintf(out, "guards:\n  max_shrink: %u%%\n  min_prefix_v4: %u\n"
		"  min_prefix_v6: %u\n  stale_after: ", g->max_shrink,
		g->min_prefix_v4, g->min_prefix_v6);
	put_duration(out, g->stale_after);
	fprintf(out, "\n  max_entries: %u", g->max_entries);
	fprintf(out, "\nresolve:\n  ttl_min: ");
	put_duration(out, p->resolve.ttl_min);
	fprintf(out, "\n  ttl_max: ");
	put_duration(out, p->resolve.ttl_max);
	fprintf(out, "\n  timeout: ");
	put_duration(out, p->resolve.timeout);
	/* The default is not written out: named, a missing file is an
	 * error; by default, only when a partner requires DNSSEC. */
	if (p->resolve.trust_anchor.s) {
		fprintf(out, "\n  trust_anchor: ");
		put_str(out, p->resolve.trust_anchor.s, false);
	}
	put_fetch(out, p);
	fprintf(out, "\nlog:\n  enabled: %s\n  rate: %u/%s\n  prefix: ",
		p->log.enabled ? "true" : "false", p->log.rate,
		log_unit_name(p->log.unit));
	put_str(out, p->log.prefix, false);
	fputc('\n', out);
}

/* Only when written: a policy without `ha` prints as it always did. */
static void put_ha(FILE *out, const struct policy *p)
{
	const struct hacfg *ha = &p->ha;

	if (!ha->present)
		return;
	fputs("ha:\n", out);
	put_addrs(out, 2, "peers", ha->peers, ha->npeers);
	if (ha->interface.s) {
		fputs("  interface: ", out);
		put_str(out, ha->interface.s, false);
		fputc('\n', out);
	}
	fprintf(out, "  vrrp: %s\n", ha->vrrp ? "true" : "false");
	if (ha->conntrackd)
		fprintf(out, "  conntrackd: udp/%u\n", ha->conntrackd);
	else
		fputs("  conntrackd: false\n", out);
}

void policy_print(FILE *out, const struct policy *p)
{
	fprintf(out, "version: %u\ntable: %s\nmode: %s\nedge:\n", p->version,
		p->table, mode_name(p->mode));
	if (p->mode == MODE_HOST)
		put_strs(out, 2, "interfaces", p->edge.interfaces,
			 p->edge.ninterfaces, true);
	put_addrs(out, 2, "addresses", p->edge.addresses, p->edge.naddresses);
	fprintf(out, "icmp:\n  echo: %s\n", p->icmp_echo ? "true" : "false");
	put_services(out, p);
	fprintf(out, "partners:%s\n", p->npartners ? "" : " {}");
	for (size_t i = 0; i < p->npartners; i++)
		put_partner(out, p, &p->partners[i]);
	put_management(out, p);
	put_outallow(out, p);
	put_tail(out, p);
	put_ha(out, p);
}

/* explain.c - `fedwall explain ADDRESS [PROTO/PORT]`: who admits this
 * address, on which ports, in which direction, and why (the policy's
 * line, the list's lines, the DNS name or SRV record and when it was
 * last confirmed); or that nothing does and which rule drops it.  Like
 * PAN-OS `test security-policy-match`, with the provenance.  Offline
 * from the policy and the state (the table plan would build); --live
 * from the kernel's table.  Exit 0: admitted; 2: dropped; 1: error;
 * 64: usage (2 is taken). */
#include "cli.h"
#include "engine/engine.h"
#include "generator/generator.h"
#include "policy/policy.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USAGE "[-f POLICY] [--state-dir DIR] [--live] [--json] ADDRESS [PROTO/PORT]"
#define EXIT_DROPPED 2
#define EXIT_EXPLAIN_USAGE 64

/* What the command line asks, beyond the shared options. */
struct ask {
	bool live;
	const char *addr, *port;
};

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "fedwall explain: %s '%s'\nUsage: fedwall explain %s\n", what, arg,
		USAGE);
	return -1;
}

/* Takes --live and the operands out of argv (common_parse takes options
 * only): an argument that is no option nor an option's value.  Returns
 * the new argc, or -1 after a usage error. */
static int take_args(int argc, const char *argv[], const char *av[], struct ask *a)
{
	const char *ops[3];
	int n = 0, nops = 0;

	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];
		bool operand = i > 0 && (s[0] != '-' || !s[1]);

		if (i > 0 && !strcmp(s, "--")) {
			while (++i < argc && nops < 3)
				ops[nops++] = argv[i];
			break;
		}
		if (i > 0 && !strcmp(s, "--live")) {
			a->live = true;
		} else if (operand) {
			if (nops == 3)
				break;
			ops[nops++] = s;
		} else {
			av[n++] = s;
			if ((!strcmp(s, "-f") || !strcmp(s, "--file") || !strcmp(s, "--state-dir")) &&
			    i + 1 < argc)
				av[n++] = argv[++i];
		}
	}
	av[n] = NULL;
	if (nops > 2)
		return usage_error("unexpected argument", ops[2]);
	a->addr = nops > 0 ? ops[0] : NULL;
	a->port = nops > 1 ? ops[1] : NULL;
	return n;
}

/* ADDRESS and PROTO/PORT into the question; false after a usage error. */
static bool parse_ask(const struct ask *a, struct engine_explain *e)
{
	const char *what = NULL, *arg = NULL;

	if (!a->addr) {
		what = "missing";
		arg = "ADDRESS";
	} else if (prefix_parse(a->addr, &e->addr) != PREFIX_OK || !prefix_is_host(&e->addr) ||
		   strchr(a->addr, '/')) {
		what = "not an IPv4 or IPv6 address:";
		arg = a->addr;
	} else if (a->port && (portrange_parse(a->port, &e->port) != PORT_OK ||
			       e->port.lo != e->port.hi)) {
		what = "not one port (tcp/5061, udp/3478):";
		arg = a->port;
	}
	e->has_port = a->port != NULL;
	if (what)
		usage_error(what, arg);
	return !what;
}

/* ---- text ----------------------------------------------------------------- */

static const char *via_word(enum explain_via v)
{
	return v == EXPLAIN_BY_MGMT ? "management" : v == EXPLAIN_BY_ALLOW ? "allowance"
		: v == EXPLAIN_BY_HA ? "ha peer" : "partner";
}

static const char *kind_word(enum explain_kind k)
{
	static const char *const w[] = { "inline", "host", "srv", "list", "management",
					 "allowance", "list URL", "feed", "ha" };

	return (size_t)k < ARRAY_SIZE(w) ? w[k] : "?";
}

static char *when(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "never");
	return buf;
}

/* "udp/3780"; an HA admission without a port is VRRP's. */
static const char *port_word(const struct explain_admit *a, char *buf, size_t len)
{
	if (a->via == EXPLAIN_BY_HA && !a->port.lo)
		return "vrrp";
	return portrange_fmt(&a->port, buf, len);
}

static void print_admit(const struct explain_admit *a, const struct engine_explain *e,
			bool live)
{
	char ab[PREFIX_STRLEN], eb[PREFIX_STRLEN], pb[PORTRANGE_STRLEN];

	printf("  %s %s %s on %s: %s%s%s (%s %s, element %s)\n",
	       a->inbound ? "inbound" : "outbound", a->inbound ? "from" : "to",
	       prefix_fmt(&e->addr, ab, sizeof(ab)), port_word(a, pb, sizeof(pb)),
	       via_word(a->via), a->partner ? " " : "", a->partner ? a->partner : "",
	       a->via == EXPLAIN_BY_PARTNER ? "map" : "set", a->set,
	       prefix_fmt(&a->elem, eb, sizeof(eb)));
	if (live && !explain_backed(e->p, &e->sources, a))
		printf("    not in the policy: no source of it names this element (added"
		       " behind fedwall's back, or the state moved on since the last apply)\n");
	else if (live && !explain_admitted(&e->policy_table, a))
		printf("    not in the table the policy makes now\n");
}

static void print_loc(const struct loc *l)
{
	printf("%s:%u", l->file ? l->file : "?", l->line);
}

/* ", for xmpp-s2s only": an SRV source of a kind scoped to some of the
 * partner's services (partner_srv_scoped) counts on theirs alone. */
static void print_scope(const struct policy *p, const struct explain_source *x)
{
	char sb[256];

	if (x->scope && x->partner < p->npartners)
		printf(", for %s only", partner_srv_services(p, &p->partners[x->partner],
							     x->scope, sb, sizeof(sb)));
}

/* "URL: PREFIX (fetched now; fetched T, last confirmed T, N s ago, ETag
 * X; on tcp/443; at " */
static void print_fetched(const struct explain_source *x, int64_t now)
{
	char pb[PREFIX_STRLEN], tb[32];

	printf("%s: %s (%s; fetched %s", x->name, prefix_fmt(&x->prefix, pb, sizeof(pb)),
	       x->status, when(x->fetched, tb, sizeof(tb)));
	printf(", last confirmed %s", when(x->confirmed, tb, sizeof(tb)));
	if (x->confirmed)
		printf(", %lld s ago", (long long)(now - x->confirmed));
	printf(", %s", x->validator ? x->validator : "no validator");
	if (x->ports)
		printf("; on %s only", x->ports);
	printf("; at ");
}

static void print_source(const struct policy *p, const struct explain_source *x,
			 int64_t now)
{
	char pb[PREFIX_STRLEN], tb[32];

	printf("    %s ", kind_word(x->kind));
	if (x->kind == EXPLAIN_LIST) {
		printf("%s line %u: %s", x->name, x->line.line,
		       prefix_fmt(&x->prefix, pb, sizeof(pb)));
		printf(" (%s; file modified %s; lists: at ", x->status,
		       when(x->confirmed, tb, sizeof(tb)));
	} else if (x->kind == EXPLAIN_URL || x->kind == EXPLAIN_FEED) {
		print_fetched(x, now);
	} else if (x->kind == EXPLAIN_HOST || x->kind == EXPLAIN_SRV) {
		const char *rr = x->prefix.family == 6 ? "AAAA" : "A";

		if (x->kind == EXPLAIN_SRV)
			printf("record %s (domain %s) -> its targets' %s records: ", x->record,
			       x->name, rr);
		else
			printf("%s (%s records): ", x->name, rr);
		printf("%s (%s, last confirmed %s", prefix_fmt(&x->prefix, pb, sizeof(pb)),
		       x->status, when(x->confirmed, tb, sizeof(tb)));
		if (x->confirmed)
			printf(", %lld s ago", (long long)(now - x->confirmed));
		printf(", %s", x->dnssec ? "validated by DNSSEC" : "not validated by DNSSEC");
		print_scope(p, x);
		printf("; at ");
	} else {
		printf("%s (at ", prefix_fmt(&x->prefix, pb, sizeof(pb)));
	}
	print_loc(&x->at);
	printf(")%s\n", x->counts ? "" : ": does not count now");
}

static bool partner_named(const struct engine_explain *e, size_t i)
{
	const char *name = e->p->partners[i].name;

	for (size_t k = 0; k < e->table.n; k++)
		if (e->table.v[k].partner && !strcmp(e->table.v[k].partner, name))
			return true;
	for (size_t k = 0; k < e->sources.n; k++)
		if (e->sources.v[k].partner == i)
			return true;
	return false;
}

static void print_partner(const struct engine_explain *e, size_t i)
{
	const struct partner *pt = &e->p->partners[i];

	printf("  partner %s (at ", pt->name);
	print_loc(&pt->loc);
	printf("), direction %s, services", direction_name(pt->direction));
	for (size_t k = 0; k < pt->nservices; k++)
		printf("%s %s", k ? "," : "", e->p->services[pt->services[k].idx].name);
	printf(":\n");
	if (explain_partner_why(e, i))
		printf("    admits it nowhere asked: %s\n", explain_partner_why(e, i));
	for (size_t k = 0; k < e->sources.n; k++)
		if (e->sources.v[k].partner == i)
			print_source(e->p, &e->sources.v[k], e->now);
}

static void print_why(const struct engine_explain *e)
{
	bool head = false;

	for (size_t i = 0; i < e->p->npartners; i++) {
		if (!partner_named(e, i))
			continue;
		printf("%s", head ? "" : "why:\n");
		head = true;
		print_partner(e, i);
	}
	for (size_t k = 0; k < e->sources.n; k++) {
		const struct explain_source *x = &e->sources.v[k];

		if (x->partner != SIZE_MAX)
			continue;
		if (x->kind == EXPLAIN_HA)
			printf("%s  ha peers:\n", head ? "" : "why:\n");
		else
			printf("%s  %s entry %zu:\n", head ? "" : "why:\n", kind_word(x->kind),
			       x->entry + 1);
		head = true;
		print_source(e->p, x, e->now);
	}
}

static void print_ports(const struct ir_set *s)
{
	char pb[PORTRANGE_STRLEN];

	for (size_t i = 0; s && i < s->nelems; i++)
		printf("%s%s", i ? ", " : "", portrange_fmt(&s->elems[i].port, pb, sizeof(pb)));
}

static void print_drops(const struct explain_table *t, const struct engine_explain *e)
{
	char pb[PORTRANGE_STRLEN];
	const char *on = e->has_port ? portrange_fmt(&e->port, pb, sizeof(pb)) : NULL;

	if (t->drop_in && t->drop_in_chain && !strcmp(t->drop_in_chain, "ha_in"))
		printf("  inbound%s%s: not a peer of the HA pair: dropped by chain ha_in"
		       " (counter %s)\n", on ? " on " : "", on ? on : "", t->drop_in);
	else if (t->drop_in)
		printf("  inbound%s%s: nothing admits it: dropped by chain edge_in's last rule"
		       " (counter %s)\n", on ? " on " : "", on ? on : "", t->drop_in);
	if (t->drop_out && (on || !t->drop_out_ports))
		printf("  outbound%s%s: nothing admits it: dropped by chain edge_out's last rule"
		       " (counter %s)\n", on ? " on " : "", on ? on : "", t->drop_out);
	else if (t->drop_out) {
		printf("  outbound: nothing admits it: dropped on the restricted ports (");
		print_ports(t->drop_out_ports);
		printf(") by chain edge_out's last rule (counter %s); the edge may call it on"
		       " other ports\n", t->drop_out);
	} else if (on && !t->drop_out && !t->n)
		printf("  outbound on %s: no service restricts it: the edge may call anybody"
		       " there\n", on);
}

static void print_disagree(const struct engine_explain *e)
{
	if (explain_tables_agree(&e->table, &e->policy_table))
		return;
	printf("live and policy disagree: the table the policy makes now %s\n",
	       e->policy_table.n ? "admits it so:" : "admits it nowhere (dropped)");
	for (size_t i = 0; i < e->policy_table.n; i++)
		print_admit(&e->policy_table.v[i], e, false);
}

static void print_text(const struct engine_explain *e)
{
	char ab[PREFIX_STRLEN], pb[PORTRANGE_STRLEN];

	printf("%s%s%s: %s (%s)\n", prefix_fmt(&e->addr, ab, sizeof(ab)),
	       e->has_port ? " " : "", e->has_port ? portrange_fmt(&e->port, pb, sizeof(pb)) : "",
	       e->table.n ? "admitted" : "dropped",
	       e->from_live ? "the live table" : "the policy and the state");
	for (size_t i = 0; i < e->table.n; i++)
		print_admit(&e->table.v[i], e, e->from_live);
	print_drops(&e->table, e);
	print_why(e);
	if (!e->table.n && !e->sources.n)
		printf("no partner, management or allowance entry of the policy names it\n");
	if (e->from_live)
		print_disagree(e);
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_prefix(const struct prefix *p)
{
	char b[PREFIX_STRLEN];

	json_str(stdout, prefix_fmt(p, b, sizeof(b)));
}

static void json_loc(const char *key, const struct loc *l)
{
	struct strbuf sb = { 0 };

	sb_addf(&sb, "%s:%u", l->file ? l->file : "?", l->line);
	printf(", \"%s\": ", key);
	json_str(stdout, sb_str(&sb));
	sb_free(&sb);
}

static void json_admits(const struct engine_explain *e, const struct explain_table *t,
			bool backed)
{
	char pb[PORTRANGE_STRLEN];

	printf("[");
	for (size_t i = 0; i < t->n; i++) {
		const struct explain_admit *a = &t->v[i];

		printf("%s{\"via\": \"%s\", \"partner\": ", i ? ", " : "", via_word(a->via));
		if (a->partner)
			json_str(stdout, a->partner);
		else
			printf("null");
		printf(", \"direction\": \"%s\", \"ports\": \"%s\", \"set\": ",
		       a->inbound ? "in" : "out", port_word(a, pb, sizeof(pb)));
		json_str(stdout, a->set);
		printf(", \"element\": ");
		json_prefix(&a->elem);
		if (backed)
			printf(", \"in_policy\": %s",
			       explain_backed(e->p, &e->sources, a) ? "true" : "false");
		printf("}");
	}
	printf("]");
}

static void json_opt(const char *key, const char *v)
{
	printf(", \"%s\": ", key);
	if (v)
		json_str(stdout, v);
	else
		printf("null");
}

/* "services": what the source's addresses are admitted on (partner
 * sources only; an SRV kind scoped to some services: those). */
static void json_services(const struct policy *p, const struct explain_source *x)
{
	const struct partner *pt = x->partner < p->npartners ? &p->partners[x->partner] : NULL;
	bool first = true;

	printf(", \"services\": ");
	if (!pt) {
		printf("null");
		return;
	}
	printf("[");
	for (size_t i = 0; i < pt->nservices; i++) {
		const char *name = p->services[pt->services[i].idx].name;

		if (x->scope && !(service_srv(name) & x->scope))
			continue;
		printf("%s", first ? "" : ", ");
		json_str(stdout, name);
		first = false;
	}
	printf("]");
}

static void json_source(const struct engine_explain *e, const struct explain_source *x)
{
	printf("{\"kind\": \"%s\"", kind_word(x->kind));
	json_opt("partner", x->partner < e->p->npartners ? e->p->partners[x->partner].name : NULL);
	json_opt("name", x->name);
	json_opt("record", x->record);
	json_opt("service", x->service);
	json_services(e->p, x);
	json_loc("policy", &x->at);
	if (x->kind == EXPLAIN_LIST)
		json_loc("line", &x->line);
	printf(", \"prefix\": ");
	json_prefix(&x->prefix);
	json_opt("status", x->status);
	if (x->kind == EXPLAIN_URL || x->kind == EXPLAIN_FEED) {
		json_opt("validator", x->validator);
		json_opt("ports", x->ports);
		if (x->fetched)
			printf(", \"fetched\": %lld", (long long)x->fetched);
		else
			printf(", \"fetched\": null");
	}
	printf(", \"counts\": %s, \"dnssec\": %s, \"confirmed\": ", x->counts ? "true" : "false",
	       x->dnssec ? "true" : "false");
	if (x->confirmed && x->kind != EXPLAIN_INLINE && x->kind != EXPLAIN_MGMT &&
	    x->kind != EXPLAIN_ALLOW)
		printf("%lld}", (long long)x->confirmed);
	else
		printf("null}");
}

static void json_drop(const char *key, const char *counter, const struct ir_set *ports)
{
	char pb[PORTRANGE_STRLEN];

	printf("\"%s\": ", key);
	if (!counter) {
		printf("null");
		return;
	}
	printf("{\"counter\": ");
	json_str(stdout, counter);
	printf(", \"ports\": ");
	if (!ports) {
		printf("null}");
		return;
	}
	printf("[");
	for (size_t i = 0; i < ports->nelems; i++)
		printf("%s\"%s\"", i ? ", " : "",
		       portrange_fmt(&ports->elems[i].port, pb, sizeof(pb)));
	printf("]}");
}

static void print_json(const struct engine_explain *e)
{
	char pb[PORTRANGE_STRLEN];

	printf("{\"address\": ");
	json_prefix(&e->addr);
	json_opt("port", e->has_port ? portrange_fmt(&e->port, pb, sizeof(pb)) : NULL);
	printf(", \"table\": ");
	json_str(stdout, e->p->table);
	printf(", \"from\": \"%s\", \"admitted\": %s, \"admits\": ", e->from_live ? "live" : "policy",
	       e->table.n ? "true" : "false");
	json_admits(e, &e->table, e->from_live);
	printf(", \"dropped\": {");
	json_drop("in", e->table.drop_in, e->table.drop_in_ports);
	printf(", ");
	json_drop("out", e->table.drop_out, e->table.drop_out_ports);
	printf("}, \"sources\": [");
	for (size_t i = 0; i < e->sources.n; i++) {
		printf("%s", i ? ", " : "");
		json_source(e, &e->sources.v[i]);
	}
	printf("]");
	if (e->from_live) {
		printf(", \"agrees\": %s, \"policy_admits\": ",
		       explain_tables_agree(&e->table, &e->policy_table) ? "true" : "false");
		json_admits(e, &e->policy_table, false);
	}
	printf("}\n");
}

int explain_main(int argc, const char *argv[])
{
	const char **av = xmalloc((size_t)(argc + 1) * sizeof(*av));
	struct engine_explain e = { 0 };
	struct ask a = { 0 };
	struct common_opts o;
	struct diag d;
	int n = take_args(argc, argv, av, &a), i, rc = EXIT_EXPLAIN_USAGE;

	i = n < 0 ? -1 : common_parse(n, av, "fj", USAGE, &o);
	if (i == -2)
		rc = EXIT_OK;
	if (i < 0 || !parse_ask(&a, &e))
		goto out_free_av;
	e.policy = o.policy;
	e.state_dir = o.state_dir;
	e.from_live = a.live;
	diag_init(&d, stderr);
	rc = EXIT_ERROR;
	if (engine_explain(&e, &d) == 0) {
		if (o.json)
			print_json(&e);
		else
			print_text(&e);
		rc = e.table.n ? EXIT_OK : EXIT_DROPPED;
	}
	engine_explain_free(&e);
out_free_av:
	free(av);
	return rc;
}

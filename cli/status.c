/* status.c - `fedwall status`: what is live in the kernel: per partner
 * the elements admitting it and its accepted-connection counters, and the
 * drop counters.  Read from the kernel alone (the policy only names the
 * table), so it shows what is really there. */
#include "cli.h"
#include "generator/generator.h"
#include "nft/nft.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "[-f POLICY | --table NAME] [--state-dir DIR] [--json]"

struct dir_stat {
	size_t elems;
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
	const char *name = cli_partner_of(chain);
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

			if (p)
				(in ? &p->in : &p->out)->elems++;
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

static void text_dir(const struct dir_stat *d)
{
	if (d->has_counter || d->elems)
		printf(" %9zu %12llu %14llu", d->elems, (unsigned long long)d->packets,
		       (unsigned long long)d->bytes);
	else
		printf(" %9s %12s %14s", "-", "-", "-");
}

static void print_text(const struct ir_ruleset *rs, const pstat_vec *v, const char *foreign)
{
	static const char *const drops[] = { "dropped_in", "dropped_out" };

	printf("table inet %s: %zu chains, %zu sets, %zu counters\n", rs->table, rs->nchains,
	       rs->nsets, rs->ncounters);
	if (foreign)
		printf("warning: %s (the next apply replaces the table)\n", foreign);
	printf("%-20s %9s %12s %14s %9s %12s %14s\n", "partner", "in-elems", "in-packets",
	       "in-bytes", "out-elems", "out-packets", "out-bytes");
	for (size_t i = 0; i < v->n; i++) {
		printf("%-20s", v->v[i].name);
		text_dir(&v->v[i].in);
		text_dir(&v->v[i].out);
		printf("\n");
	}
	for (size_t i = 0; i < ARRAY_SIZE(drops); i++) {
		const struct ir_counter *c = counter(rs, drops[i]);

		if (c)
			printf("%s: %llu packets, %llu bytes\n", drops[i],
			       (unsigned long long)c->packets, (unsigned long long)c->bytes);
	}
	printf("other set elements (management, ports, edge): %zu\n", plain_elems(rs));
}

static void json_dir(const char *key, const struct dir_stat *d)
{
	printf("\"%s\": {\"elements\": %zu, \"packets\": %llu, \"bytes\": %llu}", key, d->elems,
	       (unsigned long long)d->packets, (unsigned long long)d->bytes);
}

static void json_counter(const struct ir_ruleset *rs, const char *name)
{
	const struct ir_counter *c = counter(rs, name);

	printf(", \"%s\": ", name);
	if (c)
		printf("{\"packets\": %llu, \"bytes\": %llu}", (unsigned long long)c->packets,
		       (unsigned long long)c->bytes);
	else
		printf("null");
}

static void print_json(const struct ir_ruleset *rs, const pstat_vec *v, const char *foreign)
{
	printf("{\"table\": ");
	cli_json_str(stdout, rs->table);
	printf(", \"loaded\": true, \"foreign\": ");
	if (foreign)
		cli_json_str(stdout, foreign);
	else
		printf("null");
	printf(", \"partners\": {");
	for (size_t i = 0; i < v->n; i++) {
		printf("%s", i ? ", " : "");
		cli_json_str(stdout, v->v[i].name);
		printf(": {");
		json_dir("in", &v->v[i].in);
		printf(", ");
		json_dir("out", &v->v[i].out);
		printf("}");
	}
	printf("}");
	json_counter(rs, "dropped_in");
	json_counter(rs, "dropped_out");
	printf(", \"other_elements\": %zu}\n", plain_elems(rs));
}

static int show(struct nft_ctx *ctx, const char *table, bool json, struct diag *d)
{
	struct ir_ruleset *live = NULL;
	pstat_vec v = { 0 };
	uint32_t genid;
	int ret = nft_read(ctx, table, &live, &genid);

	if (ret == -ENOENT) {
		if (json) {
			printf("{\"table\": ");
			cli_json_str(stdout, table);
			printf(", \"loaded\": false}\n");
		} else {
			printf("fedwall: table inet %s is not loaded\n", table);
		}
		return ret;
	}
	if (ret) {
		diag_error(d, NULL, "cannot read table inet %s: %s", table, strerror(-ret));
		return ret;
	}
	collect(live, &v);
	if (json)
		print_json(live, &v, nft_foreign(ctx));
	else
		print_text(live, &v, nft_foreign(ctx));
	free(v.v);
	ir_free(live);
	return 0;
}

int status_main(int argc, const char *argv[])
{
	struct common_opts o;
	struct nft_ctx *ctx;
	struct diag d;
	char *table;
	int i = common_parse(argc, argv, "fvjt", USAGE, &o), ret;

	if (i == -2)
		return EXIT_OK;
	if (i < 0)
		return EXIT_USAGE;
	diag_init(&d, stderr);
	table = cli_table(&o, &d);
	if (!table)
		return EXIT_ERROR;
	ret = nft_open(&ctx);
	if (ret) {
		diag_error(&d, NULL, "cannot talk to nf_tables: %s", strerror(-ret));
	} else {
		ret = show(ctx, table, o.json, &d);
		nft_close(ctx);
	}
	free(table);
	return ret ? EXIT_ERROR : EXIT_OK;
}

/* kcost.c - measures what nft_commit() costs the kernel per path, to
 * calibrate the cost model in nft/kernel.c (docs/KERNEL-COSTS.md).
 *
 *   cc -std=gnu11 -O2 -I. -o build/kcost tools/kcost.c build/libfedwall.a \
 *      $(pkg-config --cflags --libs libnftnl libmnl yaml-0.1 libunbound)
 *   build/kcost [N...]          (root: runs in a network namespace of its own)
 *
 * For each N: a table with one concatenated interval map `in4` (ipv4_addr
 * . inet_proto . inet_service : verdict) of N elements (a /32 or /28 each,
 * tcp/5061 or a udp range) looked up by a vmap rule; then a fraction of
 * the elements is deleted (and as many new ones added) through each path,
 * from a fresh load each time.  Prints milliseconds of nft_commit(). */
#define _GNU_SOURCE
#include "generator/generator.h"
#include "nft/kernel-int.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void add_chain(struct ir_ruleset *rs, const char *name, enum ir_hook hook)
{
	struct ir_chain *c;

	rs->chains = xreallocarray(rs->chains, rs->nchains + 1, sizeof(*rs->chains));
	c = &rs->chains[rs->nchains++];
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(name);
	c->hook = hook;
	c->policy = hook ? IR_ACCEPT : IR_VERDICT_NONE;
}

static struct ir_rule *add_rule(struct ir_chain *c, enum ir_rule_kind k, enum ir_verdict v)
{
	struct ir_rule *r;

	c->rules = xreallocarray(c->rules, c->nrules + 1, sizeof(*c->rules));
	r = &c->rules[c->nrules++];
	memset(r, 0, sizeof(*r));
	r->kind = k;
	r->verdict = v;
	return r;
}

/* Element i of the synthetic list; `gen` shifts the address space so
 * that generation 1 elements are new ones. */
static struct ir_elem mk(unsigned i, unsigned gen)
{
	struct ir_elem e = { 0 };
	unsigned a = (gen ? 0x0b000000u : 0x0a000000u) + i * 16;

	e.addr.family = 4;
	e.addr.len = i % 3 ? 32 : 28;
	e.addr.a[0] = (uint8_t)(a >> 24);
	e.addr.a[1] = (uint8_t)(a >> 16);
	e.addr.a[2] = (uint8_t)(a >> 8);
	e.addr.a[3] = (uint8_t)a;
	e.port = i % 4 ? (struct portrange){ PROTO_TCP, 5061, 5061 }
		       : (struct portrange){ PROTO_UDP, 50000, 59999 };
	e.chain = 2 + i % 2;
	return e;
}

static int ecmp(const void *x, const void *y)
{
	return ir_elem_cmp(x, y);
}

/* N elements, of which every `step`-th (0: none) is left out, or
 * replaced by a new one when `add`. */
static struct ir_ruleset *table(unsigned n, unsigned step, bool add)
{
	struct ir_ruleset *rs = xcalloc(1, sizeof(*rs));
	struct ir_set *s;
	struct ir_rule *r;

	rs->table = xstrdup("kcost");
	add_chain(rs, "input", IR_HOOK_INPUT);
	add_chain(rs, "edge_in", IR_HOOK_NONE);
	add_chain(rs, "in_a", IR_HOOK_NONE);
	add_chain(rs, "in_b", IR_HOOK_NONE);
	add_rule(&rs->chains[0], IR_R_JUMP, IR_JUMP)->target = xstrdup("edge_in");
	add_rule(&rs->chains[1], IR_R_CT_STATE, IR_ACCEPT);
	r = add_rule(&rs->chains[1], IR_R_VMAP, IR_VERDICT_NONE);
	r->family = 4;
	r->set = xstrdup("in4");
	add_rule(&rs->chains[1], IR_R_COUNTER, IR_DROP)->target = xstrdup("dropped_in");
	add_rule(&rs->chains[2], IR_R_COUNTER, IR_ACCEPT)->target = xstrdup("in_a");
	add_rule(&rs->chains[3], IR_R_COUNTER, IR_ACCEPT)->target = xstrdup("in_b");
	rs->counters = xcalloc(3, sizeof(*rs->counters));
	rs->counters[0].name = xstrdup("dropped_in");
	rs->counters[1].name = xstrdup("in_a");
	rs->counters[2].name = xstrdup("in_b");
	rs->ncounters = 3;
	rs->sets = s = xcalloc(1, sizeof(*s));
	rs->nsets = 1;
	s->name = xstrdup("in4");
	s->key = IR_KEY_ADDR4_PROTO_PORT;
	s->is_map = true;
	s->elems = xcalloc(n + 1, sizeof(*s->elems));
	for (unsigned i = 0; i < n; i++)
		if (add || !step || i % step)
			s->elems[s->nelems++] = mk(i, step && i % step == 0);
	qsort(s->elems, s->nelems, sizeof(*s->elems), ecmp);
	return rs;
}

static int commit(struct nft_ctx *ctx, const struct ir_ruleset *want, enum nft_path p,
		  double *ms)
{
	struct ir_ruleset *live = NULL;
	struct nft_commit_result cr;
	struct ir_diff diff;
	struct diag d;
	uint32_t genid;
	double t;
	int ret = nft_read(ctx, want->table, &live, &genid);

	if (ret && ret != -ENOENT)
		return ret;
	diag_init(&d, stderr);
	ir_diff(live, want, &diff);
	ctx->force = p;
	t = now_ms();
	ret = nft_commit(ctx, live, want, &diff, genid, &cr, &d);
	*ms = now_ms() - t;
	ir_diff_free(&diff);
	ir_free(live);
	return ret;
}

static const char *const pname[] = {
	[NFT_PATH_DELTA] = "delta", [NFT_PATH_SWAP] = "swap", [NFT_PATH_FLUSH] = "flush",
	[NFT_PATH_REPLACE] = "replace",
};

/* Predicted milliseconds of a path, to skip runs that would take minutes. */
static double guess_ms(enum nft_path p, double n, double ndel)
{
	if (p == NFT_PATH_DELTA)
		return ndel * n * 0.004;
	if (p == NFT_PATH_FLUSH)
		return n * n * 0.0001;
	return n * 0.01;
}

int main(int argc, char **argv)
{
	static const unsigned dflt[] = { 2000, 20000, 100000 };
	static const unsigned ndels[] = { 1, 10 };
	static const unsigned steps[] = { 100, 10 };    /* 1 %, 10 % */
	struct nft_ctx *ctx;
	size_t nn = argc > 1 ? (size_t)argc - 1 : 3;
	double limit = getenv("KCOST_LIMIT_MS") ? atof(getenv("KCOST_LIMIT_MS")) : 20000;

	if (unshare(CLONE_NEWNET) < 0 || nft_open(&ctx)) {
		perror("kcost: needs root (unshare, netlink)");
		return 1;
	}
	printf("%8s %7s %8s %10s\n", "elements", "deleted", "path", "ms");
	for (size_t k = 0; k < nn; k++) {
		unsigned n = argc > 1 ? (unsigned)atoi(argv[k + 1]) : dflt[k];
		struct ir_ruleset *base = table(n, 0, false);
		double ms;

		if (commit(ctx, base, NFT_PATH_REPLACE, &ms))
			return 1;
		printf("%8u %7s %8s %10.1f\n", n, "-", "load", ms);
		for (size_t s = 0; s < 4; s++) {
			unsigned step = s < 2 ? n / ndels[s] : steps[s - 2];
			struct ir_ruleset *want = table(n, step, false);
			size_t ndel = n - want->sets[0].nelems;

			for (int p = NFT_PATH_DELTA; p <= NFT_PATH_REPLACE; p++) {
				if (guess_ms((enum nft_path)p, n, (double)ndel) > limit) {
					printf("%8u %7zu %8s %10s\n", n, ndel, pname[p], "skipped");
					continue;
				}
				if (commit(ctx, base, NFT_PATH_REPLACE, &ms) ||
				    commit(ctx, want, (enum nft_path)p, &ms))
					return 1;
				printf("%8u %7zu %8s %10.1f\n", n, ndel, pname[p], ms);
				fflush(stdout);
			}
			ir_free(want);
		}
		ir_free(base);
	}
	nft_close(ctx);
	return 0;
}

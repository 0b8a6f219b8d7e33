/* genpol.c - synthetic fedwall policies for the benchmarks.
 *
 *   genpol [-1] [-c CHANGED] [-i IPT.nft] N DIR
 *	Writes DIR/policy.yaml and DIR/lists/<partner>.txt: N partner
 *	prefixes spread over eight partners with different services (one
 *	with a port range of its own, others with the built-in av-edge and
 *	teams-direct-routing ranges) and directions, plus the inline `lab`
 *	partner 198.51.100.0/24, 2001:db8:51::/64 (sip-federation, inbound)
 *	that the packet-rate test connects from, and a management entry.
 *	Prefix mix: 60% /32, 17% /28, 18% /24, 5% IPv6 (/48 and /128).
 *	-c CHANGED: the same policy with CHANGED prefixes, spread evenly
 *	over the list, replaced by fresh ones of the same length and
 *	partner (a refresh that moved CHANGED addresses).
 *	-i FILE: also write FILE, the same inbound rules the iptables way
 *	(table inet iptstyle, one rule per address and protocol, the lab
 *	partner's rule last), for the rule-walk comparison.
 *	-1: one partner `sipco` (sip-federation, inbound) holding all N
 *	prefixes, no lab partner: issue 14's one-partner, one-service
 *	shape, whose table is small enough per prefix that a refresh's
 *	fixed costs cannot hide behind a large `nft -f`.
 *
 * Deterministic: the same arguments give the same bytes.  Synthetic
 * prefixes are spread over public-looking IPv4 space (never 0/8, 10/8,
 * 127/8, 224/3 or the documentation ranges the lab uses) and 2a0e::/16,
 * 2a0f::/16; they are never traffic targets.  Each sits in its own
 * even-numbered /24 so that no two prefixes of a partner are adjacent and
 * fedwall keeps them as written.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct partner {
	const char *name, *services, *direction;
	const char *ipt_tcp, *ipt_udp;	/* inbound ports, nft set syntax */
};

static const struct partner partners[] = {
	{ "acme", "[sip-federation]", "both", "5061", NULL },
	{ "bigco", "[sip-federation, av-edge]", "both",
	  "{ 443, 5061, 50000-59999 }", "{ 3478, 50000-59999 }" },
	{ "chatnet", "[xmpp-s2s]", "inbound", "5269", NULL },
	{ "teamsco", "[teams-direct-routing]", "both", "5061", "{ 3478-3481, 49152-53247 }" },
	{ "matrixorg", "[matrix-federation]", "outbound", NULL, NULL },
	{ "webco", "[sip-federation, web-conferencing]", "both", "{ 443, 5061 }", NULL },
	{ "mediaco", "[sip-federation, media]", "inbound", "{ 5061, 5062 }", "10000-20000" },
	{ "smallco", "[sip-federation]", "outbound", NULL, NULL },
};

static const struct partner single = { "sipco", "[sip-federation]", "inbound", "5061", NULL };

/* The partners written: the eight above, or `single` (-1). */
static const struct partner *parts = partners;
static size_t nparts = sizeof(partners) / sizeof(partners[0]);
#define MAXPARTNERS (sizeof(partners) / sizeof(partners[0]))

static uint32_t hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

/* The /24 block numbers (first 24 bits) that synthetic IPv4 prefixes
 * use, in a scattered but fixed order: an odd multiplier permutes
 * 0..2^23-1, doubled to even blocks. */
static uint32_t *blocks;

static int excluded(uint32_t b)
{
	uint32_t o1 = b >> 16;

	return o1 == 0 || o1 == 10 || o1 == 127 || o1 >= 224 ||
	       b == 0xc00002 || b == 0xc63364 || b == 0xcb0071;
}

static void make_blocks(size_t n)
{
	uint32_t s = 0;

	blocks = calloc(n, sizeof(*blocks));
	if (!blocks) {
		perror("genpol");
		exit(1);
	}
	for (size_t i = 0; i < n; s++) {
		uint32_t k = (s * 0x9E3779B1U + 12345U) & ((1U << 23) - 1);

		if (!excluded(2 * k))
			blocks[i++] = 2 * k;
	}
}

/* Prefix kind of list position `pos`, address from index `idx`. */
static void print_prefix(FILE *f, size_t pos, size_t idx)
{
	uint32_t h = hash32((uint32_t)pos * 2654435761U + 7) % 100;
	uint32_t r = hash32((uint32_t)idx + 0x51ed270b);
	uint32_t a = blocks[idx] << 8;

	if (h < 5) {
		uint32_t v = 2 * (uint32_t)idx;
		if (h < 3)
			fprintf(f, "2a0e:%x:%x::/48\n", v >> 16, v & 0xffff);
		else
			fprintf(f, "2a0f:%x:%x::%x\n", v >> 16, v & 0xffff, (r & 0xfff) + 1);
		return;
	}
	if (h < 65)
		a |= r & 0xff;
	else if (h < 82)
		a |= r & 0xf0;
	fprintf(f, "%u.%u.%u.%u%s\n", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
		a & 0xff, h < 65 ? "" : h < 82 ? "/28" : "/24");
}

static size_t partner_of(size_t pos)
{
	return hash32((uint32_t)pos ^ 0xa5a5a5a5U) % nparts;
}

/* The index the address at list position `pos` comes from: itself, or
 * for a changed position a fresh index beyond n. */
static size_t index_at(size_t pos, size_t n, size_t changed)
{
	if (changed) {
		size_t j = pos * changed / n;	/* candidate slot */
		size_t at = (size_t)(((double)j + 0.5) * (double)n / (double)changed);

		if (j < changed && at == pos)
			return n + j;
	}
	return pos;
}

static FILE *open_out(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "genpol: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return f;
}

static void write_policy(const char *dir)
{
	FILE *f = open_out(dir, "policy.yaml");

	fprintf(f, "# Synthetic benchmark policy written by bench/genpol.\nversion: 1\n"
		"services:\n  media:\n    description: a partner's own media range\n"
		"    ports: [udp/10000-20000, tcp/5062]\npartners:\n");
	for (size_t p = 0; p < nparts; p++)
		fprintf(f, "  %s:\n    description: synthetic partner %zu\n"
			"    services: %s\n    direction: %s\n    lists: [lists/%s.txt]\n",
			parts[p].name, p + 1, parts[p].services,
			parts[p].direction, parts[p].name);
	if (parts != &single)	/* the one-partner shape has no second one */
		fprintf(f, "  lab:\n    description: the packet-rate test's client namespace\n"
			"    services: [sip-federation]\n    direction: inbound\n"
			"    addresses: [198.51.100.0/24, \"2001:db8:51::/64\"]\n");
	fprintf(f, "management:\n  - {from: 192.0.2.0/24, to: tcp/22}\n");
	fclose(f);
}

static void write_lists(const char *dir, size_t n, size_t changed)
{
	FILE *f[MAXPARTNERS];
	char name[256];

	for (size_t p = 0; p < nparts; p++) {
		snprintf(name, sizeof(name), "lists/%s.txt", parts[p].name);
		f[p] = open_out(dir, name);
		fprintf(f[p], "# synthetic list of partner %s\n", parts[p].name);
	}
	for (size_t pos = 0; pos < n; pos++)
		print_prefix(f[partner_of(pos)], pos, index_at(pos, n, changed));
	for (size_t p = 0; p < nparts; p++)
		if (fclose(f[p])) {
			perror("genpol");
			exit(1);
		}
}

static void ipt_rule(FILE *f, const char *fam, const char *pfx, const char *proto,
		     const char *ports, const char *chain)
{
	if (ports)
		fprintf(f, "\t\t%s saddr %s %s dport %s jump %s\n", fam, pfx, proto, ports, chain);
}

/* The iptables way: walk one rule per address and protocol. */
static void write_ipt(const char *path, size_t n, size_t changed)
{
	FILE *f = fopen(path, "w"), *mem;
	char *line = NULL;
	size_t cap = 0;

	if (!f || !(mem = tmpfile())) {
		perror(path);
		exit(1);
	}
	fprintf(f, "table inet iptstyle {}\ndelete table inet iptstyle\n"
		"table inet iptstyle {\n");
	for (size_t p = 0; p < nparts; p++)
		fprintf(f, "\tchain in_%s {\n\t\tcounter accept\n\t}\n", parts[p].name);
	fprintf(f, "\tchain in_lab {\n\t\tcounter accept\n\t}\n"
		"\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n"
		"\t\tiif \"lo\" accept\n\t\tct state established,related accept\n"
		"\t\tct state invalid drop\n\t\tip saddr 192.0.2.0/24 tcp dport 22 accept\n");
	for (size_t pos = 0; pos < n; pos++) {
		const struct partner *pt = &parts[partner_of(pos)];
		char chain[64];

		if (!strcmp(pt->direction, "outbound"))
			continue;
		rewind(mem);
		print_prefix(mem, pos, index_at(pos, n, changed));
		fflush(mem);
		rewind(mem);
		if (getline(&line, &cap, mem) < 1)
			continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(chain, sizeof(chain), "in_%s", pt->name);
		ipt_rule(f, strchr(line, ':') ? "ip6" : "ip", line, "tcp", pt->ipt_tcp, chain);
		ipt_rule(f, strchr(line, ':') ? "ip6" : "ip", line, "udp", pt->ipt_udp, chain);
	}
	fprintf(f, "\t\tip saddr 198.51.100.0/24 tcp dport 5061 jump in_lab\n"
		"\t\tip6 saddr 2001:db8:51::/64 tcp dport 5061 jump in_lab\n"
		"\t\tcounter drop\n\t}\n}\n");
	free(line);
	fclose(mem);
	if (fclose(f)) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char *argv[])
{
	const char *ipt = NULL;
	size_t n, changed = 0;
	char lists[4096];
	int c;

	while ((c = getopt(argc, argv, "1c:i:")) != -1) {
		if (c == '1') {
			parts = &single;
			nparts = 1;
		} else if (c == 'c')
			changed = strtoul(optarg, NULL, 10);
		else if (c == 'i')
			ipt = optarg;
		else
			goto usage;
	}
	if (argc - optind != 2)
		goto usage;
	n = strtoul(argv[optind], NULL, 10);
	if (n > 4000000 || changed > n)
		goto usage;
	make_blocks(n + changed + 1);
	snprintf(lists, sizeof(lists), "%s/lists", argv[optind + 1]);
	if ((mkdir(argv[optind + 1], 0755) && errno != EEXIST) ||
	    (mkdir(lists, 0755) && errno != EEXIST)) {
		perror(argv[optind + 1]);
		return 1;
	}
	write_policy(argv[optind + 1]);
	write_lists(argv[optind + 1], n, changed);
	if (ipt)
		write_ipt(ipt, n, changed);
	free(blocks);
	return 0;
usage:
	fprintf(stderr, "usage: genpol [-1] [-c CHANGED] [-i IPT.nft] N DIR (N <= 4000000)\n");
	return 2;
}

/* addr.c - IPv4/IPv6 prefixes: parse, print, compare, merge. */
#include "common.h"

#include <arpa/inet.h>
#include <endian.h>
#include <stdlib.h>
#include <string.h>

unsigned prefix_maxlen(const struct prefix *p)
{
	return p->family == 4 ? 32 : 128;
}

bool prefix_is_host(const struct prefix *p)
{
	return p->len == prefix_maxlen(p);
}

static bool bit_at(const uint8_t *a, unsigned i)
{
	return a[i / 8] & (0x80 >> (i % 8));
}

static void bit_flip(uint8_t *a, unsigned i)
{
	a[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
}

static uint64_t be64_at(const uint8_t *b)
{
	uint64_t v;

	memcpy(&v, b, 8);
	return be64toh(v);
}

/* Whether the first `len` bits of two prefixes' 16 address bytes agree:
 * as two 64-bit words (merges and guards call this per element). */
static bool bits_equal(const uint8_t a[16], const uint8_t b[16], unsigned len)
{
	uint64_t hi = be64_at(a) ^ be64_at(b), lo;

	if (len == 0)
		return true;
	if (len < 64)
		return !(hi >> (64 - len));
	lo = be64_at(a + 8) ^ be64_at(b + 8);
	return !hi && (len == 64 || !(lo >> (128 - len)));
}

void prefix_mask(struct prefix *p)
{
	unsigned max = prefix_maxlen(p), len = p->len < max ? p->len : max;

	if (len % 8)
		p->a[len / 8] &= (uint8_t)(0xff00 >> (len % 8));
	memset(p->a + (len + 7) / 8, 0, 16 - (len + 7) / 8);
}

static bool parse_len(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (!*s || strlen(s) > 3)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

enum prefix_err prefix_parse(const char *s, struct prefix *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned len;
	struct prefix p = { 0 };

	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return PREFIX_BAD_ADDR;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, p.a) == 1)
		p.family = 4;
	else if (strchr(buf, ':') && inet_pton(AF_INET6, buf, p.a) == 1)
		p.family = 6;
	else
		return PREFIX_BAD_ADDR;
	len = prefix_maxlen(&p);
	if (slash && !parse_len(slash + 1, prefix_maxlen(&p), &len))
		return PREFIX_BAD_LEN;
	p.len = (uint8_t)len;
	*out = p;
	prefix_mask(out);
	return memcmp(out->a, p.a, 16) ? PREFIX_HOST_BITS : PREFIX_OK;
}

const char *prefix_strerror(enum prefix_err e)
{
	switch (e) {
	case PREFIX_OK:
		return "ok";
	case PREFIX_BAD_ADDR:
		return "not an IPv4 or IPv6 address";
	case PREFIX_BAD_LEN:
		return "bad prefix length";
	case PREFIX_HOST_BITS:
		return "host bits set after the prefix length";
	}
	return "?";
}

char *prefix_fmt(const struct prefix *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(p->family == 4 ? AF_INET : AF_INET6, p->a, a, sizeof(a));
	if (prefix_is_host(p))
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, "%s/%u", a, p->len);
	return buf;
}

bool prefix_contains(const struct prefix *outer, const struct prefix *inner)
{
	if (outer->family != inner->family || outer->len > inner->len)
		return false;
	return bits_equal(outer->a, inner->a, outer->len);
}

size_t prefix_upper(const struct prefix *v, size_t n, const struct prefix *p)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (prefix_cmp(&v[mid], p) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool prefix_overlaps(const struct prefix *x, const struct prefix *y)
{
	return prefix_contains(x, y) || prefix_contains(y, x);
}

void prefix_first(const struct prefix *p, uint8_t out[16])
{
	memcpy(out, p->a, 16);
}

/* Byte-wise: the final guard runs this on every element of a table. */
void prefix_last(const struct prefix *p, uint8_t out[16])
{
	unsigned max = prefix_maxlen(p), i = p->len / 8;

	memcpy(out, p->a, 16);
	if (p->len % 8)
		out[i++] |= (uint8_t)(0xff >> (p->len % 8));
	for (; i < max / 8; i++)
		out[i] = 0xff;
}

static int prefix_qcmp(const void *x, const void *y)
{
	return prefix_cmp(x, y);
}

/* x and y are the two halves of one parent, x the lower. */
static bool siblings(const struct prefix *x, const struct prefix *y)
{
	if (x->family != y->family || x->len != y->len || x->len == 0)
		return false;
	if (bit_at(x->a, x->len - 1) || !bit_at(y->a, y->len - 1))
		return false;
	return bits_equal(x->a, y->a, x->len - 1u);
}

size_t prefixes_merge_into(const struct prefix *in, size_t n, struct prefix *out)
{
	size_t top = 0;     /* out[0..top) is the merged stack */

	for (size_t i = 0; i < n; i++) {
		if (top && prefix_contains(&out[top - 1], &in[i]))
			continue;
		out[top++] = in[i];
		while (top >= 2 && siblings(&out[top - 2], &out[top - 1])) {
			top--;
			out[top - 1].len--;
			prefix_mask(&out[top - 1]);
		}
	}
	return top;
}

size_t prefixes_merge(struct prefix *v, size_t n)
{
	if (n == 0)
		return 0;
	sort_unless_sorted(v, n, sizeof(*v), prefix_qcmp);
	return prefixes_merge_into(v, n, v);
}

void prefix_subtract(const struct prefix *outer, const struct prefix *hole,
		     struct prefix *out, size_t *nout)
{
	for (unsigned l = outer->len + 1u; l <= hole->len; l++) {
		struct prefix half = *hole;

		half.len = (uint8_t)l;
		prefix_mask(&half);
		bit_flip(half.a, l - 1);
		out[(*nout)++] = half;
	}
}

/* ---- sorting ----------------------------------------------------------- */

/* A prefix as a radix sort key, read once: sorting by index into the
 * prefixes themselves costs a cache miss a move. */
struct rkey {
	uint64_t hi, lo;        /* the address, big-endian */
	size_t idx;
	unsigned len;
};

/* Key byte k of a family of `nb` address bytes: the address, then the
 * length, as prefix_cmp compares them within a family. */
static unsigned rbyte(const struct rkey *r, unsigned k, unsigned nb)
{
	if (k >= nb)
		return r->len;
	return (unsigned)((k < 8 ? r->hi >> (56 - 8 * k) : r->lo >> (120 - 8 * k)) & 0xff);
}


/* Counts per byte value into where each value's run starts. */
static void offsets(size_t count[256])
{
	size_t off = 0;

	for (unsigned c = 0; c < 256; c++) {
		size_t here = count[c];

		count[c] = off;
		off += here;
	}
}

/* LSD radix sort of idx[0..n) (one family), least significant byte
 * first; a byte that all of them share costs one counting pass and no
 * move. */
static void radix_family(const struct prefix *v, size_t *idx, size_t n, unsigned nb)
{
	struct rkey *a = xreallocarray(NULL, n, sizeof(*a));
	struct rkey *b = xreallocarray(NULL, n, sizeof(*b)), *t;

	for (size_t i = 0; i < n; i++)
		a[i] = (struct rkey){ prefix_word_(v[idx[i]].a), prefix_word_(v[idx[i]].a + 8),
				      idx[i], v[idx[i]].len };
	for (unsigned k = nb + 1; n > 1 && k-- > 0;) {
		size_t count[256] = { 0 };

		for (size_t i = 0; i < n; i++)
			count[rbyte(&a[i], k, nb)]++;
		if (count[rbyte(&a[0], k, nb)] == n)
			continue;
		offsets(count);
		for (size_t i = 0; i < n; i++)
			b[count[rbyte(&a[i], k, nb)]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = a[i].idx;
	free(a);
	free(b);
}

/* IPv4, fewer than 2^24 of them: address, length and position packed
 * in one word (40 + 24 bits), 8 bytes a move instead of 32.  The index is
 * not sorted on: LSD is stable, ties keep their order. */
#define RADIX4_MAX (1u << 24)

static void radix_v4(const struct prefix *v, size_t *idx, size_t n)
{
	uint64_t *a = xreallocarray(NULL, n ? n : 1, sizeof(*a));
	uint64_t *b = xreallocarray(NULL, n ? n : 1, sizeof(*b)), *t;

	for (size_t i = 0; i < n; i++) {
		const uint8_t *x = v[idx[i]].a;

		a[i] = ((uint64_t)x[0] << 56 | (uint64_t)x[1] << 48 | (uint64_t)x[2] << 40 |
			(uint64_t)x[3] << 32 | (uint64_t)v[idx[i]].len << 24 | i);
	}
	for (unsigned shift = 24; n > 1 && shift < 64; shift += 8) {
		size_t count[256] = { 0 };

		for (size_t i = 0; i < n; i++)
			count[(a[i] >> shift) & 0xff]++;
		if (count[(a[0] >> shift) & 0xff] == n)
			continue;
		offsets(count);
		for (size_t i = 0; i < n; i++)
			b[count[(a[i] >> shift) & 0xff]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	/* b: the input's indexes, by position in it */
	for (size_t i = 0; i < n; i++)
		b[i] = idx[i];
	for (size_t i = 0; i < n; i++)
		idx[i] = (size_t)b[a[i] & (RADIX4_MAX - 1)];
	free(a);
	free(b);
}

static bool in_order(const struct prefix *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (prefix_cmp(&v[i - 1], &v[i]) > 0)
			return false;
	return true;
}

bool prefixes_order(const struct prefix *v, size_t n, size_t *perm)
{
	size_t count[256] = { 0 }, start[256], at[256], off = 0;

	if (in_order(v, n))
		return false;
	/* By family first (stable), then each family on its own bytes:
	 * IPv4 needs 5 of them, not IPv6's 17. */
	for (size_t i = 0; i < n; i++)
		count[v[i].family]++;
	for (unsigned f = 0; f < 256; f++) {
		start[f] = at[f] = off;
		off += count[f];
	}
	for (size_t i = 0; i < n; i++)
		perm[at[v[i].family]++] = i;
	for (unsigned f = 0; f < 256; f++) {
		if (f == 4 && count[f] < RADIX4_MAX)
			radix_v4(v, perm + start[f], count[f]);
		else if (count[f])
			radix_family(v, perm + start[f], count[f], f == 4 ? 4 : 16);
	}
	return true;
}

void prefixes_sort(struct prefix *v, size_t n)
{
	size_t *perm = xreallocarray(NULL, n ? n : 1, sizeof(*perm));
	struct prefix *sorted;

	if (prefixes_order(v, n, perm)) {
		sorted = xreallocarray(NULL, n, sizeof(*sorted));
		for (size_t k = 0; k < n; k++)
			sorted[k] = v[perm[k]];
		memcpy(v, sorted, n * sizeof(*v));
		free(sorted);
	}
	free(perm);
}

/* ---- contiguous runs --------------------------------------------------- */

static unsigned fam_bytes(uint8_t family)
{
	return family == 4 ? 4 : 16;
}

/* a = a + 1 over `nb` big-endian bytes; false when it wrapped. */
static bool addr_inc(uint8_t *a, unsigned nb)
{
	for (unsigned i = nb; i-- > 0;)
		if (++a[i])
			return true;
	return false;
}

/* Whether prefix p starts inside the run or right after it. */
static bool run_touches(const struct prefix_run *r, const struct prefix *p)
{
	unsigned nb = fam_bytes(r->family);
	uint8_t next[16];

	if (p->family != r->family)
		return false;
	if (memcmp(p->a, r->last, nb) <= 0)
		return true;
	memcpy(next, r->last, 16);
	/* The run ends at the family's last address: nothing comes after. */
	return !addr_inc(next, nb) || memcmp(p->a, next, nb) == 0;
}

static uint32_t get4(const uint8_t *a)
{
	return (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
}

static void put4(uint8_t *a, uint32_t v)
{
	a[0] = (uint8_t)(v >> 24);
	a[1] = (uint8_t)(v >> 16);
	a[2] = (uint8_t)(v >> 8);
	a[3] = (uint8_t)v;
}

static uint32_t hostmask4(unsigned len)
{
	return len >= 32 ? 0 : 0xffffffffu >> len;
}

/* prefix_run_next() for an IPv4 run in 32-bit arithmetic: the final
 * guard walks every element of a table, and most runs are one prefix. */
static void run_next4(const struct prefix *v, size_t n, size_t *pos, struct prefix_run *out)
{
	size_t i = *pos;
	uint32_t last = get4(v[i].a) | hostmask4(v[i].len);

	put4(out->first, get4(v[i].a));
	for (i++; i < n && v[i].family == 4; i++) {
		uint32_t f = get4(v[i].a), l = f | hostmask4(v[i].len);

		if (f > last && f != last + 1)  /* neither inside nor right after */
			break;
		if (l > last)
			last = l;
	}
	put4(out->last, last);
	out->hi = i;
	*pos = i;
}

bool prefix_run_next(const struct prefix *v, size_t n, size_t *pos, struct prefix_run *out)
{
	size_t i = *pos;

	if (i >= n)
		return false;
	memset(out, 0, sizeof(*out));
	if (v[i].family == 4) {
		out->family = 4;
		out->lo = i;
		run_next4(v, n, pos, out);
		return true;
	}
	out->family = v[i].family;
	out->lo = i;
	prefix_first(&v[i], out->first);
	prefix_last(&v[i], out->last);
	for (i++; i < n && run_touches(out, &v[i]); i++) {
		uint8_t last[16];

		prefix_last(&v[i], last);
		if (memcmp(last, out->last, fam_bytes(out->family)) > 0)
			memcpy(out->last, last, 16);
	}
	out->hi = i;
	*pos = i;
	return true;
}

size_t prefix_run_members(const struct prefix *v, const struct prefix_run *r, size_t *idx,
			  size_t max)
{
	size_t n = 0, top = r->lo, total = 0;

	for (size_t i = r->lo; i < r->hi; i++) {
		if (i > r->lo && prefix_contains(&v[top], &v[i]))
			continue;
		top = i;
		if (n < max)
			idx[n++] = i;
		total++;
	}
	return total;
}

bool prefix_run_whole(const struct prefix_run *r)
{
	unsigned nb = fam_bytes(r->family);

	for (unsigned i = 0; i < nb; i++)
		if (r->first[i] != 0 || r->last[i] != 0xff)
			return false;
	return true;
}

/* last - first holds 2^(bits - min) or more, i.e. one of its top `min`
 * bits is set: more addresses than one /min prefix. */
bool prefix_run_wider(const struct prefix_run *r, unsigned min)
{
	unsigned nb = fam_bytes(r->family);
	uint8_t diff[16] = { 0 };
	int borrow = 0;

	if (prefix_run_whole(r))
		return true;
	if (r->family == 4) {
		uint32_t span = get4(r->last) - get4(r->first);

		return min && (min >= 32 ? span != 0 : span >> (32 - min) != 0);
	}
	for (unsigned i = nb; i-- > 0;) {
		int x = r->last[i] - r->first[i] - borrow;

		borrow = x < 0;
		diff[i] = (uint8_t)(x + (borrow ? 256 : 0));
	}
	for (unsigned b = 0; b < min && b < nb * 8; b++)
		if (bit_at(diff, b))
			return true;
	return false;
}

bool prefixes_wide_run(const struct prefix *v, size_t n, unsigned min4, unsigned min6,
		       struct prefix_run *out)
{
	size_t pos = 0;

	while (prefix_run_next(v, n, &pos, out))
		if (prefix_run_wider(out, out->family == 4 ? min4 : min6))
			return true;
	return false;
}

/* The prefix the run is, if it is exactly one: first and last agree on
 * the first `len` bits, then first has only zeros and last only ones. */
static bool run_as_prefix(const struct prefix_run *r, struct prefix *out)
{
	unsigned bits = fam_bytes(r->family) * 8, len = 0;

	while (len < bits && bit_at(r->first, len) == bit_at(r->last, len))
		len++;
	for (unsigned b = len; b < bits; b++)
		if (bit_at(r->first, b) || !bit_at(r->last, b))
			return false;
	memset(out, 0, sizeof(*out));
	out->family = r->family;
	out->len = (uint8_t)len;
	memcpy(out->a, r->first, 16);
	return true;
}

char *prefix_run_fmt(const struct prefix_run *r, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	int af = r->family == 4 ? AF_INET : AF_INET6;
	struct prefix p;

	if (run_as_prefix(r, &p))
		return prefix_fmt(&p, buf, len);
	inet_ntop(af, r->first, a, sizeof(a));
	inet_ntop(af, r->last, b, sizeof(b));
	snprintf(buf, len, "%s-%s", a, b);
	return buf;
}

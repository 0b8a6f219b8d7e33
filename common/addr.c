/* addr.c - IPv4/IPv6 prefixes: parse, print, compare, merge. */
#include "common.h"

#include <arpa/inet.h>
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

void prefix_mask(struct prefix *p)
{
	unsigned max = prefix_maxlen(p);

	for (unsigned i = p->len; i < max; i++)
		if (bit_at(p->a, i))
			bit_flip(p->a, i);
	memset(p->a + max / 8, 0, 16 - max / 8);
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

int prefix_cmp(const struct prefix *x, const struct prefix *y)
{
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	c = memcmp(x->a, y->a, 16);
	if (c)
		return c < 0 ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return 0;
}

bool prefix_contains(const struct prefix *outer, const struct prefix *inner)
{
	if (outer->family != inner->family || outer->len > inner->len)
		return false;
	for (unsigned i = 0; i < outer->len; i++)
		if (bit_at(outer->a, i) != bit_at(inner->a, i))
			return false;
	return true;
}

bool prefix_overlaps(const struct prefix *x, const struct prefix *y)
{
	return prefix_contains(x, y) || prefix_contains(y, x);
}

void prefix_first(const struct prefix *p, uint8_t out[16])
{
	memcpy(out, p->a, 16);
}

void prefix_last(const struct prefix *p, uint8_t out[16])
{
	unsigned max = prefix_maxlen(p);

	memcpy(out, p->a, 16);
	for (unsigned i = p->len; i < max; i++)
		if (!bit_at(out, i))
			bit_flip(out, i);
}

static int prefix_qcmp(const void *x, const void *y)
{
	return prefix_cmp(x, y);
}

/* x and y are the two halves of one parent, x the lower. */
static bool siblings(const struct prefix *x, const struct prefix *y)
{
	struct prefix px = *x, py = *y;

	if (x->family != y->family || x->len != y->len || x->len == 0)
		return false;
	if (bit_at(x->a, x->len - 1) || !bit_at(y->a, y->len - 1))
		return false;
	px.len--;
	py.len--;
	prefix_mask(&px);
	prefix_mask(&py);
	return memcmp(px.a, py.a, 16) == 0;
}

size_t prefixes_merge(struct prefix *v, size_t n)
{
	size_t top = 0;     /* v[0..top) is the merged stack */

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), prefix_qcmp);
	for (size_t i = 0; i < n; i++) {
		if (top && prefix_contains(&v[top - 1], &v[i]))
			continue;
		v[top++] = v[i];
		while (top >= 2 && siblings(&v[top - 2], &v[top - 1])) {
			top--;
			v[top - 1].len--;
			prefix_mask(&v[top - 1]);
		}
	}
	return top;
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

/* port.c - "tcp/5061" and "udp/50000-59999" port ranges. */
#include "common.h"

#include <stdlib.h>
#include <string.h>

static bool parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

enum port_err portrange_parse(const char *s, struct portrange *out)
{
	const char *num, *dash;
	struct portrange r;

	if (strncmp(s, "tcp/", 4) == 0)
		r.proto = PROTO_TCP;
	else if (strncmp(s, "udp/", 4) == 0)
		r.proto = PROTO_UDP;
	else
		return PORT_BAD_PROTO;
	num = s + 4;
	dash = strchr(num, '-');
	if (!parse_port(num, dash ? (size_t)(dash - num) : strlen(num), &r.lo))
		return PORT_BAD_NUMBER;
	r.hi = r.lo;
	if (dash && !parse_port(dash + 1, strlen(dash + 1), &r.hi))
		return PORT_BAD_NUMBER;
	if (r.hi < r.lo)
		return PORT_REVERSED;
	*out = r;
	return PORT_OK;
}

const char *port_strerror(enum port_err e)
{
	switch (e) {
	case PORT_OK:
		return "ok";
	case PORT_BAD_PROTO:
		return "expected tcp/PORT or udp/PORT";
	case PORT_BAD_NUMBER:
		return "port must be a number from 1 to 65535";
	case PORT_REVERSED:
		return "port range is reversed";
	}
	return "?";
}

const char *proto_name(uint8_t proto)
{
	return proto == PROTO_TCP ? "tcp" : proto == PROTO_UDP ? "udp" : "?";
}

char *portrange_fmt(const struct portrange *p, char *buf, size_t len)
{
	if (p->lo == p->hi)
		snprintf(buf, len, "%s/%u", proto_name(p->proto), p->lo);
	else
		snprintf(buf, len, "%s/%u-%u", proto_name(p->proto), p->lo, p->hi);
	return buf;
}

int portrange_cmp(const struct portrange *x, const struct portrange *y)
{
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return 0;
}

static int portrange_qcmp(const void *x, const void *y)
{
	return portrange_cmp(x, y);
}

size_t portranges_merge(struct portrange *v, size_t n)
{
	size_t top = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), portrange_qcmp);
	for (size_t i = 0; i < n; i++) {
		struct portrange *last = top ? &v[top - 1] : NULL;

		if (last && last->proto == v[i].proto &&
		    (unsigned)last->hi + 1 >= v[i].lo) {
			if (v[i].hi > last->hi)
				last->hi = v[i].hi;
			continue;
		}
		v[top++] = v[i];
	}
	return top;
}

void portsets_free(struct portset *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(g[i].v);
	free(g);
}

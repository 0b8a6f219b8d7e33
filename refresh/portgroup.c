/* portgroup.c - the ports a provider feed publishes an address for, on
 * the addr_list that carries it (addr_list.pgrp, .pgroups). */
#include "refresh/refresh.h"

#include <stdlib.h>
#include <string.h>

static bool same_ports(const struct portset *g, const struct portrange *v, size_t n)
{
	return g->n == n && (!n || !memcmp(g->v, v, n * sizeof(*v)));
}

/* The group of these ports (merged), 1-based; a new one if none is equal.
 * A list holds few (an m365 feed: a handful), so a scan does. */
static uint32_t group_of(struct addr_list *l, const struct portrange *ports, size_t n)
{
	struct portrange *v = xcalloc(n + 1, sizeof(*v));
	size_t m;

	if (n)
		memcpy(v, ports, n * sizeof(*v));
	m = portranges_merge(v, n);
	for (size_t k = 0; k < l->npgroups; k++) {
		if (same_ports(&l->pgroups[k], v, m)) {
			free(v);
			return (uint32_t)k + 1;
		}
	}
	l->pgroups = xreallocarray(l->pgroups, l->npgroups + 1, sizeof(*l->pgroups));
	l->pgroups[l->npgroups++] = (struct portset){ v, m };
	return (uint32_t)l->npgroups;
}

void addr_list_set_ports(struct addr_list *l, size_t i, const struct portrange *ports,
			 size_t nports)
{
	uint32_t k = group_of(l, ports, nports);

	if (!l->pgrp)
		l->pgrp = xcalloc(l->cap + 1, sizeof(*l->pgrp));
	l->pgrp[i] = k;
}

void addr_list_push_ports(struct addr_list *l, const struct prefix *p,
			  const struct loc *at, const struct portrange *ports,
			  size_t nports)
{
	addr_list_push(l, p, at);
	addr_list_set_ports(l, l->n - 1, ports, nports);
}

const struct portset *addr_list_ports(const struct addr_list *l, size_t i)
{
	if (!l->pgrp || i >= l->n || !l->pgrp[i])
		return NULL;
	return &l->pgroups[l->pgrp[i] - 1];
}

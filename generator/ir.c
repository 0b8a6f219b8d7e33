/* ir.c - the ruleset model: ordering, lookup, freeing. */
#include "generator/internal.h"

#include <stdlib.h>
#include <string.h>

int ir_elem_cmp(const struct ir_elem *x, const struct ir_elem *y)
{
	int c = portrange_cmp(&x->port, &y->port);

	return c ? c : prefix_cmp(&x->addr, &y->addr);
}

static int elem_qcmp(const void *x, const void *y)
{
	return ir_elem_cmp(x, y);
}

void ir_sort_elems(struct ir_elem *v, size_t n)
{
	if (n)
		qsort(v, n, sizeof(*v), elem_qcmp);
}

const struct ir_set *ir_find_set(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; rs && i < rs->nsets; i++)
		if (!strcmp(rs->sets[i].name, name))
			return &rs->sets[i];
	return NULL;
}

const struct ir_chain *ir_find_chain(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; rs && i < rs->nchains; i++)
		if (!strcmp(rs->chains[i].name, name))
			return &rs->chains[i];
	return NULL;
}

/* Length of the UTF-8 sequence starting with byte c (1 for stray bytes). */
static size_t utf8_len(unsigned char c)
{
	if (c >= 0xf0)
		return 4;
	if (c >= 0xe0)
		return 3;
	if (c >= 0xc0)
		return 2;
	return 1;
}

/* nft's scanner ends a quoted string at the first '"' and has no escape
 * for it; the kernel keeps at most 128 bytes of comment. */
char *ir_comment_dup(const char *s)
{
	size_t n = 0, len;
	char *out;

	if (!s)
		return NULL;
	len = strlen(s);
	while (n < len) {
		size_t k = utf8_len((unsigned char)s[n]);

		if (n + k > len || n + k > IR_COMMENT_MAX)
			break;
		n += k;
	}
	out = xstrndup(s, n);
	for (char *c = out; *c; c++) {
		if (*c == '"')
			*c = '\'';
		else if (*c == '\\')
			*c = '/';
		else if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	}
	return out;
}

static void rule_free(struct ir_rule *r)
{
	free(r->ifname);
	free(r->set);
	free(r->target);
	free(r->log_prefix);
	free(r->comment);
}

void ir_free(struct ir_ruleset *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->nchains; i++) {
		struct ir_chain *c = &rs->chains[i];

		for (size_t j = 0; j < c->nrules; j++)
			rule_free(&c->rules[j]);
		free(c->rules);
		free(c->name);
		free(c->comment);
	}
	for (size_t i = 0; i < rs->nsets; i++) {
		free(rs->sets[i].name);
		free(rs->sets[i].comment);
		free(rs->sets[i].elems);
	}
	for (size_t i = 0; i < rs->ncounters; i++) {
		free(rs->counters[i].name);
		free(rs->counters[i].comment);
	}
	free(rs->chains);
	free(rs->sets);
	free(rs->counters);
	free(rs->table);
	free(rs->comment);
	free(rs);
}

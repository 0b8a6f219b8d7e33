/* internal.h - what the files of policy/ share and nobody else sees: the
 * YAML node tree parse.c builds and validate.c reads, and the error list
 * both fill.  Errors are collected, then printed sorted by position, so a
 * file's problems come out in reading order whatever order they were
 * found in. */
#ifndef FEDWALL_POLICY_INTERNAL_H
#define FEDWALL_POLICY_INTERNAL_H

#include "policy/policy.h"

#define YAML_MAX_DEPTH 64
#define POLICY_MAX_SIZE (64u << 20)     /* bytes */

enum ynode_kind { YN_SCALAR, YN_SEQ, YN_MAP };

struct ynode {
	enum ynode_kind kind;
	struct loc loc;
	char *s;                /* YN_SCALAR: value, NUL-terminated */
	bool null;              /* YN_SCALAR: plain "", "~" or "null" */
	/* YN_SEQ: items; YN_MAP: key, value, key, value... (keys scalars) */
	struct ynode **v;
	size_t n, cap;
};

struct perr {
	struct loc loc;
	size_t seq;             /* keeps equal positions in finding order */
	char *msg;
};

struct perrs {
	struct perr *v;
	size_t n, cap;
};

void perr_add(struct perrs *e, const struct loc *l, const char *fmt, ...) PRINTF(3, 4);
/* Prints every error through `d`, sorted by position, and empties `e`. */
void perr_flush(struct perrs *e, struct diag *d);

/* Parses one YAML document into a tree (NULL after a fatal error: syntax,
 * anchors, depth).  Duplicate keys are reported and dropped. */
struct ynode *ytree_parse(const char *file, const char *buf, size_t len,
			  struct perrs *e);
void ytree_free(struct ynode *n);
size_t ymap_len(const struct ynode *map);
const struct ynode *ymap_key(const struct ynode *map, size_t i);
const struct ynode *ymap_val(const struct ynode *map, size_t i);
const struct ynode *ymap_get(const struct ynode *map, const char *key);

/* Frees n feeds and the array; what one feed holds, zeroing it
 * (policy/feed.c). */
void feeds_free(struct feed *v, size_t n);
void feed_clear(struct feed *f);

/* Fills `p` (which holds defaults and p->file) from the tree. */
void policy_validate(struct policy *p, const struct ynode *root, struct perrs *e);

#endif

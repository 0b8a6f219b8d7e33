/* internal.h - shared between the generator's own files; not a face.
 *
 * The element builder works on "owners": a partner in one direction (maps)
 * or a management entry (sets), each with its addresses and ports.  It
 * cuts ports into atoms, resolves address overlaps per atom class and
 * appends non-overlapping elements.
 */
#ifndef FEDWALL_GENERATOR_INTERNAL_H
#define FEDWALL_GENERATOR_INTERNAL_H

#include "generator/generator.h"

/* NFT_USERDATA comment limit of nftables (bytes, without the NUL). */
#define IR_COMMENT_MAX 128

struct gen_src {
	struct prefix p;
	const struct loc *loc;  /* where it was written; may be NULL */
};

struct gen_owner {
	const struct gen_src *addrs;    /* sorted (prefix_cmp), unique; may nest */
	size_t naddrs;
	const struct portrange *ports;  /* merged, sorted */
	size_t nports;
	uint32_t chain;         /* maps: jump target (chain index) */
	uint32_t id;            /* partner index (name order); tie breaker */
};

/* An address two partners both claim on one port atom. */
struct gen_overlap {
	uint32_t loser, winner;         /* partner indices */
	struct prefix lprefix;          /* the loser's prefix */
	struct prefix shared;           /* what the winner took */
	struct portrange port;
	const struct loc *loc;          /* of the loser's prefix */
};

typedef VEC(struct ir_elem) elem_vec;
typedef VEC(struct gen_overlap) overlap_vec;

/* Appends the `address . proto . port` elements of one set (the union
 * of its owners) over both families: IPv4 to v4, IPv6 to v6.  Both
 * vectors come back sorted by ir_elem_cmp. */
void gen_elems(const struct gen_owner *o, size_t n, elem_vec *v4, elem_vec *v6);

/* One port class of a partner map: ports on which the same partners
 * compete, resolved once.  Its elements are address-only: prefix ->
 * `chain` (the owner's), sorted by ir_elem_cmp, one family each. */
struct gen_class {
	struct portrange *atoms;        /* port order */
	size_t natoms;
	elem_vec v4, v6;
};

/* The port classes of a partner map over owners `o` in port order of
 * their first atom (deterministic: depends on the owners' ports only);
 * overlaps resolved and reported in `ov` as gen_elems() does. */
size_t gen_classes(const struct gen_owner *o, size_t n, struct gen_class **out,
		   overlap_vec *ov);
void gen_classes_free(struct gen_class *c, size_t n);

/* Copies `s` as an nftables comment: quotes, backslashes and control
 * characters replaced, cut to IR_COMMENT_MAX bytes on a UTF-8 boundary.
 * NULL for NULL. */
char *ir_comment_dup(const char *s);

void ir_sort_elems(struct ir_elem *v, size_t n);

#endif

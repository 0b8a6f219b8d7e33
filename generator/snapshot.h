/* snapshot.h - the IR as bytes, and the IR an element-only commit leaves
 * in the kernel: what the cache of the live table (engine/cache.c) needs.
 * Part of the generator's face (pure: no I/O), kept beside generator.h
 * so that the model and its image can change apart.
 *
 * The image is compact (LEB128 integers, strings with their length, an
 * address as its significant bytes only) and carries every field of the
 * ruleset: names, comments, locs (file names included), rules with their
 * kernel handles, elements, revoke flags, counter values.  It has no
 * header, version or checksum of its own: the file that holds it does.
 */
#ifndef FEDWALL_GENERATOR_SNAPSHOT_H
#define FEDWALL_GENERATOR_SNAPSHOT_H

#include "generator/generator.h"

/* Appends the image of `rs` to `out` (binary; out->len counts it). */
void ir_encode(const struct ir_ruleset *rs, struct strbuf *out);

/* The ruleset an image describes, or NULL with *why (a static string)
 * when `len` bytes at `buf` are not a whole image: truncated, trailing
 * bytes, a count beyond what is left, an enum out of range, a string
 * with a NUL, a missing name, a prefix longer than its family, elements
 * out of ir_elem_cmp order, a map element or rule naming a chain, set
 * or counter that is not there.  Any input is safe.  The locs' file
 * names live in the same allocation as the ruleset, after it: ir_free()
 * releases them with it. */
struct ir_ruleset *ir_decode(const void *buf, size_t len, const char **why);

/* After a commit of `diff` (live -> want, not structural) that only
 * added and deleted elements: turns `live` into what the kernel holds
 * now.  Each changed set gets want's elements, map jumps renumbered to
 * live's chains by name, so that live keeps everything the read-back
 * gave it (order, comments, handles, revoke flags).  False when a set or
 * chain is missing from live (live is then partly changed: discard it).
 * The diff's pointers into live's elements dangle afterwards. */
bool ir_take_elems(struct ir_ruleset *live, const struct ir_ruleset *want,
		   const struct ir_diff *diff);

#endif

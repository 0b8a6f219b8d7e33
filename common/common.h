/* common.h - the lowest layer of fedwall: source locations, diagnostics,
 * memory helpers, string buffers, IP prefixes and port ranges.
 *
 * Everything above (policy/, refresh/, generator/, nft/, cli/) may include
 * this header; it includes nothing of fedwall's own.
 */
#ifndef FEDWALL_COMMON_H
#define FEDWALL_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FEDWALL_VERSION "0.1.0"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- source locations ------------------------------------------------ */

/* Where a value came from. `file` is borrowed: it points at a string that
 * lives as long as the model that holds the loc (policy->file, list path). */
struct loc {
	const char *file;
	unsigned line, col;     /* 1-based; 0 = unknown */
};

/* ---- diagnostics ----------------------------------------------------- */

/* Collects and prints problems as `FILE:LINE:COL: error: MESSAGE`.
 * Every layer that reports takes a struct diag *; nothing prints errors
 * behind its back.  A NULL loc prints just `fedwall: error: MESSAGE`. */
struct diag {
	FILE *out;              /* where lines go; NULL = count only */
	unsigned errors;
	unsigned warnings;
};

void diag_init(struct diag *d, FILE *out);
void diag_error(struct diag *d, const struct loc *l, const char *fmt, ...) PRINTF(3, 4);
void diag_warn(struct diag *d, const struct loc *l, const char *fmt, ...) PRINTF(3, 4);
void diag_note(struct diag *d, const struct loc *l, const char *fmt, ...) PRINTF(3, 4);
void diag_vreport(struct diag *d, const char *level, const struct loc *l,
		  const char *fmt, va_list ap) PRINTF(4, 0);

/* ---- memory ---------------------------------------------------------- */

/* Allocation failure exits with status 1 and a message: fedwall never
 * applies anything after running out of memory, and the kernel keeps the
 * last ruleset (fail closed). */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Growable array: VEC(struct foo) v = {0}; VEC_PUSH(&v, x); free(v.v); */
#define VEC(T) struct { T *v; size_t n, cap; }
#define VEC_GROW(vec)                                                          \
	do {                                                                   \
		if ((vec)->n == (vec)->cap) {                                  \
			(vec)->cap = (vec)->cap ? (vec)->cap * 2 : 8;          \
			(vec)->v = xreallocarray((vec)->v, (vec)->cap,         \
						 sizeof(*(vec)->v));           \
		}                                                              \
	} while (0)
#define VEC_PUSH(vec, x)                                                       \
	do {                                                                   \
		VEC_GROW(vec);                                                 \
		(vec)->v[(vec)->n++] = (x);                                    \
	} while (0)

/* ---- string buffer --------------------------------------------------- */

struct strbuf {
	char *s;                /* always NUL-terminated once anything was added */
	size_t len, cap;
};

void sb_addf(struct strbuf *sb, const char *fmt, ...) PRINTF(2, 3);
void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap) PRINTF(2, 0);
void sb_add(struct strbuf *sb, const char *s, size_t n);
void sb_addc(struct strbuf *sb, char c);
const char *sb_str(const struct strbuf *sb);   /* "" when empty */
void sb_reset(struct strbuf *sb);              /* keeps capacity */
void sb_free(struct strbuf *sb);

/* Levenshtein distance, capped: for "did you mean" suggestions. */
unsigned edit_distance(const char *a, const char *b);
/* The candidate closest to `word`, or NULL if none is near enough. */
const char *closest_word(const char *word, const char *const *cands, size_t n);

/* `s` as a JSON string, quotes included, to `out`: '"' and '\\' escaped,
 * control characters as \u00XX; NULL prints "". */
void json_str(FILE *out, const char *s);

/* ---- IP prefixes ----------------------------------------------------- */

/* An IPv4 or IPv6 network.  IPv4 lives in a[0..3].  A host address is a
 * prefix of length 32 / 128.  Normalised prefixes have no host bits set. */
struct prefix {
	uint8_t family;         /* 4 or 6 */
	uint8_t len;            /* 0..32 or 0..128 */
	uint8_t a[16];
};

#define PREFIX_STRLEN 64    /* enough for any formatted prefix + NUL */

enum prefix_err {
	PREFIX_OK = 0,
	PREFIX_BAD_ADDR,        /* not an IPv4/IPv6 address */
	PREFIX_BAD_LEN,         /* /len missing digits, too long, out of range */
	PREFIX_HOST_BITS,       /* parsed, but had host bits set (out is masked) */
};

/* Parses "192.0.2.1", "192.0.2.0/24", "2001:db8::/32".  On PREFIX_OK and
 * PREFIX_HOST_BITS `out` holds the normalised (masked) prefix. */
enum prefix_err prefix_parse(const char *s, struct prefix *out);
const char *prefix_strerror(enum prefix_err e);
/* Formats host prefixes without /32 or /128.  Returns `buf`. */
char *prefix_fmt(const struct prefix *p, char *buf, size_t len);
unsigned prefix_maxlen(const struct prefix *p);
bool prefix_is_host(const struct prefix *p);
void prefix_mask(struct prefix *p);
/* Orders by family, then address, then length (shorter first). */
static inline uint64_t prefix_word_(const uint8_t *b)
{
	uint64_t v;

	__builtin_memcpy(&v, b, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* Inline, word by word (memcmp's order): sorts, merges and the
 * incremental refresh's walks over 100k prefixes call it millions of
 * times. */
static inline int prefix_cmp(const struct prefix *x, const struct prefix *y)
{
	uint64_t a, b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	a = prefix_word_(x->a);
	b = prefix_word_(y->a);
	if (a == b) {
		a = prefix_word_(x->a + 8);
		b = prefix_word_(y->a + 8);
	}
	if (a != b)
		return a < b ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return 0;
}
bool prefix_contains(const struct prefix *outer, const struct prefix *inner);
bool prefix_overlaps(const struct prefix *x, const struct prefix *y);
/* The index of the first entry of v (n of them, prefix_cmp order) after
 * p: where p would go, after any equal to it (binary search). */
size_t prefix_upper(const struct prefix *v, size_t n, const struct prefix *p);
/* First and last address of the prefix, as 16 (v6) or 4 (v4) bytes. */
void prefix_first(const struct prefix *p, uint8_t out[16]);
void prefix_last(const struct prefix *p, uint8_t out[16]);
/* Sorts, drops duplicates and prefixes covered by others, and joins
 * sibling pairs into their parent, repeatedly: the result is the smallest
 * list of prefixes covering exactly the same addresses, in prefix_cmp
 * order.  Returns the new count. */
size_t prefixes_merge(struct prefix *v, size_t n);
/* The same from `in`, already in prefix_cmp order, into `out` (room for
 * n; may be `in` itself), without a sort or a copy first. */
size_t prefixes_merge_into(const struct prefix *in, size_t n, struct prefix *out);
/* Appends to `out` the prefixes covering `outer` minus `hole` (hole must
 * lie inside outer): at most one per bit between the two lengths. */
void prefix_subtract(const struct prefix *outer, const struct prefix *hole,
		     struct prefix *out, size_t *nout);
/* The permutation that puts `v` in prefix_cmp order, stable (equal
 * prefixes keep their input order): perm[k] is the index of the k-th.
 * False, and perm untouched, when `v` is in that order already.  A radix
 * sort of the bytes prefix_cmp compares, O(n): a list of 100k lines is
 * sorted on every read, and qsort's memcmp calls cost ten times more. */
bool prefixes_order(const struct prefix *v, size_t n, size_t *perm);
/* Sorts `v` into prefix_cmp order (prefixes_order). */
void prefixes_sort(struct prefix *v, size_t n);

/* ---- ports ----------------------------------------------------------- */

enum { PROTO_TCP = 6, PROTO_UDP = 17 };

struct portrange {
	uint8_t proto;          /* PROTO_TCP or PROTO_UDP */
	uint16_t lo, hi;        /* 1..65535, lo <= hi */
};

#define PORTRANGE_STRLEN 24

enum port_err {
	PORT_OK = 0,
	PORT_BAD_PROTO,         /* not tcp/ or udp/ */
	PORT_BAD_NUMBER,        /* not a number, or outside 1-65535 */
	PORT_REVERSED,          /* hi < lo */
};

/* Parses "tcp/5061", "udp/50000-59999". */
enum port_err portrange_parse(const char *s, struct portrange *out);
const char *port_strerror(enum port_err e);
char *portrange_fmt(const struct portrange *p, char *buf, size_t len);
const char *proto_name(uint8_t proto);
int portrange_cmp(const struct portrange *x, const struct portrange *y);
/* Sorts and joins overlapping or adjacent ranges of the same protocol. */
size_t portranges_merge(struct portrange *v, size_t n);

/* Ports some addresses are admitted on at most (a provider feed's). */
struct portset {
	struct portrange *v;    /* merged, sorted */
	size_t n;
};
/* Frees n port sets and the array (NULL with n 0: a no-op). */
void portsets_free(struct portset *g, size_t n);

/* ---- files ---------------------------------------------------------- */

/* Two writers, two intents.
 *
 * file_write_atomic: a path the user named (`generate -o`, `status -o`).
 * Replaces `path` with `n` bytes of `buf`, mode `mode`, atomically (temp
 * file beside it, fsync, rename, fsync of the directory).  0 or -errno;
 * on failure the old file is untouched and no temporary file is left.
 * A path that leads to no regular file (a character device such as
 * /dev/null, /dev/stdout's pipe or tty, a FIFO) is written straight
 * through, never replaced: that is the user's wish (a FIFO that nobody
 * reads is -ENXIO at once, never a wait); a symlink to a
 * regular file is replaced itself, its target untouched; a directory is
 * -EISDIR, a block device -EOPNOTSUPP (never written). */
int file_write_atomic(const char *path, const void *buf, size_t n, unsigned mode);
/* What file_write_atomic's -errno `err` means to the user: strerror(),
 * but "a FIFO that nobody reads" for -ENXIO. */
const char *file_write_strerror(int err);
/* file_write_state: a file of fedwall's own state directory (the state,
 * live.cache, last-refresh...), which nobody asked to be anything but a
 * regular file.  Always a temporary file beside it renamed over it, never
 * an open() of `path` itself, so nothing there can block the writer (who
 * holds the state directory's lock).  A path that exists and is not a
 * regular file (a FIFO, a device, a directory, a socket, a symlink to one
 * of them) is refused without being opened: -EPERM after an error naming
 * the path and what it is ("PATH: refusing to write: a FIFO, not a
 * regular file"); a symlink to a regular file is replaced itself.
 * `durable`: fsync of the file and the directory (without: readers still
 * see the old or the new content, but a power cut may leave either, or
 * an empty file; for what checks itself and is worthless after a reboot
 * anyway, the live table's cache).  Other failures: -errno, nothing
 * reported; the old file is untouched, no temporary file left. */
int file_write_state(const char *path, const void *buf, size_t n, unsigned mode,
		     bool durable, struct diag *d);

/* Whether fd (opened from `path`) may be trusted, like sshd's StrictModes:
 * a regular file (a directory when want_dir), owned by root or the
 * effective user, writable by neither group nor others.  0, or -EPERM
 * (-errno when fstat fails) after an error naming the file and its mode:
 * "PATH: refusing: writable by others (mode 0666)". */
int file_check_private(const char *path, int fd, bool want_dir, struct diag *d);
/* Opens `path` read-only without blocking on a FIFO and without becoming
 * its controlling terminal, then file_check_private().  The fd, or -errno
 * after an error naming the file ("PATH: cannot open: REASON"). */
int file_open_private(const char *path, struct diag *d);

/* ---- sorting --------------------------------------------------------- */

/* qsort(), after an O(n) look whether `v` is in order already: lists and
 * what the generator emits mostly are, and a sort of 100k entries is not
 * free. */
void sort_unless_sorted(void *v, size_t n, size_t size,
			int (*cmp)(const void *, const void *));

/* ---- hashing --------------------------------------------------------- */

/* 64-bit FNV-1a, for digests of generated state. */
uint64_t mix64(uint64_t x);
uint64_t fnv1a64(uint64_t h, const void *data, size_t n);
#define FNV1A64_INIT 0xcbf29ce484222325ULL
uint64_t sum64(const void *data, size_t n);

/* ---- contiguous runs of addresses ------------------------------------ */

/* A stretch of addresses of one family that a list of prefixes covers
 * without a gap: prefixes that overlap, nest or merely touch make one run,
 * whether or not they join into one prefix (192.0.2.0/24 and 192.0.3.0/24
 * do; 192.0.3.0/24 and 192.0.4.0/24 do not, yet admit 512 addresses in a
 * row all the same).  The guards bound runs, not prefixes: a limit on
 * prefixes alone is beaten by listing the halves of what it forbids. */
struct prefix_run {
	uint8_t family;                 /* 4 or 6 */
	uint8_t first[16], last[16];    /* lowest and highest address (v4: 4 bytes) */
	size_t lo, hi;                  /* the prefixes v[lo..hi) that make it */
};

#define PREFIX_RUN_STRLEN (2 * PREFIX_STRLEN)

/* The run of `v` that starts at v[*pos], and *pos moved past it; false
 * when *pos is at the end.  `v` in prefix_cmp order (as prefixes_merge
 * leaves it; duplicates, nesting and overlap are fine). */
bool prefix_run_next(const struct prefix *v, size_t n, size_t *pos, struct prefix_run *out);
/* Whether the run is its whole family: 0.0.0.0/0 or ::/0. */
bool prefix_run_whole(const struct prefix_run *r);
/* The prefixes of run `r` of `v` that no earlier one of it contains (the
 * ones a reader finds in the input; the others lie inside them): their
 * indexes into `v`, `max` at most, in idx[]; how many there are in all. */
size_t prefix_run_members(const struct prefix *v, const struct prefix_run *r, size_t *idx,
			  size_t max);
/* Whether the run holds more addresses than one prefix of length `min`
 * (a /23's worth is wider than /24), or is its whole family, whatever
 * `min` is (0 too). */
bool prefix_run_wider(const struct prefix_run *r, unsigned min);
/* The first run of `v` (prefix_cmp order) wider than min4 (IPv4) or
 * min6 (IPv6) in prefix_run_wider()'s sense: true and *out, or false. */
bool prefixes_wide_run(const struct prefix *v, size_t n, unsigned min4, unsigned min6,
		       struct prefix_run *out);
/* "0.0.0.0/0" when the run is exactly one prefix, else "FIRST-LAST".
 * Returns `buf` (PREFIX_RUN_STRLEN is enough). */
char *prefix_run_fmt(const struct prefix_run *r, char *buf, size_t len);

#endif

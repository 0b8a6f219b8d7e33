/* lists.c - partner address list files. */
#include "refresh/refresh.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void addr_list_reserve(struct addr_list *l, size_t more)
{
	if (l->cap - l->n >= more)
		return;
	l->cap = l->n + more > l->cap * 2 ? l->n + more : l->cap * 2;
	l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	l->locs = xreallocarray(l->locs, l->cap, sizeof(*l->locs));
	if (l->scope)
		l->scope = xreallocarray(l->scope, l->cap, sizeof(*l->scope));
	if (l->pgrp)
		l->pgrp = xreallocarray(l->pgrp, l->cap, sizeof(*l->pgrp));
}

void addr_list_push(struct addr_list *l, const struct prefix *p, const struct loc *at)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
		l->locs = xreallocarray(l->locs, l->cap, sizeof(*l->locs));
		if (l->scope)
			l->scope = xreallocarray(l->scope, l->cap, sizeof(*l->scope));
		if (l->pgrp)
			l->pgrp = xreallocarray(l->pgrp, l->cap, sizeof(*l->pgrp));
	}
	l->v[l->n] = *p;
	l->locs[l->n] = at ? *at : (struct loc){ 0 };
	if (l->scope)
		l->scope[l->n] = 0;
	if (l->pgrp)
		l->pgrp[l->n] = 0;
	l->n++;
}

/* The scope array appears with the first scoped address, so that lists
 * without one (most) cost nothing more. */
void addr_list_push_scoped(struct addr_list *l, const struct prefix *p,
			   const struct loc *at, unsigned scope)
{
	addr_list_push(l, p, at);
	if (!scope)
		return;
	if (!l->scope)
		l->scope = xcalloc(l->cap, sizeof(*l->scope));
	l->scope[l->n - 1] = (uint8_t)scope;
}

void addr_list_free(struct addr_list *l)
{
	free(l->v);
	free(l->locs);
	free(l->scope);
	portsets_free(l->pgroups, l->npgroups);
	free(l->pgrp);
	memset(l, 0, sizeof(*l));
}

void list_ident(const struct stat *sb, struct state_ident *id)
{
	*id = (struct state_ident){
		.dev = (uint64_t)sb->st_dev, .ino = (uint64_t)sb->st_ino,
		.size = (uint64_t)sb->st_size,
		.mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec,
		.ctime_ns = (int64_t)sb->st_ctim.tv_sec * 1000000000 + sb->st_ctim.tv_nsec,
	};
}

/* The identity of what was read (`before` and `after` the reading), or
 * zero when it cannot vouch for these bytes: the file changed while it
 * was read, or changed so recently that a second write within the same
 * timestamp tick would leave the identity as it is (git's "racily
 * clean" entries).  A file system whose timestamps have no nanoseconds
 * may tick once a second (or two, FAT): then two seconds must pass. */
static void read_ident(const struct stat *before, const struct stat *after,
		       struct state_ident *id)
{
	struct state_ident again;
	struct timespec now;
	int64_t window = before->st_ctim.tv_nsec ? LIST_RACY_NS : 2000000000, now_ns;

	list_ident(before, id);
	if (after)
		list_ident(after, &again);
	clock_gettime(CLOCK_REALTIME, &now);
	now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	if (!after || memcmp(id, &again, sizeof(again)) || now_ns - id->ctime_ns < window)
		*id = (struct state_ident){ 0 };
}

/* Reads the whole file, refusing one over LIST_MAX_FILE and anything but
 * a regular file: a FIFO would block the run, a device (a symlink to
 * /dev/zero) never ends.  Opened non-blocking so that a FIFO is refused
 * rather than waited on.  A regular file others may write, or owned by
 * somebody else, is refused too (file_check_private, on the fd: what was
 * checked is what is read).  A symlink is followed: the policy named it,
 * and its target is what is checked.  0 or -errno (-EFBIG when too big,
 * -ENODEV when not a regular file, -EPERM when refused and reported). */
static int slurp(const char *path, char **buf, size_t *len, struct state_ident *id,
		 struct diag *d)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	size_t cap = 0, n = 0;
	struct stat st, after;
	char *b = NULL;
	int err = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = -ENODEV;
	else if (file_check_private(path, fd, false, d))
		err = -EPERM;
	else if ((uint64_t)st.st_size > LIST_MAX_FILE)
		err = -EFBIG;
	while (!err) {
		ssize_t got;

		if (n == cap) {
			if (cap > LIST_MAX_FILE) {
				err = -EFBIG;
				break;
			}
			cap = cap ? cap * 2 : 4096;
			if (cap > LIST_MAX_FILE)
				cap = LIST_MAX_FILE + 1u;
			b = xrealloc(b, cap + 1);
		}
		got = read(fd, b + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			err = -errno;
		else if (got == 0)
			break;
		else
			n += (size_t)got;
	}
	if (!err && n > LIST_MAX_FILE)
		err = -EFBIG;   /* grew past the limit while read */
	if (!err && id)
		read_ident(&st, fstat(fd, &after) == 0 ? &after : NULL, id);
	close(fd);
	if (err) {
		free(b);
		return err;
	}
	b = b ? b : xmalloc(1);
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

struct lctx {
	const char *path;
	const struct guards *g;
	struct addr_list *out;
	struct diag *d;
	unsigned bad;
	size_t entries;         /* address lines seen */
	size_t cap;             /* guards.max_entries; 0: none */
};

/* The value is quoted into the message with every byte that is not
 * printable ASCII shown as '?': a list is written by a partner, and its
 * bytes must not reach the operator's terminal or log as escape
 * sequences or broken UTF-8. */
static void bad_line(struct lctx *c, const struct loc *at, const char *value,
		     const char *why)
{
	char *v;

	if (++c->bad > LIST_MAX_ERRORS)
		return;
	v = xstrdup(value);
	for (unsigned char *b = (unsigned char *)v; *b; b++)
		if (*b < 0x20 || *b >= 0x7f)
			*b = '?';
	diag_error(c->d, at, "'%s': %s", v, why);
	free(v);
}

/* Up to 3 decimal digits, no leading zero (inet_pton refuses "01"); the
 * value, or -1.  Unrolled: it runs four or five times a line of a 100k
 * list.  A byte is read only after a digit, so never past the string's
 * end (a NUL or the line's '\n'). */
static int small_dec(const char **s)
{
	const unsigned char *p = (const unsigned char *)*s;
	unsigned d0 = p[0] - 48u, d1, d2;

	if (d0 > 9)
		return -1;
	d1 = p[1] - 48u;
	if (d1 > 9) {
		*s += 1;
		return (int)d0;
	}
	d2 = p[2] - 48u;
	if (d0 == 0)
		return -1;
	if (d2 > 9) {
		*s += 2;
		return (int)(d0 * 10 + d1);
	}
	if (p[3] - 48u <= 9)
		return -1;
	*s += 3;
	return (int)(d0 * 100 + d1 * 10 + d2);
}

/* "A.B.C.D" or "A.B.C.D/LEN" up to `end` as prefix_parse() takes it and
 * without host bits, parsed without inet_pton: most lines of a list.  False sends the
 * line to prefix_parse(), which says what, if anything, is wrong. */
static bool quad_fast(const char *s, const char *end, struct prefix *out)
{
	uint32_t v = 0;
	int o, len = 32;

	for (int i = 0; i < 4; i++) {
		o = small_dec(&s);
		if (o < 0 || o > 255 || (i < 3 && *s++ != '.'))
			return false;
		v = v << 8 | (uint32_t)o;
	}
	if (*s == '/') {
		s++;
		len = small_dec(&s);
	}
	if (s != end || len < 0 || len > 32 || (len < 32 && (uint32_t)((uint64_t)v << len)))
		return false;
	*out = (struct prefix){ .family = 4, .len = (uint8_t)len,
				.a = { v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff } };
	return true;
}

/* One group of 1 to 4 hex digits (a fifth is no group); the value, or -1.
 * Reads only after a hex digit, so never past the line's end. */
static int hex_group(const char **s)
{
	const unsigned char *p = (const unsigned char *)*s;
	unsigned v = 0, k = 0, d;

	for (; k <= 4; k++, p++) {
		if (p[0] - 48u <= 9)
			d = p[0] - 48u;
		else if ((p[0] | 0x20u) - 97u <= 5)
			d = (p[0] | 0x20u) - 87u;
		else
			break;
		v = v << 4 | d;
	}
	if (k == 0 || k > 4)
		return -1;
	*s = (const char *)p;
	return (int)v;
}

/* The groups of "x:x:...:x" with at most one "::" up to a '/' or `end`:
 * false on anything else (an embedded IPv4 address, a stray colon). */
static bool six_groups(const char **sp, const char *end, uint16_t g[8], int *n, int *gap)
{
	const char *s = *sp;

	*n = 0;
	*gap = -1;
	if (s[0] == ':') {
		if (s[1] != ':')
			return false;
		*gap = 0;
		s += 2;
	}
	while (s != end && *s != '/') {
		int v = hex_group(&s);

		if (v < 0 || *n == 8)
			return false;
		g[(*n)++] = (uint16_t)v;
		if (s == end || *s == '/')
			break;
		if (*s++ != ':')
			return false;
		if (*s == ':') {
			if (*gap >= 0)
				return false;
			*gap = *n;
			s++;
		} else if (s == end || *s == '/') {
			return false;   /* a trailing single colon */
		}
	}
	*sp = s;
	return *gap < 0 ? *n == 8 : *n <= 7;
}

/* An IPv6 address or prefix up to `end` as prefix_parse() takes it and
 * without host bits, parsed without inet_pton: a quarter of a cloud
 * provider's list.  False sends the line to prefix_parse(). */
static bool six_fast(const char *s, const char *end, struct prefix *out)
{
	uint16_t g[8];
	int n, gap, len = 128;
	struct prefix p = { .family = 6 };

	if (!six_groups(&s, end, g, &n, &gap))
		return false;
	if (*s == '/') {
		s++;
		len = small_dec(&s);
	}
	if (s != end || len < 0 || len > 128)
		return false;
	for (int i = 0; i < n; i++) {
		int at = gap >= 0 && i >= gap ? 8 - (n - i) : i;

		p.a[2 * at] = (uint8_t)(g[i] >> 8);
		p.a[2 * at + 1] = (uint8_t)g[i];
	}
	p.len = (uint8_t)len;
	for (int i = len / 8; i < 16; i++)     /* host bits: prefix_parse() words them */
		if (p.a[i] & (i == len / 8 ? 0xff >> (len % 8) : 0xff))
			return false;
	*out = p;
	return true;
}

static void check_prefix(struct lctx *c, const struct loc *at, const char *v)
{
	struct prefix p;
	enum prefix_err e = quad_fast(v, v + strlen(v), &p) ? PREFIX_OK : prefix_parse(v, &p);
	unsigned min = 0;
	char buf[PREFIX_STRLEN], why[160];

	if (e == PREFIX_HOST_BITS) {
		snprintf(why, sizeof(why), "%s (did you mean '%s'?)", prefix_strerror(e),
			 prefix_fmt(&p, buf, sizeof(buf)));
		bad_line(c, at, v, why);
		return;
	}
	if (e != PREFIX_OK) {
		bad_line(c, at, v, prefix_strerror(e));
		return;
	}
	if (c->g)
		min = p.family == 4 ? c->g->min_prefix_v4 : c->g->min_prefix_v6;
	if (p.len < min) {
		snprintf(why, sizeof(why), "prefix wider than /%u (guards.min_prefix_v%c)",
			 min, p.family == 4 ? '4' : '6');
		bad_line(c, at, v, why);
		return;
	}
	c->entries++;
	addr_list_push(c->out, &p, at);
}

/* Past the cap nothing is parsed or kept, only counted (for the message):
 * a runaway list costs its file's bytes, not ten times that. */
static bool entry_line(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && (is_space(s[i]) || s[i] == '\0'))
		i++;
	return i < len && s[i] != '#';
}

/* One line, without its '\n'.  `no` is 1-based. */
static void parse_line(struct lctx *c, char *s, size_t len, unsigned no)
{
	struct loc at = { c->path, no, 1 };
	char *hash, *end;

	if (memchr(s, '\0', len)) {
		bad_line(c, &at, "", "line contains a NUL byte");
		return;
	}
	s[len] = '\0';
	if ((hash = strchr(s, '#')))
		*hash = '\0';
	end = s + strlen(s);
	while (end > s && is_space(end[-1]))
		*--end = '\0';
	while (is_space(*s)) {
		s++;
		at.col++;
	}
	if (!*s)
		return;
	if (strpbrk(s, " \t\r\v\f")) {
		bad_line(c, &at, s, "one address or prefix a line, then at most a # comment");
		return;
	}
	check_prefix(c, &at, s);
}

/* Most lines are a bare address or prefix: taken in one pass, without
 * the cuts parse_line() makes for comments and blanks.  False (nothing
 * done) sends the line there, which also says what is wrong with it. */
static bool plain_line(struct lctx *c, const char *s, size_t len, unsigned no)
{
	struct loc at = { c->path, no, 1 };
	struct prefix p;

	if (quad_fast(s, s + len, &p)) {
		if (c->g && p.len < c->g->min_prefix_v4)
			return false;
	} else if (!memchr(s, ':', len) || !six_fast(s, s + len, &p) ||
		   (c->g && p.len < c->g->min_prefix_v6)) {
		return false;
	}
	c->entries++;
	addr_list_push(c->out, &p, &at);
	return true;
}

static void parse_buf(struct lctx *c, char *buf, size_t len)
{
	unsigned no = 0;

	for (size_t i = 0; i < len;) {
		char *nl = memchr(buf + i, '\n', len - i);
		size_t l = nl ? (size_t)(nl - (buf + i)) : len - i;

		no++;
		if (c->cap && c->entries >= c->cap) {
			c->entries += entry_line(buf + i, l);
		} else if (l > LIST_MAX_LINE) {
			struct loc at = { c->path, no, LIST_MAX_LINE + 1 };

			if (++c->bad <= LIST_MAX_ERRORS)
				diag_error(c->d, &at, "line longer than %u bytes", LIST_MAX_LINE);
		} else if (!plain_line(c, buf + i, l, no)) {
			parse_line(c, buf + i, l, no);
		}
		i += l + 1;
	}
}

/* Room for every line at once (up to LIST_RESERVE_MAX): grown by
 * doubling, 100k entries and their locs are copied a dozen times. */
#define LIST_RESERVE_MAX (1u << 22)

static void reserve_lines(struct addr_list *out, const char *buf, size_t len, size_t cap)
{
	size_t lines = 1;

	for (const char *p = buf; (p = memchr(p, '\n', len - (size_t)(p - buf))); p++)
		lines++;
	if (cap && lines > cap + 1)
		lines = cap + 1;
	if (lines > LIST_RESERVE_MAX || out->n + lines <= out->cap)
		return;
	out->cap = out->n + lines;
	out->v = xreallocarray(out->v, out->cap, sizeof(*out->v));
	out->locs = xreallocarray(out->locs, out->cap, sizeof(*out->locs));
}

/* `buf` is cut in place (parse_line()) and has buf[len] == '\0'. */
static bool parse_owned(const char *name, char *buf, size_t len, const struct guards *g,
			struct addr_list *out, struct diag *d)
{
	struct lctx c = { name, g, out, d, 0, 0, g ? g->max_entries : 0 };
	struct loc whole = { name, 0, 0 };
	size_t n0 = out->n;

	reserve_lines(out, buf, len, c.cap);
	parse_buf(&c, buf, len);
	if (c.bad > LIST_MAX_ERRORS)
		diag_error(d, &whole, "%u bad lines in all", c.bad);
	if (c.cap && c.entries > c.cap) {
		diag_error(d, &whole, "has %zu entries, more than guards.max_entries %zu",
			   c.entries, c.cap);
		c.bad++;
	}
	if (c.bad) {
		out->n = n0;
		return false;
	}
	return true;
}

bool list_parse(const char *name, const char *buf, size_t len, const struct guards *g,
		struct addr_list *out, struct diag *d)
{
	char *copy = xmalloc(len + 1);
	bool ok;

	memcpy(copy, buf, len);
	copy[len] = '\0';
	ok = parse_owned(name, copy, len, g, out, d);
	free(copy);
	return ok;
}

bool list_read(const char *path, const struct guards *g, struct addr_list *out,
	       struct diag *d)
{
	return list_read_id(path, g, out, NULL, d);
}

bool list_read_id(const char *path, const struct guards *g, struct addr_list *out,
		  struct state_ident *id, struct diag *d)
{
	struct loc whole = { path, 0, 0 };
	size_t len = 0;
	char *buf = NULL;
	int err;
	bool ok;

	if (id)
		*id = (struct state_ident){ 0 };
	err = slurp(path, &buf, &len, id, d);
	if (err == -EFBIG) {
		diag_error(d, &whole, "list file larger than %u MiB", LIST_MAX_FILE >> 20);
		return false;
	}
	if (err == -ENODEV) {
		diag_error(d, &whole, "cannot read list file: not a regular file");
		return false;
	}
	if (err == -EPERM)
		return false;
	if (err) {
		diag_error(d, &whole, "cannot read list file: %s", strerror(-err));
		return false;
	}
	ok = parse_owned(path, buf, len, g, out, d);
	free(buf);
	return ok;
}

/* lists.c - partner address list files. */
#include "refresh/refresh.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void addr_list_push(struct addr_list *l, const struct prefix *p, const struct loc *at)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
		l->locs = xreallocarray(l->locs, l->cap, sizeof(*l->locs));
	}
	l->v[l->n] = *p;
	l->locs[l->n] = at ? *at : (struct loc){ 0 };
	l->n++;
}

void addr_list_free(struct addr_list *l)
{
	free(l->v);
	free(l->locs);
	memset(l, 0, sizeof(*l));
}

/* Reads the whole file, refusing one over LIST_MAX_FILE and anything but
 * a regular file: a FIFO would block the run, a device (a symlink to
 * /dev/zero) never ends.  Opened non-blocking so that a FIFO is refused
 * rather than waited on.  A regular file others may write, or owned by
 * somebody else, is refused too (file_check_private, on the fd: what was
 * checked is what is read).  A symlink is followed: the policy named it,
 * and its target is what is checked.  0 or -errno (-EFBIG when too big,
 * -ENODEV when not a regular file, -EPERM when refused and reported). */
static int slurp(const char *path, char **buf, size_t *len, struct diag *d)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	size_t cap = 0, n = 0;
	struct stat st;
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

static void check_prefix(struct lctx *c, const struct loc *at, const char *v)
{
	struct prefix p;
	enum prefix_err e = prefix_parse(v, &p);
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
		} else {
			parse_line(c, buf + i, l, no);
		}
		i += l + 1;
	}
}

/* `buf` is cut in place (parse_line()) and has buf[len] == '\0'. */
static bool parse_owned(const char *name, char *buf, size_t len, const struct guards *g,
			struct addr_list *out, struct diag *d)
{
	struct lctx c = { name, g, out, d, 0, 0, g ? g->max_entries : 0 };
	struct loc whole = { name, 0, 0 };
	size_t n0 = out->n;

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
	struct loc whole = { path, 0, 0 };
	size_t len = 0;
	char *buf = NULL;
	int err = slurp(path, &buf, &len, d);
	bool ok;

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

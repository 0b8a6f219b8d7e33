/* lists.c - partner address list files, and the offline address sources. */
#include "refresh/refresh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* Reads the whole file, refusing one over LIST_MAX_FILE.  0 or -errno
 * (-EFBIG when too big). */
static int slurp(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 0, n = 0;
	char *b = NULL;
	int err = 0;

	if (!f)
		return -errno;
	for (;;) {
		size_t got;

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
		got = fread(b + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (!err && ferror(f))
		err = errno ? -errno : -EIO;
	if (!err && n > LIST_MAX_FILE)
		err = -EFBIG;   /* read one byte past the limit */
	fclose(f);
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
};

static void bad_line(struct lctx *c, const struct loc *at, const char *value,
		     const char *why)
{
	if (++c->bad <= LIST_MAX_ERRORS)
		diag_error(c->d, at, "'%s': %s", value, why);
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
	addr_list_push(c->out, &p, at);
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
		if (l > LIST_MAX_LINE) {
			struct loc at = { c->path, no, LIST_MAX_LINE + 1 };

			if (++c->bad <= LIST_MAX_ERRORS)
				diag_error(c->d, &at, "line longer than %u bytes", LIST_MAX_LINE);
		} else {
			parse_line(c, buf + i, l, no);
		}
		i += l + 1;
	}
}

bool list_read(const char *path, const struct guards *g, struct addr_list *out,
	       struct diag *d)
{
	struct lctx c = { path, g, out, d, 0 };
	struct loc whole = { path, 0, 0 };
	size_t n0 = out->n, len = 0;
	char *buf = NULL;
	int err = slurp(path, &buf, &len);

	if (err == -EFBIG) {
		diag_error(d, &whole, "list file larger than %u MiB", LIST_MAX_FILE >> 20);
		return false;
	}
	if (err) {
		diag_error(d, &whole, "cannot read list file: %s", strerror(-err));
		return false;
	}
	parse_buf(&c, buf, len);
	free(buf);
	if (c.bad > LIST_MAX_ERRORS)
		diag_error(d, &whole, "%u bad lines in all", c.bad);
	if (c.bad) {
		out->n = n0;
		return false;
	}
	return true;
}

/* ---- offline sources ------------------------------------------------- */

/* Host names and SRV domains: nothing is known offline yet (the state
 * directory is the refresh module's).  Silent unless the partner would be
 * left without any address. */
static void dns_sources(const struct partner *pt, const struct addr_list *have,
			struct diag *d)
{
	if (pt->nhosts + pt->ndomains == 0)
		return;
	if (pt->naddresses + have->n) {
		diag_note(d, &pt->loc, "partner '%s': host names and domains are not"
			  " resolved yet (run fedwall refresh); using its other addresses",
			  pt->name);
		return;
	}
	for (size_t i = 0; i < pt->nhosts; i++)
		diag_warn(d, &pt->hosts[i].loc, "no addresses known yet for host '%s'"
			  " (run fedwall refresh)", pt->hosts[i].s);
	for (size_t i = 0; i < pt->ndomains; i++)
		diag_warn(d, &pt->domains[i].loc, "no addresses known yet for domain '%s'"
			  " (run fedwall refresh)", pt->domains[i].s);
}

bool sources_offline(const struct policy *p, const char *state_dir,
		     struct sources *out, struct diag *d)
{
	bool ok = true;

	(void)state_dir;        /* read by the state layer, once it is wired in */
	out->n = p->npartners;
	out->partners = xcalloc(p->npartners + 1, sizeof(*out->partners));
	for (size_t i = 0; i < p->npartners; i++) {
		const struct partner *pt = &p->partners[i];
		bool lists_ok = true;

		for (size_t j = 0; j < pt->nlists; j++) {
			if (list_read(pt->lists[j].s, &p->guards, &out->partners[i], d))
				continue;
			diag_note(d, &pt->lists[j].loc, "list of partner '%s', refused as a whole",
				  pt->name);
			lists_ok = false;
		}
		if (lists_ok)
			dns_sources(pt, &out->partners[i], d);
		ok &= lists_ok;
	}
	return ok;
}

void sources_free(struct sources *s)
{
	for (size_t i = 0; s->partners && i < s->n; i++)
		addr_list_free(&s->partners[i]);
	free(s->partners);
	memset(s, 0, sizeof(*s));
}

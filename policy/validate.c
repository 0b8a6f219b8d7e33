/* validate.c - the YAML tree -> struct policy.  Every problem of the file
 * is reported (the caller sorts them by position); a value with an error
 * is skipped and checking goes on, so one run shows everything to fix.
 * Guards are read before anything else because they bound the prefixes
 * elsewhere, wherever they stand in the file. */
#include "policy/internal.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct vctx {
	struct policy *p;
	struct perrs *e;
	char *dir;              /* absolute directory of the policy file */
	unsigned min4, min6;    /* guards, once read */
};

#define ERR(v, n, ...) perr_add((v)->e, &(n)->loc, __VA_ARGS__)

/* ---- types ----------------------------------------------------------- */

/* "a mapping", "a list", "nothing" or the quoted scalar, for messages. */
static const char *what_is(const struct ynode *n, struct strbuf *sb)
{
	sb_reset(sb);
	if (n->kind == YN_MAP)
		sb_addf(sb, "a mapping");
	else if (n->kind == YN_SEQ)
		sb_addf(sb, "a list");
	else if (n->null)
		sb_addf(sb, "an empty value");
	else
		sb_addf(sb, "'%s'", n->s);
	return sb_str(sb);
}

static bool want(struct vctx *v, const struct ynode *n, enum ynode_kind kind,
		 const char *key)
{
	static const char *const kinds[] = { "a single value", "a list", "a mapping" };
	struct strbuf sb = { 0 };

	if (n->kind == kind && !(kind == YN_SCALAR && n->null))
		return true;
	if (n->kind == YN_SCALAR && n->null)
		ERR(v, n, "'%s' has no value", key);
	else
		ERR(v, n, "'%s' must be %s, not %s", key, kinds[kind], what_is(n, &sb));
	sb_free(&sb);
	return false;
}

/* An entry of the list `key`. */
static bool want_item(struct vctx *v, const struct ynode *n, const char *key)
{
	struct strbuf sb = { 0 };

	if (n->kind == YN_SCALAR && !n->null)
		return true;
	if (n->kind == YN_SCALAR)
		ERR(v, n, "empty entry in '%s'", key);
	else
		ERR(v, n, "entries of '%s' must be single values, not %s", key,
		    what_is(n, &sb));
	sb_free(&sb);
	return false;
}

/* One adjacent pair swapped: "tabel" for "table". */
static bool transposed(const char *a, const char *b)
{
	size_t n = strlen(a), i = 0;

	if (n != strlen(b))
		return false;
	while (i < n && a[i] == b[i])
		i++;
	return i + 1 < n && a[i] == b[i + 1] && a[i + 1] == b[i] &&
	       !strcmp(a + i + 2, b + i + 2);
}

/* closest_word(), then swapped letters, then an abbreviation ("sip-fed"). */
static const char *suggest(const char *w, const char *const *cands, size_t n)
{
	const char *s = closest_word(w, cands, n);
	size_t len = strlen(w);

	for (size_t i = 0; !s && i < n; i++)
		if (transposed(w, cands[i]))
			s = cands[i];
	for (size_t i = 0; !s && len >= 3 && i < n; i++)
		if (!strncmp(cands[i], w, len))
			s = cands[i];
	return s;
}

static void check_keys(struct vctx *v, const struct ynode *map,
		       const char *const *keys, size_t nkeys, const char *where)
{
	for (size_t i = 0; i < ymap_len(map); i++) {
		const struct ynode *k = ymap_key(map, i);
		const char *near;
		struct strbuf sb = { 0 };
		size_t j;

		for (j = 0; j < nkeys && strcmp(k->s, keys[j]); j++)
			;
		if (j < nkeys)
			continue;
		near = suggest(k->s, keys, nkeys);
		if (near) {
			ERR(v, k, "unknown key '%s'%s; did you mean '%s'?", k->s, where, near);
			continue;
		}
		for (j = 0; j < nkeys; j++)
			sb_addf(&sb, "%s%s", j ? ", " : "", keys[j]);
		ERR(v, k, "unknown key '%s'%s (expected %s)", k->s, where, sb_str(&sb));
		sb_free(&sb);
	}
}

/* Digits only, no sign, fits `max`. */
static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long n = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (n > (max - (unsigned long)(*s - '0')) / 10)
			return false;
		n = n * 10 + (unsigned long)(*s - '0');
	}
	*out = n;
	return true;
}

static bool get_bool(struct vctx *v, const struct ynode *n, const char *key, bool *out)
{
	if (!want(v, n, YN_SCALAR, key))
		return false;
	if (!strcmp(n->s, "true") || !strcmp(n->s, "yes")) {
		*out = true;
		return true;
	}
	if (!strcmp(n->s, "false") || !strcmp(n->s, "no")) {
		*out = false;
		return true;
	}
	ERR(v, n, "bad %s '%s': expected true or false", key, n->s);
	return false;
}

static char *get_str(struct vctx *v, const struct ynode *n, const char *key)
{
	return want(v, n, YN_SCALAR, key) ? xstrdup(n->s) : NULL;
}

/* ---- names ----------------------------------------------------------- */

static bool name_ok(struct vctx *v, const struct ynode *n, const char *kind)
{
	const char *s = n->s;

	if (strlen(s) > POLICY_NAME_MAX) {
		ERR(v, n, "%s name '%s' is longer than %d characters", kind, s,
		    POLICY_NAME_MAX);
		return false;
	}
	for (size_t i = 0; s[i]; i++) {
		bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');

		if (!alnum && (i == 0 || (s[i] != '-' && s[i] != '_')))
			goto bad;
	}
	if (*s)
		return true;
bad:
	ERR(v, n, "bad %s name '%s': use a-z, 0-9, '-' and '_', starting with a "
	    "letter or digit", kind, s);
	return false;
}

/* Returns NULL when `s` is a valid DNS name, else why not. */
static const char *dns_problem(const char *s)
{
	size_t len = strlen(s), label = 0;
	struct prefix pf;

	if (prefix_parse(s, &pf) == PREFIX_OK)
		return "that is an address: put it under 'addresses'";
	if (len && s[len - 1] == '.')
		len--;
	if (len == 0)
		return "empty name";
	if (len > 253)
		return "longer than 253 characters";
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? s[i] : '.';

		if (c == '.') {
			if (label == 0)
				return "empty label";
			if (s[i - 1] == '-')
				return "a label ends with '-'";
			label = 0;
		} else if (isalnum((unsigned char)c) || c == '-') {
			if (c == '-' && label == 0)
				return "a label starts with '-'";
			if (++label > 63)
				return "a label is longer than 63 characters";
		} else {
			return "only letters, digits, '-' and '.' are allowed";
		}
	}
	return NULL;
}

static char *check_dns(struct vctx *v, const struct ynode *n, const char *kind)
{
	const char *why = dns_problem(n->s);
	char *s;

	if (why) {
		ERR(v, n, "bad %s '%s': %s", kind, n->s, why);
		return NULL;
	}
	s = xstrdup(n->s);
	for (char *c = s; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return s;
}

static char *check_host(struct vctx *v, const struct ynode *n)
{
	return check_dns(v, n, "host name");
}

static char *check_domain(struct vctx *v, const struct ynode *n)
{
	return check_dns(v, n, "domain");
}

/* A suffix of one label would admit targets anywhere under a top-level
 * domain: a hosted partner's edge always has two or more. */
static char *check_srv_target(struct vctx *v, const struct ynode *n)
{
	struct prefix pf;
	char *s;
	size_t len;

	if (n->s[0] == '*' && n->s[1] == '.') {
		ERR(v, n, "bad srv_targets entry '%s': write the suffix without '*.'"
		    " ('%s' admits targets under it)", n->s, n->s + 2);
		return NULL;
	}
	if (prefix_parse(n->s, &pf) != PREFIX_BAD_ADDR) {
		ERR(v, n, "bad srv_targets entry '%s': a DNS name suffix, not an address",
		    n->s);
		return NULL;
	}
	if (!(s = check_dns(v, n, "srv_targets entry")))
		return NULL;
	len = strlen(s);
	if (s[len - 1] == '.')
		s[--len] = '\0';
	if (!strchr(s, '.')) {
		ERR(v, n, "bad srv_targets entry '%s': a single label would admit SRV"
		    " targets anywhere under it", n->s);
		free(s);
		return NULL;
	}
	return s;
}

static char *check_iface(struct vctx *v, const struct ynode *n)
{
	const char *s = n->s, *why = NULL;

	if (!*s || strlen(s) > 15)
		why = "must be 1 to 15 characters";
	else if (!strcmp(s, ".") || !strcmp(s, ".."))
		why = "'.' and '..' are not interface names";
	for (; !why && *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s) ||
		    (unsigned char)*s < 0x20)
			why = "no '/', ':' or whitespace allowed";
	if (why) {
		ERR(v, n, "bad interface name '%s': %s", n->s, why);
		return NULL;
	}
	return xstrdup(n->s);
}

/* Joins and cleans "a/./b/../c" lexically: no I/O on the list file. */
static char *path_clean(const char *path)
{
	char *work = xstrdup(path), *save = NULL, *tok;
	const char **parts = xcalloc(strlen(path) + 1, sizeof(*parts));
	struct strbuf sb = { 0 };
	size_t n = 0;

	for (tok = strtok_r(work, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..")) {
			if (n)
				n--;
			continue;
		}
		parts[n++] = tok;
	}
	for (size_t i = 0; i < n; i++)
		sb_addf(&sb, "/%s", parts[i]);
	if (!n)
		sb_addc(&sb, '/');
	free(parts);
	free(work);
	return sb.s;
}

/* A file named relative to the policy's directory: absolute, cleaned. */
static char *check_file(struct vctx *v, const struct ynode *n, const char *kind)
{
	struct strbuf sb = { 0 };
	char *clean;
	size_t len = strlen(n->s);
	const char *base = strrchr(n->s, '/');

	/* "/." or "x/.." name a directory, and cleaned ("/") would print
	 * as what this refuses: `check -v` must print what loads again. */
	base = base ? base + 1 : n->s;
	if (!len || n->s[len - 1] == '/' || !strcmp(base, ".") || !strcmp(base, "..")) {
		ERR(v, n, "bad %s '%s': expected a file name", kind, n->s);
		return NULL;
	}
	if (n->s[0] == '/')
		sb_addf(&sb, "%s", n->s);
	else
		sb_addf(&sb, "%s/%s", v->dir, n->s);
	clean = path_clean(sb_str(&sb));
	sb_free(&sb);
	return clean;
}

static char *check_list(struct vctx *v, const struct ynode *n)
{
	return check_file(v, n, "list file");
}

static char *policy_dir(const char *file)
{
	const char *slash = strrchr(file, '/');
	char *dir = slash ? xstrndup(file, (size_t)(slash - file)) : xstrdup(".");
	char cwd[PATH_MAX];
	struct strbuf sb = { 0 };
	char *abs;

	if (slash == file)
		return free(dir), xstrdup("/");
	if (dir[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return dir;
	sb_addf(&sb, "%s/%s", cwd, dir);
	abs = path_clean(sb_str(&sb));
	sb_free(&sb);
	free(dir);
	return abs;
}

/* ---- lists of strings -------------------------------------------------- */

typedef char *(*str_check_fn)(struct vctx *v, const struct ynode *n);

static int strval_cmp(const void *x, const void *y)
{
	const struct strval *a = x, *b = y;
	int c = strcmp(a->s, b->s);

	if (c)
		return c;
	if (a->loc.line != b->loc.line)
		return a->loc.line < b->loc.line ? -1 : 1;
	return a->loc.col < b->loc.col ? -1 : a->loc.col > b->loc.col;
}

/* Sorted, and the same name twice is an error: a typo is likelier than
 * an intent. */
static void str_list(struct vctx *v, const struct ynode *n, const char *key,
		     str_check_fn check, struct strval **out, size_t *nout)
{
	VEC(struct strval) vec = { 0 };
	size_t keep = 0;

	if (!want(v, n, YN_SEQ, key))
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *it = n->v[i];
		char *s;

		if (!want_item(v, it, key) || !(s = check(v, it)))
			continue;
		VEC_PUSH(&vec, ((struct strval){ s, it->loc }));
	}
	if (vec.n)
		qsort(vec.v, vec.n, sizeof(*vec.v), strval_cmp);
	for (size_t i = 0; i < vec.n; i++) {
		if (keep && !strcmp(vec.v[keep - 1].s, vec.v[i].s)) {
			perr_add(v->e, &vec.v[i].loc, "'%s' listed twice (first at %u:%u)",
				 vec.v[i].s, vec.v[keep - 1].loc.line, vec.v[keep - 1].loc.col);
			free(vec.v[i].s);
			continue;
		}
		vec.v[keep++] = vec.v[i];
	}
	*out = vec.v;
	*nout = keep;
}

/* ---- addresses ------------------------------------------------------- */

static bool check_guard(struct vctx *v, const struct ynode *n, const struct prefix *pf)
{
	unsigned min = pf->family == 4 ? v->min4 : v->min6;

	if (pf->len == 0) {
		ERR(v, n, "'%s' is the whole Internet: fedwall never opens a service "
		    "to everybody", n->s);
		return false;
	}
	if (pf->len < min) {
		ERR(v, n, "'%s' is wider than /%u (guards: min_prefix_v%c)", n->s, min,
		    pf->family == 4 ? '4' : '6');
		return false;
	}
	return true;
}

static bool parse_addr(struct vctx *v, const struct ynode *n, struct prefix *pf)
{
	enum prefix_err pe = prefix_parse(n->s, pf);
	char buf[PREFIX_STRLEN];

	if (pe == PREFIX_HOST_BITS) {
		ERR(v, n, "'%s' has host bits set; did you mean '%s'?", n->s,
		    prefix_fmt(pf, buf, sizeof(buf)));
		return false;
	}
	if (pe != PREFIX_OK) {
		ERR(v, n, "bad address '%s': %s", n->s, prefix_strerror(pe));
		return false;
	}
	return check_guard(v, n, pf);
}

/* Merges the entries; each merged prefix keeps the loc of the first entry
 * it covers, so later messages still point at the file. */
static void addrs_merge(struct addr_ent *a, size_t *n)
{
	size_t m, nold = *n;
	struct prefix *pv;
	struct addr_ent *old;

	if (!nold)
		return;
	pv = xcalloc(nold, sizeof(*pv));
	old = xcalloc(nold, sizeof(*old));
	memcpy(old, a, nold * sizeof(*old));
	for (size_t i = 0; i < nold; i++)
		pv[i] = a[i].p;
	m = prefixes_merge(pv, nold);
	for (size_t i = 0; i < m; i++) {
		a[i].p = pv[i];
		a[i].loc = old[0].loc;
		for (size_t j = 0; j < nold; j++) {
			if (prefix_contains(&pv[i], &old[j].p)) {
				a[i].loc = old[j].loc;
				break;
			}
		}
	}
	*n = m;
	free(old);
	free(pv);
}

static int addr_ent_cmp(const void *x, const void *y)
{
	return prefix_cmp(&((const struct addr_ent *)x)->p, &((const struct addr_ent *)y)->p);
}

/* "'0.0.0.0/1' (12:17) and '128.0.0.0/1' (12:30) join into 0.0.0.0/0, ...":
 * the prefixes of the run no earlier one contains, three at most. */
/* `pv` is parallel to `s` (its prefixes). */
static void run_err(struct vctx *v, const struct addr_ent *s, const struct prefix *pv,
		    const struct prefix_run *r)
{
	char buf[PREFIX_STRLEN], range[PREFIX_RUN_STRLEN];
	unsigned min = r->family == 4 ? v->min4 : v->min6;
	struct strbuf sb = { 0 };
	size_t idx[3], total = prefix_run_members(pv, r, idx, ARRAY_SIZE(idx)), shown;

	shown = total > 3 ? 2 : total;
	for (size_t k = 0; k < shown; k++) {
		const struct addr_ent *e = &s[idx[k]];

		sb_addf(&sb, "%s'%s' (%u:%u)", !k ? "" : k + 1 == total ? " and " : ", ",
			prefix_fmt(&e->p, buf, sizeof(buf)), e->loc.line, e->loc.col);
	}
	if (total > shown)
		sb_addf(&sb, " and %zu more", total - shown);
	sb_addf(&sb, " join into %s, ", prefix_run_fmt(r, range, sizeof(range)));
	if (prefix_run_whole(r))
		sb_addf(&sb, "the whole Internet: fedwall never opens a service to everybody");
	else
		sb_addf(&sb, "wider than /%u (guards: min_prefix_v%c)", min,
			r->family == 4 ? '4' : '6');
	perr_add(v->e, &s[r->lo].loc, "%s", sb_str(&sb));
	sb_free(&sb);
}

/* Prefixes that each pass the guards may add up to a range that does not
 * (the two halves of 0.0.0.0/0): the guards bound what the join admits.
 * And a partner's inline addresses count against max_entries too. */
static void check_runs(struct vctx *v, const struct ynode *n, const char *key,
		       const struct addr_ent *a, size_t na)
{
	struct addr_ent *s = xcalloc(na + 1, sizeof(*s));
	struct prefix *pv = xcalloc(na + 1, sizeof(*pv));
	struct prefix_run r;
	size_t pos = 0;

	if (na)
		memcpy(s, a, na * sizeof(*s));
	qsort(s, na, sizeof(*s), addr_ent_cmp);
	for (size_t i = 0; i < na; i++)
		pv[i] = s[i].p;
	while (prefix_run_next(pv, na, &pos, &r))
		if (r.hi - r.lo > 1 && prefix_run_wider(&r, r.family == 4 ? v->min4 : v->min6))
			run_err(v, s, pv, &r);
	na = prefixes_merge(pv, na);
	if (na > v->p->guards.max_entries)
		ERR(v, n, "'%s' has %zu entries, more than guards.max_entries %u", key, na,
		    v->p->guards.max_entries);
	free(pv);
	free(s);
}

/* The items of a list value: its elements, or the value itself (*np)
 * where a single scalar may stand for a list.  False after reporting a
 * value that is neither. */
static bool list_items(struct vctx *v, const struct ynode *const *np, const char *key,
		       bool scalar_ok, const struct ynode *const **items, size_t *count)
{
	const struct ynode *n = *np;

	if (scalar_ok && n->kind == YN_SCALAR && !n->null) {
		*items = np;
		*count = 1;
		return true;
	}
	if (!want(v, n, YN_SEQ, key))
		return false;
	*items = (const struct ynode *const *)n->v;
	*count = n->n;
	return true;
}

static void addr_list(struct vctx *v, const struct ynode *n, const char *key,
		      bool scalar_ok, struct addr_ent **out, size_t *nout)
{
	VEC(struct addr_ent) vec = { 0 };
	const struct ynode *const *items;
	size_t count;

	if (!list_items(v, &n, key, scalar_ok, &items, &count))
		return;
	for (size_t i = 0; i < count; i++) {
		struct addr_ent a = { .loc = items[i]->loc };

		/* items == &n: a single scalar, already checked */
		if ((items == &n || want_item(v, items[i], key)) &&
		    parse_addr(v, items[i], &a.p))
			VEC_PUSH(&vec, a);
	}
	check_runs(v, n, key, vec.v, vec.n);
	addrs_merge(vec.v, &vec.n);
	*out = vec.v;
	*nout = vec.n;
}

/* ---- ports ----------------------------------------------------------- */

static void ports_merge(struct port_ent *a, size_t *n)
{
	size_t m, nold = *n;
	struct portrange *rv;
	struct port_ent *old;

	if (!nold)
		return;
	rv = xcalloc(nold, sizeof(*rv));
	old = xcalloc(nold, sizeof(*old));
	memcpy(old, a, nold * sizeof(*old));
	for (size_t i = 0; i < nold; i++)
		rv[i] = a[i].r;
	m = portranges_merge(rv, nold);
	for (size_t i = 0; i < m; i++) {
		a[i].r = rv[i];
		a[i].loc = old[0].loc;
		for (size_t j = 0; j < nold; j++) {
			if (old[j].r.proto == rv[i].proto && old[j].r.lo >= rv[i].lo &&
			    old[j].r.hi <= rv[i].hi) {
				a[i].loc = old[j].loc;
				break;
			}
		}
	}
	*n = m;
	free(old);
	free(rv);
}

static void port_list(struct vctx *v, const struct ynode *n, const char *key,
		      bool scalar_ok, struct port_ent **out, size_t *nout)
{
	VEC(struct port_ent) vec = { 0 };
	const struct ynode *const *items;
	size_t count;

	if (!list_items(v, &n, key, scalar_ok, &items, &count))
		return;
	for (size_t i = 0; i < count; i++) {
		struct port_ent pe = { .loc = items[i]->loc };
		enum port_err err;

		if (items != &n && !want_item(v, items[i], key))
			continue;
		err = portrange_parse(items[i]->s, &pe.r);
		if (err != PORT_OK) {
			ERR(v, items[i], "bad port '%s': %s", items[i]->s, port_strerror(err));
			continue;
		}
		VEC_PUSH(&vec, pe);
	}
	ports_merge(vec.v, &vec.n);
	*out = vec.v;
	*nout = vec.n;
}

/* ---- top-level scalars ------------------------------------------------- */

static void do_version(struct vctx *v, const struct ynode *root)
{
	const struct ynode *n = ymap_get(root, "version");

	if (!n) {
		ERR(v, root, "missing required key 'version' (write 'version: 1' first)");
		return;
	}
	if (want(v, n, YN_SCALAR, "version") && strcmp(n->s, "1"))
		ERR(v, n, "unsupported version '%s': this fedwall reads version 1", n->s);
}

static void do_table(struct vctx *v, const struct ynode *n)
{
	if (!want(v, n, YN_SCALAR, "table") || !name_ok(v, n, "table"))
		return;
	free(v->p->table);
	v->p->table = xstrdup(n->s);
}

/* Looks `s` up among `names`; reports with a suggestion otherwise. */
static int pick(struct vctx *v, const struct ynode *n, const char *what,
		const char *const *names, size_t count)
{
	const char *near;

	for (size_t i = 0; i < count; i++)
		if (!strcmp(n->s, names[i]))
			return (int)i;
	near = suggest(n->s, names, count);
	if (near)
		ERR(v, n, "unknown %s '%s'; did you mean '%s'?", what, n->s, near);
	else if (count == 2)
		ERR(v, n, "unknown %s '%s'; expected %s or %s", what, n->s,
		    names[0], names[1]);
	else
		ERR(v, n, "unknown %s '%s'; expected %s, %s or %s", what, n->s,
		    names[0], names[1], names[2]);
	return -1;
}

static void do_mode(struct vctx *v, const struct ynode *n)
{
	static const char *const modes[] = { "host", "gateway" };
	int i;

	if (!want(v, n, YN_SCALAR, "mode"))
		return;
	i = pick(v, n, "mode", modes, ARRAY_SIZE(modes));
	if (i >= 0)
		v->p->mode = i ? MODE_GATEWAY : MODE_HOST;
}

static void do_edge(struct vctx *v, const struct ynode *n)
{
	static const char *const keys[] = { "interfaces", "addresses" };
	const struct ynode *it;

	if (!want(v, n, YN_MAP, "edge"))
		return;
	check_keys(v, n, keys, ARRAY_SIZE(keys), " in 'edge'");
	if ((it = ymap_get(n, "interfaces")))
		str_list(v, it, "interfaces", check_iface, &v->p->edge.interfaces,
			 &v->p->edge.ninterfaces);
	if ((it = ymap_get(n, "addresses")))
		addr_list(v, it, "addresses", false, &v->p->edge.addresses,
			  &v->p->edge.naddresses);
}

static void do_icmp(struct vctx *v, const struct ynode *n)
{
	static const char *const keys[] = { "echo" };
	const struct ynode *it;

	if (!want(v, n, YN_MAP, "icmp"))
		return;
	check_keys(v, n, keys, ARRAY_SIZE(keys), " in 'icmp'");
	if ((it = ymap_get(n, "echo")))
		get_bool(v, it, "echo", &v->p->icmp_echo);
}

/* ---- guards and log ---------------------------------------------------- */

static void guard_prefix(struct vctx *v, const struct ynode *n, const char *key,
			 unsigned long max, unsigned *out)
{
	unsigned long x;

	/* Unknown, no prefix is measured against it (0): the default would
	 * refuse what the intended value may allow.  Only the whole
	 * Internet, which no guard admits, is still reported. */
	*out = 0;
	if (!want(v, n, YN_SCALAR, key))
		return;
	if (!parse_uint(n->s, max, &x) || x == 0) {
		ERR(v, n, "bad %s '%s': expected a prefix length from 1 to %lu",
		    key, n->s, max);
		return;
	}
	*out = (unsigned)x;
}

static void guard_shrink(struct vctx *v, const struct ynode *n)
{
	char *s;
	size_t len;
	unsigned long x;
	bool ok;

	if (!want(v, n, YN_SCALAR, "max_shrink"))
		return;
	s = xstrdup(n->s);
	len = strlen(s);
	if (len && s[len - 1] == '%')
		s[len - 1] = '\0';
	ok = parse_uint(s, 100, &x);
	free(s);
	if (!ok) {
		ERR(v, n, "bad max_shrink '%s': expected a percentage from 0%% to 100%%",
		    n->s);
		return;
	}
	v->p->guards.max_shrink = (unsigned)x;
}

/* "90s", "30m", "24h", "7d", or plain seconds, at least 1 s. */
static bool duration(struct vctx *v, const struct ynode *n, const char *key,
		     unsigned *out)
{
	static const struct { char c; unsigned long mul; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	unsigned long mul = 1, x;
	char *s;
	size_t len;
	bool ok;

	if (!want(v, n, YN_SCALAR, key))
		return false;
	s = xstrdup(n->s);
	len = strlen(s);
	for (size_t i = 0; len && i < ARRAY_SIZE(units); i++) {
		if (s[len - 1] == units[i].c) {
			mul = units[i].mul;
			s[len - 1] = '\0';
		}
	}
	ok = parse_uint(s, UINT_MAX / mul, &x) && x > 0;
	free(s);
	if (!ok) {
		ERR(v, n, "bad %s '%s': expected a duration such as 90s, 30m, "
		    "24h or 7d", key, n->s);
		return false;
	}
	*out = (unsigned)(x * mul);
	return true;
}

static void guard_stale(struct vctx *v, const struct ynode *n)
{
	duration(v, n, "stale_after", &v->p->guards.stale_after);
}

/* At least 1: a partner always may have an address; 0 would read as
 * "no limit", which is what the guard is there to prevent. */
static void guard_entries(struct vctx *v, const struct ynode *n)
{
	unsigned long x;

	if (!want(v, n, YN_SCALAR, "max_entries"))
		return;
	if (!parse_uint(n->s, UINT_MAX, &x) || x == 0) {
		ERR(v, n, "bad max_entries '%s': expected a number of entries from 1 to %u",
		    n->s, UINT_MAX);
		return;
	}
	v->p->guards.max_entries = (unsigned)x;
}

static void do_guards(struct vctx *v, const struct ynode *n)
{
	static const char *const keys[] = {
		"max_shrink", "min_prefix_v4", "min_prefix_v6", "stale_after",
		"max_entries",
	};
	struct guards *g = &v->p->guards;
	const struct ynode *it;

	if (!want(v, n, YN_MAP, "guards")) {
		g->min_prefix_v4 = g->min_prefix_v6 = 0;        /* as guard_prefix() */
		return;
	}
	check_keys(v, n, keys, ARRAY_SIZE(keys), " in 'guards'");
	if ((it = ymap_get(n, "max_shrink")))
		guard_shrink(v, it);
	if ((it = ymap_get(n, "min_prefix_v4")))
		guard_prefix(v, it, "min_prefix_v4", 32, &g->min_prefix_v4);
	if ((it = ymap_get(n, "min_prefix_v6")))
		guard_prefix(v, it, "min_prefix_v6", 128, &g->min_prefix_v6);
	if ((it = ymap_get(n, "stale_after")))
		guard_stale(v, it);
	if ((it = ymap_get(n, "max_entries")))
		guard_entries(v, it);
}

/* A file named relative to the policy's directory, as list files are;
 * whether it can be read is `check`'s (and refresh's) business. */
static void resolve_anchor(struct vctx *v, const struct ynode *n)
{
	char *path;

	if (!want(v, n, YN_SCALAR, "trust_anchor"))
		return;
	if (!(path = check_file(v, n, "trust_anchor")))
		return;
	free(v->p->resolve.trust_anchor.s);
	v->p->resolve.trust_anchor = (struct strval){ path, n->loc };
}

/* resolve: {ttl_min, ttl_max, timeout}: the daemon's DNS schedule;
 * trust_anchor: DNSSEC's. */
static void do_resolve(struct vctx *v, const struct ynode *n)
{
	static const char *const keys[] = { "ttl_min", "ttl_max", "timeout",
					    "trust_anchor" };
	struct resolvecfg *r = &v->p->resolve;
	const struct ynode *it, *max = NULL;

	if (!want(v, n, YN_MAP, "resolve"))
		return;
	check_keys(v, n, keys, ARRAY_SIZE(keys), " in 'resolve'");
	if ((it = ymap_get(n, "ttl_min")))
		duration(v, it, "ttl_min", &r->ttl_min);
	if ((it = ymap_get(n, "ttl_max")) && duration(v, it, "ttl_max", &r->ttl_max))
		max = it;
	if ((it = ymap_get(n, "timeout")) && duration(v, it, "timeout", &r->timeout) &&
	    r->timeout > 60)
		ERR(v, it, "bad timeout '%s': at most 60s per DNS lookup", it->s);
	if (r->ttl_max < r->ttl_min)
		ERR(v, max ? max : n, "ttl_max (%us) is below ttl_min (%us)",
		    r->ttl_max, r->ttl_min);
	if ((it = ymap_get(n, "trust_anchor")))
		resolve_anchor(v, it);
}

/* ---- fetch: and list URLs ---------------------------------------------- */

#define POLICY_URL_MAX 1000     /* a state entry's name, with room to spare */

static bool has_scheme(const char *s, const char *scheme)
{
	return !strncasecmp(s, scheme, strlen(scheme));
}

/* Whether `s` is meant as a URL (a scheme), not a file name. */
static bool looks_like_url(const char *s)
{
	const char *c = strstr(s, "://");

	if (!c || c == s)
		return false;
	for (const char *p = s; p < c; p++)
		if (!isalpha((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
			return false;
	return true;
}

/* Why the authority (host[:port]) after the scheme is not one, or NULL. */
static const char *url_host_bad(const char *host)
{
	size_t n = strcspn(host, "/?#");

	if (n == 0)
		return "it names no host";
	if (memchr(host, '@', n))
		return "credentials do not belong in a URL the state and the logs repeat";
	return NULL;
}

/* An https:// URL, or http:// when the entry opted in: anyone on the path
 * of a plain http fetch could rewrite the list and open the firewall. */
static char *check_url(struct vctx *v, const struct ynode *n, const char *what,
		       bool insecure_http)
{
	const char *s = n->s, *why = NULL;
	size_t skip;

	for (const char *p = s; *p && !why; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			why = "it has a space or a control character";
	if (!why && strlen(s) > POLICY_URL_MAX)
		why = "it is longer than 1000 characters";
	if (!why && !has_scheme(s, "https://") && !has_scheme(s, "http://"))
		why = "only https:// (or http:// with insecure_http: true) is fetched";
	skip = has_scheme(s, "https://") ? 8 : 7;
	if (!why)
		why = url_host_bad(s + skip);
	if (why) {
		ERR(v, n, "bad %s '%s': %s", what, s, why);
		return NULL;
	}
	if (skip == 7 && !insecure_http) {
		ERR(v, n, "%s '%s' is plain http: anyone on the path could rewrite it and"
		    " open the firewall; use https://, or set insecure_http: true on this"
		    " entry to accept that", what, s);
		return NULL;
	}
	return xstrdup(s);
}

struct list_item {
	struct strval sv;       /* first: strval_cmp sorts these */
	struct list_opt o;
};

/* {url: URL, interval: 15m, insecure_http: true} */
static bool list_map(struct vctx *v, const struct ynode *n, struct list_item *it)
{
	static const char *const keys[] = { "url", "interval", "insecure_http" };
	const struct ynode *u = ymap_get(n, "url"), *x;

	check_keys(v, n, keys, ARRAY_SIZE(keys), " in a 'lists' entry");
	if ((x = ymap_get(n, "insecure_http")))
		get_bool(v, x, "insecure_http", &it->o.insecure_http);
	if ((x = ymap_get(n, "interval")))
		duration(v, x, "interval", &it->o.interval);
	if (!u) {
		ERR(v, n, "a 'lists' entry written as a mapping needs 'url'");
		return false;
	}
	if (!want(v, u, YN_SCALAR, "url"))
		return false;
	it->o.url = true;
	it->sv = (struct strval){ check_url(v, u, "list URL", it->o.insecure_http), u->loc };
	return it->sv.s != NULL;
}

static bool list_one(struct vctx *v, const struct ynode *n, struct list_item *it)
{
	*it = (struct list_item){ 0 };
	if (n->kind == YN_MAP)
		return list_map(v, n, it);
	if (!want_item(v, n, "lists"))
		return false;
	it->o.url = looks_like_url(n->s);
	it->sv = (struct strval){ it->o.url ? check_url(v, n, "list URL", false)
					    : check_list(v, n), n->loc };
	return it->sv.s != NULL;
}

/* lists: [FILE | URL | {url, interval, insecure_http}], sorted, each once
 * (as str_list). */
static void partner_lists(struct vctx *v, struct partner *pt, const struct ynode *n)
{
	VEC(struct list_item) vec = { 0 };
	size_t keep = 0;

	if (!want(v, n, YN_SEQ, "lists"))
		return;
	for (size_t i = 0; i < n->n; i++) {
		struct list_item it;

		if (list_one(v, n->v[i], &it))
			VEC_PUSH(&vec, it);
	}
	if (vec.n)
		qsort(vec.v, vec.n, sizeof(*vec.v), strval_cmp);
	pt->lists = xcalloc(vec.n + 1, sizeof(*pt->lists));
	pt->list_opts = xcalloc(vec.n + 1, sizeof(*pt->list_opts));
	for (size_t i = 0; i < vec.n; i++) {
		const struct strval *prev = keep ? &pt->lists[keep - 1] : NULL;

		if (prev && !strcmp(prev->s, vec.v[i].sv.s)) {
			perr_add(v->e, &vec.v[i].sv.loc, "'%s' listed twice (first at %u:%u)",
				 vec.v[i].sv.s, prev->loc.line, prev->loc.col);
			free(vec.v[i].sv.s);
			continue;
		}
		pt->lists[keep] = vec.v[i].sv;
		pt->list_opts[keep++] = vec.v[i].o;
	}
	pt->nlists = keep;
	free(vec.v);
}

/* max_size: N (MiB), NMiB/NM or NKiB/NK; 1 KiB to 256 MiB. */
static void fetch_max_size(struct vctx *v, const struct ynode *n)
{
	static const struct { const char *suffix; uint64_t mul; } units[] = {
		{ "MiB", 1u << 20 }, { "M", 1u << 20 }, { "KiB", 1u << 10 }, { "K", 1u << 10 },
	};
	size_t len, k;
	uint64_t mul = 1u << 20;
	unsigned long x = 0;
	char *num;
	bool ok;

	if (!want(v, n, YN_SCALAR, "max_size"))
		return;
	len = strlen(n->s);
	for (k = 0; k < ARRAY_SIZE(units); k++) {
		size_t sl = strlen(units[k].suffix);

		if (len > sl && !strcmp(n->s + len - sl, units[k].suffix)) {
			mul = units[k].mul;
			len -= sl;
			break;
		}
	}
	num = xstrndup(n->s, len);
	ok = parse_uint(num, FETCH_MAX_SIZE_MAX >> 10, &x) && x * mul >= 1024 &&
	     x * mul <= FETCH_MAX_SIZE_MAX;
	free(num);
	if (!ok) {
		ERR(v, n, "bad max_size '%s': expected a size from 1KiB to 256MiB (a number"
		    " alone is MiB: 16, 16MiB, 512KiB)", n->s);
		return;
	}
	v->p->fetch.max_size = (uint64_t)x * mul;
}

/* fetch: {ca_file, timeout, max_size, interval}: how list URLs and feeds
 * are fetched, and how often the daemon does by default. */
static void do_fetch(struct vctx *v, const struct ynode *n)
{
	static const char *const keys[] = { "ca_file", "timeout", "max_size", "interval" };
	struct fetchcfg *f = &v->p->fetch;
	const struct ynode *it;
	char *path;

	if (!want(v, n, YN_MAP, "fetch"))
		return;
	f->written = true;
	check_keys(v, n, keys, ARRAY_SIZE(keys), " in 'fetch'");
	if ((it = ymap_get(n, "ca_file")) && want(v, it, YN_SCALAR, "ca_file") &&
	    (path = check_file(v, it, "ca_file"))) {
		free(f->ca_file.s);
		f->ca_file = (struct strval){ path, it->loc };
	}
	if ((it = ymap_get(n, "timeout")) && duration(v, it, "timeout", &f->timeout) &&
	    f->timeout > 600)
		ERR(v, it, "bad timeout '%s': at most 600s per fetch", it->s);
	if ((it = ymap_get(n, "max_size")))
		fetch_max_size(v, it);
	if ((it = ymap_get(n, "interval")))
		duration(v, it, "interval", &f->interval);
}

/* ---- feeds: provider feeds of a partner -------------------------------- */

static const char *const m365_areas[] = { "Common", "Exchange", "SharePoint", "Skype" };
static const char *const m365_cats[] = { "Optimize", "Allow", "Default" };

/* Why an AWS name (service, region, border group) is not one, or NULL:
 * they are open-ended, so only their alphabet is checked. */
static const char *aws_name_bad(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 64)
		return "expected 1 to 64 characters";
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return "expected letters, digits, '_', '.' and '-' only";
	return NULL;
}

/* pick() over any number of names: "expected A, B, C or D". */
static int feed_pick(struct vctx *v, const struct ynode *n, const char *what,
		     const char *const *names, size_t count)
{
	struct strbuf sb = { 0 };
	const char *near;

	for (size_t i = 0; i < count; i++)
		if (!strcmp(n->s, names[i]))
			return (int)i;
	if ((near = suggest(n->s, names, count))) {
		ERR(v, n, "unknown %s '%s'; did you mean '%s'?", what, n->s, near);
		return -1;
	}
	for (size_t i = 0; i < count; i++)
		sb_addf(&sb, "%s%s", i ? (i + 1 == count ? " or " : ", ") : "", names[i]);
	ERR(v, n, "unknown %s '%s'; expected %s", what, n->s, sb_str(&sb));
	sb_free(&sb);
	return -1;
}

/* One value of filter k, normalised (malloc'd), or NULL after an error. */
static char *feed_value(struct vctx *v, enum feed_key k, const struct ynode *n)
{
	const char *why = NULL;
	unsigned long id;
	char buf[24];
	int i;

	switch (k) {
	case FK_SERVICE_AREA:
		i = feed_pick(v, n, "service_area", m365_areas, ARRAY_SIZE(m365_areas));
		return i < 0 ? NULL : xstrdup(m365_areas[i]);
	case FK_CATEGORY:
		i = feed_pick(v, n, "category", m365_cats, ARRAY_SIZE(m365_cats));
		return i < 0 ? NULL : xstrdup(m365_cats[i]);
	case FK_IDS:
		if (!parse_uint(n->s, UINT32_MAX, &id) || !id) {
			ERR(v, n, "bad ids '%s': expected endpoint set numbers (1, 11, 12)",
			    n->s);
			return NULL;
		}
		snprintf(buf, sizeof(buf), "%lu", id);
		return xstrdup(buf);
	default:
		if ((why = aws_name_bad(n->s))) {
			ERR(v, n, "bad %s '%s': %s", feed_key_name(k), n->s, why);
			return NULL;
		}
		return xstrdup(n->s);
	}
}

/* Set numbers in numeric order (11 before 100), then as strval_cmp. */
static int id_cmp(const void *x, const void *y)
{
	const struct strval *a = x, *b = y;
	size_t la = strlen(a->s), lb = strlen(b->s);

	if (la != lb)
		return la < lb ? -1 : 1;
	return strval_cmp(x, y);
}

/* required: true | false; the other filters: a value or a list of them
 * (any matches), sorted, each once. */
static void feed_filter(struct vctx *v, struct feed *f, enum feed_key k,
			const struct ynode *n)
{
	struct feed_filter *ff = &f->filter[k];
	const struct ynode *const *items;
	size_t count;
	bool b;

	ff->loc = n->loc;
	if (k == FK_REQUIRED) {
		if (get_bool(v, n, "required", &b)) {
			ff->v = xcalloc(1, sizeof(*ff->v));
			ff->v[ff->n++] = (struct strval){ xstrdup(b ? "true" : "false"), n->loc };
		}
		return;
	}
	if (!list_items(v, &n, feed_key_name(k), true, &items, &count))
		return;
	ff->v = xcalloc(count + 1, sizeof(*ff->v));
	for (size_t i = 0; i < count; i++) {
		char *s;

		if ((items == &n || want_item(v, items[i], feed_key_name(k))) &&
		    (s = feed_value(v, k, items[i])))
			ff->v[ff->n++] = (struct strval){ s, items[i]->loc };
	}
	qsort(ff->v, ff->n, sizeof(*ff->v), k == FK_IDS ? id_cmp : strval_cmp);
	for (size_t i = 1; i < ff->n; i++) {
		if (strcmp(ff->v[i - 1].s, ff->v[i].s))
			continue;
		perr_add(v->e, &ff->v[i].loc, "'%s' listed twice in '%s' (first at %u:%u)",
			 ff->v[i].s, feed_key_name(k), ff->v[i - 1].loc.line,
			 ff->v[i - 1].loc.col);
	}
}

/* ".../endpoints/INSTANCE[?query]" -> ".../version/INSTANCE[?query]", the
 * service's own version check; NULL for a URL not of that shape. */
static char *m365_version_url(const char *url)
{
	const char *q = url + strcspn(url, "?#"), *e = NULL, *x;
	struct strbuf sb = { 0 };

	for (x = strstr(url, "/endpoints/"); x && x < q; x = strstr(x + 1, "/endpoints/"))
		e = x;
	if (!e || !e[11] || e + 11 == q || memchr(e + 11, '/', (size_t)(q - e - 11)))
		return NULL;
	sb_addf(&sb, "%.*s/version/%s", (int)(e - url), url, e + 11);
	return sb.s;
}

static void feed_version(struct vctx *v, struct feed *f, const struct ynode *m)
{
	const struct ynode *n = ymap_get(m, "version_url");

	if (n && f->format != FEED_M365) {
		ERR(v, n, "'version_url' applies to format 'm365' only");
		return;
	}
	if (n && want(v, n, YN_SCALAR, "version_url")) {
		f->version_url = (struct strval){ check_url(v, n, "feed version URL",
							    f->insecure_http), n->loc };
		f->version_url_given = f->version_url.s != NULL;
	} else if (!n && f->format == FEED_M365 && f->url.s) {
		f->version_url = (struct strval){ m365_version_url(f->url.s), f->url.loc };
	}
}

/* The filter keys of format f, for messages: "service_area, category,
 * required, ids". */
static const char *feed_keys_of(enum feed_format fmt, struct strbuf *sb)
{
	sb_reset(sb);
	for (unsigned k = 0; k < FEED_KEYS; k++)
		if (feed_format_has(fmt, (enum feed_key)k))
			sb_addf(sb, "%s%s", sb->len ? ", " : "", feed_key_name(k));
	if (!sb->len)
		sb_addf(sb, "none");
	return sb_str(sb);
}

static void feed_filters(struct vctx *v, struct feed *f, const struct ynode *m)
{
	struct strbuf sb = { 0 };

	for (size_t i = 0; i < ymap_len(m); i++) {
		const struct ynode *key = ymap_key(m, i);
		unsigned k;

		for (k = 0; k < FEED_KEYS && strcmp(key->s, feed_key_name(k)); k++)
			;
		if (k == FEED_KEYS)
			continue;
		if (feed_format_has(f->format, (enum feed_key)k))
			feed_filter(v, f, (enum feed_key)k, ymap_val(m, i));
		else
			ERR(v, key, "filter '%s' does not apply to format '%s' (its "
			    "filters: %s)", key->s, feed_format_name(f->format),
			    feed_keys_of(f->format, &sb));
	}
	sb_free(&sb);
}

static bool feed_format(struct vctx *v, struct feed *f, const struct ynode *m)
{
	const char *names[FEED_FORMATS];
	const struct ynode *n = ymap_get(m, "format");
	int i;

	for (unsigned k = 0; k < FEED_FORMATS; k++)
		names[k] = feed_format_name((enum feed_format)k);
	if (!n) {
		ERR(v, m, "a 'feeds' entry needs 'format' (m365, aws or plain)");
		return false;
	}
	if (!want(v, n, YN_SCALAR, "format") ||
	    (i = feed_pick(v, n, "feed format", names, FEED_FORMATS)) < 0)
		return false;
	f->format = (enum feed_format)i;
	return true;
}

/* {url, format, insecure_http, interval, version_url, FILTERS...} */
static void feed_one(struct vctx *v, const struct ynode *m, struct feed *f)
{
	/* the filters: every format's (feed_key_name); feed_filters() says
	 * which belong to this one */
	static const char *const keys[] = {
		"url", "format", "insecure_http", "interval", "version_url",
		"service_area", "category", "required", "ids", "service", "region",
		"network_border_group",
	};
	const struct ynode *n;

	f->loc = m->loc;
	check_keys(v, m, keys, ARRAY_SIZE(keys), " in a 'feeds' entry");
	if ((n = ymap_get(m, "insecure_http")))
		get_bool(v, n, "insecure_http", &f->insecure_http);
	if ((n = ymap_get(m, "interval")))
		duration(v, n, "interval", &f->interval);
	if (!(n = ymap_get(m, "url")))
		ERR(v, m, "a 'feeds' entry needs 'url'");
	else if (want(v, n, YN_SCALAR, "url"))
		f->url = (struct strval){ check_url(v, n, "feed URL", f->insecure_http),
					  n->loc };
	if (!feed_format(v, f, m))
		return;
	feed_filters(v, f, m);
	feed_version(v, f, m);
}

static bool same_filter(const struct feed_filter *a, const struct feed_filter *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].s, b->v[i].s))
			return false;
	return true;
}

/* The same URL, format and filters as an earlier entry: its source would
 * be that one again (a copy and paste, not an intent). */
static void feed_twice(struct vctx *v, const struct partner *pt, const struct feed *f)
{
	for (const struct feed *e = pt->feeds; e < f; e++) {
		bool same = e->url.s && f->url.s && !strcmp(e->url.s, f->url.s) &&
			    e->format == f->format;

		for (unsigned k = 0; same && k < FEED_KEYS; k++)
			same = same_filter(&e->filter[k], &f->filter[k]);
		if (same) {
			perr_add(v->e, &f->loc, "feed '%s' listed twice (first at %u:%u)",
				 f->url.s, e->loc.line, e->loc.col);
			return;
		}
	}
}

/* feeds: [{url, format, ...}], file order. */
static void partner_feeds(struct vctx *v, struct partner *pt, const struct ynode *n)
{
	struct strbuf sb = { 0 };
	size_t errs;

	if (!want(v, n, YN_SEQ, "feeds"))
		return;
	pt->feeds = xcalloc(n->n + 1, sizeof(*pt->feeds));
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *m = n->v[i];

		if (m->kind != YN_MAP) {
			ERR(v, m, "entries of 'feeds' must be mappings ({url: ..., format: "
			    "...}), not %s", what_is(m, &sb));
			continue;
		}
		errs = v->e->n;
		feed_one(v, m, &pt->feeds[pt->nfeeds]);
		feed_twice(v, pt, &pt->feeds[pt->nfeeds]);
		/* only a good entry is kept: a partial policy (check) reads it */
		if (v->e->n == errs)
			pt->nfeeds++;
		else
			feed_clear(&pt->feeds[pt->nfeeds]);
	}
	sb_free(&sb);
}

static void log_rate(struct vctx *v, const struct ynode *n)
{
	static const char *const units[] = { "second", "minute", "hour", "day" };
	const char *slash;
	char *num;
	unsigned long x;
	bool ok;
	size_t u;

	if (!want(v, n, YN_SCALAR, "rate"))
		return;
	slash = strchr(n->s, '/');
	for (u = 0; slash && u < ARRAY_SIZE(units) && strcmp(slash + 1, units[u]); u++)
		;
	num = slash ? xstrndup(n->s, (size_t)(slash - n->s)) : xstrdup("");
	ok = slash && u < ARRAY_SIZE(units) && parse_uint(num, 1000000, &x) && x > 0;
	free(num);
	if (!ok) {
		ERR(v, n, "bad rate '%s': expected N/second, N/minute, N/hour or N/day "
		    "with N from 1 to 1000000", n->s);
		return;
	}
	v->p->log.rate = (unsigned)x;
	v->p->log.unit = (enum log_unit)u;
}

static void log_prefix(struct vctx *v, const struct ynode *n)
{
	if (!want(v, n, YN_SCALAR, "prefix"))
		return;
	if (strlen(n->s) > 127) {
		ERR(v, n, "log prefix '%s' is longer than 127 bytes", n->s);
		return;
	}
	for (const char *c = n->s; *c; c++) {
		if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\') {
			ERR(v, n, "log prefix '%s': use printable ASCII without '\"' "
			    "or '\\'", n->s);
			return;
		}
	}
	free(v->p->log.prefix);
	v->p->log.prefix = xstrdup(n->s);
}

static void do_log(struct vctx *v, const struct ynode *n)
{
	static const char *const keys[] = { "enabled", "rate", "prefix" };
	const struct ynode *it;

	if (!want(v, n, YN_MAP, "log"))
		return;
	check_keys(v, n, keys, ARRAY_SIZE(keys), " in 'log'");
	if ((it = ymap_get(n, "enabled")))
		get_bool(v, it, "enabled", &v->p->log.enabled);
	if ((it = ymap_get(n, "rate")))
		log_rate(v, it);
	if ((it = ymap_get(n, "prefix")))
		log_prefix(v, it);
}

/* ---- services ---------------------------------------------------------- */

static void builtins_copy(struct policy *p)
{
	size_t n;
	const struct service *b = policy_builtin_services(&n);

	p->services = xcalloc(n, sizeof(*p->services));
	for (size_t i = 0; i < n; i++) {
		struct service *s = &p->services[i];

		*s = b[i];
		s->name = xstrdup(b[i].name);
		s->description = b[i].description ? xstrdup(b[i].description) : NULL;
		s->ports = xcalloc(b[i].nports, sizeof(*s->ports));
		memcpy(s->ports, b[i].ports, b[i].nports * sizeof(*s->ports));
		s->restricts = xcalloc(b[i].nrestricts + 1, sizeof(*s->restricts));
		if (b[i].nrestricts)
			memcpy(s->restricts, b[i].restricts,
			       b[i].nrestricts * sizeof(*s->restricts));
	}
	p->nservices = n;
}

static ssize_t service_find(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->nservices; i++)
		if (!strcmp(p->services[i].name, name))
			return (ssize_t)i;
	return -1;
}

/* Ports the edge needs to reach anybody on (DNS, NTP, HTTP, HTTPS and
 * QUIC: CRL, OCSP, updates; STUN/TURN: a media relay's candidates): a
 * service restricts them only when it says `outbound: restrict`. */
static bool shared_port(const struct portrange *r)
{
	static const struct portrange shared[] = {
		{ PROTO_TCP, 53, 53 }, { PROTO_UDP, 53, 53 }, { PROTO_UDP, 123, 123 },
		{ PROTO_TCP, 80, 80 }, { PROTO_TCP, 443, 443 }, { PROTO_UDP, 443, 443 },
		{ PROTO_TCP, 3478, 3478 }, { PROTO_UDP, 3478, 3478 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(shared); i++)
		if (!portrange_cmp(r, &shared[i]))
			return true;
	return false;
}

/* A service without `outbound:` restricts the ports written alone
 * (signalling: SIP, XMPP, SMTP relays...) but not the shared ones, nor
 * those written as ranges, which are media and relay ranges the edge
 * uses with anybody.  Decided on the ports as written, before
 * tcp/5060 and tcp/5061 are joined into a range. */
static void restricts_default(const struct ynode *ports, struct service *s)
{
	s->restricts = xcalloc(ports->n + 1, sizeof(*s->restricts));
	s->nrestricts = 0;
	for (size_t i = 0; i < ports->n; i++) {
		const struct ynode *it = ports->v[i];
		struct port_ent pe = { .loc = it->loc };

		if (it->kind == YN_SCALAR && !it->null &&
		    portrange_parse(it->s, &pe.r) == PORT_OK && pe.r.lo == pe.r.hi &&
		    !shared_port(&pe.r))
			s->restricts[s->nrestricts++] = pe;
	}
	ports_merge(s->restricts, &s->nrestricts);
}

static bool port_inside(const struct portrange *r, const struct port_ent *pv, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (pv[i].r.proto == r->proto && pv[i].r.lo <= r->lo && r->hi <= pv[i].r.hi)
			return true;
	return false;
}

/* outbound: restrict | open | [ports of the service] */
static void service_outbound(struct vctx *v, const struct ynode *key,
			     const struct ynode *n, struct service *s)
{
	char buf[PORTRANGE_STRLEN];
	struct strbuf sb = { 0 };

	if (n->kind == YN_SEQ) {
		port_list(v, n, "outbound", false, &s->restricts, &s->nrestricts);
		for (size_t i = 0; i < s->nrestricts; i++)
			if (!port_inside(&s->restricts[i].r, s->ports, s->nports))
				ERR(v, &s->restricts[i], "outbound port '%s' is not a port of "
				    "service '%s'", portrange_fmt(&s->restricts[i].r, buf,
								  sizeof(buf)), key->s);
		return;
	}
	if (n->kind == YN_SCALAR && !n->null && !strcmp(n->s, "restrict")) {
		s->restricts = xcalloc(s->nports + 1, sizeof(*s->restricts));
		if (s->nports)
			memcpy(s->restricts, s->ports, s->nports * sizeof(*s->ports));
		s->nrestricts = s->nports;
		return;
	}
	if (n->kind == YN_SCALAR && !n->null && !strcmp(n->s, "open"))
		return;
	ERR(v, n, "'outbound' in service '%s' must be restrict, open or a list of "
	    "its ports, not %s", key->s, what_is(n, &sb));
	sb_free(&sb);
}

/* NAME: [ports]  or  NAME: {description: ..., ports: [...], outbound: ...} */
static void service_body(struct vctx *v, const struct ynode *key,
			 const struct ynode *val, struct service *s)
{
	static const char *const keys[] = { "description", "ports", "outbound" };
	const struct ynode *ports = val, *it;
	struct strbuf where = { 0 };

	if (val->kind == YN_MAP) {
		sb_addf(&where, " in service '%s'", key->s);
		check_keys(v, val, keys, ARRAY_SIZE(keys), sb_str(&where));
		sb_free(&where);
		if ((it = ymap_get(val, "description")))
			s->description = get_str(v, it, "description");
		ports = ymap_get(val, "ports");
		if (!ports) {
			ERR(v, key, "service '%s' has no 'ports'", key->s);
			return;
		}
	} else if (val->kind != YN_SEQ) {
		ERR(v, val, "service '%s' must be a list of ports or a mapping with "
		    "'ports', not %s", key->s, what_is(val, &where));
		sb_free(&where);
		return;
	}
	port_list(v, ports, "ports", false, &s->ports, &s->nports);
	if (ports->kind == YN_SEQ && ports->n == 0)
		ERR(v, ports, "service '%s' has no ports", key->s);
	it = val->kind == YN_MAP ? ymap_get(val, "outbound") : NULL;
	if (it)
		service_outbound(v, key, it, s);
	else if (ports->kind == YN_SEQ)
		restricts_default(ports, s);
}

static void do_services(struct vctx *v, const struct ynode *n)
{
	struct policy *p = v->p;

	if (!want(v, n, YN_MAP, "services"))
		return;
	for (size_t i = 0; i < ymap_len(n); i++) {
		const struct ynode *key = ymap_key(n, i);
		struct service s = { .loc = key->loc };
		ssize_t at;

		/* A bad name is one problem: the body is still checked, and
		 * the partners naming the service find it. */
		name_ok(v, key, "service");
		s.name = xstrdup(key->s);
		service_body(v, key, ymap_val(n, i), &s);
		at = service_find(p, s.name);
		if (at < 0) {
			p->services = xreallocarray(p->services, p->nservices + 1,
						    sizeof(*p->services));
			at = (ssize_t)p->nservices++;
		} else {
			free(p->services[at].name);
			free(p->services[at].description);
			free(p->services[at].ports);
			free(p->services[at].restricts);
		}
		p->services[at] = s;
	}
}

/* ---- partners ---------------------------------------------------------- */

static int ref_cmp_name(const struct policy *p, const struct service_ref *a,
			const struct service_ref *b)
{
	return strcmp(p->services[a->idx].name, p->services[b->idx].name);
}

static void ref_add(struct vctx *v, struct partner *pt, const struct ynode *n)
{
	const char **names;
	const char *near;
	ssize_t at = service_find(v->p, n->s);

	if (at >= 0) {
		for (size_t i = 0; i < pt->nservices; i++) {
			if (pt->services[i].idx != (size_t)at)
				continue;
			ERR(v, n, "service '%s' listed twice (first at %u:%u)", n->s,
			    pt->services[i].loc.line, pt->services[i].loc.col);
			return;
		}
		pt->services = xreallocarray(pt->services, pt->nservices + 1,
					     sizeof(*pt->services));
		pt->services[pt->nservices++] = (struct service_ref){ (size_t)at, n->loc };
		return;
	}
	names = xcalloc(v->p->nservices + 1, sizeof(*names));
	for (size_t i = 0; i < v->p->nservices; i++)
		names[i] = v->p->services[i].name;
	near = suggest(n->s, names, v->p->nservices);
	if (near)
		ERR(v, n, "unknown service '%s'; did you mean '%s'?", n->s, near);
	else
		ERR(v, n, "unknown service '%s'", n->s);
	free(names);
}

static void partner_services(struct vctx *v, struct partner *pt, const struct ynode *n)
{
	if (!want(v, n, YN_SEQ, "services"))
		return;
	if (n->n == 0)
		ERR(v, n, "partner '%s' has no services", pt->name);
	for (size_t i = 0; i < n->n; i++)
		if (want_item(v, n->v[i], "services"))
			ref_add(v, pt, n->v[i]);
	/* Few services per partner: insertion sort keeps it stable. */
	for (size_t i = 1; i < pt->nservices; i++) {
		struct service_ref r = pt->services[i];
		size_t j = i;

		for (; j > 0 && ref_cmp_name(v->p, &pt->services[j - 1], &r) > 0; j--)
			pt->services[j] = pt->services[j - 1];
		pt->services[j] = r;
	}
}

static void partner_direction(struct vctx *v, struct partner *pt, const struct ynode *n)
{
	static const char *const dirs[] = { "inbound", "outbound", "both" };
	int i;

	if (!want(v, n, YN_SCALAR, "direction"))
		return;
	i = pick(v, n, "direction", dirs, ARRAY_SIZE(dirs));
	if (i >= 0)
		pt->direction = (enum direction)(i + 1);
}

/* Counts what the file wrote, valid or not, so that a partner whose only
 * address is bad gets one error, not two. */
static size_t written(const struct ynode *n)
{
	return n ? (n->kind == YN_SEQ ? n->n : 1) : 0;
}

/* dnssec: require | off.  Only with names to resolve: on a partner of
 * addresses and lists alone it would promise what nothing checks. */
static void partner_dnssec(struct vctx *v, struct partner *pt, const struct ynode *n,
			   const struct ynode *m)
{
	static const char *const vals[] = { "require", "off" };
	int i;

	if (!want(v, n, YN_SCALAR, "dnssec"))
		return;
	if ((i = pick(v, n, "dnssec value", vals, ARRAY_SIZE(vals))) < 0)
		return;
	pt->dnssec_require = i == 0;
	pt->dnssec_loc = n->loc;
	if (pt->dnssec_require && !written(ymap_get(m, "hosts")) &&
	    !written(ymap_get(m, "domains")))
		ERR(v, n, "partner '%s' has dnssec 'require' but no hosts or domains:"
		    " DNSSEC validates DNS answers only", pt->name);
}

static void partner_body(struct vctx *v, struct partner *pt, const struct ynode *key,
			 const struct ynode *m)
{
	const struct ynode *it;

	if ((it = ymap_get(m, "description")))
		pt->description = get_str(v, it, "description");
	if ((it = ymap_get(m, "services")))
		partner_services(v, pt, it);
	else
		ERR(v, key, "partner '%s' has no 'services'", pt->name);
	if ((it = ymap_get(m, "direction")))
		partner_direction(v, pt, it);
	if ((it = ymap_get(m, "addresses")))
		addr_list(v, it, "addresses", false, &pt->addresses, &pt->naddresses);
	if ((it = ymap_get(m, "hosts")))
		str_list(v, it, "hosts", check_host, &pt->hosts, &pt->nhosts);
	if ((it = ymap_get(m, "lists")))
		partner_lists(v, pt, it);
	if ((it = ymap_get(m, "domains")))
		str_list(v, it, "domains", check_domain, &pt->domains, &pt->ndomains);
	if ((it = ymap_get(m, "srv_targets"))) {
		str_list(v, it, "srv_targets", check_srv_target, &pt->srv_targets,
			 &pt->nsrv_targets);
		if (!written(ymap_get(m, "domains")))
			ERR(v, it, "partner '%s' has srv_targets but no domains: SRV"
			    " targets come only from its domains' SRV records", pt->name);
	}
	if ((it = ymap_get(m, "dnssec")))
		partner_dnssec(v, pt, it, m);
	if ((it = ymap_get(m, "feeds")))
		partner_feeds(v, pt, it);
	if (!written(ymap_get(m, "addresses")) && !written(ymap_get(m, "hosts")) &&
	    !written(ymap_get(m, "lists")) && !written(ymap_get(m, "domains")) &&
	    !written(ymap_get(m, "feeds")))
		ERR(v, key, "partner '%s' has no addresses, hosts, lists, feeds or domains",
		    pt->name);
}

static void partner_one(struct vctx *v, const struct ynode *key, const struct ynode *m,
			struct partner *pt)
{
	static const char *const keys[] = {
		"description", "services", "direction", "addresses", "hosts", "lists",
		"domains", "srv_targets", "dnssec", "feeds",
	};
	struct strbuf where = { 0 };

	pt->name = xstrdup(key->s);
	pt->loc = key->loc;
	pt->direction = DIR_BOTH;
	if (m->kind != YN_MAP) {
		ERR(v, m, "partner '%s' must be a mapping (services, addresses, ...), "
		    "not %s", key->s, what_is(m, &where));
		sb_free(&where);
		return;
	}
	sb_addf(&where, " in partner '%s'", key->s);
	check_keys(v, m, keys, ARRAY_SIZE(keys), sb_str(&where));
	sb_free(&where);
	partner_body(v, pt, key, m);
}

static int partner_cmp(const void *x, const void *y)
{
	return strcmp(((const struct partner *)x)->name, ((const struct partner *)y)->name);
}

static void do_partners(struct vctx *v, const struct ynode *n)
{
	struct policy *p = v->p;

	if (!want(v, n, YN_MAP, "partners"))
		return;
	p->partners = xcalloc(ymap_len(n) + 1, sizeof(*p->partners));
	for (size_t i = 0; i < ymap_len(n); i++) {
		const struct ynode *key = ymap_key(n, i);

		/* Checked on under the name as written: a bad name must not
		 * hide the partner's other problems. */
		name_ok(v, key, "partner");
		partner_one(v, key, ymap_val(n, i), &p->partners[p->npartners++]);
	}
	qsort(p->partners, p->npartners, sizeof(*p->partners), partner_cmp);
}

/* ---- management -------------------------------------------------------- */

static void mgmt_one(struct vctx *v, const struct ynode *n, struct mgmt *m)
{
	static const char *const keys[] = { "from", "to", "description" };
	const struct ynode *it;

	struct strbuf sb = { 0 };

	m->loc = n->loc;
	if (n->kind != YN_MAP) {
		ERR(v, n, "a management entry is a mapping (from, to), not %s",
		    what_is(n, &sb));
		sb_free(&sb);
		return;
	}
	check_keys(v, n, keys, ARRAY_SIZE(keys), " in a management entry");
	if ((it = ymap_get(n, "description")))
		m->description = get_str(v, it, "description");
	if ((it = ymap_get(n, "from")))
		addr_list(v, it, "from", true, &m->from, &m->nfrom);
	else
		ERR(v, n, "management entry has no 'from' (the networks to admit)");
	if ((it = ymap_get(n, "to")))
		port_list(v, it, "to", true, &m->to, &m->nto);
	else
		ERR(v, n, "management entry has no 'to' (the ports to open, e.g. tcp/22)");
	if (it && it->kind == YN_SEQ && it->n == 0)
		ERR(v, it, "management entry has no ports in 'to'");
	it = ymap_get(n, "from");
	if (it && it->kind == YN_SEQ && it->n == 0)
		ERR(v, it, "management entry has no addresses in 'from'");
}

struct mgmt_ent {
	struct addr_ent a;
	size_t entry;
};

static int mgmt_ent_cmp(const void *x, const void *y)
{
	return addr_ent_cmp(&((const struct mgmt_ent *)x)->a, &((const struct mgmt_ent *)y)->a);
}

/* The management sets admit every entry's `from` at once: runs that
 * only the entries together make (each entry's own were checked). */
static void mgmt_runs(struct vctx *v, const struct policy *p)
{
	VEC(struct mgmt_ent) all = { 0 };
	struct addr_ent *s;
	struct prefix *pv;
	struct prefix_run r;
	size_t pos = 0;

	for (size_t i = 0; i < p->nmanagement; i++)
		for (size_t j = 0; j < p->management[i].nfrom; j++)
			VEC_PUSH(&all, ((struct mgmt_ent){ p->management[i].from[j], i }));
	if (!all.n)
		return;
	qsort(all.v, all.n, sizeof(*all.v), mgmt_ent_cmp);
	s = xcalloc(all.n, sizeof(*s));
	pv = xcalloc(all.n, sizeof(*pv));
	for (size_t i = 0; i < all.n; i++) {
		s[i] = all.v[i].a;
		pv[i] = s[i].p;
	}
	while (prefix_run_next(pv, all.n, &pos, &r)) {
		bool several = false;

		for (size_t i = r.lo + 1; i < r.hi; i++)
			several |= all.v[i].entry != all.v[r.lo].entry;
		if (several && prefix_run_wider(&r, r.family == 4 ? v->min4 : v->min6))
			run_err(v, s, pv, &r);
	}
	free(pv);
	free(s);
	free(all.v);
}

static void do_management(struct vctx *v, const struct ynode *n)
{
	struct policy *p = v->p;

	if (!want(v, n, YN_SEQ, "management"))
		return;
	p->management = xcalloc(n->n + 1, sizeof(*p->management));
	for (size_t i = 0; i < n->n; i++)
		mgmt_one(v, n->v[i], &p->management[p->nmanagement++]);
	mgmt_runs(v, p);
}

/* ---- outbound allowances ------------------------------------------------ */

static void allow_one(struct vctx *v, const struct ynode *n, struct outallow *a)
{
	static const char *const keys[] = { "to", "ports", "description" };
	const struct ynode *it;
	struct strbuf sb = { 0 };

	a->loc = n->loc;
	if (n->kind != YN_MAP) {
		ERR(v, n, "an outbound allowance is a mapping (to, ports), not %s",
		    what_is(n, &sb));
		sb_free(&sb);
		return;
	}
	check_keys(v, n, keys, ARRAY_SIZE(keys), " in an outbound allowance");
	if ((it = ymap_get(n, "description")))
		a->description = get_str(v, it, "description");
	if ((it = ymap_get(n, "to")))
		addr_list(v, it, "to", true, &a->to, &a->nto);
	else
		ERR(v, n, "outbound allowance has no 'to' (the destinations the edge "
		    "may always call)");
	if (it && it->kind == YN_SEQ && it->n == 0)
		ERR(v, it, "outbound allowance has no addresses in 'to'");
	if ((it = ymap_get(n, "ports")))
		port_list(v, it, "ports", true, &a->ports, &a->nports);
	else
		ERR(v, n, "outbound allowance has no 'ports' (e.g. tcp/5061)");
	if (it && it->kind == YN_SEQ && it->n == 0)
		ERR(v, it, "outbound allowance has no ports in 'ports'");
}

/* outbound: {allow: [{to: [...], ports: [...]}, ...]} */
static void do_outbound(struct vctx *v, const struct ynode *n)
{
	static const char *const keys[] = { "allow" };
	struct policy *p = v->p;
	const struct ynode *it;

	if (!want(v, n, YN_MAP, "outbound"))
		return;
	check_keys(v, n, keys, ARRAY_SIZE(keys), " in 'outbound'");
	if (!(it = ymap_get(n, "allow")) || !want(v, it, YN_SEQ, "allow"))
		return;
	p->outallow = xcalloc(it->n + 1, sizeof(*p->outallow));
	for (size_t i = 0; i < it->n; i++)
		allow_one(v, it->v[i], &p->outallow[p->noutallow++]);
}

/* ---- ha pair ------------------------------------------------------------ */

/* A peer is one node: a single address.  A network would admit VRRP and
 * state sync from every host in it, which is what `ha` is there to stop. */
static bool ha_peer(struct vctx *v, const struct ynode *n, struct addr_ent *out)
{
	enum prefix_err pe = prefix_parse(n->s, &out->p);
	unsigned host = out->p.family == 6 ? 128 : 32;

	out->loc = n->loc;
	if (pe == PREFIX_HOST_BITS || (pe == PREFIX_OK && out->p.len && out->p.len < host)) {
		ERR(v, n, "bad ha peer '%s': a peer is one node's address, not a network",
		    n->s);
		return false;
	}
	if (pe != PREFIX_OK) {
		ERR(v, n, "bad ha peer '%s': %s", n->s, prefix_strerror(pe));
		return false;
	}
	if (out->p.len == 0) {
		ERR(v, n, "bad ha peer '%s': the whole Internet, not one node's address",
		    n->s);
		return false;
	}
	/* VRRP's group and the like are where adverts go (the generator
	 * adds VRRP's), never a node that sends them. */
	if (out->p.a[0] >= (out->p.family == 6 ? 0xff : 224)) {
		ERR(v, n, "bad ha peer '%s': a multicast or reserved address, not one"
		    " node's", n->s);
		return false;
	}
	return true;
}

static void ha_peers(struct vctx *v, const struct ynode *n)
{
	struct hacfg *ha = &v->p->ha;
	size_t keep = 0;

	if (!want(v, n, YN_SEQ, "peers"))
		return;
	if (n->n == 0)
		ERR(v, n, "ha has no peers (the addresses of both nodes)");
	ha->peers = xcalloc(n->n + 1, sizeof(*ha->peers));
	for (size_t i = 0; i < n->n; i++)
		if (want_item(v, n->v[i], "peers") && ha_peer(v, n->v[i], &ha->peers[ha->npeers]))
			ha->npeers++;
	if (ha->npeers)
		qsort(ha->peers, ha->npeers, sizeof(*ha->peers), addr_ent_cmp);
	for (size_t i = 0; i < ha->npeers; i++) {
		const struct addr_ent *a = &ha->peers[i], *b = keep ? &ha->peers[keep - 1] : NULL;
		char buf[PREFIX_STRLEN];

		if (b && !prefix_cmp(&a->p, &b->p)) {
			perr_add(v->e, &a->loc, "ha peer '%s' listed twice (first at %u:%u)",
				 prefix_fmt(&a->p, buf, sizeof(buf)), b->loc.line, b->loc.col);
			continue;
		}
		ha->peers[keep++] = *a;
	}
	ha->npeers = keep;
}

/* conntrackd: udp/PORT, or true for conntrackd's default port. */
static bool ha_conntrackd(struct vctx *v, const struct ynode *n)
{
	struct portrange r;
	bool on;

	if (!want(v, n, YN_SCALAR, "conntrackd"))
		return false;
	if (!strcmp(n->s, "true") || !strcmp(n->s, "false") || !strcmp(n->s, "yes") ||
	    !strcmp(n->s, "no")) {
		get_bool(v, n, "conntrackd", &on);
		v->p->ha.conntrackd = on ? HA_CONNTRACKD_PORT : 0;
		return true;
	}
	if (portrange_parse(n->s, &r) != PORT_OK || r.proto != PROTO_UDP || r.lo != r.hi) {
		ERR(v, n, "bad conntrackd '%s': expected udp/PORT (conntrackd's UDP "
		    "Port, one port) or true for udp/%d", n->s, HA_CONNTRACKD_PORT);
		return false;
	}
	v->p->ha.conntrackd = r.lo;
	return true;
}

static bool ports_hold(const struct port_ent *pv, size_t n, uint16_t port)
{
	for (size_t i = 0; i < n; i++)
		if (pv[i].r.proto == PROTO_UDP && pv[i].r.lo <= port && port <= pv[i].r.hi)
			return true;
	return false;
}

/* conntrackd's port is the pair's: ha_in drops it from anybody but the
 * peers, before any partner or management rule could admit it. */
static void ha_port_clash(struct vctx *v, const struct ynode *n)
{
	const struct policy *p = v->p;
	uint16_t port = p->ha.conntrackd;
	bool told = false;

	/* The first partner and the first management entry: one each. */
	for (size_t i = 0; !told && i < p->npartners; i++) {
		for (size_t k = 0; !told && k < p->partners[i].nservices; k++) {
			const struct service *sv = &p->services[p->partners[i].services[k].idx];

			if (!ports_hold(sv->ports, sv->nports, port))
				continue;
			ERR(v, n, "conntrackd port 'udp/%u' is a port of service '%s' (partner"
			    " '%s'): the pair's port admits the peers alone", port, sv->name,
			    p->partners[i].name);
			told = true;
		}
	}
	for (size_t i = 0; i < p->nmanagement; i++) {
		if (!ports_hold(p->management[i].to, p->management[i].nto, port))
			continue;
		ERR(v, n, "conntrackd port 'udp/%u' is in a management entry (%u:%u): the"
		    " pair's port admits the peers alone", port, p->management[i].loc.line,
		    p->management[i].loc.col);
		return;
	}
}

/* ha: {peers: [...], interface: NAME, vrrp: BOOL, conntrackd: udp/PORT} */
static void do_ha(struct vctx *v, const struct ynode *n)
{
	static const char *const keys[] = { "peers", "interface", "vrrp", "conntrackd" };
	struct hacfg *ha = &v->p->ha;
	const struct ynode *it;
	bool ok = true;

	if (!want(v, n, YN_MAP, "ha"))
		return;
	ha->present = true;
	ha->loc = n->loc;
	check_keys(v, n, keys, ARRAY_SIZE(keys), " in 'ha'");
	if ((it = ymap_get(n, "peers")))
		ha_peers(v, it);
	else
		ERR(v, n, "ha has no 'peers' (the addresses of both nodes)");
	if ((it = ymap_get(n, "interface")) && want(v, it, YN_SCALAR, "interface") &&
	    (ha->interface.s = check_iface(v, it)))
		ha->interface.loc = it->loc;
	if ((it = ymap_get(n, "vrrp")))
		ok = get_bool(v, it, "vrrp", &ha->vrrp);
	if ((it = ymap_get(n, "conntrackd"))) {
		ok &= ha_conntrackd(v, it);
		if (ha->conntrackd)
			ha_port_clash(v, it);
	}
	if (ok && !ha->vrrp && !ha->conntrackd)
		ERR(v, n, "ha admits nothing: write 'vrrp: true', 'conntrackd: udp/%d' "
		    "or both", HA_CONNTRACKD_PORT);
}

/* ---- the whole file ---------------------------------------------------- */

static const char *const top_keys[] = {
	"version", "table", "mode", "edge", "icmp", "services", "partners",
	"management", "outbound", "guards", "resolve", "fetch", "log", "ha",
};

static void do_sections(struct vctx *v, const struct ynode *root)
{
	static const struct {
		const char *key;
		void (*fn)(struct vctx *v, const struct ynode *n);
	} sections[] = {
		{ "table", do_table }, { "mode", do_mode }, { "edge", do_edge },
		{ "icmp", do_icmp }, { "services", do_services },
		{ "partners", do_partners }, { "management", do_management },
		{ "outbound", do_outbound },
		{ "resolve", do_resolve }, { "fetch", do_fetch }, { "log", do_log },
		{ "ha", do_ha },
	};
	const struct ynode *n;

	for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
		if ((n = ymap_get(root, sections[i].key)))
			sections[i].fn(v, n);
	n = ymap_get(root, "mode");
	if (v->p->mode == MODE_GATEWAY && !v->p->edge.naddresses &&
	    !written(ymap_get(ymap_get(root, "edge"), "addresses")))
		ERR(v, n, "mode 'gateway' needs edge addresses (edge: {addresses: "
		    "[...]}): the hosts the firewall protects");
	n = ymap_get(ymap_get(root, "edge"), "interfaces");
	/* Gateway mode filters every forwarded packet to or from the edge
	 * addresses, whatever the path; an interface list there could only
	 * narrow that, and a wrong name would leave the edge open. */
	if (v->p->mode == MODE_GATEWAY && n)
		ERR(v, n, "edge 'interfaces' applies to mode 'host' only: gateway "
		    "mode filters all forwarded traffic to and from edge addresses, "
		    "on every interface");
}

void policy_validate(struct policy *p, const struct ynode *root, struct perrs *e)
{
	struct vctx v = { .p = p, .e = e };
	struct loc l = { p->file, 0, 0 };
	const struct ynode *g;

	builtins_copy(p);
	if (!root || (root->kind == YN_SCALAR && root->null)) {
		perr_add(e, &l, "empty policy: write at least 'version: 1'");
		return;
	}
	if (root->kind != YN_MAP) {
		ERR(&v, root, "a policy is a mapping of keys (version, partners, ...), "
		    "not %s", root->kind == YN_SEQ ? "a list" : "a string");
		return;
	}
	v.dir = policy_dir(p->file);
	check_keys(&v, root, top_keys, ARRAY_SIZE(top_keys), "");
	do_version(&v, root);
	if ((g = ymap_get(root, "guards")))
		do_guards(&v, g);
	v.min4 = p->guards.min_prefix_v4;
	v.min6 = p->guards.min_prefix_v6;
	do_sections(&v, root);
	free(v.dir);
}

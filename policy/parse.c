/* parse.c - YAML text -> a small tree of scalars, lists and mappings, each
 * with the line:col it started at.  libyaml's event API, so that nothing
 * is ever expanded: anchors and aliases are refused at the first one (a
 * "billion laughs" file fails after reading a few bytes), nesting and size
 * are bounded, and duplicate keys are errors rather than silent
 * overwrites. */
#include "policy/internal.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct pstate {
	const char *file;
	const char *buf;
	struct perrs *e;
	struct ynode *stack[YAML_MAX_DEPTH];
	size_t depth;
	struct ynode *root;
	unsigned docs;
};

/* ---- errors ---------------------------------------------------------- */

void perr_add(struct perrs *e, const struct loc *l, const char *fmt, ...)
{
	struct strbuf sb = { 0 };
	struct perr pe = { .loc = *l, .seq = e->n };
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	/* A value quoted into a message must not break the one-line form. */
	for (char *c = sb.s; c && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	pe.msg = sb.s ? sb.s : xstrdup("");
	VEC_PUSH(e, pe);
}

static int perr_cmp(const void *x, const void *y)
{
	const struct perr *a = x, *b = y;

	if (a->loc.line != b->loc.line)
		return a->loc.line < b->loc.line ? -1 : 1;
	if (a->loc.col != b->loc.col)
		return a->loc.col < b->loc.col ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void perr_flush(struct perrs *e, struct diag *d)
{
	if (e->n)
		qsort(e->v, e->n, sizeof(*e->v), perr_cmp);
	for (size_t i = 0; i < e->n; i++) {
		diag_error(d, &e->v[i].loc, "%s", e->v[i].msg);
		free(e->v[i].msg);
	}
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/* ---- tree ------------------------------------------------------------ */

void ytree_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		ytree_free(n->v[i]);
	free(n->v);
	free(n->s);
	free(n);
}

size_t ymap_len(const struct ynode *map)
{
	return map->n / 2;
}

const struct ynode *ymap_key(const struct ynode *map, size_t i)
{
	return map->v[2 * i];
}

const struct ynode *ymap_val(const struct ynode *map, size_t i)
{
	return map->v[2 * i + 1];
}

const struct ynode *ymap_get(const struct ynode *map, const char *key)
{
	if (!map || map->kind != YN_MAP)
		return NULL;
	for (size_t i = 0; i < ymap_len(map); i++)
		if (!strcmp(ymap_key(map, i)->s, key))
			return ymap_val(map, i);
	return NULL;
}

static void kid_push(struct ynode *parent, struct ynode *kid)
{
	VEC_PUSH(parent, kid);
}

static struct loc mark_loc(const struct pstate *ps, yaml_mark_t m)
{
	struct loc l = { ps->file, (unsigned)m.line + 1, (unsigned)m.column + 1 };

	return l;
}

/* ---- duplicate keys -------------------------------------------------- */

struct keyref {
	const char *s;
	size_t i;
};

static int keyref_cmp(const void *x, const void *y)
{
	const struct keyref *a = x, *b = y;
	int c = strcmp(a->s, b->s);

	if (c)
		return c;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* Sorting keeps this linear-logarithmic: a mapping of 100k partners must
 * not take quadratic time.  The first of equal keys wins; later ones are
 * reported and dropped so the validator sees each key once. */
static void check_dup_keys(struct pstate *ps, struct ynode *map)
{
	size_t nk = ymap_len(map), out = 0;
	struct keyref *k;
	bool *drop;

	if (nk < 2)
		return;
	k = xcalloc(nk, sizeof(*k));
	drop = xcalloc(nk, sizeof(*drop));
	for (size_t i = 0; i < nk; i++)
		k[i] = (struct keyref){ ymap_key(map, i)->s, i };
	qsort(k, nk, sizeof(*k), keyref_cmp);
	for (size_t i = 1, first = 0; i < nk; i++) {
		const struct ynode *f;

		if (strcmp(k[i].s, k[first].s)) {
			first = i;
			continue;
		}
		f = ymap_key(map, k[first].i);
		perr_add(ps->e, &ymap_key(map, k[i].i)->loc,
			 "duplicate key '%s' (first at %u:%u)", k[i].s,
			 f->loc.line, f->loc.col);
		drop[k[i].i] = true;
	}
	for (size_t i = 0; i < nk; i++) {
		if (drop[i]) {
			ytree_free(map->v[2 * i]);
			ytree_free(map->v[2 * i + 1]);
			continue;
		}
		map->v[out++] = map->v[2 * i];
		map->v[out++] = map->v[2 * i + 1];
	}
	map->n = out;
	free(drop);
	free(k);
}

/* ---- events ---------------------------------------------------------- */

static bool is_null(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !strcmp(v, "") || !strcmp(v, "~") || !strcmp(v, "null") ||
	       !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* Hangs `n` under the open collection, or makes it the root. */
static bool attach(struct pstate *ps, struct ynode *n)
{
	struct ynode *parent;

	if (!ps->depth) {
		ps->root = n;
		return true;
	}
	parent = ps->stack[ps->depth - 1];
	kid_push(parent, n);
	if (parent->kind == YN_MAP && parent->n % 2 == 1 && n->kind != YN_SCALAR) {
		perr_add(ps->e, &n->loc, "a key must be a plain string, not a %s",
			 n->kind == YN_MAP ? "mapping" : "list");
		return false;
	}
	return true;
}

static struct ynode *node_new(struct pstate *ps, enum ynode_kind kind,
			      yaml_mark_t m)
{
	struct ynode *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->loc = mark_loc(ps, m);
	return n;
}

static bool on_scalar(struct pstate *ps, const yaml_event_t *ev)
{
	struct ynode *n = node_new(ps, YN_SCALAR, ev->start_mark);
	size_t len = ev->data.scalar.length;

	n->s = xstrndup((const char *)ev->data.scalar.value, len);
	n->null = is_null(ev);
	if (strlen(n->s) != len)
		perr_add(ps->e, &n->loc, "NUL character in '%s'", n->s);
	return attach(ps, n);
}

static bool on_start(struct pstate *ps, const yaml_event_t *ev, enum ynode_kind kind)
{
	struct ynode *n = node_new(ps, kind, ev->start_mark);

	if (!attach(ps, n))
		return false;
	if (ps->depth == YAML_MAX_DEPTH) {
		perr_add(ps->e, &n->loc, "nested deeper than %d levels", YAML_MAX_DEPTH);
		return false;
	}
	ps->stack[ps->depth++] = n;
	return true;
}

static bool on_end(struct pstate *ps)
{
	struct ynode *n = ps->stack[--ps->depth];

	if (n->kind == YN_MAP)
		check_dup_keys(ps, n);
	return true;
}

static const yaml_char_t *event_anchor(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return ev->data.scalar.anchor;
	case YAML_SEQUENCE_START_EVENT:
		return ev->data.sequence_start.anchor;
	case YAML_MAPPING_START_EVENT:
		return ev->data.mapping_start.anchor;
	case YAML_ALIAS_EVENT:
		return ev->data.alias.anchor;
	default:
		return NULL;
	}
}

/* Returns false to stop: a fatal problem was reported. */
static bool on_event(struct pstate *ps, const yaml_event_t *ev)
{
	struct loc l = mark_loc(ps, ev->start_mark);

	if (event_anchor(ev)) {
		perr_add(ps->e, &l, "anchors and aliases are not supported ('%s%s')",
			 ev->type == YAML_ALIAS_EVENT ? "*" : "&",
			 (const char *)event_anchor(ev));
		return false;
	}
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++ps->docs > 1) {
			perr_add(ps->e, &l, "a policy is one YAML document, found a second");
			return false;
		}
		return true;
	case YAML_SCALAR_EVENT:
		return on_scalar(ps, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(ps, ev, YN_SEQ);
	case YAML_MAPPING_START_EVENT:
		return on_start(ps, ev, YN_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_end(ps);
	default:
		return true;
	}
}

/* Reader errors (bad UTF-8) come with a byte offset, not a mark. */
static struct loc offset_loc(const struct pstate *ps, size_t off)
{
	struct loc l = { ps->file, 1, 1 };

	for (size_t i = 0; i < off; i++) {
		if (ps->buf[i] == '\n') {
			l.line++;
			l.col = 1;
		} else {
			l.col++;
		}
	}
	return l;
}

/* The text at line:col (col counted in characters, as libyaml does). */
static const char *at_char(const struct pstate *ps, size_t len, struct loc l)
{
	size_t i = 0;

	for (unsigned line = 1; line < l.line && i < len; i++)
		if (ps->buf[i] == '\n')
			line++;
	for (unsigned col = 1; i < len && ps->buf[i] != '\n'; i++) {
		if (((unsigned char)ps->buf[i] & 0xc0) == 0x80)
			continue;
		if (col++ == l.col)
			return len - i >= 2 && ps->buf[i + 1] == ':' ? ps->buf + i : "";
	}
	return "";
}

static void yaml_problem(struct pstate *ps, const yaml_parser_t *y, size_t len)
{
	struct strbuf sb = { 0 };
	struct loc l;

	if (y->error == YAML_READER_ERROR) {
		size_t off = y->problem_offset < len ? y->problem_offset : len;

		l = offset_loc(ps, off);
		if (y->problem_value != -1)
			perr_add(ps->e, &l, "%s (byte 0x%02x)", y->problem,
				 (unsigned)y->problem_value & 0xff);
		else
			perr_add(ps->e, &l, "%s", y->problem);
		return;
	}
	l = mark_loc(ps, y->problem_mark);
	if (y->context && (y->context_mark.line != y->problem_mark.line ||
			   y->context_mark.column != y->problem_mark.column))
		sb_addf(&sb, " (%s that started at %u:%u)", y->context,
			(unsigned)y->context_mark.line + 1,
			(unsigned)y->context_mark.column + 1);
	else if (y->context)
		sb_addf(&sb, " (%s)", y->context);
	if (!strncmp(at_char(ps, len, l), "::", 2))
		sb_addf(&sb, "; quote IPv6 addresses that start with ':', e.g. \"::1\"");
	if (y->problem_mark.index < len && ps->buf[y->problem_mark.index] == '\t')
		sb_addf(&sb, "; this is a tab: YAML indents with spaces only");
	perr_add(ps->e, &l, "%s%s", y->problem ? y->problem : "syntax error", sb_str(&sb));
	sb_free(&sb);
}

static bool precheck(struct pstate *ps, size_t len)
{
	struct loc l = { ps->file, 0, 0 };
	const char *nul;

	if (len > POLICY_MAX_SIZE) {
		perr_add(ps->e, &l, "file is larger than %u MiB", POLICY_MAX_SIZE >> 20);
		return false;
	}
	nul = memchr(ps->buf, '\0', len);
	if (nul) {
		l = offset_loc(ps, (size_t)(nul - ps->buf));
		perr_add(ps->e, &l, "NUL byte in the file (is it a text file?)");
		return false;
	}
	return true;
}

static bool run_events(struct pstate *ps, yaml_parser_t *y, size_t len)
{
	for (;;) {
		yaml_event_t ev;
		bool more;

		if (!yaml_parser_parse(y, &ev)) {
			yaml_problem(ps, y, len);
			return false;
		}
		more = on_event(ps, &ev);
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			return more;
		}
		yaml_event_delete(&ev);
		if (!more)
			return false;
	}
}

struct ynode *ytree_parse(const char *file, const char *buf, size_t len,
			  struct perrs *e)
{
	struct pstate ps = { .file = file, .buf = buf, .e = e };
	yaml_parser_t y;
	bool ok;

	if (!precheck(&ps, len))
		return NULL;
	if (!yaml_parser_initialize(&y)) {
		struct loc l = { file, 0, 0 };

		perr_add(e, &l, "out of memory starting the YAML parser");
		return NULL;
	}
	yaml_parser_set_input_string(&y, (const unsigned char *)buf, len);
	ok = run_events(&ps, &y, len);
	yaml_parser_delete(&y);
	if (!ok) {
		/* The root owns every open node; the stack only borrows. */
		ytree_free(ps.root);
		return NULL;
	}
	return ps.root;
}

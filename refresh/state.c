/* state.c - last known good addresses, kept in one checksummed text file
 * that is replaced atomically.  A file we cannot verify is worth nothing:
 * trusting a damaged one could admit addresses nobody vouches for any
 * more, so it is dropped with a warning and the sources start afresh. */
#define _GNU_SOURCE     /* mkostemp */
#include "refresh/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUM_PREFIX "# sum "
#define SUM_HEX 16

static const char *const kind_names[] = {
	[STATE_HOST] = "host", [STATE_DOMAIN] = "domain", [STATE_LIST] = "list",
};
static const char *const from_names[] = {
	[STATE_FROM_DNS] = "dns", [STATE_FROM_DNSSEC] = "dnssec",
	[STATE_FROM_FILE] = "file",
};

const char *state_kind_name(enum state_kind k)
{
	return (unsigned)k < ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

const char *state_from_name(enum state_from f)
{
	return (unsigned)f < ARRAY_SIZE(from_names) ? from_names[f] : "?";
}

static int lookup_word(const char *const *names, size_t n, const char *w)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], w) == 0)
			return (int)i;
	return -1;
}

/* ---- the in-memory table ----------------------------------------------- */

static int entry_cmp(enum state_kind kind, const char *name,
		     const struct state_entry *e)
{
	if (kind != e->kind)
		return kind < e->kind ? -1 : 1;
	return strcmp(name, e->name);
}

/* Index of (kind, name), or where it would go (*found false). */
static size_t find(const struct state *st, enum state_kind kind,
		   const char *name, bool *found)
{
	size_t lo = 0, hi = st->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = entry_cmp(kind, name, &st->v[mid]);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

const struct state_entry *state_lookup(const struct state *st,
				       enum state_kind kind, const char *name)
{
	bool found;
	size_t i = find(st, kind, name, &found);

	return found ? &st->v[i] : NULL;
}

static void entry_free(struct state_entry *e)
{
	free(e->name);
	free(e->addrs);
}

void state_free(struct state *st)
{
	for (size_t i = 0; i < st->n; i++)
		entry_free(&st->v[i]);
	free(st->v);
	st->v = NULL;
	st->n = st->cap = 0;
	st->discarded = false;
	st->behind = false;
}

static bool name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > STATE_NAME_MAX || name[0] == ' ')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

static int cmp_prefix(const void *x, const void *y)
{
	return prefix_cmp(x, y);
}

/* Copies, masks, sorts and deduplicates; NULL if one is not a prefix. */
static struct prefix *norm_addrs(const struct prefix *in, size_t n, size_t *nout)
{
	struct prefix *v = xreallocarray(NULL, n ? n : 1, sizeof(*v));
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if ((in[i].family != 4 && in[i].family != 6) ||
		    in[i].len > prefix_maxlen(&in[i])) {
			free(v);
			return NULL;
		}
		v[i] = in[i];
		prefix_mask(&v[i]);
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_prefix);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || prefix_cmp(&v[k - 1], &v[i]) != 0)
			v[k++] = v[i];
	*nout = k;
	return v;
}

int state_update(struct state *st, enum state_kind kind, const char *name,
		 enum state_from from, int64_t when, uint32_t ttl,
		 const struct prefix *addrs, size_t naddrs)
{
	struct state_entry *e;
	struct prefix *v;
	size_t n, i;
	bool found;

	if ((unsigned)kind >= ARRAY_SIZE(kind_names) ||
	    (unsigned)from >= ARRAY_SIZE(from_names) || !name_ok(name) ||
	    when < 0)
		return -EINVAL;
	v = norm_addrs(addrs, naddrs, &n);
	if (!v)
		return -EINVAL;
	i = find(st, kind, name, &found);
	if (!found) {
		if (st->n == st->cap) {
			st->cap = st->cap ? st->cap * 2 : 16;
			st->v = xreallocarray(st->v, st->cap, sizeof(*st->v));
		}
		memmove(&st->v[i + 1], &st->v[i], (st->n - i) * sizeof(*st->v));
		st->n++;
		st->v[i] = (struct state_entry){ .kind = kind, .name = xstrdup(name) };
	}
	e = &st->v[i];
	free(e->addrs);
	e->addrs = v;
	e->naddrs = n;
	e->from = from;
	e->confirmed = when;
	e->ttl = ttl;
	return 0;
}

bool state_remove(struct state *st, enum state_kind kind, const char *name)
{
	bool found;
	size_t i = find(st, kind, name, &found);

	if (!found)
		return false;
	entry_free(&st->v[i]);
	memmove(&st->v[i], &st->v[i + 1], (st->n - i - 1) * sizeof(*st->v));
	st->n--;
	return true;
}

size_t state_expire(struct state *st, int64_t now, unsigned stale_after,
		    struct diag *d)
{
	size_t k = 0, dropped = 0;

	for (size_t i = 0; i < st->n; i++) {
		struct state_entry *e = &st->v[i];
		int64_t age = now - e->confirmed;

		if (age <= (int64_t)stale_after) {
			st->v[k++] = *e;
			continue;
		}
		diag_warn(d, NULL, "%s '%s' not confirmed for %" PRId64 " s "
			  "(stale_after %u s): dropping its %zu last known "
			  "good address%s", state_kind_name(e->kind), e->name,
			  age, stale_after, e->naddrs, e->naddrs == 1 ? "" : "es");
		entry_free(e);
		dropped++;
	}
	st->n = k;
	return dropped;
}

/* ---- reading ----------------------------------------------------------- */

/* Reads all of fd, at most STATE_MAX_FILE bytes: -EFBIG beyond. */
static int read_all(int fd, char **out, size_t *len)
{
	struct strbuf sb = { 0 };
	char buf[65536];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = -errno;

			sb_free(&sb);
			return err;
		}
		if (r == 0)
			break;
		if (sb.len + (size_t)r > STATE_MAX_FILE) {
			sb_free(&sb);
			return -EFBIG;
		}
		sb_add(&sb, buf, (size_t)r);
	}
	*out = sb.s;
	*len = sb.len;
	return 0;
}

static uint64_t body_sum(const char *s, size_t n)
{
	return fnv1a64(FNV1A64_INIT, s, n);
}

/* The length of the body if the file ends in a matching sum line, else 0. */
static size_t verify_sum(const char *s, size_t n)
{
	size_t want = strlen(SUM_PREFIX) + SUM_HEX + 1, body;
	char hex[SUM_HEX + 1], *end;
	uint64_t sum;

	if (n < want || s[n - 1] != '\n')
		return 0;
	body = n - want;
	if ((body > 0 && s[body - 1] != '\n') ||
	    memcmp(s + body, SUM_PREFIX, strlen(SUM_PREFIX)) != 0)
		return 0;
	memcpy(hex, s + body + strlen(SUM_PREFIX), SUM_HEX);
	hex[SUM_HEX] = '\0';
	for (size_t i = 0; i < SUM_HEX; i++)
		if (!strchr("0123456789abcdef", hex[i]))
			return 0;
	sum = strtoull(hex, &end, 16);
	return sum == body_sum(s, body) ? body : 0;
}

static bool parse_i64(const char *w, int64_t *out)
{
	char *end;
	long long v;

	if (!*w || *w == '-' || *w == '+')
		return false;
	errno = 0;
	v = strtoll(w, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* `source KIND CONFIRMED TTL FROM NAME`; line is NUL-terminated and
 * modified.  False if malformed or out of order. */
static bool parse_source(struct state *st, char *line)
{
	char *w[5], *save = NULL, *rest, *eol = line + strlen(line);
	int kind, from;
	int64_t when, ttl;

	for (size_t i = 0; i < 5; i++) {
		w[i] = strtok_r(i ? NULL : line, " ", &save);
		if (!w[i])
			return false;
	}
	rest = w[4] + strlen(w[4]);     /* NAME: the rest of the line */
	if (rest >= eol)
		return false;
	rest++;
	kind = lookup_word(kind_names, ARRAY_SIZE(kind_names), w[1]);
	from = lookup_word(from_names, ARRAY_SIZE(from_names), w[4]);
	if (strcmp(w[0], "source") != 0 || kind < 0 || from < 0 ||
	    !parse_i64(w[2], &when) || !parse_i64(w[3], &ttl) ||
	    ttl > UINT32_MAX || !name_ok(rest))
		return false;
	/* Written sorted and unique: anything else is not our file. */
	if (st->n && entry_cmp(kind, rest, &st->v[st->n - 1]) <= 0)
		return false;
	return state_update(st, kind, rest, from, when, (uint32_t)ttl,
			    NULL, 0) == 0;
}

static bool parse_addr(struct state *st, const char *line)
{
	struct state_entry *e;
	struct prefix p;

	if (st->n == 0 || strncmp(line, "addr ", 5) != 0 ||
	    prefix_parse(line + 5, &p) != PREFIX_OK)
		return false;
	e = &st->v[st->n - 1];
	if (e->naddrs && prefix_cmp(&e->addrs[e->naddrs - 1], &p) >= 0)
		return false;
	e->addrs = xreallocarray(e->addrs, e->naddrs + 1, sizeof(*e->addrs));
	e->addrs[e->naddrs++] = p;
	return true;
}

/* Parses the verified body into st; on failure returns the bad line's
 * number (1-based), else 0. */
static unsigned parse_body(struct state *st, char *s, size_t n)
{
	unsigned lineno = 0;
	char *p = s, *end = s + n;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)(nl - p);
		bool ok;

		lineno++;
		if (!nl || len + 1 > STATE_MAX_LINE || memchr(p, '\0', len))
			return lineno;
		*nl = '\0';
		if (lineno == 1)
			ok = strcmp(p, STATE_MAGIC) == 0;
		else if (strncmp(p, "source ", 7) == 0)
			ok = parse_source(st, p);
		else
			ok = parse_addr(st, p);
		if (!ok)
			return lineno;
		p = nl + 1;
	}
	return lineno == 0 ? 1 : 0;
}

static void discard(struct state *st, struct diag *d, const char *path,
		    unsigned line, const char *why)
{
	struct loc l = { .file = path, .line = line, .col = line ? 1 : 0 };

	state_free(st);
	st->discarded = true;
	diag_warn(d, &l, "state file %s; ignoring it: its last known good "
		  "addresses are not trusted", why);
}

static char *behind_path(const char *path)
{
	struct strbuf sb = { 0 };

	sb_addf(&sb, "%s%s", path, STATE_BEHIND_SUFFIX);
	return sb.s;
}

/* Whether PATH-behind is there (whatever it is: it is never opened). */
bool state_behind(const char *path)
{
	char *m = behind_path(path);
	struct stat sb;
	bool there = lstat(m, &sb) == 0;

	free(m);
	return there;
}

int state_mark_behind(const char *path)
{
	char *m = behind_path(path);
	int fd = open(m, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int err = fd < 0 && errno != EEXIST ? -errno : 0;

	if (fd >= 0)
		close(fd);
	free(m);
	return err;
}

void state_clear_behind(const char *path)
{
	char *m = behind_path(path);

	(void)unlink(m);
	free(m);
}

static int load(struct state *st, const char *path, struct diag *d);

int state_load(struct state *st, const char *path, struct diag *d)
{
	int err = load(st, path, d);

	st->behind = state_behind(path);
	return err;
}

static int load(struct state *st, const char *path, struct diag *d)
{
	struct stat sb;
	char *buf = NULL;
	size_t len = 0, body;
	unsigned bad;
	int fd, err;

	state_free(st);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &sb) < 0) {
		err = -errno;
		goto out_close;
	}
	err = 0;
	if (!S_ISREG(sb.st_mode)) {
		discard(st, d, path, 0, "is not a regular file");
		goto out_close;
	}
	/* Others could write into it addresses nobody vouches for. */
	if (file_check_private(path, fd, false, d)) {
		err = -EPERM;
		goto out_close;
	}
	if (sb.st_size > (off_t)STATE_MAX_FILE) {
		discard(st, d, path, 0, "is larger than 256 MiB");
		goto out_close;
	}
	err = read_all(fd, &buf, &len);
	if (err == -EFBIG) {
		err = 0;
		discard(st, d, path, 0, "is larger than 256 MiB");
		goto out_close;
	}
	if (err)
		goto out_close;
	body = verify_sum(buf, len);
	if (body == 0) {
		discard(st, d, path, 0, "is truncated or corrupted (checksum)");
		goto out_free;
	}
	bad = parse_body(st, buf, body);
	if (bad)
		discard(st, d, path, bad, "is malformed");
out_free:
	free(buf);
out_close:
	close(fd);
	return err;
}

/* ---- writing ----------------------------------------------------------- */

static void render(const struct state *st, struct strbuf *sb)
{
	char buf[PREFIX_STRLEN];

	sb_addf(sb, "%s\n", STATE_MAGIC);
	for (size_t i = 0; i < st->n; i++) {
		const struct state_entry *e = &st->v[i];

		sb_addf(sb, "source %s %" PRId64 " %" PRIu32 " %s %s\n",
			state_kind_name(e->kind), e->confirmed, e->ttl,
			state_from_name(e->from), e->name);
		for (size_t k = 0; k < e->naddrs; k++)
			sb_addf(sb, "addr %s\n",
				prefix_fmt(&e->addrs[k], buf, sizeof(buf)));
	}
	sb_addf(sb, SUM_PREFIX "%016" PRIx64 "\n", body_sum(sb->s, sb->len));
}

/* Removes what a fedwall killed while saving left behind: PATH.XXXXXX,
 * file_write_state's temporary files.  The caller holds the state
 * directory's lock, so none of them is being written now. */
static void sweep_temps(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path))
			  : xstrdup(".");
	const char *base = slash ? slash + 1 : path;
	size_t blen = strlen(base);
	DIR *dh = opendir(dir);
	struct dirent *de;

	while (dh && (de = readdir(dh))) {
		if (strlen(de->d_name) == blen + 7 && !strncmp(de->d_name, base, blen) &&
		    de->d_name[blen] == '.' && (de->d_type == DT_REG || de->d_type == DT_UNKNOWN))
			(void)unlinkat(dirfd(dh), de->d_name, 0);
	}
	if (dh)
		closedir(dh);
	free(dir);
}

int state_write(const struct state *st, const char *path, struct diag *d)
{
	struct strbuf sb = { 0 };
	int err;

	sweep_temps(path);
	render(st, &sb);
	err = file_write_state(path, sb.s, sb.len, 0600, true, d);
	sb_free(&sb);
	return err;
}

int state_save(const struct state *st, const char *path)
{
	struct diag quiet;

	diag_init(&quiet, NULL);
	return state_write(st, path, &quiet);
}

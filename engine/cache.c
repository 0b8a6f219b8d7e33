/* cache.c - the live table's cache: STATE_DIR/live.cache holds the table
 * as fedwall last knew it in the kernel, so that refresh, the daemon and
 * apply need not read hundreds of thousands of elements back each run.
 *
 * Why it can be trusted: every change to nf_tables in a network namespace,
 * by anybody, is a commit, and every commit moves the namespace's ruleset
 * generation by one.  The cache is written only with the generation its
 * table was true at: read back at generation G (the dump is retried until
 * G held from its start to its end), or committed by fedwall with a batch
 * the kernel checked against G (true at G + 1, the commit result's genid; after
 * a commit that replaced the table or swapped sets in, its shape read at
 * G + 1 without elements, with the elements committed: engine/apply.c).  So if
 * the generation is still that one, in the same namespace of the same
 * boot, nothing has changed the table since.  The key says all of it:
 *
 *	fedwall-live-cache 1 exe=DEV:INO:SIZE:MTIME boot=UUID
 *	netns=DEV:INO:COOKIE table=NAME genid=G inputs=HEX size=N hsum=HEX
 *
 * on one line (exe: this very fedwall binary, so that an upgraded one,
 * whose IR may mean other things, never takes an older one's image;
 * netns: the namespace file's inode and the socket's namespace cookie,
 * which unlike the inode is never reused while the machine is up), then
 * N bytes of ir_encode() image, then the 64-bit FNV-1a of all before it in
 * hex and a newline.  `inputs` is the caller's digest of what the table
 * was built from (refresh: the policy and each partner's addresses; 0:
 * unknown): when the key holds and the inputs are the same, the run has
 * nothing to do (engine_live_unchanged), without building or comparing.
 * `hsum` is the FNV-1a of the header line before it, so that this check
 * reads the header alone, not the whole image.  A cache that does not match, or is damaged in any
 * way, is not used (a -v note says why) and the table is read back; it
 * never fails a run.  FEDWALL_LIVE_CACHE=0 turns it off, =verify reads
 * back after every hit and fails the run if the two differ (tests).
 */
#define _GNU_SOURCE             /* memmem */
#include "engine/engine.h"
#include "generator/snapshot.h"
#include "nft/nft.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "fedwall-live-cache 2"
#define CACHE_MAX_FILE (1024u << 20)    /* bytes: ~80M elements */
#define CACHE_HEADER_MAX 1024
#define SUM_LEN 17                      /* 16 hex digits and a newline */

enum cache_mode { CACHE_ON, CACHE_OFF, CACHE_VERIFY };

static enum cache_mode cache_mode(void)
{
	const char *v = getenv("FEDWALL_LIVE_CACHE");

	if (v && !strcmp(v, "0"))
		return CACHE_OFF;
	if (v && !strcmp(v, "verify"))
		return CACHE_VERIFY;
	return CACHE_ON;
}

/* ---- the key ------------------------------------------------------------ */

/* What the key is made of, but the generation: the fields of the header
 * in order, each "name=value", and why there is none. */
struct ident {
	char exe[96], boot[48], netns[80];
};

static int exe_ident(char *out, size_t n)
{
	struct stat st;

	if (stat("/proc/self/exe", &st) < 0)
		return -errno;
	snprintf(out, n, "exe=%llu:%llu:%llu:%lld.%09ld", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
		 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	return 0;
}

static int boot_ident(char *out, size_t n)
{
	char id[40] = { 0 };
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (fd < 0)
		return -errno;
	got = read(fd, id, sizeof(id) - 1);
	close(fd);
	if (got < 36 || strspn(id, "0123456789abcdef-") != 36)
		return -EINVAL;
	snprintf(out, n, "boot=%.36s", id);
	return 0;
}

static int netns_ident(struct nft_ctx *ctx, char *out, size_t n)
{
	struct stat st;
	uint64_t cookie;
	int ret = nft_netns_cookie(ctx, &cookie);

	if (ret)
		return ret;
	if (stat("/proc/self/ns/net", &st) < 0)
		return -errno;
	snprintf(out, n, "netns=%llu:%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino, (unsigned long long)cookie);
	return 0;
}

/* NULL, or why there can be no cache here. */
static const char *ident_get(struct nft_ctx *ctx, const char *table, struct ident *id)
{
	if (!table[0] || strpbrk(table, " \t\r\n"))
		return "a table name it cannot hold";
	if (exe_ident(id->exe, sizeof(id->exe)))
		return "cannot stat /proc/self/exe";
	if (boot_ident(id->boot, sizeof(id->boot)))
		return "cannot read the boot id";
	if (netns_ident(ctx, id->netns, sizeof(id->netns)))
		return "no network namespace cookie (Linux 5.14 or later)";
	return NULL;
}

static void header(struct strbuf *sb, const struct ident *id, const char *table,
		   uint32_t genid, uint64_t inputs, size_t size)
{
	size_t start = sb->len;

	sb_addf(sb, "%s %s %s %s table=%s genid=%u inputs=%016llx size=%zu", CACHE_MAGIC,
		id->exe, id->boot, id->netns, table, genid, (unsigned long long)inputs, size);
	sb_addf(sb, " hsum=%016llx\n",
		(unsigned long long)fnv1a64(FNV1A64_INIT, sb->s + start, sb->len - start));
}

/* The cache file opened, if it is one we may trust (no link, no FIFO to
 * block on, nobody else may write it); else -1 and *why. */
static int open_trusted(const char *path, const char **why)
{
	struct diag quiet;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);

	diag_init(&quiet, NULL);
	*why = fd < 0 && errno == ENOENT ? "none yet" : "cannot be opened";
	if (fd < 0)
		return -1;
	*why = "not a private regular file (file_check_private)";
	if (file_check_private(path, fd, false, &quiet)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The header line of the file at `path` (NUL-terminated, newline kept)
 * when the file may be trusted and the line's own checksum holds. */
static bool read_header(const char *path, char *out, size_t n)
{
	const char *why;
	int fd = open_trusted(path, &why);
	ssize_t got;
	char *nl, *hs;
	bool ok = false;

	if (fd < 0)
		return false;
	got = pread(fd, out, n - 1, 0);
	if (got <= 0)
		goto out_close;
	out[got] = '\0';
	nl = memchr(out, '\n', (size_t)got);
	hs = nl ? memmem(out, (size_t)(nl - out), " hsum=", 6) : NULL;
	if (!hs || nl - hs != 6 + 16)
		goto out_close;
	nl[1] = '\0';
	ok = strtoull(hs + 6, NULL, 16) == fnv1a64(FNV1A64_INIT, out, (size_t)(hs - out));
out_close:
	close(fd);
	return ok;
}

static char *cache_path(const char *dir)
{
	struct strbuf sb = { 0 };

	sb_addf(&sb, "%s/%s", dir, LIVE_CACHE_FILE);
	return sb.s;
}

/* ---- reading ------------------------------------------------------------ */

/* The whole file, if it is one we may trust; else NULL and *why. */
static char *slurp(const char *path, size_t *len, const char **why)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd = open_trusted(path, why);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto out_close;
	*why = "too big";
	if ((uintmax_t)st.st_size > CACHE_MAX_FILE)
		goto out_close;
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	*why = "cannot be read whole";
	if (got != (size_t)st.st_size) {
		free(buf);
		buf = NULL;
	}
	*len = got;
out_close:
	close(fd);
	return buf;
}

/* The payload of a whole, unbroken file: its checksum holds and its
 * header line says how long it is.  *hlen is the header's length. */
static const char *unwrap(const char *buf, size_t len, size_t *hlen, size_t *plen,
			  const char **why)
{
	const char *nl = memchr(buf, '\n', len < CACHE_HEADER_MAX ? len : CACHE_HEADER_MAX);
	char hex[SUM_LEN], *end;
	unsigned long long sum;
	const char *size;

	*why = "truncated or damaged (no header line)";
	if (!nl || len < (size_t)(nl - buf) + 1 + SUM_LEN)
		return NULL;
	*hlen = (size_t)(nl - buf) + 1;
	*plen = len - *hlen - SUM_LEN;
	memcpy(hex, buf + len - SUM_LEN, SUM_LEN);
	hex[SUM_LEN - 1] = '\0';
	sum = strtoull(hex, &end, 16);
	*why = "damaged (checksum)";
	if (buf[len - 1] != '\n' || strspn(hex, "0123456789abcdef") != SUM_LEN - 1 ||
	    end != hex + SUM_LEN - 1 ||
	    sum != sum64(buf, len - SUM_LEN))
		return NULL;
	size = memmem(buf, *hlen, " size=", 6);
	*why = "truncated (size)";
	if (!size || strtoull(size + 6, NULL, 10) != *plen)
		return NULL;
	return buf + *hlen;
}

/* Whether the header is this binary's, boot's, namespace's and table's
 * at generation `now`; else *why, naming the first field that differs. */
static bool key_matches(const char *hdr, size_t hlen, const struct ident *id,
			const char *table, uint32_t now, struct strbuf *why)
{
	static const char *const what[] = { "not a cache fedwall can read",
		"written by another fedwall binary", "from another boot",
		"of another network namespace", "of another table" };
	struct strbuf want = { 0 };
	const char *fields[] = { CACHE_MAGIC, id->exe, id->boot, id->netns, NULL };
	const char *p = hdr, *g;
	bool ok = false;
	size_t i;

	sb_addf(&want, "table=%s ", table);
	fields[4] = sb_str(&want);
	for (i = 0; i < ARRAY_SIZE(fields); i++) {
		size_t n = strlen(fields[i]);

		if ((size_t)(hdr + hlen - p) < n + 1 || memcmp(p, fields[i], n) ||
		    (i + 1 < ARRAY_SIZE(fields) && p[n] != ' '))
			break;
		p += n + (i + 1 < ARRAY_SIZE(fields));
	}
	if (i < ARRAY_SIZE(fields)) {
		sb_addf(why, "%s", what[i]);
	} else if (!(g = memmem(p, (size_t)(hdr + hlen - p), "genid=", 6)) ||
		   strtoul(g + 6, NULL, 10) != now) {
		sb_addf(why, "at generation %lu, the ruleset is at %u",
			g ? strtoul(g + 6, NULL, 10) : 0ul, now);
	} else {
		ok = true;
	}
	sb_free(&want);
	return ok;
}


/* The inputs digest a header (`len` bytes at `hdr`, not NUL-terminated
 * in the file's buffer) names; 0 when none. */
static uint64_t header_inputs(const char *hdr, size_t len)
{
	char line[CACHE_HEADER_MAX + 1];
	const char *in;

	if (len > CACHE_HEADER_MAX)
		return 0;
	memcpy(line, hdr, len);
	line[len] = '\0';
	in = strstr(line, " inputs=");
	return in ? strtoull(in + 8, NULL, 16) : 0;
}

/* The cached table if the cache is for generation `now`; else NULL and
 * why not in `why`. */
static struct ir_ruleset *cache_load(const char *dir, const struct ident *id,
				     const char *table, uint32_t now, uint64_t *inputs,
				     struct strbuf *why)
{
	char *path = cache_path(dir), *buf;
	const char *reason = NULL, *payload;
	struct ir_ruleset *rs = NULL;
	size_t len = 0, hlen, plen;

	buf = slurp(path, &len, &reason);
	payload = buf ? unwrap(buf, len, &hlen, &plen, &reason) : NULL;
	if (!payload) {
		sb_addf(why, "%s", reason);
	} else if (key_matches(buf, hlen, id, table, now, why)) {
		rs = ir_decode(payload, plen, &reason);
		if (!rs)
			sb_addf(why, "not a table image: %s", reason);
		else if (strcmp(rs->table, table)) {
			sb_addf(why, "of another table");
			ir_free(rs);
			rs = NULL;
		}
		*inputs = rs ? header_inputs(buf, hlen) : 0;
	}
	free(buf);
	free(path);
	return rs;
}

/* ---- a hit, checked ----------------------------------------------------- */

static void zero_counters(struct ir_ruleset *rs)
{
	for (size_t i = 0; i < rs->ncounters; i++)
		rs->counters[i].packets = rs->counters[i].bytes = 0;
}

/* FEDWALL_LIVE_CACHE=verify: the cached table and the kernel's, image
 * for image (counters aside: they move).  0, or -EPROTO after an error. */
static int verify(struct nft_ctx *ctx, const char *table, struct ir_ruleset *rs,
		  uint32_t genid, struct diag *d)
{
	struct strbuf a = { 0 }, b = { 0 };
	struct ir_ruleset *chk = NULL;
	uint32_t g = 0;
	int ret = nft_read(ctx, table, &chk, &g);

	if (!ret) {
		zero_counters(chk);
		ir_encode(rs, &a);
		ir_encode(chk, &b);
		if (g == genid && (a.len != b.len || memcmp(a.s, b.s, a.len)))
			ret = -EPROTO;
	}
	if (ret)
		diag_error(d, NULL, "FEDWALL_LIVE_CACHE=verify: the cached table inet %s"
			   " (generation %u) is not the kernel's (generation %u): %s", table,
			   genid, g, ret == -EPROTO ? "they differ" : strerror(-ret));
	ir_free(chk);
	sb_free(&a);
	sb_free(&b);
	return ret;
}

/* The cached table, with its counters read, if the key holds now; else
 * NULL and why not.  *err: -EPROTO when FEDWALL_LIVE_CACHE=verify found
 * it wrong (reported). */
static struct ir_ruleset *cache_hit(struct nft_ctx *ctx, const char *table, const char *dir,
				    uint32_t *genid, uint64_t *inputs, struct strbuf *why,
				    int *err, struct diag *d)
{
	struct ident id;
	const char *no = nft_foreign(ctx) ? "the last read found foreign objects"
					  : ident_get(ctx, table, &id);
	struct ir_ruleset *rs;
	int ret;

	if (no || nft_genid(ctx, genid)) {
		sb_addf(why, "%s", no ? no : "cannot ask the kernel for its generation");
		return NULL;
	}
	rs = cache_load(dir, &id, table, *genid, inputs, why);
	if (!rs)
		return NULL;
	zero_counters(rs);
	*err = cache_mode() == CACHE_VERIFY ? verify(ctx, table, rs, *genid, d) : 0;
	ret = *err ? *err : nft_read_counters(ctx, rs);
	if (ret && !*err)
		sb_addf(why, "its counters cannot be read: %s", strerror(-ret));
	if (ret) {
		ir_free(rs);
		rs = NULL;
	}
	return rs;
}

/* ---- the face ------------------------------------------------------------ */

int engine_live_get(struct nft_ctx *ctx, const char *table, const struct engine_cache *cc,
		    bool fresh, struct engine_live *out, struct diag *d)
{
	struct strbuf why = { 0 };
	bool hit = false;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (!cc->dir || fresh)
		;
	else if (cache_mode() == CACHE_OFF)
		sb_addf(&why, "off (FEDWALL_LIVE_CACHE=0)");
	else
		hit = (out->rs = cache_hit(ctx, table, cc->dir, &out->genid, &out->inputs,
					   &why, &ret, d)) != NULL;
	if (ret)
		goto out_free;  /* verify found it wrong: reported */
	out->cached = hit;
	if (!hit)
		ret = nft_read(ctx, table, &out->rs, &out->genid);
	if (hit && cc->verbose)
		diag_note(d, NULL, "table inet %s: live table from the cache at generation %u",
			  table, out->genid);
	else if (why.len && cc->verbose)
		diag_note(d, NULL, "table inet %s: reading the table back: cache %s", table,
			  sb_str(&why));
	if (ret == -ENOENT)
		ret = 0;
	else if (ret)
		diag_error(d, NULL, "cannot read table inet %s from the kernel: %s", table,
			   strerror(-ret));
out_free:
	sb_free(&why);
	return ret;
}

void engine_live_put(struct nft_ctx *ctx, const struct engine_cache *cc,
		     const struct ir_ruleset *live, uint32_t genid, struct diag *d)
{
	struct strbuf img = { 0 }, file = { 0 };
	const char *no;
	struct ident id;
	char *path;
	int ret;

	if (!cc->dir || cache_mode() == CACHE_OFF || !live || !genid)
		return;
	no = nft_foreign(ctx) ? "the table holds foreign objects" : ident_get(ctx, live->table, &id);
	if (no) {
		if (cc->verbose)
			diag_note(d, NULL, "table inet %s: not cached: %s", live->table, no);
		return;
	}
	ir_encode(live, &img);
	header(&file, &id, live->table, genid, cc->inputs, img.len);
	sb_add(&file, img.s ? img.s : "", img.len);
	sb_addf(&file, "%016llx\n",
		(unsigned long long)sum64(file.s, file.len));
	path = cache_path(cc->dir);
	/* apply may be the first to use the state directory: made as
	 * refresh's lock makes it (private), so that the first refresh after
	 * an apply reads nothing back. */
	if (mkdir(cc->dir, 0700) < 0 && errno != EEXIST && cc->verbose)
		diag_note(d, NULL, "cannot create '%s': %s", cc->dir, strerror(errno));
	/* No fsync: after a power cut the boot id differs and the cache
	 * misses anyway, and its checksums catch a torn file.  Something not
	 * a regular file there (a FIFO would block an open for writing
	 * forever) is an error, refused and said by file_write_state. */
	ret = file_write_state(path, file.s, file.len, 0600, false, d);
	if (ret && ret != -EPERM && cc->verbose)
		diag_note(d, NULL, "cannot write '%s': %s; the next run reads the table back",
			  path, strerror(-ret));
	else if (!ret && cc->verbose)
		diag_note(d, NULL, "table inet %s: cached at generation %u", live->table, genid);
	free(path);
	sb_free(&img);
	sb_free(&file);
}

bool engine_live_unchanged(struct nft_ctx *ctx, const char *table,
			   const struct engine_cache *cc, uint32_t *genid)
{
	struct strbuf why = { 0 };
	char hdr[CACHE_HEADER_MAX + 1];
	struct ident id;
	bool same = false;
	char *path;

	if (!cc->dir || !cc->inputs || cache_mode() != CACHE_ON || nft_foreign(ctx) ||
	    ident_get(ctx, table, &id) || nft_genid(ctx, genid))
		return false;
	path = cache_path(cc->dir);
	if (read_header(path, hdr, sizeof(hdr)) &&
	    key_matches(hdr, strlen(hdr), &id, table, *genid, &why)) {
		same = header_inputs(hdr, strlen(hdr)) == cc->inputs;
	}
	sb_free(&why);
	free(path);
	return same;
}

void engine_live_drop(const struct engine_cache *cc, const char *why, struct diag *d)
{
	char *path;

	if (!cc->dir)
		return;
	path = cache_path(cc->dir);
	if (unlink(path) == 0 && cc->verbose)
		diag_note(d, NULL, "cache dropped: %s", why);
	free(path);
}

/* state.h - the state directory's last known good addresses.
 *
 * Internal header of the refresh module; it will be folded into
 * refresh/refresh.h.
 *
 * Per source (a host name's A records, its AAAA records, an SRV
 * domain's targets' A or AAAA records, or a list file) the state keeps
 * the addresses last seen, when they were last confirmed, where they came
 * from and the TTL, so that a source that fails keeps admitting what it
 * admitted until guards.stale_after, and a rebooted appliance is protected
 * before DNS answers.  The two families of a name are two entries: one
 * failing never discards or freezes the other.  An entry past stale_after
 * is not forgotten but marked dropped (its addresses gone, when it was
 * last confirmed and how many it had kept), so that status and the
 * metrics go on reporting it until it answers again.
 *
 * The file is binary, format 3, all integers little-endian, every
 * part a multiple of 8 bytes:
 *
 *	header (32)  magic "\x89FWS\r\n\x1a\n" (8: the high bit, CRLF and ^Z
 *	             catch a text-mode copy), u32 version 4, u32 flags 0,
 *	             u64 number of entries, u64 length of the whole file
 *	entry        u8 kind, u8 from, u8 family (0: a list, or a name's
 *	             two families together; 4: A records; 6: AAAA records),
 *	             u8 flags (1: dropped), u32 name length (1..STATE_NAME_MAX),
 *	             i64 confirmed, u32 ttl, u32 n4, u32 n6, u32 ndropped
 *	             (addresses dropped; 0 unless dropped),
 *	             u64 dev, u64 ino, u64 size, i64 mtime_ns, i64 ctime_ns
 *	             (the list file's identity, zero if unknown),
 *	             i64 fetched, u16 etag length, u16 last_modified length,
 *	             u16 version length, u16 ngroups, u32 nports, u16 group
 *	             ids length, u16 0 (all zero but for a URL or a feed):
 *	             96 bytes; then the name, the etag, the last_modified,
 *	             the version and the group ids, each zero-padded
 *	             (printable, at most STATE_META_MAX, the ids
 *	             STATE_IDS_MAX and only with groups; none when its
 *	             length is 0); then nports
 *	             port records of 8 bytes (u16 group, u8 protocol, u8 0,
 *	             u16 lo, u16 hi; groups 0..ngroups-1 in order, each
 *	             merged and non-empty: a feed's only); then, when
 *	             ngroups, a u32 per address (0: all the partner's ports,
 *	             k: group k-1), zero-padded; then n4 IPv4 prefixes of 5
 *	             bytes (address in network order, length) and n6 IPv6
 *	             ones of 17 (16 + 1), zero-padded.  A family-4 entry
 *	             has no IPv6 prefix, a family-6 one no IPv4 prefix, a
 *	             dropped one none at all
 *	trailer (8)  u64 checksum of every byte before it (sum64():
 *	             64-bit words, multiply and xor-shift; any one changed
 *	             word always changes it)
 *
 * Entries sorted by kind, then name, then family, unique; prefixes
 * masked, in prefix_cmp order, unique.  A 100k-prefix state is 0.6 MB
 * and loads without a text parser.  Format 3 (entries of 72 bytes, without
 * the fetch fields, and no URL or feed) is still read as it stands.
 * Format 2 (format 3's layout with the
 * family, flags and ndropped bytes zero: one entry per name) is still
 * read: each host and domain entry becomes its two family entries, each
 * with its family's addresses, confirmed when the name was.  Format 1,
 * text ("fedwall-state 1", `source KIND CONFIRMED TTL FROM NAME` lines
 * each followed by its `addr PREFIX` lines, a last line `# sum HEX`, the
 * 64-bit FNV-1a of every byte before it), is still read (and split the
 * same way), so that an install migrates on its next save; it
 * is no longer written.  A file that is truncated, corrupted, too big
 * (STATE_MAX_FILE), has a line over STATE_MAX_LINE (format 1) or is not
 * exactly what the writer writes (padding, order, host bits, sizes) is
 * ignored with a warning, never trusted.  It is written atomically
 * (temporary file in the same directory, fsync, rename, fsync of the
 * directory), mode 0600, sorted and zero-padded so that equal states
 * give equal files.
 *
 * Ownership: struct state owns its entries; state_lookup() borrows;
 * state_update() copies.  state_free() on a zeroed state is a no-op.
 */
#ifndef FEDWALL_STATE_H
#define FEDWALL_STATE_H

#include <stdint.h>

#include "common/common.h"
#include "policy/policy.h"

#define STATE_DEFAULT_DIR "/var/lib/fedwall"
#define STATE_FILE_NAME "state"
#define STATE_MAGIC "fedwall-state 1"  /* format 1 (text), read only */
#define STATE2_MAGIC "\x89" "FWS\r\n\x1a\n"
#define STATE2_MAGIC_LEN 8
#define STATE_VERSION 4
#define STATE_VERSION_3 3               /* read: no fetch fields */
#define STATE_VERSION_OLD 2              /* read, split by family */
#define STATE_MAX_FILE (256u << 20)     /* bytes */
#define STATE_MAX_LINE 4096             /* bytes, newline included */
#define STATE_NAME_MAX 1024             /* a source's name */
/* Beside the state file while it may be older than the table: created
 * (empty) when a save fails after a commit, removed by the next save that
 * records exactly what the table holds.  See state_mark_behind(). */
#define STATE_BEHIND_SUFFIX "-behind"

enum state_kind {
	STATE_HOST = 0,        /* DNS A/AAAA of a host name */
	STATE_DOMAIN,          /* DNS SRV discovery: name is the SRV owner,
				 * e.g. "_sipfederationtls._tcp.example.com" */
	STATE_LIST,            /* a list file: name is its path */
	STATE_URL,             /* a list URL: name is the URL */
	STATE_FEED,            /* a provider feed: name is its URL */
};

enum state_from {
	STATE_FROM_DNS = 0,     /* the resolver, not DNSSEC-validated */
	STATE_FROM_DNSSEC,      /* the resolver, DNSSEC-validated */
	STATE_FROM_FILE,        /* a list file */
	STATE_FROM_HTTPS,       /* fetched over verified TLS */
	STATE_FROM_HTTP,        /* fetched over plain http (insecure_http) */
};

#define STATE_META_MAX 256      /* bytes of a validator or a version */
#define STATE_IDS_MAX 4096      /* bytes of a feed's group ids */



/* A list file as stat() saw it when its addresses were read: the same
 * identity again means the same bytes, without reading them.  All zero:
 * unknown (never equal to a file's). */
struct state_ident {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
};

struct state_entry {
	enum state_kind kind;
	char *name;
	uint8_t family;         /* 4: A records, 6: AAAA, 0: both (or a list) */
	enum state_from from;
	int64_t confirmed;      /* unix time the addresses were last confirmed */
	uint32_t ttl;           /* seconds; 0 for files */
	struct prefix *addrs;   /* normalised, sorted, unique */
	size_t naddrs;
	struct state_ident ident;       /* STATE_LIST: the file they were read from */
	bool dropped;           /* stale_after passed: addrs gone (naddrs 0) */
	uint32_t ndropped;      /* dropped: how many addresses it had kept */
	/* STATE_URL, STATE_FEED: what the last good fetch said. */
	int64_t fetched;        /* unix time its body was last fetched (a 304
				 * confirms it, it fetches nothing) */
	char *etag;             /* validators for a conditional request; */
	char *last_modified;    /* NULL: none */
	char *version;          /* STATE_FEED: the feed's version, or NULL */
	/* STATE_FEED: grp parallel to addrs, NULL when ngroups is 0: 0, the
	 * address is admitted on all the partner's ports; k, on those of
	 * groups[k - 1] among them. */
	struct portset *groups;
	size_t ngroups;
	uint32_t *grp;
	/* The publisher's entries behind each group, ';' between groups
	 * ("11;12,13,22": m365 set ids), or NULL. */
	char *group_ids;
};

/* state_set_fetch()'s argument: borrowed strings, NULL for none. */
struct state_fetch {
	int64_t fetched;
	const char *etag, *last_modified, *version;
};

struct state {
	struct state_entry *v;  /* sorted by kind, then name, then family */
	size_t n, cap;
	bool discarded;         /* state_load found a file it did not trust */
	bool behind;            /* state_load found STATE_BEHIND_SUFFIX beside it */
};

/* Reads `path` into `st` (which it state_free()s first).  A missing file
 * gives an empty state and 0; so does a file that is not trusted, after a
 * warning through `d`.  Other failures (permissions, I/O) are -errno and
 * leave `st` empty. */
int state_load(struct state *st, const char *path, struct diag *d);

/* state_load() of `len` bytes in memory (either format), `name` naming
 * them in the warnings; no check of ownership or mode.  Whether they were
 * trusted (else `st` is empty and st->discarded, after a warning). */
bool state_parse(struct state *st, const char *name, const void *buf, size_t len,
		 struct diag *d);
/* The format-4 bytes of `st` (malloc'd, *len set), as state_write()
 * writes them; NULL when they would exceed STATE_MAX_FILE. */
unsigned char *state_encode(const struct state *st, size_t *len);

/* Writes `st` to `path` atomically, mode 0600 (file_write_state: never
 * opened at `path`; a FIFO, device, directory or a symlink to one there
 * is refused, -EPERM after an error through `d` naming it).  0 or -errno;
 * on failure the previous file is untouched and no temporary file is
 * left. */
int state_write(const struct state *st, const char *path, struct diag *d);
/* state_write() with a refusal not reported (only its -EPERM). */
int state_save(const struct state *st, const char *path);

/* The state file at `path` no longer vouches for what the table holds (a
 * commit went through, its save did not): PATH-behind is created, empty,
 * so that it takes no data block a full disk lacks, and never opened if
 * something is there already.  Until state_clear_behind(), state_load()
 * sets st->behind, and the refresh cycle trusts no last known good of the
 * state over the live table (engine/refresh.c).  0 or -errno. */
int state_mark_behind(const char *path);
void state_clear_behind(const char *path);
/* Whether PATH-behind is there (without loading the state). */
bool state_behind(const char *path);

/* The entry of (kind, name) of family 0 (a list), or NULL. */
const struct state_entry *state_lookup(const struct state *st,
				       enum state_kind kind, const char *name);
/* The entry of (kind, name, family), or NULL. */
const struct state_entry *state_lookup_family(const struct state *st, enum state_kind kind,
					      const char *name, unsigned family);

/* Records that (kind, name, family 0) was confirmed at `when` with these
 * addresses (copied; sorted and deduplicated here), replacing what was
 * there (a dropped mark too).  -EINVAL if the name is empty, too long or
 * has control characters, or an address is not a valid prefix. */
int state_update(struct state *st, enum state_kind kind, const char *name,
		 enum state_from from, int64_t when, uint32_t ttl,
		 const struct prefix *addrs, size_t naddrs);
/* The same for one family (4 or 6: every address of that family, else
 * -EINVAL; 0: state_update). */
int state_update_family(struct state *st, enum state_kind kind, const char *name,
			unsigned family, enum state_from from, int64_t when, uint32_t ttl,
			const struct prefix *addrs, size_t naddrs);

/* Sets what the last good fetch of (kind, name) said (state_update()
 * clears it); the strings are copied, one over STATE_META_MAX or with a
 * control character is not kept.  False if not there. */
bool state_set_fetch(struct state *st, enum state_kind kind, const char *name,
		     const struct state_fetch *f);
/* Sets the port groups of (kind, name)'s addresses: `grp` parallel to
 * its addrs (as state_update() left them), each 0..ngroups; groups and
 * `ids` (state_entry.group_ids; NULL: none; not kept if over
 * STATE_IDS_MAX or not printable) copied.  False if not there, or grp
 * names no group or a group has no ports. */
bool state_set_groups(struct state *st, enum state_kind kind, const char *name,
		      const struct portset *groups, size_t ngroups, const uint32_t *grp,
		      const char *ids);
/* The ids of group `grp` (1-based; 0: none) in `ids` (group_ids), or
 * NULL; malloc'd. */
char *state_group_id(const char *ids, uint32_t grp);

/* Sets the file identity of (kind, name) (state_update() clears it: new
 * addresses come from no file until said so).  False if not there. */
bool state_set_ident(struct state *st, enum state_kind kind, const char *name,
		     const struct state_ident *id);
/* Whether `id` is known (not all zero) and equal to `e`'s. */
bool state_ident_same(const struct state_entry *e, const struct state_ident *id);

/* Forgets (kind, name), every family of it, e.g. when it left the
 * policy.  True if it was there. */
bool state_remove(struct state *st, enum state_kind kind, const char *name);
/* Forgets the one entry (kind, name, family).  True if it was there. */
bool state_remove_family(struct state *st, enum state_kind kind, const char *name,
			 unsigned family);

/* Drops the addresses of every entry last confirmed more than
 * stale_after seconds before `now`, warning about each through `d` (they
 * stop being admitted); the entry stays, marked dropped, with when it was
 * last confirmed, until the source answers again (state_update) or
 * leaves the policy (state_remove).  Returns how many were dropped now. */
size_t state_expire(struct state *st, int64_t now, unsigned stale_after,
		    struct diag *d);

void state_free(struct state *st);

const char *state_kind_name(enum state_kind k);
const char *state_from_name(enum state_from f);

/* ---- the state directory's lock (lock.c) ---- */

#define LOCK_WAIT_MS 5000

/* Takes STATE_DIR/lock (flock; created, with the directory, if missing;
 * the directory must be private: file_check_private), waiting up to
 * wait_ms for another fedwall to let go; writes our pid in it.  The fd,
 * or -errno after reporting who holds it.  A read-only directory is
 * locked read-only, with a warning: protecting from memory goes on. */
int state_lock(const char *state_dir, unsigned wait_ms, struct diag *d);
/* Lets go (fd < 0: nothing to do). */
void state_unlock(int fd);

#endif

/* state.h - the state directory's last known good addresses.
 *
 * Internal header of the refresh module; it will be folded into
 * refresh/refresh.h.
 *
 * Per source (host name, SRV domain or list file) the state keeps the
 * addresses last seen, when they were last confirmed, where they came from
 * and the TTL, so that a source that fails keeps admitting what it
 * admitted until guards.stale_after, and a rebooted appliance is protected
 * before DNS answers.
 *
 * The file is line-based text:
 *
 *	fedwall-state 1
 *	source host 1700000000 300 dns partner1.example.test
 *	addr 198.51.100.7
 *	addr 2001:db8:51::7
 *	source list 1700000000 0 file /var/lib/fedwall/lists/contoso.txt
 *	addr 192.0.2.0/24
 *	# sum 0123456789abcdef
 *
 * `source KIND CONFIRMED TTL FROM NAME` (NAME is the rest of the line),
 * then its `addr` lines; the last line is the 64-bit FNV-1a of every byte
 * before it.  A file that is truncated, corrupted, too big (STATE_MAX_FILE)
 * or has a line over STATE_MAX_LINE is ignored with a warning, never
 * trusted.  It is written atomically (temporary file in the same
 * directory, fsync, rename, fsync of the directory), mode 0600, sources
 * and addresses sorted so that equal states give equal files.
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
#define STATE_MAGIC "fedwall-state 1"
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
};

enum state_from {
	STATE_FROM_DNS = 0,     /* the resolver, not DNSSEC-validated */
	STATE_FROM_DNSSEC,      /* the resolver, DNSSEC-validated */
	STATE_FROM_FILE,        /* a list file */
};

struct state_entry {
	enum state_kind kind;
	char *name;
	enum state_from from;
	int64_t confirmed;      /* unix time the addresses were last confirmed */
	uint32_t ttl;           /* seconds; 0 for files */
	struct prefix *addrs;   /* normalised, sorted, unique */
	size_t naddrs;
};

struct state {
	struct state_entry *v;  /* sorted by kind, then name */
	size_t n, cap;
	bool discarded;         /* state_load found a file it did not trust */
	bool behind;            /* state_load found STATE_BEHIND_SUFFIX beside it */
};

/* Reads `path` into `st` (which it state_free()s first).  A missing file
 * gives an empty state and 0; so does a file that is not trusted, after a
 * warning through `d`.  Other failures (permissions, I/O) are -errno and
 * leave `st` empty. */
int state_load(struct state *st, const char *path, struct diag *d);

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

/* The entry of (kind, name), or NULL. */
const struct state_entry *state_lookup(const struct state *st,
				       enum state_kind kind, const char *name);

/* Records that (kind, name) was confirmed at `when` with these addresses
 * (copied; sorted and deduplicated here), replacing what was there.
 * -EINVAL if the name is empty, too long or has control characters, or an
 * address is not a valid prefix. */
int state_update(struct state *st, enum state_kind kind, const char *name,
		 enum state_from from, int64_t when, uint32_t ttl,
		 const struct prefix *addrs, size_t naddrs);

/* Forgets (kind, name), e.g. when it left the policy.  True if it was there. */
bool state_remove(struct state *st, enum state_kind kind, const char *name);

/* Drops every entry last confirmed more than stale_after seconds before
 * `now`, warning about each through `d` (they stop being admitted).
 * Returns how many were dropped. */
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

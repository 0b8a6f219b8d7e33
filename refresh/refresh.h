/* refresh.h - where partner addresses beyond the inline ones come from:
 * list files, the state directory, DNS.
 *
 * This part is offline: list files are read directly (they are local);
 * host names and SRV domains contribute what the state directory knows,
 * never a live DNS query, so `check`, `generate`, `plan` and `apply` work
 * offline and reproducibly.
 *
 * List file format: one address or CIDR prefix a line; `#` starts a
 * comment; blank lines, surrounding whitespace and CRLF line ends are
 * fine.  A bad line is an error `PATH:LINE:COL: error: 'VALUE': reason`
 * and refuses the whole list.  List prefixes obey the same guards as
 * inline ones (min_prefix_v4, min_prefix_v6).
 *
 * Ownership: an addr_list owns its arrays; its locs borrow the path
 * string given to list_read (the policy's, which must outlive them).
 * addr_list_free() and sources_free() on zeroed structs are no-ops.
 */
#ifndef FEDWALL_REFRESH_H
#define FEDWALL_REFRESH_H

#include "common/common.h"
#include "policy/policy.h"

#define LIST_MAX_LINE 1024              /* bytes, line end excluded */
#define LIST_MAX_FILE (256u << 20)      /* bytes */
#define LIST_MAX_ERRORS 20              /* reported per file, then one summary */

/* Addresses with where each was read (VEC-like: v, n, cap). */
struct addr_list {
	struct prefix *v;
	struct loc *locs;       /* parallel to v */
	size_t n, cap;
};

void addr_list_push(struct addr_list *l, const struct prefix *p, const struct loc *at);
void addr_list_free(struct addr_list *l);

/* Appends the addresses of list file `path` to `out`.  `g` (may be NULL)
 * gives the minimum prefix lengths.  On any problem, reports every bad
 * line (or the file's errno), leaves `out` as it was and returns false. */
bool list_read(const char *path, const struct guards *g, struct addr_list *out,
	       struct diag *d);

/* Per partner, the addresses beyond its inline ones. */
struct sources {
	struct addr_list *partners;     /* parallel to policy->partners */
	size_t n;
};

/* Fills `out` from the partners' list files and what `state_dir` knows of
 * their hosts and domains.  False after reporting an error (a list that
 * cannot be read or has a bad line); `out` is then still freeable. */
bool sources_offline(const struct policy *p, const char *state_dir,
		     struct sources *out, struct diag *d);
void sources_free(struct sources *s);

#endif

/* fetch.h - one HTTPS GET of a list or feed URL (libcurl; only
 * refresh/fetch.c includes <curl/curl.h>).
 *
 * Internal header of the refresh module, part of refresh/refresh.h.
 *
 * What comes back is all of the body or nothing: TLS is always verified
 * (the system's store, or fetch_cfg.ca_file), redirects go to https only
 * (http too only when the list opted in), the whole transfer is bounded
 * by `timeout` and a stall by a low-speed limit, the body by `max_size`
 * (counted as it arrives, not only from Content-Length), and anything
 * short of a complete 2xx answer (a TLS failure, 4xx/5xx, a body cut
 * short of its Content-Length) is FETCH_FAILED with a one-line reason.
 * The usual proxy environment (https_proxy, no_proxy) is honoured, as
 * libcurl does.  Conditional requests: with the validators of the last
 * good fetch, an unchanged resource is a 304, FETCH_NOT_MODIFIED, and
 * nothing to parse.
 *
 * Ownership: a fetch_reply owns its body and validators
 * (fetch_reply_free); fetch_url() borrows everything it is given.
 */
#ifndef FEDWALL_FETCH_H
#define FEDWALL_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FETCH_DEFAULT_TIMEOUT 30                /* seconds, whole transfer */
#define FETCH_DEFAULT_MAX_SIZE (16ull << 20)    /* bytes */
#define FETCH_MAX_MAX_SIZE (256ull << 20)       /* LIST_MAX_FILE */
#define FETCH_DEFAULT_INTERVAL 3600             /* seconds */
#define FETCH_WHY_MAX 256
#define FETCH_VALIDATOR_MAX 256                 /* longer ones are not kept */

struct fetch_cfg {
	const char *ca_file;    /* NULL: the system's trust store */
	unsigned timeout;       /* seconds; 0: FETCH_DEFAULT_TIMEOUT */
	uint64_t max_size;      /* bytes; 0: FETCH_DEFAULT_MAX_SIZE */
	bool allow_http;        /* the list's insecure_http opt-in */
};

/* What makes a request conditional; NULL members: not known. */
struct fetch_validator {
	char *etag;             /* as the server sent it, quotes included */
	char *last_modified;    /* an HTTP date */
};

enum fetch_status {
	FETCH_OK = 0,           /* body, len, and the new validators */
	FETCH_NOT_MODIFIED,     /* 304 to a conditional request */
	FETCH_FAILED,           /* why */
};

struct fetch_reply {
	enum fetch_status status;
	char *body;             /* FETCH_OK: len bytes, NUL-terminated */
	size_t len;
	struct fetch_validator v;       /* FETCH_OK: the answer's */
	long code;              /* HTTP status, 0 if none came */
	char why[FETCH_WHY_MAX];        /* FETCH_FAILED: one line */
};

/* GETs `url` (https://, or http:// when cfg->allow_http), conditional on
 * `have` (may be NULL).  Returns out->status; out is always freeable. */
enum fetch_status fetch_url(const char *url, const struct fetch_cfg *cfg,
			    const struct fetch_validator *have, struct fetch_reply *out);
void fetch_reply_free(struct fetch_reply *r);
void fetch_validator_free(struct fetch_validator *v);

#endif

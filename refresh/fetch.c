/* fetch.c - HTTPS GET of list and feed URLs through libcurl, the only
 * file that includes <curl/curl.h>.  A fetch either hands over the whole
 * body of a 2xx answer or fails with one line saying why: a list half
 * read, or read from a server we could not authenticate, must never
 * become firewall rules. */
#include "refresh/fetch.h"
#include "common/common.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libcurl is opened when the first URL is fetched, not linked: it
 * brings some thirty libraries (TLS, Kerberos, LDAP, SSH, HTTP/2, IDN,
 * compression), and loading them cost every fedwall command ~9 ms at
 * start, fetching or not: a cron refresh of a list file as much as its
 * whole incremental patch.  Debian's libcurl4 (or the GnuTLS flavour,
 * the same ABI); without either a fetch fails, saying so, and the
 * source keeps its last known good addresses. */
static const char *const curl_sonames[] = { "libcurl.so.4", "libcurl-gnutls.so.4" };

static struct {
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	CURLHcode (*easy_header)(CURL *, const char *, size_t, unsigned int, int,
				 struct curl_header **);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
} cu;

static const struct { const char *name; size_t off; } curl_syms[] = {
#define SYM(f, m) { #f, offsetof(__typeof__(cu), m) }
	SYM(curl_global_init, global_init), SYM(curl_easy_init, easy_init),
	SYM(curl_easy_setopt, easy_setopt), SYM(curl_easy_perform, easy_perform),
	SYM(curl_easy_getinfo, easy_getinfo), SYM(curl_easy_header, easy_header),
	SYM(curl_easy_cleanup, easy_cleanup), SYM(curl_easy_strerror, easy_strerror),
	SYM(curl_slist_append, slist_append), SYM(curl_slist_free_all, slist_free_all),
#undef SYM
};

/* NULL when libcurl is there with every function fedwall calls, else
 * why not (static). */
static const char *curl_open(void)
{
	static char why[160];
	void *lib = NULL;

	for (size_t i = 0; !lib && i < ARRAY_SIZE(curl_sonames); i++)
		lib = dlopen(curl_sonames[i], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(why, sizeof(why), "libcurl is not installed (%s: %s)",
			 curl_sonames[0], dlerror());
		return why;
	}
	for (size_t i = 0; i < ARRAY_SIZE(curl_syms); i++) {
		void *f = dlsym(lib, curl_syms[i].name);

		if (!f) {
			snprintf(why, sizeof(why), "libcurl is too old: no %s (7.84 or later"
				 " needed)", curl_syms[i].name);
			return why;
		}
		memcpy((char *)&cu + curl_syms[i].off, &f, sizeof(f));
	}
	return cu.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? NULL
		: "libcurl failed to start";
}

/* A stall shorter than the whole timeout still fails: bytes per second
 * below FETCH_LOW_SPEED for FETCH_LOW_SPEED_TIME seconds (or the whole
 * timeout, when shorter). */
#define FETCH_LOW_SPEED 1
#define FETCH_LOW_SPEED_TIME 10
#define FETCH_MAX_REDIRS 5

struct body {
	struct strbuf sb;
	uint64_t max;
	bool over;              /* refused past max */
};

/* NULL once libcurl is loaded and started, else why not. */
static const char *curl_ready(void)
{
	static bool tried;
	static const char *why;

	if (!tried)
		why = curl_open();
	tried = true;
	return why;
}

/* Counts what arrives, whatever Content-Length promised: a server that
 * lies or sends no length is cut at max. */
static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if ((uint64_t)b->sb.len + len > b->max) {
		b->over = true;
		return 0;       /* CURLE_WRITE_ERROR */
	}
	sb_add(&b->sb, p, len);
	return len;
}

static char *header_of(CURL *h, const char *name)
{
	struct curl_header *hdr;

	if (cu.easy_header(h, name, 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK ||
	    !hdr->value[0] || strlen(hdr->value) > FETCH_VALIDATOR_MAX)
		return NULL;
	return xstrdup(hdr->value);
}

static void add_header(struct curl_slist **l, const char *name, const char *value)
{
	struct strbuf sb = { 0 };

	if (!value || !value[0])
		return;
	sb_addf(&sb, "%s: %s", name, value);
	*l = cu.slist_append(*l, sb.s);
	sb_free(&sb);
}

/* The options that keep a fetch honest (which protocols, whose
 * certificates, how much): one a libcurl refuses (older than fedwall
 * was built for, or built without TLS) fails the fetch rather than
 * going on without it.  Returns the option's name, or NULL. */
static const char *guard_options(CURL *h, const struct fetch_cfg *cfg, uint64_t max)
{
	const char *protos = cfg->allow_http ? "https,http" : "https";

	if (cu.easy_setopt(h, CURLOPT_PROTOCOLS_STR, protos) != CURLE_OK)
		return "CURLOPT_PROTOCOLS_STR";
	if (cu.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protos) != CURLE_OK)
		return "CURLOPT_REDIR_PROTOCOLS_STR";
	if (cu.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    cu.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK)
		return "CURLOPT_SSL_VERIFYPEER";
	if (cfg->ca_file && cu.easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file) != CURLE_OK)
		return "CURLOPT_CAINFO";
	if (cu.easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max) != CURLE_OK)
		return "CURLOPT_MAXFILESIZE_LARGE";
	return NULL;
}

static const char *set_options(CURL *h, const char *url, const struct fetch_cfg *cfg,
			       struct body *b, char *errbuf)
{
	unsigned timeout = cfg->timeout ? cfg->timeout : FETCH_DEFAULT_TIMEOUT;

	cu.easy_setopt(h, CURLOPT_URL, url);
	cu.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	cu.easy_setopt(h, CURLOPT_MAXREDIRS, (long)FETCH_MAX_REDIRS);
	cu.easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout);
	cu.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)timeout);
	cu.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)FETCH_LOW_SPEED);
	cu.easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
		       (long)(timeout < FETCH_LOW_SPEED_TIME ? timeout : FETCH_LOW_SPEED_TIME));
	cu.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	cu.easy_setopt(h, CURLOPT_WRITEDATA, b);
	cu.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	cu.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	cu.easy_setopt(h, CURLOPT_USERAGENT, "fedwall/" FEDWALL_VERSION);
	/* Identity only: the cap counts the bytes parsed, and a compressed
	 * body could hide a much larger one. */
	cu.easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
	return guard_options(h, cfg, b->max);
}

static enum fetch_status failed(struct fetch_reply *out, const char *fmt, ...) PRINTF(2, 3);
static enum fetch_status failed(struct fetch_reply *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->why, sizeof(out->why), fmt, ap);
	va_end(ap);
	/* One line, whatever the server or libcurl put in it. */
	for (char *c = out->why; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';
	out->status = FETCH_FAILED;
	return out->status;
}

/* The transfer's outcome as a reply. */
static enum fetch_status outcome(CURL *h, CURLcode rc, struct body *b, const char *errbuf,
				 bool conditional, struct fetch_reply *out)
{
	long code = 0;

	cu.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	out->code = code;
	if (b->over || rc == CURLE_FILESIZE_EXCEEDED)
		return failed(out, "the body is larger than max_size (%llu bytes)",
			      (unsigned long long)b->max);
	if (rc == CURLE_PARTIAL_FILE)
		return failed(out, "the body was cut short (%zu bytes, less than the server"
			      " announced)", b->sb.len);
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return failed(out, "timed out (%s)", errbuf[0] ? errbuf : "no answer");
	if (rc != CURLE_OK)     /* errbuf says more than the code's name, when set */
		return failed(out, "%s", errbuf[0] ? errbuf : cu.easy_strerror(rc));
	if (code == 304 && conditional) {
		out->status = FETCH_NOT_MODIFIED;
		return out->status;
	}
	if (code < 200 || code > 299)
		return failed(out, "the server answered HTTP %ld", code);
	out->status = FETCH_OK;
	out->len = b->sb.len;
	out->body = b->sb.s ? b->sb.s : xstrdup("");
	b->sb = (struct strbuf){ 0 };
	out->v.etag = header_of(h, "ETag");
	out->v.last_modified = header_of(h, "Last-Modified");
	return out->status;
}

enum fetch_status fetch_url(const char *url, const struct fetch_cfg *cfg,
			    const struct fetch_validator *have, struct fetch_reply *out)
{
	struct body b = { .max = cfg->max_size ? cfg->max_size : FETCH_DEFAULT_MAX_SIZE };
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	const char *refused;
	CURL *h;
	CURLcode rc;

	*out = (struct fetch_reply){ 0 };
	if (curl_ready())
		return failed(out, "%s", curl_ready());
	if (!(h = cu.easy_init()))
		return failed(out, "cannot start libcurl");
	if ((refused = set_options(h, url, cfg, &b, errbuf))) {
		cu.easy_cleanup(h);
		return failed(out, "libcurl refused %s: not fetched", refused);
	}
	if (have) {
		add_header(&hdrs, "If-None-Match", have->etag);
		add_header(&hdrs, "If-Modified-Since", have->last_modified);
		cu.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	}
	rc = cu.easy_perform(h);
	outcome(h, rc, &b, errbuf, hdrs != NULL, out);
	sb_free(&b.sb);
	cu.slist_free_all(hdrs);
	cu.easy_cleanup(h);
	return out->status;
}

void fetch_validator_free(struct fetch_validator *v)
{
	free(v->etag);
	free(v->last_modified);
	v->etag = v->last_modified = NULL;
}

void fetch_reply_free(struct fetch_reply *r)
{
	free(r->body);
	fetch_validator_free(&r->v);
	*r = (struct fetch_reply){ 0 };
}

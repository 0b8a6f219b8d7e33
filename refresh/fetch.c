/* fetch.c - HTTPS GET of list and feed URLs through libcurl, the only
 * file that includes <curl/curl.h>.  A fetch either hands over the whole
 * body of a 2xx answer or fails with one line saying why: a list half
 * read, or read from a server we could not authenticate, must never
 * become firewall rules. */
#include "refresh/fetch.h"
#include "common/common.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static bool curl_ready(void)
{
	static int state;       /* 0: not yet, 1: ok, -1: failed */

	if (!state)
		state = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 1 : -1;
	return state == 1;
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

	if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK ||
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
	*l = curl_slist_append(*l, sb.s);
	sb_free(&sb);
}

static void set_options(CURL *h, const char *url, const struct fetch_cfg *cfg,
			struct body *b, char *errbuf)
{
	unsigned timeout = cfg->timeout ? cfg->timeout : FETCH_DEFAULT_TIMEOUT;
	const char *protos = cfg->allow_http ? "https,http" : "https";

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protos);
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protos);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)FETCH_MAX_REDIRS);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (cfg->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)timeout);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)FETCH_LOW_SPEED);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
			 (long)(timeout < FETCH_LOW_SPEED_TIME ? timeout : FETCH_LOW_SPEED_TIME));
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b->max);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "fedwall/" FEDWALL_VERSION);
	/* Identity only: the cap counts the bytes parsed, and a compressed
	 * body could hide a much larger one. */
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
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

	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
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
		return failed(out, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
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
	CURL *h;
	CURLcode rc;

	*out = (struct fetch_reply){ 0 };
	if (!curl_ready() || !(h = curl_easy_init()))
		return failed(out, "cannot start libcurl");
	set_options(h, url, cfg, &b, errbuf);
	if (have) {
		add_header(&hdrs, "If-None-Match", have->etag);
		add_header(&hdrs, "If-Modified-Since", have->last_modified);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	}
	rc = curl_easy_perform(h);
	outcome(h, rc, &b, errbuf, hdrs != NULL, out);
	sb_free(&b.sb);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
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

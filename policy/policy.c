/* policy.c - reading a policy file, defaults, freeing, and the names of
 * the enums. */
#include "policy/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *service;
	unsigned kind;
} srv_of[] = {
	{ "sip-federation", SRV_SIP },
	{ "av-edge", SRV_SIP },
	{ "web-conferencing", SRV_SIP },
	{ "teams-direct-routing", SRV_SIP },
	{ "xmpp-s2s", SRV_XMPP },
	{ "matrix-federation", SRV_MATRIX },
};

unsigned service_srv(const char *service)
{
	for (size_t k = 0; k < ARRAY_SIZE(srv_of); k++)
		if (!strcmp(service, srv_of[k].service))
			return srv_of[k].kind;
	return 0;
}

unsigned partner_srv_scoped(const struct policy *p, const struct partner *pt)
{
	unsigned any = 0, all = ~0u;

	if (!pt->ndomains)
		return 0;
	for (size_t i = 0; i < pt->nservices; i++) {
		unsigned k = service_srv(p->services[pt->services[i].idx].name);

		any |= k;
		all &= k;
	}
	return any & ~all;
}

char *partner_srv_services(const struct policy *p, const struct partner *pt,
			   unsigned kinds, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < pt->nservices && len < size; i++) {
		const char *name = p->services[pt->services[i].idx].name;
		int w;

		if (!(service_srv(name) & kinds))
			continue;
		w = snprintf(out + len, size - len, "%s%s", len ? ", " : "", name);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	return out;
}

const char *direction_name(enum direction d)
{
	switch (d) {
	case DIR_INBOUND:
		return "inbound";
	case DIR_OUTBOUND:
		return "outbound";
	case DIR_BOTH:
		return "both";
	}
	return "?";
}

const char *mode_name(enum policy_mode m)
{
	return m == MODE_GATEWAY ? "gateway" : "host";
}

const char *log_unit_name(enum log_unit u)
{
	static const char *const names[] = { "second", "minute", "hour", "day" };

	return (unsigned)u < ARRAY_SIZE(names) ? names[u] : "?";
}

static void set_defaults(struct policy *p)
{
	p->version = 1;
	p->table = xstrdup(POLICY_DEFAULT_TABLE);
	p->mode = MODE_HOST;
	p->icmp_echo = false;
	p->guards.max_shrink = 50;
	p->guards.min_prefix_v4 = 8;
	p->guards.min_prefix_v6 = 32;
	p->guards.stale_after = 86400;
	p->guards.max_entries = GUARD_MAX_ENTRIES;
	p->resolve.ttl_min = 30;
	p->resolve.ttl_max = 3600;
	p->resolve.timeout = 3;
	p->fetch.timeout = 30;
	p->fetch.max_size = 16ull << 20;
	p->fetch.interval = 3600;
	p->log.enabled = true;
	p->log.rate = 10;
	p->log.unit = LOG_MINUTE;
	p->log.prefix = xstrdup("fedwall drop: ");
}

/* With `partial`, a file that parsed as YAML gives its policy despite
 * its errors (policy_load_partial). */
static struct policy *parse(const char *name, const char *buf, size_t len,
			    bool partial, struct diag *d)
{
	struct policy *p = xcalloc(1, sizeof(*p));
	struct perrs e = { 0 };
	struct ynode *root;
	bool tree, bad;

	p->file = xstrdup(name);
	set_defaults(p);
	root = ytree_parse(p->file, buf, len, &e);
	tree = root || !e.n;
	if (tree)
		policy_validate(p, root, &e);
	ytree_free(root);
	bad = e.n != 0;
	perr_flush(&e, d);
	if (bad && !(partial && tree)) {
		policy_free(p);
		return NULL;
	}
	/* after the parse: it refuses a `len` over POLICY_MAX_SIZE unread */
	p->digest = fnv1a64(FNV1A64_INIT, buf, len);
	return p;
}

struct policy *policy_parse(const char *name, const char *buf, size_t len,
			    struct diag *d)
{
	return parse(name, buf, len, false, d);
}

struct policy *policy_parse_partial(const char *name, const char *buf, size_t len,
				    struct diag *d)
{
	return parse(name, buf, len, true, d);
}

/* Reads at most POLICY_MAX_SIZE + 1 bytes, so that a huge file (or a
 * device) is refused without being read into memory. */
static char *read_bounded(FILE *f, size_t *len, int *err)
{
	size_t cap = 64 * 1024, n = 0;
	char *buf = xmalloc(cap);

	for (;;) {
		size_t got;

		if (n == cap) {
			if (cap > POLICY_MAX_SIZE)
				break;
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	*err = ferror(f) ? errno : 0;
	*len = n;
	return buf;
}

static struct policy *load(const char *path, bool partial, struct diag *d)
{
	struct loc l = { path, 0, 0 };
	struct policy *p = NULL;
	size_t len;
	char *buf;
	FILE *f;
	int fd, err;

	/* O_NONBLOCK: a FIFO is refused by the check, not waited on. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		diag_error(d, &l, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (file_check_private(path, fd, false, d) < 0) {
		close(fd);
		return NULL;
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	f = fdopen(fd, "r");
	if (!f) {
		diag_error(d, &l, "cannot read: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	buf = read_bounded(f, &len, &err);
	fclose(f);
	if (err)
		diag_error(d, &l, "cannot read: %s", strerror(err));
	else
		p = parse(path, buf, len, partial, d);
	free(buf);
	return p;
}

struct policy *policy_load(const char *path, struct diag *d)
{
	return load(path, false, d);
}

struct policy *policy_load_partial(const char *path, struct diag *d)
{
	return load(path, true, d);
}

static void strvals_free(struct strval *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].s);
	free(v);
}

static void partner_free(struct partner *pt)
{
	free(pt->name);
	free(pt->description);
	free(pt->services);
	free(pt->addresses);
	strvals_free(pt->hosts, pt->nhosts);
	strvals_free(pt->lists, pt->nlists);
	free(pt->list_opts);
	strvals_free(pt->domains, pt->ndomains);
	strvals_free(pt->srv_targets, pt->nsrv_targets);
	feeds_free(pt->feeds, pt->nfeeds);
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nservices; i++) {
		free(p->services[i].name);
		free(p->services[i].description);
		free(p->services[i].ports);
		free(p->services[i].restricts);
	}
	free(p->services);
	for (size_t i = 0; i < p->npartners; i++)
		partner_free(&p->partners[i]);
	free(p->partners);
	for (size_t i = 0; i < p->nmanagement; i++) {
		free(p->management[i].description);
		free(p->management[i].from);
		free(p->management[i].to);
	}
	free(p->management);
	for (size_t i = 0; i < p->noutallow; i++) {
		free(p->outallow[i].description);
		free(p->outallow[i].to);
		free(p->outallow[i].ports);
	}
	free(p->outallow);
	strvals_free(p->edge.interfaces, p->edge.ninterfaces);
	free(p->edge.addresses);
	free(p->table);
	free(p->log.prefix);
	free(p->resolve.trust_anchor.s);
	free(p->ha.peers);
	free(p->ha.interface.s);
	free(p->fetch.ca_file.s);
	free(p->file);
	free(p);
}

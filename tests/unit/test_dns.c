/* Unit tests of refresh/dns.c.
 *
 * The address filter and the local failures need nothing.  The rest runs
 * against a real DNS server: as root, the test moves itself into a network
 * namespace of its own (unshare(CLONE_NEWNET): only this process, never
 * the host's network), brings lo up and starts dnsmasq on 127.0.0.1:53
 * with records under example.test.  Without root or dnsmasq those tests
 * return early (and pass): there is nothing to resolve against.
 */
#define _GNU_SOURCE
#include "common/common.h"
#include "refresh/dns.h"
#include "tests/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DNSMASQ "/usr/sbin/dnsmasq"

static struct {
	bool tried, up;
	pid_t pid;
	char dir[64];
	char conf[128], resolv[128], hosts[128], pidfile[128], log[128];
} lab;

static uint64_t ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *fmt(const struct prefix *p)
{
	static char buf[8][PREFIX_STRLEN];
	static int i;

	i = (i + 1) % 8;
	return prefix_fmt(p, buf[i], sizeof(buf[i]));
}

/* The addresses of q, space-separated. */
static const char *addrs(const struct dns_query *q)
{
	static char out[4096];

	out[0] = '\0';
	for (size_t i = 0; i < q->naddrs && strlen(out) < sizeof(out) - 64; i++) {
		if (i)
			strcat(out, " ");
		strcat(out, fmt(&q->addrs[i]));
	}
	return out;
}

static bool usable(const char *s)
{
	struct prefix p;

	prefix_parse(s, &p);
	return dns_addr_usable(&p);
}

TEST(address_filter)
{
	CHECK(usable("198.51.100.7"));
	CHECK(usable("10.1.2.3"));
	CHECK(usable("2001:db8::1"));
	CHECK(!usable("0.0.0.0"));
	CHECK(!usable("127.0.0.1"));
	CHECK(!usable("127.255.0.9"));
	CHECK(!usable("169.254.1.1"));
	CHECK(!usable("224.0.0.251"));
	CHECK(!usable("239.1.1.1"));
	CHECK(!usable("255.255.255.255"));
	CHECK(!usable("::"));
	CHECK(!usable("::1"));
	CHECK(!usable("::ffff:127.0.0.1"));
	CHECK(!usable("::127.0.0.1"));
	CHECK(!usable("fe80::1"));
	CHECK(!usable("ff02::1"));
}

TEST(status_names)
{
	CHECK_STR(dns_status_name(DNS_OK), "ok");
	CHECK_STR(dns_status_name(DNS_TIMEOUT), "timeout");
	CHECK_STR(dns_status_name(DNS_NOSERVICE), "no service");
	CHECK_STR(dns_status_name((enum dns_status)99), "?");
}

/* Nothing here sends a packet: bad setup fails at once, bad names fail
 * before any lookup starts. */
TEST(local_failures)
{
	struct dns_opts o = { .forwarder = "not-an-address", .hosts = "" };
	struct dns_query q[3] = {
		{ .kind = DNS_HOST, .name = "bad name.example.test" },
		{ .kind = DNS_HOST, .name = "a..b.example.test" },
		{ .kind = DNS_DOMAIN, .name = "example.test", .service = "sip" },
	};
	struct dns_ctx *c;
	struct diag d;

	diag_init(&d, NULL);
	CHECK(dns_ctx_new(&o, &d) == NULL);
	CHECK_INT(d.errors, 1);
	o.forwarder = NULL;
	o.resolv_conf = "/nonexistent/resolv.conf";
	CHECK(dns_ctx_new(&o, &d) == NULL);
	o.resolv_conf = NULL;
	o.forwarder = "192.0.2.53";
	c = dns_ctx_new(&o, &d);
	CHECK(c != NULL);
	if (!c)
		return;
	dns_resolve(c, q, ARRAY_SIZE(q), &d);
	for (size_t i = 0; i < ARRAY_SIZE(q); i++) {
		CHECK_INT(q[i].status, DNS_ERROR);
		CHECK_INT(q[i].naddrs, 0);
		CHECK(q[i].msg != NULL);
		dns_query_clear(&q[i]);
	}
	dns_resolve(c, NULL, 0, &d);    /* an empty batch is fine */
	dns_ctx_free(c);
	dns_ctx_free(NULL);
}

static bool has(const char *s, const char *part)
{
	return s && strstr(s, part);
}

/* A temporary file holding `text`; its path (static) or NULL. */
static const char *temp_file(const char *text)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/fedwall-anchor.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		unlink(path);
		return NULL;
	}
	close(fd);
	return path;
}

/* The trust anchor is read at the first query that requires DNSSEC:
 * a missing or unusable one fails those queries, with the file and why,
 * before any packet; the context itself (and queries that do not
 * require DNSSEC) never depend on it. */
TEST(anchor_failures_fail_dnssec_queries)
{
	struct dns_opts o = { .forwarder = "192.0.2.53", .hosts = "",
			      .trust_anchor = "/nonexistent/root.key",
			      .timeout_ms = 300, .deadline_ms = 600 };
	struct dns_query q = { .kind = DNS_HOST, .name = "sip.example.test",
			       .dnssec_require = true };
	const char *junk = temp_file("this is not a zone file\n");
	struct dns_ctx *c;
	struct diag d;

	diag_init(&d, NULL);
	c = dns_ctx_new(&o, &d);
	CHECK(c != NULL);
	if (!c)
		return;
	dns_resolve(c, &q, 1, &d);
	CHECK_INT(q.status, DNS_ERROR);
	CHECK_INT(q.fam[0].status, DNS_ERROR);
	CHECK_INT(q.fam[1].status, DNS_ERROR);
	CHECK(has(q.msg, "DNSSEC: trust anchor '/nonexistent/root.key': No such file"));
	CHECK(has(q.fam[1].msg, "DNSSEC: trust anchor '/nonexistent/root.key'"));
	/* One anchor per context: a policy has one. */
	q.trust_anchor = "/nonexistent/other.key";
	dns_resolve(c, &q, 1, &d);
	CHECK_INT(q.status, DNS_ERROR);
	CHECK(has(q.msg, "a second trust anchor"));
	dns_query_clear(&q);
	dns_ctx_free(c);
	CHECK(junk != NULL);
	if (!junk)
		return;
	o.trust_anchor = NULL;
	c = dns_ctx_new(&o, &d);
	CHECK(c != NULL);
	q.trust_anchor = junk;
	if (c)
		dns_resolve(c, &q, 1, &d);
	CHECK_INT(q.status, DNS_ERROR);
	CHECK(has(q.msg, "not usable"));
	dns_query_clear(&q);
	dns_ctx_free(c);
	unlink(junk);
	CHECK_INT(d.errors, 0);
}

/* ---- the lab ----------------------------------------------------------- */

static const char *const zone[] = {
	"port=53",
	"listen-address=127.0.0.1",
	"bind-interfaces",
	"no-resolv",
	"no-hosts",
	"local=/example.test/",
	"local=/attacker.test/",
	"local-ttl=120",
	"host-record=partner1.example.test,198.51.100.7,2001:db8:51::7,300",
	"srv-host=_sipfederationtls._tcp.example.test,sip.example.test,5061,10,10",
	"srv-host=_sipfederationtls._tcp.example.test,sip2.example.test,5061,20,10",
	"srv-host=_sipfederationtls._tcp.example.test,evil.attacker.test,5061,0,0",
	"srv-host=_sipfederationtls._tcp.example.test,gone.example.test,5061,30,0",
	"host-record=sip.example.test,198.51.100.10,600",
	"host-record=sip2.example.test,2001:db8:51::10,600",
	"host-record=evil.attacker.test,203.0.113.66,600",
	"srv-host=_xmpp-server._tcp.example.test,xmpp.example.test,5269",
	"host-record=xmpp.example.test,198.51.100.20,600",
	"srv-host=_sipfederationtls._tcp.nosip.example.test",
	"host-record=nosip.example.test,198.51.100.30",
	"host-record=loop.example.test,127.0.0.1,::1,600",
	"host-record=loop.example.test,198.51.100.8,600",
	"host-record=mapped.example.test,::ffff:127.0.0.1,600",
	"host-record=zero.example.test,0.0.0.0,600",
	"srv-host=_sipfederationtls._tcp.trap.example.test,loop.trap.example.test,5061",
	"host-record=loop.trap.example.test,127.0.0.2,600",
	/* Outside the local domain dnsmasq answers only the family it has,
	 * and REFUSED for the other (no upstream): one family failing. */
	"host-record=v4.fam.test,198.51.100.41,600",
	"host-record=v6.fam.test,2001:db8:51::41,600",
	"srv-host=_sipfederationtls._tcp.fam.test,sip.fam.test,5061",
	"host-record=sip.fam.test,198.51.100.43,600",
	"host-record=v4only.example.test,198.51.100.42,600",
	NULL
};

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

static bool write_conf(void)
{
	struct strbuf sb = { 0 };
	bool ok;

	for (size_t i = 0; zone[i]; i++)
		sb_addf(&sb, "%s\n", zone[i]);
	/* More addresses than DNS_MAX_ADDRS for one name. */
	for (unsigned i = 0; i < DNS_MAX_ADDRS + 44; i++)
		sb_addf(&sb, "host-record=many.example.test,%s.%u,600\n",
			i < 256 ? "198.51.100" : "203.0.113", i % 256);
	ok = write_file(lab.conf, sb_str(&sb)) &&
	     write_file(lab.resolv, "nameserver 127.0.0.1\n") &&
	     write_file(lab.hosts, "198.51.100.99 hostsonly.example.test\n");
	sb_free(&sb);
	return ok;
}

/* dnsmasq is up once 127.0.0.1:53/udp is bound in our namespace. */
static bool wait_bound(void)
{
	for (int i = 0; i < 300; i++) {
		FILE *f = fopen("/proc/net/udp", "r");
		char line[256];
		bool bound = false;

		while (f && fgets(line, sizeof(line), f))
			bound |= strstr(line, " 0100007F:0035 ") != NULL;
		if (f)
			fclose(f);
		if (bound)
			return true;
		usleep(10000);
	}
	return false;
}

static void lab_down(void)
{
	int status;

	if (lab.pid > 0) {
		kill(lab.pid, SIGCONT);
		kill(lab.pid, SIGTERM);
		waitpid(lab.pid, &status, 0);
		lab.pid = 0;
	}
	unlink(lab.conf);
	unlink(lab.resolv);
	unlink(lab.hosts);
	unlink(lab.pidfile);
	unlink(lab.log);
	rmdir(lab.dir);
}

static pid_t start_dnsmasq(void)
{
	char conf[160], pidf[160], logf[160];
	pid_t pid;

	snprintf(conf, sizeof(conf), "--conf-file=%s", lab.conf);
	snprintf(pidf, sizeof(pidf), "--pid-file=%s", lab.pidfile);
	snprintf(logf, sizeof(logf), "--log-facility=%s", lab.log);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(DNSMASQ, "dnsmasq", "--keep-in-foreground", "--no-resolv",
		      "--no-hosts", "--user=root", "--group=root", conf, pidf,
		      logf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void lab_paths(void)
{
	snprintf(lab.conf, sizeof(lab.conf), "%s/dnsmasq.conf", lab.dir);
	snprintf(lab.resolv, sizeof(lab.resolv), "%s/resolv.conf", lab.dir);
	snprintf(lab.hosts, sizeof(lab.hosts), "%s/hosts", lab.dir);
	snprintf(lab.pidfile, sizeof(lab.pidfile), "%s/dnsmasq.pid", lab.dir);
	snprintf(lab.log, sizeof(lab.log), "%s/dnsmasq.log", lab.dir);
}

/* True when the lab is up; false (once, with a note) when this run
 * cannot have one. */
static bool lab_up(void)
{
	/* tests/dns.sh sets this: there, no lab is a failure, not a skip. */
	bool required = getenv("FEDWALL_DNS_LAB") != NULL;

	if (lab.tried)
		return lab.up;
	lab.tried = true;
	if (geteuid() != 0 || access(DNSMASQ, X_OK) != 0) {
		fprintf(stderr, "test_dns: not root or no %s: DNS lab tests "
			"skipped\n", DNSMASQ);
		CHECK(!required);
		return false;
	}
	if (unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr, "test_dns: unshare(CLONE_NEWNET): %s: DNS lab "
			"tests skipped\n", strerror(errno));
		CHECK(!required);
		return false;
	}
	strcpy(lab.dir, "/tmp/fedwall-dns.XXXXXX");
	if (!mkdtemp(lab.dir))
		return false;
	lab_paths();
	atexit(lab_down);
	CHECK_INT(system("ip link set lo up"), 0);
	CHECK(write_conf());
	lab.pid = start_dnsmasq();
	CHECK(lab.pid > 0);
	lab.up = lab.pid > 0 && wait_bound();
	CHECK(lab.up);
	return lab.up;
}

static struct dns_ctx *lab_ctx(unsigned timeout_ms, unsigned deadline_ms)
{
	struct dns_opts o = {
		.forwarder = "127.0.0.1", .hosts = "",
		.timeout_ms = timeout_ms, .deadline_ms = deadline_ms,
	};
	struct diag d;
	struct dns_ctx *c;

	diag_init(&d, stderr);
	c = dns_ctx_new(&o, &d);
	CHECK(c != NULL);
	return c;
}

static struct dns_query host(const char *name)
{
	return (struct dns_query){ .kind = DNS_HOST, .name = name };
}

static struct dns_query domain(const char *name, const char *svc, bool strict)
{
	return (struct dns_query){ .kind = DNS_DOMAIN, .name = name,
				   .service = svc, .srv_in_domain = strict };
}

static void clear_all(struct dns_query *q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dns_query_clear(&q[i]);
}

TEST(host_a_aaaa_ttl)
{
	struct dns_query q[] = { host("partner1.example.test"),
				 host("PARTNER1.Example.Test."),
				 host("nosuch.example.test") };
	struct dns_ctx *c;
	struct diag d;

	if (!lab_up() || !(c = lab_ctx(2000, 5000)))
		return;
	diag_init(&d, stderr);
	dns_resolve(c, q, ARRAY_SIZE(q), &d);
	CHECK_INT(q[0].status, DNS_OK);
	CHECK_STR(addrs(&q[0]), "198.51.100.7 2001:db8:51::7");
	CHECK(q[0].ttl > 0 && q[0].ttl <= 300);
	CHECK(!q[0].secure);
	CHECK_INT(q[0].dropped, 0);
	CHECK(q[0].msg && strstr(q[0].msg, "partner1.example.test: ok, 2 addresses"));
	CHECK_INT(q[1].status, DNS_OK);
	CHECK_STR(addrs(&q[1]), "198.51.100.7 2001:db8:51::7");
	CHECK_INT(q[2].status, DNS_NXDOMAIN);
	CHECK_INT(q[2].naddrs, 0);
	CHECK_INT(d.warnings, 0);
	/* Resolving again reuses the queries. */
	dns_resolve(c, q, 1, &d);
	CHECK_INT(q[0].status, DNS_OK);
	CHECK_INT(q[0].naddrs, 2);
	clear_all(q, ARRAY_SIZE(q));
	dns_ctx_free(c);
}

TEST(srv_discovery)
{
	struct dns_query q[] = {
		domain("example.test", NULL, true),
		domain("example.test", DNS_SRV_SIP, false),
		domain("example.test", DNS_SRV_XMPP, true),
		domain("nosip.example.test", NULL, true),
		domain("partner1.example.test", NULL, true),
		domain("nosuch.example.test", NULL, true),
	};
	struct dns_ctx *c;
	struct diag d;
	char *out = NULL;
	size_t outlen = 0;
	FILE *mem;

	if (!lab_up() || !(c = lab_ctx(2000, 5000)))
		return;
	mem = open_memstream(&out, &outlen);
	diag_init(&d, mem);
	dns_resolve(c, q, ARRAY_SIZE(q), &d);
	fclose(mem);
	CHECK(out && strstr(out, "warning: DNS: '_sipfederationtls._tcp.example.test'"
		       " SRV: ignoring target 'evil.attacker.test' outside"));
	CHECK(out && strstr(out, "warning: DNS: SRV target 'gone.example.test'"));
	free(out);
	/* Every target inside the domain, not just the best one; the
	 * outsider refused; the target that does not exist warned about. */
	CHECK_INT(q[0].status, DNS_OK);
	CHECK_STR(addrs(&q[0]), "198.51.100.10 2001:db8:51::10");
	CHECK(q[0].ttl > 0 && q[0].ttl <= 120);         /* the SRV's, lowest */
	CHECK(q[0].msg && strstr(q[0].msg, "3 targets"));
	CHECK_INT(q[1].status, DNS_OK);
	CHECK_STR(addrs(&q[1]), "198.51.100.10 203.0.113.66 2001:db8:51::10");
	CHECK_INT(q[2].status, DNS_OK);
	CHECK_STR(addrs(&q[2]), "198.51.100.20");
	CHECK_INT(q[3].status, DNS_NOSERVICE);
	CHECK_INT(q[3].naddrs, 0);
	CHECK(q[4].status == DNS_NXDOMAIN || q[4].status == DNS_NODATA);
	CHECK(q[5].status == DNS_NXDOMAIN || q[5].status == DNS_NODATA);
	CHECK_INT(d.warnings, 3);       /* evil.attacker.test, gone twice */
	clear_all(q, ARRAY_SIZE(q));
	dns_ctx_free(c);
}

static const char *fam_addrs(const struct dns_fam *f)
{
	struct dns_query q = { .addrs = f->addrs, .naddrs = f->naddrs };

	return addrs(&q);
}

/* Each family is answered on its own: one failing (REFUSED, which the
 * resolver reports as SERVFAIL) leaves the other's addresses whole; a
 * family without records beside the other's addresses is a valid empty
 * answer. */
TEST(families_each_on_its_own)
{
	struct dns_query q[] = {
		host("v4.fam.test"),
		host("v6.fam.test"),
		host("v4only.example.test"),
		host("partner1.example.test"),
		host("nosuch.example.test"),
		domain("fam.test", NULL, true),
		domain("nosip.example.test", NULL, true),
	};
	struct dns_ctx *c;
	struct diag d;

	if (!lab_up() || !(c = lab_ctx(2000, 5000)))
		return;
	diag_init(&d, stderr);
	dns_resolve(c, q, ARRAY_SIZE(q), &d);
	/* The name as a whole failed, as it always did ... */
	CHECK_INT(q[0].status, DNS_SERVFAIL);
	/* ... but its A records answered. */
	CHECK_INT(q[0].fam[0].status, DNS_OK);
	CHECK_STR(fam_addrs(&q[0].fam[0]), "198.51.100.41");
	CHECK(q[0].fam[0].ttl > 0 && q[0].fam[0].ttl <= 600);
	CHECK_INT(q[0].fam[1].status, DNS_SERVFAIL);
	CHECK_INT(q[0].fam[1].naddrs, 0);
	CHECK(q[0].fam[1].msg && strstr(q[0].fam[1].msg, "v4.fam.test AAAA: servfail ("));
	CHECK(q[0].fam[0].msg && strstr(q[0].fam[0].msg, "v4.fam.test A: ok, 1 address"));
	/* The reverse. */
	CHECK_INT(q[1].fam[0].status, DNS_SERVFAIL);
	CHECK_INT(q[1].fam[1].status, DNS_OK);
	CHECK_STR(fam_addrs(&q[1].fam[1]), "2001:db8:51::41");
	/* NODATA for AAAA beside an A record: empty, not a failure. */
	CHECK_INT(q[2].status, DNS_OK);
	CHECK_INT(q[2].fam[1].status, DNS_OK);
	CHECK_INT(q[2].fam[1].naddrs, 0);
	CHECK(q[2].fam[1].ttl == q[2].ttl && q[2].ttl > 0);
	CHECK(q[2].fam[1].msg && strstr(q[2].fam[1].msg, "(no AAAA record)"));
	CHECK_STR(fam_addrs(&q[2].fam[0]), "198.51.100.42");
	CHECK(q[3].fam[0].status == DNS_OK && q[3].fam[1].status == DNS_OK);
	CHECK_STR(fam_addrs(&q[3].fam[0]), "198.51.100.7");
	CHECK_STR(fam_addrs(&q[3].fam[1]), "2001:db8:51::7");
	/* A name without any address: its emptiness for both. */
	CHECK(q[4].fam[0].status == DNS_NXDOMAIN && q[4].fam[1].status == DNS_NXDOMAIN);
	/* SRV targets alike: the target's A kept while its AAAA fails. */
	CHECK_INT(q[5].fam[0].status, DNS_OK);
	CHECK_STR(fam_addrs(&q[5].fam[0]), "198.51.100.43");
	CHECK_INT(q[5].fam[1].status, DNS_SERVFAIL);
	CHECK(q[5].fam[1].msg && strstr(q[5].fam[1].msg, "sip.fam.test AAAA"));
	CHECK(q[6].fam[0].status == DNS_NOSERVICE && q[6].fam[1].status == DNS_NOSERVICE);
	clear_all(q, ARRAY_SIZE(q));
	dns_ctx_free(c);
}

TEST(not_unicast_dropped)
{
	struct dns_query q[] = {
		host("loop.example.test"),
		host("mapped.example.test"),
		host("zero.example.test"),
		domain("trap.example.test", NULL, true),
	};
	struct dns_ctx *c;
	struct diag d;

	if (!lab_up() || !(c = lab_ctx(2000, 5000)))
		return;
	diag_init(&d, NULL);
	dns_resolve(c, q, ARRAY_SIZE(q), &d);
	CHECK_INT(q[0].status, DNS_OK);
	CHECK_STR(addrs(&q[0]), "198.51.100.8");
	CHECK_INT(q[0].dropped, 2);
	CHECK_INT(q[1].status, DNS_NODATA);
	CHECK_INT(q[1].dropped, 1);
	CHECK_INT(q[2].status, DNS_NODATA);
	CHECK_INT(q[2].naddrs, 0);
	CHECK_INT(q[3].status, DNS_NODATA);
	CHECK_INT(q[3].naddrs, 0);
	CHECK_INT(d.warnings, 5);
	clear_all(q, ARRAY_SIZE(q));
	dns_ctx_free(c);
}

TEST(address_cap)
{
	struct dns_query q = host("many.example.test");
	struct dns_ctx *c;
	struct diag d;

	if (!lab_up() || !(c = lab_ctx(3000, 5000)))
		return;
	diag_init(&d, NULL);
	dns_resolve(c, &q, 1, &d);
	CHECK_INT(q.status, DNS_OK);
	CHECK_INT(q.naddrs, DNS_MAX_ADDRS);
	CHECK_INT(q.dropped, 44);
	CHECK_INT(d.warnings, 1);
	if (q.naddrs)
		CHECK_STR(fmt(&q.addrs[0]), "198.51.100.0");
	dns_query_clear(&q);
	dns_ctx_free(c);
}

/* Through the system-style configuration files instead of a forwarder. */
TEST(resolv_conf_and_hosts)
{
	struct dns_opts o = { .resolv_conf = lab.resolv, .hosts = lab.hosts,
			      .timeout_ms = 2000 };
	struct dns_query q[] = { host("hostsonly.example.test"),
				 host("partner1.example.test") };
	struct dns_ctx *c;
	struct diag d;

	if (!lab_up())
		return;
	diag_init(&d, stderr);
	c = dns_ctx_new(&o, &d);
	CHECK(c != NULL);
	if (!c)
		return;
	dns_resolve(c, q, ARRAY_SIZE(q), &d);
	CHECK_INT(q[0].status, DNS_OK);
	CHECK_STR(addrs(&q[0]), "198.51.100.99");
	CHECK_INT(q[1].status, DNS_OK);
	CHECK_STR(addrs(&q[1]), "198.51.100.7 2001:db8:51::7");
	clear_all(q, ARRAY_SIZE(q));
	dns_ctx_free(c);
}

/* dnsmasq signs nothing: a query that requires DNSSEC must refuse it. */
TEST(dnssec_required_refuses_unsigned)
{
	struct dns_query q = host("partner1.example.test");
	struct dns_ctx *c;
	struct diag d;

	if (!lab_up() || !(c = lab_ctx(1500, 4000)))
		return;
	q.dnssec_require = true;
	diag_init(&d, stderr);
	dns_resolve(c, &q, 1, &d);
	CHECK(q.status == DNS_BOGUS || q.status == DNS_INSECURE ||
	      q.status == DNS_SERVFAIL || q.status == DNS_TIMEOUT ||
	      q.status == DNS_ERROR);
	CHECK_INT(q.naddrs, 0);
	CHECK(!q.secure);
	dns_query_clear(&q);
	dns_ctx_free(c);
}

/* An anchor for another zone: dnsmasq's unsigned answers are insecure,
 * refused for the query that requires DNSSEC ("DNSSEC: answer not
 * validated (insecure)", both families), and the same name answers the
 * query that does not, in the same batch. */
TEST(dnssec_insecure_refused_plain_answered)
{
	const char *anchor = temp_file("elsewhere.test. 3600 IN DS 31406 13 2 "
		"8cbf2bd7b2f2f4a6d9a4f0c4b0f6ee7b6d2f0b7c3c0f2f7e3a9b1a6d3a8c2e11\n");
	struct dns_query q[2] = { host("partner1.example.test"),
				  host("partner1.example.test") };
	struct dns_ctx *c;
	struct diag d;

	if (!anchor)
		CHECK(anchor != NULL);
	if (!anchor || !lab_up() || !(c = lab_ctx(1500, 4000))) {
		if (anchor)
			unlink(anchor);
		return;
	}
	q[0].dnssec_require = true;
	q[0].trust_anchor = anchor;
	diag_init(&d, stderr);
	dns_resolve(c, q, 2, &d);
	CHECK_INT(q[0].status, DNS_INSECURE);
	CHECK_INT(q[0].fam[0].status, DNS_INSECURE);
	CHECK_INT(q[0].fam[1].status, DNS_INSECURE);
	CHECK_INT(q[0].naddrs, 0);
	CHECK(has(q[0].fam[0].msg, "DNSSEC: answer not validated (insecure)"));
	CHECK_INT(q[1].status, DNS_OK);
	CHECK(q[1].naddrs > 0);
	CHECK(!q[1].secure);
	clear_all(q, 2);
	dns_ctx_free(c);
	unlink(anchor);
}

/* A stopped server: its queries give up at the per-query timeout, long
 * before the deadline, and answers that need no server still come. */
/* A UDP socket on 127.0.0.1 that nobody reads: a resolver that never
 * answers, whatever else runs (a stopped dnsmasq once answered all the
 * same in make check); its "127.0.0.1@PORT" in `fwd`, the fd, or -1. */
static int silent_server(char *fwd, size_t n)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(fwd, n, "127.0.0.1@%u", (unsigned)ntohs(a.sin_port));
	return fd;
}

TEST(timeout_when_server_silent)
{
	char fwd[32];
	struct dns_opts o = { .forwarder = fwd, .hosts = lab.hosts,
			      .timeout_ms = 800, .deadline_ms = 8000 };
	struct dns_query q[] = { host("partner1.example.test"),
				 domain("example.test", NULL, true),
				 host("hostsonly.example.test") };
	struct dns_ctx *c;
	struct diag d;
	uint64_t t0, took;
	int silent;

	if (!lab_up())
		return;
	silent = silent_server(fwd, sizeof(fwd));
	CHECK(silent >= 0);
	if (silent < 0)
		return;
	diag_init(&d, stderr);
	c = dns_ctx_new(&o, &d);
	CHECK(c != NULL);
	if (!c) {
		close(silent);
		return;
	}
	t0 = ms();
	dns_resolve(c, q, ARRAY_SIZE(q), &d);
	took = ms() - t0;
	CHECK_INT(q[0].status, DNS_TIMEOUT);
	CHECK(q[0].msg && strstr(q[0].msg, "within the timeout"));
	CHECK_INT(q[1].status, DNS_TIMEOUT);
	CHECK_INT(q[2].status, DNS_OK);
	CHECK_STR(addrs(&q[2]), "198.51.100.99");
	CHECK(took >= 700 && took < 2500);
	clear_all(q, ARRAY_SIZE(q));

	/* The batch deadline bounds everything, whatever the timeout. */
	dns_ctx_free(c);
	o.timeout_ms = 10000;
	o.deadline_ms = 600;
	c = dns_ctx_new(&o, &d);
	CHECK(c != NULL);
	if (c) {
		t0 = ms();
		dns_resolve(c, q, 1, &d);
		took = ms() - t0;
		CHECK_INT(q[0].status, DNS_TIMEOUT);
		CHECK(q[0].msg && strstr(q[0].msg, "by the deadline"));
		CHECK(took >= 500 && took < 1500);
		clear_all(q, 1);
		dns_ctx_free(c);
	}
	close(silent);
}

/* Many names at once, after the server came back. */
TEST(parallel_batch)
{
	enum { N = 64 };
	struct dns_query q[N];
	struct dns_ctx *c;
	struct diag d;
	unsigned ok = 0;

	if (!lab_up() || !(c = lab_ctx(2000, 8000)))
		return;
	for (size_t i = 0; i < N; i++)
		q[i] = i % 2 ? host("partner1.example.test")
			     : domain("example.test", DNS_SRV_XMPP, true);
	diag_init(&d, stderr);
	dns_resolve(c, q, N, &d);
	for (size_t i = 0; i < N; i++)
		ok += q[i].status == DNS_OK;
	CHECK_INT(ok, N);
	clear_all(q, N);
	dns_ctx_free(c);
}

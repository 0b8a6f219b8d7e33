/* probe.c - deterministic packet probes for the lab suites.
 *
 *   probe serve [-4|-6] tcp|udp PORT... [tcp|udp PORT...]...
 *	Listens on every given port (default: IPv4 and IPv6; -4 or -6: one
 *	family), prints "ready" on stdout once every socket is bound, then
 *	runs until killed.  TCP: echoes every line a client sends, until the
 *	client closes.  UDP: echoes every datagram, from the address it was
 *	sent to.
 *   probe connect [-t MS] [-s SRC] tcp|udp ADDR PORT
 *	TCP: handshake, send "ping\n", expect it back.  UDP: send "ping\n",
 *	expect it back.  Exit 0 on success, 1 refused or timed out (the
 *	reason on stderr: "refused" means an answer came back, "timeout"
 *	means silence, as when a firewall drops on the way, "dropped" that
 *	this host's own output hook dropped it: EPERM), 2 usage.
 *   probe hold [-t MS] [-s SRC] tcp ADDR PORT SECONDS
 *	Keeps one connection open, sending a line every 100 ms; prints
 *	"connected" once established.  Exit 0 if every line came back.
 *   probe ping [-t MS] [-s SRC] ADDR
 *	One ICMP or ICMPv6 echo request (raw socket, root); exit 0 on reply.
 *
 * No libfedwall: this is a test tool, kept to one file.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 512
#define BUF 2048

enum { OK = 0, FAILED = 1, USAGE = 2 };

static const char *prog = "probe";

static int usage(void)
{
	fprintf(stderr,
		"usage: %s serve [-4|-6] tcp|udp PORT... [tcp|udp PORT...]...\n"
		"       %s connect [-t MS] [-s SRC] tcp|udp ADDR PORT\n"
		"       %s hold [-t MS] [-s SRC] tcp ADDR PORT SECONDS\n"
		"       %s ping [-t MS] [-s SRC] ADDR\n", prog, prog, prog, prog);
	return USAGE;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fills `ss` from a numeric address and port; false if not an address. */
static bool parse_addr(const char *s, int port, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*len = sizeof(*a4);
		return true;
	}
	if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
		return true;
	}
	return false;
}

static bool parse_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int parse_proto(const char *s)
{
	if (!strcmp(s, "tcp"))
		return SOCK_STREAM;
	if (!strcmp(s, "udp"))
		return SOCK_DGRAM;
	return -1;
}

/* ---- serve ---------------------------------------------------------- */

struct conn {
	int fd;
	bool listener;
	int type;		/* SOCK_STREAM or SOCK_DGRAM */
	int family;
	size_t len;		/* bytes buffered for a TCP client */
	char buf[BUF];
};

static struct conn conns[MAX_FDS];
static struct pollfd pfds[MAX_FDS];
static int nconns;

static int add_conn(int fd, bool listener, int type, int family)
{
	if (nconns == MAX_FDS) {
		close(fd);
		return -1;
	}
	memset(&conns[nconns], 0, sizeof(conns[nconns]));
	conns[nconns].fd = fd;
	conns[nconns].listener = listener;
	conns[nconns].type = type;
	conns[nconns].family = family;
	pfds[nconns].fd = fd;
	pfds[nconns].events = POLLIN;
	nconns++;
	return 0;
}

static void drop_conn(int i)
{
	close(conns[i].fd);
	nconns--;
	conns[i] = conns[nconns];
	pfds[i] = pfds[nconns];
}

static int open_listener(int family, int type, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd;

	if (!parse_addr(family == AF_INET ? "0.0.0.0" : "::", port, &ss, &len))
		return -1;
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* UDP replies must leave from the address the request went to. */
	if (type == SOCK_DGRAM && family == AF_INET)
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	if (type == SOCK_DGRAM && family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 64) < 0)) {
		fprintf(stderr, "%s: %s/%d (%s): %s\n", prog,
			type == SOCK_STREAM ? "tcp" : "udp", port,
			family == AF_INET ? "IPv4" : "IPv6", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Echoes one datagram back, with the request's destination as source. */
static void udp_echo(int fd)
{
	char buf[BUF], cbuf[256];
	struct sockaddr_storage peer;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr m = {
		.msg_name = &peer, .msg_namelen = sizeof(peer),
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c;
	ssize_t n;

	n = recvmsg(fd, &m, MSG_DONTWAIT);
	if (n < 0)
		return;
	iov.iov_len = n;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo *pi = (void *)CMSG_DATA(c);

			pi->ipi_spec_dst = pi->ipi_addr;
			pi->ipi_ifindex = 0;
		} else if (c->cmsg_level == IPPROTO_IPV6 &&
			   c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo *pi = (void *)CMSG_DATA(c);

			/* link-local sources need the interface kept */
			if (!IN6_IS_ADDR_LINKLOCAL(&pi->ipi6_addr))
				pi->ipi6_ifindex = 0;
		}
	}
	sendmsg(fd, &m, 0);
}

/* Reads from a TCP client and echoes each complete line; false at EOF. */
static bool tcp_echo(struct conn *c)
{
	ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	char *nl;

	if (n <= 0)
		return n < 0 && errno == EAGAIN;
	c->len += n;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		size_t line = nl - c->buf + 1;

		if (write(c->fd, c->buf, line) != (ssize_t)line)
			return false;
		memmove(c->buf, c->buf + line, c->len - line);
		c->len -= line;
	}
	if (c->len == sizeof(c->buf)) {	/* no newline in 2 KiB: echo as is */
		if (write(c->fd, c->buf, c->len) != (ssize_t)c->len)
			return false;
		c->len = 0;
	}
	return true;
}

static void serve_loop(void)
{
	for (;;) {
		if (poll(pfds, nconns, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			exit(FAILED);
		}
		for (int i = nconns - 1; i >= 0; i--) {
			if (!pfds[i].revents)
				continue;
			if (conns[i].type == SOCK_DGRAM) {
				udp_echo(conns[i].fd);
			} else if (conns[i].listener) {
				int fd = accept4(conns[i].fd, NULL, NULL,
						 SOCK_CLOEXEC | SOCK_NONBLOCK);
				if (fd >= 0)
					add_conn(fd, false, SOCK_STREAM,
						 conns[i].family);
			} else if (!tcp_echo(&conns[i])) {
				drop_conn(i);
			}
		}
	}
}

static int cmd_serve(int argc, char **argv)
{
	bool v4 = true, v6 = true;
	int type = -1, i = 0, nports = 0;

	if (i < argc && !strcmp(argv[i], "-4"))
		v6 = false, i++;
	else if (i < argc && !strcmp(argv[i], "-6"))
		v4 = false, i++;
	for (; i < argc; i++) {
		long port;
		int t = parse_proto(argv[i]);

		if (t >= 0) {
			type = t;
			continue;
		}
		if (type < 0 || !parse_num(argv[i], 1, 65535, &port))
			return usage();
		for (int f = 0; f < 2; f++) {
			int family = f ? AF_INET6 : AF_INET, fd;

			if (!(f ? v6 : v4))
				continue;
			fd = open_listener(family, type, port);
			if (fd < 0 || add_conn(fd, true, type, family) < 0)
				return FAILED;
		}
		nports++;
	}
	if (!nports)
		return usage();
	signal(SIGPIPE, SIG_IGN);
	printf("ready\n");
	fflush(stdout);
	serve_loop();
	return OK;
}

/* ---- connect, hold, ping -------------------------------------------- */

struct client_opts {
	long timeout_ms;
	const char *src;
};

/* Parses -t MS and -s SRC; returns the index of the first operand or -1. */
static int client_opts(int argc, char **argv, struct client_opts *o)
{
	int i = 0;

	o->timeout_ms = 1000;
	o->src = NULL;
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-t") && i + 1 < argc) {
			if (!parse_num(argv[i + 1], 1, 600000, &o->timeout_ms))
				return -1;
		} else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
			o->src = argv[i + 1];
		} else {
			return -1;
		}
		i += 2;
	}
	return i;
}

/* Waits until `fd` is ready for `events` or `deadline` (ms) passes. */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	long long left;
	int r;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

/* How a failed call ended: an answer came back ("refused"), or the
 * local firewall dropped our own packet (EPERM from the output hook). */
static const char *fail_reason(int err)
{
	switch (err) {
	case ECONNREFUSED: case ECONNRESET: case EHOSTUNREACH:
	case ENETUNREACH: case EACCES:
		return "refused";
	case EPERM:
		return "dropped";
	}
	return NULL;
}

static int report(const char *what, const char *reason, int err)
{
	if (err && fail_reason(err))
		fprintf(stderr, "%s: %s: %s (%s)\n", prog, what,
			fail_reason(err), strerror(err));
	else if (err)
		fprintf(stderr, "%s: %s: error (%s)\n", prog, what, strerror(err));
	else
		fprintf(stderr, "%s: %s: %s\n", prog, what, reason);
	return FAILED;
}

/* Creates a non-blocking socket towards ADDR PORT, bound to opts->src if
 * given, and starts connecting; returns fd or -errno. */
static int open_client(int type, const char *addr, int port,
		       const struct client_opts *o, const char *what)
{
	struct sockaddr_storage dst, src;
	socklen_t dlen, slen;
	int fd;

	if (!parse_addr(addr, port, &dst, &dlen)) {
		fprintf(stderr, "%s: '%s' is not an IP address\n", prog, addr);
		return -EINVAL;
	}
	fd = socket(dst.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (o->src) {
		if (!parse_addr(o->src, 0, &src, &slen) ||
		    src.ss_family != dst.ss_family) {
			fprintf(stderr, "%s: bad source '%s'\n", prog, o->src);
			close(fd);
			return -EINVAL;
		}
		if (bind(fd, (struct sockaddr *)&src, slen) < 0) {
			int e = errno;

			report(what, NULL, e);
			close(fd);
			return -e;
		}
	}
	if (connect(fd, (struct sockaddr *)&dst, dlen) < 0 &&
	    errno != EINPROGRESS) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* Waits for a pending TCP connect; 0, or -errno, or -ETIMEDOUT. */
static int finish_connect(int fd, long long deadline)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (wait_fd(fd, POLLOUT, deadline) <= 0)
		return -ETIMEDOUT;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	return -err;
}

/* Sends `msg` and reads until the same bytes came back (TCP: a line;
 * UDP: one datagram).  0, -errno, or -ETIMEDOUT. */
static int echo_once(int fd, int type, const char *msg, long long deadline)
{
	size_t want = strlen(msg), got = 0;
	char buf[BUF];

	if (send(fd, msg, want, MSG_NOSIGNAL) != (ssize_t)want)
		return -errno;
	while (got < want) {
		ssize_t n;

		if (wait_fd(fd, POLLIN, deadline) <= 0)
			return -ETIMEDOUT;
		n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		if (type == SOCK_DGRAM)
			return (size_t)n == want && !memcmp(buf, msg, want) ?
				0 : -EBADMSG;
		got += n;
	}
	return got == want && !memcmp(buf, msg, want) ? 0 : -EBADMSG;
}

static int finish(int r, const char *what)
{
	if (!r)
		return OK;
	if (r == -ETIMEDOUT)
		return report(what, "timeout", 0);
	if (r == -EBADMSG)
		return report(what, "wrong echo", 0);
	return report(what, NULL, -r);
}

static int cmd_connect(int argc, char **argv)
{
	struct client_opts o;
	char what[128];
	long port;
	long long deadline;
	int i = client_opts(argc, argv, &o), type, fd, r;

	if (i < 0 || argc - i != 3 || (type = parse_proto(argv[i])) < 0 ||
	    !parse_num(argv[i + 2], 1, 65535, &port))
		return usage();
	snprintf(what, sizeof(what), "%s [%s]:%ld", argv[i], argv[i + 1], port);
	deadline = now_ms() + o.timeout_ms;
	fd = open_client(type, argv[i + 1], port, &o, what);
	if (fd == -EINVAL)
		return USAGE;
	if (fd < 0)
		return finish(fd, what);
	r = type == SOCK_STREAM ? finish_connect(fd, deadline) : 0;
	if (!r)
		r = echo_once(fd, type, "ping\n", deadline);
	close(fd);
	return finish(r, what);
}

static int cmd_hold(int argc, char **argv)
{
	struct client_opts o;
	char what[128], line[64];
	long port, secs;
	long long end;
	int i = client_opts(argc, argv, &o), fd, r, seq = 0;

	if (i < 0 || argc - i != 4 || parse_proto(argv[i]) != SOCK_STREAM ||
	    !parse_num(argv[i + 2], 1, 65535, &port) ||
	    !parse_num(argv[i + 3], 0, 86400, &secs))
		return usage();
	snprintf(what, sizeof(what), "hold tcp [%s]:%ld", argv[i + 1], port);
	fd = open_client(SOCK_STREAM, argv[i + 1], port, &o, what);
	if (fd == -EINVAL)
		return USAGE;
	if (fd < 0)
		return finish(fd, what);
	r = finish_connect(fd, now_ms() + o.timeout_ms);
	if (r) {
		close(fd);
		return finish(r, what);
	}
	printf("connected\n");
	fflush(stdout);
	end = now_ms() + secs * 1000;
	do {
		snprintf(line, sizeof(line), "line %d\n", ++seq);
		r = echo_once(fd, SOCK_STREAM, line, now_ms() + o.timeout_ms);
		if (r) {
			fprintf(stderr, "%s: %s: line %d lost\n", prog, what, seq);
			break;
		}
		usleep(100 * 1000);
	} while (now_ms() < end);
	close(fd);
	return finish(r, what);
}

static unsigned short icmp_sum(const void *p, size_t n)
{
	const unsigned char *b = p;
	unsigned long s = 0;

	for (; n > 1; n -= 2, b += 2)
		s += (b[0] << 8) | b[1];
	if (n)
		s += b[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons(~s & 0xffff);
}

/* True if `buf` (an IPv4 packet with header, or a bare ICMPv6 message)
 * is the echo reply to our id and sequence. */
static bool is_reply(const unsigned char *buf, ssize_t n, int family,
		     unsigned short id)
{
	if (family == AF_INET) {
		size_t hl = (buf[0] & 0x0f) * 4;
		const struct icmphdr *h = (const void *)(buf + hl);

		return (size_t)n >= hl + sizeof(*h) &&
			h->type == ICMP_ECHOREPLY && h->un.echo.id == id;
	}
	const struct icmp6_hdr *h6 = (const void *)buf;

	return (size_t)n >= sizeof(*h6) && h6->icmp6_type == ICMP6_ECHO_REPLY &&
		h6->icmp6_id == id;
}

static int cmd_ping(int argc, char **argv)
{
	struct client_opts o;
	struct sockaddr_storage dst, src;
	socklen_t dlen, slen;
	unsigned char pkt[64] = { 0 }, buf[BUF];
	unsigned short id = htons(getpid() & 0xffff);
	char what[96];
	long long deadline;
	int i = client_opts(argc, argv, &o), fd;

	if (i < 0 || argc - i != 1 || !parse_addr(argv[i], 0, &dst, &dlen))
		return usage();
	snprintf(what, sizeof(what), "ping %s", argv[i]);
	fd = socket(dst.ss_family, SOCK_RAW | SOCK_CLOEXEC,
		    dst.ss_family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	if (fd < 0)
		return report(what, NULL, errno);
	if (o.src && (!parse_addr(o.src, 0, &src, &slen) ||
		      src.ss_family != dst.ss_family ||
		      bind(fd, (struct sockaddr *)&src, slen) < 0))
		return report(what, "bad source", 0);
	if (dst.ss_family == AF_INET) {
		struct icmphdr *h = (void *)pkt;

		h->type = ICMP_ECHO;
		h->un.echo.id = id;
		h->un.echo.sequence = htons(1);
		h->checksum = icmp_sum(pkt, sizeof(pkt));
	} else {
		struct icmp6_hdr *h = (void *)pkt;	/* kernel sums v6 */

		h->icmp6_type = ICMP6_ECHO_REQUEST;
		h->icmp6_id = id;
		h->icmp6_seq = htons(1);
	}
	if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&dst, dlen) < 0)
		return report(what, NULL, errno);
	deadline = now_ms() + o.timeout_ms;
	while (wait_fd(fd, POLLIN, deadline) > 0) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0 && is_reply(buf, n, dst.ss_family, id)) {
			close(fd);
			return OK;
		}
	}
	close(fd);
	return report(what, "timeout", 0);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "serve"))
		return cmd_serve(argc - 2, argv + 2);
	if (!strcmp(argv[1], "connect"))
		return cmd_connect(argc - 2, argv + 2);
	if (!strcmp(argv[1], "hold"))
		return cmd_hold(argc - 2, argv + 2);
	if (!strcmp(argv[1], "ping"))
		return cmd_ping(argc - 2, argv + 2);
	return usage();
}

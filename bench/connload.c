/* connload.c - new-connection load through the edge firewall.
 *
 *   connload serve ADDR PORT
 *	Listens on ADDR PORT, prints "ready", accepts and closes every
 *	connection until killed.
 *   connload run [-c CONCURRENT] [-d SECONDS] ADDR PORT
 *	Keeps CONCURRENT (default 32) non-blocking TCP connects in flight
 *	for SECONDS (default 3): each completed handshake is closed at once
 *	with a reset (SO_LINGER 0, so no TIME_WAIT and the port is reusable),
 *	and a new connect from a fresh ephemeral port takes its place.  Every
 *	connection is a new conntrack entry, so every SYN goes through the
 *	firewall's new-connection path (map lookup or rule walk).  Prints
 *	"CONNS SECONDS CONNS_PER_SECOND FAILED"; a connect that times out
 *	(500 ms) or fails is counted as FAILED and replaced.
 *
 * Standalone (no libfedwall), like tests/lab/probe.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 1024
#define CONNECT_TIMEOUT 0.5

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int addr_of(const char *s, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
		return 0;
	}
	fprintf(stderr, "connload: not an address: '%s'\n", s);
	return -1;
}

static int serve(const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd;

	if (addr_of(addr, port, &ss, &len))
		return 2;
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 4096)) {
		perror("connload: serve");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (c >= 0)
			close(c);
		else if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE)
			return 1;
	}
}

struct slot {
	int fd;
	double started;
};

static int start(struct slot *s, int ep, const struct sockaddr_storage *ss, socklen_t len)
{
	struct linger lg = { 1, 0 };
	struct epoll_event ev = { .events = EPOLLOUT };

	s->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -1;
	setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	s->started = now();
	if (connect(s->fd, (const struct sockaddr *)ss, len) && errno != EINPROGRESS) {
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	ev.data.ptr = s;
	epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
	return 0;
}

static int run(int conc, double secs, const char *addr, int port)
{
	static struct slot slots[MAXC];
	struct epoll_event evs[MAXC];
	struct sockaddr_storage ss;
	unsigned long done = 0, failed = 0;
	double t0, t1, end;
	socklen_t len;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (addr_of(addr, port, &ss, &len) || ep < 0)
		return 2;
	t0 = now();
	end = t0 + secs;
	for (int i = 0; i < conc; i++)
		if (start(&slots[i], ep, &ss, len))
			failed++;
	for (;;) {
		int n = epoll_wait(ep, evs, MAXC, 50);
		double t = now();

		for (int i = 0; i < n; i++) {
			struct slot *s = evs[i].data.ptr;
			int err = 0;
			socklen_t el = sizeof(err);

			getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
			if (err)
				failed++;
			else
				done++;
			close(s->fd);	/* linger 0: a reset, no TIME_WAIT */
			s->fd = -1;
		}
		for (int i = 0; i < conc; i++) {
			struct slot *s = &slots[i];

			if (s->fd >= 0 && t - s->started > CONNECT_TIMEOUT) {
				close(s->fd);
				s->fd = -1;
				failed++;
			}
			if (s->fd < 0 && t < end && start(s, ep, &ss, len))
				failed++;
		}
		if (t >= end)
			break;
	}
	t1 = now();
	printf("%lu %.3f %.0f %lu\n", done, t1 - t0, (double)done / (t1 - t0), failed);
	return done ? 0 : 1;
}

int main(int argc, char *argv[])
{
	int conc = 32, c;
	double secs = 3;

	if (argc >= 4 && !strcmp(argv[1], "serve"))
		return serve(argv[2], atoi(argv[3]));
	if (argc < 2 || strcmp(argv[1], "run"))
		goto usage;
	optind = 2;
	while ((c = getopt(argc, argv, "c:d:")) != -1) {
		if (c == 'c')
			conc = atoi(optarg);
		else if (c == 'd')
			secs = atof(optarg);
		else
			goto usage;
	}
	if (argc - optind != 2 || conc < 1 || conc > MAXC || secs <= 0)
		goto usage;
	return run(conc, secs, argv[optind], atoi(argv[optind + 1]));
usage:
	fprintf(stderr, "usage: connload serve ADDR PORT\n"
		"       connload run [-c CONCURRENT] [-d SECONDS] ADDR PORT\n");
	return 2;
}

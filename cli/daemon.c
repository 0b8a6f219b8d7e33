/* daemon.c - `fedwall daemon`: apply at once from the last known good
 * state (a rebooted appliance is protected before DNS answers), then keep
 * every source current on its own schedule: host names and domains at
 * their TTL (clamped to resolve.ttl_min/ttl_max, with jitter), lists when
 * their mtime changes or every minute (the schedule is engine/schedule.c's:
 * engine_sched_*).  SIGHUP reloads the policy if it is valid;
 * SIGTERM/SIGINT leave the rules in place (fail closed).
 *
 * One thread; it sleeps in poll() on a signalfd until the earliest due
 * time.  Each cycle's allocations are freed by the cycle (a fresh DNS
 * context each time); what lives across cycles is the policy, the source
 * list and its schedule, all bounded by the policy.
 *
 * Under systemd (Type=notify) it reports READY=1, STATUS=, RELOADING=1 and
 * STOPPING=1 over $NOTIFY_SOCKET: the datagram protocol of sd_notify(3),
 * written here so that appliances without systemd need no libsystemd. */
#define _GNU_SOURCE     /* fopencookie */
#include "cli.h"
#include "engine/engine.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <cap-ng.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define USAGE "[-f POLICY] [--state-dir DIR] [-d] [-v] [--metrics FILE]\n" \
	"       [--allow-missing-interfaces]"

struct daemon {
	struct common_opts o;
	struct policy *p;
	struct engine_sched sched;      /* the sources and when each is due */
	FILE *log;
	int sfd;                /* signalfd of SIGHUP */
	int stop;               /* signalfd of SIGTERM and SIGINT, also watched
				 * by every DNS wait (dns_stop_on) */
	unsigned cycles;
	uint64_t ran;           /* digest of the policy the last cycle ran */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- sd_notify ----------------------------------------------------------- */

static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') ||
	    (len = strlen(path)) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';          /* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	close(fd);
}

/* ---- logging: diag lines to syslog ----------------------------------- */

struct logbuf {
	struct strbuf line;
};

static int line_prio(const char *s)
{
	if (strstr(s, ": error: "))
		return LOG_ERR;
	if (strstr(s, ": warning: "))
		return LOG_WARNING;
	if (strstr(s, ": note: "))
		return LOG_INFO;
	return LOG_NOTICE;
}

static ssize_t log_write(void *cookie, const char *buf, size_t n)
{
	struct logbuf *lb = cookie;

	for (size_t i = 0; i < n; i++) {
		if (buf[i] != '\n') {
			sb_addc(&lb->line, buf[i]);
			continue;
		}
		syslog(line_prio(sb_str(&lb->line)), "%s", sb_str(&lb->line));
		sb_reset(&lb->line);
	}
	return (ssize_t)n;
}

static int log_close(void *cookie)
{
	struct logbuf *lb = cookie;

	if (lb->line.len)
		syslog(line_prio(sb_str(&lb->line)), "%s", sb_str(&lb->line));
	sb_free(&lb->line);
	free(lb);
	closelog();
	return 0;
}

static FILE *log_open(bool foreground)
{
	cookie_io_functions_t io = { .write = log_write, .close = log_close };
	struct logbuf *lb;
	FILE *f;

	if (foreground)
		return stderr;
	openlog("fedwall", LOG_PID, LOG_DAEMON);
	lb = xcalloc(1, sizeof(*lb));
	f = fopencookie(lb, "w", io);
	if (!f) {
		free(lb);
		return stderr;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

/* ---- cycles ------------------------------------------------------------ */

static void status(struct daemon *dm, const struct engine_refresh *r, int ret)
{
	struct strbuf sb = { 0 };

	sb_addf(&sb, "STATUS=%zu partners, %zu sources; last refresh %s: %u changed,"
		" %u failed, %u refused", dm->p->npartners, dm->sched.src->n,
		ret ? "failed" : "ok", r->changed, r->failed, r->refused);
	notify(sb.s);
	sb_free(&sb);
}

/* The cycle's record in the state directory, then the metrics file
 * (--metrics) that shows it; a failure to write either is logged. */
static void record(const struct daemon *dm, const struct engine_refresh *r, int ret,
		   struct diag *d)
{
	struct last_refresh l = { time(NULL), last_result_of(r, ret), r->changed };

	last_refresh_write(dm->o.state_dir, &l, d);
	if (dm->o.metrics)
		engine_metrics_write(dm->p, dm->o.state_dir, dm->o.metrics, d);
}

/* One refresh of what is due, under the lock.  False if the lock was busy
 * (the due sources stay due and are tried again shortly). */
static bool cycle(struct daemon *dm)
{
	struct engine_refresh r = { .p = dm->p, .src = dm->sched.src, .state_dir = dm->o.state_dir,
				    .verbose = dm->o.verbose, .out = dm->log,
				    .reloaded = dm->ran && dm->ran != dm->p->digest };
	struct diag d;
	int lock, ret;

	diag_init(&d, dm->log);
	lock = state_lock(dm->o.state_dir, LOCK_WAIT_MS, &d);
	if (lock < 0) {
		engine_sched_busy(&dm->sched, now_ms());
		return false;
	}
	ret = engine_refresh_cycle(&r, &d);
	state_unlock(lock);
	dm->ran = dm->p->digest;
	record(dm, &r, ret || d.errors, &d);
	dm->cycles++;
	engine_sched_done(&dm->sched, now_ms());
	status(dm, &r, ret);
	fflush(dm->log);
	/* A cycle frees all it built (the table image, the IRs), but glibc
	 * keeps freed heap pages, and after the first free of an mmapped
	 * buffer it raises its mmap threshold: the next ones come from the
	 * heap.  Between cycles the daemon sleeps: give them back. */
	malloc_trim(0);
	return true;
}

/* (Re)builds the sources of dm->p; `dns_now` makes names due at once,
 * else only lists are (the start: the state is enough to protect). */
static void sources_init(struct daemon *dm, bool dns_now)
{
	engine_sched_init(&dm->sched, dm->p, dns_now, now_ms());
}

static void reload(struct daemon *dm)
{
	struct diag d;
	struct policy *np;

	notify("RELOADING=1");
	diag_init(&d, dm->log);
	np = policy_load(dm->o.policy, &d);
	if (np && cli_ifaces_refused(&dm->o, np, &d)) {
		policy_free(np);
		np = NULL;
	}
	if (!np) {
		fprintf(dm->log, "fedwall: %s has errors, not reloading; still running on"
			" the policy loaded before\n", dm->o.policy);
		fflush(dm->log);
		notify("READY=1");
		return;
	}
	policy_free(dm->p);
	dm->p = np;
	fprintf(dm->log, "fedwall: reloaded %s: %zu partners\n", dm->o.policy, np->npartners);
	sources_init(dm, true);
	cycle(dm);
	notify("READY=1");
}

/* ---- signals and the loop ------------------------------------------- */

/* A signalfd of `sig` (and `sig2`, when not 0), the signals blocked. */
static int signal_fd(int sig, int sig2)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	if (sig2)
		sigaddset(&set, sig2);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Two fds: a stop must end a DNS wait (which only polls the stop fd and
 * leaves the signal for the loop to read), a reload must not. */
static int signals_open(struct daemon *dm)
{
	dm->sfd = signal_fd(SIGHUP, 0);
	if (dm->sfd < 0)
		return dm->sfd;
	dm->stop = signal_fd(SIGTERM, SIGINT);
	if (dm->stop < 0) {
		close(dm->sfd);
		return dm->stop;
	}
	dns_stop_on(dm->stop);
	return 0;
}

/* The signal that came, 0 if none. */
static int signal_take(int sfd)
{
	struct signalfd_siginfo si;

	if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

static void loop(struct daemon *dm)
{
	for (;;) {
		struct pollfd pfd[2] = { { .fd = dm->stop, .events = POLLIN },
					 { .fd = dm->sfd, .events = POLLIN } };
		uint64_t now = now_ms();
		int sig;

		if (poll(pfd, 2, engine_sched_wait_ms(&dm->sched, now)) < 0 && errno != EINTR)
			break;
		sig = pfd[0].revents & POLLIN ? signal_take(dm->stop) : 0;
		if (sig == SIGTERM || sig == SIGINT)
			break;
		sig = pfd[1].revents & POLLIN ? signal_take(dm->sfd) : 0;
		if (sig == SIGHUP) {
			reload(dm);
			continue;
		}
		if (engine_sched_due(&dm->sched, now_ms()))
			cycle(dm);
	}
}

/* ---- least privilege --------------------------------------------------- */

/* Everything but CAP_NET_ADMIN goes, from the effective, permitted and
 * inheritable sets and (when we may: CAP_SETPCAP) the bounding set, and
 * no_new_privs is set: nothing the daemon could be tricked into executing
 * gains privileges.  Root's uid 0 still owns /var/lib/fedwall, so the
 * state is written without CAP_DAC_OVERRIDE.  Fails closed: a daemon that
 * cannot shed its privileges does not run. */
static int drop_privileges(FILE *log)
{
	capng_select_t set = CAPNG_SELECT_CAPS;
	int rc;

	if (capng_get_caps_process() == 0 &&
	    capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP))
		set = CAPNG_SELECT_BOTH;
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
			 CAP_NET_ADMIN) < 0) {
		fprintf(log, "fedwall: error: cannot drop capabilities: capng_update failed\n");
		return -1;
	}
	rc = capng_apply(set);
	if (rc < 0) {
		fprintf(log, "fedwall: error: cannot drop capabilities (capng_apply: %d)\n", rc);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		fprintf(log, "fedwall: error: cannot set no_new_privs: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* Without -d and outside systemd: the classic double fork. */
static int background(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	setsid();
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return -errno;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	return 0;
}

static int run(struct daemon *dm)
{
	int err = signals_open(dm);

	if (err < 0) {
		fprintf(stderr, "fedwall daemon: signalfd: %s\n", strerror(-err));
		return EXIT_ERROR;
	}
	if (!dm->o.foreground && !getenv("NOTIFY_SOCKET") && background() < 0)
		return EXIT_ERROR;
	dm->log = log_open(dm->o.foreground);
	if (drop_privileges(dm->log) < 0) {
		if (dm->log != stderr)
			fclose(dm->log);
		close(dm->sfd);
		close(dm->stop);
		return EXIT_ERROR;
	}
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	fprintf(dm->log, "fedwall: daemon started: %s, %zu partners, state in %s\n",
		dm->o.policy, dm->p->npartners, dm->o.state_dir);
	/* Protected at once from the state; then every name asked now. */
	sources_init(dm, false);
	cycle(dm);
	engine_sched_names_now(&dm->sched, now_ms());
	notify("READY=1");
	loop(dm);
	notify("STOPPING=1");
	fprintf(dm->log, "fedwall: daemon stopping after %u refreshes; table inet %s"
		" stays as it is\n", dm->cycles, dm->p->table);
	if (dm->log != stderr)
		fclose(dm->log);
	close(dm->sfd);
	close(dm->stop);
	return EXIT_OK;
}

int daemon_main(int argc, const char *argv[])
{
	struct daemon dm = { 0 };
	struct diag d;
	int i = common_parse(argc, argv, "fvdim", USAGE, &dm.o), rc;

	if (i == -2)
		return EXIT_OK;
	if (i < 0)
		return EXIT_USAGE;
	diag_init(&d, stderr);
	dm.p = policy_load(dm.o.policy, &d);
	if (dm.p && cli_ifaces_refused(&dm.o, dm.p, &d)) {
		policy_free(dm.p);
		return EXIT_ERROR;
	}
	if (!dm.p)
		return EXIT_ERROR;
	rc = run(&dm);
	engine_sched_free(&dm.sched);
	policy_free(dm.p);
	return rc;
}

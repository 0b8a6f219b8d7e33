/* confirm.c - commit-confirmed apply, the way routers offer "commit
 * confirmed": `fedwall apply --confirm SECONDS` applies, then a detached
 * watcher puts the table back exactly as it was (rules, sets, elements)
 * unless `fedwall confirm` runs in time (engine_confirm_apply; the verb
 * `confirm` itself is cli/confirm.c).
 *
 * The watcher is the process that applies: it forks off first (setsid, a
 * second fork, SIGHUP ignored, stdin from /dev/null), so that no change is
 * ever committed without something in place to undo it, and it reports to
 * the waiting caller over a pipe before it lets go of the caller's
 * terminal.  It keeps the previous table as IR in memory (and writes it as
 * nft text to STATE_DIR/rollback, for the operator to read); rolling back
 * is engine_rollback, under the state directory's lock (the snapshot is
 * engine_snapshot_want).  Whatever someone did to the table in the
 * meantime, the rollback restores the table as it was.
 *
 * STATE_DIR/confirm.pending holds the watcher's pid, the deadline, the
 * table and a random token.  `fedwall confirm` checks that the pid is a
 * watcher (/proc/PID/cmdline) and sends SIGUSR1 with the token through
 * sigqueue(3) (engine_confirm_send): a stray SIGUSR1 confirms nothing.
 * The watcher removes the file when it is done, after writing
 * STATE_DIR/confirm.rolledback (which the next apply or status prints) if
 * it rolled back.
 *
 * A second apply --confirm while one is pending is refused: which state
 * would a rollback restore?  Confirm (or let it roll back) first. */
#define _GNU_SOURCE     /* pipe2 */
#include "engine/engine.h"
#include "generator/generator.h"
#include "nft/nft.h"
#include "refresh/refresh.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define PENDING_FILE CONFIRM_PENDING_FILE
#define MARKER_FILE "confirm.rolledback"
#define ROLLBACK_FILE "rollback"
#define ROLLBACK_LOCK_MS 30000  /* then it rolls back without the lock */
static char *state_path(const char *dir, const char *name)
{
	struct strbuf sb = { 0 };

	sb_addf(&sb, "%s/%s", dir, name);
	return sb.s;
}

/* A state file to read: never blocks on a FIFO, refuses what is not a
 * private regular file (file_open_private; said through `d`, when not
 * NULL, unless it is simply missing).  NULL with errno set. */
static FILE *state_fopen(const char *path, struct diag *d)
{
	struct diag quiet;
	int fd;
	FILE *f;

	diag_init(&quiet, NULL);
	if (!d || (access(path, F_OK) < 0 && errno == ENOENT))
		d = &quiet;
	fd = file_open_private(path, d);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	f = fdopen(fd, "re");
	if (!f)
		close(fd);
	return f;
}

int engine_pending_read(const char *state_dir, struct engine_pending *pd, struct diag *d)
{
	char *path = state_path(state_dir, PENDING_FILE);
	FILE *f = state_fopen(path, d);
	char key[16], val[256];
	unsigned seen = 0;

	free(path);
	memset(pd, 0, sizeof(*pd));
	if (!f)
		return -errno;
	while (fscanf(f, "%15s %255s", key, val) == 2) {
		if (!strcmp(key, "pid"))
			pd->pid = strtol(val, NULL, 10), seen |= 1;
		else if (!strcmp(key, "deadline"))
			pd->deadline = strtoll(val, NULL, 10), seen |= 2;
		else if (!strcmp(key, "token"))
			pd->token = strtoull(val, NULL, 16), seen |= 4;
		else if (!strcmp(key, "table"))
			snprintf(pd->table, sizeof(pd->table), "%s", val), seen |= 8;
	}
	fclose(f);
	return seen == 15 && pd->pid > 0 ? 0 : -EINVAL;
}

/* The files of the state directory are renamed over, never opened at
 * their path: a FIFO there must not block the apply (file_write_state). */
static int pending_write(const char *dir, const struct engine_pending *pd, struct diag *d)
{
	char *path = state_path(dir, PENDING_FILE);
	struct strbuf sb = { 0 };
	int ret;

	sb_addf(&sb, "pid %ld\ndeadline %" PRId64 "\ntable %s\ntoken %016" PRIx64 "\n",
		pd->pid, pd->deadline, pd->table, pd->token);
	ret = file_write_state(path, sb.s, sb.len, 0600, true, d);
	sb_free(&sb);
	free(path);
	return ret;
}

bool engine_confirm_watcher(long pid)
{
	char path[64], buf[4096];
	bool apply = false, confirm = false;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (const char *a = buf; a < buf + n; a += strlen(a) + 1) {
		apply |= !strcmp(a, "apply");
		confirm |= !strncmp(a, "--confirm", 9);
	}
	return apply && confirm;
}

char *engine_confirm_marker(const char *dir, uint64_t *token)
{
	char *path = state_path(dir, MARKER_FILE), *line = NULL, *ret = NULL;
	size_t cap = 0;
	FILE *f = state_fopen(path, NULL);

	*token = 0;
	if (f && getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (fscanf(f, "token %" SCNx64, token) != 1)
			*token = 0;
		ret = line;
		line = NULL;
	}
	if (f)
		fclose(f);
	free(line);
	free(path);
	return ret;
}

void engine_confirm_notes(const char *state_dir, bool clear, FILE *out)
{
	struct engine_pending pd;
	uint64_t token;
	char *path, *line;

	if (!engine_pending_read(state_dir, &pd, NULL) && engine_confirm_watcher(pd.pid)) {
		int64_t left = pd.deadline - (int64_t)time(NULL);

		fprintf(out, "fedwall: apply --confirm pending (watcher pid %ld): table inet %s"
			" goes back to its state before it in %" PRId64 " s unless 'fedwall"
			" confirm' runs\n", pd.pid, pd.table, left > 0 ? left : 0);
	}
	line = engine_confirm_marker(state_dir, &token);
	if (line) {
		fprintf(out, "fedwall: %s\n", line);
		if (clear) {
			path = state_path(state_dir, MARKER_FILE);
			unlink(path);
			free(path);
		}
	}
	free(line);
}

/* ---- the watcher ------------------------------------------------------- */

enum { W_CONFIRMED, W_TIMEOUT, W_TERM };

struct watch {
	const struct engine_confirm *c;
	const struct policy *p;         /* whose guards bound both commits */
	struct engine_snapshot snap;    /* what is applied, the table before */
	unsigned secs;
	char *dir;                      /* the state directory, absolute */
	struct engine_pending pd;
	struct timespec end;            /* CLOCK_MONOTONIC */
};

static void write_rollback_text(const struct watch *w, struct diag *d)
{
	struct nft_text_opts to = { .source = "the live table before apply --confirm",
				    .generator = "fedwall " FEDWALL_VERSION };
	char *path = state_path(w->dir, ROLLBACK_FILE);
	struct strbuf sb = { 0 };
	struct diag quiet;
	int ret;

	if (w->snap.prev)
		nft_text(&sb, w->snap.prev, &to);
	else
		sb_addf(&sb, "# There was no table inet %s before apply --confirm: rolling"
			" back deletes it.\ntable inet %s {}\ndelete table inet %s\n",
			w->pd.table, w->pd.table, w->pd.table);
	diag_init(&quiet, NULL);
	ret = file_write_state(path, sb.s, sb.len, 0600, true, &quiet);
	if (ret)    /* only for the operator's eyes: the rollback is in memory */
		diag_warn(d, NULL, "cannot write '%s': %s", path,
			  ret == -EPERM ? "not a regular file" : strerror(-ret));
	sb_free(&sb);
	free(path);
}

/* Refuses when another watcher is pending; clears a stale record. */
static bool pending_busy(const char *dir, struct diag *d)
{
	char *path = state_path(dir, PENDING_FILE);
	struct engine_pending pd;
	int ret = engine_pending_read(dir, &pd, d);
	bool busy = false;

	if (!ret && engine_confirm_watcher(pd.pid)) {
		int64_t left = pd.deadline - (int64_t)time(NULL);

		diag_error(d, NULL, "an apply --confirm is pending (watcher pid %ld, table"
			   " inet %s, %" PRId64 " s left): run 'fedwall confirm' first, or"
			   " wait for its rollback", pd.pid, pd.table, left > 0 ? left : 0);
		busy = true;
	} else if (ret == -EPERM) {
		diag_error(d, NULL, "'%s' is not what fedwall writes there: remove it to go on",
			   path);
		busy = true;
	} else if (ret != -ENOENT) {
		diag_warn(d, NULL, "'%s' names no running watcher: the apply --confirm it"
			  " records was neither confirmed nor rolled back; removing it", path);
		unlink(path);
	}
	free(path);
	return busy;
}

static void random_token(uint64_t *t)
{
	if (getrandom(t, sizeof(*t), 0) != (ssize_t)sizeof(*t))
		*t = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ (uintptr_t)t;
	if (!*t)
		*t = 1;
}

/* Applies and records what the rollback needs.  Called with the lock. */
static int arm(struct watch *w, struct diag *d)
{
	struct engine_apply_opts ao = { .want = engine_snapshot_want, .arg = &w->snap,
					.verbose = w->c->verbose, .out = w->c->out, .policy = w->p,
					.cache_dir = w->dir };
	struct engine_applied res;
	struct timespec now;
	int ret;

	if (pending_busy(w->dir, d))
		return -EBUSY;
	engine_confirm_notes(w->dir, true, stderr);
	ret = engine_apply(w->snap.want->table, &ao, &res, d);
	if (ret)
		return ret;
	if (w->snap.foreign)
		diag_warn(d, NULL, "table inet %s held objects fedwall did not write: a"
			  " rollback restores only fedwall's own", w->snap.want->table);
	write_rollback_text(w, d);
	clock_gettime(CLOCK_MONOTONIC, &now);
	w->end = now;
	w->end.tv_sec += w->secs;
	w->pd.pid = (long)getpid();
	w->pd.deadline = (int64_t)time(NULL) + w->secs;
	random_token(&w->pd.token);
	ret = pending_write(w->dir, &w->pd, d);
	if (ret) {
		diag_error(d, NULL, "cannot record the pending confirm in '%s/%s': %s;"
			   " rolling back now", w->dir, PENDING_FILE, strerror(-ret));
		if (!engine_rollback(w->pd.table, w->snap.prev, w->p, d))
			diag_note(d, NULL, "table inet %s is as it was", w->pd.table);
		return ret;
	}
	if (w->c->out)
		fprintf(w->c->out, "fedwall: run 'fedwall confirm' within %u s, or table inet"
			" %s goes back to its state before this apply\n", w->secs, w->pd.table);
	return 0;
}

static int wait_for(const struct watch *w)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (;;) {
		struct timespec now, left;
		siginfo_t si;
		int sig;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = w->end.tv_sec - now.tv_sec;
		left.tv_nsec = w->end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_nsec += 1000000000L;
			left.tv_sec--;
		}
		if (left.tv_sec < 0)
			return W_TIMEOUT;
		sig = sigtimedwait(&set, &si, &left);
		if (sig < 0 && errno == EAGAIN)
			return W_TIMEOUT;
		if (sig == SIGTERM || sig == SIGINT)
			return W_TERM;
		if (sig == SIGUSR1 && si.si_code == SI_QUEUE &&
		    (uintptr_t)si.si_value.sival_ptr == (uintptr_t)w->pd.token)
			return W_CONFIRMED;
		if (sig == SIGUSR1)
			syslog(LOG_WARNING, "fedwall: ignored a SIGUSR1 from pid %ld without"
			       " the token of 'fedwall confirm'", (long)si.si_pid);
	}
}

static void log_lines(char *buf, int prio)
{
	for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		syslog(prio, "%s", line);
	}
}

static void write_marker(const struct watch *w, const char *msg)
{
	char *path = state_path(w->dir, MARKER_FILE), when[64];
	struct strbuf sb = { 0 };
	time_t t = time(NULL);
	struct diag quiet;
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", localtime_r(&t, &tm));
	sb_addf(&sb, "%s, at %s\ntoken %016" PRIx64 "\n", msg, when, w->pd.token);
	diag_init(&quiet, NULL);
	if (file_write_state(path, sb.s, sb.len, 0600, true, &quiet))
		syslog(LOG_ERR, "fedwall: cannot write '%s'", path);
	sb_free(&sb);
	free(path);
}

static void finish(struct watch *w, int why)
{
	char *path = state_path(w->dir, PENDING_FILE), *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	struct strbuf msg = { 0 };
	struct diag d;
	int lock, ret;

	diag_init(&d, mem);
	lock = state_lock(w->dir, ROLLBACK_LOCK_MS, &d);
	ret = engine_rollback(w->pd.table, w->snap.prev, w->p, &d);
	if (ret)
		sb_addf(&msg, "rollback of table inet %s to its state before apply --confirm"
			" FAILED (%s): the table stays as applied", w->pd.table,
			strerror(-ret));
	else
		sb_addf(&msg, "rolled back table inet %s to its state before apply --confirm"
			"%s", w->pd.table, w->snap.prev ? "" : " (there was none: deleted it)");
	if (why == W_TERM)
		sb_addf(&msg, " (the watcher was stopped before a confirm)");
	else
		sb_addf(&msg, " (not confirmed within %u s)", w->secs);
	write_marker(w, sb_str(&msg));
	unlink(path);
	state_unlock(lock);
	if (mem)
		fclose(mem);
	log_lines(buf, LOG_WARNING);
	syslog(ret ? LOG_ERR : LOG_WARNING, "fedwall: %s", sb_str(&msg));
	sb_free(&msg);
	free(buf);
	free(path);
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	fflush(stdout);
	fflush(stderr);
	if (fd < 0)
		return;
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	if (chdir("/") < 0)
		(void)0;        /* only so that no mount is kept busy */
}

/* The grandchild: applies, tells the caller, then waits. */
static int watcher(struct watch *w, int report, struct diag *d)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), lock, ret;
	char *path;

	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	signal(SIGPIPE, SIG_IGN);
	/* Absolute: the watcher leaves the caller's directory. */
	lock = state_lock(w->c->state_dir, LOCK_WAIT_MS, d);
	ret = lock < 0 ? lock : 0;
	if (!ret) {
		w->dir = realpath(w->c->state_dir, NULL);
		if (!w->dir) {
			ret = -errno;
			diag_error(d, NULL, "'%s': %s", w->c->state_dir, strerror(errno));
		}
	}
	if (!ret)
		ret = arm(w, d);
	state_unlock(lock);
	fflush(stdout);
	fflush(stderr);
	if (write(report, ret ? "1" : "0", 1) != 1)
		(void)0;        /* the caller is gone: carry on all the same */
	close(report);
	if (ret)
		return ret;
	detach_stdio();
	openlog("fedwall", LOG_PID, LOG_DAEMON);
	ret = wait_for(w);
	if (ret == W_CONFIRMED) {
		path = state_path(w->dir, PENDING_FILE);
		unlink(path);
		free(path);
		syslog(LOG_NOTICE, "fedwall: apply --confirm of table inet %s confirmed",
		       w->pd.table);
	} else {
		finish(w, ret);
	}
	closelog();
	return 0;
}

/* The child of engine_confirm_apply(): a session of its own, whose
 * child (the watcher, reporting on `report`) returns; it exits. */
static int detach(struct watch *w, int report, struct diag *d)
{
	sigset_t set;
	pid_t pid;
	int rc;

	signal(SIGHUP, SIG_IGN);
	/* Blocked before the pending file exists, taken by sigtimedwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	setsid();
	pid = fork();
	if (pid != 0)   /* the middle child owns nothing of its own */
		_exit(pid < 0 ? 1 : 0);
	rc = watcher(w, report, d);
	ir_free(w->snap.prev);
	free(w->dir);
	return rc;
}

int engine_confirm_apply(const struct engine_confirm *c, struct diag *d)
{
	struct watch w = { .c = c, .p = c->p, .snap = { .want = c->want }, .secs = c->secs };
	pid_t pid;
	int fds[2];
	ssize_t n;
	char ch = 0;

	snprintf(w.pd.table, sizeof(w.pd.table), "%s", c->want->table);
	fflush(stdout);
	fflush(stderr);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		int err = errno;

		diag_error(d, NULL, "pipe: %s", strerror(err));
		return -err;
	}
	pid = fork();
	if (pid < 0) {
		diag_error(d, NULL, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -EAGAIN;
	}
	if (pid == 0) {
		close(fds[0]);
		return detach(&w, fds[1], d);
	}
	close(fds[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	do
		n = read(fds[0], &ch, 1);
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	if (n == 1)
		return ch == '0' ? 0 : -ECANCELED;
	diag_error(d, NULL, "the watcher of apply --confirm ended before it reported;"
		   " see the system log and 'fedwall status'");
	return -EPIPE;
}

int engine_confirm_send(const struct engine_pending *pd)
{
	union sigval val;

	memset(&val, 0, sizeof(val));
	val.sival_ptr = (void *)(uintptr_t)pd->token;
	return sigqueue((pid_t)pd->pid, SIGUSR1, val) < 0 ? -errno : 0;
}

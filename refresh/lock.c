/* lock.c - the state directory's lock: one fedwall at a time changes the
 * table and the state (cron's refresh, the daemon, apply --confirm's
 * watcher), and the directory that holds the last known good addresses
 * is checked to be nobody else's first. */
#include "refresh/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long lock_holder(int fd)
{
	char buf[32] = { 0 };
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	return n > 0 ? strtol(buf, NULL, 10) : 0;
}

static void lock_mark(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) != n)
		(void)ftruncate(fd, 0);
}

/* The state directory holds the last known good addresses: nobody but
 * root (or the user fedwall runs as) may write into it. */
static int check_state_dir(const char *state_dir, struct diag *d)
{
	int fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
	int ret;

	if (fd < 0) {
		ret = -errno;
		diag_error(d, NULL, "cannot open the state directory '%s': %s", state_dir,
			   strerror(errno));
		return ret;
	}
	ret = file_check_private(state_dir, fd, true, d);
	close(fd);
	return ret;
}

/* A read-only state directory must not stop a refresh from protecting
 * from memory: flock works on a read-only fd (of the lock file, or of the
 * directory when there is none).  Saving the state will fail, loudly. */
static int lock_readonly(const char *state_dir, const char *path, struct diag *d)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0 && errno == ENOENT)
		fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		diag_warn(d, NULL, "the state directory '%s' is read-only: the last known"
			  " good state cannot be updated", state_dir);
	else
		errno = EROFS;
	return fd;
}

int state_lock(const char *state_dir, unsigned wait_ms, struct diag *d)
{
	struct strbuf path = { 0 };
	struct timespec tick = { 0, 50 * 1000000 };
	unsigned waited = 0;
	int fd, ret;

	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		diag_error(d, NULL, "cannot create the state directory '%s': %s", state_dir,
			   strerror(errno));
		return ret;
	}
	ret = check_state_dir(state_dir, d);
	if (ret)
		return ret;
	sb_addf(&path, "%s/lock", state_dir);
	fd = open(path.s, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0 && errno == EROFS)
		fd = lock_readonly(state_dir, path.s, d);
	if (fd < 0) {
		ret = -errno;
		diag_error(d, NULL, "cannot open '%s': %s", path.s, strerror(errno));
		goto out_free;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if ((errno != EWOULDBLOCK && errno != EINTR) || waited >= wait_ms) {
			long pid = lock_holder(fd);

			ret = errno == EWOULDBLOCK || errno == EINTR ? -EBUSY : -errno;
			if (pid > 0)
				diag_error(d, NULL, "another fedwall (pid %ld) holds %s; gave up"
					   " after %u s", pid, path.s, wait_ms / 1000);
			else
				diag_error(d, NULL, "another fedwall holds %s; gave up after"
					   " %u s", path.s, wait_ms / 1000);
			close(fd);
			goto out_free;
		}
		nanosleep(&tick, NULL);
		waited += 50;
	}
	lock_mark(fd);
	ret = fd;
out_free:
	sb_free(&path);
	return ret;
}

void state_unlock(int fd)
{
	if (fd < 0)
		return;
	if (ftruncate(fd, 0) < 0)
		(void)0;        /* a stale pid in the file is only a hint */
	close(fd);
}

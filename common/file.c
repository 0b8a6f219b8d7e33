/* file.c - writing a file so that a reader (nft -f, a metrics collector,
 * the next fedwall run) sees either the old or the new content, never a
 * part: a temporary file beside the target, fsync, rename, fsync of the
 * directory so the rename itself survives a power cut.  Two intents (see
 * common.h): what the user named with -o is written through when it is a
 * device or FIFO; the state directory's files are only ever renamed over,
 * and anything there that is not a regular file is refused unopened. */
#define _GNU_SOURCE             /* mkostemp */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path))
			  : xstrdup(".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = 0;

	free(dir);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* `generate -o /dev/stdout`, a FIFO a collector reads, /dev/null: there
 * is no file to replace, and renaming over one would put a regular file
 * in its place (as root, /dev/null itself).  Written straight through. */
/* A FIFO nobody reads would block open() for ever (and the daemon's
 * --metrics with it, deaf to SIGTERM): opened without blocking it fails
 * at once, -ENXIO; once a reader is there, writes block as usual. */
static int write_through(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	int err, fl;

	if (fd < 0)
		return -errno;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	err = write_all(fd, buf, n);
	if (close(fd) < 0 && !err)
		err = -errno;
	return err;
}

/* Temporary file beside `path`, written (and fsynced when `durable`),
 * then renamed over it: nothing is ever opened for writing at `path`
 * itself. */
static int rename_over(const char *path, const void *buf, size_t n, unsigned mode,
		       bool durable)
{
	size_t len = strlen(path);
	char *tmp = xmalloc(len + sizeof(".XXXXXX"));
	int fd, err;

	memcpy(tmp, path, len);
	memcpy(tmp + len, ".XXXXXX", sizeof(".XXXXXX"));
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out_free_tmp;
	}
	err = write_all(fd, buf, n);
	if (!err && fchmod(fd, (mode_t)mode) < 0)
		err = -errno;
	if (!err && durable && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	else if (durable)
		err = fsync_dir_of(path);
out_free_tmp:
	free(tmp);
	return err;
}

int file_write_atomic(const char *path, const void *buf, size_t n, unsigned mode)
{
	struct stat st;

	/* stat() follows a symlink as open() would (and as the kernel's
	 * protected_symlinks allows).  A link to a regular file is replaced
	 * itself, never its target: root writing to a path in a directory
	 * others can write must not be led elsewhere by a link there.  No
	 * block device ever takes a ruleset. */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode))
			return -EISDIR;
		return S_ISBLK(st.st_mode) ? -EOPNOTSUPP : write_through(path, buf, n);
	}
	return rename_over(path, buf, n, mode, true);
}

const char *file_write_strerror(int err)
{
	return err == -ENXIO ? "a FIFO that nobody reads" : strerror(-err);
}

static const char *type_name(mode_t m);

/* 0 when `path` is missing, a regular file or a symlink to one (or to
 * nothing): what a rename may replace.  Looked at with lstat() and stat(),
 * which open nothing, so a FIFO cannot block us. */
static int state_path_ok(const char *path, struct diag *d)
{
	struct stat lst, st;

	if (lstat(path, &lst) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISREG(lst.st_mode))
		return 0;
	if (!S_ISLNK(lst.st_mode)) {
		diag_error(d, NULL, "%s: refusing to write: %s, not a regular file", path,
			   type_name(lst.st_mode));
		return -EPERM;
	}
	if (stat(path, &st) < 0)
		return errno == ENOENT || errno == ELOOP ? 0 : -errno;
	if (S_ISREG(st.st_mode))
		return 0;
	diag_error(d, NULL, "%s: refusing to write: a symlink to %s, not a regular file",
		   path, type_name(st.st_mode));
	return -EPERM;
}

int file_write_state(const char *path, const void *buf, size_t n, unsigned mode,
		     bool durable, struct diag *d)
{
	int err = state_path_ok(path, d);

	return err ? err : rename_over(path, buf, n, mode, durable);
}

/* ---- trusting a file we read ------------------------------------------- */

static const char *type_name(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISSOCK(m))
		return "a socket";
	return "a special file";
}

/* Judged on the open fd, never on the path again: what was checked is
 * what is read (no window between a stat and an open). */
int file_check_private(const char *path, int fd, bool want_dir, struct diag *d)
{
	struct stat sb;
	unsigned mode;

	if (fstat(fd, &sb) < 0) {
		int err = -errno;

		diag_error(d, NULL, "%s: cannot stat: %s", path, strerror(errno));
		return err;
	}
	mode = (unsigned)sb.st_mode & 07777;
	if (want_dir ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode)) {
		if (want_dir)
			diag_error(d, NULL, "%s: refusing: not a directory", path);
		else
			diag_error(d, NULL, "%s: refusing: %s, not a regular file", path,
				   type_name(sb.st_mode));
		return -EPERM;
	}
	if (sb.st_uid != 0 && sb.st_uid != geteuid()) {
		diag_error(d, NULL, "%s: refusing: owned by uid %u, neither root nor the"
			   " user fedwall runs as (uid %u)", path, (unsigned)sb.st_uid,
			   (unsigned)geteuid());
		return -EPERM;
	}
	if (mode & (S_IWGRP | S_IWOTH)) {
		diag_error(d, NULL, "%s: refusing: writable by %s (mode %04o)", path,
			   mode & S_IWOTH ? "others" : "group", mode);
		return -EPERM;
	}
	return 0;
}

int file_open_private(const char *path, struct diag *d)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	int err;

	if (fd < 0) {
		err = -errno;
		diag_error(d, NULL, "%s: cannot open: %s", path, strerror(errno));
		return err;
	}
	err = file_check_private(path, fd, false, d);
	if (err) {
		close(fd);
		return err;
	}
	/* O_NONBLOCK only kept a FIFO from blocking the open; reads of a
	 * regular file ignore it, but clear it for clarity. */
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

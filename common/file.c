/* file.c - writing a file so that a reader (nft -f, a metrics collector,
 * the next fedwall run) sees either the old or the new content, never a
 * part: a temporary file beside the target, fsync, rename, fsync of the
 * directory so the rename itself survives a power cut. */
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

int file_write_atomic(const char *path, const void *buf, size_t n, unsigned mode)
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
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	else
		err = fsync_dir_of(path);
out_free_tmp:
	free(tmp);
	return err;
}

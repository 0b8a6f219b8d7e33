/* record.c - the record of the last refresh in the state directory
 * (STATE_DIR/last-refresh): written by refresh and the daemon after each
 * run, a failed one too; read by status for the metrics. */
#include "engine/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const last_names[] = { "ok", "refused", "failed" };

enum last_result last_result_of(const struct engine_refresh *r, int ret)
{
	if (ret || r->failed)
		return LAST_FAILED;
	return r->refused ? LAST_REFUSED : LAST_OK;
}

int last_refresh_write(const char *state_dir, const struct last_refresh *l, struct diag *d)
{
	struct strbuf path = { 0 }, body = { 0 };
	int err;

	/* A run that failed before taking the lock (a policy with errors)
	 * may be the first: the directory is made as state_lock() makes it. */
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		diag_error(d, NULL, "cannot create the state directory '%s' for the record"
			   " of this run: %s", state_dir, strerror(errno));
		goto out_free;
	}
	sb_addf(&path, "%s/%s", state_dir, LAST_REFRESH_FILE);
	sb_addf(&body, "%lld %s %u\n", (long long)l->time, last_names[l->result], l->changed);
	err = file_write_state(path.s, body.s, body.len, 0600, true, d);
	if (err && err != -EPERM)
		diag_error(d, NULL, "cannot write '%s': %s", path.s, strerror(-err));
out_free:
	sb_free(&body);
	sb_free(&path);
	return err;
}

static int last_parse(const char *s, struct last_refresh *l)
{
	char word[16];
	long long t;
	unsigned changed;
	int end = 0;

	if (sscanf(s, "%lld %15s %u\n%n", &t, word, &changed, &end) != 3 || !end ||
	    s[end] || t < 0)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(last_names); i++)
		if (!strcmp(word, last_names[i])) {
			*l = (struct last_refresh){ t, (enum last_result)i, changed };
			return 0;
		}
	return -EINVAL;
}

/* The record of `path`, opened and trusted as fd. */
static int last_read(const char *path, int fd, struct last_refresh *l, struct diag *d)
{
	char buf[128];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int err = n < 0 ? -errno : 0;

	if (n >= 0) {
		buf[n] = '\0';
		err = last_parse(buf, l);
	}
	if (err)
		diag_warn(d, NULL, "%s: ignored: %s", path,
			  err == -EINVAL ? "not a last-refresh record" : strerror(-err));
	return err;
}

int last_refresh_read(const char *state_dir, struct last_refresh *l, struct diag *d)
{
	struct strbuf path = { 0 };
	int fd, err;

	sb_addf(&path, "%s/%s", state_dir, LAST_REFRESH_FILE);
	/* Not file_open_private: a missing record is no error. */
	fd = open(path.s, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	err = fd < 0 ? -errno : file_check_private(path.s, fd, false, d);
	if (fd < 0 && err != -ENOENT)
		diag_error(d, NULL, "%s: cannot open: %s", path.s, strerror(-err));
	if (!err)
		err = last_read(path.s, fd, l, d);
	if (fd >= 0)
		close(fd);
	sb_free(&path);
	return err;
}

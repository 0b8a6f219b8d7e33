/* Unit tests of file_check_private() and file_open_private() (common/file.c)
 * and of the callers that must refuse what others may write: policy_load,
 * list_read, state_load.  Files live in a mkdtemp directory. */
#define _GNU_SOURCE
#include "common/common.h"
#include "policy/policy.h"
#include "refresh/refresh.h"
#include "tests/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char dir[64];

/* mkfile NAME MODE TEXT: DIR/NAME with TEXT, chmod MODE; the path. */
static const char *mkfile(const char *name, unsigned mode, const char *text)
{
	static char path[160];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	chmod(path, mode);
	return path;
}

/* Runs file_open_private on path; *msg gets what it printed. */
static int open_priv(const char *path, char *msg, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	struct diag d;
	int fd;

	diag_init(&d, mem);
	fd = file_open_private(path, &d);
	fclose(mem);
	snprintf(msg, n, "%s", buf ? buf : "");
	free(buf);
	if (fd >= 0)
		close(fd);
	return fd >= 0 ? 0 : fd;
}

TEST(private_file_accepted)
{
	char msg[256];

	CHECK_INT(open_priv(mkfile("ok", 0644, "x\n"), msg, sizeof(msg)), 0);
	CHECK_STR(msg, "");
	CHECK_INT(open_priv(mkfile("ok", 0600, "x\n"), msg, sizeof(msg)), 0);
	CHECK_INT(open_priv(mkfile("ok", 0444, "x\n"), msg, sizeof(msg)), 0);
}

TEST(writable_by_others_refused)
{
	const char *p = mkfile("ww", 0666, "x\n");
	char msg[256], want[256];

	CHECK_INT(open_priv(p, msg, sizeof(msg)), -EPERM);
	snprintf(want, sizeof(want), "fedwall: error: %s: refusing: writable by others"
		 " (mode 0666)\n", p);
	CHECK_STR(msg, want);
}

TEST(writable_by_group_refused)
{
	const char *p = mkfile("gw", 0660, "x\n");
	char msg[256], want[256];

	CHECK_INT(open_priv(p, msg, sizeof(msg)), -EPERM);
	snprintf(want, sizeof(want), "fedwall: error: %s: refusing: writable by group"
		 " (mode 0660)\n", p);
	CHECK_STR(msg, want);
}

TEST(other_owner_refused)
{
	const char *p = mkfile("owner", 0644, "x\n");
	char msg[256];

	if (geteuid() != 0) {
		printf("SKIP: test_perms/other_owner_refused (needs root to chown)\n");
		return;
	}
	CHECK(chown(p, 65534, 65534) == 0);
	CHECK_INT(open_priv(p, msg, sizeof(msg)), -EPERM);
	CHECK(strstr(msg, ": refusing: owned by uid 65534, neither root nor") != NULL);
}

TEST(fifo_refused_without_blocking)
{
	char path[160], msg[256], want[256];

	snprintf(path, sizeof(path), "%s/fifo", dir);
	CHECK(mkfifo(path, 0600) == 0);
	CHECK_INT(open_priv(path, msg, sizeof(msg)), -EPERM);
	snprintf(want, sizeof(want), "fedwall: error: %s: refusing: a FIFO, not a regular"
		 " file\n", path);
	CHECK_STR(msg, want);
	unlink(path);
}

TEST(directory_and_device_refused)
{
	char msg[256];

	CHECK_INT(open_priv(dir, msg, sizeof(msg)), -EPERM);
	CHECK(strstr(msg, "refusing: a directory, not a regular file") != NULL);
	CHECK_INT(open_priv("/dev/null", msg, sizeof(msg)), -EPERM);
	CHECK(strstr(msg, "refusing: a character device, not a regular file") != NULL);
}

TEST(missing_file)
{
	char path[160], msg[256];

	snprintf(path, sizeof(path), "%s/nope", dir);
	CHECK_INT(open_priv(path, msg, sizeof(msg)), -ENOENT);
	CHECK(strstr(msg, "nope: cannot open: No such file or directory") != NULL);
}

TEST(state_dir_check)
{
	struct diag d;
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	diag_init(&d, NULL);
	CHECK_INT(file_check_private(dir, fd, true, &d), 0);
	fchmod(fd, 0777);
	CHECK_INT(file_check_private(dir, fd, true, &d), -EPERM);
	fchmod(fd, 0700);
	CHECK_INT(d.errors, 1);
	close(fd);
}

/* The callers refuse too, with the same message, and read nothing. */
TEST(policy_load_refuses)
{
	const char *p = mkfile("policy.yaml", 0646, "version: 1\n");
	char path[160];
	struct diag d;
	struct policy *pol;

	snprintf(path, sizeof(path), "%s", p);
	diag_init(&d, NULL);
	pol = policy_load(path, &d);
	CHECK(pol == NULL);
	CHECK_INT(d.errors, 1);
	chmod(path, 0644);
	pol = policy_load(path, &d);
	CHECK(pol != NULL);
	policy_free(pol);
}

TEST(list_read_refuses)
{
	char path[160];
	struct addr_list l = { 0 };
	struct diag d;

	snprintf(path, sizeof(path), "%s", mkfile("list.txt", 0622, "192.0.2.1\n"));
	diag_init(&d, NULL);
	CHECK(!list_read(path, NULL, &l, &d));
	CHECK_INT(l.n, 0);
	CHECK_INT(d.errors, 1);
	chmod(path, 0600);
	CHECK(list_read(path, NULL, &l, &d));
	CHECK_INT(l.n, 1);
	addr_list_free(&l);
}

TEST(state_load_refuses)
{
	char path[160];
	struct state st = { 0 };
	struct prefix p;
	struct diag d;

	snprintf(path, sizeof(path), "%s/state", dir);
	prefix_parse("192.0.2.1", &p);
	CHECK_INT(state_update(&st, STATE_HOST, "a.example.test", STATE_FROM_DNS, 1, 60,
			       &p, 1), 0);
	CHECK_INT(state_save(&st, path), 0);
	state_free(&st);
	chmod(path, 0666);
	diag_init(&d, NULL);
	CHECK_INT(state_load(&st, path, &d), -EPERM);
	CHECK_INT(st.n, 0);
	CHECK_INT(d.errors, 1);
	chmod(path, 0600);
	CHECK_INT(state_load(&st, path, &d), 0);
	CHECK_INT(st.n, 1);
	state_free(&st);
}

static void read_small(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "r");

	memset(buf, 0, n);
	CHECK(f != NULL);
	if (f) {
		CHECK(fread(buf, 1, n - 1, f) > 0);
		fclose(f);
	}
}

/* file_write_atomic on what is not a regular file: a character device
 * (a private /dev/null made with mknod, never the real one) stays a
 * device and takes the bytes, also through a symlink (/dev/stdout); a
 * symlink to a regular file is replaced itself, and its target is left
 * alone (a link planted where root writes leads nowhere); a directory
 * and a block device are refused. */
TEST(atomic_write_through_devices_not_links)
{
	char nul[160], nlink[160], blk[160], target[160], link[160], buf[16];
	struct stat st;

	snprintf(nul, sizeof(nul), "%s/null", dir);
	snprintf(nlink, sizeof(nlink), "%s/nlink", dir);
	snprintf(blk, sizeof(blk), "%s/blk", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	if (mknod(nul, S_IFCHR | 0666, makedev(1, 3)) == 0 &&
	    mknod(blk, S_IFBLK | 0600, makedev(7, 255)) == 0) {
		CHECK_INT(file_write_atomic(nul, "abc", 3, 0600), 0);
		CHECK(stat(nul, &st) == 0 && S_ISCHR(st.st_mode));
		CHECK(symlink("null", nlink) == 0);
		CHECK_INT(file_write_atomic(nlink, "abc", 3, 0600), 0);
		CHECK(lstat(nlink, &st) == 0 && S_ISLNK(st.st_mode));
		CHECK(stat(nul, &st) == 0 && S_ISCHR(st.st_mode));
		CHECK_INT(file_write_atomic(blk, "abc", 3, 0600), -EOPNOTSUPP);
		CHECK(stat(blk, &st) == 0 && S_ISBLK(st.st_mode));
	} else {
		fprintf(stderr, "skip: mknod: %s (not root?)\n", strerror(errno));
	}
	CHECK_INT(file_write_atomic(target, "old", 3, 0600), 0);
	CHECK(symlink("target", link) == 0);
	CHECK_INT(file_write_atomic(link, "new", 3, 0600), 0);
	CHECK(lstat(link, &st) == 0 && S_ISREG(st.st_mode));
	read_small(link, buf, sizeof(buf));
	CHECK_STR(buf, "new");
	read_small(target, buf, sizeof(buf));
	CHECK_STR(buf, "old");
	CHECK_INT(file_write_atomic(dir, "x", 1, 0600), -EISDIR);
}

__attribute__((constructor(101))) static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fwt-perms.XXXXXX");
	if (!mkdtemp(dir))
		exit(1);
}

__attribute__((destructor)) static void teardown(void)
{
	char cmd[160];
	const char *names[] = { "ok", "ww", "gw", "owner", "policy.yaml", "list.txt",
				"state", "null", "nlink", "blk", "target", "link" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(cmd, sizeof(cmd), "%s/%s", dir, names[i]);
		unlink(cmd);
	}
	rmdir(dir);
}

/* confirm.c - `fedwall confirm`: keeps what a pending `apply --confirm`
 * applied.  It signals the watcher (engine/confirm.c says how a stray
 * signal is told apart) and waits until the watcher has removed its
 * pending record; a rollback that came first is reported as too late. */
#include "cli.h"
#include "engine/engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONFIRM_WAIT_MS 10000

#define CONFIRM_USAGE "[--state-dir DIR]"

static int confirm_wait(const char *dir, const struct engine_pending *pd)
{
	struct timespec tick = { 0, 20 * 1000000 };
	struct engine_pending now;
	uint64_t token;
	char *line;

	for (unsigned waited = 0;; waited += 20) {
		if (engine_pending_read(dir, &now, NULL) == -ENOENT || now.token != pd->token)
			break;
		if (waited >= CONFIRM_WAIT_MS) {
			fprintf(stderr, "fedwall confirm: the watcher (pid %ld) did not answer"
				" within %u s\n", pd->pid, CONFIRM_WAIT_MS / 1000);
			return EXIT_ERROR;
		}
		nanosleep(&tick, NULL);
	}
	line = engine_confirm_marker(dir, &token);
	if (line && token == pd->token) {
		fprintf(stderr, "fedwall confirm: too late: %s\n", line);
		free(line);
		return EXIT_ERROR;
	}
	free(line);
	printf("fedwall: confirmed: table inet %s stays as applied\n", pd->table);
	return EXIT_OK;
}

int confirm_main(int argc, const char *argv[])
{
	struct common_opts o;
	struct engine_pending pd;
	struct strbuf path = { 0 };
	struct diag d;
	int i = common_parse(argc, argv, "", CONFIRM_USAGE, &o), ret, rc = EXIT_ERROR;

	if (i == -2)
		return EXIT_OK;
	if (i < 0)
		return EXIT_USAGE;
	diag_init(&d, stderr);
	sb_addf(&path, "%s/%s", o.state_dir, CONFIRM_PENDING_FILE);
	ret = engine_pending_read(o.state_dir, &pd, &d);
	if (ret == -ENOENT) {
		fprintf(stderr, "fedwall confirm: nothing to confirm: no apply --confirm is"
			" pending (no %s)\n", sb_str(&path));
		engine_confirm_notes(o.state_dir, false, stderr);
	} else if (ret || !engine_confirm_watcher(pd.pid)) {
		fprintf(stderr, "fedwall confirm: nothing to confirm: %s names no running"
			" watcher\n", sb_str(&path));
	} else if ((ret = engine_confirm_send(&pd)) < 0) {
		fprintf(stderr, "fedwall confirm: cannot signal the watcher (pid %ld): %s\n",
			pd.pid, strerror(-ret));
	} else {
		rc = confirm_wait(o.state_dir, &pd);
	}
	sb_free(&path);
	return rc;
}

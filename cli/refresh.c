/* refresh.c - `fedwall refresh` (for cron): options, the state
 * directory's lock, one refresh cycle (engine_refresh_cycle), the record
 * of the run and the metrics file, the exit status.
 *
 * Quiet when nothing changed; one line per changed partner; loud (and
 * exit 1) when a source failed or a partner was refused. */
#include "cli.h"
#include "engine/engine.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define USAGE "[-f POLICY] [--state-dir DIR] [--force] [-v] [--metrics FILE]\n" \
	"       [--allow-missing-interfaces]"

/* ---- fedwall refresh ---------------------------------------------------- */

static int run(const struct common_opts *o, struct policy *p, struct engine_refresh *r,
	       struct diag *d)
{
	struct srcset s = { 0 };
	int lock, ret;

	*r = (struct engine_refresh){ .p = p, .src = &s, .state_dir = o->state_dir,
				      .force = o->force, .verbose = o->verbose, .out = stdout };
	lock = state_lock(o->state_dir, LOCK_WAIT_MS, d);
	if (lock < 0)
		return lock;
	srcset_build(p, &s);
	for (size_t i = 0; i < s.n; i++)
		s.v[i].due = true;      /* cron sets the cadence */
	ret = engine_refresh_cycle(r, d);
	state_unlock(lock);
	srcset_free(&s);
	r->src = NULL;
	if (!ret && (r->refused || r->failed))
		ret = -EAGAIN;
	return ret;
}

/* Every run leaves its record, a failed one too (a policy with errors,
 * the lock busy), then the metrics file that shows it. */
int refresh_main(int argc, const char *argv[])
{
	struct engine_refresh r = { 0 };
	struct last_refresh l;
	struct common_opts o;
	struct policy *p;
	struct diag d;
	int i = common_parse(argc, argv, "fvFim", USAGE, &o), ret;

	if (i == -2)
		return EXIT_OK;
	if (i < 0)
		return EXIT_USAGE;
	diag_init(&d, stderr);
	p = policy_load(o.policy, &d);
	if (p && cli_ifaces_refused(&o, p, &d))
		ret = -EINVAL;
	else
		ret = p ? run(&o, p, &r, &d) : -EINVAL;
	l = (struct last_refresh){ time(NULL), last_result_of(&r, ret || d.errors), r.changed };
	if (last_refresh_write(o.state_dir, &l, &d) && !ret)
		ret = -EIO;
	if (p && o.metrics && engine_metrics_write(p, o.state_dir, o.metrics, &d) && !ret)
		ret = -EIO;
	policy_free(p);
	return ret || d.errors ? EXIT_ERROR : EXIT_OK;
}

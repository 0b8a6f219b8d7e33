/* schedule.c - the daemon's schedule: when each source is due (names at
 * their TTL, clamped and jittered: sched_delay_ms; lists every
 * ENGINE_LIST_PERIOD_MS or when their mtime changes, looked at every
 * ENGINE_LIST_STAT_MS; list URLs and feeds at their interval, jittered,
 * sooner after a failure: sched_fetch_delay_ms), when the kernel's table is compared even with
 * nothing due, how long to sleep, and the backoff after a busy lock.
 * Time is the caller's (milliseconds of a monotonic clock), so that the
 * schedule is reached without waiting (tests/unit/test_engine.c).
 */
#include "engine/engine.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <stdlib.h>
#include <sys/stat.h>

static double draw(const struct engine_sched *s)
{
	return s->rnd ? s->rnd() : (double)random() / ((double)RAND_MAX + 1.0);
}

/* How often the kernel's table is compared with what it should be when
 * no source is due: someone may have flushed or edited it.  As often as
 * the policy lets a DNS answer be trusted (resolve.ttl_min), between
 * ENGINE_CHECK_MIN_MS and ENGINE_CHECK_MAX_MS.  A cycle with nothing due
 * reads only the state and the table: no DNS, no list file. */
static uint64_t check_period_ms(const struct policy *p)
{
	uint64_t ms = (uint64_t)p->resolve.ttl_min * 1000;

	return ms < ENGINE_CHECK_MIN_MS ? ENGINE_CHECK_MIN_MS
	       : ms > ENGINE_CHECK_MAX_MS ? ENGINE_CHECK_MAX_MS : ms;
}

void engine_sched_init(struct engine_sched *s, const struct policy *p, bool dns_now,
		       uint64_t now)
{
	engine_sched_free(s);
	s->p = p;
	s->src = xcalloc(1, sizeof(*s->src));
	srcset_build(p, s->src);
	s->due = xcalloc(s->src->n + 1, sizeof(*s->due));
	for (size_t i = 0; i < s->src->n; i++) {
		struct src *x = &s->src->v[i];

		x->due = x->kind == STATE_LIST || dns_now;     /* names and URLs */
		s->due[i] = x->due ? now : now + 1;
	}
	s->next_stat = now + ENGINE_LIST_STAT_MS;
	s->next_check = now + check_period_ms(p);
}

void engine_sched_free(struct engine_sched *s)
{
	if (s->src)
		srcset_free(s->src);
	free(s->src);
	free(s->due);
	s->src = NULL;
	s->due = NULL;
}

static bool list_touched(const struct src *x)
{
	struct stat sb;

	if (stat(x->key, &sb) < 0)
		return x->mtime != 0;
	return (int64_t)sb.st_mtime != x->mtime;
}

bool engine_sched_due(struct engine_sched *s, uint64_t now)
{
	bool any = false, stat_now = now >= s->next_stat;

	if (stat_now)
		s->next_stat = now + ENGINE_LIST_STAT_MS;
	for (size_t i = 0; i < s->src->n; i++) {
		struct src *x = &s->src->v[i];

		x->due = s->due[i] <= now ||
			 (stat_now && x->kind == STATE_LIST && list_touched(x));
		any |= x->due;
	}
	return any || now >= s->next_check;
}

void engine_sched_done(struct engine_sched *s, uint64_t now)
{
	s->next_check = now + check_period_ms(s->p);
	for (size_t i = 0; i < s->src->n; i++) {
		struct src *x = &s->src->v[i];

		if (!x->due)
			continue;
		if (x->kind == STATE_LIST)
			s->due[i] = now + ENGINE_LIST_PERIOD_MS;
		else if (!src_is_dns(x))
			s->due[i] = now + sched_fetch_delay_ms(x->interval, x->failed, draw(s));
		else
			s->due[i] = now + sched_delay_ms(x->status == SRC_FRESH ? x->ttl : 0,
							 &s->p->resolve, draw(s));
		x->due = false;
	}
}

void engine_sched_busy(struct engine_sched *s, uint64_t now)
{
	for (size_t i = 0; i < s->src->n; i++)
		if (s->src->v[i].due)
			s->due[i] = now + ENGINE_LOCK_RETRY_MS;
	s->next_check = now + ENGINE_LOCK_RETRY_MS;
}

void engine_sched_names_now(struct engine_sched *s, uint64_t now)
{
	for (size_t i = 0; i < s->src->n; i++)
		if (s->src->v[i].kind != STATE_LIST)
			s->due[i] = now;        /* names, and list URLs */
}

int engine_sched_wait_ms(const struct engine_sched *s, uint64_t now)
{
	uint64_t next = s->next_stat < s->next_check ? s->next_stat : s->next_check;

	for (size_t i = 0; i < s->src->n; i++)
		if (s->due[i] < next)
			next = s->due[i];
	if (next <= now)
		return 0;
	return next - now > ENGINE_WAIT_MAX_MS ? ENGINE_WAIT_MAX_MS : (int)(next - now);
}

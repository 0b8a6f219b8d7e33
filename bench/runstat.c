/* runstat.c - wall-clock time and peak RSS of one whole process.
 *
 *   runstat OUT CMD [ARG...]
 *	Runs CMD (its stdin, stdout and stderr are ours), then appends one
 *	line to OUT: "WALL_SECONDS PEAK_RSS_KB EXIT_STATUS CPU_SECONDS"
 *	(CPU = user + system time of CMD, which a busy machine inflates
 *	less than wall time).  Exit status is
 *	CMD's (128+signal when killed).  Wall time is CLOCK_MONOTONIC around
 *	fork..wait4, microsecond resolution; peak RSS is the child's
 *	ru_maxrss from wait4, so only CMD itself counts, not this wrapper.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char *argv[])
{
	struct rusage ru;
	double t0, t1;
	int status, rc;
	pid_t pid;
	FILE *out;

	if (argc < 3) {
		fprintf(stderr, "usage: runstat OUT CMD [ARG...]\n");
		return 2;
	}
	t0 = now();
	pid = fork();
	if (pid < 0) {
		perror("runstat: fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("runstat: wait4");
		return 1;
	}
	t1 = now();
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	out = fopen(argv[1], "a");
	if (!out) {
		perror(argv[1]);
		return 1;
	}
	fprintf(out, "%.6f %ld %d %.6f\n", t1 - t0, ru.ru_maxrss, rc,
		(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	fclose(out);
	return rc;
}

/*
 * The target of tests/test_death.py: NPROC processes (the first and
 * NPROC-1 children), each with NTHREADS extra threads.  Every thread counts
 * in a shared counter; every process writes its count to OUT.PID every
 * 10 ms.  Masks are set on purpose (SIGUSR1 blocked in every thread,
 * SIGUSR2 as well in the extra ones) so that the test sees them put back.
 * Each process has 8 MiB of memory of its own, enough for the dump to
 * splice its pages through pipes in the task (refcr/mm/taskio.py).
 * No signal handler: SIGTERM ends it, as long as it is not blocked.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OWN_MEMORY	(8 << 20)

static volatile unsigned long counter;

static void *count(void *arg)
{
	sigset_t s;

	(void)arg;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	for (;;) {
		__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
		usleep(1000);
	}
	return NULL;
}

static void run(int nthreads, const char *out)
{
	char path[4096], buf[32];
	pthread_t t;
	int fd, i, n;
	char *own = malloc(OWN_MEMORY);

	if (!own)
		exit(1);
	memset(own, getpid() & 0xff, OWN_MEMORY);

	snprintf(path, sizeof(path), "%s.%d", out, getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		exit(1);
	for (i = 0; i < nthreads; i++)
		pthread_create(&t, NULL, count, NULL);
	for (;;) {
		__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
		n = snprintf(buf, sizeof(buf), "%020lu\n", counter);
		pwrite(fd, buf, n, 0);
		usleep(10000);
	}
}

int main(int argc, char **argv)
{
	int nproc, nthreads, i;
	sigset_t s;

	if (argc != 4)
		return 2;
	nproc = atoi(argv[1]);
	nthreads = atoi(argv[2]);
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigprocmask(SIG_BLOCK, &s, NULL);
	for (i = 1; i < nproc; i++)
		if (fork() == 0)
			break;
	run(nthreads, argv[3]);
	return 0;
}

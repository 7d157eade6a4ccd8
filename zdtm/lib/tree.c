/*
 * zdtm test library: process trees and threads.
 *
 * The harness signals only the root of a scenario's tree.  A process that
 * forks with test_fork() records the child; the child sets itself up, calls
 * test_child_ready(), waits with test_waitsig(), checks its own state with
 * pr_err() and ends with test_child_exit() (status 0 if no check failed).
 * The parent's test_children_check() forwards SIGTERM to each recorded child
 * and collects its exit status; test_daemon() first waits until every child
 * is ready.  Children never print PASS/FAIL: their fail() is an ERR line and
 * the parent turns a non-zero status into a failed check of its own.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#define MAX_CHILDREN	64
#define WAIT_TIMEOUT	30	/* seconds for a child to exit after SIGTERM */

static struct {
	pid_t pid;
	int ready_fd;		/* read end until the child is ready, else -1 */
	int waited;
} children[MAX_CHILDREN];
static int nr_children;
static int parent_ready_fd = -1;	/* in a test_fork() child: to the parent */

pid_t test_fork(void)
{
	int p[2], i;
	pid_t pid;

	if (nr_children == MAX_CHILDREN)
		fail("test_fork: more than %d children", MAX_CHILDREN);
	if (pipe2(p, O_CLOEXEC))
		fail("test_fork: pipe");
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fail("test_fork: fork");
	if (pid == 0) {
		close(p[0]);
		/* The parent's children are not ours. */
		for (i = 0; i < nr_children; i++)
			if (children[i].ready_fd >= 0)
				close(children[i].ready_fd);
		nr_children = 0;
		if (parent_ready_fd >= 0)
			close(parent_ready_fd);
		parent_ready_fd = p[1];
		test_errors = 0;
		return 0;
	}
	close(p[1]);
	children[nr_children].pid = pid;
	children[nr_children].ready_fd = p[0];
	children[nr_children].waited = 0;
	nr_children++;
	return pid;
}

int test_nr_children(void)
{
	return nr_children;
}

pid_t test_child_pid(int i)
{
	return i >= 0 && i < nr_children ? children[i].pid : -1;
}

static void describe(pid_t pid, int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "child %d exited with status %d", pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "child %d was killed by signal %d (%s)", pid,
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "child %d: wait status %#x", pid, status);
}

void test_children_wait_ready(void)
{
	int i, status;
	char c, why[128];
	ssize_t n;

	for (i = 0; i < nr_children; i++) {
		if (children[i].ready_fd < 0)
			continue;
		do
			n = read(children[i].ready_fd, &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1) {
			/*
			 * Also wait (a little) for the child to close its end, so the
			 * harness never snapshots a child that still holds it.
			 */
			struct pollfd p = { .fd = children[i].ready_fd, .events = POLLIN };

			while (poll(&p, 1, 5000) > 0 && read(children[i].ready_fd, &c, 1) > 0)
				;
		}
		close(children[i].ready_fd);
		children[i].ready_fd = -1;
		if (n == 1)
			continue;
		/* Closed without a byte: the child died (or exec'd) unready. */
		if (waitpid(children[i].pid, &status, 0) == children[i].pid) {
			children[i].waited = 1;
			describe(children[i].pid, status, why, sizeof(why));
			errno = 0;
			fail("%s before it was ready", why);
		}
		fail("child %d went away before it was ready", children[i].pid);
	}
}

void test_child_ready(void)
{
	test_children_wait_ready();
	if (parent_ready_fd < 0)
		fail("test_child_ready() outside a test_fork() child");
	if (write(parent_ready_fd, "R", 1) != 1)
		fail("can't tell the parent we are ready");
	close(parent_ready_fd);
	parent_ready_fd = -1;
}

void test_children_kick(int sig)
{
	int i;

	for (i = 0; i < nr_children; i++)
		if (!children[i].waited && kill(children[i].pid, sig))
			pr_err("can't send signal %d to child %d", sig, children[i].pid);
}

int test_children_wait(void)
{
	struct timespec start, now;
	int i, left, status, errs = 0;
	char why[128];
	pid_t r;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		left = 0;
		for (i = 0; i < nr_children; i++) {
			if (children[i].waited)
				continue;
			r = waitpid(children[i].pid, &status, WNOHANG);
			if (r == 0) {
				left++;
				continue;
			}
			children[i].waited = 1;
			if (r < 0) {
				pr_err("waitpid(%d): not our child any more", children[i].pid);
				errs++;
				continue;
			}
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				continue;
			describe(children[i].pid, status, why, sizeof(why));
			errno = 0;
			pr_err("%s: its checks failed (see the ERR lines above)", why);
			errs++;
		}
		if (!left)
			break;
		usleep(10000);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec < WAIT_TIMEOUT);

	for (i = 0; i < nr_children; i++) {
		if (children[i].waited)
			continue;
		errno = 0;
		pr_err("child %d did not exit within %ds: killing it",
		       children[i].pid, WAIT_TIMEOUT);
		errs++;
		kill(children[i].pid, SIGKILL);
		waitpid(children[i].pid, &status, 0);
		children[i].waited = 1;
	}
	return errs;
}

int test_children_check(void)
{
	test_children_kick(SIGTERM);
	return test_children_wait();
}

void test_child_exit(void)
{
	fflush(NULL);
	exit(test_errors ? 1 : 0);
}

int test_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t blk, old;
	int ret;

	sigemptyset(&blk);
	sigaddset(&blk, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &blk, &old);
	ret = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

void test_note(struct test_notes *n, const char *fmt, ...)
{
	va_list ap;
	size_t l = strlen(n->msg);

	n->errors++;
	va_start(ap, fmt);
	vsnprintf(n->msg + l, sizeof(n->msg) - l, fmt, ap);
	va_end(ap);
	l = strlen(n->msg);
	snprintf(n->msg + l, sizeof(n->msg) - l, "; ");
}

int test_thread_join(pthread_t t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	return pthread_timedjoin_np(t, NULL, &ts) ? -1 : 0;
}

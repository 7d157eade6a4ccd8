/*
 * nsfd00: fds of the process's own namespaces (/proc/self/ns/{net,uts,ipc,mnt,pid})
 * come back as fds of the same namespaces the restored process lives in (setns() with
 * them still works and changes nothing), with their flags; and a second fd of the net
 * namespace is the same namespace as the first.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kinds[] = { "net", "uts", "ipc", "mnt", "pid" };
static const int types[] = { CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWPID };
#define N (sizeof(kinds) / sizeof(kinds[0]))

static ino_t own(const char *kind)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	if (stat(path, &st))
		return 0;
	return st.st_ino;
}

int main(int argc, char **argv)
{
	int fds[N], again, flags[N];
	struct stat st;
	char path[64];
	unsigned i;

	test_init(argc, argv);
	for (i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kinds[i]);
		fds[i] = open(path, O_RDONLY | (i % 2 ? O_CLOEXEC : 0));
		if (fds[i] < 0)
			fail("open %s", path);
		flags[i] = fcntl(fds[i], F_GETFD);
	}
	again = dup(fds[0]);

	test_daemon();
	test_waitsig();

	for (i = 0; i < N; i++) {
		if (fstat(fds[i], &st) || st.st_ino != own(kinds[i]))
			pr_err("%s: the fd is not of the process's %s namespace", kinds[i], kinds[i]);
		if (fcntl(fds[i], F_GETFD) != flags[i])
			pr_err("%s: fd flags changed", kinds[i]);
		if (types[i] != CLONE_NEWPID && types[i] != CLONE_NEWNS && setns(fds[i], types[i]))
			pr_err("%s: setns with the fd failed", kinds[i]);
	}
	if (fstat(again, &st) || st.st_ino != own("net"))
		pr_err("the dup'ed net fd is not of the process's net namespace");
	test_result();
	return 0;
}

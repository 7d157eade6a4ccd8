/*
 * userns00: the user namespace of the tree (uns flavor) survives.
 *
 * Checked after C/R, against what the test read before: /proc/self/uid_map,
 * gid_map and setgroups (as seen from inside), the namespace's owner
 * (NS_GET_OWNER_UID), that it is not the initial namespace (whose uid_map
 * maps all 4294967295 ids), that every other namespace of the task
 * (mnt, net, ipc, uts, pid) is owned by it (NS_GET_USERNS), and that the
 * credentials are the ids inside: a child runs as uid/gid 1000 with the
 * supplementary groups 1000 and 2000 (100999, 101999 outside in uns).
 */
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "zdtmtst.h"

#define NSIO 0xb7
#define NS_GET_USERNS _IO(NSIO, 0x1)
#define NS_GET_OWNER_UID _IO(NSIO, 0x4)
#define ID 1000

static const char *kinds[] = { "mnt", "net", "ipc", "uts", "pid" };

struct state {
	char uid_map[512], gid_map[512], setgroups[32];
	unsigned int owner;
	int owned;		/* bit per kind: owned by this user namespace */
	int has_parent;		/* not the initial user namespace */
};

static void read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		fail("open %s", path);
	n = read(fd, buf, len - 1);
	if (n < 0)
		fail("read %s", path);
	buf[n] = 0;
	close(fd);
}

static ino_t ino_of(int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		fail("fstat");
	return st.st_ino;
}

static void take(struct state *s)
{
	char path[64];
	int user, i, fd, owner;

	memset(s, 0, sizeof(*s));
	read_text("/proc/self/uid_map", s->uid_map, sizeof(s->uid_map));
	read_text("/proc/self/gid_map", s->gid_map, sizeof(s->gid_map));
	read_text("/proc/self/setgroups", s->setgroups, sizeof(s->setgroups));
	user = open("/proc/self/ns/user", O_RDONLY);
	if (user < 0 || ioctl(user, NS_GET_OWNER_UID, &s->owner))
		fail("NS_GET_OWNER_UID");
	/* NS_GET_PARENT says EPERM for a parent outside our view: tell by the map */
	s->has_parent = strstr(s->uid_map, "4294967295") == NULL;
	for (i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kinds[i]);
		fd = open(path, O_RDONLY);
		owner = fd < 0 ? -1 : ioctl(fd, NS_GET_USERNS);
		if (owner >= 0 && ino_of(owner) == ino_of(user))
			s->owned |= 1 << i;
		if (owner >= 0)
			close(owner);
		if (fd >= 0)
			close(fd);
	}
	close(user);
}

static int child(int ready)
{
	gid_t groups[] = { ID, 2 * ID };

	if (setgroups(2, groups) || setresgid(ID, ID, ID) || setresuid(ID, ID, ID))
		_exit(1);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static void check_child(pid_t pid)
{
	char path[64], buf[4096], *line;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	read_text(path, buf, sizeof(buf));
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "Uid:", 4) && strcmp(line, "Uid:\t1000\t1000\t1000\t1000"))
			pr_err("the child's %s, not 1000 everywhere", line);
		if (!strncmp(line, "Gid:", 4) && strcmp(line, "Gid:\t1000\t1000\t1000\t1000"))
			pr_err("the child's %s, not 1000 everywhere", line);
		if (!strncmp(line, "Groups:", 7) && strcmp(line, "Groups:\t1000 2000 "))
			pr_err("the child's %s, not 1000 2000", line);
	}
}

int main(int argc, char **argv)
{
	struct state before, after;
	int p[2];
	char c;
	pid_t pid;

	test_init(argc, argv);
	take(&before);
	if (!before.has_parent)
		fail("not in a user namespace of its own (run in the uns flavor)");
	if (before.owned != 0x1f)
		fail("its namespaces are not all owned by its user namespace (%#x)", before.owned);
	if (pipe(p))
		fail("pipe");
	pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0)
		return child(p[1]);
	if (read(p[0], &c, 1) != 1)
		fail("the child could not take uid %d", ID);
	check_child(pid);

	test_daemon();
	test_waitsig();

	take(&after);
	if (strcmp(before.uid_map, after.uid_map))
		pr_err("uid_map was\n%s\nis\n%s", before.uid_map, after.uid_map);
	if (strcmp(before.gid_map, after.gid_map))
		pr_err("gid_map was\n%s\nis\n%s", before.gid_map, after.gid_map);
	if (strcmp(before.setgroups, after.setgroups))
		pr_err("setgroups was %s, is %s", before.setgroups, after.setgroups);
	if (before.owner != after.owner)
		pr_err("the owner was uid %u, is %u", before.owner, after.owner);
	if (!after.has_parent)
		pr_err("the restored task is in the initial user namespace");
	if (after.owned != before.owned)
		pr_err("the namespaces owned by the user namespace were %#x, are %#x", before.owned, after.owned);
	check_child(pid);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	test_result();
	return 0;
}

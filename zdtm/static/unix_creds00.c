/*
 * unix_creds00: the credentials of queued unix messages (SCM_CREDENTIALS) come back.
 *
 * The root reads with SO_PASSCRED from the first end of a stream pair and of a datagram
 * pair, and holds the second ends too; a child has one more copy of each second end.
 * Queued at dump: on the stream, "child" (written by the child), "root" (by the root),
 * "named" (by the root, with explicit credentials uid 4321 gid 1234); the same three
 * as datagrams.  After restore each message reads back with the same bytes and the same
 * pid, uid and gid (a stream splits where the credentials change, as before the dump).
 */
#include "zdtmtst.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int send_creds(int fd, const char *msg, pid_t pid, uid_t uid, gid_t gid)
{
	char cbuf[CMSG_SPACE(sizeof(struct ucred))] = {};
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = strlen(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct ucred uc = { .pid = pid, .uid = uid, .gid = gid };
	struct cmsghdr *c;

	if (pid) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(uc));
		memcpy(CMSG_DATA(c), &uc, sizeof(uc));
	}
	return sendmsg(fd, &mh, 0) == (ssize_t)strlen(msg) ? 0 : -1;
}

static void expect(int fd, const char *msg, pid_t pid, uid_t uid, gid_t gid, const char *who)
{
	char buf[64], cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = { .iov_base = buf, .iov_len = strlen(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	struct ucred uc = { .pid = -1 };
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);

	if (n != (ssize_t)strlen(msg) || memcmp(buf, msg, n)) {
		pr_err("%s: expected \"%s\", got %zd bytes", who, msg, n);
		return;
	}
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
			memcpy(&uc, CMSG_DATA(c), sizeof(uc));
	if (uc.pid != pid || uc.uid != uid || uc.gid != gid)
		pr_err("%s: \"%s\" came with pid %d uid %u gid %u, expected %d %u %u", who, msg,
		       uc.pid, uc.uid, uc.gid, pid, uid, gid);
}

int main(int argc, char **argv)
{
	int st[2], dg[2], one = 1;
	pid_t child;

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg))
		fail("socketpair");
	if (setsockopt(st[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) ||
	    setsockopt(dg[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)))
		fail("SO_PASSCRED");

	child = test_fork();
	if (child == 0) {
		if (send_creds(st[1], "child", 0, 0, 0) || send_creds(dg[1], "child", 0, 0, 0))
			fail("child send");
		test_child_ready();
		test_waitsig();
		test_child_exit();
	}
	test_children_wait_ready();
	if (send_creds(st[1], "root", 0, 0, 0) || send_creds(dg[1], "root", 0, 0, 0) ||
	    send_creds(st[1], "named", getpid(), 4321, 1234) || send_creds(dg[1], "named", getpid(), 4321, 1234))
		fail("root send");

	test_daemon();
	test_waitsig();

	expect(st[0], "child", child, getuid(), getgid(), "stream");
	expect(st[0], "root", getpid(), getuid(), getgid(), "stream");
	expect(st[0], "named", getpid(), 4321, 1234, "stream");
	expect(dg[0], "child", child, getuid(), getgid(), "dgram");
	expect(dg[0], "root", getpid(), getuid(), getgid(), "dgram");
	expect(dg[0], "named", getpid(), 4321, 1234, "dgram");
	test_children_check();
	test_result();
	return 0;
}

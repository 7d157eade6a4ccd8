/*
 * unix_creds_gone_fails: a message queued on a unix socket that reads credentials
 * (SO_PASSCRED) was sent by a process that is gone: its pid cannot come back, so the dump
 * is refused (crfail: the task survives unchanged) and the message still reads with the
 * sender's credentials afterwards (the kernel keeps the dead sender's pid number).
 */
#include "zdtmtst.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[16], cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	struct ucred uc = { .pid = -1 };
	int dg[2], one = 1, status;
	pid_t child;
	ssize_t n;

	test_init(argc, argv);
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"(SCM_CREDENTIALS) of process\"}]}");
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) ||
	    setsockopt(dg[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)))
		fail("socketpair");
	child = fork();
	if (child < 0)
		fail("fork");
	if (child == 0)
		_exit(send(dg[1], "gone", 4, 0) == 4 ? 0 : 1);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("child");

	test_daemon();
	test_waitsig();

	n = recvmsg(dg[0], &mh, MSG_DONTWAIT);
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
			memcpy(&uc, CMSG_DATA(c), sizeof(uc));
	if (n != 4 || memcmp(buf, "gone", 4))
		pr_err("the queued message changed");
	if (uc.pid != child)
		pr_err("the message came with pid %d, not its gone sender's %d", uc.pid, child);
	test_result();
	return 0;
}

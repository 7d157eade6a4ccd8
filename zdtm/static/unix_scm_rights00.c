/*
 * unix_scm_rights00: descriptors in flight (SCM_RIGHTS) in unix socket queues.
 *
 * A stream pair: s0 sent "files" with three descriptors, the read end of a
 * pipe holding "pipedata" (the task closed its own copy: the end exists only
 * in flight), a regular file at offset 3 (closed too) and s0 itself (a
 * socket queued in its peer), then "tail" without any.  A datagram pair: d1
 * holds "plain1", a message carrying d1 itself (a socket queued in itself),
 * one carrying an eventfd (count 5, only in flight), and "plain2".  After
 * restore every message reads back in order with its descriptors: the pipe
 * end reads "pipedata", the file is at offset 3 with its contents, the
 * sockets are s0 and d1 themselves (same inode, and they still work), the
 * eventfd counts 5.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_NAME	"unix_scm_rights00.file"

static void send_fds(int sk, const char *data, int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { .iov_base = (void *)data, .iov_len = strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (n) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	if (sendmsg(sk, &mh, 0) != (ssize_t)strlen(data))
		fail("sendmsg %s", data);
}

/* one message: its data must be want, its descriptors go to fds; returns how many */
static int recv_fds(int sk, const char *want, int *fds, int max)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)], buf[64];
	struct iovec iov = { .iov_base = buf, .iov_len = strlen(want) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	ssize_t r = recvmsg(sk, &mh, MSG_DONTWAIT);
	int n = 0;

	if (r != (ssize_t)strlen(want) || memcmp(buf, want, r)) {
		pr_err("message %s: got %zd bytes", want, r);
		return -1;
	}
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			if (n > max)
				n = max;
			memcpy(fds, CMSG_DATA(c), sizeof(int) * n);
		}
	}
	return n;
}

static ino_t ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : st.st_ino;
}

int main(int argc, char **argv)
{
	int s[2], d[2], p[2], f, ev, fds[4], got[8], n;
	char buf[32];
	uint64_t v;

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) || socketpair(AF_UNIX, SOCK_DGRAM, 0, d) || pipe(p))
		fail("socketpair/pipe");
	if (write(p[1], "pipedata", 8) != 8)
		fail("pipe");
	f = open(FILE_NAME, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (f < 0 || write(f, "0123456789", 10) != 10 || lseek(f, 3, SEEK_SET) != 3)
		fail("file");
	ev = eventfd(5, 0);
	fds[0] = p[0];
	fds[1] = f;
	fds[2] = s[0];
	send_fds(s[0], "files", fds, 3);
	send_fds(s[0], "tail", NULL, 0);
	close(p[0]);
	close(f);
	send_fds(d[0], "plain1", NULL, 0);
	send_fds(d[0], "self", &d[1], 1);
	send_fds(d[0], "eventfd", &ev, 1);
	send_fds(d[0], "plain2", NULL, 0);
	close(ev);

	test_daemon();
	test_waitsig();

	n = recv_fds(s[1], "files", got, 8);
	if (n != 3) {
		pr_err("files: %d descriptors", n);
	} else {
		if (read(got[0], buf, sizeof(buf)) != 8 || memcmp(buf, "pipedata", 8))
			pr_err("the pipe end in flight");
		if (lseek(got[1], 0, SEEK_CUR) != 3 || read(got[1], buf, 7) != 7 || memcmp(buf, "3456789", 7))
			pr_err("the file in flight");
		if (ino(got[2]) != ino(s[0]))
			pr_err("the socket in flight is not s0");
		if (write(got[2], "via", 3) != 3)
			pr_err("write through the socket in flight");
	}
	if (recv_fds(s[1], "tail", got, 8) != 0)
		pr_err("tail carries descriptors");
	if (recv(s[1], buf, 3, MSG_DONTWAIT) != 3 || memcmp(buf, "via", 3))
		pr_err("bytes sent through the socket in flight");
	if (recv_fds(d[1], "plain1", got, 8) != 0)
		pr_err("plain1 carries descriptors");
	if (recv_fds(d[1], "self", got, 8) != 1 || ino(got[0]) != ino(d[1]))
		pr_err("the socket queued in itself");
	if (recv_fds(d[1], "eventfd", got, 8) != 1 || read(got[0], &v, 8) != 8 || v != 5)
		pr_err("the eventfd in flight");
	if (recv_fds(d[1], "plain2", got, 8) != 0)
		pr_err("plain2 carries descriptors");
	unlink(FILE_NAME);
	test_result();
}

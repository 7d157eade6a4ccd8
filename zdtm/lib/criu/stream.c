/*
 * CRIU's zdtm stream and socket helpers (zdtmtst.h here): nonblocking mode,
 * full reads/writes, a pipe pump, TCP servers/clients on the loopback, unix
 * socket names in the cwd, the raw clone syscall.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "zdtmtst.h"

int set_nonblock(int fd, int on)
{
	int flags = fcntl(fd, F_GETFL, 0);

	if (flags < 0)
		return flags;
	flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, flags);
}

int read_data(int fd, unsigned char *buf, int len)
{
	int done = 0;

	while (done < len) {
		ssize_t r = read(fd, buf + done, (size_t)(len - done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			pr_perror("read_data: %d of %d bytes", done, len);
			return -1;
		}
		done += (int)r;
	}
	return 0;
}

int write_data(int fd, const unsigned char *buf, int len)
{
	int done = 0;

	while (done < len) {
		ssize_t w = write(fd, buf + done, (size_t)(len - done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			pr_perror("write_data: %d of %d bytes", done, len);
			return -1;
		}
		done += (int)w;
	}
	return 0;
}

/* Copy what infd has now to outfd; returns the bytes moved, -1 on error. */
int pipe_in2out(int infd, int outfd, uint8_t *buffer, int length)
{
	ssize_t r = read(infd, buffer, (size_t)length);

	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	if (write_data(outfd, buffer, (int)r))
		return -1;
	return (int)r;
}

static int fill_addr(int family, const char *ip, unsigned short port, struct sockaddr_storage *ss,
		     socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		*len = sizeof(*a);
		return inet_pton(AF_INET6, ip ? ip : "::", &a->sin6_addr) == 1 ? 0 : -1;
	}
	{
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		*len = sizeof(*a);
		return inet_pton(AF_INET, ip ? ip : "0.0.0.0", &a->sin_addr) == 1 ? 0 : -1;
	}
}

int tcp_init_server_with_opts(int family, int *port, struct zdtm_tcp_opts *opts)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, sk = socket(family, SOCK_STREAM | (opts ? opts->flags : 0), IPPROTO_TCP);

	if (sk < 0) {
		pr_perror("tcp_init_server: socket");
		return -1;
	}
	if ((!opts || opts->reuseaddr) && setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto err;
	if (opts && opts->reuseport && setsockopt(sk, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto err;
	if (fill_addr(family, NULL, (unsigned short)*port, &ss, &len) || bind(sk, (struct sockaddr *)&ss, len))
		goto err;
	if (listen(sk, 1))
		goto err;
	if (*port == 0) {
		len = sizeof(ss);
		if (getsockname(sk, (struct sockaddr *)&ss, &len))
			goto err;
		*port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port);
	}
	return sk;
err:
	pr_perror("tcp_init_server: port %d", *port);
	close(sk);
	return -1;
}

int tcp_init_server(int family, int *port)
{
	struct zdtm_tcp_opts opts = { .reuseaddr = true };

	return tcp_init_server_with_opts(family, port, &opts);
}

int tcp_accept_server(int sock)
{
	int sk = accept(sock, NULL, NULL);

	if (sk < 0)
		pr_perror("tcp_accept_server: accept");
	return sk;
}

int tcp_init_client(int family, char *servIP, unsigned short servPort)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int sk = socket(family, SOCK_STREAM, IPPROTO_TCP);

	if (sk < 0) {
		pr_perror("tcp_init_client: socket");
		return -1;
	}
	if (fill_addr(family, servIP, servPort, &ss, &len) || connect(sk, (struct sockaddr *)&ss, len)) {
		pr_perror("tcp_init_client: connect to %s:%u", servIP, servPort);
		close(sk);
		return -1;
	}
	return sk;
}

/* sun_path = cwd/relFilename; returns 0, or -1 if it does not fit. */
int unix_fill_sock_name(struct sockaddr_un *name, char *relFilename)
{
	char cwd[sizeof(name->sun_path)];

	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	memset(name, 0, sizeof(*name));
	name->sun_family = AF_UNIX;
	if (snprintf(name->sun_path, sizeof(name->sun_path), "%s/%s", cwd, relFilename) >=
	    (int)sizeof(name->sun_path))
		return -1;
	return 0;
}

pid_t sys_clone_unified(unsigned long flags, void *child_stack, void *parent_tid, void *child_tid,
			unsigned long newtls)
{
	/* x86-64 argument order: flags, stack, parent_tid, child_tid, tls */
	return (pid_t)syscall(SYS_clone, flags, child_stack, parent_tid, child_tid, newtls);
}

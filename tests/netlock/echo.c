/* connects to 127.0.0.1:argv[1] and echoes what it reads, for ever; waits in
 * poll() (a read() blocked on a socket in TCP repair mode fails with EINVAL as
 * soon as a killed refcr's tracees run on, before its guardian can end repair
 * mode: tests/test_netlock.py) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char buf[4096];
	ssize_t n;
	int fd;

	if (argc != 2)
		return 2;
	a.sin_port = htons(atoi(argv[1]));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return 1;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, -1) < 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return n ? 1 : 0;
		if (write(fd, buf, n) != n)
			return 1;
	}
}

/* Counts into argv[1] every 20 ms, in a session of its own (the root of a
 * dumped tree).  Started as pid 1 of a rootless user namespace. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = 0;

	if (argc != 2)
		return 2;
	setsid();
	/* stdio from its own mount namespace (the inherited /dev/null is of the host's) */
	int null = open("/dev/null", O_RDWR);

	if (null < 0)
		return 1;
	for (int i = 0; i < 3; i++)
		dup2(null, i);
	if (null > 2)
		close(null);
	for (;;) {
		int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dprintf(fd, "%ld\n", ++n);
			close(fd);
		}
		usleep(20000);
	}
}

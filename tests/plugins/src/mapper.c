/*
 * mapper PATH OFFSET LENGTH shared|private [touch]: maps PATH read-only at
 * OFFSET (reading its first byte with "touch"), closes the fd and sleeps.
 * The tests look at it through /proc/PID/maps and /proc/PID/mem.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	volatile char *p;
	int fd;

	if (argc < 5)
		return 2;
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	p = mmap(NULL, strtoul(argv[3], NULL, 0), PROT_READ,
		 strcmp(argv[4], "shared") ? MAP_PRIVATE : MAP_SHARED, fd, strtol(argv[2], NULL, 0));
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	close(fd);
	if (argc > 5 && !strcmp(argv[5], "touch"))
		(void)p[0];
	for (;;)
		pause();
}

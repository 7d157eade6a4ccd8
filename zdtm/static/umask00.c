/*
 * umask00: the file mode creation mask survives and applies.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MASK 0247

int main(int argc, char **argv)
{
	char *s, *p;
	struct stat st;
	mode_t m;
	int fd;

	test_init(argc, argv);

	umask(MASK);

	test_daemon();
	test_waitsig();

	if (test_read_file("/proc/self/status", &s) < 0)
		fail("read /proc/self/status");
	p = strstr(s, "Umask:");
	if (!p || strtoul(p + 6, NULL, 8) != MASK)
		pr_err("/proc/self/status: %.12s, expected %04o", p ? p : "no Umask", MASK);

	/* umask() returns the old mask: read it without losing it. */
	m = umask(MASK);
	if (m != MASK)
		pr_err("umask is %04o, expected %04o", m, MASK);

	unlink("umask00.file");
	fd = open("umask00.file", O_CREAT | O_WRONLY | O_EXCL, 0777);
	if (fd < 0 || fstat(fd, &st))
		fail("create umask00.file");
	if ((st.st_mode & 07777) != (0777 & ~MASK))
		pr_err("a file created with 0777 has mode %04o, expected %04o",
		       st.st_mode & 07777, 0777 & ~MASK);
	close(fd);

	test_result();
	return 0;
}

/*
 * dir00: open directories survive.
 *
 * A directory in cwd holding a few files is opened twice: once read part way
 * with getdents (its offset is in the middle of the listing) and once with
 * O_RDONLY|O_DIRECTORY kept for *at() calls.  After restore the
 * fds are still that directory (same inode), the partly read one continues
 * the listing where it stopped (no entry twice, none lost), and openat()
 * and fchdir() through the other one work.
 */
#include "zdtmtst.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NFILES	40

static int count_rest(DIR *d, char seen[NFILES])
{
	struct dirent *de;
	int n = 0, i;

	while ((de = readdir(d))) {
		if (sscanf(de->d_name, "f%d", &i) != 1 || i < 0 || i >= NFILES)
			continue;
		if (seen[i]++)
			pr_err("entry %s listed twice", de->d_name);
		n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	char seen[NFILES] = {0}, name[32];
	struct stat before, after;
	int dfd, afd, i, before_n, fd;
	DIR *d;

	test_init(argc, argv);

	if (mkdir("dir00.d", 0755) && errno != EEXIST)
		fail("mkdir");
	for (i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "dir00.d/f%d", i);
		fd = open(name, O_CREAT | O_WRONLY, 0644);
		if (fd < 0 || close(fd))
			fail("create %s", name);
	}
	dfd = open("dir00.d", O_RDONLY | O_DIRECTORY);
	afd = open("dir00.d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || afd < 0 || fstat(afd, &before))
		fail("open the directory");
	d = fdopendir(dfd);
	if (!d)
		fail("fdopendir");
	/* read about half of the listing (readdir buffers: the fd offset moves by whole getdents calls) */
	before_n = 0;
	while (before_n < NFILES / 2) {
		struct dirent *de = readdir(d);

		if (!de)
			fail("listing ended early");
		if (sscanf(de->d_name, "f%d", &i) == 1 && i >= 0 && i < NFILES) {
			seen[i]++;
			before_n++;
		}
	}

	test_daemon();
	test_waitsig();

	if (fstat(afd, &after) || after.st_ino != before.st_ino || after.st_dev != before.st_dev)
		pr_err("the directory fd is another directory after restore");
	if (fcntl(afd, F_GETFD) != FD_CLOEXEC)
		pr_err("close-on-exec lost on the directory fd");
	/* the rest of the listing: every file exactly once overall */
	before_n += count_rest(d, seen);
	for (i = 0; i < NFILES; i++)
		if (seen[i] != 1)
			pr_err("f%d listed %d times", i, seen[i]);
	if (before_n != NFILES)
		pr_err("%d entries listed, expected %d", before_n, NFILES);
	fd = openat(afd, "f7", O_RDONLY);
	if (fd < 0)
		pr_err("openat through the directory fd");
	else
		close(fd);
	if (fchdir(afd) || access("f8", F_OK))
		pr_err("fchdir through the directory fd");
	test_result();
	return 0;
}

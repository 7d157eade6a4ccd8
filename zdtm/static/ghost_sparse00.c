/*
 * ghost_sparse00: a large sparse deleted file: only its data goes into the
 * images (under the default 1M --ghost-limit although its size is 1.5 GiB).
 *
 * Three 64 KiB runs of data (at 0, at 700 MiB, 4 KiB before the end) in an
 * unlinked 1.5 GiB file with fixed times.  After restore: size, data, the
 * holes between (SEEK_DATA from just after a run finds the next run) and
 * the times are as before.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE	(1536LL << 20)
#define RUN	(64 << 10)

static const off_t at[3] = { 0, 700LL << 20, SIZE - 4096 - RUN };
static char buf[RUN];

int main(int argc, char **argv)
{
	struct timespec times[2] = { { .tv_sec = 1000000001 }, { .tv_sec = 1400000000 } };
	struct stat st;
	off_t next;
	int fd, i;

	test_init(argc, argv);

	fd = open("ghost_sparse00.file", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, SIZE))
		fail("open");
	for (i = 0; i < 3; i++) {
		datagen(buf, RUN, i + 1);
		if (pwrite(fd, buf, RUN, at[i]) != RUN)
			fail("pwrite");
	}
	if (futimens(fd, times) || unlink("ghost_sparse00.file"))
		fail("futimens/unlink");

	test_daemon();
	test_waitsig();

	if (fstat(fd, &st) || st.st_size != SIZE || st.st_nlink != 0)
		pr_err("size %lld links %ld", (long long)st.st_size, (long)st.st_nlink);
	if (st.st_mtim.tv_sec != times[1].tv_sec || st.st_atim.tv_sec != times[0].tv_sec)
		pr_err("times %ld/%ld, expected %ld/%ld", (long)st.st_atim.tv_sec, (long)st.st_mtim.tv_sec,
		       (long)times[0].tv_sec, (long)times[1].tv_sec);
	if (st.st_blocks * 512LL > 16LL << 20)
		pr_err("%lld bytes allocated: the holes were filled", st.st_blocks * 512LL);
	for (i = 0; i < 3; i++) {
		if (pread(fd, buf, RUN, at[i]) != RUN || datachk(buf, RUN, i + 1))
			pr_err("run %d changed", i);
		if (i < 2) {
			next = lseek(fd, at[i] + RUN, SEEK_DATA);
			if (next != at[i + 1])
				pr_err("after run %d the next data is at %lld, expected %lld", i,
				       (long long)next, (long long)at[i + 1]);
		}
	}

	test_result();
	return 0;
}

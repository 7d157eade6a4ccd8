/*
 * fork00: a tree of processes keeps its shape and each process its memory.
 *
 * The root fills a private buffer of three parts, then forks NCHILD
 * children, each of which forks NGRAND grandchildren.  Children rewrite
 * parts 2 and 3 with their own pattern, grandchildren part 3 with theirs, so
 * each process holds pages CoW-shared with its parent and grandparent and
 * pages of its own, plus a private mmap of its own.  After restore each
 * process checks its pid and (except the root, whose launcher exited) ppid
 * against the values saved before, the three parts and its mapping; children
 * are waited for by pid; the root collects everyone's verdict.
 */
#include "zdtmtst.h"

#include <unistd.h>
#include <sys/mman.h>

#define NCHILD	3
#define NGRAND	2
#define BUFSZ	(64 * 1024)
#define OWNSZ	(3 * 4096 + 123)

static char *buf, *own;
#define PART	(BUFSZ / 3)
static uint64_t seeds[3];	/* patterns of the three parts */
static uint64_t my_seed;
static pid_t my_pid, my_ppid;

/* depth 0: root, 1: child, 2: grandchild; parts depth..2 get our seed. */
static void setup(int depth, uint64_t seed)
{
	int i;

	my_seed = seed;
	my_pid = getpid();
	my_ppid = getppid();
	for (i = depth; i < 3; i++) {
		seeds[i] = seed;
		datagen_at(buf + i * PART, PART, seed, i * PART);
	}
	own = mmap(NULL, OWNSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (own == MAP_FAILED)
		fail("mmap");
	datagen(own, OWNSZ, seed * 1000 + 7);
}

static void check_self(const char *who, int chk_ppid)
{
	int i;

	if (getpid() != my_pid)
		pr_err("%s: pid %d, was %d", who, getpid(), my_pid);
	if (chk_ppid && getppid() != my_ppid)
		pr_err("%s: ppid %d, was %d", who, getppid(), my_ppid);
	for (i = 0; i < 3; i++)
		if (datachk_at(buf + i * PART, PART, seeds[i], i * PART))
			pr_err("%s (pid %d): part %d of the buffer changed", who, my_pid, i);
	if (datachk(own, OWNSZ, my_seed * 1000 + 7))
		pr_err("%s (pid %d): own mapping changed", who, my_pid);
}

static void grandchild(uint64_t seed)
{
	setup(2, seed);
	test_child_ready();
	test_waitsig();
	check_self("grandchild", 1);
	test_child_exit();
}

static void child(int i)
{
	uint64_t seed = 10 + i;
	int j;

	setup(1, seed);
	for (j = 0; j < NGRAND; j++)
		if (test_fork() == 0)
			grandchild(100 + 10 * i + j);
	test_child_ready();
	test_waitsig();
	check_self("child", 1);
	if (test_nr_children() != NGRAND)
		pr_err("child: %d children recorded", test_nr_children());
	test_children_check();
	test_child_exit();
}

int main(int argc, char **argv)
{
	int i;

	test_init(argc, argv);

	buf = malloc(BUFSZ);
	if (!buf)
		fail("malloc");
	setup(0, 1);
	for (i = 0; i < NCHILD; i++)
		if (test_fork() == 0)
			child(i);

	test_daemon();
	test_waitsig();

	check_self("root", 0);
	test_children_check();
	test_result();
	return 0;
}

/*
 * cow00: private anonymous pages shared copy-on-write after fork come back
 * shared, and pages written after the fork come back apart.
 *
 * The root fills an area of NPAGES pages, then forks a child, which rewrites
 * pages 0-7, drops pages 56-59 (MADV_DONTNEED) and forks a grandchild that
 * rewrites pages 0-3; the root rewrites pages 8-15 after the fork.  Before
 * the dump and after the restore the root reads the three processes'
 * /proc/PID/pagemap frames (PFN, bits 0-54: root only) of the area: for every
 * page, whether root and child map the same frame, and child and grandchild,
 * must be what it was (the layout is checked against the expected one before
 * the dump).  Each process's Rss and Pss of the area (smaps) must be what
 * they were, and Pss below Rss where pages are shared.  Last every process
 * checks the contents of its area.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#define NPAGES	64
#define PAGE	4096
#define SIZE	(NPAGES * PAGE)
#define PFN(e)	((e) & ((1ULL << 55) - 1))
#define PRESENT	(1ULL << 63)

enum { ROOT, CHILD, GRAND, NTASKS };

static char *area;
static pid_t *pids;		/* MAP_SHARED: the grandchild's pid, told by the child */

struct view {
	char same[2][NPAGES];	/* [0]: root and child, [1]: child and grandchild */
	long rss[NTASKS], pss[NTASKS];
};
static struct view before;

static void fill(int from, int to, uint64_t seed)
{
	datagen_at(area + from * PAGE, (to - from) * PAGE, seed, from * PAGE);
}

static int pagemap(pid_t pid, uint64_t *out)
{
	char path[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		pr_err("open %s", path);
		return -1;
	}
	n = pread(fd, out, NPAGES * 8, (uintptr_t)area / PAGE * 8);
	close(fd);
	if (n != NPAGES * 8) {
		pr_err("read %s", path);
		return -1;
	}
	return 0;
}

/* Rss and Pss (kB) of the area in pid's smaps. */
static int smaps(pid_t pid, long *rss, long *pss)
{
	char path[64], line[256], head[32];
	int in = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	snprintf(head, sizeof(head), "%lx-", (unsigned long)area);
	f = fopen(path, "r");
	if (!f) {
		pr_err("open %s", path);
		return -1;
	}
	*rss = *pss = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, ' ') && strchr(line, '-') < strchr(line, ' '))
			in = !strncmp(line, head, strlen(head));
		else if (in)
			sscanf(line, "Rss: %ld", rss), sscanf(line, "Pss: %ld", pss);
	}
	fclose(f);
	if (*rss < 0 || *pss < 0) {
		pr_err("no Rss/Pss of %p in %s", area, path);
		return -1;
	}
	return 0;
}

static int take(struct view *v)
{
	uint64_t map[NTASKS][NPAGES];
	pid_t who[NTASKS] = { getpid(), test_child_pid(0), pids[0] };
	int t, i, frames = 0;

	for (t = 0; t < NTASKS; t++)
		if (pagemap(who[t], map[t]) || smaps(who[t], &v->rss[t], &v->pss[t]))
			return -1;
	for (i = 0; i < NPAGES; i++) {
		for (t = 0; t < 2; t++)
			v->same[t][i] = (map[t][i] & PRESENT) && (map[t + 1][i] & PRESENT) &&
					PFN(map[t][i]) == PFN(map[t + 1][i]);
		frames += PFN(map[ROOT][i]) != 0;
	}
	if (!frames) {
		pr_err("pagemap shows no frames (needs CAP_SYS_ADMIN)");
		return -1;
	}
	return 0;
}

/* The sharing the set-up made: root/child share 16-55 and 60-63,
 * child/grandchild 4-55 and 60-63. */
static void check_layout(const struct view *v)
{
	int i;

	for (i = 0; i < NPAGES; i++) {
		int rc = (i >= 16 && i < 56) || i >= 60;
		int cg = (i >= 4 && i < 56) || i >= 60;

		if (v->same[0][i] != rc || v->same[1][i] != cg)
			pr_err("before the dump, page %d: root/child share %d (expected %d), "
			       "child/grandchild %d (expected %d)", i, v->same[0][i], rc, v->same[1][i], cg);
	}
}

static void compare(const struct view *now)
{
	static const char *names[NTASKS] = { "root", "child", "grandchild" };
	int t, i;

	for (t = 0; t < 2; t++)
		for (i = 0; i < NPAGES; i++)
			if (now->same[t][i] != before.same[t][i])
				pr_err("page %d: %s and %s %s the same frame, did%s before", i, names[t],
				       names[t + 1], now->same[t][i] ? "map" : "do not map",
				       before.same[t][i] ? "" : " not");
	for (t = 0; t < NTASKS; t++) {
		if (now->rss[t] != before.rss[t] || labs(now->pss[t] - before.pss[t]) > 1)
			pr_err("%s: Rss %ld kB, Pss %ld kB of the area; before: %ld, %ld", names[t],
			       now->rss[t], now->pss[t], before.rss[t], before.pss[t]);
		if (now->pss[t] >= now->rss[t])
			pr_err("%s: Pss %ld kB is not below Rss %ld kB: nothing shared", names[t],
			       now->pss[t], now->rss[t]);
	}
}

static void check_contents(const char *who, int depth)
{
	static const char zero[PAGE];
	int i;

	for (i = 0; i < NPAGES; i++) {
		uint64_t seed = 1;
		char *p = area + i * PAGE;

		if (depth == 0 && i >= 8 && i < 16)
			seed = 4;
		if (depth >= 1 && i < 8)
			seed = 2;
		if (depth == 2 && i < 4)
			seed = 3;
		if (depth >= 1 && i >= 56 && i < 60) {
			if (memcmp(p, zero, PAGE))
				pr_err("%s: dropped page %d is not zero", who, i);
		} else if (datachk_at(p, PAGE, seed, i * PAGE)) {
			pr_err("%s: page %d changed", who, i);
		}
	}
}

static void grandchild(void)
{
	fill(0, 4, 3);
	pids[0] = getpid();
	test_child_ready();
	test_waitsig();
	check_contents("grandchild", 2);
	test_child_exit();
}

static void child(void)
{
	fill(0, 8, 2);
	if (madvise(area + 56 * PAGE, 4 * PAGE, MADV_DONTNEED))
		fail("madvise(MADV_DONTNEED)");
	if (test_fork() == 0)
		grandchild();
	test_child_ready();
	test_waitsig();
	check_contents("child", 1);
	test_children_check();
	test_child_exit();
}

int main(int argc, char **argv)
{
	struct view now;

	test_init(argc, argv);

	pids = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	area = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pids == MAP_FAILED || area == MAP_FAILED)
		fail("mmap");
	if (madvise(area, SIZE, MADV_NOHUGEPAGE))
		fail("madvise(MADV_NOHUGEPAGE)");
	fill(0, NPAGES, 1);
	if (test_fork() == 0)
		child();
	fill(8, 16, 4);
	test_children_wait_ready();
	if (take(&before))
		fail("cannot read the frames before the dump");
	check_layout(&before);

	test_daemon();
	test_waitsig();

	if (take(&now) == 0)
		compare(&now);
	test_children_check();
	check_contents("root", 0);
	test_result();
	return 0;
}

/*
 * ipc_shm00: SysV shared memory segments survive, with their contents, ids,
 * attributes and the test's attachment.
 *
 * In the test's own IPC namespace: segment A (keyed, 5 pages + 100 bytes,
 * mode 0640) is attached at an address the test chose and filled; segment B
 * (IPC_PRIVATE, 3 pages) holds data but is not attached.  After restore:
 * shmget(key) finds A with the same id; IPC_STAT of both (key, size, mode,
 * nattch) is as before; A is still mapped at its address (/proc/self/maps
 * names /SYSV<key> with the shmid as inode) with its data; the mapping is
 * really the segment: data written through it is seen through a second
 * attachment; B attached now holds its data.
 */
#include "zdtmtst.h"

#include <sched.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define PS	4096
#define KEY	0x2d7d0001
#define SIZE_A	(5 * PS + 100)
#define SIZE_B	(3 * PS)

struct seg {
	int id;
	key_t key;
	size_t size;
	int mode;
	unsigned long nattch;
};

static void stat_seg(int id, struct seg *s)
{
	struct shmid_ds ds;

	memset(s, 0, sizeof(*s));
	s->id = id;
	if (shmctl(id, IPC_STAT, &ds))
		return;
	s->key = ds.shm_perm.__key;
	s->size = ds.shm_segsz;
	s->mode = ds.shm_perm.mode & 0777;
	s->nattch = ds.shm_nattch;
}

static void cmp_seg(const char *what, const struct seg *a, const struct seg *b)
{
	if (a->key != b->key || a->size != b->size || a->mode != b->mode ||
	    a->nattch != b->nattch)
		pr_err("%s (id %d): key %#x size %zu mode %o nattch %lu, was %#x %zu %o %lu",
		       what, b->id, b->key, b->size, b->mode, b->nattch, a->key, a->size,
		       a->mode, a->nattch);
}

int main(int argc, char **argv)
{
	struct seg a0, b0, a1, b1;
	struct test_vma v;
	int ida, idb;
	char *addr, *p, *q, want[64];

	test_init(argc, argv);
	test_private_ns(CLONE_NEWIPC);

	ida = shmget(KEY, SIZE_A, IPC_CREAT | IPC_EXCL | 0640);
	idb = shmget(IPC_PRIVATE, SIZE_B, IPC_CREAT | 0600);
	if (ida < 0 || idb < 0)
		fail("shmget");
	/* An address of our choosing: reserve, then attach there. */
	addr = mmap(NULL, 16 * PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (addr == MAP_FAILED)
		fail("mmap");
	munmap(addr, 16 * PS);
	addr += 4 * PS;
	p = shmat(ida, addr, 0);
	if (p != addr)
		fail("shmat at %p", addr);
	datagen(p, SIZE_A, 11);
	q = shmat(idb, NULL, 0);
	if (q == (void *)-1)
		fail("shmat B");
	datagen(q, SIZE_B, 12);
	if (shmdt(q))
		fail("shmdt");
	stat_seg(ida, &a0);
	stat_seg(idb, &b0);
	if (a0.nattch != 1 || b0.nattch != 0)
		fail("nattch %lu %lu", a0.nattch, b0.nattch);

	test_daemon();
	test_waitsig();

	if (shmget(KEY, 0, 0) != ida)
		pr_err("shmget(key) = %d, was %d", shmget(KEY, 0, 0), ida);
	stat_seg(ida, &a1);
	stat_seg(idb, &b1);
	cmp_seg("segment A", &a0, &a1);
	cmp_seg("segment B", &b0, &b1);
	if (test_find_vma(addr, &v))
		pr_err("nothing mapped at %p", addr);
	else {
		snprintf(want, sizeof(want), "/SYSV%08x", KEY);
		if (v.start != (unsigned long)addr || strncmp(v.path, want, strlen(want)) ||
		    v.ino != (unsigned long)ida || strcmp(v.perms, "rw-s"))
			pr_err("mapping at %p: %lx-%lx %s ino %lu '%s'", addr, v.start, v.end,
			       v.perms, v.ino, v.path);
		else if (datachk(p, SIZE_A, 11))
			pr_err("segment A data differ at %zd", datachk_off(p, SIZE_A, 11));
	}
	q = shmat(idb, NULL, SHM_RDONLY);
	if (q == (void *)-1)
		pr_err("shmat B after restore");
	else if (datachk(q, SIZE_B, 12))
		pr_err("segment B data differ at %zd", datachk_off(q, SIZE_B, 12));
	if (!test_errors) {
		q = shmat(ida, NULL, 0);
		if (q == (void *)-1)
			pr_err("second shmat of A");
		else {
			datagen(p + 2 * PS, PS, 13);
			if (datachk(q + 2 * PS, PS, 13))
				pr_err("a write through the restored attachment is not in the segment");
		}
	}
	test_result();
	return 0;
}

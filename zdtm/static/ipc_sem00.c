/*
 * ipc_sem00: SysV semaphore sets survive with their values.
 *
 * In the test's own IPC namespace: set A (keyed, 5 semaphores, mode 0660)
 * with values 0, 1, 7, 100, 32767 and set B (IPC_PRIVATE, 3 semaphores,
 * mode 0600) with 5, 0, 2.  After restore: semget(key) finds A with the
 * same id; IPC_STAT gives the same key, mode and number of semaphores;
 * GETALL the same values; and the sets still work: a decrement of a zero
 * semaphore with IPC_NOWAIT fails with EAGAIN, decrements and increments
 * change exactly the values they should.
 */
#include "zdtmtst.h"

#include <sched.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/sem.h>

#define KEY	0x2d7d0002

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static const unsigned short va[5] = { 0, 1, 7, 100, 32767 };
static const unsigned short vb[3] = { 5, 0, 2 };

static void check_set(const char *what, int id, key_t key, int mode,
		      const unsigned short *vals, int n)
{
	struct semid_ds ds;
	unsigned short got[8];
	union semun u;
	int i;

	u.buf = &ds;
	if (semctl(id, 0, IPC_STAT, u)) {
		pr_err("%s: IPC_STAT of id %d", what, id);
		return;
	}
	if (ds.sem_perm.__key != key || (ds.sem_perm.mode & 0777) != mode ||
	    (int)ds.sem_nsems != n)
		pr_err("%s: key %#x mode %o nsems %lu, expected %#x %o %d", what,
		       ds.sem_perm.__key, ds.sem_perm.mode & 0777, (unsigned long)ds.sem_nsems,
		       key, mode, n);
	u.array = got;
	if (semctl(id, 0, GETALL, u)) {
		pr_err("%s: GETALL", what);
		return;
	}
	for (i = 0; i < n; i++)
		if (got[i] != vals[i])
			pr_err("%s: semaphore %d is %u, expected %u", what, i, got[i], vals[i]);
}

int main(int argc, char **argv)
{
	struct sembuf op;
	unsigned short now[5];
	union semun u;
	int ida, idb;

	test_init(argc, argv);
	test_private_ns(CLONE_NEWIPC);

	ida = semget(KEY, 5, IPC_CREAT | IPC_EXCL | 0660);
	idb = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
	if (ida < 0 || idb < 0)
		fail("semget");
	u.array = (unsigned short *)va;
	if (semctl(ida, 0, SETALL, u))
		fail("SETALL A");
	u.array = (unsigned short *)vb;
	if (semctl(idb, 0, SETALL, u))
		fail("SETALL B");
	check_set("A before", ida, KEY, 0660, va, 5);
	check_set("B before", idb, IPC_PRIVATE, 0600, vb, 3);
	if (test_errors)
		fail("sets not as planned");

	test_daemon();
	test_waitsig();

	if (semget(KEY, 0, 0) != ida)
		pr_err("semget(key) = %d, was %d", semget(KEY, 0, 0), ida);
	check_set("A", ida, KEY, 0660, va, 5);
	check_set("B", idb, IPC_PRIVATE, 0600, vb, 3);

	op = (struct sembuf){ .sem_num = 0, .sem_op = -1, .sem_flg = IPC_NOWAIT };
	if (semop(ida, &op, 1) == 0 || errno != EAGAIN)
		pr_err("decrementing a zero semaphore did not fail with EAGAIN");
	op = (struct sembuf){ .sem_num = 2, .sem_op = -7, .sem_flg = IPC_NOWAIT };
	if (semop(ida, &op, 1))
		pr_err("semop -7 on semaphore 2");
	op = (struct sembuf){ .sem_num = 1, .sem_op = 3, .sem_flg = 0 };
	if (semop(ida, &op, 1))
		pr_err("semop +3 on semaphore 1");
	memcpy(now, va, sizeof(now));
	now[1] += 3;
	now[2] -= 7;
	check_set("A after semops", ida, KEY, 0660, now, 5);
	test_result();
	return 0;
}

/*
 * ipc_msg00: SysV message queues survive with their messages.
 *
 * In the test's own IPC namespace: queue A (keyed, mode 0640, msg_qbytes
 * lowered with IPC_SET) holds several messages of different types and
 * sizes (one empty); queue B (IPC_PRIVATE) is empty.  After restore:
 * msgget(key) finds A with the same id; IPC_STAT gives the same key, mode,
 * qbytes, number of messages and bytes; receiving by type picks the right
 * message (msgrcv with a type, with a negative type), the rest come out in
 * order with their types and contents, then ENOMSG; B is still empty.
 */
#include "zdtmtst.h"

#include <sched.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#define KEY	0x2d7d0003
#define QBYTES	12345
#define MAXLEN	2048

struct m {
	long type;
	size_t len;
};

/* Sent in this order. */
static const struct m msgs[] = {
	{ 1, 100 }, { 2, 2000 }, { 3, 0 }, { 1, 37 }, { 5, 555 }, { 2, 1 },
};

struct buf {
	long mtype;
	char mtext[MAXLEN];
};

static void stat_q(int id, struct msqid_ds *ds)
{
	memset(ds, 0, sizeof(*ds));
	if (msgctl(id, IPC_STAT, ds))
		pr_err("IPC_STAT of queue %d", id);
}

/* Receive with msgtyp and check it is message number i. */
static void recv_one(int id, long msgtyp, int i)
{
	struct buf b;
	ssize_t n = msgrcv(id, &b, MAXLEN, msgtyp, IPC_NOWAIT);

	if (n < 0) {
		pr_err("msgrcv(type %ld): nothing, expected message %d", msgtyp, i);
		return;
	}
	if (b.mtype != msgs[i].type || (size_t)n != msgs[i].len ||
	    datachk(b.mtext, n, 100 + i))
		pr_err("msgrcv(type %ld): type %ld, %zd bytes; expected message %d "
		       "(type %ld, %zu bytes)%s", msgtyp, b.mtype, n, i, msgs[i].type,
		       msgs[i].len, datachk(b.mtext, n, 100 + i) ? ", wrong data" : "");
}

int main(int argc, char **argv)
{
	struct msqid_ds a0, b0, a1, b1;
	struct buf b;
	size_t i, bytes = 0;
	int ida, idb;

	test_init(argc, argv);
	test_private_ns(CLONE_NEWIPC);

	ida = msgget(KEY, IPC_CREAT | IPC_EXCL | 0640);
	idb = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (ida < 0 || idb < 0)
		fail("msgget");
	stat_q(ida, &a0);
	a0.msg_qbytes = QBYTES;
	if (msgctl(ida, IPC_SET, &a0))
		fail("IPC_SET");
	for (i = 0; i < ARRAY_SIZE(msgs); i++) {
		b.mtype = msgs[i].type;
		datagen(b.mtext, msgs[i].len, 100 + i);
		if (msgsnd(ida, &b, msgs[i].len, IPC_NOWAIT))
			fail("msgsnd %zu", i);
		bytes += msgs[i].len;
	}
	stat_q(ida, &a0);
	stat_q(idb, &b0);
	if (a0.msg_qnum != ARRAY_SIZE(msgs) || a0.msg_cbytes != bytes ||
	    a0.msg_qbytes != QBYTES)
		fail("queue A not as planned");

	test_daemon();
	test_waitsig();

	if (msgget(KEY, 0) != ida)
		pr_err("msgget(key) = %d, was %d", msgget(KEY, 0), ida);
	stat_q(ida, &a1);
	stat_q(idb, &b1);
	if (a1.msg_perm.__key != KEY || (a1.msg_perm.mode & 0777) != 0640 ||
	    a1.msg_qbytes != QBYTES || a1.msg_qnum != a0.msg_qnum ||
	    a1.msg_cbytes != a0.msg_cbytes)
		pr_err("queue A: key %#x mode %o qbytes %lu qnum %lu cbytes %lu",
		       a1.msg_perm.__key, a1.msg_perm.mode & 0777,
		       (unsigned long)a1.msg_qbytes, (unsigned long)a1.msg_qnum,
		       (unsigned long)a1.msg_cbytes);
	if (b1.msg_qnum != 0 || (b1.msg_perm.mode & 0777) != 0600 ||
	    b1.msg_qbytes != b0.msg_qbytes)
		pr_err("queue B: qnum %lu mode %o qbytes %lu", (unsigned long)b1.msg_qnum,
		       b1.msg_perm.mode & 0777, (unsigned long)b1.msg_qbytes);

	recv_one(ida, 5, 4);	/* the first of type 5 */
	recv_one(ida, 2, 1);	/* the first of type 2 */
	recv_one(ida, -2, 0);	/* lowest type <= 2: the first type 1 */
	recv_one(ida, 0, 2);	/* then in order */
	recv_one(ida, 0, 3);
	recv_one(ida, 0, 5);
	if (msgrcv(ida, &b, MAXLEN, 0, IPC_NOWAIT) >= 0 || errno != ENOMSG)
		pr_err("queue A: more messages than sent");
	if (msgrcv(idb, &b, MAXLEN, 0, IPC_NOWAIT) >= 0 || errno != ENOMSG)
		pr_err("queue B is not empty");
	test_result();
	return 0;
}

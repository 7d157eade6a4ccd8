/*
 * mnt_mqueue_sysfs00: an mqueue and a sysfs mounted inside the namespace
 * come back as the namespace's own (ns flavor).
 *
 * mqueue at mq (the test's IPC namespace) and sysfs at sys (its network
 * namespace, where only lo exists) are mounted nosuid,nodev,noexec.  After
 * restore: both in mountinfo with their flags; a queue the test creates
 * with mq_open appears in mq (so it is its IPC namespace's mqueue), and
 * sys/class/net lists exactly lo (its network namespace's sysfs).
 */
#include "zdtmtst.h"
#include "zmnt.h"

#include <dirent.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sys/mount.h>
#include <unistd.h>

static void check_mounts(const char *when)
{
	struct zmnt mq, sys;
	struct dirent *de;
	int n = 0, lo = 0;
	DIR *d;

	if (zmnt_find(zmnt_abs(0, "mq"), &mq) == 0 &&
	    (strcmp(mq.fstype, "mqueue") || strcmp(mq.opts, "rw,nosuid,nodev,noexec,relatime")))
		pr_err("%s: mq is %s %s", when, mq.fstype, mq.opts);
	if (zmnt_find(zmnt_abs(0, "sys"), &sys) == 0 &&
	    (strcmp(sys.fstype, "sysfs") || strcmp(sys.opts, "rw,nosuid,nodev,noexec,relatime")))
		pr_err("%s: sys is %s %s", when, sys.fstype, sys.opts);
	d = opendir("sys/class/net");
	if (!d) {
		pr_err("%s: cannot list sys/class/net", when);
		return;
	}
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			n++;
			lo += strcmp(de->d_name, "lo") == 0;
		}
	closedir(d);
	if (n != 1 || !lo)
		pr_err("%s: sys/class/net has %d entries (lo: %d), expected just lo", when, n, lo);
}

int main(int argc, char **argv)
{
	mqd_t q;

	test_init(argc, argv);
	zmnt_mount("zdtm-mq", zmnt_abs(0, "mq"), "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	zmnt_mount("zdtm-sys", zmnt_abs(0, "sys"), "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	test_check_around_cr(check_mounts);
	q = mq_open("/zdtm-mq00", O_CREAT | O_RDWR, 0600, NULL);
	if (q == (mqd_t)-1)
		pr_err("mq_open");
	else if (access("mq/zdtm-mq00", F_OK))
		pr_err("a queue of the test's IPC namespace is not in mq");
	if (q != (mqd_t)-1) {
		mq_close(q);
		mq_unlink("/zdtm-mq00");
	}
	test_result();
	return 0;
}

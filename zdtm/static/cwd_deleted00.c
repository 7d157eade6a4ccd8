/*
 * cwd_deleted00: the process's current directory was removed (rmdir while
 * it is in it).  refcr cannot recreate a deleted directory yet, so the dump
 * must be refused with one line naming it (cr-opts.json "refuse"; crfail:
 * the real dump fails too), and the process must survive with its cwd
 * unchanged (still the deleted directory: "." has no links, creating a file
 * in it fails with ENOENT).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat before, now;

	test_init(argc, argv);
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"was deleted\"}]}");
	if ((mkdir("gone", 0755) && errno != EEXIST) || chdir("gone"))
		fail("mkdir/chdir");
	if (rmdir("../gone") || stat(".", &before))
		fail("rmdir");
	test_daemon();
	test_waitsig();
	if (stat(".", &now) || now.st_ino != before.st_ino || now.st_nlink != 0)
		pr_err("the cwd changed after the failed dump");
	if (open("f", O_WRONLY | O_CREAT, 0600) >= 0 || errno != ENOENT)
		pr_err("a file could be created in the deleted cwd");
	test_result();
	return 0;
}

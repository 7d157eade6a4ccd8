/*
 * fanotify_perm_deleted00: a fanotify group with a permission event
 * (FAN_OPEN_PERM) on a file that was then deleted, the file's fd numbered
 * before the group's, so the dump meets the file first.  Reading the
 * deleted file's data would wait for the group's answer, and the group's
 * process is frozen: the dump hung.  It must be refused with one line
 * naming the group (cr-opts.json "refuse"; crfail: the real dump fails
 * too), and the process runs on unchanged: the mark still asks for
 * permission (an open of the file by a child waits for our answer, and
 * gets through once we allow it).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct fanotify_event_metadata ev;
	struct fanotify_response resp;
	struct pollfd pfd;
	int file, fan, status;
	pid_t kid;

	test_init(argc, argv);
	test_write_text("cr-opts.json", "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], "
			"\"says\": \"has permission events\"}]}");
	file = open("guarded", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (file < 0 || write(file, "data", 4) != 4)
		fail("guarded");
	fan = fanotify_init(FAN_CLASS_CONTENT, O_RDONLY);
	if (fan < 0)
		fail("fanotify_init");
	if (fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM, file, NULL))
		fail("fanotify_mark");
	if (unlink("guarded"))
		fail("unlink");
	test_daemon();
	test_waitsig();

	kid = fork();
	if (kid == 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", file);
		_exit(open(path, O_RDONLY) < 0 ? 1 : 0);	/* waits for our answer */
	}
	pfd.fd = fan;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 10000) != 1 || read(fan, &ev, sizeof(ev)) != sizeof(ev) || !(ev.mask & FAN_OPEN_PERM))
		pr_err("no FAN_OPEN_PERM event for the child's open: the mark is gone");
	else {
		resp.fd = ev.fd;
		resp.response = FAN_ALLOW;
		if (write(fan, &resp, sizeof(resp)) != sizeof(resp))
			pr_err("answer");
		close(ev.fd);
	}
	if (waitpid(kid, &status, 0) != kid || !WIFEXITED(status) || WEXITSTATUS(status))
		pr_err("the child's open of the file did not get through (%#x)", status);
	test_result();
	return 0;
}

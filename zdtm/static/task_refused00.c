/*
 * task_refused00: per-task state refcr cannot restore makes the dump fail
 * with one line naming it, and the task runs on unchanged.
 *
 * The root has a parent-death signal (PR_SET_PDEATHSIG): its parent is not
 * part of the dump, so the restored root would get it when refcr (its new
 * parent) exits.  The harness runs a dump that must be refused saying so
 * (cr-opts.json), then the real dump, which must fail too (.desc: crfail);
 * after each the task must be alive with the same state.
 */
#include "zdtmtst.h"

#include <sys/prctl.h>

int main(int argc, char **argv)
{
	int sig = 0;

	test_init(argc, argv);
	/* ignored: the parent that exits at test_daemon() (h) or after it (ns)
	 * sends it, and it must not be left pending to race with the snapshot */
	signal(SIGUSR1, SIG_IGN);
	if (prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0))
		fail("PR_SET_PDEATHSIG");
	test_write_text("cr-opts.json",
			"{\"refuse\": [{\"step\": \"dump\", \"opts\": [], \"says\": "
			"\"parent-death signal 10 (PR_SET_PDEATHSIG)\"}]}\n");

	test_daemon();
	test_waitsig();

	if (prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) || sig != SIGUSR1)
		pr_err("parent-death signal %d, expected %d", sig, SIGUSR1);
	test_result();
	return 0;
}

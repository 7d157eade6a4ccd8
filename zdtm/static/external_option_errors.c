/*
 * external_option_errors: every malformed --external / --ext-unix-sk /
 * --inherit-fd, and every one that matches nothing, is refused with one line
 * naming it, by real dumps of this live process (which must survive each one
 * unchanged) and real restores of its images (which must leave nothing behind).
 *
 * The process holds a stream unix connection to a server outside the tree (the
 * line_server peer), so the external-socket options have something to match.
 * The refusals are listed in cr-opts.json (they name the socket's inode, known
 * only at run time); then the real dump (--ext-unix-sk ID) and restore
 * (--ext-unix-sk ID) must work and "after" be answered on the new connection.
 */
#include "zdtmtst.h"

#include <sys/socket.h>

static const char *const json =
	"{\"dump\": [\"--ext-unix-sk\", \"%1$lu\"], \"restore\": [\"--ext-unix-sk\", \"%1$lu\"],\n"
	" \"refuse\": [\n"
	/* dump: the connection itself needs an option; the bare one is for datagrams */
	"  {\"step\": \"dump\", \"opts\": [], \"says\": \"unix socket %1$lu\"},\n"
	"  {\"step\": \"dump\", \"opts\": [\"--ext-unix-sk\"], \"says\": \"unix socket %1$lu\"},\n"
	/* dump: malformed and unmatched --ext-unix-sk */
	"  {\"step\": \"dump\", \"opts\": [\"--ext-unix-sk\", \"abc\"], \"says\": \"--ext-unix-sk abc:\"},\n"
	"  {\"step\": \"dump\", \"opts\": [\"--ext-unix-sk\", \"%1$lu:\"], \"says\": \"--ext-unix-sk %1$lu::\"},\n"
	"  {\"step\": \"dump\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--ext-unix-sk\", \"1\"], "
	"\"says\": \"--ext-unix-sk 1:\"},\n"
	/* dump: malformed, unsupported and unmatched --external */
	"  {\"step\": \"dump\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--external\", \"unix\"], "
	"\"says\": \"--external unix:\"},\n"
	"  {\"step\": \"dump\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--external\", \"unix[abc]\"], "
	"\"says\": \"--external unix[abc]:\"},\n"
	"  {\"step\": \"dump\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--external\", \"bogus[1]\"], "
	"\"says\": \"--external bogus[1]:\"},\n"
	"  {\"step\": \"dump\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--external\", \"macvlan[m0]\"], "
	"\"says\": \"--external macvlan[m0]:\"},\n"
	"  {\"step\": \"dump\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--external\", \"unix[1]\"], "
	"\"says\": \"--ext-unix-sk 1:\"},\n"
	/* restore: the stream must be told; unmatched --ext-unix-sk */
	"  {\"step\": \"restore\", \"opts\": [], \"says\": \"--ext-unix-sk %1$lu\"},\n"
	"  {\"step\": \"restore\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--ext-unix-sk\", \"1\"], "
	"\"says\": \"--ext-unix-sk 1:\"},\n"
	"  {\"step\": \"restore\", \"opts\": [\"--ext-unix-sk\", \"x:/tmp\"], \"says\": \"--ext-unix-sk x:/tmp:\"},\n"
	/* restore: malformed and unmatched --inherit-fd */
	"  {\"step\": \"restore\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--inherit-fd\", \"3:pipe:[1]\"], "
	"\"says\": \"--inherit-fd 3:pipe:[1]:\"},\n"
	"  {\"step\": \"restore\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--inherit-fd\", \"fd[x]:pipe:[1]\"], "
	"\"says\": \"--inherit-fd fd[x]:pipe:[1]:\"},\n"
	"  {\"step\": \"restore\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--inherit-fd\", \"fd[0]:pipe[1]\"], "
	"\"says\": \"--inherit-fd fd[0]:pipe[1]: unknown resource\"},\n"
	"  {\"step\": \"restore\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--inherit-fd\", \"fd[0]:rel/path\"], "
	"\"says\": \"--inherit-fd fd[0]:rel/path: unknown resource\"},\n"
	"  {\"step\": \"restore\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--inherit-fd\", \"fd[987]:pipe:[1]\"], "
	"\"says\": \"--inherit-fd fd[987]:pipe:[1]: refcr has no open fd 987\"},\n"
	"  {\"step\": \"restore\", \"opts\": [\"--ext-unix-sk\", \"%1$lu\", \"--inherit-fd\", \"fd[0]:pipe:[1]\"], "
	"\"says\": \"--inherit-fd fd[0]:pipe:[1]: matches nothing\"}\n"
	" ]}\n";

int main(int argc, char **argv)
{
	int sk;

	test_init(argc, argv);
	sk = test_unix_connect("peer.sock", SOCK_STREAM, NULL);
	if (test_ask_line(sk, "before"))
		fail("the server did not answer");
	test_write_text("cr-opts.json", json, test_fd_inode(sk));

	test_daemon();
	test_waitsig();

	test_ask_line(sk, "after");
	test_result();
	return 0;
}

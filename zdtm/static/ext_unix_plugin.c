/*
 * ext_unix_plugin: stream connections to a broker outside the dumped tree that
 * keeps state per client (the D-Bus case), dumped and restored by the plugin
 * plugins/unix-sk.
 *
 * The peer unix_broker (WORKDIR/peer.broker) keeps each client's subscriptions.
 * The test holds two connections: "sub", subscribed to alpha and gamma (not
 * beta), non-blocking; "pub", subscribed to nothing, used to publish.  Before
 * the dump and after the restore it publishes beta, alpha, gamma through pub
 * and checks: the broker counts 0, 1, 1 subscribers; sub receives exactly the
 * alpha and the gamma event, in order, and nothing else; both sockets are
 * connected to the broker and belong to the test's network namespace.  The broker forgot the
 * old connections when the dump killed the test, so events after restore prove
 * that the plugin subscribed the new connection again; the broker's verdict
 * checks that what the plugin listed at dump was re-subscribed.
 *
 * cr-opts.json: a dump without the plugin is refused naming the socket, and a
 * restore without it is refused naming the plugin.
 */
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define TIMEOUT_MS 5000

static int connect_broker(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = "peer.broker" };
	int sk = socket(AF_UNIX, SOCK_STREAM, 0);

	if (sk < 0 || connect(sk, (struct sockaddr *)&sun, sizeof(sun)))
		fail("connect to the broker (peer.broker)");
	return sk;
}

/* One line from sk (without '\n') within ms; 0, or -1 on timeout/EOF/error. */
static int read_line(int sk, char *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = sk, .events = POLLIN };
	size_t off = 0;
	ssize_t r;

	while (off + 1 < len) {
		if (poll(&p, 1, ms) != 1)
			return -1;
		r = recv(sk, buf + off, 1, 0);
		if (r < 0 && errno == EAGAIN)
			continue;
		if (r <= 0)
			return -1;
		if (buf[off] == '\n') {
			buf[off] = '\0';
			return 0;
		}
		off++;
	}
	return -1;
}

static void expect_line(int sk, const char *what, const char *want)
{
	char got[256];

	if (read_line(sk, got, sizeof(got), TIMEOUT_MS))
		pr_err("%s: no line (wanted \"%s\")", what, want);
	else if (strcmp(got, want))
		pr_err("%s: got \"%s\", wanted \"%s\"", what, got, want);
}

static void request(int sk, const char *req, const char *answer)
{
	char line[256];

	snprintf(line, sizeof(line), "%s\n", req);
	if (test_write_all(sk, line, strlen(line)) != (ssize_t)strlen(line))
		pr_err("send \"%s\"", req);
	expect_line(sk, req, answer);
}

static void round_trip(int sub, int pub, const char *when)
{
	struct pollfd p = { .fd = sub, .events = POLLIN };
	char req[64], ev[64];

	snprintf(req, sizeof(req), "PUB beta b-%s", when);
	request(pub, req, "OK PUB 0");
	snprintf(req, sizeof(req), "PUB alpha a-%s", when);
	request(pub, req, "OK PUB 1");
	snprintf(req, sizeof(req), "PUB gamma g-%s", when);
	request(pub, req, "OK PUB 1");
	snprintf(ev, sizeof(ev), "EVENT alpha a-%s", when);
	expect_line(sub, when, ev);
	snprintf(ev, sizeof(ev), "EVENT gamma g-%s", when);
	expect_line(sub, when, ev);
	if (poll(&p, 1, 200) != 0)
		pr_err("%s: more on the subscriber's connection than the two events", when);
	test_msg("%s: events for alpha and gamma only", when);
}

static void check_socket(int sk, const char *name)
{
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);
	struct stat sns, own;
	size_t n;
	int ns;

	if (test_getsockopt_int(sk, SOL_SOCKET, SO_TYPE) != SOCK_STREAM)
		pr_err("%s: not a stream socket", name);
	memset(&sun, 0, sizeof(sun));
	if (getpeername(sk, (struct sockaddr *)&sun, &len)) {
		pr_err("%s: getpeername", name);
		return;
	}
	n = strlen(sun.sun_path);
	if (n < 12 || sun.sun_path[0] != '/' || strcmp(sun.sun_path + n - 12, "/peer.broker"))
		pr_err("%s: connected to \"%s\", not the broker", name, sun.sun_path);
	ns = ioctl(sk, SIOCGSKNS);
	if (ns < 0 || fstat(ns, &sns) || stat("/proc/self/ns/net", &own))
		pr_err("%s: its network namespace (SIOCGSKNS)", name);
	else if (sns.st_ino != own.st_ino)
		pr_err("%s: belongs to another network namespace than the test", name);
	if (ns >= 0)
		close(ns);
}

int main(int argc, char **argv)
{
	struct stat st;
	FILE *f;
	int sub, pub;

	test_init(argc, argv);
	sub = connect_broker();
	pub = connect_broker();
	request(sub, "SUB alpha", "OK SUB alpha");
	request(sub, "SUB gamma", "OK SUB gamma");
	if (fcntl(sub, F_SETFL, O_NONBLOCK))
		fail("O_NONBLOCK");
	check_socket(sub, "sub");
	round_trip(sub, pub, "before");
	if (fstat(sub, &st))
		fail("fstat");
	f = fopen("cr-opts.json", "w");
	if (!f)
		fail("cr-opts.json");
	fprintf(f, "{\"refuse\": [{\"step\": \"dump\", \"opts\": [], \"says\": \"unix socket %lu\"},\n"
		   "            {\"step\": \"restore\", \"opts\": [], \"says\": \"plugin(s) unix-sk\"}]}\n",
		(unsigned long)st.st_ino);
	fclose(f);

	test_daemon();
	test_waitsig();

	check_socket(sub, "sub");
	check_socket(pub, "pub");
	if (!(fcntl(sub, F_GETFL) & O_NONBLOCK))
		pr_err("sub lost O_NONBLOCK");
	if (fcntl(pub, F_GETFL) & O_NONBLOCK)
		pr_err("pub became O_NONBLOCK");
	round_trip(sub, pub, "after");
	test_result();
	return 0;
}

/*
 * sockopts00: socket options of unix, UDP and TCP (v4 and v6) sockets.
 *
 * Each socket gets options off their defaults (see the table below: SOL_SOCKET,
 * IP, IPv6 and TCP levels, buffer sizes locked and not, time-outs, a bound
 * device); every option's getsockopt value is recorded before the dump and
 * compared after restore.  Classic BPF filters: a unix datagram pair whose
 * receiving end accepts only messages starting with 'A' (SO_LOCK_FILTER set
 * on it), and a UDP socket with a one-instruction filter.  After restore the
 * filters read back the same (SO_GET_FILTER) and still filter, and the
 * locked one cannot be removed.  IP_FREEBIND / IPV6_FREEBIND: a UDP socket
 * bound to 198.51.100.7 and an IPv6 listener bound to 2001:db8::7, addresses
 * no interface has, keep their addresses.
 */
#include "zdtmtst.h"

#include <linux/filter.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

enum { TCP4, TCP6, UDP4, UX0, UX1, FREE4, FREE6, NSOCK };
static int fds[NSOCK];

struct opt {
	int sock, level, name;
	const char *what;
	char val[32];
	socklen_t len;
	char before[32];
	socklen_t blen;
};

static int one = 1;
static struct timeval rto = { 2, 500000 }, sto = { 1, 250000 };
static struct linger lin = { 1, 3 };

#define I(v)	{ .len = sizeof(int) }, (v)
static struct opt opts[] = {
	{ TCP4, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY" },
	{ TCP4, SOL_SOCKET, SO_RCVLOWAT, "SO_RCVLOWAT" },
	{ TCP4, SOL_SOCKET, SO_MARK, "SO_MARK" },
	{ TCP4, SOL_SOCKET, SO_DONTROUTE, "SO_DONTROUTE" },
	{ TCP4, SOL_SOCKET, SO_OOBINLINE, "SO_OOBINLINE" },
	{ TCP4, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE" },
	{ TCP4, SOL_SOCKET, SO_LINGER, "SO_LINGER" },
	{ TCP4, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR" },
	{ TCP4, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT" },
	{ TCP4, SOL_SOCKET, SO_BINDTODEVICE, "SO_BINDTODEVICE" },
	{ TCP4, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF (locked)" },
	{ TCP4, SOL_SOCKET, SO_BUF_LOCK, "SO_BUF_LOCK" },
	{ TCP4, SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO" },
	{ TCP4, SOL_SOCKET, SO_SNDTIMEO, "SO_SNDTIMEO" },
	{ TCP4, IPPROTO_IP, IP_TOS, "IP_TOS" },
	{ TCP4, IPPROTO_IP, IP_TTL, "IP_TTL" },
	{ TCP4, IPPROTO_IP, IP_FREEBIND, "IP_FREEBIND" },
	{ TCP4, IPPROTO_IP, IP_TRANSPARENT, "IP_TRANSPARENT" },
	{ TCP4, IPPROTO_IP, IP_RECVERR, "IP_RECVERR" },
	{ TCP4, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY" },
	{ TCP4, IPPROTO_TCP, TCP_MAXSEG, "TCP_MAXSEG" },
	{ TCP4, IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE" },
	{ TCP4, IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL" },
	{ TCP4, IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT" },
	{ TCP4, IPPROTO_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT" },
	{ TCP4, IPPROTO_TCP, TCP_CONGESTION, "TCP_CONGESTION" },
	{ TCP6, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY" },
	{ TCP6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS" },
	{ TCP6, IPPROTO_IPV6, IPV6_TCLASS, "IPV6_TCLASS" },
	{ TCP6, IPPROTO_IPV6, IPV6_RECVERR, "IPV6_RECVERR" },
	{ TCP6, IPPROTO_TCP, TCP_CORK, "TCP_CORK" },
	{ UDP4, SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST" },
	{ UDP4, SOL_SOCKET, SO_NO_CHECK, "SO_NO_CHECK" },
	{ UDP4, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF (locked)" },
	{ UDP4, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF (not locked)" },
	{ UDP4, SOL_SOCKET, SO_BUF_LOCK, "SO_BUF_LOCK (udp)" },
	{ UX1, SOL_SOCKET, SO_PASSCRED, "SO_PASSCRED" },
	{ UX1, SOL_SOCKET, SO_PASSSEC, "SO_PASSSEC" },
	{ UX1, SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY (unix)" },
	{ UX1, SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO (unix)" },
	{ UX1, SOL_SOCKET, SO_LOCK_FILTER, "SO_LOCK_FILTER" },
	{ UX0, SOL_SOCKET, SO_SNDTIMEO, "SO_SNDTIMEO (unix)" },
	{ UX0, SOL_SOCKET, SO_MARK, "SO_MARK (unix)" },
	{ FREE4, IPPROTO_IP, IP_FREEBIND, "IP_FREEBIND (udp, absent address)" },
	{ FREE6, IPPROTO_IPV6, IPV6_FREEBIND, "IPV6_FREEBIND (tcp6, absent address)" },
};
#define NOPT	(sizeof(opts) / sizeof(opts[0]))

static void set(int fd, int level, int name, const void *v, socklen_t len, const char *what)
{
	if (setsockopt(fd, level, name, v, len))
		fail("setsockopt %s", what);
}

static void seti(int fd, int level, int name, int v, const char *what)
{
	set(fd, level, name, &v, sizeof(v), what);
}

/* unix: accept only messages whose first byte is 'A' */
static struct sock_filter only_a[] = {
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 'A', 0, 1),
	BPF_STMT(BPF_RET | BPF_K, 0xffff),
	BPF_STMT(BPF_RET | BPF_K, 0),
};
static struct sock_filter accept_all[] = { BPF_STMT(BPF_RET | BPF_K, 0xffff) };

static void same_filter(int fd, struct sock_filter *want, unsigned n, const char *who)
{
	struct sock_filter got[8];
	socklen_t len = 8;

	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, got, &len) || len != n ||
	    memcmp(got, want, n * sizeof(*got)))
		pr_err("%s: filter changed (%u instructions)", who, (unsigned)len);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sock_fprog fa = { 4, only_a }, fall = { 1, accept_all };
	struct sockaddr_in free4 = { .sin_family = AF_INET, .sin_port = htons(4242) }, name4, now4;
	struct sockaddr_in6 free6 = { .sin6_family = AF_INET6, .sin6_port = htons(4243) }, name6, now6;
	socklen_t l4, l6;
	int ux[2], buf_lock;
	char buf[16];
	size_t i;

	test_init(argc, argv);
	test_lo_up();
	fds[TCP4] = socket(AF_INET, SOCK_STREAM, 0);
	fds[TCP6] = socket(AF_INET6, SOCK_STREAM, 0);
	fds[UDP4] = socket(AF_INET, SOCK_DGRAM, 0);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, ux))
		fail("socketpair");
	fds[UX0] = ux[0];
	fds[UX1] = ux[1];

	seti(fds[TCP4], SOL_SOCKET, SO_PRIORITY, 5, "SO_PRIORITY");
	seti(fds[TCP4], SOL_SOCKET, SO_RCVLOWAT, 10, "SO_RCVLOWAT");
	seti(fds[TCP4], SOL_SOCKET, SO_MARK, 42, "SO_MARK");
	seti(fds[TCP4], SOL_SOCKET, SO_DONTROUTE, 1, "SO_DONTROUTE");
	seti(fds[TCP4], SOL_SOCKET, SO_OOBINLINE, 1, "SO_OOBINLINE");
	seti(fds[TCP4], SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
	set(fds[TCP4], SOL_SOCKET, SO_LINGER, &lin, sizeof(lin), "SO_LINGER");
	seti(fds[TCP4], SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	seti(fds[TCP4], SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
	set(fds[TCP4], SOL_SOCKET, SO_BINDTODEVICE, "lo", 3, "SO_BINDTODEVICE");
	seti(fds[TCP4], SOL_SOCKET, SO_RCVBUF, 65536, "SO_RCVBUF");
	set(fds[TCP4], SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof(rto), "SO_RCVTIMEO");
	set(fds[TCP4], SOL_SOCKET, SO_SNDTIMEO, &sto, sizeof(sto), "SO_SNDTIMEO");
	seti(fds[TCP4], IPPROTO_IP, IP_TOS, 0x10, "IP_TOS");
	seti(fds[TCP4], IPPROTO_IP, IP_TTL, 33, "IP_TTL");
	seti(fds[TCP4], IPPROTO_IP, IP_FREEBIND, 1, "IP_FREEBIND");
	seti(fds[TCP4], IPPROTO_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT");
	seti(fds[TCP4], IPPROTO_IP, IP_RECVERR, 1, "IP_RECVERR");
	seti(fds[TCP4], IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
	seti(fds[TCP4], IPPROTO_TCP, TCP_MAXSEG, 1000, "TCP_MAXSEG");
	seti(fds[TCP4], IPPROTO_TCP, TCP_KEEPIDLE, 77, "TCP_KEEPIDLE");
	seti(fds[TCP4], IPPROTO_TCP, TCP_KEEPINTVL, 11, "TCP_KEEPINTVL");
	seti(fds[TCP4], IPPROTO_TCP, TCP_KEEPCNT, 4, "TCP_KEEPCNT");
	seti(fds[TCP4], IPPROTO_TCP, TCP_USER_TIMEOUT, 5000, "TCP_USER_TIMEOUT");
	set(fds[TCP4], IPPROTO_TCP, TCP_CONGESTION, "reno", 4, "TCP_CONGESTION");
	if (bind(fds[TCP4], (struct sockaddr *)&a4, sizeof(a4)) || listen(fds[TCP4], 3))
		fail("tcp4 listener");

	seti(fds[TCP6], IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
	seti(fds[TCP6], IPPROTO_IPV6, IPV6_UNICAST_HOPS, 7, "IPV6_UNICAST_HOPS");
	seti(fds[TCP6], IPPROTO_IPV6, IPV6_TCLASS, 0x20, "IPV6_TCLASS");
	seti(fds[TCP6], IPPROTO_IPV6, IPV6_RECVERR, 1, "IPV6_RECVERR");
	seti(fds[TCP6], IPPROTO_TCP, TCP_CORK, 1, "TCP_CORK");
	if (bind(fds[TCP6], (struct sockaddr *)&a6, sizeof(a6)))
		fail("tcp6 bind");

	seti(fds[UDP4], SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST");
	seti(fds[UDP4], SOL_SOCKET, SO_NO_CHECK, 1, "SO_NO_CHECK");
	seti(fds[UDP4], SOL_SOCKET, SO_SNDBUF, 32768, "SO_SNDBUF");
	set(fds[UDP4], SOL_SOCKET, SO_ATTACH_FILTER, &fall, sizeof(fall), "SO_ATTACH_FILTER udp");
	if (bind(fds[UDP4], (struct sockaddr *)&a4, sizeof(a4)))
		fail("udp bind");

	seti(ux[1], SOL_SOCKET, SO_PASSCRED, 1, "SO_PASSCRED");
	seti(ux[1], SOL_SOCKET, SO_PASSSEC, 1, "SO_PASSSEC");
	seti(ux[1], SOL_SOCKET, SO_PRIORITY, 3, "SO_PRIORITY unix");
	set(ux[1], SOL_SOCKET, SO_RCVTIMEO, &sto, sizeof(sto), "SO_RCVTIMEO unix");
	set(ux[1], SOL_SOCKET, SO_ATTACH_FILTER, &fa, sizeof(fa), "SO_ATTACH_FILTER unix");
	seti(ux[1], SOL_SOCKET, SO_LOCK_FILTER, 1, "SO_LOCK_FILTER");
	set(ux[0], SOL_SOCKET, SO_SNDTIMEO, &rto, sizeof(rto), "SO_SNDTIMEO unix");
	seti(ux[0], SOL_SOCKET, SO_MARK, 7, "SO_MARK unix");

	/* IP_FREEBIND / IPV6_FREEBIND: bound to addresses no interface has */
	fds[FREE4] = socket(AF_INET, SOCK_DGRAM, 0);
	fds[FREE6] = socket(AF_INET6, SOCK_STREAM, 0);
	seti(fds[FREE4], IPPROTO_IP, IP_FREEBIND, 1, "IP_FREEBIND udp");
	seti(fds[FREE6], IPPROTO_IPV6, IPV6_FREEBIND, 1, "IPV6_FREEBIND");
	inet_pton(AF_INET, "198.51.100.7", &free4.sin_addr);
	inet_pton(AF_INET6, "2001:db8::7", &free6.sin6_addr);
	if (bind(fds[FREE4], (struct sockaddr *)&free4, sizeof(free4)) ||
	    bind(fds[FREE6], (struct sockaddr *)&free6, sizeof(free6)) || listen(fds[FREE6], 2))
		fail("bind to absent addresses");
	l4 = sizeof(name4);
	l6 = sizeof(name6);
	if (getsockname(fds[FREE4], (struct sockaddr *)&name4, &l4) ||
	    getsockname(fds[FREE6], (struct sockaddr *)&name6, &l6))
		fail("getsockname");

	for (i = 0; i < NOPT; i++) {
		opts[i].blen = sizeof(opts[i].before);
		if (getsockopt(fds[opts[i].sock], opts[i].level, opts[i].name, opts[i].before, &opts[i].blen))
			fail("getsockopt %s", opts[i].what);
	}
	buf_lock = 0;
	{
		socklen_t l = sizeof(buf_lock);

		if (getsockopt(fds[TCP4], SOL_SOCKET, SO_BUF_LOCK, &buf_lock, &l) || buf_lock != 2)
			fail("SO_RCVBUF did not lock the receive buffer (%d)", buf_lock);
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < NOPT; i++) {
		struct opt *o = &opts[i];

		o->len = sizeof(o->val);
		if (getsockopt(fds[o->sock], o->level, o->name, o->val, &o->len))
			pr_err("%s: getsockopt after restore", o->what);
		else if (o->len != o->blen || memcmp(o->val, o->before, o->len))
			pr_err("%s changed (%d -> %d)", o->what, *(int *)o->before, *(int *)o->val);
	}
	l4 = sizeof(now4);
	l6 = sizeof(now6);
	if (getsockname(fds[FREE4], (struct sockaddr *)&now4, &l4) || memcmp(&now4, &name4, sizeof(now4)) ||
	    getsockname(fds[FREE6], (struct sockaddr *)&now6, &l6) || memcmp(&now6, &name6, sizeof(now6)))
		pr_err("sockets bound to absent addresses lost their addresses");
	same_filter(ux[1], only_a, 4, "unix");
	same_filter(fds[UDP4], accept_all, 1, "udp");
	if (send(ux[0], "Bx", 2, 0) != 2 || send(ux[0], "Ay", 2, 0) != 2 ||
	    recv(ux[1], buf, sizeof(buf), MSG_DONTWAIT) != 2 || buf[0] != 'A')
		pr_err("the unix filter does not filter");
	if (setsockopt(ux[1], SOL_SOCKET, SO_DETACH_FILTER, &one, sizeof(one)) == 0)
		pr_err("the locked filter was detached");
	test_result();
}

#ifndef ZDTM_NETNS_H
#define ZDTM_NETNS_H
/*
 * Helpers for the network namespace scenarios (netns_*, action_script*).
 * Every helper that can fail pr_err()s and returns -1 (or fail()s where said).
 */
#include <stddef.h>
#include <net/if.h>
#include <sys/socket.h>

/*
 * Run a program (argv NULL-terminated, found in PATH, no shell) and wait for
 * it; its stdout and stderr go to the outfile.  Returns its exit status (0..255),
 * or -1 if it did not exit normally.  test_ok() fail()s unless it exits 0.
 */
int test_run(const char *arg0, ...) __attribute__((sentinel));
#define test_ok(...) do { if (test_run(__VA_ARGS__, (char *)NULL)) fail("command failed: %s", #__VA_ARGS__); } while (0)
/*
 * The same, with its stdout captured into buf (NUL-terminated, at most len-1
 * bytes); returns the exit status or -1.
 */
int test_capture(char *buf, size_t len, const char *arg0, ...) __attribute__((sentinel));

/*
 * .desc 'outer_netns': the fd of the harness's private outer net namespace
 * (ZDTM_OUTER_NETNS_FD), or fail().  Close it (test_outer_netns_close)
 * before test_daemon().  Its path for ip(8) is /proc/self/fd/N.
 */
int test_outer_netns_fd(void);
void test_outer_netns_close(void);
/* "/proc/self/fd/N" of the outer namespace fd (static buffer). */
const char *test_outer_netns_path(void);

struct test_link {
	int index;
	unsigned flags;			/* IFF_* */
	int mtu;
	unsigned char mac[6];
};
/* The link's index, flags, MTU, MAC (ioctls); -1 with pr_err() if it is missing. */
int test_link_get(const char *name, struct test_link *l);

/*
 * TCP connect to addr:port (IPv4 or IPv6 text) with a timeout: 0 if it
 * connected, else the errno (ECONNREFUSED: the other side answered with a
 * RST, so packets went there and back; ETIMEDOUT: no answer).
 */
int test_tcp_probe(const char *addr, int port, int timeout_ms);

/*
 * test_tcp_probe until the other side answers (connected or refused), for up
 * to 3 s; -1 with pr_err() if it never does.
 */
int test_tcp_answered(const char *addr, int port);

/*
 * bind(), retried for up to 3 s while the address is not available: an IPv6
 * address just added is "tentative" until the kernel's DAD work has run for
 * it (asynchronously, even on lo and with accept_dad 0), and a bind to it
 * fails with EADDRNOTAVAIL until then.  0, or -1 with errno.
 */
int test_bind_addr(int sk, const struct sockaddr *addr, socklen_t len);

/* IPv6 duplicate address detection off for new links (all, default), so
 * addresses are never "tentative" in what the tests compare. */
void test_net_no_dad(void);

/*
 * One Ethernet frame (ethertype 0x88b5) sent from link `from` to the MAC of
 * link `to` with AF_PACKET, and received on `to` with the right source MAC
 * and payload: 0 if it arrived within a second, else -1 with pr_err().
 */
int test_frame_across(const char *from, const char *to);

/* A sysctl under /proc/sys (e.g. "net/ipv4/ip_forward"): read (trimmed) / write; fail()s on error. */
void test_sysctl_get(const char *name, char *buf, size_t len);
void test_sysctl_set(const char *name, const char *value);

/*
 * What ip(8) shows of the namespace: links, addresses, IPv4 and IPv6 routes of
 * every table (fail()s if it does not fit; the IPv6 routes sorted: the kernel
 * orders the per-link fe80::/64 and ff00::/8 routes by the moment each link
 * got its carrier, which means nothing as link-local and multicast
 * destinations need an interface), and the comparison of two such
 * texts (pr_err() naming the first line that differs, -1).
 */
void test_net_state(char *buf, size_t len);
int test_net_state_cmp(const char *before, const char *after);
/*
 * Take `after` until it equals `before` (up to 3 s: a link's operational state
 * is updated by the kernel up to a second after it goes up), then compare.
 */
int test_net_state_settled(const char *before, char *after, size_t len);

#endif

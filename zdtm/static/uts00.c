/*
 * uts00: the host name and domain name of the test's UTS namespace survive.
 *
 * The test works in a UTS namespace of its own (h flavor: it unshares one
 * itself; ns flavor: the harness's) and sets both names to values unlikely
 * anywhere else (the domain name is the longest allowed, 64 characters).
 * After restore: gethostname(), getdomainname(), uname() and
 * /proc/sys/kernel/{hostname,domainname} give the same names, and they can
 * still be changed.
 */
#include "zdtmtst.h"

#include <sched.h>
#include <unistd.h>
#include <sys/utsname.h>

static void check_names(const char *host, const char *dom, const char *when)
{
	struct utsname u;
	char buf[128], *s;

	if (gethostname(buf, sizeof(buf)) || strcmp(buf, host))
		pr_err("%s: gethostname '%s', expected '%s'", when, buf, host);
	if (getdomainname(buf, sizeof(buf)) || strcmp(buf, dom))
		pr_err("%s: getdomainname '%s', expected '%s'", when, buf, dom);
	if (uname(&u) || strcmp(u.nodename, host) || strcmp(u.domainname, dom))
		pr_err("%s: uname says '%s' '%s'", when, u.nodename, u.domainname);
	if (test_read_file("/proc/sys/kernel/hostname", &s) >= 0) {
		s[strcspn(s, "\n")] = '\0';
		if (strcmp(s, host))
			pr_err("%s: /proc/sys/kernel/hostname '%s'", when, s);
		free(s);
	}
	if (test_read_file("/proc/sys/kernel/domainname", &s) >= 0) {
		s[strcspn(s, "\n")] = '\0';
		if (strcmp(s, dom))
			pr_err("%s: /proc/sys/kernel/domainname '%s'", when, s);
		free(s);
	}
}

int main(int argc, char **argv)
{
	char host[64], dom[65];

	test_init(argc, argv);
	test_private_ns(CLONE_NEWUTS);

	snprintf(host, sizeof(host), "zdtm-uts00-%d", getpid());
	memset(dom, 'd', 64);
	dom[64] = '\0';
	memcpy(dom, "uts00.example.", 14);
	if (sethostname(host, strlen(host)) || setdomainname(dom, strlen(dom)))
		fail("set the names");
	check_names(host, dom, "before the dump");
	if (test_errors)
		fail("names not set");

	test_daemon();
	test_waitsig();

	check_names(host, dom, "after restore");
	if (sethostname("zdtm-changed", 12))
		pr_err("sethostname after restore");
	else
		check_names("zdtm-changed", dom, "after a change");
	test_result();
	return 0;
}

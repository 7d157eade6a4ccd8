/*
 * zdtm test library: namespaces.
 */
#include "zdtmtst.h"

#include <sched.h>
#include <unistd.h>

int test_private_ns(int flags)
{
	/*
	 * pid 1: the harness (ns flavor) started us as the init of fresh
	 * pid/mnt/net/ipc/uts namespaces, nobody else is in them.  Comparing
	 * /proc/self/ns/X with /proc/1/ns/X would be fooled by a /proc that
	 * is not the namespace's own, getpid() is not.
	 */
	if (getpid() == 1)
		return 0;
	if (unshare(flags))
		fail("unshare(%#x)", flags);
	return 1;
}

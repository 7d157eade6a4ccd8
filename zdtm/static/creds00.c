/*
 * creds00: credentials survive (needs root).
 *
 * As root: supplementary groups, then distinct real/effective/saved/fs
 * gids and uids (all non-root), keeping capabilities over the uid change
 * with PR_SET_KEEPCAPS and then capset() to a specific effective, permitted
 * and inheritable set; one ambient capability; a capability dropped from
 * the bounding set; securebits; no_new_privs; dumpable.  After restore all
 * of it is compared, against /proc/self/status too.
 *
 * CAP_DAC_OVERRIDE stays effective so that test_daemon() can still write
 * the pidfile in the (root-owned) work directory.
 */
#include "zdtmtst.h"

#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BIT(c) (1ULL << (c))

static const gid_t groups[] = { 1001, 1002, 2003, 65000 };

static const uint64_t cap_eff = BIT(CAP_DAC_OVERRIDE) | BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE);
static const uint64_t cap_prm = BIT(CAP_DAC_OVERRIDE) | BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE) |
				BIT(CAP_CHOWN) | BIT(CAP_SYS_NICE) | BIT(CAP_AUDIT_READ);
static const uint64_t cap_inh = BIT(CAP_KILL) | BIT(CAP_CHOWN) | BIT(CAP_MKNOD);
static const int cap_amb = CAP_KILL;
static const int cap_dropped = CAP_SYS_BOOT;

struct creds {
	uid_t ruid, euid, suid, fsuid;
	gid_t rgid, egid, sgid, fsgid;
	int ngroups;
	gid_t groups[64];
	uint64_t eff, prm, inh, amb;
	int bounding_dropped, keepcaps, securebits, nnp, dumpable;
	char status[1024];	/* Uid/Gid/Groups/Cap lines of /proc/self/status */
};

static int capget64(uint64_t *eff, uint64_t *prm, uint64_t *inh)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	*inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

static int capset64(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32) },
	};

	return syscall(SYS_capset, &h, d);
}

static void get_creds(struct creds *c)
{
	char *s, *p;
	size_t l = 0;
	int i;

	memset(c, 0, sizeof(*c));
	if (getresuid(&c->ruid, &c->euid, &c->suid) || getresgid(&c->rgid, &c->egid, &c->sgid))
		fail("getres[ug]id");
	c->fsuid = setfsuid(-1);
	c->fsgid = setfsgid(-1);
	c->ngroups = getgroups(ARRAY_SIZE(c->groups), c->groups);
	if (c->ngroups < 0)
		fail("getgroups");
	if (capget64(&c->eff, &c->prm, &c->inh))
		fail("capget");
	for (i = 0; i <= CAP_LAST_CAP; i++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, i, 0, 0) == 1)
			c->amb |= BIT(i);
	c->bounding_dropped = prctl(PR_CAPBSET_READ, cap_dropped, 0, 0, 0) == 0;
	c->keepcaps = prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0);
	c->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	c->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	c->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);

	if (test_read_file("/proc/self/status", &s) < 0)
		fail("read /proc/self/status");
	for (p = strtok(s, "\n"); p; p = strtok(NULL, "\n"))
		if (!strncmp(p, "Uid:", 4) || !strncmp(p, "Gid:", 4) ||
		    !strncmp(p, "Groups:", 7) || !strncmp(p, "Cap", 3) ||
		    !strncmp(p, "NoNewPrivs:", 11))
			l += snprintf(c->status + l, sizeof(c->status) - l, "%s\n", p);
	free(s);
}

#define CMP(field, fmt)							\
	do {								\
		if (a.field != b.field)				\
			pr_err(#field ": " fmt " -> " fmt, b.field, a.field); \
	} while (0)

int main(int argc, char **argv)
{
	struct creds b, a;
	int i;

	test_init(argc, argv);

	if (geteuid() != 0)
		fail("must run as root");

	if (prctl(PR_CAPBSET_DROP, cap_dropped, 0, 0, 0))
		fail("PR_CAPBSET_DROP");
	if (setgroups(ARRAY_SIZE(groups), groups))
		fail("setgroups");
	if (setresgid(1100, 1101, 1102))
		fail("setresgid");
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		fail("PR_SET_KEEPCAPS");
	if (setresuid(1200, 1201, 1202))
		fail("setresuid");
	/* Effective caps were cleared by the uid change; permitted kept. */
	if (capset64(cap_eff, cap_prm, cap_inh))
		fail("capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap_amb, 0, 0))
		fail("PR_CAP_AMBIENT_RAISE");
	setfsuid(1202);
	setfsgid(1100);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		fail("PR_SET_NO_NEW_PRIVS");
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0))
		fail("PR_SET_DUMPABLE");

	get_creds(&b);
	if (b.ruid != 1200 || b.euid != 1201 || b.suid != 1202 || b.fsuid != 1202 ||
	    b.rgid != 1100 || b.egid != 1101 || b.sgid != 1102 || b.fsgid != 1100 ||
	    b.eff != cap_eff || b.prm != cap_prm || b.inh != cap_inh ||
	    b.amb != BIT(cap_amb) || !b.bounding_dropped || b.keepcaps != 1 ||
	    b.nnp != 1 || b.dumpable != 1 || b.ngroups != (int)ARRAY_SIZE(groups))
		fail("credentials were not set up as intended");

	test_daemon();
	test_waitsig();

	get_creds(&a);
	CMP(ruid, "%u");
	CMP(euid, "%u");
	CMP(suid, "%u");
	CMP(fsuid, "%u");
	CMP(rgid, "%u");
	CMP(egid, "%u");
	CMP(sgid, "%u");
	CMP(fsgid, "%u");
	CMP(ngroups, "%d");
	for (i = 0; i < a.ngroups && i < b.ngroups; i++)
		CMP(groups[i], "%u");
	CMP(eff, "%#" PRIx64);
	CMP(prm, "%#" PRIx64);
	CMP(inh, "%#" PRIx64);
	CMP(amb, "%#" PRIx64);
	CMP(bounding_dropped, "%d");
	CMP(keepcaps, "%d");
	CMP(securebits, "%#x");
	CMP(nnp, "%d");
	CMP(dumpable, "%d");
	if (strcmp(a.status, b.status))
		pr_err("/proc/self/status:\n%s--- became ---\n%s", b.status, a.status);

	test_result();
	return 0;
}

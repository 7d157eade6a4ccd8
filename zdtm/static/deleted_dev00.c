/*
 * deleted_dev00: fds of removed device nodes of devices that are not
 * memory devices, a character and a block one, and of a memory device.
 *
 * In the work dir the test mknods "tun" with the number of the host's
 * /dev/net/tun (character, 10:200, mode 0620, owner 1001:1002), "loop"
 * with that of /dev/loop7 (block, 7:7, mode 0640, owner 0:6) and "zero"
 * (character 1:5, mode 0604, owner 65534:65534).  tun is opened twice
 * (O_RDWR; O_RDWR|O_NONBLOCK), loop O_RDONLY, zero O_RDWR; zero is also
 * mapped MAP_SHARED (two pages written), then every node is unlinked.
 * After restore: each fd is a node of its type and number with its mode
 * and owner, no links, its /proc/self/fd link "PATH (deleted)"; the two
 * tun fds are one inode; the devices still answer through the fds as
 * before: tun's TUNGETFEATURES gives the same features and TUNGETIFF
 * EBADFD (attached to no interface), loop's BLKGETSIZE64 and BLKSSZGET the
 * same values, zero reads zeros; the shared mapping keeps its bytes; and
 * nothing is at the old paths.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PAGE	4096

struct node {
	const char *name;	/* in the work dir */
	const char *host;	/* the host's node whose number it takes */
	mode_t type;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	dev_t rdev;		/* filled from the host's node */
};

static struct node tun = { "tun", "/dev/net/tun", S_IFCHR, 0620, 1001, 1002 };
static struct node loop = { "loop", "/dev/loop7", S_IFBLK, 0640, 0, 6 };
static struct node zero = { "zero", "/dev/zero", S_IFCHR, 0604, 65534, 65534 };

static void make(struct node *n)
{
	struct stat st;

	if (stat(n->host, &st))
		fail("stat %s", n->host);
	if ((st.st_mode & S_IFMT) != n->type)
		fail("%s is not of the expected type", n->host);
	n->rdev = st.st_rdev;
	if (mknod(n->name, n->type | 0600, n->rdev) || chown(n->name, n->uid, n->gid) ||
	    chmod(n->name, n->mode))
		fail("mknod %s", n->name);
}

/* The fd is still the removed node n: type, number, mode, owner, no links, "(deleted)". */
static void same_node(int fd, const struct node *n, struct stat *st)
{
	char path[64], link[512], want[64];
	ssize_t len;

	if (fstat(fd, st))
		fail("fstat %s", n->name);
	if ((st->st_mode & S_IFMT) != n->type || st->st_rdev != n->rdev)
		pr_err("%s: type %o, device %u:%u (want %o, %u:%u)", n->name, st->st_mode & S_IFMT,
		       major(st->st_rdev), minor(st->st_rdev), n->type, major(n->rdev), minor(n->rdev));
	if ((st->st_mode & 07777) != n->mode || st->st_uid != n->uid || st->st_gid != n->gid)
		pr_err("%s: mode %o owner %u:%u", n->name, st->st_mode & 07777, st->st_uid, st->st_gid);
	if (st->st_nlink)
		pr_err("%s: %lu links", n->name, (unsigned long)st->st_nlink);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	len = readlink(path, link, sizeof(link) - 1);
	link[len > 0 ? len : 0] = 0;
	snprintf(want, sizeof(want), "/%s (deleted)", n->name);
	if (len < (ssize_t)strlen(want) || strcmp(link + len - strlen(want), want))
		pr_err("fd %d links to %s", fd, link);
}

int main(int argc, char **argv)
{
	unsigned int features, features_after;
	uint64_t size, size_after = 0;
	int ssz, ssz_after = -1;
	int tfd, tfd2, lfd, zfd;
	struct stat st, st2;
	struct ifreq ifr;
	char buf[PAGE];
	char *map;

	test_init(argc, argv);

	make(&tun);
	make(&loop);
	make(&zero);
	tfd = open("tun", O_RDWR);
	tfd2 = open("tun", O_RDWR | O_NONBLOCK);
	lfd = open("loop", O_RDONLY);
	zfd = open("zero", O_RDWR);
	if (tfd < 0 || tfd2 < 0 || lfd < 0 || zfd < 0)
		fail("open");
	if (ioctl(tfd, TUNGETFEATURES, &features) || ioctl(lfd, BLKGETSIZE64, &size) || ioctl(lfd, BLKSSZGET, &ssz))
		fail("ioctl");
	map = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, zfd, 0);
	if (map == MAP_FAILED)
		fail("mmap");
	datagen(map, 2 * PAGE, 15);
	if (unlink("tun") || unlink("loop") || unlink("zero"))
		fail("unlink");

	test_daemon();
	test_waitsig();

	same_node(tfd, &tun, &st);
	same_node(tfd2, &tun, &st2);
	if (st.st_ino != st2.st_ino || st.st_dev != st2.st_dev)
		pr_err("the two tun fds are different nodes now");
	same_node(lfd, &loop, &st);
	same_node(zfd, &zero, &st);

	if (ioctl(tfd, TUNGETFEATURES, &features_after) || features_after != features)
		pr_err("tun: TUNGETFEATURES %x, was %x", features_after, features);
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(tfd2, TUNGETIFF, &ifr) == 0 || errno != EBADFD)
		pr_err("tun: TUNGETIFF did not say \"no interface\" (%s)", ifr.ifr_name);
	if (ioctl(lfd, BLKGETSIZE64, &size_after) || size_after != size ||
	    ioctl(lfd, BLKSSZGET, &ssz_after) || ssz_after != ssz)
		pr_err("loop: size %llu, sector %d (were %llu, %d)", (unsigned long long)size_after, ssz_after,
		       (unsigned long long)size, ssz);
	memset(buf, 1, sizeof(buf));
	if (read(zfd, buf, sizeof(buf)) != sizeof(buf) || buf[0] || memcmp(buf, buf + 1, sizeof(buf) - 1))
		pr_err("zero: does not read zeros");
	if (datachk(map, 2 * PAGE, 15))
		pr_err("the shared mapping of zero lost its bytes");
	if (access("tun", F_OK) == 0 || access("loop", F_OK) == 0 || access("zero", F_OK) == 0)
		pr_err("something is at an old path again");

	test_result();
	return 0;
}

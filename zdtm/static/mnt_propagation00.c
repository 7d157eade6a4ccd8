/*
 * mnt_propagation00: shared, slave, private and unbindable mounts survive
 * with their peer groups (ns flavor).
 *
 * a: a shared tmpfs; b: a bind of a (its peer); c: a bind of a made a slave
 * (of a's group); d: a bind of a made private; e: a bind of a made a slave,
 * then shared (shared in a group of its own, slave of a's); u: an
 * unbindable tmpfs.  After restore: the shared:/master: tags relate the
 * same way (b in a's group, c and e slaves of it, e in another group, d
 * untagged, u unbindable), and propagation really works: a mount made in
 * a appears in b, c and e but not in d; one made in c does not reach a;
 * binding u fails with EINVAL.
 */
#include "zdtmtst.h"
#include "zmnt.h"

#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static void check_tags(const char *when)
{
	struct zmnt a, b, c, d, e, u;
	int g;

	if (zmnt_find(zmnt_abs(0, "p/a"), &a) || zmnt_find(zmnt_abs(0, "p/b"), &b) ||
	    zmnt_find(zmnt_abs(0, "p/c"), &c) || zmnt_find(zmnt_abs(0, "p/d"), &d) ||
	    zmnt_find(zmnt_abs(0, "p/e"), &e) || zmnt_find(zmnt_abs(0, "p/u"), &u))
		return;
	g = zmnt_tag(&a, "shared");
	if (!g || zmnt_tag(&a, "master"))
		pr_err("%s: a is [%s]", when, a.optional);
	if (zmnt_tag(&b, "shared") != g || zmnt_tag(&b, "master"))
		pr_err("%s: b is [%s], a [%s]", when, b.optional, a.optional);
	if (zmnt_tag(&c, "shared") || zmnt_tag(&c, "master") != g)
		pr_err("%s: c is [%s], a [%s]", when, c.optional, a.optional);
	if (d.optional[0])
		pr_err("%s: d is [%s]", when, d.optional);
	if (!zmnt_tag(&e, "shared") || zmnt_tag(&e, "shared") == g || zmnt_tag(&e, "master") != g)
		pr_err("%s: e is [%s], a [%s]", when, e.optional, a.optional);
	if (!zmnt_has(u.optional, "unbindable"))
		pr_err("%s: u is [%s]", when, u.optional);
}

static void check_propagation(void)
{
	const char *where[] = { "p/a/x", "p/b/x", "p/c/x", "p/e/x" };
	size_t i;

	if (mkdir("p/a/x", 0755) || mkdir("p/a/y", 0755))
		fail("mkdir in a");
	zmnt_mount("zdtm-prop-x", zmnt_abs(0, "p/a/x"), "tmpfs", 0, "size=64k");
	for (i = 0; i < ARRAY_SIZE(where); i++)
		if (zmnt_count(zmnt_abs(0, where[i])) != 1)
			pr_err("a mount in a is %d times at %s", zmnt_count(zmnt_abs(0, where[i])), where[i]);
	if (zmnt_count(zmnt_abs(0, "p/d/x")))
		pr_err("a mount in a reached the private d");
	zmnt_mount("zdtm-prop-y", zmnt_abs(0, "p/c/y"), "tmpfs", 0, "size=64k");
	if (zmnt_count(zmnt_abs(0, "p/a/y")) || zmnt_count(zmnt_abs(0, "p/b/y")))
		pr_err("a mount in the slave c reached its master");
	if (mkdir("ub", 0755) || mount(zmnt_abs(0, "p/u"), zmnt_abs(1, "ub"), NULL, MS_BIND, NULL) == 0 ||
	    errno != EINVAL)
		pr_err("binding the unbindable u did not fail with EINVAL");
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	zmnt_mount("zdtm-prop", zmnt_abs(0, "p/a"), "tmpfs", 0, "size=1m");
	zmnt_mount(NULL, zmnt_abs(0, "p/a"), NULL, MS_SHARED, NULL);
	zmnt_mount(zmnt_abs(0, "p/a"), zmnt_abs(1, "p/b"), NULL, MS_BIND, NULL);
	zmnt_mount(zmnt_abs(0, "p/a"), zmnt_abs(1, "p/c"), NULL, MS_BIND, NULL);
	zmnt_mount(NULL, zmnt_abs(0, "p/c"), NULL, MS_SLAVE, NULL);
	zmnt_mount(zmnt_abs(0, "p/a"), zmnt_abs(1, "p/d"), NULL, MS_BIND, NULL);
	zmnt_mount(NULL, zmnt_abs(0, "p/d"), NULL, MS_PRIVATE, NULL);
	zmnt_mount(zmnt_abs(0, "p/a"), zmnt_abs(1, "p/e"), NULL, MS_BIND, NULL);
	zmnt_mount(NULL, zmnt_abs(0, "p/e"), NULL, MS_SLAVE, NULL);
	zmnt_mount(NULL, zmnt_abs(0, "p/e"), NULL, MS_SHARED, NULL);
	zmnt_mount("zdtm-unb", zmnt_abs(0, "p/u"), "tmpfs", 0, "size=64k");
	zmnt_mount(NULL, zmnt_abs(0, "p/u"), NULL, MS_UNBINDABLE, NULL);
	check_tags("before");
	if (test_errors)
		fail("set-up");

	test_daemon();
	test_waitsig();

	check_tags("after restore");
	check_propagation();
	test_result();
	return 0;
}

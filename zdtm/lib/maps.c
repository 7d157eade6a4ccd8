/*
 * zdtm test library: /proc/self/maps helpers.
 */
#include "zdtmtst.h"

static int parse_line(const char *line, struct test_vma *v)
{
	int n = 0;
	const char *p;
	size_t l;

	memset(v, 0, sizeof(*v));
	if (sscanf(line, "%lx-%lx %4s %llx %x:%x %lu %n", &v->start, &v->end,
		   v->perms, &v->pgoff, &v->dev_major, &v->dev_minor,
		   &v->ino, &n) < 7)
		return -1;
	p = line + n;
	while (*p == ' ')
		p++;
	l = strcspn(p, "\n");
	if (l >= sizeof(v->path))
		l = sizeof(v->path) - 1;
	memcpy(v->path, p, l);
	v->path[l] = '\0';
	return 0;
}

static int collect(const char *file, unsigned long start, unsigned long end,
		   struct test_vma *out, int max)
{
	char line[1024];
	int n = 0, in = 0;
	FILE *f;

	f = fopen(file, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		struct test_vma v;
		size_t l;

		if (!strncmp(line, "VmFlags:", 8)) {
			char *p = line + 8;

			if (!in || n > max)
				continue;
			while (*p == ' ')
				p++;
			l = strcspn(p, "\n");
			while (l && p[l - 1] == ' ')
				l--;
			if (l >= sizeof(out[n - 1].vmflags))
				l = sizeof(out[n - 1].vmflags) - 1;
			memcpy(out[n - 1].vmflags, p, l);
			out[n - 1].vmflags[l] = '\0';
			continue;
		}
		if (parse_line(line, &v))
			continue;	/* an smaps field line */
		in = 0;
		if (v.end <= start || v.start >= end)
			continue;
		in = 1;
		if (n < max)
			out[n] = v;
		n++;
	}
	fclose(f);
	return n > max ? -1 : n;
}

int test_collect_vmas(unsigned long start, unsigned long end,
		      struct test_vma *out, int max)
{
	return collect("/proc/self/maps", start, end, out, max);
}

int test_collect_smaps(unsigned long start, unsigned long end,
		       struct test_vma *out, int max)
{
	return collect("/proc/self/smaps", start, end, out, max);
}

/* VmFlags minus the ones a restore may change without harm. */
static void norm_flags(const char *in, char *out, size_t size)
{
	static const char *const skip[] = { "sd", "ac", "nr" };
	char buf[sizeof(((struct test_vma *)0)->vmflags)];
	char *tok, *save;
	size_t i, l = 0;

	snprintf(buf, sizeof(buf), "%s", in);
	out[0] = '\0';
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		for (i = 0; i < ARRAY_SIZE(skip); i++)
			if (!strcmp(tok, skip[i]))
				break;
		if (i < ARRAY_SIZE(skip))
			continue;
		l += snprintf(out + l, size - l, "%s%s", l ? " " : "", tok);
		if (l >= size)
			break;
	}
}

int test_find_vma(const void *addr, struct test_vma *vma)
{
	unsigned long a = (unsigned long)addr;

	return test_collect_vmas(a, a + 1, vma, 1) == 1 ? 0 : -1;
}

/*
 * Whether the inode/device of a mapping are expected to stay the same over
 * checkpoint/restore: only for named files that still exist.  Anonymous
 * shared memory, deleted files and special areas get new inodes.
 */
static int stable_ident(const struct test_vma *v)
{
	if (v->path[0] != '/')
		return 0;
	if (!strncmp(v->path, "/dev/zero", 9) || !strncmp(v->path, "/memfd:", 7))
		return 0;
	if (strstr(v->path, " (deleted)"))
		return 0;
	return 1;
}

static void pr_vma(const char *tag, const struct test_vma *v)
{
	test_msg("  %s %lx-%lx %s %08llx %02x:%02x %lu %s%s%s%s", tag, v->start,
		 v->end, v->perms, v->pgoff, v->dev_major, v->dev_minor, v->ino,
		 v->path, v->vmflags[0] ? " [" : "", v->vmflags,
		 v->vmflags[0] ? "]" : "");
}

int test_cmp_vmas(const char *what, const struct test_vma *a, int na,
		  const struct test_vma *b, int nb)
{
	int i, errs = 0;

	if (na != nb) {
		pr_err("%s: %d VMAs before, %d after", what, na, nb);
		errs++;
	}
	for (i = 0; i < na && i < nb; i++) {
		const struct test_vma *x = &a[i], *y = &b[i];
		int bad = 0;

		if (x->start != y->start || x->end != y->end ||
		    strcmp(x->perms, y->perms) || strcmp(x->path, y->path))
			bad = 1;
		if (x->path[0] == '/' && x->pgoff != y->pgoff)
			bad = 1;
		if (stable_ident(x) && (x->ino != y->ino ||
					x->dev_major != y->dev_major ||
					x->dev_minor != y->dev_minor))
			bad = 1;
		if (x->vmflags[0] && y->vmflags[0]) {
			char fx[sizeof(x->vmflags)], fy[sizeof(y->vmflags)];

			norm_flags(x->vmflags, fx, sizeof(fx));
			norm_flags(y->vmflags, fy, sizeof(fy));
			if (strcmp(fx, fy)) {
				pr_err("%s: VMA %lx-%lx VmFlags '%s' -> '%s'", what,
				       y->start, y->end, fx, fy);
				bad = 1;
			}
		}
		if (bad) {
			pr_err("%s: VMA %d differs", what, i);
			errs++;
		}
	}
	if (errs) {
		for (i = 0; i < na; i++)
			pr_vma("before:", &a[i]);
		for (i = 0; i < nb; i++)
			pr_vma("after: ", &b[i]);
	}
	return errs;
}

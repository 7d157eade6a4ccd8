/*
 * Mount scenarios' helpers (lib/mnt.c): mountinfo lines of the test's own
 * mount namespace, their options and propagation tags.
 */
#ifndef ZDTM_MNT_H
#define ZDTM_MNT_H

#include <stddef.h>

struct zmnt {
	int id, parent;
	unsigned int major, minor;
	char root[512], mp[512], opts[256], optional[256], fstype[64], source[256], sopts[512];
};

/* The topmost mount at mountpoint (absolute path, as mountinfo shows it); 0 or -1 (pr_err'd). */
int zmnt_find(const char *mountpoint, struct zmnt *out);
/* The mount with this id; 0 or -1 (not found, silently). */
int zmnt_by_id(int id, struct zmnt *out);
/* Number of mounts at mountpoint (stacked ones counted). */
int zmnt_count(const char *mountpoint);
/* opt is one of the comma-separated words of list ("ro", "size=1024k", ...). */
int zmnt_has(const char *list, const char *opt);
/* The N of "shared:N" / "master:N" in m's optional fields, 0 if absent. */
int zmnt_tag(const struct zmnt *m, const char *kind);
/* mount(2) + mkdir -p of the target (0755); fail()s. */
void zmnt_mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data);
/* Write len bytes of datagen(seed) to path (created 0644, truncated); fail()s. */
void zmnt_put(const char *path, size_t len, unsigned int seed);
/* 1 if path holds (at least) len bytes of datagen(seed) at its start, else 0. */
int zmnt_has_data(const char *path, size_t len, unsigned int seed);
/* The absolute form of a path relative to the cwd (static buffer per call slot 0..3). */
const char *zmnt_abs(int slot, const char *rel);

#endif

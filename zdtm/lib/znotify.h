/*
 * inotify and fanotify scenarios' helpers (lib/notify.c): the whole queue of
 * an instance read at once and compared with the events an action must give
 * (exactly those, in order: an event refcr's own work left would show), and
 * the watches and marks fdinfo shows.
 */
#ifndef ZDTM_NOTIFY_H
#define ZDTM_NOTIFY_H

#include <stdint.h>
#include <sys/types.h>

struct zin_ev {
	int wd;
	uint32_t mask;
	char name[64];
};

struct zfan_ev {
	uint64_t mask;
	ino_t ino;		/* of the event's fd (closed by the reader); 0 without one */
};

/*
 * Every event queued on the O_NONBLOCK instance fd, waiting up to timeout_ms
 * for the first; their number (at most max), or -1 (pr_err'd).
 */
int zin_read(int fd, int timeout_ms, struct zin_ev *out, int max);
int zfan_read(int fd, int timeout_ms, struct zfan_ev *out, int max);
/* pr_err()s unless exactly want[0..n) is queued (n 0: nothing within 300 ms); returns the errors. */
int zin_expect(int fd, const char *what, const struct zin_ev *want, int n);
int zfan_expect(int fd, const char *what, const struct zfan_ev *want, int n);

/* Watch wd of inotify fd (fdinfo): its inode and mask; 0, or -1 if fd has no such watch. */
int zin_watch(int fd, int wd, unsigned long *ino, unsigned long *mask);
/* The mask of fanotify fd's inode mark on ino (fdinfo), 0 if it has none. */
unsigned long zfan_mark_mask(int fd, ino_t ino);

#endif

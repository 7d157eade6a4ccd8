/* Checkpoint chains with the harness (.desc 'checkpoints', 'track_mem',
 * 'predump', 'restore_each'; see zdtm/README.md). */
#ifndef ZDTM_CKPT_H
#define ZDTM_CKPT_H
#include <stddef.h>

/* Ask for checkpoint i (creates WORKDIR/ckpt-I.go) and wait until the harness
 * took it (WORKDIR/ckpt-I.done).  i = checkpoints + 1 announces the real dump
 * (with 'track_mem'/'predump'), which is not waited for. */
void test_checkpoint(int i);
/* Before test_checkpoint(i): the pages this test wrote in [start, start+len)
 * since checkpoint i-1 (WORKDIR/ckpt-I.written); the harness checks that
 * exactly that many pages of the range are stored (not in the parent). */
void test_checkpoint_written(int i, const void *start, size_t len, long npages);
/* After restore: the checkpoint the process was restored from (WORKDIR/restored),
 * 0 for the real dump. */
int test_restored_checkpoint(void);
/* How many of this process's fds link to `target` (e.g. "anon_inode:[userfaultfd]"). */
int test_count_fds_to(const char *target);
#endif

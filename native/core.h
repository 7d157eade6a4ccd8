/*
 * refcr native core: the few things Python cannot do by itself.
 *
 * This header is shared by native/core.c and by the cffi builder
 * (native/build_native.py feeds it to ffibuilder.cdef() after dropping the
 * preprocessor lines), so it must stay plain C declarations: no macros in
 * declarations, no system types other than the fixed-width ones cffi knows.
 * struct user_regs_struct comes from <sys/user.h> in C; the builder spells its
 * fields out for cffi.
 *
 * Convention: every function returns a value >= 0 on success and -errno on
 * failure; results that do not fit go through out-parameters.
 */
#ifndef REFCR_NATIVE_CORE_H
#define REFCR_NATIVE_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

/* ---- ptrace basics ---------------------------------------------------- */
long rc_seize(int pid, unsigned long options);
long rc_interrupt(int pid);
long rc_cont(int pid, int sig);
long rc_detach(int pid, int sig);
long rc_set_options(int pid, unsigned long options);
long rc_get_event_msg(int pid, unsigned long *msg);
/* waitpid(pid, status, __WALL), retried on EINTR; returns the pid waited for. */
int rc_wait(int pid, int *status);

/* ---- registers -------------------------------------------------------- */
int rc_get_regs(int pid, struct user_regs_struct *regs);
int rc_set_regs(int pid, const struct user_regs_struct *regs);
/* Returns the number of bytes the kernel filled in. */
long rc_get_xstate(int pid, void *buf, size_t len);
int rc_set_xstate(int pid, const void *buf, size_t len);
/* XSAVE area size (CPUID leaf 0xD) for every feature the CPU can enable. */
long rc_xstate_size(void);

/* ---- signals, rseq ---------------------------------------------------- */
int rc_get_sigmask(int pid, uint64_t *mask);
int rc_set_sigmask(int pid, uint64_t mask);
/* Copies up to nr siginfos (128 bytes each) from position off; returns the count. */
int rc_peek_siginfo(int pid, int shared, uint64_t off, int nr, void *buf);

struct rc_rseq_conf {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};
int rc_get_rseq_conf(int pid, struct rc_rseq_conf *conf);

/* ---- syscall injection ------------------------------------------------ */
/*
 * Runs syscall nr(args[0..5]) in the ptrace-stopped tracee pid, with the
 * "syscall; int3" sequence at addr (written there first when patch != 0).
 * On success returns 0 and stores the syscall's raw return in *result.
 * On failure of the machinery returns -errno; *stop_status then holds the
 * wait status of an unexpected stop (or 0).
 */
int rc_inject_syscall(int pid, long nr, const unsigned long *args,
		      unsigned long addr, int patch, int fault_ok,
		      long *result, int *stop_status);

/*
 * Batched syscalls: rc_batch_code copies the batch blob (position-
 * independent, to be placed in an executable area of the task) into out
 * when size allows and returns its size.  rc_run_batch runs the blob at
 * code over the n entries at table (8 words each: nr, 6 args, result) in
 * the ptrace-stopped task; registers are put back.  0 or -errno, with the
 * unexpected stop's status in *stop_status.
 */
size_t rc_batch_code(unsigned char *out, size_t size);
int rc_run_batch(int pid, unsigned long code, unsigned long table, unsigned long n,
		 int stop_on_error, int *stop_status);

/* ---- memory ------------------------------------------------------------ */
/* Reads/writes n remote ranges (addrs[i], lens[i]) from/to one local buffer. */
long rc_vm_read(int pid, const unsigned long *addrs, const unsigned long *lens,
		size_t n, void *buf);
long rc_vm_write(int pid, const unsigned long *addrs, const unsigned long *lens,
		 size_t n, const void *buf);
/*
 * Scans /proc/pid/pagemap over [start, end) and stores up to max_runs runs
 * as (addr, nr_pages) pairs in runs[]. Returns the number of runs stored;
 * *next is where the scan stopped (end when finished, else call again).
 * Present or swapped pages, guard markers excluded; mode (RC_PM_*) narrows.
 */
#define RC_PM_ANON	1	/* only anonymous pages (not file or shared anon) */
#define RC_PM_SHARED	2	/* only pages mapped elsewhere too (not PM_MMAP_EXCLUSIVE) or swapped */
#define RC_PM_EXCLUSIVE	4	/* only present pages mapped here alone (PM_MMAP_EXCLUSIVE) */
long rc_scan_pagemap(int pid, unsigned long start, unsigned long end,
		     int mode, unsigned long *runs, size_t max_runs,
		     unsigned long *next);

/* ---- processes, fds, namespaces --------------------------------------- */
int rc_pidfd_open(int pid, unsigned int flags);
int rc_pidfd_getfd(int pidfd, int fd, unsigned int flags);
/* Fork-like raw clone3; the child stops itself and pauses forever. */
int rc_clone3_puppet(const int *set_tid, size_t set_tid_size,
		     uint64_t flags, int exit_signal);
/* Fork-like raw clone sharing refcr's fd table (CLONE_FILES): the child
 * reads a user namespace fd number from ctl_fd, joins it, writes back the
 * setns result as a long (0 or -errno) and pauses forever (dies with refcr). */
int rc_fd_proxy(int ctl_fd);
int rc_get_robust_list(int tid, unsigned long *head, size_t *len);
int rc_tgkill(int tgid, int tid, int sig);
/* kcmp(2): 0 equal, 1/2 ordered, 3 not equal; -errno on failure. */
int rc_kcmp(int pid1, int pid2, int type, unsigned long idx1, unsigned long idx2);
/* Where (pid, fd)'s open file description is among n descriptions sorted in
 * kcmp(KCMP_FILE) order (pids[i], fds[i]): a binary search, one syscall per
 * step.  Returns 2 * index + 1 if it is the one at index, 2 * index if it
 * belongs before index (not among them), RC_KCMP_UNORDERED if the kernel gave
 * no order, or -errno. */
#define RC_KCMP_UNORDERED (-100000)
long rc_kcmp_file_search(int pid, int fd, const int *pids, const int *fds, long n);
long rc_tee(int fd_in, int fd_out, size_t len, unsigned int flags);
int rc_setns(int fd, int nstype);
int rc_unshare(int flags);
/* openat2(2) with struct open_how {flags, mode, resolve}: an fd or -errno. */
int rc_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);

/* ---- dirty-page tracking (PAGEMAP_SCAN, kernel 6.7+) ------------------- */
/*
 * One PAGEMAP_SCAN ioctl on an open /proc/PID/pagemap fd over [start, end):
 * pages whose categories match (all of mask after xor with inverted, any of
 * anyof when non-zero) are reported as regions[3*i] = start, [3*i+1] = end,
 * [3*i+2] = categories (at most max_regions); with PM_SCAN_WP_MATCHING in
 * flags they are also write-protected again (uffd-wp async). Returns the
 * number of regions; *walk_end is where the walk stopped (end when done).
 */
long rc_pagemap_scan(int pagemap_fd, uint64_t start, uint64_t end, uint64_t flags,
		     uint64_t mask, uint64_t inverted, uint64_t anyof, uint64_t return_mask,
		     uint64_t *regions, size_t max_regions, uint64_t *walk_end);

#endif

/*
 * refcr native core. Everything here is a thin, stateless wrapper around a
 * syscall Python's os module lacks (ptrace, process_vm_*, clone3, pidfd_*),
 * or a loop too hot for Python (pagemap scanning). See core.h for the
 * return convention (>= 0 ok, -errno failure).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cpuid.h>
#include <elf.h>
#include <sched.h>
#include <limits.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "core.h"

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* ptrace() returns -1/errno; turn that into our -errno convention. */
static long pt(int req, int pid, unsigned long addr, unsigned long data)
{
	long r = ptrace(req, pid, (void *)addr, (void *)data);
	return r < 0 ? -errno : r;
}

long rc_seize(int pid, unsigned long options)
{
	return pt(PTRACE_SEIZE, pid, 0, options);
}

long rc_interrupt(int pid)
{
	return pt(PTRACE_INTERRUPT, pid, 0, 0);
}

long rc_cont(int pid, int sig)
{
	return pt(PTRACE_CONT, pid, 0, (unsigned long)sig);
}

long rc_detach(int pid, int sig)
{
	return pt(PTRACE_DETACH, pid, 0, (unsigned long)sig);
}

long rc_set_options(int pid, unsigned long options)
{
	return pt(PTRACE_SETOPTIONS, pid, 0, options);
}

long rc_get_event_msg(int pid, unsigned long *msg)
{
	return pt(PTRACE_GETEVENTMSG, pid, 0, (unsigned long)msg);
}

int rc_wait(int pid, int *status)
{
	int r;

	do
		r = waitpid(pid, status, __WALL);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* ---- registers ---------------------------------------------------------- */

static long regset(int req, int pid, int type, void *buf, size_t len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	long r = pt(req, pid, (unsigned long)type, (unsigned long)&iov);

	return r < 0 ? r : (long)iov.iov_len;
}

int rc_get_regs(int pid, struct user_regs_struct *regs)
{
	long r = regset(PTRACE_GETREGSET, pid, NT_PRSTATUS, regs, sizeof(*regs));

	return r < 0 ? (int)r : 0;
}

int rc_set_regs(int pid, const struct user_regs_struct *regs)
{
	long r = regset(PTRACE_SETREGSET, pid, NT_PRSTATUS, (void *)regs, sizeof(*regs));

	return r < 0 ? (int)r : 0;
}

long rc_get_xstate(int pid, void *buf, size_t len)
{
	return regset(PTRACE_GETREGSET, pid, NT_X86_XSTATE, buf, len);
}

int rc_set_xstate(int pid, const void *buf, size_t len)
{
	long r = regset(PTRACE_SETREGSET, pid, NT_X86_XSTATE, (void *)buf, len);

	return r < 0 ? (int)r : 0;
}

long rc_xstate_size(void)
{
	unsigned int a, b, c, d;

	/* Leaf 0xD sub-leaf 0: ECX is the XSAVE size for all supported features. */
	if (!__get_cpuid_count(0xd, 0, &a, &b, &c, &d))
		return -ENOTSUP;
	return c > b ? c : b;
}

/* ---- signals, rseq ------------------------------------------------------ */

int rc_get_sigmask(int pid, uint64_t *mask)
{
	long r = pt(PTRACE_GETSIGMASK, pid, sizeof(*mask), (unsigned long)mask);

	return r < 0 ? (int)r : 0;
}

int rc_set_sigmask(int pid, uint64_t mask)
{
	long r = pt(PTRACE_SETSIGMASK, pid, sizeof(mask), (unsigned long)&mask);

	return r < 0 ? (int)r : 0;
}

int rc_peek_siginfo(int pid, int shared, uint64_t off, int nr, void *buf)
{
	/* Layout of the kernel's struct ptrace_peeksiginfo_args. */
	struct { uint64_t off; uint32_t flags; int32_t nr; } args = {
		.off = off, .flags = shared ? 1 /* PTRACE_PEEKSIGINFO_SHARED */ : 0, .nr = nr,
	};

	return (int)pt(PTRACE_PEEKSIGINFO, pid, (unsigned long)&args, (unsigned long)buf);
}

int rc_get_rseq_conf(int pid, struct rc_rseq_conf *conf)
{
	long r;

	memset(conf, 0, sizeof(*conf));
	r = pt(0x420f /* PTRACE_GET_RSEQ_CONFIGURATION */, pid, sizeof(*conf),
	       (unsigned long)conf);
	return r < 0 ? (int)r : 0;
}

/* ---- syscall injection -------------------------------------------------- */

/*
 * Why orig_rax = -1: if the tracee was stopped while inside an interrupted
 * syscall, the kernel would otherwise "restart" it (rewind rip, reload rax)
 * when we resume it to run our code. With -1 it leaves our call alone; once
 * the original registers (including orig_rax) are back, the original restart
 * happens as if we had never been there.
 */
/*
 * A syscall-stop (as opposed to a signal-delivery-stop of a SIGTRAP someone
 * sent): its siginfo is the one ptrace_notify() makes, si_code SIGTRAP (or
 * SIGTRAP|0x80 with PTRACE_O_TRACESYSGOOD).  Returns 1 at the entry, 2 at the
 * exit (PTRACE_EVENTMSG_SYSCALL_ENTRY/EXIT), 0 for any other stop.
 */
static int syscall_stop(int pid)
{
	siginfo_t si;
	unsigned long msg = 0;

	if (pt(PTRACE_GETSIGINFO, pid, 0, (unsigned long)&si) < 0)
		return 0;
	if (si.si_signo != SIGTRAP || (si.si_code != SIGTRAP && si.si_code != (SIGTRAP | 0x80)))
		return 0;
	if (pt(PTRACE_GETEVENTMSG, pid, 0, (unsigned long)&msg) < 0)
		return 0;
	return msg == 1 || msg == 2 ? (int)msg : 0;
}

/*
 * Two ways to get the task back after the call:
 *  - patch (dump, pre-dump, the puppet's boot): "syscall; jmp ." is written
 *    over 4 bytes at addr and the task is resumed with PTRACE_SYSCALL; we
 *    take it at the syscall-exit-stop, before it reaches the jmp.  No trap
 *    instruction: if refcr dies at any moment the kernel detaches the task,
 *    which then finishes the call and spins on the jmp, alive, until refcr's
 *    guardian (refcr/ptrace/guardian.py) seizes it and puts registers and
 *    bytes back.  An int3 there would kill it with SIGTRAP.
 *  - no patch (restore puppets): the code already holds "syscall; int3"
 *    and the task is resumed with PTRACE_CONT until the int3's SIGTRAP.
 */
int rc_inject_syscall(int pid, long nr, const unsigned long *args,
		      unsigned long addr, int patch, int fault_ok,
		      long *result, int *stop_status)
{
	static const unsigned char code[4] = { 0x0f, 0x05, 0xeb, 0xfe }; /* syscall; jmp . */
	int request = patch ? PTRACE_SYSCALL : PTRACE_CONT;
	struct user_regs_struct saved, regs;
	unsigned long orig_word = 0, word;
	int r, st, ret = 0, gone = 0;

	*stop_status = 0;
	r = rc_get_regs(pid, &saved);
	if (r < 0)
		return r;

	if (patch) {
		errno = 0;
		orig_word = ptrace(PTRACE_PEEKDATA, pid, (void *)addr, NULL);
		if (errno)
			return -errno;
		word = orig_word;
		memcpy(&word, code, sizeof(code));
		if (pt(PTRACE_POKEDATA, pid, addr, word) < 0)
			return -errno;
	}

	regs = saved;
	regs.rip = addr;
	regs.rax = nr;
	regs.orig_rax = (unsigned long long)-1;
	regs.rdi = args[0];
	regs.rsi = args[1];
	regs.rdx = args[2];
	regs.r10 = args[3];
	regs.r8 = args[4];
	regs.r9 = args[5];
	ret = rc_set_regs(pid, &regs);
	if (ret < 0)
		goto restore;

	for (;;) {
		ret = (int)pt(request, pid, 0, 0);
		if (ret < 0)
			goto restore;
		ret = rc_wait(pid, &st);
		if (ret < 0)
			goto restore;
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			ret = -ESRCH;
			gone = 1;
			goto restore;
		}
		if (!WIFSTOPPED(st)) {
			continue;
		}
		/*
		 * Group-stop/PTRACE_INTERRUPT stops and fork/clone events (an
		 * injected clone3 with PTRACE_O_TRACECLONE) need nothing but
		 * another PTRACE_CONT.
		 */
		switch (st >> 16) {
		case 0:
			break;
		case PTRACE_EVENT_STOP:
		case PTRACE_EVENT_FORK:
		case PTRACE_EVENT_VFORK:
		case PTRACE_EVENT_CLONE:
		case PTRACE_EVENT_VFORK_DONE:
			continue;
		case PTRACE_EVENT_EXIT:
			*stop_status = st;
			ret = -ESRCH;
			gone = 1;
			goto restore;
		default:
			*stop_status = st;
			ret = -EIO;
			goto restore;
		}
		ret = rc_get_regs(pid, &regs);
		if (ret < 0)
			goto restore;
		if (patch && WSTOPSIG(st) == SIGTRAP) {
			int phase = syscall_stop(pid);

			if (phase == 1)
				continue;	/* entry: let it run the call */
			if (phase == 2 && regs.rip == addr + 2)
				break;		/* exit, before the jmp */
		}
		if (!patch && WSTOPSIG(st) == SIGTRAP && regs.rip == addr + 3)
			break;	/* our int3 */
		if (fault_ok && (WSTOPSIG(st) == SIGSEGV || WSTOPSIG(st) == SIGBUS) &&
		    regs.rip == addr + 2)
			break;	/* the call unmapped its own code: int3 is gone */
		*stop_status = st;
		ret = -EIO;
		goto restore;
	}
	*result = (long)regs.rax;
	ret = 0;

restore:
	if (gone)
		return ret;
	/* When the call unmapped the page, there is nothing to put back. */
	if (patch && pt(PTRACE_POKEDATA, pid, addr, orig_word) < 0 && !fault_ok && ret == 0)
		ret = -errno;
	r = rc_set_regs(pid, &saved);
	if (r < 0 && ret == 0)
		ret = r;
	return ret;
}

/* ---- batched syscalls ---------------------------------------------------- */

/*
 * The batch blob: position-independent x86-64 code that runs a table of
 * syscalls inside the task in one go, so that N injected calls cost one
 * ptrace round trip instead of N (each of which is several ptrace requests
 * and two context switches).  rdi = table, rsi = entries, rdx = stop at the
 * first failing call when non-zero.  An entry is 8 words: nr, six
 * arguments, and the result, written back in place.  No stack, no memory
 * but the table; ends on int3 (a SIGTRAP stop at RC_BATCH_TRAP + 1).
 *
 *	mov r12, rdi; mov r13, rsi
 * 1:	test r13, r13; jz 2f
 *	mov rax, [r12]; mov rdi, [r12+8]; mov rsi, [r12+16]; mov r10, [r12+32]
 *	mov r8, [r12+40]; mov r9, [r12+48]; mov r14, rdx; mov rdx, [r12+24]
 *	syscall
 *	mov rdx, r14; mov [r12+56], rax; add r12, 64; dec r13
 *	test rdx, rdx; jz 1b; cmp rax, -4095; jb 1b
 * 2:	int3
 */
static const unsigned char batch_code[] = {
	0x49, 0x89, 0xfc, 0x49, 0x89, 0xf5, 0x4d, 0x85, 0xed, 0x74, 0x43, 0x49,
	0x8b, 0x04, 0x24, 0x49, 0x8b, 0x7c, 0x24, 0x08, 0x49, 0x8b, 0x74, 0x24,
	0x10, 0x4d, 0x8b, 0x54, 0x24, 0x20, 0x4d, 0x8b, 0x44, 0x24, 0x28, 0x4d,
	0x8b, 0x4c, 0x24, 0x30, 0x49, 0x89, 0xd6, 0x49, 0x8b, 0x54, 0x24, 0x18,
	0x0f, 0x05, 0x4c, 0x89, 0xf2, 0x49, 0x89, 0x44, 0x24, 0x38, 0x49, 0x83,
	0xc4, 0x40, 0x49, 0xff, 0xcd, 0x48, 0x85, 0xd2, 0x74, 0xc0, 0x48, 0x3d,
	0x01, 0xf0, 0xff, 0xff, 0x72, 0xb8, 0xcc
};
#define RC_BATCH_TRAP 0x4e

size_t rc_batch_code(unsigned char *out, size_t size)
{
	if (out && size >= sizeof(batch_code))
		memcpy(out, batch_code, sizeof(batch_code));
	return sizeof(batch_code);
}

int rc_run_batch(int pid, unsigned long code, unsigned long table, unsigned long n,
		 int stop_on_error, int *stop_status)
{
	struct user_regs_struct saved, regs;
	int r, st, ret = 0;

	*stop_status = 0;
	r = rc_get_regs(pid, &saved);
	if (r < 0)
		return r;
	regs = saved;
	regs.rip = code;
	regs.orig_rax = (unsigned long long)-1;	/* no syscall restart on the way in */
	regs.rdi = table;
	regs.rsi = n;
	regs.rdx = stop_on_error ? 1 : 0;
	ret = rc_set_regs(pid, &regs);
	if (ret < 0)
		goto restore;
	for (;;) {
		ret = (int)pt(PTRACE_CONT, pid, 0, 0);
		if (ret < 0)
			goto restore;
		ret = rc_wait(pid, &st);
		if (ret < 0)
			goto restore;
		if (WIFEXITED(st) || WIFSIGNALED(st))
			return -ESRCH;
		if (!WIFSTOPPED(st))
			continue;
		switch (st >> 16) {
		case 0:
			break;
		case PTRACE_EVENT_STOP:
		case PTRACE_EVENT_FORK:
		case PTRACE_EVENT_VFORK:
		case PTRACE_EVENT_CLONE:
		case PTRACE_EVENT_VFORK_DONE:
			continue;
		case PTRACE_EVENT_EXIT:
			*stop_status = st;
			return -ESRCH;
		default:
			*stop_status = st;
			ret = -EIO;
			goto restore;
		}
		ret = rc_get_regs(pid, &regs);
		if (ret < 0)
			goto restore;
		if (WSTOPSIG(st) == SIGTRAP && regs.rip == code + RC_BATCH_TRAP + 1)
			break;
		*stop_status = st;
		ret = -EIO;
		goto restore;
	}
	ret = 0;
restore:
	r = rc_set_regs(pid, &saved);
	if (r < 0 && ret == 0)
		ret = r;
	return ret;
}

/* ---- memory ------------------------------------------------------------- */

/*
 * Transfers ranges [i..n) starting 'skip' bytes into range i, at most
 * IOV_MAX remote iovecs per call. The kernel may stop short (a fault, or its
 * per-call size cap); we resume where it stopped and only give up when a
 * call makes no progress.
 */
static long vm_rw(int pid, const unsigned long *addrs, const unsigned long *lens,
		  size_t n, char *buf, int write)
{
	struct iovec remote[IOV_MAX], local;
	size_t i = 0, skip = 0, total = 0;

	while (i < n) {
		size_t cnt = 0, want = 0, j;
		ssize_t r;

		for (j = i; j < n && cnt < IOV_MAX; j++) {
			size_t off = j == i ? skip : 0;

			if (lens[j] == off)
				continue;
			remote[cnt].iov_base = (void *)(addrs[j] + off);
			remote[cnt].iov_len = lens[j] - off;
			want += lens[j] - off;
			cnt++;
		}
		if (cnt == 0)
			break;
		local.iov_base = buf + total;
		local.iov_len = want;
		if (write)
			r = process_vm_writev(pid, &local, 1, remote, cnt, 0);
		else
			r = process_vm_readv(pid, &local, 1, remote, cnt, 0);
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EFAULT;
		total += r;
		/* Advance (i, skip) by r bytes. */
		while (r > 0 && i < n) {
			size_t left = lens[i] - skip;

			if ((size_t)r < left) {
				skip += r;
				r = 0;
			} else {
				r -= left;
				i++;
				skip = 0;
			}
		}
		while (i < n && lens[i] == skip) {
			i++;
			skip = 0;
		}
	}
	return (long)total;
}

long rc_vm_read(int pid, const unsigned long *addrs, const unsigned long *lens,
		size_t n, void *buf)
{
	return vm_rw(pid, addrs, lens, n, buf, 0);
}

long rc_vm_write(int pid, const unsigned long *addrs, const unsigned long *lens,
		 size_t n, const void *buf)
{
	return vm_rw(pid, addrs, lens, n, (char *)buf, 1);
}

#define PM_PRESENT	(1ULL << 63)
#define PM_SWAPPED	(1ULL << 62)
#define PM_FILE_SHARED	(1ULL << 61)	/* file page or shared anon */
#define PM_MMAP_EXCLUSIVE (1ULL << 56)	/* the page is mapped only here */
#define PM_GUARD_REGION	(1ULL << 58)	/* MADV_GUARD_INSTALL marker: no page, reads fault */
#define PM_CHUNK	4096		/* entries per pread: 32 KiB */

long rc_scan_pagemap(int pid, unsigned long start, unsigned long end,
		     int mode, unsigned long *runs, size_t max_runs,
		     unsigned long *next)
{
	uint64_t *ents;
	char path[64];
	long psize = sysconf(_SC_PAGESIZE);
	unsigned long addr = start;
	size_t nruns = 0;
	int fd;

	*next = start;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ents = malloc(PM_CHUNK * sizeof(*ents));
	if (!ents) {
		close(fd);
		return -ENOMEM;
	}

	while (addr < end) {
		size_t want = (end - addr) / psize, k;
		ssize_t got;

		if (want > PM_CHUNK)
			want = PM_CHUNK;
		got = pread(fd, ents, want * 8, (off_t)(addr / psize) * 8);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;

			free(ents);
			close(fd);
			return -e;
		}
		if (got < 8)
			break;	/* past the end of the address space */
		got /= 8;
		for (k = 0; k < (size_t)got; k++, addr += psize) {
			uint64_t e = ents[k];

			if (!(e & (PM_PRESENT | PM_SWAPPED)) || (e & PM_GUARD_REGION))
				continue;
			if ((mode & RC_PM_ANON) && (e & PM_FILE_SHARED))
				continue;
			if ((mode & RC_PM_SHARED) && (e & PM_PRESENT) && (e & PM_MMAP_EXCLUSIVE))
				continue;
			if ((mode & RC_PM_EXCLUSIVE) && !((e & PM_PRESENT) && (e & PM_MMAP_EXCLUSIVE)))
				continue;
			if (nruns && runs[2 * nruns - 2] + runs[2 * nruns - 1] * psize == addr) {
				runs[2 * nruns - 1]++;
				continue;
			}
			if (nruns == max_runs) {
				/* Out of room: the caller resumes at this page. */
				free(ents);
				close(fd);
				*next = addr;
				return (long)nruns;
			}
			runs[2 * nruns] = addr;
			runs[2 * nruns + 1] = 1;
			nruns++;
		}
	}
	free(ents);
	close(fd);
	*next = end;
	return (long)nruns;
}

/* ---- processes, fds, namespaces ----------------------------------------- */

int rc_pidfd_open(int pid, unsigned int flags)
{
	long r = syscall(SYS_pidfd_open, pid, flags);

	return r < 0 ? -errno : (int)r;
}

int rc_pidfd_getfd(int pidfd, int fd, unsigned int flags)
{
	long r = syscall(SYS_pidfd_getfd, pidfd, fd, flags);

	return r < 0 ? -errno : (int)r;
}

/*
 * The clone3 child shares nothing with libc's view of the world (its TLS
 * thread id is stale, other Python threads are gone), so after the syscall it
 * must run only raw syscalls: these inline helpers touch neither errno nor
 * any libc state.
 */
static inline long raw_syscall2(long nr, long a1, long a2)
{
	long ret;

	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2)
		     : "rcx", "r11", "memory");
	return ret;
}

static inline long raw_syscall0(long nr)
{
	long ret;

	asm volatile("syscall" : "=a"(ret) : "a"(nr) : "rcx", "r11", "memory");
	return ret;
}

/* struct clone_args, as of the kernel ABI version with set_tid (v2). */
struct rc_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal;
	uint64_t stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

static __attribute__((noreturn)) void puppet_body(void)
{
	/*
	 * Just wait to be seized and interrupted.  No SIGSTOP to itself: a
	 * group stop would still be in effect when refcr finally detaches, and
	 * the restored process would come back stopped.
	 */
	for (;;)
		raw_syscall0(SYS_pause);
}

int rc_clone3_puppet(const int *set_tid, size_t set_tid_size,
		     uint64_t flags, int exit_signal)
{
	struct rc_clone_args args;
	long ret;

	memset(&args, 0, sizeof(args));
	args.flags = flags;
	args.exit_signal = (uint64_t)(unsigned int)exit_signal;
	args.set_tid = (uint64_t)(unsigned long)set_tid;
	args.set_tid_size = set_tid_size;

	/* No stack given: fork-like, the child returns here on a copy of ours. */
	ret = raw_syscall2(SYS_clone3, (long)&args, sizeof(args));
	if (ret == 0)
		puppet_body();
	return (int)ret;	/* child pid or -errno, straight from the kernel */
}

static inline long raw_syscall5(long nr, long a1, long a2, long a3, long a4, long a5)
{
	long ret;
	register long r10 asm("r10") = a4;
	register long r8 asm("r8") = a5;

	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
		     : "rcx", "r11", "memory");
	return ret;
}

static __attribute__((noreturn)) void fd_proxy_body(int ctl)
{
	int nsfd = -1;
	long ret;

	raw_syscall5(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (raw_syscall5(SYS_read, ctl, (long)&nsfd, sizeof(nsfd), 0, 0) != sizeof(nsfd))
		raw_syscall5(SYS_exit, 1, 0, 0, 0, 0);
	ret = raw_syscall5(SYS_setns, nsfd, CLONE_NEWUSER, 0, 0, 0);
	/* a user namespace owned by another uid leaves it non-dumpable: the
	 * puppets (caps only in there) could then not pidfd_getfd from it */
	if (ret == 0)
		ret = raw_syscall5(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0);
	raw_syscall5(SYS_write, ctl, (long)&ret, sizeof(ret), 0, 0);
	for (;;)
		raw_syscall0(SYS_pause);
}

int rc_fd_proxy(int ctl_fd)
{
	/* fork-like clone sharing the fd table: the child's fds are ours */
	long ret = raw_syscall5(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);

	if (ret == 0)
		fd_proxy_body(ctl_fd);
	return (int)ret;
}

int rc_get_robust_list(int tid, unsigned long *head, size_t *len)
{
	return syscall(SYS_get_robust_list, tid, head, len) < 0 ? -errno : 0;
}

int rc_tgkill(int tgid, int tid, int sig)
{
	return syscall(SYS_tgkill, tgid, tid, sig) < 0 ? -errno : 0;
}

int rc_kcmp(int pid1, int pid2, int type, unsigned long idx1, unsigned long idx2)
{
	long r = syscall(SYS_kcmp, pid1, pid2, type, idx1, idx2);

	return r < 0 ? -errno : (int)r;
}

long rc_kcmp_file_search(int pid, int fd, const int *pids, const int *fds, long n)
{
	long lo = 0, hi = n;

	while (lo < hi) {
		long mid = lo + (hi - lo) / 2;
		long r = syscall(SYS_kcmp, pid, pids[mid], 0 /* KCMP_FILE */,
				 (unsigned long)fd, (unsigned long)fds[mid]);

		if (r < 0)
			return -errno;
		if (r == 0)
			return 2 * mid + 1;
		if (r == 1)		/* KCMP_LESS: the first is below the second */
			hi = mid;
		else if (r == 2)
			lo = mid + 1;
		else
			return RC_KCMP_UNORDERED;
	}
	return 2 * lo;
}

long rc_tee(int fd_in, int fd_out, size_t len, unsigned int flags)
{
	ssize_t r = tee(fd_in, fd_out, len, flags);

	return r < 0 ? -errno : (long)r;
}

int rc_setns(int fd, int nstype)
{
	return setns(fd, nstype) < 0 ? -errno : 0;
}

int rc_unshare(int flags)
{
	return unshare(flags) < 0 ? -errno : 0;
}

int rc_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve)
{
	uint64_t how[3] = { flags, mode, resolve };	/* struct open_how, version 0 */
	long r = syscall(SYS_openat2, dirfd, path, how, sizeof(how));

	return r < 0 ? -errno : (int)r;
}

/* ---- dirty-page tracking ------------------------------------------------- */

/* The kernel's struct pm_scan_arg / page_region (linux/fs.h, 6.7+). */
struct rc_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define RC_PAGEMAP_SCAN _IOWR('f', 16, struct rc_pm_scan_arg)

long rc_pagemap_scan(int pagemap_fd, uint64_t start, uint64_t end, uint64_t flags,
		     uint64_t mask, uint64_t inverted, uint64_t anyof, uint64_t return_mask,
		     uint64_t *regions, size_t max_regions, uint64_t *walk_end)
{
	struct rc_pm_scan_arg arg = {
		.size = sizeof(arg), .flags = flags, .start = start, .end = end,
		.vec = (uint64_t)(unsigned long)regions, .vec_len = max_regions,
		.category_inverted = inverted, .category_mask = mask,
		.category_anyof_mask = anyof, .return_mask = return_mask,
	};
	long r;

	if (!regions || !max_regions)
		arg.vec = arg.vec_len = 0;
	do
		r = ioctl(pagemap_fd, RC_PAGEMAP_SCAN, &arg);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	*walk_end = arg.walk_end;
	return r;
}

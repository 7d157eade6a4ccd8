/*
 * tls00: thread-local storage and the FS/GS bases survive.
 *
 * __thread variables (initialised and zero-initialised, scalar and array)
 * hold patterns; the FS base (arch_prctl(ARCH_GET_FS), and rdfsbase when
 * FSGSBASE is enabled) and the GS base are unchanged; %fs:0 still points to
 * the thread control block; the address of a __thread variable is the same.
 */
#include "zdtmtst.h"

#include <asm/prctl.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif

static __thread uint64_t tls_init = 0x1122334455667788ULL;
static __thread char tls_buf[3000];
static __thread int tls_zero;

static unsigned long get_base(int code)
{
	unsigned long v = 0;

	if (syscall(SYS_arch_prctl, code, &v))
		fail("arch_prctl(%#x)", code);
	return v;
}

static unsigned long rdfsbase(void)
{
	unsigned long v;

	asm volatile("rdfsbase %0" : "=r" (v));
	return v;
}

static unsigned long fs0(void)
{
	unsigned long v;

	asm volatile("mov %%fs:0, %0" : "=r" (v));
	return v;
}

int main(int argc, char **argv)
{
	unsigned long fs, gs, fs_rd = 0, fs_after;
	void *buf_addr, *tp;
	int have_fsgsbase;

	test_init(argc, argv);

	have_fsgsbase = !!(getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE);
	tls_init ^= 0xffff;
	datagen(tls_buf, sizeof(tls_buf), 5);
	if (tls_zero)
		fail("zero-initialised TLS is %d", tls_zero);
	tls_zero = 0x5a5a;

	fs = get_base(ARCH_GET_FS);
	gs = get_base(ARCH_GET_GS);
	tp = __builtin_thread_pointer();
	if ((unsigned long)tp != fs || fs0() != fs)
		fail("fs base %#lx, thread pointer %p, %%fs:0 %#lx disagree", fs, tp, fs0());
	if (have_fsgsbase && (fs_rd = rdfsbase()) != fs)
		fail("rdfsbase %#lx != %#lx", fs_rd, fs);
	buf_addr = tls_buf;

	test_daemon();
	test_waitsig();

	fs_after = get_base(ARCH_GET_FS);
	if (fs_after != fs)
		pr_err("ARCH_GET_FS: %#lx -> %#lx", fs, fs_after);
	if (get_base(ARCH_GET_GS) != gs)
		pr_err("ARCH_GET_GS: %#lx -> %#lx", gs, get_base(ARCH_GET_GS));
	if (have_fsgsbase && rdfsbase() != fs)
		pr_err("rdfsbase: %#lx -> %#lx", fs, rdfsbase());
	if (fs0() != fs)
		pr_err("%%fs:0 is %#lx, expected %#lx", fs0(), fs);
	if ((void *)tls_buf != buf_addr)
		pr_err("&tls_buf moved: %p -> %p", buf_addr, (void *)tls_buf);
	if (tls_init != (0x1122334455667788ULL ^ 0xffff))
		pr_err("tls_init = %#llx", (unsigned long long)tls_init);
	if (datachk(tls_buf, sizeof(tls_buf), 5))
		pr_err("tls_buf data mismatch");
	if (tls_zero != 0x5a5a)
		pr_err("tls_zero = %#x", tls_zero);

	test_result();
	return 0;
}

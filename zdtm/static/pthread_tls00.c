/*
 * pthread_tls00: thread-local storage of every thread survives.
 *
 * Each thread (and main) fills its __thread variables (initialised,
 * zero-initialised, an array) with its own pattern, sets its own GS base
 * (arch_prctl(ARCH_SET_GS)) and saves its FS base, pthread_self() and the
 * address of a __thread variable.  After restore each thread checks its data,
 * that FS base == pthread_self() == %fs:0 as before (the TCB), that the
 * __thread address is unchanged, and its GS base.
 */
#include "zdtmtst.h"

#include <asm/prctl.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NTHR	4

static __thread uint64_t tls_init = 0xabcdef0123456789ULL;
static __thread int tls_zero;
static __thread char tls_buf[2000];

struct thr {
	int idx;
	pthread_t th;
	unsigned long fs, gs, self;
	void *buf_addr;
	volatile int ready;
	struct test_notes notes;
};

static struct thr thr[NTHR + 1];	/* the last one: main */
static volatile int go;

static unsigned long get_base(int code)
{
	unsigned long v = 0;

	syscall(SYS_arch_prctl, code, &v);
	return v;
}

static unsigned long fs0(void)
{
	unsigned long v;

	asm volatile("mov %%fs:0, %0" : "=r" (v));
	return v;
}

static void setup(struct thr *t)
{
	tls_init += t->idx;
	tls_zero = 1000 + t->idx;
	datagen(tls_buf, sizeof(tls_buf), 300 + t->idx);
	t->gs = 0x7e0000000000UL + ((unsigned long)t->idx << 20);
	if (syscall(SYS_arch_prctl, ARCH_SET_GS, t->gs))
		fail("ARCH_SET_GS");
	t->fs = get_base(ARCH_GET_FS);
	t->self = (unsigned long)pthread_self();
	t->buf_addr = tls_buf;
	if (t->fs != t->self || fs0() != t->fs)
		fail("FS base %#lx, pthread_self %#lx, %%fs:0 %#lx", t->fs, t->self, fs0());
}

static void check_tls(struct thr *t)
{
	unsigned long fs = get_base(ARCH_GET_FS), gs = get_base(ARCH_GET_GS);

	if (tls_init != 0xabcdef0123456789ULL + t->idx)
		test_note(&t->notes, "tls_init %#llx", (unsigned long long)tls_init);
	if (tls_zero != 1000 + t->idx)
		test_note(&t->notes, "tls_zero %d", tls_zero);
	if (datachk(tls_buf, sizeof(tls_buf), 300 + t->idx))
		test_note(&t->notes, "tls_buf differs");
	if ((void *)tls_buf != t->buf_addr)
		test_note(&t->notes, "tls_buf at %p, was %p", (void *)tls_buf, t->buf_addr);
	if (fs != t->fs)
		test_note(&t->notes, "FS base %#lx, was %#lx", fs, t->fs);
	if (fs0() != t->fs)
		test_note(&t->notes, "%%fs:0 %#lx, expected %#lx", fs0(), t->fs);
	if ((unsigned long)pthread_self() != t->self)
		test_note(&t->notes, "pthread_self %#lx, was %#lx", (unsigned long)pthread_self(), t->self);
	if (gs != t->gs)
		test_note(&t->notes, "GS base %#lx, was %#lx", gs, t->gs);
}

static void *thread(void *arg)
{
	struct thr *t = arg;

	setup(t);
	t->ready = 1;
	while (!go)
		syscall(SYS_futex, &go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	check_tls(t);
	return NULL;
}

int main(int argc, char **argv)
{
	int i;

	test_init(argc, argv);

	for (i = 0; i <= NTHR; i++)
		thr[i].idx = i;
	for (i = 0; i < NTHR; i++)
		if (test_thread_create(&thr[i].th, thread, &thr[i]))
			fail("pthread_create");
	setup(&thr[NTHR]);
	for (i = 0; i < NTHR; i++)
		while (!thr[i].ready)
			usleep(1000);
	for (i = 0; i <= NTHR; i++)
		for (int j = 0; j < i; j++)
			if (thr[i].fs == thr[j].fs)
				fail("threads %d and %d share an FS base", i, j);

	test_daemon();
	test_waitsig();

	check_tls(&thr[NTHR]);
	go = 1;
	syscall(SYS_futex, &go, FUTEX_WAKE_PRIVATE, NTHR, NULL, NULL, 0);
	for (i = 0; i <= NTHR; i++) {
		if (i < NTHR && test_thread_join(thr[i].th)) {
			pr_err("thread %d did not finish", i);
			continue;
		}
		if (thr[i].notes.errors)
			pr_err("%s %d: %s", i < NTHR ? "thread" : "main", i, thr[i].notes.msg);
	}
	test_result();
	return 0;
}

/*
 * fpu00: FPU/SIMD register state survives.
 *
 * One asm block loads known values into the x87 stack (all 8 registers,
 * 80-bit), the x87 control word, MXCSR, and ymm0-15 (xmm0-15 without AVX),
 * and - when the CPU and kernel support AVX-512 - zmm0-31 and the opmask
 * registers k1-k7; then spins on the SIGTERM flag without touching them;
 * then stores them all back.  The dump happens during the spin.
 */
#include "zdtmtst.h"

#define FCW_TEST	0x0b7fU	/* all masked, 64-bit precision, round up */
#define FCW_DEFAULT	0x037fU
#define MXCSR_TEST	0xdf80U	/* FTZ, round toward zero, all masked */
#define MXCSR_DEFAULT	0x1f80U

struct fpstate {
	long double st[8];		/* st[i] is pushed i-th */
	uint8_t vec[32][64];		/* ymm: 32 bytes each; zmm: 64 */
	uint64_t k[8];
	uint32_t mxcsr;
	uint16_t fcw;
};

static struct fpstate in, out;

#define LOAD_X87							\
	"fldcw %[fcw_in]\n\t"						\
	"fldt 0*16(%[st_in])\n\t"					\
	"fldt 1*16(%[st_in])\n\t"					\
	"fldt 2*16(%[st_in])\n\t"					\
	"fldt 3*16(%[st_in])\n\t"					\
	"fldt 4*16(%[st_in])\n\t"					\
	"fldt 5*16(%[st_in])\n\t"					\
	"fldt 6*16(%[st_in])\n\t"					\
	"fldt 7*16(%[st_in])\n\t"					\
	"ldmxcsr %[mxcsr_in]\n\t"

#define SPIN								\
	"1: pause\n\t"							\
	"cmpl $0, (%[flag])\n\t"					\
	"je 1b\n\t"

#define STORE_X87							\
	"fstpt 7*16(%[st_out])\n\t"					\
	"fstpt 6*16(%[st_out])\n\t"					\
	"fstpt 5*16(%[st_out])\n\t"					\
	"fstpt 4*16(%[st_out])\n\t"					\
	"fstpt 3*16(%[st_out])\n\t"					\
	"fstpt 2*16(%[st_out])\n\t"					\
	"fstpt 1*16(%[st_out])\n\t"					\
	"fstpt 0*16(%[st_out])\n\t"					\
	"fnstcw %[fcw_out]\n\t"						\
	"stmxcsr %[mxcsr_out]\n\t"					\
	"fldcw %[fcw_def]\n\t"						\
	"ldmxcsr %[mxcsr_def]\n\t"

#define OPERANDS							\
	: [fcw_out] "=m" (out.fcw), [mxcsr_out] "=m" (out.mxcsr)	\
	: [st_in] "r" (in.st), [st_out] "r" (out.st),			\
	  [vin] "r" (in.vec), [vout] "r" (out.vec),			\
	  [kin] "r" (in.k), [kout] "r" (out.k),				\
	  [fcw_in] "m" (in.fcw), [mxcsr_in] "m" (in.mxcsr),		\
	  [fcw_def] "m" (fcw_def), [mxcsr_def] "m" (mxcsr_def),		\
	  [flag] "r" (&test_sigterm_seen)

#define CLOBBER_X87 "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"
#define CLOBBER_XMM							\
	"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",	\
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

static const uint16_t fcw_def = FCW_DEFAULT;
static const uint32_t mxcsr_def = MXCSR_DEFAULT;

#define XMM_ALL(op, reg, dir)						\
	X1(op, reg, dir, 0) X1(op, reg, dir, 1) X1(op, reg, dir, 2)	\
	X1(op, reg, dir, 3) X1(op, reg, dir, 4) X1(op, reg, dir, 5)	\
	X1(op, reg, dir, 6) X1(op, reg, dir, 7) X1(op, reg, dir, 8)	\
	X1(op, reg, dir, 9) X1(op, reg, dir, 10) X1(op, reg, dir, 11)	\
	X1(op, reg, dir, 12) X1(op, reg, dir, 13) X1(op, reg, dir, 14)	\
	X1(op, reg, dir, 15)
#define XMM_HI(op, reg, dir)						\
	X1(op, reg, dir, 16) X1(op, reg, dir, 17) X1(op, reg, dir, 18)	\
	X1(op, reg, dir, 19) X1(op, reg, dir, 20) X1(op, reg, dir, 21)	\
	X1(op, reg, dir, 22) X1(op, reg, dir, 23) X1(op, reg, dir, 24)	\
	X1(op, reg, dir, 25) X1(op, reg, dir, 26) X1(op, reg, dir, 27)	\
	X1(op, reg, dir, 28) X1(op, reg, dir, 29) X1(op, reg, dir, 30)	\
	X1(op, reg, dir, 31)
/* dir 0: load from vin; dir 1: store to vout */
#define X1(op, reg, dir, n)						\
	X1_##dir(op, reg, n)
#define X1_0(op, reg, n) op " " #n "*64(%[vin]), %%" reg #n "\n\t"
#define X1_1(op, reg, n) op " %%" reg #n ", " #n "*64(%[vout])\n\t"

#define K_ALL(dir) K1_##dir(1) K1_##dir(2) K1_##dir(3) K1_##dir(4)	\
	K1_##dir(5) K1_##dir(6) K1_##dir(7)
#define K1_0(n) "kmovw " #n "*8(%[kin]), %%k" #n "\n\t"
#define K1_1(n) "kmovw %%k" #n ", " #n "*8(%[kout])\n\t"

static void run_sse(void)
{
	asm volatile(LOAD_X87 XMM_ALL("movdqu", "xmm", 0) SPIN
		     XMM_ALL("movdqu", "xmm", 1) STORE_X87
		     OPERANDS : "memory", "cc", CLOBBER_X87, CLOBBER_XMM);
}

__attribute__((target("avx")))
static void run_avx(void)
{
	asm volatile(LOAD_X87 XMM_ALL("vmovdqu", "ymm", 0) SPIN
		     XMM_ALL("vmovdqu", "ymm", 1) STORE_X87 "vzeroupper\n\t"
		     OPERANDS : "memory", "cc", CLOBBER_X87, CLOBBER_XMM);
}

__attribute__((target("avx512f")))
static void run_avx512(void)
{
	asm volatile(LOAD_X87 XMM_ALL("vmovdqu64", "zmm", 0)
		     XMM_HI("vmovdqu64", "zmm", 0) K_ALL(0) SPIN
		     XMM_ALL("vmovdqu64", "zmm", 1) XMM_HI("vmovdqu64", "zmm", 1)
		     K_ALL(1) STORE_X87 "vzeroupper\n\t"
		     OPERANDS : "memory", "cc", CLOBBER_X87, CLOBBER_XMM,
		     "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21",
		     "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27",
		     "xmm28", "xmm29", "xmm30", "xmm31",
		     "k1", "k2", "k3", "k4", "k5", "k6", "k7");
}

int main(int argc, char **argv)
{
	int i, nvec, vlen, mode;
	const char *names[] = { "sse (xmm0-15)", "avx (ymm0-15)", "avx512 (zmm0-31, k1-7)" };

	test_init(argc, argv);

	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f")) {
		mode = 2;
		nvec = 32;
		vlen = 64;
	} else if (__builtin_cpu_supports("avx")) {
		mode = 1;
		nvec = 16;
		vlen = 32;
	} else {
		mode = 0;
		nvec = 16;
		vlen = 16;
	}
	/* ZDTM_FPU_MODE=0|1 forces a smaller register set (for testing). */
	if (getenv("ZDTM_FPU_MODE") && atoi(getenv("ZDTM_FPU_MODE")) < mode) {
		mode = atoi(getenv("ZDTM_FPU_MODE"));
		nvec = 16;
		vlen = mode ? 32 : 16;
	}
	test_msg("testing x87 and %s", names[mode]);

	for (i = 0; i < 8; i++)
		in.st[i] = (i + 1) * 1.1L / 3.0L - i * 1e300L * 1e100L;	/* 80-bit only */
	datagen(in.vec, sizeof(in.vec), 0xf00);
	for (i = 0; i < 8; i++)
		in.k[i] = 0x1234 + 0x1111 * i;
	in.fcw = FCW_TEST;
	in.mxcsr = MXCSR_TEST;
	memset(&out, 0, sizeof(out));

	test_daemon();

	if (mode == 2)
		run_avx512();
	else if (mode == 1)
		run_avx();
	else
		run_sse();

	for (i = 0; i < 8; i++)
		if (memcmp(&in.st[i], &out.st[i], 10))
			pr_err("x87 register pushed %d-th: %La -> %La", i, in.st[i], out.st[i]);
	if (out.fcw != in.fcw)
		pr_err("x87 control word %#x -> %#x", in.fcw, out.fcw);
	if ((out.mxcsr & ~0x3fU) != in.mxcsr)	/* ignore exception flags */
		pr_err("mxcsr %#x -> %#x", in.mxcsr, out.mxcsr);
	for (i = 0; i < nvec; i++)
		if (memcmp(in.vec[i], out.vec[i], vlen))
			pr_err("vector register %d differs", i);
	if (mode == 2)
		for (i = 1; i < 8; i++)
			if ((uint16_t)in.k[i] != (uint16_t)out.k[i])
				pr_err("k%d: %#x -> %#x", i, (uint16_t)in.k[i],
				       (uint16_t)out.k[i]);

	test_result();
	return 0;
}

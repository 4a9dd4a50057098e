/* bf/kernels.h — ternary × int8 matrix products with int32 accumulation
 * (part: kernels).
 *
 *   y[n, o] = scale[o] / s[n] · Σ_i q[n, i] · w[o, i]
 *
 * q: int8 activations, absmax per row: s = 127/max(max|x|, 1e-5),
 *    q = clamp(round(x·s), -128, 127), made by bf_quant_rows_i8 (bf/quant.h);
 * w: ternary codes in {-1, 0, +1}.
 * Every sum is exact: products are widened to int32 before any 16-bit
 * partial sum could overflow (see the kernels for the bound at each step).
 *
 * Weights are repacked once, at load, into blocks the kernels like; the
 * stream's layout stays canonical:
 *   TQ2 blocks: 128 weights in 32 bytes; byte j holds weights j, j+32, j+64,
 *               j+96 as codes (w+1) in bits 0–1, 2–3, 4–5, 6–7.
 *   TQ1 blocks: 160 weights in 32 bytes; byte j holds weights j, j+32, j+64,
 *               j+96, j+128 as the base-3 number v = c₀·81 + c₁·27 + c₂·9 +
 *               c₃·3 + c₄, stored as q = ⌈256·v/243⌉ so that digits come out
 *               with a multiply by 3 and a shift: c = (q·3) >> 8, q ← q·3 mod 256.
 * Rows are padded to whole blocks with zero weights.
 *   Panels, the batch kernels' copy of the same codes, whatever the
 *   packing: rows in panels of eight (the last padded with zero weights),
 *   each panel kpad/16 vectors of 32 bytes; vector g holds weights 16g …
 *   16g + 15 of the panel's eight rows, byte 4r + i those of row r at
 *   16g + i, 16g + 4 + i, 16g + 8 + i and 16g + 12 + i as codes (w+1) in
 *   bits 0–1, 2–3, 4–5, 6–7.  A digit plane of a vector is then eight rows'
 *   weights at four places, against which four activations broadcast to
 *   every row give each row's sum in its own lanes.
 *
 * Kernel levels, chosen once at first use from the CPU (cpuid):
 *   scalar (any machine, the reference), avx2, avx512 (AVX-512 F and BW),
 *   avx512vnni (and VNNI); BF_KERNEL=scalar|avx2|avx512|avx512vnni forces one
 *   (a level the CPU lacks falls back to the best it has). */
#ifndef BF_KERNELS_H
#define BF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "bf/dtype.h"

typedef struct bf_tmat_s {
    size_t rows, cols;         /* [out, in] */
    bf_dtype pack;             /* TQ2 or TQ1: which block layout */
    size_t kpad;               /* cols rounded up to whole blocks */
    size_t row_bytes;          /* bytes of one repacked row */
    uint8_t *blocks;           /* rows × row_bytes, 64-byte aligned */
    uint8_t *panels;           /* ⌈rows/8⌉ panels of kpad/16 · 32 bytes, 64-byte aligned */
    int32_t *code_sum;         /* [rows]: Σ codes (w+1) of each row over kpad,
                                  its padding included (1 each) */
    const float *scale;        /* [rows] or [1] (not owned) */
    int per_row;
} bf_tmat;

typedef enum { BF_KERNEL_SCALAR, BF_KERNEL_AVX2, BF_KERNEL_AVX512, BF_KERNEL_AVX512VNNI, BF_KERNEL_NLEVELS } bf_kernel_level;

bf_kernel_level bf_kernel_level_get(void);
const char *bf_kernel_level_name(bf_kernel_level l);
int bf_kernel_level_supported(bf_kernel_level l);
/* Forces a level (tests); returns -1 if the CPU lacks it. */
int bf_kernel_level_set(bf_kernel_level l);

/* An empty matrix (rows filled by bf_tmat_set_row), or one from unpacked
 * codes [rows, cols] in {-1,0,1}.  scale: [rows] or [1], not copied. */
int bf_tmat_alloc(bf_tmat *m, bf_dtype pack, size_t rows, size_t cols, const float *scale, int per_row);
void bf_tmat_set_row(bf_tmat *m, size_t r, const int8_t *codes);
int bf_tmat_from_codes(bf_tmat *m, bf_dtype pack, const int8_t *codes, size_t rows, size_t cols, const float *scale,
                       int per_row);
void bf_tmat_free(bf_tmat *m);

/* q [N, kpad] int8 (zero padded), inv_s[n] = 1/s, qsum[n] = Σ q: as bf_quant_rows_i8 makes them. */
/* acc[N, rows] = Σ_i q[n, i]·w[o, i], exactly. */
int bf_tmat_dot_i32(const bf_tmat *m, const int8_t *q, const int32_t *qsum, size_t N, int32_t *acc);
/* y[N, rows] (+)= scale·acc/s, over the pool's threads.  -1 only when the
 * threads' scratch memory cannot be had. */
int bf_tmat_forward(const bf_tmat *m, const int8_t *q, const float *inv_s, const int32_t *qsum, size_t N, float *y,
                    int accumulate);

#endif

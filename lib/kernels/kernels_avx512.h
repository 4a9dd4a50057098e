/* kernels_avx512.h — the AVX-512 kernels (kernels_avx512.c), private to
 * kernels.c and the tests.  Each exists twice: *_avx512 needs AVX-512F
 * and BW, *_avx512vnni also VNNI.  They compute what the scalar kernel does
 * (bf/kernels.h): Σ code·q over a row's blocks, code = w + 1, with q in the
 * pair layout below. */
#ifndef BF_KERNELS_AVX512_H
#define BF_KERNELS_AVX512_H

#include <stddef.h>
#include <stdint.h>

/* The test build compiles the same source against a portable implementation
 * of the intrinsics under other names (tests/unit/test_kernels_avx512.c). */
#ifdef BF_AVX512_EMULATED
#define BF_K512(name) bf_emu_##name
#else
#define BF_K512(name) bf_##name
#endif

/* The row kernels read their activations in pair layout: one 512-bit
 * vector holds a pair of blocks' codes (32 bytes each, B = 128 weights for
 * TQ2, 160 for TQ1), and the activations its digit plane s meets, plane s
 * of both blocks, are 64 consecutive bytes at 2B·pair + 64·s, one load.  A
 * row's lone last block keeps its natural order.  BF_K512(pair_acts) writes
 * that layout of q (natural order, nblk·B bytes) to out (as many). */
void BF_K512(pair_acts)(const int8_t *q, size_t B, size_t nblk, int8_t *out);

#define BF_K512_DECLARE(sfx)                                                                                      \
    int32_t BF_K512(row_dot_tq2_##sfx)(const uint8_t *blk, const int8_t *q, size_t nblk);                         \
    int32_t BF_K512(row_dot_tq1_##sfx)(const uint8_t *blk, const int8_t *q, size_t nblk);
BF_K512_DECLARE(avx512)
BF_K512_DECLARE(avx512vnni)
#undef BF_K512_DECLARE

#endif

/* kernels_avx512.c — ternary × int8 row products on 512-bit vectors.
 *
 * One 64-byte load holds two 32-byte blocks (bf/kernels.h), so each digit
 * plane of a pair of blocks is one vector of 64 codes.  Its activations are
 * two 32-byte pieces, B apart (B = 128 for TQ2, 160 for TQ1), which the
 * pair layout (kernels_avx512.h) puts side by side.  A step multiplies 64
 * codes (u8, 0..2) by 64 activations (s8):
 *   VNNI: vpdpbusd adds each four products straight into int32 lanes;
 *   BW:   vpmaddubsw gives int16 lanes of two products (|lane| ≤ 2·2·128 =
 *         512) which add in int16 for at most eight steps (≤ 4096), then
 *         widen to int32 by vpmaddwd with ones.
 * VNNI's TQ1 kernel multiplies the packed bytes themselves, not their
 * digits, and takes the digits' sum from two such sums (its comment).
 * Rows are only 32-byte aligned (row_bytes is a multiple of 32), so every
 * 64-byte load is an unaligned one.
 * The body is written once (kernels_avx512_body.h) and included for each. */
#if defined(__x86_64__) || defined(__i386__) || defined(BF_AVX512_EMULATED)

#include "kernels_avx512.h"

#ifdef BF_AVX512_EMULATED
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
/* SIMDe 0.7.4's alias of this one takes the masked form's four arguments */
#undef _mm512_madd_epi16
#define _mm512_madd_epi16 simde_mm512_madd_epi16
#define TARGET_BW
#define TARGET_VNNI
#else
#include <immintrin.h>
#define TARGET_BW __attribute__((target("avx2,avx512f,avx512bw")))
#define TARGET_VNNI __attribute__((target("avx2,avx512f,avx512bw,avx512vnni")))
#endif

#define INLINE static inline __attribute__((always_inline))

/* The pair layout (kernels_avx512.h), made once a product for the
 * activation rows the row kernels meet (kernels.c, run_job).  Before it,
 * each plane's 64 activations were two 32-byte loads joined by an insert;
 * with it, the VNNI row kernels went from 73-82
 * to 96-104 G weights/s (TQ2) and from 56-64 to 75-78 (TQ1), and the BW
 * ones from 59-65 to 79-81 and from 34-36 to 39-40 (bench/out/ternary gemv
 * 4096 4096 1 cached, three interleaved rounds, before TQ2's four sums). */
TARGET_BW void BF_K512(pair_acts)(const int8_t *q, size_t B, size_t nblk, int8_t *out)
{
    size_t b = 0;
    for (; b + 2 <= nblk; b += 2, q += 2 * B, out += 2 * B)
        for (size_t s = 0; s < B / 32; s++) {
            _mm256_storeu_si256((__m256i *)(out + 64 * s), _mm256_loadu_si256((const __m256i *)(q + 32 * s)));
            _mm256_storeu_si256((__m256i *)(out + 64 * s + 32), _mm256_loadu_si256((const __m256i *)(q + B + 32 * s)));
        }
    if (b < nblk)   /* the lone last block, as it is */
        for (size_t s = 0; s < B / 32; s++)
            _mm256_storeu_si256((__m256i *)(out + 32 * s), _mm256_loadu_si256((const __m256i *)(q + 32 * s)));
}

/* 64 activations for digit plane s of the block pair at q (pair layout) */
INLINE TARGET_BW __m512i pair_q(const int8_t *q, int s) { return _mm512_loadu_si512((const void *)(q + 64 * s)); }

/* 32 bytes in the lower half, zeros above: a lone last block's codes, and
 * its activations (zero codes add nothing whatever they meet, so those are
 * zeros too) */
INLINE TARGET_BW __m512i half_load(const void *p)
{
    return _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_loadu_si256((const __m256i *)p), 0);
}

/* TQ2's next digit plane: the low two bits of each byte, then the bytes
 * move down by two (a 16-bit shift: the bits crossing into the lower byte
 * land above its remaining codes, which the next mask clears) */
INLINE TARGET_BW __m512i tq2_plane(__m512i *w)
{
    __m512i c = _mm512_and_si512(*w, _mm512_set1_epi8(3));
    *w = _mm512_srli_epi16(*w, 2);
    return c;
}

/* TQ1's leading digit without multiplies (as in the AVX2 kernel): 1 from
 * byte 86 on, 2 from 171 on; the rest of the number is 3·byte mod 256. */
INLINE TARGET_BW __m512i tq1_digit(__m512i *v)
{
    const __m512i one = _mm512_set1_epi8(1);
    __m512i d = _mm512_add_epi8(_mm512_min_epu8(_mm512_subs_epu8(*v, _mm512_set1_epi8(85)), one),
                                _mm512_min_epu8(_mm512_subs_epu8(*v, _mm512_set1_epi8((char)170)), one));
    *v = _mm512_add_epi8(*v, _mm512_add_epi8(*v, *v));
    return d;
}

INLINE TARGET_BW int32_t hsum512(__m512i v)
{
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

#define VNNI 0
#include "kernels_avx512_body.h"
#undef VNNI
#define VNNI 1
#include "kernels_avx512_body.h"
#undef VNNI

#endif

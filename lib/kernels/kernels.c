/* kernels.c — ternary × int8 products: layouts, dispatch, scalar and AVX2
 * kernels (AVX-512: kernels_avx512.c; bf/kernels.h has layouts and contract). */
#include "bf/kernels.h"
#include "bf/thread.h"
#include "bf/util.h"
#include "kernels_avx512.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BF_X86 1
#endif

#define TQ2_BLOCK 128
#define TQ1_BLOCK 160

/* ------------------------------------------------------------- dispatch */

static int level_ready;
static bf_kernel_level level;

int bf_kernel_level_supported(bf_kernel_level l)
{
    switch (l) {
    case BF_KERNEL_SCALAR: return 1;
#ifdef BF_X86
    case BF_KERNEL_AVX2: return __builtin_cpu_supports("avx2");
    case BF_KERNEL_AVX512:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    case BF_KERNEL_AVX512VNNI: return bf_kernel_level_supported(BF_KERNEL_AVX512) && __builtin_cpu_supports("avx512vnni");
#endif
    default: return 0;
    }
}

const char *bf_kernel_level_name(bf_kernel_level l)
{
    static const char *const names[] = {"scalar", "avx2", "avx512", "avx512vnni"};
    return l < BF_KERNEL_NLEVELS ? names[l] : "?";
}

int bf_kernel_level_set(bf_kernel_level l)
{
    if (l >= BF_KERNEL_NLEVELS || !bf_kernel_level_supported(l)) return -1;
    level = l;
    level_ready = 1;
    return 0;
}

bf_kernel_level bf_kernel_level_get(void)
{
    if (level_ready) return level;
    level = BF_KERNEL_SCALAR;
    for (int l = BF_KERNEL_NLEVELS - 1; l > 0; l--)
        if (bf_kernel_level_supported((bf_kernel_level)l)) { level = (bf_kernel_level)l; break; }
    const char *env = getenv("BF_KERNEL");
    if (env)
        for (int l = 0; l < BF_KERNEL_NLEVELS; l++)
            if (strcmp(env, bf_kernel_level_name((bf_kernel_level)l)) == 0 && bf_kernel_level_supported((bf_kernel_level)l))
                level = (bf_kernel_level)l;
    level_ready = 1;
    return level;
}

/* --------------------------------------------------------------- layouts */

static size_t block_of(bf_dtype pack) { return pack == BF_TQ1 ? TQ1_BLOCK : TQ2_BLOCK; }

/* One block of 32 bytes from the weights w[0 .. B) of a whole block (simple
 * loops the compiler vectorizes), or from a row's last, padded block. */
static void pack_block_tq2(const int8_t *w, uint8_t *out)
{
    for (size_t j = 0; j < 32; j++)
        out[j] = (uint8_t)((w[j] + 1) | (w[j + 32] + 1) << 2 | (w[j + 64] + 1) << 4 | (w[j + 96] + 1) << 6);
}

static void pack_block_tq1(const int8_t *w, uint8_t *out)
{
    for (size_t j = 0; j < 32; j++) {
        unsigned v = (unsigned)((w[j] + 1) * 81 + (w[j + 32] + 1) * 27 + (w[j + 64] + 1) * 9 + (w[j + 96] + 1) * 3 +
                                (w[j + 128] + 1));
        out[j] = (uint8_t)((256 * v + 242) / 243);   /* ⌈256·v/243⌉ */
    }
}

static void repack_row(bf_dtype pack, const int8_t *w, size_t cols, size_t kpad, uint8_t *out)
{
    void (*pack_block)(const int8_t *, uint8_t *) = pack == BF_TQ2 ? pack_block_tq2 : pack_block_tq1;
    size_t B = block_of(pack), b = 0;
    for (; (b + 1) * B <= cols; b++, out += 32) pack_block(w + b * B, out);
    if (b * B == kpad) return;
    int8_t last[TQ1_BLOCK];   /* the rest of the row, zero weights after its end */
    for (size_t k = 0; k < B; k++) last[k] = b * B + k < cols ? w[b * B + k] : 0;
    pack_block(last, out);
}

int bf_tmat_alloc(bf_tmat *m, bf_dtype pack, size_t rows, size_t cols, const float *scale, int per_row)
{
    memset(m, 0, sizeof *m);
    if (pack != BF_TQ2 && pack != BF_TQ1) return bf_err("kernel layout needs TQ2 or TQ1");
    size_t B = block_of(pack);
    m->rows = rows;
    m->cols = cols;
    m->pack = pack;
    m->kpad = (cols + B - 1) / B * B;
    if (!m->kpad) m->kpad = B;
    m->row_bytes = m->kpad / B * 32;
    m->scale = scale;
    m->per_row = per_row;
    m->blocks = bf_aligned_alloc(rows * m->row_bytes + 64);
    m->code_sum = calloc(rows ? rows : 1, sizeof *m->code_sum);
    if (!m->blocks || !m->code_sum) {
        bf_tmat_free(m);
        return -1;
    }
    return 0;
}

void bf_tmat_set_row(bf_tmat *m, size_t r, const int8_t *codes)
{
    repack_row(m->pack, codes, m->cols, m->kpad, m->blocks + r * m->row_bytes);
    int32_t sum = (int32_t)(m->kpad - m->cols);   /* the padding's zero weights */
    for (size_t k = 0; k < m->cols; k++) sum += codes[k] + 1;
    m->code_sum[r] = sum;
}

int bf_tmat_from_codes(bf_tmat *m, bf_dtype pack, const int8_t *codes, size_t rows, size_t cols, const float *scale,
                       int per_row)
{
    if (bf_tmat_alloc(m, pack, rows, cols, scale, per_row)) return -1;
    for (size_t r = 0; r < rows; r++) bf_tmat_set_row(m, r, codes + r * cols);
    return 0;
}

void bf_tmat_free(bf_tmat *m)
{
    bf_aligned_free(m->blocks);
    free(m->code_sum);
    memset(m, 0, sizeof *m);
}

/* Scratch memory reused across calls (per thread), so that a model's many
 * products do not each map, fault in and zero fresh pages. */
static void *scratch(void **buf, size_t *cap, size_t n)
{
    if (n > *cap) {
        bf_aligned_free(*buf);
        *cap = 0;
        *buf = bf_aligned_alloc(n);
        if (!*buf) return NULL;
        *cap = n;
    }
    return *buf;
}

/* ---------------------------------------------------------------- scalar */

/* Σ code·q over one row's blocks; the caller subtracts Σq (code = w + 1).
 * |Σ| ≤ 2·128·kpad, an int32 for any kpad below 2^22. */
static int32_t row_dot_scalar(bf_dtype pack, const uint8_t *blk, const int8_t *q, size_t kpad)
{
    int32_t acc = 0;
    size_t B = block_of(pack);
    for (size_t b = 0; b < kpad / B; b++, blk += 32, q += B)
        for (size_t j = 0; j < 32; j++) {
            unsigned v = blk[j];
            if (pack == BF_TQ2) {
                for (unsigned s = 0; s < 4; s++) acc += (int32_t)((v >> (2 * s)) & 3u) * q[j + 32 * s];
            } else {
                for (unsigned s = 0; s < 5; s++) {
                    v *= 3;
                    acc += (int32_t)(v >> 8) * q[j + 32 * s];
                    v &= 255;
                }
            }
        }
    return acc;
}

/* ------------------------------------------------------------------ AVX2 */

#ifdef BF_X86
__attribute__((target("avx2"))) static inline int32_t hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* The lane sums of eight vectors at once: out[t] = Σ lanes of acc[t].  Two
 * rounds of horizontal adds leave each 128-bit half's sums in order; the
 * halves are then added.  Integer adds: exact in any order. */
__attribute__((target("avx2"))) static inline __m256i hsum8_epi32(const __m256i acc[8])
{
    __m256i s01 = _mm256_hadd_epi32(acc[0], acc[1]), s23 = _mm256_hadd_epi32(acc[2], acc[3]);
    __m256i s45 = _mm256_hadd_epi32(acc[4], acc[5]), s67 = _mm256_hadd_epi32(acc[6], acc[7]);
    __m256i lo4 = _mm256_hadd_epi32(s01, s23), hi4 = _mm256_hadd_epi32(s45, s67);
    __m256i a = _mm256_permute2x128_si256(lo4, hi4, 0x20), b = _mm256_permute2x128_si256(lo4, hi4, 0x31);
    return _mm256_add_epi32(a, b);
}

/* TQ2: per block, 4 vectors of 32 codes in {0,1,2} against 32 int8 each
 * (plane s in bits 2s and 2s+1 of each byte).  Planes 0 and 2 are masked
 * with 3 after shifts of 0 and 4; planes 1 and 3 are masked in place with
 * 12, giving 4·code, and summed apart (p4): one shift a block where three
 * shifts had brought every plane down to bits 0-1, eleven operations a
 * block for fifteen.  Lanes: maddubs(code, q) ∈ [-512, 508], maddubs(4·code,
 * q) ∈ [-2048, 2032]; each int16 sum takes four blocks (two maddubs each),
 * at most 16384 in size, before it is widened.  p4's int32 totals are 4·Σ
 * code·q over planes 1 and 3, at most 512·kpad < 2^31 for kpad below 2^22
 * (the scalar kernel's bound), and each lane a multiple of 4: the shift by
 * 2 is exact.  Measured in cache on one AVX2 core (41 rounds of the two in
 * turn, rows of 1024 and 4096): 68.8-87.6 → 72.3-93.5 G weights/s. */
__attribute__((target("avx2"))) static inline void tq2_block(__m256i *p1, __m256i *p4, const uint8_t *blk, const int8_t *q)
{
    const __m256i m3 = _mm256_set1_epi8(3), m12 = _mm256_set1_epi8(12);
    __m256i w = _mm256_load_si256((const __m256i *)blk), h = _mm256_srli_epi16(w, 4);
    *p1 = _mm256_add_epi16(*p1, _mm256_maddubs_epi16(_mm256_and_si256(w, m3), _mm256_loadu_si256((const __m256i *)q)));
    *p4 = _mm256_add_epi16(*p4, _mm256_maddubs_epi16(_mm256_and_si256(w, m12), _mm256_loadu_si256((const __m256i *)(q + 32))));
    *p1 = _mm256_add_epi16(*p1, _mm256_maddubs_epi16(_mm256_and_si256(h, m3), _mm256_loadu_si256((const __m256i *)(q + 64))));
    *p4 = _mm256_add_epi16(*p4, _mm256_maddubs_epi16(_mm256_and_si256(h, m12), _mm256_loadu_si256((const __m256i *)(q + 96))));
}

__attribute__((target("avx2"))) static int32_t row_dot_tq2_avx2(const uint8_t *blk, const int8_t *q, size_t nblk)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a1 = _mm256_setzero_si256(), a4 = a1;
    size_t b = 0;
    for (; b + 8 <= nblk; b += 8, blk += 256, q += 1024) {
        __m256i p0 = _mm256_setzero_si256(), p1 = p0, p2 = p0, p3 = p0;   /* two chains of four blocks */
        for (int u = 0; u < 8; u += 2) {
            tq2_block(&p0, &p1, blk + 32 * u, q + 128 * u);
            tq2_block(&p2, &p3, blk + 32 * (u + 1), q + 128 * (u + 1));
        }
        a1 = _mm256_add_epi32(a1, _mm256_add_epi32(_mm256_madd_epi16(p0, ones), _mm256_madd_epi16(p2, ones)));
        a4 = _mm256_add_epi32(a4, _mm256_add_epi32(_mm256_madd_epi16(p1, ones), _mm256_madd_epi16(p3, ones)));
    }
    for (; b < nblk; b++, blk += 32, q += 128) {
        __m256i p0 = _mm256_setzero_si256(), p1 = p0;
        tq2_block(&p0, &p1, blk, q);
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(p0, ones));
        a4 = _mm256_add_epi32(a4, _mm256_madd_epi16(p1, ones));
    }
    return hsum_epi32(_mm256_add_epi32(a1, _mm256_srai_epi32(a4, 2)));
}

/* TQ1 digits without multiplies, 32 bytes at once: the leading digit of
 * q = ⌈256·v/243⌉ is ⌊3q/256⌋, which is 1 from q ≥ 86 and 2 from q ≥ 171,
 * i.e. min(q ⊖ 85, 1) + min(q ⊖ 170, 1) with ⊖ saturating; the rest is
 * 3q mod 256, three byte adds. */
__attribute__((target("avx2"))) static inline __m256i tq1_digit(__m256i *v)
{
    const __m256i t1 = _mm256_set1_epi8(85), t2 = _mm256_set1_epi8((char)170), one = _mm256_set1_epi8(1);
    __m256i d = _mm256_add_epi8(_mm256_min_epu8(_mm256_subs_epu8(*v, t1), one), _mm256_min_epu8(_mm256_subs_epu8(*v, t2), one));
    *v = _mm256_add_epi8(*v, _mm256_add_epi8(*v, *v));
    return d;
}

/* The TQ1 row kernel meets its activations biased to unsigned bytes,
 * u = q + 128 (q ^ 0x80, laid out by run_job), so that maddubs can take
 * them with signed digits, and decodes with signed compares: two
 * compares and an add a digit where tq1_digit takes five operations.
 *   - The packed byte biased the same way, v' = v - 128, still evolves by
 *     3v' mod 256 (3·128 ≡ 128), and the digit is 1 from v ≥ 86 (v' > -43)
 *     and 2 from v ≥ 171 (v' > 42): the two compares' masks (-1 where true)
 *     add to -d.
 *   - maddubs(u, -d): |lane| ≤ 2·255·2 = 1020; five planes a block, two
 *     blocks a chain, ≤ 10200 in int16 before widening.
 *   - Σ d·q = Σ d·(u - 128) = -Σ u·(-d) - 128·Σ d, with Σ d the row's
 *     code sum (bf_tmat.code_sum); the caller applies it.  Every term of
 *     Σ u·(-d) is ≤ 0 and ≥ -510, so the lanes' int32 sums hold for any kpad
 *     below 2^22, the scalar kernel's bound.
 * gcc 12 rewrites a compare against a constant it can see (v' > -43 as
 * v' ≥ -42, a min and an equality), so the thresholds are hidden from it by
 * an empty asm; a second one keeps each plane's add in its place, where gcc
 * had held a block's five products at once and spilled them.  The hot loop
 * at -O2 (objdump): per plane two vpcmpgtb, three vpaddb, a vpmaddubsw and
 * a vpaddw, the activations loaded beside them; nothing on the stack.
 * bench/out/ternary gemv 4096 4096 1 cached, at AVX2: 44-48 G weights/s,
 * against 36 with tq1_digit. */
#define TQ1U_PLANE(p, v, u, t1, t2)                                                                \
    do {                                                                                           \
        __m256i nd_ = _mm256_add_epi8(_mm256_cmpgt_epi8(v, t1), _mm256_cmpgt_epi8(v, t2));         \
        v = _mm256_add_epi8(v, _mm256_add_epi8(v, v));                                             \
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(u)), nd_)); \
        __asm__("" : "+x"(p));                                                                     \
    } while (0)

__attribute__((target("avx2"))) static inline __m256i tq1u_block(__m256i p, const uint8_t *blk, const uint8_t *u,
                                                                 __m256i t1, __m256i t2)
{
    __m256i v = _mm256_xor_si256(_mm256_load_si256((const __m256i *)blk), _mm256_set1_epi8((char)0x80));
    TQ1U_PLANE(p, v, u, t1, t2);
    TQ1U_PLANE(p, v, u + 32, t1, t2);
    TQ1U_PLANE(p, v, u + 64, t1, t2);
    TQ1U_PLANE(p, v, u + 96, t1, t2);
    TQ1U_PLANE(p, v, u + 128, t1, t2);
    return p;
}

/* Σ u·(-code) over a row's blocks (see above). */
__attribute__((target("avx2"))) static int32_t row_dot_tq1u_avx2(const uint8_t *blk, const uint8_t *u, size_t nblk)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i t1 = _mm256_set1_epi8(-43), t2 = _mm256_set1_epi8(42);
    __asm__("" : "+x"(t1), "+x"(t2));
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
    size_t b = 0;
    for (; b + 4 <= nblk; b += 4, blk += 128, u += 640) {
        __m256i p0 = tq1u_block(_mm256_setzero_si256(), blk, u, t1, t2);
        __m256i p1 = tq1u_block(_mm256_setzero_si256(), blk + 32, u + 160, t1, t2);
        p0 = tq1u_block(p0, blk + 64, u + 320, t1, t2);
        p1 = tq1u_block(p1, blk + 96, u + 480, t1, t2);
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, ones));
    }
    for (; b < nblk; b++, blk += 32, u += 160)
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(tq1u_block(_mm256_setzero_si256(), blk, u, t1, t2), ones));
    return hsum_epi32(_mm256_add_epi32(acc0, acc1));
}

/* The biased layout of one activation row (kpad bytes): u = q ^ 0x80. */
__attribute__((target("avx2"))) static void bias_acts_avx2(const int8_t *q, size_t kpad, uint8_t *u)
{
    const __m256i x80 = _mm256_set1_epi8((char)0x80);
    size_t k = 0;
    for (; k + 32 <= kpad; k += 32)
        _mm256_storeu_si256((__m256i *)(u + k), _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(q + k)), x80));
    for (; k < kpad; k++) u[k] = (uint8_t)q[k] ^ 0x80u;
}
#endif

/* For batches: a tile of rows is unpacked once into natural order (code =
 * w+1, one byte each), then reused by every activation row of the batch. */
static void unpack_row_scalar(const bf_tmat *m, const uint8_t *blk, uint8_t *codes)
{
    size_t B = block_of(m->pack);
    for (size_t b = 0; b < m->kpad / B; b++, blk += 32, codes += B)
        for (size_t j = 0; j < 32; j++) {
            unsigned v = blk[j];
            if (m->pack == BF_TQ2) {
                for (unsigned s = 0; s < 4; s++) codes[j + 32 * s] = (uint8_t)((v >> (2 * s)) & 3u);
            } else {
                for (unsigned s = 0; s < 5; s++) {
                    v *= 3;
                    codes[j + 32 * s] = (uint8_t)(v >> 8);
                    v &= 255;
                }
            }
        }
}

static int32_t dot_u8_scalar(const uint8_t *c, const int8_t *q, size_t k)
{
    int32_t acc = 0;
    for (size_t i = 0; i < k; i++) acc += (int32_t)c[i] * q[i];
    return acc;
}

#ifdef BF_X86
/* The batch micro-kernels: two weight rows (packed blocks a and b) against
 * four activation rows (q, stride ldq), len weights of each from where the
 * pointers start, out[4·r + n] = Σ code·q.  Each 32-byte packed vector is
 * decoded once, in registers, and used against the four activation rows,
 * whose 32-byte chunks the maddubs read from memory (the four rows' len
 * bytes stay in L1 while the caller runs every weight row of its tile past
 * them).  Per 32 codes of a row: 8 maddubs into
 * eight int16 accumulators, which take up to 64 steps (GEMM_WIDEN_STEPS:
 * 16 TQ2 blocks, 12 TQ1 ones) before they are widened into int32 — exact
 * for any input, the extreme case included.  Registers: 8 accumulators, 2
 * packed and 2 decoded vectors, one activation chunk, the constants; the
 * int32 totals, touched once a round (GEMM2X4_ROUND_END), live in memory.
 * What gcc 12 makes of them at -O2 (objdump): without the empty asm in
 * GEMM2X4_STEP it reassociated the int16 adds across the digit
 * planes, held all their products at once and spilled eight; with it, the
 * TQ2 hot loop is 32 maddubs with memory operands, the shifts and masks and
 * the adds, and touches the stack only when widening; the TQ1 one reloads
 * its two decode constants from the stack (L1).  -O3 measured no faster. */

/* One step: decoded codes wa, wb (two rows, 32 each) against the four
 * activation rows' 32 bytes at offset `at`, into p0-p3 (row a) and p4-p7. */
#define GEMM2X4_STEP(wa, wb, at)                                                        \
    do {                                                                                \
        __m256i x_ = _mm256_loadu_si256((const __m256i *)(q + (at)));                   \
        p0 = _mm256_add_epi16(p0, _mm256_maddubs_epi16(wa, x_));                        \
        p4 = _mm256_add_epi16(p4, _mm256_maddubs_epi16(wb, x_));                        \
        x_ = _mm256_loadu_si256((const __m256i *)(q1 + (at)));                          \
        p1 = _mm256_add_epi16(p1, _mm256_maddubs_epi16(wa, x_));                        \
        p5 = _mm256_add_epi16(p5, _mm256_maddubs_epi16(wb, x_));                        \
        x_ = _mm256_loadu_si256((const __m256i *)(q2 + (at)));                          \
        p2 = _mm256_add_epi16(p2, _mm256_maddubs_epi16(wa, x_));                        \
        p6 = _mm256_add_epi16(p6, _mm256_maddubs_epi16(wb, x_));                        \
        x_ = _mm256_loadu_si256((const __m256i *)(q3 + (at)));                          \
        p3 = _mm256_add_epi16(p3, _mm256_maddubs_epi16(wa, x_));                        \
        p7 = _mm256_add_epi16(p7, _mm256_maddubs_epi16(wb, x_));                        \
        /* the sums are due here: without this the compiler reassociates the  \
         * adds across steps, holds every step's products at once and spills */ \
        __asm__("" : "+x"(p0), "+x"(p1), "+x"(p2), "+x"(p3), "+x"(p4), "+x"(p5), "+x"(p6), "+x"(p7)); \
    } while (0)

/* The end of a round of steps: the eight int16 sums widened into the int32
 * totals (in memory), and after the last round the totals' eight sums
 * returned.  A row that takes one round (up to 16 TQ2 blocks, 2048 weights)
 * returns its sums straight from registers: no totals to clear, store and
 * reload.  Measured in cache on one AVX2 core, 41 rounds of the two in
 * turn, rows of 128 weights: 48.6 → 65.7 G weights/s (median). */
#define GEMM2X4_ROUND_END(first, last)                                                  \
    do {                                                                                \
        __m256i w_[8] = {_mm256_madd_epi16(p0, ones), _mm256_madd_epi16(p1, ones),      \
                         _mm256_madd_epi16(p2, ones), _mm256_madd_epi16(p3, ones),      \
                         _mm256_madd_epi16(p4, ones), _mm256_madd_epi16(p5, ones),      \
                         _mm256_madd_epi16(p6, ones), _mm256_madd_epi16(p7, ones)};     \
        if ((first) && (last)) return hsum8_epi32(w_);                                  \
        for (int t_ = 0; t_ < 8; t_++) acc[t_] = (first) ? w_[t_] : _mm256_add_epi32(acc[t_], w_[t_]); \
        if (last) return hsum8_epi32(acc);                                              \
    } while (0)

#define GEMM_R 2          /* weight rows a micro-kernel */
#define GEMM_N 4          /* activation rows a micro-kernel */
/* Steps (32 codes of a row against an activation row: one maddubs) summed
 * in int16 before widening.  A maddubs of codes c ∈ {0, 1, 2} and int8 q
 * gives lanes c·q + c'·q' ∈ [-512, 508], so 64 of them lie in
 * [-32768, 32512]: exact in int16 for any input, the extreme case (every
 * q = -128, every code 2) landing on INT16_MIN itself.  Widening (eight
 * madd and eight adds into the totals in memory) every 4 blocks (16 or 20
 * steps) cost about a twentieth of the micro-kernels' operations.  Measured
 * with everything in cache (bench/out/ternary gemm 256 4096 64 1, five
 * rounds of the two builds in turn): TQ2 87-115 → 104-124 G weights/s, TQ1
 * 74-106 → 85-117. */
#define GEMM_WIDEN_STEPS 64
#define GEMM_WIDEN_TQ2 (GEMM_WIDEN_STEPS / 4)   /* blocks: four steps each */
#define GEMM_WIDEN_TQ1 (GEMM_WIDEN_STEPS / 5)   /* five steps each: 12 blocks */

/* One packed block of rows a and b (vectors va, vb) through STEP, a digit
 * plane at a time against the activations from `at` on: TQ2's four planes
 * by shift and mask (`mask` = 3 in every byte), TQ1's five by tq1_digit.
 * Shared by the maddubs kernels (GEMM2X4_STEP) and the VNNI ones. */
#define TQ2_PLANE(v, sh) _mm256_and_si256(_mm256_srli_epi16(v, sh), mask)
#define GEMM2X4_TQ2_BLOCK(STEP, va, vb, at)                                             \
    do {                                                                                \
        STEP(_mm256_and_si256(va, mask), _mm256_and_si256(vb, mask), at);               \
        STEP(TQ2_PLANE(va, 2), TQ2_PLANE(vb, 2), (at) + 32);                            \
        STEP(TQ2_PLANE(va, 4), TQ2_PLANE(vb, 4), (at) + 64);                            \
        STEP(TQ2_PLANE(va, 6), TQ2_PLANE(vb, 6), (at) + 96);                            \
    } while (0)

#define GEMM2X4_TQ1_DIGIT(STEP, va, vb, at)                                             \
    do {                                                                                \
        __m256i wa_ = tq1_digit(&(va)), wb_ = tq1_digit(&(vb));                         \
        STEP(wa_, wb_, at);                                                             \
    } while (0)

#define GEMM2X4_TQ1_BLOCK(STEP, va, vb, at)                                             \
    do {                                                                                \
        GEMM2X4_TQ1_DIGIT(STEP, va, vb, at);                                            \
        GEMM2X4_TQ1_DIGIT(STEP, va, vb, (at) + 32);                                     \
        GEMM2X4_TQ1_DIGIT(STEP, va, vb, (at) + 64);                                     \
        GEMM2X4_TQ1_DIGIT(STEP, va, vb, (at) + 96);                                     \
        GEMM2X4_TQ1_DIGIT(STEP, va, vb, (at) + 128);                                    \
    } while (0)

__attribute__((target("avx2"))) static __m256i gemm2x4_tq2_avx2(const uint8_t *a, const uint8_t *b, const int8_t *q, size_t ldq, size_t len)
{
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i acc[8];
    size_t nblk = len / TQ2_BLOCK;
    const int8_t *q1 = q + ldq, *q2 = q + 2 * ldq, *q3 = q + 3 * ldq;
    for (size_t b0 = 0;; b0 += GEMM_WIDEN_TQ2) {
        __m256i p0 = _mm256_setzero_si256(), p1 = p0, p2 = p0, p3 = p0, p4 = p0, p5 = p0, p6 = p0, p7 = p0;
        size_t b1 = b0 + GEMM_WIDEN_TQ2 < nblk ? b0 + GEMM_WIDEN_TQ2 : nblk;
        for (size_t k = b0; k < b1; k++) {
            __m256i va = _mm256_load_si256((const __m256i *)(a + 32 * k)), vb = _mm256_load_si256((const __m256i *)(b + 32 * k));
            GEMM2X4_TQ2_BLOCK(GEMM2X4_STEP, va, vb, k * TQ2_BLOCK);
        }
        GEMM2X4_ROUND_END(b0 == 0, b1 == nblk);
    }
}

__attribute__((target("avx2"))) static __m256i gemm2x4_tq1_avx2(const uint8_t *a, const uint8_t *b, const int8_t *q, size_t ldq, size_t len)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[8];
    size_t nblk = len / TQ1_BLOCK;
    const int8_t *q1 = q + ldq, *q2 = q + 2 * ldq, *q3 = q + 3 * ldq;
    for (size_t b0 = 0;; b0 += GEMM_WIDEN_TQ1) {
        __m256i p0 = _mm256_setzero_si256(), p1 = p0, p2 = p0, p3 = p0, p4 = p0, p5 = p0, p6 = p0, p7 = p0;
        size_t b1 = b0 + GEMM_WIDEN_TQ1 < nblk ? b0 + GEMM_WIDEN_TQ1 : nblk;
        for (size_t k = b0; k < b1; k++) {
            __m256i va = _mm256_load_si256((const __m256i *)(a + 32 * k)), vb = _mm256_load_si256((const __m256i *)(b + 32 * k));
            GEMM2X4_TQ1_BLOCK(GEMM2X4_STEP, va, vb, k * TQ1_BLOCK);
        }
        GEMM2X4_ROUND_END(b0 == 0, b1 == nblk);
    }
}

/* The same 2×4 block on codes already unpacked to one byte each (ca, cb:
 * kpad bytes a row): TQ1 batches unpack a tile of rows once (its decode
 * costs seven operations a 32-code plane a row, which every group of four
 * activation rows would otherwise pay again) and run this on it.  Lanes of
 * the int16 sums take GEMM_WIDEN_STEPS steps before widening. */
__attribute__((target("avx2"))) static __m256i gemm2x4_u8_avx2(const uint8_t *ca, const uint8_t *cb, const int8_t *q, size_t ldq, size_t len)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[8];
    const int8_t *q1 = q + ldq, *q2 = q + 2 * ldq, *q3 = q + 3 * ldq;
    for (size_t i0 = 0;; i0 += GEMM_WIDEN_STEPS * 32) {
        __m256i p0 = _mm256_setzero_si256(), p1 = p0, p2 = p0, p3 = p0, p4 = p0, p5 = p0, p6 = p0, p7 = p0;
        size_t i1 = i0 + GEMM_WIDEN_STEPS * 32 < len ? i0 + GEMM_WIDEN_STEPS * 32 : len;
        for (size_t at = i0; at < i1; at += 32) {
            __m256i wa = _mm256_load_si256((const __m256i *)(ca + at)), wb = _mm256_load_si256((const __m256i *)(cb + at));
            GEMM2X4_STEP(wa, wb, at);
        }
        GEMM2X4_ROUND_END(i0 == 0, i1 == len);
    }
}

/* The same 2×4 blocks with AVX-512 VNNI on 256-bit vectors (EVEX, which
 * VNNI CPUs pair with VL): vpdpbusd adds each four code·q products straight
 * into int32 lanes, where maddubs needs an int16 add and a widening every
 * few blocks.  One instruction a product group instead of two, no
 * widening, and |total| ≤ 2·128·kpad: exact for any input. */
#define TARGET_VNNI256 __attribute__((target("avx2,avx512f,avx512vl,avx512vnni")))

#define GEMM2X4_DP(wa, wb, at)                                                          \
    do {                                                                                \
        __m256i x_ = _mm256_loadu_si256((const __m256i *)(q + (at)));                   \
        acc[0] = _mm256_dpbusd_epi32(acc[0], wa, x_);                                   \
        acc[4] = _mm256_dpbusd_epi32(acc[4], wb, x_);                                   \
        x_ = _mm256_loadu_si256((const __m256i *)(q1 + (at)));                          \
        acc[1] = _mm256_dpbusd_epi32(acc[1], wa, x_);                                   \
        acc[5] = _mm256_dpbusd_epi32(acc[5], wb, x_);                                   \
        x_ = _mm256_loadu_si256((const __m256i *)(q2 + (at)));                          \
        acc[2] = _mm256_dpbusd_epi32(acc[2], wa, x_);                                   \
        acc[6] = _mm256_dpbusd_epi32(acc[6], wb, x_);                                   \
        x_ = _mm256_loadu_si256((const __m256i *)(q3 + (at)));                          \
        acc[3] = _mm256_dpbusd_epi32(acc[3], wa, x_);                                   \
        acc[7] = _mm256_dpbusd_epi32(acc[7], wb, x_);                                   \
    } while (0)

TARGET_VNNI256 static __m256i gemm2x4_tq2_vnni256(const uint8_t *a, const uint8_t *b, const int8_t *q, size_t ldq, size_t len)
{
    const __m256i mask = _mm256_set1_epi8(3);
    __m256i acc[8];
    for (int t = 0; t < 8; t++) acc[t] = _mm256_setzero_si256();
    const int8_t *q1 = q + ldq, *q2 = q + 2 * ldq, *q3 = q + 3 * ldq;
    for (size_t k = 0, nblk = len / TQ2_BLOCK; k < nblk; k++) {
        __m256i va = _mm256_load_si256((const __m256i *)(a + 32 * k)), vb = _mm256_load_si256((const __m256i *)(b + 32 * k));
        GEMM2X4_TQ2_BLOCK(GEMM2X4_DP, va, vb, k * TQ2_BLOCK);
    }
    return hsum8_epi32(acc);
}

TARGET_VNNI256 static __m256i gemm2x4_tq1_vnni256(const uint8_t *a, const uint8_t *b, const int8_t *q, size_t ldq, size_t len)
{
    __m256i acc[8];
    for (int t = 0; t < 8; t++) acc[t] = _mm256_setzero_si256();
    const int8_t *q1 = q + ldq, *q2 = q + 2 * ldq, *q3 = q + 3 * ldq;
    for (size_t k = 0, nblk = len / TQ1_BLOCK; k < nblk; k++) {
        __m256i va = _mm256_load_si256((const __m256i *)(a + 32 * k)), vb = _mm256_load_si256((const __m256i *)(b + 32 * k));
        GEMM2X4_TQ1_BLOCK(GEMM2X4_DP, va, vb, k * TQ1_BLOCK);
    }
    return hsum8_epi32(acc);
}

TARGET_VNNI256 static __m256i gemm2x4_u8_vnni256(const uint8_t *ca, const uint8_t *cb, const int8_t *q, size_t ldq, size_t len)
{
    __m256i acc[8];
    for (int t = 0; t < 8; t++) acc[t] = _mm256_setzero_si256();
    const int8_t *q1 = q + ldq, *q2 = q + 2 * ldq, *q3 = q + 3 * ldq;
    for (size_t at = 0; at < len; at += 32)
        GEMM2X4_DP(_mm256_load_si256((const __m256i *)(ca + at)), _mm256_load_si256((const __m256i *)(cb + at)), at);
    return hsum8_epi32(acc);
}

/* A TQ1 row's codes, one byte each in natural order (code = w + 1). */
__attribute__((target("avx2"))) static void unpack_tq1_avx2(const uint8_t *blk, size_t nblk, uint8_t *codes)
{
    for (size_t b = 0; b < nblk; b++, blk += 32, codes += TQ1_BLOCK) {
        __m256i v = _mm256_load_si256((const __m256i *)blk);
        for (int s = 0; s < 5; s++) _mm256_store_si256((__m256i *)(codes + 32 * s), tq1_digit(&v));
    }
}
#endif


typedef struct {
    const bf_tmat *m;
    const int8_t *q;
    const void *qlay;      /* activation rows [nlay, N), the ones the row */
    size_t nlay;           /* kernels meet, in their level's layout (run_job) */
    const int32_t *qsum;
    const float *inv_s;
    size_t N;
    int32_t *acc;          /* dot_i32 output, or NULL */
    float *y;
    int accumulate;
    bf_kernel_level lv;
    int failed;            /* a thread could not get its scratch memory */
} fwd_job;

/* Σ code·q of weight row o against activation row n: the level's kernel.
 * Above the scalar level it meets only the rows [nlay, N), which run_job
 * laid out for it. */
static int32_t row_dot(const fwd_job *j, size_t o, size_t n)
{
    const bf_tmat *m = j->m;
    const uint8_t *blk = m->blocks + o * m->row_bytes;
#ifdef BF_X86
    size_t nblk = m->kpad / block_of(m->pack);
    int tq2 = m->pack == BF_TQ2;
    const void *lay = j->qlay ? (const int8_t *)j->qlay + (n - j->nlay) * m->kpad : NULL;
    switch (j->lv) {
    case BF_KERNEL_AVX512VNNI:
        return tq2 ? bf_row_dot_tq2_avx512vnni(blk, lay, nblk) : bf_row_dot_tq1_avx512vnni(blk, lay, nblk);
    case BF_KERNEL_AVX512: return tq2 ? bf_row_dot_tq2_avx512(blk, lay, nblk) : bf_row_dot_tq1_avx512(blk, lay, nblk);
    case BF_KERNEL_AVX2:
        if (tq2) return row_dot_tq2_avx2(blk, j->q + n * m->kpad, nblk);
        return -row_dot_tq1u_avx2(blk, lay, nblk) - 128 * m->code_sum[o];
    default: break;
    }
#endif
    return row_dot_scalar(m->pack, blk, j->q + n * m->kpad, m->kpad);
}

#define UNPACK_MIN_N 4   /* from this batch size on, rows are unpacked once */
#define TILE 8           /* rows unpacked together: 8·kpad bytes stay in cache */
#define EMIT_RUN 64      /* a matrix-vector product's outputs emitted together */

/* The outputs o0 .. o0 + len - 1 of activation row n from their sums d[t]
 * (qsum taken off): the int32 sums themselves (dot_i32), or
 * (scale·acc)/s, the grouping of the float forward (q/s)·(scale·code).
 * The branches are taken once a run and the loops are plain, so that they
 * vectorize.  Decoding (bf-eval --incremental, d 1024, perf) had spent
 * 7.7 % of its samples emitting an output a call, and 2.8 % in fwd_rows;
 * with runs of EMIT_RUN, 4.0 % in fwd_rows. */
static void emit_run(const fwd_job *j, size_t n, size_t o0, const int32_t *d, size_t len)
{
    const bf_tmat *m = j->m;
    if (j->acc) {
        memcpy(j->acc + n * m->rows + o0, d, len * sizeof *d);
        return;
    }
    float is = j->inv_s[n], *out = j->y + n * m->rows + o0;
    const float *sc = m->scale && m->per_row ? m->scale + o0 : NULL;
    float sc1 = m->scale ? m->scale[0] : 1.0f;
    if (sc && j->accumulate)
        for (size_t t = 0; t < len; t++) out[t] = out[t] + sc[t] * (float)d[t] * is;
    else if (sc)
        for (size_t t = 0; t < len; t++) out[t] = sc[t] * (float)d[t] * is;
    else if (j->accumulate)
        for (size_t t = 0; t < len; t++) out[t] = out[t] + sc1 * (float)d[t] * is;
    else
        for (size_t t = 0; t < len; t++) out[t] = sc1 * (float)d[t] * is;
}

/* one output */
static void emit(const fwd_job *j, size_t n, size_t o, int32_t d) { emit_run(j, n, o, &d, 1); }

#ifdef BF_X86
/* A 2×4 micro-kernel: the eight int32 sums in one vector, d[u] of row a
 * and d[4 + u] of row b against activation row u (returned in a register,
 * so that emit2x4, inlined into the loop that calls it, reads them there). */
typedef __m256i (*gemm2x4_fn)(const uint8_t *a, const uint8_t *b, const int8_t *q, size_t ldq, size_t len);

/* emit for a 2×4 block (d[u]: row o, d[4 + u]: row o + 1, against
 * activation rows n + u), eight outputs in a few vector operations: the
 * same IEEE operations as emit, in the same order, so the same bits. */
__attribute__((target("avx2"), always_inline)) static inline void emit2x4(const fwd_job *j, size_t n, size_t o, __m256i d)
{
    const bf_tmat *m = j->m;
    size_t R = m->rows;
    __m128i qs = _mm_loadu_si128((const __m128i *)(j->qsum + n));
    __m256i dv = _mm256_sub_epi32(d, _mm256_set_m128i(qs, qs));
    if (j->acc) {
        int32_t t[8];
        _mm256_storeu_si256((__m256i *)t, dv);
        for (size_t u = 0; u < GEMM_N; u++) {
            j->acc[(n + u) * R + o] = t[u];
            j->acc[(n + u) * R + o + 1] = t[GEMM_N + u];
        }
        return;
    }
    float sa = m->scale ? m->scale[m->per_row ? o : 0] : 1.0f, sb = m->scale ? m->scale[m->per_row ? o + 1 : 0] : 1.0f;
    __m128 is = _mm_loadu_ps(j->inv_s + n);
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_setr_ps(sa, sa, sa, sa, sb, sb, sb, sb), _mm256_cvtepi32_ps(dv)),
                             _mm256_set_m128(is, is));
    __m128 va = _mm256_castps256_ps128(v), vb = _mm256_extractf128_ps(v, 1);
    __m128 p01 = _mm_unpacklo_ps(va, vb), p23 = _mm_unpackhi_ps(va, vb);   /* (a0 b0 a1 b1), (a2 b2 a3 b3) */
    float *y = j->y + n * R + o;
    if (j->accumulate) {
        __m128 y01 = _mm_loadh_pi(_mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)y), (const __m64 *)(y + R));
        __m128 y23 = _mm_loadh_pi(_mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(y + 2 * R)), (const __m64 *)(y + 3 * R));
        p01 = _mm_add_ps(y01, p01);
        p23 = _mm_add_ps(y23, p23);
    }
    _mm_storel_pi((__m64 *)y, p01);
    _mm_storeh_pi((__m64 *)(y + R), p01);
    _mm_storel_pi((__m64 *)(y + 2 * R), p23);
    _mm_storeh_pi((__m64 *)(y + 3 * R), p23);
}

/* emit for four 2×4 blocks side by side (rows o..o+7, pair t's sums in
 * d[t] as emit2x4 takes them, against activation rows n..n+3): the 32
 * sums transposed in registers into one vector of eight outputs a
 * activation row, each stored whole where emit2x4 stores two floats into
 * each of four rows.  The same IEEE operations in the same order as emit,
 * so the same bits.  On rows of 128 weights (bench/out/ternary gemm 512 128
 * 2048 1, perf), gemm_rows, where emit2x4 is inlined, had taken 17.5 % of
 * the samples against the micro-kernels' 48.8 %, most of it at the stores. */
__attribute__((target("avx2"), always_inline)) static inline void emit8x4(const fwd_job *j, size_t n, size_t o, const __m256i d[4])
{
    const bf_tmat *m = j->m;
    size_t R = m->rows;
    /* d[t] = (a0 a1 a2 a3 | b0 b1 b2 b3): row 2t against the four activation
     * rows, then row 2t + 1.  Interleaved to (a0 b0 a1 b1 | a2 b2 a3 b3),
     * then gathered by activation row, two outputs (64 bits) a pair. */
    const __m256i ab = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i e0 = _mm256_permutevar8x32_epi32(d[0], ab), e1 = _mm256_permutevar8x32_epi32(d[1], ab);
    __m256i e2 = _mm256_permutevar8x32_epi32(d[2], ab), e3 = _mm256_permutevar8x32_epi32(d[3], ab);
    __m256i l01 = _mm256_unpacklo_epi64(e0, e1), h01 = _mm256_unpackhi_epi64(e0, e1);
    __m256i l23 = _mm256_unpacklo_epi64(e2, e3), h23 = _mm256_unpackhi_epi64(e2, e3);
    __m256i by_n[GEMM_N] = {_mm256_permute2x128_si256(l01, l23, 0x20), _mm256_permute2x128_si256(h01, h23, 0x20),
                            _mm256_permute2x128_si256(l01, l23, 0x31), _mm256_permute2x128_si256(h01, h23, 0x31)};
    __m256 sc = !m->scale ? _mm256_set1_ps(1.0f) : m->per_row ? _mm256_loadu_ps(m->scale + o) : _mm256_set1_ps(m->scale[0]);
    for (size_t u = 0; u < GEMM_N; u++) {
        __m256i dv = _mm256_sub_epi32(by_n[u], _mm256_set1_epi32(j->qsum[n + u]));
        if (j->acc) {
            _mm256_storeu_si256((__m256i *)(j->acc + (n + u) * R + o), dv);
            continue;
        }
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(sc, _mm256_cvtepi32_ps(dv)), _mm256_set1_ps(j->inv_s[n + u]));
        float *y = j->y + (n + u) * R + o;
        _mm256_storeu_ps(y, j->accumulate ? _mm256_add_ps(_mm256_loadu_ps(y), v) : v);
    }
}

/* The 2×4 micro-kernel for the matrix's packing: the AVX2 ones at every
 * level from AVX2 up, the 256-bit VNNI ones where the level is avx512vnni
 * (TQ2 and TQ1 from packed blocks, and on unpacked codes).  A 512-bit
 * one (a block pair a vector, the activations joined per pair as the row
 * kernels join them, maddubs or dpbusd) measured at half the AVX2 one's rate
 * on this kind of machine (bench/ternary, 4096×4096, batch 64, one thread:
 * 39-58 G weights/s against 86-122), and below the unpacking path it
 * replaced (87). */
static int vnni256(bf_kernel_level lv)
{
    static int vl = -1;
    if (vl < 0) vl = __builtin_cpu_supports("avx512vl") ? 1 : 0;
    return lv == BF_KERNEL_AVX512VNNI && vl;
}

static gemm2x4_fn gemm2x4_of(bf_kernel_level lv, int tq2)
{
    if (vnni256(lv)) return tq2 ? gemm2x4_tq2_vnni256 : gemm2x4_tq1_vnni256;
    return tq2 ? gemm2x4_tq2_avx2 : gemm2x4_tq1_avx2;
}

/* the kernel on unpacked codes */
static gemm2x4_fn gemm2x4_u8_of(bf_kernel_level lv) { return vnni256(lv) ? gemm2x4_u8_vnni256 : gemm2x4_u8_avx2; }

/* A batch: rows [r0, r1) in tiles of GEMM_TILE (their packed bytes stay in
 * L2); in a tile, each group of four activation rows meets every pair of
 * weight rows (an odd last row paired with itself); the last N % 4
 * activation rows go through the matrix-vector kernel. */
#define GEMM_TILE 64
#define GEMM_KWHOLE 6144   /* activation bytes a row: four rows, 24 KiB, fit in L1 */
#define GEMM_KCHUNK 4096
__attribute__((target("avx2"))) static void gemm_rows(fwd_job *j, size_t r0, size_t r1)
{
    const bf_tmat *m = j->m;
    /* TQ1 with four groups of activation rows or more (at two, measured,
     * unpacking costs what it saves): the tile's rows
     * unpacked once to bytes (GEMM_TILE·kpad bytes, in L2) */
    int unpack = m->pack == BF_TQ1 && j->N >= 4 * GEMM_N;
    gemm2x4_fn k2x4 = unpack ? gemm2x4_u8_of(j->lv) : gemm2x4_of(j->lv, m->pack == BF_TQ2);
    /* Rows longer than GEMM_KWHOLE go in equal chunks of at most
     * GEMM_KCHUNK: a group's four activation rows of a chunk stay in L1
     * while every weight row of the tile meets them.  The int32 sums of the
     * chunks add up exactly.  Measured (bench/out/ternary gemm 4096 11008 64
     * 2, five rounds): TQ1 240-263 → 262-291 G weights/s at VNNI, 238-243
     * → 260-277 at AVX2; TQ2 within its noise; chunks of 2 KiB or 5.5 KiB
     * gained less, and splitting rows of 4160 lost a little at batch 8. */
    size_t B = block_of(m->pack), nblk = m->kpad / B;
    size_t nchunk = m->kpad > GEMM_KWHOLE ? (m->kpad + GEMM_KCHUNK - 1) / GEMM_KCHUNK : 1;
    size_t kc = (nblk + nchunk - 1) / nchunk * B;
    uint8_t *codes = NULL;
    if (unpack) {
        static _Thread_local void *codes_buf;
        static _Thread_local size_t codes_cap;
        codes = scratch(&codes_buf, &codes_cap, GEMM_TILE * m->kpad);
        if (!codes) { __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED); return; }
    }
    for (size_t o0 = r0; o0 < r1; o0 += GEMM_TILE) {
        size_t o1 = r1 - o0 < GEMM_TILE ? r1 : o0 + GEMM_TILE, n = 0;
        if (unpack)
            for (size_t o = o0; o < o1; o++) unpack_tq1_avx2(m->blocks + o * m->row_bytes, m->kpad / TQ1_BLOCK, codes + (o - o0) * m->kpad);
        /* the tile's weight rows as the micro-kernel reads them: unpacked
         * codes (a byte a weight) or packed blocks (32 bytes a block) */
        const uint8_t *rows = unpack ? codes : m->blocks + o0 * m->row_bytes;
        size_t stride = unpack ? m->kpad : m->row_bytes;
        for (; n + GEMM_N <= j->N; n += GEMM_N) {
            const int8_t *q = j->q + n * m->kpad;
            __m256i part[GEMM_TILE / GEMM_R];   /* a pair of rows a vector; an odd last row as both */
            size_t npair = (o1 - o0 + 1) / GEMM_R;
            for (size_t p = 0; p < npair; p++) part[p] = _mm256_setzero_si256();
            for (size_t k0 = 0; k0 < m->kpad; k0 += kc) {
                size_t len = m->kpad - k0 < kc ? m->kpad - k0 : kc;
                const uint8_t *at = rows + (unpack ? k0 : k0 / B * 32);
                for (size_t p = 0, o = o0; p < npair; p++, o += GEMM_R) {
                    const uint8_t *a = at + (o - o0) * stride, *b = o + 1 < o1 ? a + stride : a;
                    part[p] = _mm256_add_epi32(part[p], k2x4(a, b, q + k0, m->kpad, len));
                }
            }
            size_t p = 0, o = o0;
            for (; o + 4 * GEMM_R <= o1; p += 4, o += 4 * GEMM_R) emit8x4(j, n, o, part + p);
            for (; p < npair; p++, o += GEMM_R) {
                if (o + 1 < o1) {
                    emit2x4(j, n, o, part[p]);
                    continue;
                }
                int32_t d[2 * GEMM_N];   /* an odd last row */
                _mm256_storeu_si256((__m256i *)d, part[p]);
                for (size_t u = 0; u < GEMM_N; u++) emit(j, n + u, o, d[u] - j->qsum[n + u]);
            }
        }
        for (; n < j->N; n++)
            for (size_t o = o0; o < o1; o++) emit(j, n, o, row_dot(j, o, n) - j->qsum[n]);
    }
}
#endif

static void fwd_rows(void *ctx, size_t r0, size_t r1, int th)
{
    fwd_job *j = ctx;
    const bf_tmat *m = j->m;
    if (j->N < UNPACK_MIN_N) {   /* matrix-vector: straight from the packed blocks, EMIT_RUN rows a run */
        int32_t d[EMIT_RUN];
        for (size_t o0 = r0; o0 < r1; o0 += EMIT_RUN) {
            size_t len = r1 - o0 < EMIT_RUN ? r1 - o0 : EMIT_RUN;
            for (size_t n = 0; n < j->N; n++) {
                for (size_t t = 0; t < len; t++) d[t] = row_dot(j, o0 + t, n) - j->qsum[n];
                emit_run(j, n, o0, d, len);
            }
        }
        return;
    }
#ifdef BF_X86
    if (j->lv >= BF_KERNEL_AVX2) {   /* the register-blocked micro-kernels, from the packed blocks */
        gemm_rows(j, r0, r1);
        return;
    }
#endif
    /* the scalar level: a tile of rows unpacked once, then each activation row */
    static _Thread_local void *codes_buf;
    static _Thread_local size_t codes_cap;
    uint8_t *codes = scratch(&codes_buf, &codes_cap, TILE * m->kpad);
    if (!codes) { __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED); return; }
    for (size_t o0 = r0; o0 < r1; o0 += TILE) {
        size_t nr = r1 - o0 < TILE ? r1 - o0 : TILE;
        for (size_t r = 0; r < nr; r++) unpack_row_scalar(m, m->blocks + (o0 + r) * m->row_bytes, codes + r * m->kpad);
        for (size_t n = 0; n < j->N; n++)
            for (size_t r = 0; r < nr; r++)
                emit(j, n, o0 + r, dot_u8_scalar(codes + r * m->kpad, j->q + n * m->kpad, m->kpad) - j->qsum[n]);
    }
}

/* A product over the thread pool.  The activation rows the row kernels
 * meet, all of a matrix-vector product's and a batch's last N % 4 (the
 * others go through the micro-kernels), are laid out for them first, at most
 * 3·kpad bytes: in pairs at the AVX-512 levels (kernels_avx512.h), biased
 * to unsigned for TQ1 at AVX2 (row_dot_tq1u_avx2).  TQ2 at AVX2 reads q as
 * it is. */
static int run_job(fwd_job *j)
{
#ifdef BF_X86
    const bf_tmat *m = j->m;
    int avx512 = j->lv == BF_KERNEL_AVX512 || j->lv == BF_KERNEL_AVX512VNNI;
    if (avx512 || (j->lv == BF_KERNEL_AVX2 && m->pack == BF_TQ1)) {
        static _Thread_local void *lay_buf;
        static _Thread_local size_t lay_cap;
        size_t B = block_of(m->pack);
        j->nlay = j->N < UNPACK_MIN_N ? 0 : j->N - j->N % GEMM_N;
        if (j->nlay < j->N) {
            int8_t *lay = scratch(&lay_buf, &lay_cap, (j->N - j->nlay) * m->kpad);
            if (!lay) return bf_err("out of memory for the kernels' scratch");
            for (size_t n = j->nlay; n < j->N; n++) {
                int8_t *out = lay + (n - j->nlay) * m->kpad;
                if (avx512)
                    bf_pair_acts(j->q + n * m->kpad, B, m->kpad / B, out);
                else
                    bias_acts_avx2(j->q + n * m->kpad, m->kpad, (uint8_t *)out);
            }
            j->qlay = lay;
        }
    }
#endif
    bf_parallel(j->m->rows, 16, fwd_rows, j);
    return j->failed ? bf_err("out of memory for the kernels' scratch") : 0;
}

int bf_tmat_dot_i32(const bf_tmat *m, const int8_t *q, const int32_t *qsum, size_t N, int32_t *acc)
{
    fwd_job j = {.m = m, .q = q, .qsum = qsum, .N = N, .acc = acc, .lv = bf_kernel_level_get()};
    return run_job(&j);
}

int bf_tmat_forward(const bf_tmat *m, const int8_t *q, const float *inv_s, const int32_t *qsum, size_t N, float *y,
                    int accumulate)
{
    fwd_job j = {.m = m, .q = q, .qsum = qsum, .inv_s = inv_s, .N = N, .y = y, .accumulate = accumulate,
                 .lv = bf_kernel_level_get()};
    return run_job(&j);
}

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

/* Row r's bytes of its panel (bf/kernels.h): vector g, bytes 4·(r % 8) + i,
 * codes of weights 16g + i + 4s in bits 2s; zero weights (code 1) past
 * cols. */
#define PANEL_ROWS 8
static size_t panel_bytes_of(const bf_tmat *m) { return m->kpad / 16 * 32; }
static size_t npanel_of(const bf_tmat *m) { return (m->rows + PANEL_ROWS - 1) / PANEL_ROWS; }

/* Four weights' codes w + 1, a byte each, in one word: each byte plus one
 * without a carry into the next (-1 = 0xff gives 0). */
static inline uint32_t codes4(const int8_t *w)
{
    uint32_t x;
    memcpy(&x, w, sizeof x);
    return ((x & 0x7f7f7f7fu) + 0x01010101u) ^ (x & 0x80808080u);
}

/* A row's panel bytes, four at a time (a word's bytes stay apart: codes
 * are at most 2, so shifted by 6 at most 128).  bf_tmat_set_row on
 * 4096×4096 TQ2, best of five rounds in turn: 1.20 ns a weight without
 * panels, 1.60 with them a byte at a time, 1.32 four at a time. */
static void panel_row(const int8_t *w, size_t cols, size_t kpad, uint8_t *out)
{
    size_t g = 0;
    for (; 16 * (g + 1) <= cols; g++, out += 32) {
        const int8_t *c = w + 16 * g;
        uint32_t v = codes4(c) | codes4(c + 4) << 2 | codes4(c + 8) << 4 | codes4(c + 12) << 6;
        memcpy(out, &v, sizeof v);
    }
    for (; g < kpad / 16; g++, out += 32)
        for (size_t i = 0; i < 4; i++) {
            unsigned v = 0;
            for (size_t s = 0; s < 4; s++) {
                size_t k = 16 * g + 4 * s + i;
                v |= (unsigned)(k < cols ? w[k] + 1 : 1) << (2 * s);
            }
            out[i] = (uint8_t)v;
        }
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
    m->panels = bf_aligned_alloc(npanel_of(m) * panel_bytes_of(m) + 64);
    m->code_sum = calloc(rows ? rows : 1, sizeof *m->code_sum);
    if (!m->blocks || !m->panels || !m->code_sum) {
        bf_tmat_free(m);
        return -1;
    }
    memset(m->panels, 0x55, npanel_of(m) * panel_bytes_of(m));   /* code 1 everywhere: the padding rows' zero weights */
    return 0;
}

void bf_tmat_set_row(bf_tmat *m, size_t r, const int8_t *codes)
{
    repack_row(m->pack, codes, m->cols, m->kpad, m->blocks + r * m->row_bytes);
    panel_row(codes, m->cols, m->kpad, m->panels + r / PANEL_ROWS * panel_bytes_of(m) + 4 * (r % PANEL_ROWS));
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
    bf_aligned_free(m->panels);
    free(m->code_sum);
    memset(m, 0, sizeof *m);
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

/* The TQ2 row kernel asks for the line ROW_AHEAD bytes on, once a line: a
 * matrix-vector product reads its rows once, in order, from memory, and
 * the hardware's own prefetch had left one core at two thirds of what it
 * can read.  Measured on one AVX2 core, 96 MB of matrices read in turn
 * (a harness, best of 7 rounds, two runs): 1024×1024 50.6-52.0 → 63.6-65.7
 * G weights/s, 1024×4096 47.3-54.2 → 55.7-71.7; 512 bytes ahead gave half
 * the gain, 4096 no more.  `bench/out/ternary gemv 4096 4096` (four rounds
 * in turn): one thread 45-53 → 51-70, two 70-85 → 75-101.  The TQ1 row
 * kernel, bound by its decode, measured no faster with it. */
#define ROW_AHEAD 2048
/* One row's int32 lanes, before their horizontal sum (p4's lanes each a
 * multiple of 4, shifted down in place). */
__attribute__((target("avx2"))) static inline __m256i row_lanes_tq2_avx2(const uint8_t *blk, const void *act, size_t nblk)
{
    const int8_t *q = act;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a1 = _mm256_setzero_si256(), a4 = a1;
    size_t b = 0;
    for (; b + 8 <= nblk; b += 8, blk += 256, q += 1024) {
        __m256i p0 = _mm256_setzero_si256(), p1 = p0, p2 = p0, p3 = p0;   /* two chains of four blocks */
        for (int u = 0; u < 8; u += 2) {
            _mm_prefetch((const char *)(blk + 32 * u + ROW_AHEAD), _MM_HINT_T0);
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
    return _mm256_add_epi32(a1, _mm256_srai_epi32(a4, 2));
}

/* The TQ1 row kernel meets its activations biased to unsigned bytes,
 * u = q + 128 (q ^ 0x80, laid out by run_job), so that maddubs can take
 * them with signed digits, and decodes with signed compares: two
 * compares and an add a digit where saturating subtracts on the unbiased
 * bytes (min(v ⊖ 85, 1) + min(v ⊖ 170, 1)) take five operations.
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
 * against 36 with the saturating decode. */
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

/* Σ u·(-code) over a row's blocks (see above), in int32 lanes before their
 * horizontal sum. */
__attribute__((target("avx2"))) static inline __m256i row_lanes_tq1u_avx2(const uint8_t *blk, const void *act, size_t nblk)
{
    const uint8_t *u = act;
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
    return _mm256_add_epi32(acc0, acc1);
}

/* The eight lane vectors' totals, in order, into out[0 … 7]: within each
 * half, u0 holds rows 0-3's partial sums and u1 rows 4-7's. */
__attribute__((target("avx2"))) static inline void sum_lanes8(const __m256i a[8], int32_t out[8])
{
    __m256i u0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    __m256i u1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
    __m256i t = _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
    _mm256_storeu_si256((__m256i *)out, t);
}

/* Rows o … o + nr − 1 of m, nr ≤ 8, against one activation row (q for
 * TQ2, the biased u for TQ1): out[r] = Σ code·q (TQ2) or Σ u·(-code) (TQ1,
 * row_lanes_tq1u_avx2), the lanes through `lanes`, one packing's row
 * kernel.  The rows are read one after another, one stream for the
 * prefetcher, and their eight lane vectors meet in one transposing sum (three rounds of hadd and a swap of
 * halves) where each row had paid a horizontal sum and a call of its own:
 * a row of 1024 weights is eight blocks, 64 multiply-adds a lane.
 * (Four rows a block at a time, their activations loaded once, ran 20 %
 * faster in L2 but half as fast from memory: four streams.)  Measured with
 * `bench/out/ternary gemv`, three rounds in turn: 1024×1024 in cache, one
 * thread, 40-65 → 70-74 G weights/s; 4096×1024, two threads, 67-69 →
 * 71-82.  Decoding (`bf-eval --incremental`, d 1024, ten rounds in turn):
 * 0.970 → 0.897 s, median.  TQ1 rows, which went one a call before, the
 * same: 1024×1024 in cache, one thread, 25.1-30.9 → 29.4-33.6.
 * Inlined into one function for each packing: in one function for both,
 * gcc 12 unrolled TQ2's loop less, and decoding went 0.947 → 1.060 s
 * (median of eight). */
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) void
rows8_dot(const bf_tmat *m, size_t o, size_t nr, const void *act, __m256i (*lanes)(const uint8_t *, const void *, size_t),
          int32_t out[8])
{
    size_t nblk = m->kpad / block_of(m->pack);
    __m256i a[8];
    for (size_t r = 0; r < 8; r++)
        a[r] = r < nr ? lanes(m->blocks + (o + r) * m->row_bytes, act, nblk) : _mm256_setzero_si256();
    sum_lanes8(a, out);
}

__attribute__((target("avx2"))) static void rows8_dot_tq2_avx2(const bf_tmat *m, size_t o, size_t nr, const int8_t *q,
                                                              int32_t out[8])
{
    rows8_dot(m, o, nr, q, row_lanes_tq2_avx2, out);
}

__attribute__((target("avx2"))) static void rows8_dot_tq1u_avx2(const bf_tmat *m, size_t o, size_t nr, const uint8_t *u,
                                                               int32_t out[8])
{
    rows8_dot(m, o, nr, u, row_lanes_tq1u_avx2, out);
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
/* The batch micro-kernel, on the panels (bf/kernels.h): two panels
 * (sixteen weight rows, pa and pb) against four activation rows (q, stride
 * ldq), the weights [0, len) from where the pointers start (len a multiple
 * of 16).  Lanes run over weight rows, so no sum is ever taken across a
 * vector's lanes:
 *   - a step takes one digit plane of a panel vector (eight rows, four
 *     weights each: one shift and one mask) and each activation row's four
 *     weights at that place, broadcast to every 32-bit lane by a load
 *     (vpbroadcastd from memory, a load only);
 *   - maddubs leaves row r's sum over two weights in int16 lanes 2r and
 *     2r + 1, in [-512, 508] (codes in {0, 1, 2}, int8 activations), so 64
 *     steps (PANEL_WIDEN_STEPS) lie in [-32768, 32512]: exact for any
 *     input, the extreme case (every q = -128, every code 2) landing on
 *     INT16_MIN itself;
 *   - a round's end widens the eight int16 sums (madd with ones adds lanes
 *     2r and 2r + 1: row r's int32 sum in lane r) into the totals.
 * Per step 8 maddubs, 8 adds, 4 broadcast loads and 3.5 decode operations
 * for 256 products: the operations of the row-pair kernel this replaced
 * (two rows' packed blocks against four activation rows, 32 weights a
 * step), without its horizontal sums (a round of hadds and a transpose for
 * every 2×4 block's eight outputs) and with outputs that are whole vectors
 * of consecutive rows.  Measured in cache on one AVX2 core (a harness
 * calling both on 256 rows, batch 64, 15 rounds, medians): rows of 128
 * 72.4 → 122.1 G weights/s, 512: 115.5 → 137.7, 1024: 131.9 → 138.9,
 * 4096: 138.7 → 137.5.  The panel layout serves TQ1 matrices too: their
 * batches decode two bits, not base-3 digits.
 * What gcc 12 makes of it at -O2 (objdump): a panel vector pair's loop is
 * 32 vpmaddubsw, 32 vpaddw, 16 vpbroadcastd from memory, 8 vpand and 6
 * vpsrlw, with 14 register moves and nothing on the stack.  Without the
 * empty asm in PANEL_STEP, or with one on the decoded planes only, the
 * same harness measured it 20-25 % slower.
 * tot[n·ldt + r] (+)= the sums of activation row n against row r of the
 * pair (0-7: pa, 8-15: pb). */
#define GEMM_N 4   /* activation rows a micro-kernel */
#define PANEL_WIDEN_STEPS 64
#define PANEL_WIDEN_VECS (PANEL_WIDEN_STEPS / 4)   /* panel vectors a round: four planes each */

/* One step: plane s of panel vectors va and vb against the four activation
 * rows' weights at `at`, into p0-p3 (pa's rows) and p4-p7 (pb's). */
#define PANEL_STEP(s, at)                                                                           \
    do {                                                                                            \
        __m256i wa_ = (s) ? _mm256_and_si256(_mm256_srli_epi16(va, 2 * (s)), mask) : _mm256_and_si256(va, mask); \
        __m256i wb_ = (s) ? _mm256_and_si256(_mm256_srli_epi16(vb, 2 * (s)), mask) : _mm256_and_si256(vb, mask); \
        __m256i x_ = _mm256_set1_epi32(load_i32(q + (at)));                                         \
        p0 = _mm256_add_epi16(p0, _mm256_maddubs_epi16(wa_, x_));                                   \
        p4 = _mm256_add_epi16(p4, _mm256_maddubs_epi16(wb_, x_));                                   \
        x_ = _mm256_set1_epi32(load_i32(q1 + (at)));                                                \
        p1 = _mm256_add_epi16(p1, _mm256_maddubs_epi16(wa_, x_));                                   \
        p5 = _mm256_add_epi16(p5, _mm256_maddubs_epi16(wb_, x_));                                   \
        x_ = _mm256_set1_epi32(load_i32(q2 + (at)));                                                \
        p2 = _mm256_add_epi16(p2, _mm256_maddubs_epi16(wa_, x_));                                   \
        p6 = _mm256_add_epi16(p6, _mm256_maddubs_epi16(wb_, x_));                                   \
        x_ = _mm256_set1_epi32(load_i32(q3 + (at)));                                                \
        p3 = _mm256_add_epi16(p3, _mm256_maddubs_epi16(wa_, x_));                                   \
        p7 = _mm256_add_epi16(p7, _mm256_maddubs_epi16(wb_, x_));                                   \
        /* the sums are due here: without this the compiler reassociates the  \
         * adds across steps, holds every step's products at once and spills */ \
        __asm__("" : "+x"(p0), "+x"(p1), "+x"(p2), "+x"(p3), "+x"(p4), "+x"(p5), "+x"(p6), "+x"(p7)); \
    } while (0)

static inline int32_t load_i32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

__attribute__((target("avx2"))) static void panel2x4_avx2(const uint8_t *pa, const uint8_t *pb, const int8_t *q, size_t ldq,
                                                          size_t len, int32_t *tot, size_t ldt, int add)
{
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const int8_t *q1 = q + ldq, *q2 = q + 2 * ldq, *q3 = q + 3 * ldq;
    __m256i t[8];
    size_t nvec = len / 16;
    for (size_t g0 = 0;; g0 += PANEL_WIDEN_VECS) {
        __m256i p0 = _mm256_setzero_si256(), p1 = p0, p2 = p0, p3 = p0, p4 = p0, p5 = p0, p6 = p0, p7 = p0;
        size_t g1 = g0 + PANEL_WIDEN_VECS < nvec ? g0 + PANEL_WIDEN_VECS : nvec;
        for (size_t g = g0; g < g1; g++) {
            __m256i va = _mm256_load_si256((const __m256i *)(pa + 32 * g)), vb = _mm256_load_si256((const __m256i *)(pb + 32 * g));
            PANEL_STEP(0, 16 * g);
            PANEL_STEP(1, 16 * g + 4);
            PANEL_STEP(2, 16 * g + 8);
            PANEL_STEP(3, 16 * g + 12);
        }
        __m256i w[8] = {_mm256_madd_epi16(p0, ones), _mm256_madd_epi16(p1, ones), _mm256_madd_epi16(p2, ones),
                        _mm256_madd_epi16(p3, ones), _mm256_madd_epi16(p4, ones), _mm256_madd_epi16(p5, ones),
                        _mm256_madd_epi16(p6, ones), _mm256_madd_epi16(p7, ones)};
        for (int i = 0; i < 8; i++) t[i] = g0 == 0 ? w[i] : _mm256_add_epi32(t[i], w[i]);
        if (g1 == nvec) break;
    }
    for (size_t n = 0; n < GEMM_N; n++)
        for (size_t h = 0; h < 2; h++) {
            __m256i *out = (__m256i *)(tot + n * ldt + 8 * h), v = t[4 * h + n];
            _mm256_storeu_si256(out, add ? _mm256_add_epi32(_mm256_loadu_si256(out), v) : v);
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
    int by_n;              /* the batch kernels: parts of activation rows, not of weight rows */
    size_t nparts;         /* ... how many parts */
    size_t next_part;      /* ... the next part to take (atomic) */
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
    default: break;
    }
#endif
    return row_dot_scalar(m->pack, blk, j->q + n * m->kpad, m->kpad);
}

#define BATCH_MIN_N 4   /* from this batch size on, the batch kernels: panels, or rows unpacked once (scalar) */
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

/* Activation row n against weight rows [o0, o1) (at most EMIT_RUN) through
 * the matrix-vector kernel: a matrix-vector product's run, and a batch's
 * last N % 4 rows against a tile. */
_Static_assert(EMIT_RUN % 8 == 0, "a run (at most EMIT_RUN rows) has its groups of eight at multiples of 8: each group's eight sums fit in d");
static void row_dots(const fwd_job *j, size_t n, size_t o0, size_t o1)
{
    const bf_tmat *m = j->m;
    int32_t d[EMIT_RUN];
#ifdef BF_X86
    if (j->lv == BF_KERNEL_AVX2) {   /* eight rows a call, their sums straight into d */
        int tq2 = m->pack == BF_TQ2;
        const uint8_t *u = tq2 ? NULL : (const uint8_t *)j->qlay + (n - j->nlay) * m->kpad;
        for (size_t o = o0; o < o1; o += 8) {
            size_t nr = o1 - o < 8 ? o1 - o : 8;
            if (tq2) rows8_dot_tq2_avx2(m, o, nr, j->q + n * m->kpad, d + (o - o0));
            else rows8_dot_tq1u_avx2(m, o, nr, u, d + (o - o0));
        }
        if (!tq2)   /* TQ1's sums came back as Σ u·(-code) */
            for (size_t o = o0; o < o1; o++) d[o - o0] = -d[o - o0] - 128 * m->code_sum[o];
    } else
#endif
        for (size_t o = o0; o < o1; o++) d[o - o0] = row_dot(j, o, n);
    for (size_t o = o0; o < o1; o++) d[o - o0] -= j->qsum[n];
    emit_run(j, n, o0, d, o1 - o0);
}

#ifdef BF_X86
/* The outputs o0 .. o0 + len - 1 of activation row n from a tile's int32
 * sums (qsum not yet taken off), eight to a vector: the same IEEE
 * operations in the same order as emit_run, so the same bits. */
__attribute__((target("avx2"))) static void emit_tile_avx2(const fwd_job *j, size_t n, size_t o0, const int32_t *d, size_t len)
{
    const bf_tmat *m = j->m;
    __m256i qs = _mm256_set1_epi32(j->qsum[n]);
    size_t t = 0;
    if (j->acc) {
        for (; t + 8 <= len; t += 8)
            _mm256_storeu_si256((__m256i *)(j->acc + n * m->rows + o0 + t),
                                _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(d + t)), qs));
    } else {
        __m256 is = _mm256_set1_ps(j->inv_s[n]);
        for (; t + 8 <= len; t += 8) {
            __m256 sc = !m->scale ? _mm256_set1_ps(1.0f) : m->per_row ? _mm256_loadu_ps(m->scale + o0 + t) : _mm256_set1_ps(m->scale[0]);
            __m256i dv = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(d + t)), qs);
            __m256 v = _mm256_mul_ps(_mm256_mul_ps(sc, _mm256_cvtepi32_ps(dv)), is);
            float *y = j->y + n * m->rows + o0 + t;
            _mm256_storeu_ps(y, j->accumulate ? _mm256_add_ps(_mm256_loadu_ps(y), v) : v);
        }
    }
    for (; t < len; t++) emit(j, n, o0 + t, d[t] - j->qsum[n]);
}

/* A batch on the panels: panels [p0, p1) against activation rows [n0, n1),
 * in tiles of GEMM_TILE rows (their panels stay in L2); in a tile, each
 * group of four activation rows meets every pair of panels (an odd last
 * panel paired with itself, its second sums not used); the activation rows
 * past the last group of four go through the matrix-vector kernel. */
#define GEMM_TILE 64       /* eight panels */
_Static_assert(GEMM_TILE <= EMIT_RUN, "a tile's rows go through row_dots in one run");
#define GEMM_KWHOLE 6144   /* activation bytes a row: four rows, 24 KiB, fit in L1 */
#define GEMM_KCHUNK 4096
__attribute__((target("avx2"))) static void gemm_panels(fwd_job *j, size_t p0, size_t p1, size_t n0, size_t n1)
{
    const bf_tmat *m = j->m;
    size_t r0 = p0 * PANEL_ROWS, r1 = p1 * PANEL_ROWS < m->rows ? p1 * PANEL_ROWS : m->rows;
    size_t panel_bytes = panel_bytes_of(m);
    /* Rows longer than GEMM_KWHOLE go in equal chunks of at most
     * GEMM_KCHUNK (a multiple of 16, the panel vector's weights): a group's
     * four activation rows of a chunk stay in L1 while every panel of the
     * tile meets them.  The int32 sums of the chunks add up exactly. */
    size_t B = block_of(m->pack), nblk = m->kpad / B;
    size_t nchunk = m->kpad > GEMM_KWHOLE ? (m->kpad + GEMM_KCHUNK - 1) / GEMM_KCHUNK : 1;
    size_t kc = (nblk + nchunk - 1) / nchunk * B;
    for (size_t o0 = r0; o0 < r1; o0 += GEMM_TILE) {
        size_t o1 = r1 - o0 < GEMM_TILE ? r1 : o0 + GEMM_TILE, n = n0;
        size_t npan = (o1 - o0 + PANEL_ROWS - 1) / PANEL_ROWS;
        const uint8_t *tile = m->panels + o0 / PANEL_ROWS * panel_bytes;
        for (; n + GEMM_N <= n1; n += GEMM_N) {
            const int8_t *q = j->q + n * m->kpad;
            _Alignas(32) int32_t tot[GEMM_N][GEMM_TILE];
            for (size_t k0 = 0; k0 < m->kpad; k0 += kc) {
                size_t len = m->kpad - k0 < kc ? m->kpad - k0 : kc;
                for (size_t p = 0; p < npan; p += 2) {
                    const uint8_t *pa = tile + p * panel_bytes + k0 * 2, *pb = p + 1 < npan ? pa + panel_bytes : pa;
                    panel2x4_avx2(pa, pb, q + k0, m->kpad, len, &tot[0][p * PANEL_ROWS], GEMM_TILE, k0 != 0);
                }
            }
            for (size_t u = 0; u < GEMM_N; u++) emit_tile_avx2(j, n + u, o0, tot[u], o1 - o0);
        }
        for (; n < n1; n++) row_dots(j, n, o0, o1);
    }
}

/* A batch's parts, taken one at a time from a shared counter until none is
 * left, so that a thread slowed by other work on its core takes fewer; every
 * output is made by one part whichever thread runs it: the same bits.
 *   - By rows: a part is a tile of GEMM_TILE weight rows against every
 *     activation row; the activation rows are read again for every tile.
 *   - By activation rows, when the matrix's panels fit in L2 (GEMM_SMALL)
 *     and there are parts enough for every thread twice over: a part is
 *     GEMM_NPART activation rows against every panel, which stay in cache
 *     while each activation row is read once and its outputs are written
 *     in order.  Training's products are of this kind: a batch of 2048
 *     positions against a d 128 model's matrices (8-64 KiB of panels), where
 *     reading the positions' 256 KiB of activations again for every tile
 *     left the kernel at half its rate in cache (perf: the outputs' stores
 *     and the activations' loads missing L1). */
#define GEMM_SMALL (256u << 10)
#define GEMM_NPART 64
static void gemm_split(fwd_job *j, size_t nth)
{
    size_t nparts_n = (j->N + GEMM_NPART - 1) / GEMM_NPART;
    j->by_n = npanel_of(j->m) * panel_bytes_of(j->m) <= GEMM_SMALL && nparts_n >= 2 * nth;
    j->nparts = j->by_n ? nparts_n : (j->m->rows + GEMM_TILE - 1) / GEMM_TILE;
    j->next_part = 0;
}

static void gemm_run_parts(void *ctx, size_t t0, size_t t1, int th)
{
    fwd_job *j = ctx;
    size_t npanel = npanel_of(j->m), tp = GEMM_TILE / PANEL_ROWS;
    for (;;) {
        size_t t = __atomic_fetch_add(&j->next_part, 1, __ATOMIC_RELAXED);
        if (t >= j->nparts) return;
        if (j->by_n)
            gemm_panels(j, 0, npanel, t * GEMM_NPART, (t + 1) * GEMM_NPART < j->N ? (t + 1) * GEMM_NPART : j->N);
        else
            gemm_panels(j, t * tp, (t + 1) * tp < npanel ? (t + 1) * tp : npanel, 0, j->N);
    }
}
#endif

static void fwd_rows(void *ctx, size_t r0, size_t r1, int th)
{
    fwd_job *j = ctx;
    const bf_tmat *m = j->m;
    if (j->N < BATCH_MIN_N) {   /* matrix-vector: straight from the packed blocks, EMIT_RUN rows a run */
        for (size_t o0 = r0; o0 < r1; o0 += EMIT_RUN)
            for (size_t n = 0; n < j->N; n++) row_dots(j, n, o0, r1 - o0 < EMIT_RUN ? r1 : o0 + EMIT_RUN);
        return;
    }
    /* the scalar level: a tile of rows unpacked once, then each activation row */
    static _Thread_local void *codes_buf;
    static _Thread_local size_t codes_cap;
    uint8_t *codes = bf_aligned_scratch(&codes_buf, &codes_cap, TILE * m->kpad);
    if (!codes) { __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED); return; }
    for (size_t o0 = r0; o0 < r1; o0 += TILE) {
        size_t nr = r1 - o0 < TILE ? r1 - o0 : TILE;
        for (size_t r = 0; r < nr; r++) unpack_row_scalar(m, m->blocks + (o0 + r) * m->row_bytes, codes + r * m->kpad);
        for (size_t n = 0; n < j->N; n++)
            for (size_t r = 0; r < nr; r++)
                emit(j, n, o0 + r, dot_u8_scalar(codes + r * m->kpad, j->q + n * m->kpad, m->kpad) - j->qsum[n]);
    }
}

/* A matrix-vector product's rows go to the threads in chunks of
 * GEMV_CHUNK (bf_parallel_chunks): each thread takes its share's from the
 * front and, done, the others' from their backs.  Equal static halves had
 * left one thread or the other waiting, now one, now the other, as the
 * memory served them: decoding (d 1024, two threads, cycles counted per
 * job) waited 4,100-10,600 cycles a job of 45,000-74,000 for the later
 * thread; with the chunks, 1,000-5,800.  Decoding's time, medians of 20
 * and 30 rounds in turn: 1.014 → 0.986 s and 0.956 → 0.929 s (chunks of 16
 * rows measured no better).  `bench/ternary-kernels`' compute rate at two
 * threads (4096×4096 in the last-level cache): TQ2 82-85 → 129 G weights/s,
 * TQ1 58-62 → 82.  A chunk is four groups of eight rows, and each thread
 * reads its chunks' rows in order, one stream.  The sums are exact, so
 * which thread takes a row does not change its output. */
#define GEMV_CHUNK 32

/* A product over the thread pool.  The activation rows the row kernels
 * meet, all of a matrix-vector product's and a batch's last N % 4 (the
 * others go through the micro-kernels), are laid out for them first, at most
 * 3·kpad bytes: in pairs at the AVX-512 levels (kernels_avx512.h), biased
 * to unsigned for TQ1 at AVX2 (row_lanes_tq1u_avx2).  TQ2 at AVX2 reads q as
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
        j->nlay = j->N < BATCH_MIN_N ? 0 : j->N - j->N % GEMM_N;
        if (j->nlay < j->N) {
            int8_t *lay = bf_aligned_scratch(&lay_buf, &lay_cap, (j->N - j->nlay) * m->kpad);
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
    if (j->N >= BATCH_MIN_N && j->lv >= BF_KERNEL_AVX2) {   /* the panel micro-kernels: a thread a part at most */
        size_t nth = (size_t)bf_threads_get();
        gemm_split(j, nth);
        bf_parallel(nth < j->nparts ? nth : j->nparts, 1, gemm_run_parts, j);
        return 0;
    }
#endif
    if (j->N < BATCH_MIN_N)
        bf_parallel_chunks(j->m->rows, GEMV_CHUNK, fwd_rows, j);
    else
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

/* kernels_avx512_body.h — included twice by kernels_avx512.c, with VNNI 0
 * (AVX-512BW) and 1 (AVX-512 VNNI).  STEP adds one vector of 64 code ×
 * activation products into a partial sum p; FLUSH adds p into an int32
 * accumulator.  Between flushes a BW p takes at most eight steps. */
#if VNNI
#define TARGET TARGET_VNNI
#define NAME(op) BF_K512(op##_avx512vnni)
#define STEP(p, c, x) ((p) = _mm512_dpbusd_epi32((p), (c), (x)))
#define FLUSH(acc, p) ((acc) = _mm512_add_epi32((acc), (p)))
#else
#define TARGET TARGET_BW
#define NAME(op) BF_K512(op##_avx512)
#define STEP(p, c, x) ((p) = _mm512_add_epi16((p), _mm512_maddubs_epi16((c), (x))))
#define FLUSH(acc, p) ((acc) = _mm512_add_epi32((acc), _mm512_madd_epi16((p), _mm512_set1_epi16(1))))
#endif

/* TQ2: two chains, each a block pair (four steps) an iteration. */
TARGET int32_t NAME(row_dot_tq2)(const uint8_t *blk, const int8_t *q, size_t nblk)
{
    __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0;
    size_t b = 0;
    for (; b + 4 <= nblk; b += 4, blk += 128, q += 512) {
        __m512i w0 = _mm512_loadu_si512((const void *)blk), w1 = _mm512_loadu_si512((const void *)(blk + 64));
        __m512i p0 = _mm512_setzero_si512(), p1 = p0;
        for (int s = 0; s < 4; s++) {
            STEP(p0, tq2_plane(&w0), pair_q(q, 128, s));
            STEP(p1, tq2_plane(&w1), pair_q(q + 256, 128, s));
        }
        FLUSH(acc0, p0);
        FLUSH(acc1, p1);
    }
    for (; b < nblk; b += 2, blk += 64, q += 256) {   /* a last pair, then maybe a lone block */
        int lone = b + 1 == nblk;
        __m512i w = lone ? half_load(blk) : _mm512_loadu_si512((const void *)blk), p = _mm512_setzero_si512();
        for (int s = 0; s < 4; s++) STEP(p, tq2_plane(&w), lone ? half_load(q + 32 * s) : pair_q(q, 128, s));
        FLUSH(acc0, p);
    }
    return hsum512(_mm512_add_epi32(acc0, acc1));
}

/* TQ1: five digit planes a pair; two chains of one pair each (five steps). */
TARGET int32_t NAME(row_dot_tq1)(const uint8_t *blk, const int8_t *q, size_t nblk)
{
    __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0;
    size_t b = 0;
    for (; b + 4 <= nblk; b += 4, blk += 128, q += 640) {
        __m512i v0 = _mm512_loadu_si512((const void *)blk), v1 = _mm512_loadu_si512((const void *)(blk + 64));
        __m512i p0 = _mm512_setzero_si512(), p1 = p0;
        for (int s = 0; s < 5; s++) {
            STEP(p0, tq1_digit(&v0), pair_q(q, 160, s));
            STEP(p1, tq1_digit(&v1), pair_q(q + 320, 160, s));
        }
        FLUSH(acc0, p0);
        FLUSH(acc1, p1);
    }
    for (; b < nblk; b += 2, blk += 64, q += 320) {
        int lone = b + 1 == nblk;
        __m512i v = lone ? half_load(blk) : _mm512_loadu_si512((const void *)blk), p = _mm512_setzero_si512();
        for (int s = 0; s < 5; s++) STEP(p, tq1_digit(&v), lone ? half_load(q + 32 * s) : pair_q(q, 160, s));
        FLUSH(acc0, p);
    }
    return hsum512(_mm512_add_epi32(acc0, acc1));
}

#undef TARGET
#undef NAME
#undef STEP
#undef FLUSH

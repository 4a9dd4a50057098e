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

/* TQ2: two block pairs an iteration, into four partial sums (each pair's
 * even and odd planes), the steps written out.  With two sums and the plane
 * loop, which gcc 12 at -O2 leaves rolled, the VNNI kernel ran at 43 G
 * weights/s on weights streamed from memory, where this runs at 71-79 (and
 * 112 in cache; bench/out/ternary gemv 4096 4096 1 [cached], one thread).
 * Its VNNI hot loop at -O2 (objdump): eight vpdpbusd with their activations
 * as memory operands, the masks and shifts (the first of each vector's from
 * memory), four adds; nothing on the stack. */
TARGET int32_t NAME(row_dot_tq2)(const uint8_t *blk, const int8_t *q, size_t nblk)
{
    __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0;
    size_t b = 0;
    for (; b + 4 <= nblk; b += 4, blk += 128, q += 512) {
        __m512i w0 = _mm512_loadu_si512((const void *)blk), w1 = _mm512_loadu_si512((const void *)(blk + 64));
        __m512i p0 = _mm512_setzero_si512(), p1 = p0, p2 = p0, p3 = p0;
        STEP(p0, tq2_plane(&w0), pair_q(q, 0));
        STEP(p1, tq2_plane(&w1), pair_q(q + 256, 0));
        STEP(p2, tq2_plane(&w0), pair_q(q, 1));
        STEP(p3, tq2_plane(&w1), pair_q(q + 256, 1));
        STEP(p0, tq2_plane(&w0), pair_q(q, 2));
        STEP(p1, tq2_plane(&w1), pair_q(q + 256, 2));
        STEP(p2, tq2_plane(&w0), pair_q(q, 3));
        STEP(p3, tq2_plane(&w1), pair_q(q + 256, 3));
        FLUSH(acc0, p0);
        FLUSH(acc1, p1);
        FLUSH(acc0, p2);
        FLUSH(acc1, p3);
    }
    for (; b < nblk; b += 2, blk += 64, q += 256) {   /* a last pair, then maybe a lone block */
        int lone = b + 1 == nblk;
        __m512i w = lone ? half_load(blk) : _mm512_loadu_si512((const void *)blk), p = _mm512_setzero_si512();
        for (int s = 0; s < 4; s++) STEP(p, tq2_plane(&w), lone ? half_load(q + 32 * s) : pair_q(q, s));
        FLUSH(acc0, p);
    }
    return hsum512(_mm512_add_epi32(acc0, acc1));
}

#if VNNI
/* TQ1 with vpdpbusd, without decoding a digit.  The byte x_s = 3^s·x_0 mod
 * 256 holds digit s as ⌊3·x_s/256⌋, so 256·d_s = 3·x_s − x_{s+1} exactly,
 * and for a lane's bytes Σ d_s·a_s = (3·Σ x_s·a_s − Σ x_{s+1}·a_s) / 256:
 * two dpbusd a plane (bytes as u8 against the activations, int32 sums, no
 * saturation) and x's update by three (two byte adds) in place of the
 * digit's five operations, the update and one dpbusd.  A lane's two sums
 * differ from 256× its digits' sum by nothing, so the shift is exact.
 * Bounds: a dpbusd adds at most 4·255·128 = 130,560 to a lane, five a pair
 * to each sum; after CHUNK1 = 256 pairs |3A| < 3·256·5·130,560 ≈ 5.0e8 and
 * |B| a third of that, so 3A − B is an int32; then it goes, divided by 256,
 * into the total.  Two pairs an iteration, four sums, for the dpbusd latency. */
#define CHUNK1 256
TARGET int32_t NAME(row_dot_tq1)(const uint8_t *blk, const int8_t *q, size_t nblk)
{
    __m512i total = _mm512_setzero_si512();
    size_t b = 0;
    while (b < nblk) {
        __m512i a0 = _mm512_setzero_si512(), b0 = a0, a1 = a0, b1 = a0;
        size_t end = nblk - b > 2 * CHUNK1 ? b + 2 * CHUNK1 : nblk;
        for (; b + 4 <= end; b += 4, blk += 128, q += 640) {
            __m512i x0 = _mm512_loadu_si512((const void *)blk), x1 = _mm512_loadu_si512((const void *)(blk + 64));
            for (int s = 0; s < 5; s++) {
                __m512i q0 = pair_q(q, s), q1 = pair_q(q + 320, s);
                a0 = _mm512_dpbusd_epi32(a0, x0, q0);
                a1 = _mm512_dpbusd_epi32(a1, x1, q1);
                x0 = _mm512_add_epi8(x0, _mm512_add_epi8(x0, x0));
                x1 = _mm512_add_epi8(x1, _mm512_add_epi8(x1, x1));
                b0 = _mm512_dpbusd_epi32(b0, x0, q0);
                b1 = _mm512_dpbusd_epi32(b1, x1, q1);
            }
        }
        for (; b < end; b += 2, blk += 64, q += 320) {   /* a last pair, then maybe a lone block */
            int lone = b + 1 == end;
            __m512i x = lone ? half_load(blk) : _mm512_loadu_si512((const void *)blk);
            for (int s = 0; s < 5; s++) {
                __m512i qs = lone ? half_load(q + 32 * s) : pair_q(q, s);
                a0 = _mm512_dpbusd_epi32(a0, x, qs);
                x = _mm512_add_epi8(x, _mm512_add_epi8(x, x));
                b0 = _mm512_dpbusd_epi32(b0, x, qs);
            }
            if (lone) { b++; break; }   /* the row's last block */
        }
        /* (3A − B) / 256 per lane: an exact multiple of 256, 256·k with
         * |k| ≤ 256 pairs · 5 planes · 4 products · 2·128 ≈ 1.3e6 < 2^23, so a logical shift and a sign
         * extension from 24 bits divide it (and need no arithmetic shift,
         * which the emulated build's library lacks for 512 bits) */
        __m512i a = _mm512_add_epi32(a0, a1), bb = _mm512_add_epi32(b0, b1), bit23 = _mm512_set1_epi32(1 << 23);
        __m512i k = _mm512_srli_epi32(_mm512_sub_epi32(_mm512_add_epi32(a, _mm512_add_epi32(a, a)), bb), 8);
        total = _mm512_add_epi32(total, _mm512_sub_epi32(_mm512_xor_si512(k, bit23), bit23));
    }
    return hsum512(total);
}
#undef CHUNK1
#else
/* TQ1: five digit planes a pair; two chains of one pair each (five steps). */
TARGET int32_t NAME(row_dot_tq1)(const uint8_t *blk, const int8_t *q, size_t nblk)
{
    __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0;
    size_t b = 0;
    for (; b + 4 <= nblk; b += 4, blk += 128, q += 640) {
        __m512i v0 = _mm512_loadu_si512((const void *)blk), v1 = _mm512_loadu_si512((const void *)(blk + 64));
        __m512i p0 = _mm512_setzero_si512(), p1 = p0;
        for (int s = 0; s < 5; s++) {
            STEP(p0, tq1_digit(&v0), pair_q(q, s));
            STEP(p1, tq1_digit(&v1), pair_q(q + 320, s));
        }
        FLUSH(acc0, p0);
        FLUSH(acc1, p1);
    }
    for (; b < nblk; b += 2, blk += 64, q += 320) {
        int lone = b + 1 == nblk;
        __m512i v = lone ? half_load(blk) : _mm512_loadu_si512((const void *)blk), p = _mm512_setzero_si512();
        for (int s = 0; s < 5; s++) STEP(p, tq1_digit(&v), lone ? half_load(q + 32 * s) : pair_q(q, s));
        FLUSH(acc0, p);
    }
    return hsum512(_mm512_add_epi32(acc0, acc1));
}
#endif

#undef TARGET
#undef NAME
#undef STEP
#undef FLUSH

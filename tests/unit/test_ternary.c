/* test_ternary.c — the TQ2 and TQ1 packings (bf-stream(5)): every code
 * pattern, rows of every length, hand-computed bytes, validation of every
 * byte value, and code counts. */
#include "tap.h"

#include "bf/tensor.h"
#include "bf/ternary.h"
#include "bf/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t lcg_state = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lcg_state >> 17;
}

/* The packings written straight from the definitions, one weight at a time. */
static void ref_pack(bf_dtype dt, const int8_t *w, uint64_t cols, uint8_t *out)
{
    uint64_t nb = dt == BF_TQ2 ? (cols + 3) / 4 : (cols + 4) / 5;
    for (uint64_t b = 0; b < nb; b++) out[b] = 0;
    for (uint64_t k = 0; k < cols; k++) {
        unsigned c = (unsigned)(w[k] + 1);
        if (dt == BF_TQ2) out[k / 4] = (uint8_t)(out[k / 4] + (c << (2 * (k % 4))));
        else {
            unsigned p3 = 1;
            for (uint64_t i = 0; i < k % 5; i++) p3 *= 3;
            out[k / 5] = (uint8_t)(out[k / 5] + c * p3);
        }
    }
}

static int tq2_valid(unsigned b)
{
    for (int i = 0; i < 4; i++)
        if (((b >> (2 * i)) & 3) == 3) return 0;
    return 1;
}

static void test_row_bytes(void)
{
    int bad = 0;
    for (uint64_t c = 0; c <= 100; c++) {
        if (bf_ternary_row_bytes(BF_TQ2, c) != (c + 3) / 4) bad++;
        if (bf_ternary_row_bytes(BF_TQ1, c) != (c + 4) / 5) bad++;
    }
    is_int(bad, 0, "row bytes: ceil(cols/4) for TQ2, ceil(cols/5) for TQ1, cols 0..100");
    is_int((long long)bf_ternary_row_bytes(BF_F32, 8), 0, "row bytes of a non-ternary dtype is 0");
    ok(bf_ternary_row_bytes(BF_TQ2, UINT64_MAX) == UINT64_MAX / 4 + 1, "TQ2 row bytes of 2^64-1 cols does not wrap");
    ok(bf_ternary_row_bytes(BF_TQ1, UINT64_MAX) == UINT64_MAX / 5, "TQ1 row bytes of 2^64-1 cols (a multiple of 5)");
}

/* All 3^5 five-weight rows (TQ1: one byte) and all 3^4 four-weight rows (TQ2). */
static void test_all_patterns(void)
{
    int seen1[256] = {0}, bad_byte = 0, bad_rt = 0;
    for (int p = 0; p < 243; p++) {
        int8_t w[5], back[6];
        unsigned want = 0, mul = 1;
        for (int i = 0, q = p; i < 5; i++, q /= 3, mul *= 3) {
            w[i] = (int8_t)(q % 3 - 1);
            want += (unsigned)(q % 3) * mul;
        }
        uint8_t out[2] = {0xee, 0xee};
        bf_ternary_pack_row(BF_TQ1, w, 5, out);
        if (out[0] != want || out[1] != 0xee) bad_byte++;
        seen1[out[0]]++;
        back[5] = 99;
        bf_ternary_unpack_row(BF_TQ1, out, 5, back);
        if (memcmp(back, w, 5) || back[5] != 99) bad_rt++;
    }
    is_int(bad_byte, 0, "TQ1: each of the 243 five-weight rows packs to sum c_i*3^i, in one byte");
    is_int(bad_rt, 0, "TQ1: each of the 243 rows unpacks back, writing nothing past the row");
    int distinct = 0;
    for (int b = 0; b < 243; b++) distinct += seen1[b] == 1;
    is_int(distinct, 243, "TQ1: the 243 patterns use each byte 0..242 exactly once");

    int seen2[256] = {0};
    bad_byte = bad_rt = 0;
    for (int p = 0; p < 81; p++) {
        int8_t w[4], back[5];
        unsigned want = 0;
        for (int i = 0, q = p; i < 4; i++, q /= 3) {
            w[i] = (int8_t)(q % 3 - 1);
            want |= (unsigned)(q % 3) << (2 * i);
        }
        uint8_t out[2] = {0xee, 0xee};
        bf_ternary_pack_row(BF_TQ2, w, 4, out);
        if (out[0] != want || out[1] != 0xee) bad_byte++;
        seen2[out[0]]++;
        back[4] = 99;
        bf_ternary_unpack_row(BF_TQ2, out, 4, back);
        if (memcmp(back, w, 4) || back[4] != 99) bad_rt++;
    }
    is_int(bad_byte, 0, "TQ2: each of the 81 four-weight rows packs weight k into bits 2k..2k+1");
    is_int(bad_rt, 0, "TQ2: each of the 81 rows unpacks back, writing nothing past the row");
    distinct = 0;
    for (int b = 0; b < 256; b++) distinct += seen2[b] == 1 && tq2_valid((unsigned)b);
    is_int(distinct, 81, "TQ2: the 81 patterns are exactly the 81 bytes without code 3");
}

/* Rows of every length 1..41 with random codes: round trips, the bytes equal
 * the definition, padding slots hold code 0, nothing written past the row. */
static void test_lengths(void)
{
    static const bf_dtype dts[2] = {BF_TQ2, BF_TQ1};
    for (int d = 0; d < 2; d++) {
        bf_dtype dt = dts[d];
        int rt = 0, bytes = 0, guard = 0, padzero = 0;
        for (uint64_t cols = 1; cols <= 41; cols++) {
            for (int rep = 0; rep < 50; rep++) {
                int8_t w[41], back[42];
                uint8_t out[16], ref[16];
                for (uint64_t k = 0; k < cols; k++) w[k] = (int8_t)(rnd() % 3) - 1;
                if (rep == 0) memset(w, 1, cols);   /* all +1: the largest codes */
                uint64_t nb = bf_ternary_row_bytes(dt, cols);
                memset(out, 0xa5, sizeof out);
                bf_ternary_pack_row(dt, w, cols, out);
                ref_pack(dt, w, cols, ref);
                if (memcmp(out, ref, nb)) bytes++;
                for (uint64_t b = nb; b < sizeof out; b++)
                    if (out[b] != 0xa5) guard++;
                /* the last byte's unused slots decode as code 0 */
                uint64_t per = dt == BF_TQ2 ? 4 : 5;
                if (cols % per) {
                    int8_t full[5];
                    bf_ternary_unpack_row(dt, out + nb - 1, per, full);
                    for (uint64_t s = cols % per; s < per; s++)
                        if (full[s] != -1) padzero++;
                }
                memset(back, 77, sizeof back);
                bf_ternary_unpack_row(dt, out, cols, back);
                if (memcmp(back, w, cols) || back[cols] != 77) rt++;
                if (bf_ternary_validate(dt, out, nb)) rt++;
            }
        }
        const char *nm = bf_dtype_name(dt);
        is_int(rt, 0, "%s: rows of 1..41 random weights round-trip and validate", nm);
        is_int(bytes, 0, "%s: packed bytes equal the definition for every length", nm);
        is_int(guard, 0, "%s: pack writes only ceil(cols/%d) bytes", nm, dt == BF_TQ2 ? 4 : 5);
        is_int(padzero, 0, "%s: unused slots at a row's end hold code 0", nm);
    }
}

/* The rows of tests/vectors/ternary.json, packed by hand.
 *   codes c = w + 1
 *   row 0: w = [-1, 1,-1,-1, 0, 0,-1]  c = [0,2,0,0,1,1,0]
 *   row 1: w = [-1, 0, 0, 0, 0, 0, 0]  c = [0,1,1,1,1,1,1]
 *   row 2: w = [-1, 0, 0, 1, 1, 0, 0]  c = [0,1,1,2,2,1,1]
 * TQ2, byte = c0 | c1<<2 | c2<<4 | c3<<6:
 *   row 0: 0|8|0|0 = 0x08,  1|4|0 = 0x05
 *   row 1: 0|4|16|64 = 0x54, 1|4|16 = 0x15
 *   row 2: 0|4|16|128 = 0x94, 2|4|16 = 0x16
 * TQ1, byte = c0 + 3c1 + 9c2 + 27c3 + 81c4:
 *   row 0: 0+6+0+0+81 = 87 = 0x57, 1+0 = 0x01
 *   row 1: 0+3+9+27+81 = 120 = 0x78, 1+3 = 0x04
 *   row 2: 0+3+9+54+162 = 228 = 0xe4, 1+3 = 0x04 */
static void test_hand_bytes(void)
{
    static const int8_t rows[3][7] = {
        {-1, 1, -1, -1, 0, 0, -1},
        {-1, 0, 0, 0, 0, 0, 0},
        {-1, 0, 0, 1, 1, 0, 0},
    };
    static const uint8_t tq2[3][2] = {{0x08, 0x05}, {0x54, 0x15}, {0x94, 0x16}};
    static const uint8_t tq1[3][2] = {{0x57, 0x01}, {0x78, 0x04}, {0xe4, 0x04}};
    for (int r = 0; r < 3; r++) {
        uint8_t out[2];
        int8_t back[7];
        bf_ternary_pack_row(BF_TQ2, rows[r], 7, out);
        ok(out[0] == tq2[r][0] && out[1] == tq2[r][1], "TQ2 row %d packs to %02x %02x (got %02x %02x)", r, tq2[r][0],
           tq2[r][1], out[0], out[1]);
        bf_ternary_unpack_row(BF_TQ2, tq2[r], 7, back);
        ok(!memcmp(back, rows[r], 7), "TQ2 bytes %02x %02x unpack to row %d", tq2[r][0], tq2[r][1], r);
        bf_ternary_pack_row(BF_TQ1, rows[r], 7, out);
        ok(out[0] == tq1[r][0] && out[1] == tq1[r][1], "TQ1 row %d packs to %02x %02x (got %02x %02x)", r, tq1[r][0],
           tq1[r][1], out[0], out[1]);
        bf_ternary_unpack_row(BF_TQ1, tq1[r], 7, back);
        ok(!memcmp(back, rows[r], 7), "TQ1 bytes %02x %02x unpack to row %d", tq1[r][0], tq1[r][1], r);
    }
    /* a few more by hand: TQ2 [1,1,1,1] = 0b10101010; TQ1 [1,1,1,1,1] = 2*(1+3+9+27+81) = 242 */
    int8_t ones[5] = {1, 1, 1, 1, 1}, zeros[5] = {0, 0, 0, 0, 0}, neg[5] = {-1, -1, -1, -1, -1};
    uint8_t o[2];
    bf_ternary_pack_row(BF_TQ2, ones, 4, o);
    is_int(o[0], 0xaa, "TQ2 [1,1,1,1] is 0xaa");
    bf_ternary_pack_row(BF_TQ2, zeros, 4, o);
    is_int(o[0], 0x55, "TQ2 [0,0,0,0] is 0x55");
    bf_ternary_pack_row(BF_TQ2, neg, 4, o);
    is_int(o[0], 0x00, "TQ2 [-1,-1,-1,-1] is 0x00");
    bf_ternary_pack_row(BF_TQ1, ones, 5, o);
    is_int(o[0], 242, "TQ1 [1,1,1,1,1] is 242");
    bf_ternary_pack_row(BF_TQ1, zeros, 5, o);
    is_int(o[0], 121, "TQ1 [0,0,0,0,0] is 121");
    int8_t one[1] = {1};
    bf_ternary_pack_row(BF_TQ1, one, 1, o);
    is_int(o[0], 2, "TQ1 [1] is 2");
    bf_ternary_pack_row(BF_TQ2, one, 1, o);
    is_int(o[0], 2, "TQ2 [1] is 2");
}

static void test_validate(void)
{
    int acc = 0, ref = 0;
    for (int b = 0; b < 256; b++) {
        uint8_t x = (uint8_t)b;
        int v = bf_ternary_validate(BF_TQ2, &x, 1);
        if (tq2_valid((unsigned)b)) { if (v != 0) acc++; }
        else if (v != -1) ref++;
    }
    is_int(acc, 0, "TQ2: all 81 bytes without a code 3 are accepted");
    is_int(ref, 0, "TQ2: each of the 175 bytes with a code 3 in any slot is refused");
    acc = ref = 0;
    for (int b = 0; b < 256; b++) {
        uint8_t x = (uint8_t)b;
        int v = bf_ternary_validate(BF_TQ1, &x, 1);
        if (b < 243) { if (v != 0) acc++; }
        else if (v != -1) ref++;
    }
    is_int(acc, 0, "TQ1: bytes 0..242 are accepted");
    is_int(ref, 0, "TQ1: each of the bytes 243..255 is refused");

    /* in a long valid buffer, one bad byte anywhere is found and named */
    uint8_t buf[1000];
    int found = 0, named = 0;
    for (int d = 0; d < 2; d++) {
        bf_dtype dt = d ? BF_TQ1 : BF_TQ2;
        for (int trial = 0; trial < 40; trial++) {
            for (int k = 0; k < 1000; k++) {
                uint8_t x;
                do x = (uint8_t)rnd(); while (d ? x >= 243 : !tq2_valid(x));
                buf[k] = x;
            }
            if (bf_ternary_validate(dt, buf, 1000) != 0) found += 100;   /* a valid buffer refused */
            size_t at = 256 + (size_t)(rnd() % 744);   /* never equal to a bad byte's value */
            buf[at] = d ? (uint8_t)(243 + rnd() % 13) : (uint8_t)(3u << (2 * (rnd() % 4)));
            if (bf_ternary_validate(dt, buf, 1000) == -1) found++;
            char want[32];
            snprintf(want, sizeof want, " %zu", at);
            const char *m = bf_errmsg();
            const char *p = strstr(m, want);
            if (p && (p[strlen(want)] < '0' || p[strlen(want)] > '9')) named++;
            else if (named < 3) diag("message '%s' should name offset %zu", m, at);
        }
    }
    is_int(found, 80, "one invalid byte in 1000 valid ones is always found (TQ2 and TQ1)");
    is_int(named, 80, "the error names the bad byte's offset");
    ok(bf_ternary_validate(BF_TQ2, buf, 0) == 0, "an empty payload is valid");
}

static void test_count(void)
{
    static const uint64_t shapes[][2] = {{1, 1}, {3, 7}, {5, 41}, {2, 4000}, {3, 4001}, {2, 9001}, {4, 20}, {0, 9}, {6, 0}};
    for (int d = 0; d < 2; d++) {
        bf_dtype dt = d ? BF_TQ1 : BF_TQ2;
        int bad = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            uint64_t rows = shapes[s][0], cols = shapes[s][1], rb = bf_ternary_row_bytes(dt, cols);
            uint8_t *p = calloc(rows * rb + 1, 1);
            int8_t *w = malloc(cols + 1);
            uint64_t want[3] = {0, 0, 0}, got[3] = {9, 9, 9};
            for (uint64_t r = 0; r < rows; r++) {
                /* skewed shares so that a swapped count shows */
                for (uint64_t c = 0; c < cols; c++) {
                    uint64_t x = rnd() % 10;
                    w[c] = x < 2 ? -1 : x < 7 ? 0 : 1;
                    want[w[c] + 1]++;
                }
                bf_ternary_pack_row(dt, w, cols, p + r * rb);
            }
            bf_ternary_count(dt, p, rows, cols, got);
            if (memcmp(got, want, sizeof want)) {
                bad++;
                diag("%s [%llu,%llu]: got %llu/%llu/%llu want %llu/%llu/%llu", bf_dtype_name(dt),
                     (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)got[0],
                     (unsigned long long)got[1], (unsigned long long)got[2], (unsigned long long)want[0],
                     (unsigned long long)want[1], (unsigned long long)want[2]);
            }
            free(p);
            free(w);
        }
        is_int(bad, 0, "%s: counts of -1/0/+1 equal a direct tally (widths past 4000, padded rows, empty)",
               bf_dtype_name(dt));
    }
    /* padding slots (code 0 = weight -1 bits) are not counted */
    int8_t z[7] = {0, 0, 0, 0, 0, 0, 0};
    uint8_t p[2];
    uint64_t c[3];
    bf_ternary_pack_row(BF_TQ2, z, 7, p);
    bf_ternary_count(BF_TQ2, p, 1, 7, c);
    ok(c[0] == 0 && c[1] == 7 && c[2] == 0, "TQ2 [1,7] of zeros counts 7 zeros, no -1 from the padding slot");
    bf_ternary_pack_row(BF_TQ1, z, 7, p);
    bf_ternary_count(BF_TQ1, p, 1, 7, c);
    ok(c[0] == 0 && c[1] == 7 && c[2] == 0, "TQ1 [1,7] of zeros counts 7 zeros, no -1 from the padding slots");
}

/* Ternary tensors through bf_tensor_to_f32: codes as floats. */
static void test_to_f32(void)
{
    for (int d = 0; d < 2; d++) {
        bf_dtype dt = d ? BF_TQ1 : BF_TQ2;
        bf_tensor t;
        uint64_t sh[2] = {4, 13};
        bf_tensor_init(&t, "w", dt, 2, sh);
        int8_t w[4][13];
        uint64_t rb = bf_ternary_row_bytes(dt, 13);
        for (int r = 0; r < 4; r++) {
            for (int c = 0; c < 13; c++) w[r][c] = (int8_t)(rnd() % 3) - 1;
            bf_ternary_pack_row(dt, w[r], 13, (uint8_t *)t.data + r * rb);
        }
        float out[52];
        int bad = bf_tensor_to_f32(&t, out) != 0;
        for (int k = 0; k < 52; k++) bad += out[k] != (float)w[k / 13][k % 13];
        is_int(bad, 0, "%s [4,13] through bf_tensor_to_f32 gives the codes", bf_dtype_name(dt));
        bf_tensor_release(&t);
        /* an empty ternary tensor with a very wide row: nothing to convert, nothing to allocate */
        uint64_t wide[2] = {0, 1ull << 40};
        int rc = bf_tensor_init(&t, "wide", dt, 2, wide);
        is_int(rc, 0, "%s [0, 2^40] is a valid empty tensor", bf_dtype_name(dt));
        if (rc == 0) {
            float dummy = 5;
            is_int(bf_tensor_to_f32(&t, &dummy), 0, "%s [0, 2^40] converts (to nothing)", bf_dtype_name(dt));
            ok(dummy == 5, "and writes nothing");
        }
        bf_tensor_release(&t);
    }
}

int main(void)
{
    test_row_bytes();
    test_all_patterns();
    test_lengths();
    test_hand_bytes();
    test_validate();
    test_count();
    test_to_f32();
    return tap_done();
}

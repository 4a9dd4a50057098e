/* test_compress.c — the archive methods of bf/compress.h: the rANS coder's
 * round trips and its refusals of corrupt members, SeedLM's error on
 * N(0,1) weights and its independence of the thread count, vq and int8,
 * the manifest's JSON, and an archive read in memory to its end. */
#include "tap.h"
#include "bf/compress.h"
#include "bf/rng.h"
#include "bf/tensor.h"
#include "bf/ternary.h"
#include "bf/thread.h"
#include "bf/util.h"
#include "bf/bytes.h"
#include "bf/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- rANS */

/* n codes: -1 with p[0], 0 with p[1], else +1 */
static void gen_codes(int8_t *c, uint64_t n, double pm, double pz, uint64_t seed)
{
    bf_rng r = bf_rng_derive(seed, "codes");
    for (uint64_t i = 0; i < n; i++) {
        double u = bf_rng_uniform(&r);
        c[i] = u < pm ? -1 : u < pm + pz ? 0 : 1;
    }
}

/* encodes, decodes, compares; returns the member length (0 on failure) */
static size_t round_trip(const int8_t *c, uint64_t n, const char *what)
{
    uint8_t *m = malloc(bf_rans_bound(n));
    int8_t *back = malloc(n ? n : 1);
    size_t len = bf_rans_encode(c, n, m);
    int ok_ = len <= bf_rans_bound(n) && bf_rans_decode(m, len, back, n) == 0 && (n == 0 || memcmp(c, back, n) == 0);
    ok(ok_, "rans %s, n %llu: round trip (%zu bytes)", what, (unsigned long long)n, len);
    free(m);
    free(back);
    return ok_ ? len : 0;
}

static double entropy_of(const int8_t *c, uint64_t n)
{
    uint64_t k[3] = {0, 0, 0};
    for (uint64_t i = 0; i < n; i++) k[c[i] + 1]++;
    return bf_code_entropy(k);
}

static void test_rans(void)
{
    static const struct { const char *name; double pm, pz; } dist[] = {
        {"uniform", 1.0 / 3, 1.0 / 3}, {"90% zeros", 0.05, 0.9}, {"absmean-like", 0.345, 0.31},
        {"all zeros", 0, 1}, {"all +1", 0, 0}, {"all -1", 1, 0}, {"99.9% zeros", 0.0005, 0.999}};
    static const uint64_t lens[] = {0, 1, 2, 1000, 1000000};
    for (size_t d = 0; d < sizeof dist / sizeof dist[0]; d++)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            uint64_t n = lens[l];
            int8_t *c = malloc(n ? n : 1);
            gen_codes(c, n, dist[d].pm, dist[d].pz, d * 10 + l);
            size_t len = round_trip(c, n, dist[d].name);
            if (n == 1000000) {
                double h = entropy_of(c, n), bits = 8.0 * (double)(len - 10);
                /* within 0.5% of H·n, and 64 bits (a near-zero H) */
                ok(bits <= h * (double)n * 1.005 + 64, "rans %s: %.5f bits a code for entropy %.5f", dist[d].name, bits / (double)n, h);
                diag("rans %s: %.5f bits a code, entropy %.5f (%.3f%% above)", dist[d].name, bits / (double)n, h,
                     h > 0 ? 100 * (bits / (double)n / h - 1) : 0);
            }
            free(c);
        }
    /* adversarial sequences */
    uint64_t n = 100000;
    int8_t *c = malloc(n);
    for (uint64_t i = 0; i < n; i++) c[i] = (int8_t)((int)(i % 3) - 1);
    round_trip(c, n, "cycle -1 0 +1");
    for (uint64_t i = 0; i < n; i++) c[i] = (i & 1) ? 1 : -1;
    round_trip(c, n, "alternating");
    memset(c, 0, n);
    c[n / 2] = 1;
    round_trip(c, n, "a single nonzero");
    c[n / 2] = 0;
    c[n - 1] = -1;
    round_trip(c, n, "a single nonzero at the end");
    c[n - 1] = 0;
    c[0] = 1;
    round_trip(c, n, "a single nonzero at the start");
    for (uint64_t i = 0; i < n; i++) c[i] = i < n / 2 ? 0 : (i & 1 ? 1 : -1);
    round_trip(c, n, "zeros then alternating");
    for (uint64_t i = 0; i < n; i++) c[i] = (int8_t)(i < 3 ? i - 1 : 0);
    round_trip(c, 3, "one each");
    free(c);

    /* corrupt members: every truncation and every single-byte change of a
     * small member fails cleanly or decodes to some codes (never a crash;
     * ASan checks the reads); nearly all must fail */
    n = 300;
    c = malloc(n);
    gen_codes(c, n, 0.3, 0.4, 99);
    uint8_t *m = malloc(bf_rans_bound(n)), *bad = malloc(bf_rans_bound(n));
    int8_t *back = malloc(n + 1);   /* room for the "a code too many" case */
    size_t len = bf_rans_encode(c, n, m);
    int trunc_ok = 1;
    for (size_t l = 0; l < len; l++) {
        memcpy(bad, m, l);
        if (bf_rans_decode(bad, l, back, n) == 0) trunc_ok = 0;
    }
    ok(trunc_ok, "rans: every truncation of a %zu-byte member is an error", len);
    size_t accepted = 0, tried = 0;
    for (size_t at = 0; at < len; at++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, m, len);
            bad[at] ^= (uint8_t)(1u << bit);
            tried++;
            if (bf_rans_decode(bad, len, back, n) == 0) accepted++;
        }
    ok(accepted * 100 <= tried, "rans: %zu of %zu single-bit changes decode without an error", accepted, tried);
    memcpy(bad, m, len);
    bad[0] ^= 1;
    ok(bf_rans_decode(bad, len, back, n) != 0 && strstr(bf_errmsg(), "sum"), "rans: frequencies that do not sum: %s", bf_errmsg());
    memcpy(bad, m, len + 0);
    bad[len] = 0;
    ok(bf_rans_decode(bad, len + 1, back, n) != 0, "rans: a byte too many is an error");
    ok(bf_rans_decode(m, len, back, n + 1) != 0, "rans: a code too many is an error");
    ok(bf_rans_decode(m, len, back, n - 1) != 0, "rans: a code too few is an error");
    /* random bytes never crash */
    bf_rng r = bf_rng_derive(7, "garbage");
    for (int k = 0; k < 2000; k++) {
        size_t l = (size_t)bf_rng_below(&r, 64);
        for (size_t i = 0; i < l; i++) bad[i] = (uint8_t)bf_rng_next(&r);
        if (k & 1) { bf_put_le16(bad, 10000); bf_put_le16(bad + 2, 12768); bf_put_le16(bad + 4, 10000); }
        (void)bf_rans_decode(bad, l, back, n);
    }
    ok(1, "rans: 2000 random members decoded without a crash");
    free(back);
    free(bad);
    free(m);
    free(c);
}

/* --------------------------------------------------------------- SeedLM */

static double seedlm_error(bf_seedlm_shape sh, const float *w, const float *hat, uint64_t n)
{
    double acc = 0;
    uint64_t blocks = 0;
    for (uint64_t b = 0; b * (uint64_t)sh.c < n; b++) {
        double e = 0, s = 0;
        for (int i = 0; i < sh.c && b * (uint64_t)sh.c + (uint64_t)i < n; i++) {
            uint64_t k = b * (uint64_t)sh.c + (uint64_t)i;
            e += ((double)w[k] - hat[k]) * ((double)w[k] - hat[k]);
            s += (double)w[k] * w[k];
        }
        if (s > 0) { acc += e / s; blocks++; }
    }
    return sqrt(acc / (double)blocks);
}

static void test_seedlm(void)
{
    /* the LFSR: 0 stays 0; from 1 its period */
    ok(bf_lfsr16_step(0) == 0, "lfsr: state 0 is stuck");
    uint16_t x = 1;
    uint32_t period = 0;
    do { x = bf_lfsr16_step(x); period++; } while (x != 1 && period < 70000);
    diag("lfsr taps 0,1,3,12: period from 1 is %u", period);
    ok(period < 70000, "lfsr: state 1 comes back (period %u)", period);

    uint64_t n = 4096;
    float *w = malloc(n * sizeof(float)), *hat = malloc(n * sizeof(float));
    bf_rng r = bf_rng_derive(1, "seedlm");
    for (uint64_t i = 0; i < n; i++) w[i] = (float)bf_rng_normal(&r);
    static const struct { const char *name; int c, p; double bar; } cfg[] = {{"seedlm4", 8, 3, 0.15}, {"seedlm3", 12, 4, 0.25}};
    for (int k = 0; k < 2; k++) {
        bf_seedlm_shape sh = {cfg[k].c, cfg[k].p};
        uint64_t bytes = bf_seedlm_bytes(sh, n);
        uint8_t *m1 = malloc(bytes), *m2 = malloc(bytes);
        bf_threads_set(1);
        double t0 = bf_now();
        ok(bf_seedlm_encode(sh, w, n, m1) == 0, "%s: encode 4096 N(0,1) weights", cfg[k].name);
        double t1 = bf_now();
        bf_threads_set(2);
        bf_seedlm_encode(sh, w, n, m2);
        double t2 = bf_now();
        ok(memcmp(m1, m2, bytes) == 0, "%s: the same bytes on 1 and 2 threads", cfg[k].name);
        ok(bf_seedlm_decode(sh, m1, bytes, hat, n) == 0, "%s: decode", cfg[k].name);
        double err = seedlm_error(sh, w, hat, n);
        double bpw = 8.0 * (double)(bytes - 4) / (double)n;
        diag("%s: relative error %.4f (bar %.2f), %.3f bits a weight; %.2f s on 1 thread, %.2f s on 2 (%.3g seeds a second)",
             cfg[k].name, err, cfg[k].bar, bpw, t1 - t0, t2 - t1, 65535.0 * (double)((n + (uint64_t)sh.c - 1) / (uint64_t)sh.c) / (t1 - t0));
        ok(err <= cfg[k].bar, "%s: relative error %.4f <= %.2f", cfg[k].name, err, cfg[k].bar);
        uint64_t blocks = (n + (uint64_t)sh.c - 1) / (uint64_t)sh.c;
        is_near(bpw, (double)(((blocks * (uint64_t)(20 + 4 * sh.p)) + 7) / 8 * 8) / (double)n, 1e-9, "%s: bits a weight", cfg[k].name);
        is_near((double)(20 + 4 * sh.p) / sh.c, sh.c == 8 ? 4.0 : 3.0, 1e-12, "%s: %d bits a block of %d", cfg[k].name, 20 + 4 * sh.p, sh.c);
        /* a partial last block, and a scale far from 1 */
        uint64_t n2 = 29;
        for (uint64_t i = 0; i < n2; i++) w[i] *= 1e-3f;
        uint64_t b2 = bf_seedlm_bytes(sh, n2);
        uint8_t *m3 = calloc(1, b2);
        ok(bf_seedlm_encode(sh, w, n2, m3) == 0 && bf_seedlm_decode(sh, m3, b2, hat, n2) == 0, "%s: 29 weights of scale 1e-3", cfg[k].name);
        double e2 = seedlm_error(sh, w, hat, n2);
        ok(e2 < 0.5, "%s: their error %.3f", cfg[k].name, e2);
        for (uint64_t i = 0; i < n2; i++) w[i] *= 1e3f;
        /* corrupt members */
        ok(bf_seedlm_decode(sh, m3, b2 - 1, hat, n2) != 0, "%s: a short member is an error", cfg[k].name);
        uint8_t save = m3[4], save5 = m3[5];
        m3[4] = m3[5] = 0;
        ok(bf_seedlm_decode(sh, m3, b2, hat, n2) != 0 && strstr(bf_errmsg(), "seed 0"), "%s: seed 0 is an error: %s", cfg[k].name, bf_errmsg());
        m3[4] = save;
        m3[5] = save5;
        m3[2] = 120;
        ok(bf_seedlm_decode(sh, m3, b2, hat, n2) != 0, "%s: a base exponent out of range is an error", cfg[k].name);
        free(m3);
        free(m1);
        free(m2);
    }
    /* zeros */
    memset(w, 0, 64 * sizeof(float));
    uint8_t mz[64];
    ok(bf_seedlm_encode(BF_SEEDLM4, w, 64, mz) == 0 && bf_seedlm_decode(BF_SEEDLM4, mz, bf_seedlm_bytes(BF_SEEDLM4, 64), hat, 64) == 0,
       "seedlm4: zeros round trip");
    int zeros = 1;
    for (int i = 0; i < 64; i++) zeros &= hat[i] == 0;
    ok(zeros, "seedlm4: zeros come back as zeros");
    free(w);
    free(hat);
}

/* ------------------------------------------------------------- vq, int8 */

static void test_vq_int8(void)
{
    uint64_t n = 8192 + 3;
    float *w = malloc(n * sizeof(float)), *hat = malloc(n * sizeof(float));
    bf_rng r = bf_rng_derive(2, "vq");
    for (uint64_t i = 0; i < n; i++) w[i] = (float)bf_rng_normal(&r);
    uint64_t bytes = bf_vq_bytes(n);
    uint8_t *m1 = malloc(bytes), *m2 = malloc(bytes);
    bf_threads_set(1);
    ok(bf_vq_encode(w, n, 5, m1) == 0, "vq: encode");
    bf_threads_set(2);
    bf_vq_encode(w, n, 5, m2);
    ok(memcmp(m1, m2, bytes) == 0, "vq: the same bytes on 1 and 2 threads");
    ok(bf_vq_decode(m1, bytes, hat, n) == 0, "vq: decode");
    double e = 0, s = 0;
    for (uint64_t i = 0; i < n; i++) { e += (w[i] - hat[i]) * (w[i] - hat[i]); s += (double)w[i] * w[i]; }
    diag("vq: relative error %.4f, %.3f bits a weight", sqrt(e / s), 8.0 * (double)bytes / (double)n);
    ok(sqrt(e / s) < 0.6, "vq: relative error %.4f below 0.6", sqrt(e / s));
    bf_put_le16(m1, 255);
    ok(bf_vq_decode(m1, bytes, hat, n) != 0, "vq: a wrong k is an error");
    bf_put_le16(m1, 256);
    bf_put_le16(m1 + 4, 0x7c00);
    ok(bf_vq_decode(m1, bytes, hat, n) != 0, "vq: an infinite codebook entry is an error");
    /* fewer vectors than codebook entries: an index past k */
    uint64_t n3 = 10;
    uint8_t m3[64];
    ok(bf_vq_encode(w, n3, 1, m3) == 0 && bf_vq_decode(m3, bf_vq_bytes(n3), hat, n3) == 0, "vq: 10 weights");
    m3[bf_vq_bytes(n3) - 1] = 3;
    ok(bf_vq_decode(m3, bf_vq_bytes(n3), hat, n3) != 0, "vq: an index past the codebook is an error: %s", bf_errmsg());

    uint64_t rows = 7, cols = 33;
    uint8_t *q = malloc(bf_int8_bytes(rows, cols));
    bf_int8_encode(w, rows, cols, q);
    ok(bf_int8_decode(q, bf_int8_bytes(rows, cols), hat, rows, cols) == 0, "int8: decode");
    int within = 1;
    for (uint64_t rr = 0; rr < rows; rr++) {
        float amax = 0;
        for (uint64_t c = 0; c < cols; c++) amax = fmaxf(amax, fabsf(w[rr * cols + c]));
        for (uint64_t c = 0; c < cols; c++) within &= fabsf(w[rr * cols + c] - hat[rr * cols + c]) <= amax / 127 * 0.5001f;
    }
    ok(within, "int8: every value within half a step");
    float nan = NAN;
    memcpy(q, &nan, 4);
    ok(bf_int8_decode(q, bf_int8_bytes(rows, cols), hat, rows, cols) != 0, "int8: a NaN scale is an error");
    free(q);
    free(m1);
    free(m2);
    free(w);
    free(hat);
}

/* ----------------------------------------------------------------- JSON */

static void test_json(void)
{
    const char *doc = "{\"a\":1,\"b\":-2.5,\"c\":[true,false,null,\"x\\u00e9\\n\"],\"d\":{},\"e\":2.0,\"f\":9223372036854775807,"
                      "\"g\":-9223372036854775808,\"h\":1e-999}";
    bf_val *v = bf_json_parse(doc, strlen(doc), "manifest.json");
    ok(v && v->type == BF_MAP, "json: parses");
    ok(v && bf_val_get(v, "a")->type == BF_INT && bf_val_get(v, "e")->type == BF_FLOAT && bf_val_get(v, "f")->type == BF_INT &&
       bf_val_get(v, "f")->v.i == INT64_MAX && bf_val_get(v, "g")->v.i == INT64_MIN && bf_val_get(v, "h")->type == BF_FLOAT,
       "json: integers (all of int64) and floats keep their types");
    ok(v && v->v.a.n == 8 && strcmp(v->v.a.keys[0], "a") == 0 && strcmp(v->v.a.keys[7], "h") == 0, "json: keys keep their order");
    bf_buf b = {0};
    ok(v && bf_json_write(&b, v) == 0, "json: writes");
    bf_val *w = b.p ? bf_json_parse((const char *)b.p, b.n, "manifest.json") : NULL;
    bf_buf b2 = {0};
    ok(w && bf_json_write(&b2, w) == 0 && b.n == b2.n && memcmp(b.p, b2.p, b.n) == 0, "json: round trip is stable: %.*s", (int)b.n, (char *)b.p);
    free(b.p);
    free(b2.p);
    bf_val_free(v);
    bf_val_free(w);
    /* each bad document and a word its message must hold */
    static const char *const bad[][2] = {
        {"", "unexpected end"}, {"{", "unexpected end"}, {"[1,]", "bad value"}, {"{\"a\"}", "expected ':'"},
        {"{\"a\":1,\"a\":2}", "duplicate key"}, {"\"\\u0000\"", "NUL"}, {"{\"a\\u0000\":1}", "NUL"},
        {"\"\\ud800\"", "surrogate"}, {"01", "at byte"}, {"1.", "at byte"}, {"[1] x", "trailing bytes"},
        {"\"a\nb\"", "control character"}, {"\"a\xff\"", "invalid UTF-8"}, {"\"\xc0\xaf\"", "invalid UTF-8"},
        {"\"\xed\xa0\x80\"", "invalid UTF-8"}, {"nul", "at byte"}, {"1e999", "number out of range"},
        {"9223372036854775808", "integer out of range"}, {"-9223372036854775809", "integer out of range"},
        {"18446744073709551615", "integer out of range"}, {"{\"a\":1}}", "trailing bytes"}, {"-", "at byte"},
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "nesting too deep"}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        bf_val *x = bf_json_parse(bad[k][0], strlen(bad[k][0]), "manifest.json");
        ok(!x && strncmp(bf_errmsg(), "manifest.json: ", 15) == 0 && strstr(bf_errmsg(), bad[k][1]),
           "json: refuses bad document %zu (%s)", k, bf_errmsg());
        bf_val_free(x);
    }
    /* the limits: 32 levels below the top and 65,536 entries a container */
    char deep[80];
    for (int d = 0; d < 2; d++) {
        int n = 33 + d;
        for (int k = 0; k < n; k++) deep[k] = '[';
        for (int k = 0; k < n; k++) deep[n + k] = ']';
        bf_val *x = bf_json_parse(deep, (size_t)(2 * n), "manifest.json");
        ok(d ? !x && strstr(bf_errmsg(), "nesting too deep") : x != NULL, "json: %d nested arrays %s", n, d ? "refused" : "read");
        bf_val_free(x);
    }
    for (int d = 0; d < 2; d++) {
        bf_buf t = {0};
        size_t n = 65536 + (size_t)d;
        bf_buf_str(&t, "{");
        for (size_t k = 0; k < n; k++) {
            char e[32];
            snprintf(e, sizeof e, "%s\"k%zu\":%zu", k ? "," : "", k, k);
            bf_buf_str(&t, e);
        }
        bf_buf_str(&t, "}");
        double t0 = bf_now();
        bf_val *x = bf_json_parse((const char *)t.p, t.n, "manifest.json");
        double dt = bf_now() - t0;
        if (d) ok(!x && strstr(bf_errmsg(), "too many entries"), "json: %zu keys refused (%s)", n, bf_errmsg());
        else
            ok(x && x->v.a.n == n && strcmp(x->v.a.keys[n - 1], "k65535") == 0 && x->v.a.items[n - 1].v.i == 65535 && dt < 5,
               "json: %zu keys read, in order, in %.3f s", n, dt);
        bf_val_free(x);
        free(t.p);
    }
    bf_val *f = bf_val_map();
    bf_val_set(f, "x", bf_val_float(NAN));
    b = (bf_buf){0};
    ok(bf_json_write(&b, f) != 0, "json: a NaN is refused");
    free(b.p);
    bf_val_free(f);
    f = bf_val_arr();
    bf_val *u = bf_val_new(BF_UINT);
    u->v.u = UINT64_MAX;
    bf_val_push(f, u);
    b = (bf_buf){0};
    ok(bf_json_write(&b, f) != 0 && strstr(bf_errmsg(), "integer"), "json: an integer above int64 is refused (%s)", bf_errmsg());
    free(b.p);
    bf_val_free(f);
}

/* ------------------------------------------------------------- archives */

/* An archive in memory reads back as it was written, and stays at its end
 * once read there (libarchive must not be asked for a header after its end);
 * a cut one never reads as complete. */
static void test_archive_memory(void)
{
    bf_header h;
    bf_header_init(&h, "model");
    bf_val_set(h.meta, "note", bf_val_str("kept"));
    bf_tset s = {0};
    uint64_t sa[2] = {2, 3}, sw[2] = {2, 5}, ss[1] = {1};
    bf_tensor *a = bf_tset_add(&s), *w = bf_tset_add(&s), *sc = bf_tset_add(&s);
    bf_tensor_init(a, "a", BF_F32, 2, sa);
    bf_tensor_init(w, "w", BF_TQ2, 2, sw);
    bf_tensor_init(sc, "w.scale", BF_F32, 1, ss);
    for (int k = 0; k < 6; k++) ((float *)a->data)[k] = 0.25f * (float)k - 0.5f;
    static const int8_t codes[2][5] = {{1, -1, 0, 0, 1}, {0, 0, -1, 1, -1}};
    for (int k = 0; k < 2; k++) bf_ternary_pack_row(BF_TQ2, codes[k], 5, (uint8_t *)w->data + 2 * k);
    ((float *)sc->data)[0] = 0.125f;
    bf_cz_opts o = {.ternary = BF_CZ_ENTROPY, .flt = BF_CZ_F32, .codec = BF_CZ_ZSTD, .seed = 1};
    uint8_t *buf = NULL;
    size_t len = 0;
    bf_cz_report rep;
    int rc = bf_compress(&h, &s, &o, &buf, &len, &rep);
    ok(rc == 0, "archive: compresses%s%s", rc ? ": " : "", rc ? bf_errmsg() : "");
    if (rc == 0) bf_cz_report_release(&rep);
    bf_cz_reader *r = rc == 0 ? bf_cz_memopen(buf, len, "mem") : NULL;
    ok(r && !strcmp(bf_cz_header(r)->kind, "model") && bf_val_get_str(bf_cz_header(r)->meta, "note"),
       "archive in memory: opens, with its kind and meta");
    int same = 1, got = 0;
    bf_tensor t;
    while (r && (rc = bf_cz_next(r, &t)) == 1) {
        const bf_tensor *want = got < (int)s.n ? &s.t[got] : NULL;
        if (!want || strcmp(t.name, want->name) || t.dtype != want->dtype || t.nbytes != want->nbytes ||
            memcmp(t.data, want->data, (size_t)t.nbytes))
            same = 0;
        got++;
        bf_tensor_release(&t);
    }
    ok(r && rc == 0 && got == 3 && same, "archive in memory: the three tensors back, bit for bit");
    ok(r && bf_cz_next(r, &t) == 0 && bf_cz_next(r, &t) == 0, "archive in memory: stays at its end");
    bf_cz_close(r);
    int complete = 0;
    for (size_t cut = 0; rc == 0 && cut < len; cut += 7) {
        bf_cz_reader *c = bf_cz_memopen(buf, cut, "cut");
        int crc = -1;
        while (c && (crc = bf_cz_next(c, &t)) == 1) bf_tensor_release(&t);
        if (c && crc == 0) complete++;
        bf_cz_close(c);
    }
    is_int(complete, 0, "archive in memory: no cut of it reads as complete");
    free(buf);
    bf_tset_release(&s);
    bf_header_release(&h);
}

int main(void)
{
    test_archive_memory();
    test_rans();
    test_seedlm();
    test_vq_int8();
    test_json();
    return tap_done();
}

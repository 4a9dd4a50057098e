/* test_vectors.c — the reader against streams written by an independent
 * implementation (tests/vectors, see its README.md; $BF_VECTORS, which
 * `make test` sets, or tests/vectors from the repository's top): every *.bf
 * reads to a verified trailer; dtypes.bf and ternary.bf equal their .json;
 * data-tiny.bf and the model-*.bf files have the tensors that bf-data(1) and
 * bf-init(1) name. */
#include "tap.h"

#include "bf/stream.h"
#include "bf/tensor.h"
#include "bf/ternary.h"
#include "bf/util.h"
#include "bf/val.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

/* ------------------------------------------------ a tiny JSON reader */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct json json;
struct json {
    jtype type;
    double num;         /* J_NUM, J_BOOL */
    int is_int;         /* J_NUM written without '.', 'e' */
    long long ival;     /* J_NUM when is_int (exact, for int64 values) */
    char *str;          /* J_STR */
    json *items;        /* J_ARR, J_OBJ */
    char **keys;        /* J_OBJ */
    size_t n;
};

static const char *jp;
static int jerr;

static void jws(void)
{
    while (*jp == ' ' || *jp == '\n' || *jp == '\r' || *jp == '\t') jp++;
}

static void jparse(json *v);

static char *jstring(void)
{
    /* the vectors hold plain ASCII strings; \" \\ \/ \n \t are handled */
    jp++;
    size_t cap = 16, n = 0;
    char *s = malloc(cap);
    while (*jp && *jp != '"') {
        char c = *jp++;
        if (c == '\\') {
            c = *jp++;
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        }
        if (n + 2 > cap) s = realloc(s, cap *= 2);
        s[n++] = c;
    }
    if (*jp != '"') jerr = 1;
    else jp++;
    s[n] = 0;
    return s;
}

static void jparse(json *v)
{
    memset(v, 0, sizeof *v);
    jws();
    if (*jp == '{' || *jp == '[') {
        int obj = *jp == '{';
        v->type = obj ? J_OBJ : J_ARR;
        jp++;
        size_t cap = 0;
        jws();
        if (*jp == (obj ? '}' : ']')) { jp++; return; }
        for (;;) {
            if (v->n == cap) {
                cap = cap ? 2 * cap : 4;
                v->items = realloc(v->items, cap * sizeof *v->items);
                if (obj) v->keys = realloc(v->keys, cap * sizeof *v->keys);
            }
            if (obj) {
                jws();
                if (*jp != '"') { jerr = 1; return; }
                v->keys[v->n] = jstring();
                jws();
                if (*jp++ != ':') { jerr = 1; return; }
            }
            jparse(&v->items[v->n++]);
            if (jerr) return;
            jws();
            if (*jp == ',') { jp++; continue; }
            if (*jp == (obj ? '}' : ']')) { jp++; return; }
            jerr = 1;
            return;
        }
    }
    if (*jp == '"') { v->type = J_STR; v->str = jstring(); return; }
    if (!strncmp(jp, "true", 4)) { v->type = J_BOOL; v->num = 1; jp += 4; return; }
    if (!strncmp(jp, "false", 5)) { v->type = J_BOOL; jp += 5; return; }
    if (!strncmp(jp, "null", 4)) { v->type = J_NULL; jp += 4; return; }
    char *end;
    v->type = J_NUM;
    v->num = strtod(jp, &end);
    if (end == jp) { jerr = 1; return; }
    v->is_int = !memchr(jp, '.', (size_t)(end - jp)) && !memchr(jp, 'e', (size_t)(end - jp)) &&
                !memchr(jp, 'E', (size_t)(end - jp));
    if (v->is_int) {
        errno = 0;
        v->ival = strtoll(jp, NULL, 10);
        if (errno) jerr = 1;
    }
    jp = end;
}

static void jfree(json *v)
{
    for (size_t k = 0; k < v->n; k++) {
        jfree(&v->items[k]);
        if (v->keys) free(v->keys[k]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

static const json *jget(const json *o, const char *key)
{
    if (!o || o->type != J_OBJ) return NULL;
    for (size_t k = 0; k < o->n; k++)
        if (!strcmp(o->keys[k], key)) return &o->items[k];
    return NULL;
}

/* Flattens nested arrays of numbers (row-major) and records their shape. */
static int jflat(const json *v, double *out, long long *iout, size_t max, size_t *n, uint64_t *shape, int depth,
                 int *ndim)
{
    if (v->type == J_NUM) {
        if (*n >= max) return -1;
        out[*n] = v->num;
        iout[*n] = v->is_int ? v->ival : (long long)v->num;
        (*n)++;
        if (*ndim < 0) *ndim = depth;
        return *ndim == depth ? 0 : -1;
    }
    if (v->type != J_ARR || depth >= 8) return -1;
    if (*ndim < 0 || depth < *ndim) shape[depth] = v->n;
    if (v->n == 0 && *ndim < 0) *ndim = depth + 1;
    for (size_t k = 0; k < v->n; k++)
        if (jflat(&v->items[k], out, iout, max, n, shape, depth + 1, ndim)) return -1;
    return 0;
}

static int jload(const char *path, json *v)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    size_t got = fread(s, 1, (size_t)len, f);
    fclose(f);
    s[got] = 0;
    jp = s;
    jerr = 0;
    jparse(v);
    jws();
    if (*jp) jerr = 1;
    free(s);
    return jerr ? -1 : 0;
}

/* ------------------------------------------------------------ helpers */

static char vdir[4096];

static int read_vec(const char *name, bf_header *h, bf_tset *s)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", vdir, name);
    return bf_read_all(path, h, s);
}

static int shape_is(const bf_tensor *t, int ndim, const uint64_t *shape)
{
    if (t->ndim != ndim) return 0;
    for (int k = 0; k < ndim; k++)
        if (t->shape[k] != shape[k]) return 0;
    return 1;
}

/* ------------------------------------------------------------- tests */

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Every *.bf: reads to a verified trailer; the trailer's count and XXH3 (read
 * from the raw bytes) match the tensors handed out; payloads 64-aligned;
 * one flipped payload byte is caught by the checksum. */
static void test_every_file(void)
{
    DIR *d = opendir(vdir);
    if (!d) { ok(0, "open %s: %s", vdir, strerror(errno)); return; }
    char names[64][256];
    int nf = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nf < 64)
        if (ends_with(e->d_name, ".bf")) snprintf(names[nf++], 256, "%s", e->d_name);
    closedir(d);
    ok(nf >= 6, "found %d vector streams", nf);
    for (int i = 0; i < nf; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%.255s", vdir, names[i]);
        bf_reader *r = bf_reader_open(path);
        ok(r != NULL, "%s: header reads%s%s", names[i], r ? "" : ": ", r ? "" : bf_errmsg());
        if (!r) continue;
        XXH3_state_t *st = XXH3_createState();
        XXH3_64bits_reset(st);
        bf_tensor t;
        int rc, n = 0, aligned = 1;
        uint64_t prev_end = 0, last_end = 0;
        while ((rc = bf_reader_next(r, &t)) == 1) {
            n++;
            XXH3_64bits_update(st, t.data, (size_t)t.nbytes);
            /* single-chunk payload: it ends at the reader's offset; its first byte is nbytes before */
            uint64_t end = bf_reader_offset(r);
            if ((end - t.nbytes) % 64 || end <= prev_end) aligned = 0;
            prev_end = end;
            if (t.nbytes) last_end = end;
            bf_tensor_release(&t);
        }
        uint64_t sum = XXH3_64bits_digest(st);
        XXH3_freeState(st);
        is_int(rc, 0, "%s: %d tensors, then a verified trailer%s%s", names[i], n, rc ? ": " : "", rc ? bf_errmsg() : "");
        ok(aligned, "%s: every payload starts at a multiple of 64", names[i]);
        uint64_t total = bf_reader_offset(r);
        bf_reader_close(r);

        /* the raw trailer: {"end": true, "count": N, "xxh3": H} at the end of the file */
        int fd = open(path, O_RDONLY);
        unsigned char *raw = malloc(total + 1);
        ssize_t got = fd >= 0 ? read(fd, raw, total + 1) : -1;
        if (fd >= 0) close(fd);
        ok(got == (ssize_t)total, "%s: the reader consumed the whole file (%llu bytes)", names[i], (unsigned long long)total);
        unsigned char *c = got > 20 ? memmem(raw + got - 40, 40, "\xa5" "count", 6) : NULL;
        unsigned char *x = got > 20 ? memmem(raw + got - 40, 40, "\xa4" "xxh3" "\xcf", 6) : NULL;
        long long cnt = -1;
        if (c) cnt = c[6] < 0x80 ? c[6] : c[6] == 0xcc ? c[7] : c[6] == 0xcd ? (c[7] << 8 | c[8]) : -1;
        uint64_t h = 0;
        for (int k = 0; x && k < 8; k++) h = h << 8 | x[6 + k];
        is_int(cnt, n, "%s: trailer count equals the tensors read", names[i]);
        ok(x && h == sum, "%s: trailer xxh3 equals XXH3-64 of the payloads (%016llx)", names[i], (unsigned long long)sum);

        /* flip the last byte of the last payload: the reader must refuse the copy */
        if (got == (ssize_t)total && last_end > 0 && last_end <= total) {
            raw[last_end - 1] ^= 0x01;
            char tmp[4500];
            const char *td = getenv("TMPDIR");
            snprintf(tmp, sizeof tmp, "%s/bf-test-vec-XXXXXX", td && *td ? td : "/tmp");
            int tfd = mkstemp(tmp);
            ssize_t wr = tfd >= 0 ? write(tfd, raw, total) : -1;
            if (tfd >= 0) close(tfd);
            bf_header hh;
            bf_tset ss;
            int rc2 = wr == (ssize_t)total ? bf_read_all(tmp, &hh, &ss) : 0;
            const char *m = bf_errmsg();
            ok(rc2 == -1 && (strstr(m, "checksum") || strstr(m, "invalid")),
               "%s: one flipped payload bit is refused ('%s')", names[i], rc2 ? m : "accepted");
            if (rc2 == 0) { bf_header_release(&hh); bf_tset_release(&ss); }
            unlink(tmp);
        }
        free(raw);
    }
}

static void test_dtypes(void)
{
    bf_header h;
    bf_tset s;
    int rc = read_vec("dtypes.bf", &h, &s);
    is_int(rc, 0, "dtypes.bf reads%s%s", rc ? ": " : "", rc ? bf_errmsg() : "");
    if (rc) return;
    char jpath[4400];
    snprintf(jpath, sizeof jpath, "%s/dtypes.json", vdir);
    json j;
    int jr = jload(jpath, &j);
    ok(jr == 0 && j.type == J_OBJ, "dtypes.json parses");
    if (jr) { jfree(&j); bf_tset_release(&s); bf_header_release(&h); return; }

    static const struct { const char *name; bf_dtype dt; } plain[] = {
        {"f32", BF_F32}, {"f16", BF_F16}, {"bf16", BF_BF16}, {"i8", BF_I8},
        {"u8", BF_U8},   {"i32", BF_I32}, {"i64", BF_I64},
    };
    for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++) {
        const char *nm = plain[k].name;
        const json *jv = jget(&j, nm);
        bf_tensor *t = bf_tset_find(&s, nm);
        double want[64];
        long long iwant[64];
        size_t n = 0;
        uint64_t shape[8] = {0};
        int ndim = -1;
        if (!jv || !t || jflat(jv, want, iwant, 64, &n, shape, 0, &ndim)) {
            ok(0, "%s: present in dtypes.bf and dtypes.json", nm);
            continue;
        }
        ok(t->dtype == plain[k].dt, "%s: dtype %s", nm, bf_dtype_name(t->dtype));
        ok(shape_is(t, ndim, shape), "%s: shape matches the JSON nesting (%d dims)", nm, ndim);
        ok(bf_tensor_numel(t) == n && t->nbytes == n * bf_dtype_size(t->dtype), "%s: %zu elements, nbytes %llu", nm,
           n, (unsigned long long)t->nbytes);
        if (bf_tensor_numel(t) != n) continue;
        /* exact values: floats through the conversions, integers bit for bit */
        int bad = 0;
        float *f = malloc(n * sizeof *f);
        bf_tensor_to_f32(t, f);
        for (size_t i = 0; i < n; i++) {
            const unsigned char *p = t->data;
            switch (t->dtype) {
            case BF_F32: case BF_F16: case BF_BF16:
                if (f[i] != (float)want[i]) { bad++; diag("%s[%zu] = %.9g, want %.17g", nm, i, (double)f[i], want[i]); }
                break;
            case BF_I8: if (((const int8_t *)p)[i] != iwant[i]) bad++; break;
            case BF_U8: if (p[i] != iwant[i]) bad++; break;
            case BF_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); if (v != iwant[i]) bad++; break; }
            case BF_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); if (v != iwant[i]) { bad++; diag("%s[%zu] = %lld", nm, i, (long long)v); } break; }
            default: bad++;
            }
        }
        is_int(bad, 0, "%s: every value equals dtypes.json", nm);
        free(f);
    }
    /* the named edge values, spelled out */
    bf_tensor *t16 = bf_tset_find(&s, "f16");
    if (t16 && t16->nbytes == 8) {
        uint16_t hv[4];
        memcpy(hv, t16->data, 8);
        ok(hv[2] == 0x7bff && bf_f16_to_f32(hv[2]) == 65504.0f, "f16[2] is 0x7bff = 65504, the largest half");
        ok(hv[3] == 0x0400 && bf_f16_to_f32(hv[3]) == 6.103515625e-05f, "f16[3] is 0x0400 = 6.103515625e-05 = 2^-14");
    } else {
        ok(0, "f16 holds 4 halves");
    }
    bf_tensor *tb = bf_tset_find(&s, "bf16");
    if (tb && tb->nbytes == 4) {
        uint16_t bv[2];
        memcpy(bv, tb->data, 4);
        ok(bv[0] == 0x3f80 && bv[1] == 0xc060, "bf16 is 0x3f80 0xc060 (1.0, -3.5)");
    } else {
        ok(0, "bf16 holds 2 values");
    }
    bf_tensor *t64 = bf_tset_find(&s, "i64");
    if (t64 && t64->nbytes == 8) {
        int64_t v;
        memcpy(&v, t64->data, 8);
        ok(v == -4611686018427387904LL && v == -(INT64_C(1) << 62), "i64 is -4611686018427387904 (-2^62)");
    } else {
        ok(0, "i64 holds one value");
    }
    bf_tensor *sc = bf_tset_find(&s, "scalar");
    const json *js = jget(&j, "scalar");
    if (sc && js && js->type == J_NUM) {
        float v = 0;
        if (sc->nbytes == 4) memcpy(&v, sc->data, 4);
        ok(sc->dtype == BF_F32 && sc->ndim == 0 && sc->nbytes == 4 && v == (float)js->num && v == 42.0f,
           "scalar: 0-dim F32 holding 42");
    } else {
        ok(0, "scalar present");
    }
    bf_tensor *em = bf_tset_find(&s, "empty");
    const json *je = jget(jget(&j, "empty"), "shape");
    uint64_t esh[2] = {9, 9};
    if (je && je->type == J_ARR && je->n == 2) { esh[0] = (uint64_t)je->items[0].num; esh[1] = (uint64_t)je->items[1].num; }
    ok(em && em->dtype == BF_F32 && shape_is(em, 2, esh) && esh[0] == 0 && esh[1] == 4 && em->nbytes == 0,
       "empty: F32 [0,4], no bytes");
    /* the 255-byte name: the one JSON key of that length */
    const char *longkey = NULL;
    for (size_t k = 0; k < j.n; k++)
        if (strlen(j.keys[k]) == 255) longkey = j.keys[k];
    bf_tensor *ln = longkey ? bf_tset_find(&s, longkey) : NULL;
    const json *lv = longkey ? jget(&j, longkey) : NULL;
    ok(ln && strlen(ln->name) == 255, "the 255-byte name reads back whole");
    ok(ln && lv && lv->type == J_ARR && lv->n == 1 && ln->dtype == BF_U8 && ln->nbytes == 1 &&
       ((unsigned char *)ln->data)[0] == (unsigned char)lv->items[0].num, "its value is %d",
       lv && lv->n ? (int)lv->items[0].num : -1);
    is_int((long long)s.n, 10, "dtypes.bf holds 10 tensors");
    ok(!strcmp(h.kind, "model"), "dtypes.bf kind is model");
    jfree(&j);
    bf_tset_release(&s);
    bf_header_release(&h);
}

static void test_ternary(void)
{
    bf_header h;
    bf_tset s;
    int rc = read_vec("ternary.bf", &h, &s);
    is_int(rc, 0, "ternary.bf reads%s%s", rc ? ": " : "", rc ? bf_errmsg() : "");
    if (rc) return;
    char jpath[4400];
    snprintf(jpath, sizeof jpath, "%s/ternary.json", vdir);
    json j;
    int jr = jload(jpath, &j);
    ok(jr == 0, "ternary.json parses");
    double codes[64], deq[64], scale[8];
    long long iv[64];
    size_t nc = 0, nd, ns;
    uint64_t shc[8] = {0}, shd[8] = {0}, shs[8] = {0};
    int ndc = -1, ndd, nds;
    if (jr || jflat(jget(&j, "codes"), codes, iv, 64, &nc, shc, 0, &ndc) || ndc != 2) {
        ok(0, "ternary.json has a 2-D codes array");
        jfree(&j);
        bf_tset_release(&s);
        bf_header_release(&h);
        return;
    }
    static const struct { const char *t, *scale, *deq; bf_dtype dt; } cases[] = {
        {"a", "a.scale", "a_dequant", BF_TQ2},
        {"b", "b.scale", "b_dequant", BF_TQ1},
    };
    for (int c = 0; c < 2; c++) {
        bf_tensor *t = bf_tset_find(&s, cases[c].t), *sc = bf_tset_find(&s, cases[c].scale);
        nd = ns = 0;
        ndd = nds = -1;
        int jok = !jflat(jget(&j, cases[c].deq), deq, iv, 64, &nd, shd, 0, &ndd) &&
                  !jflat(jget(&j, cases[c].scale), scale, iv, 8, &ns, shs, 0, &nds);
        ok(jok && t && sc, "%s: tensor, scale and expected values present", cases[c].t);
        if (!jok || !t || !sc) continue;
        ok(t->dtype == cases[c].dt && shape_is(t, 2, shc), "%s: %s [%llu,%llu]", cases[c].t, bf_dtype_name(cases[c].dt),
           (unsigned long long)shc[0], (unsigned long long)shc[1]);
        ok(sc->dtype == BF_F32 && sc->ndim == 1 && sc->shape[0] == ns, "%s: F32 [%zu]", cases[c].scale, ns);
        if (!shape_is(t, 2, shc) || sc->shape[0] != ns || sc->dtype != BF_F32) continue;
        uint64_t rows = t->shape[0], cols = t->shape[1], rb = bf_ternary_row_bytes(t->dtype, cols);
        int bad_codes = 0, bad_deq = 0;
        float *f = malloc(rows * cols * sizeof *f);
        int8_t *w = malloc(cols);
        bf_tensor_to_f32(t, f);
        const float *sv = sc->data;
        for (uint64_t r = 0; r < rows; r++) {
            bf_ternary_unpack_row(t->dtype, (const uint8_t *)t->data + r * rb, cols, w);
            for (uint64_t k = 0; k < cols; k++) {
                double want = codes[r * cols + k];
                if (w[k] != want || f[r * cols + k] != (float)want) bad_codes++;
                float sv_r = sv[ns == 1 ? 0 : r];
                if (sv_r * (float)w[k] != (float)deq[r * cols + k]) bad_deq++;
            }
        }
        is_int(bad_codes, 0, "%s: codes equal ternary.json (unpacked and through bf_tensor_to_f32)", cases[c].t);
        is_int(bad_deq, 0, "%s: scale x codes equals %s", cases[c].t, cases[c].deq);
        int sbad = 0;
        for (size_t k = 0; k < ns; k++) sbad += sv[k] != (float)scale[k];
        is_int(sbad, 0, "%s equals ternary.json", cases[c].scale);
        /* re-packing the JSON codes gives the stream's bytes */
        uint8_t *pk = calloc(rows * rb + 1, 1);
        for (uint64_t r = 0; r < rows; r++) {
            for (uint64_t k = 0; k < cols; k++) w[k] = (int8_t)codes[r * cols + k];
            bf_ternary_pack_row(t->dtype, w, cols, pk + r * rb);
        }
        ok(t->nbytes == rows * rb && !memcmp(pk, t->data, rows * rb), "%s: packing the JSON codes gives the stream's bytes",
           cases[c].t);
        uint64_t cnt[3], want_cnt[3] = {0, 0, 0};
        for (size_t k = 0; k < nc; k++) want_cnt[(int)codes[k] + 1]++;
        bf_ternary_count(t->dtype, t->data, rows, cols, cnt);
        ok(!memcmp(cnt, want_cnt, sizeof cnt), "%s: bf_ternary_count gives %llu/%llu/%llu", cases[c].t,
           (unsigned long long)cnt[0], (unsigned long long)cnt[1], (unsigned long long)cnt[2]);
        free(pk);
        free(f);
        free(w);
    }
    jfree(&j);
    bf_tset_release(&s);
    bf_header_release(&h);
}

static void test_data(void)
{
    bf_header h;
    bf_tset s;
    int rc = read_vec("data-tiny.bf", &h, &s);
    is_int(rc, 0, "data-tiny.bf reads%s%s", rc ? ": " : "", rc ? bf_errmsg() : "");
    if (rc) return;
    ok(!strcmp(h.kind, "data"), "data-tiny.bf kind is data");
    int64_t vocab = -1, ctx = -1;
    int mv = bf_val_get_int(h.meta, "vocab", -1, &vocab), mc = bf_val_get_int(h.meta, "ctx", -1, &ctx);
    ok(mv == 0 && mc == 0 && vocab > 0 && ctx == 8, "meta has vocab %lld and ctx %lld", (long long)vocab, (long long)ctx);
    is_int((long long)s.n, 4, "4 tensors");
    static const char *names[] = {"train.x", "train.y", "val.x", "val.y"};
    uint64_t sh[2] = {6, 8};
    for (int k = 0; k < 4; k++) {
        bf_tensor *t = bf_tset_find(&s, names[k]);
        ok(t && t->dtype == BF_I32 && shape_is(t, 2, sh) && t->nbytes == 6 * 8 * 4, "%s is I32 [6,8]", names[k]);
        if (!t || t->nbytes != 192) continue;
        int32_t v[48];
        memcpy(v, t->data, sizeof v);
        int bad = 0, masked = 0;
        for (int i = 0; i < 48; i++) {
            int is_y = k % 2 == 1;
            if (v[i] >= vocab || v[i] < (is_y ? -1 : 0)) bad++;
            masked += v[i] == -1;
        }
        is_int(bad, 0, "%s: every token in [%d, vocab)", names[k], k % 2 ? -1 : 0);
        if (k % 2) ok(masked > 0 && masked < 48, "%s: some targets are -1 (%d of 48)", names[k], masked);
    }
    bf_tset_release(&s);
    bf_header_release(&h);
}

/* The tensors bf-init(1) names for a model's meta. */
static void test_models(void)
{
    static const char *files[] = {"model-rms-swiglu-rope.bf", "model-layer-gelu-learned.bf",
                                  "model-rms-relu2-rope-tie-subln.bf"};
    for (int f = 0; f < 3; f++) {
        bf_header h;
        bf_tset s;
        int rc = read_vec(files[f], &h, &s);
        is_int(rc, 0, "%s reads with count and checksum verified%s%s", files[f], rc ? ": " : "", rc ? bf_errmsg() : "");
        if (rc) continue;
        int64_t vocab, ctx, d, nl, nh, ff;
        int tie = 0, subln = 0;
        const char *norm = bf_val_get_str(h.meta, "norm"), *act = bf_val_get_str(h.meta, "act"),
                   *pos = bf_val_get_str(h.meta, "pos"), *arch = bf_val_get_str(h.meta, "arch");
        int mok = !bf_val_get_int(h.meta, "vocab", 0, &vocab) && !bf_val_get_int(h.meta, "ctx", 0, &ctx) &&
                  !bf_val_get_int(h.meta, "d_model", 0, &d) && !bf_val_get_int(h.meta, "n_layer", 0, &nl) &&
                  !bf_val_get_int(h.meta, "n_head", 0, &nh) && !bf_val_get_int(h.meta, "d_ff", 0, &ff) &&
                  bf_val_get_bool(h.meta, "tie_embed", 0, &tie) >= 0 && bf_val_get_bool(h.meta, "subln", 0, &subln) >= 0;
        if (!norm) norm = "rms";
        if (!act) act = "swiglu";
        if (!pos) pos = "rope";
        ok(mok && !strcmp(h.kind, "model") && arch && !strcmp(arch, "transformer"),
           "%s: a transformer model's meta (vocab %lld, d %lld, %lld layers, ff %lld)", files[f], (long long)vocab,
           (long long)d, (long long)nl, (long long)ff);
        if (!mok) { bf_tset_release(&s); bf_header_release(&h); continue; }
        int layer = !strcmp(norm, "layer");
        /* the expected tensor list */
        struct { char name[64]; int nd; uint64_t sh[2]; } want[128];
        int nw = 0;
#define WANT(nm_, nd_, a_, b_) do { snprintf(want[nw].name, 64, "%s", nm_); want[nw].nd = nd_; \
        want[nw].sh[0] = (uint64_t)(a_); want[nw].sh[1] = (uint64_t)(b_); nw++; } while (0)
        char nm[64];
        WANT("tok_emb", 2, vocab, d);
        if (!strcmp(pos, "learned")) WANT("pos_emb", 2, ctx, d);
        for (int64_t i = 0; i < nl && nw < 100; i++) {
            static const char *mats[] = {"wq", "wk", "wv", "wo"};
            snprintf(nm, 64, "blk.%lld.attn_norm.w", (long long)i); WANT(nm, 1, d, 0);
            if (layer) { snprintf(nm, 64, "blk.%lld.attn_norm.b", (long long)i); WANT(nm, 1, d, 0); }
            for (int m = 0; m < 4; m++) { snprintf(nm, 64, "blk.%lld.%s", (long long)i, mats[m]); WANT(nm, 2, d, d); }
            if (subln) { snprintf(nm, 64, "blk.%lld.attn_sub_norm.w", (long long)i); WANT(nm, 1, d, 0); }
            snprintf(nm, 64, "blk.%lld.mlp_norm.w", (long long)i); WANT(nm, 1, d, 0);
            if (layer) { snprintf(nm, 64, "blk.%lld.mlp_norm.b", (long long)i); WANT(nm, 1, d, 0); }
            snprintf(nm, 64, "blk.%lld.w1", (long long)i); WANT(nm, 2, ff, d);
            if (strcmp(act, "gelu")) { snprintf(nm, 64, "blk.%lld.w3", (long long)i); WANT(nm, 2, ff, d); }
            snprintf(nm, 64, "blk.%lld.w2", (long long)i); WANT(nm, 2, d, ff);
            if (subln) { snprintf(nm, 64, "blk.%lld.ffn_sub_norm.w", (long long)i); WANT(nm, 1, ff, 0); }
        }
        WANT("out_norm.w", 1, d, 0);
        if (layer) WANT("out_norm.b", 1, d, 0);
        if (!tie) WANT("head", 2, vocab, d);
#undef WANT
        int missing = 0, finite = 1;
        for (int k = 0; k < nw; k++) {
            bf_tensor *t = bf_tset_find(&s, want[k].name);
            if (!t || t->dtype != BF_F32 || !shape_is(t, want[k].nd, want[k].sh)) {
                missing++;
                diag("%s: %s missing or of the wrong shape", files[f], want[k].name);
                continue;
            }
            const float *v = t->data;
            for (uint64_t i = 0; i < bf_tensor_numel(t); i++)
                if (!isfinite(v[i])) finite = 0;
        }
        is_int(missing, 0, "%s: all %d tensors bf-init(1) names, F32, with their shapes", files[f], nw);
        is_int((long long)s.n, nw, "%s: and no others", files[f]);
        ok(finite, "%s: every weight is finite", files[f]);
        bf_tset_release(&s);
        bf_header_release(&h);
    }
}

int main(void)
{
    const char *dir = getenv("BF_VECTORS");
    snprintf(vdir, sizeof vdir, "%s", dir && *dir ? dir : "tests/vectors");
    test_every_file();
    test_dtypes();
    test_ternary();
    test_data();
    test_models();
    return tap_done();
}

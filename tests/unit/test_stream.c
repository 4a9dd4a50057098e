/* test_stream.c — the tensor stream (bf-stream(5)): round trips of every dtype
 * and shape edge, header meta and lineage, chunked payloads, 64-byte payload
 * alignment checked on the raw bytes, the trailer, truncation, the atomic
 * `-o` writer, F16/BF16 conversions, and the reader's growth path for large
 * payloads arriving through a pipe. */
#include "tap.h"

#include "bf/stream.h"
#include "bf/tensor.h"
#include "bf/ternary.h"
#include "bf/util.h"
#include "bf/val.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* ------------------------------------------------------------ helpers */

static uint64_t lcg_state = 0x1234567887654321ULL;
static uint64_t rnd(void)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lcg_state >> 17;
}

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf_t;

static void buf_put(buf_t *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void buf_free(buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int tmpfd(void)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/bf-test-stream-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); exit(2); }
    unlink(path);
    return fd;
}

static buf_t fd_slurp(int fd)
{
    buf_t b = {0};
    unsigned char tmp[65536];
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        ssize_t k = read(fd, tmp, sizeof tmp);
        if (k <= 0) break;
        buf_put(&b, tmp, (size_t)k);
    }
    return b;
}

static buf_t file_slurp(const char *path)
{
    buf_t b = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) return b;
    b = fd_slurp(fd);
    close(fd);
    return b;
}

/* Writes header and tensors into memory (through a temporary file);
 * chunk 0 keeps the writer's default.  *rc gets bf_writer_close's result. */
static buf_t write_stream(const bf_header *h, const bf_tensor *ts, int n, size_t chunk, int *rc)
{
    int fd = tmpfd();
    bf_writer *w = bf_writer_fdopen(fd);
    int r = w ? 0 : -1;
    if (w && chunk) bf_writer_set_chunk(w, chunk);
    if (!r) r = bf_writer_header(w, h);
    for (int k = 0; k < n && !r; k++) r = bf_writer_tensor(w, &ts[k]);
    if (w) {
        if (r) bf_writer_abort(w);
        else r = bf_writer_close(w);
    }
    if (rc) *rc = r;
    buf_t b = fd_slurp(fd);
    close(fd);
    return b;
}

/* Feeds bytes into a pipe from a thread, in pieces of `piece` bytes (0: all
 * at once), then closes the write end. */
typedef struct {
    int fd;
    const unsigned char *p;
    size_t n, piece;
} feed_t;

static void *feeder(void *arg)
{
    feed_t *f = arg;
    size_t at = 0;
    while (at < f->n) {
        size_t k = f->piece ? f->piece : f->n - at;
        if (k > f->n - at) k = f->n - at;
        ssize_t m = write(f->fd, f->p + at, k);
        if (m < 0 && errno == EINTR) continue;
        if (m <= 0) break;   /* EPIPE: the reader stopped early */
        at += (size_t)m;
    }
    close(f->fd);
    return NULL;
}

/* A source of stream bytes for the reader: a regular file, a pipe fed by
 * a thread (whole, or dribbled in small pieces), or the bytes in memory
 * (bf_reader_memopen; no file descriptor). */
typedef struct {
    int fd;
    int is_pipe;
    pthread_t th;
    feed_t feed;
} src_t;

enum { SRC_FILE, SRC_PIPE, SRC_DRIBBLE, SRC_MEM, SRC_NMODES };
static const char *src_name[] = {"file", "pipe", "dribbled pipe", "memory"};

static void src_open(src_t *s, const buf_t *b, int mode)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (mode == SRC_MEM) return;
    if (mode == SRC_FILE) {
        s->fd = tmpfd();
        size_t at = 0;
        while (at < b->n) {
            ssize_t m = write(s->fd, b->p + at, b->n - at);
            if (m <= 0) { perror("write"); exit(2); }
            at += (size_t)m;
        }
        lseek(s->fd, 0, SEEK_SET);
        return;
    }
    int pfd[2];
    if (pipe(pfd)) { perror("pipe"); exit(2); }
    s->is_pipe = 1;
    s->fd = pfd[0];
    s->feed.fd = pfd[1];
    s->feed.p = b->p;
    s->feed.n = b->n;
    s->feed.piece = mode == SRC_DRIBBLE ? 3 : 0;
    pthread_create(&s->th, NULL, feeder, &s->feed);
}

static void src_close(src_t *s)
{
    if (s->fd >= 0) close(s->fd);
    if (s->is_pipe) pthread_join(s->th, NULL);
}

/* Reads every tensor of a stream held in memory.  Returns the last
 * bf_reader_next result (0: good stream), or -2 if the header failed. */
static int read_bytes(const buf_t *b, int mode, bf_header *hdr, bf_tset *set)
{
    src_t s;
    src_open(&s, b, mode);
    memset(set, 0, sizeof *set);
    bf_reader *r = mode == SRC_MEM ? bf_reader_memopen(b->p, b->n, "mem") : bf_reader_fdopen(s.fd, "mem");
    int rc = -2;
    if (r) {
        bf_tensor t;
        while ((rc = bf_reader_next(r, &t)) == 1) *bf_tset_add(set) = t;
        if (hdr && rc == 0) bf_header_copy(hdr, bf_reader_header(r));
        bf_reader_close(r);
    }
    src_close(&s);
    return rc;
}

/* ---------------------------------- an independent walk over raw bytes */

typedef struct {
    int ntensors;
    uint64_t nbytes[256];
    size_t payload_off[256];   /* stream offset of each payload's first byte */
    size_t chunk0[256];        /* stream offset of each payload's first bin header */
    int pad[256];              /* length of each tensor header's pad, -1 if none */
    size_t nchunks[256];
    size_t max_chunk[256];
    int trailer;               /* a trailer map with "end" was found */
    uint64_t count, xxh;
    size_t end;                /* offset after the last object read */
    int bad;                   /* the bytes did not parse */
} walk_t;

static int mp_need(size_t n, size_t pos, size_t k) { return pos + k <= n; }

static uint64_t mp_be(const unsigned char *p, int k)
{
    uint64_t v = 0;
    for (int i = 0; i < k; i++) v = v << 8 | p[i];
    return v;
}

/* Skips one object; returns the offset after it, or (size_t)-1. */
static size_t mp_skip(const unsigned char *p, size_t n, size_t pos)
{
    if (!mp_need(n, pos, 1)) return (size_t)-1;
    unsigned b = p[pos++];
    uint64_t len = 0, items = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return pos;
    if ((b & 0xf0) == 0x80) items = 2 * (uint64_t)(b & 0x0f);
    else if ((b & 0xf0) == 0x90) items = b & 0x0f;
    else if ((b & 0xe0) == 0xa0) len = b & 0x1f;
    else {
        switch (b) {
        case 0xc4: case 0xd9: if (!mp_need(n, pos, 1)) return (size_t)-1; len = p[pos]; pos += 1; break;
        case 0xc5: case 0xda: if (!mp_need(n, pos, 2)) return (size_t)-1; len = mp_be(p + pos, 2); pos += 2; break;
        case 0xc6: case 0xdb: if (!mp_need(n, pos, 4)) return (size_t)-1; len = mp_be(p + pos, 4); pos += 4; break;
        case 0xca: len = 4; break;
        case 0xcb: len = 8; break;
        case 0xcc: case 0xd0: len = 1; break;
        case 0xcd: case 0xd1: len = 2; break;
        case 0xce: case 0xd2: len = 4; break;
        case 0xcf: case 0xd3: len = 8; break;
        case 0xdc: if (!mp_need(n, pos, 2)) return (size_t)-1; items = mp_be(p + pos, 2); pos += 2; break;
        case 0xdd: if (!mp_need(n, pos, 4)) return (size_t)-1; items = mp_be(p + pos, 4); pos += 4; break;
        case 0xde: if (!mp_need(n, pos, 2)) return (size_t)-1; items = 2 * mp_be(p + pos, 2); pos += 2; break;
        case 0xdf: if (!mp_need(n, pos, 4)) return (size_t)-1; items = 2 * mp_be(p + pos, 4); pos += 4; break;
        default: return (size_t)-1;
        }
    }
    if (len > n - pos) return (size_t)-1;
    pos += (size_t)len;
    for (uint64_t k = 0; k < items; k++) {
        pos = mp_skip(p, n, pos);
        if (pos == (size_t)-1) return pos;
    }
    return pos;
}

static int mp_map_len(const unsigned char *p, size_t n, size_t *pos, uint64_t *len)
{
    if (!mp_need(n, *pos, 1)) return -1;
    unsigned b = p[*pos];
    if ((b & 0xf0) == 0x80) { *len = b & 0x0f; *pos += 1; return 0; }
    if (b == 0xde && mp_need(n, *pos, 3)) { *len = mp_be(p + *pos + 1, 2); *pos += 3; return 0; }
    if (b == 0xdf && mp_need(n, *pos, 5)) { *len = mp_be(p + *pos + 1, 4); *pos += 5; return 0; }
    return -1;
}

static int mp_key(const unsigned char *p, size_t n, size_t *pos, const char **s, size_t *len)
{
    if (!mp_need(n, *pos, 1)) return -1;
    unsigned b = p[*pos];
    size_t at = *pos + 1;
    if ((b & 0xe0) == 0xa0) *len = b & 0x1f;
    else if (b == 0xd9 && mp_need(n, at, 1)) { *len = p[at]; at += 1; }
    else return -1;
    if (*len > n - at) return -1;
    *s = (const char *)p + at;
    *pos = at + *len;
    return 0;
}

static int mp_uint(const unsigned char *p, size_t n, size_t *pos, uint64_t *v)
{
    if (!mp_need(n, *pos, 1)) return -1;
    unsigned b = p[*pos];
    if (b <= 0x7f) { *v = b; *pos += 1; return 0; }
    int k = b == 0xcc ? 1 : b == 0xcd ? 2 : b == 0xce ? 4 : b == 0xcf ? 8 : 0;
    if (!k || !mp_need(n, *pos + 1, (size_t)k)) return -1;
    *v = mp_be(p + *pos + 1, k);
    *pos += 1 + (size_t)k;
    return 0;
}

static int keyis(const char *s, size_t len, const char *want) { return len == strlen(want) && !memcmp(s, want, len); }

/* Walks a stream's raw bytes without the library: header, then per tensor
 * its header map (for "nbytes") and its bin chunks, then the trailer. */
static walk_t walk(const buf_t *b)
{
    walk_t w;
    memset(&w, 0, sizeof w);
    const unsigned char *p = b->p;
    size_t n = b->n, pos = mp_skip(p, n, 0);
    if (pos == (size_t)-1) { w.bad = 1; return w; }
    w.end = pos;
    while (pos < n) {
        uint64_t m, nbytes = 0;
        int is_trailer = 0, have_nbytes = 0, pad = -1;
        if (mp_map_len(p, n, &pos, &m)) { w.bad = 1; return w; }
        for (uint64_t k = 0; k < m; k++) {
            const char *key;
            size_t klen;
            if (mp_key(p, n, &pos, &key, &klen)) { w.bad = 1; return w; }
            if (keyis(key, klen, "end")) is_trailer = 1;
            if (keyis(key, klen, "pad") && mp_need(n, pos, 2) && p[pos] == 0xc4) pad = p[pos + 1];
            if (keyis(key, klen, "nbytes") || keyis(key, klen, "count") || keyis(key, klen, "xxh3")) {
                uint64_t v;
                if (mp_uint(p, n, &pos, &v)) { w.bad = 1; return w; }
                if (keyis(key, klen, "nbytes")) { nbytes = v; have_nbytes = 1; }
                else if (keyis(key, klen, "count")) w.count = v;
                else w.xxh = v;
            } else {
                pos = mp_skip(p, n, pos);
                if (pos == (size_t)-1) { w.bad = 1; return w; }
            }
        }
        if (is_trailer) { w.trailer = 1; w.end = pos; return w; }
        if (!have_nbytes || w.ntensors >= 256) { w.bad = 1; return w; }
        int t = w.ntensors++;
        w.nbytes[t] = nbytes;
        w.pad[t] = pad;
        w.chunk0[t] = pos;
        uint64_t got = 0;
        do {
            if (!mp_need(n, pos, 1)) { w.bad = 1; return w; }
            unsigned c = p[pos];
            int k = c == 0xc4 ? 1 : c == 0xc5 ? 2 : c == 0xc6 ? 4 : 0;
            if (!k || !mp_need(n, pos + 1, (size_t)k)) { w.bad = 1; return w; }
            uint64_t len = mp_be(p + pos + 1, k);
            pos += 1 + (size_t)k;
            if (w.nchunks[t] == 0) w.payload_off[t] = pos;
            if (len > n - pos || len > nbytes - got) { w.bad = 1; return w; }
            w.nchunks[t]++;
            if (len > w.max_chunk[t]) w.max_chunk[t] = len;
            pos += (size_t)len;
            got += len;
        } while (got < nbytes);
        w.end = pos;
    }
    return w;
}

/* The payload bytes of tensor k in the raw stream, concatenated over chunks,
 * compared with want (the walk already checked the chunk structure). */
static int raw_payload_eq(const buf_t *b, const walk_t *w, int k, const void *want)
{
    size_t pos = w->chunk0[k];
    uint64_t got = 0;
    const unsigned char *p = b->p;
    do {
        unsigned c = p[pos];
        int hk = c == 0xc4 ? 1 : c == 0xc5 ? 2 : 4;
        uint64_t len = mp_be(p + pos + 1, hk);
        pos += 1 + (size_t)hk;
        if (len && memcmp(p + pos, (const unsigned char *)want + got, (size_t)len)) return 0;
        pos += (size_t)len;
        got += len;
    } while (got < w->nbytes[k]);
    return 1;
}

/* ------------------------------------------------ bf_val deep equality */

static int val_eq(const bf_val *a, const bf_val *b)
{
    if (!a || !b) return a == b;
    if (a->type != b->type) return 0;
    switch (a->type) {
    case BF_NIL: return 1;
    case BF_BOOL: return !a->v.b == !b->v.b;
    case BF_INT: return a->v.i == b->v.i;
    case BF_UINT: return a->v.u == b->v.u;
    case BF_FLOAT: return memcmp(&a->v.f, &b->v.f, sizeof(double)) == 0;
    case BF_STR: case BF_BIN:
        return a->v.s.len == b->v.s.len && memcmp(a->v.s.p, b->v.s.p, a->v.s.len) == 0;
    case BF_ARR: case BF_MAP:
        if (a->v.a.n != b->v.a.n) return 0;
        for (size_t k = 0; k < a->v.a.n; k++) {
            if (a->type == BF_MAP && strcmp(a->v.a.keys[k], b->v.a.keys[k])) return 0;
            if (!val_eq(&a->v.a.items[k], &b->v.a.items[k])) return 0;
        }
        return 1;
    }
    return 0;
}

static bf_val *val_uint(uint64_t u)
{
    bf_val *v = bf_val_new(BF_UINT);
    v->v.u = u;
    return v;
}

static bf_val *val_bin(const void *p, size_t n)
{
    bf_val *v = bf_val_strn(p, n);
    v->type = BF_BIN;
    return v;
}

static bf_val *val_str_rep(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = 0;
    bf_val *v = bf_val_strn(s, n);
    free(s);
    return v;
}

/* Random valid payload bytes for a tensor already initialized. */
static void fill_random(bf_tensor *t)
{
    unsigned char *p = t->data;
    if (bf_dtype_is_ternary(t->dtype)) {
        uint64_t rows = t->shape[0], cols = t->shape[1];
        uint64_t rb = bf_ternary_row_bytes(t->dtype, cols);
        int8_t *w = malloc(cols + 1);
        for (uint64_t r = 0; r < rows; r++) {
            for (uint64_t c = 0; c < cols; c++) w[c] = (int8_t)(rnd() % 3) - 1;
            bf_ternary_pack_row(t->dtype, w, cols, p + r * rb);
        }
        free(w);
        return;
    }
    for (uint64_t k = 0; k < t->nbytes; k++) p[k] = (unsigned char)rnd();
}

static int same_tensor(const bf_tensor *a, const bf_tensor *b)
{
    if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim || a->nbytes != b->nbytes) return 0;
    for (int k = 0; k < a->ndim; k++)
        if (a->shape[k] != b->shape[k]) return 0;
    if (a->nbytes && memcmp(a->data, b->data, (size_t)a->nbytes)) return 0;
    if (!val_eq(a->meta, b->meta)) return 0;
    return 1;
}

static int all_aligned(const walk_t *w)
{
    for (int k = 0; k < w->ntensors; k++)
        if (w->payload_off[k] % 64) return 0;
    return 1;
}

/* ------------------------------------------------------------- tests */

static void test_every_dtype(void)
{
    static const bf_dtype dts[] = {BF_F32, BF_F16, BF_BF16, BF_I8, BF_U8, BF_I32, BF_I64, BF_TQ2, BF_TQ1};
    enum { ND = sizeof dts / sizeof dts[0] };
    bf_tensor ts[ND * 2];
    int n = 0;
    for (int k = 0; k < ND; k++) {
        char name[32];
        uint64_t shape[2] = {3, 7};
        snprintf(name, sizeof name, "t.%s", bf_dtype_name(dts[k]));
        is_int(bf_tensor_init(&ts[n], name, dts[k], 2, shape), 0, "bf_tensor_init %s [3,7]", bf_dtype_name(dts[k]));
        fill_random(&ts[n++]);
        /* a second shape per dtype: 3 dims (ternary: a wide row) */
        uint64_t s3[3] = {2, 3, 5}, sw[2] = {2, 41};
        snprintf(name, sizeof name, "u.%s", bf_dtype_name(dts[k]));
        int tern = bf_dtype_is_ternary(dts[k]);
        is_int(bf_tensor_init(&ts[n], name, dts[k], tern ? 2 : 3, tern ? sw : s3), 0, "bf_tensor_init %s, second shape",
               bf_dtype_name(dts[k]));
        fill_random(&ts[n++]);
    }
    is_int((long long)ts[0].nbytes, 84, "F32 [3,7] is 84 bytes");
    is_int((long long)ts[14].nbytes, 6, "TQ2 [3,7] is 6 bytes");
    is_int((long long)ts[15].nbytes, 22, "TQ2 [2,41] is 22 bytes");
    is_int((long long)ts[16].nbytes, 6, "TQ1 [3,7] is 6 bytes");
    is_int((long long)ts[17].nbytes, 18, "TQ1 [2,41] is 18 bytes");
    bf_header h;
    bf_header_init(&h, "model");
    int wrc;
    buf_t b = write_stream(&h, ts, n, 0, &wrc);
    is_int(wrc, 0, "every dtype: writer closes cleanly");
    ok(b.n >= 4 && b.p[1] == 0xa2 && b.p[2] == 0x62 && b.p[3] == 0x66, "stream bytes 1-3 are the magic a2 62 66");
    walk_t w = walk(&b);
    ok(!w.bad && w.trailer && w.end == b.n, "raw walk: %d tensors then a trailer ending the stream", w.ntensors);
    is_int(w.ntensors, n, "raw walk finds every tensor");
    is_int((long long)w.count, n, "trailer count");
    ok(all_aligned(&w), "every payload starts at a multiple of 64");
    int same = 1;
    for (int k = 0; k < n && k < w.ntensors; k++) same &= raw_payload_eq(&b, &w, k, ts[k].data);
    ok(same, "raw payload bytes are the tensors' bytes, in order");
    /* the trailer's checksum is the XXH3-64 of all payload bytes in order */
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (int k = 0; k < n; k++) XXH3_64bits_update(st, ts[k].data, (size_t)ts[k].nbytes);
    ok(w.xxh == XXH3_64bits_digest(st), "trailer xxh3 is XXH3-64 of the payloads");
    XXH3_freeState(st);

    for (int mode = 0; mode < SRC_NMODES; mode++) {
        bf_header rh;
        bf_tset s;
        int rc = read_bytes(&b, mode, &rh, &s);
        is_int(rc, 0, "every dtype via %s: reader ends on a verified trailer", src_name[mode]);
        is_int((long long)s.n, n, "every dtype via %s: tensor count", src_name[mode]);
        int good = s.n == (size_t)n, aligned = 1;
        for (size_t k = 0; good && k < s.n; k++) {
            if (!same_tensor(&s.t[k], &ts[k])) {
                good = 0;
                diag("tensor %zu (%s) differs", k, ts[k].name);
            }
            if ((uintptr_t)s.t[k].data % 64) aligned = 0;
        }
        ok(good, "every dtype via %s: names, dtypes, shapes, bytes identical", src_name[mode]);
        ok(aligned, "every dtype via %s: payload memory is 64-byte aligned", src_name[mode]);
        ok(rc == 0 && !strcmp(rh.kind, "model"), "every dtype via %s: kind survives", src_name[mode]);
        if (rc == 0) bf_header_release(&rh);
        bf_tset_release(&s);
    }
    buf_free(&b);
    bf_header_release(&h);
    for (int k = 0; k < n; k++) bf_tensor_release(&ts[k]);
}

static void test_shapes(void)
{
    bf_tensor ts[32];
    int n = 0;
    static const bf_dtype plain[] = {BF_F32, BF_F16, BF_BF16, BF_I8, BF_U8, BF_I32, BF_I64};
    for (int k = 0; k < 7; k++) {   /* 0-dim scalars */
        char name[32];
        snprintf(name, sizeof name, "scalar.%s", bf_dtype_name(plain[k]));
        is_int(bf_tensor_init(&ts[n], name, plain[k], 0, NULL), 0, "0-dim %s accepted", bf_dtype_name(plain[k]));
        is_int((long long)ts[n].nbytes, (long long)bf_dtype_size(plain[k]), "0-dim %s holds one element",
               bf_dtype_name(plain[k]));
        fill_random(&ts[n++]);
    }
    uint64_t e04[2] = {0, 4}, e0[1] = {0}, e30[2] = {3, 0}, e00[2] = {0, 0}, e205[3] = {2, 0, 5};
    struct { const char *name; bf_dtype dt; int nd; uint64_t *sh; } empties[] = {
        {"empty.f32.0x4", BF_F32, 2, e04}, {"empty.f32.0", BF_F32, 1, e0},   {"empty.i64.0", BF_I64, 1, e0},
        {"empty.u8.2x0x5", BF_U8, 3, e205}, {"empty.tq2.0x4", BF_TQ2, 2, e04}, {"empty.tq1.0x4", BF_TQ1, 2, e04},
        {"empty.tq2.3x0", BF_TQ2, 2, e30}, {"empty.tq1.0x0", BF_TQ1, 2, e00},
    };
    for (size_t k = 0; k < sizeof empties / sizeof empties[0]; k++) {
        int rc = bf_tensor_init(&ts[n], empties[k].name, empties[k].dt, empties[k].nd, empties[k].sh);
        is_int(rc, 0, "%s accepted by bf_tensor_init%s%s", empties[k].name, rc ? ": " : "", rc ? bf_errmsg() : "");
        if (rc) { bf_tensor_release(&ts[n]); continue; }
        is_int((long long)ts[n].nbytes, 0, "%s has 0 bytes", empties[k].name);
        n++;
    }
    char n255[256], n256[257];
    memset(n255, 'x', 255);
    n255[255] = 0;
    memset(n256, 'y', 256);
    n256[256] = 0;
    uint64_t one[1] = {1};
    is_int(bf_tensor_init(&ts[n], n255, BF_U8, 1, one), 0, "255-byte name accepted");
    ((unsigned char *)ts[n++].data)[0] = 7;
    bf_tensor bad;
    is_int(bf_tensor_init(&bad, n256, BF_U8, 1, one), -1, "256-byte name refused");
    bf_tensor_release(&bad);
    is_int(bf_tensor_init(&bad, "", BF_U8, 1, one), -1, "empty name refused");
    bf_tensor_release(&bad);
    /* 255 bytes of UTF-8: 'a' and 127 two-byte characters */
    char u255[256];
    u255[0] = 'a';
    for (int k = 0; k < 127; k++) { u255[1 + 2 * k] = (char)0xc3; u255[2 + 2 * k] = (char)0xa9; }
    u255[255] = 0;
    is_int(bf_tensor_init(&ts[n], u255, BF_U8, 1, one), 0, "255-byte UTF-8 name accepted");
    ((unsigned char *)ts[n++].data)[0] = 9;

    uint64_t nine[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    memset(&bad, 0, sizeof bad);
    is_int(bf_tensor_init(&bad, "too.many.dims", BF_F32, 9, nine), -1, "9 dims refused by bf_tensor_init");
    is_int(bf_tensor_init(&bad, "way.too.many.dims", BF_F32, 10, nine), -1, "10 dims refused by bf_tensor_init");
    ok(bad.data == NULL, "a refused shape leaves no payload pointer behind");
    if (bad.data == NULL) bf_tensor_release(&bad);
    is_int(bf_tensor_init(&bad, "neg.dims", BF_F32, -1, nine), -1, "negative dims refused by bf_tensor_init");
    bf_tensor_release(&bad);
    uint64_t eight[8] = {1, 2, 1, 2, 1, 2, 1, 3};
    is_int(bf_tensor_init(&ts[n], "eight.dims", BF_I8, 8, eight), 0, "8 dims accepted");
    is_int((long long)ts[n].nbytes, 24, "8 dims: 24 bytes");
    fill_random(&ts[n++]);
    is_int(bf_tensor_init(&bad, "tern.1d", BF_TQ2, 1, one), -1, "ternary with 1 dim refused");
    bf_tensor_release(&bad);
    is_int(bf_tensor_init(&bad, "tern.0d", BF_TQ1, 0, NULL), -1, "ternary with 0 dims refused");
    bf_tensor_release(&bad);
    uint64_t huge[2] = {UINT64_MAX / 2, 4};
    uint64_t nb = 0;
    is_int(bf_tensor_size(BF_F32, 2, huge, &nb), -1, "bf_tensor_size refuses a shape that overflows");
    uint64_t hugetq[2] = {UINT64_MAX / 2, 64};
    is_int(bf_tensor_size(BF_TQ2, 2, hugetq, &nb), -1, "bf_tensor_size refuses a TQ2 shape that overflows");

    bf_header h;
    bf_header_init(&h, "state");
    int wrc;
    buf_t b = write_stream(&h, ts, n, 0, &wrc);
    is_int(wrc, 0, "edge shapes: writer closes cleanly");
    walk_t w = walk(&b);
    ok(!w.bad && w.trailer && w.ntensors == n && all_aligned(&w), "edge shapes: raw walk, %d payloads aligned", n);
    for (int mode = 0; mode < SRC_NMODES; mode++) {
        bf_tset s;
        int rc = read_bytes(&b, mode, NULL, &s);
        is_int(rc, 0, "edge shapes via %s: read to a verified trailer%s%s", src_name[mode], rc ? ": " : "",
               rc ? bf_errmsg() : "");
        int good = s.n == (size_t)n;
        for (size_t k = 0; good && k < s.n; k++)
            if (!same_tensor(&s.t[k], &ts[k])) { good = 0; diag("%s differs", ts[k].name); }
        ok(good, "edge shapes via %s: every tensor identical (0-dim, empty, 8 dims, long names)", src_name[mode]);
        bf_tensor *sc = bf_tset_find(&s, "scalar.F32");
        ok(sc && sc->ndim == 0 && sc->nbytes == 4, "0-dim F32 reads back with ndim 0 and 4 bytes");
        bf_tensor *e = bf_tset_find(&s, "empty.f32.0x4");
        ok(e && e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 4 && e->nbytes == 0, "[0,4] reads back as [0,4]");
        bf_tensor *l = bf_tset_find(&s, n255);
        ok(l && l->nbytes == 1 && ((unsigned char *)l->data)[0] == 7, "255-byte name reads back with its value");
        bf_tset_release(&s);
    }
    buf_free(&b);
    bf_header_release(&h);
    for (int k = 0; k < n; k++) bf_tensor_release(&ts[k]);
}

static void test_meta_lineage(void)
{
    bf_header h;
    bf_header_init(&h, "adapter");
    bf_val *m = h.meta;
    bf_val_set(m, "zero", bf_val_int(0));
    int64_t ints[] = {1, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL, INT64_MAX,
                      -1, -32, -33, -128, -129, -32768, -32769, -2147483648LL, -2147483649LL, INT64_MIN};
    bf_val *ia = bf_val_arr();
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) bf_val_push(ia, bf_val_int(ints[k]));
    bf_val_set(m, "ints", ia);
    bf_val *ua = bf_val_arr();
    bf_val_push(ua, val_uint((uint64_t)INT64_MAX + 1));
    bf_val_push(ua, val_uint(0xfedcba9876543210ULL));
    bf_val_push(ua, val_uint(UINT64_MAX));
    bf_val_set(m, "big", ua);
    bf_val *fa = bf_val_arr();
    double fl[] = {0.5, -0.0, 1e300, -2.5e-310, 3.141592653589793, DBL_MAX, INFINITY, -INFINITY, NAN};
    for (size_t k = 0; k < sizeof fl / sizeof fl[0]; k++) bf_val_push(fa, bf_val_float(fl[k]));
    bf_val_set(m, "floats", fa);
    bf_val_set(m, "yes", bf_val_bool(1));
    bf_val_set(m, "no", bf_val_bool(0));
    bf_val_set(m, "nothing", bf_val_nil());
    static const unsigned char bin[] = {0, 1, 0xff, 0, 0xc1, 0x80};
    bf_val_set(m, "bin", val_bin(bin, sizeof bin));
    bf_val_set(m, "bin.empty", val_bin("", 0));
    unsigned char *big = malloc(70000);
    for (int k = 0; k < 70000; k++) big[k] = (unsigned char)(k * 7);
    bf_val_set(m, "bin.255", val_bin(big, 255));
    bf_val_set(m, "bin.256", val_bin(big, 256));
    bf_val_set(m, "bin.70000", val_bin(big, 70000));
    free(big);
    bf_val_set(m, "str.empty", bf_val_str(""));
    bf_val_set(m, "str.utf8", bf_val_str("r\xc3\xa9sum\xc3\xa9 \xe2\x88\x91 \xf0\x9f\x98\x80"));
    bf_val_set(m, "str.31", val_str_rep('a', 31));
    bf_val_set(m, "str.32", val_str_rep('b', 32));
    bf_val_set(m, "str.256", val_str_rep('c', 256));
    bf_val_set(m, "str.65536", val_str_rep('d', 65536));
    bf_val_set(m, "", bf_val_str("empty key"));
    /* nested: maps in arrays in maps, six deep, plus empty containers */
    bf_val *deep = bf_val_map();
    bf_val *cur = deep;
    for (int d = 0; d < 6; d++) {
        bf_val *arr = bf_val_arr();
        bf_val_push(arr, bf_val_int(d));
        bf_val_push(arr, bf_val_map());
        bf_val_set(cur, "level", arr);
        cur = bf_val_get(cur, "level");
        cur = &cur->v.a.items[1];
        bf_val_set(cur, "d", bf_val_int(d));
    }
    bf_val_set(m, "deep", deep);
    bf_val_set(m, "empty.map", bf_val_map());
    bf_val_set(m, "empty.arr", bf_val_arr());
    bf_val *many = bf_val_arr();
    for (int k = 0; k < 65536; k++) bf_val_push(many, bf_val_int(k % 300 - 150));
    bf_val_set(m, "many", many);   /* array32: 65536 items, the reader's limit */
    /* lineage: {tool, version, args} maps */
    for (int k = 0; k < 3; k++) {
        bf_val *e = bf_val_map();
        bf_val_set(e, "tool", bf_val_str(k == 0 ? "bf-init" : k == 1 ? "bf-quantize" : "bf-muon"));
        bf_val_set(e, "version", bf_val_str("0.1.0"));
        bf_val *args = bf_val_arr();
        bf_val_push(args, bf_val_str("--seed"));
        bf_val_push(args, bf_val_str("42"));
        bf_val_set(e, "args", args);
        bf_val_push(h.lineage, e);
    }
    /* the same map must stay smaller than the 1 MiB header limit */
    bf_tensor t[2];
    uint64_t sh[2] = {2, 10};
    bf_tensor_init(&t[0], "w", BF_TQ1, 2, sh);
    fill_random(&t[0]);
    t[0].meta = bf_val_map();
    bf_val_set(t[0].meta, "method", bf_val_str("threshold"));
    bf_val_set(t[0].meta, "threshold", bf_val_float(0.7));
    bf_val_set(t[0].meta, "per_row", bf_val_bool(1));
    bf_val_set(t[0].meta, "neg", bf_val_int(-5));
    bf_val_set(t[0].meta, "big", val_uint(UINT64_MAX - 1));
    bf_val_set(t[0].meta, "nest", bf_val_clone(bf_val_get(m, "deep")));
    bf_val_set(t[0].meta, "raw", val_bin(bin, sizeof bin));
    bf_tensor_init(&t[1], "w.scale", BF_F32, 1, sh);
    fill_random(&t[1]);
    t[1].meta = bf_val_map();   /* an empty meta map survives as an empty map */

    int wrc;
    buf_t b = write_stream(&h, t, 2, 0, &wrc);
    is_int(wrc, 0, "meta and lineage: writer closes cleanly");
    walk_t w = walk(&b);
    ok(!w.bad && w.trailer && w.ntensors == 2 && all_aligned(&w), "meta and lineage: raw walk, payloads aligned");
    for (int mode = 0; mode < SRC_NMODES; mode++) {
        bf_header rh;
        bf_tset s;
        int rc = read_bytes(&b, mode, &rh, &s);
        is_int(rc, 0, "meta via %s: stream reads%s%s", src_name[mode], rc ? ": " : "", rc ? bf_errmsg() : "");
        if (rc) { bf_tset_release(&s); continue; }
        ok(!strcmp(rh.kind, "adapter"), "meta via %s: kind", src_name[mode]);
        ok(val_eq(rh.meta, h.meta), "meta via %s: header meta identical (ints, big uints, floats, bools, nil, bin, "
           "strings, nesting)", src_name[mode]);
        ok(val_eq(rh.lineage, h.lineage), "meta via %s: lineage identical", src_name[mode]);
        const bf_val *bg = bf_val_get(rh.meta, "big");
        ok(bg && bg->type == BF_ARR && bg->v.a.n == 3 && bg->v.a.items[2].type == BF_UINT &&
           bg->v.a.items[2].v.u == UINT64_MAX, "meta via %s: UINT64_MAX stays an unsigned 2^64-1", src_name[mode]);
        const bf_val *is = bf_val_get(rh.meta, "ints");
        ok(is && is->v.a.n == 20 && is->v.a.items[19].type == BF_INT && is->v.a.items[19].v.i == INT64_MIN,
           "meta via %s: INT64_MIN survives", src_name[mode]);
        const bf_val *nan = bf_val_get(rh.meta, "floats");
        ok(nan && nan->v.a.n == 9 && isnan(nan->v.a.items[8].v.f) && signbit(nan->v.a.items[1].v.f),
           "meta via %s: NaN and -0.0 survive", src_name[mode]);
        ok(s.n == 2 && val_eq(s.t[0].meta, t[0].meta), "meta via %s: tensor meta identical", src_name[mode]);
        ok(s.n == 2 && s.t[1].meta && s.t[1].meta->type == BF_MAP && s.t[1].meta->v.a.n == 0,
           "meta via %s: an empty tensor meta map survives", src_name[mode]);
        ok(s.n == 2 && same_tensor(&s.t[0], &t[0]) && same_tensor(&s.t[1], &t[1]),
           "meta via %s: payloads identical", src_name[mode]);
        bf_header_release(&rh);
        bf_tset_release(&s);
    }
    /* a tensor without meta reads back with meta NULL */
    bf_val_free(t[1].meta);
    t[1].meta = NULL;
    buf_free(&b);
    b = write_stream(&h, &t[1], 1, 0, &wrc);
    bf_tset s;
    ok(read_bytes(&b, SRC_FILE, NULL, &s) == 0 && s.n == 1 && s.t[0].meta == NULL, "no meta reads back as NULL meta");
    bf_tset_release(&s);
    buf_free(&b);
    bf_header_release(&h);
    bf_tensor_release(&t[0]);
    bf_tensor_release(&t[1]);
}

static void test_chunks(void)
{
    static const size_t chunks[] = {1, 7, 64};
    /* payload sizes that are not multiples of the chunk sizes, plus 0 and sizes below a chunk */
    static const uint64_t sizes[] = {0, 1, 3, 50, 65, 129, 1000, 4099};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    bf_tensor ts[NS];
    for (int k = 0; k < NS; k++) {
        char name[32];
        snprintf(name, sizeof name, "c%d", k);
        bf_tensor_init(&ts[k], name, BF_U8, 1, &sizes[k]);
        fill_random(&ts[k]);
    }
    bf_header h;
    bf_header_init(&h, "data");
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        size_t ch = chunks[c];
        int wrc;
        buf_t b = write_stream(&h, ts, NS, ch, &wrc);
        is_int(wrc, 0, "chunk %zu: writer closes cleanly", ch);
        walk_t w = walk(&b);
        ok(!w.bad && w.trailer && w.ntensors == NS && w.end == b.n, "chunk %zu: raw walk parses every chunk", ch);
        int counts = 1, maxok = 1, eq = 1;
        for (int k = 0; k < w.ntensors; k++) {
            uint64_t want = sizes[k] ? (sizes[k] + ch - 1) / ch : 1;
            if (w.nchunks[k] != want) { counts = 0; diag("size %llu: %zu chunks, want %llu", (unsigned long long)sizes[k], w.nchunks[k], (unsigned long long)want); }
            if (w.max_chunk[k] > ch) maxok = 0;
            if (!raw_payload_eq(&b, &w, k, ts[k].data)) eq = 0;
        }
        ok(counts, "chunk %zu: each payload split into ceil(nbytes/chunk) bin chunks", ch);
        ok(maxok, "chunk %zu: no chunk larger than %zu bytes", ch, ch);
        ok(eq, "chunk %zu: chunks concatenate to the payload", ch);
        ok(all_aligned(&w), "chunk %zu: every payload's first byte at a multiple of 64", ch);
        for (int mode = 0; mode < SRC_NMODES; mode++) {
            bf_tset s;
            int rc = read_bytes(&b, mode, NULL, &s);
            int good = rc == 0 && s.n == NS;
            for (size_t k = 0; good && k < s.n; k++) good = same_tensor(&s.t[k], &ts[k]);
            ok(good, "chunk %zu via %s: read back identical", ch, src_name[mode]);
            bf_tset_release(&s);
        }
        buf_free(&b);
    }
    /* default: one chunk per payload */
    int wrc;
    buf_t b = write_stream(&h, ts, NS, 0, &wrc);
    walk_t w = walk(&b);
    int single = !w.bad && w.ntensors == NS;
    for (int k = 0; single && k < NS; k++) single = w.nchunks[k] == 1;
    ok(single, "default chunking: one bin32 chunk per payload");
    buf_free(&b);
    bf_header_release(&h);
    for (int k = 0; k < NS; k++) bf_tensor_release(&ts[k]);
}

/* Pads of every length: tensors whose header sizes vary byte by byte. */
static void test_alignment(void)
{
    enum { N = 140 };
    bf_tensor *ts = calloc(N, sizeof *ts);
    for (int k = 0; k < N; k++) {
        char name[128];
        int len = 1 + k % 97;
        for (int j = 0; j < len; j++) name[j] = (char)('a' + (k + j) % 26);
        name[len] = 0;
        snprintf(name + len, sizeof name - (size_t)len, "%d", k);   /* unique */
        uint64_t n = (uint64_t)(k * 13 % 71);
        bf_tensor_init(&ts[k], name, BF_U8, 1, &n);
        fill_random(&ts[k]);
        if (k % 3 == 0) {
            ts[k].meta = bf_val_map();
            bf_val_set(ts[k].meta, "k", bf_val_int(k * 1000));
        }
    }
    bf_header h;
    bf_header_init(&h, "model");
    bf_val_set(h.meta, "x", bf_val_str("odd-length header"));
    int wrc;
    buf_t b = write_stream(&h, ts, N, 0, &wrc);
    walk_t w = walk(&b);
    ok(!w.bad && w.ntensors == N && w.trailer, "alignment: raw walk finds %d tensors", N);
    ok(all_aligned(&w), "alignment: all %d payloads start at a multiple of 64", N);
    /* the pads took many lengths, 0 among them */
    int seen[64] = {0}, distinct = 0, nopad = 0;
    for (int k = 0; k < w.ntensors; k++) {
        if (w.pad[k] < 0 || w.pad[k] > 63) { nopad++; continue; }
        if (!seen[w.pad[k]]++) distinct++;
    }
    is_int(nopad, 0, "alignment: every tensor header ends with a bin8 pad of 0-63 bytes");
    ok(seen[0] > 0, "alignment: a zero-length pad occurred");
    ok(distinct > 20, "alignment: pads of %d different lengths were exercised", distinct);
    bf_tset s;
    int rc = read_bytes(&b, SRC_DRIBBLE, NULL, &s);
    int good = rc == 0 && s.n == N;
    for (size_t k = 0; good && k < s.n; k++) good = same_tensor(&s.t[k], &ts[k]);
    ok(good, "alignment: %d tensors read back identical through a dribbled pipe", N);
    bf_tset_release(&s);
    buf_free(&b);
    bf_header_release(&h);
    for (int k = 0; k < N; k++) bf_tensor_release(&ts[k]);
    free(ts);
}

/* bf_reader_next returns 1 per tensor, then 0 once the trailer was read;
 * any cut of the stream makes it fail instead. */
static void test_trailer_and_truncation(void)
{
    bf_tensor ts[3];
    uint64_t s1[2] = {4, 9}, s2[1] = {5}, s3[2] = {3, 11};
    bf_tensor_init(&ts[0], "a", BF_F32, 2, s1);
    bf_tensor_init(&ts[1], "b", BF_I8, 1, s2);
    bf_tensor_init(&ts[2], "c", BF_TQ1, 2, s3);
    for (int k = 0; k < 3; k++) fill_random(&ts[k]);
    ts[1].meta = bf_val_map();
    bf_val_set(ts[1].meta, "note", bf_val_str("meta before the pad"));
    bf_header h;
    bf_header_init(&h, "model");
    bf_val_set(h.meta, "arch", bf_val_str("transformer"));
    int wrc;
    buf_t b = write_stream(&h, ts, 3, 7, &wrc);

    src_t src;
    src_open(&src, &b, SRC_FILE);
    bf_reader *r = bf_reader_fdopen(src.fd, "trail");
    ok(r != NULL, "reader opens the stream");
    bf_tensor t;
    int seq[5];
    for (int k = 0; k < 5; k++) {
        seq[k] = r ? bf_reader_next(r, &t) : -1;
        if (seq[k] == 1) bf_tensor_release(&t);
    }
    ok(seq[0] == 1 && seq[1] == 1 && seq[2] == 1, "bf_reader_next returns 1 for each of the 3 tensors");
    is_int(seq[3], 0, "then 0 for the trailer");
    is_int(seq[4], 0, "and 0 again after it");
    ok(r && bf_reader_offset(r) == b.n, "reader offset is the stream's length at the end");
    bf_reader_close(r);
    src_close(&src);

    /* every cut: never a 0 from bf_reader_next, and a truncation message */
    int zero = 0, msg = 0, cuts = 0;
    static const int cut_modes[] = {SRC_FILE, SRC_PIPE, SRC_MEM};
    for (int m = 0; m < 3; m++) {
        int mode = cut_modes[m];
        for (size_t cut = 0; cut < b.n; cut++) {
            buf_t c = {b.p, cut, cut};
            src_t cs;
            src_open(&cs, &c, mode);
            bf_reader *cr = mode == SRC_MEM ? bf_reader_memopen(c.p, c.n, "cut") : bf_reader_fdopen(cs.fd, "cut");
            int rc = -2;
            if (cr) {
                while ((rc = bf_reader_next(cr, &t)) == 1) bf_tensor_release(&t);
                bf_reader_close(cr);
            }
            src_close(&cs);
            cuts++;
            if (rc == 0) { zero++; diag("cut at %zu (%s) read as a whole stream", cut, src_name[mode]); }
            if (cut > 0 && !strstr(bf_errmsg(), "truncated")) {
                if (msg < 5) diag("cut at %zu (%s): '%s'", cut, src_name[mode], bf_errmsg());
                msg++;
            }
            if (cut == 0 && !strstr(bf_errmsg(), "empty")) msg++;
        }
    }
    is_int(zero, 0, "no cut of the stream (%d cuts, file, pipe and memory) reads as complete", cuts);
    is_int(msg, 0, "every cut is reported as a truncated (or empty) stream");

    /* a byte after the trailer */
    buf_t extra = {0};
    buf_put(&extra, b.p, b.n);
    buf_put(&extra, "\xc0", 1);
    bf_tset s;
    int rc = read_bytes(&extra, SRC_PIPE, NULL, &s);
    ok(rc == -1 && strstr(bf_errmsg(), "after the trailer"), "a byte after the trailer is an error");
    bf_tset_release(&s);
    buf_free(&extra);

    /* one flipped payload bit: checksum mismatch; flipped count: count mismatch */
    walk_t w = walk(&b);
    buf_t bad = {0};
    buf_put(&bad, b.p, b.n);
    bad.p[w.payload_off[0] + 3] ^= 0x10;
    rc = read_bytes(&bad, SRC_FILE, NULL, &s);
    ok(rc == -1 && strstr(bf_errmsg(), "checksum"), "a flipped payload bit fails the checksum");
    bf_tset_release(&s);
    memcpy(bad.p, b.p, b.n);
    /* the trailer's count is a positive fixint 3 after the key "count" */
    unsigned char *cnt = memmem(bad.p + w.payload_off[2], b.n - w.payload_off[2], "\xa5" "count", 6);
    ok(cnt && cnt[6] == 3, "trailer holds count 3");
    if (cnt) cnt[6] = 2;
    rc = read_bytes(&bad, SRC_FILE, NULL, &s);
    ok(rc == -1 && strstr(bf_errmsg(), "count"), "a wrong trailer count is an error");
    bf_tset_release(&s);
    buf_free(&bad);
    buf_free(&b);
    bf_header_release(&h);
    for (int k = 0; k < 3; k++) bf_tensor_release(&ts[k]);
}

static void test_abort(void)
{
    bf_header h;
    bf_header_init(&h, "model");
    bf_tensor big, small;
    uint64_t nb = 3u << 20, ns = 10;   /* the big one is flushed past the writer's buffer */
    bf_tensor_init(&big, "big", BF_U8, 1, &nb);
    bf_tensor_init(&small, "small", BF_U8, 1, &ns);
    fill_random(&big);
    fill_random(&small);

    /* abort after a flushed tensor: the bytes hold no trailer, reading fails */
    int fd = tmpfd();
    bf_writer *w = bf_writer_fdopen(fd);
    bf_writer_header(w, &h);
    bf_writer_tensor(w, &big);
    bf_writer_tensor(w, &small);
    bf_writer_abort(w);
    buf_t b = fd_slurp(fd);
    close(fd);
    walk_t wk = walk(&b);
    ok(b.n > nb && !wk.trailer, "an aborted writer leaves %zu bytes and no trailer", b.n);
    bf_tset s;
    int rc = read_bytes(&b, SRC_PIPE, NULL, &s);
    ok(rc == -1 && strstr(bf_errmsg(), "truncated"), "reading an aborted stream reports truncation ('%s')",
       bf_errmsg());
    ok(s.n <= 1, "at most the flushed tensor was handed out");
    bf_tset_release(&s);
    buf_free(&b);

    /* abort before anything was flushed: the reader still fails */
    fd = tmpfd();
    w = bf_writer_fdopen(fd);
    bf_writer_header(w, &h);
    bf_writer_tensor(w, &small);
    bf_writer_abort(w);
    b = fd_slurp(fd);
    close(fd);
    wk = walk(&b);
    ok(!wk.trailer, "an early abort writes no trailer");
    rc = read_bytes(&b, SRC_FILE, NULL, &s);
    ok(rc != 0, "reading an early-aborted stream fails ('%s')", bf_errmsg());
    bf_tset_release(&s);
    buf_free(&b);

    /* closing without a header is a failure and writes no trailer */
    fd = tmpfd();
    w = bf_writer_fdopen(fd);
    is_int(bf_writer_close(w), -1, "closing a writer before its header fails");
    b = fd_slurp(fd);
    close(fd);
    is_int((long long)b.n, 0, "and writes nothing");
    buf_free(&b);

    /* a write error (a full device) makes close fail */
    fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        w = bf_writer_fdopen(fd);
        bf_writer_header(w, &h);
        int r1 = bf_writer_tensor(w, &big);
        int r2 = bf_writer_close(w);
        ok(r1 == -1 && r2 == -1, "a full device fails the write and the close ('%s')", bf_errmsg());
        close(fd);
    } else {
        ok(1, "# skip no /dev/full");
    }

    /* the reader went away: EPIPE is reported, the writer fails */
    int pfd[2];
    if (pipe(pfd) == 0) {
        close(pfd[0]);
        bf_stream_epipe = 0;
        w = bf_writer_fdopen(pfd[1]);
        bf_writer_header(w, &h);
        int r1 = bf_writer_tensor(w, &big);
        int r2 = bf_writer_close(w);
        ok(r1 == -1 && r2 == -1 && bf_stream_epipe == 1, "a closed pipe fails the writer and sets bf_stream_epipe");
        close(pfd[1]);
    }
    bf_tensor_release(&big);
    bf_tensor_release(&small);
    bf_header_release(&h);
}

/* Names in dir, other than . and .. */
static int dir_entries(const char *dir, char names[][256], int max)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (n < max) snprintf(names[n], 256, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void test_atomic_open(void)
{
    const char *tdir = getenv("TMPDIR");
    char dir[4096], out[4200], keep[4200];
    snprintf(dir, sizeof dir, "%s/bf-test-atomic-XXXXXX", tdir && *tdir ? tdir : "/tmp");
    if (!mkdtemp(dir)) { ok(0, "mkdtemp: %s", strerror(errno)); return; }
    snprintf(out, sizeof out, "%s/out.bf", dir);
    snprintf(keep, sizeof keep, "%s/keep.bf", dir);
    char names[8][256];
    bf_header h;
    bf_header_init(&h, "model");
    bf_tensor t;
    uint64_t sh[2] = {5, 5};
    bf_tensor_init(&t, "w", BF_F32, 2, sh);
    fill_random(&t);

    /* open + abort on a new name: nothing left behind */
    bf_writer *w = bf_writer_open(out);
    ok(w != NULL, "bf_writer_open(path) succeeds");
    bf_writer_header(w, &h);
    bf_writer_tensor(w, &t);
    int n = dir_entries(dir, names, 8);
    ok(n == 1 && strncmp(names[0], ".out.bf.", 8) == 0, "while writing, only a hidden temporary file exists (%s)",
       n >= 1 ? names[0] : "none");
    ok(access(out, F_OK) != 0, "the final name does not exist before close");
    bf_writer_abort(w);
    is_int(dir_entries(dir, names, 8), 0, "abort leaves no file at all");

    /* open + abort over an existing file: not clobbered */
    int fd = open(keep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ok(fd >= 0 && write(fd, "precious\n", 9) == 9, "an existing file");
    close(fd);
    w = bf_writer_open(keep);
    bf_writer_header(w, &h);
    bf_writer_tensor(w, &t);
    bf_writer_abort(w);
    buf_t b = file_slurp(keep);
    ok(b.n == 9 && !memcmp(b.p, "precious\n", 9), "abort does not clobber an existing file");
    buf_free(&b);
    is_int(dir_entries(dir, names, 8), 1, "and leaves no temporary file");

    /* close without a header over the existing file: fails, file intact */
    w = bf_writer_open(keep);
    is_int(bf_writer_close(w), -1, "closing without a header fails");
    b = file_slurp(keep);
    ok(b.n == 9 && !memcmp(b.p, "precious\n", 9), "a failed close does not clobber the existing file");
    buf_free(&b);
    is_int(dir_entries(dir, names, 8), 1, "and leaves no temporary file");

    /* a program ending at once (out of memory) removes open writers' temporary files, nothing else */
    w = bf_writer_open(out);
    bf_writer_header(w, &h);
    bf_writer_tensor(w, &t);
    is_int(dir_entries(dir, names, 8), 2, "an open writer's temporary file beside the existing file");
    bf_writer_remove_temporaries();
    is_int(dir_entries(dir, names, 8), 1, "bf_writer_remove_temporaries removes it");
    b = file_slurp(keep);
    ok(b.n == 9 && !memcmp(b.p, "precious\n", 9), "and leaves the existing file as it was");
    buf_free(&b);
    bf_writer_abort(w);

    /* open + close renames into place, over the existing file */
    mode_t mask = umask(022);
    w = bf_writer_open(keep);
    bf_writer_header(w, &h);
    bf_writer_tensor(w, &t);
    is_int(bf_writer_close(w), 0, "open + close succeeds");
    umask(mask);
    is_int(dir_entries(dir, names, 8), 1, "the finished stream replaced the file, no temporary left");
    struct stat st;
    ok(stat(keep, &st) == 0 && (st.st_mode & 0777) == 0644, "the file has mode 0666 & ~umask (0644)");
    bf_header rh;
    bf_tset s;
    int rc = bf_read_all(keep, &rh, &s);
    ok(rc == 0 && s.n == 1 && same_tensor(&s.t[0], &t), "the renamed file reads back complete");
    if (rc == 0) bf_header_release(&rh);
    bf_tset_release(&s);

    /* bf_write_all / bf_read_all on a new path */
    bf_tset set = {0};
    bf_tensor *a = bf_tset_add(&set);
    uint64_t sa[1] = {3};
    bf_tensor_init(a, "x", BF_I32, 1, sa);
    fill_random(a);
    is_int(bf_write_all(out, &h, &set), 0, "bf_write_all writes a new file");
    rc = bf_read_all(out, &rh, &s);
    ok(rc == 0 && s.n == 1 && same_tensor(&s.t[0], a), "bf_read_all reads it back");
    if (rc == 0) bf_header_release(&rh);
    bf_tset_release(&s);
    bf_tset_release(&set);
    is_int(dir_entries(dir, names, 8), 2, "two files, no temporaries");

    char nodir[4300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.bf", dir);
    ok(bf_writer_open(nodir) == NULL, "bf_writer_open in a missing folder fails ('%s')", bf_errmsg());

    unlink(out);
    unlink(keep);
    rmdir(dir);
    bf_tensor_release(&t);
    bf_header_release(&h);
}

/* --------------------------------------------- a hand-made stream */

static void mb_u8(buf_t *b, unsigned v) { unsigned char c = (unsigned char)v; buf_put(b, &c, 1); }
static void mb_be(buf_t *b, uint64_t v, int n)
{
    for (int k = n - 1; k >= 0; k--) mb_u8(b, (unsigned)(v >> (8 * k)) & 0xff);
}
static void mb_str(buf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (n < 32) mb_u8(b, 0xa0 | (unsigned)n);
    else { mb_u8(b, 0xd9); mb_u8(b, (unsigned)n); }
    buf_put(b, s, n);
}
static void mb_uint(buf_t *b, uint64_t v)
{
    if (v < 128) mb_u8(b, (unsigned)v);
    else { mb_u8(b, 0xcf); mb_be(b, v, 8); }
}
static void mb_bin(buf_t *b, const void *p, size_t n, int width)
{
    mb_u8(b, width == 1 ? 0xc4 : width == 2 ? 0xc5 : 0xc6);
    mb_be(b, n, width);
    buf_put(b, p, n);
}

/* The reader against bytes made by hand from §3: no pad, bin8/bin16/bin32
 * chunks, unknown header keys, missing meta and lineage, a 16-bit map. */
static void test_handmade(void)
{
    unsigned char pay[300];
    for (int k = 0; k < 300; k++) pay[k] = (unsigned char)(k * 31 + 5);
    buf_t b = {0};
    mb_u8(&b, 0x83);
    mb_str(&b, "bf"); mb_uint(&b, 1);
    mb_str(&b, "kind"); mb_str(&b, "data");
    mb_str(&b, "future"); mb_u8(&b, 0x92); mb_uint(&b, 1); mb_str(&b, "x");
    mb_u8(&b, 0xde); mb_be(&b, 4, 2);   /* map16 tensor header */
    mb_str(&b, "name"); mb_str(&b, "x");
    mb_str(&b, "dtype"); mb_str(&b, "U8");
    mb_str(&b, "shape"); mb_u8(&b, 0x91); mb_u8(&b, 0xcd); mb_be(&b, 300, 2);
    mb_str(&b, "nbytes"); mb_u8(&b, 0xcd); mb_be(&b, 300, 2);
    mb_bin(&b, pay, 100, 1);
    mb_bin(&b, pay + 100, 150, 2);
    mb_bin(&b, pay + 250, 50, 4);
    mb_u8(&b, 0x83);
    mb_str(&b, "end"); mb_u8(&b, 0xc3);
    mb_str(&b, "count"); mb_uint(&b, 1);
    mb_str(&b, "xxh3"); mb_uint(&b, XXH3_64bits(pay, 300));
    for (int mode = 0; mode < SRC_NMODES; mode++) {
        bf_header h;
        bf_tset s;
        int rc = read_bytes(&b, mode, &h, &s);
        is_int(rc, 0, "hand-made stream via %s: reads%s%s", src_name[mode], rc ? ": " : "", rc ? bf_errmsg() : "");
        ok(rc == 0 && s.n == 1 && s.t[0].nbytes == 300 && !memcmp(s.t[0].data, pay, 300),
           "hand-made via %s: bin8 + bin16 + bin32 chunks concatenate", src_name[mode]);
        ok(rc == 0 && h.meta && h.meta->type == BF_MAP && h.meta->v.a.n == 0 && h.lineage &&
           h.lineage->type == BF_ARR && h.lineage->v.a.n == 0,
           "hand-made via %s: missing meta and lineage read as empty", src_name[mode]);
        if (rc == 0) bf_header_release(&h);
        bf_tset_release(&s);
    }
    buf_free(&b);

    /* a payload that claims 1 GiB through a pipe and then ends: an error, not a huge allocation */
    mb_u8(&b, 0x82); mb_str(&b, "bf"); mb_uint(&b, 1); mb_str(&b, "kind"); mb_str(&b, "data");
    mb_u8(&b, 0x84);
    mb_str(&b, "name"); mb_str(&b, "liar");
    mb_str(&b, "dtype"); mb_str(&b, "U8");
    mb_str(&b, "shape"); mb_u8(&b, 0x91); mb_uint(&b, 1ull << 30);
    mb_str(&b, "nbytes"); mb_uint(&b, 1ull << 30);
    mb_u8(&b, 0xc6); mb_be(&b, 1ull << 30, 4);
    buf_put(&b, pay, 300);
    bf_tset s;
    double t0 = bf_now();
    int rc = read_bytes(&b, SRC_PIPE, NULL, &s);
    ok(rc == -1 && strstr(bf_errmsg(), "truncated"), "a payload claiming 1 GiB that ends early is a truncation ('%s')",
       bf_errmsg());
    ok(bf_now() - t0 < 2.0, "and fails quickly");
    bf_tset_release(&s);
    /* a file or memory knows its size: the claim is refused before any allocation */
    static const int sized[] = {SRC_FILE, SRC_MEM};
    for (int m = 0; m < 2; m++) {
        int mode = sized[m];
        rc = read_bytes(&b, mode, NULL, &s);
        ok(rc == -1 && strstr(bf_errmsg(), "declares 1073741824 bytes") && strstr(bf_errmsg(), "holds"),
           "via %s: a payload claiming more than the bytes left is refused up front ('%s')", src_name[mode], bf_errmsg());
        bf_tset_release(&s);
    }
    buf_free(&b);
}

/* ------------------------------------------------- F16 and BF16 */

static float fbits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bitsf(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* Reference half -> double, from the definition. */
static double ref_f16_to_d(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

/* Reference float -> half, round to nearest even, in double arithmetic. */
static uint16_t ref_f32_to_f16(float f)
{
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (isnan(f)) return sign | 0x7e00;
    if (isinf(f)) return sign | 0x7c00;
    if (a == 0) return sign;
    int e;
    frexp(a, &e);
    e -= 1;                        /* a in [2^e, 2^(e+1)) */
    if (e < -14) e = -14;          /* subnormal range shares the 2^-24 unit */
    double q = nearbyint(ldexp(a, 10 - e));   /* units of 2^(e-10), ties to even */
    double hv = (double)((e + 15) << 10) + q - 1024;
    if (hv >= 0x7c00) return sign | 0x7c00;
    return sign | (uint16_t)hv;
}

/* Reference float -> bfloat16, in double arithmetic. */
static uint16_t ref_f32_to_bf16(float f)
{
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    if (isnan(f)) return sign | 0x7fc0;
    if (isinf(f)) return sign | 0x7f80;
    double a = fabs((double)f);
    if (a == 0) return sign;
    int e;
    frexp(a, &e);
    e -= 1;
    if (e < -126) e = -126;
    double v = ldexp(nearbyint(ldexp(a, 7 - e)), e - 7);
    if (v >= ldexp(1, 128)) return sign | 0x7f80;
    return sign | (uint16_t)(bitsf((float)v) >> 16);
}

static int f16_isnan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
static int bf16_isnan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f); }

static void test_f16(void)
{
    struct { float f; uint16_t h; const char *what; } to16[] = {
        {0.0f, 0x0000, "0"}, {-0.0f, 0x8000, "-0"}, {1.0f, 0x3c00, "1"}, {-2.0f, 0xc000, "-2"},
        {0.5f, 0x3800, "0.5"}, {0.1f, 0x2e66, "0.1"}, {1.0f / 3, 0x3555, "1/3"}, {3.14159265f, 0x4248, "pi"},
        {65504.0f, 0x7bff, "65504, the largest half"}, {65519.99609375f, 0x7bff, "just below the overflow midpoint"},
        {65520.0f, 0x7c00, "65520: tie between 65504 and 2^16 goes to even, which is inf"},
        {65536.0f, 0x7c00, "65536 overflows"}, {1e6f, 0x7c00, "1e6 overflows"}, {-1e6f, 0xfc00, "-1e6 overflows"},
        {FLT_MAX, 0x7c00, "FLT_MAX overflows"}, {INFINITY, 0x7c00, "inf"}, {-INFINITY, 0xfc00, "-inf"},
        {6.103515625e-05f, 0x0400, "2^-14, the smallest normal"},
        {5.9604644775390625e-08f, 0x0001, "2^-24, the smallest subnormal"},
        {-5.9604644775390625e-08f, 0x8001, "-2^-24"},
        {2.98023223876953125e-08f, 0x0000, "2^-25: tie between 0 and 2^-24 goes to 0"},
        {4.470348358154296875e-08f, 0x0001, "0.75 * 2^-24 rounds up"},
        {8.940696716308594e-08f, 0x0002, "1.5 * 2^-24: tie goes to 2 (even)"},
        {1.4901161193847656e-07f, 0x0002, "2.5 * 2^-24: tie goes to 2 (even)"},
        {1.4901161193847656e-08f, 0x0000, "2^-26 rounds to 0"},
        {6.097555160522461e-05f, 0x03ff, "1023 * 2^-24, the largest subnormal"},
        {6.100535392761230e-05f, 0x0400, "1023.5 * 2^-24: tie goes up to the smallest normal (even)"},
        {1.00048828125f, 0x3c00, "1 + 2^-11: tie goes to 1 (even)"},
        {1.00146484375f, 0x3c02, "1 + 3*2^-11: tie goes to 1 + 2^-9 (even)"},
        {1.0004884004592896f, 0x3c01, "1 + 2^-11 + 2^-23: just past the tie rounds up"},
        {1.999755859375f, 0x4000, "2 - 2^-12 rounds up across the exponent"},
    };
    int n16 = (int)(sizeof to16 / sizeof to16[0]);
    for (int k = 0; k < n16; k++) {
        uint16_t got = bf_f32_to_f16(to16[k].f);
        ok(got == to16[k].h, "f32->f16 %s: 0x%04x", to16[k].what, got);
        if (got != to16[k].h) diag("want 0x%04x", to16[k].h);
    }
    ok(f16_isnan(bf_f32_to_f16(NAN)), "f32->f16 NaN stays NaN");
    ok(f16_isnan(bf_f32_to_f16(fbits(0x7f800001))) , "f32->f16 a NaN with only the lowest bit stays NaN");
    ok(f16_isnan(bf_f32_to_f16(-NAN)) && (bf_f32_to_f16(-NAN) & 0x8000), "f32->f16 -NaN keeps its sign");

    struct { uint16_t h; double v; const char *what; } from16[] = {
        {0x3c00, 1.0, "1"}, {0xc000, -2.0, "-2"}, {0x7bff, 65504.0, "65504"}, {0x0400, 6.103515625e-05, "2^-14"},
        {0x0001, 5.9604644775390625e-08, "2^-24"}, {0x03ff, 6.097555160522461e-05, "largest subnormal"},
        {0x0200, 3.0517578125e-05, "2^-15 (subnormal)"}, {0x8001, -5.9604644775390625e-08, "-2^-24"},
        {0x3555, 0.333251953125, "0x3555"}, {0x7c00, INFINITY, "inf"}, {0xfc00, -INFINITY, "-inf"},
    };
    for (size_t k = 0; k < sizeof from16 / sizeof from16[0]; k++) {
        float got = bf_f16_to_f32(from16[k].h);
        ok((double)got == from16[k].v, "f16->f32 %s: %.17g", from16[k].what, (double)got);
    }
    ok(bf_f16_to_f32(0x8000) == 0 && signbit(bf_f16_to_f32(0x8000)), "f16->f32 -0 keeps its sign");
    ok(isnan(bf_f16_to_f32(0x7e00)) && isnan(bf_f16_to_f32(0x7c01)) && isnan(bf_f16_to_f32(0xfe00)),
       "f16->f32 NaN patterns give NaN");

    /* exhaustive: every half against the definition, and back */
    int dec_bad = 0, rt_bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bf_f16_to_f32((uint16_t)h);
        double want = ref_f16_to_d((uint16_t)h);
        if (isnan(want)) {
            if (!isnan(f) || !signbit(f) != !(h & 0x8000)) dec_bad++;
            if (!f16_isnan(bf_f32_to_f16(f))) rt_bad++;
            continue;
        }
        if ((double)f != want || !signbit(f) != !(h & 0x8000)) dec_bad++;
        if (bf_f32_to_f16(f) != h) rt_bad++;
    }
    is_int(dec_bad, 0, "f16->f32: all 65536 halves equal their definition");
    is_int(rt_bad, 0, "f16->f32->f16: all 65536 halves round-trip (NaN stays NaN)");

    /* around every half: the value, its neighbours, the midpoints to the next
     * half and the floats on either side of them; then random bit patterns */
    int enc_bad = 0, tested = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        double a = ref_f16_to_d((uint16_t)h), nx = h == 0x7bff ? 65536.0 : ref_f16_to_d((uint16_t)(h + 1));
        float mid = (float)((a + nx) / 2);
        float probes[6] = {(float)a, nextafterf((float)a, INFINITY), nextafterf((float)a, 0),
                           mid, nextafterf(mid, 0), nextafterf(mid, INFINITY)};
        for (int k = 0; k < 6; k++)
            for (int sg = 0; sg < 2; sg++) {
                float f = sg ? -probes[k] : probes[k];
                tested++;
                if (bf_f32_to_f16(f) != ref_f32_to_f16(f)) {
                    if (enc_bad++ < 5) diag("f32 %a (0x%08x): got 0x%04x want 0x%04x", (double)f, bitsf(f), bf_f32_to_f16(f), ref_f32_to_f16(f));
                }
            }
    }
    for (int k = 0; k < 1000000; k++) {
        float f = fbits((uint32_t)rnd());
        tested++;
        if (isnan(f) ? !f16_isnan(bf_f32_to_f16(f)) : bf_f32_to_f16(f) != ref_f32_to_f16(f)) {
            if (enc_bad++ < 5) diag("f32 0x%08x: got 0x%04x want 0x%04x", bitsf(f), bf_f32_to_f16(f), ref_f32_to_f16(f));
        }
    }
    is_int(enc_bad, 0, "f32->f16 equals round-to-nearest-even on %d floats (every tie and neighbour, random)", tested);

    /* BF16 */
    struct { float f; uint16_t h; const char *what; } tob[] = {
        {1.0f, 0x3f80, "1"}, {-3.5f, 0xc060, "-3.5"}, {0.0f, 0x0000, "0"}, {-0.0f, 0x8000, "-0"},
        {0.1f, 0x3dcd, "0.1 rounds up"}, {1.00390625f, 0x3f80, "1 + 2^-8: tie goes to 1 (even)"},
        {1.01171875f, 0x3f82, "1 + 3*2^-8: tie goes to even"}, {fbits(0x3f808001), 0x3f81, "just past a tie rounds up"},
        {fbits(0x3f807fff), 0x3f80, "just below a tie rounds down"},
        {FLT_MAX, 0x7f80, "FLT_MAX rounds to inf"}, {fbits(0x7f7f0000), 0x7f7f, "the largest bfloat16"},
        {INFINITY, 0x7f80, "inf"}, {-INFINITY, 0xff80, "-inf"},
        {fbits(0x00010000), 0x0001, "the smallest subnormal"}, {fbits(0x00008000), 0x0000, "subnormal tie to 0"},
        {fbits(0x00018000), 0x0002, "subnormal tie to even 2"}, {fbits(0x807fffff), 0x8080, "-largest f32 subnormal rounds to -2^-126"},
    };
    for (size_t k = 0; k < sizeof tob / sizeof tob[0]; k++) {
        uint16_t got = bf_f32_to_bf16(tob[k].f);
        ok(got == tob[k].h, "f32->bf16 %s: 0x%04x", tob[k].what, got);
        if (got != tob[k].h) diag("want 0x%04x", tob[k].h);
    }
    ok(bf16_isnan(bf_f32_to_bf16(NAN)), "f32->bf16 NaN stays NaN");
    ok(bf16_isnan(bf_f32_to_bf16(fbits(0x7f800001))), "f32->bf16 a NaN with only the lowest bit stays NaN");
    ok(bf16_isnan(bf_f32_to_bf16(fbits(0xff800001))) && (bf_f32_to_bf16(fbits(0xff800001)) & 0x8000),
       "f32->bf16 a negative NaN stays a negative NaN");
    ok(bf_bf16_to_f32(0x3f80) == 1.0f && bf_bf16_to_f32(0xc060) == -3.5f, "bf16->f32 1 and -3.5");
    ok((double)bf_bf16_to_f32(0x0001) == ldexp(1, -133), "bf16->f32 0x0001 is 2^-133");
    ok(isinf(bf_bf16_to_f32(0xff80)) && bf_bf16_to_f32(0xff80) < 0 && isnan(bf_bf16_to_f32(0x7fc0)),
       "bf16->f32 -inf and NaN");
    int brt = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bf_bf16_to_f32((uint16_t)h);
        if (bitsf(f) != h << 16) brt++;
        uint16_t back = bf_f32_to_bf16(f);
        if (bf16_isnan((uint16_t)h) ? !bf16_isnan(back) : back != h) brt++;
    }
    is_int(brt, 0, "bf16->f32->bf16: all 65536 values round-trip (NaN stays NaN)");
    int benc = 0;
    for (int k = 0; k < 1000000; k++) {
        uint32_t u = (uint32_t)rnd();
        if (k & 1) u = (u & 0xffff0000u) | 0x8000u | (uint32_t)(k & 2 ? 0 : 1);   /* ties and near-ties */
        float f = fbits(u);
        int bad = isnan(f) ? !bf16_isnan(bf_f32_to_bf16(f)) : bf_f32_to_bf16(f) != ref_f32_to_bf16(f);
        if (bad && benc++ < 5) diag("bf16 of 0x%08x: got 0x%04x want 0x%04x", u, bf_f32_to_bf16(f), ref_f32_to_bf16(f));
    }
    is_int(benc, 0, "f32->bf16 equals round-to-nearest-even on 10^6 floats (half of them ties or near-ties)");
}

/* --------------------------------- a large payload through a pipe */

typedef struct {
    int fd;
    const bf_tensor *t;
    size_t chunk;
    int rc;
} bigw_t;

static void *big_writer(void *arg)
{
    bigw_t *a = arg;
    bf_header h;
    bf_header_init(&h, "model");
    bf_writer *w = bf_writer_fdopen(a->fd);
    if (a->chunk) bf_writer_set_chunk(w, a->chunk);
    a->rc = bf_writer_header(w, &h) || bf_writer_tensor(w, a->t);
    if (a->rc) bf_writer_abort(w);
    else a->rc = bf_writer_close(w);
    close(a->fd);
    bf_header_release(&h);
    return NULL;
}

static void test_big_pipe(void)
{
    /* ~150 MiB: the reader starts with 64 MiB and grows the mapping twice
     * (to 128 MiB, then to the full size) as bytes arrive */
    uint64_t n = (150ull << 20) + 13;
    bf_tensor t;
    if (bf_tensor_init(&t, "big", BF_U8, 1, &n)) { ok(0, "allocating %llu bytes: %s", (unsigned long long)n, bf_errmsg()); return; }
    uint64_t *wp = t.data;
    for (uint64_t k = 0; k < n / 8; k++) wp[k] = (k + 1) * 0x9e3779b97f4a7c15ULL;
    for (uint64_t k = n / 8 * 8; k < n; k++) ((unsigned char *)t.data)[k] = (unsigned char)k;
    static const size_t chunks[] = {0, (33u << 20) + 1};
    for (int c = 0; c < 2; c++) {
        int pfd[2];
        if (pipe(pfd)) { ok(0, "pipe"); break; }
        double t0 = bf_now();
        bigw_t a = {pfd[1], &t, chunks[c], -1};
        pthread_t th;
        pthread_create(&th, NULL, big_writer, &a);
        bf_reader *r = bf_reader_fdopen(pfd[0], "bigpipe");
        bf_tensor got;
        int r1 = r ? bf_reader_next(r, &got) : -1;
        bf_tensor after;
        int r2 = r && r1 == 1 ? bf_reader_next(r, &after) : -1;
        if (r2 == 1) bf_tensor_release(&after);
        if (r1 != 1 || r2 != 0) diag("reader: %s", bf_errmsg());
        bf_reader_close(r);
        close(pfd[0]);
        pthread_join(th, NULL);
        double secs = bf_now() - t0;
        is_int(a.rc, 0, "150 MiB%s: writer thread finished cleanly", c ? " in 33 MiB chunks" : "");
        ok(r1 == 1 && r2 == 0, "150 MiB%s through a pipe: one tensor, then a verified trailer", c ? " in 33 MiB chunks" : "");
        if (r1 == 1) {
            ok(got.nbytes == n && !memcmp(got.data, t.data, (size_t)n), "150 MiB%s: every byte identical",
               c ? " in 33 MiB chunks" : "");
            ok(got.mapped >= n && (uintptr_t)got.data % 64 == 0, "150 MiB%s: payload in a grown, aligned mapping",
               c ? " in 33 MiB chunks" : "");
            bf_tensor_release(&got);
        }
        diag("150 MiB through a pipe in %.2f s", secs);
    }
    bf_tensor_release(&t);
}

/* A stream in memory reads as the same stream from a file does, payloads
 * larger than the file reader's buffer too, and what it hands out outlives
 * the bytes it was read from. */
static void test_memory(void)
{
    uint64_t big = (3ull << 20) + 13, small = 77;
    bf_tensor ts[2];
    bf_tensor_init(&ts[0], "big", BF_U8, 1, &big);
    bf_tensor_init(&ts[1], "small", BF_I8, 1, &small);
    for (int k = 0; k < 2; k++) fill_random(&ts[k]);
    bf_header h;
    bf_header_init(&h, "data");
    int wrc;
    buf_t b = write_stream(&h, ts, 2, (1u << 20) + 1, &wrc);
    is_int(wrc, 0, "memory: writer closes cleanly");
    buf_t copy = {0};
    buf_put(&copy, b.p, b.n);
    bf_reader *r = bf_reader_memopen(copy.p, copy.n, "mem");
    bf_tensor got[2];
    int r1 = r ? bf_reader_next(r, &got[0]) : -1, r2 = r1 == 1 ? bf_reader_next(r, &got[1]) : -1;
    int r3 = r2 == 1 ? bf_reader_next(r, &(bf_tensor){0}) : -1;
    ok(r1 == 1 && r2 == 1 && r3 == 0, "memory: two tensors then a verified trailer%s%s", r3 ? ": " : "", r3 ? bf_errmsg() : "");
    ok(r && bf_reader_offset(r) == b.n, "memory: the offset is the stream's length at the end");
    bf_reader_close(r);
    ok(!memcmp(copy.p, b.p, b.n), "memory: the bytes read are left as they were");
    buf_free(&copy);
    ok(r2 == 1 && same_tensor(&got[0], &ts[0]) && same_tensor(&got[1], &ts[1]),
       "memory: a 3 MiB payload in 1 MiB chunks and a small one read back identical, after the bytes are gone");
    for (int k = 0; k < 2 && r2 == 1; k++) bf_tensor_release(&got[k]);
    bf_header rh;
    bf_tset s;
    ok(bf_read_all_mem(b.p, b.n, "mem", &rh, &s) == 0 && s.n == 2 && !strcmp(rh.kind, "data"), "bf_read_all_mem reads it whole");
    bf_tset_release(&s);
    bf_header_release(&rh);
    ok(bf_read_all_mem(b.p, b.n - 1, "cut", &rh, &s) == -1 && s.n == 0 && strstr(bf_errmsg(), "cut: "),
       "bf_read_all_mem of a cut stream fails, names its label and hands out nothing ('%s')", bf_errmsg());
    ok(bf_reader_memopen(NULL, 0, "none") == NULL && strstr(bf_errmsg(), "empty"), "no bytes: an empty input");
    buf_free(&b);
    bf_header_release(&h);
    for (int k = 0; k < 2; k++) bf_tensor_release(&ts[k]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(120);   /* a reader or writer that hangs fails the test instead of the suite */
    test_every_dtype();
    test_shapes();
    test_meta_lineage();
    test_chunks();
    test_alignment();
    test_trailer_and_truncation();
    test_abort();
    test_atomic_open();
    test_handmade();
    test_f16();
    test_big_pipe();
    test_memory();
    return tap_done();
}

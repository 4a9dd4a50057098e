/* stream.c — reading and writing tensor streams (bf-stream(5)).
 *
 * Reading: headers are decoded by a small bounded MessagePack decoder of our
 * own (at most BF_MAX_HEADER_BYTES an object, BF_MAX_NESTING deep,
 * BF_MAX_CONTAINER entries a container, ext types refused), because
 * msgpack-c 4.0's unpacker has no size limits and loops on 0xc1.  Payloads
 * bypass it: they are read with read() straight into aligned memory, which
 * grows as bytes arrive, so a lying size cannot cause a giant allocation.
 * The decoder takes its bytes from a window (buf, pos, len) that fill()
 * refills from the file descriptor; a stream in memory (bf_reader_memopen)
 * is one window over all of its bytes that is never refilled, so both go
 * through the same parser and the same limits.
 *
 * Writing: headers are packed with msgpack-c's packer into our buffer;
 * payloads are written from the tensor's memory in bin32 chunks. */

#include "bf/stream.h"
#include "bf/dist.h"
#include "bf/ternary.h"
#include "bf/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <msgpack.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

int bf_stream_epipe;

void bf_header_init(bf_header *h, const char *kind)
{
    memset(h, 0, sizeof *h);
    snprintf(h->kind, sizeof h->kind, "%s", kind);
    h->meta = bf_val_map();
    h->lineage = bf_val_arr();
}

void bf_header_release(bf_header *h)
{
    bf_val_free(h->meta);
    bf_val_free(h->lineage);
    h->meta = h->lineage = NULL;
}

void bf_header_copy(bf_header *dst, const bf_header *src)
{
    memcpy(dst->kind, src->kind, sizeof dst->kind);
    dst->meta = bf_val_clone(src->meta);
    dst->lineage = bf_val_clone(src->lineage);
}

/* ---------------------------------------------------------------- reader */

#define RBUF (256u << 10)

typedef struct {           /* names seen, for duplicate detection */
    char **slot;
    size_t cap, n;
} nameset;

struct bf_reader {
    int fd, own_fd;        /* fd -1: the stream is in memory */
    char label[256];
    const unsigned char *buf;   /* the window: rbuf, or all of a stream in memory */
    unsigned char *rbuf;   /* what fill() reads into (NULL in memory) */
    size_t pos, len;
    int eof;               /* nothing more to fill the window from */
    uint64_t offset;       /* stream offset of buf[pos] */
    uint64_t file_size;    /* regular files and memory: total size, else 0 */
    size_t obj_bytes;      /* bytes of the header object being decoded */
    XXH3_state_t *xxh;
    uint64_t count;
    int done;
    nameset names;
    bf_header hdr;
    bf_tensor spare;       /* a mapped payload given back by bf_reader_recycle */
    unsigned char *owned;  /* a stream in memory that the reader frees (a job's shared input) */
};

static int rerr(bf_reader *r, const char *fmt, ...) BF_PRINTF(2, 3);
static int rerr(bf_reader *r, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* names and dtypes quoted from the stream may hold control characters:
     * the message stays one line and writes no terminal escapes */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return bf_err("%s: %s", r->label, msg);
}

static int fill(bf_reader *r)
{
    if (r->pos < r->len) return 0;
    if (r->eof) return -1;
    r->pos = r->len = 0;
    r->buf = r->rbuf;
    for (;;) {
        ssize_t n = read(r->fd, r->rbuf, RBUF);
        if (n > 0) { r->len = (size_t)n; return 0; }
        if (n == 0) { r->eof = 1; return -1; }
        if (errno == EINTR) continue;
        r->eof = 1;
        return rerr(r, "read error: %s", bf_strerror(errno)), -2;
    }
}

/* n bytes into dst (dst may be NULL to discard). 0, -1 at EOF, -2 on error. */
static int get(bf_reader *r, void *dst, size_t n)
{
    unsigned char *d = dst;
    while (n) {
        int rc = fill(r);
        if (rc) return rc;
        size_t k = r->len - r->pos < n ? r->len - r->pos : n;
        if (d) { memcpy(d, r->buf + r->pos, k); d += k; }
        r->pos += k;
        r->offset += k;
        n -= k;
    }
    return 0;
}

/* The bytes a stream of known size (a regular file, memory) has left after
 * the offset; as many as may be for a pipe.  Declared sizes are checked
 * against it before anything is allocated for them. */
static uint64_t bytes_left(const bf_reader *r)
{
    if (!r->file_size) return UINT64_MAX;
    return r->offset < r->file_size ? r->file_size - r->offset : 0;
}

/* Bytes of a header object: counted against BF_MAX_HEADER_BYTES before read. */
static int hget(bf_reader *r, void *dst, size_t n, const char *what)
{
    if (n > BF_MAX_HEADER_BYTES - r->obj_bytes)
        return rerr(r, "%s object larger than 1 MiB", what);
    r->obj_bytes += n;
    int rc = get(r, dst, n);
    if (rc == -1) return rerr(r, "truncated stream: ends inside a %s", what);
    return rc ? -1 : 0;
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n; k++) v = v << 8 | p[k];
    return v;
}

static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t k = 0;
    while (k < n) {
        unsigned c = s[k];
        int extra;
        uint32_t cp;
        if (c < 0x80) { k++; continue; }
        else if ((c & 0xe0) == 0xc0) { extra = 1; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { extra = 2; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { extra = 3; cp = c & 0x07; }
        else return 0;
        if (k + (size_t)extra >= n) return 0;
        for (int j = 1; j <= extra; j++) {
            if ((s[k + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[k + j] & 0x3f);
        }
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        k += (size_t)extra + 1;
    }
    return 1;
}

static int decode(bf_reader *r, bf_val *out, int depth, const char *what);

static int decode_str(bf_reader *r, bf_val *out, size_t len, bf_vtype type, const char *what)
{
    if (len > BF_MAX_HEADER_BYTES - r->obj_bytes)
        return rerr(r, "%s object larger than 1 MiB (declares a %zu-byte %s)", what, len,
                    type == BF_STR ? "string" : "binary");
    if (len > bytes_left(r)) return rerr(r, "truncated stream: ends inside a %s", what);
    char *p = bf_xmalloc(len + 1);
    if (hget(r, p, len, what)) { free(p); return -1; }
    p[len] = 0;
    out->type = type;
    out->v.s.p = p;
    out->v.s.len = len;
    return 0;
}

static int decode_container(bf_reader *r, bf_val *out, uint64_t n, int is_map, int depth, const char *what)
{
    if (depth >= BF_MAX_NESTING) return rerr(r, "%s nested deeper than %d", what, BF_MAX_NESTING);
    if (n > BF_MAX_CONTAINER) return rerr(r, "%s has a container of %llu entries (at most %d)", what,
                                          (unsigned long long)n, BF_MAX_CONTAINER);
    /* each entry takes at least one byte: refuse what cannot fit before allocating */
    if (n * (is_map ? 2 : 1) > BF_MAX_HEADER_BYTES - r->obj_bytes)
        return rerr(r, "%s object larger than 1 MiB", what);
    out->type = is_map ? BF_MAP : BF_ARR;
    out->v.a.n = out->v.a.cap = 0;
    out->v.a.items = NULL;
    out->v.a.keys = NULL;
    for (uint64_t k = 0; k < n; k++) {
        /* room as entries arrive: the count is only a claim, and nested
         * containers that each claim the most entries would otherwise cost
         * far more memory than the bytes that carry them */
        if (k == out->v.a.cap) {
            size_t cap = k ? 2 * (size_t)k : 8;
            if (cap > n) cap = (size_t)n;
            out->v.a.items = bf_xrealloc(out->v.a.items, cap * sizeof(bf_val));
            memset(out->v.a.items + k, 0, (cap - (size_t)k) * sizeof(bf_val));
            if (is_map) out->v.a.keys = bf_xrealloc(out->v.a.keys, cap * sizeof(char *));
            out->v.a.cap = cap;
        }
        if (is_map) {
            bf_val key = {0};
            if (decode(r, &key, depth + 1, what)) { bf_val_clear(&key); return -1; }   /* a key that is a container */
            if (key.type != BF_STR) {
                bf_val_clear(&key);
                return rerr(r, "%s has a map key that is not a string", what);
            }
            out->v.a.keys[k] = key.v.s.p;     /* take the string */
        }
        out->v.a.n = (size_t)k + 1;           /* so a failure below frees what was read */
        if (decode(r, &out->v.a.items[k], depth + 1, what)) return -1;
    }
    return 0;
}

/* One MessagePack object into *out (which the caller clears on failure). */
static int decode(bf_reader *r, bf_val *out, int depth, const char *what)
{
    unsigned char b, x[8];
    if (hget(r, &b, 1, what)) return -1;
    if (b <= 0x7f) { out->type = BF_INT; out->v.i = b; return 0; }
    if (b >= 0xe0) { out->type = BF_INT; out->v.i = (int8_t)b; return 0; }
    if ((b & 0xf0) == 0x80) return decode_container(r, out, b & 0x0f, 1, depth, what);
    if ((b & 0xf0) == 0x90) return decode_container(r, out, b & 0x0f, 0, depth, what);
    if ((b & 0xe0) == 0xa0) return decode_str(r, out, b & 0x1f, BF_STR, what);
    switch (b) {
    case 0xc0: out->type = BF_NIL; return 0;
    case 0xc2: case 0xc3: out->type = BF_BOOL; out->v.b = b == 0xc3; return 0;
    case 0xc4: case 0xc5: case 0xc6: {
        int n = 1 << (b - 0xc4);
        if (hget(r, x, (size_t)n, what)) return -1;
        return decode_str(r, out, (size_t)be(x, n), BF_BIN, what);
    }
    case 0xca: {
        if (hget(r, x, 4, what)) return -1;
        uint32_t u = (uint32_t)be(x, 4);
        float f;
        memcpy(&f, &u, 4);
        out->type = BF_FLOAT; out->v.f = f;
        return 0;
    }
    case 0xcb: {
        if (hget(r, x, 8, what)) return -1;
        uint64_t u = be(x, 8);
        double f;
        memcpy(&f, &u, 8);
        out->type = BF_FLOAT; out->v.f = f;
        return 0;
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf: {
        int n = 1 << (b - 0xcc);
        if (hget(r, x, (size_t)n, what)) return -1;
        uint64_t u = be(x, n);
        if (u > INT64_MAX) { out->type = BF_UINT; out->v.u = u; }
        else { out->type = BF_INT; out->v.i = (int64_t)u; }
        return 0;
    }
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        int n = 1 << (b - 0xd0);
        if (hget(r, x, (size_t)n, what)) return -1;
        uint64_t u = be(x, n);
        int64_t v = n == 1 ? (int8_t)u : n == 2 ? (int16_t)u : n == 4 ? (int32_t)u : (int64_t)u;
        out->type = BF_INT; out->v.i = v;
        return 0;
    }
    case 0xd9: case 0xda: case 0xdb: {
        int n = 1 << (b - 0xd9);
        if (hget(r, x, (size_t)n, what)) return -1;
        return decode_str(r, out, (size_t)be(x, n), BF_STR, what);
    }
    case 0xdc: case 0xdd: {
        int n = b == 0xdc ? 2 : 4;
        if (hget(r, x, (size_t)n, what)) return -1;
        return decode_container(r, out, be(x, n), 0, depth, what);
    }
    case 0xde: case 0xdf: {
        int n = b == 0xde ? 2 : 4;
        if (hget(r, x, (size_t)n, what)) return -1;
        return decode_container(r, out, be(x, n), 1, depth, what);
    }
    case 0xc1:
        return rerr(r, "invalid MessagePack byte 0xc1 in %s", what);
    default:  /* ext 0xc7-0xc9, fixext 0xd4-0xd8 */
        return rerr(r, "MessagePack extension type 0x%02x in %s is not allowed", b, what);
    }
}

static int read_object(bf_reader *r, bf_val *out, const char *what)
{
    r->obj_bytes = 0;
    memset(out, 0, sizeof *out);
    if (decode(r, out, 0, what)) { bf_val_clear(out); return -1; }
    return 0;
}

static void take_val(bf_val **dst, bf_val *src)
{
    *dst = bf_xcalloc(1, sizeof **dst);
    **dst = *src;
    memset(src, 0, sizeof *src);
}

/* Whether the first `have` bytes (up to 6) can begin a stream: the magic is
 * a map whose first key is "bf" (a2 62 66). */
static int magic_ok(const unsigned char *p, size_t have)
{
    unsigned char peek[6] = {0};
    memcpy(peek, p, have < 6 ? have : 6);
    size_t at = (peek[0] & 0xf0) == 0x80 ? 1 : peek[0] == 0xde ? 3 : peek[0] == 0xdf ? 5 : 0;
    return at && !(have >= at + 1 && peek[at] != 0xa2) && !(have >= at + 2 && peek[at + 1] != 0x62) &&
           !(have >= at + 3 && peek[at + 2] != 0x66);
}

static int read_stream_header(bf_reader *r)
{
    int rc = fill(r);
    if (rc == -1) return rerr(r, "empty input (not a bitforge stream)");
    if (rc) return -1;
    size_t have = r->len - r->pos < 6 ? r->len - r->pos : 6;
    if (!magic_ok(r->buf + r->pos, have)) return rerr(r, "not a bitforge stream (bad magic)");
    bf_val h;
    if (read_object(r, &h, "stream header")) return -1;
    rc = -1;
    const bf_val *ver = h.type == BF_MAP && h.v.a.n ? &h.v.a.items[0] : NULL;
    if (!ver || strcmp(h.v.a.keys[0], "bf") != 0) { rerr(r, "not a bitforge stream (bad magic)"); goto out; }
    if (ver->type != BF_INT || ver->v.i != BF_STREAM_VERSION) {
        rerr(r, "unsupported stream version (this reader knows version %d)", BF_STREAM_VERSION);
        goto out;
    }
    const char *kind = bf_val_get_str(&h, "kind");
    if (!kind || !*kind || strlen(kind) >= sizeof r->hdr.kind) { rerr(r, "stream header has no valid 'kind'"); goto out; }
    snprintf(r->hdr.kind, sizeof r->hdr.kind, "%s", kind);
    bf_val *meta = bf_val_get(&h, "meta"), *lin = bf_val_get(&h, "lineage");
    if (meta && meta->type != BF_MAP) { rerr(r, "stream header 'meta' is not a map"); goto out; }
    if (lin && lin->type != BF_ARR) { rerr(r, "stream header 'lineage' is not an array"); goto out; }
    if (meta) take_val(&r->hdr.meta, meta); else r->hdr.meta = bf_val_map();
    if (lin) take_val(&r->hdr.lineage, lin); else r->hdr.lineage = bf_val_arr();
    rc = 0;
out:
    bf_val_clear(&h);
    return rc;
}

static bf_reader *reader_new(const char *label)
{
    bf_reader *r = bf_xcalloc(1, sizeof *r);
    r->fd = -1;
    snprintf(r->label, sizeof r->label, "%s", label);
    r->xxh = XXH3_createState();
    if (!r->xxh) { free(r); bf_err("out of memory"); return NULL; }
    XXH3_64bits_reset(r->xxh);
    return r;
}

static bf_reader *reader_start(bf_reader *r)
{
    if (read_stream_header(r)) { bf_reader_close(r); return NULL; }
    return r;
}

bf_reader *bf_reader_fdopen(int fd, const char *label)
{
    bf_reader *r = reader_new(label);
    if (!r) return NULL;
    r->fd = fd;
    r->rbuf = bf_xmalloc(RBUF);
    r->buf = r->rbuf;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        off_t pos = lseek(fd, 0, SEEK_CUR);
        r->file_size = (uint64_t)st.st_size - (pos > 0 ? (uint64_t)pos : 0);
    }
    return reader_start(r);
}

bf_reader *bf_reader_memopen(const void *buf, size_t len, const char *label)
{
    bf_reader *r = reader_new(label);
    if (!r) return NULL;
    /* the whole stream is the window, and its size is known as a regular
     * file's is: declared payloads are checked against the bytes left */
    r->buf = buf;
    r->len = len;
    r->eof = 1;
    r->file_size = len;
    return reader_start(r);
}

/* All of fd's bytes into *buf (malloc'd), *len: a regular file in one
 * allocation of its size, a pipe in doubling steps.  The first bytes must
 * be a stream's magic, so that an endless input of something else (a
 * device, another file kind) is refused before it is held. */
static int read_whole(int fd, const char *label, unsigned char **buf, size_t *len)
{
    struct stat st;
    size_t cap = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 1u << 16;
    unsigned char *b = bf_xmalloc(cap);
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2) { free(b); return bf_err("%s: too large", label); }
            b = bf_xrealloc(b, cap *= 2);
        }
        ssize_t k = read(fd, b + n, cap - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { free(b); return bf_err("%s: %s", label, bf_strerror(errno)); }
        if (k == 0) break;
        size_t before = n;
        n += (size_t)k;
        if (before < 6 && !magic_ok(b, n < 6 ? n : 6)) { free(b); return bf_err("%s: not a bitforge stream (bad magic)", label); }
    }
    *buf = b;
    *len = n;
    return 0;
}

/* A job's input (bf/dist.h): rank 0 reads the bytes, every rank gets them
 * and reads its own copy, so a stream on rank 0's stdin (a pipe into
 * mpirun) or in a file only rank 0's machine has serves every rank. */
static bf_reader *open_shared(const char *path)
{
    int in = !path || strcmp(path, "-") == 0;
    const char *label = in ? "stdin" : path;
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = 0;
    if (bf_dist_rank() == 0) {
        int fd = in ? 0 : open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0) rc = bf_err("%s: %s", path, bf_strerror(errno));
        else if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) rc = bf_err("%s: is a directory", path);
        else rc = read_whole(fd, label, &buf, &len);
        if (fd > 0) close(fd);
    }
    if (bf_dist_agree(rc)) return NULL;
    uint64_t n = len;
    if (bf_dist_bcast(&n, sizeof n, 0)) { free(buf); return NULL; }
    if (!buf) buf = bf_xmalloc(n ? (size_t)n : 1);
    if (bf_dist_bcast(buf, (size_t)n, 0)) { free(buf); return NULL; }
    bf_reader *r = bf_reader_memopen(buf, (size_t)n, label);
    if (!r) { free(buf); return NULL; }
    r->owned = buf;   /* freed by bf_reader_close */
    return r;
}

bf_reader *bf_reader_open(const char *path)
{
    if (bf_dist_size() > 1) return open_shared(path);
    if (!path || strcmp(path, "-") == 0) return bf_reader_fdopen(0, "stdin");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { bf_err("%s: %s", path, bf_strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) { close(fd); bf_err("%s: is a directory", path); return NULL; }
    bf_reader *r = bf_reader_fdopen(fd, path);
    if (r) r->own_fd = 1;
    else close(fd);
    return r;
}

const bf_header *bf_reader_header(const bf_reader *r) { return &r->hdr; }

void bf_reader_recycle(bf_reader *r, bf_tensor *t)
{
    bf_val_free(t->meta);
    t->meta = NULL;
    if (t->data && t->mapped && (!r->spare.data || t->mapped > r->spare.mapped)) {
        if (r->spare.data) bf_payload_free(&r->spare);
        r->spare.data = t->data;
        r->spare.mapped = t->mapped;
        t->data = NULL;
        t->mapped = 0;
    }
    if (t->data) bf_payload_free(t);
}
uint64_t bf_reader_offset(const bf_reader *r) { return r->offset; }

void bf_reader_close(bf_reader *r)
{
    if (!r) return;
    if (r->own_fd) close(r->fd);
    for (size_t k = 0; k < r->names.cap; k++) free(r->names.slot[k]);
    free(r->names.slot);
    XXH3_freeState(r->xxh);
    bf_header_release(&r->hdr);
    if (r->spare.data) bf_payload_free(&r->spare);
    free(r->rbuf);
    free(r->owned);
    free(r);
}

/* Inserts name; 1 if it was already there. */
static int nameset_add(nameset *s, const char *name)
{
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        char **slot = bf_xcalloc(cap, sizeof *slot);
        for (size_t k = 0; k < s->cap; k++) {
            if (!s->slot[k]) continue;
            uint64_t h = XXH3_64bits(s->slot[k], strlen(s->slot[k]));
            size_t j = h & (cap - 1);
            while (slot[j]) j = (j + 1) & (cap - 1);
            slot[j] = s->slot[k];
        }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    uint64_t h = XXH3_64bits(name, strlen(name));
    size_t j = h & (s->cap - 1);
    while (s->slot[j]) {
        if (strcmp(s->slot[j], name) == 0) return 1;
        j = (j + 1) & (s->cap - 1);
    }
    s->slot[j] = bf_xstrdup(name);
    s->n++;
    return 0;
}

static int uint_of(const bf_val *v, uint64_t *out)
{
    if (v && v->type == BF_INT && v->v.i >= 0) { *out = (uint64_t)v->v.i; return 0; }
    if (v && v->type == BF_UINT) { *out = v->v.u; return 0; }
    return -1;
}

static int read_trailer(bf_reader *r, const bf_val *m)
{
    const bf_val *end = bf_val_get(m, "end");
    uint64_t count, sum;
    if (!end || end->type != BF_BOOL || !end->v.b || uint_of(bf_val_get(m, "count"), &count) ||
        uint_of(bf_val_get(m, "xxh3"), &sum))
        return rerr(r, "malformed trailer (needs end: true, count, xxh3)");
    if (count != r->count)
        return rerr(r, "trailer count %llu disagrees with the %llu tensors read", (unsigned long long)count,
                    (unsigned long long)r->count);
    if (sum != XXH3_64bits_digest(r->xxh))
        return rerr(r, "checksum mismatch: payload bytes are corrupt");
    int rc = fill(r);
    if (rc == 0) return rerr(r, "data after the trailer");
    if (rc == -2) return -1;
    r->done = 1;
    return 0;
}

static int parse_tensor_header(bf_reader *r, const bf_val *m, bf_tensor *t)
{
    const bf_val *name = bf_val_get(m, "name");
    if (!name || name->type != BF_STR) return rerr(r, "tensor header without a 'name' string");
    if (name->v.s.len == 0 || name->v.s.len > BF_MAX_NAME)
        return rerr(r, "tensor name of %zu bytes (1 to %d)", name->v.s.len, BF_MAX_NAME);
    if (memchr(name->v.s.p, 0, name->v.s.len) || !valid_utf8((const unsigned char *)name->v.s.p, name->v.s.len))
        return rerr(r, "tensor name is not valid UTF-8");
    memcpy(t->name, name->v.s.p, name->v.s.len + 1);
    const char *dt = bf_val_get_str(m, "dtype");
    if (!dt) return rerr(r, "tensor '%s' has no 'dtype' string", t->name);
    if (bf_dtype_parse(dt, &t->dtype)) return rerr(r, "tensor '%s' has unknown dtype '%.32s'", t->name, dt);
    const bf_val *shape = bf_val_get(m, "shape");
    if (!shape || shape->type != BF_ARR) return rerr(r, "tensor '%s' has no 'shape' array", t->name);
    if (shape->v.a.n > BF_MAX_DIMS)
        return rerr(r, "tensor '%s' has %zu dims (at most %d)", t->name, shape->v.a.n, BF_MAX_DIMS);
    t->ndim = (int)shape->v.a.n;
    for (int k = 0; k < t->ndim; k++)
        if (uint_of(&shape->v.a.items[k], &t->shape[k]))
            return rerr(r, "tensor '%s' has a shape entry that is not an unsigned integer", t->name);
    uint64_t want, nbytes;
    if (bf_tensor_size(t->dtype, t->ndim, t->shape, &want)) {
        char why[300];
        snprintf(why, sizeof why, "%s", bf_errmsg());
        return rerr(r, "tensor '%s': %s", t->name, why);
    }
    if (uint_of(bf_val_get(m, "nbytes"), &nbytes)) return rerr(r, "tensor '%s' has no 'nbytes'", t->name);
    if (nbytes != want)
        return rerr(r, "tensor '%s' declares nbytes %llu, its dtype and shape make %llu", t->name,
                    (unsigned long long)nbytes, (unsigned long long)want);
    t->nbytes = nbytes;
    const bf_val *meta = bf_val_get(m, "meta");
    if (meta && meta->type != BF_MAP) return rerr(r, "tensor '%s' has a 'meta' that is not a map", t->name);
    if (meta) t->meta = bf_val_clone(meta);
    const bf_val *pad = bf_val_get(m, "pad");
    if (pad && (pad->type != BF_BIN || strcmp(m->v.a.keys[m->v.a.n - 1], "pad") != 0))
        return rerr(r, "tensor '%s' has a 'pad' that is not the last key or not binary", t->name);
    if (nameset_add(&r->names, t->name)) return rerr(r, "duplicate tensor name '%s'", t->name);
    return 0;
}

#define GROW_STEP ((size_t)1 << 20)

static int read_payload(bf_reader *r, bf_tensor *t)
{
    if (t->nbytes > SIZE_MAX / 4) return rerr(r, "tensor '%s' is too large for this machine", t->name);
    if (t->nbytes > bytes_left(r))
        return rerr(r, "truncated stream: payload of '%s' declares %llu bytes, the input holds %llu more",
                    t->name, (unsigned long long)t->nbytes, (unsigned long long)bytes_left(r));
    size_t total = (size_t)t->nbytes;
    /* An input of known size (a regular file, memory) was checked to hold
     * the payload: its memory comes at once.  From a pipe, payloads above
     * 1 MiB grow (doubling) as bytes arrive, so a stream that lies about its
     * size ends in an error, not in an allocation the size of its lie. */
    size_t first = r->file_size || total < GROW_STEP ? total : GROW_STEP;
    if (r->spare.data && first >= GROW_STEP && r->spare.mapped >= first) {
        t->data = r->spare.data;   /* recycled: already mapped, already faulted in */
        t->mapped = r->spare.mapped;
        r->spare.data = NULL;
        r->spare.mapped = 0;
    } else if (bf_payload_alloc(t, first)) {
        return rerr(r, "%s", bf_errmsg());
    }
    size_t got = 0;
    int chunks = 0;
    while (got < total || chunks == 0) {
        unsigned char b, x[4];
        int rc = get(r, &b, 1);
        if (rc == -1) goto truncated;
        if (rc) return -1;
        int n = b == 0xc4 ? 1 : b == 0xc5 ? 2 : b == 0xc6 ? 4 : 0;
        if (!n) return rerr(r, "payload of '%s' is not a binary object (byte 0x%02x)", t->name, b);
        rc = get(r, x, (size_t)n);
        if (rc == -1) goto truncated;
        if (rc) return -1;
        uint64_t len = be(x, n);
        chunks++;
        if (len > total - got)
            return rerr(r, "payload chunks of '%s' exceed its nbytes %llu", t->name, (unsigned long long)t->nbytes);
        while (len) {
            if (t->mapped && got == t->mapped) {   /* full: double, up to nbytes */
                if (bf_payload_grow(t, t->mapped > total / 2 ? total : 2 * t->mapped))
                    return rerr(r, "%s", bf_errmsg());
            }
            size_t room = (t->mapped ? t->mapped : total) - got;
            size_t want = len < room ? (size_t)len : room;
            unsigned char *dst = (unsigned char *)t->data + got;
            size_t k = 0;
            if (r->pos < r->len) {                  /* buffered bytes first */
                k = r->len - r->pos < want ? r->len - r->pos : want;
                memcpy(dst, r->buf + r->pos, k);
                r->pos += k;
                r->offset += k;
            } else if (r->eof) {                    /* nothing left to read (a stream in memory ends here) */
                goto truncated;
            } else if (want >= RBUF) {              /* large: straight into place */
                ssize_t m = read(r->fd, dst, want);
                if (m < 0 && errno == EINTR) continue;
                if (m < 0) return rerr(r, "read error: %s", bf_strerror(errno));
                if (m == 0) { r->eof = 1; goto truncated; }
                k = (size_t)m;
                r->offset += k;
            } else {
                rc = fill(r);
                if (rc == -1) goto truncated;
                if (rc) return -1;
                continue;
            }
            XXH3_64bits_update(r->xxh, dst, k);
            got += k;
            len -= k;
        }
    }
    if (bf_dtype_is_ternary(t->dtype) && bf_ternary_validate(t->dtype, t->data, t->nbytes)) {
        char why[300];
        snprintf(why, sizeof why, "%s", bf_errmsg());
        return rerr(r, "tensor '%s': %s", t->name, why);
    }
    return 0;
truncated:
    return rerr(r, "truncated stream: payload of '%s' ends after %zu of %llu bytes", t->name, got,
                (unsigned long long)t->nbytes);
}

int bf_reader_next(bf_reader *r, bf_tensor *t)
{
    memset(t, 0, sizeof *t);
    if (r->done) return 0;
    if (fill(r) == -1) return rerr(r, "truncated stream: no trailer after %llu tensors", (unsigned long long)r->count);
    bf_val m;
    if (read_object(r, &m, "tensor header")) return -1;
    int rc = -1;
    if (m.type != BF_MAP) { rerr(r, "expected a tensor header or trailer map"); goto out; }
    if (bf_val_get(&m, "end")) { rc = read_trailer(r, &m) ? -1 : 0; goto out; }
    if (parse_tensor_header(r, &m, t) || read_payload(r, t)) { bf_tensor_release(t); goto out; }
    r->count++;
    rc = 1;
out:
    bf_val_clear(&m);
    return rc;
}

/* Every tensor of r into s, then the header into h once the trailer checked out; closes r. */
static int read_all(bf_reader *r, bf_header *h, bf_tset *s)
{
    memset(s, 0, sizeof *s);
    if (!r) return -1;
    int rc;
    bf_tensor t;
    while ((rc = bf_reader_next(r, &t)) == 1) *bf_tset_add(s) = t;
    if (rc == 0) bf_header_copy(h, bf_reader_header(r));
    else bf_tset_release(s);
    bf_reader_close(r);
    return rc;
}

int bf_read_all(const char *path, bf_header *h, bf_tset *s) { return read_all(bf_reader_open(path), h, s); }

int bf_read_all_mem(const void *buf, size_t len, const char *label, bf_header *h, bf_tset *s)
{
    return read_all(bf_reader_memopen(buf, len, label), h, s);
}

/* ---------------------------------------------------------------- writer */

#define WBUF (1u << 20)

struct bf_writer {
    int fd;
    char *path, *tmp;        /* -o FILE: final and temporary names */
    unsigned char *buf;
    size_t len;
    uint64_t offset;         /* bytes handed to the stream so far */
    size_t chunk;
    int failed, header_done;
    uint64_t count;
    XXH3_state_t *xxh;
    msgpack_packer pk;
};

/* Temporary files to remove if a signal ends the program mid-write, or the
 * program's out-of-memory hook does (bf_writer_remove_temporaries).  Only
 * for signals whose action is still the default: a signal the program
 * ignores stays ignored, and one it handles itself (a trainer that saves its
 * state on SIGTERM) stays its own, the writers finishing as usual. */
#define MAX_TMP 8
static char *volatile live_tmp[MAX_TMP];

void bf_writer_remove_temporaries(void)
{
    for (int k = 0; k < MAX_TMP; k++)
        if (live_tmp[k]) unlink(live_tmp[k]);
}

static void on_signal(int sig)
{
    bf_writer_remove_temporaries();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void track_tmp(char *p, int add)
{
    static int installed;
    if (add && !installed) {
        installed = 1;
        int sigs[] = {SIGINT, SIGTERM, SIGHUP};
        for (int k = 0; k < 3; k++) {
            struct sigaction sa = {0}, old;
            if (sigaction(sigs[k], NULL, &old) == 0 && old.sa_handler != SIG_DFL) continue;
            sa.sa_handler = on_signal;
            sigaction(sigs[k], &sa, NULL);
        }
    }
    if (!p) return;
    for (int k = 0; k < MAX_TMP; k++) {
        if (add && !live_tmp[k]) { live_tmp[k] = p; return; }
        if (!add && live_tmp[k] == p) { live_tmp[k] = NULL; return; }
    }
}

static int wraw(bf_writer *w, const void *p, size_t n)
{
    const unsigned char *s = p;
    while (n) {
        ssize_t k = write(w->fd, s, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            if (errno == EPIPE) bf_stream_epipe = 1;
            w->failed = 1;
            return bf_err("write error: %s", bf_strerror(errno));
        }
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static int wflush(bf_writer *w)
{
    if (w->failed) return -1;
    int rc = w->len ? wraw(w, w->buf, w->len) : 0;
    w->len = 0;
    return rc;
}

static int wput(bf_writer *w, const void *p, size_t n)
{
    if (w->failed) return -1;
    w->offset += n;
    if (n > WBUF - w->len) {
        if (wflush(w)) return -1;
        if (n >= WBUF) return wraw(w, p, n);
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

static int pk_write(void *data, const char *buf, size_t len) { return wput(data, buf, len) ? -1 : 0; }

bf_writer *bf_writer_fdopen(int fd)
{
    bf_writer *w = bf_xcalloc(1, sizeof *w);
    w->fd = fd;
    w->buf = bf_xmalloc(WBUF);
    w->chunk = BF_CHUNK_MAX;
    w->xxh = XXH3_createState();
    if (!w->xxh) { free(w->buf); free(w); bf_err("out of memory"); return NULL; }
    XXH3_64bits_reset(w->xxh);
    msgpack_packer_init(&w->pk, w, pk_write);
    return w;
}

bf_writer *bf_writer_open(const char *path)
{
    if (!path || strcmp(path, "-") == 0) {
        /* (in a job, stdout is the launcher's terminal: it passes bytes on
         * unchanged to its own stdout) */
        if (isatty(1) && bf_dist_size() == 1) {
            bf_err("refusing to write a binary stream to a terminal (use -o FILE or a pipe)");
            return NULL;
        }
        return bf_writer_fdopen(1);
    }
    /* Not a regular file (a device such as /dev/null, a FIFO): write to it
     * in place; renaming a temporary file over it would replace it. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) { bf_err("%s: is a directory", path); return NULL; }
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) { bf_err("%s: %s", path, bf_strerror(errno)); return NULL; }
        if (isatty(fd)) {
            close(fd);
            bf_err("%s: refusing to write a binary stream to a terminal", path);
            return NULL;
        }
        bf_writer *w = bf_writer_fdopen(fd);
        if (!w) { close(fd); return NULL; }
        w->path = bf_xstrdup(path);   /* owns fd; no tmp, so nothing to rename */
        return w;
    }
    size_t n = strlen(path);
    char *tmp = bf_xmalloc(n + 32);
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    snprintf(tmp, n + 32, "%.*s.%s.tmpXXXXXX", (int)dirlen, path, path + dirlen);
    /* no signal between creating the file and registering it for removal */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);
    track_tmp(NULL, 1);   /* installs the handlers */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd >= 0) track_tmp(tmp, 1);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (fd < 0) {
        bf_err("%s: cannot create a temporary file beside it: %s", path, bf_strerror(errno));
        free(tmp);
        return NULL;
    }
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask)) { /* keep the restrictive mode; not fatal */ }
    bf_writer *w = bf_writer_fdopen(fd);
    if (!w) { close(fd); unlink(tmp); track_tmp(tmp, 0); free(tmp); return NULL; }
    w->path = bf_xstrdup(path);
    w->tmp = tmp;
    return w;
}

void bf_writer_set_chunk(bf_writer *w, size_t max) { w->chunk = max ? max : 1; }

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_val(msgpack_packer *pk, const bf_val *v)
{
    switch (v->type) {
    case BF_NIL: msgpack_pack_nil(pk); break;
    case BF_BOOL: if (v->v.b) msgpack_pack_true(pk); else msgpack_pack_false(pk); break;
    case BF_INT: msgpack_pack_int64(pk, v->v.i); break;
    case BF_UINT: msgpack_pack_uint64(pk, v->v.u); break;
    case BF_FLOAT: msgpack_pack_double(pk, v->v.f); break;
    case BF_STR: msgpack_pack_str(pk, v->v.s.len); msgpack_pack_str_body(pk, v->v.s.p, v->v.s.len); break;
    case BF_BIN: msgpack_pack_bin(pk, v->v.s.len); msgpack_pack_bin_body(pk, v->v.s.p, v->v.s.len); break;
    case BF_ARR:
        msgpack_pack_array(pk, v->v.a.n);
        for (size_t k = 0; k < v->v.a.n; k++) pack_val(pk, &v->v.a.items[k]);
        break;
    case BF_MAP:
        msgpack_pack_map(pk, v->v.a.n);
        for (size_t k = 0; k < v->v.a.n; k++) {
            pack_str(pk, v->v.a.keys[k]);
            pack_val(pk, &v->v.a.items[k]);
        }
        break;
    }
}

int bf_writer_header(bf_writer *w, const bf_header *h)
{
    if (w->failed) return -1;
    msgpack_pack_map(&w->pk, 4);
    pack_str(&w->pk, "bf");
    msgpack_pack_int(&w->pk, BF_STREAM_VERSION);
    pack_str(&w->pk, "kind");
    pack_str(&w->pk, h->kind);
    pack_str(&w->pk, "meta");
    if (h->meta) pack_val(&w->pk, h->meta); else msgpack_pack_map(&w->pk, 0);
    pack_str(&w->pk, "lineage");
    if (h->lineage) pack_val(&w->pk, h->lineage); else msgpack_pack_array(&w->pk, 0);
    w->header_done = 1;
    return w->failed ? -1 : 0;
}

static void put_bin_header(unsigned char *p, int code, uint64_t len, int n)
{
    p[0] = (unsigned char)code;
    for (int k = 0; k < n; k++) p[1 + k] = (unsigned char)(len >> (8 * (n - 1 - k)));
}

int bf_writer_tensor(bf_writer *w, const bf_tensor *t)
{
    if (w->failed) return -1;
    if (!w->header_done) { w->failed = 1; return bf_err("tensor written before the stream header"); }
    /* Everything before "pad" is packed first, to learn the pad's length. */
    msgpack_pack_map(&w->pk, t->meta ? 6 : 5);
    pack_str(&w->pk, "name");
    pack_str(&w->pk, t->name);
    pack_str(&w->pk, "dtype");
    pack_str(&w->pk, bf_dtype_name(t->dtype));
    pack_str(&w->pk, "shape");
    msgpack_pack_array(&w->pk, (size_t)t->ndim);
    for (int k = 0; k < t->ndim; k++) msgpack_pack_uint64(&w->pk, t->shape[k]);
    pack_str(&w->pk, "nbytes");
    msgpack_pack_uint64(&w->pk, t->nbytes);
    if (t->meta) { pack_str(&w->pk, "meta"); pack_val(&w->pk, t->meta); }
    pack_str(&w->pk, "pad");
    /* then: bin8 header (2 bytes), pad bytes, bin32 header (5 bytes), payload */
    size_t pad = (size_t)((64 - (w->offset + 2 + 5) % 64) % 64);
    static const unsigned char zeros[64];
    unsigned char bh[5];
    put_bin_header(bh, 0xc4, pad, 1);
    if (wput(w, bh, 2) || wput(w, zeros, pad)) return -1;
    const unsigned char *p = t->data;
    uint64_t left = t->nbytes;
    do {
        size_t n = left < w->chunk ? (size_t)left : w->chunk;
        put_bin_header(bh, 0xc6, n, 4);
        if (wput(w, bh, 5) || wput(w, p, n)) return -1;
        XXH3_64bits_update(w->xxh, p, n);
        p += n;
        left -= n;
    } while (left);
    w->count++;
    return w->failed ? -1 : 0;
}

static void writer_free(bf_writer *w, int remove_tmp)
{
    if (w->tmp) {
        if (remove_tmp) unlink(w->tmp);
        track_tmp(w->tmp, 0);
    }
    if (w->path && w->fd >= 0) close(w->fd);
    XXH3_freeState(w->xxh);
    free(w->path);
    free(w->tmp);
    free(w->buf);
    free(w);
}

int bf_writer_close(bf_writer *w)
{
    if (!w) return -1;
    if (!w->failed && w->header_done) {
        msgpack_pack_map(&w->pk, 3);
        pack_str(&w->pk, "end");
        msgpack_pack_true(&w->pk);
        pack_str(&w->pk, "count");
        msgpack_pack_uint64(&w->pk, w->count);
        pack_str(&w->pk, "xxh3");
        msgpack_pack_uint64(&w->pk, XXH3_64bits_digest(w->xxh));
        wflush(w);
    } else if (!w->failed) {
        w->failed = 1;
        bf_err("stream closed before its header was written");
    }
    if (!w->failed && w->tmp) {
        if (close(w->fd)) { w->failed = 1; bf_err("%s: %s", w->path, bf_strerror(errno)); }
        w->fd = -1;
        if (!w->failed && rename(w->tmp, w->path)) {
            w->failed = 1;
            bf_err("%s: cannot rename the finished stream into place: %s", w->path, bf_strerror(errno));
        }
        free(w->path);
        w->path = NULL;   /* fd already closed */
    }
    if (w->path && !w->tmp) {   /* written in place (a device or FIFO) */
        if (close(w->fd) && !w->failed) {
            w->failed = 1;
            bf_err("%s: %s", w->path, bf_strerror(errno));
        }
        w->fd = -1;
    }
    int rc = w->failed ? -1 : 0;
    writer_free(w, rc != 0);
    return rc;
}

void bf_writer_abort(bf_writer *w)
{
    if (w) writer_free(w, 1);
}

int bf_write_all(const char *path, const bf_header *h, const bf_tset *s)
{
    bf_writer *w = bf_writer_open(path);
    if (!w) return -1;
    if (bf_writer_header(w, h)) { bf_writer_abort(w); return -1; }
    for (size_t k = 0; k < s->n; k++)
        if (bf_writer_tensor(w, &s->t[k])) { bf_writer_abort(w); return -1; }
    return bf_writer_close(w);
}

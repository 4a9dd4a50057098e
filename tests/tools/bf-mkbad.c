/* bf-mkbad — hostile tensor streams for the tests (tests/cli/hostile.bats).
 *
 *   bf-mkbad list           every case name, one per line
 *   bf-mkbad CASE           that case's bytes on stdout
 *   bf-mkbad why CASE       an extended regular expression that a reader's
 *                           message about CASE must match
 *   bf-mkbad why            every case and its expression, tab-separated
 *   bf-mkbad list-valid     the well-formed cases, one per line:
 *     valid                 from the library writer
 *     valid-chunked         from the library writer, payloads in 5-byte chunks
 *     valid-hand            from the hand builder
 *     valid-bin8-bin16      from the hand builder, payloads in bin8 and bin16 chunks
 *
 * Streams come from two builders.  The library writer makes a well-formed
 * stream, which some cases then corrupt at offsets that the library reader
 * reports (end of the stream header, of each payload, start of the trailer).
 * The hand builder (msgpack-c's packer plus raw bytes) makes streams that are
 * well-formed but for one defect, with a correct count and XXH3-64 trailer,
 * so that the defect alone is what a reader has to catch.  Both builders'
 * streams are "data" streams with meta vocab and ctx, so that bf-init --like
 * reads them as far as bf-eval does.
 *
 * Exit status: 0 (also when the reader closes the pipe early), 2 for a bad
 * command line, 3 when building a case fails. */
#include "bf/stream.h"
#include "bf/ternary.h"
#include "bf/util.h"

#include <errno.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

static void fail(const char *what)
{
    fprintf(stderr, "bf-mkbad: %s: %s\n", what, bf_errmsg());
    exit(3);
}

/* ------------------------------------------------------------ hand builder */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    XXH3_state_t *xxh;
    uint64_t count;
} hb;

static void hb_init(hb *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
    b->xxh = XXH3_createState();
    XXH3_64bits_reset(b->xxh);
    b->count = 0;
}

static void raw(hb *b, const void *p, size_t n) { msgpack_sbuffer_write(&b->sb, p, n); }
static void raw1(hb *b, int c) { unsigned char x = (unsigned char)c; raw(b, &x, 1); }
static void rawn(hb *b, int c, size_t n) { while (n--) raw1(b, c); }
/* a MessagePack head byte followed by an n-byte big-endian length */
static void rawlen(hb *b, int head, uint64_t len, int n)
{
    raw1(b, head);
    for (int k = n - 1; k >= 0; k--) raw1(b, (int)(len >> (8 * k) & 0xff));
}
static void strn(hb *b, const char *s, size_t n) { msgpack_pack_str(&b->pk, n); msgpack_pack_str_body(&b->pk, s, n); }
static void str(hb *b, const char *s) { strn(b, s, strlen(s)); }
static void put_uint(hb *b, uint64_t v) { msgpack_pack_uint64(&b->pk, v); }
static void kv_str(hb *b, const char *k, const char *v) { str(b, k); str(b, v); }

/* {"bf":1, "kind":"data", "meta":{task, vocab, ctx}, "lineage":[]} and
 * `extra` more entries, which the caller appends. */
static void hb_header(hb *b, int extra)
{
    msgpack_pack_map(&b->pk, (size_t)(4 + extra));
    str(b, "bf");
    msgpack_pack_int(&b->pk, 1);
    kv_str(b, "kind", "data");
    str(b, "meta");
    msgpack_pack_map(&b->pk, 3);
    kv_str(b, "task", "hostile");
    str(b, "vocab");
    put_uint(b, 10);
    str(b, "ctx");
    put_uint(b, 4);
    str(b, "lineage");
    msgpack_pack_array(&b->pk, 0);
}

/* A tensor header with name, dtype, shape and nbytes, and `extra` more
 * entries, which the caller appends. */
static void hb_thead(hb *b, const char *name, size_t name_len, const char *dtype, int ndim, const uint64_t *shape,
                     uint64_t nbytes, int extra)
{
    msgpack_pack_map(&b->pk, (size_t)(4 + extra));
    str(b, "name");
    strn(b, name, name_len);
    kv_str(b, "dtype", dtype);
    str(b, "shape");
    msgpack_pack_array(&b->pk, (size_t)ndim);
    for (int k = 0; k < ndim; k++) put_uint(b, shape[k]);
    str(b, "nbytes");
    put_uint(b, nbytes);
}

/* One bin32 payload chunk, counted in the checksum. */
static void hb_payload(hb *b, const void *p, size_t n)
{
    rawlen(b, 0xc6, n, 4);
    raw(b, p, n);
    XXH3_64bits_update(b->xxh, p, n);
}

static void hb_tensor(hb *b, const char *name, const char *dtype, int ndim, const uint64_t *shape, const void *p,
                      size_t n)
{
    hb_thead(b, name, strlen(name), dtype, ndim, shape, n, 0);
    hb_payload(b, p, n);
    b->count++;
}

static const int32_t x_vals[4] = {1, 2, 3, 4};
static const uint64_t x_shape[2] = {2, 2};

/* "x", I32 [2,2]: the ordinary tensor of hand-built cases */
static void hb_x(hb *b, const char *name) { hb_tensor(b, name, "I32", 2, x_shape, x_vals, sizeof x_vals); }

static void hb_trailer_count(hb *b, uint64_t count)
{
    msgpack_pack_map(&b->pk, 3);
    str(b, "end");
    msgpack_pack_true(&b->pk);
    str(b, "count");
    put_uint(b, count);
    str(b, "xxh3");
    put_uint(b, XXH3_64bits_digest(b->xxh));
}

static void hb_trailer(hb *b) { hb_trailer_count(b, b->count); }

/* a header, one good tensor, then the caller's defect, then (if asked) the trailer */
static void hb_start(hb *b)
{
    hb_header(b, 0);
    hb_x(b, "x");
}

/* ---------------------------------------------------------- library stream */

#define BASE_TENSORS 5

typedef struct {
    size_t header_end;                 /* offset where the first tensor header starts */
    size_t start[BASE_TENSORS];        /* each tensor header's first byte */
    size_t payload[BASE_TENSORS];      /* each payload's first byte */
    size_t nbytes[BASE_TENSORS];
    size_t trailer;                    /* the trailer's first byte */
} layout;

static void add_tensor(bf_writer *w, const char *name, bf_dtype dt, int ndim, const uint64_t *shape)
{
    bf_tensor t;
    if (bf_tensor_init(&t, name, dt, ndim, shape)) fail(name);
    if (bf_dtype_is_ternary(dt)) {
        uint64_t rb = bf_ternary_row_bytes(dt, shape[1]);
        int8_t row[64];
        for (uint64_t r = 0; r < shape[0]; r++) {
            for (uint64_t c = 0; c < shape[1] && c < 64; c++) row[c] = (int8_t)((int)((r * 7 + c * 3) % 3) - 1);
            bf_ternary_pack_row(dt, row, shape[1], (uint8_t *)t.data + r * rb);
        }
    } else if (dt == BF_I32) {
        for (uint64_t k = 0; k < bf_tensor_numel(&t); k++) ((int32_t *)t.data)[k] = (int32_t)(k % 10);
    } else {
        for (uint64_t k = 0; k < bf_tensor_numel(&t); k++) ((float *)t.data)[k] = 0.25f * (float)k - 1.0f;
    }
    if (bf_writer_tensor(w, &t)) fail(name);
    bf_tensor_release(&t);
}

/* The well-formed stream from the library writer into b, and where its parts
 * lie (payloads in chunks of `chunk` bytes; 0: the writer's default, one chunk,
 * which the layout assumes). */
static void lib_stream_chunked(hb *b, layout *L, size_t chunk)
{
    int fd = memfd_create("bf-mkbad", 0);
    if (fd < 0) { bf_err("memfd_create: %s", strerror(errno)); fail("library stream"); }
    bf_writer *w = bf_writer_fdopen(fd);
    if (!w) fail("library stream");
    if (chunk) bf_writer_set_chunk(w, chunk);
    bf_header h;
    bf_header_init(&h, "data");
    bf_val_set(h.meta, "task", bf_val_str("hostile"));
    bf_val_set(h.meta, "vocab", bf_val_int(10));
    bf_val_set(h.meta, "ctx", bf_val_int(4));
    if (bf_writer_header(w, &h)) fail("library stream");
    bf_header_release(&h);
    static const uint64_t s24[2] = {2, 4}, s37[2] = {3, 7}, s1[1] = {1}, s48[2] = {4, 8};
    add_tensor(w, "train.x", BF_I32, 2, s24);
    add_tensor(w, "w", BF_TQ2, 2, s37);
    add_tensor(w, "w.scale", BF_F32, 1, s1);
    add_tensor(w, "v", BF_TQ1, 2, s37);
    add_tensor(w, "f", BF_F32, 2, s48);
    if (bf_writer_close(w)) fail("library stream");

    off_t len = lseek(fd, 0, SEEK_END);
    char *p = bf_xmalloc((size_t)len);
    if (pread(fd, p, (size_t)len, 0) != len) { bf_err("pread: short"); fail("library stream"); }
    raw(b, p, (size_t)len);
    free(p);

    lseek(fd, 0, SEEK_SET);
    bf_reader *r = bf_reader_fdopen(fd, "library stream");
    if (!r) fail("library stream");
    size_t at = L->header_end = (size_t)bf_reader_offset(r);
    bf_tensor t;
    int k = 0, rc;
    while ((rc = bf_reader_next(r, &t)) == 1) {
        if (k == BASE_TENSORS) { bf_err("too many tensors"); fail("library stream"); }
        L->start[k] = at;
        at = (size_t)bf_reader_offset(r);
        L->nbytes[k] = (size_t)t.nbytes;
        L->payload[k] = at - (size_t)t.nbytes;    /* one chunk: the payload ends the object */
        bf_tensor_release(&t);
        k++;
        L->trailer = at;
    }
    if (rc) fail("library stream");
    bf_reader_close(r);
    close(fd);
}

static void lib_stream(hb *b, layout *L) { lib_stream_chunked(b, L, 0); }

static unsigned char *bytes(hb *b) { return (unsigned char *)b->sb.data; }
static void cut(hb *b, size_t n) { if (n < b->sb.size) b->sb.size = n; }

/* ----------------------------------------------------------------- cases */

static void c_valid(hb *b) { layout L; lib_stream(b, &L); }
static void c_valid_chunked(hb *b) { layout L; lib_stream_chunked(b, &L, 5); }

static void c_valid_hand(hb *b)
{
    hb_start(b);
    static const uint64_t s37[2] = {3, 7};
    static const uint8_t tq2[6] = {0x55, 0x15, 0x24, 0x09, 0x00, 0x2a}, tq1[6] = {0, 242, 121, 1, 80, 13};
    hb_tensor(b, "w", "TQ2", 2, s37, tq2, sizeof tq2);
    hb_tensor(b, "v", "TQ1", 2, s37, tq1, sizeof tq1);
    hb_trailer(b);
}

/* payloads split in bin8 and bin16 chunks, which readers also accept */
static void c_valid_bin8_bin16(hb *b)
{
    hb_header(b, 0);
    static const uint64_t s[1] = {300};
    uint8_t p[300];
    for (int k = 0; k < 300; k++) p[k] = (uint8_t)(k * 7);
    hb_thead(b, "bytes", 5, "U8", 1, s, sizeof p, 0);
    rawlen(b, 0xc4, 10, 1);
    raw(b, p, 10);
    rawlen(b, 0xc5, 280, 2);
    raw(b, p + 10, 280);
    rawlen(b, 0xc4, 0, 1);
    rawlen(b, 0xc5, 10, 2);
    raw(b, p + 290, 10);
    XXH3_64bits_update(b->xxh, p, sizeof p);
    b->count++;
    hb_x(b, "x");
    hb_trailer(b);
}

static void c_empty(hb *b) { (void)b; }
static void c_text(hb *b) { const char *s = "hello, this is not a tensor stream\n"; raw(b, s, strlen(s)); }

static void c_bad_magic(hb *b)
{
    layout L;
    lib_stream(b, &L);
    bytes(b)[3] = 'g';              /* 8x a2 'b' 'f' → 'b' 'g' */
}

static void c_bad_version(hb *b)
{
    layout L;
    lib_stream(b, &L);
    bytes(b)[4] = 0x02;             /* "bf": 1 → 2 */
}

static void c_header_not_map(hb *b)
{
    msgpack_pack_array(&b->pk, 2);
    kv_str(b, "bf", "data");
}

static void c_trunc_stream_header(hb *b) { layout L; lib_stream(b, &L); cut(b, L.header_end / 2); }
static void c_trunc_tensor_header(hb *b) { layout L; lib_stream(b, &L); cut(b, L.start[0] + 9); }
static void c_trunc_chunk_header(hb *b) { layout L; lib_stream(b, &L); cut(b, L.payload[0] - 3); }
static void c_trunc_payload(hb *b) { layout L; lib_stream(b, &L); cut(b, L.payload[0] + L.nbytes[0] / 2); }
static void c_trunc_before_trailer(hb *b) { layout L; lib_stream(b, &L); cut(b, L.trailer); }
static void c_trunc_in_trailer(hb *b) { layout L; lib_stream(b, &L); cut(b, L.trailer + 8); }

static void c_flipped_bit(hb *b)
{
    layout L;
    lib_stream(b, &L);
    bytes(b)[L.payload[4] + 5] ^= 0x10;    /* a mantissa bit of an F32 in "f" */
}

static void c_bad_checksum(hb *b)
{
    layout L;
    lib_stream(b, &L);
    bytes(b)[b->sb.size - 1] ^= 0x01;      /* the low byte of the trailer's xxh3 */
}

static void c_wrong_count(hb *b)
{
    layout L;
    lib_stream(b, &L);
    unsigned char *p = memmem(bytes(b) + L.trailer, b->sb.size - L.trailer, "\xa5" "count", 6);
    if (!p || p[6] != BASE_TENSORS) { bf_err("no fixint count in the trailer"); fail("wrong-count"); }
    p[6]++;
}

static void c_after_trailer(hb *b) { layout L; lib_stream(b, &L); raw1(b, 0x00); }

static void c_two_streams(hb *b)
{
    layout L;
    lib_stream(b, &L);
    lib_stream(b, &L);
}

static void c_trailer_malformed(hb *b)
{
    hb_start(b);
    msgpack_pack_map(&b->pk, 2);
    str(b, "end");
    msgpack_pack_true(&b->pk);
    str(b, "count");
    put_uint(b, 1);
}

static void c_tensor_header_not_map(hb *b)
{
    hb_start(b);
    put_uint(b, 5);
    hb_trailer(b);
}

static void c_c1_stream_header(hb *b)
{
    hb_header(b, 1);
    str(b, "junk");
    raw1(b, 0xc1);
    hb_x(b, "x");
    hb_trailer(b);
}

static void c_c1_tensor_header(hb *b)
{
    hb_start(b);
    hb_thead(b, "y", 1, "I32", 2, x_shape, 16, 1);
    str(b, "meta");
    raw1(b, 0xc1);
    hb_payload(b, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

static void c_c1_object(hb *b)
{
    hb_start(b);
    rawn(b, 0xc1, 64);
}

static void c_giant_str32(hb *b)
{
    hb_header(b, 1);
    str(b, "junk");
    rawlen(b, 0xdb, 0xffffffffu, 4);
    rawn(b, 'a', 100);
}

static void c_giant_bin32(hb *b)
{
    hb_start(b);
    hb_thead(b, "y", 1, "I32", 2, x_shape, 16, 1);
    str(b, "pad");
    rawlen(b, 0xc6, 0xffffffffu, 4);
    rawn(b, 0, 100);
}

static void c_giant_map32(hb *b)
{
    hb_start(b);
    hb_thead(b, "y", 1, "I32", 2, x_shape, 16, 1);
    str(b, "meta");
    rawlen(b, 0xdf, 0xffffffffu, 4);
    rawn(b, 0, 100);
}

static void c_giant_array32(hb *b)
{
    hb_header(b, 1);
    str(b, "junk");
    rawlen(b, 0xdd, 0xffffffffu, 4);
    rawn(b, 0, 100);
}

static void c_giant_ext32(hb *b)
{
    hb_header(b, 1);
    str(b, "junk");
    rawlen(b, 0xc9, 0xffffffffu, 4);
    raw1(b, 0x01);
    rawn(b, 0, 100);
}

/* many strings of 60000 bytes: each fine, together more than 1 MiB */
static void c_header_over_1mib(hb *b)
{
    hb_header(b, 1);
    str(b, "junk");
    msgpack_pack_array(&b->pk, 20);
    char *s = bf_xmalloc(60000);
    memset(s, 'z', 60000);
    for (int k = 0; k < 20; k++) strn(b, s, 60000);
    free(s);
    hb_x(b, "x");
    hb_trailer(b);
}

static void c_deep_nesting(hb *b)
{
    hb_header(b, 1);
    str(b, "junk");
    rawn(b, 0x91, 100000);
    raw1(b, 0x00);
    hb_trailer(b);
}

/* 40 levels each declaring 65535 entries: the first entry opens the next */
static void c_wide_nesting(hb *b)
{
    hb_header(b, 1);
    str(b, "junk");
    for (int k = 0; k < 40; k++) rawlen(b, 0xdc, 0xffff, 2);
    raw1(b, 0x00);
}

static void c_shape_overflow(hb *b)
{
    hb_start(b);
    static const uint64_t s[3] = {1ull << 32, 1ull << 32, 2};
    hb_thead(b, "y", 1, "F32", 3, s, 0, 0);
    hb_payload(b, "", 0);
    b->count++;
    hb_trailer(b);
}

static void c_nbytes_mismatch(hb *b)
{
    hb_start(b);
    hb_thead(b, "y", 1, "I32", 2, x_shape, 17, 0);
    char p[17] = {0};
    hb_payload(b, p, sizeof p);
    b->count++;
    hb_trailer(b);
}

static void c_too_many_dims(hb *b)
{
    hb_start(b);
    static const uint64_t s[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    hb_thead(b, "y", 1, "F32", 9, s, 4, 0);
    hb_payload(b, "\0\0\0\0", 4);
    b->count++;
    hb_trailer(b);
}

static void c_unknown_dtype(hb *b)
{
    hb_start(b);
    hb_tensor(b, "y", "Q4_K", 2, x_shape, x_vals, sizeof x_vals);
    hb_trailer(b);
}

static void c_ternary_1dim(hb *b)
{
    hb_start(b);
    static const uint64_t s[1] = {8};
    hb_tensor(b, "y", "TQ2", 1, s, "\0\0", 2);
    hb_trailer(b);
}

static void c_shape_negative(hb *b)
{
    hb_start(b);
    msgpack_pack_map(&b->pk, 4);
    kv_str(b, "name", "y");
    kv_str(b, "dtype", "I32");
    str(b, "shape");
    msgpack_pack_array(&b->pk, 2);
    msgpack_pack_int(&b->pk, -1);
    put_uint(b, 4);
    str(b, "nbytes");
    put_uint(b, 16);
    hb_payload(b, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

static void c_shape_not_array(hb *b)
{
    hb_start(b);
    msgpack_pack_map(&b->pk, 4);
    kv_str(b, "name", "y");
    kv_str(b, "dtype", "I32");
    str(b, "shape");
    put_uint(b, 4);
    str(b, "nbytes");
    put_uint(b, 16);
    hb_payload(b, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

static void c_missing_nbytes(hb *b)
{
    hb_start(b);
    msgpack_pack_map(&b->pk, 3);
    kv_str(b, "name", "y");
    kv_str(b, "dtype", "I32");
    str(b, "shape");
    msgpack_pack_array(&b->pk, 2);
    put_uint(b, 2);
    put_uint(b, 2);
    hb_payload(b, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

static void c_pad_not_last(hb *b)
{
    hb_start(b);
    msgpack_pack_map(&b->pk, 5);
    kv_str(b, "name", "y");
    str(b, "pad");
    msgpack_pack_bin(&b->pk, 3);
    msgpack_pack_bin_body(&b->pk, "\0\0\0", 3);
    kv_str(b, "dtype", "I32");
    str(b, "shape");
    msgpack_pack_array(&b->pk, 2);
    put_uint(b, 2);
    put_uint(b, 2);
    str(b, "nbytes");
    put_uint(b, 16);
    hb_payload(b, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

static void c_tensor_meta_not_map(hb *b)
{
    hb_start(b);
    hb_thead(b, "y", 1, "I32", 2, x_shape, 16, 1);
    kv_str(b, "meta", "absmean");
    hb_payload(b, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

static void c_map_key_not_string(hb *b)
{
    hb_start(b);
    hb_thead(b, "y", 1, "I32", 2, x_shape, 16, 1);
    put_uint(b, 7);
    put_uint(b, 8);
    hb_payload(b, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

/* a map key that is itself a container, and broken inside: what was decoded
 * of the key must be freed (found by fuzz_reader as a leak) */
static void c_map_key_container(hb *b)
{
    hb_start(b);
    hb_thead(b, "y", 1, "I32", 2, x_shape, 16, 1);
    msgpack_pack_array(&b->pk, 2);
    str(b, "key");
    raw1(b, 0xc1);
    put_uint(b, 8);
    hb_payload(b, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

static void c_no_kind(hb *b)
{
    msgpack_pack_map(&b->pk, 2);
    str(b, "bf");
    msgpack_pack_int(&b->pk, 1);
    str(b, "meta");
    msgpack_pack_map(&b->pk, 0);
    hb_x(b, "x");
    hb_trailer(b);
}

static void c_header_meta_not_map(hb *b)
{
    msgpack_pack_map(&b->pk, 3);
    str(b, "bf");
    msgpack_pack_int(&b->pk, 1);
    kv_str(b, "kind", "data");
    str(b, "meta");
    msgpack_pack_array(&b->pk, 0);
    hb_x(b, "x");
    hb_trailer(b);
}

static void c_duplicate_name(hb *b)
{
    hb_start(b);
    hb_x(b, "x");
    hb_trailer(b);
}

static void c_tq2_code3(hb *b)
{
    hb_start(b);
    static const uint64_t s37[2] = {3, 7};
    static const uint8_t p[6] = {0x55, 0x15, 0x55, 0x1d, 0x55, 0x15};   /* 0x1d: weight 5 of row 1 is code 3 */
    hb_tensor(b, "w", "TQ2", 2, s37, p, sizeof p);
    hb_trailer(b);
}

static void c_tq1_243(hb *b)
{
    hb_start(b);
    static const uint64_t s37[2] = {3, 7};
    static const uint8_t p[6] = {121, 4, 121, 4, 243, 4};
    hb_tensor(b, "v", "TQ1", 2, s37, p, sizeof p);
    hb_trailer(b);
}

/* 1 TiB declared, consistently with its shape; 1 MiB of it sent */
static void c_terabyte(hb *b)
{
    hb_start(b);
    static const uint64_t s[1] = {1ull << 38};
    hb_thead(b, "huge", 4, "F32", 1, s, 1ull << 40, 0);
    rawlen(b, 0xc6, 1u << 31, 4);
    rawn(b, 0, 1u << 20);
}

static void c_chunk_exceeds(hb *b)
{
    hb_start(b);
    hb_thead(b, "y", 1, "I32", 2, x_shape, 16, 0);
    rawlen(b, 0xc6, 0xffffffffu, 4);
    rawn(b, 0, 4096);
}

static void c_payload_not_bin(hb *b)
{
    hb_start(b);
    hb_thead(b, "y", 1, "I32", 2, x_shape, 16, 0);
    rawlen(b, 0xd9, 16, 1);               /* str8 where bin belongs */
    raw(b, x_vals, 16);
    XXH3_64bits_update(b->xxh, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

static void c_payload_missing(hb *b)
{
    hb_start(b);
    hb_thead(b, "y", 1, "I32", 2, x_shape, 16, 0);   /* the next header where the payload belongs */
    hb_x(b, "z");
    hb_trailer(b);
}

static void name_case(hb *b, const char *name, size_t len, const char *dtype)
{
    hb_start(b);
    hb_thead(b, name, len, dtype, 2, x_shape, 16, 0);
    hb_payload(b, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

static void c_name_256(hb *b)
{
    char s[256];
    memset(s, 'n', sizeof s);
    name_case(b, s, sizeof s, "I32");
}

static void c_name_empty(hb *b) { name_case(b, "", 0, "I32"); }
static void c_name_bad_utf8(hb *b) { name_case(b, "bad\xff\xfe", 5, "I32"); }
static void c_name_overlong_utf8(hb *b) { name_case(b, "\xc0\xaf", 2, "I32"); }
static void c_name_surrogate(hb *b) { name_case(b, "\xed\xa0\x80", 3, "I32"); }
static void c_name_cut_utf8(hb *b) { name_case(b, "euro\xe2\x82", 6, "I32"); }
static void c_name_nul(hb *b) { name_case(b, "a\0b", 3, "I32"); }
/* a valid name that a message quoting it must not let break its line */
static void c_name_newline(hb *b) { name_case(b, "two\nlines\r\x1b" "[2K", 14, "F64"); }
static void c_dtype_newline(hb *b) { name_case(b, "y", 1, "F32\nF16\r\x1b" "[2K"); }

static void c_name_not_string(hb *b)
{
    hb_start(b);
    msgpack_pack_map(&b->pk, 4);
    str(b, "name");
    put_uint(b, 5);
    kv_str(b, "dtype", "I32");
    str(b, "shape");
    msgpack_pack_array(&b->pk, 2);
    put_uint(b, 2);
    put_uint(b, 2);
    str(b, "nbytes");
    put_uint(b, 16);
    hb_payload(b, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

static void c_ext_fixext(hb *b)
{
    hb_start(b);
    hb_thead(b, "y", 1, "I32", 2, x_shape, 16, 1);
    str(b, "meta");
    msgpack_pack_map(&b->pk, 1);
    str(b, "when");
    raw(b, "\xd6\xff\x00\x00\x00\x00", 6);   /* fixext4 -1: a timestamp */
    hb_payload(b, x_vals, 16);
    b->count++;
    hb_trailer(b);
}

static void c_ext_ext8(hb *b)
{
    hb_header(b, 1);
    str(b, "junk");
    raw(b, "\xc7\x03\x01" "abc", 6);
    hb_x(b, "x");
    hb_trailer(b);
}

typedef struct {
    const char *name;
    void (*make)(hb *);
    const char *why;    /* ERE the message must match */
} kase;

static const kase cases[] = {
    {"empty", c_empty, "empty input"},
    {"text", c_text, "bad magic"},
    {"bad-magic", c_bad_magic, "bad magic"},
    {"bad-version", c_bad_version, "unsupported stream version"},
    {"header-not-map", c_header_not_map, "bad magic"},
    {"no-kind", c_no_kind, "no valid 'kind'"},
    {"header-meta-not-map", c_header_meta_not_map, "'meta' is not a map"},
    {"trunc-stream-header", c_trunc_stream_header, "truncated stream: ends inside a stream header"},
    {"trunc-tensor-header", c_trunc_tensor_header, "truncated stream: ends inside a tensor header"},
    {"trunc-chunk-header", c_trunc_chunk_header, "truncated stream: payload of 'train.x'"},
    {"trunc-payload", c_trunc_payload, "truncated stream: payload of 'train.x' (ends after 16 of|declares) 32 bytes"},
    {"trunc-before-trailer", c_trunc_before_trailer, "truncated stream: no trailer after 5 tensors"},
    {"trunc-in-trailer", c_trunc_in_trailer, "truncated stream"},
    {"trailer-malformed", c_trailer_malformed, "malformed trailer"},
    {"tensor-header-not-map", c_tensor_header_not_map, "expected a tensor header or trailer map"},
    {"c1-stream-header", c_c1_stream_header, "0xc1 in stream header"},
    {"c1-tensor-header", c_c1_tensor_header, "0xc1 in tensor header"},
    {"c1-object", c_c1_object, "0xc1 in tensor header"},
    {"giant-str32", c_giant_str32, "larger than 1 MiB"},
    {"giant-bin32", c_giant_bin32, "larger than 1 MiB"},
    {"giant-map32", c_giant_map32, "container of 4294967295 entries"},
    {"giant-array32", c_giant_array32, "container of 4294967295 entries"},
    {"giant-ext32", c_giant_ext32, "extension type 0xc9"},
    {"header-over-1mib", c_header_over_1mib, "larger than 1 MiB"},
    {"deep-nesting", c_deep_nesting, "nested deeper than"},
    {"wide-nesting", c_wide_nesting, "nested deeper than"},
    {"shape-overflow", c_shape_overflow, "shape overflows"},
    {"nbytes-mismatch", c_nbytes_mismatch, "declares nbytes 17, its dtype and shape make 16"},
    {"too-many-dims", c_too_many_dims, "has 9 dims"},
    {"unknown-dtype", c_unknown_dtype, "unknown dtype 'Q4_K'"},
    {"ternary-1dim", c_ternary_1dim, "TQ2 tensor needs 2 dims"},
    {"shape-negative", c_shape_negative, "not an unsigned integer"},
    {"shape-not-array", c_shape_not_array, "no 'shape' array"},
    {"missing-nbytes", c_missing_nbytes, "no 'nbytes'"},
    {"pad-not-last", c_pad_not_last, "'pad' that is not the last key"},
    {"tensor-meta-not-map", c_tensor_meta_not_map, "'meta' that is not a map"},
    {"map-key-not-string", c_map_key_not_string, "map key that is not a string"},
    {"map-key-container", c_map_key_container, "0xc1 in tensor header"},
    {"duplicate-name", c_duplicate_name, "duplicate tensor name 'x'"},
    {"tq2-code3", c_tq2_code3, "invalid TQ2 code 3 in payload byte 3"},
    {"tq1-243", c_tq1_243, "invalid TQ1 byte 243 at payload byte 4"},
    {"flipped-bit", c_flipped_bit, "checksum mismatch"},
    {"bad-checksum", c_bad_checksum, "checksum mismatch"},
    {"wrong-count", c_wrong_count, "trailer count 6 disagrees with the 5 tensors"},
    {"after-trailer", c_after_trailer, "data after the trailer"},
    {"two-streams", c_two_streams, "data after the trailer"},
    {"terabyte", c_terabyte, "truncated stream: payload of 'huge'"},
    {"chunk-exceeds", c_chunk_exceeds, "payload chunks of 'y' exceed its nbytes 16"},
    {"payload-not-bin", c_payload_not_bin, "payload of 'y' is not a binary object"},
    {"payload-missing", c_payload_missing, "payload of 'y' is not a binary object"},
    {"name-256", c_name_256, "tensor name of 256 bytes"},
    {"name-empty", c_name_empty, "tensor name of 0 bytes"},
    {"name-not-string", c_name_not_string, "without a 'name' string"},
    {"name-bad-utf8", c_name_bad_utf8, "not valid UTF-8"},
    {"name-overlong-utf8", c_name_overlong_utf8, "not valid UTF-8"},
    {"name-surrogate", c_name_surrogate, "not valid UTF-8"},
    {"name-cut-utf8", c_name_cut_utf8, "not valid UTF-8"},
    {"name-nul", c_name_nul, "not valid UTF-8"},
    {"name-newline", c_name_newline, "unknown dtype 'F64'"},
    {"dtype-newline", c_dtype_newline, "unknown dtype"},
    {"ext-fixext", c_ext_fixext, "extension type 0xd6"},
    {"ext-ext8", c_ext_ext8, "extension type 0xc7"},
    {NULL, NULL, NULL},
};

static const kase extras[] = {
    {"valid", c_valid, ""},
    {"valid-chunked", c_valid_chunked, ""},
    {"valid-hand", c_valid_hand, ""},
    {"valid-bin8-bin16", c_valid_bin8_bin16, ""},
    {NULL, NULL, NULL},
};

static const kase *find(const char *name)
{
    for (const kase *k = cases; k->name; k++)
        if (strcmp(k->name, name) == 0) return k;
    for (const kase *k = extras; k->name; k++)
        if (strcmp(k->name, name) == 0) return k;
    return NULL;
}

static _Noreturn void usage(void)
{
    fputs("usage: bf-mkbad list | list-valid | CASE | why [CASE]\n", stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "list") == 0) {
        for (const kase *k = cases; k->name; k++) puts(k->name);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "list-valid") == 0) {
        for (const kase *k = extras; k->name; k++) puts(k->name);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "why") == 0) {
        for (const kase *k = cases; k->name; k++) printf("%s\t%s\n", k->name, k->why);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "why") == 0) {
        const kase *k = find(argv[2]);
        if (!k) usage();
        puts(k->why);
        return 0;
    }
    if (argc != 2) usage();
    const kase *k = find(argv[1]);
    if (!k) {
        fprintf(stderr, "bf-mkbad: unknown case '%s' (see 'bf-mkbad list')\n", argv[1]);
        return 2;
    }
    if (isatty(1)) {
        fputs("bf-mkbad: refusing to write a stream to a terminal\n", stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    hb b;
    hb_init(&b);
    k->make(&b);
    const char *p = b.sb.data;
    size_t n = b.sb.size;
    while (n) {
        ssize_t w = write(1, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EPIPE) break;     /* the reader stopped early: its business */
        if (w < 0) { perror("bf-mkbad: write"); return 3; }
        p += w;
        n -= (size_t)w;
    }
    msgpack_sbuffer_destroy(&b.sb);
    XXH3_freeState(b.xxh);
    return 0;
}

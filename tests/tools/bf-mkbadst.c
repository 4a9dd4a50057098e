/* bf-mkbadst — hostile safetensors files for tests/cli/bf-import.bats.
 *
 *   bf-mkbadst list     every case name, one per line
 *   bf-mkbadst why      every case and the extended regular expression that
 *                       bf-import's message must match, tab-separated
 *   bf-mkbadst CASE     that case's bytes on stdout
 *
 * Each case is a JSON header (written as is, so it may break any rule),
 * the header size (the header's length unless the case lies about it) and
 * a data section of zero bytes, unless the case gives its own.
 * Exit status: 0, 2 for a bad command line or a terminal, 3 on a write error. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name, *why;
    const char *header;      /* NULL: made by a function */
    size_t data;             /* bytes of data after the header */
    long long size;          /* -1: the header's length; else the 8-byte size field */
    int raw;                 /* bytes of the file in full, no size field (short files) */
} kase;

#define CFG "\"__metadata__\":{\"bitforge.config\":\"{\\\"arch\\\":\\\"transformer\\\",\\\"vocab\\\":4,\\\"ctx\\\":4,\\\"d_model\\\":4,\\\"n_layer\\\":1,\\\"n_head\\\":1,\\\"d_ff\\\":4}\"}"

static const kase cases[] = {
    {"empty", "too short", "", 0, -1, 1},
    {"short", "too short", "\x05\x00\x00", 0, -1, 1},
    {"header-limit", "above the limit", "{}", 0, 100000001, 0},
    {"header-past-end", "header of 4096 bytes, but the file has", "{}", 8, 4096, 0},
    {"not-object", "does not start with '\\{'", "[1,2]", 0, -1, 0},
    {"empty-header", "does not start with '\\{'", "", 0, -1, 0},
    {"trailing-bytes", "trailing bytes", "{} x", 0, -1, 0},
    {"bad-utf8", "invalid UTF-8", "{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"overlong-utf8", "invalid UTF-8", "{\"a\xc0\xaf\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"surrogate-utf8", "invalid UTF-8", "{\"a\xed\xa0\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"above-unicode", "invalid UTF-8", "{\"a\xf4\x90\x80\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"truncated-utf8", "invalid UTF-8|unterminated", "{\"a\xe2\x82", 0, -1, 0},
    {"control-char", "control character", "{\"a\tb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"nul-escape", "NUL", "{\"a\\u0000\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"bad-escape", "bad escape", "{\"a\\x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"lone-surrogate", "surrogate", "{\"a\\udc00\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"unterminated", "unterminated|unexpected end", "{\"a\":{\"dtype\":\"U8", 0, -1, 0},
    {"no-colon", "expected ':'", "{\"a\" 1}", 0, -1, 0},
    {"bad-number", "bad value near '0'", "{\"a\":{\"dtype\":\"U8\",\"shape\":[01],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"duplicate-tensor", "appears twice|duplicate",
     "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, -1, 0},
    {"duplicate-key", "duplicate key", "{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"metadata-twice", "duplicate key near '\"__metadata__\"'", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, -1, 0},
    {"metadata-number", "__metadata__ is not an object of strings", "{\"__metadata__\":{\"a\":1}}", 0, -1, 0},
    {"metadata-array", "__metadata__ is not an object of strings", "{\"__metadata__\":[\"a\"]}", 0, -1, 0},
    {"deep-nesting", "nesting too deep", NULL, 0, -1, 0},
    {"entry-not-object", "is not an object", "{\"a\":[1]}", 0, -1, 0},
    {"no-dtype", "no dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"unknown-dtype", "unknown dtype 'F128'", "{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16, -1, 0},
    {"no-shape", "no shape", "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"negative-dim", "not a non-negative integer", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"float-dim", "not a non-negative integer", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"nine-dims", "9 dimensions", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"size-overflow", "overflows", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, -1, 0},
    {"size-overflow-dtype", "overflows", "{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952,2],\"data_offsets\":[0,8]}}", 8, -1, 0},
    {"huge-integer", "out of range", "{\"a\":{\"dtype\":\"U8\",\"shape\":[99999999999999999999],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"no-offsets", "no data_offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, -1, 0},
    {"three-offsets", "no data_offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1, -1, 0},
    {"begin-after-end", "outside", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[1,0]}}", 1, -1, 0},
    {"end-past-data", "outside the 4 bytes", "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 4, -1, 0},
    {"size-mismatch", "has 8 bytes of data, its dtype and shape need 12",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, -1, 0},
    {"hole", "a hole before it",
     "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[16,24]}}", 24, -1, 0},
    {"hole-at-start", "a hole before it", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", 8, -1, 0},
    {"overlap", "overlaps",
     "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}", 12, -1, 0},
    {"same-offsets", "overlaps",
     "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, -1, 0},
    {"data-left-over", "cover 8 of the 16 bytes|more than the 8 bytes of data the header describes", "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 16, -1, 0},
    {"f64-tensor", "F64, which bitforge does not read", "{\"tok_emb\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, -1, 0},
    {"long-name", "not 1 to 255 bytes", NULL, 1, -1, 0},
    {"hf-unknown-name", "not a tensor name of the hf convention",
     "{\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,64]},\"model.rotary.inv_freq\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[64,68]}}", 68, -1, 0},
    {"no-config-no-heads", "--heads", "{\"tok_emb\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,64]}}", 64, -1, 0},
    {"no-embedding", "no 2-dimensional token embedding", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"config-not-json", "bitforge.config: .* at byte", "{\"__metadata__\":{\"bitforge.config\":\"{vocab\"}}", 0, -1, 0},
    {"config-trailing", "bitforge.config: trailing bytes near 'x' at byte",
     "{\"__metadata__\":{\"bitforge.config\":\"{\\\"vocab\\\":4} x\"}}", 0, -1, 0},
    {"config-bad-value", "bitforge.config", "{\"__metadata__\":{\"bitforge.config\":\"{\\\"vocab\\\":-3}\"}}", 0, -1, 0},
    {"missing-tensor", "tensor 'blk.0.attn_norm.w' is missing",
     "{" CFG ",\"tok_emb\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,64]}}", 64, -1, 0},
    {"ternary-names-absent", "bitforge.ternary names 'x'",
     "{\"__metadata__\":{\"bitforge.ternary\":\"{\\\"x\\\":{}}\"}}", 0, -1, 0},
    {"ternary-bad-entry", "bitforge.ternary's entry for 'a'",
     "{\"__metadata__\":{\"bitforge.ternary\":\"{\\\"a\\\":{\\\"dtype\\\":\\\"F32\\\"}}\"},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"ternary-bad-shape", "packed 'a' is not U8 \\[2, 1\\]",
     "{\"__metadata__\":{\"bitforge.ternary\":\"{\\\"a\\\":{\\\"dtype\\\":\\\"TQ2\\\",\\\"shape\\\":[2,4]}}\"},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {"ternary-code-3", "invalid TQ2 code 3",
     "{\"__metadata__\":{\"bitforge.ternary\":\"{\\\"a\\\":{\\\"dtype\\\":\\\"TQ2\\\",\\\"shape\\\":[1,4]}}\"},\"a\":{\"dtype\":\"U8\",\"shape\":[1,1],\"data_offsets\":[0,1]}}", 1, -1, 0},
    {NULL, NULL, NULL, 0, 0, 0},
};

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        if (!b->p) { fputs("bf-mkbadst: out of memory\n", stderr); exit(3); }
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

int main(int argc, char **argv)
{
    if (argc != 2) {
        fputs("usage: bf-mkbadst list|why|CASE\n", stderr);
        return 2;
    }
    if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "why") == 0) {
        for (const kase *k = cases; k->name; k++)
            if (argv[1][0] == 'l') puts(k->name);
            else printf("%s\t%s\n", k->name, k->why);
        return 0;
    }
    const kase *k = cases;
    while (k->name && strcmp(k->name, argv[1]) != 0) k++;
    if (!k->name) {
        fprintf(stderr, "bf-mkbadst: unknown case '%s' (see 'bf-mkbadst list')\n", argv[1]);
        return 2;
    }
    if (isatty(1)) {
        fputs("bf-mkbadst: refusing to write to a terminal\n", stderr);
        return 2;
    }
    buf h = {0}, f = {0};
    if (k->header) puts_(&h, k->header);
    else if (strcmp(k->name, "deep-nesting") == 0) {
        puts_(&h, "{\"__metadata__\":{\"a\":");
        for (int d = 0; d < 100; d++) puts_(&h, "[");
        for (int d = 0; d < 100; d++) puts_(&h, "]");
        puts_(&h, "}}");
    } else {   /* long-name: a 300-byte name */
        puts_(&h, "{\"");
        for (int d = 0; d < 300; d++) puts_(&h, "n");
        puts_(&h, "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}");
    }
    if (k->raw) put(&f, h.p, h.n);
    else {
        uint64_t n = k->size < 0 ? (uint64_t)h.n : (uint64_t)k->size;
        for (int j = 0; j < 8; j++) {
            char c = (char)(n >> 8 * j);
            put(&f, &c, 1);
        }
        put(&f, h.p, h.n);
        for (size_t j = 0; j < k->data; j++) {
            /* ternary-code-3: a byte of 2-bit fields 3 */
            char c = strcmp(k->name, "ternary-code-3") == 0 ? (char)0xff : 0;
            put(&f, &c, 1);
        }
    }
    for (size_t at = 0; at < f.n;) {
        ssize_t w = write(1, f.p + at, f.n - at);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno == EPIPE ? 0 : 3;
        at += (size_t)w;
    }
    free(h.p);
    free(f.p);
    return 0;
}

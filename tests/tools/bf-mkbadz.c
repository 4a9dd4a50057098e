/* bf-mkbadz — hostile bf-compress archives for tests/cli/bf-compress.bats.
 *
 *   bf-mkbadz list          every case name, one per line
 *   bf-mkbadz CASE          that case's bytes on stdout
 *   bf-mkbadz why          every case and the extended regular expression
 *                           that bf-compress -d's message must match, tab-separated
 *   bf-mkbadz valid         a small well-formed archive (three tensors: F32
 *                           "a" [2,3], TQ2 "w" [2,5] as tq1 with "w.scale")
 *   bf-mkbadz raw CASE      that case (or valid) as a plain tar, unfiltered,
 *                           without its two end-of-archive blocks (the
 *                           fuzzer's seeds: changes to a plain tar reach the
 *                           manifest and the members)
 *
 * Archives are built from scratch with libarchive's write API: a manifest
 * text and members, each case changing one thing of the valid archive.
 * Exit status: 0, 2 for a bad command line, 3 when building fails. */
#include "bf/compress.h"
#include "bf/error.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        if (!b->p) { fputs("bf-mkbadz: out of memory\n", stderr); exit(3); }
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

static la_ssize_t to_buf(struct archive *a, void *ctx, const void *p, size_t n)
{
    (void)a;
    put(ctx, p, n);
    return (la_ssize_t)n;
}

enum { REG, SYMLINK, HARDLINK, DIR };

typedef struct {
    const char *name;
    int type;
    const void *data;
    size_t len;
} member;

static int all_raw;   /* bf-mkbadz raw CASE */

/* the archive of these members, through xz as bf-compress writes it (raw:
 * the plain tar) */
static buf build(const member *m, int n, int raw)
{
    buf b = {0};
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    if (archive_write_open(a, &b, NULL, to_buf, NULL) != ARCHIVE_OK) goto fail;
    for (int k = 0; k < n; k++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[k].name);
        archive_entry_set_perm(e, 0644);
        switch (m[k].type) {
        case SYMLINK: archive_entry_set_filetype(e, AE_IFLNK); archive_entry_set_symlink(e, "/etc/passwd"); archive_entry_set_size(e, 0); break;
        case HARDLINK: archive_entry_set_filetype(e, AE_IFREG); archive_entry_set_hardlink(e, "t/000000.bin"); archive_entry_set_size(e, 0); break;
        case DIR: archive_entry_set_filetype(e, AE_IFDIR); archive_entry_set_size(e, 0); break;
        default: archive_entry_set_filetype(e, AE_IFREG); archive_entry_set_size(e, (la_int64_t)m[k].len);
        }
        if (archive_write_header(a, e) != ARCHIVE_OK) goto fail;
        if (m[k].type == REG && m[k].len && archive_write_data(a, m[k].data, m[k].len) != (la_ssize_t)m[k].len) goto fail;
        archive_entry_free(e);
    }
    if (archive_write_close(a) != ARCHIVE_OK) goto fail;
    archive_write_free(a);
    if (!raw && !all_raw) {
        uint8_t *z;
        size_t zn;
        if (bf_cz_pack(BF_CZ_XZ, (const uint8_t *)b.p, b.n, &z, &zn)) {
            fprintf(stderr, "bf-mkbadz: %s\n", bf_errmsg());
            exit(3);
        }
        free(b.p);
        b = (buf){(char *)z, zn, zn};
    }
    return b;
fail:
    fprintf(stderr, "bf-mkbadz: %s\n", archive_error_string(a));
    exit(3);
}

/* ------------------------------------------------------ the valid archive */

#define T_A "{\"name\":\"a\",\"dtype\":\"F32\",\"shape\":[2,3],\"method\":\"f32\",\"member\":\"t/000000.bin\",\"bytes\":24}"
#define T_W "{\"name\":\"w\",\"dtype\":\"TQ2\",\"shape\":[2,5],\"meta\":{\"method\":\"absmean\",\"threshold\":0.0,\"per_row\":false}," \
            "\"method\":\"tq1\",\"member\":\"t/000001.bin\",\"bytes\":2}"
#define T_S "{\"name\":\"w.scale\",\"dtype\":\"F32\",\"shape\":[1],\"method\":\"f32\",\"member\":\"t/000002.bin\",\"bytes\":4}"
#define HEAD "{\"format\":\"bf-compress\",\"version\":1,\"codec\":\"xz\",\"kind\":\"model\",\"meta\":{\"note\":\"hostile\"},\"lineage\":[],"

static const char valid_manifest[] = HEAD "\"tensors\":[" T_A "," T_W "," T_S "]}\n";

static float a_vals[6] = {1, -2, 0.5f, 3, 0, -0.25f};
static uint8_t w_codes[2] = {121, 7};   /* TQ1: 5 codes a byte, < 243 */
static float s_val = 0.125f;

static const char *manifest_text;   /* a case's manifest (NULL: the valid one) */
static char *owned;                 /* the case's own manifest text, freed at the end */

static char *own(char *p)
{
    free(owned);
    return owned = p;
}
static member mem[8];
static int nmem;

static void base(void)
{
    manifest_text = valid_manifest;
    mem[0] = (member){"manifest.json", REG, NULL, 0};
    mem[1] = (member){"t/000000.bin", REG, a_vals, sizeof a_vals};
    mem[2] = (member){"t/000001.bin", REG, w_codes, sizeof w_codes};
    mem[3] = (member){"t/000002.bin", REG, &s_val, sizeof s_val};
    nmem = 4;
}

static buf finish(int raw)
{
    mem[0].data = manifest_text;
    mem[0].len = strlen(manifest_text);
    return build(mem, nmem, raw);
}

/* the valid manifest with `from` replaced by `to` (first occurrence) */
static void edit(const char *from, const char *to)
{
    const char *at = strstr(valid_manifest, from);
    if (!at) { fprintf(stderr, "bf-mkbadz: '%s' not in the manifest\n", from); exit(3); }
    size_t n = strlen(valid_manifest) - strlen(from) + strlen(to) + 1;
    char *s = own(malloc(n));
    snprintf(s, n, "%.*s%s%s", (int)(at - valid_manifest), valid_manifest, to, at + strlen(from));
    manifest_text = s;
}

/* --------------------------------------------------------------- the cases */

static buf c_valid(void) { base(); return finish(0); }
static buf c_not_archive(void)
{
    buf b = {0};
    for (int k = 0; k < 40; k++) put(&b, "this is not an archive, only text\n", 34);
    return b;
}
static buf c_empty(void) { buf b = {0}; put(&b, "", 0); return b; }
static buf c_truncated_half(void) { buf b = c_valid(); b.n /= 2; return b; }
static buf c_truncated_end(void) { buf b = c_valid(); b.n -= 12; return b; }
/* an unfiltered tar that ends inside the manifest: its header declares
 * bytes that never come */
static buf c_truncated_raw(void) { base(); buf b = finish(1); b.n = 600; return b; }
static buf c_corrupt_middle(void)
{
    buf b = c_valid();
    for (size_t k = b.n / 3; k < b.n / 3 + 16; k++) b.p[k] ^= 0x5a;
    return b;
}
static buf c_dotdot(void) { base(); mem[1].name = "../t/000000.bin"; return finish(0); }
static buf c_absolute(void) { base(); mem[1].name = "/tmp/t/000000.bin"; return finish(0); }
static buf c_symlink(void) { base(); mem[1].type = SYMLINK; return finish(0); }
static buf c_hardlink(void) { base(); mem[2].type = HARDLINK; return finish(0); }
static buf c_directory(void)
{
    base();
    memmove(&mem[2], &mem[1], 3 * sizeof *mem);
    mem[1] = (member){"t/", DIR, NULL, 0};
    nmem = 5;
    return finish(0);
}
static buf c_manifest_huge(void)
{
    base();
    size_t n = (17u << 20);
    char *s = own(malloc(n + 1));
    memset(s, ' ', n);
    memcpy(s, valid_manifest, strlen(valid_manifest));
    s[n] = 0;
    manifest_text = s;
    return finish(0);
}
static buf c_manifest_not_json(void) { base(); manifest_text = "this is not JSON\n"; return finish(0); }
static buf c_manifest_not_first(void)
{
    base();
    member t = mem[0];
    mem[0] = mem[1];
    mem[1] = t;
    mem[1].data = valid_manifest;
    mem[1].len = strlen(valid_manifest);
    return build(mem, nmem, 0);
}
static buf c_manifest_deep(void)
{
    base();
    char *s = own(malloc(400));
    memset(s, '[', 100);
    memset(s + 100, ']', 100);
    s[200] = 0;
    manifest_text = s;
    return finish(0);
}
static buf c_manifest_array(void) { base(); manifest_text = "[1,2,3]"; return finish(0); }
static buf c_no_tensors(void) { base(); manifest_text = HEAD "\"t\":[]}"; return finish(0); }
static buf c_wrong_format(void) { base(); edit("\"format\":\"bf-compress\"", "\"format\":\"zip\""); return finish(0); }
static buf c_wrong_version(void) { base(); edit("\"version\":1", "\"version\":2"); return finish(0); }
static buf c_no_kind(void) { base(); edit("\"kind\":\"model\",", ""); return finish(0); }
static buf c_meta_not_map(void) { base(); edit("\"meta\":{\"note\":\"hostile\"}", "\"meta\":[1]"); return finish(0); }
static buf c_missing_dtype(void) { base(); edit("\"dtype\":\"F32\",\"shape\":[2,3],", "\"shape\":[2,3],"); return finish(0); }
static buf c_unknown_dtype(void) { base(); edit("\"dtype\":\"F32\",\"shape\":[2,3]", "\"dtype\":\"F64\",\"shape\":[2,3]"); return finish(0); }
static buf c_unknown_method(void) { base(); edit("\"method\":\"f32\"", "\"method\":\"zip\""); return finish(0); }
static buf c_method_mismatch(void) { base(); edit("\"method\":\"f32\"", "\"method\":\"entropy\""); return finish(0); }
static buf c_wrong_bytes(void) { base(); edit("\"bytes\":24", "\"bytes\":28"); return finish(0); }
static buf c_bytes_string(void) { base(); edit("\"bytes\":24", "\"bytes\":\"24\""); return finish(0); }
static buf c_member_short(void) { base(); mem[1].len = 20; return finish(0); }
static buf c_shape_overflow(void) { base(); edit("[2,3]", "[4294967296,4294967296,16]"); return finish(0); }
static buf c_shape_negative(void) { base(); edit("[2,3]", "[-2,-3]"); return finish(0); }
static buf c_shape_float(void) { base(); edit("[2,3]", "[2.0,3]"); return finish(0); }
static buf c_too_many_dims(void) { base(); edit("[2,3]", "[1,1,1,1,1,1,1,2,3]"); return finish(0); }
static buf c_ternary_1d(void) { base(); edit("\"shape\":[2,5]", "\"shape\":[10]"); return finish(0); }
static buf c_member_renamed(void) { base(); edit("\"member\":\"t/000000.bin\"", "\"member\":\"../../etc/passwd\""); return finish(0); }
static buf c_dup_name(void) { base(); edit("\"name\":\"w.scale\"", "\"name\":\"a\""); return finish(0); }
static buf c_long_name(void)
{
    base();
    char name[400] = "\"name\":\"";
    memset(name + 8, 'x', 300);
    strcpy(name + 308, "\"");
    edit("\"name\":\"a\"", name);
    return finish(0);
}
static buf c_nul_name(void) { base(); edit("\"name\":\"a\"", "\"name\":\"a\\u0000b\""); return finish(0); }
static buf c_bomb_declared(void)
{
    /* 4 GiB of F32 from a 2 GiB f16 member the archive never holds */
    base();
    edit("\"shape\":[2,3],\"method\":\"f32\",\"member\":\"t/000000.bin\",\"bytes\":24",
         "\"shape\":[1048576,1024],\"method\":\"f16\",\"member\":\"t/000000.bin\",\"bytes\":2147483648");
    return finish(0);
}
static buf c_bomb_entropy(void)
{
    /* 1 GiB of TQ2 codes, all zero, from ten bytes of rANS */
    static uint8_t rans[10] = {0, 0, 0, 0x80, 0, 0, 0, 0, 0x80, 0};
    base();
    char *s = own(malloc(strlen(valid_manifest) + 200));
    strcpy(s, HEAD "\"tensors\":[" T_A ",");
    strcat(s, "{\"name\":\"w\",\"dtype\":\"TQ2\",\"shape\":[65536,65536],\"meta\":{\"method\":\"absmean\",\"threshold\":0.0,\"per_row\":false},"
              "\"method\":\"entropy\",\"member\":\"t/000001.bin\",\"bytes\":10},");
    strcat(s, T_S "]}\n");
    manifest_text = s;
    mem[2].data = rans;
    mem[2].len = sizeof rans;
    return finish(0);
}
static buf c_nan_f32(void)
{
    static float v[6];
    memcpy(v, a_vals, sizeof v);
    v[4] = NAN;
    base();
    mem[1].data = v;
    return finish(0);
}
static buf c_inf_scale(void)
{
    static float v = INFINITY;
    base();
    mem[3].data = &v;
    return finish(0);
}
static buf c_nan_f16(void)
{
    static uint16_t h[6] = {0x3c00, 0x3c00, 0x7e00, 0, 0, 0};
    base();
    edit("\"method\":\"f32\",\"member\":\"t/000000.bin\",\"bytes\":24", "\"method\":\"f16\",\"member\":\"t/000000.bin\",\"bytes\":12");
    mem[1].data = h;
    mem[1].len = sizeof h;
    return finish(0);
}
static buf c_bad_tq1(void)
{
    static uint8_t c[2] = {121, 250};
    base();
    mem[2].data = c;
    return finish(0);
}
static buf c_bad_rans(void)
{
    static uint8_t r[12] = {1, 0, 2, 0, 3, 0, 0, 0, 0x80, 0, 1, 2};
    char *s = own(malloc(strlen(valid_manifest) + 200));
    base();
    strcpy(s, HEAD "\"tensors\":[" T_A ",");
    strcat(s, "{\"name\":\"w\",\"dtype\":\"TQ2\",\"shape\":[2,5],\"meta\":{\"method\":\"absmean\",\"threshold\":0.0,\"per_row\":false},"
              "\"method\":\"entropy\",\"member\":\"t/000001.bin\",\"bytes\":12},");
    strcat(s, T_S "]}\n");
    manifest_text = s;
    mem[2].data = r;
    mem[2].len = sizeof r;
    return finish(0);
}
static buf c_seed_zero(void)
{
    static uint8_t m[8] = {8, 3, 0, 0, 0, 0, 0x12, 0x34};   /* one block, seed 0 */
    base();
    edit("\"method\":\"f32\",\"member\":\"t/000000.bin\",\"bytes\":24", "\"method\":\"seedlm4\",\"member\":\"t/000000.bin\",\"bytes\":8");
    mem[1].data = m;
    mem[1].len = sizeof m;
    return finish(0);
}
static buf c_scale_lossy(void) { base(); edit("\"method\":\"f32\",\"member\":\"t/000002.bin\"", "\"method\":\"f16\",\"member\":\"t/000002.bin\""); return finish(0); }
static buf c_extra_member(void) { base(); mem[4] = (member){"t/000003.bin", REG, &s_val, 4}; nmem = 5; return finish(0); }
static buf c_missing_member(void) { base(); nmem = 3; return finish(0); }
static buf c_swapped_members(void)
{
    base();
    member t = mem[1];
    mem[1] = mem[2];
    mem[2] = t;
    return finish(0);
}

typedef struct {
    const char *name, *why;
    buf (*make)(void);
} kase;

static const kase cases[] = {
    {"not-archive", "not a readable bf-compress archive", c_not_archive},
    {"empty", "not a readable bf-compress archive", c_empty},
    {"truncated-half", "truncat|not a readable|ends before", c_truncated_half},
    {"truncated-end", "truncat|not a readable|ends before|after the last", c_truncated_end},
    {"truncated-raw", "manifest\\.json.*[Tt]runcated", c_truncated_raw},
    {"corrupt-middle", "corrupt|damaged|not a readable|truncat|error|manifest|member", c_corrupt_middle},
    {"dotdot", "member '\\.\\./t/000000\\.bin' where 't/000000\\.bin'", c_dotdot},
    {"absolute", "member '/tmp/t/000000\\.bin' where", c_absolute},
    {"symlink", "'t/000000\\.bin' is not a plain file", c_symlink},
    {"hardlink", "'t/000001\\.bin' is not a plain file", c_hardlink},
    {"directory", "member 't/' where 't/000000\\.bin'", c_directory},
    {"manifest-huge", "manifest\\.json' holds 17825792 bytes", c_manifest_huge},
    {"manifest-not-json", "manifest\\.json: .* at byte", c_manifest_not_json},
    {"manifest-not-first", "member 't/000000\\.bin' where 'manifest\\.json'", c_manifest_not_first},
    {"manifest-deep", "nesting too deep", c_manifest_deep},
    {"manifest-array", "not a bf-compress manifest", c_manifest_array},
    {"no-tensors", "no tensors", c_no_tensors},
    {"wrong-format", "not a bf-compress manifest", c_wrong_format},
    {"wrong-version", "version is not 1", c_wrong_version},
    {"no-kind", "kind", c_no_kind},
    {"meta-not-map", "meta or lineage", c_meta_not_map},
    {"missing-dtype", "lacks", c_missing_dtype},
    {"unknown-dtype", "unknown dtype", c_unknown_dtype},
    {"unknown-method", "unknown method", c_unknown_method},
    {"method-mismatch", "does not fit", c_method_mismatch},
    {"wrong-bytes", "does not fit its shape", c_wrong_bytes},
    {"bytes-string", "bad bytes", c_bytes_string},
    {"member-short", "holds 20 bytes, not 24", c_member_short},
    {"shape-overflow", "overflow", c_shape_overflow},
    {"shape-negative", "bad shape", c_shape_negative},
    {"shape-float", "bad shape", c_shape_float},
    {"too-many-dims", "bad shape", c_too_many_dims},
    {"ternary-1d", "needs 2 dims", c_ternary_1d},
    {"member-renamed", "member is not 't/000000\\.bin'", c_member_renamed},
    {"dup-name", "appears twice", c_dup_name},
    {"long-name", "bad name", c_long_name},
    {"nul-name", "NUL", c_nul_name},
    {"bomb-declared", "would restore", c_bomb_declared},
    {"bomb-entropy", "would restore", c_bomb_entropy},
    {"nan-f32", "not finite", c_nan_f32},
    {"inf-scale", "not finite", c_inf_scale},
    {"nan-f16", "not finite", c_nan_f16},
    {"bad-tq1", "'w': .*(byte|243|invalid|bad)", c_bad_tq1},
    {"bad-rans", "'w': entropy member", c_bad_rans},
    {"seed-zero", "seed 0", c_seed_zero},
    {"scale-lossy", "does not fit|scale", c_scale_lossy},
    {"extra-member", "member 't/000003\\.bin' after the last tensor", c_extra_member},
    {"missing-member", "ends before member 't/000002\\.bin'", c_missing_member},
    {"swapped-members", "member 't/000001\\.bin' where 't/000000\\.bin'", c_swapped_members},
    {NULL, NULL, NULL}};

static void usage(void)
{
    fputs("usage: bf-mkbadz list | why | valid | CASE | raw valid | raw CASE\n", stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "raw") == 0) {
        all_raw = 1;
        argv++;
        argc--;
    }
    if (argc != 2) usage();
    if (strcmp(argv[1], "list") == 0) {
        for (const kase *k = cases; k->name; k++) puts(k->name);
        return 0;
    }
    if (strcmp(argv[1], "why") == 0) {
        for (const kase *k = cases; k->name; k++) printf("%s\t%s\n", k->name, k->why);
        return 0;
    }
    buf b = {0};
    if (strcmp(argv[1], "valid") == 0) b = c_valid();
    else {
        const kase *k = cases;
        while (k->name && strcmp(k->name, argv[1]) != 0) k++;
        if (!k->name) {
            fprintf(stderr, "bf-mkbadz: unknown case '%s' (see 'bf-mkbadz list')\n", argv[1]);
            return 2;
        }
        b = k->make();
    }
    if (isatty(1)) {
        fputs("bf-mkbadz: refusing to write an archive to a terminal\n", stderr);
        return 2;
    }
    /* the two zero blocks that end a tar, where the archive has them */
    static const char zeros[1024];
    if (all_raw && b.n >= 1024 && memcmp(b.p + b.n - 1024, zeros, 1024) == 0) b.n -= 1024;
    for (size_t at = 0; at < b.n;) {
        ssize_t w = write(1, b.p + at, b.n - at);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno == EPIPE ? 0 : 3;
        at += (size_t)w;
    }
    free(b.p);
    free(owned);
    return 0;
}

/* compress_codec.c — the archive's outer codec (xz or zstd) over a whole tar
 * held in memory (bf/compress.h, bf-compress(1)).
 *
 * Why not libarchive's own filters: they stream, so they cannot know the
 * input's size, and the frames they write declare the preset's window
 * whatever the data: xz's 8 MiB dictionary, zstd's 8 MiB window.  A decoder
 * (libarchive's, or xz and zstd on the command line) allocates the window a
 * frame declares before it reads a byte, so an archive of 40 KB cost 8 MiB
 * of memory to open — and, under a memory checker, a millisecond of
 * poisoning per archive.  Compressing the finished tar in one call lets
 * the frame declare the window the data need: xz's dictionary at the
 * tar's size (from 4 KiB to xz -9's 64 MiB), and zstd's content size in
 * the frame header, which bounds its decoder's window.  The output is
 * unchanged in kind: a .tar.xz (CRC64 check) or a .tar.zst (XXH64 content
 * checksum) that tar, xz and zstd read. */
#include "bf/compress.h"
#include "bf/error.h"

#include <lzma.h>
#include <stdlib.h>
#include <zstd.h>

/* xz -6's settings (normal mode, bt4, nice length 64), which presets 7..9
 * share but for the dictionary; the dictionary just holds the input */
static int pack_xz(const uint8_t *in, size_t n, uint8_t **out, size_t *len)
{
    lzma_options_lzma opt;
    if (lzma_lzma_preset(&opt, 6)) return bf_err("xz: preset 6 unavailable");
    uint64_t dict = n < LZMA_DICT_SIZE_MIN ? LZMA_DICT_SIZE_MIN : n;
    opt.dict_size = (uint32_t)(dict > (64u << 20) ? (64u << 20) : dict);
    lzma_filter filters[] = {{LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, NULL}};
    size_t cap = lzma_stream_buffer_bound(n), pos = 0;
    if (!cap) return bf_err("xz: %zu bytes are too many for one stream", n);
    uint8_t *p = malloc(cap);
    if (!p) return bf_err("xz: out of memory for %zu bytes", cap);
    lzma_ret r = lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC64, NULL, in, n, p, &pos, cap);
    if (r != LZMA_OK) {
        free(p);
        return bf_err("xz: encoder failed (%s)", r == LZMA_MEM_ERROR ? "out of memory" : "internal error");
    }
    *out = p;
    *len = pos;
    return 0;
}

/* zstd -19 (the highest level without long windows), the content size and
 * a checksum in the frame; one thread, so the bytes depend on nothing else */
static int pack_zstd(const uint8_t *in, size_t n, uint8_t **out, size_t *len)
{
    size_t cap = ZSTD_compressBound(n);
    if (ZSTD_isError(cap)) return bf_err("zstd: %zu bytes are too many for one frame", n);
    ZSTD_CCtx *cx = ZSTD_createCCtx();
    uint8_t *p = malloc(cap ? cap : 1);
    if (!cx || !p) {
        ZSTD_freeCCtx(cx);
        free(p);
        return bf_err("zstd: out of memory for %zu bytes", cap);
    }
    size_t r = ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, 19);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cx, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cx, ZSTD_c_contentSizeFlag, 1);
    if (!ZSTD_isError(r)) r = ZSTD_compress2(cx, p, cap, in, n);
    ZSTD_freeCCtx(cx);
    if (ZSTD_isError(r)) {
        free(p);
        return bf_err("zstd: %s", ZSTD_getErrorName(r));
    }
    *out = p;
    *len = r;
    return 0;
}

int bf_cz_pack(bf_cz_codec c, const uint8_t *in, size_t n, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    return c == BF_CZ_ZSTD ? pack_zstd(in, n, out, len) : pack_xz(in, n, out, len);
}

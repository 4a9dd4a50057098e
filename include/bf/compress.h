/* bf/compress.h — model archives: a stream's tensors, each coded by a
 * method, in one compressed tar (part: compress; bf-compress(1)).
 *
 * An archive is a ustar tar filtered with xz or zstd that holds
 *   manifest.json   the source stream's kind, meta and lineage, and for
 *                   every tensor its name, dtype, shape, meta, method, member
 *                   bytes, bits a weight and the method's parameters
 *   t/000000.bin …  one member per tensor, in stream order: its payload
 *                   under its method (member names never come from tensor
 *                   names)
 * bf_compress builds one in memory; bf_cz_open reads one tensor at a time
 * through libarchive's read API (nothing is ever extracted to disk),
 * checking every name, size and value before it allocates or returns. */
#ifndef BF_COMPRESS_H
#define BF_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "bf/stream.h"
#include "bf/tensor.h"
#include "bf/val.h"

typedef enum {
    BF_CZ_RAW,                                  /* payload bytes as they are (integer tensors) */
    BF_CZ_TQ2, BF_CZ_TQ1, BF_CZ_ENTROPY,        /* ternary codes */
    BF_CZ_F32, BF_CZ_F16, BF_CZ_INT8, BF_CZ_SEEDLM4, BF_CZ_SEEDLM3, BF_CZ_VQ,   /* float values */
    BF_CZ_NMETHODS
} bf_cz_method;

const char *bf_cz_method_name(bf_cz_method m);
int bf_cz_method_parse(const char *s, bf_cz_method *m);   /* 0, or -1 (bf_err) */
int bf_cz_method_ternary(bf_cz_method m);                  /* tq2, tq1, entropy */
int bf_cz_method_float(bf_cz_method m);                    /* f32 … vq */
int bf_cz_method_lossless(bf_cz_method m);                 /* raw, ternary, f32 */

typedef enum { BF_CZ_XZ, BF_CZ_ZSTD } bf_cz_codec;
const char *bf_cz_codec_name(bf_cz_codec c);
/* in[0..n) as one xz stream or zstd frame whose window the data need: a new
 * buffer in *out (free it), its length in *len (compress_codec.c). */
int bf_cz_pack(bf_cz_codec c, const uint8_t *in, size_t n, uint8_t **out, size_t *len);

/* ------------------------------------------------------------ the methods
 * Each takes a tensor's values and writes its member bytes; each decoder
 * checks its member completely and never reads outside it. */

/* The entropy coder: static order-0 rANS over the three codes, with the
 * frequencies quantized to BF_RANS_PROB_BITS bits in the member's header. */
#define BF_RANS_PROB_BITS 15
size_t bf_rans_bound(uint64_t n);      /* the most bytes bf_rans_encode writes for n codes */
/* codes: n values in {-1, 0, +1}; out: bf_rans_bound(n) bytes.  Returns the length. */
size_t bf_rans_encode(const int8_t *codes, uint64_t n, uint8_t *out);
/* Exactly len bytes in, n codes out; -1 (bf_err) on any inconsistency. */
int bf_rans_decode(const uint8_t *in, size_t len, int8_t *codes, uint64_t n);
/* The empirical order-0 entropy of counts of -1, 0, +1, bits a code (0 for none). */
double bf_code_entropy(const uint64_t counts[3]);

/* SeedLM.  Blocks of C consecutive values (row-major, the last one padded
 * with zeros) each ≈ U(s)·t: U(s) is C×P, U[i][j] = (x − 32768)/32768 with x
 * the LFSR's state after i·P + j + 1 steps from s (bf_lfsr16_step); t is P
 * 4-bit signed mantissas m (−8..7) times 2^(e + base) with one 4-bit
 * exponent e a block and one base exponent a tensor (in the member header). */
typedef struct { int c, p; } bf_seedlm_shape;
#define BF_SEEDLM4 ((bf_seedlm_shape){8, 3})    /* 32 bits per 8 weights */
#define BF_SEEDLM3 ((bf_seedlm_shape){12, 4})   /* 36 bits per 12 weights */
/* One step of the 16-bit LFSR: feedback = bit 0 ^ bit 1 ^ bit 3 ^ bit 12,
 * state = (state >> 1) | feedback << 15.  State 0 stays 0, so seeds are 1..65535. */
static inline uint16_t bf_lfsr16_step(uint16_t s)
{
    unsigned fb = (s ^ (s >> 1) ^ (s >> 3) ^ (s >> 12)) & 1u;
    return (uint16_t)((s >> 1) | (fb << 15));
}
void bf_seedlm_basis(bf_seedlm_shape sh, uint16_t seed, double *u);   /* u[i·P + j] */
uint64_t bf_seedlm_bytes(bf_seedlm_shape sh, uint64_t n);
/* Exhaustive search over the 65535 seeds, blocks split over the thread pool
 * (bf/thread.h; the bytes do not depend on the thread count).  w must be
 * finite.  out: bf_seedlm_bytes(sh, n) bytes.  -1 (bf_err) on no memory. */
int bf_seedlm_encode(bf_seedlm_shape sh, const float *w, uint64_t n, uint8_t *out);
int bf_seedlm_decode(bf_seedlm_shape sh, const uint8_t *in, size_t len, float *w, uint64_t n);

/* Vector quantization: vectors of BF_VQ_DIM consecutive values (the last
 * padded with zeros), k-means (k-means++ start from `seed`, Lloyd
 * iterations), a codebook of up to BF_VQ_K F16 vectors, one index byte a
 * vector. */
#define BF_VQ_DIM 4
#define BF_VQ_K 256
#define BF_VQ_ITERS 25
uint64_t bf_vq_bytes(uint64_t n);
int bf_vq_encode(const float *w, uint64_t n, uint64_t seed, uint8_t *out);
int bf_vq_decode(const uint8_t *in, size_t len, float *w, uint64_t n);

/* Int8: per row (the first dim; one row for a vector) an F32 scale
 * absmax/127, then round(w/scale) as int8. */
uint64_t bf_int8_bytes(uint64_t rows, uint64_t cols);
void bf_int8_encode(const float *w, uint64_t rows, uint64_t cols, uint8_t *out);
int bf_int8_decode(const uint8_t *in, size_t len, float *w, uint64_t rows, uint64_t cols);

/* A tensor's member under method m (a method that fits its dtype): a new
 * buffer in *out (free it), its length in *len; for entropy, *entropy the
 * codes' order-0 entropy in bits a weight (NaN otherwise).  seed: vq's. */
int bf_cz_encode(bf_cz_method m, const bf_tensor *t, uint64_t seed, uint8_t **out, size_t *len, double *entropy);
/* The inverse: t has name, dtype and shape set and its payload allocated. */
int bf_cz_decode(bf_cz_method m, const uint8_t *in, size_t len, bf_tensor *t);

/* ------------------------------------------------------------ the archive */

typedef struct {
    const char *pattern;     /* fnmatch(3) on the tensor name */
    bf_cz_method method;
} bf_cz_rule;

typedef struct {
    bf_cz_method ternary;    /* the codes of ternary tensors W */
    bf_cz_method flt;        /* float tensors of 2 or more dims (W.latent too) */
    const bf_cz_rule *rules; /* later rules win; each must match a tensor */
    size_t nrules;
    bf_cz_codec codec;
    uint64_t seed;           /* vq's k-means */
} bf_cz_opts;

typedef struct {
    char name[BF_MAX_NAME + 1];
    bf_cz_method method;
    uint64_t numel;
    uint64_t payload;        /* member bytes before the codec */
    uint64_t bytes;          /* the member compressed alone by the codec, less the
                              * codec's frame (measured around one byte) */
    double entropy;          /* bits a weight of the codes, NaN unless entropy */
} bf_cz_item;

typedef struct {
    bf_cz_item *items;
    size_t n;
    bf_cz_codec codec;
    uint64_t total_bytes;    /* the archive */
    uint64_t f32_bytes;      /* 4 bytes for every value of every tensor but W.scale and W.latent */
} bf_cz_report;

/* Compresses header h and set s into a new buffer *out of *len bytes. */
int bf_compress(const bf_header *h, const bf_tset *s, const bf_cz_opts *o, uint8_t **out, size_t *len, bf_cz_report *rep);
void bf_cz_report_release(bf_cz_report *r);
/* The report as {total_bytes, ratio_f32, codec, tensors: [{name, method,
 * bytes, payload_bytes, bits_per_weight[, entropy_bits]}]}. */
bf_val *bf_cz_report_json(const bf_cz_report *r);

/* Reading limits. */
#define BF_CZ_MAX_MANIFEST (16u << 20)
#define BF_CZ_MAX_TENSORS 1000000
/* restored payload bytes, at most: this much plus BF_CZ_MAX_EXPANSION
 * times the archive bytes read so far */
#define BF_CZ_RESTORE_SLACK ((uint64_t)256 << 20)
#define BF_CZ_MAX_EXPANSION 4096

typedef struct bf_cz_reader bf_cz_reader;
/* path NULL or "-": stdin.  Reads and checks the manifest; NULL and bf_err. */
bf_cz_reader *bf_cz_open(const char *path);
/* An archive held in memory: len bytes at buf, which must stay as they are
 * until bf_cz_close.  The same checks as bf_cz_open. */
bf_cz_reader *bf_cz_memopen(const void *buf, size_t len, const char *label);
const bf_header *bf_cz_header(const bf_cz_reader *r);   /* kind, meta, lineage */
/* 1: *t holds the next tensor (bf_tensor_release it); 0: all read, and the
 * archive ends there (and 0 again on every later call); -1: bf_err. */
int bf_cz_next(bf_cz_reader *r, bf_tensor *t);
void bf_cz_close(bf_cz_reader *r);

#endif

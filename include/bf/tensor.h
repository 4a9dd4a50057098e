/* bf/tensor.h — dtypes, tensors and named sets of tensors (part: stream). */
#ifndef BF_TENSOR_H
#define BF_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "bf/dtype.h"
#include "bf/val.h"

#define BF_MAX_DIMS 8
#define BF_MAX_NAME 255

const char *bf_dtype_name(bf_dtype dt);
int bf_dtype_parse(const char *s, bf_dtype *out);  /* 0, or -1 if unknown */
int bf_dtype_is_ternary(bf_dtype dt);
size_t bf_dtype_size(bf_dtype dt);                 /* element bytes; 0 for packed ternary */

typedef struct {
    char name[BF_MAX_NAME + 1];
    bf_dtype dtype;
    int ndim;
    uint64_t shape[BF_MAX_DIMS];
    uint64_t nbytes;
    void *data;       /* 64-byte aligned, nbytes long; NULL when nbytes is not loaded */
    size_t mapped;    /* non-zero: data is an anonymous mapping of this length */
    bf_val *meta;     /* the tensor-header meta map, or NULL */
} bf_tensor;

/* The payload size of dtype and shape, overflow-checked.  Ternary dtypes
 * need exactly 2 dims [rows, cols]; each row starts on a byte. */
int bf_tensor_size(bf_dtype dt, int ndim, const uint64_t *shape, uint64_t *nbytes);
uint64_t bf_tensor_numel(const bf_tensor *t);

/* Sets name, dtype, shape and nbytes, and allocates zeroed payload memory.
 * Returns -1 (bf_err) on a bad name, shape or allocation failure. */
int bf_tensor_init(bf_tensor *t, const char *name, bf_dtype dt, int ndim, const uint64_t *shape);
void bf_tensor_release(bf_tensor *t);   /* frees payload and meta; t may be reused */

/* Payload memory: small sizes come from posix_memalign, large ones from an
 * anonymous mapping that can grow in place as bytes arrive (mremap). */
int bf_payload_alloc(bf_tensor *t, size_t n);
int bf_payload_grow(bf_tensor *t, size_t n);   /* keeps contents; only for mapped payloads */
void bf_payload_free(bf_tensor *t);

/* F16 and BF16 conversions (round to nearest even; NaN stays NaN). */
float bf_f16_to_f32(uint16_t h);
uint16_t bf_f32_to_f16(float f);
float bf_bf16_to_f32(uint16_t h);
uint16_t bf_f32_to_bf16(float f);

/* A tensor's values as F32 in `out` (numel floats): F32, F16, BF16, I8, U8,
 * I32, I64 convert; ternary tensors give their codes (-1, 0, +1). */
int bf_tensor_to_f32(const bf_tensor *t, float *out);

/* A named set of tensors, in stream order. */
typedef struct {
    bf_tensor *t;
    size_t n, cap;
} bf_tset;

bf_tensor *bf_tset_find(const bf_tset *s, const char *name);
bf_tensor *bf_tset_add(bf_tset *s);           /* a new zeroed slot at the end */
void bf_tset_remove(bf_tset *s, const char *name);
void bf_tset_release(bf_tset *s);
/* XXH3-64 of every tensor's name, dtype, shape and payload, in order: what
 * an adapter or expert records of the base model it was made for. */
uint64_t bf_tset_digest(const bf_tset *s);

#endif

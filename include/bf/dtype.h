/* bf/dtype.h — the element types of tensors, as a plain enum (part: support).
 *
 * Names and sizes are the stream's business (bf/tensor.h); parts that only
 * need to say "TQ2 or TQ1" (the kernels, the quantizers) include this alone. */
#ifndef BF_DTYPE_H
#define BF_DTYPE_H

typedef enum {
    BF_F32, BF_F16, BF_BF16, BF_I8, BF_U8, BF_I32, BF_I64, BF_TQ2, BF_TQ1,
    BF_NDTYPES
} bf_dtype;

#endif

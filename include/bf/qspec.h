/* bf/qspec.h — how a ternary weight is quantized, as a plain value (part: support).
 *
 * The quantizers compute with it (bf/quant.h); a ternary tensor's meta
 * records it ({"method", "threshold", "per_row"}, bf/tgroup.h); the model's
 * ternary weight source re-quantizes its latent weights with it. */
#ifndef BF_QSPEC_H
#define BF_QSPEC_H

#include <stddef.h>

#include "bf/dtype.h"

typedef enum { BF_Q_NONE, BF_Q_ABSMEAN, BF_Q_THRESHOLD } bf_qmethod;

typedef struct {
    bf_qmethod method;
    float tau;        /* threshold */
    int per_row;      /* absmean: one scale per row; threshold: always per row */
    bf_dtype pack;    /* BF_TQ2 or BF_TQ1 */
} bf_qspec;

/* Scales the rule produces: 1, or rows. */
static inline size_t bf_qspec_nscales(const bf_qspec *q, size_t rows)
{
    return (q->method == BF_Q_THRESHOLD || q->per_row) ? rows : 1;
}

#endif

/* bf/tgroup.h — the ternary-tensor group of a stream (part: stream).
 *
 * A ternary weight W travels as up to three tensors (bf-stream(5)):
 *   W          TQ2 or TQ1 codes, [rows, cols]; its meta says how it was made:
 *              {"method": "absmean"|"threshold", "threshold": τ, "per_row": bool}
 *   W.scale    F32 [1] (per tensor) or [rows] (per output row): W ≈ scale·codes
 *   W.latent   optional F32 [rows, cols]: the full-precision weights that
 *              straight-through training updates
 * This module is the one place that knows the convention: finding and
 * validating a group, reading its codes and scale·codes, and making the
 * tensors of a new group.  Every program and the model go through it. */
#ifndef BF_TGROUP_H
#define BF_TGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "bf/qspec.h"
#include "bf/tensor.h"

typedef struct {
    const bf_tensor *codes, *scale, *latent;   /* latent may be NULL */
    size_t rows, cols, nscales;
    bf_qspec q;                                /* from the codes' meta; q.pack = their dtype */
} bf_tgroup;

/* "W.scale" / "W.latent" of W into out[BF_MAX_NAME + 1]; -1 if too long. */
int bf_tgroup_part_name(char *out, const char *w, const char *part);
/* For "X.scale" or "X.latent": the length of X, and *part "scale" or
 * "latent"; 0 for any other name. */
size_t bf_tgroup_split_name(const char *name, const char **part);

/* Validates a group made of these tensors (latent may be NULL): ternary
 * codes of 2 dims; an F32 scale of 1 or rows finite entries; a finite F32
 * latent of the codes' shape; a meta that parses.  -1 and a message naming
 * the offending tensor. */
int bf_tgroup_check(bf_tgroup *g, const bf_tensor *codes, const bf_tensor *scale, const bf_tensor *latent);
/* The same for the group of ternary tensor `name` in a set (its scale must be there). */
int bf_tgroup_find(bf_tgroup *g, const bf_tset *s, const char *name);

/* The scale of row r. */
static inline float bf_tgroup_row_scale(const bf_tgroup *g, size_t r)
{
    return ((const float *)g->scale->data)[g->nscales == 1 ? 0 : r];
}
/* Row r's codes in {-1, 0, +1} (cols of them). */
void bf_tgroup_codes_row(const bf_tgroup *g, size_t r, int8_t *codes);
/* scale·codes, [rows, cols]: the weight the group stands for. */
void bf_tgroup_dequant(const bf_tgroup *g, float *out);

/* The tensors of a new group W (codes [rows·cols] in {-1,0,1}, scale[nscales],
 * latent [rows·cols] or NULL) into out[0..2] (out[2] zeroed without a latent);
 * each tensor owns its memory.  -1 on a bad name or no memory. */
int bf_tgroup_make(bf_tensor out[3], const char *name, const bf_qspec *q, const int8_t *codes, const float *scale,
                   size_t rows, size_t cols, const float *latent);

/* The meta of a ternary tensor, and back (nscales: the scale's length,
 * which says whether an absmean scale is per row). */
bf_val *bf_qspec_to_meta(const bf_qspec *q);
int bf_qspec_from_meta(const bf_val *meta, bf_dtype pack, size_t nscales, size_t rows, bf_qspec *q);

#endif

/* bf/dataset.h — data sets as streams (part: data; the format in
 * bf-stream(5) and bitforge(7)): loading, checking, building.  A model's
 * metrics on a data set are the model part's (bf/data.h).
 *
 * A data stream holds train.x, train.y, val.x, val.y: I32 [rows, T]; y is the
 * next-token target at each position, -1 where no loss is taken. */
#ifndef BF_DATASET_H
#define BF_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "bf/rng.h"
#include "bf/stream.h"

/* The largest vocabulary and context a data set or a model may have: they
 * keep every size computation far from overflow (bf/config.h has the rest). */
#define BF_MAX_VOCAB (1 << 20)
#define BF_MAX_CTX (1 << 16)

typedef struct {
    const int32_t *x, *y;   /* [rows, T] */
    size_t rows, T;
} bf_split;

typedef struct {
    bf_header h;
    bf_tset s;
    int vocab, ctx;
    bf_split train, val;
} bf_dataset;

int bf_data_load(const char *path, bf_dataset *d);    /* reads, verifies, checks tokens */
void bf_data_free(bf_dataset *d);
const bf_split *bf_data_split(const bf_dataset *d, const char *name);   /* "train" / "val" */

/* Building data sets (bf-data). */
typedef struct {
    int32_t *x, *y;
    size_t rows, cap, T;
} bf_rows;

void bf_rows_init(bf_rows *r, size_t T);
int32_t *bf_rows_add(bf_rows *r);       /* a new row of x (and y after it), filled with pad */
void bf_rows_free(bf_rows *r);
/* The tensors of a data stream: train and val rows.  -1 when memory runs out. */
int bf_data_to_tset(const bf_rows *train, const bf_rows *val, bf_tset *out);

#endif

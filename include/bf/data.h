/* bf/data.h — data sets (part: model; the format in bf-stream(5) and
 * bitforge(7)): loading, checking, building, and a model's metrics on them.
 *
 * A data stream holds train.x, train.y, val.x, val.y: I32 [rows, T]; y is the
 * next-token target at each position, -1 where no loss is taken. */
#ifndef BF_DATA_H
#define BF_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "bf/config.h"
#include "bf/model.h"
#include "bf/rng.h"
#include "bf/stream.h"

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
/* Model and data agree: same vocab, rows no longer than the model's ctx. */
int bf_data_check_model(const bf_dataset *d, const bf_config *c, const char *label);
const bf_split *bf_data_split(const bf_dataset *d, const char *name);   /* "train" / "val" */

typedef struct {
    size_t rows, targets;
    double loss, token_acc, exact;
} bf_metrics;

/* Metrics summed over forwards: bf_tally_batch after each forward of B
 * whole rows (its mean loss), bf_tally_done at the end. */
typedef struct {
    double loss;                         /* Σ per-position losses */
    size_t targets, correct, exact, scored;
} bf_tally;
void bf_tally_batch(bf_tally *t, const bf_model *m, double mean_loss, int B);
void bf_tally_done(const bf_tally *t, size_t rows, bf_metrics *out);

/* Mean loss over targeted positions, token accuracy, exact match, in
 * batches of `batch` rows (the model's forward, no gradient).  -1 (bf_err)
 * when the forward cannot get its memory. */
int bf_eval_split(bf_model *m, const bf_split *s, int batch, bf_metrics *out);
/* The same, one position at a time with a key/value cache (as generation
 * runs): equal metrics, the cost profile of decoding. */
int bf_eval_split_incremental(bf_model *m, const bf_split *s, int batch, bf_metrics *out);

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

/* bf/data.h — a model on a data set (part: model): whether they agree, and
 * the model's metrics on a split.  The data sets themselves: bf/dataset.h. */
#ifndef BF_DATA_H
#define BF_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "bf/config.h"
#include "bf/dataset.h"
#include "bf/model.h"

/* Model and data agree: same vocab, rows no longer than the model's ctx. */
int bf_data_check_model(const bf_dataset *d, const bf_config *c, const char *label);

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
/* In a job (bf/dist.h) bf_eval_split shares the batches among the ranks
 * (every rank must call it); this one evaluates every batch in this process
 * alone (a rank scoring a candidate of its own).  The metrics are the same
 * bits either way. */
int bf_eval_split_alone(bf_model *m, const bf_split *s, int batch, bf_metrics *out);
/* The same, one position at a time with a key/value cache (as generation
 * runs): equal metrics, the cost profile of decoding. */
int bf_eval_split_incremental(bf_model *m, const bf_split *s, int batch, bf_metrics *out);

#endif

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
/* The same checks on a stream already read (bf_read_all, bf_read_all_mem):
 * takes h and s over into d, which keeps them (on failure too: they are
 * released and left empty).  label names the input in messages. */
int bf_data_from_tset(const char *label, bf_header *h, bf_tset *s, bf_dataset *d);
void bf_data_free(bf_dataset *d);
const bf_split *bf_data_split(const bf_dataset *d, const char *name);   /* "train" / "val" */

/* Building data sets (bf-data). */
typedef struct {
    int32_t *x, *y;
    size_t rows, cap, T;
} bf_rows;

void bf_rows_init(bf_rows *r, size_t T);
int32_t *bf_rows_add(bf_rows *r);       /* a new row of x (and y after it), filled with pad */
void bf_rows_drop(bf_rows *r);          /* takes the last row away again */
void bf_rows_free(bf_rows *r);

/* Keeping val rows held out: no val row's x may equal a train row's x (x
 * alone, whatever y says; bf-data(1)).  A set of 64-bit keys, such as
 * bf_row_key's hash of a row's x.  Two different rows with the same key
 * (odds 2^-64 a pair) count as equal: a row may be turned away that needed
 * not be, but none is let through that equals one in the set. */
typedef struct {
    uint64_t *slot;
    size_t cap, n;
} bf_keyset;

uint64_t bf_row_key(const int32_t *x, size_t T);
int bf_keyset_add(bf_keyset *s, uint64_t key);        /* 1 if it was there, else adds it: 0 */
int bf_keyset_has(const bf_keyset *s, uint64_t key);
void bf_keyset_free(bf_keyset *s);
/* The tensors of a data stream: train and val rows.  -1 when memory runs out. */
int bf_data_to_tset(const bf_rows *train, const bf_rows *val, bf_tset *out);

#endif

/* bf/tasks.h — generated data sets (part: data; bf-data(1)). */
#ifndef BF_TASKS_H
#define BF_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "bf/dataset.h"

typedef enum { BF_MOD_ADD, BF_MOD_SUB, BF_MOD_MUL, BF_MOD_DIV } bf_modarith_op;
typedef enum { BF_SEQ_COPY, BF_SEQ_REVERSE, BF_SEQ_SORT, BF_SEQ_INCREMENT } bf_seq_task;
extern const char *const bf_modarith_ops[];
extern const char *const bf_seq_tasks[];

typedef struct {
    bf_modarith_op op;
    int p;
    double frac;
    uint64_t seed;
} bf_modarith_cfg;

typedef struct {
    bf_seq_task task;
    int min_len, max_len;
    const char *prompt;       /* one fixed instruction before every row, or NULL */
    size_t n_train, n_val;
    uint64_t seed;
    unsigned mix;             /* non-zero: a mixture, bit k = task k, each row drawn */
    int no_prompt;            /* a mixture's rows without their instructions */
} bf_seq_cfg;
/* A mixture's instruction for each task: "Copy: ", "Reverse: ", … */
extern const char *const bf_seq_instructions[];

typedef struct {
    const char *file;
    int ctx;
    double val_frac;
} bf_text_cfg;

typedef struct {
    int size;                  /* 4, 6 or 9 */
    int holes_min, holes_max;  /* each puzzle's blanks, drawn in this range */
    int augment;               /* relabeled, shuffled copies of each train puzzle */
    size_t n_train, n_val;
    uint64_t seed;
} bf_sudoku_cfg;

/* Sudoku (lib/data/sudoku.c): S×S grids, boxes 2×2, 2×3 or 3×3; x the
 * puzzle (0 blank, 1…S), y the solution on the blanks, -1 on the givens. */
int bf_sudoku_shape(int S, int *box_rows, int *box_cols);   /* 0, or -1 for another size */
int bf_sudoku_max_holes(int S);                             /* 12, 27, 59 */
/* Solutions of grid (0: blank), counting up to limit; the first found into
 * solution (may be NULL); guesses: the solver's branchings (may be NULL). */
int bf_sudoku_solutions(int S, const uint8_t *grid, int limit, uint8_t *solution, long *guesses);
/* 1 when grid is full and breaks no rule. */
int bf_sudoku_valid(int S, const uint8_t *grid);

/* Checks a configuration without building anything: 0, or -1 with bf_err. */
int bf_task_sudoku_check(const bf_sudoku_cfg *c);
int bf_task_modarith_check(const bf_modarith_cfg *c);
int bf_task_seq_check(const bf_seq_cfg *c);

/* Each fills a data header and tensor set, or returns -1 with bf_err. */
int bf_task_modarith(const bf_modarith_cfg *c, bf_header *h, bf_tset *out);
int bf_task_seq(const bf_seq_cfg *c, bf_header *h, bf_tset *out);
int bf_task_text(const bf_text_cfg *c, bf_header *h, bf_tset *out);
int bf_task_sudoku(const bf_sudoku_cfg *c, bf_header *h, bf_tset *out);

#endif

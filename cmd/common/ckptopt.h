/* ckptopt.h — checkpoint flags of the training programs:
 *
 *   --state FILE --state-every N --resume FILE
 *
 * With --state, SIGINT and SIGTERM no longer end the program at once: the
 * run saves its state after the step in progress, then the program exits 1
 * with a line that says how to resume, writing no output. */
#ifndef BF_CKPTOPT_H
#define BF_CKPTOPT_H

#include "cli.h"
#include "bf/train.h"

enum { BF_CK_STATE = 1400, BF_CK_STATE_EVERY, BF_CK_RESUME };

#define BF_OPTS_CKPT                                                                                       \
    {"state", required_argument, 0, BF_CK_STATE}, {"state-every", required_argument, 0, BF_CK_STATE_EVERY}, \
    {"resume", required_argument, 0, BF_CK_RESUME}

#define BF_USAGE_CKPT                                                                                      \
    "  --state FILE       checkpoints: the run's state to FILE every --state-every\n"                           \
    "                     steps, and on SIGINT or SIGTERM (then exit 1, no output)\n"                           \
    "  --state-every N    steps between checkpoints (default 100)\n"                                            \
    "  --resume FILE      continue the run whose state FILE holds (the same other\n"                            \
    "                     arguments): the same output, bit for bit, as if never stopped\n"

typedef struct {
    const char *state_path, *resume_path;
    int every, every_given;
    bf_checkpoint ck;
    bf_header h;               /* the resume state, once read */
    bf_tset t;
} bf_ckptopt;

/* 1 if c was a checkpoint flag (and applied), 0 otherwise. */
int bf_ckptopt_handle(bf_ckptopt *o, int c, const char *arg);
/* After parsing: --state-every needs --state; the default interval. */
void bf_ckptopt_finish(bf_ckptopt *o);
/* The run's checkpoint (NULL without --state and --resume): the resume
 * state read (dies on a bad one), the signal handlers in place. */
const bf_checkpoint *bf_ckptopt_begin(bf_ckptopt *o, uint64_t model_digest);
/* After the run (rc its result): interrupted, dies with the line that says
 * where the state is; otherwise frees what begin read. */
void bf_ckptopt_end(bf_ckptopt *o, int rc);

#endif

/* trainopt.h — the training flags every training program shares.
 *
 *   --data D --steps N --batch B --lr X --wd X --warmup N
 *   --schedule cosine|constant --clip X --beta1 X --beta2 X --eps X
 *   --opt adamw|adam|sgd --eval-every N --eval-batch N --stop-exact X --log F --ema X
 *
 * A recursive model (bitforge(7), bf/trm.h) trains with deep supervision:
 * bf_trainopt_run calls bf_trm_train instead of bf_train. */
#ifndef BF_TRAINOPT_H
#define BF_TRAINOPT_H

#include <stdio.h>

#include "ckptopt.h"
#include "cli.h"
#include "bf/optim.h"
#include "bf/train.h"

enum {
    BF_TO_DATA = 1200, BF_TO_STEPS, BF_TO_BATCH, BF_TO_LR, BF_TO_WD, BF_TO_WARMUP, BF_TO_SCHEDULE, BF_TO_CLIP,
    BF_TO_BETA1, BF_TO_BETA2, BF_TO_EPS, BF_TO_OPT, BF_TO_EVAL_EVERY, BF_TO_EVAL_BATCH, BF_TO_STOP_EXACT, BF_TO_LOG,
    BF_TO_GROKFAST, BF_TO_GF_ALPHA, BF_TO_GF_LAMBDA, BF_TO_GF_WINDOW, BF_TO_MOMENTUM, BF_TO_NS_STEPS, BF_TO_NS_EACH_RANK,
    BF_TO_FALLBACK, BF_TO_FALLBACK_LR, BF_TO_EMA, BF_TO_ON_NAN
};

#define BF_OPTS_TRAIN                                                                                        \
    {"data", required_argument, 0, BF_TO_DATA}, {"steps", required_argument, 0, BF_TO_STEPS},               \
    {"batch", required_argument, 0, BF_TO_BATCH}, {"lr", required_argument, 0, BF_TO_LR},                   \
    {"wd", required_argument, 0, BF_TO_WD}, {"warmup", required_argument, 0, BF_TO_WARMUP},                 \
    {"schedule", required_argument, 0, BF_TO_SCHEDULE}, {"clip", required_argument, 0, BF_TO_CLIP},        \
    {"beta1", required_argument, 0, BF_TO_BETA1}, {"beta2", required_argument, 0, BF_TO_BETA2},             \
    {"eps", required_argument, 0, BF_TO_EPS}, {"eval-every", required_argument, 0, BF_TO_EVAL_EVERY},       \
    {"eval-batch", required_argument, 0, BF_TO_EVAL_BATCH},                                                  \
    {"stop-exact", required_argument, 0, BF_TO_STOP_EXACT}, {"log", required_argument, 0, BF_TO_LOG},          \
    {"grokfast", required_argument, 0, BF_TO_GROKFAST}, {"grokfast-alpha", required_argument, 0, BF_TO_GF_ALPHA}, \
    {"grokfast-lambda", required_argument, 0, BF_TO_GF_LAMBDA},                                              \
    {"grokfast-window", required_argument, 0, BF_TO_GF_WINDOW}, {"momentum", required_argument, 0, BF_TO_MOMENTUM}, \
    {"ns-steps", required_argument, 0, BF_TO_NS_STEPS}, {"fallback", required_argument, 0, BF_TO_FALLBACK},     \
    {"ns-each-rank", no_argument, 0, BF_TO_NS_EACH_RANK},                                                    \
    {"fallback-lr", required_argument, 0, BF_TO_FALLBACK_LR}, {"ema", required_argument, 0, BF_TO_EMA},       \
    {"on-nan", required_argument, 0, BF_TO_ON_NAN}, BF_OPTS_CKPT

/* The shared flags' help; each program documents --lr (its default differs)
 * and puts BF_USAGE_MUON where Muon applies. */
#define BF_USAGE_TRAIN                                                                                        \
    "  --data DATA        the data stream to train on (required)\n"                                           \
    "  --steps N          optimizer steps (default 1000)\n"                                                   \
    "  --batch N          rows per step (default 64; at least the split: whole split in order)\n"             \
    "  --wd X             weight decay on 2-D parameters (default 0)\n"                                       \
    "  --warmup N         linear warm-up steps (default 0)\n"                                                 \
    "  --schedule cosine|constant  after warm-up (default cosine, down to lr/10)\n"                           \
    "  --clip X           clip the gradient's global L2 norm (default 1; 0: off)\n"                           \
    "  --beta1 X --beta2 X --eps X   Adam moments (default 0.9, 0.95, 1e-8)\n"                                \
    "  --eval-every N     evaluate on the val split every N steps (default: at the end)\n"                    \
    "  --eval-batch N     rows per evaluation forward (default 256)\n"                                        \
    "  --stop-exact X     stop at an evaluation whose val exact match is at least X\n"                        \
    "  --log FILE         append one JSON object per logged step to FILE\n"                                   \
    "  --ema X            keep an exponential average of the weights (decay X, e.g.\n"                       \
    "                     0.999); evaluations and the written model are the average\n"                       \
    "  --grokfast ema|ma|off  Grokfast gradient filter before the optimizer\n"                                \
    "  --grokfast-alpha X EMA: h = a·h + (1-a)·g (default 0.98)\n"                                             \
    "  --grokfast-lambda X  g += lambda·h (default 2 for ema, 5 for ma)\n"                                     \
    "  --grokfast-window N  MA: the last N gradients (default 100)\n"                                         \
    "  --on-nan stop|skip a step whose loss or gradient is not finite: stop the run\n"                          \
    "                     (exit 1, the step named; default) or pass it by\n"                                  \
    BF_USAGE_CKPT

#define BF_USAGE_MUON                                                                                         \
    "  --momentum X       Muon's Nesterov momentum (default 0.95)\n"                                           \
    "  --ns-steps N       quintic Newton-Schulz steps (default 5)\n"                                           \
    "  --ns-each-rank     in an MPI job, every rank orthogonalizes every matrix (the\n"                       \
    "                     same result; to measure what sharing them saves)\n"                                 \
    "  --fallback adamw|sgd  for embeddings, head and 1-D parameters (default adamw)\n"                        \
    "  --fallback-lr X    the fallback's peak lr (default 1e-3)\n"

typedef struct {
    const char *data, *log_path;
    FILE *log;                 /* --log, opened by bf_trainopt_finish */
    int progress;              /* draw a progress line on stderr */
    int line_open;             /* a progress line without its newline yet */
    bf_train_cfg train;
    bf_optim_cfg optim;
    bf_ckptopt ckpt;                        /* --state, --state-every, --resume */
    uint64_t model_digest;                  /* the input model's: the program sets it (bf_cli_read_model) */
    unsigned given;            /* which optimizer flags were given (bit per BF_TO_ code) */
} bf_trainopt;

#define BF_TO_GIVEN(t, code) (((t)->given >> ((code) - BF_TO_DATA)) & 1u)

void bf_trainopt_default(bf_trainopt *t);
/* 1 if c was a training flag (and applied), 0 otherwise. */
int bf_trainopt_handle(bf_trainopt *t, int c, const char *arg);
/* After parsing: checks --data, opens --log, takes --seed and progress. */
void bf_trainopt_finish(bf_trainopt *t);

/* What a training program does once its model is loaded: load and check the
 * data (and the KL reference, if any), train, write the model to -o or
 * stdout with h's meta and lineage (latents kept unless strip).  Dies with
 * a message on any failure; frees the model, the reference and h. */
void bf_trainopt_run(bf_trainopt *t, bf_model *m, bf_model *ref, const char *ref_label, bf_header *h, int strip);

#endif

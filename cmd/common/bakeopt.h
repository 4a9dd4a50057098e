/* bakeopt.h — the baking flags bf-bake and bf-halfbake share.
 *
 *   --rank R --alpha A --targets LIST --steps N --batch N --lr X
 *   --warmup N --schedule cosine|constant --keep DATA (repeatable)
 *   --keep-weight L --full | --lora --merge quant|latent
 *
 * The method: an adapter (--lora) or the model's own matrices (--full).
 * Unless one is given, a ternary model bakes --full and a float one through
 * an adapter, and an adapter option (--rank, --alpha, --merge, or a
 * program's adapter output) asks for an adapter.  The learning rate decays
 * (cosine) on a ternary model unless --schedule says otherwise. */
#ifndef BF_BAKEOPT_H
#define BF_BAKEOPT_H

#include "cli.h"
#include "bf/bake.h"
#include "bf/lora.h"

#define BF_BAKE_MAX_KEEP 16

enum {
    BF_BO_RANK = 1300, BF_BO_ALPHA, BF_BO_TARGETS, BF_BO_STEPS, BF_BO_BATCH, BF_BO_LR, BF_BO_WARMUP, BF_BO_SCHEDULE,
    BF_BO_KEEP, BF_BO_KEEP_WEIGHT, BF_BO_KEEP_REF, BF_BO_FULL, BF_BO_LORA, BF_BO_MERGE, BF_BO_ON_NAN
};

#define BF_OPTS_BAKE                                                                                          \
    {"rank", required_argument, 0, BF_BO_RANK}, {"alpha", required_argument, 0, BF_BO_ALPHA},                \
    {"targets", required_argument, 0, BF_BO_TARGETS}, {"steps", required_argument, 0, BF_BO_STEPS},         \
    {"batch", required_argument, 0, BF_BO_BATCH}, {"lr", required_argument, 0, BF_BO_LR},                   \
    {"warmup", required_argument, 0, BF_BO_WARMUP}, {"schedule", required_argument, 0, BF_BO_SCHEDULE},     \
    {"keep", required_argument, 0, BF_BO_KEEP}, {"keep-weight", required_argument, 0, BF_BO_KEEP_WEIGHT},   \
    {"keep-ref", required_argument, 0, BF_BO_KEEP_REF},                                                      \
    {"full", no_argument, 0, BF_BO_FULL}, {"lora", no_argument, 0, BF_BO_LORA},                              \
    {"merge", required_argument, 0, BF_BO_MERGE}, {"on-nan", required_argument, 0, BF_BO_ON_NAN}

#define BF_USAGE_BAKE                                                                                         \
    "  --full             train the --targets matrices themselves, straight through\n"                      \
    "                     on ternary ones (the default on a ternary model)\n"                               \
    "  --lora             train a LoRA adapter (the default on a float model)\n"                            \
    "  --rank R           LoRA rank (default 8)\n"                                                          \
    "  --alpha A          LoRA scale alpha; B·A is scaled by alpha/rank (default 16)\n"                     \
    "  --merge RULE       an adapter on ternary targets: quant (trained through the\n"                      \
    "                     quantizer, the student is what the merge writes; the\n"                           \
    "                     default) or latent (on scale·codes in float, merged into\n"                       \
    "                     the latent and quantized again: the seed's rule)\n"                               \
    "  --targets LIST     matrices: wq,wk,wv,wo,w1,w3,w2, attn, mlp, all (default attn)\n"                   \
    "  --keep DATA        rows whose behaviour must not change, read as they are\n"                         \
    "                     (repeatable): KL(model ‖ student) on them joins the loss\n"                       \
    "  --keep-weight L    the keep rows' weight in the loss (default 1)\n"                                  \
    "  --keep-ref MODEL   the behaviour the keep rows keep (default: the input model)\n"                   \
    "  --steps N          Adam steps (default 200)\n"                                                       \
    "  --batch N          rows per step (default 32; as many keep rows again)\n"                            \
    "  --lr X             Adam's learning rate (default 1e-3)\n"                                            \
    "  --warmup N         linear warm-up steps (default 0)\n"                                               \
    "  --schedule S       constant or cosine (down to lr/10 by the last step);\n"                           \
    "                     default cosine on a ternary model, constant otherwise\n"                       \
    "  --on-nan stop|skip a step whose loss or gradient is not finite ends the run\n"                        \
    "                     (stop, the default) or is passed by without an update\n"

typedef struct {
    int rank;
    double alpha;
    unsigned targets;
    const char *keep[BF_BAKE_MAX_KEEP];
    int nkeep;
    const char *keep_ref;                     /* --keep-ref MODEL, or NULL */
    bf_model ref;                             /* it, loaded by bf_bakeopt_setup */
    int full, lora, merge_latent, schedule;   /* schedule: a bf_schedule, or -1 by the model */
    int adapter_asked;                        /* --rank, --alpha or --merge given */
    bf_dataset keep_d[BF_BAKE_MAX_KEEP];
    const bf_dataset *keep_p[BF_BAKE_MAX_KEEP];
    bf_bake_cfg bake;
} bf_bakeopt;

void bf_bakeopt_default(bf_bakeopt *o);
/* 1 if c was a baking flag (and applied), 0 otherwise. */
int bf_bakeopt_handle(bf_bakeopt *o, int c, const char *arg);
/* After parsing: --full and --lora exclude each other and --full any
 * adapter option; adapter_out: the program will write an adapter. */
void bf_bakeopt_finish(bf_bakeopt *o, int adapter_out);
/* Once the model is read: the method and the schedule for it (returns 1
 * for --full), the keep sets (and --keep-ref) loaded and checked against it;
 * bake.keep.ref is --keep-ref's model or NULL (the program sets its own). */
int bf_bakeopt_setup(bf_bakeopt *o, const bf_model *m);
/* A new adapter for m as the flags say, at strength s, attached. */
void bf_bakeopt_adapter(const bf_bakeopt *o, bf_model *m, uint64_t seed, uint64_t digest, double strength, bf_adapter *a);
void bf_bakeopt_free(bf_bakeopt *o);

#endif

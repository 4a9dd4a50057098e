/* bf/train.h — the training loop that every training program shares, its
 * loss terms and post-step hooks (part: train).
 *
 * Batches: when the batch is at least the train split's size, every step
 * uses the whole split in order; otherwise the rows are visited in epochs,
 * each a fresh permutation drawn from the seed ("batches" stream), batch
 * after batch.  Learning rate: linear warm-up over `warmup` steps, then
 * constant, or cosine from lr down to lr/10 at the last step.  Gradients
 * are clipped to a global L2 norm of `clip` (0: no clipping).  On ternary
 * models the forward re-quantizes the latent weights every step (STE). */
#ifndef BF_TRAIN_H
#define BF_TRAIN_H

#include <signal.h>

#include "bf/data.h"
#include "bf/model.h"
#include "bf/optim.h"

typedef enum { BF_SCHED_COSINE, BF_SCHED_CONSTANT } bf_schedule;
extern const char *const bf_schedule_names[];

typedef struct bf_train_result bf_train_result;

/* What a step did, for the caller's log and progress line (the library
 * prints nothing). */
typedef struct {
    int step, steps;           /* steps done (1-based), of */
    double loss, lr, grad_norm, seconds;
    int evaluated_now;         /* the val split was evaluated at this step */
    const bf_train_result *res;   /* the run so far: val metrics, kl, clips */
} bf_train_step;

typedef void (*bf_train_hook)(void *ctx, const bf_train_step *s);

/* Checkpoints.  A run's state between two steps is everything the steps
 * after it depend on: for bf_train the parameter block, the optimizer's
 * moments, momentum, Grokfast filter and step count, the EMA, the batch
 * order (its generator, the epoch's permutation and the cursor) and the
 * steps done.  A loop hands one to save() every `every` steps (not after
 * the last), and after the step in progress once *interrupt is non-zero,
 * then stops with an error ("interrupted").  Given resume (a state an
 * earlier run saved), it checks that the state was made by the same
 * program for the same model, data and settings, restores it and continues
 * after its step: the run then ends with the same parameters, bit for bit,
 * as one that was never stopped. */
struct bf_state;
typedef struct {
    int every;                            /* > 0: a state every this many steps */
    const volatile sig_atomic_t *interrupt;   /* non-zero: save after the step in progress and stop */
    /* -1 and bf_err on failure; in a job (bf/dist.h) every rank calls it
     * with the same state, and the program writes rank 0's */
    int (*save)(void *ctx, const bf_header *h, const bf_tset *t);
    void *ctx;
    const bf_header *resume_h;            /* a state to continue from, or NULL */
    const bf_tset *resume_t;
    const char *resume_label;             /* names the resume state in its errors ("FILE: …"), or NULL */
    const char *program;                  /* recorded, checked on resume */
    uint64_t model_digest;                /* the input model's (bf_tset_digest), recorded, checked */
    /* An enclosing loop around the runs (bf-bake's prompt pursuit, a bake a
     * round): its pieces go into every state a run saves, before the run's
     * own; the program restores them itself (bf_checkpoint_resume_outer)
     * before it starts the run they belong to, which then takes only its own. */
    void (*outer)(struct bf_state *s, void *run);
    void *outer_run;
    size_t outer_taken;                   /* tensors of the resume state the outer pieces took */
} bf_checkpoint;

/* A state stream (bf-stream(5), kind "state"), made and read by one
 * function per loop that names every piece of its run: the same function
 * saves (the pieces go into the stream) and restores (they come back, each
 * checked for its dtype, length and meaning), so the two cannot drift
 * apart.  Meta: {program, model, data (hex digests), config (the loop's
 * settings as "key value" words), step, steps, vars: {NAME: integer},
 * rngs: {NAME: [state, has_spare, the spare's bits]}}; tensors NAME as the
 * pieces give them.  Errors stick: after the first, every call does
 * nothing, and bf_state_end reports it. */
typedef struct bf_state bf_state;
/* To save the state after `step` of `steps` steps. */
bf_state *bf_state_saving(const bf_checkpoint *k, const char *config, uint64_t data_digest, int step, int steps);
/* Whether s is saving (or restoring). */
int bf_state_is_saving(const bf_state *s);
/* A piece could not be made or restored (its bf_err said why): the error
 * sticks, as the calls' own do. */
void bf_state_fail(bf_state *s);
/* To restore k's resume state: program, model, data and config checked now
 * (config: the first setting that differs is named); *step gets its step. */
bf_state *bf_state_restoring(const bf_checkpoint *k, const char *config, uint64_t data_digest, int steps, int *step);
void bf_state_floats(bf_state *s, const char *name, float *p, size_t n);   /* restored: finite */
void bf_state_doubles(bf_state *s, const char *name, double *p, size_t n);
void bf_state_perm(bf_state *s, const char *name, uint32_t *p, size_t n);  /* restored: a permutation of 0…n−1 */
void bf_state_ints(bf_state *s, const char *name, int32_t *p, size_t n, int32_t lo, int32_t hi);   /* restored: in [lo, hi] */
void bf_state_int(bf_state *s, const char *name, int64_t *v, int64_t lo, int64_t hi);
void bf_state_rng(bf_state *s, const char *name, bf_rng *r);
/* A whole model as bf_model_to_tset writes it (latents kept), each tensor
 * under "NAME/"; restored: *m freed and made anew from those tensors with
 * h's configuration, as a clone through tensors is made. */
void bf_state_model(bf_state *s, const char *name, bf_model *m, const bf_header *h);
/* saving: the stream handed to k->save; restoring: every tensor of the
 * stream was a piece.  Frees s; 0, or -1 and bf_err. */
int bf_state_end(bf_state *s);
/* What every loop does with its states: one function names the run's
 * pieces (it is handed the bf_state, saving or restoring, and the run). */
typedef void (*bf_state_pieces)(bf_state *s, void *run);
/* A run's start: with k's resume state (k may be NULL), the pieces restored
 * and checked and *step the steps it had done; without one, *step is 0.
 * 0, or -1 and bf_err. */
int bf_checkpoint_resume(const bf_checkpoint *k, const char *config, uint64_t data_digest, int steps, bf_state_pieces pieces,
                         void *run, int *step);
/* After `done` of `steps` steps (a UNIT each: "step", "iteration"): saves a
 * state when one is due, every k->every steps or once *k->interrupt is set,
 * never after the last.  0 to go on; -1 and bf_err when saving failed, or
 * when an interrupt stops the run ("interrupted after UNIT N; its state is
 * saved"). */
int bf_checkpoint_after(const bf_checkpoint *k, const char *config, uint64_t data_digest, int done, int steps, const char *unit,
                        bf_state_pieces pieces, void *run);
/* The outer pieces (k->outer) of k's resume state, restored before the run
 * they belong to starts: the state's kind, program and model checked (its
 * settings, data and step are the run's to check when it resumes); nothing
 * without a resume state.  0, or -1 and bf_err. */
int bf_checkpoint_resume_outer(bf_checkpoint *k);
/* XXH3-64 of a split's shape and rows: what a state records of the data. */
uint64_t bf_split_digest(const bf_split *sp);
/* XXH3-64 of a parameter set's layout (names, lengths, offsets): two runs
 * whose sets differ (other targets, another kind of expert) do not share a
 * state. */
uint64_t bf_pset_digest(const bf_pset *ps);

typedef struct {
    int steps, batch, warmup, eval_every, eval_batch;
    double lr, clip;
    bf_schedule schedule;
    double stop_exact;         /* > 0: stop once val exact match reaches it (checked at evaluations) */
    uint64_t seed;
    bf_train_hook on_step;     /* called after every step, or NULL */
    void *hook_ctx;
    double kl;                 /* > 0: loss += kl·KL(p_ref ‖ p_θ) against kl_ref */
    bf_model *kl_ref;          /* the frozen reference */
    double qk_clip;            /* > 0: MuonClip threshold τ after each step */
    double ema;                /* > 0: keep an exponential average of the parameters with this
                                * decay; evaluations and the trained model are the average */
    const bf_checkpoint *ckpt; /* states to save and one to resume from, or NULL */
    int skip_nonfinite;        /* a step whose loss or gradient is not finite: 0 stops the run with an
                                * error naming it; 1 passes it by (no update; res->skipped counts them) */
} bf_train_cfg;

struct bf_train_result {
    int steps_done;
    double last_loss, seconds;
    double eval_seconds;       /* of seconds, spent in val evaluations */
    int evaluated;             /* a val evaluation happened */
    bf_metrics val;            /* the last one */
    int stopped_early;
    double last_kl;
    long qk_clipped;          /* head clips over the run */
    long skipped;             /* steps passed by for a loss or gradient that was not finite */
};

/* Batches of a split: when the batch is at least the split, every batch is
 * the whole split in order; otherwise epochs of a fresh permutation each,
 * drawn from the seed's "batches" stream, batch after batch. */
typedef struct {
    const bf_split *s;
    size_t batch, cursor;
    uint32_t *perm;
    bf_rng rng;
    int32_t *x, *y;
} bf_batcher;

void bf_batcher_init(bf_batcher *b, const bf_split *s, size_t batch, uint64_t seed);
/* The next batch's rows into *x, *y (pointers into the split when whole). */
void bf_batcher_next(bf_batcher *b, const int32_t **x, const int32_t **y);
void bf_batcher_free(bf_batcher *b);

/* An exponential moving average of a parameter set: after each step
 * avg ← decay·avg + (1 − decay)·θ (avg starts at θ).  bf_ema_swap exchanges
 * the average and the live values (evaluate the average, then swap back;
 * at the end, swap once to keep the average). */
typedef struct {
    float *avg;
    size_t n;
    double decay;
} bf_ema;

void bf_ema_init(bf_ema *e, const bf_pset *ps, double decay);
void bf_ema_update(bf_ema *e, const bf_pset *ps);
void bf_ema_swap(bf_ema *e, bf_pset *ps);
void bf_ema_free(bf_ema *e);

/* The pieces of a batcher and of an optimizer, under a name prefix. */
void bf_state_batcher(bf_state *s, const char *name, bf_batcher *b);
void bf_state_optim(bf_state *s, const char *name, bf_optim *o);
/* The settings that shape a bf_train run (or a recursive model's), its
 * optimizer's included, as "key value" words (%.17g: every double exactly):
 * a state resumes only under the same ones. */
void bf_train_config_words(const bf_train_cfg *c, const bf_optim *opt, char *out, size_t cap);
/* The optimizer's settings as "key value" words, appended to out (cap bytes
 * in all), for a loop's config. */
void bf_optim_config_words(const bf_optim_cfg *o, char *out, size_t cap);

/* Data parallelism (bf/dist.h): a training loop's rank takes its share of
 * each batch's rows (bf_train_share_rows: an error when the batch has fewer
 * rows than the job has ranks), runs the forward and backward on them, and
 * then, before anything looks at the loss or the gradients:
 *   bf_train_share_mean  turns its share's mean loss over `targets` targeted
 *                        positions into the batch's mean (a loss, a KL) and
 *                        gives the share's weight targets/Σtargets;
 *   bf_train_share_grads scales its gradients by that weight and sums them
 *                        over the ranks, in rank order,
 * so every rank holds the gradient of the batch's mean loss, as one process
 * computes it up to the order of the float additions, and takes the same
 * step.  With one process they change nothing (weight 1).  0, or -1 and
 * bf_err. */
int bf_train_share_rows(int batch, size_t *lo, size_t *hi);
int bf_train_share_mean(double *mean, size_t targets, double *weight);
int bf_train_share_grads(bf_pset *ps, double weight);

void bf_train_default(bf_train_cfg *c);
double bf_train_lr(const bf_train_cfg *c, int step);
/* Clips the gradients of ps to a global L2 norm; returns the norm before. */
double bf_grad_clip(bf_pset *ps, double max_norm);
/* Trains the model's parameters with opt (initialized on bf_model_pset(m)). */
int bf_train(bf_model *m, const bf_dataset *d, bf_optim *opt, const bf_train_cfg *c, bf_train_result *res);

/* The KL anchor, a loss term: kl·KL(p_ref ‖ p_θ), mean over the last
 * forward's M targeted positions, with ref_logp [M, vocab] the frozen
 * reference's log-probabilities at the same positions.  bf_kl_anchor gives
 * the KL; bf_kl_anchor_grad adds weight·d KL/d logits = weight·(p − p_ref)/M
 * to the model's dlogits (bf_model_dlogits), before bf_model_backward. */
double bf_kl_anchor(const bf_model *m, const float *ref_logp);
void bf_kl_anchor_grad(const bf_model *m, const float *ref_logp, double weight, float *dlogits);
/* The same over the targeted positions k0 … k1−1 alone (the mean over
 * them): a batch whose rows answer to two references, or two weights. */
double bf_kl_span(const bf_model *m, const float *ref_logp, size_t k0, size_t k1);
void bf_kl_span_grad(const bf_model *m, const float *ref_logp, size_t k0, size_t k1, double weight, float *dlogits);

/* QK-clip (MuonClip), a post-step hook: every head whose largest attention
 * logit in the last forward (m->qk_max, recorded with m->track_qk) exceeds
 * tau has its wq and wk rows scaled by sqrt(tau/max) (the latent weights on
 * ternary layers).  Returns the number of heads clipped. */
int bf_qk_clip(bf_model *m, double tau);

#endif

/* trm.c — recursive reasoning with deep supervision and halting (bf/trm.h),
 * on the pieces lib/model gives a recursive model (bf_model_net_*, embed,
 * readout, halt). */
#include "bf/trm.h"
#include "bf/dist.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const int bf_trm_table_steps[BF_TRM_TABLE] = {1, 2, 4, 8, 16};

int bf_trm_init(bf_trm *r, bf_model *m, int B, int T, int grad)
{
    memset(r, 0, sizeof *r);
    const bf_config *g = &m->cfg;
    if (!g->rec_n) return bf_err("the model has no recursion (bf-init --recursion n,T,sup)");
    if (grad && m->inference) return bf_err("a model set up for inference trains no recursion");
    if (bf_model_net_begin(m, B, T, grad ? g->rec_n + 1 : 1)) return -1;
    size_t N = (size_t)B * (size_t)T, D = (size_t)g->d_model;
    int nbuf = grad ? 8 : 4;
    float *blk = bf_aligned_alloc((size_t)nbuf * N * D * sizeof(float));
    if (!blk) return -1;
    r->m = m;
    r->B = B;
    r->T = T;
    r->grad = grad;
    r->x = blk;
    r->y = blk + N * D;
    r->z = blk + 2 * N * D;
    r->in = blk + 3 * N * D;
    if (grad) {
        r->dx = blk + 4 * N * D;
        r->dy = blk + 5 * N * D;
        r->dz = blk + 6 * N * D;
        r->din = blk + 7 * N * D;
    }
    r->target = bf_xcalloc((size_t)B * 2, sizeof(float));
    r->logit = r->target + B;
    r->row_targets = bf_xcalloc((size_t)B * 2, sizeof(int));
    r->row_correct = r->row_targets + B;
    r->row_loss = bf_xcalloc((size_t)B, sizeof(double));
    r->start = bf_xcalloc((size_t)B, 1);
    return 0;
}

void bf_trm_free(bf_trm *r)
{
    bf_aligned_free(r->x);
    free(r->target);
    free(r->row_targets);
    free(r->row_loss);
    free(r->start);
    memset(r, 0, sizeof *r);
}

void bf_trm_reset_row(bf_trm *r, int b)
{
    size_t T = (size_t)r->T, D = (size_t)r->m->cfg.d_model;
    for (size_t k = (size_t)b * T; k < (size_t)(b + 1) * T; k++) {
        memcpy(r->y + k * D, r->m->rec_y0, D * sizeof(float));
        memcpy(r->z + k * D, r->m->rec_z0, D * sizeof(float));
    }
    r->start[b] = 1;
}

void bf_trm_reset(bf_trm *r, int B)
{
    for (int b = 0; b < B; b++) bf_trm_reset_row(r, b);
}

static void add3(float *out, const float *a, const float *b, const float *c, size_t n)
{
    for (size_t k = 0; k < n; k++) out[k] = a ? a[k] + b[k] + c[k] : b[k] + c[k];
}

/* One recursion: n latent updates, then the answer; slot0 + i for call i
 * (all in slot 0 without gradient). */
static int recursion(bf_trm *r, int B, int grad)
{
    bf_model *m = r->m;
    int n = m->cfg.rec_n;
    size_t E = (size_t)B * (size_t)r->T * (size_t)m->cfg.d_model;
    for (int i = 0; i < n; i++) {
        add3(r->in, r->x, r->y, r->z, E);
        if (bf_model_net_forward(m, grad ? i : 0, r->in, r->z, B)) return -1;
    }
    add3(r->in, NULL, r->y, r->z, E);
    return bf_model_net_forward(m, grad ? n : 0, r->in, r->y, B);
}

double bf_trm_step(bf_trm *r, const int32_t *x, const int32_t *tgt, int B, int grad)
{
    bf_model *m = r->m;
    const bf_config *g = &m->cfg;
    if (B < 1 || B > r->B) { bf_err("a supervision step of %d rows on a recursion sized for %d", B, r->B); return NAN; }
    if (grad && !r->grad) { bf_err("a supervision step with gradient on a recursion made without"); return NAN; }
    size_t E = (size_t)B * (size_t)r->T * (size_t)g->d_model, D = (size_t)g->d_model;
    bf_model_embed(m, x, B, r->x);
    for (int t = 0; t < g->rec_T - (grad ? 1 : 0); t++)
        if (recursion(r, B, 0)) return NAN;
    if (grad && recursion(r, B, 1)) return NAN;
    r->last_ce = bf_model_readout(m, r->y, tgt, B, r->row_targets, r->row_correct, r->row_loss, grad ? r->dy : NULL, r->over_targets);
    for (int b = 0; b < B; b++) r->target[b] = r->row_targets[b] == r->row_correct[b] ? 1.0f : 0.0f;
    r->last_bce = bf_model_halt(m, r->y, B, r->target, r->logit, grad ? r->dy : NULL, r->over_rows);
    double loss = r->last_ce + r->last_bce;
    if (!isfinite(loss)) { bf_err("the recursion's loss is not finite"); return NAN; }
    if (grad) {
        int n = g->rec_n;
        /* y' = net(y + z_n): d(y + z_n) = din; then z_{i+1} = net(x + y + z_i) */
        if (bf_model_net_backward(m, n, r->dy, r->din)) return NAN;
        memcpy(r->dy, r->din, E * sizeof(float));   /* d(starting y), summed below */
        memcpy(r->dz, r->din, E * sizeof(float));
        memset(r->dx, 0, E * sizeof(float));
        for (int i = n - 1; i >= 0; i--) {
            if (bf_model_net_backward(m, i, r->dz, r->din)) return NAN;
            for (size_t k = 0; k < E; k++) {
                r->dx[k] += r->din[k];
                r->dy[k] += r->din[k];
            }
            memcpy(r->dz, r->din, E * sizeof(float));
        }
        bf_model_embed_backward(m, x, B, r->dx);
        if (g->rec_T == 1)   /* the rows whose step started from rec.y0, rec.z0 */
            for (size_t k = 0; k < E / D; k++) {
                if (!r->start[k / (size_t)r->T]) continue;
                for (size_t c = 0; c < D; c++) {
                    m->drec_y0[c] += r->dy[k * D + c];
                    m->drec_z0[c] += r->dz[k * D + c];
                }
            }
        bf_model_sources_backward(m);
    }
    memset(r->start, 0, (size_t)B);
    return loss;
}

/* What evaluation keeps of a row: the step it stopped at, its loss there,
 * its targets and right answers; and of a batch its exact_at counts. */
enum { ROW_WORDS = 4 };

/* Batches [b0, b1) of s, B rows each (the last may be short): rows' records
 * into rows (ROW_WORDS a row, from the batch b0's first row), the batches'
 * exact_at counts into at (BF_TRM_TABLE a batch). */
static int eval_batches(bf_trm *r, const bf_split *s, int B, size_t b0, size_t b1, double thr, int max_steps, int table,
                        double *rows, double *at)
{
    for (size_t bi = b0; bi < b1; bi++) {
        size_t r0 = bi * (size_t)B;
        int nb = (int)(s->rows - r0 < (size_t)B ? s->rows - r0 : (size_t)B);
        const int32_t *x = s->x + r0 * s->T, *y = s->y + r0 * s->T;
        double *row = rows + (r0 - b0 * (size_t)B) * ROW_WORDS, *a = at + (bi - b0) * BF_TRM_TABLE;
        bf_trm_reset(r, nb);
        int left = nb;
        for (int k = 1; k <= max_steps; k++) {
            if (isnan(bf_trm_step(r, x, y, nb, 0))) return -1;
            for (int j = 0; j < BF_TRM_TABLE; j++)
                if (bf_trm_table_steps[j] == k)
                    for (int b = 0; b < nb; b++) a[j] += r->row_targets[b] && r->row_targets[b] == r->row_correct[b];
            for (int b = 0; b < nb; b++) {
                double *w = row + (size_t)b * ROW_WORDS;
                if (w[0] || (r->logit[b] <= thr && k < max_steps)) continue;
                w[0] = k;
                w[1] = r->row_loss[b];
                w[2] = r->row_targets[b];
                w[3] = r->row_correct[b];
                left--;
            }
            if (!left && (!table || k >= bf_trm_table_steps[BF_TRM_TABLE - 1])) break;
        }
    }
    return 0;
}

/* In a job (bf/dist.h) each rank evaluates a contiguous share of the
 * batches and the records are gathered; either way the sums are made as one
 * process makes them, batch after batch and, in a batch, in the order the
 * rows stopped (step, then row), so the metrics are the same bits. */
int bf_trm_eval(bf_model *m, const bf_split *s, int batch, double halt_p, int max_steps, int table, bf_trm_metrics *out)
{
    memset(out, 0, sizeof *out);
    if (max_steps < 1) return bf_err("max_steps %d: at least one supervision step", max_steps);
    int B = (int)(s->rows < (size_t)batch ? s->rows : (size_t)batch);
    if (B < 1) return bf_err("nothing to evaluate");
    size_t nbat = (s->rows + (size_t)B - 1) / (size_t)B, P = (size_t)bf_dist_size(), lo, hi;
    bf_dist_share(nbat, &lo, &hi);
    size_t most = bf_dist_share_size(nbat, 0), rec = most * ((size_t)B * ROW_WORDS + BF_TRM_TABLE);   /* a rank's words */
    double *mine = bf_xcalloc(rec, sizeof *mine);
    bf_trm r;
    int rc = bf_trm_init(&r, m, B, (int)s->T, 0);
    /* halting probability > P  ⇔  logit > log(P/(1 − P)) */
    double thr = halt_p >= 1 ? INFINITY : halt_p <= 0 ? -INFINITY : log(halt_p / (1 - halt_p));
    if (!rc) {
        rc = eval_batches(&r, s, B, lo, hi, thr, max_steps, table, mine, mine + most * (size_t)B * ROW_WORDS);
        bf_trm_free(&r);
    }
    double *all = mine;
    if (P > 1) {
        if (bf_dist_agree(rc)) { free(mine); return -1; }
        all = bf_xmalloc(P * rec * sizeof *all);
        if (bf_dist_gather(mine, rec * sizeof *mine, all)) rc = -1;
    }
    size_t exact_at[BF_TRM_TABLE] = {0}, correct = 0, exact = 0, scored = 0, steps_sum = 0;
    double loss = 0;
    for (size_t p = 0, bi = 0; p < P && !rc; p++)   /* rank p's share of the batches, in rank order */
        for (size_t j = 0; j < bf_dist_share_size(nbat, (int)p); j++, bi++) {
            const double *rows = all + p * rec + j * (size_t)B * ROW_WORDS, *a = all + p * rec + most * (size_t)B * ROW_WORDS;
            for (int q = 0; q < BF_TRM_TABLE; q++) exact_at[q] += (size_t)a[j * BF_TRM_TABLE + (size_t)q];
            int nb = (int)(s->rows - bi * (size_t)B < (size_t)B ? s->rows - bi * (size_t)B : (size_t)B);
            for (int k = 1; k <= max_steps; k++)
                for (int b = 0; b < nb; b++) {
                    const double *w = rows + (size_t)b * ROW_WORDS;
                    if (w[0] != k) continue;
                    size_t nt = (size_t)w[2], nc = (size_t)w[3];
                    steps_sum += (size_t)k;
                    out->targets += nt;
                    correct += nc;
                    loss += w[1];
                    if (nt) { scored++; exact += nt == nc; }
                }
        }
    if (all != mine) free(all);
    free(mine);
    if (rc) return -1;
    out->rows = s->rows;
    out->loss = out->targets ? loss / (double)out->targets : 0;
    out->token_acc = out->targets ? (double)correct / (double)out->targets : 0;
    out->exact = scored ? (double)exact / (double)scored : 0;
    out->mean_steps = (double)steps_sum / (double)s->rows;
    for (int j = 0; j < BF_TRM_TABLE; j++)
        out->exact_at[j] = table && bf_trm_table_steps[j] <= max_steps ? (double)exact_at[j] / (double)s->rows : -1;
    return 0;
}

int bf_trm_solve(bf_model *m, const int32_t *x, int B, double halt_p, int max_steps, int32_t *out, int *steps)
{
    if (max_steps < 1) return bf_err("max_steps %d: at least one supervision step", max_steps);
    int T = m->cfg.ctx;
    size_t N = (size_t)B * (size_t)T, V = (size_t)m->cfg.vocab;
    bf_trm r;
    if (bf_trm_init(&r, m, B, T, 0)) return -1;
    /* every blank a target, so that the readout makes its log-probabilities;
     * any token in the vocab serves as the target, since only the
     * log-probabilities are read, never the loss */
    int32_t *tgt = bf_xmalloc(N * sizeof *tgt);
    for (size_t i = 0; i < N; i++) tgt[i] = x[i] == 0 ? 1 : -1;
    memcpy(out, x, N * sizeof *out);
    double thr = halt_p >= 1 ? INFINITY : halt_p <= 0 ? -INFINITY : log(halt_p / (1 - halt_p));
    memset(steps, 0, (size_t)B * sizeof *steps);
    bf_trm_reset(&r, B);
    int left = B, rc = 0;
    for (int k = 1; k <= max_steps && left; k++) {
        if (isnan(bf_trm_step(&r, x, tgt, B, 0))) { rc = -1; break; }
        const float *lp = bf_model_readout_logprobs(m);
        for (size_t i = 0; i < N; i++) {   /* the blanks, in order: those of rows still running take this step's answer */
            if (tgt[i] < 0) continue;
            const float *row = lp;
            lp += V;
            if (steps[i / (size_t)T]) continue;
            size_t best = 0;
            for (size_t c = 1; c < V; c++) if (row[c] > row[best]) best = c;
            out[i] = (int32_t)best;
        }
        for (int b = 0; b < B; b++)
            if (!steps[b] && (r.logit[b] > thr || k == max_steps)) {
                steps[b] = k;
                left--;
            }
    }
    free(tgt);
    bf_trm_free(&r);
    return rc;
}

/* The training rows, one at a time, from the batcher's shuffled batches. */
typedef struct {
    bf_batcher *b;
    const int32_t *x, *y;
    size_t used;
} row_feed;

/* Row j of the rolling batch takes the next puzzle, from rec.y0, rec.z0.
 * r holds the states of rows [lo, lo + r->B) (a job's rank: its share). */
static void next_puzzle(row_feed *f, bf_trm *r, size_t lo, int32_t *bx, int32_t *by, int *age, int j)
{
    size_t T = (size_t)r->T;
    if (f->used == f->b->batch) {
        bf_batcher_next(f->b, &f->x, &f->y);
        f->used = 0;
    }
    memcpy(bx + (size_t)j * T, f->x + f->used * T, T * sizeof *bx);
    memcpy(by + (size_t)j * T, f->y + f->used * T, T * sizeof *by);
    f->used++;
    if ((size_t)j >= lo && (size_t)j < lo + (size_t)r->B) bf_trm_reset_row(r, j - (int)lo);
    age[j] = 0;
}

/* Everything a deep-supervision run carries from one step to the next
 * (bf_state: saved or restored alike): bf_train's pieces, the rolling
 * batch's rows, their states y and z, their ages, the batch they are drawn
 * from and how far into it, and the finished-puzzle counts. */
typedef struct {
    bf_model *m;
    bf_optim *opt;
    bf_batcher *b;
    bf_ema *ema;
    bf_trm *r;
    int32_t *bx, *by;
    int *age;
    row_feed *f;
    size_t *finished, *finished_steps;
    int Bmax;
    size_t T;
    size_t lo;                 /* r holds rows [lo, lo + r->B) (a job's rank: its share) */
} trm_run;

/* The rolling batch's states y, z and start flags, all Bmax rows: in a job
 * gathered from the ranks' shares (saving), or handed back to them
 * (restoring) around the state's pieces. */
static void trm_row_states(bf_state *s, const trm_run *u, size_t D)
{
    size_t T = u->T, B = (size_t)u->Bmax, E = T * D, P = (size_t)bf_dist_size();
    if (P == 1) {
        int32_t *start = bf_xmalloc(B * sizeof *start);
        for (size_t j = 0; j < B; j++) start[j] = u->r->start[j];
        bf_state_ints(s, "rows.start", start, B, 0, 1);
        for (size_t j = 0; j < B; j++) u->r->start[j] = (unsigned char)start[j];
        free(start);
        bf_state_floats(s, "rows.states_y", u->r->y, B * E);
        bf_state_floats(s, "rows.states_z", u->r->z, B * E);
        return;
    }
    /* a row's record: y, z, then its start flag as a float */
    size_t rec = 2 * E + 1, most = bf_dist_share_size(B, 0), Bs = (size_t)u->r->B;
    float *mine = bf_xcalloc(most * rec, sizeof *mine), *all = bf_xmalloc(P * most * rec * sizeof *all);
    float *y = bf_xmalloc(B * E * sizeof *y), *z = bf_xmalloc(B * E * sizeof *z);
    int32_t *start = bf_xcalloc(B, sizeof *start);
    if (bf_state_is_saving(s)) {
        for (size_t j = 0; j < Bs; j++) {
            memcpy(mine + j * rec, u->r->y + j * E, E * sizeof *mine);
            memcpy(mine + j * rec + E, u->r->z + j * E, E * sizeof *mine);
            mine[j * rec + 2 * E] = u->r->start[j];
        }
        if (bf_dist_gather(mine, most * rec * sizeof *mine, all)) bf_state_fail(s);
        for (size_t p = 0, j = 0; p < P; p++)   /* rank p's share, in rank order */
            for (size_t k = 0; k < bf_dist_share_size(B, (int)p); k++, j++) {
                const float *q = all + (p * most + k) * rec;
                memcpy(y + j * E, q, E * sizeof *y);
                memcpy(z + j * E, q + E, E * sizeof *z);
                start[j] = q[2 * E] != 0;
            }
    }
    bf_state_ints(s, "rows.start", start, B, 0, 1);
    bf_state_floats(s, "rows.states_y", y, B * E);
    bf_state_floats(s, "rows.states_z", z, B * E);
    if (!bf_state_is_saving(s)) {   /* this rank's share */
        memcpy(u->r->y, y + u->lo * E, Bs * E * sizeof *y);
        memcpy(u->r->z, z + u->lo * E, Bs * E * sizeof *z);
        for (size_t j = 0; j < Bs; j++) u->r->start[j] = (unsigned char)start[u->lo + j];
    }
    free(mine);
    free(all);
    free(y);
    free(z);
    free(start);
}

static void trm_pieces(bf_state *s, void *run)
{
    const trm_run *u = run;
    bf_model *m = u->m;
    int32_t V = m->cfg.vocab, B = u->Bmax;
    size_t T = u->T, D = (size_t)m->cfg.d_model;
    int32_t *small = bf_xmalloc((size_t)B * sizeof *small);
    int64_t used = (int64_t)u->f->used, fin = (int64_t)*u->finished, fst = (int64_t)*u->finished_steps;
    bf_state_floats(s, "params", m->params, m->n_params);
    bf_state_optim(s, "optim", u->opt);
    if (u->ema->avg) bf_state_floats(s, "ema", u->ema->avg, u->ema->n);
    bf_state_batcher(s, "batches", u->b);
    if (u->b->perm) {   /* the batch the rows come from, drawn already */
        bf_state_ints(s, "batches.x", u->b->x, u->b->batch * T, 0, V - 1);
        bf_state_ints(s, "batches.y", u->b->y, u->b->batch * T, -1, V - 1);
    }
    bf_state_int(s, "feed.used", &used, 0, (int64_t)u->b->batch);
    bf_state_ints(s, "rows.x", u->bx, (size_t)B * T, 0, V - 1);
    bf_state_ints(s, "rows.y", u->by, (size_t)B * T, -1, V - 1);
    for (int j = 0; j < B; j++) small[j] = u->age[j];
    bf_state_ints(s, "rows.age", small, (size_t)B, 0, m->cfg.rec_sup);
    for (int j = 0; j < B; j++) u->age[j] = small[j];
    trm_row_states(s, u, D);
    bf_state_int(s, "finished", &fin, 0, INT64_MAX);
    bf_state_int(s, "finished_steps", &fst, 0, INT64_MAX);
    u->f->used = (size_t)used;
    u->f->x = u->b->perm ? u->b->x : u->b->s->x;
    u->f->y = u->b->perm ? u->b->y : u->b->s->y;
    *u->finished = (size_t)fin;
    *u->finished_steps = (size_t)fst;
    free(small);
}

int bf_trm_train(bf_model *m, const bf_dataset *d, bf_optim *opt, const bf_train_cfg *c, bf_train_result *res,
                 double *mean_steps)
{
    memset(res, 0, sizeof *res);
    if (mean_steps) *mean_steps = 0;
    if (!d->train.rows) return bf_err("the train split is empty");
    if (c->kl > 0 || c->qk_clip > 0) return bf_err("a recursive model trains without --kl and --qk-clip");
    int quantized = bf_model_has_sources(m);
    bf_pset ps = bf_model_pset(m);
    bf_batcher b;
    bf_batcher_init(&b, &d->train, (size_t)c->batch, c->seed);
    size_t T = d->train.T;
    int Bmax = (int)b.batch;
    /* in a job (bf/dist.h) every rank keeps the whole rolling batch's rows
     * and ages, and the states of its share [lo, hi) only, which it steps */
    size_t lo, hi;
    if (bf_train_share_rows(Bmax, &lo, &hi)) { bf_batcher_free(&b); return -1; }
    int Bs = (int)(hi - lo), P = bf_dist_size();
    size_t most = bf_dist_share_size((size_t)Bmax, 0);
    float *my_logit = bf_xcalloc(most, sizeof *my_logit), *all_logit = bf_xcalloc(most * (size_t)P, sizeof *all_logit);
    float *logit = bf_xmalloc((size_t)Bmax * sizeof *logit);
    bf_trm r;
    if (bf_trm_init(&r, m, Bs, (int)T, 1)) { bf_batcher_free(&b); free(my_logit); free(all_logit); free(logit); return -1; }
    int32_t *bx = bf_xmalloc((size_t)Bmax * T * sizeof *bx), *by = bf_xmalloc((size_t)Bmax * T * sizeof *by);
    bf_ema ema = {0};
    if (c->ema > 0) bf_ema_init(&ema, &ps, c->ema);
    double t0 = bf_now();
    int rc = 0, step = 0;
    /* the rolling batch: Bmax rows, each its puzzle and its supervision steps
     * so far; a row that halts (logit > 0) or has had sup steps makes room
     * for the next puzzle, so that every optimizer step sees Bmax rows */
    int *age = bf_xcalloc((size_t)Bmax, sizeof *age);
    row_feed f = {&b, NULL, NULL, b.batch};
    size_t finished = 0, finished_steps = 0;
    for (int j = 0; j < Bmax; j++) next_puzzle(&f, &r, lo, bx, by, age, j);
    trm_run run = {m, opt, &b, &ema, &r, bx, by, age, &f, &finished, &finished_steps, Bmax, T, lo};
    char config[1024];
    uint64_t data_digest = 0;
    if (c->ckpt) {
        bf_train_config_words(c, opt, config, sizeof config);
        data_digest = bf_split_digest(&d->train);
    }
    if (bf_checkpoint_resume(c->ckpt, config, data_digest, c->steps, trm_pieces, &run, &step)) rc = -1;
    res->steps_done = step;
    while (step < c->steps && !rc) {
        if (quantized && bf_model_refresh(m)) { rc = -1; break; }
        bf_model_zero_grad(m);
        if (P > 1) {   /* the means over the whole batch: each rank's loss is its part of the sum */
            r.over_rows = (size_t)Bmax;
            r.over_targets = 0;
            for (size_t k = 0; k < (size_t)Bmax * T; k++) r.over_targets += by[k] >= 0;
            if (!r.over_targets) r.over_targets = 1;   /* no target anywhere: every part is 0 */
        }
        double loss = bf_trm_step(&r, bx + lo * T, by + lo * T, Bs, 1);
        if (bf_dist_agree(isfinite(loss) ? 0 : -1) || bf_dist_sum_doubles(&loss, 1)) {   /* bf_trm_step said why; the step joins it */
            char why[256];
            snprintf(why, sizeof why, "%s", bf_errmsg());
            rc = bf_err("%s at step %d", why, step + 1);
            break;
        }
        if (P > 1) {   /* the gradients summed; every rank learns every row's halting logit */
            memcpy(my_logit, r.logit, (size_t)Bs * sizeof *my_logit);
            if (bf_train_share_grads(&ps, 1.0) || bf_dist_gather(my_logit, most * sizeof *my_logit, all_logit)) { rc = -1; break; }
            for (int p = 0, j = 0; p < P; p++)
                for (size_t k = 0; k < bf_dist_share_size((size_t)Bmax, p); k++) logit[j++] = all_logit[(size_t)p * most + k];
        } else {
            memcpy(logit, r.logit, (size_t)Bmax * sizeof *logit);
        }
        double gnorm = bf_grad_clip(&ps, c->clip);
        if (!isfinite(gnorm)) { rc = bf_err("gradient is not finite at step %d", step + 1); break; }
        double lr = bf_train_lr(c, step);
        if (bf_optim_step(opt, &ps, lr)) { rc = -1; break; }
        if (ema.avg) bf_ema_update(&ema, &ps);
        step++;
        res->steps_done = step;
        res->last_loss = loss;
        for (int j = 0; j < Bmax; j++) {
            age[j]++;
            if (!(logit[j] > 0) && age[j] < m->cfg.rec_sup) continue;
            finished++;
            finished_steps += (size_t)age[j];
            next_puzzle(&f, &r, lo, bx, by, age, j);
        }
        int last = step == c->steps;
        int do_eval = d->val.rows && ((c->eval_every > 0 && step % c->eval_every == 0) || last);
        if (do_eval) {
            double te = bf_now();
            if (ema.avg) bf_ema_swap(&ema, &ps);
            bf_trm_metrics tm;
            int erc = (quantized && bf_model_refresh(m)) ||
                      bf_trm_eval(m, &d->val, c->eval_batch, 0.5, m->cfg.rec_sup, 0, &tm);
            if (ema.avg) bf_ema_swap(&ema, &ps);
            /* the evaluation sized the net for itself: size it back */
            if (erc || bf_model_net_begin(m, Bs, (int)T, m->cfg.rec_n + 1)) { rc = -1; break; }
            res->val = (bf_metrics){tm.rows, tm.targets, tm.loss, tm.token_acc, tm.exact};
            res->evaluated = 1;
            res->eval_seconds += bf_now() - te;
        }
        if (c->on_step) {
            bf_train_step s = {step, c->steps, loss, lr, gnorm, bf_now() - t0, do_eval, res};
            c->on_step(c->hook_ctx, &s);
        }
        if (do_eval && c->stop_exact > 0 && res->val.exact >= c->stop_exact) {
            res->stopped_early = !last;
            break;
        }
        if (bf_checkpoint_after(c->ckpt, config, data_digest, step, c->steps, "step", trm_pieces, &run)) { rc = -1; break; }
    }
    free(age);
    free(my_logit);
    free(all_logit);
    free(logit);
    if (mean_steps && finished) *mean_steps = (double)finished_steps / (double)finished;
    if (ema.avg) {
        if (res->steps_done) bf_ema_swap(&ema, &ps);
        bf_ema_free(&ema);
    }
    if (!rc && quantized && res->steps_done && bf_model_refresh(m)) rc = -1;
    res->seconds = bf_now() - t0;
    free(bx);
    free(by);
    bf_trm_free(&r);
    bf_batcher_free(&b);
    return rc;
}

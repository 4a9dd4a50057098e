/* eval.c — a model on a data set: whether they agree, its metrics on a
 * split (bf/data.h). */
#include "bf/data.h"
#include "bf/dist.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int bf_data_check_model(const bf_dataset *d, const bf_config *c, const char *label)
{
    if (d->vocab != c->vocab)
        return bf_err("%s: data vocab %d differs from the model's %d", label, d->vocab, c->vocab);
    size_t T = d->train.rows ? d->train.T : d->val.T;
    if ((d->train.rows && d->train.T > (size_t)c->ctx) || (d->val.rows && d->val.T > (size_t)c->ctx))
        return bf_err("%s: data rows of %zu tokens exceed the model's ctx %d", label, T, c->ctx);
    return 0;
}

/* a forward's mean loss over its targeted positions, back to a sum */
static void tally_forward(bf_tally *t, const bf_model *m, double mean_loss)
{
    t->loss += mean_loss * (double)m->last_targets;
    t->targets += m->last_targets;
}

static void tally_row(bf_tally *t, int targets, int correct)
{
    t->correct += (size_t)correct;
    if (targets) { t->scored++; t->exact += targets == correct; }   /* rows without targets are not scored */
}

void bf_tally_done(const bf_tally *t, size_t rows, bf_metrics *out)
{
    memset(out, 0, sizeof *out);
    out->rows = rows;
    out->targets = t->targets;
    out->loss = t->targets ? t->loss / (double)t->targets : 0;
    out->token_acc = t->targets ? (double)t->correct / (double)t->targets : 0;
    out->exact = t->scored ? (double)t->exact / (double)t->scored : 0;
}

void bf_tally_batch(bf_tally *t, const bf_model *m, double mean_loss, int B)
{
    tally_forward(t, m, mean_loss);
    for (int b = 0; b < B; b++) {
        int nt, nc;
        bf_model_row_stats(m, b, &nt, &nc);
        tally_row(t, nt, nc);
    }
}

/* A batch's tally as five doubles (counts below 2^53 are exact), for a
 * job's ranks to exchange. */
enum { TALLY_WORDS = 5 };
static void tally_pack(const bf_tally *t, double *w)
{
    w[0] = t->loss;
    w[1] = (double)t->targets;
    w[2] = (double)t->correct;
    w[3] = (double)t->exact;
    w[4] = (double)t->scored;
}

static void tally_add_packed(bf_tally *t, const double *w)
{
    t->loss += w[0];
    t->targets += (size_t)w[1];
    t->correct += (size_t)w[2];
    t->exact += (size_t)w[3];
    t->scored += (size_t)w[4];
}

/* The tallies of batches [lo, hi) of s into w (TALLY_WORDS each). */
static int eval_batches(bf_model *m, const bf_split *s, int batch, size_t lo, size_t hi, double *w)
{
    size_t T = s->T;
    for (size_t k = lo; k < hi; k++) {
        size_t r0 = k * (size_t)batch;
        int B = (int)(s->rows - r0 < (size_t)batch ? s->rows - r0 : (size_t)batch);
        double loss = bf_model_forward(m, s->x + r0 * T, s->y + r0 * T, B, (int)T);
        if (isnan(loss) && m->last_targets == 0) return -1;   /* the forward could not run */
        bf_tally one = {0};
        bf_tally_batch(&one, m, loss, B);
        tally_pack(&one, w + (k - lo) * TALLY_WORDS);
    }
    return 0;
}

int bf_eval_split_alone(bf_model *m, const bf_split *s, int batch, bf_metrics *out)
{
    size_t nb = (s->rows + (size_t)batch - 1) / (size_t)batch;
    double *w = bf_xcalloc((nb ? nb : 1) * TALLY_WORDS, sizeof *w);
    if (eval_batches(m, s, batch, 0, nb, w)) { free(w); return -1; }
    bf_tally t = {0};
    for (size_t k = 0; k < nb; k++) tally_add_packed(&t, w + k * TALLY_WORDS);
    free(w);
    bf_tally_done(&t, s->rows, out);
    return 0;
}

/* In a job (bf/dist.h) each rank evaluates a contiguous share of the
 * batches; the batches' tallies are then gathered and added in batch order,
 * as one process adds them, so the metrics are the same bits as one
 * process's for any number of ranks. */
int bf_eval_split(bf_model *m, const bf_split *s, int batch, bf_metrics *out)
{
    if (bf_dist_size() == 1) return bf_eval_split_alone(m, s, batch, out);
    size_t nb = (s->rows + (size_t)batch - 1) / (size_t)batch, lo, hi, P = (size_t)bf_dist_size();
    bf_dist_share(nb, &lo, &hi);
    size_t most = bf_dist_share_size(nb, 0), row = (most ? most : 1) * TALLY_WORDS;   /* the largest share's words */
    double *mine = bf_xcalloc(row, sizeof *mine);
    if (bf_dist_agree(eval_batches(m, s, batch, lo, hi, mine))) { free(mine); return -1; }
    double *all = bf_xmalloc(P * row * sizeof *all);
    if (bf_dist_gather(mine, row * sizeof *mine, all)) { free(all); free(mine); return -1; }
    bf_tally t = {0};
    for (size_t p = 0; p < P; p++)   /* rank p's share, in rank order */
        for (size_t j = 0; j < bf_dist_share_size(nb, (int)p); j++) tally_add_packed(&t, all + p * row + j * TALLY_WORDS);
    free(all);
    free(mine);
    bf_tally_done(&t, s->rows, out);
    return 0;
}

/* The same metrics one position at a time through the key/value cache:
 * position t of B rows per forward, as generation would run them.  Positions
 * after a batch's last target are not fed (nothing depends on them). */
int bf_eval_split_incremental(bf_model *m, const bf_split *s, int batch, bf_metrics *out)
{
    bf_tally t = {0};
    size_t T = s->T;
    int32_t *xt = bf_xmalloc((size_t)batch * 2 * sizeof *xt), *yt = xt + batch;
    int *nt = bf_xcalloc((size_t)batch * 2, sizeof *nt), *nc = nt + batch;
    for (size_t r0 = 0; r0 < s->rows; r0 += (size_t)batch) {
        int B = (int)(s->rows - r0 < (size_t)batch ? s->rows - r0 : (size_t)batch);
        if (bf_model_cache_begin(m, B)) goto fail;
        size_t end = 0;
        for (size_t k = r0 * T; k < (r0 + (size_t)B) * T; k++)
            if (s->y[k] >= 0 && k % T + 1 > end) end = k % T + 1;
        memset(nt, 0, (size_t)batch * 2 * sizeof *nt);
        for (size_t p = 0; p < end; p++) {
            for (int b = 0; b < B; b++) {
                xt[b] = s->x[(r0 + (size_t)b) * T + p];
                yt[b] = s->y[(r0 + (size_t)b) * T + p];
            }
            double loss = bf_model_forward_cached(m, xt, yt, B, 1, (int)p);
            if (isnan(loss) && m->last_targets == 0) goto fail;
            tally_forward(&t, m, loss);
            for (int b = 0; b < B; b++) {
                int n, c;
                bf_model_row_stats(m, b, &n, &c);
                nt[b] += n;
                nc[b] += c;
            }
        }
        for (int b = 0; b < B; b++) tally_row(&t, nt[b], nc[b]);
    }
    free(xt);
    free(nt);
    bf_tally_done(&t, s->rows, out);
    return 0;
fail:
    free(xt);
    free(nt);
    return -1;
}

/* test_generate — sampling through the key/value cache (bf_model_generate):
 * greedy continuations equal the argmax of a whole-row forward at each new
 * position; temperature sampling is reproducible from its seed; a stop token
 * ends its row; a request past the context is refused. */
#include "tap.h"

#include "bf/model.h"
#include "bf/rng.h"
#include "bf/thread.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define V 13
#define CTX 12

static void make(bf_model *m)
{
    bf_config c;
    bf_config_default(&c);
    c.vocab = V; c.ctx = CTX; c.d_model = 16; c.n_layer = 2; c.n_head = 2; c.d_ff = 24;
    bf_model_create(m, &c);
    bf_rng r;
    bf_rng_seed(&r, 21);
    for (size_t k = 0; k < m->np; k++)
        for (size_t j = 0; j < m->p[k].numel; j++)
            m->params[m->p[k].offset + j] = m->p[k].ndim == 1 ? 1.0f : (float)(0.5 * bf_rng_normal(&r));
}

/* argmax of the model's distribution after seq[0..n) */
static int32_t argmax_after(bf_model *m, const int32_t *seq, int n)
{
    int32_t y[CTX];
    for (int t = 0; t < n; t++) y[t] = t == n - 1 ? 0 : -1;
    bf_model_forward(m, seq, y, 1, n);
    const float *lp = bf_model_target_logprobs(m, 0);
    int32_t best = 0;
    for (int c = 1; c < V; c++) if (lp[c] > lp[best]) best = c;
    return best;
}

int main(void)
{
    bf_threads_set(2);
    bf_model m, full;
    make(&m);
    make(&full);
    int32_t prefix[3] = {4, 7, 1}, out[2 * CTX];
    int len[2];
    bf_rng r = bf_rng_derive(1, "t");
    ok(bf_model_generate(&m, prefix, 3, 2, 6, 0, &r, -1, out, len) == 0 && len[0] == 9 && len[1] == 9, "greedy: 6 new tokens a row");
    int bad = 0;
    for (int t = 3; t < 9; t++) bad += argmax_after(&full, out, t) != out[t];
    is_int(bad, 0, "each greedy token is the argmax of a whole-row forward");
    ok(memcmp(out, out + 9, 9 * sizeof *out) == 0, "greedy rows of one prefix agree");

    int32_t a[4 * CTX], b[4 * CTX], c[4 * CTX];
    int la[4], lb[4], lc[4];
    bf_rng r1 = bf_rng_derive(7, "s"), r2 = bf_rng_derive(7, "s"), r3 = bf_rng_derive(8, "s");
    bf_model_generate(&m, prefix, 3, 4, 8, 1.0, &r1, -1, a, la);
    bf_model_generate(&m, prefix, 3, 4, 8, 1.0, &r2, -1, b, lb);
    bf_model_generate(&m, prefix, 3, 4, 8, 1.0, &r3, -1, c, lc);
    ok(memcmp(a, b, 4 * 11 * sizeof *a) == 0 && memcmp(la, lb, sizeof la) == 0, "temperature 1: the same seed, the same tokens");
    ok(memcmp(a, c, 4 * 11 * sizeof *a) != 0, "another seed, other tokens");
    int differ = 0;
    for (int k = 1; k < 4; k++) differ |= memcmp(a, a + k * 11, 11 * sizeof *a) != 0;
    ok(differ, "rows of one prefix sample independently");

    /* a stop token: the greedy continuation's first token ends every row at once */
    int32_t first = out[3];
    bf_rng r4 = bf_rng_derive(1, "t");
    bf_model_generate(&m, prefix, 3, 2, 6, 0, &r4, first, out, len);
    ok(len[0] == 4 && len[1] == 4 && out[3] == first, "the stop token is written and ends the row");

    bf_rng r5 = bf_rng_derive(1, "t");
    int rc = bf_model_generate(&m, prefix, 3, 1, CTX, 0, &r5, -1, out, len);
    ok(rc == -1 && strstr(bf_errmsg(), "does not fit"), "past the context: refused (%s)", bf_errmsg());
    bf_model_free(&m);
    bf_model_free(&full);
    return tap_done();
}

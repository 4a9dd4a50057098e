/* eval.c — metrics of a model on a data split (DESIGN §5). */
#include "bf/data.h"

#include <string.h>

void bf_eval_split(bf_model *m, const bf_split *s, int batch, bf_metrics *out)
{
    memset(out, 0, sizeof *out);
    out->rows = s->rows;
    double loss = 0;
    size_t correct = 0, exact = 0, scored = 0, T = s->T;
    for (size_t r0 = 0; r0 < s->rows; r0 += (size_t)batch) {
        int B = (int)(s->rows - r0 < (size_t)batch ? s->rows - r0 : (size_t)batch);
        double l = bf_model_forward(m, s->x + r0 * T, s->y + r0 * T, B, (int)T);
        loss += l * (double)m->last_targets;
        out->targets += m->last_targets;
        for (int b = 0; b < B; b++) {
            int nt, nc;
            bf_model_row_stats(m, b, &nt, &nc);
            correct += (size_t)nc;
            if (nt) { scored++; exact += nt == nc; }   /* rows without targets are not scored */
        }
    }
    out->loss = out->targets ? loss / (double)out->targets : 0;
    out->token_acc = out->targets ? (double)correct / (double)out->targets : 0;
    out->exact = scored ? (double)exact / (double)scored : 0;
}

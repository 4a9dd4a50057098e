/* qk_clip.c — MuonClip's QK-clip, a post-step hook (bf/train.h). */
#include "bf/train.h"

#include <math.h>

int bf_qk_clip(bf_model *m, double tau)
{
    if (!m->qk_max) return 0;
    size_t H = (size_t)m->cfg.n_head, D = (size_t)m->cfg.d_model, hd = D / H;
    int clipped = 0;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        /* the parameters: W itself, or the ternary latent the next refresh quantizes */
        float *wq = m->params + m->layer[l].wq.param->offset, *wk = m->params + m->layer[l].wk.param->offset;
        for (size_t h = 0; h < H; h++) {
            float mx = m->qk_max[(size_t)l * H + h];
            if (!(mx > tau)) continue;
            float s = (float)sqrt(tau / mx);
            /* rows h·hd … (h+1)·hd of wq and wk make head h's q and k */
            for (size_t r = h * hd; r < (h + 1) * hd; r++)
                for (size_t c = 0; c < D; c++) {
                    wq[r * D + c] *= s;
                    wk[r * D + c] *= s;
                }
            clipped++;
        }
    }
    return clipped;
}

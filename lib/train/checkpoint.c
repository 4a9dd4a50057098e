/* checkpoint.c — a training run's state, saved and restored (bf/train.h). */
#include "bf/train.h"
#include "bf/log.h"
#include "bf/util.h"
#include "bf/val.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* The settings that shape a run, as "key value" words: a state resumes only
 * under the same ones.  %.17g keeps every double exactly. */
static void config_words(const bf_train_cfg *c, const bf_optim_cfg *o, char *out, size_t cap)
{
    snprintf(out, cap,
             "steps %d batch %d warmup %d lr %.17g clip %.17g schedule %s seed %" PRIu64
             " kl %.17g qk_clip %.17g ema %.17g eval_every %d stop_exact %.17g"
             " opt %s opt_lr %.17g wd %.17g beta1 %.17g beta2 %.17g eps %.17g momentum %.17g ns_steps %d"
             " fallback %s fallback_lr %.17g grokfast %s gf_alpha %.17g gf_lambda %.17g gf_window %d",
             c->steps, c->batch, c->warmup, c->lr, c->clip, c->schedule == BF_SCHED_CONSTANT ? "constant" : "cosine", c->seed, c->kl, c->qk_clip,
             c->ema, c->eval_every, c->stop_exact, bf_optim_names[o->kind], o->lr, o->wd, o->beta1, o->beta2, o->eps,
             o->momentum, o->ns_steps, bf_optim_names[o->fallback], o->fallback_lr, bf_grokfast_names[o->grokfast],
             o->gf_alpha, o->gf_lambda, o->gf_window);
}

/* The first setting in which two config strings differ, as an error. */
static int config_mismatch(const char *was, const char *now)
{
    char a[64], av[64], b[64], bv[64];
    int na, nb;
    while (sscanf(was, "%63s %63s%n", a, av, &na) == 2 && sscanf(now, "%63s %63s%n", b, bv, &nb) == 2) {
        if (strcmp(a, b) != 0) break;
        if (strcmp(av, bv) != 0) return bf_err("the state was made with %s %s; this run has %s %s", a, av, b, bv);
        was += na;
        now += nb;
    }
    return bf_err("the state was made with other settings");
}

static uint64_t data_digest(const bf_split *s)
{
    XXH3_state_t *st = XXH3_createState();
    if (!st) bf_out_of_memory();
    XXH3_64bits_reset(st);
    uint64_t shape[2] = {s->rows, s->T};
    XXH3_64bits_update(st, shape, sizeof shape);
    XXH3_64bits_update(st, s->x, s->rows * s->T * sizeof *s->x);
    XXH3_64bits_update(st, s->y, s->rows * s->T * sizeof *s->y);
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

static void hex64(char out[17], uint64_t v) { snprintf(out, 17, "%016" PRIx64, v); }

static int add(bf_tset *t, const char *name, bf_dtype dt, uint64_t n, const void *data, size_t elem)
{
    uint64_t shape[1] = {n};
    bf_tensor *x = bf_tset_add(t);
    if (bf_tensor_init(x, name, dt, 1, shape)) return -1;
    memcpy(x->data, data, n * elem);
    return 0;
}

int bf_train_state_save(const bf_train_cfg *c, const bf_dataset *d, const bf_train_parts *p, int steps_done)
{
    const bf_checkpoint *k = c->ckpt;
    const bf_optim *o = p->opt;
    size_t n = p->m->n_params;
    bf_header h;
    bf_tset t = {0};
    bf_header_init(&h, "state");
    char words[1024], hx[17];
    config_words(c, &o->cfg, words, sizeof words);
    bf_val_set(h.meta, "program", bf_val_str(k->program ? k->program : ""));
    hex64(hx, k->model_digest);
    bf_val_set(h.meta, "model", bf_val_str(hx));
    hex64(hx, data_digest(&d->train));
    bf_val_set(h.meta, "data", bf_val_str(hx));
    bf_val_set(h.meta, "config", bf_val_str(words));
    bf_val_set(h.meta, "step", bf_val_int(steps_done));
    bf_val_set(h.meta, "steps", bf_val_int(c->steps));
    bf_val_set(h.meta, "optim_t", bf_val_int(o->t));
    bf_val_set(h.meta, "gf_seen", bf_val_int(o->gf_seen));
    bf_val *rng = bf_val_arr();
    uint64_t spare;
    memcpy(&spare, &p->batcher->rng.spare, sizeof spare);
    bf_val_push(rng, bf_val_int((int64_t)p->batcher->rng.state));
    bf_val_push(rng, bf_val_int(p->batcher->rng.has_spare));
    bf_val_push(rng, bf_val_int((int64_t)spare));
    bf_val_set(h.meta, "rng", rng);
    bf_val_set(h.meta, "cursor", bf_val_int((int64_t)p->batcher->cursor));
    bf_val_set(h.meta, "qk_clipped", bf_val_int(p->res->qk_clipped));
    bf_val_set(h.meta, "evaluated", bf_val_int(p->res->evaluated));
    bf_val *val = bf_val_arr();
    bf_val_push(val, bf_val_int((int64_t)p->res->val.rows));
    bf_val_push(val, bf_val_int((int64_t)p->res->val.targets));
    bf_val_push(val, bf_val_float(p->res->val.loss));
    bf_val_push(val, bf_val_float(p->res->val.token_acc));
    bf_val_push(val, bf_val_float(p->res->val.exact));
    bf_val_set(h.meta, "val", val);
    int rc = add(&t, "params", BF_F32, n, p->m->params, sizeof(float));
    if (!rc && o->m) rc = add(&t, "optim.m", BF_F32, n, o->m, sizeof(float));
    if (!rc && o->v) rc = add(&t, "optim.v", BF_F32, n, o->v, sizeof(float));
    if (!rc && o->mom) rc = add(&t, "optim.mom", BF_F32, n, o->mom, sizeof(float));
    if (!rc && o->gf_h) rc = add(&t, "optim.gf_h", BF_F32, n, o->gf_h, sizeof(float));
    if (!rc && o->gf_ring) rc = add(&t, "optim.gf_ring", BF_F32, (uint64_t)o->cfg.gf_window * n, o->gf_ring, sizeof(float));
    if (!rc && o->gf_sum) rc = add(&t, "optim.gf_sum", BF_I64, n, o->gf_sum, sizeof(double));
    if (!rc && p->ema && p->ema->avg) rc = add(&t, "ema", BF_F32, n, p->ema->avg, sizeof(float));
    if (!rc && p->batcher->perm) rc = add(&t, "perm", BF_I32, p->batcher->s->rows, p->batcher->perm, sizeof(uint32_t));
    if (!rc) rc = k->save(k->ctx, &h, &t);
    bf_tset_release(&t);
    bf_header_release(&h);
    return rc;
}

/* tensor name of the state, checked to hold n elements of dt; copied to dst */
static int take(const bf_tset *t, const char *name, bf_dtype dt, uint64_t n, void *dst, size_t elem)
{
    const bf_tensor *x = bf_tset_find(t, name);
    if (!x) return bf_err("the state has no '%s'", name);
    if (x->dtype != dt || x->ndim != 1 || x->shape[0] != n)
        return bf_err("the state's '%s' is not %s [%" PRIu64 "]", name, bf_dtype_name(dt), n);
    memcpy(dst, x->data, n * elem);
    return 0;
}

static int meta_int(const bf_val *meta, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    if (bf_val_get_int(meta, key, 0, out) != 0) return bf_err("the state's meta has no '%s'", key);
    if (*out < lo || *out > hi) return bf_err("the state's '%s' is %" PRId64 ", outside [%" PRId64 ", %" PRId64 "]", key, *out, lo, hi);
    return 0;
}

int bf_train_state_restore(const bf_train_cfg *c, const bf_dataset *d, bf_train_parts *p)
{
    const bf_checkpoint *k = c->ckpt;
    const bf_header *h = k->resume_h;
    const bf_tset *t = k->resume_t;
    bf_optim *o = p->opt;
    size_t n = p->m->n_params;
    if (strcmp(h->kind, "state") != 0) return bf_err("a '%s' stream, not a training state", h->kind);
    const char *prog = bf_val_get_str(h->meta, "program");
    if (!prog || strcmp(prog, k->program ? k->program : "") != 0)
        return bf_err("the state was made by %s, not %s", prog ? prog : "an unknown program", k->program ? k->program : "this one");
    char hx[17];
    hex64(hx, k->model_digest);
    const char *s = bf_val_get_str(h->meta, "model");
    if (!s || strcmp(s, hx) != 0) return bf_err("the state was made for another model (its digest %.16s, this one's %s)", s ? s : "none", hx);
    hex64(hx, data_digest(&d->train));
    s = bf_val_get_str(h->meta, "data");
    if (!s || strcmp(s, hx) != 0) return bf_err("the state was made on other data (its train split's digest %.16s, this one's %s)", s ? s : "none", hx);
    char words[1024];
    config_words(c, &o->cfg, words, sizeof words);
    s = bf_val_get_str(h->meta, "config");
    if (!s) return bf_err("the state's meta has no 'config'");
    if (strcmp(s, words) != 0) return config_mismatch(s, words);
    int64_t step, steps, ot, seen, cursor, qk, ev;
    if (meta_int(h->meta, "steps", c->steps, c->steps, &steps) || meta_int(h->meta, "step", 1, c->steps, &step) ||
        meta_int(h->meta, "optim_t", 0, INT64_MAX, &ot) || meta_int(h->meta, "gf_seen", 0, INT32_MAX, &seen) ||
        meta_int(h->meta, "cursor", 0, (int64_t)d->train.rows, &cursor) || meta_int(h->meta, "qk_clipped", 0, INT64_MAX, &qk) ||
        meta_int(h->meta, "evaluated", 0, 1, &ev))
        return -1;
    const bf_val *rng = bf_val_get(h->meta, "rng"), *val = bf_val_get(h->meta, "val");
    if (!rng || rng->type != BF_ARR || rng->v.a.n != 3 || !val || val->type != BF_ARR || val->v.a.n != 5)
        return bf_err("the state's 'rng' or 'val' is not what a state holds");
    for (size_t i = 0; i < 3; i++)
        if (rng->v.a.items[i].type != BF_INT) return bf_err("the state's 'rng' is not three integers");
    for (size_t i = 0; i < 5; i++)
        if (val->v.a.items[i].type != BF_INT && val->v.a.items[i].type != BF_FLOAT) return bf_err("the state's 'val' is not five numbers");
    /* the tensors: every one the run has, none it has not */
    size_t want = 1 + !!o->m + !!o->v + !!o->mom + !!o->gf_h + !!o->gf_ring + !!o->gf_sum + !!(p->ema && p->ema->avg) + !!p->batcher->perm;
    if (t->n != want) return bf_err("the state holds %zu tensors; this run's has %zu", t->n, want);
    if (take(t, "params", BF_F32, n, p->m->params, sizeof(float)) ||
        (o->m && take(t, "optim.m", BF_F32, n, o->m, sizeof(float))) ||
        (o->v && take(t, "optim.v", BF_F32, n, o->v, sizeof(float))) ||
        (o->mom && take(t, "optim.mom", BF_F32, n, o->mom, sizeof(float))) ||
        (o->gf_h && take(t, "optim.gf_h", BF_F32, n, o->gf_h, sizeof(float))) ||
        (o->gf_ring && take(t, "optim.gf_ring", BF_F32, (uint64_t)o->cfg.gf_window * n, o->gf_ring, sizeof(float))) ||
        (o->gf_sum && take(t, "optim.gf_sum", BF_I64, n, o->gf_sum, sizeof(double))) ||
        (p->ema && p->ema->avg && take(t, "ema", BF_F32, n, p->ema->avg, sizeof(float))) ||
        (p->batcher->perm && take(t, "perm", BF_I32, p->batcher->s->rows, p->batcher->perm, sizeof(uint32_t))))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p->m->params[i])) return bf_err("the state's parameters hold a value that is not finite");
    if (p->batcher->perm) {   /* a permutation: every row once */
        size_t rows = p->batcher->s->rows;
        uint8_t *seen_row = bf_xcalloc(rows, 1);
        int bad = 0;
        for (size_t i = 0; i < rows && !bad; i++) {
            uint32_t r = p->batcher->perm[i];
            if (r >= rows || seen_row[r]) bad = 1;
            else seen_row[r] = 1;
        }
        free(seen_row);
        if (bad) return bf_err("the state's 'perm' is not a permutation of the train rows");
    }
    o->t = (long)ot;
    o->gf_seen = (int)seen;
    p->batcher->rng.state = (uint64_t)rng->v.a.items[0].v.i;
    p->batcher->rng.has_spare = rng->v.a.items[1].v.i != 0;
    uint64_t spare = (uint64_t)rng->v.a.items[2].v.i;
    memcpy(&p->batcher->rng.spare, &spare, sizeof spare);
    p->batcher->cursor = (size_t)cursor;
    p->res->qk_clipped = (long)qk;
    p->res->evaluated = (int)ev;
    double vv[5];
    for (size_t i = 0; i < 5; i++) {
        const bf_val *x = &val->v.a.items[i];
        vv[i] = x->type == BF_INT ? (double)x->v.i : x->v.f;
    }
    p->res->val = (bf_metrics){(size_t)vv[0], (size_t)vv[1], vv[2], vv[3], vv[4]};
    p->res->steps_done = p->res->resumed_at = (int)step;
    return (int)step;
}

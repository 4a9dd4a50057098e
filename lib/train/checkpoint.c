/* checkpoint.c — a training run's state as a stream, saved and restored
 * through one list of its pieces (bf/train.h). */
#include "bf/train.h"
#include "bf/dist.h"
#include "bf/log.h"
#include "bf/util.h"
#include "bf/val.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct bf_state {
    int saving, failed;
    int outer_only;            /* restoring an enclosing loop's pieces alone: the rest is not theirs */
    const bf_checkpoint *k;
    bf_header h;               /* saving: the header made; restoring: unused */
    bf_tset t;                 /* saving: the tensors made */
    const bf_tset *in;         /* restoring: the state's tensors */
    const bf_val *vars, *rngs; /* restoring: the state's meta maps */
    size_t taken;              /* restoring: tensors taken */
};

uint64_t bf_split_digest(const bf_split *sp)
{
    XXH3_state_t *st = XXH3_createState();
    if (!st) bf_out_of_memory();
    XXH3_64bits_reset(st);
    uint64_t shape[2] = {sp->rows, sp->T};
    XXH3_64bits_update(st, shape, sizeof shape);
    XXH3_64bits_update(st, sp->x, sp->rows * sp->T * sizeof *sp->x);
    XXH3_64bits_update(st, sp->y, sp->rows * sp->T * sizeof *sp->y);
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

uint64_t bf_pset_digest(const bf_pset *ps)
{
    XXH3_state_t *st = XXH3_createState();
    if (!st) bf_out_of_memory();
    XXH3_64bits_reset(st);
    for (size_t k = 0; k < ps->np; k++) {
        uint64_t n[2] = {ps->p[k].numel, ps->p[k].offset};
        XXH3_64bits_update(st, ps->p[k].name, strlen(ps->p[k].name) + 1);
        XXH3_64bits_update(st, n, sizeof n);
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

static void hex64(char out[17], uint64_t v) { snprintf(out, 17, "%016" PRIx64, v); }

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

int bf_state_is_saving(const bf_state *s) { return s->saving; }

void bf_state_fail(bf_state *s) { s->failed = 1; }

bf_state *bf_state_saving(const bf_checkpoint *k, const char *config, uint64_t data_digest, int step, int steps)
{
    bf_state *s = bf_xcalloc(1, sizeof *s);
    s->saving = 1;
    s->k = k;
    bf_header_init(&s->h, "state");
    char hx[17];
    bf_val_set(s->h.meta, "program", bf_val_str(k->program ? k->program : ""));
    hex64(hx, k->model_digest);
    bf_val_set(s->h.meta, "model", bf_val_str(hx));
    hex64(hx, data_digest);
    bf_val_set(s->h.meta, "data", bf_val_str(hx));
    bf_val_set(s->h.meta, "config", bf_val_str(config));
    bf_val_set(s->h.meta, "step", bf_val_int(step));
    bf_val_set(s->h.meta, "steps", bf_val_int(steps));
    bf_val_set(s->h.meta, "vars", bf_val_map());
    bf_val_set(s->h.meta, "rngs", bf_val_map());
    return s;
}

/* restoring: the state's kind, program and model are this run's */
static int check_owner(const bf_checkpoint *k)
{
    const bf_header *h = k->resume_h;
    char hx[17];
    const char *v;
    if (strcmp(h->kind, "state") != 0) return bf_err("a '%s' stream, not a training state", h->kind);
    if (!(v = bf_val_get_str(h->meta, "program")) || strcmp(v, k->program ? k->program : "") != 0)
        return bf_err("the state was made by %s, not %s", v ? v : "an unknown program", k->program ? k->program : "this one");
    if (hex64(hx, k->model_digest), !(v = bf_val_get_str(h->meta, "model")) || strcmp(v, hx) != 0)
        return bf_err("the state was made for another model (its digest %.16s, this one's %s)", v ? v : "none", hx);
    return 0;
}

bf_state *bf_state_restoring(const bf_checkpoint *k, const char *config, uint64_t data_digest, int steps, int *step)
{
    const bf_header *h = k->resume_h;
    bf_state *s = bf_xcalloc(1, sizeof *s);
    s->k = k;
    s->in = k->resume_t;
    char hx[17];
    const char *v;
    int64_t st, sts;
    if (check_owner(k)) {
        /* said why */
    } else if (hex64(hx, data_digest), !(v = bf_val_get_str(h->meta, "data")) || strcmp(v, hx) != 0) {
        bf_err("the state was made on other data (its digest %.16s, this one's %s)", v ? v : "none", hx);
    } else if (!(v = bf_val_get_str(h->meta, "config"))) {
        bf_err("the state's meta has no 'config'");
    } else if (strcmp(v, config) != 0) {
        config_mismatch(v, config);
    } else if (bf_val_get_int(h->meta, "steps", 0, &sts) != 0 || sts != steps) {
        bf_err("the state's 'steps' is not this run's %d", steps);
    } else if (bf_val_get_int(h->meta, "step", 0, &st) != 0 || st < 1 || st >= steps) {
        bf_err("the state's 'step' is not between 1 and %d", steps - 1);
    } else if (!(s->vars = bf_val_get(h->meta, "vars")) || s->vars->type != BF_MAP ||
               !(s->rngs = bf_val_get(h->meta, "rngs")) || s->rngs->type != BF_MAP) {
        bf_err("the state's meta has no 'vars' or 'rngs' map");
    } else {
        *step = (int)st;
        return s;
    }
    s->failed = 1;
    return s;
}

/* saving: a 1-D tensor of n elements copied from p */
static void put(bf_state *s, const char *name, bf_dtype dt, const void *p, size_t n, size_t elem)
{
    uint64_t shape[1] = {n};
    bf_tensor *x = bf_tset_add(&s->t);
    if (bf_tensor_init(x, name, dt, 1, shape)) { s->failed = 1; return; }
    memcpy(x->data, p, n * elem);
}

/* restoring: tensor name, checked to be dt [n], copied to p */
static int take(bf_state *s, const char *name, bf_dtype dt, void *p, size_t n, size_t elem)
{
    const bf_tensor *x = bf_tset_find(s->in, name);
    if (!x) { s->failed = 1; return bf_err("the state has no '%s'", name); }
    if (x->dtype != dt || x->ndim != 1 || x->shape[0] != n) {
        s->failed = 1;
        return bf_err("the state's '%s' is not %s [%zu]", name, bf_dtype_name(dt), n);
    }
    memcpy(p, x->data, n * elem);
    s->taken++;
    return 0;
}

void bf_state_floats(bf_state *s, const char *name, float *p, size_t n)
{
    if (s->failed) return;
    if (s->saving) {   /* a state that could not resume is not written: the last good one stays */
        for (size_t i = 0; i < n; i++)
            if (!isfinite(p[i])) { s->failed = 1; bf_err("'%s' holds a value that is not finite: no state is saved", name); return; }
        put(s, name, BF_F32, p, n, sizeof *p);
        return;
    }
    if (take(s, name, BF_F32, p, n, sizeof *p)) return;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) { s->failed = 1; bf_err("the state's '%s' holds a value that is not finite", name); return; }
}

void bf_state_doubles(bf_state *s, const char *name, double *p, size_t n)
{
    if (s->failed) return;
    /* as I64: the doubles' bits, exactly */
    if (s->saving) { put(s, name, BF_I64, p, n, sizeof *p); return; }
    if (take(s, name, BF_I64, p, n, sizeof *p)) return;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) { s->failed = 1; bf_err("the state's '%s' holds a value that is not finite", name); return; }
}

void bf_state_perm(bf_state *s, const char *name, uint32_t *p, size_t n)
{
    if (s->failed) return;
    if (s->saving) { put(s, name, BF_I32, p, n, sizeof *p); return; }
    if (take(s, name, BF_I32, p, n, sizeof *p)) return;
    uint8_t *seen = bf_xcalloc(n ? n : 1, 1);
    for (size_t i = 0; i < n && !s->failed; i++) {
        if (p[i] >= n || seen[p[i]]) { s->failed = 1; bf_err("the state's '%s' is not a permutation of 0 to %zu", name, n - 1); }
        else seen[p[i]] = 1;
    }
    free(seen);
}

void bf_state_ints(bf_state *s, const char *name, int32_t *p, size_t n, int32_t lo, int32_t hi)
{
    if (s->failed) return;
    if (s->saving) { put(s, name, BF_I32, p, n, sizeof *p); return; }
    if (take(s, name, BF_I32, p, n, sizeof *p)) return;
    for (size_t i = 0; i < n; i++)
        if (p[i] < lo || p[i] > hi) {
            s->failed = 1;
            bf_err("the state's '%s' holds %d, outside [%d, %d]", name, (int)p[i], (int)lo, (int)hi);
            return;
        }
}

void bf_state_int(bf_state *s, const char *name, int64_t *v, int64_t lo, int64_t hi)
{
    if (s->failed) return;
    if (s->saving) { bf_val_set(bf_val_get(s->h.meta, "vars"), name, bf_val_int(*v)); return; }
    int64_t x;
    if (bf_val_get_int(s->vars, name, 0, &x) != 0) { s->failed = 1; bf_err("the state has no integer '%s'", name); return; }
    if (x < lo || x > hi) {
        s->failed = 1;
        bf_err("the state's '%s' is %" PRId64 ", outside [%" PRId64 ", %" PRId64 "]", name, x, lo, hi);
        return;
    }
    *v = x;
}

void bf_state_rng(bf_state *s, const char *name, bf_rng *r)
{
    if (s->failed) return;
    uint64_t spare;
    if (s->saving) {
        memcpy(&spare, &r->spare, sizeof spare);
        bf_val *a = bf_val_arr();
        bf_val_push(a, bf_val_int((int64_t)r->state));
        bf_val_push(a, bf_val_int(r->has_spare));
        bf_val_push(a, bf_val_int((int64_t)spare));
        bf_val_set(bf_val_get(s->h.meta, "rngs"), name, a);
        return;
    }
    const bf_val *a = bf_val_get(s->rngs, name);
    if (!a || a->type != BF_ARR || a->v.a.n != 3 || a->v.a.items[0].type != BF_INT || a->v.a.items[1].type != BF_INT ||
        a->v.a.items[2].type != BF_INT) {
        s->failed = 1;
        bf_err("the state has no generator '%s' (three integers)", name);
        return;
    }
    spare = (uint64_t)a->v.a.items[2].v.i;
    r->state = (uint64_t)a->v.a.items[0].v.i;
    r->has_spare = a->v.a.items[1].v.i != 0;
    memcpy(&r->spare, &spare, sizeof spare);
}

void bf_state_model(bf_state *s, const char *name, bf_model *m, const bf_header *h)
{
    if (s->failed) return;
    size_t L = strlen(name);
    bf_tset t = {0};
    if (s->saving) {
        if (bf_model_to_tset(m, 1, &t)) { s->failed = 1; return; }
        for (size_t k = 0; k < t.n && !s->failed; k++) {
            bf_tensor *x = bf_tset_add(&s->t);
            *x = t.t[k];   /* the tensor moves, renamed */
            if (L + 1 + strlen(t.t[k].name) > BF_MAX_NAME) { s->failed = 1; bf_err("'%s/%s' is too long a name", name, t.t[k].name); }
            else snprintf(x->name, sizeof x->name, "%s/%s", name, t.t[k].name);
        }
        free(t.t);
        return;
    }
    /* restoring: the tensors under NAME/, renamed, sharing the state's payloads */
    for (size_t k = 0; k < s->in->n; k++) {
        const bf_tensor *x = &s->in->t[k];
        if (strncmp(x->name, name, L) != 0 || x->name[L] != '/') continue;
        bf_tensor *y = bf_tset_add(&t);
        *y = *x;
        snprintf(y->name, sizeof y->name, "%s", x->name + L + 1);
        s->taken++;
    }
    bf_model fresh;
    if (!t.n) { s->failed = 1; bf_err("the state has no model '%s'", name); }
    else if (bf_model_from_tset(&fresh, h, &t)) { s->failed = 1; }
    else { bf_model_free(m); *m = fresh; }
    free(t.t);   /* the payloads are the state's */
}

void bf_state_batcher(bf_state *s, const char *name, bf_batcher *b)
{
    char key[96];
    snprintf(key, sizeof key, "%s.rng", name);
    bf_state_rng(s, key, &b->rng);
    if (!b->perm) return;   /* the whole split every step: nothing moves */
    int64_t cursor = (int64_t)b->cursor;
    snprintf(key, sizeof key, "%s.cursor", name);
    bf_state_int(s, key, &cursor, 0, (int64_t)b->s->rows);
    snprintf(key, sizeof key, "%s.perm", name);
    bf_state_perm(s, key, b->perm, b->s->rows);
    if (!s->failed) b->cursor = (size_t)cursor;
}

void bf_state_optim(bf_state *s, const char *name, bf_optim *o)
{
    char key[96];
    size_t n = o->n;
    int64_t t = o->t, seen = o->gf_seen;
#define PIECE(what, ptr, len)                                 \
    if (ptr) {                                                \
        snprintf(key, sizeof key, "%s.%s", name, what);       \
        bf_state_floats(s, key, ptr, len);                    \
    }
    PIECE("m", o->m, n)
    PIECE("v", o->v, n)
    PIECE("mom", o->mom, n)
    PIECE("gf_h", o->gf_h, n)
    PIECE("gf_ring", o->gf_ring, (size_t)o->cfg.gf_window * n)
#undef PIECE
    if (o->gf_sum) {
        snprintf(key, sizeof key, "%s.gf_sum", name);
        bf_state_doubles(s, key, o->gf_sum, n);
    }
    snprintf(key, sizeof key, "%s.t", name);
    bf_state_int(s, key, &t, 0, INT64_MAX);
    snprintf(key, sizeof key, "%s.gf_seen", name);
    bf_state_int(s, key, &seen, 0, INT32_MAX);
    if (!s->failed) { o->t = (long)t; o->gf_seen = (int)seen; }
}

int bf_state_end(bf_state *s)
{
    int rc = s->failed ? -1 : 0;
    if (!rc && s->saving) rc = s->k->save(s->k->ctx, &s->h, &s->t);
    size_t taken = s->taken + (s->outer_only ? 0 : s->k->outer_taken);
    if (!rc && !s->saving && !s->outer_only && taken != s->in->n)
        rc = bf_err("the state holds %zu tensors; this run's has %zu", s->in->n, taken);
    if (rc && !s->saving && s->k->resume_label) {   /* name the state the message is about */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", bf_errmsg());
        bf_err("%s: %s", s->k->resume_label, msg);
    }
    if (s->saving) {
        bf_tset_release(&s->t);
        bf_header_release(&s->h);
    }
    free(s);
    return rc;
}

int bf_checkpoint_resume(const bf_checkpoint *k, const char *config, uint64_t data_digest, int steps, bf_state_pieces pieces,
                         void *run, int *step)
{
    *step = 0;
    if (!k || !k->resume_t) return 0;
    bf_state *s = bf_state_restoring(k, config, data_digest, steps, step);
    pieces(s, run);
    return bf_state_end(s);
}

int bf_checkpoint_resume_outer(bf_checkpoint *k)
{
    k->outer_taken = 0;
    if (!k->resume_t || !k->outer) return 0;
    bf_state *s = bf_xcalloc(1, sizeof *s);
    s->k = k;
    s->in = k->resume_t;
    s->outer_only = 1;
    const bf_val *meta = k->resume_h->meta;
    if (check_owner(k)) {
        s->failed = 1;
    } else if (!(s->vars = bf_val_get(meta, "vars")) || s->vars->type != BF_MAP || !(s->rngs = bf_val_get(meta, "rngs")) ||
               s->rngs->type != BF_MAP) {
        s->failed = 1;
        bf_err("the state's meta has no 'vars' or 'rngs' map");
    } else {
        k->outer(s, k->outer_run);
    }
    size_t taken = s->taken;
    if (bf_state_end(s)) return -1;
    k->outer_taken = taken;
    return 0;
}

int bf_checkpoint_after(const bf_checkpoint *k, const char *config, uint64_t data_digest, int done, int steps, const char *unit,
                        bf_state_pieces pieces, void *run)
{
    if (!k || done >= steps) return 0;
    int stop = k->interrupt && *k->interrupt;
    if (k->interrupt && bf_dist_size() > 1) {   /* a job stops after the same step on every rank */
        float any = (float)stop;
        if (bf_dist_max_floats(&any, 1)) return -1;
        stop = any > 0;
    }
    if (!stop && !(k->every > 0 && done % k->every == 0)) return 0;
    /* in a job every rank makes the state (a loop's pieces may gather what
     * the ranks hold apart) and hands it to save, which writes rank 0's */
    bf_state *s = bf_state_saving(k, config, data_digest, done, steps);
    if (k->outer) k->outer(s, k->outer_run);
    pieces(s, run);
    if (bf_dist_agree(bf_state_end(s))) return -1;
    if (!stop) return 0;
    bf_err("interrupted after %s %d; its state is saved", unit, done);
    return bf_dist_agree(-1);   /* every rank stops here: rank 0 alone says so */
}

void bf_optim_config_words(const bf_optim_cfg *o, char *out, size_t cap)
{
    size_t len = strlen(out);
    snprintf(out + len, cap > len ? cap - len : 0,
             " opt %s opt_lr %.17g wd %.17g beta1 %.17g beta2 %.17g eps %.17g momentum %.17g ns_steps %d"
             " fallback %s fallback_lr %.17g grokfast %s gf_alpha %.17g gf_lambda %.17g gf_window %d",
             bf_optim_names[o->kind], o->lr, o->wd, o->beta1, o->beta2, o->eps, o->momentum, o->ns_steps,
             bf_optim_names[o->fallback], o->fallback_lr, bf_grokfast_names[o->grokfast], o->gf_alpha, o->gf_lambda,
             o->gf_window);
}

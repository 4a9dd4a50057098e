/* dataset.c — loading and checking data sets, building rows. */
#include "bf/dataset.h"
#include "bf/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static int get_split(bf_dataset *d, const char *name, bf_split *sp)
{
    char nx[32], ny[32];
    snprintf(nx, sizeof nx, "%s.x", name);
    snprintf(ny, sizeof ny, "%s.y", name);
    const bf_tensor *x = bf_tset_find(&d->s, nx), *y = bf_tset_find(&d->s, ny);
    if (!x || !y) return bf_err("data has no '%s'", x ? ny : nx);
    if (x->dtype != BF_I32 || y->dtype != BF_I32 || x->ndim != 2 || y->ndim != 2)
        return bf_err("'%s' and '%s' must be I32 [rows, T]", nx, ny);
    if (x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1]) return bf_err("'%s' and '%s' differ in shape", nx, ny);
    sp->x = x->data;
    sp->y = y->data;
    sp->rows = x->shape[0];
    sp->T = x->shape[1];
    if (sp->rows && (sp->T < 1 || sp->T > (size_t)d->ctx))
        return bf_err("'%s' rows hold %zu tokens; the data's ctx is %d", nx, sp->T, d->ctx);
    size_t n = sp->rows * sp->T;
    for (size_t k = 0; k < n; k++) {
        if (sp->x[k] < 0 || sp->x[k] >= d->vocab)
            return bf_err("'%s' holds token %d outside the vocab of %d", nx, sp->x[k], d->vocab);
        if (sp->y[k] < -1 || sp->y[k] >= d->vocab)
            return bf_err("'%s' holds target %d outside -1..%d", ny, sp->y[k], d->vocab - 1);
    }
    return 0;
}

int bf_data_load(const char *path, bf_dataset *d)
{
    memset(d, 0, sizeof *d);
    bf_header h;
    bf_tset s;
    if (bf_read_all(path, &h, &s) < 0) return -1;
    return bf_data_from_tset(path && strcmp(path, "-") ? path : "stdin", &h, &s, d);
}

int bf_data_from_tset(const char *label, bf_header *h, bf_tset *s, bf_dataset *d)
{
    memset(d, 0, sizeof *d);
    d->h = *h;
    d->s = *s;
    memset(h, 0, sizeof *h);
    memset(s, 0, sizeof *s);
    int64_t v, c;
    int rc = -1;
    if (strcmp(d->h.kind, "data") != 0) { bf_err("%s: a '%s' stream, not 'data'", label, d->h.kind); goto fail; }
    if (bf_val_get_int(d->h.meta, "vocab", 0, &v) || v < 1 || v > BF_MAX_VOCAB) { bf_err("%s: data meta has no valid 'vocab'", label); goto fail; }
    if (bf_val_get_int(d->h.meta, "ctx", 0, &c) || c < 1 || c > BF_MAX_CTX) { bf_err("%s: data meta has no valid 'ctx'", label); goto fail; }
    d->vocab = (int)v;
    d->ctx = (int)c;
    if (get_split(d, "train", &d->train) || get_split(d, "val", &d->val)) {
        bf_err_context("%s: ", label);
        goto fail;
    }
    rc = 0;
fail:
    if (rc) bf_data_free(d);
    return rc;
}

void bf_data_free(bf_dataset *d)
{
    bf_header_release(&d->h);
    bf_tset_release(&d->s);
    memset(d, 0, sizeof *d);
}

const bf_split *bf_data_split(const bf_dataset *d, const char *name)
{
    return strcmp(name, "train") == 0 ? &d->train : &d->val;
}

void bf_rows_init(bf_rows *r, size_t T)
{
    memset(r, 0, sizeof *r);
    r->T = T;
}

int32_t *bf_rows_add(bf_rows *r)
{
    if (r->rows == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->x = bf_xrealloc(r->x, r->cap * r->T * sizeof(int32_t));
        r->y = bf_xrealloc(r->y, r->cap * r->T * sizeof(int32_t));
    }
    int32_t *x = r->x + r->rows * r->T, *y = r->y + r->rows * r->T;
    for (size_t k = 0; k < r->T; k++) { x[k] = 0; y[k] = -1; }
    r->rows++;
    return x;
}

void bf_rows_drop(bf_rows *r)
{
    if (r->rows) r->rows--;
}

void bf_rows_free(bf_rows *r)
{
    free(r->x);
    free(r->y);
    memset(r, 0, sizeof *r);
}

static int add_split(bf_tset *out, const char *name, const bf_rows *r, int which)
{
    bf_tensor *t = bf_tset_add(out);
    uint64_t shape[2] = {r->rows, r->T};
    if (bf_tensor_init(t, name, BF_I32, 2, shape)) return -1;
    if (r->rows) memcpy(t->data, which ? r->y : r->x, r->rows * r->T * sizeof(int32_t));
    return 0;
}

int bf_data_to_tset(const bf_rows *train, const bf_rows *val, bf_tset *out)
{
    memset(out, 0, sizeof *out);
    if (add_split(out, "train.x", train, 0) || add_split(out, "train.y", train, 1) || add_split(out, "val.x", val, 0) ||
        add_split(out, "val.y", val, 1)) {
        bf_tset_release(out);
        return -1;
    }
    return 0;
}

uint64_t bf_row_key(const int32_t *x, size_t T)
{
    return XXH3_64bits(x, T * sizeof *x);
}

/* Open addressing, linear probing, at most half full; 0 marks an empty slot,
 * so key 0 is kept as 1. */
int bf_keyset_has(const bf_keyset *s, uint64_t key)
{
    if (!key) key = 1;
    if (!s->cap) return 0;
    for (size_t j = key & (s->cap - 1); s->slot[j]; j = (j + 1) & (s->cap - 1))
        if (s->slot[j] == key) return 1;
    return 0;
}

int bf_keyset_add(bf_keyset *s, uint64_t key)
{
    if (!key) key = 1;
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        uint64_t *slot = bf_xcalloc(cap, sizeof *slot);
        for (size_t k = 0; k < s->cap; k++)
            if (s->slot[k]) {
                size_t j = s->slot[k] & (cap - 1);
                while (slot[j]) j = (j + 1) & (cap - 1);
                slot[j] = s->slot[k];
            }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    size_t j = key & (s->cap - 1);
    while (s->slot[j]) {
        if (s->slot[j] == key) return 1;
        j = (j + 1) & (s->cap - 1);
    }
    s->slot[j] = key;
    s->n++;
    return 0;
}

void bf_keyset_free(bf_keyset *s)
{
    free(s->slot);
    memset(s, 0, sizeof *s);
}

/* val.c — the bf_val tree: construction, look-up, JSON output. */
#include "bf/val.h"
#include "bf/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bf_val *bf_val_new(bf_vtype type)
{
    bf_val *v = bf_xcalloc(1, sizeof *v);
    v->type = type;
    return v;
}

bf_val *bf_val_nil(void) { return bf_val_new(BF_NIL); }
bf_val *bf_val_bool(int b) { bf_val *v = bf_val_new(BF_BOOL); v->v.b = !!b; return v; }
bf_val *bf_val_int(int64_t i) { bf_val *v = bf_val_new(BF_INT); v->v.i = i; return v; }
bf_val *bf_val_float(double f) { bf_val *v = bf_val_new(BF_FLOAT); v->v.f = f; return v; }
bf_val *bf_val_map(void) { return bf_val_new(BF_MAP); }
bf_val *bf_val_arr(void) { return bf_val_new(BF_ARR); }

bf_val *bf_val_strn(const char *s, size_t len)
{
    bf_val *v = bf_val_new(BF_STR);
    v->v.s.p = bf_xmalloc(len + 1);
    memcpy(v->v.s.p, s, len);
    v->v.s.p[len] = 0;
    v->v.s.len = len;
    return v;
}

bf_val *bf_val_str(const char *s) { return bf_val_strn(s, strlen(s)); }

void bf_val_clear(bf_val *v)
{
    if (!v) return;
    switch (v->type) {
    case BF_STR: case BF_BIN:
        free(v->v.s.p);
        break;
    case BF_ARR: case BF_MAP:
        for (size_t k = 0; k < v->v.a.n; k++) {
            bf_val_clear(&v->v.a.items[k]);
            if (v->v.a.keys) free(v->v.a.keys[k]);
        }
        free(v->v.a.items);
        free(v->v.a.keys);
        break;
    default:
        break;
    }
    memset(v, 0, sizeof *v);
    v->type = BF_NIL;
}

void bf_val_free(bf_val *v)
{
    if (!v) return;
    bf_val_clear(v);
    free(v);
}

static void clone_into(bf_val *dst, const bf_val *src)
{
    *dst = *src;
    switch (src->type) {
    case BF_STR: case BF_BIN:
        dst->v.s.p = bf_xmalloc(src->v.s.len + 1);
        memcpy(dst->v.s.p, src->v.s.p, src->v.s.len + 1);
        break;
    case BF_ARR: case BF_MAP:
        dst->v.a.cap = src->v.a.n;
        dst->v.a.items = src->v.a.n ? bf_xcalloc(src->v.a.n, sizeof(bf_val)) : NULL;
        dst->v.a.keys = (src->type == BF_MAP && src->v.a.n) ? bf_xcalloc(src->v.a.n, sizeof(char *)) : NULL;
        for (size_t k = 0; k < src->v.a.n; k++) {
            clone_into(&dst->v.a.items[k], &src->v.a.items[k]);
            if (src->type == BF_MAP) dst->v.a.keys[k] = bf_xstrdup(src->v.a.keys[k]);
        }
        break;
    default:
        break;
    }
}

bf_val *bf_val_clone(const bf_val *v)
{
    bf_val *c = bf_xcalloc(1, sizeof *c);
    clone_into(c, v);
    return c;
}

static void grow(bf_val *v)
{
    if (v->v.a.n < v->v.a.cap) return;
    size_t cap = v->v.a.cap ? 2 * v->v.a.cap : 4;
    v->v.a.items = bf_xrealloc(v->v.a.items, cap * sizeof(bf_val));
    if (v->type == BF_MAP) v->v.a.keys = bf_xrealloc(v->v.a.keys, cap * sizeof(char *));
    v->v.a.cap = cap;
}

void bf_val_push(bf_val *arr, bf_val *item)
{
    grow(arr);
    arr->v.a.items[arr->v.a.n++] = *item;
    free(item);
}

static long find_key(const bf_val *map, const char *key)
{
    if (!map || map->type != BF_MAP) return -1;
    for (size_t k = 0; k < map->v.a.n; k++)
        if (strcmp(map->v.a.keys[k], key) == 0) return (long)k;
    return -1;
}

bf_val *bf_val_get(const bf_val *map, const char *key)
{
    long k = find_key(map, key);
    return k < 0 ? NULL : &map->v.a.items[k];
}

void bf_val_set(bf_val *map, const char *key, bf_val *item)
{
    long k = find_key(map, key);
    if (k >= 0) {
        bf_val_clear(&map->v.a.items[k]);
        map->v.a.items[k] = *item;
        free(item);
        return;
    }
    grow(map);
    map->v.a.keys[map->v.a.n] = bf_xstrdup(key);
    map->v.a.items[map->v.a.n++] = *item;
    free(item);
}

void bf_val_del(bf_val *map, const char *key)
{
    long k = find_key(map, key);
    if (k < 0) return;
    bf_val_clear(&map->v.a.items[k]);
    free(map->v.a.keys[k]);
    size_t rest = map->v.a.n - (size_t)k - 1;
    memmove(&map->v.a.items[k], &map->v.a.items[k + 1], rest * sizeof(bf_val));
    memmove(&map->v.a.keys[k], &map->v.a.keys[k + 1], rest * sizeof(char *));
    map->v.a.n--;
}

int bf_val_get_int(const bf_val *map, const char *key, int64_t dflt, int64_t *out)
{
    const bf_val *v = bf_val_get(map, key);
    *out = dflt;
    if (!v) return 1;
    if (v->type == BF_INT) { *out = v->v.i; return 0; }
    return -1;
}

int bf_val_get_num(const bf_val *map, const char *key, double dflt, double *out)
{
    const bf_val *v = bf_val_get(map, key);
    *out = dflt;
    if (!v) return 1;
    if (v->type == BF_INT) { *out = (double)v->v.i; return 0; }
    if (v->type == BF_FLOAT) { *out = v->v.f; return 0; }
    return -1;
}

int bf_val_get_bool(const bf_val *map, const char *key, int dflt, int *out)
{
    const bf_val *v = bf_val_get(map, key);
    *out = dflt;
    if (!v) return 1;
    if (v->type == BF_BOOL) { *out = v->v.b; return 0; }
    return -1;
}

const char *bf_val_get_str(const bf_val *map, const char *key)
{
    const bf_val *v = bf_val_get(map, key);
    return v && v->type == BF_STR ? v->v.s.p : NULL;
}

void bf_json_str(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

void bf_json_num(FILE *f, double x)
{
    if (!isfinite(x)) { fputs("null", f); return; }
    if (x == floor(x) && fabs(x) < 1e15) { fprintf(f, "%.0f", x); return; }
    char buf[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    fputs(buf, f);
}

void bf_val_json(FILE *f, const bf_val *v)
{
    switch (v->type) {
    case BF_NIL: fputs("null", f); break;
    case BF_BOOL: fputs(v->v.b ? "true" : "false", f); break;
    case BF_INT: fprintf(f, "%lld", (long long)v->v.i); break;
    case BF_UINT: fprintf(f, "%llu", (unsigned long long)v->v.u); break;
    case BF_FLOAT: bf_json_num(f, v->v.f); break;
    case BF_STR: bf_json_str(f, v->v.s.p, v->v.s.len); break;
    case BF_BIN:
        fputc('"', f);
        for (size_t k = 0; k < v->v.s.len; k++) fprintf(f, "%02x", (unsigned char)v->v.s.p[k]);
        fputc('"', f);
        break;
    case BF_ARR:
        fputc('[', f);
        for (size_t k = 0; k < v->v.a.n; k++) {
            if (k) fputc(',', f);
            bf_val_json(f, &v->v.a.items[k]);
        }
        fputc(']', f);
        break;
    case BF_MAP:
        fputc('{', f);
        for (size_t k = 0; k < v->v.a.n; k++) {
            if (k) fputc(',', f);
            bf_json_str(f, v->v.a.keys[k], strlen(v->v.a.keys[k]));
            fputc(':', f);
            bf_val_json(f, &v->v.a.items[k]);
        }
        fputc('}', f);
        break;
    }
}

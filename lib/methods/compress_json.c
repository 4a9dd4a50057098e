/* compress_json.c — the archive manifest's JSON: a writer that keeps the
 * integer/float distinction of bf_val, and a bounded parser into bf_val. */
#include "compress_internal.h"
#include "bf/error.h"
#include "bf/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bf_cz_buf_put(bf_cz_buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = bf_xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

void bf_cz_buf_str(bf_cz_buf *b, const char *s) { bf_cz_buf_put(b, s, strlen(s)); }

static void put_string(bf_cz_buf *b, const char *s, size_t len)
{
    bf_cz_buf_put(b, "\"", 1);
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        char esc[8];
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; bf_cz_buf_put(b, esc, 2); }
        else if (c < 0x20 || c == 0x7f) { snprintf(esc, sizeof esc, "\\u%04x", c); bf_cz_buf_put(b, esc, 6); }
        else bf_cz_buf_put(b, &s[k], 1);
    }
    bf_cz_buf_put(b, "\"", 1);
}

int bf_cz_json_write(bf_cz_buf *b, const bf_val *v)
{
    char num[64];
    switch (v->type) {
    case BF_NIL: bf_cz_buf_str(b, "null"); return 0;
    case BF_BOOL: bf_cz_buf_str(b, v->v.b ? "true" : "false"); return 0;
    case BF_INT: snprintf(num, sizeof num, "%lld", (long long)v->v.i); bf_cz_buf_str(b, num); return 0;
    case BF_UINT: snprintf(num, sizeof num, "%llu", (unsigned long long)v->v.u); bf_cz_buf_str(b, num); return 0;
    case BF_FLOAT:
        if (!isfinite(v->v.f)) return bf_err("a non-finite number cannot go into JSON");
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(num, sizeof num, "%.*g", prec, v->v.f);
            if (strtod(num, NULL) == v->v.f) break;
        }
        if (!strpbrk(num, ".eEn")) strcat(num, ".0");   /* reads back as a float */
        bf_cz_buf_str(b, num);
        return 0;
    case BF_STR: put_string(b, v->v.s.p, v->v.s.len); return 0;
    case BF_BIN: return bf_err("binary data cannot go into JSON");
    case BF_ARR: case BF_MAP:
        bf_cz_buf_put(b, v->type == BF_ARR ? "[" : "{", 1);
        for (size_t k = 0; k < v->v.a.n; k++) {
            if (k) bf_cz_buf_put(b, ",", 1);
            if (v->type == BF_MAP) {
                put_string(b, v->v.a.keys[k], strlen(v->v.a.keys[k]));
                bf_cz_buf_put(b, ":", 1);
            }
            if (bf_cz_json_write(b, &v->v.a.items[k])) return -1;
        }
        bf_cz_buf_put(b, v->type == BF_ARR ? "]" : "}", 1);
        return 0;
    }
    return bf_err("unknown value type");
}

/* ------------------------------------------------------------------ parser */

#define MAX_DEPTH 32

typedef struct {
    const char *s;
    size_t n, i;
} parser;

static int perr(parser *p, const char *what) { return bf_err("manifest.json: %s at byte %zu", what, p->i); }

static void ws(parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int lit(parser *p, const char *w)
{
    size_t l = strlen(w);
    if (p->n - p->i < l || memcmp(p->s + p->i, w, l) != 0) return 0;
    p->i += l;
    return 1;
}

static int hex4(parser *p, unsigned *out)
{
    if (p->n - p->i < 4) return perr(p, "short \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return perr(p, "bad \\u escape");
    }
    *out = v;
    return 0;
}

static void put_utf8(bf_cz_buf *b, unsigned cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) { u[0] = (uint8_t)cp; n = 1; }
    else if (cp < 0x800) { u[0] = (uint8_t)(0xc0 | cp >> 6); u[1] = (uint8_t)(0x80 | (cp & 0x3f)); n = 2; }
    else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | cp >> 12); u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f)); u[2] = (uint8_t)(0x80 | (cp & 0x3f)); n = 3;
    } else {
        u[0] = (uint8_t)(0xf0 | cp >> 18); u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f)); u[3] = (uint8_t)(0x80 | (cp & 0x3f)); n = 4;
    }
    bf_cz_buf_put(b, u, n);
}

/* A string after its opening quote, into b (NUL not allowed: names are C strings). */
static int string(parser *p, bf_cz_buf *b)
{
    b->n = 0;
    for (;;) {
        if (p->i >= p->n) return perr(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->i++];
        if (c == '"') break;
        if (c < 0x20) return perr(p, "control character in a string");
        if (c != '\\') { bf_cz_buf_put(b, &c, 1); continue; }
        if (p->i >= p->n) return perr(p, "unterminated string");
        char e = p->s[p->i++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *at = e ? strchr(from, e) : NULL;
        if (at) { bf_cz_buf_put(b, &to[at - from], 1); continue; }
        if (e != 'u') return perr(p, "bad escape");
        unsigned cp, lo;
        if (hex4(p, &cp)) return -1;
        if (cp >= 0xd800 && cp < 0xdc00) {
            if (!lit(p, "\\u") || hex4(p, &lo) || lo < 0xdc00 || lo >= 0xe000) return perr(p, "bad surrogate pair");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) return perr(p, "bad surrogate pair");
        if (cp == 0) return perr(p, "NUL in a string");
        put_utf8(b, cp);
    }
    bf_cz_buf_put(b, "", 1);   /* NUL-terminated; n counts it */
    return 0;
}

static bf_val *value(parser *p, int depth, bf_cz_buf *tmp);

static bf_val *number(parser *p)
{
    size_t start = p->i;
    int is_float = 0;
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') { perr(p, "bad number"); return NULL; }
    if (p->s[p->i] == '0') p->i++;
    else while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    if (p->i < p->n && p->s[p->i] == '.') {
        is_float = 1;
        p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') { perr(p, "bad number"); return NULL; }
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        is_float = 1;
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') { perr(p, "bad number"); return NULL; }
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    char buf[64];
    size_t len = p->i - start;
    if (len >= sizeof buf) { perr(p, "number too long"); return NULL; }
    memcpy(buf, p->s + start, len);
    buf[len] = 0;
    errno = 0;
    if (is_float) {
        double d = strtod(buf, NULL);
        if (!isfinite(d)) { perr(p, "number out of range"); return NULL; }
        return bf_val_float(d);
    }
    if (buf[0] == '-') {
        long long v = strtoll(buf, NULL, 10);
        if (errno) { perr(p, "integer out of range"); return NULL; }
        return bf_val_int(v);
    }
    unsigned long long u = strtoull(buf, NULL, 10);
    if (errno) { perr(p, "integer out of range"); return NULL; }
    if (u <= INT64_MAX) return bf_val_int((int64_t)u);
    bf_val *v = bf_val_new(BF_UINT);
    v->v.u = u;
    return v;
}

static bf_val *value(parser *p, int depth, bf_cz_buf *tmp)
{
    if (depth > MAX_DEPTH) { perr(p, "nesting too deep"); return NULL; }
    ws(p);
    if (p->i >= p->n) { perr(p, "unexpected end"); return NULL; }
    char c = p->s[p->i];
    if (c == '{' || c == '[') {
        p->i++;
        bf_val *v = c == '{' ? bf_val_map() : bf_val_arr();
        ws(p);
        char close = c == '{' ? '}' : ']';
        if (p->i < p->n && p->s[p->i] == close) { p->i++; return v; }
        for (;;) {
            char *key = NULL;
            if (c == '{') {
                ws(p);
                if (p->i >= p->n || p->s[p->i] != '"') { perr(p, "expected a key"); goto fail; }
                p->i++;
                if (string(p, tmp)) goto fail;
                if (bf_val_get(v, (const char *)tmp->p)) { perr(p, "duplicate key"); goto fail; }
                key = bf_xstrdup((const char *)tmp->p);
                ws(p);
                if (p->i >= p->n || p->s[p->i] != ':') { free(key); perr(p, "expected ':'"); goto fail; }
                p->i++;
            }
            if (v->v.a.n >= (c == '{' ? 4096u : 1000000u)) { free(key); perr(p, "too many entries"); goto fail; }
            bf_val *item = value(p, depth + 1, tmp);
            if (!item) { free(key); goto fail; }
            if (key) { bf_val_set(v, key, item); free(key); }
            else bf_val_push(v, item);
            ws(p);
            if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
            if (p->i < p->n && p->s[p->i] == close) { p->i++; return v; }
            perr(p, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
            goto fail;
        }
    fail:
        bf_val_free(v);
        return NULL;
    }
    if (c == '"') {
        p->i++;
        if (string(p, tmp)) return NULL;
        return bf_val_strn((const char *)tmp->p, tmp->n - 1);
    }
    if (lit(p, "true")) return bf_val_bool(1);
    if (lit(p, "false")) return bf_val_bool(0);
    if (lit(p, "null")) return bf_val_nil();
    return number(p);
}

bf_val *bf_cz_json_parse(const char *s, size_t len)
{
    parser p = {s, len, 0};
    bf_cz_buf tmp = {0};
    bf_val *v = value(&p, 0, &tmp);
    free(tmp.p);
    if (!v) return NULL;
    ws(&p);
    if (p.i != p.n) {
        bf_val_free(v);
        perr(&p, "trailing bytes");
        return NULL;
    }
    return v;
}

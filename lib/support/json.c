/* json.c — JSON text to and from bf_val (bf/json.h): a bounded parser that
 * accepts only valid UTF-8, and a writer that keeps integers and floats apart. */
#include "bf/json.h"
#include "bf/error.h"
#include "bf/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ buffer */

void bf_buf_put(bf_buf *b, const void *p, size_t n)
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

void bf_buf_str(bf_buf *b, const char *s) { bf_buf_put(b, s, strlen(s)); }

void bf_json_quote(bf_buf *b, const char *s, size_t len)
{
    bf_buf_put(b, "\"", 1);
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        char esc[8];
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; bf_buf_put(b, esc, 2); }
        else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); bf_buf_put(b, esc, 6); }
        else bf_buf_put(b, &s[k], 1);
    }
    bf_buf_put(b, "\"", 1);
}

int bf_json_write(bf_buf *b, const bf_val *v)
{
    char num[64];
    switch (v->type) {
    case BF_NIL: bf_buf_str(b, "null"); return 0;
    case BF_BOOL: bf_buf_str(b, v->v.b ? "true" : "false"); return 0;
    case BF_INT: snprintf(num, sizeof num, "%lld", (long long)v->v.i); bf_buf_str(b, num); return 0;
    case BF_UINT: snprintf(num, sizeof num, "%llu", (unsigned long long)v->v.u); bf_buf_str(b, num); return 0;
    case BF_FLOAT:
        if (!isfinite(v->v.f)) return bf_err("a non-finite number cannot go into JSON");
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(num, sizeof num, "%.*g", prec, v->v.f);
            if (strtod(num, NULL) == v->v.f) break;
        }
        if (!strpbrk(num, ".eEn")) strcat(num, ".0");   /* reads back as a float */
        bf_buf_str(b, num);
        return 0;
    case BF_STR: bf_json_quote(b, v->v.s.p, v->v.s.len); return 0;
    case BF_BIN: return bf_err("binary data cannot go into JSON");
    case BF_ARR: case BF_MAP:
        bf_buf_put(b, v->type == BF_ARR ? "[" : "{", 1);
        for (size_t k = 0; k < v->v.a.n; k++) {
            if (k) bf_buf_put(b, ",", 1);
            if (v->type == BF_MAP) {
                bf_json_quote(b, v->v.a.keys[k], strlen(v->v.a.keys[k]));
                bf_buf_put(b, ":", 1);
            }
            if (bf_json_write(b, &v->v.a.items[k])) return -1;
        }
        bf_buf_put(b, v->type == BF_ARR ? "]" : "}", 1);
        return 0;
    }
    return bf_err("unknown value type");
}

/* ------------------------------------------------------------------ parser */

#define MAX_DEPTH 32
#define MAX_ENTRIES 65536   /* in any nested array or object */

static int perr(bf_json_parser *p, const char *what) { return bf_err("%s: %s at byte %zu", p->label, what, p->i); }

void bf_json_ws(bf_json_parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int lit(bf_json_parser *p, const char *w)
{
    size_t l = strlen(w);
    if (p->n - p->i < l || memcmp(p->s + p->i, w, l) != 0) return 0;
    p->i += l;
    return 1;
}

static int hex4(bf_json_parser *p, unsigned *out)
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

static void put_utf8(bf_buf *b, unsigned cp)
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
    bf_buf_put(b, u, n);
}

/* The length of the valid UTF-8 sequence at s[0..n) (no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned cp, min;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return 0;
    return len;
}

int bf_json_string(bf_json_parser *p, bf_buf *b)
{
    b->n = 0;
    if (p->i >= p->n || p->s[p->i] != '"') return perr(p, "expected a string");
    p->i++;
    for (;;) {
        if (p->i >= p->n) return perr(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') { p->i++; break; }
        if (c < 0x20) return perr(p, "control character in a string");
        if (c != '\\') {
            size_t l = utf8_len((const unsigned char *)p->s + p->i, p->n - p->i);
            if (!l) return perr(p, "invalid UTF-8");
            bf_buf_put(b, p->s + p->i, l);
            p->i += l;
            continue;
        }
        p->i++;
        if (p->i >= p->n) return perr(p, "unterminated string");
        char e = p->s[p->i++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *at = e ? strchr(from, e) : NULL;
        if (at) { bf_buf_put(b, &to[at - from], 1); continue; }
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
    bf_buf_put(b, "", 1);   /* NUL-terminated; n counts it */
    b->n--;
    return 0;
}

static bf_val *number(bf_json_parser *p)
{
    size_t start = p->i;
    int is_float = 0;
    if (p->i < p->n && p->s[p->i] == '-') p->i++;
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') { perr(p, "bad value"); return NULL; }
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

bf_val *bf_json_value(bf_json_parser *p, int depth, bf_buf *tmp)
{
    if (depth > MAX_DEPTH) { perr(p, "nesting too deep"); return NULL; }
    bf_json_ws(p);
    if (p->i >= p->n) { perr(p, "unexpected end"); return NULL; }
    char c = p->s[p->i];
    if (c == '{' || c == '[') {
        p->i++;
        bf_val *v = c == '{' ? bf_val_map() : bf_val_arr();
        bf_json_ws(p);
        char close = c == '{' ? '}' : ']';
        if (p->i < p->n && p->s[p->i] == close) { p->i++; return v; }
        for (;;) {
            char *key = NULL;
            if (c == '{') {
                bf_json_ws(p);
                if (bf_json_string(p, tmp)) goto fail;
                if (bf_val_get(v, (const char *)tmp->p)) { perr(p, "duplicate key"); goto fail; }
                key = bf_xstrdup((const char *)tmp->p);
                bf_json_ws(p);
                if (p->i >= p->n || p->s[p->i] != ':') { free(key); perr(p, "expected ':'"); goto fail; }
                p->i++;
            }
            if (v->v.a.n >= MAX_ENTRIES) { free(key); perr(p, "too many entries"); goto fail; }
            bf_val *item = bf_json_value(p, depth + 1, tmp);
            if (!item) { free(key); goto fail; }
            if (key) { bf_val_set(v, key, item); free(key); }
            else bf_val_push(v, item);
            bf_json_ws(p);
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
        if (bf_json_string(p, tmp)) return NULL;
        return bf_val_strn((const char *)tmp->p, tmp->n);
    }
    if (lit(p, "true")) return bf_val_bool(1);
    if (lit(p, "false")) return bf_val_bool(0);
    if (lit(p, "null")) return bf_val_nil();
    return number(p);
}

bf_val *bf_json_parse(const char *s, size_t len, const char *label)
{
    bf_json_parser p = {s, len, 0, label};
    bf_buf tmp = {0};
    bf_val *v = bf_json_value(&p, 0, &tmp);
    free(tmp.p);
    if (!v) return NULL;
    bf_json_ws(&p);
    if (p.i != p.n) {
        bf_val_free(v);
        perr(&p, "trailing bytes");
        return NULL;
    }
    return v;
}

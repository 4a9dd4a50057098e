/* json.c — JSON text to and from bf_val (bf/json.h): a writer that keeps
 * integers and floats apart, and a reader that is jansson's json_loadb
 * (JSON_REJECT_DUPLICATES, without JSON_ALLOW_NUL) with bitforge's limits
 * checked as its tree becomes a bf_val.
 *
 * Why jansson rather than the hand-written reader it replaced, measured by
 * bench/json-reader (bench/results.md, section json-reader; 2 cores shared
 * with other work, so times are within about ±50%):
 *  - the old reader looked every key up linearly, so an object of 65,536
 *    short keys took 16-19 s (a 1 MB safetensors __metadata__ it accepted)
 *    and a 100 MB header of such objects over 300 s (stopped); jansson
 *    hashes them: 8 s for that 100 MB header, 0.2 s for 1 MB;
 *  - jansson is kept and fuzzed upstream, checks UTF-8 (no overlong forms,
 *    no surrogates) and refuses NUL in strings and repeated keys itself.
 * What it costs, and why that is acceptable:
 *  - jansson builds the whole tree before the limits (nesting 32, 65,536
 *    entries a container) are checked: it cannot be told them.  A refused
 *    100 MB header, one array of 50 million 0s, costs 1.9 GB and about 6 s
 *    before the refusal, where the old reader stopped at 2.7 MB.  But the
 *    most a 100 MB header can cost is an accepted one, which both readers
 *    build whole: arrays of empty arrays 29 deep, 6.1 GB and 15 s with
 *    jansson (the conversion releases jansson's nodes as it goes and adds
 *    about 50 MB) against 8.0 GB and 30 s before.  Checking the limits after
 *    the parse raises no bound.
 *  - safetensors' header is parsed whole before its entries are checked
 *    one by one (bf_json_each): 100 MB of zero-byte tensors (1.3 million)
 *    cost 1.8 GB and 10-14 s against 250 MB and 3 s walked entry by entry
 *    before; under the same 6.1 GB bound.
 *  - real documents, a 24-layer model's safetensors headers (21 and 68 KB)
 *    and its bf-compress manifest (88 KB), take 0.5-2.2 ms instead of
 *    0.2-1.3 ms; fuzz_safetensors ran about 11,000 inputs a second, as
 *    before (the same inputs replayed: the same time), and with the arena
 *    below about 1.4 times that.
 *  - what jansson does not give: a byte offset for the two limits' errors
 *    (its tree has no positions), and integers above 2^63-1 (json_int_t is
 *    long long): they are refused as 1e999 is ("out of range"), where the
 *    old reader read 2^63..2^64-1 as BF_UINT; the writer refuses them. */
#include "bf/json.h"
#include "bf/error.h"
#include "bf/util.h"

#include <jansson.h>

#include <math.h>
#include <pthread.h>
#include <stddef.h>
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
    case BF_UINT:   /* above INT64_MAX: the reader (jansson's json_int_t) would refuse it */
        return bf_err("the integer %llu is above 2^63-1, which JSON here cannot carry", (unsigned long long)v->v.u);
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

/* ------------------------------------------------------------------ reader */

#define MAX_DEPTH 32
#define MAX_ENTRIES 65536   /* in any nested array or object */

/* jansson's error as bitforge words it: "LABEL: WHAT[ near 'TOKEN'] at byte N".
 * WHAT comes from the error code, and for a syntax error from jansson's text
 * (its texts below, in 2.14; any other one is kept as it is); the token is
 * jansson's context, kept only when it is printable ASCII. */
static int jerr(const char *label, const json_error_t *e)
{
    static const char *const syntax[][2] = {
        {"control character", "control character in a string"},
        {"unexpected newline", "control character in a string"},
        {"invalid escape", "bad escape"},
        {"invalid Unicode escape", "bad escape"},
        {"invalid Unicode", "bad surrogate pair"},
        {"':' expected", "expected ':'"},
        {"'}' expected", "expected ',' or '}'"},
        {"']' expected", "expected ',' or ']'"},
        {"string or '}' expected", "expected a string"},
        {"invalid token", "bad value"},
        {"unexpected token", "bad value"},
    };
    const char *what = e->text;
    switch (json_error_code(e)) {
    case json_error_out_of_memory: what = "out of memory"; break;
    case json_error_stack_overflow: what = "nesting too deep"; break;
    case json_error_invalid_utf8: what = "invalid UTF-8"; break;
    case json_error_premature_end_of_input: what = "unexpected end"; break;
    case json_error_end_of_input_expected: what = "trailing bytes"; break;
    case json_error_null_character: case json_error_null_byte_in_key: what = "NUL in a string"; break;
    case json_error_duplicate_key: what = "duplicate key"; break;
    case json_error_numeric_overflow:
        what = strncmp(e->text, "too big", 7) == 0 ? "integer out of range" : "number out of range";
        break;
    case json_error_invalid_syntax:
        for (size_t k = 0; k < sizeof syntax / sizeof syntax[0]; k++)
            if (strncmp(e->text, syntax[k][0], strlen(syntax[k][0])) == 0) { what = syntax[k][1]; break; }
        break;
    default: break;
    }
    /* jansson's context, " near 'TOKEN'" (a token of at most 20 bytes),
     * ends its text: kept when printable */
    const char *near = strstr(e->text, " near '");
    int wl = what == e->text && near ? (int)(near - e->text) : (int)strlen(what), nl = near ? (int)strlen(near) : 0;
    for (int k = 0; k < nl; k++)
        if ((unsigned char)near[k] < 0x20 || (unsigned char)near[k] > 0x7e) { nl = 0; break; }
    return bf_err("%s: %.*s%.*s at byte %d", label, wl, what, nl, near ? near : "", e->position);
}

/* An arena for jansson's nodes.  jansson mallocs every value, key and
 * string on its own, and those calls were most of a parse's time (perf on
 * fuzz_safetensors' long-run corpus: json_loadb 45% of the run, malloc 26%
 * of it).  A document of up to ARENA_MAX_DOC bytes is parsed into an arena
 * instead: bump allocation from chunks, frees ignored, the chunks released
 * when the tree is done with.  What is freed during a parse (jansson's
 * string buffers and object tables as they grow, the nodes the conversion
 * releases) then stays until the end, at most a few times the document;
 * a larger document keeps malloc, so that the conversion's releases still
 * bound a 100 MB header's peak as described above. */
#define ARENA_MAX_DOC (1u << 20)
#define ARENA_CHUNK (64u << 10)

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
} arena_chunk;

typedef struct {
    int on;
    arena_chunk *head;
} arena;

static _Thread_local arena cur;   /* the parse in progress on this thread */

static void *arena_malloc(size_t n)
{
    if (!cur.on) return malloc(n);
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!cur.head || cur.head->cap - cur.head->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        arena_chunk *c = malloc(sizeof *c + cap);
        if (!c) return NULL;   /* jansson reports out of memory */
        c->next = cur.head;
        c->used = 0;
        c->cap = cap;
        cur.head = c;
    }
    void *p = (char *)cur.head->data + cur.head->used;
    cur.head->used += n;
    return p;
}

static void arena_free(void *p)
{
    if (!cur.on) free(p);
}

static void set_alloc_funcs(void) { json_set_alloc_funcs(arena_malloc, arena_free); }

/* Begins a parse of len bytes (into an arena when small); returns the state
 * to hand back to parse_end, which releases the arena: a parse within a
 * parse (an entry's callback) gets its own. */
static arena parse_begin(size_t len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, set_alloc_funcs);
    arena outer = cur;
    cur.on = len <= ARENA_MAX_DOC;
    cur.head = NULL;
    return outer;
}

static void parse_end(arena outer)
{
    for (arena_chunk *c = cur.head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    cur = outer;
}

static json_t *load(const char *s, size_t len, const char *label)
{
    json_error_t e;
    /* no JSON_ALLOW_NUL: a string with \u0000 is refused */
    json_t *j = json_loadb(len ? s : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (!j) jerr(label, &e);
    return j;
}

/* j into *out at nesting depth `depth`, under the limits; each converted
 * child is released from j at once (replaced by jansson's null, which
 * allocates nothing), so that the two trees never both hold all of it.
 * On failure *out is nil and bf_err is set (no label: the caller adds it). */
static int to_val(json_t *j, int depth, bf_val *out)
{
    memset(out, 0, sizeof *out);
    out->type = BF_NIL;
    if (depth > MAX_DEPTH) return bf_err("nesting too deep (more than %d levels)", MAX_DEPTH);
    switch (json_typeof(j)) {
    case JSON_NULL: return 0;
    case JSON_TRUE: case JSON_FALSE: out->type = BF_BOOL; out->v.b = json_is_true(j); return 0;
    case JSON_INTEGER: out->type = BF_INT; out->v.i = json_integer_value(j); return 0;
    case JSON_REAL: out->type = BF_FLOAT; out->v.f = json_real_value(j); return 0;
    case JSON_STRING: {
        size_t n = json_string_length(j);
        out->type = BF_STR;
        out->v.s.p = bf_xmalloc(n + 1);
        memcpy(out->v.s.p, json_string_value(j), n);
        out->v.s.p[n] = 0;
        out->v.s.len = n;
        return 0;
    }
    case JSON_ARRAY: case JSON_OBJECT: {
        int map = json_is_object(j);
        size_t n = map ? json_object_size(j) : json_array_size(j);
        if (n > MAX_ENTRIES) return bf_err("too many entries (more than %d in one array or object)", MAX_ENTRIES);
        out->type = map ? BF_MAP : BF_ARR;
        if (!n) return 0;
        out->v.a.items = bf_xmalloc(n * sizeof(bf_val));
        if (map) out->v.a.keys = bf_xmalloc(n * sizeof(char *));
        out->v.a.cap = n;
        void *it = map ? json_object_iter(j) : NULL;
        for (size_t k = 0; k < n; k++) {
            json_t *c = map ? json_object_iter_value(it) : json_array_get(j, k);
            if (to_val(c, depth + 1, &out->v.a.items[k])) { bf_val_clear(out); return -1; }
            if (map) {
                out->v.a.keys[k] = bf_xstrdup(json_object_iter_key(it));
                json_object_iter_set_new(j, it, json_null());
                it = json_object_iter_next(j, it);
            } else json_array_set_new(j, k, json_null());
            out->v.a.n = k + 1;
        }
        return 0;
    }
    }
    return bf_err("unknown JSON value");
}

bf_val *bf_json_parse(const char *s, size_t len, const char *label)
{
    arena outer = parse_begin(len);
    json_t *j = load(s, len, label);
    if (!j) { parse_end(outer); return NULL; }
    bf_val *v = bf_xmalloc(sizeof *v);
    int rc = to_val(j, 0, v);
    json_decref(j);
    parse_end(outer);
    if (rc) {
        bf_err_context("%s: ", label);
        free(v);
        return NULL;
    }
    return v;
}

int bf_json_each(const char *s, size_t len, const char *label, bf_json_entry_fn fn, void *ctx)
{
    arena outer = parse_begin(len);
    json_t *j = load(s, len, label);
    if (!j) { parse_end(outer); return -1; }
    int rc = 0;
    if (!json_is_object(j)) rc = bf_err("%s: not a JSON object", label);
    for (void *it = rc ? NULL : json_object_iter(j); it; it = json_object_iter_next(j, it)) {
        const char *key = json_object_iter_key(it);
        bf_val *v = bf_xmalloc(sizeof *v);
        if (to_val(json_object_iter_value(it), 1, v)) {
            free(v);
            rc = bf_err_context("%s: '%.64s': ", label, key);
            break;
        }
        json_object_iter_set_new(j, it, json_null());
        if ((rc = fn(ctx, key, v)) != 0) break;
    }
    json_decref(j);
    parse_end(outer);
    return rc;
}

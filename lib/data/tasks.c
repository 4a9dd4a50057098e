/* tasks.c — the generated data sets of bf-data (bf-data(1)).
 *
 * modarith: rows [a, op, b, =] → c, loss at the last position only.  Tokens
 *   0…P−1 are numbers, P is '=', P+1 the operator (vocab P+2).  add/sub take
 *   all P² pairs, mul/div take b ∈ [1, P); a seeded shuffle puts the first
 *   round(F·n) pairs in train and the rest in val.
 * seq: byte-level rows "PROMPT" + digits + '=' + answer + '\n'; targets on the
 *   answer bytes and the end mark.
 * text: byte-level language modelling; the file's first (1−f) bytes make the
 *   train split, the rest val, cut into non-overlapping windows of ctx+1 bytes.
 *
 * In every data set no val row's x equals a train row's x (bf-data(1)):
 * modarith's rows are distinct pairs, each in one split; seq draws a val row
 * again until its x is new; text drops a val window whose x is a train
 * window's. */
#include "bf/tasks.h"
#include "bf/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const bf_modarith_ops[] = {"add", "sub", "mul", "div", NULL};
const char *const bf_seq_tasks[] = {"copy", "reverse", "sort", "increment", NULL};
const char *const bf_seq_instructions[] = {"Copy: ", "Reverse: ", "Sort: ", "Increment: ", NULL};

static int is_prime(int p)
{
    if (p < 2) return 0;
    for (int k = 2; (long)k * k <= p; k++)
        if (p % k == 0) return 0;
    return 1;
}

static long pow_mod(long b, long e, long p)
{
    long r = 1;
    b %= p;
    while (e) {
        if (e & 1) r = r * b % p;
        b = b * b % p;
        e >>= 1;
    }
    return r;
}

int bf_task_modarith_check(const bf_modarith_cfg *c)
{
    if (c->p < 2 || c->p > 65536) return bf_err("--p %d out of range 2..65536", c->p);
    if (c->op == BF_MOD_DIV && !is_prime(c->p)) return bf_err("div needs a prime p; %d is not", c->p);
    return 0;
}

int bf_task_modarith(const bf_modarith_cfg *c, bf_header *h, bf_tset *out)
{
    int P = c->p;
    if (bf_task_modarith_check(c)) return -1;
    size_t b0 = c->op >= BF_MOD_MUL ? 1 : 0, n = (size_t)P * (size_t)(P - (int)b0);
    uint32_t *order = bf_xmalloc(n * sizeof *order);
    for (size_t k = 0; k < n; k++) order[k] = (uint32_t)k;
    bf_rng rng = bf_rng_derive(c->seed, "modarith.split");
    bf_rng_shuffle_u32(&rng, order, n);
    size_t ntrain = (size_t)(c->frac * (double)n + 0.5);
    bf_rows train, val;
    bf_rows_init(&train, 4);
    bf_rows_init(&val, 4);
    for (size_t k = 0; k < n; k++) {
        long a = order[k] / (uint32_t)(P - (int)b0), b = order[k] % (uint32_t)(P - (int)b0) + (long)b0, r;
        switch (c->op) {
        case BF_MOD_ADD: r = (a + b) % P; break;
        case BF_MOD_SUB: r = ((a - b) % P + P) % P; break;
        case BF_MOD_MUL: r = a * b % P; break;
        default: r = a * pow_mod(b, P - 2, P) % P; break;   /* Fermat inverse */
        }
        bf_rows *dst = k < ntrain ? &train : &val;
        int32_t *x = bf_rows_add(dst), *y = dst->y + (dst->rows - 1) * 4;
        x[0] = (int32_t)a; x[1] = P + 1; x[2] = (int32_t)b; x[3] = P;
        y[3] = (int32_t)r;
    }
    free(order);
    bf_header_init(h, "data");
    bf_val_set(h->meta, "task", bf_val_str("modarith"));
    bf_val_set(h->meta, "vocab", bf_val_int(P + 2));
    bf_val_set(h->meta, "ctx", bf_val_int(4));
    bf_val_set(h->meta, "op", bf_val_str(bf_modarith_ops[c->op]));
    bf_val_set(h->meta, "p", bf_val_int(P));
    bf_val_set(h->meta, "frac", bf_val_float(c->frac));
    bf_val_set(h->meta, "seed", bf_val_int((int64_t)c->seed));
    int rc = bf_data_to_tset(&train, &val, out);
    bf_rows_free(&train);
    bf_rows_free(&val);
    if (rc) bf_header_release(h);
    return rc;
}

/* The answer for one seq input of n digits; returns its length. */
static size_t seq_answer(bf_seq_task task, const char *in, size_t n, char *out)
{
    switch (task) {
    case BF_SEQ_COPY: memcpy(out, in, n); return n;
    case BF_SEQ_REVERSE: for (size_t k = 0; k < n; k++) out[k] = in[n - 1 - k]; return n;
    case BF_SEQ_SORT: {
        size_t cnt[10] = {0}, at = 0;
        for (size_t k = 0; k < n; k++) cnt[in[k] - '0']++;
        for (int dgt = 0; dgt < 10; dgt++)
            for (size_t k = 0; k < cnt[dgt]; k++) out[at++] = (char)('0' + dgt);
        return n;
    }
    default: {   /* increment the decimal number, keeping its width unless it carries out */
        memcpy(out + 1, in, n);
        out[0] = '0';
        size_t k = n;
        for (;;) {
            if (out[k] == '9') { out[k] = '0'; k--; }
            else { out[k]++; break; }
        }
        if (out[0] == '0') { memmove(out, out + 1, n); return n; }
        return n + 1;
    }
    }
}

/* Distinct inputs available: Σ 10^len, capped to avoid overflow.  Each
 * task's rows have as many distinct x. */
static double seq_space(const bf_seq_cfg *c)
{
    double space = 0;
    for (int len = c->min_len; len <= c->max_len && space < 1e18; len++) { double p = 1; for (int j = 0; j < len; j++) p *= 10; space += p; }
    return space;
}

int bf_task_seq_check(const bf_seq_cfg *c)
{
    if (c->min_len < 1 || c->max_len < c->min_len || c->max_len > 4096)
        return bf_err("lengths must satisfy 1 <= --min-len <= --max-len <= 4096");
    if (c->prompt && strlen(c->prompt) > 4096) return bf_err("--prompt longer than 4096 bytes");
    if (c->mix && c->prompt) return bf_err("a mixture's rows carry their own instructions; --prompt is for one task");
    if (c->no_prompt && !c->mix) return bf_err("--no-prompt is for a mixture (--tasks)");
    double space = seq_space(c);
    if ((double)(c->n_train + c->n_val) > space)
        return bf_err("asked for %zu distinct rows; lengths %d..%d allow only %.0f", c->n_train + c->n_val,
                      c->min_len, c->max_len, space);
    return 0;
}

/* Draws for one val row before bf_task_seq gives up.  The check above leaves
 * a new row for every val row, but a random search for the last few free
 * strings of a nearly exhausted range could take very long. */
#define SEQ_TRIES 1000000L

int bf_task_seq(const bf_seq_cfg *c, bf_header *h, bf_tset *out)
{
    if (bf_task_seq_check(c)) return -1;
    size_t plen = c->prompt ? strlen(c->prompt) : 0;
    int any_increment = c->mix ? (c->mix >> BF_SEQ_INCREMENT) & 1 : c->task == BF_SEQ_INCREMENT;
    if (c->mix && !c->no_prompt)
        for (int k = 0; bf_seq_tasks[k]; k++)
            if ((c->mix >> k) & 1 && strlen(bf_seq_instructions[k]) > plen) plen = strlen(bf_seq_instructions[k]);
    int ntask = 0, which[8];
    for (int k = 0; bf_seq_tasks[k]; k++)
        if ((c->mix >> k) & 1) which[ntask++] = k;
    bf_rng task_rng = bf_rng_derive(c->seed, "seq.tasks");
    size_t ansmax = (size_t)c->max_len + any_increment;
    size_t T = plen + (size_t)c->max_len + 1 + ansmax + 1 - 1;   /* sequence length − 1 */
    bf_rows train, val;
    bf_rows_init(&train, T);
    bf_rows_init(&val, T);
    bf_keyset seen = {0};   /* the x of every row so far */
    bf_rng rng = bf_rng_derive(c->seed, "seq.rows");
    char *in = bf_xmalloc((size_t)c->max_len + 1), *ans = bf_xmalloc(ansmax + 1);
    unsigned char *s = bf_xmalloc(T + 1);
    int rc = 0;
    for (size_t k = 0; k < c->n_train + c->n_val && !rc; k++) {
        bf_rows *dst = k < c->n_train ? &train : &val;
        /* a mixture draws each row's task from a stream of its own */
        bf_seq_task task = ntask ? (bf_seq_task)which[bf_rng_below(&task_rng, (uint64_t)ntask)] : c->task;
        const char *instr = ntask ? (c->no_prompt ? "" : bf_seq_instructions[task]) : (c->prompt ? c->prompt : "");
        size_t ilen = strlen(instr);
        /* train rows may repeat; a val row is drawn again until its x is new
         * to every row before it, train or val (the same digits under
         * another task are another row, unless no instruction tells them
         * apart and the answers agree: copy and sort of "122") */
        for (long tries = 1;; tries++) {
            if (tries > SEQ_TRIES) {
                rc = bf_err("val row %zu of %zu: no row unlike the %zu before it in %ld draws (lengths %d..%d allow %.0f "
                            "inputs a task; fewer rows, or a longer --max-len)",
                            k - c->n_train + 1, c->n_val, k, SEQ_TRIES, c->min_len, c->max_len, seq_space(c));
                break;
            }
            size_t n = (size_t)c->min_len + (size_t)bf_rng_below(&rng, (uint64_t)(c->max_len - c->min_len + 1));
            for (size_t j = 0; j < n; j++) in[j] = (char)('0' + bf_rng_below(&rng, 10));
            size_t an = seq_answer(task, in, n, ans), L = 0;
            memcpy(s, instr, ilen);
            L = ilen;
            memcpy(s + L, in, n);
            L += n;
            s[L++] = '=';
            size_t first = L;      /* the first answer byte */
            memcpy(s + L, ans, an);
            L += an;
            s[L++] = '\n';
            int32_t *x = bf_rows_add(dst), *y = dst->y + (dst->rows - 1) * T;
            for (size_t t = 0; t + 1 < L; t++) {
                x[t] = s[t];
                if (t + 1 >= first) y[t] = s[t + 1];
            }
            if (!bf_keyset_add(&seen, bf_row_key(x, T)) || dst == &train) break;
            bf_rows_drop(dst);
        }
    }
    free(in);
    free(ans);
    free(s);
    bf_keyset_free(&seen);
    if (rc) {
        bf_rows_free(&train);
        bf_rows_free(&val);
        return -1;
    }
    bf_header_init(h, "data");
    if (ntask) {
        bf_val *t = bf_val_arr();
        for (int k = 0; k < ntask; k++) bf_val_push(t, bf_val_str(bf_seq_tasks[which[k]]));
        bf_val_set(h->meta, "task", bf_val_str("mixture"));
        bf_val_set(h->meta, "tasks", t);
        bf_val_set(h->meta, "prompts", bf_val_bool(!c->no_prompt));
    } else {
        bf_val_set(h->meta, "task", bf_val_str(bf_seq_tasks[c->task]));
    }
    bf_val_set(h->meta, "vocab", bf_val_int(256));
    bf_val_set(h->meta, "ctx", bf_val_int((int64_t)T));
    bf_val_set(h->meta, "min_len", bf_val_int(c->min_len));
    bf_val_set(h->meta, "max_len", bf_val_int(c->max_len));
    if (c->prompt) bf_val_set(h->meta, "prompt", bf_val_str(c->prompt));
    bf_val_set(h->meta, "seed", bf_val_int((int64_t)c->seed));
    rc = bf_data_to_tset(&train, &val, out);
    bf_rows_free(&train);
    bf_rows_free(&val);
    if (rc) bf_header_release(h);
    return rc;
}

int bf_task_text(const bf_text_cfg *c, bf_header *h, bf_tset *out)
{
    FILE *f = fopen(c->file, "rb");
    if (!f) return bf_err("%s: %s", c->file, bf_strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) { fclose(f); return bf_err("%s: not a regular file", c->file); }
    if ((uint64_t)st.st_size > (1ULL << 32)) { fclose(f); return bf_err("%s: larger than 4 GiB", c->file); }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = bf_xmalloc(n ? n : 1);
    if (fread(buf, 1, n, f) != n) { fclose(f); free(buf); return bf_err("%s: read error", c->file); }
    fclose(f);
    size_t T = (size_t)c->ctx, nval = (size_t)(c->val_frac * (double)n + 0.5), ntrain = n - nval;
    if (ntrain < T + 1 || (c->val_frac > 0 && nval < T + 1)) {
        free(buf);
        return bf_err("%s: %zu bytes make no %s window of %zu bytes", c->file, n, ntrain < T + 1 ? "train" : "val", T + 1);
    }
    bf_rows train, val;
    bf_rows_init(&train, T);
    bf_rows_init(&val, T);
    bf_keyset seen = {0};   /* the x of every train window */
    size_t windows = 0;     /* of the val part, before dropping */
    for (int which = 0; which < 2; which++) {
        const unsigned char *p = buf + (which ? ntrain : 0);
        size_t len = which ? nval : ntrain;
        bf_rows *dst = which ? &val : &train;
        for (size_t at = 0; at + T + 1 <= len; at += T + 1) {
            int32_t *x = bf_rows_add(dst), *y = dst->y + (dst->rows - 1) * T;
            for (size_t t = 0; t < T; t++) { x[t] = p[at + t]; y[t] = p[at + t + 1]; }
            /* repeated text: a val window whose x is a train window's is not held out; it goes */
            if (!which) {
                bf_keyset_add(&seen, bf_row_key(x, T));
            } else {
                windows++;
                if (bf_keyset_has(&seen, bf_row_key(x, T))) bf_rows_drop(dst);
            }
        }
    }
    free(buf);
    bf_keyset_free(&seen);
    if (windows && !val.rows) {
        bf_rows_free(&train);
        bf_rows_free(&val);
        return bf_err("%s: each of the %zu val windows repeats a train window (a longer --ctx, or another file)", c->file,
                      windows);
    }
    bf_header_init(h, "data");
    bf_val_set(h->meta, "task", bf_val_str("text"));
    bf_val_set(h->meta, "vocab", bf_val_int(256));
    bf_val_set(h->meta, "ctx", bf_val_int((int64_t)T));
    bf_val_set(h->meta, "val_frac", bf_val_float(c->val_frac));
    int rc = bf_data_to_tset(&train, &val, out);
    bf_rows_free(&train);
    bf_rows_free(&val);
    if (rc) bf_header_release(h);
    return rc;
}

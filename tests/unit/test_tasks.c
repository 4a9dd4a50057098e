/* test_tasks — val rows are held out in every data set bf-data makes: no val
 * row's x equals a train row's x, compared here token by token (not through
 * the library's hashes).  Each case below is one that used to break it
 * (sudoku copies landing on a val puzzle, a seq mixture without instructions
 * where copy and sort write the same row, text of repeated lines), or one
 * that never did and must stay so (modarith, seq with instructions).  The
 * row counts asked for are kept, seq's val rows are distinct, the same seed
 * gives the same tensors, and running out of rows is an error that says so. */
#include "tap.h"

#include "bf/tasks.h"
#include "bf/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const bf_tensor *find(const bf_tset *s, const char *name) { return bf_tset_find(s, name); }

/* val rows whose x equals some train row's x */
static size_t clashes(const bf_tset *s)
{
    const bf_tensor *tx = find(s, "train.x"), *vx = find(s, "val.x");
    size_t T = tx->shape[1], n = 0;
    const int32_t *a = tx->data, *b = vx->data;
    for (size_t i = 0; i < vx->shape[0]; i++)
        for (size_t j = 0; j < tx->shape[0]; j++)
            if (!memcmp(b + i * T, a + j * T, T * sizeof *a)) { n++; break; }
    return n;
}

/* pairs of equal val rows */
static size_t val_repeats(const bf_tset *s)
{
    const bf_tensor *vx = find(s, "val.x");
    size_t T = vx->shape[1], n = 0;
    const int32_t *b = vx->data;
    for (size_t i = 0; i < vx->shape[0]; i++)
        for (size_t j = 0; j < i; j++) n += !memcmp(b + i * T, b + j * T, T * sizeof *b);
    return n;
}

static int same_tensors(const bf_tset *a, const bf_tset *b)
{
    if (a->n != b->n) return 0;
    for (size_t k = 0; k < a->n; k++)
        if (a->t[k].nbytes != b->t[k].nbytes || memcmp(a->t[k].data, b->t[k].data, a->t[k].nbytes)) return 0;
    return 1;
}

static void release(bf_header *h, bf_tset *s)
{
    bf_tset_release(s);
    bf_header_release(h);
}

static void seq_case(const char *what, bf_seq_cfg c)
{
    bf_header h, h2;
    bf_tset s, s2;
    if (!ok(bf_task_seq(&c, &h, &s) == 0, "seq %s: made", what)) { diag("%s", bf_errmsg()); return; }
    is_int((long long)find(&s, "train.x")->shape[0], (long long)c.n_train, "seq %s: %zu train rows", what, c.n_train);
    is_int((long long)find(&s, "val.x")->shape[0], (long long)c.n_val, "seq %s: %zu val rows", what, c.n_val);
    is_int((long long)clashes(&s), 0, "seq %s: no val row's x is a train row's", what);
    is_int((long long)val_repeats(&s), 0, "seq %s: no val row twice", what);
    ok(bf_task_seq(&c, &h2, &s2) == 0 && same_tensors(&s, &s2), "seq %s: the same seed, the same tensors", what);
    release(&h2, &s2);
    release(&h, &s);
}

static void sudoku_case(const char *what, bf_sudoku_cfg c)
{
    bf_header h, h2;
    bf_tset s, s2;
    if (!ok(bf_task_sudoku(&c, &h, &s) == 0, "sudoku %s: made", what)) { diag("%s", bf_errmsg()); return; }
    is_int((long long)find(&s, "train.x")->shape[0], (long long)(c.n_train * (size_t)(1 + c.augment)),
           "sudoku %s: train rows with copies", what);
    is_int((long long)find(&s, "val.x")->shape[0], (long long)c.n_val, "sudoku %s: %zu val rows", what, c.n_val);
    is_int((long long)clashes(&s), 0, "sudoku %s: no val puzzle is a train row or a copy", what);
    ok(bf_task_sudoku(&c, &h2, &s2) == 0 && same_tensors(&s, &s2), "sudoku %s: the same seed, the same tensors", what);
    release(&h2, &s2);
    release(&h, &s);
}

/* a temporary file holding text; its path in path */
static void write_text(char *path, size_t cap, const char *text, int times, const char *tail)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, cap, "%s/bf-test-tasks-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); exit(2); }
    FILE *f = fdopen(fd, "w");
    for (int k = 0; k < times; k++) fputs(text, f);
    fputs(tail, f);
    fclose(f);
}

int main(void)
{
    bf_header h;
    bf_tset s;

    /* modarith: every pair once, in one split */
    bf_modarith_cfg mods[] = {{BF_MOD_ADD, 31, 0.5, 1}, {BF_MOD_MUL, 13, 0.3, 2}, {BF_MOD_DIV, 7, 0.9, 3}};
    for (size_t k = 0; k < sizeof mods / sizeof *mods; k++) {
        if (!ok(bf_task_modarith(&mods[k], &h, &s) == 0, "modarith %s p %d: made", bf_modarith_ops[mods[k].op], mods[k].p))
            continue;
        is_int((long long)clashes(&s), 0, "modarith %s p %d: no val row's x is a train row's", bf_modarith_ops[mods[k].op],
               mods[k].p);
        release(&h, &s);
    }

    /* seq: one task, mixtures with and without instructions, short lengths
     * where inputs repeat (the no-prompt cases clashed before) */
    seq_case("reverse 3-6", (bf_seq_cfg){BF_SEQ_REVERSE, 3, 6, NULL, 2000, 200, 7, 0, 0});
    seq_case("copy 1-2", (bf_seq_cfg){BF_SEQ_COPY, 1, 2, NULL, 80, 25, 1, 0, 0});
    seq_case("sort 1-1 with a prompt", (bf_seq_cfg){BF_SEQ_SORT, 1, 1, "Sort: ", 5, 5, 3, 0, 0});
    unsigned crs = 1u << BF_SEQ_COPY | 1u << BF_SEQ_REVERSE | 1u << BF_SEQ_SORT;
    seq_case("copy,reverse,sort 3-6", (bf_seq_cfg){BF_SEQ_REVERSE, 3, 6, NULL, 6000, 300, 1, crs, 0});
    seq_case("copy,reverse,sort 1-2", (bf_seq_cfg){BF_SEQ_REVERSE, 1, 2, NULL, 60, 30, 1, crs, 0});
    seq_case("copy,reverse,sort 3-6 --no-prompt", (bf_seq_cfg){BF_SEQ_REVERSE, 3, 6, NULL, 6000, 300, 1, crs, 1});
    seq_case("copy,reverse,sort 1-2 --no-prompt", (bf_seq_cfg){BF_SEQ_REVERSE, 1, 2, NULL, 60, 30, 1, crs, 1});
    seq_case("all four 1-2 --no-prompt", (bf_seq_cfg){BF_SEQ_REVERSE, 1, 2, NULL, 90, 20, 5, crs | 1u << BF_SEQ_INCREMENT, 1});

    /* sudoku: augmented copies of train puzzles used to land on val puzzles
     * (20 of 100 in the first case) */
    sudoku_case("4x4 holes 12 augment 20", (bf_sudoku_cfg){4, 12, 12, 20, 200, 100, 1});
    sudoku_case("4x4 holes 11-12 augment 10", (bf_sudoku_cfg){4, 11, 12, 10, 1000, 300, 2});
    sudoku_case("6x6 holes 20-24 augment 5", (bf_sudoku_cfg){6, 20, 24, 5, 100, 30, 3});
    bf_sudoku_cfg few = {4, 12, 12, 300, 1000, 71, 1};
    int rc = bf_task_sudoku(&few, &h, &s);
    ok(rc == -1 && strstr(bf_errmsg(), "equalled a train row"),
       "sudoku: val puzzles run out among 300 copies of 1000 train puzzles: an error that says why (%s)", bf_errmsg());
    if (!rc) release(&h, &s);

    /* text: repeated lines make equal windows; val keeps the others */
    char path[4096];
    write_text(path, sizeof path, "the quick brown fox jumps over the lazy dog\n", 40,
               "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 9876543210 zyxwvutsrqponmlkjihgfedcba\n");
    bf_text_cfg tc = {path, 8, 0.2};
    size_t windows = (size_t)(0.2 * (40 * 44 + 104) + 0.5) / 9;   /* 373 val bytes */
    if (ok(bf_task_text(&tc, &h, &s) == 0, "text of repeated lines: made")) {
        size_t nv = find(&s, "val.x")->shape[0];
        ok(nv > 0 && nv < windows, "text: %zu val windows kept of %zu", nv, windows);
        is_int((long long)clashes(&s), 0, "text: no val window's x is a train window's");
        release(&h, &s);
    } else {
        diag("%s", bf_errmsg());
    }
    unlink(path);
    write_text(path, sizeof path, "abcdefgh\n", 100, "");
    rc = bf_task_text(&tc, &h, &s);
    ok(rc == -1 && strstr(bf_errmsg(), "repeats a train window"), "text: every val window a train window's: an error (%s)",
       bf_errmsg());
    if (!rc) release(&h, &s);
    unlink(path);
    return tap_done();
}

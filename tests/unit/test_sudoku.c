/* test_sudoku — bf-data sudoku's puzzles: each has exactly one solution, the
 * one y gives on its blanks; the solution is a valid grid and keeps the
 * givens; the number of blanks is in range; augmented copies keep all of
 * that; train and val share no puzzle up to relabeling the digits; the same
 * seed gives the same tensors; the solver counts known cases right. */
#include "tap.h"

#include "bf/tasks.h"
#include "bf/util.h"

#include <stdlib.h>
#include <string.h>

/* checks every row of a split; returns the failures */
static int check_split(const bf_tensor *x, const bf_tensor *y, int S, int hmin, int hmax, const char *what)
{
    size_t n = (size_t)(S * S), rows = x->shape[0];
    const int32_t *X = x->data, *Y = y->data;
    int bad = 0;
    for (size_t r = 0; r < rows; r++) {
        uint8_t pz[81], sol[81], found[81];
        int holes = 0;
        for (size_t i = 0; i < n; i++) {
            pz[i] = (uint8_t)X[r * n + i];
            holes += !pz[i];
            sol[i] = pz[i] ? pz[i] : (uint8_t)Y[r * n + i];
            if (pz[i] && Y[r * n + i] != -1) bad++;
        }
        long g;
        int count = bf_sudoku_solutions(S, pz, 2, found, &g);
        if (count != 1 || memcmp(found, sol, n) != 0 || !bf_sudoku_valid(S, sol) || holes < hmin || holes > hmax) {
            if (bad < 3) diag("%s row %zu: %d solutions, holes %d", what, r, count, holes);
            bad++;
        }
    }
    return bad;
}

/* the puzzle with digits renamed by first appearance, as a string */
static void canon(const int32_t *x, int n, char *out)
{
    int map[10] = {0}, next = 1;
    for (int i = 0; i < n; i++) {
        if (x[i] && !map[x[i]]) map[x[i]] = next++;
        out[i] = (char)('0' + (x[i] ? map[x[i]] : 0));
    }
    out[n] = 0;
}

int main(void)
{
    uint8_t full[16] = {1, 2, 3, 4, 3, 4, 1, 2, 2, 1, 4, 3, 4, 3, 2, 1}, empty[81] = {0};
    ok(bf_sudoku_valid(4, full) && bf_sudoku_solutions(4, full, 2, NULL, NULL) == 1, "a full valid 4x4 grid: one solution");
    is_int(bf_sudoku_solutions(4, empty, 1000, NULL, NULL), 288, "the empty 4x4 grid has 288 solutions");
    full[5] = 3;
    ok(!bf_sudoku_valid(4, full) && bf_sudoku_solutions(4, full, 2, NULL, NULL) == 0, "a clash: invalid, no solution");
    is_int(bf_sudoku_solutions(9, empty, 2, NULL, NULL), 2, "the empty 9x9 grid: the counter stops at 2");

    struct { int S, hmin, hmax, aug; size_t nt, nv; } cases[] = {
        {4, 6, 10, 0, 40, 10}, {4, 8, 8, 3, 20, 10}, {6, 18, 24, 2, 40, 10}, {9, 40, 52, 1, 20, 5}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        bf_sudoku_cfg c = {cases[k].S, cases[k].hmin, cases[k].hmax, cases[k].aug, cases[k].nt, cases[k].nv, 7};
        bf_header h, h2;
        bf_tset s, s2;
        char what[64];
        snprintf(what, sizeof what, "%dx%d holes %d-%d augment %d", c.size, c.size, c.holes_min, c.holes_max, c.augment);
        if (!ok(bf_task_sudoku(&c, &h, &s) == 0, "%s: made", what)) { diag("%s", bf_errmsg()); continue; }
        const bf_tensor *tx = bf_tset_find(&s, "train.x"), *ty = bf_tset_find(&s, "train.y");
        const bf_tensor *vx = bf_tset_find(&s, "val.x"), *vy = bf_tset_find(&s, "val.y");
        is_int((long long)tx->shape[0], (long long)(c.n_train * (size_t)(1 + c.augment)), "%s: train rows with copies", what);
        is_int(check_split(tx, ty, c.size, c.holes_min, c.holes_max, "train") + check_split(vx, vy, c.size, c.holes_min, c.holes_max, "val"),
               0, "%s: one solution each, the one y gives, valid, holes in range", what);
        /* no val puzzle equals a train puzzle up to relabeling */
        int n = c.size * c.size, clash = 0;
        char a[82], b[82];
        for (size_t i = 0; i < vx->shape[0]; i++) {
            canon((const int32_t *)vx->data + i * (size_t)n, n, a);
            for (size_t j = 0; j < tx->shape[0]; j++) {
                canon((const int32_t *)tx->data + j * (size_t)n, n, b);
                clash += !strcmp(a, b);
            }
        }
        is_int(clash, 0, "%s: train and val share no puzzle up to relabeling", what);
        bf_task_sudoku(&c, &h2, &s2);
        ok(s2.n == s.n && !memcmp(s2.t[0].data, s.t[0].data, s.t[0].nbytes) && !memcmp(s2.t[3].data, s.t[3].data, s.t[3].nbytes),
           "%s: the same seed, the same tensors", what);
        bf_tset_release(&s);
        bf_tset_release(&s2);
        bf_header_release(&h);
        bf_header_release(&h2);
    }
    bf_sudoku_cfg over = {9, 60, 60, 0, 1, 1, 1};
    int rc = bf_task_sudoku_check(&over);
    ok(rc == -1 && strstr(bf_errmsg(), "at most 59"), "more holes than the bound: refused (%s)", bf_errmsg());
    return tap_done();
}

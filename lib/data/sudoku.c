/* sudoku.c — sudoku puzzles with one solution each (bf/tasks.h, bf-data(1)).
 *
 * Grids of S×S cells (S = 4, 6 or 9) in boxes of br×bc (2×2, 2×3, 3×3),
 * digits 1…S, 0 for a blank.  A puzzle: a random full grid (backtracking
 * with a seeded digit order per cell), then its cells visited in a seeded
 * order, each blanked when the grid keeps exactly one solution (a counter
 * that stops at 2), until the wanted number of holes is reached; a grid that
 * cannot reach it is dropped and another drawn.  No puzzle is made twice, up
 * to relabeling; no val puzzle equals a train row, copies included. */
#include "bf/tasks.h"
#include "bf/util.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define MAXS 9
#define MAXC (MAXS * MAXS)

typedef struct {
    int S, br, bc;                 /* size, box rows, box columns */
    uint16_t row[MAXS], col[MAXS], box[MAXS];   /* digits used, bit d */
    uint8_t g[MAXC];
} board;

static int box_of(const board *b, int r, int c) { return (r / b->br) * (b->S / b->bc) + c / b->bc; }

/* The box shape of a size: 0 and the shape, or -1. */
int bf_sudoku_shape(int S, int *br, int *bc)
{
    if (S == 4) { *br = 2; *bc = 2; return 0; }
    if (S == 6) { *br = 2; *bc = 3; return 0; }
    if (S == 9) { *br = 3; *bc = 3; return 0; }
    return -1;
}

static int setup(board *b, int S, const uint8_t *g)
{
    memset(b, 0, sizeof *b);
    if (bf_sudoku_shape(S, &b->br, &b->bc)) return -1;
    b->S = S;
    for (int i = 0; i < S * S; i++) {
        int d = g[i], r = i / S, c = i % S, x = box_of(b, r, c);
        if (d > S) return -1;
        if (!d) continue;
        uint16_t bit = (uint16_t)(1u << d);
        if ((b->row[r] | b->col[c] | b->box[x]) & bit) return -1;   /* a clash: no solution */
        b->row[r] |= bit;
        b->col[c] |= bit;
        b->box[x] |= bit;
        b->g[i] = (uint8_t)d;
    }
    return 0;
}

static void put(board *b, int i, int d)
{
    int r = i / b->S, c = i % b->S, x = box_of(b, r, c);
    uint16_t bit = (uint16_t)(1u << d);
    if (b->g[i]) {   /* take away what was there */
        uint16_t old = (uint16_t)(1u << b->g[i]);
        b->row[r] &= (uint16_t)~old;
        b->col[c] &= (uint16_t)~old;
        b->box[x] &= (uint16_t)~old;
    }
    b->g[i] = (uint8_t)d;
    if (d) {
        b->row[r] |= bit;
        b->col[c] |= bit;
        b->box[x] |= bit;
    }
}

static uint16_t candidates(const board *b, int i)
{
    int r = i / b->S, c = i % b->S;
    uint16_t all = (uint16_t)(((1u << (b->S + 1)) - 1) & ~1u);
    return (uint16_t)(all & ~(b->row[r] | b->col[c] | b->box[box_of(b, r, c)]));
}

/* Solutions of b, stopping at `limit`; guesses counts branchings (a cell
 * tried with more than one candidate), the solver's measure of hardness. */
static int count(board *b, int limit, long *guesses, uint8_t *first)
{
    int best = -1, bestn = 99;
    for (int i = 0; i < b->S * b->S; i++) {
        if (b->g[i]) continue;
        int n = __builtin_popcount(candidates(b, i));
        if (n < bestn) { bestn = n; best = i; }
        if (n <= 1) break;
    }
    if (best < 0) {   /* full */
        if (first) memcpy(first, b->g, (size_t)(b->S * b->S));
        return 1;
    }
    if (!bestn) return 0;
    if (bestn > 1 && guesses) (*guesses)++;
    int found = 0;
    uint16_t m = candidates(b, best);
    for (int d = 1; d <= b->S && found < limit; d++) {
        if (!(m & (1u << d))) continue;
        put(b, best, d);
        found += count(b, limit - found, guesses, found ? NULL : first);
        put(b, best, 0);
    }
    return found;
}

int bf_sudoku_solutions(int S, const uint8_t *grid, int limit, uint8_t *solution, long *guesses)
{
    board b;
    if (setup(&b, S, grid)) return 0;
    long g = 0;
    int n = count(&b, limit, &g, solution);
    if (guesses) *guesses = g;
    return n;
}

int bf_sudoku_valid(int S, const uint8_t *grid)
{
    board b;
    if (setup(&b, S, grid)) return 0;
    for (int i = 0; i < S * S; i++)
        if (!grid[i]) return 0;
    return 1;
}

/* A random full grid: cells in order, digits in a seeded order per cell. */
static int fill(board *b, int i, bf_rng *r)
{
    if (i == b->S * b->S) return 1;
    uint8_t order[MAXS];
    for (int k = 0; k < b->S; k++) order[k] = (uint8_t)(k + 1);
    for (int k = b->S - 1; k > 0; k--) {
        int j = (int)bf_rng_below(r, (uint64_t)k + 1);
        uint8_t t = order[k]; order[k] = order[j]; order[j] = t;
    }
    uint16_t m = candidates(b, i);
    for (int k = 0; k < b->S; k++) {
        if (!(m & (1u << order[k]))) continue;
        put(b, i, order[k]);
        if (fill(b, i + 1, r)) return 1;
        put(b, i, 0);
    }
    return 0;
}

/* One puzzle with `holes` blanks and one solution; 0, or -1 if this grid
 * could not get there. */
static int make_puzzle(int S, int holes, bf_rng *r, uint8_t *puzzle, uint8_t *solution, long *guesses)
{
    board b;
    uint8_t empty[MAXC] = {0};
    setup(&b, S, empty);
    fill(&b, 0, r);
    memcpy(solution, b.g, (size_t)(S * S));
    memcpy(puzzle, b.g, (size_t)(S * S));
    int order[MAXC], n = S * S, blank = 0;
    for (int k = 0; k < n; k++) order[k] = k;
    for (int k = n - 1; k > 0; k--) {
        int j = (int)bf_rng_below(r, (uint64_t)k + 1);
        int t = order[k]; order[k] = order[j]; order[j] = t;
    }
    for (int k = 0; k < n && blank < holes; k++) {
        uint8_t keep = puzzle[order[k]];
        puzzle[order[k]] = 0;
        if (bf_sudoku_solutions(S, puzzle, 2, NULL, NULL) == 1) blank++;
        else puzzle[order[k]] = keep;
    }
    if (blank < holes) return -1;
    bf_sudoku_solutions(S, puzzle, 2, NULL, guesses);
    return 0;
}

/* The puzzle with its digits renamed in order of first appearance (blanks
 * stay blank): equal for every relabeling of the same puzzle. */
static uint64_t canonical(int S, const uint8_t *g)
{
    uint8_t map[MAXS + 1] = {0}, c[MAXC];
    int next = 1;
    for (int i = 0; i < S * S; i++) {
        if (g[i] && !map[g[i]]) map[g[i]] = (uint8_t)next++;
        c[i] = g[i] ? map[g[i]] : 0;
    }
    return XXH3_64bits(c, (size_t)(S * S));
}

/* a random permutation of 0 … n-1 into p */
static void perm(bf_rng *r, int *p, int n)
{
    for (int k = 0; k < n; k++) p[k] = k;
    for (int k = n - 1; k > 0; k--) {
        int j = (int)bf_rng_below(r, (uint64_t)k + 1);
        int t = p[k]; p[k] = p[j]; p[j] = t;
    }
}

/* A copy that keeps the solution unique: digits relabeled, bands (rows of
 * boxes) and stacks (columns of boxes) shuffled, rows within a band and
 * columns within a stack too.  The same map for puzzle and solution. */
static void augment(int S, const uint8_t *pz, const uint8_t *sol, bf_rng *r, uint8_t *opz, uint8_t *osol)
{
    int br = 1, bc = 1;
    bf_sudoku_shape(S, &br, &bc);
    int nb = S / br, ns = S / bc, digit[MAXS], band[MAXS], stack[MAXS], rows[MAXS], cols[MAXS];
    perm(r, digit, S);
    perm(r, band, nb);
    perm(r, stack, ns);
    int rmap[MAXS], cmap[MAXS];
    for (int b = 0; b < nb; b++) {
        perm(r, rows, br);
        for (int k = 0; k < br; k++) rmap[b * br + k] = band[b] * br + rows[k];
    }
    for (int s = 0; s < ns; s++) {
        perm(r, cols, bc);
        for (int k = 0; k < bc; k++) cmap[s * bc + k] = stack[s] * bc + cols[k];
    }
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) {
            int from = rmap[i] * S + cmap[j];
            opz[i * S + j] = pz[from] ? (uint8_t)(digit[pz[from] - 1] + 1) : 0;
            osol[i * S + j] = (uint8_t)(digit[sol[from] - 1] + 1);
        }
}

int bf_sudoku_max_holes(int S) { return S == 4 ? 12 : S == 6 ? 27 : S == 9 ? 59 : 0; }

int bf_task_sudoku_check(const bf_sudoku_cfg *c)
{
    int br = 0, bc = 0;
    if (bf_sudoku_shape(c->size, &br, &bc)) return bf_err("--size must be 4, 6 or 9");
    int mx = bf_sudoku_max_holes(c->size);
    if (c->holes_min < 1 || c->holes_max < c->holes_min)
        return bf_err("--holes K or K-K2 with 1 <= K <= K2");
    if (c->holes_max > mx)
        return bf_err("a %dx%d grid keeps one solution with at most %d holes here; --holes asks for %d", c->size, c->size,
                      mx, c->holes_max);
    if (c->augment < 0 || c->augment > 1000) return bf_err("--augment must be 0 to 1000");
    return 0;
}

int bf_task_sudoku(const bf_sudoku_cfg *c, bf_header *h, bf_tset *out)
{
    if (bf_task_sudoku_check(c)) return -1;
    int S = c->size;
    size_t n = (size_t)(S * S);
    bf_rows train, val;
    bf_rows_init(&train, n);
    bf_rows_init(&val, n);
    bf_rng rng = bf_rng_derive(c->seed, "sudoku.grids"), arng = bf_rng_derive(c->seed, "sudoku.augment");
    /* canonical puzzles already made: none (up to relabeling) in both splits,
     * nor twice; and the x of every train row, copies included, which a val
     * puzzle may not be (a copy can land on one, relabeled and shuffled) */
    bf_keyset seen = {0}, train_x = {0};
    long guesses_total = 0;
    int rc = 0;
    uint8_t pz[MAXC], sol[MAXC], apz[MAXC], asol[MAXC];
    int32_t vx[MAXC];
    for (size_t k = 0; k < c->n_train + c->n_val && !rc; k++) {
        int holes = c->holes_min + (int)bf_rng_below(&rng, (uint64_t)(c->holes_max - c->holes_min + 1));
        long guesses = 0;
        int tries = 0, short_of = 0, in_train = 0;
        for (;;) {
            if (++tries > 2000) {
                if (short_of == tries - 1)
                    rc = bf_err("no %dx%d grid reached %d holes in 2000 tries (lower --holes)", S, S, holes);
                else if (in_train)
                    rc = bf_err("no new %dx%d val puzzle with %d holes in 2000 tries: %d equalled a train row or copy, "
                                "%d a puzzle made before (fewer rows or --augment copies, or other --holes)",
                                S, S, holes, in_train, tries - 1 - short_of - in_train);
                else
                    rc = bf_err("only %zu distinct %dx%d puzzles with %d holes after 2000 tries (fewer rows, or more "
                                "holes)", seen.n, S, S, holes);
                break;
            }
            if (make_puzzle(S, holes, &rng, pz, sol, &guesses)) { short_of++; continue; }
            uint64_t key = canonical(S, pz);
            if (bf_keyset_has(&seen, key)) continue;
            if (k >= c->n_train) {
                for (size_t i = 0; i < n; i++) vx[i] = pz[i];
                if (bf_keyset_has(&train_x, bf_row_key(vx, n))) { in_train++; continue; }
            }
            bf_keyset_add(&seen, key);
            break;
        }
        if (rc) break;
        guesses_total += guesses;
        int copies = k < c->n_train ? 1 + c->augment : 1;
        for (int a = 0; a < copies; a++) {
            const uint8_t *p = pz, *s = sol;
            if (a) {
                augment(S, pz, sol, &arng, apz, asol);
                p = apz;
                s = asol;
            }
            bf_rows *dst = k < c->n_train ? &train : &val;
            int32_t *x = bf_rows_add(dst), *y = dst->y + (dst->rows - 1) * n;
            for (size_t i = 0; i < n; i++) {
                x[i] = p[i];
                y[i] = p[i] ? -1 : s[i];
            }
            if (dst == &train && c->n_val) bf_keyset_add(&train_x, bf_row_key(x, n));
        }
    }
    bf_keyset_free(&seen);
    bf_keyset_free(&train_x);
    if (!rc) {
        bf_header_init(h, "data");
        bf_val_set(h->meta, "task", bf_val_str("sudoku"));
        bf_val_set(h->meta, "vocab", bf_val_int(S + 1));
        bf_val_set(h->meta, "ctx", bf_val_int((int64_t)n));
        bf_val_set(h->meta, "size", bf_val_int(S));
        bf_val_set(h->meta, "holes_min", bf_val_int(c->holes_min));
        bf_val_set(h->meta, "holes_max", bf_val_int(c->holes_max));
        bf_val_set(h->meta, "augment", bf_val_int(c->augment));
        bf_val_set(h->meta, "mean_guesses",
                   bf_val_float(c->n_train + c->n_val ? (double)guesses_total / (double)(c->n_train + c->n_val) : 0));
        bf_val_set(h->meta, "seed", bf_val_int((int64_t)c->seed));
        rc = bf_data_to_tset(&train, &val, out);
        if (rc) bf_header_release(h);
    }
    bf_rows_free(&train);
    bf_rows_free(&val);
    return rc;
}

/* bf-quantize — F32 block matrices to ternary (bf-quantize(1)), tensor by tensor. */
#include "cli.h"
#include "bf/quant.h"
#include "bf/tgroup.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-quantize [options] [MODEL]\n"
    "\n"
    "Quantizes a float model's block matrices blk.*.w{q,k,v,o,1,2,3} to ternary\n"
    "weights: W becomes W (TQ2 or TQ1 codes) and W.scale (F32), W ~ scale·codes.\n"
    "Embeddings, head and norms stay F32.  Works one tensor at a time, so memory\n"
    "stays near the size of the largest tensor.\n"
    "\n"
    "  --method absmean|threshold  absmean (BitNet b1.58, default):\n"
    "                     g = max(mean|W|, 1e-5), codes = clamp(round(W/g), -1, 1),\n"
    "                     scale = g; threshold: per row a = mean|W_row|, code\n"
    "                     sign(w) where |w| > T·a, scale = mean |w| over the row's\n"
    "                     non-zero codes (always one scale per row)\n"
    "  --threshold T      T for --method threshold (default 0.1)\n"
    "  --per-row          absmean with one scale per output row\n"
    "  --pack tq2|tq1     packing: 2 bits/weight, or 1.6 (default tq2)\n"
    "  --include GLOB     quantize only block matrices matching GLOB (fnmatch(3));\n"
    "                     repeatable; each GLOB must match at least one\n"
    "  --keep-latent      also write W.latent, the F32 weights, for straight-\n"
    "                     through training to continue from\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { O_METHOD = BF_OPT_PROGRAM, O_THRESHOLD, O_PERROW, O_PACK, O_INCLUDE, O_KEEP };

#define MAX_GLOBS 64

struct cmdline {
    const char *input;
    bf_qspec q;
    const char *globs[MAX_GLOBS];
    int nglobs, keep_latent, have_threshold;
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT,
        {"method", required_argument, 0, O_METHOD}, {"threshold", required_argument, 0, O_THRESHOLD},
        {"per-row", no_argument, 0, O_PERROW}, {"pack", required_argument, 0, O_PACK},
        {"include", required_argument, 0, O_INCLUDE}, {"keep-latent", no_argument, 0, O_KEEP}, {0, 0, 0, 0}};
    static const char *const methods[] = {"absmean", "threshold", NULL}, *const packs[] = {"tq2", "tq1", NULL};
    memset(cl, 0, sizeof *cl);
    cl->q = (bf_qspec){BF_Q_ABSMEAN, 0.1f, 0, BF_TQ2};
    bf_cli_begin(argc, argv, "bf-quantize", usage);
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg)) continue;
        switch (c) {
        case O_METHOD: cl->q.method = bf_parse_choice("method", optarg, methods) ? BF_Q_THRESHOLD : BF_Q_ABSMEAN; break;
        case O_THRESHOLD: cl->q.tau = (float)bf_parse_double("threshold", optarg, 0, 100); cl->have_threshold = 1; break;
        case O_PERROW: cl->q.per_row = 1; break;
        case O_PACK: cl->q.pack = bf_parse_choice("pack", optarg, packs) ? BF_TQ1 : BF_TQ2; break;
        case O_INCLUDE:
            if (cl->nglobs == MAX_GLOBS) bf_usage_die("at most %d --include", MAX_GLOBS);
            cl->globs[cl->nglobs++] = optarg;
            break;
        case O_KEEP: cl->keep_latent = 1; break;
        default: bf_usage_die("unexpected option");
        }
    }
    if (cl->have_threshold && cl->q.method != BF_Q_THRESHOLD) bf_usage_die("--threshold needs --method threshold");
    if (cl->q.per_row && cl->q.method == BF_Q_THRESHOLD) bf_usage_die("--method threshold is always per row; drop --per-row");
    if (cl->q.method == BF_Q_THRESHOLD) cl->q.per_row = 1;
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(1);
}

/* blk.N.w{q,k,v,o,1,2,3} */
static int is_block_matrix(const char *name)
{
    const char *p = name;
    if (strncmp(p, "blk.", 4) != 0) return 0;
    p += 4;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    return p[0] == '.' && p[1] == 'w' && p[2] && strchr("qkvo123", p[2]) && !p[3];
}

static void fail(bf_writer *w, const char *fmt, const char *name)
{
    bf_writer_abort(w);
    bf_die(fmt, name);
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    bf_reader *r;
    bf_writer *w = bf_cli_open_model_filter(cl.input, &r);
    int matched[MAX_GLOBS] = {0};
    bf_tensor t;
    int rc;
    while ((rc = bf_reader_next(r, &t)) == 1) {
        int take = 0;
        if (is_block_matrix(t.name)) {
            take = cl.nglobs == 0;
            for (int g = 0; g < cl.nglobs; g++)
                if (fnmatch(cl.globs[g], t.name, 0) == 0) { matched[g] = 1; take = 1; }
        }
        if (!take) {   /* passes through byte for byte */
            if (bf_writer_tensor(w, &t)) { bf_writer_abort(w); bf_die_lib(); }
            bf_reader_recycle(r, &t);
            continue;
        }
        if (bf_dtype_is_ternary(t.dtype)) fail(w, "'%s' is already ternary", t.name);
        char longest[BF_MAX_NAME + 1];   /* training adds W.latent later: the name must take it */
        if (bf_tgroup_part_name(longest, t.name, "latent")) fail(w, "'%s' is too long a name to add .scale and .latent", t.name);
        if (t.dtype != BF_F32 || t.ndim != 2) fail(w, "'%s' is not an F32 matrix", t.name);
        size_t rows = t.shape[0], cols = t.shape[1], n = rows * cols, ns = bf_qspec_nscales(&cl.q, rows);
        const float *x = t.data;
        for (size_t k = 0; k < n; k++)
            if (!isfinite(x[k])) fail(w, "'%s' holds a non-finite weight", t.name);
        int8_t *codes = bf_xmalloc(n ? n : 1);
        float *scale = bf_xmalloc(ns * sizeof(float));
        bf_quant_weights(&cl.q, x, rows, cols, codes, scale);
        bf_tensor group[3];
        if (bf_tgroup_make(group, t.name, &cl.q, codes, scale, rows, cols, cl.keep_latent ? x : NULL)) {
            bf_writer_abort(w);
            bf_die_lib();
        }
        for (int k = 0; k < (cl.keep_latent ? 3 : 2); k++) {
            if (bf_writer_tensor(w, &group[k])) { bf_writer_abort(w); bf_die_lib(); }
            bf_tensor_release(&group[k]);
        }
        bf_reader_recycle(r, &t);
        free(codes);
        free(scale);
    }
    if (rc < 0) { bf_writer_abort(w); bf_die_lib(); }
    for (int g = 0; g < cl.nglobs; g++)
        if (!matched[g]) { bf_writer_abort(w); bf_die("--include '%s' matches no block matrix", cl.globs[g]); }
    bf_reader_close(r);
    bf_cli_close_output(w);
    return 0;
}

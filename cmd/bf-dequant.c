/* bf-dequant — ternary weights back to F32, tensor by tensor. */
#include "cli.h"
#include "bf/tgroup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-dequant [--from codes|latent] [options] [MODEL]\n"
    "\n"
    "Turns every ternary tensor W (with W.scale, and W.latent if present) into\n"
    "one F32 tensor W; W.scale and W.latent leave the stream.  Every other tensor\n"
    "passes through byte for byte.\n"
    "\n"
    "  --from codes       W = scale·codes (default)\n"
    "  --from latent      W = W.latent, the straight-through shadow weights; an\n"
    "                     error names any ternary tensor without one\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { O_FROM = BF_OPT_PROGRAM };

struct cmdline {
    const char *input;
    int from_latent;
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {BF_OPTS_BASE, BF_OPTS_OUTPUT, {"from", required_argument, 0, O_FROM}, {0, 0, 0, 0}};
    static const char *const froms[] = {"codes", "latent", NULL};
    memset(cl, 0, sizeof *cl);
    bf_cli_begin(argc, argv, "bf-dequant", usage);
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg)) continue;
        if (c == O_FROM) cl->from_latent = bf_parse_choice("from", optarg, froms);
        else bf_usage_die("unexpected option");
    }
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(1);
}

/* Ternary tensors wait here until the parts they need have come by. */
typedef struct {
    bf_tensor w;
    bf_tensor scale;     /* data NULL until seen */
    int done;
} pending;

/* The pending W whose part ("scale" or "latent") this tensor is, if any. */
static pending *find(pending *p, size_t n, const char *name, const char *part)
{
    const char *is;
    size_t len = bf_tgroup_split_name(name, &is);
    if (!len || strcmp(is, part) != 0) return NULL;
    for (size_t k = 0; k < n; k++)
        if (strlen(p[k].w.name) == len && strncmp(p[k].w.name, name, len) == 0) return &p[k];
    return NULL;
}

static void emit(bf_writer *w, bf_tensor *t)
{
    if (bf_writer_tensor(w, t)) { bf_writer_abort(w); bf_die_lib(); }
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    bf_reader *r;
    bf_writer *w = bf_cli_open_model_filter(cl.input, &r);
    pending *pend = NULL;
    size_t npend = 0;
    bf_tensor t;
    int rc;
    while ((rc = bf_reader_next(r, &t)) == 1) {
        if (bf_dtype_is_ternary(t.dtype)) {
            pend = bf_xrealloc(pend, (npend + 1) * sizeof *pend);
            memset(&pend[npend], 0, sizeof *pend);
            pend[npend++].w = t;
            continue;
        }
        pending *p = find(pend, npend, t.name, "scale");
        if (!p) p = find(pend, npend, t.name, "latent");
        if (p && p->done) {   /* W is out already: its other parts leave the stream */
            bf_reader_recycle(r, &t);
            continue;
        }
        p = find(pend, npend, t.name, "scale");
        if (p) {
            bf_tgroup g;
            if (bf_tgroup_check(&g, &p->w, &t, NULL)) { bf_writer_abort(w); bf_die_lib(); }
            if (cl.from_latent) { p->scale = t; continue; }   /* kept only to name what is missing */
            /* scale·codes, in place of W */
            bf_tensor out;
            if (bf_tensor_init(&out, p->w.name, BF_F32, 2, p->w.shape)) { bf_writer_abort(w); bf_die_lib(); }
            bf_tgroup_dequant(&g, out.data);
            emit(w, &out);
            bf_tensor_release(&out);
            bf_tensor_release(&t);
            bf_tensor_release(&p->w);
            p->done = 1;
            continue;
        }
        p = find(pend, npend, t.name, "latent");
        if (p) {
            if (!cl.from_latent) { bf_reader_recycle(r, &t); continue; }
            if (t.dtype != BF_F32 || t.ndim != 2 || t.shape[0] != p->w.shape[0] || t.shape[1] != p->w.shape[1]) {
                bf_writer_abort(w);
                bf_die("'%s' is not F32 of the weight's shape", t.name);
            }
            memcpy(t.name, p->w.name, sizeof t.name);
            bf_val_free(t.meta);
            t.meta = NULL;
            emit(w, &t);
            bf_tensor_release(&t);
            bf_tensor_release(&p->w);
            bf_tensor_release(&p->scale);
            p->done = 1;
            continue;
        }
        emit(w, &t);
        bf_reader_recycle(r, &t);
    }
    if (rc < 0) { bf_writer_abort(w); bf_die_lib(); }
    for (size_t k = 0; k < npend; k++)
        if (!pend[k].done) {
            bf_writer_abort(w);
            bf_die("ternary '%s' has no %s", pend[k].w.name, cl.from_latent ? (pend[k].scale.data ? "latent" : "scale") : "scale");
        }
    free(pend);
    bf_reader_close(r);
    bf_cli_close_output(w);
    return 0;
}

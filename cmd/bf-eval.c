/* bf-eval — inspect a stream (tensors, dtypes, sizes, bits/weight), or
 * evaluate a model on a data set (loss, token accuracy, exact match). */
#include "cli.h"
#include "bf/data.h"
#include "bf/model.h"
#include "bf/ternary.h"
#include "bf/bake.h"
#include "bf/lora.h"
#include "bf/tgroup.h"
#include "bf/trm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-eval [options] [STREAM]\n"
    "\n"
    "Reads and verifies a whole stream (stdin when STREAM is absent or '-') and\n"
    "prints a table: a row per tensor with its dtype, shape, parameters, bytes\n"
    "and bits per weight; for ternary tensors the shares of -1/0/+1 codes and\n"
    "the scale; then totals and the ratio to the same parameters in F32.\n"
    "\n"
    "With --data, evaluates the model STREAM on a data set instead: mean loss\n"
    "over targeted positions, token accuracy, and exact match (rows whose every\n"
    "targeted position is predicted right under teacher forcing).  A recursive\n"
    "model (see bf-init(1)) runs its recursion instead: exact match is a\n"
    "puzzle whose every blank is right, with the mean supervision steps used and\n"
    "exact match after 1, 2, 4, 8 and 16 steps without halting.\n"
    "\n"
    "  --data DATA        evaluate on this data stream\n"
    "  --split val|train  which split (default val)\n"
    "  --batch N          rows per forward pass (default 64)\n"
    "  --incremental      one position of each row per forward, with a key/value\n"
    "                     cache, as generation runs (same metrics)\n"
    "  --fake-quant       run ternary layers in float (scale·codes times the\n"
    "                     dequantized int8 activations) instead of int8 × ternary\n"
    "                     integer kernels\n"
    "  --compare REF      also the model REF on the same rows: KL(REF || STREAM),\n"
    "                     mean over the targeted positions, and REF's metrics\n"
    "  --ref-prompt TEXT  with --compare: REF reads TEXT (bytes) before each row,\n"
    "                     STREAM the bare row (how far a baked model is from its\n"
    "                     prompted teacher)\n"
    "  --adapter A        evaluate STREAM with the LoRA adapter A attached, not\n"
    "                     merged (ternary layers then run in float)\n"
    "  --halt P           recursive models: a row stops at the first supervision\n"
    "                     step whose halting probability is above P (default\n"
    "                     0.5; 1: never)\n"
    "  --max-steps K      recursive models: at most K supervision steps (default\n"
    "                     the model's sup)\n"
    "  --logprobs FILE    also write the model's log-probabilities at every\n"
    "                     position of the split's rows to FILE (a stream of kind\n"
    "                     \"logprobs\": F32 [rows, T, vocab]), for comparing with\n"
    "                     another implementation\n"
    "  --lineage          instead of the table: the programs that made the\n"
    "                     stream, oldest first, one a line with its arguments\n"
    "  --threads N        threads (default: all cores)\n"
    "  --json             one JSON object instead of the table\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { O_JSON = BF_OPT_PROGRAM, O_DATA, O_SPLIT, O_BATCH, O_FAKE, O_INCR, O_COMPARE, O_ADAPTER, O_REF_PROMPT, O_HALT, O_MAXSTEPS, O_LINEAGE, O_LOGPROBS };

struct cmdline {
    const char *input, *data, *compare, *adapter, *ref_prompt, *logprobs;
    int json, split_train, batch, fake_quant, incremental, lineage;
    double halt;               /* recursive models: halting probability threshold */
    int max_steps, have_halt;  /* 0: the model's sup */
};

typedef struct {
    bf_tensor t;          /* header fields only; payload released */
    uint64_t params, counts[3];
    int has_scale;        /* ternary: a W.scale tensor was found */
    uint64_t scale_n;
    double scale_mean;    /* filled for F32 tensors named *.scale */
} row;

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {BF_OPTS_BASE, BF_OPTS_THREADS, {"json", no_argument, 0, O_JSON},
                                         {"data", required_argument, 0, O_DATA}, {"split", required_argument, 0, O_SPLIT},
                                         {"batch", required_argument, 0, O_BATCH},
                                         {"fake-quant", no_argument, 0, O_FAKE},
                                         {"incremental", no_argument, 0, O_INCR},
                                         {"compare", required_argument, 0, O_COMPARE},
                                         {"adapter", required_argument, 0, O_ADAPTER},
                                         {"ref-prompt", required_argument, 0, O_REF_PROMPT},
                                         {"halt", required_argument, 0, O_HALT},
                                         {"max-steps", required_argument, 0, O_MAXSTEPS},
                                         {"lineage", no_argument, 0, O_LINEAGE},
                                         {"logprobs", required_argument, 0, O_LOGPROBS}, {0, 0, 0, 0}};
    static const char *const splits[] = {"val", "train", NULL};
    memset(cl, 0, sizeof *cl);
    cl->batch = 64;
    cl->halt = 0.5;
    int needs_data = 0;   /* an option that only --data uses was given */
    bf_cli_begin(argc, argv, "bf-eval", usage);
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg)) continue;
        switch (c) {
        case O_JSON: cl->json = 1; break;
        case O_LINEAGE: cl->lineage = 1; break;
        case O_DATA: cl->data = optarg; break;
        case O_SPLIT: cl->split_train = bf_parse_choice("split", optarg, splits); needs_data = 1; break;
        case O_BATCH: cl->batch = (int)bf_parse_int("batch", optarg, 1, 1 << 20); needs_data = 1; break;
        case O_FAKE: cl->fake_quant = 1; needs_data = 1; break;
        case O_INCR: cl->incremental = 1; needs_data = 1; break;
        case O_COMPARE: cl->compare = optarg; needs_data = 1; break;
        case O_ADAPTER: cl->adapter = optarg; needs_data = 1; break;
        case O_REF_PROMPT: cl->ref_prompt = optarg; needs_data = 1; break;
        case O_HALT: cl->halt = bf_parse_double("halt", optarg, 0, 1); cl->have_halt = 1; needs_data = 1; break;
        case O_LOGPROBS: cl->logprobs = optarg; needs_data = 1; break;
        case O_MAXSTEPS: cl->max_steps = (int)bf_parse_int("max-steps", optarg, 1, BF_MAX_SUP); cl->have_halt = 1; needs_data = 1; break;
        default: bf_usage_die("unexpected option");
        }
    }
    if (!cl->data && needs_data)
        bf_usage_die("--split, --batch, --fake-quant, --incremental, --compare, --adapter, --logprobs, --halt and --max-steps need --data");
    if (cl->logprobs && cl->incremental) bf_usage_die("--logprobs comes from whole rows: not with --incremental");
    if (cl->lineage && cl->data) bf_usage_die("--lineage prints a stream's history: not with --data");
    if (cl->adapter) cl->fake_quant = 1;   /* a LoRA adapter computes with the float weights */
    if (cl->ref_prompt && !cl->compare) bf_usage_die("--ref-prompt is REF's prompt: it needs --compare REF");
    if (cl->ref_prompt && strlen(cl->ref_prompt) > 4096) bf_usage_die("--ref-prompt longer than 4096 bytes");
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(0);
}

static void shape_str(const bf_tensor *t, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = 0;
    if (t->ndim == 0) { snprintf(buf, n, "scalar"); return; }
    for (int k = 0; k < t->ndim && at < n; k++)
        at += (size_t)snprintf(buf + at, n - at, "%s%llu", k ? "x" : "", (unsigned long long)t->shape[k]);
}

static double bits_of(const row *r) { return r->params ? 8.0 * (double)r->t.nbytes / (double)r->params : 0; }

static void print_table(const bf_header *h, row *rows, size_t n, uint64_t params, uint64_t bytes)
{
    printf("kind: %s\n", h->kind);
    printf("%-28s %-5s %-14s %12s %12s %7s %6s %6s %6s %10s\n", "tensor", "dtype", "shape", "params", "bytes",
           "bits/w", "-1", "0", "+1", "scale");
    for (size_t k = 0; k < n; k++) {
        row *r = &rows[k];
        char shape[96];
        shape_str(&r->t, shape, sizeof shape);
        printf("%-28s %-5s %-14s %12llu %12llu %7.2f", r->t.name, bf_dtype_name(r->t.dtype), shape,
               (unsigned long long)r->params, (unsigned long long)r->t.nbytes, bits_of(r));
        if (bf_dtype_is_ternary(r->t.dtype)) {
            double tot = (double)(r->params ? r->params : 1);
            printf(" %6.3f %6.3f %6.3f", (double)r->counts[0] / tot, (double)r->counts[1] / tot, (double)r->counts[2] / tot);
            if (r->has_scale) printf(" %10.4g%s", r->scale_mean, r->scale_n > 1 ? " (row mean)" : "");
        }
        putchar('\n');
    }
    double bpw = params ? 8.0 * (double)bytes / (double)params : 0;
    printf("%-28s %-5s %-14s %12llu %12llu %7.2f\n", "total", "", "", (unsigned long long)params,
           (unsigned long long)bytes, bpw);
    printf("ratio to F32: %.2fx\n", bytes ? 4.0 * (double)params / (double)bytes : 0);
}

static void print_json(const bf_header *h, row *rows, size_t n, uint64_t params, uint64_t bytes)
{
    printf("{\"kind\":");
    bf_json_str(stdout, h->kind, strlen(h->kind));
    printf(",\"meta\":");
    bf_val_json(stdout, h->meta);
    printf(",\"tensors\":[");
    for (size_t k = 0; k < n; k++) {
        row *r = &rows[k];
        printf("%s{\"name\":", k ? "," : "");
        bf_json_str(stdout, r->t.name, strlen(r->t.name));
        printf(",\"dtype\":\"%s\",\"shape\":[", bf_dtype_name(r->t.dtype));
        for (int j = 0; j < r->t.ndim; j++) printf("%s%llu", j ? "," : "", (unsigned long long)r->t.shape[j]);
        printf("],\"params\":%llu,\"bytes\":%llu,\"bits_per_weight\":", (unsigned long long)r->params,
               (unsigned long long)r->t.nbytes);
        bf_json_num(stdout, bits_of(r));
        if (bf_dtype_is_ternary(r->t.dtype)) {
            double tot = (double)(r->params ? r->params : 1);
            printf(",\"shares\":{\"-1\":");
            bf_json_num(stdout, (double)r->counts[0] / tot);
            printf(",\"0\":");
            bf_json_num(stdout, (double)r->counts[1] / tot);
            printf(",\"+1\":");
            bf_json_num(stdout, (double)r->counts[2] / tot);
            putchar('}');
            if (r->has_scale) {
                printf(",\"scale\":");
                bf_json_num(stdout, r->scale_mean);
                printf(",\"scale_per_row\":%s", r->scale_n > 1 ? "true" : "false");
            }
        }
        putchar('}');
    }
    printf("],\"totals\":{\"params\":%llu,\"bytes\":%llu,\"bits_per_weight\":", (unsigned long long)params,
           (unsigned long long)bytes);
    bf_json_num(stdout, params ? 8.0 * (double)bytes / (double)params : 0);
    printf(",\"ratio_to_f32\":");
    bf_json_num(stdout, bytes ? 4.0 * (double)params / (double)bytes : 0);
    printf("}}\n");
}

/* A word of a lineage line: as is when the shell would read it back so,
 * otherwise in single quotes (a ' inside as '\\'') */
static void put_word(const char *w)
{
    int plain = *w != 0;
    for (const char *c = w; *c && plain; c++) plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./,:=+@%", *c) != NULL;
    if (plain) { fputs(w, stdout); return; }
    putchar('\'');
    for (const char *c = w; *c; c++)
        if (*c == '\'') fputs("'\\''", stdout);
        else putchar(*c);
    putchar('\'');
}

/* The lineage, oldest first: "N  tool version  args" a line, or JSON. */
static void print_lineage(const bf_header *h, int json)
{
    const bf_val *l = h->lineage;
    size_t n = l && l->type == BF_ARR ? l->v.a.n : 0;
    if (json) {
        printf("{\"lineage\":");
        if (n) bf_val_json(stdout, l);
        else printf("[]");
        printf("}\n");
        return;
    }
    for (size_t k = 0; k < n; k++) {
        const bf_val *e = &l->v.a.items[k];
        int map = e->type == BF_MAP;
        const char *tool = map ? bf_val_get_str(e, "tool") : NULL, *ver = map ? bf_val_get_str(e, "version") : NULL;
        printf("%zu  %s %s ", k + 1, tool ? tool : "?", ver ? ver : "?");
        const bf_val *args = map ? bf_val_get(e, "args") : NULL;
        for (size_t a = 0; args && args->type == BF_ARR && a < args->v.a.n; a++) {
            const bf_val *w = &args->v.a.items[a];
            putchar(' ');
            if (w->type == BF_STR) put_word(w->v.s.p);
            else fputs("?", stdout);
        }
        putchar('\n');
    }
}

static void inspect(const struct cmdline *cl)
{
    bf_reader *r = bf_cli_open_input(cl->input);
    row *rows = NULL;
    size_t n = 0, cap = 0;
    uint64_t params = 0, bytes = 0;
    int rc;
    bf_tensor t;
    while ((rc = bf_reader_next(r, &t)) == 1) {
        if (n == cap) rows = bf_xrealloc(rows, (cap = cap ? 2 * cap : 64) * sizeof *rows);
        row *w = &rows[n++];
        memset(w, 0, sizeof *w);
        w->params = bf_tensor_numel(&t);
        if (bf_dtype_is_ternary(t.dtype)) bf_ternary_count(t.dtype, t.data, t.shape[0], t.shape[1], w->counts);
        size_t len = strlen(t.name);
        if (t.dtype == BF_F32 && len > 6 && strcmp(t.name + len - 6, ".scale") == 0 && w->params) {
            double s = 0;
            for (uint64_t j = 0; j < w->params; j++) s += ((const float *)t.data)[j];
            w->scale_mean = s / (double)w->params;
            w->scale_n = w->params;
        }
        params += w->params;
        bytes += t.nbytes;
        bf_reader_recycle(r, &t);
        w->t = t;
        w->t.data = NULL;
        w->t.meta = NULL;
    }
    if (rc < 0) bf_die_lib();
    /* attach each ternary tensor's scale, wherever it came in the stream */
    for (size_t k = 0; k < n; k++) {
        if (!bf_dtype_is_ternary(rows[k].t.dtype)) continue;
        char want[BF_MAX_NAME + 1];
        if (bf_tgroup_part_name(want, rows[k].t.name, "scale")) continue;
        for (size_t j = 0; j < n; j++)
            if (rows[j].scale_n && strcmp(rows[j].t.name, want) == 0) {
                rows[k].has_scale = 1;
                rows[k].scale_mean = rows[j].scale_mean;
                rows[k].scale_n = rows[j].scale_n;
            }
    }
    if (cl->lineage) print_lineage(bf_reader_header(r), cl->json);
    else if (cl->json) print_json(bf_reader_header(r), rows, n, params, bytes);
    else print_table(bf_reader_header(r), rows, n, params, bytes);
    bf_reader_close(r);
    free(rows);
}

/* A model stream for evaluation: in float (fake_quant) or on the integer kernels. */
static void load_model(const char *path, int fake_quant, bf_header *h, bf_model *m, uint64_t *digest)
{
    bf_tset s;
    if (bf_read_all(path, h, &s)) bf_die_lib();
    if ((fake_quant ? bf_model_from_tset : bf_model_load_for_inference)(m, h, &s))
        bf_die("%s: %s", path && strcmp(path, "-") ? path : "stdin", bf_errmsg());
    if (fake_quant) bf_model_use_float_products(m);
    if (digest) *digest = bf_tset_digest(&s);
    bf_tset_release(&s);
}

/* The opening of --json's object (no closing brace): the split's metrics. */
static void json_metrics(const char *split, size_t rows, size_t targets, size_t T, double secs, double loss,
                         double token_acc, double exact)
{
    printf("{\"split\":\"%s\",\"rows\":%zu,\"targets\":%zu,\"tokens\":%zu,\"seconds\":", split, rows, targets,
           rows * T);
    bf_json_num(stdout, round(secs * 1e4) / 1e4);
    printf(",\"loss\":");
    bf_json_num(stdout, loss);
    printf(",\"token_acc\":");
    bf_json_num(stdout, token_acc);
    printf(",\"exact\":");
    bf_json_num(stdout, exact);
}

/* A recursive model: its recursion with halting, and the table of exact
 * match against supervision steps. */
static void evaluate_recursive(const struct cmdline *cl, bf_model *m, const bf_split *sp, const char *split)
{
    if (cl->compare || cl->adapter || cl->incremental || cl->logprobs)
        bf_die("a recursive model is evaluated alone: no --compare, --adapter, --incremental or --logprobs");
    int K = cl->max_steps ? cl->max_steps : m->cfg.rec_sup;
    bf_trm_metrics r;
    double t0 = bf_now();
    if (bf_trm_eval(m, sp, cl->batch, cl->halt, K, 1, &r)) bf_die_lib();
    double secs = bf_now() - t0;
    if (cl->json) {
        json_metrics(split, r.rows, r.targets, sp->T, secs, r.loss, r.token_acc, r.exact);
        printf(",\"halt\":");
        bf_json_num(stdout, cl->halt);
        printf(",\"max_steps\":%d,\"mean_steps\":", K);
        bf_json_num(stdout, r.mean_steps);
        printf(",\"exact_at_steps\":{");
        for (int j = 0, first = 1; j < BF_TRM_TABLE; j++) {
            if (r.exact_at[j] < 0) continue;
            printf("%s\"%d\":", first ? "" : ",", bf_trm_table_steps[j]);
            bf_json_num(stdout, r.exact_at[j]);
            first = 0;
        }
        printf("}}\n");
    } else {
        printf("split %s  rows %zu  targets %zu  loss %.6f  token_acc %.4f  exact %.4f  mean_steps %.2f (halt %.3g, max %d)\n",
               split, r.rows, r.targets, r.loss, r.token_acc, r.exact, r.mean_steps, cl->halt, K);
        printf("exact without halting:");
        for (int j = 0; j < BF_TRM_TABLE; j++)
            if (r.exact_at[j] >= 0) printf("  %d step%s %.4f", bf_trm_table_steps[j], j ? "s" : "", r.exact_at[j]);
        putchar('\n');
    }
}

/* The largest --logprobs array: rows·T·vocab F32 values of at most 1 GiB. */
#define MAX_LOGPROBS_BYTES (1ull << 30)

/* --logprobs: log-softmax of the logits at every position of sp's rows, a
 * batch of rows a forward (every position a target), as a stream to path. */
static void write_logprobs(const struct cmdline *cl, bf_model *m, const bf_split *sp, const char *split)
{
    size_t V = (size_t)m->cfg.vocab, T = sp->T, N = sp->rows * T;
    if ((unsigned long long)N * V * sizeof(float) > MAX_LOGPROBS_BYTES)
        bf_die("--logprobs: %zu rows of %zu positions and a vocab of %zu would take more than 1 GiB", sp->rows, T, V);
    bf_header h;
    bf_header_init(&h, "logprobs");
    bf_val_set(h.meta, "split", bf_val_str(split));
    bf_val_set(h.meta, "rows", bf_val_int((int64_t)sp->rows));
    bf_val_set(h.meta, "T", bf_val_int((int64_t)T));
    bf_val_set(h.meta, "vocab", bf_val_int((int64_t)V));
    bf_tset s = {0};
    bf_tensor *t = bf_tset_add(&s);
    uint64_t shape[3] = {sp->rows, T, V};
    if (bf_tensor_init(t, "logprobs", BF_F32, 3, shape)) bf_die_lib();
    float *out = t->data;
    size_t B = (size_t)cl->batch;
    int32_t *y = bf_xcalloc(B * T, sizeof *y);   /* every position a target (token 0: the loss is not used) */
    for (size_t r0 = 0; r0 < sp->rows; r0 += B) {
        size_t nb = sp->rows - r0 < B ? sp->rows - r0 : B;
        if (isnan(bf_model_forward(m, sp->x + r0 * T, y, (int)nb, (int)T)) && m->last_targets == 0) bf_die_lib();
        for (size_t k = 0; k < nb * T; k++) memcpy(out + (r0 * T + k) * V, bf_model_target_logprobs(m, k), V * sizeof *out);
    }
    free(y);
    bf_cli_lineage(&h);
    if (bf_write_all(bf_cli_out_path(cl->logprobs), &h, &s)) bf_die("%s: %s", cl->logprobs, bf_errmsg());
    bf_tset_release(&s);
    bf_header_release(&h);
}

static void evaluate(const struct cmdline *cl)
{
    bf_header h, rh;
    bf_model m, ref;
    uint64_t digest;
    load_model(cl->input, cl->fake_quant, &h, &m, &digest);
    bf_adapter a;
    if (cl->adapter) {
        bf_header ah;
        bf_tset as;
        if (bf_read_all(cl->adapter, &ah, &as)) bf_die_lib();
        if (bf_adapter_from_tset(&a, &ah, &as, &m, digest) || bf_adapter_attach(&a, &m)) bf_die("%s: %s", cl->adapter, bf_errmsg());
        bf_tset_release(&as);
        bf_header_release(&ah);
    }
    if (cl->compare) load_model(cl->compare, cl->fake_quant, &rh, &ref, NULL);
    bf_dataset d;
    if (bf_data_load(cl->data, &d)) bf_die_lib();
    if (bf_data_check_model(&d, &m.cfg, cl->data)) bf_die_lib();
    const char *split = cl->split_train ? "train" : "val";
    const bf_split *sp = bf_data_split(&d, split);
    if (!sp->rows) bf_die("%s: the %s split is empty", cl->data, split);
    if (m.cfg.rec_n) {
        evaluate_recursive(cl, &m, sp, split);
        bf_data_free(&d);
        bf_model_free(&m);
        bf_header_release(&h);
        return;
    }
    if (cl->have_halt) bf_die("%s: --halt and --max-steps are for recursive models", cl->input ? cl->input : "stdin");
    bf_metrics r;
    double t0 = bf_now();
    if ((cl->incremental ? bf_eval_split_incremental : bf_eval_split)(&m, sp, cl->batch, &r)) bf_die_lib();
    double secs = bf_now() - t0;
    double kl = 0;
    bf_metrics rr, mm;
    if (cl->compare) {
        if (bf_data_check_model(&d, &ref.cfg, cl->compare)) bf_die_lib();
        int P = cl->ref_prompt ? (int)strlen(cl->ref_prompt) : 0;
        int32_t *prompt = bf_xmalloc(((size_t)P + 1) * sizeof *prompt);
        for (int k = 0; k < P; k++) prompt[k] = (unsigned char)cl->ref_prompt[k];
        for (int k = 0; k < P; k++)
            if (prompt[k] >= ref.cfg.vocab) bf_die("--ref-prompt: byte %d is outside the vocab of %d", prompt[k], ref.cfg.vocab);
        if ((size_t)P + sp->T > (size_t)ref.cfg.ctx)
            bf_die("--ref-prompt: %d bytes and rows of %zu do not fit REF's context of %d", P, sp->T, ref.cfg.ctx);
        if (bf_bake_eval(&m, &ref, prompt, P, sp, cl->batch, &kl, &mm)) bf_die_lib();
        if (P) {   /* REF's metrics with its prompt: the same rows, the prompt before each */
            bf_split ps;
            size_t W = (size_t)P + sp->T;
            int32_t *px = bf_xmalloc(sp->rows * W * sizeof *px), *py = bf_xmalloc(sp->rows * W * sizeof *py);
            for (size_t i = 0; i < sp->rows; i++) {
                for (int k = 0; k < P; k++) { px[i * W + (size_t)k] = prompt[k]; py[i * W + (size_t)k] = -1; }
                memcpy(px + i * W + P, sp->x + i * sp->T, sp->T * sizeof *px);
                memcpy(py + i * W + P, sp->y + i * sp->T, sp->T * sizeof *py);
            }
            ps = (bf_split){px, py, sp->rows, W};
            if (bf_eval_split(&ref, &ps, cl->batch, &rr)) bf_die_lib();
            free(px);
            free(py);
        } else if (bf_eval_split(&ref, sp, cl->batch, &rr)) {
            bf_die_lib();
        }
        free(prompt);
    }
    /* a metric that is not a number is a failure, not a result */
    if (!isfinite(r.loss) || (cl->compare && (!isfinite(kl) || !isfinite(rr.loss))))
        bf_die("%s: the %s on the %s split is not finite%s", cl->input ? cl->input : "stdin",
               !isfinite(r.loss) ? "loss" : !isfinite(kl) ? "KL" : "reference's loss", split,
               cl->adapter ? " (with the adapter attached)" : "");
    if (cl->json) {
        json_metrics(split, r.rows, r.targets, sp->T, secs, r.loss, r.token_acc, r.exact);
        if (cl->compare) {
            printf(",\"kl\":");
            bf_json_num(stdout, kl);
            printf(",\"ref_loss\":");
            bf_json_num(stdout, rr.loss);
            printf(",\"ref_token_acc\":");
            bf_json_num(stdout, rr.token_acc);
            printf(",\"ref_exact\":");
            bf_json_num(stdout, rr.exact);
        }
        printf("}\n");
    } else {
        printf("split %s  rows %zu  targets %zu  loss %.6f  token_acc %.4f  exact %.4f\n", split, r.rows, r.targets,
               r.loss, r.token_acc, r.exact);
        if (cl->compare)
            printf("compare  kl %.6f  ref_loss %.6f  ref_token_acc %.4f  ref_exact %.4f  exact %+.4f\n", kl, rr.loss,
                   rr.token_acc, rr.exact, r.exact - rr.exact);
    }
    if (cl->logprobs) write_logprobs(cl, &m, sp, split);
    bf_data_free(&d);
    if (cl->adapter) bf_adapter_free(&a);   /* the model frees the attached sources */
    bf_model_free(&m);
    if (cl->compare) { bf_model_free(&ref); bf_header_release(&rh); }
    bf_header_release(&h);
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    if (cl.data) evaluate(&cl);
    else inspect(&cl);
    bf_cli_close_stdout();
    return 0;
}

/* bf-generate — what a model says after a prompt, a token at a time. */
#include "cli.h"
#include "bf/lora.h"
#include "bf/rng.h"
#include "bf/tasks.h"
#include "bf/trm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-generate [options] MODEL [PROMPT]\n"
    "       bf-generate --sudoku [--halt P] [--max-steps K] [--batch N] [--json] MODEL [PUZZLE]\n"
    "\n"
    "Continues PROMPT with MODEL, one byte a token, and writes the continuation\n"
    "(the new tokens only, not the prompt) to stdout as it is made, then a\n"
    "newline.  Without PROMPT, or with '-', every line of stdin is a prompt and\n"
    "gets its own line.  Greedy unless --temperature is given; a ternary model\n"
    "runs on the integer kernels.\n"
    "\n"
    "  --max-new N        tokens at most (default: what the context leaves)\n"
    "  --temperature T    sample from softmax(logits/T) (default 0: the argmax)\n"
    "  --top-k K          sample among the K most likely tokens (default 0: all)\n"
    "  --top-p P          sample among the most likely tokens that together\n"
    "                     reach probability P (default 1: all)\n"
    "  --stop TEXT        end the continuation before TEXT (repeatable; default a\n"
    "                     newline, which ends every row of bitforge's data)\n"
    "  --adapter A        with the LoRA adapter A attached\n"
    "  --escape           bytes outside printable ASCII as \\xHH, '\\' as '\\\\'\n"
    "  --json             one JSON object a prompt: prompt, text, tokens,\n"
    "                     prompt_tokens, seconds, stopped (stop, length, context)\n"
    "  --seed S           the sampling's seed (default 1): a seed gives the same text\n"
    "  --sudoku           MODEL is a recursive sudoku model: each puzzle (one a\n"
    "                     line, S·S cells, digits and '.' or '0' for a blank) is\n"
    "                     written solved, then a tab, the supervision steps used,\n"
    "                     a tab, and 'valid' or 'invalid'\n"
    "  --halt P           --sudoku: a puzzle stops at the first step whose halting\n"
    "                     probability is above P (default 0.5; 1: never)\n"
    "  --max-steps K      --sudoku: supervision steps at most (default the model's)\n"
    "  --batch N          --sudoku: puzzles solved together (default 64)\n"
    "  --threads N        threads (default: every core)\n"
    "  -q, --quiet        no closing line of tokens per second on stderr\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { O_MAX_NEW = BF_OPT_PROGRAM, O_TEMP, O_TOP_K, O_TOP_P, O_STOP, O_ADAPTER, O_ESCAPE, O_JSON, O_SUDOKU, O_HALT, O_MAX_STEPS,
       O_BATCH };

#define MAX_STOPS 16

struct cmdline {
    const char *model, *prompt, *adapter;
    int max_new;   /* 0: what the context leaves */
    bf_sampler sampler;
    const char *stops[MAX_STOPS];
    int nstops, escape, json;
    int sudoku, max_steps, batch;   /* max_steps 0: the model's */
    double halt;
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_THREADS, BF_OPTS_SEED, BF_OPTS_QUIET,
        {"max-new", required_argument, 0, O_MAX_NEW}, {"temperature", required_argument, 0, O_TEMP},
        {"top-k", required_argument, 0, O_TOP_K}, {"top-p", required_argument, 0, O_TOP_P},
        {"stop", required_argument, 0, O_STOP}, {"adapter", required_argument, 0, O_ADAPTER},
        {"escape", no_argument, 0, O_ESCAPE}, {"json", no_argument, 0, O_JSON}, {"sudoku", no_argument, 0, O_SUDOKU},
        {"halt", required_argument, 0, O_HALT}, {"max-steps", required_argument, 0, O_MAX_STEPS},
        {"batch", required_argument, 0, O_BATCH}, {0, 0, 0, 0}};
    memset(cl, 0, sizeof *cl);
    cl->sampler = (bf_sampler){0, 0, 1};
    cl->halt = 0.5;
    cl->batch = 64;
    bf_cli_begin(argc, argv, "bf-generate", usage);
    int c, sampling = 0, text_only = 0, sudoku_only = 0;
    while ((c = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg)) continue;
        switch (c) {
        case O_MAX_NEW: cl->max_new = (int)bf_parse_int("max-new", optarg, 1, BF_MAX_CTX); break;
        case O_TEMP: cl->sampler.temperature = bf_parse_double("temperature", optarg, 0, 1e6); break;
        case O_TOP_K: cl->sampler.top_k = (int)bf_parse_int("top-k", optarg, 0, BF_MAX_VOCAB); sampling = 1; break;
        case O_TOP_P:
            cl->sampler.top_p = bf_parse_double("top-p", optarg, 0, 1);
            if (!(cl->sampler.top_p > 0)) bf_usage_die("--top-p needs a probability above 0, not '%s'", optarg);
            sampling = 1;
            break;
        case O_STOP:
            if (cl->nstops == MAX_STOPS) bf_usage_die("at most %d --stop texts", MAX_STOPS);
            if (!*optarg) bf_usage_die("--stop needs a text");
            cl->stops[cl->nstops++] = optarg;
            break;
        case O_ADAPTER: cl->adapter = optarg; break;
        case O_ESCAPE: cl->escape = 1; break;
        case O_JSON: cl->json = 1; break;
        case O_SUDOKU: cl->sudoku = 1; break;
        case O_HALT: cl->halt = bf_parse_double("halt", optarg, 0, 1); sudoku_only = 1; break;
        case O_MAX_STEPS: cl->max_steps = (int)bf_parse_int("max-steps", optarg, 1, BF_MAX_SUP); sudoku_only = 1; break;
        case O_BATCH: cl->batch = (int)bf_parse_int("batch", optarg, 1, 1 << 16); sudoku_only = 1; break;
        default: bf_usage_die("unexpected option");
        }
        if (c >= O_MAX_NEW && c <= O_ESCAPE) text_only = 1;
    }
    if (cl->sudoku && text_only) bf_usage_die("--sudoku solves puzzles: no --max-new, --temperature, --top-k, --top-p, --stop, --adapter or --escape");
    if (!cl->sudoku && sudoku_only) bf_usage_die("--halt, --max-steps and --batch go with --sudoku");
    if (sampling && cl->sampler.temperature <= 0) bf_usage_die("--top-k and --top-p shape sampling: they need --temperature");
    if (cl->escape && cl->json) bf_usage_die("--json escapes its strings itself: no --escape");
    if (optind >= argc) bf_usage_die("needs a MODEL");
    if (argc - optind > 2) bf_usage_die("one MODEL and at most one PROMPT");
    cl->model = argv[optind];
    cl->prompt = argc - optind == 2 && strcmp(argv[optind + 1], "-") ? argv[optind + 1] : NULL;
    if (!cl->prompt && !strcmp(cl->model, "-")) bf_usage_die("the prompts come from stdin: MODEL must be a file");
    if (!cl->nstops) cl->stops[cl->nstops++] = "\n";
    bf_cli_end(0);
}

/* ---------------------------------------------------------------- output */

static void out_bytes(const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, stdout) != n) bf_cli_stdout_failed();
}

static void out_flush(void)
{
    if (fflush(stdout)) bf_cli_stdout_failed();
}

/* text bytes as they are, or escaped for a terminal */
static void out_text(const struct cmdline *cl, const unsigned char *p, size_t n)
{
    if (!cl->escape) { out_bytes(p, n); return; }
    for (size_t k = 0; k < n; k++) {
        char e[8];
        if (p[k] == '\\') out_bytes("\\\\", 2);
        else if (p[k] >= 0x20 && p[k] < 0x7f) out_bytes(&p[k], 1);
        else out_bytes(e, (size_t)snprintf(e, sizeof e, "\\x%02x", p[k]));
    }
}

/* bytes as a JSON string: each byte above 127 one code point U+0080…U+00FF,
 * so that any bytes give valid JSON and come back exactly */
static void out_json_string(const unsigned char *p, size_t n)
{
    out_bytes("\"", 1);
    for (size_t k = 0; k < n; k++) {
        char e[8];
        if (p[k] == '"' || p[k] == '\\') { e[0] = '\\'; e[1] = (char)p[k]; out_bytes(e, 2); }
        else if (p[k] < 0x20 || p[k] >= 0x7f) out_bytes(e, (size_t)snprintf(e, sizeof e, "\\u%04x", p[k]));
        else out_bytes(&p[k], 1);
    }
    out_bytes("\"", 1);
}

/* -------------------------------------------------------------- the model */

static void load(const struct cmdline *cl, bf_header *h, bf_model *m)
{
    const char *label = strcmp(cl->model, "-") ? cl->model : "stdin";
    bf_tset s;
    if (bf_read_all(cl->model, h, &s)) bf_die_lib();
    /* a LoRA adapter computes with the float weights; otherwise a ternary
     * model runs on the integer kernels */
    if ((cl->adapter ? bf_model_from_tset : bf_model_load_for_inference)(m, h, &s)) bf_die("%s: %s", label, bf_errmsg());
    uint64_t digest = bf_tset_digest(&s);
    bf_tset_release(&s);
    if (cl->sudoku) return;   /* solve() checks the model */
    if (m->cfg.rec_n) bf_die("%s: a recursive model solves puzzles rather than continuing text: bf-generate --sudoku", label);
    if (m->cfg.vocab > 256) bf_die("%s: a vocab of %d: bf-generate's tokens are bytes (at most 256)", label, m->cfg.vocab);
    if (cl->adapter) {
        bf_header ah;
        bf_tset as;
        bf_adapter a;
        if (bf_read_all(cl->adapter, &ah, &as)) bf_die_lib();
        if (bf_adapter_from_tset(&a, &ah, &as, m, digest) || bf_adapter_attach(&a, m)) bf_die("%s: %s", cl->adapter, bf_errmsg());
        bf_tset_release(&as);
        bf_header_release(&ah);
        bf_adapter_free(&a);   /* the model keeps the attached sources */
    }
}

/* ------------------------------------------------------------ generating */

typedef struct {
    double prompt_s, decode_s;
    long prompt_tokens, new_tokens;
} totals;

/* How many of text[0..n)'s last bytes could still begin a stop text. */
static size_t held_back(const struct cmdline *cl, const unsigned char *text, size_t n)
{
    size_t hold = 0;
    for (int k = 0; k < cl->nstops; k++) {
        size_t L = strlen(cl->stops[k]);
        for (size_t j = L - 1 < n ? L - 1 : n; j > hold; j--)
            if (!memcmp(text + n - j, cl->stops[k], j)) { hold = j; break; }
    }
    return hold;
}

/* The stop text text[0..n) ends with, as its length (0: none). */
static size_t stopped_by(const struct cmdline *cl, const unsigned char *text, size_t n)
{
    for (int k = 0; k < cl->nstops; k++) {
        size_t L = strlen(cl->stops[k]);
        if (L <= n && !memcmp(text + n - L, cl->stops[k], L)) return L;
    }
    return 0;
}

static void generate(const struct cmdline *cl, bf_model *m, const char *prompt, size_t P, bf_rng *rng, totals *tot)
{
    if (!P && cl->prompt) bf_die("an empty prompt: a continuation needs at least one token to follow");
    if (!P) {   /* an empty line of stdin: nothing to continue, and its line out keeps the lines in step */
        static const char empty[] = "{\"prompt\":\"\",\"text\":\"\",\"tokens\":0,\"prompt_tokens\":0,\"seconds\":0,\"stopped\":\"empty\"}\n";
        if (cl->json) out_bytes(empty, sizeof empty - 1);
        else out_bytes("\n", 1);
        out_flush();
        return;
    }
    for (size_t k = 0; k < P; k++)   /* checked before anything is allocated */
        if ((unsigned char)prompt[k] >= m->cfg.vocab)
            bf_die("the prompt's byte %d is outside the model's vocab of %d", (unsigned char)prompt[k], m->cfg.vocab);
    if (P >= (size_t)m->cfg.ctx) bf_die("a prompt of %zu bytes leaves no room in the context of %d", P, m->cfg.ctx);
    int32_t *x = bf_xmalloc(P * sizeof *x);
    for (size_t k = 0; k < P; k++) x[k] = (unsigned char)prompt[k];
    int room = m->cfg.ctx - (int)P, max_new = cl->max_new && cl->max_new < room ? cl->max_new : room;
    unsigned char *text = bf_xmalloc((size_t)max_new + 1);
    size_t n = 0, shown = 0, steps = 0;
    const char *why = "length";
    bf_decoder d;
    double t0 = bf_now();
    if (bf_decoder_begin(&d, m, x, (int)P)) bf_die_lib();
    double t1 = bf_now();
    while (n < (size_t)max_new) {
        int32_t tok;
        if (bf_decoder_next(&d, &cl->sampler, rng, &tok)) bf_die_lib();
        steps++;
        text[n++] = (unsigned char)tok;
        size_t L = stopped_by(cl, text, n);
        if (L) {
            n -= L;
            why = "stop";
            break;
        }
        if (!cl->json) {   /* what no stop text can take back, as it comes */
            size_t safe = n - held_back(cl, text, n);
            if (safe > shown) {
                out_text(cl, text + shown, safe - shown);
                out_flush();
                shown = safe;
            }
        }
    }
    if (n == (size_t)max_new && max_new == room && strcmp(why, "stop")) why = "context";
    double t2 = bf_now();
    bf_decoder_end(&d);
    if (cl->json) {
        out_bytes("{\"prompt\":", 10);
        out_json_string((const unsigned char *)prompt, P);
        out_bytes(",\"text\":", 8);
        out_json_string(text, n);
        char num[160];
        int len = snprintf(num, sizeof num, ",\"tokens\":%zu,\"prompt_tokens\":%zu,\"seconds\":%.6f,\"stopped\":\"%s\"}\n", steps,
                           P, t2 - t0, why);
        out_bytes(num, (size_t)len);
    } else {
        if (n > shown) out_text(cl, text + shown, n - shown);
        out_bytes("\n", 1);
    }
    out_flush();
    tot->prompt_s += t1 - t0;
    tot->decode_s += t2 - t1;
    tot->prompt_tokens += (long)P;
    tot->new_tokens += (long)steps;
    free(text);
    free(x);
}

/* ---------------------------------------------------------------- sudoku */

/* One puzzle's text as tokens x[S·S] (blank 0); whitespace is ignored.  0,
 * or -1 with the reason in why. */
static int parse_puzzle(const char *text, size_t len, int S, int32_t *x, char *why, size_t cap)
{
    size_t n = 0, T = (size_t)S * (size_t)S;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)text[k];
        if (c == ' ' || c == '\t' || c == '\r') continue;
        int v = c == '.' ? 0 : c >= '0' && c <= '9' ? c - '0' : -1;
        if (v < 0 || v > S) {
            if (c >= 0x20 && c < 0x7f) snprintf(why, cap, "'%c' is neither a digit 1 to %d nor a blank ('.' or '0')", c, S);
            else snprintf(why, cap, "byte 0x%02x is neither a digit 1 to %d nor a blank ('.' or '0')", c, S);
            return -1;
        }
        if (n == T) { snprintf(why, cap, "more than the %zu cells of a %dx%d grid", T, S, S); return -1; }
        x[n++] = v;
    }
    if (n < T) { snprintf(why, cap, "%zu cells, not the %zu of a %dx%d grid", n, T, S, S); return -1; }
    return 0;
}

typedef struct {
    size_t puzzles, valid, steps;
} sudoku_totals;

/* Solves the n puzzles of x [n·T] (texts for --json) and writes a line each. */
static void solve_batch(const struct cmdline *cl, bf_model *m, int S, const int32_t *x, char **texts, size_t *lens, int n,
                        sudoku_totals *tot)
{
    size_t T = (size_t)S * (size_t)S;
    int32_t *out = bf_xmalloc((size_t)n * T * sizeof *out);
    int *steps = bf_xmalloc((size_t)n * sizeof *steps);
    int K = cl->max_steps ? cl->max_steps : m->cfg.rec_sup;
    if (bf_trm_solve(m, x, n, cl->halt, K, out, steps)) bf_die_lib();
    char *grid = bf_xmalloc(T + 1);
    uint8_t *g = bf_xmalloc(T);
    for (int b = 0; b < n; b++) {
        for (size_t i = 0; i < T; i++) {
            int32_t v = out[(size_t)b * T + i];
            g[i] = (uint8_t)v;
            grid[i] = v ? (char)('0' + v) : '.';
        }
        int valid = bf_sudoku_valid(S, g);
        tot->puzzles++;
        tot->valid += (size_t)valid;
        tot->steps += (size_t)steps[b];
        if (cl->json) {
            out_bytes("{\"puzzle\":", 10);
            out_json_string((const unsigned char *)texts[b], lens[b]);
            out_bytes(",\"solution\":", 12);
            out_json_string((const unsigned char *)grid, T);
            char num[64];
            int len = snprintf(num, sizeof num, ",\"steps\":%d,\"valid\":%s}\n", steps[b], valid ? "true" : "false");
            out_bytes(num, (size_t)len);
        } else {
            char tail[48];
            int len = snprintf(tail, sizeof tail, "\t%d\t%s\n", steps[b], valid ? "valid" : "invalid");
            out_bytes(grid, T);
            out_bytes(tail, (size_t)len);
        }
    }
    out_flush();
    free(g);
    free(grid);
    free(steps);
    free(out);
}

static void solve(const struct cmdline *cl, bf_model *m)
{
    const char *label = strcmp(cl->model, "-") ? cl->model : "stdin";
    int S = (int)lround(sqrt((double)m->cfg.ctx)), br, bc;
    if (!m->cfg.rec_n) bf_die("%s: not a recursive model: --sudoku solves with one (bf-init --recursion)", label);
    if (S * S != m->cfg.ctx || bf_sudoku_shape(S, &br, &bc) || m->cfg.vocab != S + 1)
        bf_die("%s: not a sudoku model: a context of S·S cells and a vocab of S+1 for S 4, 6 or 9, not %d and %d", label,
               m->cfg.ctx, m->cfg.vocab);
    size_t T = (size_t)S * (size_t)S;
    int32_t *x = bf_xmalloc((size_t)cl->batch * T * sizeof *x);
    char **texts = bf_xcalloc((size_t)cl->batch, sizeof *texts);
    size_t *lens = bf_xcalloc((size_t)cl->batch, sizeof *lens);
    sudoku_totals tot = {0};
    double t0 = bf_now();
    int n = 0;
    size_t line_no = 0;
    char *line = NULL, why[128];
    size_t cap = 0;
    ssize_t len;
    for (;;) {
        if (cl->prompt) {
            if (line_no) break;
            len = (ssize_t)strlen(cl->prompt);
            line = bf_xrealloc(line, (size_t)len + 1);
            memcpy(line, cl->prompt, (size_t)len + 1);
        } else if ((len = getline(&line, &cap, stdin)) <= 0) {
            if (ferror(stdin)) bf_die("stdin: %s", bf_strerror(errno));
            break;
        } else if (line[len - 1] == '\n') {
            len--;
        }
        line_no++;
        if (parse_puzzle(line, (size_t)len, S, x + (size_t)n * T, why, sizeof why)) bf_die("puzzle %zu: %s", line_no, why);
        free(texts[n]);
        texts[n] = bf_xmalloc((size_t)len + 1);
        memcpy(texts[n], line, (size_t)len);
        lens[n] = (size_t)len;
        if (++n == cl->batch) {
            solve_batch(cl, m, S, x, texts, lens, n, &tot);
            n = 0;
        }
    }
    if (n) solve_batch(cl, m, S, x, texts, lens, n, &tot);
    double secs = bf_now() - t0;
    if (!bf_cli_state.quiet && tot.puzzles)
        fprintf(stderr, "bf-generate: %zu puzzles, %zu valid (%.1f%%), %.2f supervision steps each, %.1f puzzles/s\n",
                tot.puzzles, tot.valid, 100.0 * (double)tot.valid / (double)tot.puzzles,
                (double)tot.steps / (double)tot.puzzles, (double)tot.puzzles / (secs > 0 ? secs : 1e-9));
    for (int k = 0; k < cl->batch; k++) free(texts[k]);
    free(texts);
    free(lens);
    free(line);
    free(x);
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    bf_header h;
    bf_model m;
    load(&cl, &h, &m);
    if (cl.sudoku) {
        solve(&cl, &m);
        bf_model_free(&m);
        bf_header_release(&h);
        return 0;
    }
    bf_rng rng = bf_rng_derive(bf_cli_state.seed, "generate");
    totals tot = {0};
    if (cl.prompt) {
        generate(&cl, &m, cl.prompt, strlen(cl.prompt), &rng, &tot);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, stdin)) > 0) {
            if (line[len - 1] == '\n') len--;
            generate(&cl, &m, line, (size_t)len, &rng, &tot);
        }
        if (ferror(stdin)) bf_die("stdin: %s", bf_strerror(errno));
        free(line);
    }
    if (!bf_cli_state.quiet && tot.prompt_tokens)
        fprintf(stderr, "bf-generate: prompt %ld tokens, %.1f tokens/s; decoding %ld tokens, %.1f tokens/s\n", tot.prompt_tokens,
                tot.prompt_tokens / (tot.prompt_s > 0 ? tot.prompt_s : 1e-9), tot.new_tokens,
                tot.new_tokens / (tot.decode_s > 0 ? tot.decode_s : 1e-9));
    bf_model_free(&m);
    bf_header_release(&h);
    return 0;
}

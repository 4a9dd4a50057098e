/* bf-generate — what a model says after a prompt, a token at a time. */
#include "cli.h"
#include "bf/lora.h"
#include "bf/rng.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-generate [options] MODEL [PROMPT]\n"
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
    "  --threads N        threads (default: every core)\n"
    "  -q, --quiet        no closing line of tokens per second on stderr\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { O_MAX_NEW = BF_OPT_PROGRAM, O_TEMP, O_TOP_K, O_TOP_P, O_STOP, O_ADAPTER, O_ESCAPE, O_JSON };

#define MAX_STOPS 16

struct cmdline {
    const char *model, *prompt, *adapter;
    int max_new;   /* 0: what the context leaves */
    bf_sampler sampler;
    const char *stops[MAX_STOPS];
    int nstops, escape, json;
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_THREADS, BF_OPTS_SEED, BF_OPTS_QUIET,
        {"max-new", required_argument, 0, O_MAX_NEW}, {"temperature", required_argument, 0, O_TEMP},
        {"top-k", required_argument, 0, O_TOP_K}, {"top-p", required_argument, 0, O_TOP_P},
        {"stop", required_argument, 0, O_STOP}, {"adapter", required_argument, 0, O_ADAPTER},
        {"escape", no_argument, 0, O_ESCAPE}, {"json", no_argument, 0, O_JSON}, {0, 0, 0, 0}};
    memset(cl, 0, sizeof *cl);
    cl->sampler = (bf_sampler){0, 0, 1};
    bf_cli_begin(argc, argv, "bf-generate", usage);
    int c, sampling = 0;
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
        default: bf_usage_die("unexpected option");
        }
    }
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
    if (n && fwrite(p, 1, n, stdout) != n) {
        if (errno == EPIPE) exit(1);
        bf_die("write error on standard output: %s", bf_strerror(errno));
    }
}

static void out_flush(void)
{
    if (fflush(stdout)) {
        if (errno == EPIPE) exit(1);
        bf_die("write error on standard output: %s", bf_strerror(errno));
    }
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
    if (m->cfg.rec_n) bf_die("%s: a recursive model solves puzzles rather than continuing text", label);
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
    if (!P) bf_die("an empty prompt: a continuation needs at least one token to follow");
    int32_t *x = bf_xmalloc(P * sizeof *x);
    for (size_t k = 0; k < P; k++) {
        x[k] = (unsigned char)prompt[k];
        if (x[k] >= m->cfg.vocab) bf_die("the prompt's byte %d is outside the model's vocab of %d", x[k], m->cfg.vocab);
    }
    if (P >= (size_t)m->cfg.ctx) bf_die("a prompt of %zu bytes leaves no room in the context of %d", P, m->cfg.ctx);
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

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    bf_header h;
    bf_model m;
    load(&cl, &h, &m);
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

/* bf-halfbake — partial-strength merges, iterated half-bakes and A/B cycles (bf-halfbake(1)). */
#include "bakeopt.h"
#include "ckptopt.h"
#include "cli.h"
#include "bf/bake.h"
#include "bf/lora.h"
#include "bf/tgroup.h"
#include "bf/train.h"
#include "bf/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-halfbake --adapter A [--strength S] [options] [MODEL]\n"
    "       bf-halfbake --prompt TEXT --data DATA --iterations N [options] [MODEL]\n"
    "       bf-halfbake --prompt TEXT --data DATA --prompt-b TEXT --data-b DATA\n"
    "                   --iterations N [--plateau P] [options] [MODEL]\n"
    "\n"
    "Merges a LoRA adapter (bf-bake --adapter-out) into MODEL at strength S:\n"
    "W + S·(alpha/rank)·B·A, ternary matrices quantized again with their own rule.\n"
    "\n"
    "With --iterations N, half-bakes N times: each iteration bakes an adapter\n"
    "(the current model reading TEXT teaches the current model plus the adapter\n"
    "reading the bare rows of DATA, as bf-bake does), merges it at strength S\n"
    "and quantizes again; each iteration's metrics on DATA's val split go to\n"
    "the log and a table on stderr.\n"
    "\n"
    "With --prompt-b and --data-b, an A/B cycle: iterations bake set A, then\n"
    "set B after P iterations in a row that were not kept, and so on; an\n"
    "iteration is kept only when the mean exact match over both sets' val\n"
    "splits (bare rows) improves; every decision is logged and tabled.\n"
    "\n"
    "On a ternary model each half-bake trains through the quantizer at the\n"
    "strength it is merged at, so that what is merged is what was measured:\n"
    "an adapter computes Q(L + S·(alpha/rank)·B·A); --full (the default there)\n"
    "moves the latents at S times the learning rate.  --keep DATA rows keep the\n"
    "input model's behaviour through every half-bake; their exact match joins\n"
    "the table and the log.\n"
    "\n"
    "  --adapter A        merge this adapter (kind adapter, made for MODEL)\n"
    "  --strength S       merge strength (default 1 with --adapter, 0.5 otherwise)\n"
    "  --prompt TEXT      set A's prompt\n"
    "  --data DATA        set A's rows, without the prompt\n"
    "  --prompt-b TEXT    set B's prompt (an A/B cycle)\n"
    "  --data-b DATA      set B's rows\n"
    "  --iterations N     half-bakes (default 5)\n"
    "  --plateau P        A/B: switch sets after P iterations not kept (default 2)\n"
    "each half-bake, as bf-bake:\n"
    BF_USAGE_BAKE
    "  --log FILE         append one JSON object per iteration to FILE\n"
    "checkpoints, between iterations (a signal waits for the one in progress):\n"
    BF_USAGE_CKPT
    "  --seed N           each bake's seed is N + iteration (default 1)\n"
    "  --threads N        threads (default: all cores)\n"
    "  -q, --quiet        no table on stderr\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum {
    O_ADAPTER = BF_OPT_PROGRAM, O_STRENGTH, O_PROMPT, O_DATA, O_PROMPT_B, O_DATA_B, O_ITER, O_PLATEAU, O_LOG
};

struct cmdline {
    const char *input, *adapter, *prompt, *data, *prompt_b, *data_b, *log_path;
    bf_ckptopt ckpt;
    double strength;
    int have_strength, iterations, plateau, bake_flags;
    bf_bakeopt bo;
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT, BF_OPTS_THREADS, BF_OPTS_SEED, BF_OPTS_QUIET, BF_OPTS_BAKE,
        {"adapter", required_argument, 0, O_ADAPTER}, {"strength", required_argument, 0, O_STRENGTH},
        {"prompt", required_argument, 0, O_PROMPT}, {"data", required_argument, 0, O_DATA},
        {"prompt-b", required_argument, 0, O_PROMPT_B}, {"data-b", required_argument, 0, O_DATA_B},
        {"iterations", required_argument, 0, O_ITER}, {"plateau", required_argument, 0, O_PLATEAU},
        {"log", required_argument, 0, O_LOG}, BF_OPTS_CKPT, {0, 0, 0, 0}};
    memset(cl, 0, sizeof *cl);
    cl->iterations = 5;
    cl->plateau = 2;
    bf_bakeopt_default(&cl->bo);
    bf_cli_begin(argc, argv, "bf-halfbake", usage);
    int c, have_iter = 0;
    while ((c = getopt_long(argc, argv, ":ho:q", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg) || bf_ckptopt_handle(&cl->ckpt, c, optarg)) continue;
        if (bf_bakeopt_handle(&cl->bo, c, optarg)) { cl->bake_flags = 1; continue; }
        switch (c) {
        case O_ADAPTER: cl->adapter = optarg; break;
        case O_STRENGTH: cl->strength = bf_parse_double("strength", optarg, -100, 100); cl->have_strength = 1; break;
        case O_PROMPT: cl->prompt = optarg; break;
        case O_DATA: cl->data = optarg; break;
        case O_PROMPT_B: cl->prompt_b = optarg; break;
        case O_DATA_B: cl->data_b = optarg; break;
        case O_ITER: cl->iterations = (int)bf_parse_int("iterations", optarg, 1, 10000); have_iter = 1; break;
        case O_PLATEAU: cl->plateau = (int)bf_parse_int("plateau", optarg, 1, 10000); break;
        case O_LOG: cl->log_path = optarg; break;
        default: bf_usage_die("unexpected option");
        }
    }
    if (cl->adapter) {
        if (cl->prompt || cl->data || cl->prompt_b || cl->data_b || have_iter || cl->bake_flags)
            bf_usage_die("--adapter merges one adapter; the prompts, data, --iterations and baking flags are for half-baking");
        if (cl->ckpt.state_path || cl->ckpt.resume_path) bf_usage_die("--state and --resume are for half-baking, not --adapter");
        if (!cl->have_strength) cl->strength = 1;
    } else {
        if (!cl->prompt || !*cl->prompt || !cl->data) bf_usage_die("needs --adapter A, or --prompt TEXT and --data DATA");
        if (!!cl->prompt_b != !!cl->data_b) bf_usage_die("--prompt-b and --data-b go together");
        if ((cl->prompt_b && !*cl->prompt_b) || strlen(cl->prompt) > 4096 || (cl->prompt_b && strlen(cl->prompt_b) > 4096))
            bf_usage_die("prompts are 1 to 4096 bytes");
        if (!cl->have_strength) cl->strength = 0.5;
    }
    bf_bakeopt_finish(&cl->bo, 0);
    bf_ckptopt_finish(&cl->ckpt);
    cl->bo.bake.seed = bf_cli_state.seed;
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(1);
}

typedef struct {
    const char *name, *path;
    int32_t *prompt;
    int P;
    bf_dataset d;
} bake_set;

static void load_set(bake_set *s, const char *name, const char *prompt, const char *path, const bf_model *m)
{
    s->name = name;
    s->path = path;
    if (bf_data_load(path, &s->d)) bf_die_lib();
    if (bf_data_check_model(&s->d, &m->cfg, path)) bf_die_lib();
    s->P = (int)strlen(prompt);
    s->prompt = bf_xmalloc((size_t)s->P * sizeof *s->prompt);
    for (int k = 0; k < s->P; k++) {
        s->prompt[k] = (unsigned char)prompt[k];
        if (s->prompt[k] >= m->cfg.vocab) bf_die("a prompt byte %d is outside the model's vocab of %d", s->prompt[k], m->cfg.vocab);
    }
    if (!s->d.val.rows) bf_die("%s: the val split is empty: nothing to measure", path);
}

/* steps passed by (--on-nan skip) and all the bakes' steps, for the closing line */
static long skipped[2];
static void count_skipped(void *ctx, const bf_bake_step *s)
{
    long *n = ctx;
    n[0] += s->skipped;
    n[1]++;
}

/* Bakes set s into m (teacher: m with the prompt) and merges it at the
 * strength: an adapter merged at it (on ternary matrices trained through the
 * quantizer at it), or the model's own matrices moved at strength·lr. */
static void half_bake(bf_model *m, const bf_header *h, bake_set *s, const struct cmdline *cl, int full, int iter)
{
    bf_model teacher;
    bf_cli_clone_model(m, h, &teacher);
    bf_adapter a;
    bf_bake_cfg c = cl->bo.bake;
    c.prompt = s->prompt;
    c.P = s->P;
    c.seed = cl->bo.bake.seed + (uint64_t)iter;
    c.eval_every = 0;
    /* a ternary model's adapter trains at the strength it is merged at (a
     * float one at 1: the merge at the strength is the half step) */
    if (full) c.lr *= cl->strength;
    else bf_bakeopt_adapter(&cl->bo, m, c.seed, 0, bf_model_is_quantized(m) ? cl->strength : 1.0, &a);
    /* evaluation happens here, on the merged model: none inside the bake */
    bf_dataset d = s->d;
    d.val.rows = 0;
    if (bf_bake(m, full ? NULL : &a, &teacher, &d, &c, count_skipped, skipped)) bf_die_lib();
    if (!full) {
        if (bf_adapter_merge(&a, m, cl->strength)) bf_die_lib();
        bf_adapter_free(&a);
    }
    bf_model_free(&teacher);
}

/* The keep sets' rows, as they are, on a model (with no keep sets: none). */
static void measure_keep(bf_model *m, const struct cmdline *cl, bf_metrics *keep)
{
    memset(keep, 0, sizeof *keep);
    for (int k = 0; k < cl->bo.nkeep; k++) {
        bf_metrics one;
        if (bf_eval_split(m, &cl->bo.keep_d[k].val, 256, &one)) bf_die_lib();
        keep->exact += one.exact * (double)one.rows;
        keep->rows += one.rows;
    }
    if (keep->rows) keep->exact /= (double)keep->rows;
}

/* The model's metrics on a set's bare val rows (its weights as they are:
 * a merge has already quantized what it changed). */
static void measure(bf_model *m, bake_set *s, bf_metrics *bare)
{
    if (bf_eval_split(m, &s->d.val, 256, bare)) bf_die_lib();
}

/* The run's settings for a state: its arguments but those that do not shape
 * the result (where the state, the log and the output go, and how much is
 * shown), as words. */
static void run_config(int argc, char **argv, char *out, size_t cap)
{
    static const char *const drop_with_value[] = {"--state", "--state-every", "--resume", "-o", "--output", "--log", NULL};
    static const char *const drop[] = {"-q", "--quiet", "--progress", NULL};
    size_t len = 0;
    out[0] = 0;
    for (int k = 1; k < argc; k++) {
        int skip = 0;
        for (int j = 0; drop_with_value[j]; j++)
            if (!strcmp(argv[k], drop_with_value[j])) { skip = 2; break; }
        for (int j = 0; drop[j] && !skip; j++)
            if (!strcmp(argv[k], drop[j])) skip = 1;
        if (skip) { k += skip - 1; continue; }
        int n = snprintf(out + len, cap > len ? cap - len : 0, "%s%s", len ? " " : "", argv[k]);
        if (n > 0) len += (size_t)n;
    }
}

/* Every piece of a half-baking run's state between iterations (bf_state:
 * saved or restored alike): the model kept so far, its score, the set
 * baking and the iterations in a row not kept. */
typedef struct {
    bf_model *m;
    const bf_header *h;
    double *score;
    int *cur, *misses;
} halfbake_run;

static void halfbake_pieces(bf_state *s, void *run)
{
    halfbake_run *u = run;
    int64_t c = *u->cur, mi = *u->misses;
    bf_state_model(s, "model", u->m, u->h);
    bf_state_doubles(s, "score", u->score, 1);
    bf_state_int(s, "set", &c, 0, 1);
    bf_state_int(s, "misses", &mi, 0, INT32_MAX);
    *u->cur = (int)c;
    *u->misses = (int)mi;
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    bf_header h;
    bf_model m;
    uint64_t digest;
    int keep_latent;
    bf_cli_read_model(cl.input, &h, &m, NULL, &digest, &keep_latent);

    if (cl.adapter) {
        bf_header ah;
        bf_tset as;
        bf_adapter a;
        if (bf_read_all(cl.adapter, &ah, &as)) bf_die_lib();
        if (bf_adapter_from_tset(&a, &ah, &as, &m, digest)) bf_die("%s: %s", cl.adapter, bf_errmsg());
        if (bf_adapter_merge(&a, &m, cl.strength)) bf_die_lib();
        bf_adapter_free(&a);
        bf_tset_release(&as);
        bf_header_release(&ah);
    } else {
        FILE *log = NULL;
        if (cl.log_path && !(log = fopen(bf_cli_out_path(cl.log_path), "a"))) bf_die("%s: %s", cl.log_path, bf_strerror(errno));
        bake_set sets[2];
        int nsets = cl.prompt_b ? 2 : 1, quiet = bf_cli_state.quiet;
        load_set(&sets[0], "A", cl.prompt, cl.data, &m);
        if (nsets == 2) load_set(&sets[1], "B", cl.prompt_b, cl.data_b, &m);
        int full = bf_bakeopt_setup(&cl.bo, &m), nkeep = cl.bo.nkeep;
        bf_model orig;   /* the behaviour the keep rows keep: the input's, or --keep-ref's */
        int have_orig = nkeep && !cl.bo.keep_ref;
        if (have_orig) {
            bf_cli_clone_model(&m, &h, &orig);
            cl.bo.bake.keep.ref = &orig;
        }
        /* the score: the mean exact match over the sets' bare rows, and the
         * keep rows as one more set when there are any */
        int nscore = nsets + (nkeep > 0);
        bf_metrics met[2], kmet;
        double score = 0;
        for (int k = 0; k < nsets; k++) { measure(&m, &sets[k], &met[k]); score += met[k].exact / nscore; }
        measure_keep(&m, &cl, &kmet);
        score += kmet.exact / nscore;
        if (!quiet) {
            fprintf(stderr, "%-5s %-4s %-8s %10s", "iter", "set", "decision", "score");
            for (int k = 0; k < nsets; k++) fprintf(stderr, " %9s_%s", "exact", sets[k].name);
            if (nkeep) fprintf(stderr, " %11s", "exact_keep");
            fprintf(stderr, "\n%-5d %-4s %-8s %10.4f", 0, "-", "start", score);
            for (int k = 0; k < nsets; k++) fprintf(stderr, " %11.4f", met[k].exact);
            if (nkeep) fprintf(stderr, " %11.4f", kmet.exact);
            fputc('\n', stderr);
        }
        int cur = 0, misses = 0, it0 = 0;
        char config[4096];
        uint64_t data_digest = bf_split_digest(&sets[0].d.train) ^ (nsets == 2 ? 3 * bf_split_digest(&sets[1].d.train) : 0);
        run_config(argc, argv, config, sizeof config);
        const bf_checkpoint *ck = bf_ckptopt_begin(&cl.ckpt, digest);
        halfbake_run run = {&m, &h, &score, &cur, &misses};
        if (bf_checkpoint_resume(ck, config, data_digest, cl.iterations, halfbake_pieces, &run, &it0)) bf_die_lib();
        if (it0 && !quiet) fprintf(stderr, "(resumed after iteration %d)\n", it0);
        for (int it = it0 + 1; it <= cl.iterations; it++) {
            bf_model cand;
            bf_cli_clone_model(&m, &h, &cand);
            half_bake(&cand, &h, &sets[cur], &cl, full, it);
            bf_metrics cm[2], ckeep;
            double cs = 0;
            for (int k = 0; k < nsets; k++) { measure(&cand, &sets[k], &cm[k]); cs += cm[k].exact / nscore; }
            measure_keep(&cand, &cl, &ckeep);
            cs += ckeep.exact / nscore;
            /* one set: every half-bake is kept (the curve); two: only improvements */
            int keep = nsets == 1 || cs > score;
            const char *decision = keep ? "kept" : "dropped";
            if (keep) {
                bf_model_free(&m);
                m = cand;
                score = cs;
                memcpy(met, cm, sizeof met);
                kmet = ckeep;
                misses = 0;
            } else {
                bf_model_free(&cand);
                misses++;
            }
            if (log) {
                fprintf(log, "{\"iteration\":%d,\"set\":\"%s\",\"decision\":\"%s\",\"score\":", it, sets[cur].name, decision);
                bf_json_num(log, cs);
                for (int k = 0; k < nsets; k++) {
                    fprintf(log, ",\"exact_%s\":", sets[k].name);
                    bf_json_num(log, cm[k].exact);
                    fprintf(log, ",\"loss_%s\":", sets[k].name);
                    bf_json_num(log, cm[k].loss);
                }
                if (nkeep) {
                    fprintf(log, ",\"exact_keep\":");
                    bf_json_num(log, ckeep.exact);
                }
                fprintf(log, "}\n");
                fflush(log);
            }
            if (!quiet) {
                fprintf(stderr, "%-5d %-4s %-8s %10.4f", it, sets[cur].name, decision, cs);
                for (int k = 0; k < nsets; k++) fprintf(stderr, " %11.4f", cm[k].exact);
                if (nkeep) fprintf(stderr, " %11.4f", ckeep.exact);
                fputc('\n', stderr);
            }
            if (nsets == 2 && misses >= cl.plateau) {   /* a plateau: the other set */
                cur = 1 - cur;
                misses = 0;
            }
            /* a checkpoint between iterations: a signal waits for the one in progress */
            if (bf_checkpoint_after(ck, config, data_digest, it, cl.iterations, "iteration", halfbake_pieces, &run)) {
                bf_ckptopt_end(&cl.ckpt, -1);   /* interrupted: dies saying where the state is */
                bf_die_lib();
            }
        }
        bf_ckptopt_end(&cl.ckpt, 0);
        if (log) fclose(log);
        if (skipped[0])
            fprintf(stderr, "%s: passed by %ld of %ld steps whose loss or gradient was not finite\n", bf_cli_state.prog,
                    skipped[0], skipped[1]);
        for (int k = 0; k < nsets; k++) {
            bf_data_free(&sets[k].d);
            free(sets[k].prompt);
        }
        bf_bakeopt_free(&cl.bo);
        if (have_orig) bf_model_free(&orig);
    }
    bf_tset out;
    if (bf_model_to_tset(&m, keep_latent, &out)) bf_die_lib();
    bf_cli_write_all(&h, &out);
    bf_tset_release(&out);
    bf_model_free(&m);
    bf_header_release(&h);
    return 0;
}

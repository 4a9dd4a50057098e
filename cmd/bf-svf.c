/* bf-svf — experts (singular values, or row scales): train, mix, apply (bf-svf(1)). */
#include "ckptopt.h"
#include "cli.h"
#include "bf/lora.h"
#include "bf/svf.h"
#include "bf/tgroup.h"
#include "bf/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-svf train --data DATA [--name NAME] [options] [MODEL]\n"
    "       bf-svf mix --experts E1[,E2...] --data FEWSHOT [options] [MODEL]\n"
    "       bf-svf apply --expert E [--name NAME] [--keep-f32] [MODEL]\n"
    "\n"
    "Singular-value fine-tuning: each adapted matrix W = U·diag(s)·V^T of MODEL\n"
    "is used as W' = c·U·diag(s·sigmoid(z))·V^T, c = sum(s)/sum(s·sigmoid(z));\n"
    "an expert is the vectors z.  With --kind scales an expert is instead a\n"
    "log-factor v per output row, W' = diag(exp(v))·W: on a ternary model the\n"
    "codes stay and each row gets its own scale.  train learns one expert on\n"
    "DATA (writes an experts stream); mix searches the weights alpha of\n"
    "z = sum alpha_k z_k with the cross-entropy method, scored by exact match on\n"
    "FEWSHOT's train split (writes the expert \"mix\"); apply writes MODEL with\n"
    "an expert in its weights, a model stream every program reads.\n"
    "\n"
    "train:\n"
    "  --data DATA        rows whose answer positions carry targets\n"
    "  --name NAME        the expert's name (default expert)\n"
    "  --kind K           svf (z per singular value, default) or scales (a\n"
    "                     log-factor per row; ternary matrices stay ternary)\n"
    "  --method M         grad (cross-entropy, default), reinforce (sampled\n"
    "                     answers, reward +1/-1), or lora (a LoRA adapter on\n"
    "                     cross-entropy instead of SVF; writes an adapter stream)\n"
    "  --targets LIST     adapted matrices: wq,wk,wv,wo,w1,w3,w2, attn, mlp, all\n"
    "                     (default mlp: w1 w3 w2)\n"
    "  --steps N          Adam steps (default 200)\n"
    "  --batch N          rows per step (default 32)\n"
    "  --lr X             Adam's learning rate (default 2e-3)\n"
    "  --clip X           clip the gradient's L2 norm (default 1e-3; 0: off)\n"
    "  --kl X             reinforce: weight of KL(base || adapted) (default 0)\n"
    "  --max-new L        reinforce: tokens an answer may have (default 32)\n"
    "  --rank R           lora: rank (default 1)\n"
    "  --alpha A          lora: scale alpha (default 1)\n"
    "  --on-nan stop|skip a step whose loss or gradient is not finite ends training\n"
    "                     (stop, the default) or is passed by without an update\n"
    "  --eval-every N     exact match on DATA's val split every N steps\n"
    "                     (default: at the end)\n"
    "train and mix (a step of mix is an iteration):\n"
    BF_USAGE_CKPT
    "mix:\n"
    "  --experts LIST     experts streams, comma-separated (or repeated)\n"
    "  --data FEWSHOT     the few-shot rows: fitness on its train split\n"
    "  --per-layer        one alpha per layer and expert (default: one per expert)\n"
    "  --iterations N     CEM iterations (default 50)\n"
    "  --population N     candidates per iteration (default 32)\n"
    "  --elite N          the best N set the next mean and std (default 6)\n"
    "  --std X            the initial std of alpha (default 0.5)\n"
    "apply:\n"
    "  --expert E         an experts stream\n"
    "  --name NAME        which of its experts (needed when it holds several)\n"
    "  --keep-f32         a ternary model's adapted matrices as F32 W'\n"
    "                     (default: svf experts quantized again with their own\n"
    "                     rule; scales experts as the same codes, scale per row)\n"
    "\n"
    "  --eval-batch N     rows per evaluation forward (default 256)\n"
    "  --log FILE         append one JSON object per step or iteration to FILE\n"
    "  --seed N           z's start, batches, sampling, CEM (default 1)\n"
    "  --threads N        threads (default: all cores)\n"
    "  -q, --quiet        no progress line\n"
    "      --progress     a progress line even when stderr is not a terminal\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum {
    O_DATA = BF_OPT_PROGRAM, O_NAME, O_METHOD, O_TARGETS, O_STEPS, O_BATCH, O_LR, O_CLIP, O_KL, O_MAXNEW, O_RANK, O_ALPHA,
    O_EVAL_EVERY, O_EXPERTS, O_PER_LAYER, O_ITER, O_POP, O_ELITE, O_STD, O_EXPERT, O_KEEP_F32, O_EVAL_BATCH, O_LOG, O_KIND, O_ON_NAN
};
enum { CMD_TRAIN, CMD_MIX, CMD_APPLY };
static const char *const cmd_names[] = {"train", "mix", "apply", NULL};
static const char *const method_names[] = {"grad", "reinforce", "lora", NULL};
static const char *const kind_names[] = {"svf", "scales", NULL};   /* in bf_svf_form's order */

struct cmdline {
    int cmd;
    const char *input, *data, *name, *expert, *log_path;
    char **experts;
    size_t nexperts;
    int method, rank, keep_f32, targets_given;
    bf_svf_form kind;
    double alpha;
    unsigned targets;
    bf_svf_train_cfg train;
    bf_svf_cem_cfg cem;
    bf_ckptopt ckpt;
    unsigned given;   /* options given, by bit (O_* - O_DATA) */
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT, BF_OPTS_THREADS, BF_OPTS_SEED, BF_OPTS_QUIET,
        {"data", required_argument, 0, O_DATA}, {"name", required_argument, 0, O_NAME},
        {"method", required_argument, 0, O_METHOD}, {"targets", required_argument, 0, O_TARGETS},
        {"steps", required_argument, 0, O_STEPS}, {"batch", required_argument, 0, O_BATCH},
        {"lr", required_argument, 0, O_LR}, {"clip", required_argument, 0, O_CLIP}, {"kl", required_argument, 0, O_KL},
        {"max-new", required_argument, 0, O_MAXNEW}, {"rank", required_argument, 0, O_RANK},
        {"alpha", required_argument, 0, O_ALPHA}, {"eval-every", required_argument, 0, O_EVAL_EVERY},
        {"on-nan", required_argument, 0, O_ON_NAN},
        {"experts", required_argument, 0, O_EXPERTS}, {"per-layer", no_argument, 0, O_PER_LAYER},
        {"iterations", required_argument, 0, O_ITER}, {"population", required_argument, 0, O_POP},
        {"elite", required_argument, 0, O_ELITE}, {"std", required_argument, 0, O_STD},
        {"expert", required_argument, 0, O_EXPERT}, {"keep-f32", no_argument, 0, O_KEEP_F32},
        {"eval-batch", required_argument, 0, O_EVAL_BATCH}, {"log", required_argument, 0, O_LOG},
        {"kind", required_argument, 0, O_KIND}, BF_OPTS_CKPT, {0, 0, 0, 0}};
    memset(cl, 0, sizeof *cl);
    cl->rank = 1;
    cl->alpha = 1;
    cl->targets = BF_LORA_MLP;
    bf_svf_train_default(&cl->train);
    bf_svf_cem_default(&cl->cem);
    bf_cli_begin(argc, argv, "bf-svf", usage);
    if (argc > 1 && argv[1][0] != '-') {
        int k = 0;
        while (cmd_names[k] && strcmp(argv[1], cmd_names[k])) k++;
        if (!cmd_names[k]) bf_usage_die("unknown command '%.64s' (train, mix or apply)", argv[1]);
        cl->cmd = k;
        optind = 2;
    } else {
        cl->cmd = -1;
    }
    int c;
    while ((c = getopt_long(argc, argv, ":ho:q", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg)) continue;
        if (bf_ckptopt_handle(&cl->ckpt, c, optarg)) {
            if (cl->cmd == CMD_APPLY) bf_usage_die("--%s does not go with apply", bf_opt_name(opts, c));
            continue;
        }
        if (c >= O_DATA && c <= O_ON_NAN) cl->given |= 1u << (c - O_DATA);
        switch (c) {
        case O_DATA: cl->data = optarg; break;
        case O_NAME:
            if (!bf_svf_name_ok(optarg)) bf_usage_die("--name: '%.64s' is not 1-63 of A-Z a-z 0-9 _ . -", optarg);
            cl->name = optarg;
            break;
        case O_METHOD: cl->method = bf_parse_choice("method", optarg, method_names); break;
        case O_TARGETS:
            if (bf_lora_targets_parse(optarg, &cl->targets)) bf_usage_die("--targets: %s", bf_errmsg());
            break;
        case O_STEPS: cl->train.steps = (int)bf_parse_int("steps", optarg, 0, 100000000); break;
        case O_BATCH: cl->train.batch = (int)bf_parse_int("batch", optarg, 1, 1 << 20); break;
        case O_LR: cl->train.lr = bf_parse_double("lr", optarg, 0, 1e6); break;
        case O_CLIP: cl->train.clip = bf_parse_double("clip", optarg, 0, 1e12); break;
        case O_KL: cl->train.kl = bf_parse_double("kl", optarg, 0, 1e6); break;
        case O_ON_NAN: {
            static const char *const on_nan[] = {"stop", "skip", NULL};
            cl->train.skip_nonfinite = bf_parse_choice("on-nan", optarg, on_nan);
            break;
        }
        case O_MAXNEW: cl->train.max_new = (int)bf_parse_int("max-new", optarg, 1, 1 << 16); break;
        case O_RANK: cl->rank = (int)bf_parse_int("rank", optarg, 1, 65536); break;
        case O_ALPHA: cl->alpha = bf_parse_double("alpha", optarg, 1e-6, 1e6); break;
        case O_EVAL_EVERY: cl->train.eval_every = (int)bf_parse_int("eval-every", optarg, 0, 100000000); break;
        case O_EXPERTS: {
            char *p = optarg;
            while (*p) {
                size_t n = strcspn(p, ",");
                if (!n) bf_usage_die("--experts: an empty name in the list");
                cl->experts = bf_xrealloc(cl->experts, (cl->nexperts + 1) * sizeof *cl->experts);
                cl->experts[cl->nexperts++] = p;
                if (p[n] == ',') { p[n] = 0; p += n + 1; } else p += n;
            }
            break;
        }
        case O_PER_LAYER: cl->cem.per_layer = 1; break;
        case O_ITER: cl->cem.iterations = (int)bf_parse_int("iterations", optarg, 0, 1000000); break;
        case O_POP: cl->cem.population = (int)bf_parse_int("population", optarg, 1, 100000); break;
        case O_ELITE: cl->cem.elite = (int)bf_parse_int("elite", optarg, 1, 100000); break;
        case O_STD: cl->cem.std0 = bf_parse_double("std", optarg, 0, 100); break;
        case O_EXPERT: cl->expert = optarg; break;
        case O_KEEP_F32: cl->keep_f32 = 1; break;
        case O_EVAL_BATCH:
            cl->train.eval_batch = cl->cem.eval_batch = (int)bf_parse_int("eval-batch", optarg, 1, 1 << 20);
            break;
        case O_LOG: cl->log_path = optarg; break;
        case O_KIND: cl->kind = (bf_svf_form)bf_parse_choice("kind", optarg, kind_names); break;
        default: bf_usage_die("unexpected option");
        }
    }
    if (cl->cmd < 0) bf_usage_die("needs a command: train, mix or apply");
    /* the options each command takes */
    static const unsigned takes[3] = {
        (1u << (O_DATA - O_DATA)) | (1u << (O_NAME - O_DATA)) | (1u << (O_METHOD - O_DATA)) | (1u << (O_TARGETS - O_DATA)) |
            (1u << (O_STEPS - O_DATA)) | (1u << (O_BATCH - O_DATA)) | (1u << (O_LR - O_DATA)) | (1u << (O_CLIP - O_DATA)) |
            (1u << (O_KL - O_DATA)) | (1u << (O_MAXNEW - O_DATA)) | (1u << (O_RANK - O_DATA)) | (1u << (O_ALPHA - O_DATA)) |
            (1u << (O_EVAL_EVERY - O_DATA)) | (1u << (O_EVAL_BATCH - O_DATA)) | (1u << (O_LOG - O_DATA)) |
            (1u << (O_KIND - O_DATA)) | (1u << (O_ON_NAN - O_DATA)),
        (1u << (O_DATA - O_DATA)) | (1u << (O_EXPERTS - O_DATA)) | (1u << (O_PER_LAYER - O_DATA)) | (1u << (O_ITER - O_DATA)) |
            (1u << (O_POP - O_DATA)) | (1u << (O_ELITE - O_DATA)) | (1u << (O_STD - O_DATA)) |
            (1u << (O_EVAL_BATCH - O_DATA)) | (1u << (O_LOG - O_DATA)),
        (1u << (O_EXPERT - O_DATA)) | (1u << (O_NAME - O_DATA)) | (1u << (O_KEEP_F32 - O_DATA))};
    unsigned extra = cl->given & ~takes[cl->cmd];
    if (extra) {
        int b = 0;
        while (!(extra & (1u << b))) b++;
        bf_usage_die("--%s does not go with %s", bf_opt_name(opts, O_DATA + b), cmd_names[cl->cmd]);
    }
    if (cl->cmd == CMD_TRAIN) {
        if (!cl->data) bf_usage_die("train needs --data DATA");
        cl->train.method = cl->method == 1 ? BF_SVF_REINFORCE : BF_SVF_GRAD;
        if (cl->method != 1 && ((cl->given >> (O_KL - O_DATA)) & 1)) bf_usage_die("--kl goes with --method reinforce");
        if (cl->method != 2 && ((cl->given >> (O_RANK - O_DATA) & 1) || (cl->given >> (O_ALPHA - O_DATA) & 1)))
            bf_usage_die("--rank and --alpha go with --method lora");
        if (cl->method == 2 && cl->name) bf_usage_die("--name names an expert; --method lora writes an adapter");
        if (cl->method == 2 && ((cl->given >> (O_KIND - O_DATA)) & 1)) bf_usage_die("--kind is the expert's; --method lora writes an adapter");
    } else if (cl->cmd == CMD_MIX) {
        if (!cl->nexperts) bf_usage_die("mix needs --experts E1[,E2...]");
        if (!cl->data) bf_usage_die("mix needs --data FEWSHOT");
        if (cl->cem.elite > cl->cem.population) bf_usage_die("--elite %d exceeds --population %d", cl->cem.elite, cl->cem.population);
    } else {
        if (!cl->expert) bf_usage_die("apply needs --expert E");
    }
    bf_ckptopt_finish(&cl->ckpt);
    cl->train.seed = cl->cem.seed = bf_cli_state.seed;
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(1);
}

struct run {
    FILE *log;
    int progress, line_open;
    const char *what;
    long skipped, steps;   /* steps passed by (--on-nan skip), of all the steps */
};

static void report_skipped(const struct run *r)
{
    if (r->skipped)
        fprintf(stderr, "%s: passed by %ld of %ld steps whose loss or gradient was not finite\n", bf_cli_state.prog, r->skipped,
                r->steps);
}

static void on_step(void *ctx, const bf_svf_step *s)
{
    struct run *r = ctx;
    r->skipped += s->skipped;
    r->steps++;
    if (r->log) {
        fprintf(r->log, "{\"step\":%d,\"loss\":", s->step);
        bf_json_num(r->log, s->loss);
        if (s->skipped) fprintf(r->log, ",\"skipped\":true");
        if (!strcmp(r->what, "reinforce")) {
            fprintf(r->log, ",\"reward\":");
            bf_json_num(r->log, s->reward);
            fprintf(r->log, ",\"kl\":");
            bf_json_num(r->log, s->kl);
        }
        fprintf(r->log, ",\"grad_norm\":");
        bf_json_num(r->log, s->grad_norm);
        fprintf(r->log, ",\"seconds\":");
        bf_json_num(r->log, round(s->seconds * 1000) / 1000);
        if (s->evaluated) {
            fprintf(r->log, ",\"val_loss\":");
            bf_json_num(r->log, s->val.loss);
            fprintf(r->log, ",\"val_token_acc\":");
            bf_json_num(r->log, s->val.token_acc);
            fprintf(r->log, ",\"val_exact\":");
            bf_json_num(r->log, s->val.exact);
        }
        fprintf(r->log, "}\n");
        fflush(r->log);
    }
    static double last_draw;
    int last = s->step == s->steps;
    if (r->progress && (s->seconds - last_draw > 0.1 || last)) {
        last_draw = s->seconds;
        fprintf(stderr, "\rsvf train (%s) step %d/%d  loss %.4f", r->what, s->step, s->steps, s->loss);
        if (!strcmp(r->what, "reinforce")) fprintf(stderr, "  reward %+.3f", s->reward);
        if (s->evaluated) fprintf(stderr, "  val_exact %.3f", s->val.exact);
        fprintf(stderr, "  %.1fs ", s->seconds);
        r->line_open = !last;
        if (last) fputc('\n', stderr);
    }
}

static void on_iteration(void *ctx, const bf_svf_cem_step *s)
{
    struct run *r = ctx;
    size_t D = (size_t)s->groups * (size_t)s->K;
    if (r->log) {
        fprintf(r->log, "{\"iteration\":%d,\"best_fitness\":", s->iteration);
        bf_json_num(r->log, s->best_fitness);
        fprintf(r->log, ",\"best_loss\":");
        bf_json_num(r->log, s->best_loss);
        fprintf(r->log, ",\"mean_fitness\":");
        bf_json_num(r->log, s->mean_fitness);
        fprintf(r->log, ",\"alpha\":[");
        for (size_t i = 0; i < D; i++) {
            if (i) fputc(',', r->log);
            bf_json_num(r->log, round(s->alpha[i] * 1e6) / 1e6);
        }
        fprintf(r->log, "],\"seconds\":");
        bf_json_num(r->log, round(s->seconds * 1000) / 1000);
        fprintf(r->log, "}\n");
        fflush(r->log);
    }
    if (r->progress) {
        fprintf(stderr, "\rsvf mix iteration %d/%d  best %.4f (loss %.4f)  mean %.4f  %.1fs ", s->iteration, s->iterations,
                s->best_fitness, s->best_loss, s->mean_fitness, s->seconds);
        r->line_open = s->iteration != s->iterations;
        if (!r->line_open) fputc('\n', stderr);
    }
}

/* Every expert of the streams in paths, checked against s. */
static void read_experts(char *const *paths, size_t n, const bf_svf *s, bf_experts *all)
{
    memset(all, 0, sizeof *all);
    for (size_t k = 0; k < n; k++) {
        bf_header h;
        bf_tset t;
        bf_experts e;
        if (bf_read_all(paths[k], &h, &t)) bf_die("%s: %s", paths[k], bf_errmsg());
        if (bf_experts_from_tset(&e, &h, &t, s) || bf_experts_join(all, &e)) bf_die("%s: %s", paths[k], bf_errmsg());
        bf_experts_free(&e);
        bf_tset_release(&t);
        bf_header_release(&h);
    }
}

static int svf_refresh_cb(void *ctx, bf_model *m) { return bf_svf_refresh(ctx, m); }
static int lora_refresh_cb(void *ctx, bf_model *m) { return bf_adapter_refresh(ctx, m); }

static void write_experts(const bf_svf *s, const char *name)
{
    bf_header h;
    bf_tset t;
    const char *names[1] = {name};
    const float *z[1] = {s->ps.params};
    if (bf_experts_to_tset(s, names, z, 1, &h, &t)) bf_die_lib();
    bf_cli_write_all(&h, &t);
    bf_tset_release(&t);
    bf_header_release(&h);
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    const char *label = cl.input && strcmp(cl.input, "-") ? cl.input : "stdin";
    bf_header h;
    bf_model m, base;
    int with_base = cl.cmd == CMD_TRAIN && cl.method == 1 && cl.train.kl > 0;
    uint64_t digest;
    int keep_latent;
    bf_cli_read_model(cl.input, &h, &m, with_base ? &base : NULL, &digest, &keep_latent);

    struct run r = {NULL, bf_cli_show_progress(), 0, method_names[cl.method], 0, 0};
    if (cl.log_path) {
        r.log = fopen(bf_cli_out_path(cl.log_path), "a");
        if (!r.log) bf_die("%s: %s", cl.log_path, bf_strerror(errno));
    }
    bf_dataset d;
    if (cl.cmd != CMD_APPLY) {
        if (bf_data_load(cl.data, &d)) bf_die_lib();
        if (bf_data_check_model(&d, &m.cfg, cl.data)) bf_die_lib();
    }
    if (cl.cmd == CMD_TRAIN && cl.method == 2) {   /* LoRA on cross-entropy: the comparison */
        bf_adapter a;
        if (bf_adapter_create(&a, &m, cl.rank, cl.alpha, cl.targets, cl.train.seed, digest) || bf_adapter_attach(&a, &m))
            bf_die("%s: %s", label, bf_errmsg());
        cl.train.ckpt = bf_ckptopt_begin(&cl.ckpt, digest);
        int rc = bf_svf_train(&m, &a.ps, lora_refresh_cb, &a, NULL, &d, &cl.train, on_step, &r);
        if (r.line_open) fputc('\n', stderr);
        bf_ckptopt_end(&cl.ckpt, rc);
        if (rc) bf_die_lib();
        report_skipped(&r);
        bf_header ah;
        bf_tset at;
        if (bf_adapter_to_tset(&a, &ah, &at)) bf_die_lib();
        bf_cli_write_all(&ah, &at);
        bf_tset_release(&at);
        bf_header_release(&ah);
        bf_adapter_free(&a);
    } else if (cl.cmd == CMD_TRAIN) {
        bf_svf sv;
        if (bf_svf_create(&sv, &m, cl.kind, cl.targets, cl.train.seed, digest) || bf_svf_attach(&sv, &m))
            bf_die("%s: %s", label, bf_errmsg());
        cl.train.ckpt = bf_ckptopt_begin(&cl.ckpt, digest);
        int rc = bf_svf_train(&m, &sv.ps, svf_refresh_cb, &sv, with_base ? &base : NULL, &d, &cl.train, on_step, &r);
        if (r.line_open) fputc('\n', stderr);
        bf_ckptopt_end(&cl.ckpt, rc);
        if (rc) bf_die_lib();
        report_skipped(&r);
        write_experts(&sv, cl.name ? cl.name : "expert");
        bf_svf_free(&sv);
    } else if (cl.cmd == CMD_MIX) {
        bf_header eh;
        bf_tset es;
        /* the targets: from the first stream's header */
        if (bf_read_all(cl.experts[0], &eh, &es)) bf_die("%s: %s", cl.experts[0], bf_errmsg());
        bf_svf_form form;
        unsigned mask;
        if (bf_experts_layout(&eh, &form, &mask)) bf_die("%s: %s", cl.experts[0], bf_errmsg());
        bf_tset_release(&es);
        bf_header_release(&eh);
        bf_svf sv;
        if (bf_svf_create(&sv, &m, form, mask, cl.cem.seed, digest)) bf_die("%s: %s", label, bf_errmsg());
        bf_experts e;
        read_experts(cl.experts, cl.nexperts, &sv, &e);
        if (bf_svf_attach(&sv, &m)) bf_die("%s: %s", label, bf_errmsg());
        int groups = cl.cem.per_layer ? m.cfg.n_layer : 1;
        double *alpha = bf_xmalloc((size_t)groups * e.nexp * sizeof *alpha);
        r.what = "mix";
        cl.cem.ckpt = bf_ckptopt_begin(&cl.ckpt, digest);
        int rc = bf_svf_cem(&m, &sv, &e, &d.train, &cl.cem, alpha, on_iteration, &r);
        if (r.line_open) fputc('\n', stderr);
        bf_ckptopt_end(&cl.ckpt, rc);
        if (rc) bf_die_lib();
        report_skipped(&r);
        write_experts(&sv, "mix");
        free(alpha);
        bf_experts_free(&e);
        bf_svf_free(&sv);
    } else {
        bf_header eh;
        bf_tset es;
        if (bf_read_all(cl.expert, &eh, &es)) bf_die("%s: %s", cl.expert, bf_errmsg());
        bf_svf_form form;
        unsigned mask;
        if (bf_experts_layout(&eh, &form, &mask)) bf_die("%s: %s", cl.expert, bf_errmsg());
        bf_svf sv;
        bf_experts e;
        if (bf_svf_create(&sv, &m, form, mask, 1, digest)) bf_die("%s: %s", label, bf_errmsg());
        if (bf_experts_from_tset(&e, &eh, &es, &sv)) bf_die("%s: %s", cl.expert, bf_errmsg());
        bf_tset_release(&es);
        bf_header_release(&eh);
        int k = 0;
        if (cl.name) {
            k = bf_experts_find(&e, cl.name);
            if (k < 0) bf_die("%s: %s", cl.expert, bf_errmsg());
        } else if (e.nexp > 1) {
            bf_die("%s: holds %zu experts; --name chooses one", cl.expert, e.nexp);
        }
        memcpy(sv.ps.params, e.z + (size_t)k * e.n, e.n * sizeof(float));
        bf_tset out;
        if (bf_svf_apply(&sv, &m, cl.keep_f32, keep_latent, &out)) bf_die("%s: %s", label, bf_errmsg());
        bf_cli_write_all(&h, &out);
        bf_tset_release(&out);
        bf_experts_free(&e);
        bf_svf_free(&sv);
    }
    if (r.log) fclose(r.log);
    if (cl.cmd != CMD_APPLY) bf_data_free(&d);
    if (with_base) bf_model_free(&base);
    bf_model_free(&m);
    bf_header_release(&h);
    free(cl.experts);
    return 0;
}

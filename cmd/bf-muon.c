/* bf-muon — training with MuonGrokfast (bf-muon(1)): a Grokfast filter, then
 * Muon on the block matrices and a fallback on the rest; STE mode on ternary
 * models, a KL anchor to a frozen reference, QK-clip. */
#include "cli.h"
#include "bf/data.h"
#include "bf/model.h"
#include "trainopt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-muon --data DATA [options] [MODEL]\n"
    "\n"
    "Trains MODEL (stdin when absent or '-') with MuonGrokfast: each step's\n"
    "gradient passes Grokfast's slow-gradient filter, then the block matrices\n"
    "blk.*.w{q,k,v,o,1,2,3} take a Muon step (Nesterov momentum, quintic\n"
    "Newton-Schulz orthogonalization, scale sqrt(max(1, rows/cols)), decoupled\n"
    "weight decay) and every other parameter the fallback optimizer.  On a\n"
    "ternary model the optimizer updates the latent weights and every forward\n"
    "re-quantizes them (STE mode).\n"
    "\n"
    "  --muon-lr X        Muon's peak learning rate (default 0.02; --lr is the same)\n"
    "  --kl X             add X·KL(p_ref || p) over targeted positions (default 0)\n"
    "  --ref MODEL        the frozen reference for --kl (default: the input model)\n"
    "  --qk-clip T        after each step, scale wq and wk rows of every head whose\n"
    "                     largest logit q·k/sqrt(hd) on the batch passed T by\n"
    "                     sqrt(T/max) (MuonClip)\n"
    "  --ste on|off|auto  on: the model must hold ternary layers; off: it must not;\n"
    "                     auto (default): STE mode exactly when it does\n"
    "  --preset P         phase5: the seed's phase 5: --muon-lr 0.01 --fallback\n"
    "                     adamw --fallback-lr 5e-4 --grokfast ema --grokfast-alpha\n"
    "                     0.98 --grokfast-lambda 2 --kl 0.2 --ste auto;\n"
    "                     phase5-finetune: the same at --muon-lr 1e-3, for a model\n"
    "                     that is trained already; flags given explicitly win\n"
    BF_USAGE_TRAIN
    "  (--grokfast defaults to ema here; --grokfast off gives plain Muon)\n"
    BF_USAGE_MUON
    "  --strip            ternary output without latent weights\n"
    "  --seed N           batch order seed (default 1)\n"
    "  --threads N        threads (default: all cores)\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -q, --quiet        no progress line\n"
    "      --progress     a progress line even when stderr is not a terminal\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { O_MUONLR = BF_OPT_PROGRAM, O_KL, O_REF, O_QKCLIP, O_STE, O_PRESET, O_STRIP };

struct cmdline {
    const char *input, *ref;
    bf_trainopt t;
    int ste, strip;            /* ste: 0 off, 1 on, 2 auto */
    int have_kl, have_ste, have_lr;
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT, BF_OPTS_THREADS, BF_OPTS_SEED, BF_OPTS_QUIET, BF_OPTS_TRAIN,
        {"muon-lr", required_argument, 0, O_MUONLR}, {"kl", required_argument, 0, O_KL},
        {"ref", required_argument, 0, O_REF}, {"qk-clip", required_argument, 0, O_QKCLIP},
        {"ste", required_argument, 0, O_STE}, {"preset", required_argument, 0, O_PRESET},
        {"strip", no_argument, 0, O_STRIP}, {0, 0, 0, 0}};
    static const char *const stes[] = {"off", "on", "auto", NULL}, *const presets[] = {"phase5", "phase5-finetune", NULL};
    memset(cl, 0, sizeof *cl);
    bf_trainopt_default(&cl->t);
    cl->t.optim.kind = BF_OPTIM_MUON;
    cl->t.optim.grokfast = BF_GROKFAST_EMA;
    cl->t.train.lr = 0.02;
    cl->ste = 2;
    int preset = 0;
    bf_cli_begin(argc, argv, "bf-muon", usage);
    int c;
    while ((c = getopt_long(argc, argv, ":ho:q", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg)) continue;
        if (bf_trainopt_handle(&cl->t, c, optarg)) {
            if (c == BF_TO_LR) cl->have_lr = 1;
            continue;
        }
        switch (c) {
        case O_MUONLR: cl->t.train.lr = bf_parse_double("muon-lr", optarg, 0, 1e6); cl->have_lr = 1; break;
        case O_KL: cl->t.train.kl = bf_parse_double("kl", optarg, 0, 1e6); cl->have_kl = 1; break;
        case O_REF: cl->ref = optarg; break;
        case O_QKCLIP: cl->t.train.qk_clip = bf_parse_double("qk-clip", optarg, 1e-6, 1e9); break;
        case O_STE: cl->ste = bf_parse_choice("ste", optarg, stes); cl->have_ste = 1; break;
        case O_PRESET: preset = 1 + bf_parse_choice("preset", optarg, presets); break;
        case O_STRIP: cl->strip = 1; break;
        default: bf_usage_die("unexpected option");
        }
    }
    if (preset) {   /* the seed documents' phase 5, under any explicit flag */
        bf_trainopt *t = &cl->t;
        /* a trained ternary model loses points at the seed's Muon rate, which
         * moves latents across their thresholds with steps of a size that a
         * model near its minimum does not need (bf-muon(1), the presets) */
        if (!cl->have_lr) t->train.lr = preset == 2 ? 1e-3 : 0.01;
        if (!BF_TO_GIVEN(t, BF_TO_FALLBACK)) t->optim.fallback = BF_OPTIM_ADAMW;
        if (!BF_TO_GIVEN(t, BF_TO_FALLBACK_LR)) t->optim.fallback_lr = 5e-4;
        if (!BF_TO_GIVEN(t, BF_TO_GROKFAST)) t->optim.grokfast = BF_GROKFAST_EMA;
        if (!BF_TO_GIVEN(t, BF_TO_GF_ALPHA) && t->optim.grokfast == BF_GROKFAST_EMA) t->optim.gf_alpha = 0.98;
        if (!BF_TO_GIVEN(t, BF_TO_GF_LAMBDA) && t->optim.grokfast == BF_GROKFAST_EMA) t->optim.gf_lambda = 2.0;
        if (!cl->have_kl) t->train.kl = 0.2;
    }
    if (cl->ref && cl->t.train.kl <= 0) bf_usage_die("--ref is the reference of --kl; give --kl X too");
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(1);
    bf_trainopt_finish(&cl->t);
}

static void load_model(const char *path, bf_header *h, bf_model *m, int keep_header, uint64_t *digest)
{
    bf_header hh;
    bf_tset s;
    if (bf_read_all(path, &hh, &s)) bf_die_lib();
    if (digest) *digest = bf_tset_digest(&s);
    if (bf_model_from_tset(m, &hh, &s)) bf_die("%s: %s", path && strcmp(path, "-") ? path : "stdin", bf_errmsg());
    bf_tset_release(&s);
    if (keep_header) *h = hh;
    else bf_header_release(&hh);
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    const char *label = cl.input && strcmp(cl.input, "-") ? cl.input : "stdin";

    bf_header h;
    bf_model m, ref;
    int have_ref = 0;
    if (cl.t.train.kl > 0 && !cl.ref) {
        /* the input is the reference: read it once, build two models */
        bf_tset s;
        if (bf_read_all(cl.input, &h, &s)) bf_die_lib();
        if (bf_model_from_tset(&m, &h, &s) || bf_model_from_tset(&ref, &h, &s)) bf_die("%s: %s", label, bf_errmsg());
        cl.t.model_digest = bf_tset_digest(&s);
        bf_tset_release(&s);
        have_ref = 1;
    } else {
        load_model(cl.input, &h, &m, 1, &cl.t.model_digest);
        if (cl.ref) { load_model(cl.ref, NULL, &ref, 0, NULL); have_ref = 1; }
    }
    int quantized = bf_model_is_quantized(&m);
    if (cl.ste == 1 && !quantized) bf_die("%s: --ste on, but the model has no ternary layers (bf-quantize first)", label);
    if (cl.ste == 0 && quantized) bf_die("%s: --ste off, but the model has ternary layers (bf-dequant first)", label);
    if (have_ref && ref.cfg.vocab != m.cfg.vocab) bf_die("%s: the reference's vocab %d differs from the model's %d",
                                                          cl.ref, ref.cfg.vocab, m.cfg.vocab);

    /* the frozen reference needs no gradient: its ternary layers run on the
     * integer kernels, as bf-eval runs them */
    if (have_ref && bf_model_use_int_kernels(&ref)) bf_die_lib();
    bf_trainopt_run(&cl.t, &m, have_ref ? &ref : NULL, cl.ref ? cl.ref : label, &h, cl.strip);
    return 0;
}

/* bf-ste-train — train a model; through the quantizer on ternary models. */
#include "cli.h"
#include "bf/data.h"
#include "bf/model.h"
#include "trainopt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-ste-train --data DATA [options] [MODEL]\n"
    "\n"
    "Trains MODEL (stdin when absent or '-') on DATA's train split and writes the\n"
    "trained model.  A float model trains plainly.  On a model holding ternary\n"
    "block matrices, every forward re-quantizes the latent weights (and, with\n"
    "act_bits 8, the inputs of those matrices to int8 per token), and the\n"
    "backward passes the gradient straight through both quantizers to the\n"
    "latent weights (straight-through estimator).\n"
    "\n"
    BF_USAGE_TRAIN
    "  --lr X             peak learning rate (default 1e-3; with --opt muon, Muon's)\n"
    "  --opt adamw|adam|sgd|muon|muongrokfast  optimizer (default adamw; adam:\n"
    "                     coupled L2 decay; sgd: plain, no momentum; muon: Muon on\n"
    "                     the block matrices; muongrokfast: Muon after a Grokfast\n"
    "                     EMA filter unless --grokfast says otherwise)\n"
    "  with --opt muon or muongrokfast:\n"
    BF_USAGE_MUON
    "  --strip            ternary output without latent weights (deployment)\n"
    "  --seed N           batch order seed (default 1)\n"
    "  --threads N        threads (default: all cores)\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -q, --quiet        no progress line\n"
    "      --progress     a progress line even when stderr is not a terminal\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { O_OPT = BF_OPT_PROGRAM, O_STRIP };

struct cmdline {
    const char *input;
    bf_trainopt t;
    int strip, muongrokfast;
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT, BF_OPTS_THREADS, BF_OPTS_SEED, BF_OPTS_QUIET, BF_OPTS_TRAIN,
        {"opt", required_argument, 0, O_OPT}, {"strip", no_argument, 0, O_STRIP}, {0, 0, 0, 0}};
    memset(cl, 0, sizeof *cl);
    bf_trainopt_default(&cl->t);
    bf_cli_begin(argc, argv, "bf-ste-train", usage);
    int c;
    while ((c = getopt_long(argc, argv, ":ho:q", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg) || bf_trainopt_handle(&cl->t, c, optarg)) continue;
        switch (c) {
        case O_OPT: {
            static const char *const opt_names[] = {"adamw", "adam", "sgd", "muon", "muongrokfast", NULL};
            int k = bf_parse_choice("opt", optarg, opt_names);
            cl->t.optim.kind = k == 4 ? BF_OPTIM_MUON : (bf_optim_kind)k;
            cl->muongrokfast = k == 4;
            break;
        }
        case O_STRIP: cl->strip = 1; break;
        default: bf_usage_die("unexpected option");
        }
    }
    if (cl->muongrokfast && !BF_TO_GIVEN(&cl->t, BF_TO_GROKFAST)) cl->t.optim.grokfast = BF_GROKFAST_EMA;
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(1);
    bf_trainopt_finish(&cl->t);
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);

    bf_header h;
    bf_model m;
    bf_cli_read_model(cl.input, &h, &m, NULL, &cl.t.model_digest, NULL);
    bf_trainopt_run(&cl.t, &m, NULL, NULL, &h, cl.strip);
    return 0;
}

/* bf-init — a randomly initialized model (bitforge(7)) from flags. */
#include "cli.h"
#include "bf/config.h"
#include "bf/dataset.h"
#include "bf/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-init (--vocab N --ctx N | --like DATA) [options] [-o FILE]\n"
    "\n"
    "Writes a randomly initialized transformer model stream (bitforge(7)).\n"
    "\n"
    "  --vocab N          vocabulary size\n"
    "  --ctx N            context length (tokens)\n"
    "  --like DATA        take vocab and ctx from a data stream; a puzzle's data\n"
    "                     (targets not the next token, as sudoku's) also sets\n"
    "                     --attn full --pos learned --std 0.125 unless given\n"
    "  --d N              model width d_model (default 128)\n"
    "  --layers N         transformer blocks (default 2)\n"
    "  --heads N          attention heads; must divide d (default 4)\n"
    "  --ff N             MLP width d_ff (default 4·d)\n"
    "  --norm rms|layer   normalization (default rms)\n"
    "  --act swiglu|gelu|relu2   MLP activation (default swiglu)\n"
    "  --pos rope|learned positions (default rope)\n"
    "  --attn causal|full attention mask: causal (language models) or none (puzzles,\n"
    "                     where every cell sees every cell; default causal)\n"
    "  --recursion n,T,sup  a recursive model (TRM): post-norm blocks run as one\n"
    "                     net; n latent updates z = net(x+y+z) then y = net(y+z)\n"
    "                     make a recursion, T recursions a supervision step, up to\n"
    "                     sup steps a puzzle (adds rec.y0, rec.z0, halt.w, halt.b)\n"
    "  --tie              tie the output head to the token embedding\n"
    "  --subln            BitNet's extra RMSNorm before wo and w2\n"
    "  --act-bits 8|0     int8 activations in ternary layers (default 8)\n"
    "  --std X            matrices' init standard deviation (default 0.02)\n"
    "  --emb-std X        embeddings' init standard deviation (default: --std; 1\n"
    "                     with --recursion, the scale of the normed states)\n"
    "  --seed N           initialization seed (default 1)\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -q, --quiet        no messages but errors\n"
    "  -h, --help         this text\n"
    "      --version      the version\n"
    "\n"
    "Matrices and embeddings are drawn from N(0, std²) (std 0.02 unless given),\n"
    "wo and w2 from N(0, (std/sqrt(2·layers))²); norm weights are 1, biases 0.\n"
    "Each tensor has its own random stream derived from the seed and its name.\n"
    "A recursive model's rec.y0 and rec.z0 are drawn from N(0, 1) whatever --std\n"
    "(its states are normed), halt.w from N(0, std²) and halt.b is -5.\n";

enum { O_VOCAB = BF_OPT_PROGRAM, O_CTX, O_LIKE, O_D, O_LAYERS, O_HEADS, O_FF, O_NORM, O_ACT, O_POS, O_ATTN, O_REC, O_TIE, O_SUBLN, O_ACTBITS,
       O_STD, O_EMBSTD };

struct cmdline {
    bf_config cfg;
    const char *like;
    int have_vocab, have_ctx, have_ff, have_attn, have_pos, have_std;
    double std, emb_std;       /* emb_std < 0: the same as std */
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT, BF_OPTS_SEED, {"quiet", no_argument, 0, BF_OPT_QUIET},
        {"vocab", required_argument, 0, O_VOCAB}, {"ctx", required_argument, 0, O_CTX},
        {"like", required_argument, 0, O_LIKE}, {"d", required_argument, 0, O_D},
        {"layers", required_argument, 0, O_LAYERS}, {"heads", required_argument, 0, O_HEADS},
        {"ff", required_argument, 0, O_FF}, {"norm", required_argument, 0, O_NORM},
        {"act", required_argument, 0, O_ACT}, {"pos", required_argument, 0, O_POS},
        {"attn", required_argument, 0, O_ATTN}, {"recursion", required_argument, 0, O_REC},
        {"tie", no_argument, 0, O_TIE}, {"subln", no_argument, 0, O_SUBLN},
        {"act-bits", required_argument, 0, O_ACTBITS}, {"std", required_argument, 0, O_STD},
        {"emb-std", required_argument, 0, O_EMBSTD}, {0, 0, 0, 0}};
    memset(cl, 0, sizeof *cl);
    bf_config_default(&cl->cfg);
    cl->std = 0.02;
    cl->emb_std = -1;
    bf_cli_begin(argc, argv, "bf-init", usage);
    int c;
    while ((c = getopt_long(argc, argv, ":ho:q", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg)) continue;
        switch (c) {
        case O_VOCAB: cl->cfg.vocab = (int)bf_parse_int("vocab", optarg, 1, BF_MAX_VOCAB); cl->have_vocab = 1; break;
        case O_CTX: cl->cfg.ctx = (int)bf_parse_int("ctx", optarg, 1, BF_MAX_CTX); cl->have_ctx = 1; break;
        case O_LIKE: cl->like = optarg; break;
        case O_D: cl->cfg.d_model = (int)bf_parse_int("d", optarg, 1, BF_MAX_DMODEL); break;
        case O_LAYERS: cl->cfg.n_layer = (int)bf_parse_int("layers", optarg, 1, BF_MAX_LAYERS); break;
        case O_HEADS: cl->cfg.n_head = (int)bf_parse_int("heads", optarg, 1, BF_MAX_DMODEL); break;
        case O_FF: cl->cfg.d_ff = (int)bf_parse_int("ff", optarg, 1, BF_MAX_DFF); cl->have_ff = 1; break;
        case O_NORM: cl->cfg.norm = (bf_norm_kind)bf_parse_choice("norm", optarg, bf_norm_names); break;
        case O_ACT: cl->cfg.act = (bf_act_kind)bf_parse_choice("act", optarg, bf_act_names); break;
        case O_POS: cl->cfg.pos = (bf_pos_kind)bf_parse_choice("pos", optarg, bf_pos_names); cl->have_pos = 1; break;
        case O_ATTN: cl->cfg.attn = (bf_attn_kind)bf_parse_choice("attn", optarg, bf_attn_names); cl->have_attn = 1; break;
        case O_REC: {
            char tail;
            int n, T, sup;
            if (sscanf(optarg, "%d,%d,%d%c", &n, &T, &sup, &tail) != 3 || n < 1 || n > BF_MAX_REC || T < 1 ||
                T > BF_MAX_REC || sup < 1 || sup > BF_MAX_SUP)
                bf_usage_die("--recursion wants n,T,sup with n and T in 1..%d, sup in 1..%d", BF_MAX_REC, BF_MAX_SUP);
            cl->cfg.rec_n = n;
            cl->cfg.rec_T = T;
            cl->cfg.rec_sup = sup;
            break;
        }
        case O_TIE: cl->cfg.tie_embed = 1; break;
        case O_SUBLN: cl->cfg.subln = 1; break;
        case O_ACTBITS: {
            static const char *const bits[] = {"0", "8", NULL};
            cl->cfg.act_bits = bf_parse_choice("act-bits", optarg, bits) ? 8 : 0;
            break;
        }
        case O_STD: cl->std = bf_parse_double("std", optarg, 0, 100); cl->have_std = 1; break;
        case O_EMBSTD: cl->emb_std = bf_parse_double("emb-std", optarg, 0, 100); break;
        default: bf_usage_die("unexpected option");
        }
    }
    if (optind < argc) bf_usage_die("unexpected argument '%s'", argv[optind]);
    if (cl->like && (cl->have_vocab || cl->have_ctx)) bf_usage_die("--like takes vocab and ctx; do not give them too");
    if (!cl->like && (!cl->have_vocab || !cl->have_ctx)) bf_usage_die("needs --vocab and --ctx, or --like DATA");
    if (!cl->have_ff) cl->cfg.d_ff = cl->cfg.d_model * 4 > BF_MAX_DFF ? BF_MAX_DFF : cl->cfg.d_model * 4;
    bf_cli_end(1);
}

/* Counts a split's targets (before the last position) and those that are
 * the token that follows them in the row.  A language model's rows have
 * nearly all so (all but a row's last, which ends it); a puzzle's answers
 * stand at their own position (sudoku's blanks), and few are. */
static void count_next_token(const bf_split *sp, size_t *targets, size_t *next)
{
    for (size_t r = 0; r < sp->rows; r++) {
        const int32_t *x = sp->x + r * sp->T, *y = sp->y + r * sp->T;
        for (size_t t = 0; t + 1 < sp->T; t++) {
            *targets += y[t] >= 0;
            *next += y[t] >= 0 && y[t] == x[t + 1];
        }
    }
}

/* vocab and ctx of a data stream (its header meta), read and verified
 * whole; when it holds rows (a data set of bf-data), a puzzle's rows (not
 * next-token rows) also give the defaults a puzzle needs: every cell sees
 * every cell (full attention), positions learned (a grid is not a
 * sequence), and a wider initialization */
static void take_like(struct cmdline *cl)
{
    const char *path = cl->like, *label = path && strcmp(path, "-") ? path : "stdin";
    bf_header h;
    bf_tset s;
    if (bf_read_all(path, &h, &s)) bf_die_lib();
    if (strcmp(h.kind, "data") != 0) bf_die("%s: a '%s' stream, not 'data'", label, h.kind);
    int64_t vocab, ctx;
    if (bf_val_get_int(h.meta, "vocab", 0, &vocab) || vocab < 1 || vocab > BF_MAX_VOCAB)
        bf_die("%s: data meta has no valid 'vocab'", label);
    if (bf_val_get_int(h.meta, "ctx", 0, &ctx) || ctx < 1 || ctx > BF_MAX_CTX) bf_die("%s: data meta has no valid 'ctx'", label);
    cl->cfg.vocab = (int)vocab;
    cl->cfg.ctx = (int)ctx;
    if (!bf_tset_find(&s, "train.y")) {   /* no rows to read the kind from */
        bf_tset_release(&s);
        bf_header_release(&h);
        return;
    }
    bf_dataset d;
    if (bf_data_from_tset(label, &h, &s, &d)) bf_die_lib();
    size_t targets = 0, next = 0;
    count_next_token(&d.train, &targets, &next);
    count_next_token(&d.val, &targets, &next);
    if (targets && 2 * next < targets) {   /* not next-token rows: a puzzle */
        if (!cl->have_attn) cl->cfg.attn = BF_ATTN_FULL;
        if (!cl->have_pos) cl->cfg.pos = BF_POS_LEARNED;
        if (!cl->have_std) cl->std = 0.125;
    }
    bf_data_free(&d);
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    if (cl.like) take_like(&cl);
    if (cl.emb_std < 0) cl.emb_std = cl.cfg.rec_n ? 1.0 : cl.std;   /* x + y + z: the input as loud as the states */
    if (bf_config_validate(&cl.cfg)) bf_usage_die("%s", bf_errmsg());

    bf_header h;
    bf_header_init(&h, "model");
    bf_config_to_meta(&cl.cfg, h.meta);
    size_t n;
    bf_param_spec *spec = bf_config_params(&cl.cfg, &n);
    bf_writer *w = bf_cli_open_output(&h);
    for (size_t k = 0; k < n; k++) {   /* one tensor in memory at a time */
        bf_tensor t;
        if (bf_tensor_init(&t, spec[k].name, BF_F32, spec[k].ndim, spec[k].shape)) { bf_writer_abort(w); bf_die_lib(); }
        float *x = t.data;
        uint64_t numel = bf_tensor_numel(&t);
        if (spec[k].init == BF_INIT_NORMAL) {
            /* the spec's deviations are the model's defaults for std 0.02; scale them */
            int emb = !strcmp(spec[k].name, "tok_emb") || !strcmp(spec[k].name, "pos_emb");
            int state = !strncmp(spec[k].name, "rec.", 4);   /* a state's start: its own scale */
            double sd = emb ? cl.emb_std : state ? spec[k].std : spec[k].std * (cl.std / 0.02);
            bf_rng rng = bf_rng_derive(bf_cli_state.seed, spec[k].name);
            for (uint64_t j = 0; j < numel; j++) x[j] = (float)(sd * bf_rng_normal(&rng));
        } else if (spec[k].init == BF_INIT_ONE) {
            for (uint64_t j = 0; j < numel; j++) x[j] = 1.0f;
        } else if (spec[k].init == BF_INIT_CONST) {
            for (uint64_t j = 0; j < numel; j++) x[j] = (float)spec[k].std;
        }
        if (bf_writer_tensor(w, &t)) { bf_writer_abort(w); bf_die_lib(); }
        bf_tensor_release(&t);
    }
    bf_cli_close_output(w);
    free(spec);
    bf_header_release(&h);
    return 0;
}

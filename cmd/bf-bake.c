/* bf-bake — prompt baking into a LoRA adapter (bf-bake(1)). */
#include "cli.h"
#include "bf/bake.h"
#include "bf/lora.h"
#include "bf/tgroup.h"
#include "bf/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-bake --prompt TEXT --data DATA [options] [MODEL]\n"
    "\n"
    "Bakes a prompt into a model: the teacher is MODEL reading TEXT before each\n"
    "row, the student MODEL plus a LoRA adapter reading the row alone; the\n"
    "adapter learns the teacher's token distributions (KL) at the answer\n"
    "positions of DATA's train rows, and of rows the teacher samples itself.\n"
    "Writes the model with the adapter merged (ternary matrices re-quantized\n"
    "with their own rule), or the adapter alone.\n"
    "\n"
    "  --prompt TEXT      the prompt, as bytes (tokens 0-255)\n"
    "  --data DATA        rows without the prompt; answer positions carry targets\n"
    "  --rank R           LoRA rank (default 8)\n"
    "  --alpha A          LoRA scale alpha; B·A is scaled by alpha/rank (default 16)\n"
    "  --targets LIST     adapted matrices: wq,wk,wv,wo,w1,w3,w2, attn, mlp, all\n"
    "                     (default attn)\n"
    "  --steps N          Adam steps on the adapter (default 200)\n"
    "  --batch N          rows per step (default 32)\n"
    "  --lr X             Adam's learning rate (default 1e-3)\n"
    "  --clip X           clip the adapter's gradient norm (default 1; 0: off)\n"
    "  --samples K        teacher trajectories per question (default 0: data only);\n"
    "                     data and trajectory batches then take turns\n"
    "  --temperature T    sampling temperature (default 1; 0: greedy)\n"
    "  --max-new L        tokens a trajectory may add (default 32)\n"
    "  --questions Q      train rows whose questions are sampled (default 256)\n"
    "  --pursuit K        bake K more times, each with the last baked model as\n"
    "                     the teacher (prompt pursuit)\n"
    "  --adapter-out      write the adapter (kind adapter) instead of the model\n"
    "  --checkpoint PFX   with --every N: the adapter every N steps, as PFX-STEP.bf\n"
    "  --every N          (the half-baking curve)\n"
    "  --eval-every N     KL and exact match on DATA's val split every N steps\n"
    "                     (default: at the end)\n"
    "  --eval-batch N     rows per evaluation forward (default 256)\n"
    "  --log FILE         append one JSON object per step to FILE\n"
    "  --seed N           adapter initialization, batches and sampling (default 1)\n"
    "  --threads N        threads (default: all cores)\n"
    "  -q, --quiet        no progress line\n"
    "      --progress     a progress line even when stderr is not a terminal\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum {
    O_PROMPT = BF_OPT_PROGRAM, O_DATA, O_RANK, O_ALPHA, O_TARGETS, O_STEPS, O_BATCH, O_LR, O_CLIP, O_SAMPLES, O_TEMP,
    O_MAXNEW, O_QUESTIONS, O_PURSUIT, O_ADAPTER_OUT, O_CHECKPOINT, O_EVERY, O_EVAL_EVERY, O_EVAL_BATCH, O_LOG
};

struct cmdline {
    const char *input, *data, *prompt, *log_path, *checkpoint;
    int rank, pursuit, adapter_out, every;
    double alpha;
    unsigned targets;
    bf_bake_cfg bake;
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT, BF_OPTS_THREADS, BF_OPTS_SEED, BF_OPTS_QUIET,
        {"prompt", required_argument, 0, O_PROMPT}, {"data", required_argument, 0, O_DATA},
        {"rank", required_argument, 0, O_RANK}, {"alpha", required_argument, 0, O_ALPHA},
        {"targets", required_argument, 0, O_TARGETS}, {"steps", required_argument, 0, O_STEPS},
        {"batch", required_argument, 0, O_BATCH}, {"lr", required_argument, 0, O_LR},
        {"clip", required_argument, 0, O_CLIP}, {"samples", required_argument, 0, O_SAMPLES},
        {"temperature", required_argument, 0, O_TEMP}, {"max-new", required_argument, 0, O_MAXNEW},
        {"questions", required_argument, 0, O_QUESTIONS}, {"pursuit", required_argument, 0, O_PURSUIT},
        {"adapter-out", no_argument, 0, O_ADAPTER_OUT}, {"checkpoint", required_argument, 0, O_CHECKPOINT},
        {"every", required_argument, 0, O_EVERY}, {"eval-every", required_argument, 0, O_EVAL_EVERY},
        {"eval-batch", required_argument, 0, O_EVAL_BATCH}, {"log", required_argument, 0, O_LOG}, {0, 0, 0, 0}};
    memset(cl, 0, sizeof *cl);
    cl->rank = 8;
    cl->alpha = 16;
    cl->targets = BF_LORA_ATTN;
    bf_bake_default(&cl->bake);
    bf_cli_begin(argc, argv, "bf-bake", usage);
    int c;
    while ((c = getopt_long(argc, argv, ":ho:q", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg)) continue;
        bf_bake_cfg *b = &cl->bake;
        switch (c) {
        case O_PROMPT: cl->prompt = optarg; break;
        case O_DATA: cl->data = optarg; break;
        case O_RANK: cl->rank = (int)bf_parse_int("rank", optarg, 1, 65536); break;
        case O_ALPHA: cl->alpha = bf_parse_double("alpha", optarg, 1e-6, 1e6); break;
        case O_TARGETS:
            if (bf_lora_targets_parse(optarg, &cl->targets)) bf_usage_die("--targets: %s", bf_errmsg());
            break;
        case O_STEPS: b->steps = (int)bf_parse_int("steps", optarg, 0, 100000000); break;
        case O_BATCH: b->batch = (int)bf_parse_int("batch", optarg, 1, 1 << 20); break;
        case O_LR: b->lr = bf_parse_double("lr", optarg, 0, 1e6); break;
        case O_CLIP: b->clip = bf_parse_double("clip", optarg, 0, 1e12); break;
        case O_SAMPLES: b->samples = (int)bf_parse_int("samples", optarg, 0, 4096); break;
        case O_TEMP: b->temperature = bf_parse_double("temperature", optarg, 0, 100); break;
        case O_MAXNEW: b->max_new = (int)bf_parse_int("max-new", optarg, 1, 1 << 16); break;
        case O_QUESTIONS: b->questions = (int)bf_parse_int("questions", optarg, 1, 1 << 24); break;
        case O_PURSUIT: cl->pursuit = (int)bf_parse_int("pursuit", optarg, 0, 100); break;
        case O_ADAPTER_OUT: cl->adapter_out = 1; break;
        case O_CHECKPOINT: cl->checkpoint = optarg; break;
        case O_EVERY: cl->every = (int)bf_parse_int("every", optarg, 1, 100000000); break;
        case O_EVAL_EVERY: b->eval_every = (int)bf_parse_int("eval-every", optarg, 0, 100000000); break;
        case O_EVAL_BATCH: b->eval_batch = (int)bf_parse_int("eval-batch", optarg, 1, 1 << 20); break;
        case O_LOG: cl->log_path = optarg; break;
        default: bf_usage_die("unexpected option");
        }
    }
    if (!cl->prompt || !*cl->prompt) bf_usage_die("needs --prompt TEXT");
    if (!cl->data) bf_usage_die("needs --data DATA");
    if (strlen(cl->prompt) > 4096) bf_usage_die("--prompt longer than 4096 bytes");
    if (!!cl->checkpoint != !!cl->every) bf_usage_die("--checkpoint PFX and --every N go together");
    if (cl->adapter_out && cl->pursuit) bf_usage_die("--adapter-out writes one adapter; --pursuit bakes several");
    cl->bake.seed = bf_cli_state.seed;
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(1);
}

struct run {
    const struct cmdline *cl;
    FILE *log;
    int progress, line_open, round;
    bf_adapter *a;
};

/* The adapter as a stream: to path, or (NULL) to -o or stdout. */
static void write_adapter(const bf_adapter *a, const char *path)
{
    bf_header h;
    bf_tset s;
    if (bf_adapter_to_tset(a, &h, &s)) bf_die_lib();
    if (path) {
        bf_cli_lineage(&h);
        if (bf_write_all(path, &h, &s)) bf_die("%s: %s", path, bf_errmsg());
    } else {
        bf_cli_write_all(&h, &s);
    }
    bf_tset_release(&s);
    bf_header_release(&h);
}

static void on_step(void *ctx, const bf_bake_step *s)
{
    struct run *r = ctx;
    if (r->log) {
        fprintf(r->log, "{\"round\":%d,\"step\":%d,\"kl\":", r->round, s->step);
        bf_json_num(r->log, s->kl);
        fprintf(r->log, ",\"lr\":");
        bf_json_num(r->log, s->lr);
        fprintf(r->log, ",\"grad_norm\":");
        bf_json_num(r->log, s->grad_norm);
        fprintf(r->log, ",\"seconds\":");
        bf_json_num(r->log, round(s->seconds * 1000) / 1000);
        if (s->evaluated) {
            fprintf(r->log, ",\"val_kl\":");
            bf_json_num(r->log, s->val_kl);
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
    if (r->cl->every && s->step % r->cl->every == 0) {
        char path[4096];
        if (r->round) snprintf(path, sizeof path, "%s-r%d-%d.bf", r->cl->checkpoint, r->round, s->step);
        else snprintf(path, sizeof path, "%s-%d.bf", r->cl->checkpoint, s->step);
        write_adapter(r->a, path);
    }
    static double last_draw;
    int last = s->step == s->steps;
    if (r->progress && (s->seconds - last_draw > 0.1 || last)) {
        last_draw = s->seconds;
        fprintf(stderr, "\rbake%s step %d/%d  kl %.4f", r->round ? " (pursuit)" : "", s->step, s->steps, s->kl);
        if (s->evaluated) fprintf(stderr, "  val_kl %.4f  val_exact %.3f", s->val_kl, s->val.exact);
        fprintf(stderr, "  %.1fs ", s->seconds);
        r->line_open = !last;
        if (last) fputc('\n', stderr);
    }
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    const char *label = cl.input && strcmp(cl.input, "-") ? cl.input : "stdin";
    bf_header h;
    bf_model student, teacher;
    uint64_t digest;
    int keep_latent;
    bf_cli_read_model(cl.input, &h, &student, &teacher, &digest, &keep_latent);
    bf_dataset d;
    if (bf_data_load(cl.data, &d)) bf_die_lib();
    if (bf_data_check_model(&d, &student.cfg, cl.data)) bf_die_lib();
    size_t P = strlen(cl.prompt);
    int32_t *prompt = bf_xmalloc(P * sizeof *prompt);
    for (size_t k = 0; k < P; k++) prompt[k] = (unsigned char)cl.prompt[k];
    for (size_t k = 0; k < P; k++)
        if (prompt[k] >= student.cfg.vocab) bf_die("--prompt: byte %d is outside the model's vocab of %d", prompt[k], student.cfg.vocab);
    cl.bake.prompt = prompt;
    cl.bake.P = (int)P;

    struct run r = {&cl, NULL, bf_cli_show_progress(), 0, 0, NULL};
    if (cl.log_path) {
        r.log = fopen(cl.log_path, "a");
        if (!r.log) bf_die("%s: %s", cl.log_path, bf_strerror(errno));
    }
    bf_adapter a;
    for (int round = 0; round <= cl.pursuit; round++) {
        r.round = round;
        if (round) {   /* prompt pursuit: the last baked model teaches the next bake */
            bf_tset baked;
            bf_model_free(&teacher);
            if (bf_model_to_tset(&student, 1, &baked) || bf_model_from_tset(&teacher, &h, &baked)) bf_die_lib();
            digest = bf_tset_digest(&baked);
            bf_tset_release(&baked);
        }
        if (bf_adapter_create(&a, &student, cl.rank, cl.alpha, cl.targets, cl.bake.seed + (uint64_t)round, digest))
            bf_die("%s: %s", label, bf_errmsg());
        if (bf_adapter_attach(&a, &student)) bf_die_lib();
        r.a = &a;
        int rc = bf_bake(&student, &a, &teacher, &d, &cl.bake, on_step, &r);
        if (r.line_open) fputc('\n', stderr);
        if (rc) bf_die_lib();
        if (cl.adapter_out) break;
        if (bf_adapter_merge(&a, &student, 1.0)) bf_die_lib();
        bf_adapter_free(&a);
    }
    if (r.log) fclose(r.log);
    if (cl.adapter_out) {
        write_adapter(&a, NULL);
        bf_adapter_free(&a);
    } else {
        bf_tset out;
        if (bf_model_to_tset(&student, keep_latent, &out)) bf_die_lib();
        bf_cli_write_all(&h, &out);
        bf_tset_release(&out);
    }
    bf_model_free(&student);
    bf_model_free(&teacher);
    bf_data_free(&d);
    bf_header_release(&h);
    free(prompt);
    return 0;
}

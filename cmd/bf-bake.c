/* bf-bake — prompt baking into a LoRA adapter (bf-bake(1)). */
#include "bakeopt.h"
#include "ckptopt.h"
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
    "row, the student MODEL reading the row alone; the student learns the\n"
    "teacher's token distributions (KL) at the answer positions of DATA's train\n"
    "rows, and of rows the teacher samples itself.  What trains is a LoRA\n"
    "adapter (--lora; merged at the end, or written alone) or the model's own\n"
    "matrices (--full; the default on a ternary model).  On ternary matrices\n"
    "both train through the quantizer: the student is the model written.\n"
    "--keep DATA keeps the model's behaviour on DATA's rows while it bakes.\n"
    "\n"
    "  --prompt TEXT      the prompt, as bytes (tokens 0-255)\n"
    "  --data DATA        rows without the prompt; answer positions carry targets\n"
    BF_USAGE_BAKE
    "  --clip X           clip the trained tensors' gradient norm (default 1; 0: off)\n"
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
    BF_USAGE_CKPT
    "  --eval-every N     KL and exact match on DATA's val split (and the keep\n"
    "                     sets') every N steps (default: at the end)\n"
    "  --eval-batch N     rows per evaluation forward (default 256)\n"
    "  --log FILE         append one JSON object per step to FILE\n"
    "  --seed N           initialization, batches and sampling (default 1)\n"
    "  --threads N        threads (default: all cores)\n"
    "  -q, --quiet        no progress line, no final table\n"
    "      --progress     a progress line even when stderr is not a terminal\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum {
    O_PROMPT = BF_OPT_PROGRAM, O_DATA, O_CLIP, O_SAMPLES, O_TEMP, O_MAXNEW, O_QUESTIONS, O_PURSUIT, O_ADAPTER_OUT,
    O_CHECKPOINT, O_EVERY, O_EVAL_EVERY, O_EVAL_BATCH, O_LOG
};

struct cmdline {
    const char *input, *data, *prompt, *log_path, *checkpoint;
    int pursuit, adapter_out, every;
    bf_bakeopt bo;
    bf_ckptopt ckpt;
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT, BF_OPTS_THREADS, BF_OPTS_SEED, BF_OPTS_QUIET, BF_OPTS_BAKE,
        {"prompt", required_argument, 0, O_PROMPT}, {"data", required_argument, 0, O_DATA},
        {"clip", required_argument, 0, O_CLIP}, {"samples", required_argument, 0, O_SAMPLES},
        {"temperature", required_argument, 0, O_TEMP}, {"max-new", required_argument, 0, O_MAXNEW},
        {"questions", required_argument, 0, O_QUESTIONS}, {"pursuit", required_argument, 0, O_PURSUIT},
        {"adapter-out", no_argument, 0, O_ADAPTER_OUT}, {"checkpoint", required_argument, 0, O_CHECKPOINT},
        {"every", required_argument, 0, O_EVERY}, {"eval-every", required_argument, 0, O_EVAL_EVERY},
        {"eval-batch", required_argument, 0, O_EVAL_BATCH}, {"log", required_argument, 0, O_LOG}, BF_OPTS_CKPT,
        {0, 0, 0, 0}};
    memset(cl, 0, sizeof *cl);
    bf_bakeopt_default(&cl->bo);
    bf_cli_begin(argc, argv, "bf-bake", usage);
    int c;
    while ((c = getopt_long(argc, argv, ":ho:q", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg) || bf_bakeopt_handle(&cl->bo, c, optarg) || bf_ckptopt_handle(&cl->ckpt, c, optarg))
            continue;
        bf_bake_cfg *b = &cl->bo.bake;
        switch (c) {
        case O_PROMPT: cl->prompt = optarg; break;
        case O_DATA: cl->data = optarg; break;
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
    bf_ckptopt_finish(&cl->ckpt);
    bf_bakeopt_finish(&cl->bo, cl->adapter_out || cl->checkpoint);
    cl->bo.bake.seed = bf_cli_state.seed;
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(1);
}

struct run {
    const struct cmdline *cl;
    FILE *log;
    int progress, line_open, round;
    bf_adapter *a;
    bf_bake_step final;   /* the last evaluated step */
    long skipped, steps;  /* steps passed by (--on-nan skip), of all the rounds' steps */
};

/* The adapter as a stream: to path, or (NULL) to -o or stdout. */
static void write_adapter(const bf_adapter *a, const char *path)
{
    bf_header h;
    bf_tset s;
    if (bf_adapter_to_tset(a, &h, &s)) bf_die_lib();
    if (path) {
        bf_cli_lineage(&h);
        if (bf_write_all(bf_cli_out_path(path), &h, &s)) bf_die("%s: %s", path, bf_errmsg());
    } else {
        bf_cli_write_all(&h, &s);
    }
    bf_tset_release(&s);
    bf_header_release(&h);
}

static void on_step(void *ctx, const bf_bake_step *s)
{
    struct run *r = ctx;
    r->skipped += s->skipped;
    r->steps++;
    if (r->log) {
        fprintf(r->log, "{\"round\":%d,\"step\":%d,\"kl\":", r->round, s->step);
        bf_json_num(r->log, s->kl);
        fprintf(r->log, ",\"lr\":");
        bf_json_num(r->log, s->lr);
        fprintf(r->log, ",\"grad_norm\":");
        bf_json_num(r->log, s->grad_norm);
        fprintf(r->log, ",\"seconds\":");
        bf_json_num(r->log, round(s->seconds * 1000) / 1000);
        if (r->cl->bo.nkeep) {
            fprintf(r->log, ",\"keep_kl\":");
            bf_json_num(r->log, s->keep_kl);
        }
        if (s->skipped) fprintf(r->log, ",\"skipped\":true");
        if (s->evaluated) {
            fprintf(r->log, ",\"val_kl\":");
            bf_json_num(r->log, s->val_kl);
            fprintf(r->log, ",\"val_loss\":");
            bf_json_num(r->log, s->val.loss);
            fprintf(r->log, ",\"val_token_acc\":");
            bf_json_num(r->log, s->val.token_acc);
            fprintf(r->log, ",\"val_exact\":");
            bf_json_num(r->log, s->val.exact);
            if (r->cl->bo.nkeep) {
                fprintf(r->log, ",\"keep_val_kl\":");
                bf_json_num(r->log, s->keep_val_kl);
                fprintf(r->log, ",\"keep_val_exact\":");
                bf_json_num(r->log, s->keep_val.exact);
            }
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
        if (r->cl->bo.nkeep) fprintf(stderr, "  keep_kl %.4f", s->keep_kl);
        if (s->evaluated) fprintf(stderr, "  val_kl %.4f  val_exact %.3f", s->val_kl, s->val.exact);
        if (s->evaluated && r->cl->bo.nkeep) fprintf(stderr, "  keep_exact %.3f", s->keep_val.exact);
        fprintf(stderr, "  %.1fs ", s->seconds);
        r->line_open = !last;
        if (last) fputc('\n', stderr);
    }
    if (s->evaluated) r->final = *s;
}

/* Prompt pursuit's part of every state: the round in progress of how many,
 * and from the second round on the round's teacher (bf/train.h, outer). */
typedef struct {
    int64_t round, rounds;
    bf_model *teacher;
    const bf_header *h;
} pursuit_run;

static void pursuit_pieces(bf_state *s, void *run)
{
    pursuit_run *p = run;
    int64_t rounds = p->rounds;
    bf_state_int(s, "pursuit.rounds", &rounds, p->rounds, p->rounds);
    bf_state_int(s, "pursuit.round", &p->round, 0, p->rounds);
    if (p->round) bf_state_model(s, "pursuit.teacher", p->teacher, p->h);
}

/* A model's tensors' digest: what an adapter records of its base. */
static uint64_t model_digest(const bf_model *m)
{
    bf_tset t;
    if (bf_model_to_tset(m, 1, &t)) bf_die_lib();
    uint64_t d = bf_tset_digest(&t);
    bf_tset_release(&t);
    return d;
}

/* The last evaluation: the baked prompt's rows beside the kept ones. */
static void final_table(const struct run *r)
{
    const bf_bake_step *s = &r->final;
    if (!s->evaluated) return;
    fprintf(stderr, "%-34s %10s %10s\n", "rows (val)", "kl", "exact");
    fprintf(stderr, "%-34s %10.4f %10.4f\n", "baked prompt (bare rows)", s->val_kl, s->val.exact);
    if (r->cl->bo.nkeep) fprintf(stderr, "%-34s %10.4f %10.4f\n", "kept (as they are)", s->keep_val_kl, s->keep_val.exact);
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    bf_bake_cfg *bake = &cl.bo.bake;
    bf_header h;
    bf_model student, teacher, orig;
    uint64_t digest;
    int keep_latent;
    bf_cli_read_model(cl.input, &h, &student, &teacher, &digest, &keep_latent);
    bf_dataset d;
    if (bf_data_load(cl.data, &d)) bf_die_lib();
    if (bf_data_check_model(&d, &student.cfg, cl.data)) bf_die_lib();
    int full = bf_bakeopt_setup(&cl.bo, &student);
    /* prompt pursuit changes the teacher: the kept behaviour stays the input's */
    int have_orig = cl.bo.nkeep && cl.pursuit && !cl.bo.keep_ref;
    if (have_orig) {
        bf_cli_clone_model(&teacher, &h, &orig);
        bake->keep.ref = &orig;
    }
    size_t P = strlen(cl.prompt);
    int32_t *prompt = bf_xmalloc(P * sizeof *prompt);
    for (size_t k = 0; k < P; k++) prompt[k] = (unsigned char)cl.prompt[k];
    for (size_t k = 0; k < P; k++)
        if (prompt[k] >= student.cfg.vocab) bf_die("--prompt: byte %d is outside the model's vocab of %d", prompt[k], student.cfg.vocab);
    bake->prompt = prompt;
    bake->P = (int)P;

    struct run r = {&cl, NULL, bf_cli_show_progress(), 0, 0, NULL, {0}, 0, 0};
    if (cl.log_path) {
        r.log = fopen(bf_cli_out_path(cl.log_path), "a");
        if (!r.log) bf_die("%s: %s", cl.log_path, bf_strerror(errno));
    }
    /* checkpoints: the input model's; with --pursuit every state also
     * holds the round and (after the first) the round's teacher, so that a
     * resumed run starts at the round it stopped in */
    const uint64_t input_digest = digest;
    const bf_checkpoint *ck = bf_ckptopt_begin(&cl.ckpt, input_digest);
    pursuit_run pr = {0, cl.pursuit, &teacher, &h};
    int start = 0;
    if (ck && cl.pursuit) {
        cl.ckpt.ck.outer = pursuit_pieces;
        cl.ckpt.ck.outer_run = &pr;
        if (bf_checkpoint_resume_outer(&cl.ckpt.ck)) bf_die_lib();
        start = (int)pr.round;
        if (start) {   /* the round's student starts as its teacher: the last round's baked model */
            bf_model_free(&student);
            bf_cli_clone_model(&teacher, &h, &student);
            digest = model_digest(&teacher);
        }
    }
    bf_adapter a;
    for (int round = start; round <= cl.pursuit; round++) {
        r.round = round;
        pr.round = round;
        if (round > start) {   /* prompt pursuit: the last baked model teaches the next bake */
            bf_model_free(&teacher);
            bf_cli_clone_model(&student, &h, &teacher);
            digest = model_digest(&teacher);
        }
        if (!full) bf_bakeopt_adapter(&cl.bo, &student, bake->seed + (uint64_t)round, digest, 1.0, &a);
        r.a = full ? NULL : &a;
        bake->ckpt = ck;
        int rc = bf_bake(&student, r.a, &teacher, &d, bake, on_step, &r);
        if (r.line_open) fputc('\n', stderr);
        bf_ckptopt_end(&cl.ckpt, rc);   /* interrupted: dies; otherwise the resume state, if any, is spent */
        if (rc) bf_die_lib();
        cl.ckpt.ck.outer_taken = 0;
        if (full) continue;
        if (cl.adapter_out) break;
        if (bf_adapter_merge(&a, &student, 1.0)) bf_die_lib();
        bf_adapter_free(&a);
    }
    if (r.log) fclose(r.log);
    if (r.skipped)
        fprintf(stderr, "%s: passed by %ld of %ld steps whose loss or gradient was not finite\n", bf_cli_state.prog, r.skipped,
                r.steps);
    if (!bf_cli_state.quiet) final_table(&r);
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
    if (have_orig) bf_model_free(&orig);
    bf_data_free(&d);
    bf_bakeopt_free(&cl.bo);
    bf_header_release(&h);
    free(prompt);
    return 0;
}

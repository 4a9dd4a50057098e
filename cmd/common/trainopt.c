/* trainopt.c — parsing the shared training flags. */
#include "trainopt.h"
#include "bf/dist.h"
#include "bf/data.h"
#include "bf/trm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void bf_trainopt_default(bf_trainopt *t)
{
    memset(t, 0, sizeof *t);
    bf_train_default(&t->train);
    bf_optim_default(&t->optim);
    t->optim.fallback_lr = 1e-3;
}

int bf_trainopt_handle(bf_trainopt *t, int c, const char *arg)
{
    bf_train_cfg *tr = &t->train;
    bf_optim_cfg *o = &t->optim;
    switch (c) {
    case BF_TO_DATA: t->data = arg; break;
    case BF_TO_STEPS: tr->steps = (int)bf_parse_int("steps", arg, 0, 100000000); break;
    case BF_TO_BATCH: tr->batch = (int)bf_parse_int("batch", arg, 1, 1 << 20); break;
    case BF_TO_LR: tr->lr = bf_parse_double("lr", arg, 0, 1e6); break;
    case BF_TO_WD: o->wd = bf_parse_double("wd", arg, 0, 1e6); break;
    case BF_TO_WARMUP: tr->warmup = (int)bf_parse_int("warmup", arg, 0, 100000000); break;
    case BF_TO_SCHEDULE: tr->schedule = (bf_schedule)bf_parse_choice("schedule", arg, bf_schedule_names); break;
    case BF_TO_CLIP: tr->clip = bf_parse_double("clip", arg, 0, 1e12); break;
    case BF_TO_BETA1: o->beta1 = bf_parse_double("beta1", arg, 0, 0.999999); break;
    case BF_TO_BETA2: o->beta2 = bf_parse_double("beta2", arg, 0, 0.999999999); break;
    case BF_TO_EPS: o->eps = bf_parse_double("eps", arg, 0, 1); break;
    case BF_TO_EVAL_EVERY: tr->eval_every = (int)bf_parse_int("eval-every", arg, 0, 100000000); break;
    case BF_TO_EVAL_BATCH: tr->eval_batch = (int)bf_parse_int("eval-batch", arg, 1, 1 << 20); break;
    case BF_TO_STOP_EXACT: tr->stop_exact = bf_parse_double("stop-exact", arg, 0, 1); break;
    case BF_TO_LOG: t->log_path = arg; break;
    case BF_TO_GROKFAST: o->grokfast = (bf_grokfast_kind)bf_parse_choice("grokfast", arg, bf_grokfast_names); break;
    case BF_TO_GF_ALPHA: o->gf_alpha = bf_parse_double("grokfast-alpha", arg, 0, 0.999999); break;
    case BF_TO_GF_LAMBDA: o->gf_lambda = bf_parse_double("grokfast-lambda", arg, 0, 1e6); break;
    case BF_TO_GF_WINDOW: o->gf_window = (int)bf_parse_int("grokfast-window", arg, 1, 100000); break;
    case BF_TO_MOMENTUM: o->momentum = bf_parse_double("momentum", arg, 0, 0.999999); break;
    case BF_TO_NS_STEPS: o->ns_steps = (int)bf_parse_int("ns-steps", arg, 0, 100); break;
    case BF_TO_NS_EACH_RANK: o->ns_each_rank = 1; break;
    case BF_TO_FALLBACK: {
        static const char *const fb[] = {"adamw", "sgd", NULL};
        o->fallback = bf_parse_choice("fallback", arg, fb) ? BF_OPTIM_SGD : BF_OPTIM_ADAMW;
        break;
    }
    case BF_TO_FALLBACK_LR: o->fallback_lr = bf_parse_double("fallback-lr", arg, 0, 1e6); break;
    case BF_TO_EMA: tr->ema = bf_parse_double("ema", arg, 0, 0.999999); break;
    case BF_TO_ON_NAN: {
        static const char *const on_nan[] = {"stop", "skip", NULL};
        tr->skip_nonfinite = bf_parse_choice("on-nan", arg, on_nan);
        break;
    }
    default: return bf_ckptopt_handle(&t->ckpt, c, arg);
    }
    t->given |= 1u << (c - BF_TO_DATA);
    return 1;
}

void bf_trainopt_finish(bf_trainopt *t)
{
    bf_optim_cfg *o = &t->optim;
    if (!t->data) bf_usage_die("needs --data DATA");
    if (o->kind != BF_OPTIM_MUON)
        for (int code = BF_TO_MOMENTUM; code <= BF_TO_FALLBACK_LR; code++)
            if (BF_TO_GIVEN(t, code)) bf_usage_die("--momentum, --ns-steps, --ns-each-rank, --fallback and --fallback-lr are Muon's");
    if (o->grokfast == BF_GROKFAST_OFF &&
        (BF_TO_GIVEN(t, BF_TO_GF_ALPHA) || BF_TO_GIVEN(t, BF_TO_GF_LAMBDA) || BF_TO_GIVEN(t, BF_TO_GF_WINDOW)))
        bf_usage_die("the --grokfast-* settings need --grokfast ema|ma");
    if (o->grokfast == BF_GROKFAST_EMA && BF_TO_GIVEN(t, BF_TO_GF_WINDOW)) bf_usage_die("--grokfast-window is for --grokfast ma");
    if (o->grokfast == BF_GROKFAST_MA && BF_TO_GIVEN(t, BF_TO_GF_ALPHA)) bf_usage_die("--grokfast-alpha is for --grokfast ema");
    if (o->grokfast == BF_GROKFAST_MA && !BF_TO_GIVEN(t, BF_TO_GF_LAMBDA)) o->gf_lambda = 5.0;
    bf_optim_kind adam_user = o->kind == BF_OPTIM_MUON ? o->fallback : o->kind;
    if (adam_user == BF_OPTIM_SGD && (BF_TO_GIVEN(t, BF_TO_BETA1) || BF_TO_GIVEN(t, BF_TO_BETA2) || BF_TO_GIVEN(t, BF_TO_EPS)))
        bf_usage_die("--beta1, --beta2 and --eps are Adam's; sgd has none");
    bf_ckptopt_finish(&t->ckpt);
    o->lr = t->train.lr;
    t->train.seed = bf_cli_state.seed;
    t->progress = bf_cli_show_progress();
    if (t->log_path) {
        t->log = fopen(bf_cli_out_path(t->log_path), "a");
        if (!t->log) bf_die("%s: %s", t->log_path, bf_strerror(errno));
    }
}

/* One JSON object a logged step: at evaluations, at the last step, and every
 * step when there are no periodic evaluations. */
static void log_line(FILE *f, const bf_train_step *s, const bf_train_cfg *c)
{
    const bf_train_result *res = s->res;
    fprintf(f, "{\"step\":%d,\"loss\":", s->step);
    bf_json_num(f, s->loss);
    if (c->kl > 0) {
        fprintf(f, ",\"kl\":");
        bf_json_num(f, res->last_kl);
    }
    if (c->qk_clip > 0) fprintf(f, ",\"qk_clipped\":%ld", res->qk_clipped);
    fprintf(f, ",\"lr\":");
    bf_json_num(f, s->lr);
    fprintf(f, ",\"grad_norm\":");
    bf_json_num(f, s->grad_norm);
    fprintf(f, ",\"seconds\":");
    bf_json_num(f, round(s->seconds * 1000) / 1000);
    if (bf_dist_size() > 1) {   /* in a job: of seconds, those spent summing over the ranks, and the bytes */
        double rs;
        unsigned long long rb;
        bf_dist_sum_stats(&rs, &rb);
        fprintf(f, ",\"ranks\":%d,\"reduce_seconds\":", bf_dist_size());
        bf_json_num(f, round(rs * 1e6) / 1e6);
        fprintf(f, ",\"reduce_bytes\":%llu", rb);
    }
    if (res->evaluated) {   /* of seconds, those spent evaluating */
        fprintf(f, ",\"eval_seconds\":");
        bf_json_num(f, round(res->eval_seconds * 1000) / 1000);
    }
    if (s->evaluated_now) {
        fprintf(f, ",\"val_loss\":");
        bf_json_num(f, res->val.loss);
        fprintf(f, ",\"val_token_acc\":");
        bf_json_num(f, res->val.token_acc);
        fprintf(f, ",\"val_exact\":");
        bf_json_num(f, res->val.exact);
    }
    fprintf(f, "}\n");
    fflush(f);
}

/* bf_train's per-step hook: the --log line and the progress line. */
static void on_step(void *ctx, const bf_train_step *s)
{
    bf_trainopt *t = ctx;
    const bf_train_cfg *c = &t->train;
    int last = s->step == s->steps;
    if (t->log && (s->evaluated_now || last || c->eval_every <= 0 || s->step % c->eval_every == 0)) log_line(t->log, s, c);
    static double last_draw;
    if (t->progress && (s->seconds - last_draw > 0.1 || last)) {
        last_draw = s->seconds;
        fprintf(stderr, "\rstep %d/%d  loss %.4f  lr %.3g", s->step, s->steps, s->loss, s->lr);
        if (s->res->evaluated) fprintf(stderr, "  val_loss %.4f  val_exact %.3f", s->res->val.loss, s->res->val.exact);
        fprintf(stderr, "  %.1fs ", s->seconds);
        t->line_open = 1;
        if (last) { fputc('\n', stderr); t->line_open = 0; }
    }
}

void bf_trainopt_run(bf_trainopt *t, bf_model *m, bf_model *ref, const char *ref_label, bf_header *h, int strip)
{
    bf_dataset d;
    if (bf_data_load(t->data, &d)) bf_die_lib();
    if (bf_data_check_model(&d, &m->cfg, t->data)) bf_die_lib();
    if (ref && bf_data_check_model(&d, &ref->cfg, ref_label)) bf_die_lib();
    if (!d.train.rows) bf_die("%s: the train split is empty", t->data);
    t->train.kl_ref = ref;

    bf_optim opt;
    bf_pset ps = bf_model_pset(m);
    bf_optim_init(&opt, &ps, &t->optim);
    bf_train_result res;
    t->train.on_step = on_step;
    t->train.hook_ctx = t;
    if (m->cfg.rec_n && (t->train.kl > 0 || t->train.qk_clip > 0))
        bf_die("a recursive model trains without --kl and --qk-clip");
    if (m->cfg.rec_n && t->train.skip_nonfinite) bf_die("a recursive model's training stops on a loss that is not finite (no --on-nan skip)");
    t->train.ckpt = bf_ckptopt_begin(&t->ckpt, t->model_digest);
    int rc = m->cfg.rec_n ? bf_trm_train(m, &d, &opt, &t->train, &res, NULL) : bf_train(m, &d, &opt, &t->train, &res);
    if (t->line_open) fputc('\n', stderr);   /* stopped early, or failed, mid-line */
    bf_ckptopt_end(&t->ckpt, rc);
    if (rc) bf_die_lib();
    if (res.skipped)
        fprintf(stderr, "%s: passed by %ld of %d steps whose loss or gradient was not finite\n", bf_cli_state.prog, res.skipped,
                res.steps_done);
    if (t->log) fclose(t->log);

    bf_tset out;
    if (bf_model_to_tset(m, !strip, &out)) bf_die_lib();
    bf_cli_write_all(h, &out);
    bf_tset_release(&out);
    bf_optim_free(&opt);
    if (ref) bf_model_free(ref);
    bf_model_free(m);
    bf_data_free(&d);
    bf_header_release(h);
}

/* bakeopt.c — parsing the shared baking flags (bakeopt.h). */
#include "bakeopt.h"
#include "bf/data.h"

#include <string.h>

void bf_bakeopt_default(bf_bakeopt *o)
{
    memset(o, 0, sizeof *o);
    o->rank = 8;
    o->alpha = 16;
    o->targets = BF_LORA_ATTN;
    o->schedule = -1;
    bf_bake_default(&o->bake);
}

int bf_bakeopt_handle(bf_bakeopt *o, int c, const char *arg)
{
    static const char *const merges[] = {"quant", "latent", NULL};
    bf_bake_cfg *b = &o->bake;
    switch (c) {
    case BF_BO_RANK: o->rank = (int)bf_parse_int("rank", arg, 1, 65536); o->adapter_asked = 1; break;
    case BF_BO_ALPHA: o->alpha = bf_parse_double("alpha", arg, 1e-6, 1e6); o->adapter_asked = 1; break;
    case BF_BO_TARGETS:
        if (bf_lora_targets_parse(arg, &o->targets)) bf_usage_die("--targets: %s", bf_errmsg());
        break;
    case BF_BO_STEPS: b->steps = (int)bf_parse_int("steps", arg, 0, 100000000); break;
    case BF_BO_BATCH: b->batch = (int)bf_parse_int("batch", arg, 1, 1 << 20); break;
    case BF_BO_LR: b->lr = bf_parse_double("lr", arg, 0, 1e6); break;
    case BF_BO_WARMUP: b->warmup = (int)bf_parse_int("warmup", arg, 0, 100000000); break;
    case BF_BO_SCHEDULE: o->schedule = bf_parse_choice("schedule", arg, bf_schedule_names); break;
    case BF_BO_KEEP:
        if (o->nkeep == BF_BAKE_MAX_KEEP) bf_usage_die("--keep: at most %d data sets", BF_BAKE_MAX_KEEP);
        o->keep[o->nkeep++] = arg;
        break;
    case BF_BO_KEEP_WEIGHT: b->keep.weight = bf_parse_double("keep-weight", arg, 0, 1e6); break;
    case BF_BO_KEEP_REF: o->keep_ref = arg; break;
    case BF_BO_FULL: o->full = 1; break;
    case BF_BO_LORA: o->lora = 1; break;
    case BF_BO_MERGE: o->merge_latent = bf_parse_choice("merge", arg, merges); o->adapter_asked = 1; break;
    case BF_BO_ON_NAN: {
        static const char *const on_nan[] = {"stop", "skip", NULL};
        b->skip_nonfinite = bf_parse_choice("on-nan", arg, on_nan);
        break;
    }
    default: return 0;
    }
    return 1;
}

void bf_bakeopt_finish(bf_bakeopt *o, int adapter_out)
{
    if (o->full && o->lora) bf_usage_die("--full and --lora exclude each other");
    if (o->full && (o->adapter_asked || adapter_out))
        bf_usage_die("--full trains the model itself: --rank, --alpha, --merge and adapter output are an adapter's");
    if (o->adapter_asked || adapter_out) o->lora = 1;
    if (o->keep_ref && !o->nkeep) bf_usage_die("--keep-ref is the reference of --keep; give --keep DATA too");
}

int bf_bakeopt_setup(bf_bakeopt *o, const bf_model *m)
{
    int ternary = bf_model_is_quantized(m);
    if (!o->full && !o->lora) o->full = ternary;
    /* a ternary model's codes flip in steps: the learning rate decays, so
     * that the last steps, whose codes are what is written, flip few */
    o->bake.schedule = o->schedule >= 0 ? (bf_schedule)o->schedule : ternary ? BF_SCHED_COSINE : BF_SCHED_CONSTANT;
    o->bake.full = o->full ? o->targets : 0;
    for (int k = 0; k < o->nkeep; k++) {
        if (bf_data_load(o->keep[k], &o->keep_d[k])) bf_die_lib();
        if (bf_data_check_model(&o->keep_d[k], &m->cfg, o->keep[k])) bf_die_lib();
        if (!o->keep_d[k].train.rows) bf_die("%s: the train split is empty: no rows to keep", o->keep[k]);
        o->keep_p[k] = &o->keep_d[k];
    }
    o->bake.keep.sets = o->keep_p;
    o->bake.keep.n = o->nkeep;
    if (o->keep_ref) {
        bf_header h;
        bf_cli_read_model(o->keep_ref, &h, &o->ref, NULL, NULL, NULL);
        bf_header_release(&h);
        if (o->ref.cfg.vocab != m->cfg.vocab || o->ref.cfg.ctx < m->cfg.ctx)
            bf_die("%s: --keep-ref has vocab %d and ctx %d; the model %d and %d", o->keep_ref, o->ref.cfg.vocab,
                   o->ref.cfg.ctx, m->cfg.vocab, m->cfg.ctx);
        o->bake.keep.ref = &o->ref;
    }
    return o->full;
}

void bf_bakeopt_adapter(const bf_bakeopt *o, bf_model *m, uint64_t seed, uint64_t digest, double strength, bf_adapter *a)
{
    if (bf_adapter_create(a, m, o->rank, o->alpha, o->targets, seed, digest)) bf_die_lib();
    a->through_quant = !o->merge_latent;
    a->strength = strength;
    if (bf_adapter_attach(a, m)) bf_die_lib();
}

void bf_bakeopt_free(bf_bakeopt *o)
{
    for (int k = 0; k < o->nkeep; k++) bf_data_free(&o->keep_d[k]);
    o->nkeep = 0;
    if (o->bake.keep.ref == &o->ref) bf_model_free(&o->ref);
    o->bake.keep.ref = NULL;
}

/* ckptopt.c — the checkpoint flags (ckptopt.h). */
#include "ckptopt.h"

#include <signal.h>
#include <string.h>

/* Set while a state can be saved by the signals that ask a run to stop:
 * SIGINT and SIGTERM; SIGHUP, so that a run whose terminal closes keeps its
 * state; SIGUSR1, which mpirun passes on to every rank at once (for SIGINT
 * and SIGTERM it gives the ranks only a second before SIGKILL) and which a
 * batch scheduler can be asked to send ahead of a time limit.  A SIGHUP
 * ignored on entry (nohup) stays ignored. */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { interrupted = 1; }

static int save_state(void *ctx, const bf_header *h, const bf_tset *s)
{
    const bf_ckptopt *o = ctx;
    return bf_write_all(bf_cli_out_path(o->state_path), h, s);
}

int bf_ckptopt_handle(bf_ckptopt *o, int c, const char *arg)
{
    switch (c) {
    case BF_CK_STATE: o->state_path = arg; return 1;
    case BF_CK_STATE_EVERY:
        o->every = (int)bf_parse_int("state-every", arg, 1, 100000000);
        o->every_given = 1;
        return 1;
    case BF_CK_RESUME: o->resume_path = arg; return 1;
    default: return 0;
    }
}

void bf_ckptopt_finish(bf_ckptopt *o)
{
    if (o->every_given && !o->state_path) bf_usage_die("--state-every goes with --state FILE");
    if (!o->every) o->every = 100;
}

const bf_checkpoint *bf_ckptopt_begin(bf_ckptopt *o, uint64_t model_digest)
{
    if (!o->state_path && !o->resume_path) return NULL;
    memset(&o->ck, 0, sizeof o->ck);
    o->ck.every = o->state_path ? o->every : 0;
    o->ck.save = save_state;
    o->ck.ctx = o;
    o->ck.program = bf_cli_state.prog;
    o->ck.model_digest = model_digest;
    if (o->resume_path) {
        if (bf_read_all(o->resume_path, &o->h, &o->t)) bf_die_lib();
        o->ck.resume_h = &o->h;
        o->ck.resume_t = &o->t;
        o->ck.resume_label = o->resume_path;
    }
    if (o->state_path) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        for (size_t k = 0; k < sizeof stop_signals / sizeof *stop_signals; k++) {
            struct sigaction old;
            if (stop_signals[k] == SIGHUP && sigaction(SIGHUP, NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
            sigaction(stop_signals[k], &sa, NULL);
        }
        o->ck.interrupt = &interrupted;
    }
    return &o->ck;
}

void bf_ckptopt_end(bf_ckptopt *o, int rc)
{
    if (rc && interrupted && o->state_path)
        bf_die("%s in %s; --resume %s continues", bf_errmsg(), o->state_path, o->state_path);
    if (o->resume_path && o->ck.resume_t) {
        bf_tset_release(&o->t);
        bf_header_release(&o->h);
        o->ck.resume_t = NULL;
    }
}

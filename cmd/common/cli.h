/* cli.h — what every bf-* program shares: options, messages, exit status.
 *
 * Exit status: 0 success; 1 bad data, I/O or numerical failure; 2 bad usage.
 * Messages are one line on stderr: "bf-NAME: what went wrong: detail".
 * A write that meets EPIPE (the reader went away) ends the program quietly
 * with status 1. */
#ifndef BF_CLI_H
#define BF_CLI_H

#include <getopt.h>
#include <stdint.h>

#include "bf/model.h"
#include "bf/stream.h"
#include "bf/util.h"

#define BF_VERSION "0.1.0"

/* Long-option codes for the shared options (above any short option). */
enum {
    BF_OPT_HELP = 'h', BF_OPT_OUTPUT = 'o', BF_OPT_QUIET = 'q',
    BF_OPT_VERSION = 1000, BF_OPT_THREADS, BF_OPT_SEED, BF_OPT_PROGRESS,
    BF_OPT_PROGRAM = 1100   /* programs number their own long options from here */
};

#define BF_OPTS_BASE {"help", no_argument, 0, BF_OPT_HELP}, {"version", no_argument, 0, BF_OPT_VERSION}
#define BF_OPTS_OUTPUT {"output", required_argument, 0, BF_OPT_OUTPUT}
#define BF_OPTS_THREADS {"threads", required_argument, 0, BF_OPT_THREADS}
#define BF_OPTS_SEED {"seed", required_argument, 0, BF_OPT_SEED}
#define BF_OPTS_QUIET {"quiet", no_argument, 0, BF_OPT_QUIET}, {"progress", no_argument, 0, BF_OPT_PROGRESS}

typedef struct {
    const char *prog;       /* "bf-eval" */
    const char *usage;      /* --help text */
    const char *output;     /* -o FILE, NULL for stdout */
    int threads;            /* --threads, default: online cores */
    uint64_t seed;          /* --seed, default 1 */
    int quiet, progress;    /* progress: -1 auto (stderr is a TTY), 0 off, 1 on */
    int argc;
    char **argv;
} bf_cli;

extern bf_cli bf_cli_state;

/* Records the program's name, arguments and usage text; ignores SIGPIPE and
 * SIGXFSZ so writes report EPIPE and EFBIG instead of killing the program. */
void bf_cli_begin(int argc, char **argv, const char *prog, const char *usage);
/* Handles a shared option; returns 1 if c was one of them.  Prints help or
 * the version and exits for --help / --version; exits 2 for '?' and ':'. */
int bf_cli_common(int c, const char *arg);
/* After option parsing: applies --threads (OpenBLAS too).  A program that
 * writes a stream passes 1, so a terminal on stdout is refused before any
 * work is done. */
void bf_cli_end(int writes_stream);
/* The one positional input (NULL: stdin); more than one is a usage error. */
const char *bf_cli_input(int argc, char **argv, int optind_);
/* Opens the input stream; dies (exit 1) with the reader's message. */
bf_reader *bf_cli_open_input(const char *path);
/* Under an MPI launcher (mpirun): joins the job and hands the library its
 * operations (bf/dist.h); returns the job's size, 0 when not launched as
 * one.  A build without MPI refuses to run under a launcher.  Called by
 * bf_cli_begin, which then gives every rank but 0 a silent stdout and
 * --quiet, and shares the machine's cores among its ranks' threads. */
int bf_cli_job_begin(void);
/* Where this rank writes a file the program names: path on rank 0,
 * /dev/null on the others (every rank computes; rank 0 alone writes). */
const char *bf_cli_out_path(const char *path);
/* Whether a progress bar should be drawn on stderr. */
int bf_cli_show_progress(void);

_Noreturn void bf_die(const char *fmt, ...) BF_PRINTF(1, 2);         /* exit 1 */
_Noreturn void bf_usage_die(const char *fmt, ...) BF_PRINTF(1, 2);   /* exit 2 */
_Noreturn void bf_die_lib(void);    /* exit 1 with bf_errmsg() */

/* Option values; a bad value is a usage error naming the option. */
long long bf_parse_int(const char *opt, const char *arg, long long min, long long max);
double bf_parse_double(const char *opt, const char *arg, double min, double max);
int bf_parse_choice(const char *opt, const char *arg, const char *const *choices);  /* NULL-ended */

/* The long name of option code c in opts ("?" if none). */
const char *bf_opt_name(const struct option *opts, int c);

/* A model stream read whole into m (and a second model from the same
 * tensors when second is not NULL), h its header; digest (may be NULL) the
 * tensors' bf_tset_digest, has_latent (may be NULL) whether they carry any
 * W.latent.  Dies with "INPUT: message" on failure. */
void bf_cli_read_model(const char *path, bf_header *h, bf_model *m, bf_model *second, uint64_t *digest, int *has_latent);
/* A second model with src's tensors (latents kept) and h's configuration:
 * a teacher, a candidate, a kept reference.  Dies on failure. */
void bf_cli_clone_model(const bf_model *src, const bf_header *h, bf_model *dst);

/* Bytes that are not a stream (an archive, a safetensors or GGUF file) to -o
 * — a temporary file beside it, renamed at the end, removed on failure or
 * a signal — or to stdout (EPIPE ends quietly).  Dies on failure. */
void bf_cli_write_bytes(const uint8_t *buf, size_t len);
/* A write to stdout failed (errno set): quietly exit 1 on EPIPE, else die
 * with one line. */
_Noreturn void bf_cli_stdout_failed(void);
/* The same to path (NULL or "-": stdout): a second file beside -o. */
void bf_cli_write_bytes_to(const char *path, const uint8_t *buf, size_t len);

/* Appends {tool, version, args} to h->lineage. */
void bf_cli_lineage(bf_header *h);
/* Flushes stdout; a write error dies (EPIPE quietly). */
void bf_cli_close_stdout(void);

/* Writes a whole stream to -o or stdout with this program's lineage added;
 * dies on failure. */
void bf_cli_write_all(bf_header *h, const bf_tset *s);
/* Opens the output stream (-o or stdout), header written; dies on failure. */
bf_writer *bf_cli_open_output(bf_header *h);
void bf_cli_close_output(bf_writer *w);   /* trailer and rename; dies on failure */
/* For programs that rewrite a model stream tensor by tensor: opens the input
 * (which must be a model), and the output with the input's header (meta and
 * lineage kept, this program's lineage added).  Dies on failure. */
bf_writer *bf_cli_open_model_filter(const char *input, bf_reader **r);

#endif

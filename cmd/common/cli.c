/* cli.c — options, messages and exit status shared by every program. */
#include "cli.h"
#include "bf/dist.h"
#include "bf/log.h"
#include "bf/thread.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Weak: programs that do no matrix products do not load OpenBLAS at all (the
 * link uses --as-needed), so they start no BLAS threads and reserve no BLAS
 * buffers — which matters under a tight `ulimit -v`. */
extern void openblas_set_num_threads(int) __attribute__((weak));

bf_cli bf_cli_state = {.prog = "bitforge", .seed = 1, .progress = -1};

/* In a job every rank meets the same errors at the same point, and rank 0
 * says so.  After a failure the ranks agreed on (bf_dist_agree: the same
 * message everywhere) the others end quietly; after any other, another rank
 * waits five seconds before its own line, and mpirun, which ends the job a
 * few seconds after rank 0 exits with an error, has ended it by then.  A
 * rank that fails alone still says why, late. */
static void job_hold_back(void)
{
    if (bf_dist_rank() == 0) return;
    if (bf_dist_failed_together()) exit(1);
    sleep(5);
}

static void vmsg(const char *fmt, va_list ap)
{
    job_hold_back();
    fflush(stdout);
    fprintf(stderr, "%s: ", bf_cli_state.prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void bf_die(const char *fmt, ...)
{
    if (bf_stream_epipe) exit(1);
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    exit(1);
}

void bf_usage_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    job_hold_back();
    fprintf(stderr, "%s: %s (see '%s --help')\n", bf_cli_state.prog, msg, bf_cli_state.prog);
    exit(2);
}

void bf_die_lib(void) { bf_die("%s", bf_errmsg()); }

static char *bytes_tmp_path;   /* bf_cli_write_bytes's temporary file while it exists */

/* Out of memory in a small allocation ends the program at once: first the
 * temporary files of -o go (no partial file is left beside it), then the
 * library's default hook writes the one line and exits 1. */
static void on_out_of_memory(void)
{
    bf_writer_remove_temporaries();
    if (bytes_tmp_path) unlink(bytes_tmp_path);
    bf_log_set_oom_hook(NULL);
    bf_out_of_memory();
}

void bf_cli_begin(int argc, char **argv, const char *prog, const char *usage)
{
    bf_cli_state.prog = prog;
    bf_log_set_name(prog);
    bf_log_set_oom_hook(on_out_of_memory);
    bf_cli_state.usage = usage;
    bf_cli_state.argc = argc;
    bf_cli_state.argv = argv;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    bf_cli_state.threads = n > 0 ? (int)n : 1;
    signal(SIGPIPE, SIG_IGN);
    /* A write past the file-size limit (ulimit -f) then fails with EFBIG,
     * which the writers report in one line and clean up after, instead of
     * the default action of SIGXFSZ killing the program mid-file. */
    signal(SIGXFSZ, SIG_IGN);
    opterr = 0;
    if (bf_cli_job_begin() > 1) {
        /* the threads default to this machine's cores shared by its ranks */
        const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        int per = local && atoi(local) > 0 ? atoi(local) : 1;
        bf_cli_state.threads = bf_cli_state.threads / per > 0 ? bf_cli_state.threads / per : 1;
        if (bf_dist_rank() != 0) {   /* rank 0 alone writes, logs and shows progress */
            bf_cli_state.quiet = 1;
            int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
            if (fd < 0 || dup2(fd, 1) < 0) bf_die("/dev/null: %s", bf_strerror(errno));
            close(fd);
        }
    }
}

const char *bf_cli_out_path(const char *path) { return bf_dist_rank() == 0 ? path : "/dev/null"; }

long long bf_parse_int(const char *opt, const char *arg, long long min, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max)
        bf_usage_die("--%s needs an integer from %lld to %lld, not '%s'", opt, min, max, arg);
    return v;
}

double bf_parse_double(const char *opt, const char *arg, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v) || v < min || v > max)
        bf_usage_die("--%s needs a number from %g to %g, not '%s'", opt, min, max, arg);
    return v;
}

int bf_parse_choice(const char *opt, const char *arg, const char *const *choices)
{
    char list[256] = "";
    for (int k = 0; choices[k]; k++) {
        if (strcmp(arg, choices[k]) == 0) return k;
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? "|" : "", choices[k]);
    }
    bf_usage_die("--%s must be one of %s, not '%s'", opt, list, arg);
}

int bf_cli_common(int c, const char *arg)
{
    switch (c) {
    case BF_OPT_HELP:
        fputs(bf_cli_state.usage, stdout);
        bf_cli_close_stdout();
        exit(0);
    case BF_OPT_VERSION:
        printf("%s (bitforge) %s\n", bf_cli_state.prog, BF_VERSION);
        bf_cli_close_stdout();
        exit(0);
    case BF_OPT_OUTPUT: bf_cli_state.output = arg; return 1;
    case BF_OPT_THREADS: bf_cli_state.threads = (int)bf_parse_int("threads", arg, 1, 1024); return 1;
    case BF_OPT_SEED: bf_cli_state.seed = (uint64_t)bf_parse_int("seed", arg, 0, INT64_MAX); return 1;
    case BF_OPT_QUIET: bf_cli_state.quiet = 1; return 1;
    case BF_OPT_PROGRESS: bf_cli_state.progress = bf_dist_rank() == 0; return 1;
    case ':': bf_usage_die("option '%s' needs a value", bf_cli_state.argv[optind - 1]);
    case '?':
        if (optopt) bf_usage_die("unknown option '-%c'", optopt);
        bf_usage_die("unknown option '%s'", bf_cli_state.argv[optind - 1]);
    default: return 0;
    }
}

void bf_cli_end(int writes_stream)
{
    /* (under mpirun stdout is a terminal of mpirun's, which passes the
     * bytes on unchanged to wherever its own stdout goes) */
    if (writes_stream && !bf_cli_state.output && isatty(1) && bf_dist_size() == 1)
        bf_usage_die("refusing to write a binary stream to a terminal (use -o FILE or a pipe)");
    /* OpenBLAS single-threaded; bf_sgemm splits products over our pool */
    if (openblas_set_num_threads) {
        openblas_set_num_threads(1);
        /* OpenBLAS maps a 128 MiB work buffer for each thread that calls it
         * and, when the map fails (a tight `ulimit -v`), retries forever.
         * Reserve the same address space once here, so that the limit ends
         * the program with a message instead of a hang. */
        size_t need = (size_t)bf_cli_state.threads * (128u << 20) + (64u << 20);
        void *probe = mmap(NULL, need, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (probe == MAP_FAILED)
            bf_die("cannot reserve %zu MiB of address space for OpenBLAS's work buffers (ulimit -v?)", need >> 20);
        munmap(probe, need);
    }
    bf_threads_set(bf_cli_state.threads);
}

const char *bf_cli_input(int argc, char **argv, int optind_)
{
    if (optind_ < argc - 1) bf_usage_die("one input stream at most, got '%s' and '%s'", argv[optind_], argv[optind_ + 1]);
    return optind_ < argc ? argv[optind_] : NULL;
}

bf_reader *bf_cli_open_input(const char *path)
{
    bf_reader *r = bf_reader_open(path);
    if (!r) bf_die_lib();
    return r;
}

int bf_cli_show_progress(void)
{
    if (bf_cli_state.quiet) return 0;
    if (bf_cli_state.progress >= 0) return bf_cli_state.progress;
    return isatty(2);
}

void bf_cli_lineage(bf_header *h)
{
    bf_val *e = bf_val_map(), *args = bf_val_arr();
    bf_val_set(e, "tool", bf_val_str(bf_cli_state.prog));
    bf_val_set(e, "version", bf_val_str(BF_VERSION));
    for (int k = 1; k < bf_cli_state.argc; k++) bf_val_push(args, bf_val_str(bf_cli_state.argv[k]));
    bf_val_set(e, "args", args);
    if (!h->lineage) h->lineage = bf_val_arr();
    bf_val_push(h->lineage, e);
}

void bf_cli_stdout_failed(void)
{
    if (errno == EPIPE) exit(1);
    bf_die("write error on standard output: %s", bf_strerror(errno));
}

void bf_cli_close_stdout(void)
{
    if (fflush(stdout) == 0 && !ferror(stdout)) return;
    bf_cli_stdout_failed();
}

bf_writer *bf_cli_open_output(bf_header *h)
{
    bf_writer *w = bf_writer_open(bf_cli_out_path(bf_cli_state.output));
    if (!w) {
        /* a terminal on stdout is a usage matter, not a data one */
        if (!bf_cli_state.output && isatty(1)) bf_usage_die("%s", bf_errmsg());
        bf_die_lib();
    }
    bf_cli_lineage(h);
    if (bf_writer_header(w, h)) { bf_writer_abort(w); bf_die_lib(); }
    return w;
}

void bf_cli_close_output(bf_writer *w)
{
    if (bf_writer_close(w)) bf_die_lib();
}

bf_writer *bf_cli_open_model_filter(const char *input, bf_reader **r)
{
    *r = bf_cli_open_input(input);
    const bf_header *ih = bf_reader_header(*r);
    if (strcmp(ih->kind, "model") != 0) bf_die("%s: a '%s' stream, not a model", input ? input : "stdin", ih->kind);
    bf_header h;
    bf_header_copy(&h, ih);
    bf_writer *w = bf_cli_open_output(&h);
    bf_header_release(&h);
    return w;
}

void bf_cli_write_all(bf_header *h, const bf_tset *s)
{
    bf_writer *w = bf_cli_open_output(h);
    for (size_t k = 0; k < s->n; k++)
        if (bf_writer_tensor(w, &s->t[k])) { bf_writer_abort(w); bf_die_lib(); }
    bf_cli_close_output(w);
}

const char *bf_opt_name(const struct option *opts, int c)
{
    for (; opts->name; opts++)
        if (opts->val == c && !opts->flag) return opts->name;
    return "?";
}


static void bytes_on_signal(int sig)
{
    if (bytes_tmp_path) unlink(bytes_tmp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* len bytes to fd: 0, or the errno that stopped it */
static int write_fd(int fd, const uint8_t *buf, size_t len)
{
    for (size_t at = 0; at < len;) {
        ssize_t w = write(fd, buf + at, len - at);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        at += (size_t)w;
    }
    return 0;
}

void bf_cli_write_bytes(const uint8_t *buf, size_t len) { bf_cli_write_bytes_to(bf_cli_state.output, buf, len); }

void bf_cli_write_bytes_to(const char *path, const uint8_t *buf, size_t len)
{
    if (bf_dist_rank() != 0) return;   /* rank 0 alone writes */
    /* Not a regular file (a device such as /dev/null, a FIFO): written in
     * place, as the stream writer does; renaming a temporary file over it
     * would replace it. */
    struct stat st;
    if (path && strcmp(path, "-") != 0 && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) bf_die("%s: is a directory", path);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) bf_die("%s: %s", path, bf_strerror(errno));
        if (isatty(fd)) bf_die("%s: refusing to write a binary file to a terminal", path);
        int err = write_fd(fd, buf, len);
        if (close(fd) && !err) err = errno;
        if (err) bf_die("%s: %s", path, bf_strerror(err));
        return;
    }
    if (!path || strcmp(path, "-") == 0) {
        for (size_t at = 0; at < len;) {
            size_t w = fwrite(buf + at, 1, len - at, stdout);
            if (w == 0) bf_cli_stdout_failed();
            at += w;
        }
        bf_cli_close_stdout();
        return;
    }
    char *d = bf_xstrdup(path), *b = bf_xstrdup(path);
    size_t n = strlen(path) + 32;
    char *tmp = bf_xmalloc(n);
    snprintf(tmp, n, "%s/.%s.tmpXXXXXX", dirname(d), basename(b));
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    sigset_t block, old;
    sigemptyset(&block);
    for (int k = 0; k < 3; k++) sigaddset(&block, sigs[k]);
    sigprocmask(SIG_BLOCK, &block, &old);   /* no signal between creating and registering */
    int fd = mkstemp(tmp);
    if (fd >= 0) {
        bytes_tmp_path = tmp;
        for (int k = 0; k < 3; k++) {
            struct sigaction sa = {0};
            sa.sa_handler = bytes_on_signal;
            sigaction(sigs[k], &sa, NULL);
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (fd < 0) bf_die("%s: cannot create a temporary file: %s", path, bf_strerror(errno));
    mode_t um = umask(0);
    umask(um);
    int err = fchmod(fd, 0666 & ~um) ? errno : 0;
    if (!err) err = write_fd(fd, buf, len);
    if (close(fd) && !err) err = errno;
    if (!err && rename(tmp, path)) err = errno;
    if (err) {
        unlink(tmp);
        bf_die("%s: %s", path, bf_strerror(err));
    }
    bytes_tmp_path = NULL;
    free(tmp);
    free(d);
    free(b);
}

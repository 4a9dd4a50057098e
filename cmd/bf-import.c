/* bf-import — a safetensors file as a model stream (bf-import(1)). */
#include "cli.h"
#include "bf/config.h"
#include "bf/interop.h"
#include "bf/model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: bf-import --format safetensors [options] [FILE]\n"
    "\n"
    "Reads a safetensors file (from bf-export, PyTorch or Hugging Face) and\n"
    "writes the model stream it holds.  A file that breaks the format's rules\n"
    "is refused with one line.\n"
    "\n"
    "  --format safetensors  the file format (required)\n"
    "  --names auto|bitforge|hf  the file's tensor names (default auto: hf when\n"
    "                     it has model.embed_tokens.weight)\n"
    "  --heads N          attention heads\n"
    "  --ctx N            context length\n"
    "  --act swiglu|gelu|relu2  the MLP's activation (default: swiglu with an\n"
    "                     up projection, gelu without)\n"
    "  --act-bits 0|8     int8 activations for ternary layers (default 8)\n"
    "                     (these four are needed, or override the file's, when\n"
    "                     its __metadata__ has no bitforge.config)\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { O_FORMAT = BF_OPT_PROGRAM, O_NAMES, O_HEADS, O_CTX, O_ACT, O_ACT_BITS };

struct cmdline {
    const char *input;
    bf_st_import_opts o;
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT,
        {"format", required_argument, 0, O_FORMAT}, {"names", required_argument, 0, O_NAMES},
        {"heads", required_argument, 0, O_HEADS}, {"ctx", required_argument, 0, O_CTX},
        {"act", required_argument, 0, O_ACT}, {"act-bits", required_argument, 0, O_ACT_BITS}, {0, 0, 0, 0}};
    static const char *const formats[] = {"safetensors", NULL};
    static const char *const namess[] = {"auto", "bitforge", "hf", NULL};
    static const bf_names names_of[] = {BF_NAMES_AUTO, BF_NAMES_BITFORGE, BF_NAMES_HF};
    memset(cl, 0, sizeof *cl);
    cl->o = (bf_st_import_opts){.names = BF_NAMES_AUTO, .n_head = 0, .ctx = 0, .act = -1, .act_bits = -1};
    bf_cli_begin(argc, argv, "bf-import", usage);
    int format = -1, c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg)) continue;
        switch (c) {
        case O_FORMAT: format = bf_parse_choice("format", optarg, formats); break;
        case O_NAMES: cl->o.names = names_of[bf_parse_choice("names", optarg, namess)]; break;
        case O_HEADS: cl->o.n_head = (int)bf_parse_int("heads", optarg, 1, BF_MAX_DMODEL); break;
        case O_CTX: cl->o.ctx = (int)bf_parse_int("ctx", optarg, 1, BF_MAX_CTX); break;
        case O_ACT: cl->o.act = bf_parse_choice("act", optarg, bf_act_names); break;
        case O_ACT_BITS: {
            long long b = bf_parse_int("act-bits", optarg, 0, 8);
            if (b != 0 && b != 8) bf_usage_die("--act-bits must be 0 or 8, not '%s'", optarg);
            cl->o.act_bits = (int)b;
            break;
        }
        default: bf_usage_die("unexpected option");
        }
    }
    if (format < 0) bf_usage_die("--format safetensors is required");
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(1);
}

/* n bytes of fd into buf: how many there were (fewer at the end of input). */
static size_t read_some(int fd, uint8_t *buf, size_t n, const char *label)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) bf_die("%s: %s", label, bf_strerror(errno));
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
}

/* The input, read as safetensors describes it.  A regular file whole (its
 * size is known: bf_st_parse checks what it holds).  Anything else (a pipe,
 * a device) never past what it describes: the header's size, checked; the
 * header, checked; the data section its offsets cover, into a buffer that
 * grows as the bytes come; then one byte more is an error.  An input that
 * ends early is handed to bf_st_parse as it is, which says where. */
static uint8_t *read_input(const char *path, size_t *len, const char **label)
{
    int fd = 0;
    *label = "stdin";
    if (path && strcmp(path, "-") != 0) {
        *label = path;
        fd = open(path, O_RDONLY);
        if (fd < 0) bf_die("%s: %s", path, bf_strerror(errno));
    }
    struct stat st;
    size_t n = 0, want;
    uint8_t *buf;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        want = (size_t)st.st_size;
        buf = bf_xmalloc(want ? want : 1);
        n = read_some(fd, buf, want, *label);
    } else {
        uint64_t hn, dn;
        buf = bf_xmalloc(8);
        n = read_some(fd, buf, 8, *label);
        if (n < 8) goto done;
        if (bf_st_header_len(buf, *label, &hn)) bf_die_lib();
        buf = bf_xrealloc(buf, 8 + (size_t)hn);
        n += read_some(fd, buf + 8, (size_t)hn, *label);
        if (n < 8 + hn) goto done;
        if (bf_st_data_len(buf, n, *label, &dn)) bf_die_lib();
        if (dn > SIZE_MAX - n) bf_die("%s: %llu bytes of data do not fit in memory", *label, (unsigned long long)dn);
        size_t total = n + (size_t)dn, cap = n;
        while (n < total) {
            if (n == cap) {
                cap = total - cap > cap ? 2 * cap : total;
                uint8_t *nb = realloc(buf, cap);
                if (!nb) bf_die("%s: out of memory for %zu bytes", *label, cap);
                buf = nb;
            }
            size_t got = read_some(fd, buf + n, cap - n, *label);
            n += got;
            if (n < cap) goto done;
        }
        uint8_t extra;
        if (read_some(fd, &extra, 1, *label))
            bf_die("%s: more than the %llu bytes of data the header describes", *label, (unsigned long long)dn);
    }
done:
    if (fd) close(fd);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    size_t len;
    const char *label;
    uint8_t *buf = read_input(cl.input, &len, &label);
    bf_header h;
    bf_tset s;
    if (bf_st_parse(buf, len, label, &cl.o, &h, &s)) bf_die_lib();
    free(buf);
    /* the tensors must make the model they say they are */
    bf_model m;
    if (bf_model_from_tset(&m, &h, &s)) {
        const char *msg = bf_errmsg();
        bf_die("%s: %s", label, msg);
    }
    bf_model_free(&m);
    bf_cli_write_all(&h, &s);
    bf_tset_release(&s);
    bf_header_release(&h);
    return 0;
}

/* bf-compress — a model stream into one compressed archive, and back
 * (bf-compress(1)). */
#include "cli.h"
#include "bf/compress.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: bf-compress [options] [MODEL]\n"
    "       bf-compress -d [-o STREAM] [ARCHIVE]\n"
    "\n"
    "Packs every tensor of a stream, each by its method, into one tar archive\n"
    "filtered by xz or zstd; -d gives the stream back (ternary codes and scales\n"
    "bit for bit, float tensors within their method's error).\n"
    "\n"
    "  --ternary tq2|tq1|entropy  ternary codes W: 2 or 1.6 bits a weight, or\n"
    "                     entropy (rANS, lossless, near the codes' entropy;\n"
    "                     default)\n"
    "  --float f32|f16|int8|seedlm4|seedlm3|vq  float tensors of 2 or more dims\n"
    "                     (embeddings, head, W.latent; default f16); vectors\n"
    "                     (norms) take f16, or f32 with --float f32\n"
    "  --method NAME=METHOD  the tensors whose names match the glob NAME take\n"
    "                     METHOD; repeatable, later ones win\n"
    "  --codec xz|zstd    the archive's filter (default xz)\n"
    "  --seed N           vq's k-means seed (default 1)\n"
    "  --threads N        threads for the seedlm search and vq (default: cores)\n"
    "  --json             one JSON object on stderr: total_bytes, ratio_f32 and\n"
    "                     per tensor method, bytes, bits_per_weight\n"
    "  -v, --verbose      a table of the same on stderr\n"
    "  -d, --decompress   ARCHIVE back to a stream\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { O_TERNARY = BF_OPT_PROGRAM, O_FLOAT, O_METHOD, O_CODEC, O_JSON };

#define MAX_RULES 256

struct cmdline {
    const char *input;
    int decompress, json, verbose;
    bf_cz_opts o;
    bf_cz_rule rules[MAX_RULES];
    int compress_only;   /* an option that only compressing takes was given */
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT, BF_OPTS_THREADS, BF_OPTS_SEED,
        {"ternary", required_argument, 0, O_TERNARY}, {"float", required_argument, 0, O_FLOAT},
        {"method", required_argument, 0, O_METHOD}, {"codec", required_argument, 0, O_CODEC},
        {"json", no_argument, 0, O_JSON}, {"verbose", no_argument, 0, 'v'},
        {"decompress", no_argument, 0, 'd'}, {0, 0, 0, 0}};
    static const char *const ternaries[] = {"tq2", "tq1", "entropy", NULL};
    static const char *const floats[] = {"f32", "f16", "int8", "seedlm4", "seedlm3", "vq", NULL};
    static const char *const codecs[] = {"xz", "zstd", NULL};
    memset(cl, 0, sizeof *cl);
    cl->o = (bf_cz_opts){.ternary = BF_CZ_ENTROPY, .flt = BF_CZ_F16, .rules = cl->rules, .codec = BF_CZ_XZ};
    bf_cli_begin(argc, argv, "bf-compress", usage);
    int c;
    while ((c = getopt_long(argc, argv, ":ho:vd", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg)) {
            if (c == BF_OPT_SEED) cl->compress_only = 1;
            continue;
        }
        switch (c) {
        case O_TERNARY: cl->o.ternary = (bf_cz_method)(BF_CZ_TQ2 + bf_parse_choice("ternary", optarg, ternaries)); cl->compress_only = 1; break;
        case O_FLOAT: cl->o.flt = (bf_cz_method)(BF_CZ_F32 + bf_parse_choice("float", optarg, floats)); cl->compress_only = 1; break;
        case O_CODEC: cl->o.codec = bf_parse_choice("codec", optarg, codecs) ? BF_CZ_ZSTD : BF_CZ_XZ; cl->compress_only = 1; break;
        case O_METHOD: {
            const char *eq = strrchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1]) bf_usage_die("--method needs NAME=METHOD, not '%s'", optarg);
            if (cl->o.nrules == MAX_RULES) bf_usage_die("at most %d --method", MAX_RULES);
            bf_cz_rule *r = &cl->rules[cl->o.nrules++];
            if (bf_cz_method_parse(eq + 1, &r->method) || r->method == BF_CZ_RAW)
                bf_usage_die("--method '%s': METHOD must be one of tq2|tq1|entropy|f32|f16|int8|seedlm4|seedlm3|vq", optarg);
            r->pattern = bf_xstrdup(optarg);
            ((char *)r->pattern)[eq - optarg] = 0;
            cl->compress_only = 1;
            break;
        }
        case O_JSON: cl->json = 1; cl->compress_only = 1; break;
        case 'v': cl->verbose = 1; cl->compress_only = 1; break;
        case 'd': cl->decompress = 1; break;
        default: bf_usage_die("unexpected option");
        }
    }
    if (cl->decompress && cl->compress_only) bf_usage_die("-d takes only -o, --threads and the archive");
    cl->o.seed = bf_cli_state.seed;
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(1);
}

static void report(const bf_cz_report *rep, int json, int verbose)
{
    if (json) {
        bf_val *v = bf_cz_report_json(rep);
        bf_val_json(stderr, v);
        fputc('\n', stderr);
        bf_val_free(v);
    }
    if (verbose) {
        fprintf(stderr, "%-32s %-8s %12s %12s %8s %8s\n", "tensor", "method", "payload", "bytes", "bits/w", "entropy");
        for (size_t k = 0; k < rep->n; k++) {
            const bf_cz_item *it = &rep->items[k];
            char h[16] = "";
            if (!isnan(it->entropy)) snprintf(h, sizeof h, "%.4f", it->entropy);
            fprintf(stderr, "%-32s %-8s %12llu %12llu %8.3f %8s\n", it->name, bf_cz_method_name(it->method),
                    (unsigned long long)it->payload, (unsigned long long)it->bytes,
                    it->numel ? 8.0 * (double)it->bytes / (double)it->numel : 0.0, h);
        }
        fprintf(stderr, "total %llu bytes (%s), F32 %llu bytes, ratio %.2fx\n", (unsigned long long)rep->total_bytes,
                bf_cz_codec_name(rep->codec), (unsigned long long)rep->f32_bytes,
                rep->total_bytes ? (double)rep->f32_bytes / (double)rep->total_bytes : 0.0);
    }
}

static void compress(const struct cmdline *cl)
{
    bf_header h;
    bf_tset s = {0};
    if (bf_read_all(cl->input, &h, &s)) bf_die_lib();
    bf_cli_lineage(&h);
    uint8_t *buf;
    size_t len;
    bf_cz_report rep;
    if (bf_compress(&h, &s, &cl->o, &buf, &len, &rep)) bf_die_lib();
    bf_tset_release(&s);
    bf_header_release(&h);
    bf_cli_write_bytes(buf, len);
    free(buf);
    report(&rep, cl->json, cl->verbose);
    bf_cz_report_release(&rep);
}

static void decompress(const struct cmdline *cl)
{
    bf_cz_reader *r = bf_cz_open(cl->input);
    if (!r) bf_die_lib();
    bf_header h;
    bf_header_copy(&h, bf_cz_header(r));
    bf_writer *w = bf_cli_open_output(&h);
    bf_header_release(&h);
    bf_tensor t;
    int rc;
    while ((rc = bf_cz_next(r, &t)) == 1) {
        if (bf_writer_tensor(w, &t)) { bf_writer_abort(w); bf_die_lib(); }
        bf_tensor_release(&t);
    }
    if (rc < 0) { bf_writer_abort(w); bf_die_lib(); }
    bf_cz_close(r);
    bf_cli_close_output(w);
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    if (cl.decompress) decompress(&cl);
    else compress(&cl);
    for (size_t k = 0; k < cl.o.nrules; k++) free((char *)cl.rules[k].pattern);
    return 0;
}

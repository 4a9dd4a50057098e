/* bf-export — a model stream as a GGUF file for llama.cpp or a safetensors
 * file for PyTorch (bf-export(1)). */
#include "cli.h"
#include "bf/interop.h"

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: bf-export --format gguf|safetensors [options] [MODEL]\n"
    "\n"
    "Writes a model stream as a GGUF file that llama.cpp runs, or as a\n"
    "safetensors file that PyTorch reads (bf-import reads it back).\n"
    "\n"
    "  --format gguf|safetensors  the file format (required)\n"
    "\n"
    "safetensors:\n"
    "  --names bitforge|hf  tensor names: the stream's (default), or Hugging Face\n"
    "                     llama's (model.layers.N.self_attn.q_proj.weight, ...)\n"
    "  --config FILE      with --names hf: also the config.json that\n"
    "                     transformers' LlamaForCausalLM loads beside it\n"
    "  --dtype f32|f16|bf16  float tensors (default f32)\n"
    "  --ternary dequant|packed  ternary weights as scale*codes in --dtype\n"
    "                     (default), or as their packed bytes (U8) with an F32\n"
    "                     scale, described in __metadata__\n"
    "\n"
    "gguf:\n"
    "  --type tq2_0|tq1_0|f16|f32  block matrices (default: tq2_0 for a\n"
    "                     ternary model, f32 for a float one)\n"
    "  --float f32|f16    token embedding and head (default f32)\n"
    "  --fallback         a matrix whose rows are not a multiple of 256 goes F16\n"
    "                     instead of being an error with tq2_0 and tq1_0\n"
    "\n"
    "  -o, --output FILE  write FILE atomically instead of stdout\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { O_FORMAT = BF_OPT_PROGRAM, O_NAMES, O_DTYPE, O_TERNARY, O_TYPE, O_FLOAT, O_FALLBACK, O_CONFIG };

struct cmdline {
    const char *input;
    int gguf;
    bf_st_opts st;
    bf_gg_opts gg;
    int type_given;
    const char *config;   /* --config FILE: the Hugging Face configuration */
};

static void parse_command_line(int argc, char **argv, struct cmdline *cl)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_OUTPUT,
        {"format", required_argument, 0, O_FORMAT}, {"names", required_argument, 0, O_NAMES},
        {"config", required_argument, 0, O_CONFIG},
        {"dtype", required_argument, 0, O_DTYPE}, {"ternary", required_argument, 0, O_TERNARY},
        {"type", required_argument, 0, O_TYPE}, {"float", required_argument, 0, O_FLOAT},
        {"fallback", no_argument, 0, O_FALLBACK}, {0, 0, 0, 0}};
    static const char *const formats[] = {"gguf", "safetensors", NULL};
    static const char *const namess[] = {"bitforge", "hf", NULL};
    static const char *const dtypes[] = {"f32", "f16", "bf16", NULL};
    static const char *const ternaries[] = {"dequant", "packed", NULL};
    static const char *const types[] = {"tq2_0", "tq1_0", "f16", "f32", NULL};
    static const char *const floats[] = {"f32", "f16", NULL};
    static const bf_dtype dtype_of[] = {BF_F32, BF_F16, BF_BF16};
    static const bf_gg_type type_of[] = {BF_GG_TQ2_0, BF_GG_TQ1_0, BF_GG_F16, BF_GG_F32};
    memset(cl, 0, sizeof *cl);
    cl->st = (bf_st_opts){.names = BF_NAMES_BITFORGE, .float_dtype = BF_F32, .packed = 0};
    cl->gg = (bf_gg_opts){.matrix = BF_GG_TQ2_0, .embed = BF_GG_F32, .fallback = 0};
    bf_cli_begin(argc, argv, "bf-export", usage);
    int format = -1, st_only = 0, gg_only = 0, c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        if (bf_cli_common(c, optarg)) continue;
        switch (c) {
        case O_FORMAT: format = bf_parse_choice("format", optarg, formats); break;
        case O_CONFIG: cl->config = optarg; st_only = 1; break;
        case O_NAMES: cl->st.names = bf_parse_choice("names", optarg, namess) ? BF_NAMES_HF : BF_NAMES_BITFORGE; st_only = 1; break;
        case O_DTYPE: cl->st.float_dtype = dtype_of[bf_parse_choice("dtype", optarg, dtypes)]; st_only = 1; break;
        case O_TERNARY: cl->st.packed = bf_parse_choice("ternary", optarg, ternaries); st_only = 1; break;
        case O_TYPE: cl->gg.matrix = type_of[bf_parse_choice("type", optarg, types)]; cl->type_given = 1; gg_only = 1; break;
        case O_FLOAT: cl->gg.embed = bf_parse_choice("float", optarg, floats) ? BF_GG_F16 : BF_GG_F32; gg_only = 1; break;
        case O_FALLBACK: cl->gg.fallback = 1; gg_only = 1; break;
        default: bf_usage_die("unexpected option");
        }
    }
    if (format < 0) bf_usage_die("--format gguf|safetensors is required");
    cl->gguf = format == 0;
    if (cl->gguf && st_only) bf_usage_die("--names, --dtype, --ternary and --config are for --format safetensors");
    if (cl->config && cl->st.names != BF_NAMES_HF) bf_usage_die("--config writes a Hugging Face configuration: it goes with --names hf");
    if (cl->config && cl->st.packed) bf_usage_die("--config: transformers reads float weights, not --ternary packed");
    if (!cl->gguf && gg_only) bf_usage_die("--type, --float and --fallback are for --format gguf");
    cl->input = bf_cli_input(argc, argv, optind);
    bf_cli_end(1);
}

/* ------------------------------------------------------------ atomic output */

static int has_ternary(const bf_tset *s)
{
    for (size_t k = 0; k < s->n; k++)
        if (bf_dtype_is_ternary(s->t[k].dtype)) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    parse_command_line(argc, argv, &cl);
    bf_header h;
    bf_tset s = {0};
    if (bf_read_all(cl.input, &h, &s)) bf_die_lib();
    uint8_t *buf, *cbuf = NULL;
    size_t len, clen = 0;
    int rc;
    if (cl.gguf) {
        if (!cl.type_given && !has_ternary(&s)) cl.gg.matrix = BF_GG_F32;
        rc = bf_gguf_write(&h, &s, &cl.gg, &buf, &len);
    } else {
        /* the configuration first: what Llama cannot express is the error */
        if (cl.config && bf_st_hf_config(&h, &cl.st, &cbuf, &clen)) bf_die_lib();
        rc = bf_st_write(&h, &s, &cl.st, &buf, &len);
    }
    if (rc) bf_die_lib();
    if (cbuf) {   /* both made before either is written */
        bf_cli_write_bytes_to(cl.config, cbuf, clen);
        free(cbuf);
    }
    bf_tset_release(&s);
    bf_header_release(&h);
    bf_cli_write_bytes(buf, len);
    free(buf);
    return 0;
}

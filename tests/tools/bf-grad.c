/* bf-grad — one forward and backward of a model over a batch, as JSON, for
 * checking the library's gradients against an independent implementation
 * (tests/ref/).
 *
 *   bf-grad --data DATA [--split train|val] [--rows N]
 *           [--scale-init X] [--jitter-1d X] [--threads N] [MODEL]
 *
 * Takes the first N rows of the split (default: all of it) as one batch,
 * runs bf_model_forward and bf_model_backward once and prints
 *
 *   {"loss": L, "targets": K, "grads": {"NAME": [g0, g1, ...], ...}}
 *
 * with every gradient flattened row-major, in the model's parameter order
 * (bf_model's own order, which need not be the stream's),
 * each number printed with 9 significant digits (enough to give back the
 * exact float).  Before the forward:
 *   --scale-init X   multiplies every 2-D parameter by X (bf-init's std 0.02
 *                    gives tiny, nearly degenerate gradients);
 *   --jitter-1d X    adds X·sin(1 + 0.7·i + 1.3·k) to element i of each
 *                    1-D parameter, k the sum of the bytes of its name (so the
 *                    result does not depend on the order of the tensors), so
 *                    norm weights and biases are not all 1 and 0.
 * Both are done in float as `p = (float)(p·X)` and `p = p + (float)(X·sin(…))`
 * (the sine in double), so another implementation can repeat them exactly.
 * On a ternary model they act on the latent weights, which are then
 * re-quantized.  Errors: one line on stderr, exit 1; bad usage exit 2. */
#include "cli.h"
#include "bf/data.h"
#include "bf/model.h"
#include "bf/stream.h"
#include "bf/thread.h"
#include "bf/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: bf-grad --data DATA [--split train|val] [--rows N] [--scale-init X] [--jitter-1d X]\n"
    "               [--threads N] [MODEL]\n"
    "\n"
    "One forward and backward over the first N rows of DATA's split as one batch;\n"
    "prints {\"loss\": L, \"targets\": K, \"grads\": {NAME: [flattened gradient], ...}}.\n"
    "\n"
    "  --data DATA        the data stream (required)\n"
    "  --split train|val  which split (default train)\n"
    "  --rows N           the first N rows (default: the whole split)\n"
    "  --scale-init X     multiply every 2-D parameter by X first\n"
    "  --jitter-1d X      add X*sin(1 + 0.7*i + 1.3*k) to element i of each 1-D parameter\n"
    "                     first, k the sum of the bytes of its name\n"
    "  --threads N        threads (default: all cores)\n"
    "  -h, --help         this text\n"
    "      --version      the version\n";

enum { OPT_DATA = BF_OPT_PROGRAM, OPT_SPLIT, OPT_ROWS, OPT_SCALE, OPT_JITTER };

static void print_float(float v)
{
    if (!isfinite(v)) {   /* JSON has no NaN or infinity; the checker reads null as a failure */
        fputs("null", stdout);
        return;
    }
    printf("%.9g", (double)v);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        BF_OPTS_BASE, BF_OPTS_THREADS,
        {"data", required_argument, 0, OPT_DATA}, {"split", required_argument, 0, OPT_SPLIT},
        {"rows", required_argument, 0, OPT_ROWS}, {"scale-init", required_argument, 0, OPT_SCALE},
        {"jitter-1d", required_argument, 0, OPT_JITTER}, {0, 0, 0, 0},
    };
    static const char *const splits[] = {"train", "val", NULL};
    bf_cli_begin(argc, argv, "bf-grad", usage);
    const char *data = NULL;
    int split = 0;
    long long rows = -1;
    double scale = 1, jitter = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_DATA: data = optarg; break;
        case OPT_SPLIT: split = bf_parse_choice("--split", optarg, splits); break;
        case OPT_ROWS: rows = bf_parse_int("--rows", optarg, 1, 1LL << 30); break;
        case OPT_SCALE: scale = bf_parse_double("--scale-init", optarg, -1e6, 1e6); break;
        case OPT_JITTER: jitter = bf_parse_double("--jitter-1d", optarg, -1e6, 1e6); break;
        default:
            if (!bf_cli_common(c, optarg)) bf_usage_die("unknown option");
        }
    }
    const char *input = bf_cli_input(argc, argv, optind);
    if (!data) bf_usage_die("--data is required");
    bf_cli_end(0);

    bf_header h;
    bf_tset s;
    if (bf_read_all(input, &h, &s)) bf_die_lib();
    bf_model m;
    if (bf_model_from_tset(&m, &h, &s)) bf_die("%s: %s", input ? input : "stdin", bf_errmsg());
    bf_tset_release(&s);
    bf_dataset d;
    if (bf_data_load(data, &d)) bf_die_lib();
    if (bf_data_check_model(&d, &m.cfg, data)) bf_die_lib();
    const bf_split *sp = bf_data_split(&d, splits[split]);
    if (!sp->rows) bf_die("%s: the %s split is empty", data, splits[split]);
    size_t n = rows < 0 ? sp->rows : (size_t)rows;
    if (n > sp->rows) bf_die("%s: --rows %zu: the %s split has %zu rows", data, n, splits[split], sp->rows);

    for (size_t k = 0; k < m.np; k++) {
        bf_param *p = &m.p[k];
        float *v = m.params + p->offset;
        if (p->ndim == 2 && scale != 1)
            for (size_t i = 0; i < p->numel; i++) v[i] = (float)((double)v[i] * scale);
        if (p->ndim == 1 && jitter != 0) {
            unsigned sum = 0;
            for (const unsigned char *q = (const unsigned char *)p->name; *q; q++) sum += *q;
            for (size_t i = 0; i < p->numel; i++)
                v[i] = v[i] + (float)(jitter * sin(1.0 + 0.7 * (double)i + 1.3 * (double)sum));
        }
    }
    if (bf_model_is_quantized(&m)) bf_model_refresh(&m);

    bf_model_zero_grad(&m);
    double loss = bf_model_forward(&m, sp->x, sp->y, (int)n, (int)sp->T);
    bf_model_backward(&m);

    printf("{\"loss\": ");
    if (isfinite(loss)) printf("%.17g", loss);
    else fputs("null", stdout);
    printf(", \"targets\": %zu, \"grads\": {", m.last_targets);
    for (size_t k = 0; k < m.np; k++) {
        const bf_param *p = &m.p[k];
        const float *g = m.grads + p->offset;
        printf("%s\n\"%s\": [", k ? "," : "", p->name);
        for (size_t i = 0; i < p->numel; i++) {
            if (i) putchar(',');
            print_float(g[i]);
        }
        putchar(']');
    }
    printf("}}\n");
    bf_data_free(&d);
    bf_model_free(&m);
    bf_header_release(&h);
    bf_cli_close_stdout();
    return 0;
}

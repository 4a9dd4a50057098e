/* gen_stream — the generator side of bench/stream.
 *
 *   gen_stream VOCAB CTX D LAYERS HEADS >model.bf
 *
 * Writes to stdout the model stream bf-init writes for the same
 * configuration (same header meta, tensor names, shapes, order and sizes),
 * but every payload is the same constant-filled buffer, so the program costs
 * no more than the library's writer itself: what it measures is the stream
 * writer and the pipe, not bf-init's random number generator. */
#include "bf/config.h"
#include "bf/stream.h"
#include "bf/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int arg(const char *s, long min, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < min || v > max) {
        fprintf(stderr, "gen_stream: bad number '%s'\n", s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fputs("usage: gen_stream VOCAB CTX D LAYERS HEADS >model.bf\n", stderr);
        return 2;
    }
    bf_config c;
    bf_config_default(&c);
    c.vocab = arg(argv[1], 1, BF_MAX_VOCAB);
    c.ctx = arg(argv[2], 1, BF_MAX_CTX);
    c.d_model = arg(argv[3], 1, BF_MAX_DMODEL);
    c.n_layer = arg(argv[4], 1, BF_MAX_LAYERS);
    c.n_head = arg(argv[5], 1, BF_MAX_DMODEL);
    c.d_ff = c.d_model * 4 > BF_MAX_DFF ? BF_MAX_DFF : c.d_model * 4;   /* bf-init's default */
    if (bf_config_validate(&c)) {
        fprintf(stderr, "gen_stream: %s\n", bf_errmsg());
        return 2;
    }

    size_t n;
    bf_param_spec *spec = bf_config_params(&c, &n);
    uint64_t largest = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t nb;
        if (bf_tensor_size(BF_F32, spec[k].ndim, spec[k].shape, &nb)) {
            fprintf(stderr, "gen_stream: %s\n", bf_errmsg());
            return 1;
        }
        if (nb > largest) largest = nb;
    }
    float *buf = bf_aligned_alloc((size_t)largest);
    if (!buf) {
        fprintf(stderr, "gen_stream: %s\n", bf_errmsg());
        return 1;
    }
    for (uint64_t j = 0; j < largest / 4; j++) buf[j] = 0.015625f;

    bf_header h;
    bf_header_init(&h, "model");
    bf_config_to_meta(&c, h.meta);
    bf_val *e = bf_val_map(), *args = bf_val_arr();
    bf_val_set(e, "tool", bf_val_str("gen_stream"));
    bf_val_set(e, "version", bf_val_str("bench"));
    for (int k = 1; k < argc; k++) bf_val_push(args, bf_val_str(argv[k]));
    bf_val_set(e, "args", args);
    bf_val_push(h.lineage, e);

    bf_writer *w = bf_writer_open(NULL);
    int rc = w ? bf_writer_header(w, &h) : -1;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        bf_tensor t;
        memset(&t, 0, sizeof t);
        snprintf(t.name, sizeof t.name, "%s", spec[k].name);
        t.dtype = BF_F32;
        t.ndim = spec[k].ndim;
        memcpy(t.shape, spec[k].shape, sizeof spec[k].shape);
        bf_tensor_size(BF_F32, t.ndim, t.shape, &t.nbytes);
        t.data = buf;   /* shared, never released through the tensor */
        rc = bf_writer_tensor(w, &t);
    }
    if (w) {
        if (rc) bf_writer_abort(w);
        else rc = bf_writer_close(w);
    }
    if (rc) {
        if (!bf_stream_epipe) fprintf(stderr, "gen_stream: %s\n", bf_errmsg());
        return 1;
    }
    bf_header_release(&h);
    bf_aligned_free(buf);
    free(spec);
    return 0;
}

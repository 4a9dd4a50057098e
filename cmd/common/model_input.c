/* model_input.c — reading a model stream for a program (cli.h).  A file of
 * its own: a program that reads no model (bf-quantize, bf-data …) does not
 * pull the model code, nor OpenBLAS with it, out of the archive. */
#include "cli.h"
#include "bf/tgroup.h"

#include <string.h>

void bf_cli_read_model(const char *path, bf_header *h, bf_model *m, bf_model *second, uint64_t *digest, int *has_latent)
{
    const char *label = path && strcmp(path, "-") ? path : "stdin";
    bf_tset s;
    if (bf_read_all(path, h, &s)) bf_die_lib();
    if (bf_model_from_tset(m, h, &s) || (second && bf_model_from_tset(second, h, &s))) bf_die("%s: %s", label, bf_errmsg());
    if (digest) *digest = bf_tset_digest(&s);
    if (has_latent) {
        *has_latent = 0;
        for (size_t k = 0; k < s.n; k++) {
            const char *part;
            if (bf_tgroup_split_name(s.t[k].name, &part) && !strcmp(part, "latent")) *has_latent = 1;
        }
    }
    bf_tset_release(&s);
}

void bf_cli_clone_model(const bf_model *src, const bf_header *h, bf_model *dst)
{
    bf_tset s;
    if (bf_model_to_tset(src, 1, &s) || bf_model_from_tset(dst, h, &s)) bf_die_lib();
    bf_tset_release(&s);
}

/* safetensors_internal.h — what the interop files share
 * (lib/methods/safetensors*.c, gguf.c; bf/interop.h is the public side). */
#ifndef BF_SAFETENSORS_INTERNAL_H
#define BF_SAFETENSORS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bf/val.h"

/* A growing byte buffer. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} bf_sj_buf;

void bf_sj_put(bf_sj_buf *b, const void *p, size_t n);
void bf_sj_str(bf_sj_buf *b, const char *s);
/* s[0..len) as a JSON string, escaped. */
void bf_sj_quote(bf_sj_buf *b, const char *s, size_t len);
/* v as JSON: integers as integers, floats always with '.' or an exponent.
 * -1 (bf_err) for a non-finite float or binary data. */
int bf_sj_write(bf_sj_buf *b, const bf_val *v);

/* A JSON parser over s[0..n); messages start with label. */
typedef struct {
    const char *s;
    size_t n, i;
    const char *label;
} bf_sj_parser;

void bf_sj_ws(bf_sj_parser *p);
/* A string at p->i (its opening quote included) into b, NUL-terminated
 * (b->n not counting the NUL); valid UTF-8 only, no NUL. */
int bf_sj_string(bf_sj_parser *p, bf_sj_buf *b);
/* One value (nesting at most 32, at most 65536 entries a container, no
 * repeated key); NULL and bf_err on anything else. */
bf_val *bf_sj_value(bf_sj_parser *p, int depth, bf_sj_buf *tmp);

#endif

/* bf/json.h — JSON text to and from bf_val, and a growing byte buffer
 * (part: support).  One reader and one writer for every JSON the library
 * meets: bf-compress's manifest, safetensors headers.
 *
 * The writer keeps integers and floats apart (a float always has a '.' or
 * an exponent, so it reads back as a float) and escapes strings; it refuses
 * non-finite floats and binary data, which JSON cannot carry.  The reader is
 * bounded: nesting at most 32, at most 65,536 entries a container, valid
 * UTF-8 only, no NUL in strings, no repeated key; every error names the
 * input (its label) and the byte offset. */
#ifndef BF_JSON_H
#define BF_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "bf/val.h"

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bf_buf;

void bf_buf_put(bf_buf *b, const void *p, size_t n);
void bf_buf_str(bf_buf *b, const char *s);
/* s[0..len) as a JSON string, escaped. */
void bf_json_quote(bf_buf *b, const char *s, size_t len);
/* v as JSON text; -1 (bf_err) for a non-finite float or binary data. */
int bf_json_write(bf_buf *b, const bf_val *v);

/* Exactly one JSON value in s[0..len) (whitespace around it allowed); NULL
 * and bf_err on anything else. */
bf_val *bf_json_parse(const char *s, size_t len, const char *label);

/* The pieces, for readers that walk a document themselves (safetensors'
 * header, whose offsets are checked as they come). */
typedef struct {
    const char *s;
    size_t n, i;
    const char *label;
} bf_json_parser;

void bf_json_ws(bf_json_parser *p);
/* A string at p->i (its opening quote included) into b, NUL-terminated
 * (b->n not counting the NUL). */
int bf_json_string(bf_json_parser *p, bf_buf *b);
/* One value; NULL and bf_err on anything else. */
bf_val *bf_json_value(bf_json_parser *p, int depth, bf_buf *tmp);

#endif

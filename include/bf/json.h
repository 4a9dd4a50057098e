/* bf/json.h — JSON text to and from bf_val, and a growing byte buffer
 * (part: support).  One reader and one writer for every JSON the library
 * meets: bf-compress's manifest, safetensors headers.
 *
 * The writer keeps integers and floats apart (a float always has a '.' or
 * an exponent, so it reads back as a float) and escapes strings; it refuses
 * non-finite floats, integers above 2^63-1 (which the reader refuses) and
 * binary data, which JSON cannot carry.
 *
 * The reader is jansson's (json_loadb; lib/support/json.c says why) with
 * bitforge's limits on top: valid UTF-8 only (no overlong forms, no
 * surrogates), no NUL in strings or keys, no repeated key in any object,
 * integers within int64 and numbers within double (1e999 is refused, not
 * made infinite), integers and floats kept apart (BF_INT, BF_FLOAT); nesting
 * at most 32 below the top and at most 65,536 entries a container.  A
 * syntax error reads "LABEL: WHAT[ near 'TOKEN'] at byte N" (N where the
 * parse stopped); the two limits are checked on the parsed tree, and their
 * errors ("LABEL: nesting too deep (more than 32 levels)", "LABEL: too many
 * entries (...)") name no byte.  The parse holds the whole text's tree, at
 * most about 64 bytes of memory a byte of text (arrays of empty arrays: 6.1
 * GB for a 100 MB safetensors header), before the limits are checked. */
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

/* For a reader that checks a document's entries as they come (safetensors'
 * header, whose offsets are checked entry by entry): s[0..len) must be one
 * JSON object; fn gets its entries in order, each key with its value as a
 * bf_val that fn then owns, and a non-zero return from fn stops the walk and
 * is returned.  The object's own entries are not counted against the limit
 * of entries (a safetensors header holds one a tensor): only the header's
 * size bounds them; everything inside them is, and nesting counts from the
 * object (its values are at depth 1).  The whole text is parsed first, so a
 * syntax error anywhere comes before fn sees any entry. */
typedef int (*bf_json_entry_fn)(void *ctx, const char *key, bf_val *v);
int bf_json_each(const char *s, size_t len, const char *label, bf_json_entry_fn fn, void *ctx);

#endif

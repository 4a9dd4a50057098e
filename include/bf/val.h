/* bf/val.h — a small tree of MessagePack values, for stream headers and meta
 * (part: support).
 *
 * Stream headers, tensor meta and lineage are small maps; programs read a few
 * keys, add a few, and write them back.  bf_val holds them in memory; the
 * stream reader decodes into it under size limits, the writer packs it. */
#ifndef BF_VAL_H
#define BF_VAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    BF_NIL, BF_BOOL, BF_INT, BF_UINT, BF_FLOAT, BF_STR, BF_BIN, BF_ARR, BF_MAP
} bf_vtype;

typedef struct bf_val bf_val;
struct bf_val {
    bf_vtype type;
    union {
        int b;            /* BF_BOOL */
        int64_t i;        /* BF_INT: any value that fits int64 */
        uint64_t u;       /* BF_UINT: only values above INT64_MAX */
        double f;         /* BF_FLOAT */
        struct { char *p; size_t len; } s;           /* BF_STR, BF_BIN (NUL-terminated copy) */
        struct { bf_val *items; char **keys; size_t n, cap; } a; /* BF_ARR, BF_MAP (keys only for maps) */
    } v;
};

bf_val *bf_val_new(bf_vtype type);
bf_val *bf_val_nil(void);
bf_val *bf_val_bool(int b);
bf_val *bf_val_int(int64_t i);
bf_val *bf_val_float(double f);
bf_val *bf_val_str(const char *s);
bf_val *bf_val_strn(const char *s, size_t len);
bf_val *bf_val_map(void);
bf_val *bf_val_arr(void);
void bf_val_free(bf_val *v);                 /* frees v and its children */
void bf_val_clear(bf_val *v);                /* frees children, leaves v as nil */
bf_val *bf_val_clone(const bf_val *v);

/* Maps keep insertion order; set replaces an existing key in place.
 * set/push take ownership of `item` (which is freed after being copied in). */
bf_val *bf_val_get(const bf_val *map, const char *key);
void bf_val_set(bf_val *map, const char *key, bf_val *item);
void bf_val_del(bf_val *map, const char *key);
void bf_val_push(bf_val *arr, bf_val *item);

/* Typed look-ups with defaults: return 0 and set *out when present and of
 * a fitting type, 1 when absent (leaving *out = dflt), -1 when present but
 * of the wrong type or out of range. */
int bf_val_get_int(const bf_val *map, const char *key, int64_t dflt, int64_t *out);
int bf_val_get_num(const bf_val *map, const char *key, double dflt, double *out);
int bf_val_get_bool(const bf_val *map, const char *key, int dflt, int *out);
const char *bf_val_get_str(const bf_val *map, const char *key); /* NULL if absent or not a string */

/* Writes v as JSON (strings escaped; bin as a string of hex). */
void bf_val_json(FILE *f, const bf_val *v);
/* Writes a double as the shortest JSON number that reads back exactly. */
void bf_json_num(FILE *f, double x);
void bf_json_str(FILE *f, const char *s, size_t len);

#endif

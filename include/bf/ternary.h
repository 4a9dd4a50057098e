/* bf/ternary.h — the TQ2 and TQ1 packings of ternary weights (part: stream;
 * bf-stream(5)).  The only code that knows the stream's ternary byte layout.
 *
 * A weight w ∈ {-1, 0, +1} is stored as the code c = w + 1.
 *   TQ2: 4 codes a byte, weight k of a row in bits 2(k%4)..2(k%4)+1 of byte k/4.
 *   TQ1: 5 codes a byte, byte = Σ_{i<5} c_i·3^i.
 * Each row starts on a byte; unused slots at a row's end hold code 0. */
#ifndef BF_TERNARY_H
#define BF_TERNARY_H

#include <stddef.h>
#include <stdint.h>

#include "bf/dtype.h"

/* Bytes a packed row of `cols` weights takes (0 if dt is not ternary). */
uint64_t bf_ternary_row_bytes(bf_dtype dt, uint64_t cols);

/* w: cols weights in {-1,0,1}; out: row_bytes bytes. */
void bf_ternary_pack_row(bf_dtype dt, const int8_t *w, uint64_t cols, uint8_t *out);
/* in: row_bytes bytes (assumed valid); w: cols weights in {-1,0,1}. */
void bf_ternary_unpack_row(bf_dtype dt, const uint8_t *in, uint64_t cols, int8_t *w);

/* Checks every byte of a packed payload: no TQ2 code 3, no TQ1 byte ≥ 243.
 * Returns 0, or -1 with bf_err naming the first bad byte's offset. */
int bf_ternary_validate(bf_dtype dt, const uint8_t *p, uint64_t nbytes);

/* Counts of -1, 0, +1 among the used slots of a [rows, cols] payload. */
void bf_ternary_count(bf_dtype dt, const uint8_t *p, uint64_t rows, uint64_t cols, uint64_t counts[3]);

#endif

/* kernel_cases.h — test weights whose packed bytes take every value, shared
 * by test_kernels, test_kernels_avx512 and the freestanding tests/emu image
 * (so: no library, no libc).
 *
 * every_byte_weight(tq1, v, i): weight i of a row whose every packed byte
 * holds the digits of v — base 3 for TQ1; base 4 for TQ2, with the invalid
 * code 3 taken as 0.  Rows of v = 0 … 242 (TQ1) or 0 … 255 (TQ2) cover every
 * valid byte value. */
#ifndef BF_KERNEL_CASES_H
#define BF_KERNEL_CASES_H

#include <stddef.h>
#include <stdint.h>

static inline int8_t every_byte_weight(int tq1, unsigned v, size_t i)
{
    size_t B = tq1 ? 160 : 128;
    unsigned base = tq1 ? 3 : 4;
    for (size_t s = (i % B) / 32; s > 0; s--) v /= base;   /* byte j's slot s is weight j + 32s */
    return (int8_t)((int)(v % base % 3) - 1);
}

#endif

/* emu_main.c — the native AVX-512 kernels (lib/kernels/kernels_avx512.c, built as
 * the library builds it) against a plain reference, with no operating
 * system: boot.S brings the machine up, this prints TAP on the first serial
 * port.  tests/emu/run boots it in an emulator whose processor has AVX-512,
 * for machines that have none.  Cases as in test_kernels_avx512: every
 * block count to 9, one column, rows of 4096 and 11008, extreme products,
 * every byte value. */
#include <cpuid.h>
#include <stddef.h>
#include <stdint.h>

#include "../../lib/kernels/kernels_avx512.h"
#include "../unit/kernel_cases.h"

void *memset(void *d, int c, size_t n);
void *memset(void *d, int c, size_t n)
{
    unsigned char *p = d;
    while (n--) *p++ = (unsigned char)c;
    return d;
}

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static void putc_serial(char c)
{
    while (!(inb(0x3f8 + 5) & 0x20)) {}   /* transmit holding register empty */
    outb(0x3f8, (uint8_t)c);
}
static void puts_serial(const char *s) { while (*s) putc_serial(*s++); }
static void putu(unsigned long long v)
{
    char b[24];
    int n = 0;
    do b[n++] = (char)('0' + v % 10); while (v /= 10);
    while (n) putc_serial(b[--n]);
}
static void puti(long long v)
{
    if (v < 0) putc_serial('-'), v = -v;
    putu((unsigned long long)v);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned below(unsigned n)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;   /* xorshift64 */
    return (unsigned)(rng >> 33) % n;
}

#define KMAX 11200
static int8_t w[4][KMAX], q[KMAX + 512], qp[KMAX + 512];
static uint8_t blocks[4][KMAX / 4 + 64] __attribute__((aligned(64)));
static int tests, failed;

static void result(int good, const char *what, const char *level, unsigned long long k)
{
    tests++;
    if (!good) failed++, puts_serial("not ");
    puts_serial("ok ");
    putu((unsigned long long)tests);
    puts_serial(" - ");
    puts_serial(level);
    puts_serial(" ");
    puts_serial(what);
    puts_serial(" k=");
    putu(k);
    puts_serial("\n");
}

/* the blocked layouts of bf/kernels.h, rows padded with zero weights */
static size_t pack_row(int tq1, const int8_t *wr, size_t cols, uint8_t *out)
{
    size_t B = tq1 ? 160 : 128, nblk = (cols + B - 1) / B;
    for (size_t b = 0; b < nblk; b++)
        for (size_t j = 0; j < 32; j++) {
            unsigned v = 0;
            for (size_t s = 0; s < (tq1 ? 5u : 4u); s++) {
                size_t k = b * B + j + 32 * s;
                unsigned c = k < cols ? (unsigned)(wr[k] + 1) : 1u;
                v = tq1 ? v * 3 + c : v | c << (2 * s);
            }
            out[b * 32 + j] = (uint8_t)(tq1 ? (v * 256 + 242) / 243 : v);
        }
    return nblk;
}

enum { RANDOM, PLUS_MIN, MINUS_MIN, PLUS_MAX, EVERY_BYTE };

static void fill(int pat, int tq1, size_t cols, int row)
{
    for (size_t k = 0; k < cols; k++) {
        int8_t v;
        if (pat == PLUS_MIN || pat == PLUS_MAX) v = 1;
        else if (pat == MINUS_MIN) v = -1;
        else if (pat == EVERY_BYTE)   /* byte j of the row's blocks: the digits of (row·61 + j) */
            v = every_byte_weight(tq1, (unsigned)row * 61 + (unsigned)(k % 32), k);
        else v = (int8_t)((int)below(3) - 1);
        w[row][k] = v;
    }
    for (size_t k = 0; k < cols; k++)
        q[k] = pat == PLUS_MIN || pat == MINUS_MIN ? -128 : pat == PLUS_MAX ? 127 : (int8_t)((int)below(256) - 128);
}

typedef int32_t (*row_fn)(const uint8_t *, const int8_t *, size_t);

static void rows_case(const char *level, row_fn tq2, row_fn tq1, int use_tq1, size_t cols, int pat)
{
    int good = 1;
    for (int r = 0; r < 4; r++) {
        fill(pat, use_tq1, cols, r);
        size_t nblk = pack_row(use_tq1, w[r], cols, blocks[r]);
        long long want = 0;
        for (size_t k = 0; k < cols; k++) want += (long long)(w[r][k] + 1) * q[k];
        for (size_t k = cols; k < nblk * (use_tq1 ? 160 : 128); k++) q[k] = 0;
        bf_pair_acts(q, use_tq1 ? 160 : 128, nblk, qp);   /* the kernels' layout */
        int32_t got = (use_tq1 ? tq1 : tq2)(blocks[r], qp, nblk);
        if (got != want) {
            good = 0;
            puts_serial("# got ");
            puti(got);
            puts_serial(" want ");
            puti(want);
            puts_serial("\n");
        }
    }
    static const char *names[] = {"random", "all +1 x -128", "all -1 x -128", "all +1 x 127", "every byte value"};
    char what[48];
    const char *p = use_tq1 ? "TQ1 " : "TQ2 ", *n = names[pat];
    size_t i = 0;
    while (*p) what[i++] = *p++;
    while (*n) what[i++] = *n++;
    what[i] = 0;
    result(good, what, level, cols);
}

static void level(const char *name, row_fn tq2, row_fn tq1)
{
    for (int t = 0; t < 2; t++) {
        size_t B = t ? 160 : 128;
        for (size_t nb = 1; nb <= 9; nb++) rows_case(name, tq2, tq1, t, nb * B - nb % 3, RANDOM);
        rows_case(name, tq2, tq1, t, 1, RANDOM);   /* one column */
        rows_case(name, tq2, tq1, t, 4096, PLUS_MIN);
        rows_case(name, tq2, tq1, t, 11008, PLUS_MIN);
        rows_case(name, tq2, tq1, t, 11008, MINUS_MIN);
        rows_case(name, tq2, tq1, t, 11008, PLUS_MAX);
        rows_case(name, tq2, tq1, t, 4096, RANDOM);
        for (int rep = 0; rep < 64; rep++) rows_case(name, tq2, tq1, t, 5 * B, EVERY_BYTE);
    }
}

void emu_main(void);
void emu_main(void)
{
    outb(0x3f8 + 3, 0x80);   /* the serial port: 115200 baud, 8 bits, no parity, 1 stop bit */
    outb(0x3f8 + 0, 1);
    outb(0x3f8 + 1, 0);
    outb(0x3f8 + 3, 0x03);
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    int f = (b >> 16) & 1, bw = (b >> 30) & 1, vnni = (c >> 11) & 1;
    puts_serial("# cpu: avx512f ");
    putu((unsigned)f);
    puts_serial(" avx512bw ");
    putu((unsigned)bw);
    puts_serial(" avx512vnni ");
    putu((unsigned)vnni);
    puts_serial("\n");
    if (f && bw) level("avx512", bf_row_dot_tq2_avx512, bf_row_dot_tq1_avx512);
    if (f && bw && vnni)
        level("avx512vnni", bf_row_dot_tq2_avx512vnni, bf_row_dot_tq1_avx512vnni);
    puts_serial("1..");
    putu((unsigned)tests);
    puts_serial("\n# emu-done: ");
    putu((unsigned)(tests - failed));
    puts_serial(" passed, ");
    putu((unsigned)failed);
    puts_serial(" failed\n");
    while (!(inb(0x3f8 + 5) & 0x40)) {}   /* every byte sent before the machine stops */
}

/* util.c — allocation, a clock, strerror for messages. */
#include "bf/util.h"
#include "bf/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

void *bf_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) bf_out_of_memory();
    return p;
}

void *bf_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) bf_out_of_memory();
    return p;
}

void *bf_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) bf_out_of_memory();
    return p;
}

char *bf_xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) bf_out_of_memory();
    return d;
}

void *bf_aligned_alloc(size_t n)
{
    void *p = NULL;
    int rc = posix_memalign(&p, 64, n ? (n + 63) / 64 * 64 : 64);
    if (rc) {
        bf_err("cannot allocate %zu bytes: %s", n, strerror(rc));
        return NULL;
    }
    return p;
}

void bf_aligned_free(void *p) { free(p); }

void *bf_aligned_scratch(void **buf, size_t *cap, size_t n)
{
    if (n > *cap) {
        bf_aligned_free(*buf);
        *cap = 0;
        *buf = bf_aligned_alloc(n);
        if (!*buf) return NULL;
        *cap = n;
    }
    return *buf;
}

void *bf_pages_alloc(size_t n)
{
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        bf_err("cannot allocate %zu bytes: %s", n, strerror(errno));
        return NULL;
    }
    return p;
}

void bf_pages_free(void *p, size_t n)
{
    if (p) munmap(p, n ? n : 1);
}

double bf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *bf_strerror(int e)
{
    static _Thread_local char buf[128];
    snprintf(buf, sizeof buf, "%s", strerror(e));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z')) buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

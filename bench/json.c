/* bench/json.c — the JSON reader timed, and its peak memory, on real and
 * hostile documents (bench/json-reader).
 *
 *   json gen KIND BYTES FILE   writes a hostile safetensors header of about
 *       BYTES bytes (the bulk in an extra key "x" of a zero-byte tensor
 *       "a", which the reader accepts and ignores):
 *         deep      one chain of '[' then as many ']'
 *         nest      arrays nested 29 deep, side by side, 65,536 an array
 *                   (within every limit: the most containers per byte)
 *         flatnum   one array of 0s (more entries than a container may hold)
 *         nestnum   arrays of 65,536 0s, side by side
 *         flatkeys  one object of keys "k0", "k1", ... (more entries than
 *                   a container may hold)
 *         nestkeys  objects of 65,536 such keys, side by side
 *         longstr   one string of 'x'
 *         tensors   entries "t0", "t1", ... of zero-byte U8 tensors (a valid
 *                   safetensors header: its own top level has no entry limit)
 *         metakeys  a __metadata__ object of 65,536 keys, then tensors
 *   json run MODE FILE         parses FILE and prints seconds (the median of
 *       runs that add up to at least 0.3 s, or one run), extra_mib (peak
 *       resident memory above that before the first parse), ok and the error
 *       message if any.  MODE:
 *         bf        bf_json_parse, the library's reader (the manifest's)
 *         st        bf_st_data_len on 8 size bytes + FILE: the safetensors
 *                   header as bf-import reads it
 *         jansson   jansson's json_loadb alone (JSON_REJECT_DUPLICATES |
 *                   JSON_DECODE_ANY), no limits, no bf_val
 */
#include "bf/error.h"
#include "bf/interop.h"
#include "bf/json.h"
#include "bf/val.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double rss_mib(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static double peak_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static void die(const char *what)
{
    fprintf(stderr, "json: %s\n", what);
    exit(2);
}

/* ------------------------------------------------------------- generate */

typedef struct {
    FILE *f;
    size_t n;
} out_t;

static void put(out_t *o, const char *s)
{
    size_t l = strlen(s);
    if (fwrite(s, 1, l, o->f) != l) die("write error");
    o->n += l;
}

/* the bulk goes into an extra key of a zero-byte tensor, which the
 * safetensors reader accepts and ignores */
#define OPEN "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":"

static void gen(const char *kind, size_t bytes, const char *path)
{
    out_t o = {fopen(path, "wb"), 0};
    if (!o.f) die("cannot open the output");
    size_t room = bytes - sizeof OPEN - 8;
    char b[128];
    if (strcmp(kind, "deep") == 0) {
        put(&o, OPEN);
        size_t k = room / 2;
        for (size_t i = 0; i < k; i++) put(&o, "[");
        for (size_t i = 0; i < k; i++) put(&o, "]");
        put(&o, "}}");
    } else if (strcmp(kind, "nest") == 0 || strcmp(kind, "nestnum") == 0 || strcmp(kind, "nestkeys") == 0) {
        /* groups of 65,536 items, side by side in an outer array */
        int keys = kind[4] == 'k';
        char item[128];
        if (kind[4] == '\0') {
            for (int d = 0; d < 29; d++) item[d] = '[';
            for (int d = 0; d < 29; d++) item[29 + d] = ']';
            item[58] = 0;
        } else strcpy(item, "0");
        put(&o, OPEN);
        put(&o, keys ? "[{" : "[[");
        for (size_t per = 0; o.n + 64 < bytes; per++) {
            if (per == 65536) {
                put(&o, keys ? "},{" : "],[");
                per = 0;
            } else if (per) put(&o, ",");
            if (keys) snprintf(item, sizeof item, "\"k%zu\":0", per);
            put(&o, item);
        }
        put(&o, keys ? "}]}}" : "]]}}");
    } else if (strcmp(kind, "flatnum") == 0) {
        put(&o, OPEN "[0");
        while (o.n + 8 < bytes) put(&o, ",0");
        put(&o, "]}}");
    } else if (strcmp(kind, "flatkeys") == 0) {
        put(&o, OPEN "{");
        for (size_t k = 0; o.n + 64 < bytes; k++) {
            snprintf(b, sizeof b, "%s\"k%zu\":0", k ? "," : "", k);
            put(&o, b);
        }
        put(&o, "}}}");
    } else if (strcmp(kind, "longstr") == 0) {
        put(&o, OPEN "\"");
        char chunk[4097];
        memset(chunk, 'x', 4096);
        chunk[4096] = 0;
        while (o.n + 4096 + 8 < bytes) put(&o, chunk);
        put(&o, "\"}}");
    } else if (strcmp(kind, "tensors") == 0 || strcmp(kind, "metakeys") == 0) {
        put(&o, "{");
        int first = 1;
        if (kind[0] == 'm') {
            put(&o, "\"__metadata__\":{");
            for (int k = 0; k < 65536; k++) {
                snprintf(b, sizeof b, "%s\"k%d\":\"\"", k ? "," : "", k);
                put(&o, b);
            }
            put(&o, "}");
            first = 0;
        }
        for (size_t k = 0; o.n + 128 < bytes; k++) {
            snprintf(b, sizeof b, "%s\"t%zu\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}", first ? "" : ",", k);
            put(&o, b);
            first = 0;
        }
        put(&o, "}");
    } else die("unknown kind");
    if (fclose(o.f)) die("write error");
}

/* ------------------------------------------------------------------ run */

static char *slurp(const char *path, size_t pre, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open the input");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc(pre + (size_t)n + 1);
    if (!p || fread(p + pre, 1, (size_t)n, f) != (size_t)n) die("cannot read the input");
    fclose(f);
    p[pre + (size_t)n] = 0;
    *len = (size_t)n;
    return p;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* one parse: 1 ok, 0 refused (msg set) */
static int once(const char *mode, char *buf, size_t len, char *msg, size_t msz)
{
    msg[0] = 0;
    if (strcmp(mode, "bf") == 0) {
        bf_val *v = bf_json_parse(buf + 8, len, "doc");
        if (!v) { snprintf(msg, msz, "%s", bf_errmsg()); return 0; }
        bf_val_free(v);
        return 1;
    }
    if (strcmp(mode, "st") == 0) {
        for (int j = 0; j < 8; j++) buf[j] = (char)((uint64_t)len >> 8 * j);
        uint64_t dl;
        if (bf_st_data_len((const uint8_t *)buf, len + 8, "doc", &dl)) { snprintf(msg, msz, "%s", bf_errmsg()); return 0; }
        return 1;
    }
    if (strcmp(mode, "jansson") == 0) {
        json_error_t e;
        json_t *j = json_loadb(buf + 8, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
        if (!j) { snprintf(msg, msz, "%s at byte %d", e.text, e.position); return 0; }
        json_decref(j);
        return 1;
    }
    die("unknown mode");
    return 0;
}

static void run(const char *mode, const char *path)
{
    size_t len;
    char *buf = slurp(path, 8, &len);
    memset(buf, 0, 8);
    double base = rss_mib();
    char msg[512];
    double t[1000];
    int n = 0, ok = 0;
    double total = 0;
    do {
        double t0 = now();
        ok = once(mode, buf, len, msg, sizeof msg);
        t[n] = now() - t0;
        total += t[n++];
    } while (total < 0.3 && n < 1000 && t[0] < 0.1);
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '|') *c = ' ';
    printf("seconds=%.6f runs=%d extra_mib=%.1f bytes=%zu ok=%d msg=%s\n", t[n / 2], n, peak_mib() - base, len, ok, msg);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "gen") == 0) gen(argv[2], strtoull(argv[3], NULL, 10), argv[4]);
    else if (argc == 4 && strcmp(argv[1], "run") == 0) run(argv[2], argv[3]);
    else {
        fputs("usage: json gen KIND BYTES FILE | json run bf|st|jansson FILE\n", stderr);
        return 2;
    }
    return 0;
}

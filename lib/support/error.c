/* error.c — the calling thread's one error message (bf/error.h). */
#include "bf/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char errbuf[512];

int bf_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

int bf_err_context(const char *fmt, ...)
{
    char why[sizeof errbuf], ctx[sizeof errbuf];
    snprintf(why, sizeof why, "%s", errbuf[0] ? errbuf : "unknown error");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    size_t n = strlen(ctx);
    if (n >= sizeof errbuf) n = sizeof errbuf - 1;
    memcpy(errbuf, ctx, n);
    snprintf(errbuf + n, sizeof errbuf - n, "%.*s", (int)(sizeof errbuf - 1 - n), why);
    return -1;
}

const char *bf_errmsg(void) { return errbuf[0] ? errbuf : "unknown error"; }

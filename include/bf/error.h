/* bf/error.h — how the library reports failure (part: support).
 *
 * One convention everywhere: a function that can fail returns -1 (or NULL,
 * or NaN where it returns a number, as its header says) after setting the
 * one message of the calling thread with bf_err().  The library never prints
 * and never exits; a program reads the message with bf_errmsg() and decides
 * (cmd/common/cli.h: bf_die_lib() prints "bf-NAME: message" and exits 1).
 * Messages are lower case, one line, with offending names quoted. */
#ifndef BF_ERROR_H
#define BF_ERROR_H

#if defined(__GNUC__)
#define BF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BF_PRINTF(a, b)
#endif

/* Sets the message; returns -1. */
int bf_err(const char *fmt, ...) BF_PRINTF(1, 2);
/* Puts context before the current message ("'blk.0.wq': " + message); returns -1. */
int bf_err_context(const char *fmt, ...) BF_PRINTF(1, 2);
const char *bf_errmsg(void);

#endif

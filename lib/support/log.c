/* log.c — the out-of-memory hook (bf/log.h): the only place in the library
 * that writes to stderr or ends the process. */
#include "bf/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *log_name = "bitforge";
static void (*oom_hook)(void);

void bf_log_set_name(const char *name) { log_name = name ? name : "bitforge"; }

void bf_log_set_oom_hook(void (*hook)(void)) { oom_hook = hook; }

_Noreturn void bf_out_of_memory(void)
{
    if (oom_hook) oom_hook();
    char msg[128];
    int n = snprintf(msg, sizeof msg, "%s: out of memory\n", log_name);
    ssize_t r = write(2, msg, n > 0 ? (size_t)n : 0);
    (void)r;
    _exit(1);
}

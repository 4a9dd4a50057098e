/* bf/log.h — the library's one way out (part: support).
 *
 * The library prints nothing: progress and metrics reach programs through
 * callbacks (bf/train.h), failures through return values (bf/error.h).  The
 * one exception is running out of memory in a small allocation (bf/util.h's
 * bf_x* functions), where no caller could do better than stop: the library
 * calls the out-of-memory hook, which must not return.  The default hook
 * writes "NAME: out of memory" to stderr and ends the process with status 1
 * at once (_exit: no atexit handlers, which may themselves wait on memory,
 * and no buffered output flushed, so no partial stream). */
#ifndef BF_LOG_H
#define BF_LOG_H

/* The name the default hook prints (programs set their own, "bf-eval"). */
void bf_log_set_name(const char *name);
/* Replaces the hook (NULL: the default). */
void bf_log_set_oom_hook(void (*hook)(void));
_Noreturn void bf_out_of_memory(void);

#endif

/*
 * log.h — one log line per event (tr_log_*)
 *
 * Every module logs through here; the daemon chooses the sink (stderr or
 * syslog) and the level at start and on reload.  Lines about a ticket
 * carry "ticket=TKT-000123" so one grep finds a ticket's whole story.
 * Message bodies are never logged at info level or above.
 * Thread-safe: a line is written with one call.
 */
#ifndef TR_LOG_H
#define TR_LOG_H

#include <stdbool.h>

typedef enum {
	TR_LOG_ERROR = 0,
	TR_LOG_WARNING,
	TR_LOG_INFO,
	TR_LOG_DEBUG,
} tr_log_level;

/* Where lines go: stderr (default) or syslog (facility mail). */
void tr_log_open(bool syslog, const char *ident);
void tr_log_set_level(tr_log_level level);
bool tr_log_parse_level(const char *text, tr_log_level *level_r);
tr_log_level tr_log_get_level(void);

void tr_log(tr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define tr_log_error(...) tr_log(TR_LOG_ERROR, __VA_ARGS__)
#define tr_log_warning(...) tr_log(TR_LOG_WARNING, __VA_ARGS__)
#define tr_log_info(...) tr_log(TR_LOG_INFO, __VA_ARGS__)
#define tr_log_debug(...) tr_log(TR_LOG_DEBUG, __VA_ARGS__)

#endif

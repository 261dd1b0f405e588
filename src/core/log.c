/* log.c — stderr or syslog lines; see log.h */
#include "core/log.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static gint level = TR_LOG_INFO;
static gint to_syslog;
static GMutex lock;

static const char *const names[] = { "error", "warning", "info", "debug" };

void tr_log_open(bool use_syslog, const char *ident)
{
	if (use_syslog) {
		openlog(ident != NULL ? ident : "triage", LOG_PID | LOG_NDELAY, LOG_MAIL);
		g_atomic_int_set(&to_syslog, 1);
	} else {
		g_atomic_int_set(&to_syslog, 0);
	}
}

void tr_log_set_level(tr_log_level l)
{
	g_atomic_int_set(&level, (gint)l);
}

tr_log_level tr_log_get_level(void)
{
	return (tr_log_level)g_atomic_int_get(&level);
}

bool tr_log_parse_level(const char *text, tr_log_level *level_r)
{
	for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
		if (g_ascii_strcasecmp(text, names[i]) == 0) {
			*level_r = (tr_log_level)i;
			return true;
		}
	}
	return false;
}

void tr_log(tr_log_level l, const char *fmt, ...)
{
	if ((gint)l > g_atomic_int_get(&level))
		return;
	va_list ap;
	va_start(ap, fmt);
	char *text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	/* One line: no newlines from data. */
	for (char *p = text; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
	if (g_atomic_int_get(&to_syslog)) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
		syslog(prio[l], "%s", text);
	} else {
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		g_mutex_lock(&lock);
		fprintf(stderr, "%s triage[%s]: %s\n", stamp, names[l], text);
		fflush(stderr);
		g_mutex_unlock(&lock);
	}
	g_free(text);
}

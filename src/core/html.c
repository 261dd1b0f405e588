/* STUB */
#include "core/html.h"
char *tr_html_to_text(tr_pool *pool, const char *html, size_t len, size_t max_bytes, gboolean *truncated_r)
{
	if (len > max_bytes) { len = max_bytes; *truncated_r = TRUE; } else *truncated_r = FALSE;
	char *s = tr_pool_strndup(pool, html, len);
	for (char *p = s; *p; p++) if (*p == '<' || *p == '>') *p = ' ';
	return s;
}

/* STUB — replaced by the text branch */
#ifndef TR_HTML_H
#define TR_HTML_H
#include <glib.h>
#include "core/pool.h"
char *tr_html_to_text(tr_pool *pool, const char *html, size_t len, size_t max_bytes, gboolean *truncated_r);
#endif

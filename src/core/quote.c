/* STUB */
#include "core/quote.h"
void tr_quote_split(tr_pool *pool, const char *text, size_t len, tr_quote_parts *out)
{
	out->new_text = tr_pool_strndup(pool, text, len); out->new_len = len;
	out->quoted = ""; out->quoted_len = 0; out->signature = ""; out->signature_len = 0; out->marker = NULL;
}

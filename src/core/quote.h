/* STUB — replaced by the text branch */
#ifndef TR_QUOTE_H
#define TR_QUOTE_H
#include <stddef.h>
#include "core/pool.h"
typedef struct {
	const char *new_text;  size_t new_len;
	const char *quoted;    size_t quoted_len;
	const char *signature; size_t signature_len;
	const char *marker;
} tr_quote_parts;
void tr_quote_split(tr_pool *pool, const char *text, size_t len, tr_quote_parts *out);
#endif

/* fuzz_quote.c — libFuzzer target for tr_quote_split
 *
 * Checked: the three parts are NUL-terminated with the lengths reported
 * (when the input has no NUL), valid UTF-8 when the input is, without a
 * leading blank line or trailing whitespace; marker set iff something is
 * quoted; nothing invented (each part is made of input bytes plus the
 * blank lines joining runs).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "core/quote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_part(const char *s, size_t len, gboolean has_nul, gboolean valid)
{
	if (s == NULL)
		abort();
	if (!has_nul && strlen(s) != len)
		abort();
	if (valid && !g_utf8_validate(s, (gssize)len, NULL))
		abort();
	if (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\n' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		abort();
	if (len > 0 && s[0] == '\n')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	gboolean has_nul = memchr(data, 0, size) != NULL;
	gboolean valid = g_utf8_validate(text, (gssize)size, NULL);
	tr_pool *pool = tr_pool_new(0);
	tr_quote_parts q;
	tr_quote_split(pool, text, size, &q);
	check_part(q.new_text, q.new_len, has_nul, valid);
	check_part(q.quoted, q.quoted_len, has_nul, valid);
	check_part(q.signature, q.signature_len, has_nul, valid);
	if ((q.marker != NULL) != (q.quoted_len > 0))
		abort();
	/* runs are joined with "\n\n": at most two extra bytes per input line */
	if (q.new_len + q.quoted_len + q.signature_len > 3 * size)
		abort();
	tr_pool_free(&pool);
	return 0;
}

/* fuzz_html.c — libFuzzer target for tr_html_to_text (and the quote
 * splitter on its output, which is what the normalizer does).
 *
 * The first two bytes choose max_bytes (0xFFFF = unlimited), the rest is
 * the HTML.  Checked: valid UTF-8, at most max_bytes, no control bytes
 * other than LF and TAB, no trailing whitespace.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "core/html.h"
#include "core/quote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t max = ((size_t)data[0] << 8) | data[1];
	if (max == 0xFFFF)
		max = SIZE_MAX;
	tr_pool *pool = tr_pool_new(0);
	gboolean truncated;
	char *text = tr_html_to_text(pool, (const char *)data + 2, size - 2, max, &truncated);
	size_t len = strlen(text);
	if (len > max || !g_utf8_validate(text, (gssize)len, NULL))
		abort();
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)text[i];
		if ((b < 0x20 && b != '\n' && b != '\t') || b == 0x7f)
			abort();
	}
	if (len > 0 && g_ascii_isspace(text[len - 1]))
		abort();
	tr_quote_parts q;
	tr_quote_split(pool, text, len, &q);
	if (q.new_len + q.quoted_len + q.signature_len > 3 * len + 4)
		abort();
	tr_pool_free(&pool);
	return 0;
}

/* fuzz_normalize.c — libFuzzer target: any bytes through the MIME normalizer */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/lang.h"
#include "core/normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tr_norm *norm;
static tr_lang *lang;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (norm == NULL) {
		tr_norm_global_init();
		lang = tr_lang_new(NULL, NULL, NULL);
		/* Small limits so the fuzzer reaches every limit path quickly. */
		tr_norm_limits limits;
		tr_conftab_defaults(tr_norm_limits_table, &limits);
		limits.mime_depth = 8;
		limits.mime_parts = 64;
		limits.text_chars = 4096;
		limits.header_bytes = 4096;
		limits.html_bytes = 16384;
		norm = tr_norm_new(&limits, lang, NULL);
	}
	GError *error = NULL;
	tr_msg *msg = tr_norm_parse(norm, TR_CHANNEL_FILE, (const char *)data, size, &error);
	if (msg == NULL) {
		if (size != 0)
			abort();  /* only empty input may be refused */
		g_clear_error(&error);
		return 0;
	}
	if (!g_utf8_validate(msg->text, -1, NULL) || !g_utf8_validate(msg->subject, -1, NULL) ||
	    !g_utf8_validate(msg->text_new, -1, NULL) || strlen(msg->content_hash) != 64)
		abort();
	tr_msg_free(&msg);
	return 0;
}

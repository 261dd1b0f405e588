/* fuzz_rules.c — libFuzzer target: any bytes as a rule file; what loads is
 * matched against a fixed message (prefilter, TRE, approximate windows). */
#include <glib.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/normalize.h"
#include "core/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tr_norm *norm;
static tr_msg *msg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (norm == NULL) {
		setlocale(LC_CTYPE, "C.UTF-8");
		norm = tr_norm_new(NULL, NULL, NULL);
		static const char raw[] =
			"From: Zoë <zoe@customer.example>\nX-Priority: 1\nSubject: URGENT: refnud for invoice 42\n"
			"Content-Type: text/plain; charset=utf-8\n\nHello, our site is down and nobody can log in.\n"
			"I was charged twice, this is not urgent but the pasword reset fails.\n"
			"Grüße aus München, atención al cliente no responde.\n\n"
			"On Mon, 16 Nov 2026 at 10:00, Support <s@x.example> wrote:\n> ticket TKT-000042\n";
		msg = tr_norm_parse(norm, TR_CHANNEL_FILE, raw, sizeof(raw) - 1, NULL);
	}
	tr_diag *diag = tr_diag_new();
	tr_rules *rules = tr_rules_load_data("fuzz.conf", (const char *)data, size, NULL, diag);
	if (rules == NULL && tr_diag_error_count(diag) == 0)
		abort();  /* a refusal always says why */
	if (rules != NULL) {
		size_t n = 0;
		tr_rule_hit *hits = tr_rules_match(rules, msg, &n);
		for (size_t i = 0; i < n; i++) {
			if (hits[i].match == NULL || !g_utf8_validate(hits[i].match, -1, NULL))
				abort();
		}
		tr_rules_free(&rules);
	}
	tr_diag_free(&diag);
	return 0;
}

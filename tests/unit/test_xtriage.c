/* test_xtriage.c — what the mail path writes and reads: X-Triage-* header
 * values, ticket tags (core/xtriage), and listen addresses (core/netaddr). */
#include "testutil.h"

#include <gmime/gmime.h>
#include <string.h>

#include "core/netaddr.h"
#include "core/rules.h"
#include "core/xtriage.h"

static void test_listen_parse(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		bool ok;
		bool unix_socket;
		const char *host, *port, *milter;
	} cases[] = {
		{ "inet:127.0.0.1:10027", true, false, "127.0.0.1", "10027", "inet:10027@127.0.0.1" },
		{ "inet:10030@127.0.0.1", true, false, "127.0.0.1", "10030", "inet:10030@127.0.0.1" },
		{ "inet:10030@localhost", true, false, "localhost", "10030", "inet:10030@localhost" },
		{ "inet:2525", true, false, "", "2525", "inet:2525" },
		{ "127.0.0.1:24", true, false, "127.0.0.1", "24", "inet:24@127.0.0.1" },
		{ "inet:[::1]:24", true, false, "::1", "24", "inet6:24@::1" },
		{ "inet6:24@::1", true, false, "::1", "24", "inet6:24@::1" },
		{ "unix:/run/triage/lmtp", true, true, NULL, NULL, "unix:/run/triage/lmtp" },
		{ "local:/run/triage/milter", true, true, NULL, NULL, "unix:/run/triage/milter" },
		{ "inet:127.0.0.1:0", true, false, "127.0.0.1", "0", NULL },
		{ "", false, false, NULL, NULL, NULL },
		{ "unix:", false, false, NULL, NULL, NULL },
		{ "/run/x", false, false, NULL, NULL, NULL },
		{ "inet:127.0.0.1:70000", false, false, NULL, NULL, NULL },
		{ "inet:127.0.0.1:smtp", false, false, NULL, NULL, NULL },
		{ "inet:bad host:25", false, false, NULL, NULL, NULL },
		{ "inet:10030@", true, false, "", "10030", NULL },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		tr_netaddr addr;
		GError *error = NULL;
		bool ok = tr_netaddr_parse(cases[i].spec, &addr, &error);
		if (ok != cases[i].ok)
			fail_msg("'%s': parse %s", cases[i].spec, ok ? "succeeded" : error->message);
		if (!ok) {
			assert_non_null(error);
			g_clear_error(&error);
			continue;
		}
		assert_int_equal(addr.family == TR_NETADDR_UNIX, cases[i].unix_socket);
		if (cases[i].host != NULL) {
			assert_string_equal(addr.host, cases[i].host);
			assert_string_equal(addr.port, cases[i].port);
		}
		if (cases[i].milter != NULL) {
			char *spec = tr_netaddr_milter_spec(&addr);
			assert_string_equal(spec, cases[i].milter);
			g_free(spec);
		}
	}
	/* A socket path that does not fit in sun_path. */
	char *long_path = g_strdup_printf("unix:/%0200d", 7);
	assert_false(tr_netaddr_parse(long_path, &(tr_netaddr){ 0 }, NULL));
	g_free(long_path);
}

static void test_header_value(void **state)
{
	(void)state;
	tr_pool *pool = tr_pool_new(0);
	assert_string_equal(tr_xtriage_value(pool, "billing"), "billing");
	assert_string_equal(tr_xtriage_value(pool, "a\r\nX-Evil: yes"), "a X-Evil: yes");
	assert_string_equal(tr_xtriage_value(pool, "  a \t b\x01 "), "a b");
	assert_string_equal(tr_xtriage_value(pool, NULL), "");
	const char *enc = tr_xtriage_value(pool, "f\xc3\xa9" "d\xc3\xa9ration");
	assert_true(g_str_has_prefix(enc, "=?"));
	for (const char *p = enc; *p != '\0'; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	char *back = g_mime_utils_header_decode_text(NULL, enc);
	assert_string_equal(back, "f\xc3\xa9" "d\xc3\xa9ration");
	g_free(back);
	/* Invalid UTF-8 is repaired, not passed on. */
	const char *bad = tr_xtriage_value(pool, "x\xff\xfey");
	for (const char *p = bad; *p != '\0'; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	tr_pool_free(&pool);
}

static void test_find_ticket(void **state)
{
	(void)state;
	char buf[64];
	assert_true(tr_xtriage_find_ticket("Re: [TKT-000123] printer", "TKT", buf, sizeof(buf)));
	assert_string_equal(buf, "TKT-000123");
	assert_true(tr_xtriage_find_ticket("AW: [tkt-7] x", "TKT", buf, sizeof(buf)));
	assert_string_equal(buf, "tkt-7");
	assert_true(tr_xtriage_find_ticket("[P1] [TKT-42]", "TKT", buf, sizeof(buf)));
	assert_string_equal(buf, "TKT-42");
	assert_false(tr_xtriage_find_ticket("TKT-000123 without brackets", "TKT", buf, sizeof(buf)));
	assert_false(tr_xtriage_find_ticket("[TKT-] [TKT-12a] [TKTX-1] [", "TKT", buf, sizeof(buf)));
	assert_false(tr_xtriage_find_ticket("[SUP-1]", "TKT", buf, sizeof(buf)));
	assert_false(tr_xtriage_find_ticket(NULL, "TKT", buf, sizeof(buf)));
	assert_false(tr_xtriage_find_ticket("[TKT-1234567890123456789]", "TKT", buf, sizeof(buf)));
	assert_false(tr_xtriage_find_ticket("[TKT-1]", "TKT", buf, 4));
}

static void test_triage_headers(void **state)
{
	(void)state;
	tr_diag *diag = tr_diag_new();
	static const char rules_text[] =
		"[rule urgency.urgent]\nfield = subject\nphrases = urgent\nurgency = high\n"
		"[rule a-rather-long-rule-name-number-one]\nfield = subject\nphrases = urgent\nscore = 1\n"
		"[rule a-rather-long-rule-name-number-two]\nfield = subject\nphrases = urgent\nscore = 1\n"
		"[rule a-rather-long-rule-name-number-three]\nfield = subject\nphrases = urgent\nscore = 1\n";
	tr_rules *rules = tr_rules_load_data("t.conf", rules_text, strlen(rules_text), NULL, diag);
	if (rules == NULL) {
		char *text = tr_diag_join(diag);
		fail_msg("rules: %s", text);
	}
	tr_msg *msg = tr_msg_new(TR_CHANNEL_FILE);
	msg->subject = "urgent";
	size_t n_hits = 0;
	tr_rule_hit *hits = tr_rules_match(rules, msg, &n_hits);
	assert_int_equal(n_hits, 4);
	tr_decision d;
	memset(&d, 0, sizeof(d));
	d.priority = 2;
	d.category = "billing";
	d.tier = "L1";
	d.team = "billing\r\nBcc: evil@example.org";
	d.sentiment.compound = 0.0;
	d.hits = hits;
	d.n_hits = n_hits;

	tr_xtriage_header h[TR_XTRIAGE_HEADERS_MAX];
	size_t n = tr_xtriage_headers(msg->pool, &d, "", 200, "\r\n\t", h);
	assert_int_equal(n, 6);   /* no ticket, no escalation */
	assert_string_equal(h[0].name, "X-Triage-Priority");
	assert_string_equal(h[0].value, "P2");
	assert_string_equal(h[3].value, "billing Bcc: evil@example.org");
	assert_string_equal(h[4].value, "neutral; compound=0.00");
	const char *rules_value = h[5].value;
	assert_string_equal(h[5].name, "X-Triage-Rules");
	/* Folded under 78 columns, and nothing but the fold breaks a line. */
	size_t column = strlen("X-Triage-Rules: ");
	for (const char *p = rules_value; *p != '\0'; p++) {
		if (*p == '\r') {
			assert_true(p[1] == '\n' && p[2] == '\t');
			p += 2;
			column = 1;
			continue;
		}
		assert_true(*p != '\n');
		assert_true(++column <= 78);
	}
	assert_non_null(strstr(rules_value, "a-rather-long-rule-name-number-three"));

	/* Bounded: a short limit cuts with "...". */
	d.escalate = true;
	n = tr_xtriage_headers(msg->pool, &d, "TKT-000001", 40, "\n\t", h);
	assert_int_equal(n, 8);
	assert_string_equal(h[5].name, "X-Triage-Escalate");
	assert_string_equal(h[6].value, "TKT-000001");
	assert_true(g_str_has_suffix(h[7].value, ", ..."));
	assert_true(strlen(h[7].value) <= 40 + 2);
	n = tr_xtriage_headers(msg->pool, &d, NULL, 16, "\n\t", h);
	assert_string_equal(h[n - 1].value, "...");
	d.n_hits = 0;
	n = tr_xtriage_headers(msg->pool, &d, NULL, 200, "\n\t", h);
	assert_string_equal(h[n - 1].value, "none");

	tr_msg_free(&msg);
	tr_rules_free(&rules);
	tr_diag_free(&diag);
}


int main(void)
{
	g_mime_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_parse),
		cmocka_unit_test(test_header_value),
		cmocka_unit_test(test_find_ticket),
		cmocka_unit_test(test_triage_headers),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return failed;
}

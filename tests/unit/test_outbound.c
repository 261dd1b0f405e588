/*
 * test_outbound.c — what customers and teams receive: acknowledgments in
 * five languages, threading and loop headers, 7-bit CRLF mail, encoded
 * non-ASCII subjects, header injection neutralised, the original attached
 * byte for byte to escalation forwards.  The shipped templates.
 */
#include "testutil.h"

#include <gmime/gmime.h>
#include <locale.h>
#include <string.h>

#include "core/engine.h"
#include "store/context.h"
#include "store/ingest.h"
#include "store/outbox.h"

#define T0 1794819600 /* Monday 2026-11-16 09:00 UTC */

static tr_engine *engine;
static tr_store *store;
static tr_ingest *ing;
static char *dir;

static int setup(void **state)
{
	(void)state;
	setlocale(LC_CTYPE, "C.UTF-8");
	char *conf = tr_test_path("conf/triage.conf");
	engine = tr_test_engine(conf);
	g_free(conf);
	if (engine == NULL)
		return -1;
	dir = g_dir_make_tmp("triage-outbound-XXXXXX", NULL);
	char *path = g_build_filename(dir, "t.db", NULL);
	tr_store_settings settings;
	tr_store_settings_default(&settings, path);
	store = tr_store_open(&settings, NULL);
	tr_store_settings_clear(&settings);
	g_free(path);
	tr_outbox_options options = { .message_domain = "example.test", .rooms = true };
	ing = tr_ingest_new(store, engine, &options);
	return store != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tr_ingest_free(&ing);
	tr_store_close(&store);
	tr_engine_free(&engine);
	tr_test_rmtree(&dir);
	return 0;
}

static int64_t ingest_raw(const char *raw)
{
	tr_ingest_input in = { .channel = TR_CHANNEL_FILE, .data = raw, .len = strlen(raw), .now = T0 };
	tr_ingest_result res;
	GError *error = NULL;
	if (!tr_ingest_message(ing, &in, &res, &error))
		fail_msg("ingest: %s", error->message);
	return res.ticket_id;
}

/* The outbox row of a ticket and kind. */
static bool find_row(int64_t ticket, const char *kind, tr_outbox_row *out)
{
	tr_outbox_iter *it = tr_outbox_list_init(store, false, 0);
	bool found = false;
	while (!found && tr_outbox_list_next(it, out)) {
		if (out->ticket_id == ticket && strcmp(out->kind, kind) == 0)
			found = true;
		else
			tr_outbox_row_clear(out);
	}
	tr_outbox_list_deinit(&it);
	return found;
}

static char *render(int64_t ticket, const char *kind, size_t *len_r, tr_outbox_row *row_out)
{
	tr_outbox_row row;
	if (!find_row(ticket, kind, &row))
		fail_msg("no %s row for ticket %" G_GINT64_FORMAT, kind, (gint64)ticket);
	GError *error = NULL;
	char *text = tr_context_render(store, engine, &row, T0 + 10, len_r, &error);
	if (text == NULL)
		fail_msg("render: %s", error->message);
	if (row_out != NULL)
		*row_out = row;
	else
		tr_outbox_row_clear(&row);
	return text;
}

static GMimeMessage *parse(const char *data, size_t len)
{
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *m = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	assert_non_null(m);
	return m;
}

static void assert_wire_format(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)data[i] >= 0x80)
			fail_msg("8-bit byte at %zu", i);
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			fail_msg("bare LF at %zu", i);
	}
	/* No header line longer than 998 characters (RFC 5322). */
	const char *end = strstr(data, "\r\n\r\n");
	assert_non_null(end);
	for (const char *p = data; p < end;) {
		const char *nl = strstr(p, "\r\n");
		assert_true(nl - p <= 998);
		p = nl + 2;
	}
}

static char *body_text(GMimeMessage *m)
{
	GMimeObject *part = g_mime_message_get_mime_part(m);
	if (GMIME_IS_MULTIPART(part))
		part = g_mime_multipart_get_part(GMIME_MULTIPART(part), 0);
	assert_true(GMIME_IS_TEXT_PART(part));
	return g_mime_text_part_get_text(GMIME_TEXT_PART(part));
}

static void test_ack_languages(void **state)
{
	(void)state;
	static const struct { const char *from, *subject, *body, *expect_body, *lang; } cases[] = {
		{ "ana@shop-en.example", "My invoice is wrong",
		  "Hello, the invoice I received this month shows the wrong amount, please check it.",
		  "thank you for writing to us", "en" },
		{ "luis@tienda.example", "Mi factura está mal",
		  "Hola, la factura que recibí este mes tiene un importe incorrecto, por favor revísenla. Gracias.",
		  "gracias por escribirnos", "es" },
		{ "jan@laden.example", "Rechnung falsch",
		  "Guten Tag, die Rechnung von diesem Monat hat einen falschen Betrag, bitte prüfen Sie das. Danke.",
		  "vielen Dank für Ihre Nachricht", "de" },
		{ "luc@boutique.example", "Facture incorrecte",
		  "Bonjour, la facture que j'ai reçue ce mois-ci a un montant incorrect, merci de vérifier.",
		  "merci de nous avoir écrit", "fr" },
		{ "rita@loja.example", "Fatura errada",
		  "Olá, a fatura que recebi este mês está com o valor errado, por favor verifiquem. Obrigada.",
		  "obrigado por nos escrever", "pt" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *raw = g_strdup_printf("From: Customer <%s>\nTo: support@example.test\nSubject: %s\n"
		                            "Message-ID: <lang%zu@customer.example>\nReferences: <older%zu@customer.example>\n"
		                            "Content-Type: text/plain; charset=utf-8\n\n%s\n",
		                            cases[i].from, cases[i].subject, i, i, cases[i].body);
		int64_t ticket = ingest_raw(raw);
		size_t len;
		tr_outbox_row row;
		char *text = render(ticket, "ack", &len, &row);
		assert_wire_format(text, len);
		GMimeMessage *m = parse(text, len);
		char *want_subject = g_strdup_printf("[TKT-%06" G_GINT64_FORMAT "] %s", (gint64)ticket, cases[i].subject);
		assert_string_equal(g_mime_message_get_subject(m), want_subject);
		assert_string_equal(g_mime_message_get_message_id(m), row.message_id);
		char *irt = g_strdup_printf("<lang%zu@customer.example>", i);
		assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "In-Reply-To"), irt);
		assert_non_null(strstr(g_mime_object_get_header(GMIME_OBJECT(m), "References"), "older"));
		assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "Auto-Submitted"), "auto-replied");
		assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "X-Auto-Response-Suppress"), "All");
		assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "Precedence"), "bulk");
		assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "X-Triage-Loop"), "example.test");
		char *body = body_text(m);
		if (strstr(body, cases[i].expect_body) == NULL)
			fail_msg("%s ack body lacks '%s':\n%s", cases[i].lang, cases[i].expect_body, body);
		assert_non_null(strstr(body, want_subject + 1) != NULL ? body : strstr(body, "TKT-"));
		g_free(body);
		g_free(irt);
		g_free(want_subject);
		g_object_unref(m);
		g_free(text);
		tr_outbox_row_clear(&row);
		g_free(raw);
	}
}

static void test_header_injection(void **state)
{
	(void)state;
	/* An encoded subject that decodes to CR LF + a Bcc header. */
	const char *raw = "From: eve@evil.example\nTo: support@example.test\n"
	                  "Subject: =?UTF-8?Q?Hello=0D=0ABcc:_victim@other.example=0D=0AX-Evil:_1?=\n"
	                  "Message-ID: <inject@evil.example>\n\nHello there, a normal question about my order.\n";
	int64_t ticket = ingest_raw(raw);
	size_t len;
	char *text = render(ticket, "ack", &len, NULL);
	assert_wire_format(text, len);
	GMimeMessage *m = parse(text, len);
	assert_null(g_mime_object_get_header(GMIME_OBJECT(m), "Bcc"));
	assert_null(g_mime_object_get_header(GMIME_OBJECT(m), "X-Evil"));
	InternetAddressList *bcc = g_mime_message_get_bcc(m);
	assert_int_equal(internet_address_list_length(bcc), 0);
	assert_non_null(strstr(g_mime_message_get_subject(m), "Bcc: victim"));  /* shown as text */
	g_object_unref(m);
	g_free(text);
}

static void test_non_ascii_subject_encoded(void **state)
{
	(void)state;
	const char *raw = "From: =?UTF-8?Q?Zo=C3=AB?= <zoe@shop-fr.example>\nTo: support@example.test\n"
	                  "Subject: =?UTF-8?Q?Probl=C3=A8me_de_paiement_=E2=80=94_carte_refus=C3=A9e?=\n"
	                  "Message-ID: <utf8@shop-fr.example>\nContent-Type: text/plain; charset=utf-8\n\n"
	                  "Bonjour, ma carte est refusée depuis ce matin, je ne peux plus payer. Merci.\n";
	int64_t ticket = ingest_raw(raw);
	size_t len;
	char *text = render(ticket, "ack", &len, NULL);
	assert_wire_format(text, len);
	assert_non_null(strstr(text, "=?"));  /* encoded words on the wire */
	GMimeMessage *m = parse(text, len);
	char *want = g_strdup_printf("[TKT-%06" G_GINT64_FORMAT "] Problème de paiement — carte refusée", (gint64)ticket);
	assert_string_equal(g_mime_message_get_subject(m), want);
	char *body = body_text(m);
	assert_non_null(strstr(body, "Bonjour Zoë"));
	assert_non_null(strstr(body, "refusée"));
	g_free(body);
	g_free(want);
	g_object_unref(m);
	g_free(text);
}

static void test_forward_attaches_original(void **state)
{
	(void)state;
	const char *raw = "From: Ops <ops@bigcorp.example>\nTo: support@example.test\nSubject: Site down\n"
	                  "Message-ID: <fwd@bigcorp.example>\nX-Original-Header: kept\n"
	                  "Content-Type: text/plain; charset=utf-8\n\n"
	                  "Our site is down for all users and nobody can log in. Grüße.\n";
	int64_t ticket = ingest_raw(raw);
	size_t len;
	tr_outbox_row row;
	char *text = render(ticket, "forward", &len, &row);
	assert_string_equal(row.template_name, "escalation");
	GMimeMessage *m = parse(text, len);
	assert_null(g_mime_object_get_header(GMIME_OBJECT(m), "In-Reply-To"));  /* internal: not the customer's thread */
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "Auto-Submitted"), "auto-generated");
	GMimeObject *top = g_mime_message_get_mime_part(m);
	assert_true(GMIME_IS_MULTIPART(top));
	assert_int_equal(g_mime_multipart_get_count(GMIME_MULTIPART(top)), 2);
	GMimeObject *att = g_mime_multipart_get_part(GMIME_MULTIPART(top), 1);
	GMimeContentType *ct = g_mime_object_get_content_type(att);
	char *mime_type = g_mime_content_type_get_mime_type(ct);  /* caller frees */
	assert_string_equal(mime_type, "message/rfc822");
	g_free(mime_type);
	GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(att));
	assert_non_null(inner);
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(inner), "X-Original-Header"), "kept");
	assert_string_equal(g_mime_message_get_message_id(inner), "fwd@bigcorp.example");
	char *body = body_text(m);
	assert_non_null(strstr(body, "ESCALATION"));
	assert_non_null(strstr(body, "Why escalated"));
	assert_non_null(strstr(body, "trigger outage"));
	assert_non_null(strstr(body, "enterprise"));
	g_free(body);
	g_object_unref(m);
	g_free(text);
	tr_outbox_row_clear(&row);
	/* The room post for the same escalation. */
	text = render(ticket, "room_post", &len, NULL);
	assert_non_null(strstr(text, "!ack TKT-"));
	assert_null(strchr(text, '\r'));
	g_free(text);
}

int main(void)
{
	g_mime_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ack_languages),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_non_ascii_subject_encoded),
		cmocka_unit_test(test_forward_attaches_original),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

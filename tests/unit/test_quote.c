/* test_quote.c — new text / quoted history / signature splitting
 *
 * Fixtures are written for these tests in the shapes real clients produce
 * (Gmail, Outlook desktop and web, Apple Mail, Thunderbird) in English,
 * Spanish, German, French, Portuguese, Dutch and Italian.
 */
#include "testutil.h"
#include "core/quote.h"

#include <string.h>
#include <time.h>

static tr_pool *pool;

static int setup(void **state)
{
	(void)state;
	pool = tr_pool_new(0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tr_pool_free(&pool);
	return 0;
}

static tr_quote_parts split(const char *text)
{
	tr_quote_parts q;
	tr_quote_split(pool, text, strlen(text), &q);
	assert_non_null(q.new_text);
	assert_non_null(q.quoted);
	assert_non_null(q.signature);
	assert_int_equal(strlen(q.new_text), q.new_len);
	assert_int_equal(strlen(q.quoted), q.quoted_len);
	assert_int_equal(strlen(q.signature), q.signature_len);
	return q;
}

#define assert_marker(q, expected)                                              \
	do {                                                                        \
		if ((expected) == NULL)                                                 \
			assert_null((q).marker);                                            \
		else {                                                                  \
			assert_non_null((q).marker);                                        \
			assert_string_equal((q).marker, (expected));                        \
		}                                                                       \
	} while (0)

static void expect(const char *text, const char *new_text, const char *quoted,
                   const char *signature, const char *marker)
{
	tr_quote_parts q = split(text);
	assert_string_equal(q.new_text, new_text);
	assert_string_equal(q.quoted, quoted);
	assert_string_equal(q.signature, signature);
	assert_marker(q, marker);
}

/* ---- Gmail ---- */

static void test_gmail_top_post_wrapped_attribution(void **state)
{
	(void)state;
	expect("Hi,\n"
	       "\n"
	       "the CSV export still fails with error 500 since this morning.\n"
	       "\n"
	       "Best regards,\n"
	       "John Smith\n"
	       "Acme Corp | +1 555 123 4567\n"
	       "\n"
	       "On Mon, Jan 8, 2024 at 10:02 AM Acme Support <support@acme.example>\n"
	       "wrote:\n"
	       "\n"
	       "> Hello John,\n"
	       "> please restart the export.\n"
	       "> --\n"
	       "> Acme Support\n",
	       "Hi,\n\nthe CSV export still fails with error 500 since this morning.",
	       "On Mon, Jan 8, 2024 at 10:02 AM Acme Support <support@acme.example>\n"
	       "wrote:\n"
	       "\n"
	       "> Hello John,\n"
	       "> please restart the export.\n"
	       "> --\n"
	       "> Acme Support",
	       "Best regards,\nJohn Smith\nAcme Corp | +1 555 123 4567",
	       "attribution");
}

static void test_gmail_attribution_address_on_second_line(void **state)
{
	(void)state;
	/* the address wrapped: the second line alone looks strong (it has
	 * '@'), but the attribution starts on the line with the opener */
	expect("It works now.\n"
	       "\n"
	       "On Tue, Jan 9, 2024 at 3:15 PM Acme Support <\n"
	       "support@acme.example> wrote:\n"
	       "> Try again please.\n",
	       "It works now.",
	       "On Tue, Jan 9, 2024 at 3:15 PM Acme Support <\n"
	       "support@acme.example> wrote:\n"
	       "> Try again please.",
	       "", "attribution");
}

static void test_gmail_spanish(void **state)
{
	(void)state;
	expect("Hola,\n"
	       "\n"
	       "sigo sin poder acceder a mi cuenta. ¿Pueden revisarlo?\n"
	       "\n"
	       "Saludos,\n"
	       "María García\n"
	       "\n"
	       "El lun, 8 ene 2024 a las 10:02, Soporte Acme (<soporte@acme.example>)\n"
	       "escribió:\n"
	       "\n"
	       "> Hola María, ¿ha probado a restablecer la contraseña?\n",
	       "Hola,\n\nsigo sin poder acceder a mi cuenta. ¿Pueden revisarlo?",
	       "El lun, 8 ene 2024 a las 10:02, Soporte Acme (<soporte@acme.example>)\n"
	       "escribió:\n"
	       "\n"
	       "> Hola María, ¿ha probado a restablecer la contraseña?",
	       "Saludos,\nMaría García", "attribution");
}

static void test_german_am_schrieb(void **state)
{
	(void)state;
	expect("Hallo zusammen,\n"
	       "\n"
	       "die Rechnung vom Dezember ist doppelt abgebucht worden.\n"
	       "\n"
	       "Viele Grüße\n"
	       "Jens Müller\n"
	       "\n"
	       "Am 08.01.2024 um 10:02 schrieb Acme Support <support@acme.example>:\n"
	       "> Guten Tag Herr Müller,\n"
	       "> wir prüfen das.\n",
	       "Hallo zusammen,\n\ndie Rechnung vom Dezember ist doppelt abgebucht worden.",
	       "Am 08.01.2024 um 10:02 schrieb Acme Support <support@acme.example>:\n"
	       "> Guten Tag Herr Müller,\n"
	       "> wir prüfen das.",
	       "Viele Grüße\nJens Müller", "attribution");
}

static void test_german_name_schrieb_am_unprefixed(void **state)
{
	(void)state;
	/* no '>' below: a strong attribution cuts everything after it */
	expect("Das hat leider nicht geholfen.\n"
	       "\n"
	       "MfG\n"
	       "Petra Schulz\n"
	       "\n"
	       "Acme Support <support@acme.example> schrieb am Mo., 8. Jan. 2024, 10:02:\n"
	       "Bitte löschen Sie den Cache.\n"
	       "\n"
	       "Mit freundlichen Grüßen\n"
	       "Ihr Acme-Team\n",
	       "Das hat leider nicht geholfen.",
	       "Acme Support <support@acme.example> schrieb am Mo., 8. Jan. 2024, 10:02:\n"
	       "Bitte löschen Sie den Cache.\n"
	       "\n"
	       "Mit freundlichen Grüßen\n"
	       "Ihr Acme-Team",
	       "MfG\nPetra Schulz", "attribution");
}

static void test_french_a_ecrit(void **state)
{
	(void)state;
	expect("Bonjour,\n"
	       "\n"
	       "le problème persiste après la mise à jour.\n"
	       "\n"
	       "Cordialement,\n"
	       "Claire Dubois\n"
	       "Tél. : +33 1 23 45 67 89\n"
	       "\n"
	       "Le lun. 8 janv. 2024 à 10:02, Support Acme <support@acme.example> a\n"
	       "écrit :\n"
	       "\n"
	       "> Bonjour Madame Dubois,\n",
	       "Bonjour,\n\nle problème persiste après la mise à jour.",
	       "Le lun. 8 janv. 2024 à 10:02, Support Acme <support@acme.example> a\n"
	       "écrit :\n"
	       "\n"
	       "> Bonjour Madame Dubois,",
	       "Cordialement,\nClaire Dubois\nTél. : +33 1 23 45 67 89", "attribution");
}

static void test_portuguese_escreveu(void **state)
{
	(void)state;
	expect("Olá,\n"
	       "\n"
	       "o pagamento foi recusado outra vez.\n"
	       "\n"
	       "Atenciosamente,\n"
	       "João Silva\n"
	       "(11) 91234-5678\n"
	       "\n"
	       "Em seg., 8 de jan. de 2024 às 10:02, Suporte Acme <suporte@acme.example>\n"
	       "escreveu:\n"
	       "\n"
	       "> Olá João,\n",
	       "Olá,\n\no pagamento foi recusado outra vez.",
	       "Em seg., 8 de jan. de 2024 às 10:02, Suporte Acme <suporte@acme.example>\n"
	       "escreveu:\n"
	       "\n"
	       "> Olá João,",
	       "Atenciosamente,\nJoão Silva\n(11) 91234-5678", "attribution");
}

static void test_dutch_and_italian(void **state)
{
	(void)state;
	expect("Het werkt nog steeds niet.\n"
	       "\n"
	       "Op ma 8 jan. 2024 om 10:02 schreef Acme Support <support@acme.example>:\n"
	       "> Kunt u het opnieuw proberen?\n",
	       "Het werkt nog steeds niet.",
	       "Op ma 8 jan. 2024 om 10:02 schreef Acme Support <support@acme.example>:\n"
	       "> Kunt u het opnieuw proberen?",
	       "", "attribution");
	expect("Non funziona ancora.\n"
	       "\n"
	       "Grazie\n"
	       "\n"
	       "Il giorno lun 8 gen 2024 alle ore 10:02 Acme Support <support@acme.example> ha scritto:\n"
	       "> Può riprovare?\n",
	       "Non funziona ancora.",
	       "Il giorno lun 8 gen 2024 alle ore 10:02 Acme Support <support@acme.example> ha scritto:\n"
	       "> Può riprovare?",
	       "Grazie", "attribution");
}

/* ---- Apple Mail, Thunderbird ---- */

static void test_apple_mail_iphone(void **state)
{
	(void)state;
	expect("Still broken after the update. Can someone call me?\n"
	       "\n"
	       "Sent from my iPhone\n"
	       "\n"
	       "> On Jan 8, 2024, at 10:02, Acme Support <support@acme.example> wrote:\n"
	       "> \n"
	       "> Please install version 2.4.1.\n",
	       "Still broken after the update. Can someone call me?",
	       "> On Jan 8, 2024, at 10:02, Acme Support <support@acme.example> wrote:\n"
	       "> \n"
	       "> Please install version 2.4.1.",
	       "Sent from my iPhone", "quote-prefix");
	expect("Sigue fallando.\n\nEnviado desde mi iPhone\n\n"
	       "El 8 ene 2024, a las 10:02, Soporte <soporte@acme.example> escribió:\n\n> Pruebe otra vez.\n",
	       "Sigue fallando.",
	       "El 8 ene 2024, a las 10:02, Soporte <soporte@acme.example> escribió:\n\n> Pruebe otra vez.",
	       "Enviado desde mi iPhone", "attribution");
}

static void test_thunderbird(void **state)
{
	(void)state;
	/* no address, but opener and date: strong */
	expect("Thanks, the new certificate fixed it.\n"
	       "\n"
	       "On 08/01/2024 10:02, Acme Support wrote:\n"
	       "> Please replace the certificate.\n"
	       ">\n"
	       "> On 07/01/2024 18:40, Tom Baker wrote:\n"
	       ">> TLS handshake fails on the gateway.\n",
	       "Thanks, the new certificate fixed it.",
	       "On 08/01/2024 10:02, Acme Support wrote:\n"
	       "> Please replace the certificate.\n"
	       ">\n"
	       "> On 07/01/2024 18:40, Tom Baker wrote:\n"
	       ">> TLS handshake fails on the gateway.",
	       "", "attribution");
}

/* ---- Outlook ---- */

static void test_outlook_english_underscores(void **state)
{
	(void)state;
	expect("Hello,\n"
	       "\n"
	       "the VPN client disconnects every five minutes.\n"
	       "\n"
	       "Kind regards\n"
	       "Anna Lee\n"
	       "IT Operations\n"
	       "Phone: +44 20 7946 0958\n"
	       "\n"
	       "________________________________\n"
	       "From: Acme Support <support@acme.example>\n"
	       "Sent: Monday, January 8, 2024 10:02 AM\n"
	       "To: Anna Lee <anna.lee@example.com>\n"
	       "Subject: RE: VPN drops [TKT-000123]\n"
	       "\n"
	       "Hello Anna,\n"
	       "Did you try reconnecting?\n",
	       "Hello,\n\nthe VPN client disconnects every five minutes.",
	       "________________________________\n"
	       "From: Acme Support <support@acme.example>\n"
	       "Sent: Monday, January 8, 2024 10:02 AM\n"
	       "To: Anna Lee <anna.lee@example.com>\n"
	       "Subject: RE: VPN drops [TKT-000123]\n"
	       "\n"
	       "Hello Anna,\n"
	       "Did you try reconnecting?",
	       "Kind regards\nAnna Lee\nIT Operations\nPhone: +44 20 7946 0958",
	       "outlook-header");
}

static void test_outlook_localized(void **state)
{
	(void)state;
	/* Spanish, no underscore line */
	expect("Buenos días,\nadjunto la factura.\n\nUn saludo\n\n"
	       "De: Soporte Acme <soporte@acme.example>\n"
	       "Enviado el: lunes, 8 de enero de 2024 10:02\n"
	       "Para: Luis Pérez <luis@example.es>\n"
	       "Asunto: RE: Factura duplicada\n\nHola Luis,\n",
	       "Buenos días,\nadjunto la factura.",
	       "De: Soporte Acme <soporte@acme.example>\n"
	       "Enviado el: lunes, 8 de enero de 2024 10:02\n"
	       "Para: Luis Pérez <luis@example.es>\n"
	       "Asunto: RE: Factura duplicada\n\nHola Luis,",
	       "Un saludo", "outlook-header");
	/* German */
	expect("Bitte um Rückruf.\n\n"
	       "________________________________\n"
	       "Von: Acme Support <support@acme.example>\n"
	       "Gesendet: Montag, 8. Januar 2024 10:02\n"
	       "An: Jens Müller\n"
	       "Betreff: AW: Störung\n",
	       "Bitte um Rückruf.",
	       "________________________________\n"
	       "Von: Acme Support <support@acme.example>\n"
	       "Gesendet: Montag, 8. Januar 2024 10:02\n"
	       "An: Jens Müller\n"
	       "Betreff: AW: Störung",
	       "", "outlook-header");
	/* French, with the space before the colon */
	expect("Toujours en panne.\n\nBien à vous\nClaire\n\n"
	       "De : Support Acme <support@acme.example>\n"
	       "Envoyé : lundi 8 janvier 2024 10:02\n"
	       "À : Claire Dubois\n"
	       "Objet : RE: Panne\n",
	       "Toujours en panne.",
	       "De : Support Acme <support@acme.example>\n"
	       "Envoyé : lundi 8 janvier 2024 10:02\n"
	       "À : Claire Dubois\n"
	       "Objet : RE: Panne",
	       "Bien à vous\nClaire", "outlook-header");
	/* Portuguese, bold markers from an HTML-to-text conversion */
	expect("Segue o comprovante.\n\nObrigada\n\n"
	       "*De:* Suporte Acme <suporte@acme.example>\n"
	       "*Enviada em:* segunda-feira, 8 de janeiro de 2024 10:02\n"
	       "*Para:* Ana Souza\n"
	       "*Assunto:* RE: Pagamento\n",
	       "Segue o comprovante.",
	       "*De:* Suporte Acme <suporte@acme.example>\n"
	       "*Enviada em:* segunda-feira, 8 de janeiro de 2024 10:02\n"
	       "*Para:* Ana Souza\n"
	       "*Assunto:* RE: Pagamento",
	       "Obrigada", "outlook-header");
}

static void test_original_message_separators(void **state)
{
	(void)state;
	static const char *const lines[] = {
		"-----Original Message-----",
		"----- Original Message -----",
		"-----Ursprüngliche Nachricht-----",
		"-------- Original-Nachricht --------",
		"-----Mensaje original-----",
		"-----Message d'origine-----",
		"-----Mensagem original-----",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
		char *text = g_strdup_printf("Please cancel my subscription.\n\n%s\nFrom: a@example.com\nold text\n",
		                             lines[i]);
		char *quoted = g_strdup_printf("%s\nFrom: a@example.com\nold text", lines[i]);
		expect(text, "Please cancel my subscription.", quoted, "", "original-message");
		g_free(text);
		g_free(quoted);
	}
}

static void test_forwards(void **state)
{
	(void)state;
	static const char *const lines[] = {
		"---------- Forwarded message ---------",
		"Begin forwarded message:",
		"-------- Mensaje reenviado --------",
		"---------- Weitergeleitete Nachricht ----------",
		"-------- Message transféré --------",
		"---------- Mensagem encaminhada ---------",
		"Anfang der weitergeleiteten Nachricht:",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
		char *text = g_strdup_printf(
			"FYI, this is the third reminder we got although we paid.\n\n%s\n"
			"From: Billing <billing@vendor.example>\nDate: Mon, Jan 8, 2024\n"
			"Subject: Payment overdue\n\nYour invoice is overdue.\n",
			lines[i]);
		char *quoted = g_strdup_printf(
			"%s\nFrom: Billing <billing@vendor.example>\nDate: Mon, Jan 8, 2024\n"
			"Subject: Payment overdue\n\nYour invoice is overdue.",
			lines[i]);
		expect(text, "FYI, this is the third reminder we got although we paid.", quoted, "",
		       "forward");
		g_free(text);
		g_free(quoted);
	}
	/* a forward without comment: the forwarded body is what to look at */
	expect("---------- Forwarded message ---------\nFrom: Billing <billing@vendor.example>\n"
	       "Date: Mon, Jan 8, 2024\nSubject: Payment overdue\n\nYour invoice 2024-117 is overdue.\n",
	       "Your invoice 2024-117 is overdue.",
	       "---------- Forwarded message ---------\nFrom: Billing <billing@vendor.example>\n"
	       "Date: Mon, Jan 8, 2024\nSubject: Payment overdue",
	       "", "forward");
}

static void test_bottom_posting(void **state)
{
	(void)state;
	/* Outlook Express: separator and headers, '>' quote, answer below */
	expect("----- Original Message -----\n"
	       "From: \"Acme Support\" <support@acme.example>\n"
	       "To: <tom@example.com>\n"
	       "Sent: Monday, January 08, 2024 10:02 AM\n"
	       "Subject: Re: Login\n"
	       "\n"
	       "> Please clear your cookies.\n"
	       ">\n"
	       "\n"
	       "Done that, still the same error.\n"
	       "\n"
	       "Tom\n",
	       "Done that, still the same error.\n\nTom",
	       "----- Original Message -----\n"
	       "From: \"Acme Support\" <support@acme.example>\n"
	       "To: <tom@example.com>\n"
	       "Sent: Monday, January 08, 2024 10:02 AM\n"
	       "Subject: Re: Login\n"
	       "\n"
	       "> Please clear your cookies.\n"
	       ">",
	       "", "original-message");
	/* an attribution not directly followed by the '>' block */
	expect("On Tue, 9 Jan 2024 10:15:36 +0100\n"
	       "Acme Support <support@acme.example> wrote:\n"
	       "\n"
	       "<snip>\n"
	       "> reinstall the agent\n"
	       "\n"
	       "That broke the other machines.\n",
	       "<snip>\n\nThat broke the other machines.",
	       "On Tue, 9 Jan 2024 10:15:36 +0100\n"
	       "Acme Support <support@acme.example> wrote:\n"
	       "\n"
	       "> reinstall the agent",
	       "", "attribution");
}

/* ---- interleaved and bottom posting ---- */

static void test_interleaved_reply(void **state)
{
	(void)state;
	expect("On Mon, Jan 8, 2024 at 10:02 AM Acme Support <support@acme.example> wrote:\n"
	       "> Which version are you running?\n"
	       "\n"
	       "2.4.0 on Debian 12.\n"
	       "\n"
	       "> Does the error happen for every user?\n"
	       "\n"
	       "Only for users in the EU region.\n"
	       "\n"
	       "Thanks,\n"
	       "Tom\n",
	       "2.4.0 on Debian 12.\n\nOnly for users in the EU region.",
	       "On Mon, Jan 8, 2024 at 10:02 AM Acme Support <support@acme.example> wrote:\n"
	       "> Which version are you running?\n"
	       "\n"
	       "> Does the error happen for every user?",
	       "Thanks,\nTom", "attribution");
}

static void test_interleaved_without_attribution(void **state)
{
	(void)state;
	expect("> Is the server down?\nYes, since 10:00 UTC.\n> When will it be back?\nNo idea, that is why I am writing.\n",
	       "Yes, since 10:00 UTC.\n\nNo idea, that is why I am writing.",
	       "> Is the server down?\n\n> When will it be back?", "", "quote-prefix");
}

static void test_weak_attribution_with_quote(void **state)
{
	(void)state;
	expect("Bob Jones wrote:\n> the dashboard is empty\n\nSame here since yesterday.\n",
	       "Same here since yesterday.",
	       "Bob Jones wrote:\n> the dashboard is empty", "", "attribution");
}

/* ---- false positives ---- */

static void test_attribution_words_in_text(void **state)
{
	(void)state;
	const char *text =
		"Hello,\n"
		"\n"
		"On Monday I wrote to you about the invoice, and on Jan 3, 2024 I wrote again.\n"
		"Here is what I wrote:\n"
		"The amount on invoice 2024-117 is wrong.\n"
		"\n"
		"From: my point of view this is urgent.\n"
		"\n"
		"Thanks for the quick reply, but it still fails";
	expect(text, text, "", "", NULL);
	/* "On <weekday> I wrote:" without a date is weak: not a cut */
	expect("On Monday I wrote:\nplease cancel order 42.\n",
	       "On Monday I wrote:\nplease cancel order 42.", "", "", NULL);
}

static void test_underscores_without_header(void **state)
{
	(void)state;
	const char *text = "Form fields:\n________________________________\nName\n";
	expect(text, "Form fields:\n________________________________\nName", "", "", NULL);
}

static void test_from_line_needs_header_run(void **state)
{
	(void)state;
	const char *text = "From: the billing page\nTo: reproduce, click Pay twice.\n\nThat charges the card twice.";
	expect(text, text, "", "", NULL);
}

static void test_mbox_from_escape(void **state)
{
	(void)state;
	const char *text = "Hi,\n>From time to time the upload hangs.\nRegards\nKim";
	expect(text, "Hi,\n>From time to time the upload hangs.", "", "Regards\nKim", NULL);
}

/* ---- signatures ---- */

static void test_signature_delimiter(void **state)
{
	(void)state;
	expect("Please reset my password.\n\n-- \nKim Park\nExample Ltd.\n+82 2 1234 5678\n",
	       "Please reset my password.", "", "-- \nKim Park\nExample Ltd.\n+82 2 1234 5678", NULL);
	expect("Please reset my password.\n--\nKim Park\n",
	       "Please reset my password.", "", "--\nKim Park", NULL);
	/* the sign-off above the delimiter belongs to the signature */
	expect("Please reset my password.\n\nCheers,\nKim\n-- \nKim Park | Example Ltd.\n",
	       "Please reset my password.", "", "Cheers,\nKim\n-- \nKim Park | Example Ltd.", NULL);
}

static void test_signoff_variants(void **state)
{
	(void)state;
	static const char *const signoffs[] = {
		"Best regards", "Kind regards,", "Regards", "Thanks!", "Thank you.", "Many thanks",
		"Cheers", "Sincerely,", "Best,", "BR", "Saludos", "Un saludo,", "Atentamente",
		"Gracias", "Mit freundlichen Grüßen", "MIT FREUNDLICHEN GRÜSSEN", "Viele Grüße",
		"Beste Grüße", "MfG", "Gruß", "Cordialement", "Bien cordialement", "Bien à vous",
		"Merci", "Atenciosamente", "Obrigado", "Obrigada", "Abraços", "Att.",
		"Thanks, John", "Cheers - Bob",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(signoffs); i++) {
		char *text = g_strdup_printf("The printer queue is stuck again.\n\n%s\nJohn Doe\n", signoffs[i]);
		char *sig = g_strdup_printf("%s\nJohn Doe", signoffs[i]);
		tr_quote_parts q = split(text);
		if (strcmp(q.signature, sig) != 0)
			fail_msg("sign-off '%s': signature '%s'", signoffs[i], q.signature);
		assert_string_equal(q.new_text, "The printer queue is stuck again.");
		g_free(text);
		g_free(sig);
	}
}

static void test_mobile_footers(void **state)
{
	(void)state;
	static const char *const footers[] = {
		"Sent from my iPhone", "Sent from my Galaxy", "Enviado desde mi iPhone",
		"Von meinem iPhone gesendet", "Envoyé de mon iPhone", "Enviado do meu iPhone",
		"Get Outlook for iOS", "Get Outlook for Android",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(footers); i++) {
		char *text = g_strdup_printf("Call me back please, the site is down.\n\n%s\n", footers[i]);
		tr_quote_parts q = split(text);
		assert_string_equal(q.new_text, "Call me back please, the site is down.");
		assert_string_equal(q.signature, footers[i]);
		g_free(text);
	}
}

static void test_signature_guards(void **state)
{
	(void)state;
	/* a sign-off word inside a sentence is text */
	const char *a = "Thanks for the quick reply, but it still fails.\nThe log says: disk full.";
	expect(a, a, "", "", NULL);
	/* a signature never eats the whole message */
	expect("Thanks!\n", "Thanks!", "", "", NULL);
	expect("-- \nJohn\n", "-- \nJohn", "", "", NULL);
	expect("Sent from my iPhone", "Sent from my iPhone", "", "", NULL);
	/* too much text after the sign-off: not a signature */
	const char *b = "Hi,\n\nThanks\nThe import stops at row 1000 every single time we run it.\n";
	expect(b, "Hi,\n\nThanks\nThe import stops at row 1000 every single time we run it.", "", "",
	       NULL);
	/* a question after the sign-off */
	const char *c = "Hi,\nRegards\nCan you check?";
	expect(c, c, "", "", NULL);
	/* P.S. stops the search */
	const char *d = "The invoice is wrong.\n\nThanks,\nJohn\n\nP.S. Order 4711 too";
	expect(d, d, "", "", NULL);
	/* more than five lines after the sign-off */
	const char *e = "Hi\nRegards\nl1\nl2\nl3\nl4\nl5\nl6";
	expect(e, e, "", "", NULL);
	/* the sign-off followed by lowercase words is a sentence */
	const char *f = "Hi\n\nThanks, but no";
	expect(f, f, "", "", NULL);
}

/* ---- edges ---- */

static void test_empty_and_blank(void **state)
{
	(void)state;
	tr_quote_parts q;
	tr_quote_split(pool, NULL, 0, &q);
	assert_string_equal(q.new_text, "");
	assert_string_equal(q.quoted, "");
	assert_string_equal(q.signature, "");
	assert_null(q.marker);
	expect("", "", "", "", NULL);
	expect("\n\n  \n\t\n", "", "", "", NULL);
	expect("> only quoted\n> text\n", "", "> only quoted\n> text", "", "quote-prefix");
}

static void test_trims_blank_lines_and_crlf(void **state)
{
	(void)state;
	expect("\n\n  Indented first line\nsecond  \n\n\n", "  Indented first line\nsecond", "", "",
	       NULL);
	expect("Fix it please.\r\n\r\nOn Mon, Jan 8, 2024 at 10:02 AM Bob <bob@example.com> wrote:\r\n> old\r\n",
	       "Fix it please.",
	       "On Mon, Jan 8, 2024 at 10:02 AM Bob <bob@example.com> wrote:\r\n> old", "", "attribution");
}

static void test_quoted_signature_ignored(void **state)
{
	(void)state;
	expect("New question: how do I export?\n\n> old\n> -- \n> Support\n",
	       "New question: how do I export?", "> old\n> -- \n> Support", "", "quote-prefix");
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_one_megabyte(void **state)
{
	(void)state;
	const size_t size = 1 << 20;
	/* a single 1 MB line ending in ':' and starting with "On " */
	char *line = g_malloc(size + 1);
	memset(line, 'x', size);
	memcpy(line, "On 1 ", 5);
	memcpy(line + size - 7, " wrote:", 7);
	line[size] = '\0';
	double t0 = seconds();
	tr_quote_parts q;
	tr_quote_split(pool, line, size, &q);
	assert_int_equal(q.new_len, size);
	assert_int_equal(q.quoted_len, 0);

	/* 1 MB of short lines: quotes, attributions, From: lines, sign-offs */
	GString *s = g_string_sized_new(size + 200);
	while (s->len < size) {
		g_string_append(s, "From: someone\nOn Mon, Jan 8 Bob wrote:\n> quoted\nanswer\nThanks\n\n");
	}
	g_string_append(s, "Regards\nBob\n");
	tr_quote_split(pool, s->str, s->len, &q);
	assert_true(q.new_len > 0);
	assert_true(q.quoted_len > 0);
	/* the topmost sign-off with at most five lines after it */
	assert_string_equal(q.signature, "Thanks\n\nFrom: someone\n\nanswer\nThanks\n\nRegards\nBob");

	/* one line of 1 MB of spaces, and 1 MB of newlines */
	memset(line, ' ', size);
	tr_quote_split(pool, line, size, &q);
	assert_int_equal(q.new_len, 0);
	memset(line, '\n', size);
	tr_quote_split(pool, line, size, &q);
	assert_int_equal(q.new_len, 0);
	double elapsed = seconds() - t0;
	print_message("# 4 x 1 MB split in %.1f ms\n", elapsed * 1000);
	assert_true(elapsed < 5.0);
	g_string_free(s, TRUE);
	g_free(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gmail_top_post_wrapped_attribution, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gmail_attribution_address_on_second_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gmail_spanish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_german_am_schrieb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_german_name_schrieb_am_unprefixed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_french_a_ecrit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_portuguese_escreveu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dutch_and_italian, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apple_mail_iphone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thunderbird, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outlook_english_underscores, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outlook_localized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_original_message_separators, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forwards, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bottom_posting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interleaved_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interleaved_without_attribution, setup, teardown),
		cmocka_unit_test_setup_teardown(test_weak_attribution_with_quote, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attribution_words_in_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_underscores_without_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_from_line_needs_header_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_from_escape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signature_delimiter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signoff_variants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mobile_footers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signature_guards, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_and_blank, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trims_blank_lines_and_crlf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quoted_signature_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_megabyte, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

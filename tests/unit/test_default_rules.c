/*
 * test_default_rules.c — the SHIPPED configuration (conf/triage.conf and
 * conf/rules.d) on small realistic messages: every trigger in English,
 * Spanish, German, French and Portuguese; negation; quoted history;
 * politeness that must not lower urgency; typos; one typical message per
 * category; mailing-list wording that must not trigger; and the decisions
 * for the demo samples in contrib/demo/samples.
 *
 * The messages are written for this test, not taken from a data set.  A
 * fixed arrival time keeps SLA deadlines deterministic.
 */
#include "testutil.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "core/engine.h"

static tr_engine *engine;

/* 2026-11-16 16:00 UTC, a Monday (business hours in Europe and the US). */
#define MONDAY_1600_UTC 1794844800

static int setup(void **state)
{
	(void)state;
	setlocale(LC_CTYPE, "C.UTF-8");
	char *path = tr_test_path("conf/triage.conf");
	engine = tr_test_engine(path);
	g_free(path);
	return engine != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tr_engine_free(&engine);
	return 0;
}

typedef struct {
	tr_msg *msg;
	tr_decision d;
} result;

static result *decide_raw(const char *raw, size_t len)
{
	result *r = g_new0(result, 1);
	r->msg = tr_norm_parse(tr_engine_norm(engine), TR_CHANNEL_FILE, raw, len, NULL);
	tr_decide_input input = { .now = MONDAY_1600_UTC };
	tr_engine_decide(engine, r->msg, &input, &r->d);
	return r;
}

static result *decide_mail(const char *from, const char *subject, const char *body)
{
	char *raw = g_strdup_printf("From: %s\nTo: support@example.test\nSubject: %s\n"
	                            "Content-Type: text/plain; charset=utf-8\n\n%s\n", from, subject, body);
	result *r = decide_raw(raw, strlen(raw));
	g_free(raw);
	return r;
}

static result *decide(const char *subject, const char *body)
{
	return decide_mail("Customer <customer@somewhere.example>", subject, body);
}

static result *decide_sample(const char *name)
{
	char *relative = g_strconcat("contrib/demo/samples/", name, NULL);
	char *path = tr_test_path(relative);
	size_t len;
	char *raw = tr_test_read(path, &len);
	result *r = decide_raw(raw, len);
	g_free(raw);
	g_free(path);
	g_free(relative);
	return r;
}

static void result_free(result *r)
{
	tr_msg_free(&r->msg);
	g_free(r);
}

static bool has_trigger(const tr_decision *d, tr_trigger t)
{
	return (d->triggers & (1u << t)) != 0;
}

/* The rules that fired, for failure messages. */
static char *fired(const tr_decision *d)
{
	GString *s = g_string_new(NULL);
	for (size_t i = 0; i < d->n_hits; i++)
		g_string_append_printf(s, " %s%s(%s)", d->hits[i].negated ? "!" : "",
		                       tr_rule_name(d->hits[i].rule), d->hits[i].match);
	return g_string_free(s, FALSE);
}

static void expect_trigger(const char *lang, tr_trigger t, const char *subject, const char *body, bool want)
{
	result *r = decide(subject, body);
	if (has_trigger(&r->d, t) != want) {
		char *rules = fired(&r->d);
		fail_msg("[%s] '%s': trigger %s %s; rules:%s", lang, body, tr_trigger_name(t),
		         want ? "missing" : "fired", rules);
	}
	result_free(r);
}

static void expect_category(const char *subject, const char *body, const char *category)
{
	result *r = decide(subject, body);
	if (strcmp(r->d.category, category) != 0) {
		char *rules = fired(&r->d);
		fail_msg("'%s': category %s, expected %s; rules:%s", body, r->d.category, category, rules);
	}
	result_free(r);
}

typedef struct {
	tr_trigger trigger;
	const char *lang, *subject, *body;
} trigger_case;

/* ------------------------------------------------------------------ triggers */

static const trigger_case trigger_cases[] = {
	{ TR_TRIGGER_ESCALATION_REQUEST, "en", "Order 4411", "I have waited a week now. I want to speak to a manager about this." },
	{ TR_TRIGGER_ESCALATION_REQUEST, "en", "Ticket 88", "Please escalate this to someone senior, the workaround does not help." },
	{ TR_TRIGGER_ESCALATION_REQUEST, "es", "Pedido 4411", "Llevo una semana esperando. Quiero hablar con un supervisor, por favor." },
	{ TR_TRIGGER_ESCALATION_REQUEST, "de", "Bestellung 4411", "Ich warte seit einer Woche. Ich möchte mit Ihrem Vorgesetzten sprechen." },
	{ TR_TRIGGER_ESCALATION_REQUEST, "fr", "Commande 4411", "J'attends depuis une semaine. Je souhaite parler à un responsable." },
	{ TR_TRIGGER_ESCALATION_REQUEST, "pt", "Pedido 4411", "Estou esperando há uma semana. Quero falar com o gerente." },

	{ TR_TRIGGER_COMPLAINT, "en", "Order 4411", "This is unacceptable. I am still waiting for an answer." },
	{ TR_TRIGGER_COMPLAINT, "es", "Pedido 4411", "Es inaceptable, nadie me responde desde hace días." },
	{ TR_TRIGGER_COMPLAINT, "de", "Bestellung 4411", "Das ist inakzeptabel, ich habe immer noch keine Antwort." },
	{ TR_TRIGGER_COMPLAINT, "fr", "Commande 4411", "C'est inacceptable, toujours aucune réponse de votre part." },
	{ TR_TRIGGER_COMPLAINT, "pt", "Pedido 4411", "É um absurdo, ninguém responde aos meus e-mails." },

	{ TR_TRIGGER_LEGAL, "en", "Invoice dispute", "If this is not corrected within 14 days we will take legal action. Our attorney is in copy." },
	{ TR_TRIGGER_LEGAL, "en", "My personal data", "I am filing a GDPR complaint with the data protection authority about how you handled my data." },
	{ TR_TRIGGER_LEGAL, "en", "Refund", "Refund me or I will sue you in small claims court." },
	{ TR_TRIGGER_LEGAL, "es", "Factura", "Si no lo corrigen en 14 días, iniciaremos acciones legales con nuestro abogado." },
	{ TR_TRIGGER_LEGAL, "es", "Mis datos", "Presentaré una reclamación ante la AEPD por el uso de mis datos." },
	{ TR_TRIGGER_LEGAL, "de", "Rechnung", "Sollten Sie nicht reagieren, werden wir rechtliche Schritte einleiten." },
	{ TR_TRIGGER_LEGAL, "de", "Meine Daten", "Ich habe eine Beschwerde bei der Datenschutzbehörde eingereicht." },
	{ TR_TRIGGER_LEGAL, "fr", "Facture", "Sans réponse sous 14 jours, nous engagerons une action en justice." },
	{ TR_TRIGGER_LEGAL, "fr", "Mes données", "Je vais déposer une plainte auprès de la CNIL." },
	{ TR_TRIGGER_LEGAL, "pt", "Fatura", "Se não resolverem, vamos entrar na justiça e registrar queixa no Procon." },

	{ TR_TRIGGER_SECURITY, "en", "Account", "I think my account was hacked: someone logged into it from another country last night." },
	{ TR_TRIGGER_SECURITY, "en", "Vulnerability report", "Hello, I found a vulnerability in your login form (stored XSS) and would like to report it." },
	{ TR_TRIGGER_SECURITY, "en", "Share links", "Your public share links expose customer data: anyone can open our invoices. This is a data leak." },
	{ TR_TRIGGER_SECURITY, "en", "Admin panel", "We noticed unauthorized access to our admin panel this morning." },
	{ TR_TRIGGER_SECURITY, "es", "Cuenta", "Creo que me hackearon la cuenta, veo accesos no autorizados desde otro país." },
	{ TR_TRIGGER_SECURITY, "de", "Konto", "Unser Konto wurde gehackt, es gab einen unbefugten Zugriff auf die Kundendaten." },
	{ TR_TRIGGER_SECURITY, "fr", "Compte", "Notre compte a été piraté : il y a eu un accès non autorisé à nos données." },
	{ TR_TRIGGER_SECURITY, "pt", "Conta", "Minha conta foi hackeada, houve acesso não autorizado ontem à noite." },

	{ TR_TRIGGER_OUTAGE, "en", "Help", "Your site is down, every request returns 502 Bad Gateway." },
	{ TR_TRIGGER_OUTAGE, "en", "Login", "Since 9:00 nobody can log in to the dashboard." },
	{ TR_TRIGGER_OUTAGE, "en", "Errors", "We see errors everywhere in the app since your release." },
	{ TR_TRIGGER_OUTAGE, "es", "Ayuda", "La web está caída, nadie puede acceder desde esta mañana." },
	{ TR_TRIGGER_OUTAGE, "de", "Hilfe", "Der Server ist nicht erreichbar, nichts funktioniert mehr." },
	{ TR_TRIGGER_OUTAGE, "fr", "Aide", "Le site est en panne, plus rien ne fonctionne depuis ce matin." },
	{ TR_TRIGGER_OUTAGE, "pt", "Ajuda", "O sistema está fora do ar, ninguém consegue acessar." },

	{ TR_TRIGGER_DATA_LOSS, "en", "After the update", "After yesterday's update we lost all our data in the project board." },
	{ TR_TRIGGER_DATA_LOSS, "es", "Actualización", "Después de la actualización perdimos todos los datos del proyecto." },
	{ TR_TRIGGER_DATA_LOSS, "de", "Nach dem Update", "Nach dem Update haben wir einen Datenverlust bei allen Projekten." },
	{ TR_TRIGGER_DATA_LOSS, "fr", "Mise à jour", "Depuis la mise à jour, nous constatons une perte de données sur tous les projets." },
	{ TR_TRIGGER_DATA_LOSS, "pt", "Atualização", "Depois da atualização tivemos perda de dados em todos os projetos." },

	{ TR_TRIGGER_CHURN, "en", "Renewal", "If this keeps happening we will cancel our subscription and move to a competitor." },
	{ TR_TRIGGER_CHURN, "es", "Renovación", "Si esto sigue así voy a cancelar mi suscripción." },
	{ TR_TRIGGER_CHURN, "de", "Verlängerung", "Wenn das so weitergeht, werden wir den Vertrag kündigen." },
	{ TR_TRIGGER_CHURN, "fr", "Renouvellement", "Si cela continue, nous allons résilier notre abonnement." },
	{ TR_TRIGGER_CHURN, "pt", "Renovação", "Se continuar assim, vou cancelar minha assinatura." },
};

static void test_every_trigger_in_five_languages(void **state)
{
	(void)state;
	for (size_t i = 0; i < G_N_ELEMENTS(trigger_cases); i++) {
		const trigger_case *c = &trigger_cases[i];
		expect_trigger(c->lang, c->trigger, c->subject, c->body, true);
	}
	/* Each trigger in each of the five languages. */
	const char *langs[] = { "en", "es", "de", "fr", "pt" };
	const tr_trigger triggers[] = {
		TR_TRIGGER_ESCALATION_REQUEST, TR_TRIGGER_COMPLAINT, TR_TRIGGER_LEGAL, TR_TRIGGER_SECURITY,
		TR_TRIGGER_OUTAGE, TR_TRIGGER_DATA_LOSS, TR_TRIGGER_CHURN,
	};
	for (size_t t = 0; t < G_N_ELEMENTS(triggers); t++) {
		for (size_t l = 0; l < G_N_ELEMENTS(langs); l++) {
			bool covered = false;
			for (size_t i = 0; i < G_N_ELEMENTS(trigger_cases); i++)
				covered |= trigger_cases[i].trigger == triggers[t] && strcmp(trigger_cases[i].lang, langs[l]) == 0;
			if (!covered)
				fail_msg("no test case for trigger %s in %s", tr_trigger_name(triggers[t]), langs[l]);
		}
	}
}

static void test_triggers_escalate_and_route(void **state)
{
	(void)state;
	result *r = decide("Account", "I think my account was hacked: someone logged into it last night.");
	assert_string_equal(r->d.category, "security");
	assert_string_equal(r->d.team, "security");
	assert_true(r->d.priority <= 2);
	assert_true(r->d.escalate);
	result_free(r);
	r = decide("Rechnung", "Sollten Sie nicht reagieren, werden wir rechtliche Schritte einleiten.");
	assert_string_equal(r->d.team, "legal");
	assert_true(r->d.priority <= 2);
	assert_true(r->d.escalate);
	result_free(r);
	r = decide("After the update", "After yesterday's update we lost all our data in the project board.");
	assert_string_equal(r->d.team, "engineering");
	assert_int_equal(r->d.priority, 1);
	result_free(r);
}

/* ------------------------------------------------------------------ negation, quotes, politeness */

static void test_negation_does_not_trigger(void **state)
{
	(void)state;
	static const struct {
		const char *lang, *body;
	} calm[] = {
		{ "en", "Not urgent: how do I export last year's invoices?" },
		{ "en", "This is not urgent, just a question about the invoice layout." },
		{ "de", "Nicht dringend: wie exportiere ich die Rechnungen vom letzten Jahr?" },
		{ "es", "No es urgente, pero ¿cómo descargo las facturas del año pasado?" },
		{ "fr", "Ce n'est pas urgent : comment télécharger les factures de l'an dernier ?" },
		{ "pt", "Não é urgente, mas como baixo as faturas do ano passado?" },
		{ "es", "Nada urgente: ¿cómo descargo las facturas del año pasado?" },
		{ "fr", "Rien d'urgent : comment télécharger les factures de l'an dernier ?" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(calm); i++) {
		result *r = decide("Question", calm[i].body);
		if (r->d.urgency != TR_LEVEL_LOW || r->d.priority != 4) {
			char *rules = fired(&r->d);
			fail_msg("[%s] '%s': urgency %s, %s; rules:%s", calm[i].lang, calm[i].body,
			         tr_level_name(r->d.urgency), tr_priority_name(r->d.priority), rules);
		}
		assert_int_equal(r->d.triggers, 0);
		result_free(r);
	}
	expect_trigger("en", TR_TRIGGER_DATA_LOSS, "Sync delay",
	               "The sync was late yesterday but no data was lost, we just want to understand why.", false);
	expect_trigger("en", TR_TRIGGER_SECURITY, "Login alert",
	               "We got a login alert but we were not hacked: it was our new office network.", false);
	expect_trigger("en", TR_TRIGGER_OUTAGE, "Status", "False alarm: the API is not down, it was our own proxy.", false);
	expect_trigger("de", TR_TRIGGER_DATA_LOSS, "Export", "Es gab keinen Datenverlust, nur eine Verzögerung.", false);
	expect_trigger("en", TR_TRIGGER_ESCALATION_REQUEST, "Thanks", "Thanks, no need to escalate this.", false);
	expect_trigger("en", TR_TRIGGER_COMPLAINT, "Thanks", "No complaints at all, the new version is great.", false);
}

static void test_quoted_history_does_not_count(void **state)
{
	(void)state;
	result *r = decide("Re: [TKT-000381] your ticket",
	                   "Thanks, everything works again now.\n\n"
	                   "On Mon, 16 Nov 2026 at 09:00, Customer <customer@somewhere.example> wrote:\n"
	                   "> the site is down and nobody can log in, this is urgent!\n"
	                   "> we will cancel our subscription if this happens again\n");
	assert_int_equal(r->d.triggers, 0);
	assert_int_not_equal(r->d.urgency, TR_LEVEL_HIGH);
	assert_false(r->d.escalate);
	result_free(r);
}

static void test_polite_enterprise_outage_is_p1(void **state)
{
	(void)state;
	result *r = decide_mail("Ana Costa <ana.costa@bigcorp.example>", "Quick look?",
	                        "Hi there, hope you are well! Whenever you have a moment, could you take a "
	                        "look at our shop? Since this morning checkout fails for all customers.\n\n"
	                        "Many thanks, no worries if you are busy!");
	assert_true(has_trigger(&r->d, TR_TRIGGER_OUTAGE));
	assert_int_equal(r->d.priority, 1);
	assert_int_equal(r->d.urgency, TR_LEVEL_HIGH);
	assert_string_equal(r->d.team, "engineering");
	assert_true(r->d.escalate);
	result_free(r);
	/* Courtesy alone never makes a message low urgency. */
	r = decide("Invoice", "Whenever you have a moment, when you get a chance, could you resend invoice 2211?");
	assert_int_not_equal(r->d.urgency, TR_LEVEL_LOW);
	assert_int_equal(r->d.priority, 3);
	result_free(r);
}

static void expect_urgency(const char *subject, const char *body, tr_level urgency)
{
	result *r = decide(subject, body);
	if (r->d.urgency != urgency) {
		char *rules = fired(&r->d);
		fail_msg("'%s': urgency %s, expected %s; rules:%s", body, tr_level_name(r->d.urgency),
		         tr_level_name(urgency), rules);
	}
	result_free(r);
}

static void test_urgency(void **state)
{
	(void)state;
	expect_urgency("URGENT: invoice needed", "Please send the invoice for October.", TR_LEVEL_HIGH);
	expect_urgency("Export", "Please fix this immediately, we cannot send reports.", TR_LEVEL_HIGH);
	expect_urgency("Pedido", "Necesito una respuesta lo antes posible.", TR_LEVEL_HIGH);
	expect_urgency("Bestellung", "Bitte dringend prüfen.", TR_LEVEL_HIGH);
	expect_urgency("Commande", "C'est urgent, merci de traiter immédiatement.", TR_LEVEL_HIGH);
	expect_urgency("Pedido", "Preciso de uma resposta com urgência.", TR_LEVEL_HIGH);
	/* Describing a bug is not asking for speed. */
	expect_urgency("Bug", "The app crashes immediately when I open a report.", TR_LEVEL_MEDIUM);
	expect_urgency("Fehler", "Die App stürzt sofort ab, wenn ich einen Bericht öffne.", TR_LEVEL_MEDIUM);
	/* Out-of-office wording is not the customer's urgency. */
	expect_urgency("Réponse automatique", "Je suis absent. Pour toute urgence, contactez Claire.", TR_LEVEL_MEDIUM);
}

static void test_no_rush_feature_request_is_p4(void **state)
{
	(void)state;
	result *r = decide("Idea", "Feature request: it would be nice to have a PDF export of reports. "
	                           "No rush at all, just an idea.");
	assert_string_equal(r->d.category, "feature");
	assert_int_equal(r->d.urgency, TR_LEVEL_LOW);
	assert_int_equal(r->d.priority, 4);
	assert_string_equal(r->d.team, "product");
	assert_false(r->d.escalate);
	result_free(r);
	/* "No rush" does not outweigh an outage. */
	r = decide("Two things", "No rush on the invoice question, but the API is down for all our users.");
	assert_int_equal(r->d.urgency, TR_LEVEL_HIGH);
	assert_int_equal(r->d.priority, 1);
	result_free(r);
}

/* ------------------------------------------------------------------ typos and categories */

static void test_typos_still_classify(void **state)
{
	(void)state;
	expect_category("pasword", "hi the pasword reset mail never comes, what do i do", "account");
	expect_category("help", "i cant login to my acount since yesterday", "account");
	expect_category("login", "cant login since the update, tried twice", "account");
	expect_category("money", "i want a refnud for last month please", "billing");
	expect_category("invoice", "where is my invocie for october", "billing");
	expect_category("help", "i forgto my password, can you reset it", "account");
}

static void test_typical_message_per_category(void **state)
{
	(void)state;
	expect_category("Charged twice", "I was charged twice for my subscription this month. "
	                "Please refund the duplicate payment.", "billing");
	expect_category("Export", "The CSV export fails with an error every time I try, the page just hangs.",
	                "technical");
	expect_category("Password", "I forgot my password and the reset email never arrives.", "account");
	expect_category("Suggestion", "Would love to see a calendar view for tasks. Any plans to add it in a "
	                "future release?", "feature");
	expect_category("Webhooks", "Our webhook endpoint gets events with an invalid HMAC signature, although "
	                "the API key and signing secret are correct.", "integration");
	expect_category("Security questionnaire", "Our security team asks whether you support SAML single "
	                "sign-on and whether data is encrypted at rest.", "security");
	expect_category("DPA", "Please send us your data processing agreement and confirm where personal data "
	                "is stored under GDPR.", "legal");
	expect_category("Opening hours", "Hello, what are your opening hours during the holidays?", "general");
	/* The same in the other languages. */
	expect_category("Factura", "Me cobraron dos veces la factura de octubre, quiero el reembolso.", "billing");
	expect_category("Rechnung", "Die Rechnung wurde doppelt abgebucht, bitte um Erstattung.", "billing");
	expect_category("Facture", "J'ai été prélevé deux fois, merci de me rembourser.", "billing");
	expect_category("Fatura", "Fui cobrado duas vezes, quero o estorno.", "billing");
	expect_category("Export", "Der Export funktioniert nicht, es kommt immer ein Fehler.", "technical");
	expect_category("Export", "La exportación no funciona, siempre sale un error.", "technical");
	expect_category("Connexion", "Je n'arrive plus à me connecter, mot de passe oublié.", "account");
	expect_category("Senha", "Esqueci minha senha e não consigo entrar na conta.", "account");
}

/* Mailing-list and news wording: no trigger. */
static void test_list_wording_does_not_trigger(void **state)
{
	(void)state;
	static const char *const bodies[] = {
		"Prices went down again this quarter and enrollment is down to 800 students.",
		"The Attorney General said the court will rule next week on the lawsuit against the company.",
		"I hacked together a small script that rebuilds the index every night.",
		"The kernel patch fixes a privilege escalation that was found last year; upgrade soon.",
		"This issue used to escalate into a religious war on the list.",
		"The report is about political corruption in the region.",
		"The download was corrupted, so I fetched it again from the mirror.",
		"He lost all interest in the project after the release.",
		"We are switching to Python 3 for the build scripts.",
		"If your email client was ever compromised, a sniffer would see everything.",
	};
	const tr_trigger serious[] = {
		TR_TRIGGER_LEGAL, TR_TRIGGER_SECURITY, TR_TRIGGER_OUTAGE, TR_TRIGGER_DATA_LOSS,
		TR_TRIGGER_CHURN, TR_TRIGGER_ESCALATION_REQUEST,
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bodies); i++) {
		for (size_t t = 0; t < G_N_ELEMENTS(serious); t++)
			expect_trigger("en", serious[t], "Re: [list] weekly notes", bodies[i], false);
	}
}

/* ------------------------------------------------------------------ demo samples */

static void test_demo_samples(void **state)
{
	(void)state;
	result *r = decide_sample("01-outage-en.eml");
	assert_string_equal(r->d.category, "technical");
	assert_int_equal(r->d.priority, 1);
	assert_true(has_trigger(&r->d, TR_TRIGGER_OUTAGE));
	assert_true(has_trigger(&r->d, TR_TRIGGER_ESCALATION_REQUEST));
	assert_string_equal(r->d.team, "engineering");
	assert_string_equal(r->d.tier, "L3");
	assert_true(r->d.escalate);
	assert_true(r->d.ack);
	/* Enterprise P1: 15 minutes around the clock. */
	assert_int_equal(r->d.sla.first_response_due, MONDAY_1600_UTC + 15 * 60);
	result_free(r);

	r = decide_sample("02-security-en.eml");
	assert_string_equal(r->d.category, "security");
	assert_true(has_trigger(&r->d, TR_TRIGGER_SECURITY));
	assert_int_equal(r->d.priority, 1);  /* a possible breach of customer data */
	assert_string_equal(r->d.team, "security");
	assert_true(r->d.escalate);
	result_free(r);

	r = decide_sample("03-legal-de.eml");
	assert_string_equal(r->d.category, "legal");
	assert_true(has_trigger(&r->d, TR_TRIGGER_LEGAL));
	assert_int_equal(r->d.priority, 2);
	assert_string_equal(r->d.team, "legal");
	assert_string_equal(r->d.language, "de");
	assert_true(r->d.escalate);
	result_free(r);

	r = decide_sample("04-billing-es.eml");
	assert_string_equal(r->d.category, "billing");
	assert_true(has_trigger(&r->d, TR_TRIGGER_COMPLAINT));
	assert_true(has_trigger(&r->d, TR_TRIGGER_CHURN));
	assert_int_equal(r->d.priority, 3);
	assert_string_equal(r->d.team, "billing");
	assert_string_equal(r->d.language, "es");
	assert_true(r->d.escalate);  /* a churn threat: someone looks now */
	result_free(r);

	r = decide_sample("05-autoreply-fr.eml");
	assert_false(r->d.ack);
	assert_false(r->d.escalate);
	assert_int_equal(r->d.triggers, 0);
	assert_int_equal(r->d.priority, 4);
	result_free(r);

	r = decide_sample("06-reply-pt.eml");
	assert_true(has_trigger(&r->d, TR_TRIGGER_COMPLAINT));  /* "ainda não foi resolvido" */
	assert_int_equal(r->d.priority, 3);
	assert_string_equal(r->d.category, "billing");  /* nota fiscal */
	assert_string_equal(r->d.language, "pt");
	assert_true(r->d.ack);
	assert_false(r->d.escalate);
	result_free(r);

	r = decide_sample("07-polite-enterprise-p1.eml");
	assert_string_equal(r->d.category, "technical");
	assert_true(has_trigger(&r->d, TR_TRIGGER_OUTAGE));
	assert_int_equal(r->d.priority, 1);
	assert_string_equal(r->d.team, "engineering");
	assert_true(r->d.escalate);
	assert_int_equal(r->d.sla.first_response_due, MONDAY_1600_UTC + 15 * 60);
	result_free(r);

	r = decide_sample("08-feature-html.eml");
	assert_string_equal(r->d.category, "feature");
	assert_int_equal(r->d.priority, 4);
	assert_string_equal(r->d.team, "product");
	assert_false(r->d.escalate);
	assert_int_equal(r->d.triggers, 0);
	result_free(r);

	r = decide_sample("09-login-typos-en.eml");
	assert_string_equal(r->d.category, "account");
	assert_int_equal(r->d.priority, 3);
	assert_string_equal(r->d.team, "support");
	assert_false(r->d.escalate);
	result_free(r);

	r = decide_sample("10-bounce.eml");
	assert_false(r->d.ack);
	assert_false(r->d.escalate);
	assert_int_equal(r->d.priority, 4);
	result_free(r);

	r = decide_sample("11-churn-en.eml");
	assert_true(has_trigger(&r->d, TR_TRIGGER_CHURN));
	assert_true(has_trigger(&r->d, TR_TRIGGER_COMPLAINT));
	assert_true(has_trigger(&r->d, TR_TRIGGER_ESCALATION_REQUEST));
	assert_string_equal(r->d.category, "technical");  /* the broken export */
	assert_string_equal(r->d.team, "account-management");
	assert_string_equal(r->d.assignee, "hugo");
	assert_true(r->d.escalate);
	result_free(r);

	r = decide_sample("12-integration-outlook-en.eml");
	assert_string_equal(r->d.category, "integration");
	assert_string_equal(r->d.team, "devrel");
	assert_int_equal(r->d.priority, 3);
	assert_false(r->d.escalate);
	result_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_trigger_in_five_languages),
		cmocka_unit_test(test_triggers_escalate_and_route),
		cmocka_unit_test(test_negation_does_not_trigger),
		cmocka_unit_test(test_quoted_history_does_not_count),
		cmocka_unit_test(test_polite_enterprise_outage_is_p1),
		cmocka_unit_test(test_urgency),
		cmocka_unit_test(test_no_rush_feature_request_is_p4),
		cmocka_unit_test(test_typos_still_classify),
		cmocka_unit_test(test_typical_message_per_category),
		cmocka_unit_test(test_list_wording_does_not_trigger),
		cmocka_unit_test(test_demo_samples),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

/* cmd_milter.c — `triage milter`: the libmilter filter in the foreground */
#include <stdio.h>
#include <string.h>

#include "channels/milter.h"
#include "cli/cli.h"
#include "core/log.h"
#include "daemon/mailstore.h"

int tr_cli_milter(int argc, char **argv)
{
	char *config = NULL, *listen = NULL, *db = NULL;
	gboolean no_store = FALSE;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "listen", 'l', 0, G_OPTION_ARG_STRING, &listen,
		  "listen here instead of [milter] listen (inet:PORT@HOST, inet:HOST:PORT, unix:PATH)", "ADDRESS" },
		{ "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ticket database instead of [store] path", "PATH" },
		{ "no-store", 0, 0, G_OPTION_ARG_NONE, &no_store, "classification only: headers, no tickets", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("milter", "",
	                  "Run the milter (Postfix smtpd_milters, Sendmail INPUT_MAIL_FILTER) in the\n"
	                  "foreground until SIGTERM, SIGINT or SIGHUP.  Mail to the [milter] recipients\n"
	                  "is classified, committed to the ticket store and gets X-Triage-* headers;\n"
	                  "other mail passes untouched.  See docs/mta.md.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	if (argc > 1) {
		fprintf(stderr, "triage milter: unexpected argument '%s'\n", argv[1]);
		return TR_EXIT_USAGE;
	}
	int status = TR_EXIT_USAGE;
	tr_milter_settings settings;
	memset(&settings, 0, sizeof(settings));
	tr_store_settings store_settings;
	memset(&store_settings, 0, sizeof(store_settings));
	tr_engine_slot *engines = NULL;
	tr_mailstore *mailstore = NULL;
	tr_milter *milter = NULL;
	char *domain = NULL;
	bool fail_classify = false;
	GError *error = NULL;

	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		goto out;
	const tr_conf *conf = tr_engine_conf(engine);
	tr_diag *diag = tr_diag_new();
	tr_milter_settings_load(&settings, conf, listen, diag);
	if (!no_store)
		tr_store_settings_load(&store_settings, conf, db, diag);
	const GPtrArray *msgs = tr_diag_messages(diag);
	for (guint i = 0; i < msgs->len; i++)
		fprintf(stderr, "triage milter: %s\n", (const char *)g_ptr_array_index(msgs, i));
	unsigned errors = tr_diag_error_count(diag);
	tr_diag_free(&diag);
	if (errors > 0 || !tr_cli_test_fault("milter", &fail_classify))
		goto out;
	engines = tr_engine_slot_new(tr_engine_ref(engine));
	tr_milter_store store = { NULL, NULL, NULL };
	if (!no_store) {
		tr_outbox_options outbox;
		tr_cli_outbox_options(engine, &outbox, &domain);
		mailstore = tr_mailstore_new(&store_settings, engines, &outbox);
		if (!tr_mailstore_probe(mailstore, &error)) {
			tr_log_error("milter: the ticket store cannot be opened: %s; on_error applies until it can",
			             error->message);
			g_clear_error(&error);
		}
		store = (tr_milter_store){ tr_mailstore_ingest, tr_mailstore_reply, mailstore };
	}
	milter = tr_milter_new(engines, &settings, &store);
	tr_milter_fail_classify(milter, fail_classify);
	tr_log_info("milter: store %s", mailstore != NULL ? store_settings.path : "none (classification only)");
	if (!tr_milter_run(milter, &error)) {
		fprintf(stderr, "triage milter: %s\n", error->message);
		status = TR_EXIT_FAIL;
		goto out;
	}
	tr_log_info("milter: stopped");
	status = TR_EXIT_OK;
out:
	g_clear_error(&error);
	tr_milter_free(&milter);
	tr_mailstore_free(&mailstore);
	tr_engine_slot_free(&engines);
	tr_milter_settings_clear(&settings);
	tr_store_settings_clear(&store_settings);
	tr_engine_free(&engine);
	g_free(domain);
	g_free(config);
	g_free(listen);
	g_free(db);
	return status;
}

/* cmd_milter.c — `triage milter`: the libmilter filter in the foreground */
#define G_LOG_DOMAIN "triage"
#include <stdio.h>
#include <string.h>

#include "channels/milter.h"
#include "cli/cli.h"

int tr_cli_milter(int argc, char **argv)
{
	char *config = NULL;
	char *listen = NULL;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "listen", 'l', 0, G_OPTION_ARG_STRING, &listen,
		  "listen here instead of [milter] listen (inet:PORT@HOST, inet:HOST:PORT, unix:PATH)", "ADDRESS" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("milter", "",
	                  "Run the milter (Postfix smtpd_milters, Sendmail INPUT_MAIL_FILTER) in the\n"
	                  "foreground until SIGTERM, SIGINT or SIGHUP.  Mail to the [milter] recipients\n"
	                  "is classified and gets X-Triage-* headers; other mail passes untouched.\n"
	                  "See docs/mta.md.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	if (argc > 1) {
		fprintf(stderr, "triage milter: unexpected argument '%s'\n", argv[1]);
		return TR_EXIT_USAGE;
	}
	int status = TR_EXIT_USAGE;
	tr_milter_settings settings;
	memset(&settings, 0, sizeof(settings));
	tr_milter *milter = NULL;
	tr_channel_ingest_hook ingest;
	tr_channel_reply_hook reply;
	bool fail_classify;
	GError *error = NULL;

	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		goto out;
	tr_diag *diag = tr_diag_new();
	tr_milter_settings_load(&settings, tr_engine_conf(engine), listen, diag);
	const GPtrArray *msgs = tr_diag_messages(diag);
	for (guint i = 0; i < msgs->len; i++)
		fprintf(stderr, "triage milter: %s\n", (const char *)g_ptr_array_index(msgs, i));
	unsigned errors = tr_diag_error_count(diag);
	tr_diag_free(&diag);
	if (errors > 0)
		goto out;
	if (!tr_cli_test_hooks("milter", &ingest, &reply, &fail_classify))
		goto out;
	milter = tr_milter_new(engine, &settings, &ingest, &reply);
	tr_milter_fail_classify(milter, fail_classify);
	if (!tr_milter_run(milter, &error)) {
		fprintf(stderr, "triage milter: %s\n", error->message);
		status = TR_EXIT_FAIL;
		goto out;
	}
	g_message("milter: stopped");
	status = TR_EXIT_OK;
out:
	g_clear_error(&error);
	tr_milter_free(&milter);
	tr_milter_settings_clear(&settings);
	tr_cli_test_hooks_free();
	tr_engine_free(&engine);
	g_free(config);
	g_free(listen);
	return status;
}

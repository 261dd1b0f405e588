/* cmd_deliver.c — `triage deliver`: send what the outbox holds, now */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "daemon/deliver.h"

int tr_cli_deliver(int argc, char **argv)
{
	char *config = NULL, *db = NULL, *now_text = NULL;
	gint max = 0;
	gboolean no_recover = FALSE;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ticket database (overrides [store] path)", "PATH" },
		{ "now", 0, 0, G_OPTION_ARG_STRING, &now_text, "the clock (default now)", "TIME" },
		{ "max", 0, 0, G_OPTION_ARG_INT, &max, "deliver at most N messages", "N" },
		{ "no-recover", 0, 0, G_OPTION_ARG_NONE, &no_recover,
		  "do not treat rows left half-sent as interrupted (another worker is running)", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("deliver", "",
	                  "Deliver the mail actions that are due (acknowledgments, forwards, notices)\n"
	                  "through the [smtp] relay, record each outcome, and exit — for cron, or\n"
	                  "when no daemon runs.  Exit status 1 when the store failed.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	if (now_text != NULL && !tr_cli_parse_time(now_text, &now)) {
		fprintf(stderr, "triage deliver: --now '%s' is not a time\n", now_text);
		return TR_EXIT_USAGE;
	}
	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		return TR_EXIT_USAGE;
	int status = TR_EXIT_OK;
	tr_diag *diag = tr_diag_new();
	tr_smtp_config smtp_config = { 0 };   /* filled by tr_smtp_config_load() */
	bool have_relay = g_key_file_has_group(tr_conf_keyfile(tr_engine_conf(engine)), "smtp");
	if (!have_relay) {
		fprintf(stderr, "triage deliver: %s has no [smtp] relay: nothing can be delivered\n",
		        tr_conf_path(tr_engine_conf(engine)));
		status = TR_EXIT_USAGE;
	} else if (!tr_smtp_config_load(&smtp_config, tr_engine_conf(engine), diag)) {
		char *text = tr_diag_join(diag);
		fprintf(stderr, "%s\n", text);
		g_free(text);
		status = TR_EXIT_USAGE;
	}
	tr_store *store = status == TR_EXIT_OK ? tr_cli_store(engine, db) : NULL;
	if (status == TR_EXIT_OK && store == NULL)
		status = TR_EXIT_USAGE;
	if (status == TR_EXIT_OK) {
		GError *error = NULL;
		tr_smtp_client *smtp = tr_smtp_client_new(&smtp_config, &error);
		if (smtp == NULL) {
			fprintf(stderr, "triage deliver: %s\n", error->message);
			g_error_free(error);
			status = TR_EXIT_USAGE;
		} else {
			char *from = tr_conf_string(tr_engine_conf(engine), "outbound", "envelope_from",
			                            tr_outbound_from_address(tr_engine_outbound(engine)));
			tr_deliver *d = tr_deliver_new(store, engine, smtp, &smtp_config.limits, from, "cli");
			tr_deliver_stats stats = { 0 };
			if ((!no_recover && tr_deliver_recover(d, now, &error) < 0) ||
			    !tr_deliver_run(d, now, (unsigned)MAX(max, 0), &stats, &error)) {
				fprintf(stderr, "triage deliver: %s\n", error->message);
				g_error_free(error);
				status = TR_EXIT_FAIL;
			}
			printf("deliver: %u sent, %u retry later, %u failed permanently, %u ambiguous, %u not renderable\n",
			       stats.sent, stats.temporary, stats.permanent, stats.ambiguous, stats.render_failed);
			tr_deliver_free(&d);
			g_free(from);
			tr_smtp_client_free(&smtp);
		}
	}
	tr_store_close(&store);
	tr_smtp_config_clear(&smtp_config);
	tr_diag_free(&diag);
	tr_engine_free(&engine);
	g_free(config);
	g_free(db);
	g_free(now_text);
	return status;
}

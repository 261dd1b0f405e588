/* cmd_sla_tick.c — `triage sla-tick`: queue the SLA ladder actions due now */
#include <stdio.h>

#include "cli/cli.h"
#include "store/sla.h"

int tr_cli_sla_tick(int argc, char **argv)
{
	char *config = NULL, *db = NULL, *now_text = NULL;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ticket database (overrides [store] path)", "PATH" },
		{ "now", 0, 0, G_OPTION_ARG_STRING, &now_text, "the clock (ISO 8601 or Unix seconds; default now)", "TIME" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("sla-tick", "",
	                  "Find tickets past 50/75/100/125 % of an SLA clock and escalations nobody\n"
	                  "acknowledged, and queue each ladder action exactly once (safe to run\n"
	                  "from cron at any rate, and beside a running daemon).",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	if (now_text != NULL && !tr_cli_parse_time(now_text, &now)) {
		fprintf(stderr, "triage sla-tick: --now '%s' is not a time\n", now_text);
		return TR_EXIT_USAGE;
	}
	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		return TR_EXIT_USAGE;
	tr_store *store = tr_cli_store(engine, db);
	int status = TR_EXIT_OK;
	if (store == NULL) {
		status = TR_EXIT_USAGE;
	} else {
		tr_outbox_options options;
		char *domain = NULL;
		tr_cli_outbox_options(engine, &options, &domain);
		tr_sla_tick_result r;
		GError *error = NULL;
		if (!tr_sla_tick(store, tr_engine_policy(engine), &options, now, &r, &error)) {
			fprintf(stderr, "triage sla-tick: %s\n", error->message);
			g_error_free(error);
			status = TR_EXIT_FAIL;
		} else {
			printf("sla-tick: %u tickets checked, %u warnings, %u breaches, %u director escalations, "
			       "%u unacknowledged escalations moved up\n",
			       r.checked, r.warnings, r.breaches, r.directors, r.escalations);
		}
		g_free(domain);
		tr_store_close(&store);
	}
	tr_engine_free(&engine);
	g_free(config);
	g_free(db);
	g_free(now_text);
	return status;
}

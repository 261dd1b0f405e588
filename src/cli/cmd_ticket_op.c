/* cmd_ticket_op.c — `triage ack|assign|pause|resume|resolve TICKET` */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "store/ticket.h"

int tr_cli_ticket_op(int argc, char **argv)
{
	const char *op = argv[0];
	char *config = NULL, *db = NULL, *by = NULL, *now_text = NULL;
	gboolean waiting = FALSE;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ticket database (overrides [store] path)", "PATH" },
		{ "by", 0, 0, G_OPTION_ARG_STRING, &by, "who does it (default: your user name)", "NAME" },
		{ "now", 0, 0, G_OPTION_ARG_STRING, &now_text, "when (default now; for tests and replays)", "TIME" },
		{ "waiting", 0, 0, G_OPTION_ARG_NONE, &waiting, "pause: we wait for the customer (a reply resumes)", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	static const struct { const char *op, *params, *summary; } help[] = {
		{ "ack", "TICKET", "Record the first response and acknowledge the escalation (stops the ladder)." },
		{ "assign", "TICKET NAME", "Assign the ticket to a person." },
		{ "pause", "TICKET", "Pause the SLA clocks (--waiting: until the customer replies)." },
		{ "resume", "TICKET", "Resume the SLA clocks." },
		{ "resolve", "TICKET", "Resolve the ticket (a customer reply within the reopen window reopens it)." },
	};
	const char *params = "TICKET", *summary = "";
	for (size_t i = 0; i < G_N_ELEMENTS(help); i++) {
		if (strcmp(op, help[i].op) == 0) {
			params = help[i].params;
			summary = help[i].summary;
		}
	}
	char *command = g_strdup(op);
	if (!tr_cli_parse(command, params, summary, entries, &argc, &argv)) {
		g_free(command);
		return TR_EXIT_USAGE;
	}
	int want = strcmp(op, "assign") == 0 ? 3 : 2;
	if (argc != want) {
		fprintf(stderr, "triage %s: usage: triage %s %s [--by NAME]\n", op, op, params);
		g_free(command);
		return TR_EXIT_USAGE;
	}
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	if (now_text != NULL && !tr_cli_parse_time(now_text, &now)) {
		fprintf(stderr, "triage %s: --now '%s' is not a time\n", op, now_text);
		g_free(command);
		return TR_EXIT_USAGE;
	}
	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL) {
		g_free(command);
		return TR_EXIT_USAGE;
	}
	tr_store *store = tr_cli_store(engine, db);
	int status = TR_EXIT_OK;
	if (store == NULL) {
		status = TR_EXIT_USAGE;
	} else {
		const tr_policy *policy = tr_engine_policy(engine);
		const char *actor = tr_cli_actor(by);
		int64_t id = tr_store_parse_ticket(store, argv[1]);
		GError *error = NULL;
		bool ok = false;
		if (id == 0)
			g_set_error(&error, TR_STORE_ERROR, TR_STORE_ERROR_NOT_FOUND, "not a ticket id");
		else if (strcmp(op, "ack") == 0)
			ok = tr_ticket_ack(store, policy, id, actor, now, &error);
		else if (strcmp(op, "assign") == 0)
			ok = tr_ticket_assign(store, id, argv[2], actor, now, &error);
		else if (strcmp(op, "pause") == 0)
			ok = tr_ticket_pause(store, policy, id, waiting, actor, now, &error);
		else if (strcmp(op, "resume") == 0)
			ok = tr_ticket_resume(store, policy, id, actor, now, &error);
		else
			ok = tr_ticket_resolve(store, policy, id, actor, now, &error);
		if (!ok) {
			fprintf(stderr, "triage %s: %s: %s\n", op, argv[1], error->message);
			g_error_free(error);
			status = TR_EXIT_FAIL;
		} else {
			char buf[40];
			printf("%s: %s by %s\n", tr_store_format_ticket(store, id, buf, sizeof(buf)), op, actor);
		}
		tr_store_close(&store);
	}
	tr_engine_free(&engine);
	g_free(command);
	g_free(config);
	g_free(db);
	g_free(by);
	g_free(now_text);
	return status;
}

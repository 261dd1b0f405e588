/* cmd_outbox.c — `triage outbox [--failed]`, `triage outbox retry ID` */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/json.h"
#include "store/context.h"

int tr_cli_outbox(int argc, char **argv)
{
	char *config = NULL, *db = NULL;
	gboolean failed = FALSE, json = FALSE;
	gint limit = 0;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ticket database (overrides [store] path)", "PATH" },
		{ "failed", 0, 0, G_OPTION_ARG_NONE, &failed, "only failed and ambiguous deliveries", NULL },
		{ "limit", 0, 0, G_OPTION_ARG_INT, &limit, "at most N rows", "N" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "one JSON object per row", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("outbox", "[retry ID | show ID]",
	                  "List queued side effects (acknowledgments, forwards, room posts, notices)\n"
	                  "with their state; `retry ID` puts a failed or ambiguous one back in the queue;\n"
	                  "`show ID` prints the message as it would be sent now.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	bool retry = argc >= 2 && strcmp(argv[1], "retry") == 0;
	bool show = argc >= 2 && strcmp(argv[1], "show") == 0;
	if (((retry || show) && argc != 3) || (!retry && !show && argc != 1)) {
		fprintf(stderr, "triage outbox: usage: triage outbox [--failed] | triage outbox retry ID | "
		                "triage outbox show ID\n");
		return TR_EXIT_USAGE;
	}
	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		return TR_EXIT_USAGE;
	tr_store *store = tr_cli_store(engine, db);
	int status = TR_EXIT_OK;
	if (store == NULL) {
		status = TR_EXIT_USAGE;
	} else if (retry) {
		GError *error = NULL;
		gint64 id = g_ascii_strtoll(argv[2], NULL, 10);
		if (!tr_outbox_requeue(store, id, g_get_real_time() / G_USEC_PER_SEC, &error)) {
			fprintf(stderr, "triage outbox: %s\n", error->message);
			g_error_free(error);
			status = TR_EXIT_FAIL;
		} else {
			printf("outbox %s: queued again\n", argv[2]);
		}
	} else if (show) {
		gint64 id = g_ascii_strtoll(argv[2], NULL, 10);
		tr_outbox_iter *it = tr_outbox_list_init(store, false, 0);
		tr_outbox_row r;
		bool found = false;
		while (!found && tr_outbox_list_next(it, &r)) {
			if (r.id == id) {
				found = true;
				break;
			}
			tr_outbox_row_clear(&r);
		}
		tr_outbox_list_deinit(&it);
		if (!found) {
			fprintf(stderr, "triage outbox: no row %s\n", argv[2]);
			status = TR_EXIT_FAIL;
		} else {
			GError *error = NULL;
			char *text = tr_context_render(store, engine, &r, g_get_real_time() / G_USEC_PER_SEC, NULL, &error);
			if (text == NULL) {
				fprintf(stderr, "triage outbox: row %s: %s\n", argv[2], error->message);
				g_error_free(error);
				status = TR_EXIT_FAIL;
			} else {
				fputs(text, stdout);
				g_free(text);
			}
			tr_outbox_row_clear(&r);
		}
	} else {
		tr_outbox_iter *it = tr_outbox_list_init(store, failed, (unsigned)MAX(limit, 0));
		tr_outbox_row r;
		if (!json)
			printf("%-6s %-10s %-15s %-5s %-32s %-9s %-3s %s\n", "ID", "TICKET", "KIND", "CHAN", "RECIPIENT",
			       "STATE", "TRY", "LAST ERROR / NEXT ATTEMPT");
		while (tr_outbox_list_next(it, &r)) {
			char ticket[40] = "-";
			if (r.ticket_id != 0)
				tr_store_format_ticket(store, r.ticket_id, ticket, sizeof(ticket));
			char *next = tr_json_time(r.next_attempt_at, 0);
			if (json) {
				JsonObject *o = json_object_new();
				json_object_set_int_member(o, "id", r.id);
				json_object_set_string_member(o, "ticket", ticket);
				json_object_set_string_member(o, "action", r.action_key);
				json_object_set_string_member(o, "kind", r.kind);
				json_object_set_string_member(o, "channel", r.channel);
				json_object_set_string_member(o, "recipient", r.recipient);
				json_object_set_string_member(o, "template", r.template_name);
				json_object_set_string_member(o, "state", r.state);
				json_object_set_int_member(o, "attempts", r.attempts);
				json_object_set_string_member(o, "next_attempt", next);
				json_object_set_string_member(o, "last_error", r.last_error);
				json_object_set_string_member(o, "message_id", r.message_id);
				JsonNode *n = json_node_init_object(json_node_alloc(), o);
				char *text = json_to_string(n, FALSE);
				printf("%s\n", text);
				g_free(text);
				json_node_unref(n);
				json_object_unref(o);
			} else {
				printf("%-6" G_GINT64_FORMAT " %-10s %-15s %-5s %-32.32s %-9s %-3d %s\n", (gint64)r.id, ticket,
				       r.kind, r.channel, r.recipient, r.state, r.attempts,
				       r.last_error != NULL ? r.last_error : strcmp(r.state, "sent") == 0 ? "" : next);
			}
			g_free(next);
			tr_outbox_row_clear(&r);
		}
		tr_outbox_list_deinit(&it);
	}
	tr_store_close(&store);
	tr_engine_free(&engine);
	g_free(config);
	g_free(db);
	return status;
}

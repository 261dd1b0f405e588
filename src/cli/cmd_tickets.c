/* cmd_tickets.c — `triage tickets` and `triage show` */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/json.h"
#include "store/sla.h"
#include "store/ticket.h"

static char *when(gint64 t)
{
	return t > 0 && t < G_MAXINT64 ? tr_json_time(t, 0) : g_strdup("-");
}

static void add_string(JsonBuilder *b, const char *name, const char *value)
{
	json_builder_set_member_name(b, name);
	if (value != NULL)
		json_builder_add_string_value(b, value);
	else
		json_builder_add_null_value(b);
}

static void add_time(JsonBuilder *b, const char *name, gint64 t)
{
	char *text = t > 0 && t < G_MAXINT64 ? tr_json_time(t, 0) : NULL;
	add_string(b, name, text);
	g_free(text);
}

/* SLA state of one clock: consumed share and due time. */
static void add_clock(JsonBuilder *b, const tr_policy *policy, const tr_ticket *t, bool resolution, gint64 now)
{
	gint64 target = resolution ? t->res_target : t->fr_target;
	gint64 consumed = tr_sla_consumed(policy, t, resolution, now);
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "target_minutes");
	json_builder_add_int_value(b, target / 60);
	json_builder_set_member_name(b, "business");
	json_builder_add_boolean_value(b, resolution ? t->res_business : t->fr_business);
	json_builder_set_member_name(b, "consumed_percent");
	json_builder_add_int_value(b, target > 0 ? consumed * 100 / target : 0);
	add_time(b, "due", resolution ? t->res_due : t->fr_due);
	add_time(b, "met_at", resolution ? t->resolved_at : t->first_response_at);
	json_builder_set_member_name(b, "running");
	json_builder_add_boolean_value(b, t->clock_since != 0 && (resolution ? t->resolved_at : t->first_response_at) == 0);
	json_builder_end_object(b);
}

static void ticket_json(JsonBuilder *b, const tr_store *store, const tr_policy *policy, const tr_ticket *t,
                        gint64 now)
{
	json_builder_begin_object(b);
	add_string(b, "ticket", t->public_id);
	add_string(b, "status", t->status);
	add_string(b, "priority", tr_priority_name(t->priority));
	add_string(b, "category", t->category);
	add_string(b, "team", t->team);
	add_string(b, "tier", t->tier);
	add_string(b, "assignee", t->assignee);
	add_string(b, "requester", t->requester);
	add_string(b, "account", t->account);
	add_string(b, "customer_tier", t->customer_tier);
	add_string(b, "channel", t->channel);
	add_string(b, "subject", t->subject);
	add_string(b, "language", t->language);
	add_string(b, "triggers", t->triggers);
	json_builder_set_member_name(b, "escalated");
	json_builder_add_boolean_value(b, t->escalated);
	json_builder_set_member_name(b, "incident");
	json_builder_add_boolean_value(b, t->is_incident);
	json_builder_set_member_name(b, "reopened");
	json_builder_add_int_value(b, t->reopened);
	if (t->parent_id != 0) {
		char buf[40];
		add_string(b, "parent", tr_store_format_ticket(store, t->parent_id, buf, sizeof(buf)));
	}
	add_string(b, "reference", t->reference);
	add_time(b, "created", t->created_at);
	add_time(b, "updated", t->updated_at);
	json_builder_set_member_name(b, "sla");
	json_builder_begin_object(b);
	add_string(b, "calendar", t->calendar);
	json_builder_set_member_name(b, "first_response");
	add_clock(b, policy, t, false, now);
	json_builder_set_member_name(b, "resolution");
	add_clock(b, policy, t, true, now);
	json_builder_end_object(b);
	json_builder_end_object(b);
}

static void print_node(JsonBuilder *b, gboolean pretty)
{
	JsonNode *root = json_builder_get_root(b);
	char *text = json_to_string(root, pretty);
	printf("%s\n", text);
	g_free(text);
	json_node_unref(root);
}

typedef struct {
	char *config, *db, *team, *priority, *since, *now_text;
	gboolean open_only, json;
	gint limit;
} list_opts;

int tr_cli_tickets(int argc, char **argv)
{
	list_opts o = { 0 };
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &o.config, "configuration file", "CONFIG" },
		{ "db", 0, 0, G_OPTION_ARG_FILENAME, &o.db, "ticket database (overrides [store] path)", "PATH" },
		{ "open", 0, 0, G_OPTION_ARG_NONE, &o.open_only, "only tickets not resolved", NULL },
		{ "priority", 0, 0, G_OPTION_ARG_STRING, &o.priority, "only this priority (P1..P4)", "P" },
		{ "team", 0, 0, G_OPTION_ARG_STRING, &o.team, "only this team", "TEAM" },
		{ "limit", 0, 0, G_OPTION_ARG_INT, &o.limit, "at most N tickets", "N" },
		{ "now", 0, 0, G_OPTION_ARG_STRING, &o.now_text, "clock for SLA figures (default now)", "TIME" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &o.json, "one JSON object per ticket per line", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("tickets", "", "List tickets, most urgent first.", entries, &argc, &argv))
		return TR_EXIT_USAGE;
	tr_ticket_filter f = { .open_only = o.open_only, .team = o.team, .limit = (unsigned)MAX(o.limit, 0) };
	if (o.priority != NULL && !tr_priority_parse(o.priority, &f.priority)) {
		fprintf(stderr, "triage tickets: --priority '%s' is not P1..P4\n", o.priority);
		return TR_EXIT_USAGE;
	}
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	if (o.now_text != NULL && !tr_cli_parse_time(o.now_text, &now)) {
		fprintf(stderr, "triage tickets: --now '%s' is not a time\n", o.now_text);
		return TR_EXIT_USAGE;
	}
	tr_engine *engine = tr_cli_engine(tr_cli_config_path(o.config));
	if (engine == NULL)
		return TR_EXIT_USAGE;
	tr_store *store = tr_cli_store(engine, o.db);
	if (store == NULL) {
		tr_engine_free(&engine);
		return TR_EXIT_USAGE;
	}
	tr_ticket_iter *it = tr_ticket_list_init(store, &f);
	tr_ticket t;
	unsigned n = 0;
	if (!o.json)
		printf("%-11s %-3s %-9s %-12s %-18s %-10s %-28s %s\n", "TICKET", "PRI", "STATUS", "CATEGORY",
		       "TEAM", "ASSIGNEE", "FIRST RESPONSE DUE", "SUBJECT");
	while (tr_ticket_list_next(it, &t)) {
		if (o.json) {
			JsonBuilder *b = json_builder_new();
			ticket_json(b, store, tr_engine_policy(engine), &t, now);
			print_node(b, FALSE);
			g_object_unref(b);
		} else {
			char *due = t.first_response_at != 0 ? g_strdup("met") : when(t.fr_due);
			printf("%-11s %-3s %-9s %-12s %-18s %-10s %-28s %.60s\n", t.public_id, tr_priority_name(t.priority),
			       t.status, t.category, t.team, t.assignee ? t.assignee : "-", due, t.subject);
			g_free(due);
		}
		tr_ticket_clear(&t);
		n++;
	}
	tr_ticket_list_deinit(&it);
	if (!o.json)
		fprintf(stderr, "%u ticket%s\n", n, n == 1 ? "" : "s");
	tr_store_close(&store);
	tr_engine_free(&engine);
	g_free(o.config);
	g_free(o.db);
	g_free(o.team);
	g_free(o.priority);
	g_free(o.now_text);
	return TR_EXIT_OK;
}

int tr_cli_show(int argc, char **argv)
{
	char *config = NULL, *db = NULL, *now_text = NULL;
	gboolean json = FALSE;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ticket database (overrides [store] path)", "PATH" },
		{ "now", 0, 0, G_OPTION_ARG_STRING, &now_text, "clock for SLA figures (default now)", "TIME" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "the ticket as one JSON object", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("show", "TICKET", "One ticket: state, SLA clocks, messages with their decisions, events.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	if (argc != 2) {
		fprintf(stderr, "triage show: give one ticket id (try --help)\n");
		return TR_EXIT_USAGE;
	}
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	if (now_text != NULL && !tr_cli_parse_time(now_text, &now)) {
		fprintf(stderr, "triage show: --now '%s' is not a time\n", now_text);
		return TR_EXIT_USAGE;
	}
	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		return TR_EXIT_USAGE;
	tr_store *store = tr_cli_store(engine, db);
	if (store == NULL) {
		tr_engine_free(&engine);
		return TR_EXIT_USAGE;
	}
	int status = TR_EXIT_OK;
	int64_t id = tr_store_parse_ticket(store, argv[1]);
	tr_ticket t;
	GError *error = NULL;
	if (id == 0 || !tr_ticket_get(store, id, &t, &error)) {
		fprintf(stderr, "triage show: %s: %s\n", argv[1], error != NULL ? error->message : "not a ticket id");
		g_clear_error(&error);
		status = TR_EXIT_FAIL;
	} else {
		size_t n_msgs, n_events;
		tr_ticket_message_row *msgs = tr_ticket_messages(store, id, &n_msgs);
		tr_ticket_event_row *events = tr_ticket_events(store, id, &n_events);
		const tr_policy *policy = tr_engine_policy(engine);
		if (json) {
			JsonBuilder *b = json_builder_new();
			ticket_json(b, store, policy, &t, now);
			JsonNode *root = json_builder_get_root(b);
			JsonObject *obj = json_node_get_object(root);
			JsonArray *ma = json_array_new();
			for (size_t i = 0; i < n_msgs; i++) {
				JsonObject *m = json_object_new();
				json_object_set_string_member(m, "direction", msgs[i].direction);
				json_object_set_string_member(m, "channel", msgs[i].channel);
				json_object_set_string_member(m, "message_id", msgs[i].message_id);
				json_object_set_string_member(m, "sender", msgs[i].sender);
				json_object_set_string_member(m, "subject", msgs[i].subject);
				char *at = tr_json_time(msgs[i].at, 0);
				json_object_set_string_member(m, "at", at);
				g_free(at);
				json_object_set_string_member(m, "excerpt", msgs[i].excerpt);
				JsonNode *decision = msgs[i].decision != NULL ? json_from_string(msgs[i].decision, NULL) : NULL;
				if (decision != NULL)
					json_object_set_member(m, "decision", decision);
				json_array_add_object_element(ma, m);
			}
			json_object_set_array_member(obj, "messages", ma);
			JsonArray *ea = json_array_new();
			for (size_t i = 0; i < n_events; i++) {
				JsonObject *e = json_object_new();
				char *at = tr_json_time(events[i].at, 0);
				json_object_set_string_member(e, "at", at);
				g_free(at);
				json_object_set_string_member(e, "kind", events[i].kind);
				json_object_set_string_member(e, "actor", events[i].actor);
				json_object_set_string_member(e, "detail", events[i].detail);
				json_array_add_object_element(ea, e);
			}
			json_object_set_array_member(obj, "events", ea);
			char *text = json_to_string(root, TRUE);
			printf("%s\n", text);
			g_free(text);
			json_node_unref(root);
			g_object_unref(b);
		} else {
			char *created = when(t.created_at), *fr_due = when(t.fr_due), *res_due = when(t.res_due);
			printf("%s  %s  %s  %s\n", t.public_id, tr_priority_name(t.priority), t.status, t.subject);
			printf("  requester %s%s%s (%s)  channel %s  language %s\n", t.requester,
			       t.account ? ", account " : "", t.account ? t.account : "", t.customer_tier, t.channel,
			       t.language ? t.language : "-");
			printf("  %s -> team %s (%s), assignee %s; triggers %s%s\n", t.category, t.team, t.tier,
			       t.assignee ? t.assignee : "-", *t.triggers ? t.triggers : "none",
			       t.escalated ? "; escalated" : "");
			printf("  created %s; first response %s%s (%" G_GINT64_FORMAT "%% used); resolution due %s (%" G_GINT64_FORMAT "%% used)%s\n",
			       created, t.first_response_at ? "met, was due " : "due ", fr_due,
			       t.fr_target ? tr_sla_consumed(policy, &t, false, now) * 100 / t.fr_target : 0, res_due,
			       t.res_target ? tr_sla_consumed(policy, &t, true, now) * 100 / t.res_target : 0,
			       t.clock_since == 0 && strcmp(t.status, "resolved") != 0 ? "; clocks paused" : "");
			if (t.reference != NULL)
				printf("  refers to %s (not attached: sender is not its requester)\n", t.reference);
			g_free(created);
			g_free(fr_due);
			g_free(res_due);
			printf("\nmessages:\n");
			for (size_t i = 0; i < n_msgs; i++) {
				char *at = when(msgs[i].at);
				printf("  %s %-3s %s <%s> %s\n", at, msgs[i].direction, msgs[i].channel, msgs[i].sender,
				       msgs[i].subject);
				if (msgs[i].excerpt != NULL) {
					/* The first EXCERPT_LINES lines, each cut at EXCERPT_WIDTH
					 * characters (not bytes: no half UTF-8 sequence), every one
					 * behind the "|" gutter. */
					enum { EXCERPT_LINES = 6, EXCERPT_WIDTH = 100 };
					char **lines = g_strsplit(msgs[i].excerpt, "\n", -1);
					guint n_lines = g_strv_length(lines);
					for (guint k = 0; k < n_lines && k < EXCERPT_LINES; k++) {
						const char *line = lines[k];
						if (g_utf8_validate(line, -1, NULL) && g_utf8_strlen(line, -1) > EXCERPT_WIDTH) {
							char *cut = g_utf8_substring(line, 0, EXCERPT_WIDTH);
							printf("      | %s…\n", cut);
							g_free(cut);
						} else {
							printf("      | %.*s\n", EXCERPT_WIDTH, line);
						}
					}
					if (n_lines > EXCERPT_LINES)
						printf("      | …\n");
					g_strfreev(lines);
				}
				g_free(at);
			}
			printf("\nevents:\n");
			for (size_t i = 0; i < n_events; i++) {
				char *at = when(events[i].at);
				printf("  %s %-20s %-14s %s\n", at, events[i].kind, events[i].actor,
				       events[i].detail ? events[i].detail : "");
				g_free(at);
			}
		}
		tr_ticket_messages_free(msgs, n_msgs);
		tr_ticket_events_free(events, n_events);
		tr_ticket_clear(&t);
	}
	tr_store_close(&store);
	tr_engine_free(&engine);
	g_free(config);
	g_free(db);
	g_free(now_text);
	return status;
}

/* context.c — template contexts for outbox actions; see context.h */
#include "store/context.h"

#include <string.h>

#include "core/outbound.h"
#include "store/sla.h"
#include "store/store-private.h"
#include "store/ticket.h"

#define THREAD_MESSAGES 10

static void set_string(JsonObject *o, const char *name, const char *value)
{
	if (value != NULL)
		json_object_set_string_member(o, name, value);
	else
		json_object_set_null_member(o, name);
}

static JsonArray *split_array(const char *list, char sep)
{
	JsonArray *a = json_array_new();
	if (list == NULL || *list == '\0')
		return a;
	char seps[2] = { sep, '\0' };
	char **items = g_strsplit(list, seps, -1);
	for (char **it = items; *it != NULL; it++) {
		if (**it != '\0')
			json_array_add_string_element(a, *it);
	}
	g_strfreev(items);
	return a;
}

/* The payload members an action carries (ticket, message, reasons, ladder). */
typedef struct {
	JsonNode *root;
	JsonObject *obj;
} payload;

static void payload_parse(payload *p, const char *text)
{
	p->root = text != NULL ? json_from_string(text, NULL) : NULL;
	p->obj = p->root != NULL && JSON_NODE_HOLDS_OBJECT(p->root) ? json_node_get_object(p->root) : NULL;
}

static const char *payload_string(const payload *p, const char *name)
{
	if (p->obj == NULL || !json_object_has_member(p->obj, name))
		return NULL;
	JsonNode *n = json_object_get_member(p->obj, name);
	return JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING ? json_node_get_string(n) : NULL;
}

static gint64 payload_int(const payload *p, const char *name)
{
	if (p->obj == NULL || !json_object_has_member(p->obj, name))
		return 0;
	JsonNode *n = json_object_get_member(p->obj, name);
	return JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64 ? json_node_get_int(n) : 0;
}

/* The message an action refers to, else the ticket's latest inbound one. */
static int64_t pick_message(tr_store *store, int64_t ticket, gint64 wanted)
{
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT id FROM messages WHERE ticket_id = ?1 AND "
	                                        "(id = ?2 OR ?2 = 0) AND direction = 'in' ORDER BY (id = ?2) DESC, at DESC, id DESC LIMIT 1");
	sqlite3_bind_int64(st, 1, ticket);
	sqlite3_bind_int64(st, 2, wanted);
	int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return id;
}

static void add_decision(JsonObject *escalation, const char *decision_json)
{
	JsonNode *d = decision_json != NULL ? json_from_string(decision_json, NULL) : NULL;
	JsonObject *dobj = d != NULL && JSON_NODE_HOLDS_OBJECT(d) ? json_node_get_object(d) : NULL;
	JsonArray *rules = json_array_new();
	if (dobj != NULL && json_object_has_member(dobj, "rules")) {
		JsonArray *src = json_object_get_array_member(dobj, "rules");
		for (guint i = 0; src != NULL && i < json_array_get_length(src); i++) {
			JsonObject *r = json_array_get_object_element(src, i);
			if (r == NULL || (json_object_has_member(r, "negated") && json_object_get_boolean_member(r, "negated")))
				continue;
			JsonObject *out = json_object_new();
			set_string(out, "name", json_object_get_string_member_with_default(r, "name", ""));
			set_string(out, "field", json_object_get_string_member_with_default(r, "field", ""));
			set_string(out, "contributes", json_object_get_string_member_with_default(r, "contributes", ""));
			set_string(out, "match", json_object_get_string_member_with_default(r, "match", ""));
			json_array_add_object_element(rules, out);
		}
	}
	json_object_set_array_member(escalation, "rules", rules);
	JsonArray *triggers = json_array_new();
	if (dobj != NULL && json_object_has_member(dobj, "triggers")) {
		JsonArray *src = json_object_get_array_member(dobj, "triggers");
		for (guint i = 0; src != NULL && i < json_array_get_length(src); i++)
			json_array_add_string_element(triggers, json_array_get_string_element(src, i));
	}
	json_object_set_array_member(escalation, "triggers", triggers);
	double compound = 0;
	if (dobj != NULL && json_object_has_member(dobj, "sentiment")) {
		JsonObject *s = json_object_get_object_member(dobj, "sentiment");
		if (s != NULL)
			compound = json_object_get_double_member_with_default(s, "compound", 0);
	}
	char buf[32];
	g_snprintf(buf, sizeof(buf), "%+.2f", compound);
	json_object_set_string_member(escalation, "sentiment", buf);
	if (d != NULL)
		json_node_unref(d);
}

/* The names of the rules that fired, for article suggestions. */
static char **fired_rules(const char *decision_json)
{
	GPtrArray *out = g_ptr_array_new();
	JsonNode *d = decision_json != NULL ? json_from_string(decision_json, NULL) : NULL;
	if (d != NULL && JSON_NODE_HOLDS_OBJECT(d) && json_object_has_member(json_node_get_object(d), "rules")) {
		JsonArray *rules = json_object_get_array_member(json_node_get_object(d), "rules");
		for (guint i = 0; rules != NULL && i < json_array_get_length(rules); i++) {
			JsonObject *r = json_array_get_object_element(rules, i);
			if (r != NULL && json_object_has_member(r, "name"))
				g_ptr_array_add(out, g_strdup(json_object_get_string_member(r, "name")));
		}
	}
	if (d != NULL)
		json_node_unref(d);
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

static int count_query(tr_store *store, const char *sql, int64_t id)
{
	sqlite3_stmt *st = tr_store_stmt(store, sql);
	sqlite3_bind_int64(st, 1, id);
	int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_reset(st);
	return n;
}

bool tr_context_for_action(tr_store *store, const tr_engine *engine, const tr_outbox_row *row, int64_t now,
                           tr_context *out, GError **error)
{
	memset(out, 0, sizeof(*out));
	const tr_policy *policy = tr_engine_policy(engine);
	const tr_outbound *outbound = tr_engine_outbound(engine);
	tr_ticket t;
	if (row->ticket_id == 0 || !tr_ticket_get(store, row->ticket_id, &t, error))
		return false;
	payload p;
	payload_parse(&p, row->payload);
	JsonObject *root = json_object_new();

	/* The message this is about, and the customer who wrote it. */
	int64_t message_row = pick_message(store, t.id, payload_int(&p, "message"));
	if (message_row == 0 && t.parent_id == 0 && t.is_incident) {
		/* An incident has no message of its own: its newest child's. */
		sqlite3_stmt *st = tr_store_stmt(store, "SELECT m.id FROM messages m JOIN tickets c ON c.id = m.ticket_id "
		                                        "WHERE c.parent_id = ?1 ORDER BY m.at DESC LIMIT 1");
		sqlite3_bind_int64(st, 1, t.id);
		message_row = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		sqlite3_reset(st);
	}
	char *decision = NULL, *sender_name = NULL;
	JsonObject *message = json_object_new();
	if (message_row != 0) {
		sqlite3_stmt *st = tr_store_stmt(store, "SELECT subject, excerpt, sender, at, message_id, refs, decision, "
		                                        "sender_name FROM messages WHERE id = ?1");
		sqlite3_bind_int64(st, 1, message_row);
		if (sqlite3_step(st) == SQLITE_ROW) {
			set_string(message, "subject", (const char *)sqlite3_column_text(st, 0));
			set_string(message, "excerpt", (const char *)sqlite3_column_text(st, 1));
			set_string(message, "from", (const char *)sqlite3_column_text(st, 2));
			json_object_set_int_member(message, "date", sqlite3_column_int64(st, 3));
			set_string(message, "message_id", (const char *)sqlite3_column_text(st, 4));
			out->in_reply_to = tr_store_column_dup(st, 4);
			char *refs = tr_store_column_dup(st, 5);
			if (refs != NULL)
				out->references = g_strsplit(refs, " ", 50);
			g_free(refs);
			decision = tr_store_column_dup(st, 6);
			sender_name = tr_store_column_dup(st, 7);
		}
		sqlite3_reset(st);
		if (strcmp(row->kind, "forward") == 0 || strcmp(row->kind, "incident") == 0)
			out->attach = tr_ticket_raw_message(store, message_row, &out->attach_len);
	}
	set_string(message, "language", t.language);
	json_object_set_object_member(root, "message", message);
	char *subject = t.subject != NULL ? tr_ticket_strip_tags(t.subject, tr_store_get_settings(store)->ticket_prefix)
	                                  : NULL;
	set_string(root, "subject", subject);
	g_free(subject);

	JsonObject *ticket = json_object_new();
	set_string(ticket, "id", t.public_id);
	set_string(ticket, "priority", tr_priority_name(t.priority));
	set_string(ticket, "category", t.category);
	set_string(ticket, "status", t.status);
	set_string(ticket, "subject", t.subject);
	set_string(ticket, "team", t.team);
	set_string(ticket, "tier", t.tier);
	set_string(ticket, "assignee", t.assignee);
	set_string(ticket, "channel", t.channel);
	set_string(ticket, "requester", t.requester);
	json_object_set_int_member(ticket, "created", t.created_at);
	json_object_set_array_member(ticket, "triggers", split_array(t.triggers, ','));
	json_object_set_boolean_member(ticket, "escalated", t.escalated);
	json_object_set_boolean_member(ticket, "incident", t.is_incident);
	json_object_set_object_member(root, "ticket", ticket);

	const tr_customer *customer = tr_customers_lookup(tr_policy_customers(policy), t.requester);
	JsonObject *cust = json_object_new();
	set_string(cust, "name", sender_name);
	set_string(cust, "address", t.requester);
	set_string(cust, "tier", t.customer_tier);
	set_string(cust, "account", t.account);
	json_object_set_boolean_member(cust, "vip", customer->vip);
	const tr_calendar *cal = tr_policy_calendar(policy, t.calendar);
	const char *tz = customer->timezone != NULL ? customer->timezone
	               : cal != NULL ? tr_calendar_get_timezone(cal) : "UTC";
	set_string(cust, "timezone", tz);
	const tr_person_info *manager = tr_policy_person(policy, customer->account_manager);
	set_string(cust, "account_manager", manager != NULL ? manager->display : customer->account_manager);
	json_object_set_object_member(root, "customer", cust);
	set_string(root, "tz", tz);

	JsonObject *sla = json_object_new();
	json_object_set_int_member(sla, "first_response_minutes", t.fr_target / 60);
	json_object_set_int_member(sla, "first_response_due", t.fr_due);
	json_object_set_boolean_member(sla, "first_response_business", t.fr_business);
	json_object_set_int_member(sla, "resolution_minutes", t.res_target / 60);
	json_object_set_int_member(sla, "resolution_due", t.res_due);
	json_object_set_boolean_member(sla, "resolution_business", t.res_business);
	json_object_set_int_member(sla, "first_response_percent",
	                           t.fr_target > 0 ? tr_sla_consumed(policy, &t, false, now) * 100 / t.fr_target : 0);
	json_object_set_int_member(sla, "resolution_percent",
	                           t.res_target > 0 ? tr_sla_consumed(policy, &t, true, now) * 100 / t.res_target : 0);
	set_string(sla, "calendar", t.calendar);
	json_object_set_object_member(root, "sla", sla);
	json_object_set_boolean_member(root, "business_hours", cal == NULL || tr_calendar_is_open(cal, now));

	const tr_team_info *team = tr_policy_team(policy, t.team);
	JsonObject *tm = json_object_new();
	set_string(tm, "name", t.team);
	set_string(tm, "mailbox", team != NULL ? team->mailbox : NULL);
	set_string(tm, "room", team != NULL ? team->room : NULL);
	json_object_set_null_member(tm, "signature");
	json_object_set_object_member(root, "team", tm);

	JsonObject *support = json_object_new();
	set_string(support, "address", tr_outbound_from_address(outbound));
	const char *from = tr_outbound_from(outbound);
	const char *lt = strchr(from, '<');
	char *support_name = lt != NULL && lt > from ? g_strstrip(g_strndup(from, (gsize)(lt - from))) : NULL;
	set_string(support, "name", support_name != NULL && *support_name != '\0' ? support_name : NULL);
	g_free(support_name);
	json_object_set_object_member(root, "support", support);

	const char *lang = payload_string(&p, "language");
	out->lang = g_strdup(lang != NULL ? lang : t.language != NULL ? t.language : "en");
	set_string(root, "lang", out->lang);
	char **rules = fired_rules(decision);
	json_object_set_member(root, "articles",
	                       tr_outbound_articles(outbound, t.category, (const char *const *)rules, out->lang, 3));
	g_strfreev(rules);

	JsonObject *escalation = json_object_new();
	JsonArray *reasons = json_array_new();
	if (p.obj != NULL && json_object_has_member(p.obj, "reasons")) {
		JsonArray *src = json_object_get_array_member(p.obj, "reasons");
		for (guint i = 0; src != NULL && i < json_array_get_length(src); i++)
			json_array_add_string_element(reasons, json_array_get_string_element(src, i));
	}
	json_object_set_array_member(escalation, "reasons", reasons);
	add_decision(escalation, decision);
	const char *primary = NULL, *secondary = NULL;
	if (t.priority == 1 || g_strcmp0(t.tier, "L3") == 0)
		tr_policy_oncall(policy, t.team, now, &primary, &secondary);
	set_string(escalation, "oncall", primary);
	set_string(escalation, "secondary", secondary);
	json_object_set_null_member(escalation, "category_scores");
	json_object_set_object_member(root, "escalation", escalation);

	/* The conversation so far, oldest first. */
	JsonArray *thread = json_array_new();
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT at, direction, sender, subject, excerpt FROM "
	                                        "(SELECT * FROM messages WHERE ticket_id = ?1 ORDER BY at DESC, id DESC "
	                                        "LIMIT 10) ORDER BY at, id");
	sqlite3_bind_int64(st, 1, t.id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		JsonObject *m = json_object_new();
		json_object_set_int_member(m, "at", sqlite3_column_int64(st, 0));
		set_string(m, "direction", (const char *)sqlite3_column_text(st, 1));
		set_string(m, "from", (const char *)sqlite3_column_text(st, 2));
		set_string(m, "subject", (const char *)sqlite3_column_text(st, 3));
		set_string(m, "excerpt", (const char *)sqlite3_column_text(st, 4));
		json_array_add_object_element(thread, m);
	}
	sqlite3_reset(st);
	json_object_set_array_member(root, "thread", thread);

	JsonObject *ladder = json_object_new();
	set_string(ladder, "clock", payload_string(&p, "clock"));
	json_object_set_int_member(ladder, "step", payload_int(&p, "step"));
	set_string(ladder, "role", payload_string(&p, "role"));
	const tr_person_info *person = tr_policy_person(policy, payload_string(&p, "person"));
	set_string(ladder, "person", person != NULL ? person->display : payload_string(&p, "person"));
	json_object_set_int_member(ladder, "due", payload_int(&p, "due"));
	json_object_set_object_member(root, "ladder", ladder);

	/* The person an internal notice goes to (by address or ladder role). */
	const tr_person_info *recipient = tr_policy_person_by_address(policy, row->recipient);
	if (recipient == NULL)
		recipient = person;
	JsonObject *pers = json_object_new();
	set_string(pers, "name", recipient != NULL ? recipient->name : NULL);
	set_string(pers, "display", recipient != NULL ? recipient->display : NULL);
	json_object_set_object_member(root, "person", pers);
	out->recipient_name = recipient != NULL ? g_strdup(recipient->display) : g_strdup(sender_name);

	JsonObject *incident = json_object_new();
	json_object_set_int_member(incident, "children",
	                           count_query(store, "SELECT count(*) FROM tickets WHERE parent_id = ?1", t.id));
	json_object_set_int_member(incident, "customers",
	                           count_query(store, "SELECT count(DISTINCT requester) FROM tickets WHERE parent_id = ?1",
	                                       t.id));
	json_object_set_object_member(root, "incident", incident);

	out->context = json_node_init_object(json_node_alloc(), root);
	json_object_unref(root);
	if (p.root != NULL)
		json_node_unref(p.root);
	g_free(decision);
	g_free(sender_name);
	tr_ticket_clear(&t);
	return true;
}

void tr_context_clear(tr_context *ctx)
{
	if (ctx->context != NULL)
		json_node_unref(ctx->context);
	g_free(ctx->lang);
	g_free(ctx->in_reply_to);
	g_strfreev(ctx->references);
	g_free(ctx->attach);
	g_free(ctx->recipient_name);
	memset(ctx, 0, sizeof(*ctx));
}

char *tr_context_render(tr_store *store, const tr_engine *engine, const tr_outbox_row *row, int64_t now,
                        size_t *len_r, GError **error)
{
	tr_context ctx;
	if (!tr_context_for_action(store, engine, row, now, &ctx, error))
		return NULL;
	char *out;
	if (strcmp(row->channel, "xmpp") == 0) {
		out = tr_outbound_chat(tr_engine_outbound(engine), row->template_name, ctx.lang, ctx.context, error);
		if (out != NULL && len_r != NULL)
			*len_r = strlen(out);
	} else {
		bool to_customer = strcmp(row->kind, "ack") == 0 || strcmp(row->kind, "customer_notice") == 0;
		tr_outbound_mail mail = {
			.template_name = row->template_name,
			.lang = to_customer ? ctx.lang : "en",
			.to = row->recipient,
			.message_id = row->message_id,
			/* Replies to the customer thread under their message; internal
			 * notices do not pretend to be part of the customer's thread. */
			.in_reply_to = to_customer ? ctx.in_reply_to : NULL,
			.references = to_customer ? (const char *const *)ctx.references : NULL,
			.auto_submitted = to_customer ? "auto-replied" : "auto-generated",
			.bulk = strcmp(row->kind, "ack") == 0,
			.attach = ctx.attach,
			.attach_len = ctx.attach_len,
			.date = now,
		};
		out = tr_outbound_compose(tr_engine_outbound(engine), ctx.context, &mail, len_r, error);
	}
	tr_context_clear(&ctx);
	return out;
}

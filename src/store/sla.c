/* sla.c — clock accounting, due times, the ladder; see sla.h */
#include "store/sla.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "store/store-private.h"

static const int ladder_steps[] = { 50, 75, 100, 125 };

static const tr_calendar *calendar_of(const tr_policy *policy, const tr_ticket *t, bool business)
{
	return business && policy != NULL ? tr_policy_calendar(policy, t->calendar) : NULL;
}

static int64_t elapsed(const tr_calendar *cal, int64_t from, int64_t to)
{
	if (to <= from)
		return 0;
	return cal != NULL ? tr_calendar_business_between(cal, from, to) : to - from;
}

static int64_t advance(const tr_calendar *cal, int64_t from, int64_t seconds)
{
	if (seconds <= 0)
		return from;
	return cal != NULL ? tr_calendar_add_business(cal, from, seconds) : from + seconds;
}

static bool clock_stopped(const tr_ticket *t, bool resolution)
{
	return resolution ? t->resolved_at != 0 : t->first_response_at != 0;
}

int64_t tr_sla_consumed(const tr_policy *policy, const tr_ticket *t, bool resolution, int64_t now)
{
	int64_t consumed = resolution ? t->res_consumed : t->fr_consumed;
	if (clock_stopped(t, resolution) || t->clock_since == 0)
		return consumed;
	const tr_calendar *cal = calendar_of(policy, t, resolution ? t->res_business : t->fr_business);
	return consumed + elapsed(cal, t->clock_since, now);
}

bool tr_sla_stop(tr_store *store, const tr_policy *policy, int64_t id, int64_t now, GError **error)
{
	tr_ticket t;
	if (!tr_ticket_get(store, id, &t, error))
		return false;
	int64_t fr = tr_sla_consumed(policy, &t, false, now), res = tr_sla_consumed(policy, &t, true, now);
	tr_ticket_clear(&t);
	sqlite3_stmt *st = tr_store_stmt(store, "UPDATE tickets SET fr_consumed = ?2, res_consumed = ?3, "
	                                        "clock_since = NULL, next_check_at = NULL WHERE id = ?1");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, fr);
	sqlite3_bind_int64(st, 3, res);
	return tr_store_exec_stmt(store, st, "stop clocks", error);
}

bool tr_sla_start(tr_store *store, const tr_policy *policy, int64_t id, int64_t now, GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(store, "UPDATE tickets SET clock_since = ?2 WHERE id = ?1 "
	                                        "AND clock_since IS NULL");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	return tr_store_exec_stmt(store, st, "start clocks", error) &&
	       tr_sla_reschedule(store, policy, id, now, error);
}

static bool ladder_done(tr_store *store, int64_t id, const char *clock, int step)
{
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT 1 FROM sla_ladder WHERE ticket_id = ?1 AND clock = ?2 "
	                                        "AND step = ?3");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, clock, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, step);
	bool done = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return done;
}

/* When the next step of one clock is reached (G_MAXINT64: never). */
static int64_t next_step_at(tr_store *store, const tr_policy *policy, const tr_ticket *t, bool resolution,
                            int64_t now)
{
	int64_t target = resolution ? t->res_target : t->fr_target;
	if (target <= 0 || clock_stopped(t, resolution) || t->clock_since == 0)
		return G_MAXINT64;
	const char *clock = resolution ? "resolution" : "first_response";
	const tr_calendar *cal = calendar_of(policy, t, resolution ? t->res_business : t->fr_business);
	int64_t consumed = tr_sla_consumed(policy, t, resolution, now);
	for (size_t i = 0; i < G_N_ELEMENTS(ladder_steps); i++) {
		if (ladder_done(store, t->id, clock, ladder_steps[i]))
			continue;
		int64_t at = target * ladder_steps[i] / 100;
		return at <= consumed ? now : advance(cal, now, at - consumed);
	}
	return G_MAXINT64;
}

static int64_t next_escalation_at(tr_store *store, const tr_policy *policy, const tr_ticket *t)
{
	if (!t->escalated || t->escalation_acked_at != 0 || t->first_response_at != 0 || t->escalated_at == 0 ||
	    policy == NULL)
		return G_MAXINT64;
	int64_t timeout = tr_policy_ack_timeout(policy, t->priority);
	for (int step = 1; step <= 2; step++) {
		if (!ladder_done(store, t->id, "escalation", step))
			return t->escalated_at + step * timeout;
	}
	return G_MAXINT64;
}

bool tr_sla_reschedule(tr_store *store, const tr_policy *policy, int64_t id, int64_t now, GError **error)
{
	tr_ticket t;
	if (!tr_ticket_get(store, id, &t, error))
		return false;
	int64_t fr_due = t.fr_due, res_due = t.res_due;
	if (t.clock_since != 0) {
		if (!clock_stopped(&t, false) && t.fr_target > 0) {
			int64_t left = t.fr_target - tr_sla_consumed(policy, &t, false, now);
			if (left > 0)
				fr_due = advance(calendar_of(policy, &t, t.fr_business), now, left);
		}
		if (!clock_stopped(&t, true) && t.res_target > 0) {
			int64_t left = t.res_target - tr_sla_consumed(policy, &t, true, now);
			if (left > 0)
				res_due = advance(calendar_of(policy, &t, t.res_business), now, left);
		}
	}
	int64_t next = G_MAXINT64;
	if (strcmp(t.status, "resolved") != 0) {
		next = MIN(next_step_at(store, policy, &t, false, now), next_step_at(store, policy, &t, true, now));
		next = MIN(next, next_escalation_at(store, policy, &t));
	}
	tr_ticket_clear(&t);
	sqlite3_stmt *st = tr_store_stmt(store, "UPDATE tickets SET fr_due = ?2, res_due = ?3, next_check_at = ?4 "
	                                        "WHERE id = ?1");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, fr_due);
	sqlite3_bind_int64(st, 3, res_due);
	if (next != G_MAXINT64)
		sqlite3_bind_int64(st, 4, next);
	return tr_store_exec_stmt(store, st, "schedule SLA", error);
}

/* ---------------------------------------------------------------- the ladder */

typedef struct {
	tr_store *store;
	const tr_policy *policy;
	const tr_outbox_options *options;
	int64_t now;
	tr_ticket *t;
} ladder_ctx;

static char *payload_of(const ladder_ctx *c, const char *clock, int step, const char *role,
                        const char *person)
{
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "ticket");
	json_builder_add_string_value(b, c->t->public_id);
	json_builder_set_member_name(b, "clock");
	json_builder_add_string_value(b, clock);
	json_builder_set_member_name(b, "step");
	json_builder_add_int_value(b, step);
	json_builder_set_member_name(b, "role");
	json_builder_add_string_value(b, role);
	json_builder_set_member_name(b, "person");
	if (person != NULL)
		json_builder_add_string_value(b, person);
	else
		json_builder_add_null_value(b);
	json_builder_set_member_name(b, "due");
	json_builder_add_int_value(b, strcmp(clock, "resolution") == 0 ? c->t->res_due : c->t->fr_due);
	json_builder_end_object(b);
	JsonNode *root = json_builder_get_root(b);
	char *text = json_to_string(root, FALSE);
	json_node_unref(root);
	g_object_unref(b);
	return text;
}

/* Notify one person by mail, and the team room once per step. */
static bool notify(const ladder_ctx *c, const char *clock, int step, const char *role, const char *person,
                   const char *template_name, GError **error)
{
	const tr_person_info *who = tr_policy_person(c->policy, person);
	char *payload = payload_of(c, clock, step, role, person);
	bool ok = true;
	if (who != NULL && who->email != NULL) {
		char *key = g_strdup_printf("ladder:%" G_GINT64_FORMAT ":%s:%d:mail:%s", c->t->id, clock, step, person);
		tr_outbox_action a = {
			.action_key = key, .ticket_id = c->t->id, .kind = "notify", .channel = "smtp",
			.recipient = who->email, .template_name = template_name, .payload = payload,
			.message_domain = c->options->message_domain,
		};
		ok = tr_outbox_add(c->store, &a, c->now, NULL, error);
		g_free(key);
	}
	const tr_team_info *team = tr_policy_team(c->policy, c->t->team);
	if (ok && c->options->rooms && team != NULL && team->room != NULL) {
		char *key = g_strdup_printf("ladder:%" G_GINT64_FORMAT ":%s:%d:room", c->t->id, clock, step);
		tr_outbox_action a = {
			.action_key = key, .ticket_id = c->t->id, .kind = "room_post", .channel = "xmpp",
			.recipient = team->room, .template_name = template_name, .payload = payload,
			.message_domain = c->options->message_domain,
		};
		ok = tr_outbox_add(c->store, &a, c->now, NULL, error);
		g_free(key);
	}
	g_free(payload);
	return ok;
}

static bool customer_was_acked(tr_store *store, int64_t id)
{
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT 1 FROM outbox WHERE ticket_id = ?1 AND kind = 'ack'");
	sqlite3_bind_int64(st, 1, id);
	bool yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return yes;
}

/* Record a step exactly once; *fresh is true only the first time. */
static bool claim_step(tr_store *store, int64_t id, const char *clock, int step, int64_t now, bool *fresh,
                       GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(store, "INSERT OR IGNORE INTO sla_ladder(ticket_id, clock, step, at) "
	                                        "VALUES (?1, ?2, ?3, ?4)");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, clock, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, step);
	sqlite3_bind_int64(st, 4, now);
	if (!tr_store_exec_stmt(store, st, "ladder step", error))
		return false;
	*fresh = sqlite3_changes(tr_store_db(store)) == 1;
	return true;
}

static bool run_step(ladder_ctx *c, const char *clock, int step, tr_sla_tick_result *r, GError **error)
{
	const tr_team_info *team = tr_policy_team(c->policy, c->t->team);
	const char *lead = team != NULL ? team->lead : NULL;
	char *detail = g_strdup_printf("%s %d%%", clock, step);
	bool ok = true;
	switch (step) {
	case 50:
		ok = notify(c, clock, step, "assignee", c->t->assignee != NULL ? c->t->assignee : lead,
		            "sla_warning", error) &&
		     tr_ticket_event(c->store, c->t->id, c->now, "sla_warning", "triage", detail, error);
		r->warnings++;
		break;
	case 75:
		ok = notify(c, clock, step, "lead", lead, "sla_warning", error) &&
		     tr_ticket_event(c->store, c->t->id, c->now, "sla_warning", "triage", detail, error);
		r->warnings++;
		break;
	case 100:
		ok = notify(c, clock, step, "manager", team != NULL ? team->manager : NULL, "sla_breach", error) &&
		     tr_ticket_event(c->store, c->t->id, c->now, "breached", "triage", detail, error);
		if (ok && customer_was_acked(c->store, c->t->id)) {
			char *key = g_strdup_printf("ladder:%" G_GINT64_FORMAT ":%s:100:customer", c->t->id, clock);
			char *payload = payload_of(c, clock, step, "customer", NULL);
			tr_outbox_action a = {
				.action_key = key, .ticket_id = c->t->id, .kind = "customer_notice",
				.channel = strcmp(c->t->channel, "xmpp") == 0 ? "xmpp" : "smtp",
				.recipient = c->t->requester, .template_name = "breach_notice", .payload = payload,
				.message_domain = c->options->message_domain,
			};
			ok = tr_outbox_add(c->store, &a, c->now, NULL, error);
			g_free(payload);
			g_free(key);
		}
		r->breaches++;
		break;
	default:
		ok = notify(c, clock, step, "director", team != NULL ? team->director : NULL, "sla_breach", error) &&
		     tr_ticket_event(c->store, c->t->id, c->now, "sla_warning", "triage", detail, error);
		r->directors++;
		break;
	}
	g_free(detail);
	return ok;
}

static bool check_ticket(ladder_ctx *c, tr_sla_tick_result *r, GError **error)
{
	tr_ticket *t = c->t;
	for (int k = 0; k < 2; k++) {
		bool resolution = k == 1;
		int64_t target = resolution ? t->res_target : t->fr_target;
		if (target <= 0 || clock_stopped(t, resolution) || t->clock_since == 0)
			continue;
		const char *clock = resolution ? "resolution" : "first_response";
		int64_t consumed = tr_sla_consumed(c->policy, t, resolution, c->now);
		for (size_t i = 0; i < G_N_ELEMENTS(ladder_steps); i++) {
			if (consumed * 100 < target * ladder_steps[i])
				break;
			bool fresh = false;
			if (!claim_step(c->store, t->id, clock, ladder_steps[i], c->now, &fresh, error))
				return false;
			if (fresh && !run_step(c, clock, ladder_steps[i], r, error))
				return false;
		}
	}
	/* An escalation nobody acknowledged: secondary on-call, then the manager. */
	if (t->escalated && t->escalation_acked_at == 0 && t->first_response_at == 0 && t->escalated_at != 0) {
		int64_t timeout = tr_policy_ack_timeout(c->policy, t->priority);
		for (int step = 1; step <= 2; step++) {
			if (c->now < t->escalated_at + step * timeout)
				break;
			bool fresh = false;
			if (!claim_step(c->store, t->id, "escalation", step, c->now, &fresh, error))
				return false;
			if (!fresh)
				continue;
			const char *primary = NULL, *secondary = NULL;
			tr_policy_oncall(c->policy, t->team, c->now, &primary, &secondary);
			const tr_team_info *team = tr_policy_team(c->policy, t->team);
			const char *who = step == 1 && secondary != NULL ? secondary : team != NULL ? team->manager : NULL;
			const char *role = step == 1 && secondary != NULL ? "secondary" : "manager";
			char *detail = g_strdup_printf("not acknowledged after %" G_GINT64_FORMAT " min: %s %s",
			                               step * timeout / 60, role, who != NULL ? who : "(none)");
			bool ok = notify(c, "escalation", step, role, who, "escalation_reminder", error) &&
			          tr_ticket_event(c->store, t->id, c->now, "escalated", "triage", detail, error);
			g_free(detail);
			if (!ok)
				return false;
			r->escalations++;
		}
	}
	return true;
}

bool tr_sla_tick(tr_store *store, const tr_policy *policy, const tr_outbox_options *options, int64_t now,
                 tr_sla_tick_result *result, GError **error)
{
	memset(result, 0, sizeof(*result));
	if (!tr_store_begin(store, error))
		return false;
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT id FROM tickets WHERE next_check_at IS NOT NULL "
	                                        "AND next_check_at <= ?1 ORDER BY next_check_at LIMIT 1000");
	sqlite3_bind_int64(st, 1, now);
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		g_array_append_val(ids, id);
	}
	sqlite3_reset(st);
	bool ok = true;
	for (guint i = 0; i < ids->len && ok; i++) {
		int64_t id = g_array_index(ids, int64_t, i);
		tr_ticket t;
		if (!tr_ticket_get(store, id, &t, error)) {
			ok = false;
			break;
		}
		ladder_ctx c = { store, policy, options, now, &t };
		ok = check_ticket(&c, result, error) && tr_sla_reschedule(store, policy, id, now, error);
		tr_ticket_clear(&t);
		result->checked++;
	}
	g_array_free(ids, TRUE);
	if (!ok) {
		tr_store_rollback(store);
		return false;
	}
	return tr_store_commit(store, error);
}

/* ticket.c — ticket rows, events, agent operations, listings; see ticket.h */
#include "store/ticket.h"

#include <string.h>

#include "store/sla.h"
#include "store/store-private.h"

#define TICKET_COLUMNS                                                                  \
	"id, status, channel, requester, requester_domain, account, subject, language, "    \
	"category, urgency, impact, tier, team, assignee, customer_tier, triggers, "         \
	"priority, sentiment, escalated, is_incident, escalated_at, escalation_acked_at, "   \
	"parent_id, reference, created_at, updated_at, first_response_at, resolved_at, "     \
	"reopened, calendar, fr_target, fr_consumed, fr_due, res_target, res_consumed, "     \
	"res_due, fr_business, res_business, clock_since, next_check_at"

void tr_ticket_clear(tr_ticket *t)
{
	char **strings[] = {
		&t->status, &t->channel, &t->requester, &t->requester_domain, &t->account, &t->subject,
		&t->language, &t->category, &t->urgency, &t->impact, &t->tier, &t->team, &t->assignee,
		&t->customer_tier, &t->triggers, &t->reference, &t->calendar,
	};
	for (size_t i = 0; i < G_N_ELEMENTS(strings); i++)
		g_free(*strings[i]);
	memset(t, 0, sizeof(*t));
}

static void read_row(tr_store *store, sqlite3_stmt *st, tr_ticket *t)
{
	memset(t, 0, sizeof(*t));
	int c = 0;
	t->id = sqlite3_column_int64(st, c++);
	tr_store_format_ticket(store, t->id, t->public_id, sizeof(t->public_id));
	char **strings[] = {
		&t->status, &t->channel, &t->requester, &t->requester_domain, &t->account, &t->subject,
		&t->language, &t->category, &t->urgency, &t->impact, &t->tier, &t->team, &t->assignee,
		&t->customer_tier, &t->triggers,
	};
	for (size_t i = 0; i < G_N_ELEMENTS(strings); i++)
		*strings[i] = tr_store_column_dup(st, c++);
	t->priority = sqlite3_column_int(st, c++);
	t->sentiment = sqlite3_column_double(st, c++);
	t->escalated = sqlite3_column_int(st, c++) != 0;
	t->is_incident = sqlite3_column_int(st, c++) != 0;
	t->escalated_at = sqlite3_column_int64(st, c++);
	t->escalation_acked_at = sqlite3_column_int64(st, c++);
	t->parent_id = sqlite3_column_int64(st, c++);
	t->reference = tr_store_column_dup(st, c++);
	t->created_at = sqlite3_column_int64(st, c++);
	t->updated_at = sqlite3_column_int64(st, c++);
	t->first_response_at = sqlite3_column_int64(st, c++);
	t->resolved_at = sqlite3_column_int64(st, c++);
	t->reopened = sqlite3_column_int(st, c++);
	t->calendar = tr_store_column_dup(st, c++);
	t->fr_target = sqlite3_column_int64(st, c++);
	t->fr_consumed = sqlite3_column_int64(st, c++);
	t->fr_due = sqlite3_column_int64(st, c++);
	t->res_target = sqlite3_column_int64(st, c++);
	t->res_consumed = sqlite3_column_int64(st, c++);
	t->res_due = sqlite3_column_int64(st, c++);
	t->fr_business = sqlite3_column_int(st, c++) != 0;
	t->res_business = sqlite3_column_int(st, c++) != 0;
	t->clock_since = sqlite3_column_int64(st, c++);
	t->next_check_at = sqlite3_column_int64(st, c++);
}

bool tr_ticket_get(tr_store *store, int64_t id, tr_ticket *out, GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT " TICKET_COLUMNS " FROM tickets WHERE id = ?1");
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_row(store, st, out);
		sqlite3_reset(st);
		return true;
	}
	if (rc == SQLITE_DONE) {
		char buf[40];
		g_set_error(error, TR_STORE_ERROR, TR_STORE_ERROR_NOT_FOUND, "no ticket %s",
		            tr_store_format_ticket(store, id, buf, sizeof(buf)));
	} else {
		tr_store_error(store, error, rc, "read ticket");
	}
	sqlite3_reset(st);
	return false;
}

bool tr_ticket_event(tr_store *store, int64_t ticket, int64_t at, const char *kind, const char *actor,
                     const char *detail, GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(store, "INSERT INTO events(ticket_id, at, kind, actor, detail) "
	                                        "VALUES (?1, ?2, ?3, ?4, ?5)");
	sqlite3_bind_int64(st, 1, ticket);
	sqlite3_bind_int64(st, 2, at);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, actor != NULL ? actor : "triage", -1, SQLITE_STATIC);
	if (detail != NULL)
		sqlite3_bind_text(st, 5, detail, -1, SQLITE_STATIC);
	return tr_store_exec_stmt(store, st, "add event", error);
}

/* Run op inside a transaction unless the caller already has one. */
typedef bool (*ticket_op)(tr_store *store, const tr_policy *policy, int64_t id, const void *arg,
                          int64_t now, GError **error);

static bool in_transaction(tr_store *store, const tr_policy *policy, int64_t id, const void *arg,
                           int64_t now, ticket_op op, GError **error)
{
	bool own = !tr_store_in_transaction(store);
	if (own && !tr_store_begin(store, error))
		return false;
	if (!op(store, policy, id, arg, now, error)) {
		if (own)
			tr_store_rollback(store);
		return false;
	}
	return own ? tr_store_commit(store, error) : true;
}

static bool touch(tr_store *store, int64_t id, int64_t now, GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(store, "UPDATE tickets SET updated_at = ?2 WHERE id = ?1");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	return tr_store_exec_stmt(store, st, "touch ticket", error);
}

static bool op_ack(tr_store *store, const tr_policy *policy, int64_t id, const void *arg, int64_t now,
                   GError **error)
{
	const char *by = arg;
	tr_ticket t;
	if (!tr_ticket_get(store, id, &t, error))
		return false;
	bool ok = true;
	if (t.first_response_at == 0) {
		/* The first-response clock stops here; the resolution clock runs on. */
		int64_t consumed = tr_sla_consumed(policy, &t, false, now);
		sqlite3_stmt *st = tr_store_stmt(store, "UPDATE tickets SET first_response_at = ?2, fr_consumed = ?3 "
		                                        "WHERE id = ?1");
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_int64(st, 3, consumed);
		ok = tr_store_exec_stmt(store, st, "record first response", error) &&
		     tr_ticket_event(store, id, now, "first_response", by, NULL, error);
	}
	if (ok && t.escalated && t.escalation_acked_at == 0) {
		sqlite3_stmt *st = tr_store_stmt(store, "UPDATE tickets SET escalation_acked_at = ?2 WHERE id = ?1");
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, now);
		ok = tr_store_exec_stmt(store, st, "acknowledge escalation", error);
	}
	ok = ok && tr_ticket_event(store, id, now, "acked", by, NULL, error) && touch(store, id, now, error) &&
	     tr_sla_reschedule(store, policy, id, now, error);
	tr_ticket_clear(&t);
	return ok;
}

bool tr_ticket_ack(tr_store *store, const tr_policy *policy, int64_t id, const char *by, int64_t now,
                   GError **error)
{
	return in_transaction(store, policy, id, by, now, op_ack, error);
}

typedef struct {
	const char *assignee, *by;
} assign_arg;

static bool op_assign(tr_store *store, const tr_policy *policy, int64_t id, const void *arg, int64_t now,
                      GError **error)
{
	(void)policy;
	const assign_arg *a = arg;
	tr_ticket t;
	if (!tr_ticket_get(store, id, &t, error))
		return false;
	tr_ticket_clear(&t);
	sqlite3_stmt *st = tr_store_stmt(store, "UPDATE tickets SET assignee = ?2 WHERE id = ?1");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, a->assignee, -1, SQLITE_STATIC);
	return tr_store_exec_stmt(store, st, "assign", error) &&
	       tr_ticket_event(store, id, now, "assigned", a->by, a->assignee, error) &&
	       touch(store, id, now, error);
}

bool tr_ticket_assign(tr_store *store, int64_t id, const char *assignee, const char *by, int64_t now,
                      GError **error)
{
	assign_arg a = { assignee, by };
	return in_transaction(store, NULL, id, &a, now, op_assign, error);
}

typedef struct {
	bool waiting;
	const char *by;
} pause_arg;

static bool set_status(tr_store *store, int64_t id, const char *status, GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(store, "UPDATE tickets SET status = ?2 WHERE id = ?1");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	return tr_store_exec_stmt(store, st, "set status", error);
}

static bool op_pause(tr_store *store, const tr_policy *policy, int64_t id, const void *arg, int64_t now,
                     GError **error)
{
	const pause_arg *a = arg;
	tr_ticket t;
	if (!tr_ticket_get(store, id, &t, error))
		return false;
	bool running = strcmp(t.status, "open") == 0;
	bool resolved = strcmp(t.status, "resolved") == 0;
	if (resolved)
		g_set_error(error, TR_STORE_ERROR, TR_STORE_ERROR_STATE, "%s is resolved", t.public_id);
	tr_ticket_clear(&t);
	if (resolved)
		return false;
	if (!running)  /* already paused or waiting: only the reason changes */
		return set_status(store, id, a->waiting ? "waiting" : "paused", error);
	return tr_sla_stop(store, policy, id, now, error) &&
	       set_status(store, id, a->waiting ? "waiting" : "paused", error) &&
	       tr_ticket_event(store, id, now, "paused", a->by, a->waiting ? "waiting for the customer" : NULL, error) &&
	       touch(store, id, now, error);
}

bool tr_ticket_pause(tr_store *store, const tr_policy *policy, int64_t id, bool waiting, const char *by,
                     int64_t now, GError **error)
{
	pause_arg a = { waiting, by };
	return in_transaction(store, policy, id, &a, now, op_pause, error);
}

static bool op_resume(tr_store *store, const tr_policy *policy, int64_t id, const void *arg, int64_t now,
                      GError **error)
{
	const char *by = arg;
	tr_ticket t;
	if (!tr_ticket_get(store, id, &t, error))
		return false;
	bool paused = strcmp(t.status, "paused") == 0 || strcmp(t.status, "waiting") == 0;
	tr_ticket_clear(&t);
	if (!paused)
		return true;  /* nothing to resume */
	return set_status(store, id, "open", error) && tr_sla_start(store, policy, id, now, error) &&
	       tr_ticket_event(store, id, now, "resumed", by, NULL, error) && touch(store, id, now, error);
}

bool tr_ticket_resume(tr_store *store, const tr_policy *policy, int64_t id, const char *by, int64_t now,
                      GError **error)
{
	return in_transaction(store, policy, id, by, now, op_resume, error);
}

static bool op_resolve(tr_store *store, const tr_policy *policy, int64_t id, const void *arg, int64_t now,
                       GError **error)
{
	const char *by = arg;
	tr_ticket t;
	if (!tr_ticket_get(store, id, &t, error))
		return false;
	bool resolved = strcmp(t.status, "resolved") == 0;
	bool running = strcmp(t.status, "open") == 0;
	tr_ticket_clear(&t);
	if (resolved)
		return true;
	if (running && !tr_sla_stop(store, policy, id, now, error))
		return false;
	sqlite3_stmt *st = tr_store_stmt(store, "UPDATE tickets SET status = 'resolved', resolved_at = ?2, "
	                                        "next_check_at = NULL WHERE id = ?1");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	return tr_store_exec_stmt(store, st, "resolve", error) &&
	       tr_ticket_event(store, id, now, "resolved", by, NULL, error) && touch(store, id, now, error);
}

bool tr_ticket_resolve(tr_store *store, const tr_policy *policy, int64_t id, const char *by, int64_t now,
                       GError **error)
{
	return in_transaction(store, policy, id, by, now, op_resolve, error);
}

/* ---------------------------------------------------------------- listings */

struct tr_ticket_iter {
	tr_store *store;
	sqlite3_stmt *st;  /* not cached: filters vary */
};

tr_ticket_iter *tr_ticket_list_init(tr_store *store, const tr_ticket_filter *f)
{
	GString *sql = g_string_new("SELECT " TICKET_COLUMNS " FROM tickets WHERE 1");
	if (f->open_only)
		g_string_append(sql, " AND status != 'resolved'");
	if (f->priority > 0)
		g_string_append(sql, " AND priority = ?1");
	if (f->team != NULL)
		g_string_append(sql, " AND team = ?2");
	if (f->since > 0)
		g_string_append(sql, " AND created_at >= ?3");
	g_string_append(sql, " ORDER BY priority, created_at");
	if (f->limit > 0)
		g_string_append_printf(sql, " LIMIT %u", f->limit);
	tr_ticket_iter *it = g_new0(tr_ticket_iter, 1);
	it->store = store;
	if (sqlite3_prepare_v2(tr_store_db(store), sql->str, -1, &it->st, NULL) != SQLITE_OK)
		g_error("ticket list: %s", sqlite3_errmsg(tr_store_db(store)));
	if (f->priority > 0)
		sqlite3_bind_int(it->st, 1, f->priority);
	if (f->team != NULL)
		sqlite3_bind_text(it->st, 2, f->team, -1, SQLITE_TRANSIENT);
	if (f->since > 0)
		sqlite3_bind_int64(it->st, 3, f->since);
	g_string_free(sql, TRUE);
	return it;
}

bool tr_ticket_list_next(tr_ticket_iter *it, tr_ticket *out)
{
	if (sqlite3_step(it->st) != SQLITE_ROW)
		return false;
	read_row(it->store, it->st, out);
	return true;
}

void tr_ticket_list_deinit(tr_ticket_iter **itp)
{
	tr_ticket_iter *it = *itp;
	if (it == NULL)
		return;
	*itp = NULL;
	sqlite3_finalize(it->st);
	g_free(it);
}

tr_ticket_event_row *tr_ticket_events(tr_store *store, int64_t id, size_t *n_r)
{
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT at, kind, actor, detail FROM events "
	                                        "WHERE ticket_id = ?1 ORDER BY id");
	sqlite3_bind_int64(st, 1, id);
	GArray *rows = g_array_new(FALSE, TRUE, sizeof(tr_ticket_event_row));
	while (sqlite3_step(st) == SQLITE_ROW) {
		tr_ticket_event_row r = {
			sqlite3_column_int64(st, 0), tr_store_column_dup(st, 1), tr_store_column_dup(st, 2),
			tr_store_column_dup(st, 3),
		};
		g_array_append_val(rows, r);
	}
	sqlite3_reset(st);
	*n_r = rows->len;
	return (tr_ticket_event_row *)g_array_free(rows, FALSE);
}

void tr_ticket_events_free(tr_ticket_event_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		g_free(rows[i].kind);
		g_free(rows[i].actor);
		g_free(rows[i].detail);
	}
	g_free(rows);
}

tr_ticket_message_row *tr_ticket_messages(tr_store *store, int64_t id, size_t *n_r)
{
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT id, at, size, direction, channel, message_id, sender, "
	                                        "subject, excerpt, decision FROM messages WHERE ticket_id = ?1 "
	                                        "ORDER BY at, id");
	sqlite3_bind_int64(st, 1, id);
	GArray *rows = g_array_new(FALSE, TRUE, sizeof(tr_ticket_message_row));
	while (sqlite3_step(st) == SQLITE_ROW) {
		tr_ticket_message_row r = {
			sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
			tr_store_column_dup(st, 3), tr_store_column_dup(st, 4), tr_store_column_dup(st, 5),
			tr_store_column_dup(st, 6), tr_store_column_dup(st, 7), tr_store_column_dup(st, 8),
			tr_store_column_dup(st, 9),
		};
		g_array_append_val(rows, r);
	}
	sqlite3_reset(st);
	*n_r = rows->len;
	return (tr_ticket_message_row *)g_array_free(rows, FALSE);
}

void tr_ticket_messages_free(tr_ticket_message_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		g_free(rows[i].direction);
		g_free(rows[i].channel);
		g_free(rows[i].message_id);
		g_free(rows[i].sender);
		g_free(rows[i].subject);
		g_free(rows[i].excerpt);
		g_free(rows[i].decision);
	}
	g_free(rows);
}

char *tr_ticket_raw_message(tr_store *store, int64_t message_row, size_t *len_r)
{
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT data FROM raw_messages WHERE message_id = ?1");
	sqlite3_bind_int64(st, 1, message_row);
	char *data = NULL;
	if (sqlite3_step(st) == SQLITE_ROW) {
		int n = sqlite3_column_bytes(st, 0);
		data = g_malloc((size_t)n + 1);
		if (n > 0)
			memcpy(data, sqlite3_column_blob(st, 0), (size_t)n);
		data[n] = '\0';
		*len_r = (size_t)n;
	}
	sqlite3_reset(st);
	return data;
}

int tr_ticket_open_count(tr_store *store, const char *assignee)
{
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT count(*) FROM tickets WHERE assignee = ?1 "
	                                        "AND status != 'resolved'");
	sqlite3_bind_text(st, 1, assignee, -1, SQLITE_STATIC);
	int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_reset(st);
	return n;
}

char *tr_ticket_strip_tags(const char *s, const char *prefix)
{
	GString *out = g_string_sized_new(strlen(s));
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	while (*s != '\0') {
		if (*s == '[' && plen > 0 && g_ascii_strncasecmp(s + 1, prefix, plen) == 0 && s[1 + plen] == '-') {
			const char *digits = s + 2 + plen;
			size_t n = strspn(digits, "0123456789");
			if (n > 0 && digits[n] == ']') {
				s = digits + n + 1;
				/* "Re: [TKT-1] Re: x": no double space left behind */
				if (*s == ' ' && (out->len == 0 || out->str[out->len - 1] == ' '))
					s++;
				continue;
			}
		}
		g_string_append_c(out, *s++);
	}
	while (out->len > 0 && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
	return g_string_free(out, FALSE);
}

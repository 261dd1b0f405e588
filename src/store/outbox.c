/* outbox.c — durable, exactly-once side effects; see outbox.h */
#include "store/outbox.h"

#include <string.h>

#include "store/store-private.h"
#include "store/ticket.h"

char *tr_outbox_message_id(const char *action_key, const char *domain)
{
	/* Stable: the same action always carries the same Message-ID, so a
	 * retry is recognisable as the same message by mail clients. */
	char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, action_key, -1);
	char *id = g_strdup_printf("triage.%.24s@%s", hash, domain != NULL && *domain != '\0' ? domain : "triage.invalid");
	g_free(hash);
	return id;
}

bool tr_outbox_add(tr_store *store, const tr_outbox_action *a, int64_t now, bool *inserted_r, GError **error)
{
	char *message_id = tr_outbox_message_id(a->action_key, a->message_domain);
	sqlite3_stmt *st = tr_store_stmt(store,
		"INSERT OR IGNORE INTO outbox(action_key, ticket_id, kind, channel, recipient, template, payload, "
		"message_id, state, next_attempt_at, created_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10)");
	sqlite3_bind_text(st, 1, a->action_key, -1, SQLITE_STATIC);
	if (a->ticket_id > 0)
		sqlite3_bind_int64(st, 2, a->ticket_id);
	sqlite3_bind_text(st, 3, a->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->recipient, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, a->template_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, a->payload != NULL ? a->payload : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, message_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, a->not_before > 0 ? a->not_before : now);
	sqlite3_bind_int64(st, 10, now);
	bool ok = tr_store_exec_stmt(store, st, "queue action", error);
	if (ok && inserted_r != NULL)
		*inserted_r = sqlite3_changes(tr_store_db(store)) == 1;
	g_free(message_id);
	return ok;
}

void tr_outbox_row_clear(tr_outbox_row *r)
{
	g_free(r->action_key);
	g_free(r->kind);
	g_free(r->channel);
	g_free(r->recipient);
	g_free(r->template_name);
	g_free(r->payload);
	g_free(r->message_id);
	g_free(r->state);
	g_free(r->last_error);
	memset(r, 0, sizeof(*r));
}

#define OUTBOX_COLUMNS "id, ticket_id, next_attempt_at, created_at, sent_at, attempts, action_key, kind, " \
                       "channel, recipient, template, payload, message_id, state, last_error"

static void read_row(sqlite3_stmt *st, tr_outbox_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	r->ticket_id = sqlite3_column_int64(st, 1);
	r->next_attempt_at = sqlite3_column_int64(st, 2);
	r->created_at = sqlite3_column_int64(st, 3);
	r->sent_at = sqlite3_column_int64(st, 4);
	r->attempts = sqlite3_column_int(st, 5);
	r->action_key = tr_store_column_dup(st, 6);
	r->kind = tr_store_column_dup(st, 7);
	r->channel = tr_store_column_dup(st, 8);
	r->recipient = tr_store_column_dup(st, 9);
	r->template_name = tr_store_column_dup(st, 10);
	r->payload = tr_store_column_dup(st, 11);
	r->message_id = tr_store_column_dup(st, 12);
	r->state = tr_store_column_dup(st, 13);
	r->last_error = tr_store_column_dup(st, 14);
}

bool tr_outbox_claim(tr_store *store, const char *channel, const char *worker, int64_t now, tr_outbox_row *out,
                     bool *found_r, GError **error)
{
	*found_r = false;
	bool own = !tr_store_in_transaction(store);
	if (own && !tr_store_begin(store, error))
		return false;
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT " OUTBOX_COLUMNS " FROM outbox WHERE channel = ?1 "
	                                        "AND state IN ('pending', 'retry') AND next_attempt_at <= ?2 "
	                                        "ORDER BY next_attempt_at, id LIMIT 1");
	sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	int rc = sqlite3_step(st);
	bool ok = true;
	if (rc == SQLITE_ROW) {
		read_row(st, out);
		sqlite3_reset(st);
		sqlite3_stmt *up = tr_store_stmt(store, "UPDATE outbox SET state = 'sending', claimed_by = ?2, "
		                                        "claimed_at = ?3, attempts = attempts + 1 WHERE id = ?1");
		sqlite3_bind_int64(up, 1, out->id);
		sqlite3_bind_text(up, 2, worker, -1, SQLITE_STATIC);
		sqlite3_bind_int64(up, 3, now);
		ok = tr_store_exec_stmt(store, up, "claim action", error);
		out->attempts++;
		*found_r = ok;
		if (!ok)
			tr_outbox_row_clear(out);
	} else {
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			tr_store_error(store, error, rc, "find due action");
			ok = false;
		}
	}
	if (own) {
		if (ok)
			ok = tr_store_commit(store, error);
		else
			tr_store_rollback(store);
		if (!ok && *found_r) {
			tr_outbox_row_clear(out);
			*found_r = false;
		}
	}
	return ok;
}

static bool update(tr_store *store, const char *sql, int64_t id, int64_t value, const char *text,
                   const char *what, GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(store, sql);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, value);
	if (text != NULL)
		sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
	return tr_store_exec_stmt(store, st, what, error);
}

/* Also leave a trace on the ticket, inside one transaction. */
static bool with_event(tr_store *store, int64_t id, const char *sql, int64_t value, const char *text,
                       const char *event, int64_t now, GError **error)
{
	bool own = !tr_store_in_transaction(store);
	if (own && !tr_store_begin(store, error))
		return false;
	bool ok = update(store, sql, id, value, text, event, error);
	if (ok && event != NULL) {
		sqlite3_stmt *st = tr_store_stmt(store, "SELECT ticket_id, kind, recipient FROM outbox WHERE id = ?1");
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
			int64_t ticket = sqlite3_column_int64(st, 0);
			char *detail = g_strdup_printf("%s to %s%s%s", sqlite3_column_text(st, 1), sqlite3_column_text(st, 2),
			                               text != NULL ? ": " : "", text != NULL ? text : "");
			sqlite3_reset(st);
			ok = tr_ticket_event(store, ticket, now, event, "outbox", detail, error);
			g_free(detail);
		} else {
			sqlite3_reset(st);
		}
	}
	if (own) {
		if (ok)
			return tr_store_commit(store, error);
		tr_store_rollback(store);
	}
	return ok;
}

bool tr_outbox_sent(tr_store *store, int64_t id, int64_t now, GError **error)
{
	return with_event(store, id, "UPDATE outbox SET state = 'sent', sent_at = ?2, last_error = NULL, "
	                             "claimed_by = NULL WHERE id = ?1", now, NULL, NULL, now, error);
}

bool tr_outbox_retry(tr_store *store, int64_t id, int64_t next_at, const char *why, GError **error)
{
	return with_event(store, id, "UPDATE outbox SET state = 'retry', next_attempt_at = ?2, last_error = ?3, "
	                             "claimed_by = NULL WHERE id = ?1", next_at, why, NULL, 0, error);
}

bool tr_outbox_ambiguous(tr_store *store, int64_t id, bool retry, int64_t next_at, const char *why,
                         GError **error)
{
	char *text = g_strdup_printf("ambiguous: %s", why);
	bool ok = retry
		? with_event(store, id, "UPDATE outbox SET state = 'retry', next_attempt_at = ?2, last_error = ?3, "
		                        "claimed_by = NULL WHERE id = ?1", next_at, text, NULL, 0, error)
		: with_event(store, id, "UPDATE outbox SET state = 'ambiguous', next_attempt_at = ?2, last_error = ?3, "
		                        "claimed_by = NULL WHERE id = ?1", next_at, text, "delivery_ambiguous", next_at, error);
	g_free(text);
	return ok;
}

unsigned tr_outbox_ambiguous_count(const tr_outbox_row *row)
{
	/* The row keeps the last outcome; an "ambiguous:" note marks that at
	 * least one attempt may have gone out. */
	return row->last_error != NULL && g_str_has_prefix(row->last_error, "ambiguous:") ? 1 : 0;
}

bool tr_outbox_failed(tr_store *store, int64_t id, int64_t now, const char *why, GError **error)
{
	return with_event(store, id, "UPDATE outbox SET state = 'failed', next_attempt_at = ?2, last_error = ?3, "
	                             "claimed_by = NULL WHERE id = ?1", now, why, "delivery_failed", now, error);
}

int tr_outbox_recover(tr_store *store, const char *channel, int64_t now, int64_t delay, GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(store, "UPDATE outbox SET state = 'retry', next_attempt_at = ?1, "
	                                        "last_error = 'ambiguous: worker stopped during delivery', "
	                                        "claimed_by = NULL WHERE state = 'sending' "
	                                        "AND (?2 IS NULL OR channel = ?2)");
	sqlite3_bind_int64(st, 1, now + delay);
	if (channel != NULL)
		sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
	if (!tr_store_exec_stmt(store, st, "recover outbox", error))
		return -1;
	return sqlite3_changes(tr_store_db(store));
}

bool tr_outbox_requeue(tr_store *store, int64_t id, int64_t now, GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(store, "UPDATE outbox SET state = 'pending', next_attempt_at = ?2, "
	                                        "last_error = NULL WHERE id = ?1 AND state IN ('failed', 'ambiguous', 'retry')");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	if (!tr_store_exec_stmt(store, st, "requeue", error))
		return false;
	if (sqlite3_changes(tr_store_db(store)) == 0) {
		g_set_error(error, TR_STORE_ERROR, TR_STORE_ERROR_NOT_FOUND,
		            "no failed, ambiguous or retrying outbox row %" G_GINT64_FORMAT, (gint64)id);
		return false;
	}
	return true;
}

struct tr_outbox_iter {
	sqlite3_stmt *st;
};

tr_outbox_iter *tr_outbox_list_init(tr_store *store, bool failed_only, unsigned limit)
{
	char *sql = g_strdup_printf("SELECT " OUTBOX_COLUMNS " FROM outbox %s ORDER BY id LIMIT %u",
	                            failed_only ? "WHERE state IN ('failed', 'ambiguous')" : "",
	                            limit > 0 ? limit : 1000000u);
	tr_outbox_iter *it = g_new0(tr_outbox_iter, 1);
	if (sqlite3_prepare_v2(tr_store_db(store), sql, -1, &it->st, NULL) != SQLITE_OK)
		g_error("outbox list: %s", sqlite3_errmsg(tr_store_db(store)));
	g_free(sql);
	return it;
}

bool tr_outbox_list_next(tr_outbox_iter *it, tr_outbox_row *out)
{
	if (sqlite3_step(it->st) != SQLITE_ROW)
		return false;
	read_row(it->st, out);
	return true;
}

void tr_outbox_list_deinit(tr_outbox_iter **itp)
{
	tr_outbox_iter *it = *itp;
	if (it == NULL)
		return;
	*itp = NULL;
	sqlite3_finalize(it->st);
	g_free(it);
}

int tr_outbox_count(tr_store *store, const char *kind, const char *state)
{
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT count(*) FROM outbox WHERE (?1 IS NULL OR kind = ?1) "
	                                        "AND (?2 IS NULL OR state = ?2)");
	if (kind != NULL)
		sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	if (state != NULL)
		sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_reset(st);
	return n;
}

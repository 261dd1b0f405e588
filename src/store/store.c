/* store.c — connection, settings, migrations, transactions; see store.h */
#include "store/store.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "store/store-private.h"

G_DEFINE_QUARK(tr-store-error-quark, tr_store_error)

const tr_conftab tr_store_limits_table[] = {
	{ "synchronous", 2, 1, 2, TR_UNIT_COUNT, offsetof(tr_store_limits, synchronous),
	  "[store] 2 = FULL (every commit on disk), 1 = NORMAL (WAL: may lose the last commits on power loss)" },
	{ "busy_timeout", 10, 0, 3600, TR_UNIT_SECONDS, offsetof(tr_store_limits, busy_timeout),
	  "[store] wait this long for the write lock before a temporary failure" },
	{ "raw_bytes", 25 * 1024 * 1024, 0, 1024 * 1024 * 1024, TR_UNIT_BYTES, offsetof(tr_store_limits, raw_bytes),
	  "[store] original message bytes kept (escalation forwards attach it)" },
	{ "reopen_window", 7 * 86400, 0, 365 * 86400, TR_UNIT_SECONDS, offsetof(tr_store_limits, reopen_window),
	  "[tickets] a customer reply this long after resolution reopens the ticket" },
	{ "repeat_window", 48 * 3600, 3600, 90 * 86400, TR_UNIT_SECONDS, offsetof(tr_store_limits, repeat_window),
	  "[tickets] window for repeat-contact counting" },
	{ "repeat_threshold", 3, 2, 1000, TR_UNIT_COUNT, offsetof(tr_store_limits, repeat_threshold),
	  "[tickets] tickets from one requester or account in the window that make a repeat contact" },
	{ "incident_window", 3600, 60, 7 * 86400, TR_UNIT_SECONDS, offsetof(tr_store_limits, incident_window),
	  "[tickets] window for mass-incident detection" },
	{ "incident_threshold", 5, 2, 10000, TR_UNIT_COUNT, offsetof(tr_store_limits, incident_threshold),
	  "[tickets] similar new tickets in the window that make one incident" },
	{ "incident_similarity", 50, 1, 100, TR_UNIT_COUNT, offsetof(tr_store_limits, incident_similarity),
	  "[tickets] percent of shared word shingles for two tickets to be similar" },
	{ "incident_scan", 500, 10, 100000, TR_UNIT_COUNT, offsetof(tr_store_limits, incident_scan),
	  "[tickets] recent tickets compared with each new one, at most" },
	{ "new_per_sender_hour", 20, 1, 100000, TR_UNIT_COUNT, offsetof(tr_store_limits, new_per_sender_hour),
	  "[tickets] new tickets one address opens per hour; more new mail from it joins its newest ticket" },
	{ "ack_per_sender_hour", 5, 0, 100000, TR_UNIT_COUNT, offsetof(tr_store_limits, ack_per_sender_hour),
	  "[ack] acknowledgments to one address per hour" },
	{ "ack_per_sender_day", 20, 0, 100000, TR_UNIT_COUNT, offsetof(tr_store_limits, ack_per_sender_day),
	  "[ack] acknowledgments to one address per day" },
	{ "bounce_suppress", 7 * 86400, 0, 365 * 86400, TR_UNIT_SECONDS, offsetof(tr_store_limits, bounce_suppress),
	  "[ack] after a hard bounce, no acknowledgment to that address for this long" },
	{ NULL, 0, 0, 0, TR_UNIT_COUNT, 0, NULL },
};

/* The rows of the table that belong to each group. */
static const char *const store_rows[] = { "synchronous", "busy_timeout", "raw_bytes", NULL };
static const char *const ticket_rows[] = {
	"reopen_window", "repeat_window", "repeat_threshold", "incident_window",
	"incident_threshold", "incident_similarity", "incident_scan", "new_per_sender_hour", NULL,
};
static const char *const ack_rows[] = { "ack_per_sender_hour", "ack_per_sender_day", "bounce_suppress", NULL };

struct tr_store {
	sqlite3 *db;
	tr_store_settings settings;
	GHashTable *stmts;   /* const char *sql -> sqlite3_stmt* */
	int depth;           /* savepoints inside the transaction */
};

void tr_store_settings_default(tr_store_settings *s, const char *path)
{
	memset(s, 0, sizeof(*s));
	s->path = g_strdup(path);
	s->ticket_prefix = g_strdup("TKT");
	tr_conftab_defaults(tr_store_limits_table, &s->limits);
}

void tr_store_settings_clear(tr_store_settings *s)
{
	g_free(s->path);
	g_free(s->ticket_prefix);
	g_strfreev(s->agent_domains);
	memset(s, 0, sizeof(*s));
}

static void load_rows(tr_store_settings *s, const tr_conf *conf, tr_diag *diag, const char *group,
                      const char *const *rows, const char *const *extra_keys)
{
	GPtrArray *known = g_ptr_array_new();
	for (const char *const *r = rows; *r != NULL; r++) {
		g_ptr_array_add(known, (gpointer)*r);
		for (const tr_conftab *row = tr_store_limits_table; row->name != NULL; row++) {
			if (strcmp(row->name, *r) != 0)
				continue;
			char *text = tr_conf_string(conf, group, row->name, NULL);
			if (text == NULL)
				break;
			int64_t v;
			if (strcmp(row->name, "synchronous") == 0 &&
			    (g_ascii_strcasecmp(text, "full") == 0 || g_ascii_strcasecmp(text, "normal") == 0)) {
				v = g_ascii_strcasecmp(text, "full") == 0 ? 2 : 1;
			} else if (!tr_conf_parse_int(text, row->unit, &v)) {
				tr_conf_error(conf, diag, group, row->name, "'%s' is not valid", text);
				g_free(text);
				break;
			}
			if (v < row->min || v > row->max)
				tr_conf_error(conf, diag, group, row->name, "%" G_GINT64_FORMAT " out of range", (gint64)v);
			else
				*(int64_t *)((char *)&s->limits + row->offset) = v;
			g_free(text);
			break;
		}
	}
	for (const char *const *k = extra_keys; k != NULL && *k != NULL; k++)
		g_ptr_array_add(known, (gpointer)*k);
	g_ptr_array_add(known, NULL);
	if (g_key_file_has_group(tr_conf_keyfile(conf), group))
		tr_conf_check_keys(conf, diag, group, (const char *const *)known->pdata);
	g_ptr_array_free(known, TRUE);
}

void tr_store_settings_load(tr_store_settings *s, const tr_conf *conf, const char *db_override,
                            tr_diag *diag)
{
	tr_store_settings_default(s, NULL);
	static const char *const store_extra[] = { "path", NULL };
	static const char *const ticket_extra[] = { "prefix", "agent_domains", NULL };
	static const char *const ack_extra[] = { "require_auth", NULL };
	load_rows(s, conf, diag, "store", store_rows, store_extra);
	load_rows(s, conf, diag, "tickets", ticket_rows, ticket_extra);
	load_rows(s, conf, diag, "ack", ack_rows, ack_extra);
	g_free(s->path);
	s->path = db_override != NULL ? g_strdup(db_override)
	                              : tr_conf_file_path(conf, "store", "path", "/var/lib/triage/triage.db");
	char *prefix = tr_conf_string(conf, "tickets", "prefix", NULL);
	if (prefix != NULL) {
		if (*prefix == '\0' || strlen(prefix) > 16 ||
		    strspn(prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != strlen(prefix))
			tr_conf_error(conf, diag, "tickets", "prefix", "'%s': 1-16 letters or digits", prefix);
		else {
			g_free(s->ticket_prefix);
			s->ticket_prefix = g_ascii_strup(prefix, -1);
		}
		g_free(prefix);
	}
	char *domains = tr_conf_string(conf, "tickets", "agent_domains", NULL);
	if (domains != NULL) {
		char **items = g_strsplit_set(domains, ",; ", -1);
		GPtrArray *out = g_ptr_array_new();
		for (char **d = items; *d != NULL; d++) {
			if (**d != '\0')
				g_ptr_array_add(out, g_ascii_strdown(*d, -1));
		}
		g_ptr_array_add(out, NULL);
		s->agent_domains = (char **)g_ptr_array_free(out, FALSE);
		g_strfreev(items);
		g_free(domains);
	}
	s->ack_require_auth = tr_conf_bool(conf, diag, "ack", "require_auth", false);
}

/* ---------------------------------------------------------------- schema */

/* Numbered migrations: version i+1 is migrations[i].  Never edit a shipped
 * migration; add a new one. */
static const char *const migrations[] = {
	/* 1: tickets, messages, events, outbox, SLA ladder, counters, checkpoints */
	"CREATE TABLE tickets ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" status TEXT NOT NULL DEFAULT 'open',"   /* open, waiting, paused, resolved */
	" channel TEXT NOT NULL,"
	" requester TEXT NOT NULL,"
	" requester_domain TEXT NOT NULL,"
	" account TEXT,"
	" subject TEXT NOT NULL DEFAULT '',"
	" language TEXT,"
	" category TEXT NOT NULL,"
	" priority INTEGER NOT NULL,"
	" urgency TEXT, impact TEXT, tier TEXT, team TEXT, assignee TEXT,"
	" customer_tier TEXT, triggers TEXT NOT NULL DEFAULT '',"
	" sentiment REAL,"
	" escalated INTEGER NOT NULL DEFAULT 0,"
	" escalated_at INTEGER,"
	" escalation_acked_at INTEGER,"
	" parent_id INTEGER REFERENCES tickets(id),"
	" is_incident INTEGER NOT NULL DEFAULT 0,"
	" reference TEXT,"                          /* a ticket tag we refused to attach */
	" created_at INTEGER NOT NULL,"
	" updated_at INTEGER NOT NULL,"
	" first_response_at INTEGER,"
	" resolved_at INTEGER,"
	" reopened INTEGER NOT NULL DEFAULT 0,"
	" calendar TEXT,"
	" fr_target INTEGER, fr_business INTEGER NOT NULL DEFAULT 0, fr_consumed INTEGER NOT NULL DEFAULT 0,"
	" fr_due INTEGER,"
	" res_target INTEGER, res_business INTEGER NOT NULL DEFAULT 0, res_consumed INTEGER NOT NULL DEFAULT 0,"
	" res_due INTEGER,"
	" clock_since INTEGER,"                     /* NULL while the clocks are paused */
	" next_check_at INTEGER,"                   /* next SLA ladder or escalation check */
	" signature BLOB"                           /* similarity sketch for incidents */
	");"
	"CREATE INDEX tickets_requester ON tickets(requester, created_at);"
	"CREATE INDEX tickets_account ON tickets(account, created_at);"
	"CREATE INDEX tickets_created ON tickets(created_at);"
	"CREATE INDEX tickets_check ON tickets(next_check_at) WHERE next_check_at IS NOT NULL;"
	"CREATE INDEX tickets_status ON tickets(status, priority);"
	"CREATE TABLE messages ("
	" id INTEGER PRIMARY KEY,"
	" ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
	" direction TEXT NOT NULL,"                 /* in, out */
	" channel TEXT NOT NULL,"
	" message_id TEXT,"
	" content_hash TEXT NOT NULL,"
	" sender TEXT NOT NULL DEFAULT '',"
	" sender_name TEXT,"
	" refs TEXT,"                               /* References, space-separated */
	" subject TEXT NOT NULL DEFAULT '',"
	" size INTEGER NOT NULL DEFAULT 0,"
	" at INTEGER NOT NULL,"
	" excerpt TEXT,"
	" decision TEXT"
	");"
	"CREATE UNIQUE INDEX messages_in_id ON messages(message_id) WHERE direction = 'in' AND message_id IS NOT NULL;"
	"CREATE UNIQUE INDEX messages_in_hash ON messages(content_hash) WHERE direction = 'in' AND message_id IS NULL;"
	"CREATE INDEX messages_any_id ON messages(message_id);"
	"CREATE INDEX messages_ticket ON messages(ticket_id, at);"
	"CREATE TABLE raw_messages ("
	" message_id INTEGER PRIMARY KEY REFERENCES messages(id),"
	" data BLOB NOT NULL"
	");"
	"CREATE TABLE events ("
	" id INTEGER PRIMARY KEY,"
	" ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
	" at INTEGER NOT NULL,"
	" kind TEXT NOT NULL,"
	" actor TEXT NOT NULL,"
	" detail TEXT"
	");"
	"CREATE INDEX events_ticket ON events(ticket_id, id);"
	"CREATE INDEX events_kind ON events(kind, at);"
	"CREATE TABLE outbox ("
	" id INTEGER PRIMARY KEY,"
	" action_key TEXT NOT NULL UNIQUE,"
	" ticket_id INTEGER REFERENCES tickets(id),"
	" kind TEXT NOT NULL,"                      /* ack, forward, room_post, notify, customer_notice, incident */
	" channel TEXT NOT NULL,"                   /* smtp, xmpp */
	" recipient TEXT NOT NULL,"
	" template TEXT NOT NULL,"
	" payload TEXT NOT NULL DEFAULT '{}',"
	" message_id TEXT,"                         /* our Message-ID for this action */
	" state TEXT NOT NULL DEFAULT 'pending',"   /* pending, sending, sent, failed, ambiguous */
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt_at INTEGER NOT NULL,"
	" last_error TEXT,"
	" created_at INTEGER NOT NULL,"
	" sent_at INTEGER,"
	" claimed_by TEXT, claimed_at INTEGER"
	");"
	"CREATE INDEX outbox_due ON outbox(state, next_attempt_at);"
	"CREATE INDEX outbox_ticket ON outbox(ticket_id);"
	"CREATE INDEX outbox_message_id ON outbox(message_id);"
	"CREATE TABLE sla_ladder ("
	" ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
	" clock TEXT NOT NULL,"                     /* first_response, resolution, escalation */
	" step INTEGER NOT NULL,"
	" at INTEGER NOT NULL,"
	" PRIMARY KEY (ticket_id, clock, step)"
	");"
	"CREATE TABLE ticket_bands ("              /* similarity bands (similar.h) */
	" band INTEGER NOT NULL,"
	" ticket_id INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL"
	");"
	"CREATE INDEX ticket_bands_band ON ticket_bands(band, created_at);"
	"CREATE INDEX ticket_bands_created ON ticket_bands(created_at);"
	"CREATE TABLE ack_log ("
	" address TEXT NOT NULL,"
	" at INTEGER NOT NULL,"
	" ticket_id INTEGER"
	");"
	"CREATE INDEX ack_log_address ON ack_log(address, at);"
	"CREATE TABLE suppressions ("
	" address TEXT PRIMARY KEY,"
	" until INTEGER NOT NULL,"
	" reason TEXT"
	");"
	"CREATE TABLE checkpoints ("
	" channel TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" value TEXT,"
	" PRIMARY KEY (channel, key)"
	");",
};

static bool migrate(tr_store *s, GError **error)
{
	int version = tr_store_schema_version(s);
	int latest = (int)G_N_ELEMENTS(migrations);
	if (version > latest) {
		g_set_error(error, TR_STORE_ERROR, TR_STORE_ERROR_OPEN,
		            "%s: schema version %d is newer than this triage knows (%d)",
		            s->settings.path, version, latest);
		return false;
	}
	for (int v = version; v < latest; v++) {
		if (!tr_store_begin(s, error))
			return false;
		/* Another process may have migrated while we waited for the lock. */
		if (tr_store_schema_version(s) > v) {
			tr_store_rollback(s);
			continue;
		}
		char *set_version = g_strdup_printf("PRAGMA user_version = %d", v + 1);
		bool ok = tr_store_exec(s, migrations[v], error) && tr_store_exec(s, set_version, error);
		g_free(set_version);
		if (!ok) {
			g_prefix_error(error, "migration %d: ", v + 1);
			tr_store_rollback(s);
			return false;
		}
		if (!tr_store_commit(s, error))
			return false;
	}
	return true;
}

static void stmt_finalize(gpointer p)
{
	sqlite3_finalize(p);
}

tr_store *tr_store_open(const tr_store_settings *settings, GError **error)
{
	tr_store *s = g_new0(tr_store, 1);
	s->settings.path = g_strdup(settings->path);
	s->settings.ticket_prefix = g_strdup(settings->ticket_prefix ? settings->ticket_prefix : "TKT");
	s->settings.ack_require_auth = settings->ack_require_auth;
	s->settings.agent_domains = g_strdupv(settings->agent_domains);
	s->settings.limits = settings->limits;
	s->stmts = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, stmt_finalize);
	int rc = sqlite3_open_v2(settings->path, &s->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		g_set_error(error, TR_STORE_ERROR, TR_STORE_ERROR_OPEN, "%s: cannot open database: %s",
		            settings->path, s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		tr_store_close(&s);
		return NULL;
	}
	sqlite3_busy_timeout(s->db, (int)MIN(settings->limits.busy_timeout * 1000, G_MAXINT));
	sqlite3_extended_result_codes(s->db, 1);
	char *pragmas = g_strdup_printf("PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; "
	                                "PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 4000; PRAGMA cache_size = -16384;",
	                                settings->limits.synchronous >= 2 ? "FULL" : "NORMAL");
	bool ok = tr_store_exec(s, pragmas, error);
	g_free(pragmas);
	if (ok)
		ok = migrate(s, error);
	if (!ok) {
		g_prefix_error(error, "%s: ", settings->path);
		tr_store_close(&s);
		return NULL;
	}
	return s;
}

void tr_store_close(tr_store **storep)
{
	tr_store *s = *storep;
	if (s == NULL)
		return;
	*storep = NULL;
	if (s->stmts != NULL)
		g_hash_table_destroy(s->stmts);
	if (s->db != NULL)
		sqlite3_close_v2(s->db);
	tr_store_settings_clear(&s->settings);
	g_free(s);
}

const tr_store_settings *tr_store_get_settings(const tr_store *s)
{
	return &s->settings;
}

int tr_store_schema_version(tr_store *s)
{
	sqlite3_stmt *st = NULL;
	int version = 0;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return version;
}

/* ---------------------------------------------------------------- helpers */

sqlite3 *tr_store_db(tr_store *s)
{
	return s->db;
}

void tr_store_error(tr_store *s, GError **error, int rc, const char *what)
{
	int primary = rc & 0xff;
	tr_store_error_code code = primary == SQLITE_BUSY || primary == SQLITE_LOCKED ? TR_STORE_ERROR_BUSY
	                           : primary == SQLITE_FULL ? TR_STORE_ERROR_FULL
	                           : primary == SQLITE_IOERR && (rc == SQLITE_IOERR_WRITE || rc == SQLITE_IOERR_FSYNC)
	                                 ? TR_STORE_ERROR_FULL
	                                 : TR_STORE_ERROR_SQL;
	g_set_error(error, TR_STORE_ERROR, code, "%s: %s (%s)", what, sqlite3_errmsg(s->db), s->settings.path);
}

sqlite3_stmt *tr_store_stmt(tr_store *s, const char *sql)
{
	sqlite3_stmt *st = g_hash_table_lookup(s->stmts, sql);
	if (st == NULL) {
		int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK)
			g_error("store: cannot prepare [%s]: %s", sql, sqlite3_errmsg(s->db));  /* a bug */
		g_hash_table_insert(s->stmts, (gpointer)sql, st);
	} else {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	return st;
}

bool tr_store_exec_stmt(tr_store *s, sqlite3_stmt *st, const char *what, GError **error)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		tr_store_error(s, error, rc, what);
		sqlite3_reset(st);
		return false;
	}
	sqlite3_reset(st);
	return true;
}

bool tr_store_exec(tr_store *s, const char *sql, GError **error)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		tr_store_error(s, error, rc, msg != NULL ? msg : "exec");
		sqlite3_free(msg);
		return false;
	}
	return true;
}

char *tr_store_column_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *text = sqlite3_column_text(st, col);
	return text != NULL ? g_strdup((const char *)text) : NULL;
}

/* ---------------------------------------------------------------- transactions */

bool tr_store_begin(tr_store *s, GError **error)
{
	s->depth = 0;
	return tr_store_exec_stmt(s, tr_store_stmt(s, "BEGIN IMMEDIATE"), "begin", error);
}

bool tr_store_commit(tr_store *s, GError **error)
{
	if (!tr_store_exec_stmt(s, tr_store_stmt(s, "COMMIT"), "commit", error)) {
		tr_store_rollback(s);
		return false;
	}
	return true;
}

void tr_store_rollback(tr_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->depth = 0;
}

bool tr_store_in_transaction(tr_store *s)
{
	return !sqlite3_get_autocommit(s->db);
}

bool tr_store_savepoint(tr_store *s, GError **error)
{
	if (!tr_store_exec_stmt(s, tr_store_stmt(s, "SAVEPOINT message"), "savepoint", error))
		return false;
	s->depth++;
	return true;
}

void tr_store_release(tr_store *s)
{
	if (s->depth > 0) {
		sqlite3_exec(s->db, "RELEASE message", NULL, NULL, NULL);
		s->depth--;
	}
}

void tr_store_rollback_savepoint(tr_store *s)
{
	if (s->depth > 0) {
		sqlite3_exec(s->db, "ROLLBACK TO message; RELEASE message", NULL, NULL, NULL);
		s->depth--;
	}
}

/* ---------------------------------------------------------------- ids, checkpoints */

const char *tr_store_format_ticket(const tr_store *s, int64_t id, char *buf, size_t size)
{
	g_snprintf(buf, size, "%s-%06" G_GINT64_FORMAT, s->settings.ticket_prefix, (gint64)id);
	return buf;
}

int64_t tr_store_parse_ticket(const tr_store *s, const char *text)
{
	if (text == NULL)
		return 0;
	size_t plen = strlen(s->settings.ticket_prefix);
	if (g_ascii_strncasecmp(text, s->settings.ticket_prefix, plen) == 0 && text[plen] == '-')
		text += plen + 1;
	if (!g_ascii_isdigit(*text))
		return 0;
	char *end = NULL;
	gint64 id = g_ascii_strtoll(text, &end, 10);
	if (*end != '\0' || id <= 0)
		return 0;
	return id;
}

char *tr_store_checkpoint_get(tr_store *s, const char *channel, const char *key)
{
	sqlite3_stmt *st = tr_store_stmt(s, "SELECT value FROM checkpoints WHERE channel = ?1 AND key = ?2");
	sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	char *value = sqlite3_step(st) == SQLITE_ROW ? tr_store_column_dup(st, 0) : NULL;
	sqlite3_reset(st);
	return value;
}

bool tr_store_checkpoint_set(tr_store *s, const char *channel, const char *key, const char *value,
                             GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(s, "INSERT INTO checkpoints(channel, key, value) VALUES (?1, ?2, ?3) "
	                                    "ON CONFLICT(channel, key) DO UPDATE SET value = excluded.value");
	sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
	return tr_store_exec_stmt(s, st, "checkpoint", error);
}

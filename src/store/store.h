/*
 * store.h — the ticket store: SQLite in WAL mode (tr_store_*)
 *
 * One tr_store is one database connection; use one per thread (SQLite
 * serialises writers across connections and processes; BEGIN IMMEDIATE
 * takes the write lock up front so check-then-insert cannot race).
 * The schema is created and upgraded by numbered migrations on open.
 *
 * All SQL of the project lives in src/store: tickets (ticket.h), the
 * outbox (outbox.h), SLA clocks (sla.h), ingest (ingest.h), reports
 * (report.h).  This header is the seam for another backend.
 *
 * Settings (triage.conf): [store] path, synchronous, busy_timeout;
 * [tickets] ticket numbering, threading and incident windows; [ack]
 * acknowledgment limits.  See tr_store_settings_table.
 */
#ifndef TR_STORE_H
#define TR_STORE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/conf.h"

typedef struct {
	/* [store] */
	int64_t synchronous;       /* 1 normal, 2 full (default) */
	int64_t busy_timeout;      /* seconds to wait for the write lock */
	int64_t raw_bytes;         /* original message kept for forwards */
	/* [tickets] */
	int64_t reopen_window;     /* seconds after resolution a reply reopens */
	int64_t repeat_window;     /* seconds for repeat-contact counting */
	int64_t repeat_threshold;  /* tickets in the window that make a repeat */
	int64_t incident_window;   /* seconds for mass-incident detection */
	int64_t incident_threshold;/* similar tickets that make an incident */
	int64_t incident_similarity; /* percent (Jaccard estimate) */
	int64_t incident_scan;     /* recent tickets compared, at most */
	int64_t new_per_sender_hour; /* new tickets one address opens per hour */
	/* [ack] */
	int64_t ack_per_sender_hour;
	int64_t ack_per_sender_day;
	int64_t bounce_suppress;   /* seconds a hard bounce stops acks */
} tr_store_limits;

extern const tr_conftab tr_store_limits_table[];

typedef struct {
	char *path;                /* database file */
	char *ticket_prefix;       /* "TKT" */
	bool ack_require_auth;     /* ack only when SPF or DKIM passed */
	char **agent_domains;      /* mail from these domains is an agent reply */
	tr_store_limits limits;
} tr_store_settings;

/* Read [store], [tickets], [ack]; db_override (--db) wins over [store] path. */
void tr_store_settings_load(tr_store_settings *settings, const tr_conf *conf,
                            const char *db_override, tr_diag *diag);
void tr_store_settings_clear(tr_store_settings *settings);
/* Defaults only (tests): path as given, prefix TKT. */
void tr_store_settings_default(tr_store_settings *settings, const char *path);

typedef struct tr_store tr_store;

/* Open (creating and migrating as needed).  settings are copied. */
tr_store *tr_store_open(const tr_store_settings *settings, GError **error);
void tr_store_close(tr_store **store);
const tr_store_settings *tr_store_get_settings(const tr_store *store);
/* Schema version after migrations. */
int tr_store_schema_version(tr_store *store);

/* Transactions.  begin takes the write lock (BEGIN IMMEDIATE).  A
 * savepoint groups one message's work inside a batch. */
bool tr_store_begin(tr_store *store, GError **error);
bool tr_store_commit(tr_store *store, GError **error);
void tr_store_rollback(tr_store *store);
bool tr_store_savepoint(tr_store *store, GError **error);
void tr_store_release(tr_store *store);
void tr_store_rollback_savepoint(tr_store *store);
bool tr_store_in_transaction(tr_store *store);

/* "TKT-000123" for row id 123 (into buf of at least 40 bytes). */
const char *tr_store_format_ticket(const tr_store *store, int64_t id, char *buf, size_t size);
/* Row id of a public ticket id ("TKT-000123" or "123"), or 0. */
int64_t tr_store_parse_ticket(const tr_store *store, const char *text);

/* Channel checkpoints (e.g. IMAP UIDVALIDITY/UID), outside or inside a
 * transaction.  get returns a g_malloc'd string or NULL. */
char *tr_store_checkpoint_get(tr_store *store, const char *channel, const char *key);
bool tr_store_checkpoint_set(tr_store *store, const char *channel, const char *key,
                             const char *value, GError **error);

#define TR_STORE_ERROR (tr_store_error_quark())
GQuark tr_store_error_quark(void);
typedef enum {
	TR_STORE_ERROR_OPEN,
	TR_STORE_ERROR_BUSY,      /* lock not obtained in busy_timeout: retry later */
	TR_STORE_ERROR_FULL,      /* disk full: refuse new work, retry later */
	TR_STORE_ERROR_SQL,
	TR_STORE_ERROR_NOT_FOUND,
	TR_STORE_ERROR_STATE,     /* operation not valid in the ticket's state */
} tr_store_error_code;

#endif

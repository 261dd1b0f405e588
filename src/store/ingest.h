/*
 * ingest.h — the one function every channel calls (tr_ingest_*)
 *
 * normalize → classify → in ONE transaction: dedup (Message-ID, else the
 * content hash), threading (ticket tag, In-Reply-To/References to our
 * outbound or earlier inbound messages, no hijacking by strangers), a new
 * ticket or a reply on an existing one (resume, reopen), repeat contacts,
 * mass incidents, and outbox rows for every action of the decision.
 *
 * A channel confirms a message to its source (IMAP flag, LMTP 250, milter
 * accept) only after the transaction that holds it has committed: after
 * tr_ingest_message() returned true, or after tr_ingest_batch_commit().
 * A crash before that leads to redelivery, which the dedup recognises.
 *
 * A tr_ingest uses one store connection: one per thread.
 */
#ifndef TR_INGEST_H
#define TR_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "core/engine.h"
#include "store/outbox.h"
#include "store/store.h"

typedef struct tr_ingest tr_ingest;

/* store and engine are borrowed; options are copied. */
tr_ingest *tr_ingest_new(tr_store *store, const tr_engine *engine, const tr_outbox_options *options);
void tr_ingest_free(tr_ingest **ingest);
/* A new engine after a configuration reload (borrowed). */
void tr_ingest_set_engine(tr_ingest *ingest, const tr_engine *engine);

typedef struct {
	tr_channel channel;
	/* A mail (RFC 5322 bytes) ... */
	const char *data;
	size_t len;
	/* ... or a chat message (data NULL): sender's bare JID and text. */
	const char *chat_from;
	const char *chat_text;
	size_t chat_len;
	/* The chat message's own id (XEP-0359 stanza-id, else the sender's id
	 * attribute), or NULL.  With it, the same message seen again (a client
	 * resending it) is a duplicate; without it only the same text from the
	 * same JID in the same second is. */
	const char *chat_id;
	/* A chat from a JID whose open xmpp ticket saw activity (a message, an
	 * agent's operation) within this many seconds threads onto that ticket
	 * instead of opening a new one ([xmpp] chat_thread_window); 0: never. */
	int64_t chat_thread_window;
	/* Envelope when the channel knows it (NULL otherwise). */
	const char *envelope_from;
	const char *const *envelope_to;
	size_t n_envelope_to;
	int64_t now;
	const char *source;  /* for logs: "imap:support/INBOX uid 42", a file name */
} tr_ingest_input;

typedef enum {
	TR_INGEST_NEW = 0,     /* a new ticket */
	TR_INGEST_REPLY,       /* a customer message on an existing ticket */
	TR_INGEST_AGENT,       /* an agent's message on a ticket: first response */
	TR_INGEST_DUPLICATE,   /* seen before: nothing created */
} tr_ingest_kind;

typedef struct {
	tr_ingest_kind kind;
	int64_t ticket_id;
	char ticket[40];       /* public id */
	int priority;
	char category[32];
	char team[48];
	bool ack_queued;
	const char *no_ack;    /* static reason when no ack was queued, or NULL */
	bool escalated;        /* escalation actions queued now */
	bool reopened, resumed;
	bool repeat_contact;
	bool flood;            /* over new_per_sender_hour: joined the sender's newest ticket */
	int64_t incident_id;   /* the incident this ticket belongs to, 0 if none */
	bool incident_created;
	char reference[40];    /* a ticket tag we refused to attach (hijack) */
} tr_ingest_result;

const char *tr_ingest_kind_name(tr_ingest_kind kind);

/* One message in its own transaction. */
bool tr_ingest_message(tr_ingest *ingest, const tr_ingest_input *input, tr_ingest_result *result,
                       GError **error);

/*
 * Several messages in one transaction (one fsync): begin, add each (a
 * failing message is rolled back alone and reported; the others stay),
 * commit.  Results are durable only after commit returned true; on a
 * failed commit, nothing of the batch was stored.
 */
bool tr_ingest_batch_begin(tr_ingest *ingest, GError **error);
bool tr_ingest_batch_add(tr_ingest *ingest, const tr_ingest_input *input, tr_ingest_result *result,
                         GError **error);
bool tr_ingest_batch_commit(tr_ingest *ingest, GError **error);
void tr_ingest_batch_abort(tr_ingest *ingest);

/* A hard bounce for address: no acknowledgment to it for bounce_suppress. */
bool tr_ingest_suppress(tr_ingest *ingest, const char *address, const char *reason, int64_t now,
                        GError **error);

#endif

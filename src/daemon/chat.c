/* chat.c — the daemon's XMPP worker: outbox, chat-ops, chat intake; see chat.h */
#include "daemon/chat.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/backoff.h"
#include "core/log.h"
#include "daemon/chatops.h"
#include "store/context.h"
#include "store/ingest.h"
#include "store/ticket.h"

#define WORKER_NAME "serve-xmpp"
#define OUTBOX_ID_PREFIX "outbox:"
#define REPLY_ID_PREFIX "reply:"
/* The one resend after an uncertain attempt says so: a reader who saw the
 * first copy knows this is not a second event. */
#define RESEND_MARK "(resent: an earlier copy may have arrived) "
/* A chat the store could not take is retried this long, then lost. */
#define INTAKE_RETRY_US (60 * G_TIME_SPAN_SECOND)
/* A refused enqueue (queue full, stopping) is tried again after this. */
#define REQUEUE_SECONDS 5
/* Answers to one refused sender per minute: someone typing commands they
 * may not run must not use up the room's post rate escalations need. */
#define REFUSALS_PER_MINUTE 3
#define REFUSAL_SENDERS_MAX 1000

/* ------------------------------------------------------------ the worker */

typedef struct {
	int64_t row_id, ticket_id, created_at;
	int attempts;
	unsigned ambiguous;
	char *kind, *recipient, *ticket;
	/* A result whose store write failed: kept and written again. */
	bool has_outcome;
	tr_xmpp_send_status status;
	char *why;
} inflight;

typedef struct {
	char *from, *text, *id;
	gint64 first_try;
} pending_chat;

struct tr_chat {
	tr_xmpp *xmpp;
	tr_xmpp_config cfg;
	tr_store_settings store_settings;
	tr_engine_slot *engines;
	tr_outbox_options outbox;
	char *message_domain;
	int64_t poll_interval, drain_ms;
	void (*on_commit)(void *);
	void *user_data;

	GThread *thread;
	int wake_fd;
	gint stopping;
	gint scan;             /* look for due rows at the next turn */
	GMutex lock;           /* guards stats */
	tr_chat_stats stats;

	/* The thread's own: */
	tr_store *store;
	bool recovered;
	GHashTable *inflight;  /* "outbox:ID" -> inflight* */
	GQueue intake;         /* pending_chat*: the store refused them for now */
	uint64_t replies;
	gint64 next_scan;      /* monotonic us */
	GHashTable *refusals;  /* sender -> refusal_count*: answers given this minute */
};

typedef struct {
	gint64 since;
	unsigned answered;
} refusal_count;

static void inflight_free(gpointer p)
{
	inflight *f = p;
	g_free(f->kind);
	g_free(f->recipient);
	g_free(f->ticket);
	g_free(f->why);
	g_free(f);
}

static void pending_chat_free(pending_chat *p)
{
	g_free(p->from);
	g_free(p->text);
	g_free(p->id);
	g_free(p);
}

static bool stopping(tr_chat *c)
{
	return g_atomic_int_get(&c->stopping) != 0;
}

static void count(tr_chat *c, unsigned *field)
{
	g_mutex_lock(&c->lock);
	(*field)++;
	c->stats.inflight = g_hash_table_size(c->inflight);
	g_mutex_unlock(&c->lock);
}

static void wake(tr_chat *c)
{
	uint64_t one = 1;
	if (write(c->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		tr_log_debug("xmpp worker: eventfd write: %s", g_strerror(errno));
}

void tr_chat_notify(tr_chat *c)
{
	if (c == NULL)
		return;
	g_atomic_int_set(&c->scan, 1);
	wake(c);
}

void tr_chat_stop(tr_chat *c)
{
	if (c == NULL)
		return;
	g_atomic_int_set(&c->stopping, 1);
	wake(c);
}

void tr_chat_get_stats(tr_chat *c, tr_chat_stats *stats)
{
	g_mutex_lock(&c->lock);
	*stats = c->stats;
	g_mutex_unlock(&c->lock);
}

static gint64 now_seconds(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

static bool ensure_store(tr_chat *c)
{
	if (c->store != NULL)
		return true;
	GError *error = NULL;
	c->store = tr_store_open(&c->store_settings, &error);
	if (c->store == NULL) {
		tr_log_error("xmpp worker: %s", error->message);
		g_error_free(error);
		return false;
	}
	return true;
}

static void store_trouble(tr_chat *c, const char *what, GError *error)
{
	tr_log_error("xmpp worker: %s: %s", what, error != NULL ? error->message : "store error");
	/* A fresh connection next time: the old one may be wedged. */
	tr_store_close(&c->store);
}

/* Rows a killed daemon left half-sent: they may have gone out. */
static void recover(tr_chat *c)
{
	GError *error = NULL;
	int n = tr_outbox_recover(c->store, "xmpp", now_seconds(), c->cfg.limits.ambiguous_delay, &error);
	if (n < 0) {
		store_trouble(c, "recover interrupted posts", error);
		g_clear_error(&error);
		return;
	}
	c->recovered = true;
	if (n > 0)
		tr_log_warning("xmpp worker: %d posts or chats were interrupted mid-way; each is resent once after %"
		               G_GINT64_FORMAT " s, marked as a possible duplicate", n, (gint64)c->cfg.limits.ambiguous_delay);
}

/* Seconds before the next attempt of a row that failed attempts times. */
static int64_t retry_delay(const tr_chat *c, int attempts)
{
	tr_backoff_policy p = {
		.initial_ms = c->cfg.limits.outbox_retry * 1000, .max_ms = c->cfg.limits.outbox_retry_max * 1000,
		.factor = 2.0, .jitter = 0.25,
	};
	int64_t base = tr_backoff_base(&p, (unsigned)MAX(attempts, 1));
	int64_t ms = base - (int64_t)((double)base * 0.25 * g_random_double());
	return MAX((ms + 999) / 1000, 1);
}

/* Write one result to the store; false when the store failed (kept). */
static bool record(tr_chat *c, inflight *f)
{
	int64_t now = now_seconds();
	GError *error = NULL;
	bool ok;
	const char *why = f->why != NULL ? f->why : "";
	switch (f->status) {
	case TR_XMPP_SEND_OK:
		ok = tr_outbox_sent(c->store, f->row_id, now, &error);
		if (ok) {
			tr_log_info("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s sent%s", f->ticket, (gint64)f->row_id,
			            f->kind, f->recipient, f->ambiguous ? " - a resend after an uncertain attempt" : "");
			count(c, &c->stats.sent);
		}
		break;
	case TR_XMPP_SEND_UNCERTAIN: {
		bool retry = f->ambiguous == 0;
		ok = tr_outbox_ambiguous(c->store, f->row_id, retry, now + c->cfg.limits.ambiguous_delay, why, &error);
		if (ok) {
			tr_log_warning("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s may or may not have been delivered: "
			               "%s; %s", f->ticket, (gint64)f->row_id, f->kind, f->recipient, why,
			               retry ? "one marked resend later" : "stopped, see `triage outbox --failed`");
			count(c, &c->stats.ambiguous);
		}
		break;
	}
	default: {
		int64_t age = now - f->created_at;
		if (age >= c->cfg.limits.outbox_give_up) {
			char *text = g_strdup_printf("%s (gave up after %" G_GINT64_FORMAT " s)", why, (gint64)age);
			ok = tr_outbox_failed(c->store, f->row_id, now, text, &error);
			g_free(text);
			if (ok) {
				tr_log_warning("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s failed: %s; gave up", f->ticket,
				               (gint64)f->row_id, f->kind, f->recipient, why);
				count(c, &c->stats.failed);
			}
			break;
		}
		int64_t delay = retry_delay(c, f->attempts);
		/* Keep the mark of an earlier uncertain attempt: it allows one
		 * resend, not one per failure in between. */
		char *text = f->ambiguous ? g_strdup_printf("ambiguous: earlier attempt uncertain; now %s", why)
		                          : g_strdup(why);
		ok = tr_outbox_retry(c->store, f->row_id, now + delay, text, &error);
		g_free(text);
		if (ok) {
			tr_log_info("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s not sent (%s); next attempt in %"
			            G_GINT64_FORMAT " s", f->ticket, (gint64)f->row_id, f->kind, f->recipient, why, (gint64)delay);
			count(c, &c->stats.retried);
		}
		break;
	}
	}
	if (!ok) {
		store_trouble(c, "record a send result (kept, written again)", error);
		g_clear_error(&error);
	}
	return ok;
}

/* Results whose store write failed earlier. */
static void flush_outcomes(tr_chat *c)
{
	GHashTableIter it;
	gpointer key, value;
	g_hash_table_iter_init(&it, c->inflight);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		inflight *f = value;
		if (!f->has_outcome)
			continue;
		if (!ensure_store(c) || !record(c, f))
			return;
		g_hash_table_iter_remove(&it);
	}
	g_mutex_lock(&c->lock);
	c->stats.inflight = g_hash_table_size(c->inflight);
	g_mutex_unlock(&c->lock);
}

static void on_send_result(tr_chat *c, const tr_xmpp_event *ev)
{
	if (g_str_has_prefix(ev->id, REPLY_ID_PREFIX)) {
		if (ev->send_status != TR_XMPP_SEND_OK)
			tr_log_info("xmpp: an answer to %s was %s: %s", ev->room != NULL ? ev->room : ev->jid,
			            tr_xmpp_send_status_name(ev->send_status), ev->text != NULL ? ev->text : "");
		return;
	}
	inflight *f = g_hash_table_lookup(c->inflight, ev->id);
	if (f == NULL) {
		tr_log_warning("xmpp worker: a result for %s, which is not in flight", ev->id);
		return;
	}
	f->has_outcome = true;
	f->status = ev->send_status;
	f->why = g_strdup(ev->text != NULL ? ev->text : tr_xmpp_send_status_name(ev->send_status));
	if (ensure_store(c) && record(c, f))
		g_hash_table_remove(c->inflight, ev->id);
	g_mutex_lock(&c->lock);
	c->stats.inflight = g_hash_table_size(c->inflight);
	g_mutex_unlock(&c->lock);
	/* A slot is free: more due rows may be waiting. */
	g_atomic_int_set(&c->scan, 1);
}

/* Put a claimed row back (never written: no ambiguity). */
static void unclaim(tr_chat *c, const tr_outbox_row *row, bool permanent, const char *why)
{
	GError *error = NULL;
	int64_t now = now_seconds();
	bool ok = permanent ? tr_outbox_failed(c->store, row->id, now, why, &error)
	                    : tr_outbox_retry(c->store, row->id, now + REQUEUE_SECONDS, why, &error);
	if (!ok) {
		/* It stays 'sending' and is recovered at the next start. */
		store_trouble(c, "put back a claimed row", error);
		g_clear_error(&error);
	}
}

/* Claim, render and hand over one due row.  false: nothing more now. */
static bool post_one(tr_chat *c, const tr_engine *engine)
{
	int64_t now = now_seconds();
	tr_outbox_row row;
	bool found = false;
	GError *error = NULL;
	if (!tr_outbox_claim(c->store, "xmpp", WORKER_NAME, now, &row, &found, &error)) {
		store_trouble(c, "claim", error);
		g_clear_error(&error);
		return false;
	}
	if (!found)
		return false;
	char tbuf[40];
	const char *ticket = row.ticket_id != 0 ? tr_store_format_ticket(c->store, row.ticket_id, tbuf, sizeof(tbuf)) : "-";
	size_t len = 0;
	char *text = tr_context_render(c->store, engine, &row, now, &len, &error);
	if (text == NULL) {
		/* A template or data problem will not fix itself by waiting. */
		tr_log_error("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s: cannot render: %s", ticket, (gint64)row.id,
		             row.kind, row.recipient, error->message);
		unclaim(c, &row, true, error->message);
		g_clear_error(&error);
		count(c, &c->stats.render_failed);
		tr_outbox_row_clear(&row);
		return true;
	}
	unsigned ambiguous = tr_outbox_ambiguous_count(&row);
	if (ambiguous > 0) {
		char *marked = g_strconcat(RESEND_MARK, text, NULL);
		g_free(text);
		text = marked;
	}
	char *id = g_strdup_printf(OUTBOX_ID_PREFIX "%" G_GINT64_FORMAT, (gint64)row.id);
	bool room = strcmp(row.kind, "room_post") == 0;
	bool ok = room ? tr_xmpp_post_room(c->xmpp, row.recipient, text, id, &error)
	               : tr_xmpp_send_chat(c->xmpp, row.recipient, text, id, &error);
	g_free(text);
	if (!ok) {
		bool permanent = g_error_matches(error, TR_XMPP_ERROR, TR_XMPP_ERROR_INVALID);
		tr_log_warning("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s refused by the connection: %s%s", ticket,
		               (gint64)row.id, row.kind, row.recipient, error->message, permanent ? "" : " (tried again)");
		unclaim(c, &row, permanent, error->message);
		g_clear_error(&error);
		g_free(id);
		tr_outbox_row_clear(&row);
		if (permanent)
			count(c, &c->stats.failed);
		return permanent;   /* a full queue: wait for results first */
	}
	inflight *f = g_new0(inflight, 1);
	f->row_id = row.id;
	f->ticket_id = row.ticket_id;
	f->created_at = row.created_at;
	f->attempts = row.attempts;
	f->ambiguous = ambiguous;
	f->kind = g_strdup(row.kind);
	f->recipient = g_strdup(row.recipient);
	f->ticket = g_strdup(ticket);
	g_hash_table_insert(c->inflight, id, f);
	tr_log_debug("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s handed to the connection", ticket, (gint64)row.id,
	             row.kind, row.recipient);
	count(c, &c->stats.posted);
	tr_outbox_row_clear(&row);
	return true;
}

static void post_due(tr_chat *c, const tr_engine *engine)
{
	gint64 mono = g_get_monotonic_time();
	bool asked = g_atomic_int_compare_and_exchange(&c->scan, 1, 0);
	if (!asked && mono < c->next_scan)
		return;
	c->next_scan = mono + c->poll_interval * G_USEC_PER_SEC;
	while (!stopping(c) && c->store != NULL && g_hash_table_size(c->inflight) < (guint)c->cfg.limits.outbox_inflight) {
		if (!post_one(c, engine))
			return;
	}
	if (g_hash_table_size(c->inflight) >= (guint)c->cfg.limits.outbox_inflight)
		g_atomic_int_set(&c->scan, 1);   /* more after the next result */
}

/* ---- incoming ---- */

static void answer(tr_chat *c, const char *room, const char *jid, const char *text)
{
	char *id = g_strdup_printf(REPLY_ID_PREFIX "%" G_GUINT64_FORMAT, (guint64)++c->replies);
	GError *error = NULL;
	bool ok = room != NULL ? tr_xmpp_post_room(c->xmpp, room, text, id, &error)
	                       : tr_xmpp_send_chat(c->xmpp, jid, text, id, &error);
	if (!ok) {
		tr_log_info("xmpp: cannot answer %s: %s", room != NULL ? room : jid, error->message);
		g_error_free(error);
	}
	g_free(id);
}

/* May a refusal to this sender be answered, or is it one too many? */
static bool answer_refusal(tr_chat *c, const char *room, const tr_xmpp_event *ev)
{
	gint64 now = g_get_monotonic_time();
	if (g_hash_table_size(c->refusals) >= REFUSAL_SENDERS_MAX)
		g_hash_table_remove_all(c->refusals);
	char *bare = tr_xmpp_jid_bare(ev->jid);   /* any resource of one account is one sender */
	char *key = g_strdup_printf("%s/%s", room != NULL ? room : "", bare != NULL ? bare : ev->nick);
	g_free(bare);
	refusal_count *r = g_hash_table_lookup(c->refusals, key);
	if (r == NULL) {
		r = g_new0(refusal_count, 1);
		g_hash_table_insert(c->refusals, key, r);
	} else {
		g_free(key);
	}
	if (now - r->since > 60 * G_USEC_PER_SEC) {
		r->since = now;
		r->answered = 0;
	}
	return ++r->answered <= REFUSALS_PER_MINUTE;
}

/* A command from a room (room, nick set) or a 1:1 chat (jid set). */
static void command(tr_chat *c, const tr_engine *engine, const tr_xmpp_event *ev, const char *room)
{
	tr_chatcmd cmd;
	const char *prefix = c->store_settings.ticket_prefix;
	size_t len = strlen(ev->body);
	if (tr_chatcmd_parse(ev->body, len, prefix, &cmd) == TR_CHATCMD_NONE)
		return;
	tr_chatops_actor actor;
	bool allowed = tr_chatops_authorize(&c->cfg, tr_engine_policy(engine), ev->jid,
	                                    room != NULL ? ev->nick : NULL, room, &actor);
	GString *reply = g_string_new(NULL);
	if (room != NULL)
		g_string_append_printf(reply, "%s: ", ev->nick);
	if (!allowed) {
		/* Nothing of the input is repeated, and nothing changes.  Past
		 * the answers a sender gets per minute: silence, and no log flood. */
		bool answered = answer_refusal(c, room, ev);
		tr_log(answered ? TR_LOG_WARNING : TR_LOG_DEBUG, "xmpp: %s%s%s (%s) is not allowed to run commands; "
		       "refused%s", room != NULL ? room : "chat", room != NULL ? "/" : "", room != NULL ? ev->nick : "",
		       ev->jid != NULL ? ev->jid : "JID hidden", answered ? "" : " without an answer (too many)");
		g_string_append(reply, "not allowed");
		count(c, &c->stats.refused);
		if (!answered) {
			g_string_free(reply, TRUE);
			tr_chatops_actor_clear(&actor);
			return;
		}
	} else if (cmd.kind == TR_CHATCMD_INVALID) {
		g_string_append(reply, cmd.error);
		count(c, &c->stats.refused);
	} else if (!ensure_store(c)) {
		g_string_append(reply, "sorry, the ticket store is unavailable; try again");
	} else {
		char *where = g_strdup(room != NULL ? room : "chat");
		bool done = tr_chatops_execute(c->store, engine, &cmd, &actor, where, now_seconds(), reply);
		tr_log_info("%s%s xmpp: !%s by %s in %s: %s", cmd.ticket > 0 ? "ticket=" : "",
		            cmd.ticket > 0 ? cmd.ticket_text : "", tr_chatcmd_name(cmd.kind), actor.name, where,
		            done ? "done" : "refused");
		g_free(where);
		count(c, &c->stats.commands);
	}
	answer(c, room, ev->jid, reply->str);
	g_string_free(reply, TRUE);
	tr_chatops_actor_clear(&actor);
}

/* Ingest one customer chat; false when the store could not take it. */
static bool intake(tr_chat *c, const tr_engine *engine, const char *from, const char *text, const char *id)
{
	if (!ensure_store(c))
		return false;
	char *source = g_strdup_printf("xmpp:%s", from);
	tr_ingest_input in = {
		.channel = TR_CHANNEL_XMPP, .chat_from = from, .chat_text = text, .chat_len = strlen(text),
		.chat_id = id, .chat_thread_window = c->cfg.limits.chat_thread_window, .now = now_seconds(),
		.source = source,
	};
	tr_ingest *ing = tr_ingest_new(c->store, engine, &c->outbox);
	tr_ingest_result res;
	GError *error = NULL;
	bool ok = tr_ingest_message(ing, &in, &res, &error);
	tr_ingest_free(&ing);
	if (!ok) {
		bool retry = error != NULL && error->domain == TR_STORE_ERROR;
		if (retry) {
			store_trouble(c, "chat intake (kept, tried again)", error);
		} else {
			tr_log_error("xmpp: a chat from %s cannot be ingested: %s", from,
			             error != NULL ? error->message : "unknown error");
			count(c, &c->stats.intake_lost);
		}
		g_clear_error(&error);
		g_free(source);
		return !retry;
	}
	if (res.kind == TR_INGEST_DUPLICATE) {
		tr_log_info("ticket=%s %s: already stored", res.ticket, source);
	} else {
		tr_log_info("ticket=%s %s %s %s -> %s%s%s source=%s", res.ticket, tr_ingest_kind_name(res.kind),
		            tr_priority_name(res.priority), res.category, res.team, res.ack_queued ? " ack=queued" : "",
		            res.escalated ? " escalated" : "", source);
		count(c, &c->stats.intake);
		if (res.ack_queued || res.escalated) {
			g_atomic_int_set(&c->scan, 1);
			if (c->on_commit != NULL)
				c->on_commit(c->user_data);
		}
	}
	g_free(source);
	return true;
}

static void retry_intake(tr_chat *c, const tr_engine *engine)
{
	while (!g_queue_is_empty(&c->intake)) {
		pending_chat *p = g_queue_peek_head(&c->intake);
		if (!intake(c, engine, p->from, p->text, p->id)) {
			if (g_get_monotonic_time() - p->first_try < INTAKE_RETRY_US)
				return;
			tr_log_error("xmpp: a chat from %s is lost: the store refused it for %d s", p->from,
			             (int)(INTAKE_RETRY_US / G_USEC_PER_SEC));
			count(c, &c->stats.intake_lost);
		}
		pending_chat_free(g_queue_pop_head(&c->intake));
	}
}

static bool is_agent_domain(const tr_chat *c, const char *bare)
{
	const char *at = strrchr(bare, '@');
	for (char **d = c->store_settings.agent_domains; at != NULL && d != NULL && *d != NULL; d++) {
		if (g_ascii_strcasecmp(*d, at + 1) == 0)
			return true;
	}
	return false;
}

static void on_chat(tr_chat *c, const tr_engine *engine, const tr_xmpp_event *ev)
{
	char *bare_raw = tr_xmpp_jid_bare(ev->jid);
	char *bare = tr_xmpp_jid_normalize(bare_raw);
	g_free(bare_raw);
	tr_chatops_actor actor;
	bool operator = tr_chatops_authorize(&c->cfg, tr_engine_policy(engine), ev->jid, NULL, NULL, &actor);
	tr_chatops_actor_clear(&actor);
	if (operator || is_agent_domain(c, bare)) {
		/* The team's own people: a console, never a ticket. */
		tr_chatcmd probe;
		if (operator && tr_chatcmd_parse(ev->body, strlen(ev->body), c->store_settings.ticket_prefix, &probe) !=
		                    TR_CHATCMD_NONE)
			command(c, engine, ev, NULL);
		else {
			tr_log_info("xmpp: a chat from %s is not a ticket (%s)", bare,
			            operator ? "an operator" : "an agent domain");
			answer(c, NULL, ev->jid, operator ? "Chats from operators are not tickets. Try !help."
			                                  : "Chats from the support team's addresses are not tickets.");
		}
		g_free(bare);
		return;
	}
	if (ev->truncated)
		tr_log_warning("xmpp: a chat from %s was cut to %" G_GINT64_FORMAT " bytes", bare,
		               (gint64)c->cfg.limits.incoming_max);
	if (!g_queue_is_empty(&c->intake) || !intake(c, engine, bare, ev->body, ev->stanza_id)) {
		pending_chat *p = g_new0(pending_chat, 1);
		p->from = bare;
		p->text = g_strdup(ev->body);
		p->id = g_strdup(ev->stanza_id);
		p->first_try = g_get_monotonic_time();
		g_queue_push_tail(&c->intake, p);
		return;
	}
	g_free(bare);
}

static void on_event(tr_chat *c, const tr_engine *engine, const tr_xmpp_event *ev)
{
	switch (ev->type) {
	case TR_XMPP_EVENT_CONNECTED:
		tr_log_info("xmpp: connected as %s", ev->jid != NULL ? ev->jid : c->cfg.jid);
		break;
	case TR_XMPP_EVENT_DISCONNECTED:
		if (stopping(c))
			tr_log_info("xmpp: disconnected (stopping)");
		else
			tr_log_warning("xmpp: disconnected: %s; reconnecting", ev->text != NULL ? ev->text : "connection lost");
		break;
	case TR_XMPP_EVENT_JOINED:
		tr_log_info("xmpp: joined %s%s", ev->room, ev->created ? " (created it)" : "");
		break;
	case TR_XMPP_EVENT_LEFT:
		if (stopping(c))
			tr_log_info("xmpp: left %s (stopping)", ev->room);
		else
			tr_log_info("xmpp: out of %s (%s%s%s); rejoining", ev->room, tr_xmpp_left_reason_name(ev->left_reason),
			            ev->text != NULL ? ": " : "", ev->text != NULL ? ev->text : "");
		break;
	case TR_XMPP_EVENT_ROOM_MESSAGE:
		command(c, engine, ev, ev->room);
		break;
	case TR_XMPP_EVENT_CHAT_MESSAGE:
		on_chat(c, engine, ev);
		break;
	case TR_XMPP_EVENT_SEND_RESULT:
		on_send_result(c, ev);
		break;
	}
}

/* Handle the events waiting now (at most max). */
static void drain_events(tr_chat *c, const tr_engine *engine, unsigned max)
{
	tr_xmpp_event *ev;
	for (unsigned n = 0; n < max && tr_xmpp_next_event(c->xmpp, 0, &ev); n++) {
		on_event(c, engine, ev);
		tr_xmpp_event_free(&ev);
	}
}

static void wait_for_work(tr_chat *c, int timeout_ms)
{
	struct pollfd fds[2] = {
		{ .fd = tr_xmpp_event_fd(c->xmpp), .events = POLLIN },
		{ .fd = c->wake_fd, .events = POLLIN },
	};
	if (poll(fds, 2, timeout_ms) > 0 && (fds[1].revents & POLLIN)) {
		uint64_t value;
		if (read(c->wake_fd, &value, sizeof(value)) < 0 && errno != EAGAIN)
			tr_log_debug("xmpp worker: eventfd read: %s", g_strerror(errno));
	}
}

static int next_timeout_ms(tr_chat *c)
{
	if (c->store == NULL || !c->recovered)
		return 1000;   /* the store is away: try again soon, do not spin */
	if (g_atomic_int_get(&c->scan) && g_hash_table_size(c->inflight) < (guint)c->cfg.limits.outbox_inflight)
		return 0;
	bool trouble = c->store == NULL || !g_queue_is_empty(&c->intake);
	GHashTableIter it;
	gpointer value;
	g_hash_table_iter_init(&it, c->inflight);
	while (!trouble && g_hash_table_iter_next(&it, NULL, &value))
		trouble = ((inflight *)value)->has_outcome;
	gint64 ms = (c->next_scan - g_get_monotonic_time()) / 1000;
	if (trouble)
		ms = MIN(ms, 1000);
	return (int)CLAMP(ms, 0, 60000);
}

/* The end: no new claims, results in flight, the connection closed. */
static void finish(tr_chat *c)
{
	gint64 deadline = g_get_monotonic_time() + c->drain_ms * 1000;
	while (g_hash_table_size(c->inflight) > 0 && g_get_monotonic_time() < deadline) {
		tr_engine *engine = tr_engine_slot_get(c->engines);
		drain_events(c, engine, 100);
		flush_outcomes(c);
		tr_engine_free(&engine);
		if (g_hash_table_size(c->inflight) > 0)
			wait_for_work(c, 100);
	}
	if (!tr_xmpp_close(c->xmpp, 2000))
		tr_log_warning("xmpp: the connection did not close in time (blocked in a library call); detached");
	/* close reported every message still outstanding. */
	tr_engine *engine = tr_engine_slot_get(c->engines);
	drain_events(c, engine, G_MAXUINT);
	flush_outcomes(c);
	retry_intake(c, engine);
	tr_engine_free(&engine);
	if (g_hash_table_size(c->inflight) > 0)
		tr_log_warning("xmpp worker: %u results could not be recorded; those rows are resent once, marked, "
		               "at the next start", g_hash_table_size(c->inflight));
	if (!g_queue_is_empty(&c->intake))
		tr_log_error("xmpp: %u chats could not be stored before the stop and are lost",
		             g_queue_get_length(&c->intake));
}

static gpointer chat_thread(gpointer data)
{
	tr_chat *c = data;
	while (!stopping(c)) {
		tr_engine *engine = tr_engine_slot_get(c->engines);
		if (ensure_store(c) && !c->recovered)
			recover(c);
		drain_events(c, engine, 200);
		flush_outcomes(c);
		retry_intake(c, engine);
		if (c->store != NULL && c->recovered)
			post_due(c, engine);
		tr_engine_free(&engine);
		if (!stopping(c))
			wait_for_work(c, next_timeout_ms(c));
	}
	finish(c);
	tr_store_close(&c->store);
	return NULL;
}

tr_chat *tr_chat_start(const tr_chat_options *o)
{
	tr_chat *c = g_new0(tr_chat, 1);
	c->xmpp = o->xmpp;
	tr_xmpp_config_copy(&c->cfg, o->xmpp_config);
	c->store_settings = *o->store;
	c->store_settings.path = g_strdup(o->store->path);
	c->store_settings.ticket_prefix = g_strdup(o->store->ticket_prefix);
	c->store_settings.agent_domains = o->store->agent_domains != NULL ? g_strdupv(o->store->agent_domains) : NULL;
	c->engines = o->engines;
	c->message_domain = g_strdup(o->outbox != NULL && o->outbox->message_domain != NULL ? o->outbox->message_domain
	                                                                                    : "triage.invalid");
	c->outbox.message_domain = c->message_domain;
	c->outbox.rooms = o->outbox != NULL && o->outbox->rooms;
	c->poll_interval = o->poll_interval > 0 ? o->poll_interval : 5;
	c->drain_ms = o->drain_ms > 0 ? o->drain_ms : 3000;
	c->on_commit = o->on_commit;
	c->user_data = o->user_data;
	c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->wake_fd < 0)
		g_error("xmpp worker: eventfd: %s", g_strerror(errno));  /* out of descriptors at start-up */
	g_mutex_init(&c->lock);
	c->inflight = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, inflight_free);
	c->refusals = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_queue_init(&c->intake);
	c->scan = 1;
	c->thread = g_thread_new("xmpp-worker", chat_thread, c);
	return c;
}

void tr_chat_free(tr_chat **cp)
{
	tr_chat *c = *cp;
	if (c == NULL)
		return;
	tr_chat_stop(c);
	g_thread_join(c->thread);
	/* Only now: until the thread ended, others may still notify it. */
	*cp = NULL;
	g_hash_table_destroy(c->inflight);
	g_hash_table_destroy(c->refusals);
	while (!g_queue_is_empty(&c->intake))
		pending_chat_free(g_queue_pop_head(&c->intake));
	close(c->wake_fd);
	g_mutex_clear(&c->lock);
	tr_xmpp_config_clear(&c->cfg);
	tr_store_settings_clear(&c->store_settings);
	g_free(c->message_domain);
	g_free(c);
}

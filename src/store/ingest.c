/* ingest.c — normalize, classify, store, queue; see ingest.h */
#include "store/ingest.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "core/json.h"
#include "core/similar.h"
#include "store/sla.h"
#include "store/store-private.h"
#include "store/ticket.h"

/* Characters of the customer's new text kept with each stored message. */
#define EXCERPT_CHARS 2000

struct tr_ingest {
	tr_store *store;
	const tr_engine *engine;
	tr_outbox_options options;
	char *message_domain;
	bool batch;
};

/* Mailbox providers where a shared domain says nothing about who is who:
 * a ticket tag from another address there is never "the same company". */
static const char *const public_domains[] = {
	"gmail.com", "googlemail.com", "yahoo.com", "yahoo.fr", "yahoo.es", "yahoo.de", "yahoo.com.br",
	"outlook.com", "hotmail.com", "hotmail.fr", "hotmail.es", "live.com", "msn.com", "icloud.com",
	"me.com", "mac.com", "aol.com", "gmx.de", "gmx.net", "gmx.com", "web.de", "t-online.de",
	"mail.ru", "yandex.ru", "yandex.com", "proton.me", "protonmail.com", "zoho.com", "orange.fr",
	"free.fr", "laposte.net", "wanadoo.fr", "uol.com.br", "bol.com.br", "terra.com.br", "libero.it",
	"freemail.example", "correo.example", NULL,
};

const char *tr_ingest_kind_name(tr_ingest_kind kind)
{
	static const char *const names[] = { "new", "reply", "agent", "duplicate" };
	return (unsigned)kind < G_N_ELEMENTS(names) ? names[kind] : "unknown";
}

tr_ingest *tr_ingest_new(tr_store *store, const tr_engine *engine, const tr_outbox_options *options)
{
	tr_ingest *ing = g_new0(tr_ingest, 1);
	ing->store = store;
	ing->engine = engine;
	ing->message_domain = g_strdup(options != NULL && options->message_domain != NULL
	                               ? options->message_domain : "triage.invalid");
	ing->options.message_domain = ing->message_domain;
	ing->options.rooms = options != NULL && options->rooms;
	return ing;
}

void tr_ingest_free(tr_ingest **ingp)
{
	tr_ingest *ing = *ingp;
	if (ing == NULL)
		return;
	*ingp = NULL;
	g_free(ing->message_domain);
	g_free(ing);
}

void tr_ingest_set_engine(tr_ingest *ing, const tr_engine *engine)
{
	ing->engine = engine;
}

/* ---------------------------------------------------------------- lookups */

static const char *domain_of(const char *address)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;
	return at != NULL ? at + 1 : "";
}

static bool in_strv(char *const *list, const char *s)
{
	for (char *const *it = list; it != NULL && *it != NULL; it++) {
		if (g_ascii_strcasecmp(*it, s) == 0)
			return true;
	}
	return false;
}

static bool is_public_domain(const char *domain)
{
	return in_strv((char *const *)public_domains, domain);
}

static bool is_agent(const tr_ingest *ing, const char *address)
{
	const tr_policy *policy = tr_engine_policy(ing->engine);
	if (address == NULL || *address == '\0')
		return false;
	return in_strv(tr_store_get_settings(ing->store)->agent_domains, domain_of(address)) ||
	       tr_policy_person_by_address(policy, address) != NULL || tr_policy_is_our_address(policy, address);
}

static int64_t lookup_id(tr_store *store, const char *sql, const char *value)
{
	sqlite3_stmt *st = tr_store_stmt(store, sql);
	sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
	int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return id;
}

/* The ticket of an earlier copy of this message, or 0. */
static int64_t find_duplicate(tr_store *store, const tr_msg *msg)
{
	if (msg->message_id != NULL)
		return lookup_id(store, "SELECT ticket_id FROM messages WHERE direction = 'in' AND message_id = ?1",
		                 msg->message_id);
	return lookup_id(store, "SELECT ticket_id FROM messages WHERE direction = 'in' AND message_id IS NULL "
	                        "AND content_hash = ?1", msg->content_hash);
}

/* A "[TKT-000123]" tag in the subject: the ticket id, or 0. */
static int64_t subject_tag(tr_store *store, const char *subject)
{
	const char *prefix = tr_store_get_settings(store)->ticket_prefix;
	size_t plen = strlen(prefix);
	for (const char *p = strchr(subject, '['); p != NULL; p = strchr(p + 1, '[')) {
		if (g_ascii_strncasecmp(p + 1, prefix, plen) != 0 || p[1 + plen] != '-')
			continue;
		const char *digits = p + 2 + plen;
		size_t n = strspn(digits, "0123456789");
		if (n == 0 || n > 15 || digits[n] != ']')
			continue;
		int64_t id = g_ascii_strtoll(digits, NULL, 10);
		sqlite3_stmt *st = tr_store_stmt(store, "SELECT 1 FROM tickets WHERE id = ?1");
		sqlite3_bind_int64(st, 1, id);
		bool exists = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_reset(st);
		if (exists)
			return id;
	}
	return 0;
}

/* The ticket a Message-ID belongs to: our outbound actions, our stored
 * outbound copies, or earlier inbound messages. */
static int64_t ticket_of_message_id(tr_store *store, const char *id)
{
	int64_t t = lookup_id(store, "SELECT ticket_id FROM outbox WHERE message_id = ?1", id);
	if (t == 0)
		t = lookup_id(store, "SELECT ticket_id FROM messages WHERE message_id = ?1", id);
	return t;
}

/* A chat has no subject and no references: a follow-up from the same JID
 * belongs to that JID's open chat ticket while the conversation is alive
 * (its last message or operation within the window).  Newest first. */
static int64_t find_chat_thread(tr_store *store, const char *requester, int64_t since)
{
	sqlite3_stmt *st = tr_store_stmt(store,
		"SELECT t.id FROM tickets t WHERE t.requester = ?1 AND t.channel = 'xmpp' "
		"AND t.status != 'resolved' AND t.is_incident = 0 "
		"AND max(t.updated_at, coalesce((SELECT max(m.at) FROM messages m WHERE m.ticket_id = t.id), 0)) >= ?2 "
		"ORDER BY t.id DESC LIMIT 1");
	sqlite3_bind_text(st, 1, requester, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since);
	int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return id;
}

static int64_t find_thread(tr_store *store, const tr_msg *msg, bool *by_tag_r)
{
	*by_tag_r = false;
	int64_t id = subject_tag(store, msg->subject);
	if (id != 0) {
		*by_tag_r = true;
		return id;
	}
	if (msg->in_reply_to != NULL && (id = ticket_of_message_id(store, msg->in_reply_to)) != 0)
		return id;
	for (size_t i = msg->references_count; i > 0; i--) {
		if ((id = ticket_of_message_id(store, msg->references[i - 1])) != 0)
			return id;
	}
	return 0;
}

/* ---------------------------------------------------------------- writes */

static char *decision_json(const tr_msg *msg, const tr_decision *d)
{
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	tr_json_decision(b, d, msg->pool);
	json_builder_end_object(b);
	char *text = tr_json_to_line(b);
	g_object_unref(b);
	return text;
}

static char *excerpt_of(const tr_msg *msg)
{
	const char *text = *msg->text_new != '\0' ? msg->text_new : msg->text;
	const char *end = text;
	for (int i = 0; i < EXCERPT_CHARS && *end != '\0'; i++)
		end = g_utf8_next_char(end);
	return g_strndup(text, (gsize)(end - text));
}

static bool insert_message(tr_ingest *ing, int64_t ticket, const char *direction, const tr_ingest_input *in,
                           const tr_msg *msg, const tr_decision *d, int64_t *row_r, GError **error)
{
	tr_store *store = ing->store;
	sqlite3_stmt *st = tr_store_stmt(store,
		"INSERT INTO messages(ticket_id, direction, channel, message_id, content_hash, sender, subject, "
		"size, at, excerpt, decision, sender_name, refs) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
	char *excerpt = excerpt_of(msg);
	char *decision = d != NULL ? decision_json(msg, d) : NULL;
	sqlite3_bind_int64(st, 1, ticket);
	sqlite3_bind_text(st, 2, direction, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, tr_channel_name(msg->channel), -1, SQLITE_STATIC);
	if (msg->message_id != NULL)
		sqlite3_bind_text(st, 4, msg->message_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, msg->content_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, msg->from.address, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, msg->subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, (int64_t)msg->size);
	sqlite3_bind_int64(st, 9, in->now);
	sqlite3_bind_text(st, 10, excerpt, -1, SQLITE_STATIC);
	if (decision != NULL)
		sqlite3_bind_text(st, 11, decision, -1, SQLITE_STATIC);
	if (msg->from.name != NULL)
		sqlite3_bind_text(st, 12, msg->from.name, -1, SQLITE_STATIC);
	char *refs = NULL;
	if (msg->references_count > 0) {
		GString *r = g_string_new(NULL);
		for (size_t i = 0; i < msg->references_count; i++)
			g_string_append_printf(r, "%s%s", i ? " " : "", msg->references[i]);
		refs = g_string_free(r, FALSE);
		sqlite3_bind_text(st, 13, refs, -1, SQLITE_STATIC);
	}
	bool ok = tr_store_exec_stmt(store, st, "store message", error);
	g_free(refs);
	g_free(excerpt);
	g_free(decision);
	if (!ok)
		return false;
	*row_r = sqlite3_last_insert_rowid(tr_store_db(store));
	if (in->data != NULL && tr_store_get_settings(store)->limits.raw_bytes > 0) {
		size_t keep = MIN(in->len, (size_t)tr_store_get_settings(store)->limits.raw_bytes);
		sqlite3_stmt *raw = tr_store_stmt(store, "INSERT INTO raw_messages(message_id, data) VALUES (?1, ?2)");
		sqlite3_bind_int64(raw, 1, *row_r);
		sqlite3_bind_blob(raw, 2, in->data, (int)keep, SQLITE_STATIC);
		ok = tr_store_exec_stmt(store, raw, "store original", error);
	}
	return ok;
}

static char *trigger_list(uint32_t triggers)
{
	GString *out = g_string_new(NULL);
	for (int t = 0; t < TR_TRIGGER_COUNT; t++) {
		if (triggers & (1u << t))
			g_string_append_printf(out, "%s%s", out->len ? "," : "", tr_trigger_name((tr_trigger)t));
	}
	return g_string_free(out, FALSE);
}

static bool insert_ticket(tr_ingest *ing, const tr_msg *msg, const char *requester, const tr_decision *d,
                          const tr_similar *sketch, int64_t now, const char *reference, bool incident,
                          int64_t *id_r, GError **error)
{
	tr_store *store = ing->store;
	sqlite3_stmt *st = tr_store_stmt(store,
		"INSERT INTO tickets(status, channel, requester, requester_domain, account, subject, language, "
		"category, priority, urgency, impact, tier, team, assignee, customer_tier, triggers, sentiment, "
		"is_incident, reference, created_at, updated_at, calendar, fr_target, fr_business, fr_due, "
		"res_target, res_business, res_due, clock_since, signature) "
		"VALUES ('open', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
		"?19, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?19, ?27)");
	char *triggers = trigger_list(d->triggers);
	uint8_t packed[TR_SIMILAR_BYTES];
	int c = 1;
	sqlite3_bind_text(st, c++, tr_channel_name(msg->channel), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, c++, requester, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, c++, domain_of(requester), -1, SQLITE_STATIC);
	if (d->customer->account != NULL)
		sqlite3_bind_text(st, c, d->customer->account, -1, SQLITE_STATIC);
	c++;
	sqlite3_bind_text(st, c++, msg->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, c++, d->language, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, c++, d->category, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, c++, d->priority);
	sqlite3_bind_text(st, c++, tr_level_name(d->urgency), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, c++, tr_level_name(d->impact), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, c++, d->tier, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, c++, d->team, -1, SQLITE_STATIC);
	if (d->assignee != NULL)
		sqlite3_bind_text(st, c, d->assignee, -1, SQLITE_STATIC);
	c++;
	sqlite3_bind_text(st, c++, tr_customer_tier_name(d->customer->tier), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, c++, triggers, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, c++, d->sentiment.compound);
	sqlite3_bind_int(st, c++, incident ? 1 : 0);
	if (reference != NULL && *reference != '\0')
		sqlite3_bind_text(st, c, reference, -1, SQLITE_STATIC);
	c++;
	sqlite3_bind_int64(st, c++, now);
	if (d->sla.calendar != NULL)
		sqlite3_bind_text(st, c, d->sla.calendar, -1, SQLITE_STATIC);
	c++;
	sqlite3_bind_int64(st, c++, d->sla.first_response_minutes * 60);
	sqlite3_bind_int(st, c++, d->sla.first_response_business);
	sqlite3_bind_int64(st, c++, d->sla.first_response_due);
	sqlite3_bind_int64(st, c++, d->sla.resolution_minutes * 60);
	sqlite3_bind_int(st, c++, d->sla.resolution_business);
	sqlite3_bind_int64(st, c++, d->sla.resolution_due);
	if (sketch != NULL && sketch->shingles > 0) {
		tr_similar_pack(sketch, packed);
		sqlite3_bind_blob(st, c, packed, sizeof(packed), SQLITE_STATIC);
	}
	bool ok = tr_store_exec_stmt(store, st, "create ticket", error);
	g_free(triggers);
	if (ok)
		*id_r = sqlite3_last_insert_rowid(tr_store_db(store));
	return ok;
}

static char *payload(const char *ticket, int64_t message_row, const tr_decision *d)
{
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "ticket");
	json_builder_add_string_value(b, ticket);
	json_builder_set_member_name(b, "message");
	json_builder_add_int_value(b, message_row);
	if (d != NULL) {
		json_builder_set_member_name(b, "language");
		json_builder_add_string_value(b, d->language);
		json_builder_set_member_name(b, "reasons");
		json_builder_begin_array(b);
		for (size_t i = 0; i < d->n_escalate_reasons; i++)
			json_builder_add_string_value(b, d->escalate_reasons[i]);
		json_builder_end_array(b);
	}
	json_builder_end_object(b);
	char *text = tr_json_to_line(b);
	g_object_unref(b);
	return text;
}

static int count_since(tr_store *store, const char *sql, const char *value, int64_t since)
{
	sqlite3_stmt *st = tr_store_stmt(store, sql);
	sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since);
	int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_reset(st);
	return n;
}

/* Queue the acknowledgment unless a rule against loops or floods says no. */
static bool queue_ack(tr_ingest *ing, const tr_msg *msg, const tr_decision *d, int64_t ticket,
                      const char *public_id, int64_t message_row, int64_t now, tr_ingest_result *res,
                      GError **error)
{
	tr_store *store = ing->store;
	const tr_store_limits *lim = &tr_store_get_settings(store)->limits;
	if (!d->ack) {
		res->no_ack = "the decision says no acknowledgment";
		return true;
	}
	bool chat = msg->channel == TR_CHANNEL_XMPP;
	const char *to = !chat && msg->reply_to.count > 0 && strchr(msg->reply_to.items[0].address, '@') != NULL
	                 ? msg->reply_to.items[0].address : msg->from.address;
	if (tr_policy_is_our_address(tr_engine_policy(ing->engine), to)) {
		res->no_ack = "reply address is one of ours";
		return true;
	}
	if (count_since(store, "SELECT count(*) FROM suppressions WHERE address = ?1 AND until > ?2", to, now) > 0) {
		res->no_ack = "address bounced recently";
	} else if (tr_store_get_settings(store)->ack_require_auth && !chat &&
	           g_strcmp0(msg->auth.spf, "pass") != 0 && g_strcmp0(msg->auth.dkim, "pass") != 0) {
		res->no_ack = "neither SPF nor DKIM passed (ack require_auth)";
	} else if (lim->ack_per_sender_hour >= 0 &&
	           count_since(store, "SELECT count(*) FROM ack_log WHERE address = ?1 AND at > ?2", to, now - 3600) >=
	               lim->ack_per_sender_hour) {
		res->no_ack = "per-sender hourly acknowledgment limit";
	} else if (count_since(store, "SELECT count(*) FROM ack_log WHERE address = ?1 AND at > ?2", to, now - 86400) >=
	           lim->ack_per_sender_day) {
		res->no_ack = "per-sender daily acknowledgment limit";
	}
	if (res->no_ack != NULL)
		return tr_ticket_event(store, ticket, now, "ack_suppressed", "triage", res->no_ack, error);
	char *key = g_strdup_printf("ack:%" G_GINT64_FORMAT, ticket);
	char *body = payload(public_id, message_row, d);
	tr_outbox_action a = {
		.action_key = key, .ticket_id = ticket, .kind = "ack", .channel = chat ? "xmpp" : "smtp",
		.recipient = to, .template_name = "ack", .payload = body, .message_domain = ing->message_domain,
	};
	bool inserted = false;
	bool ok = tr_outbox_add(store, &a, now, &inserted, error);
	if (ok && inserted) {
		sqlite3_stmt *st = tr_store_stmt(store, "INSERT INTO ack_log(address, at, ticket_id) VALUES (?1, ?2, ?3)");
		sqlite3_bind_text(st, 1, to, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_int64(st, 3, ticket);
		ok = tr_store_exec_stmt(store, st, "count acknowledgment", error) &&
		     tr_ticket_event(store, ticket, now, "ack_queued", "triage", to, error);
		res->ack_queued = ok;
	}
	g_free(key);
	g_free(body);
	return ok;
}

static bool add_action(tr_ingest *ing, int64_t ticket, const char *key, const char *kind, const char *channel,
                       const char *recipient, const char *template_name, const char *body, int64_t now,
                       GError **error)
{
	tr_outbox_action a = {
		.action_key = key, .ticket_id = ticket, .kind = kind, .channel = channel, .recipient = recipient,
		.template_name = template_name, .payload = body, .message_domain = ing->message_domain,
	};
	return tr_outbox_add(ing->store, &a, now, NULL, error);
}

/* Escalation: the team mailbox, the on-call person, the team room. */
static bool queue_escalation(tr_ingest *ing, int64_t ticket, const char *public_id, int64_t message_row,
                             const tr_decision *d, const char *kind, int64_t now, GError **error)
{
	const tr_policy *policy = tr_engine_policy(ing->engine);
	const tr_team_info *team = tr_policy_team(policy, d->team);
	char *body = payload(public_id, message_row, d);
	bool ok = true;
	char *key;
	if (team != NULL && team->mailbox != NULL) {
		key = g_strdup_printf("%s:%" G_GINT64_FORMAT ":mail", kind, ticket);
		ok = add_action(ing, ticket, key, "forward", "smtp", team->mailbox,
		                strcmp(kind, "incident") == 0 ? "incident" : "escalation", body, now, error);
		g_free(key);
	}
	const tr_person_info *oncall = tr_policy_person(policy, d->oncall_primary);
	if (ok && oncall != NULL && oncall->email != NULL &&
	    (team == NULL || g_strcmp0(team->mailbox, oncall->email) != 0)) {
		key = g_strdup_printf("%s:%" G_GINT64_FORMAT ":page:%s", kind, ticket, oncall->name);
		ok = add_action(ing, ticket, key, "notify", "smtp", oncall->email, "escalation_page", body, now, error);
		g_free(key);
	}
	if (ok && ing->options.rooms && team != NULL && team->room != NULL) {
		key = g_strdup_printf("%s:%" G_GINT64_FORMAT ":room", kind, ticket);
		ok = add_action(ing, ticket, key, "room_post", "xmpp", team->room,
		                strcmp(kind, "incident") == 0 ? "incident" : "escalation", body, now, error);
		g_free(key);
	}
	g_free(body);
	if (!ok)
		return false;
	GString *why = g_string_new(NULL);
	for (size_t i = 0; i < d->n_escalate_reasons; i++)
		g_string_append_printf(why, "%s%s", i ? ", " : "", d->escalate_reasons[i]);
	sqlite3_stmt *st = tr_store_stmt(ing->store, "UPDATE tickets SET escalated = 1, escalated_at = ?2 "
	                                             "WHERE id = ?1 AND escalated = 0");
	sqlite3_bind_int64(st, 1, ticket);
	sqlite3_bind_int64(st, 2, now);
	ok = tr_store_exec_stmt(ing->store, st, "mark escalated", error) &&
	     tr_ticket_event(ing->store, ticket, now, "escalated", "triage", why->str, error);
	g_string_free(why, TRUE);
	return ok;
}

/* ---------------------------------------------------------------- history */

typedef struct {
	int64_t id, parent_id;
	char *requester;
	bool escalated, open;
} similar_ticket;

/* Recent tickets whose sketch is close to this one: candidates that share
 * a similarity band, found through the index, then compared. */
static GArray *similar_recent(tr_store *store, const tr_similar *sketch, int64_t now)
{
	const tr_store_limits *lim = &tr_store_get_settings(store)->limits;
	GArray *out = g_array_new(FALSE, TRUE, sizeof(similar_ticket));
	int64_t bands[TR_SIMILAR_BANDS];
	if (tr_similar_bands(sketch, bands) == 0)
		return out;
	sqlite3_stmt *st = tr_store_stmt(store,
		"SELECT DISTINCT t.id, t.parent_id, t.requester, t.escalated, t.status != 'resolved', t.signature "
		"FROM ticket_bands b JOIN tickets t ON t.id = b.ticket_id "
		"WHERE b.band IN (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) "
		"AND b.created_at >= ?17 AND t.is_incident = 0 ORDER BY t.id DESC LIMIT ?18");
	for (int i = 0; i < TR_SIMILAR_BANDS; i++)
		sqlite3_bind_int64(st, i + 1, bands[i]);
	sqlite3_bind_int64(st, 17, now - lim->incident_window);
	sqlite3_bind_int64(st, 18, lim->incident_scan);
	double threshold = (double)lim->incident_similarity / 100.0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		tr_similar other;
		if (!tr_similar_unpack(sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st, 5), &other))
			continue;
		if (tr_similar_compare(sketch, &other) < threshold)
			continue;
		similar_ticket s = {
			sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), tr_store_column_dup(st, 2),
			sqlite3_column_int(st, 3) != 0, sqlite3_column_int(st, 4) != 0,
		};
		g_array_append_val(out, s);
	}
	sqlite3_reset(st);
	return out;
}

/* Remember the bands of a new ticket; now and then forget old ones. */
static bool add_bands(tr_store *store, int64_t ticket, const tr_similar *sketch, int64_t now, GError **error)
{
	int64_t bands[TR_SIMILAR_BANDS];
	unsigned n = tr_similar_bands(sketch, bands);
	for (unsigned i = 0; i < n; i++) {
		sqlite3_stmt *st = tr_store_stmt(store, "INSERT INTO ticket_bands(band, ticket_id, created_at) "
		                                        "VALUES (?1, ?2, ?3)");
		sqlite3_bind_int64(st, 1, bands[i]);
		sqlite3_bind_int64(st, 2, ticket);
		sqlite3_bind_int64(st, 3, now);
		if (!tr_store_exec_stmt(store, st, "similarity bands", error))
			return false;
	}
	if (ticket % 512 == 0) {
		sqlite3_stmt *st = tr_store_stmt(store, "DELETE FROM ticket_bands WHERE created_at < ?1");
		sqlite3_bind_int64(st, 1, now - tr_store_get_settings(store)->limits.incident_window - 86400);
		return tr_store_exec_stmt(store, st, "forget old bands", error);
	}
	return true;
}

static void similar_free(GArray *list)
{
	for (guint i = 0; i < list->len; i++)
		g_free(g_array_index(list, similar_ticket, i).requester);
	g_array_free(list, TRUE);
}

/* Different requesters among the similar tickets, counting the new one. */
static unsigned distinct_requesters(GArray *similar, const char *requester)
{
	GHashTable *set = g_hash_table_new(g_str_hash, g_str_equal);
	g_hash_table_add(set, (gpointer)requester);
	for (guint i = 0; i < similar->len; i++)
		g_hash_table_add(set, g_array_index(similar, similar_ticket, i).requester);
	unsigned n = g_hash_table_size(set);
	g_hash_table_destroy(set);
	return n;
}

static bool link_incident(tr_ingest *ing, int64_t child, int64_t parent, int64_t now, GError **error)
{
	char buf[40];
	sqlite3_stmt *st = tr_store_stmt(ing->store, "UPDATE tickets SET parent_id = ?2 WHERE id = ?1 "
	                                             "AND parent_id IS NULL");
	sqlite3_bind_int64(st, 1, child);
	sqlite3_bind_int64(st, 2, parent);
	if (!tr_store_exec_stmt(ing->store, st, "link to incident", error))
		return false;
	if (sqlite3_changes(tr_store_db(ing->store)) == 0)
		return true;
	return tr_ticket_event(ing->store, child, now, "incident_linked", "triage",
	                       tr_store_format_ticket(ing->store, parent, buf, sizeof(buf)), error);
}

/* ---------------------------------------------------------------- the flows */

/* A chat carries no Date and no Message-ID.  Its date is its arrival, so
 * the same words on another day are another message; its id, when the
 * network gave one, becomes a Message-ID of our own making (hashed: the id
 * attribute is whatever the sender's client chose, and only unique per
 * sender, so the sender and the text are part of the key). */
static void chat_identity(tr_msg *msg, const tr_ingest_input *in)
{
	msg->date = in->now;
	tr_msg_content_hash(msg);
	if (in->chat_id == NULL || *in->chat_id == '\0')
		return;
	GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
	const char *parts[] = { msg->from.address, in->chat_id, msg->text };
	for (size_t i = 0; i < G_N_ELEMENTS(parts); i++)
		g_checksum_update(sum, (const guchar *)parts[i], (gssize)strlen(parts[i]) + 1);
	const char *at = strrchr(msg->from.address, '@');
	msg->message_id = tr_pool_printf(msg->pool, "xmpp.%.32s@%s", g_checksum_get_string(sum),
	                                 at != NULL && at[1] != '\0' ? at + 1 : "xmpp.invalid");
	g_checksum_free(sum);
}

static tr_msg *normalize(tr_ingest *ing, const tr_ingest_input *in, GError **error)
{
	const tr_norm *norm = tr_engine_norm(ing->engine);
	tr_msg *msg;
	if (in->data != NULL) {
		msg = tr_norm_parse(norm, in->channel, in->data, in->len, error);
	} else if (in->chat_text != NULL && in->chat_len > 0) {
		msg = tr_norm_text(norm, in->channel, in->chat_from, in->chat_text, in->chat_len);
		chat_identity(msg, in);
	} else {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "empty message");
		return NULL;
	}
	if (msg == NULL)
		return NULL;
	if (in->envelope_from != NULL)
		msg->envelope_from = tr_pool_strdup(msg->pool, in->envelope_from);
	if (in->n_envelope_to > 0) {
		msg->envelope_to = tr_pool_alloc_array(msg->pool, in->n_envelope_to, sizeof(char *));
		for (size_t i = 0; i < in->n_envelope_to; i++)
			msg->envelope_to[i] = tr_pool_strdup(msg->pool, in->envelope_to[i]);
		msg->envelope_to_count = in->n_envelope_to;
	}
	return msg;
}

static void fill_result(tr_ingest *ing, tr_ingest_result *res, int64_t ticket)
{
	res->ticket_id = ticket;
	tr_store_format_ticket(ing->store, ticket, res->ticket, sizeof(res->ticket));
}

static int member_load(void *ud, const char *person)
{
	return tr_ticket_open_count(ud, person);
}

static bool agent_reply(tr_ingest *ing, const tr_ingest_input *in, const tr_msg *msg, int64_t ticket,
                        tr_ingest_result *res, GError **error)
{
	int64_t row;
	tr_ticket t;
	if (!tr_ticket_get(ing->store, ticket, &t, error))
		return false;
	res->kind = TR_INGEST_AGENT;
	res->priority = t.priority;
	g_strlcpy(res->category, t.category, sizeof(res->category));
	g_strlcpy(res->team, t.team, sizeof(res->team));
	tr_ticket_clear(&t);
	fill_result(ing, res, ticket);
	return insert_message(ing, ticket, "out", in, msg, NULL, &row, error) &&
	       tr_ticket_ack(ing->store, tr_engine_policy(ing->engine), ticket, msg->from.address, in->now, error);
}

/* An auto-reply or a bounce on a ticket: kept with the ticket, but it is
 * not the customer speaking — no resume, no reopen, no escalation. */
static bool automatic_reply(tr_ingest *ing, const tr_ingest_input *in, const tr_msg *msg, int64_t ticket,
                            tr_ingest_result *res, GError **error)
{
	int64_t row;
	res->kind = TR_INGEST_REPLY;
	fill_result(ing, res, ticket);
	const char *what = msg->auto_flags & (TR_AUTO_BOUNCE | TR_AUTO_REPORT) ? "bounce" : "auto_reply";
	return insert_message(ing, ticket, "in", in, msg, NULL, &row, error) &&
	       tr_ticket_event(ing->store, ticket, in->now, what, msg->from.address, msg->subject, error);
}

static bool customer_reply(tr_ingest *ing, const tr_ingest_input *in, const tr_msg *msg, const tr_signals *sig,
                           int64_t ticket, tr_ingest_result *res, GError **error)
{
	tr_store *store = ing->store;
	const tr_policy *policy = tr_engine_policy(ing->engine);
	if (tr_msg_is_auto(msg))
		return automatic_reply(ing, in, msg, ticket, res, error);
	tr_ticket t;
	if (!tr_ticket_get(store, ticket, &t, error))
		return false;
	tr_decide_input di = { .now = in->now, .member_load = member_load, .member_load_data = store };
	tr_decision d;
	tr_engine_decide_signals(ing->engine, msg, sig, &di, &d);
	int64_t row;
	bool ok = insert_message(ing, ticket, "in", in, msg, &d, &row, error) &&
	          tr_ticket_event(store, ticket, in->now, "customer_reply", msg->from.address, NULL, error);
	res->kind = TR_INGEST_REPLY;
	fill_result(ing, res, ticket);
	if (ok && (strcmp(t.status, "waiting") == 0 || strcmp(t.status, "paused") == 0)) {
		ok = tr_ticket_resume(store, policy, ticket, msg->from.address, in->now, error);
		res->resumed = ok;
	} else if (ok && strcmp(t.status, "resolved") == 0) {
		sqlite3_stmt *st = tr_store_stmt(store, "UPDATE tickets SET status = 'open', resolved_at = NULL, "
		                                        "reopened = reopened + 1, res_due = NULL WHERE id = ?1");
		sqlite3_bind_int64(st, 1, ticket);
		ok = tr_store_exec_stmt(store, st, "reopen", error) &&
		     tr_ticket_event(store, ticket, in->now, "reopened", msg->from.address, NULL, error) &&
		     tr_sla_start(store, policy, ticket, in->now, error);
		res->reopened = ok;
	}
	/* A reply can make things more urgent, never less. */
	if (ok && d.priority < t.priority) {
		char *detail = g_strdup_printf("%s -> %s", tr_priority_name(t.priority), tr_priority_name(d.priority));
		sqlite3_stmt *st = tr_store_stmt(store, "UPDATE tickets SET priority = ?2 WHERE id = ?1");
		sqlite3_bind_int64(st, 1, ticket);
		sqlite3_bind_int(st, 2, d.priority);
		ok = tr_store_exec_stmt(store, st, "raise priority", error) &&
		     tr_ticket_event(store, ticket, in->now, "priority_raised", "triage", detail, error);
		g_free(detail);
	}
	if (ok && d.escalate && !t.escalated) {
		d.team = t.team;
		ok = queue_escalation(ing, ticket, t.public_id, row, &d, "escalate", in->now, error);
		res->escalated = ok;
	}
	if (ok)
		ok = tr_sla_reschedule(store, policy, ticket, in->now, error);
	res->priority = MIN(d.priority, t.priority);
	g_strlcpy(res->category, t.category, sizeof(res->category));
	g_strlcpy(res->team, t.team, sizeof(res->team));
	tr_ticket_clear(&t);
	return ok;
}

/*
 * A sender over new_per_sender_hour opens no more tickets: the message joins
 * its newest ticket, stored and visible, with no acknowledgment, escalation
 * or SLA change — one address cannot flood the queue, the team mailboxes or
 * the rooms.  Returns the ticket to join, 0 when under the limit.
 */
static int64_t flood_ticket(tr_ingest *ing, const tr_msg *msg, int64_t now)
{
	tr_store *store = ing->store;
	const char *requester = msg->from.address;
	int64_t limit = tr_store_get_settings(store)->limits.new_per_sender_hour;
	if (*requester == '\0' ||
	    count_since(store, "SELECT count(*) FROM tickets WHERE requester = ?1 AND created_at > ?2 "
	                       "AND is_incident = 0", requester, now - 3600) < limit)
		return 0;
	return lookup_id(store, "SELECT id FROM tickets WHERE requester = ?1 AND is_incident = 0 "
	                        "ORDER BY id DESC LIMIT 1", requester);
}

static bool flood_join(tr_ingest *ing, const tr_ingest_input *in, const tr_msg *msg, int64_t ticket,
                       tr_ingest_result *res, GError **error)
{
	int64_t row;
	char *detail = g_strdup_printf("over %" G_GINT64_FORMAT " new tickets in an hour",
	                               tr_store_get_settings(ing->store)->limits.new_per_sender_hour);
	tr_ticket t;
	if (!tr_ticket_get(ing->store, ticket, &t, error)) {
		g_free(detail);
		return false;
	}
	res->kind = TR_INGEST_REPLY;
	res->flood = true;
	res->no_ack = "sender over its hourly new-ticket limit";
	res->priority = t.priority;
	g_strlcpy(res->category, t.category, sizeof(res->category));
	g_strlcpy(res->team, t.team, sizeof(res->team));
	tr_ticket_clear(&t);
	fill_result(ing, res, ticket);
	bool ok = insert_message(ing, ticket, "in", in, msg, NULL, &row, error) &&
	          tr_ticket_event(ing->store, ticket, in->now, "flood_joined", msg->from.address, detail, error);
	g_free(detail);
	return ok;
}

/* An open, escalated ticket of this requester within the repeat window. */
static int64_t escalated_sibling(tr_ingest *ing, const char *requester, int64_t now)
{
	tr_store *store = ing->store;
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT id FROM tickets WHERE requester = ?1 AND created_at > ?2 "
	                                        "AND is_incident = 0 AND escalated = 1 AND status != 'resolved' "
	                                        "ORDER BY id DESC LIMIT 1");
	sqlite3_bind_text(st, 1, requester, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now - tr_store_get_settings(store)->limits.repeat_window);
	int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return id;
}

static bool new_ticket(tr_ingest *ing, const tr_ingest_input *in, const tr_msg *msg, const tr_signals *sig,
                       const char *reference, tr_ingest_result *res, GError **error)
{
	tr_store *store = ing->store;
	const tr_store_limits *lim = &tr_store_get_settings(store)->limits;
	const tr_policy *policy = tr_engine_policy(ing->engine);
	const char *requester = msg->from.address;
	tr_decide_input di = { .now = in->now, .member_load = member_load, .member_load_data = store };
	tr_decision d;
	tr_engine_decide_signals(ing->engine, msg, sig, &di, &d);

	/* History the message cannot know: repeat contacts, mass incidents. */
	uint32_t extra = 0;
	int recent = *requester != '\0'
		? count_since(store, "SELECT count(*) FROM tickets WHERE requester = ?1 AND created_at > ?2 "
		                     "AND is_incident = 0", requester, in->now - lim->repeat_window) : 0;
	if (d.customer->account != NULL)
		recent = MAX(recent, count_since(store, "SELECT count(*) FROM tickets WHERE account = ?1 "
		                                        "AND created_at > ?2 AND is_incident = 0",
		                                 d.customer->account, in->now - lim->repeat_window));
	if (recent + 1 >= lim->repeat_threshold) {
		extra |= 1u << TR_TRIGGER_REPEAT_CONTACT;
		res->repeat_contact = true;
	}
	tr_similar sketch;
	tr_similar_of_msg(msg, &sketch);
	GArray *similar = similar_recent(store, &sketch, in->now);
	bool incident = distinct_requesters(similar, requester) >= (unsigned)lim->incident_threshold;
	if (incident)
		extra |= 1u << TR_TRIGGER_MASS_INCIDENT;
	bool escalate_alone = d.escalate;
	if (extra != 0) {
		di.extra_triggers = extra;
		tr_engine_decide_signals(ing->engine, msg, sig, &di, &d);
	}

	int64_t ticket, row;
	bool ok = insert_ticket(ing, msg, requester, &d, &sketch, in->now, reference, false, &ticket, error) &&
	          add_bands(store, ticket, &sketch, in->now, error) &&
	          insert_message(ing, ticket, "in", in, msg, &d, &row, error);
	fill_result(ing, res, ticket);
	res->kind = TR_INGEST_NEW;
	res->priority = d.priority;
	g_strlcpy(res->category, d.category, sizeof(res->category));
	g_strlcpy(res->team, d.team, sizeof(res->team));
	if (ok) {
		char *detail = g_strdup_printf("%s %s -> %s/%s", tr_priority_name(d.priority), d.category, d.team, d.tier);
		ok = tr_ticket_event(store, ticket, in->now, "created", requester, in->source, error) &&
		     tr_ticket_event(store, ticket, in->now, "classified", "triage", detail, error);
		g_free(detail);
		if (ok && reference != NULL)
			ok = tr_ticket_event(store, ticket, in->now, "reference_refused", "triage", reference, error);
		if (ok && d.assignee != NULL)
			ok = tr_ticket_event(store, ticket, in->now, "assigned", "triage", d.assignee, error);
	}
	if (ok)
		ok = queue_ack(ing, msg, &d, ticket, res->ticket, row, in->now, res, error);

	/* One escalation per incident, not one per customer. */
	const similar_ticket *escalated_peer = NULL;
	int64_t parent = 0;
	for (guint i = 0; i < similar->len; i++) {
		const similar_ticket *s = &g_array_index(similar, similar_ticket, i);
		if (s->open && s->escalated && escalated_peer == NULL)
			escalated_peer = s;
		if (s->parent_id != 0 && parent == 0)
			parent = s->parent_id;
	}
	/* A repeat contact is escalated once, not once per further ticket. */
	int64_t sibling = 0;
	if (d.escalate && !escalate_alone && !incident && *requester != '\0')
		sibling = escalated_sibling(ing, requester, in->now);
	if (ok && d.escalate && sibling != 0) {
		char buf[40];
		ok = tr_ticket_event(store, ticket, in->now, "escalation_suppressed", "triage",
		                     tr_store_format_ticket(store, sibling, buf, sizeof(buf)), error);
	} else if (ok && d.escalate) {
		if (escalated_peer != NULL || parent != 0) {
			char buf[40];
			ok = tr_ticket_event(store, ticket, in->now, "escalation_suppressed", "triage",
			                     tr_store_format_ticket(store, parent != 0 ? parent : escalated_peer->id,
			                                            buf, sizeof(buf)), error);
		} else {
			ok = queue_escalation(ing, ticket, res->ticket, row, &d, "escalate", in->now, error);
			res->escalated = ok;
		}
	}
	if (ok && incident) {
		if (parent == 0) {
			/* The incident: a parent ticket for all of them, escalated once. */
			tr_msg *proto = tr_msg_new(msg->channel);
			proto->subject = tr_pool_printf(proto->pool, "Incident: %s", msg->subject);
			tr_decision pd = d;
			pd.priority = MIN(d.priority, 2);
			ok = insert_ticket(ing, proto, requester, &pd, NULL, in->now, NULL, true, &parent, error);
			if (ok) {
				char buf[40];
				tr_store_format_ticket(store, parent, buf, sizeof(buf));
				char *detail = g_strdup_printf("%u customers with similar tickets in %" G_GINT64_FORMAT " min",
				                               distinct_requesters(similar, requester),
				                               (gint64)lim->incident_window / 60);
				ok = tr_ticket_event(store, parent, in->now, "created", "triage", detail, error) &&
				     queue_escalation(ing, parent, buf, row, &pd, "incident", in->now, error);
				g_free(detail);
				res->incident_created = ok;
			}
			tr_msg_free(&proto);
			for (guint i = 0; ok && i < similar->len; i++)
				ok = link_incident(ing, g_array_index(similar, similar_ticket, i).id, parent, in->now, error);
		}
		if (ok)
			ok = link_incident(ing, ticket, parent, in->now, error);
		res->incident_id = parent;
	} else if (ok && parent != 0) {
		ok = link_incident(ing, ticket, parent, in->now, error);
		res->incident_id = parent;
	}
	similar_free(similar);
	if (ok)
		ok = tr_sla_reschedule(store, policy, ticket, in->now, error);
	return ok;
}

static bool ingest_one(tr_ingest *ing, const tr_ingest_input *in, tr_ingest_result *res, GError **error)
{
	memset(res, 0, sizeof(*res));
	tr_msg *msg = normalize(ing, in, error);
	if (msg == NULL)
		return false;
	tr_store *store = ing->store;
	bool ok = true;
	int64_t existing = find_duplicate(store, msg);
	if (existing != 0) {
		res->kind = TR_INGEST_DUPLICATE;
		fill_result(ing, res, existing);
		tr_msg_free(&msg);
		return true;
	}
	/* A hard bounce: no more acknowledgments to that address for a while. */
	for (size_t i = 0; i < msg->bounced_count; i++) {
		if (!tr_ingest_suppress(ing, msg->bounced[i], "hard bounce", in->now, error)) {
			tr_msg_free(&msg);
			return false;
		}
	}
	tr_signals sig;
	tr_engine_signals(ing->engine, msg, &sig);
	bool by_tag = false;
	int64_t thread = find_thread(store, msg, &by_tag);
	if (thread == 0 && msg->channel == TR_CHANNEL_XMPP && in->data == NULL && in->chat_thread_window > 0 &&
	    *msg->from.address != '\0')
		thread = find_chat_thread(store, msg->from.address, in->now - in->chat_thread_window);
	const char *reference = NULL;
	char refbuf[40];
	if (thread != 0) {
		tr_ticket t;
		if (!tr_ticket_get(store, thread, &t, error)) {
			tr_msg_free(&msg);
			return false;
		}
		const char *sender = msg->from.address;
		const char *domain = domain_of(sender);
		bool agent = is_agent(ing, sender);
		bool allowed = agent || strcmp(sender, t.requester) == 0 ||
		               (*domain != '\0' && strcmp(domain, t.requester_domain) == 0 && !is_public_domain(domain));
		bool reopenable = strcmp(t.status, "resolved") != 0 ||
		                  in->now - t.resolved_at <= tr_store_get_settings(store)->limits.reopen_window;
		tr_ticket_clear(&t);
		if (!allowed) {
			/* Someone else's ticket: no hijacking, a new ticket remembers it. */
			reference = tr_store_format_ticket(store, thread, refbuf, sizeof(refbuf));
			g_strlcpy(res->reference, reference, sizeof(res->reference));
			thread = 0;
		} else if (agent) {
			ok = agent_reply(ing, in, msg, thread, res, error);
			tr_msg_free(&msg);
			return ok;
		} else if (!reopenable) {
			/* Resolved too long ago: a new ticket that points at the old one. */
			reference = tr_store_format_ticket(store, thread, refbuf, sizeof(refbuf));
			g_strlcpy(res->reference, reference, sizeof(res->reference));
			thread = 0;
		}
	}
	int64_t flood = thread == 0 ? flood_ticket(ing, msg, in->now) : 0;
	if (thread != 0)
		ok = customer_reply(ing, in, msg, &sig, thread, res, error);
	else if (flood != 0)
		ok = flood_join(ing, in, msg, flood, res, error);
	else
		ok = new_ticket(ing, in, msg, &sig, reference, res, error);
	tr_msg_free(&msg);
	return ok;
}

bool tr_ingest_message(tr_ingest *ing, const tr_ingest_input *in, tr_ingest_result *res, GError **error)
{
	if (!tr_store_begin(ing->store, error))
		return false;
	if (!ingest_one(ing, in, res, error)) {
		tr_store_rollback(ing->store);
		return false;
	}
	return tr_store_commit(ing->store, error);
}

bool tr_ingest_batch_begin(tr_ingest *ing, GError **error)
{
	ing->batch = tr_store_begin(ing->store, error);
	return ing->batch;
}

bool tr_ingest_batch_add(tr_ingest *ing, const tr_ingest_input *in, tr_ingest_result *res, GError **error)
{
	g_return_val_if_fail(ing->batch, false);
	if (!tr_store_savepoint(ing->store, error))
		return false;
	if (!ingest_one(ing, in, res, error)) {
		tr_store_rollback_savepoint(ing->store);
		return false;
	}
	tr_store_release(ing->store);
	return true;
}

bool tr_ingest_batch_commit(tr_ingest *ing, GError **error)
{
	ing->batch = false;
	return tr_store_commit(ing->store, error);
}

void tr_ingest_batch_abort(tr_ingest *ing)
{
	ing->batch = false;
	tr_store_rollback(ing->store);
}

bool tr_ingest_suppress(tr_ingest *ing, const char *address, const char *reason, int64_t now, GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(ing->store, "INSERT INTO suppressions(address, until, reason) "
	                                             "VALUES (?1, ?2, ?3) ON CONFLICT(address) DO UPDATE "
	                                             "SET until = excluded.until, reason = excluded.reason");
	sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now + tr_store_get_settings(ing->store)->limits.bounce_suppress);
	sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	return tr_store_exec_stmt(ing->store, st, "suppress address", error);
}

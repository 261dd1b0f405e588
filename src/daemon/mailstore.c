/* mailstore.c — the ticket store behind the mail channels; see mailstore.h */
#include "daemon/mailstore.h"

#include <string.h>

#include "core/log.h"
#include "store/ticket.h"

struct tr_mailstore {
	tr_store_settings settings;
	tr_engine_slot *engines;
	char *message_domain;
	tr_outbox_options outbox;
	GMutex lock;
	GPtrArray *idle;      /* tr_store *, not in use */
	unsigned open;        /* connections open (idle or in use) */
	void (*on_commit)(void *);
	void *on_commit_data;
};

tr_mailstore *tr_mailstore_new(const tr_store_settings *settings, tr_engine_slot *engines,
                               const tr_outbox_options *outbox)
{
	tr_mailstore *ms = g_new0(tr_mailstore, 1);
	ms->settings = *settings;
	ms->settings.path = g_strdup(settings->path);
	ms->settings.ticket_prefix = g_strdup(settings->ticket_prefix);
	ms->settings.agent_domains = g_strdupv(settings->agent_domains);
	ms->engines = engines;
	ms->message_domain = g_strdup(outbox != NULL ? outbox->message_domain : NULL);
	ms->outbox.message_domain = ms->message_domain;
	ms->outbox.rooms = outbox != NULL && outbox->rooms;
	g_mutex_init(&ms->lock);
	ms->idle = g_ptr_array_new();
	return ms;
}

void tr_mailstore_free(tr_mailstore **msp)
{
	tr_mailstore *ms = *msp;
	if (ms == NULL)
		return;
	*msp = NULL;
	for (guint i = 0; i < ms->idle->len; i++) {
		tr_store *store = g_ptr_array_index(ms->idle, i);
		tr_store_close(&store);
	}
	g_ptr_array_free(ms->idle, TRUE);
	g_mutex_clear(&ms->lock);
	tr_store_settings_clear(&ms->settings);
	g_free(ms->message_domain);
	g_free(ms);
}

void tr_mailstore_on_commit(tr_mailstore *ms, void (*fn)(void *), void *user_data)
{
	ms->on_commit = fn;
	ms->on_commit_data = user_data;
}

/* A connection for this caller alone: an idle one, else a new one. */
static tr_store *acquire(tr_mailstore *ms, GError **error)
{
	g_mutex_lock(&ms->lock);
	tr_store *store = ms->idle->len > 0 ? g_ptr_array_steal_index_fast(ms->idle, ms->idle->len - 1) : NULL;
	g_mutex_unlock(&ms->lock);
	if (store != NULL)
		return store;
	store = tr_store_open(&ms->settings, error);
	if (store != NULL) {
		g_mutex_lock(&ms->lock);
		ms->open++;
		g_mutex_unlock(&ms->lock);
	}
	return store;
}

/* Back to the pool; after an error the connection is closed instead (a
 * fresh one is cheap and leaves no half-state behind). */
static void release(tr_mailstore *ms, tr_store **storep, bool healthy)
{
	tr_store *store = *storep;
	*storep = NULL;
	if (store != NULL && healthy && !tr_store_in_transaction(store)) {
		g_mutex_lock(&ms->lock);
		g_ptr_array_add(ms->idle, store);
		g_mutex_unlock(&ms->lock);
		return;
	}
	if (store != NULL) {
		tr_store_close(&store);
		g_mutex_lock(&ms->lock);
		ms->open--;
		g_mutex_unlock(&ms->lock);
	}
}

bool tr_mailstore_probe(tr_mailstore *ms, GError **error)
{
	tr_store *store = acquire(ms, error);
	if (store == NULL)
		return false;
	release(ms, &store, true);
	return true;
}

static bool ingest_on(tr_mailstore *ms, tr_store *store, const tr_ingest_input *input, tr_ingest_result *result,
                      GError **error)
{
	tr_engine *engine = tr_engine_slot_get(ms->engines);
	tr_ingest *ingest = tr_ingest_new(store, engine, &ms->outbox);
	bool ok = tr_ingest_message(ingest, input, result, error);
	tr_ingest_free(&ingest);
	tr_engine_free(&engine);
	if (ok && result->kind != TR_INGEST_DUPLICATE && ms->on_commit != NULL)
		ms->on_commit(ms->on_commit_data);
	return ok;
}

bool tr_mailstore_ingest(void *context, const tr_ingest_input *input, tr_ingest_result *result, GError **error)
{
	tr_mailstore *ms = context;
	tr_store *store = acquire(ms, error);
	if (store == NULL)
		return false;
	bool ok = ingest_on(ms, store, input, result, error);
	release(ms, &store, ok);
	return ok;
}

/* The store decides who is an agent by [tickets] agent_domains: a sender
 * it would not take for one must not reach it as an "agent reply" (it
 * would open a ticket for the agent's own mail). */
static bool store_agent(const tr_mailstore *ms, const char *address)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;
	if (at == NULL || ms->settings.agent_domains == NULL)
		return false;
	for (char **d = ms->settings.agent_domains; *d != NULL; d++)
		if (g_ascii_strcasecmp(*d, at + 1) == 0)
			return true;
	return false;
}

bool tr_mailstore_reply(void *context, const char *ticket, const tr_ingest_input *input, bool *recorded_r,
                        GError **error)
{
	tr_mailstore *ms = context;
	*recorded_r = false;
	if (!store_agent(ms, input->envelope_from)) {
		tr_log_warning("mailstore: %s is no agent for the store ([tickets] agent_domains): reply on %s not recorded",
		               input->envelope_from != NULL ? input->envelope_from : "?", ticket);
		return true;
	}
	tr_store *store = acquire(ms, error);
	if (store == NULL)
		return false;
	bool ok = true;
	int64_t id = tr_store_parse_ticket(store, ticket);
	tr_ticket t;
	GError *lookup = NULL;
	if (id > 0 && tr_ticket_get(store, id, &t, &lookup)) {
		tr_ticket_clear(&t);
		tr_ingest_result result;
		memset(&result, 0, sizeof(result));
		ok = ingest_on(ms, store, input, &result, error);
		*recorded_r = ok && (result.kind == TR_INGEST_AGENT || result.kind == TR_INGEST_DUPLICATE);
	} else if (lookup != NULL && !g_error_matches(lookup, TR_STORE_ERROR, TR_STORE_ERROR_NOT_FOUND)) {
		g_propagate_error(error, lookup);
		lookup = NULL;
		ok = false;
	}
	g_clear_error(&lookup);
	release(ms, &store, ok);
	return ok;
}

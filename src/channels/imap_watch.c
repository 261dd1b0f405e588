/* imap_watch.c — catch-up, IDLE, ingest, mark, quarantine; see imap_watch.h */
#include "channels/imap_watch.h"

#include <string.h>

#include "core/backoff.h"
#include "core/log.h"
#include "store/ingest.h"

#define DEFAULT_BATCH 32

struct tr_imap_watch {
	tr_imap_config imap;
	tr_store_settings store_settings;
	tr_engine_slot *engines;
	tr_outbox_options outbox;
	char *message_domain;
	unsigned batch;
	void (*on_commit)(void *);
	void *user_data;

	GThread *thread;
	tr_imap *session;
	gint stopping;
	GMutex lock;           /* guards stats and the sleep condition */
	GCond wake;
	tr_imap_watch_stats stats;
};

static bool stopping(tr_imap_watch *w)
{
	return g_atomic_int_get(&w->stopping) != 0;
}

/* Sleep up to ms milliseconds (a tr_backoff delay), returning early when
 * asked to stop. */
static void nap(tr_imap_watch *w, int64_t ms)
{
	gint64 until = g_get_monotonic_time() + ms * 1000;
	g_mutex_lock(&w->lock);
	while (!stopping(w) && g_cond_wait_until(&w->wake, &w->lock, until))
		;
	g_mutex_unlock(&w->lock);
}

static void count(tr_imap_watch *w, unsigned *field, unsigned n)
{
	g_mutex_lock(&w->lock);
	*field += n;
	g_mutex_unlock(&w->lock);
}

static uint32_t checkpoint_uidvalidity(tr_store *store, const char *channel)
{
	char *value = tr_store_checkpoint_get(store, channel, "uidvalidity");
	uint32_t v = value != NULL ? (uint32_t)g_ascii_strtoull(value, NULL, 10) : 0;
	g_free(value);
	return v;
}

static void save_checkpoint(tr_store *store, const char *channel, const char *key, uint64_t value)
{
	char buf[32];
	g_snprintf(buf, sizeof(buf), "%" G_GUINT64_FORMAT, (guint64)value);
	GError *error = NULL;
	if (!tr_store_checkpoint_set(store, channel, key, buf, &error)) {
		tr_log_warning("imap %s: cannot save checkpoint %s: %s", channel, key, error->message);
		g_error_free(error);
	}
}

static void quarantine(tr_imap_watch *w, uint32_t uid, const char *why)
{
	GError *error = NULL;
	if (tr_imap_quarantine(w->session, uid, &error)) {
		tr_log_warning("imap %s: uid %u moved to %s: %s", w->imap.name, uid, w->imap.quarantine, why);
		count(w, &w->stats.quarantined, 1);
	} else {
		tr_log_error("imap %s: uid %u could not be quarantined (%s): %s", w->imap.name, uid, why,
		             error->message);
		g_error_free(error);
	}
}

typedef struct {
	uint32_t uid;
	tr_imap_message *message;
	bool committed;
} pending;

/*
 * One batch: fetch, ingest in one transaction, commit, then mark.  Returns
 * false on a network error (the caller reconnects); what was not marked
 * is found again by the next catch-up and recognised as a duplicate.
 */
static bool process_batch(tr_imap_watch *w, tr_store *store, const uint32_t *uids, unsigned n,
                          bool *store_trouble_r)
{
	pending *items = g_new0(pending, n);
	bool network_ok = true;
	unsigned fetched = 0;
	for (unsigned i = 0; i < n && !stopping(w); i++) {
		GError *error = NULL;
		items[i].uid = uids[i];
		if (tr_imap_fetch(w->session, uids[i], &items[i].message, &error)) {
			fetched++;
			continue;
		}
		tr_imap_error_class cls = tr_imap_error_class_of(error);
		if (cls == TR_IMAP_CLASS_MESSAGE) {
			if (error->code == TR_IMAP_ERROR_GONE)
				tr_log_info("imap %s: uid %u vanished before it was fetched", w->imap.name, uids[i]);
			else
				quarantine(w, uids[i], error->message);
			g_error_free(error);
			continue;
		}
		tr_log_warning("imap %s: fetch uid %u: %s", w->imap.name, uids[i], error->message);
		g_error_free(error);
		network_ok = false;
		break;
	}
	tr_engine *engine = tr_engine_slot_get(w->engines);
	tr_ingest *ing = tr_ingest_new(store, engine, &w->outbox);
	GError *error = NULL;
	bool committed = false;
	unsigned queued = 0, duplicates = 0, ingested = 0;
	if (fetched > 0 && tr_ingest_batch_begin(ing, &error)) {
		for (unsigned i = 0; i < n; i++) {
			if (items[i].message == NULL)
				continue;
			char source[160];
			g_snprintf(source, sizeof(source), "imap:%s/%s uid %u", w->imap.name, w->imap.folder, items[i].uid);
			tr_ingest_input in = {
				.channel = TR_CHANNEL_IMAP, .data = items[i].message->data, .len = items[i].message->len,
				.now = g_get_real_time() / G_USEC_PER_SEC, .source = source,
			};
			tr_ingest_result res;
			GError *one = NULL;
			if (!tr_ingest_batch_add(ing, &in, &res, &one)) {
				/* Only this message is rolled back. */
				if (one->domain == TR_STORE_ERROR) {
					tr_log_error("imap %s: uid %u: store: %s", w->imap.name, items[i].uid, one->message);
					*store_trouble_r = true;
				} else {
					quarantine(w, items[i].uid, one->message);
				}
				g_error_free(one);
				tr_imap_message_free(&items[i].message);
				continue;
			}
			items[i].committed = true;
			if (res.kind == TR_INGEST_DUPLICATE) {
				duplicates++;
				tr_log_info("ticket=%s imap %s uid %u: already stored", res.ticket, w->imap.name, items[i].uid);
			} else {
				ingested++;
				queued += res.ack_queued || res.escalated;
				tr_log_info("ticket=%s %s %s %s -> %s%s%s source=%s", res.ticket, tr_ingest_kind_name(res.kind),
				            tr_priority_name(res.priority), res.category, res.team,
				            res.ack_queued ? " ack=queued" : "", res.escalated ? " escalated" : "", source);
			}
		}
		committed = tr_ingest_batch_commit(ing, &error);
		if (!committed) {
			tr_log_error("imap %s: commit of %u messages failed: %s (they stay unmarked and come back)",
			             w->imap.name, fetched, error->message);
			g_clear_error(&error);
			*store_trouble_r = true;
		}
	} else if (fetched > 0) {
		tr_log_error("imap %s: store: %s", w->imap.name, error->message);
		g_clear_error(&error);
		*store_trouble_r = true;
	}
	tr_ingest_free(&ing);
	tr_engine_free(&engine);
	if (committed) {
		count(w, &w->stats.ingested, ingested);
		count(w, &w->stats.duplicates, duplicates);
		if (queued > 0 && w->on_commit != NULL)
			w->on_commit(w->user_data);
		/* Only now: the tickets are on disk. */
		for (unsigned i = 0; i < n && network_ok; i++) {
			if (!items[i].committed)
				continue;
			if (!tr_imap_mark(w->session, items[i].uid, &error)) {
				tr_imap_error_class cls = tr_imap_error_class_of(error);
				tr_log_warning("imap %s: mark uid %u: %s", w->imap.name, items[i].uid, error->message);
				network_ok = cls != TR_IMAP_CLASS_NETWORK;
				g_clear_error(&error);
			}
		}
	}
	for (unsigned i = 0; i < n; i++)
		tr_imap_message_free(&items[i].message);
	g_free(items);
	return network_ok;
}

static gpointer run(gpointer data)
{
	tr_imap_watch *w = data;
	char channel[160];
	g_snprintf(channel, sizeof(channel), "imap:%s/%s", w->imap.name, w->imap.folder);
	/* Store trouble (disk full, a lock held too long) is local and mostly
	 * short: look again soon, and never later than 30 s after it is fixed. */
	static const tr_backoff_policy store_policy = { 1000, 30 * 1000, 2.0, 0.5 };
	tr_backoff network, slow, store_retry;
	tr_backoff_init(&network, &tr_backoff_network, g_random_int());
	tr_backoff_init(&slow, &tr_backoff_slow, g_random_int());
	tr_backoff_init(&store_retry, &store_policy, g_random_int());
	GError *error = NULL;
	tr_store *store = NULL;
	while (!stopping(w)) {
		if (store == NULL && (store = tr_store_open(&w->store_settings, &error)) == NULL) {
			tr_log_error("imap %s: %s", w->imap.name, error->message);
			g_clear_error(&error);
			nap(w, tr_backoff_next(&store_retry));
			continue;
		}
		if (!tr_imap_is_connected(w->session)) {
			tr_imap_mailbox box;
			uint32_t known = checkpoint_uidvalidity(store, channel);
			bool ok = tr_imap_connect(w->session, known, &box, &error);
			count(w, &w->stats.connects, 1);
			if (!ok) {
				tr_imap_error_class cls = tr_imap_error_class_of(error);
				if (cls == TR_IMAP_CLASS_RESYNC) {
					tr_log_warning("imap %s: UIDVALIDITY changed (%u -> %u): rescanning the folder; "
					               "messages seen before are recognised", w->imap.name, known, box.uidvalidity);
					save_checkpoint(store, channel, "uidvalidity", box.uidvalidity);
					g_clear_error(&error);
				} else {
					bool loud = cls == TR_IMAP_CLASS_SLOW;
					int64_t delay = tr_backoff_next(loud ? &slow : &network);
					tr_log(loud ? TR_LOG_ERROR : TR_LOG_WARNING, "imap %s: %s; retrying in %.1f s",
					       w->imap.name, error->message, delay / 1000.0);
					g_clear_error(&error);
					count(w, &w->stats.errors, 1);
					nap(w, delay);
					continue;
				}
			} else if (known != box.uidvalidity) {
				save_checkpoint(store, channel, "uidvalidity", box.uidvalidity);
			}
			tr_log_info("imap %s: connected to %s, folder %s (%u messages)", w->imap.name,
			            tr_imap_peer(w->session), w->imap.folder, box.exists);
			tr_backoff_reset(&network);
			tr_backoff_reset(&slow);
			g_mutex_lock(&w->lock);
			w->stats.connected = true;
			g_mutex_unlock(&w->lock);
			if ((w->imap.mark & TR_IMAP_MARK_MOVE) == 0)
				tr_imap_ensure_folder(w->session, w->imap.quarantine, NULL);
		}
		/* Catch up: everything not yet triaged, in batches. */
		GArray *uids = NULL;
		bool network_ok = tr_imap_search(w->session, TR_IMAP_SEARCH_PENDING, 0, &uids, &error);
		bool store_trouble = false;
		for (guint i = 0; network_ok && uids != NULL && i < uids->len && !stopping(w) && !store_trouble;
		     i += w->batch) {
			unsigned n = MIN(w->batch, uids->len - i);
			network_ok = process_batch(w, store, &g_array_index(uids, uint32_t, i), n, &store_trouble);
			save_checkpoint(store, channel, "uid", g_array_index(uids, uint32_t, i + n - 1));
		}
		if (uids != NULL)
			g_array_unref(uids);
		if (!network_ok || error != NULL) {
			if (error != NULL) {
				tr_log_warning("imap %s: %s", w->imap.name, error->message);
				g_clear_error(&error);
			}
			tr_imap_disconnect(w->session);
			g_mutex_lock(&w->lock);
			w->stats.connected = false;
			g_mutex_unlock(&w->lock);
			count(w, &w->stats.errors, 1);
			int64_t delay = tr_backoff_next(&network);
			tr_log_warning("imap %s: reconnecting in %.1f s", w->imap.name,
			               delay / 1000.0);
			nap(w, delay);
			continue;
		}
		if (store_trouble) {
			/* Disk full, lock timeout: nothing was marked; try again soon. */
			int64_t delay = tr_backoff_next(&store_retry);
			tr_log_warning("imap %s: store trouble: the messages stay in the mailbox; retrying in %.1f s",
			               w->imap.name, delay / 1000.0);
			tr_store_close(&store);
			nap(w, delay);
			continue;
		}
		tr_backoff_reset(&store_retry);
		if (stopping(w))
			break;
		tr_imap_wait_result r = tr_imap_wait(w->session, (int)w->imap.limits.idle_restart, &error);
		if (r == TR_IMAP_WAIT_ERROR) {
			tr_log_warning("imap %s: %s; reconnecting", w->imap.name, error->message);
			g_clear_error(&error);
			tr_imap_disconnect(w->session);
			g_mutex_lock(&w->lock);
			w->stats.connected = false;
			g_mutex_unlock(&w->lock);
			nap(w, tr_backoff_next(&network));
		}
	}
	tr_imap_disconnect(w->session);
	tr_store_close(&store);
	return NULL;
}

tr_imap_watch *tr_imap_watch_start(const tr_imap_watch_options *o)
{
	tr_imap_watch *w = g_new0(tr_imap_watch, 1);
	tr_imap_config_copy(&w->imap, o->imap);
	tr_store_settings *s = &w->store_settings;
	s->path = g_strdup(o->store->path);
	s->ticket_prefix = g_strdup(o->store->ticket_prefix);
	s->ack_require_auth = o->store->ack_require_auth;
	s->agent_domains = g_strdupv(o->store->agent_domains);
	s->limits = o->store->limits;
	w->engines = o->engines;
	w->message_domain = g_strdup(o->outbox->message_domain);
	w->outbox.message_domain = w->message_domain;
	w->outbox.rooms = o->outbox->rooms;
	w->batch = o->batch > 0 ? o->batch : DEFAULT_BATCH;
	w->on_commit = o->on_commit;
	w->user_data = o->user_data;
	g_mutex_init(&w->lock);
	g_cond_init(&w->wake);
	w->session = tr_imap_new(&w->imap);
	char *name = g_strdup_printf("imap-%s", w->imap.name);
	w->thread = g_thread_new(name, run, w);
	g_free(name);
	return w;
}

void tr_imap_watch_stop(tr_imap_watch *w)
{
	g_atomic_int_set(&w->stopping, 1);
	g_mutex_lock(&w->lock);
	g_cond_broadcast(&w->wake);
	g_mutex_unlock(&w->lock);
	tr_imap_interrupt(w->session);
}

void tr_imap_watch_free(tr_imap_watch **wp)
{
	tr_imap_watch *w = *wp;
	if (w == NULL)
		return;
	*wp = NULL;
	tr_imap_watch_stop(w);
	g_thread_join(w->thread);
	tr_imap_free(&w->session);
	tr_imap_config_clear(&w->imap);
	tr_store_settings_clear(&w->store_settings);
	g_free(w->message_domain);
	g_mutex_clear(&w->lock);
	g_cond_clear(&w->wake);
	g_free(w);
}

void tr_imap_watch_get_stats(tr_imap_watch *w, tr_imap_watch_stats *stats)
{
	g_mutex_lock(&w->lock);
	*stats = w->stats;
	g_mutex_unlock(&w->lock);
}

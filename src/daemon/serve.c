/* serve.c — the daemon: threads, signals, reload, drain; see serve.h */
#include "daemon/serve.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channels/imap_watch.h"
#include "channels/smtp.h"
#include "core/log.h"
#include "daemon/chat.h"
#include "daemon/deliver.h"
#include "store/sla.h"

typedef struct {
	int64_t sla_interval, outbox_interval, drain_timeout;
} serve_limits;

static const tr_conftab serve_limits_table[] = {
	{ "sla_interval", 5, 1, 3600, TR_UNIT_SECONDS, offsetof(serve_limits, sla_interval),
	  "[serve] how often the SLA clock looks for due ladder steps" },
	{ "outbox_interval", 5, 1, 3600, TR_UNIT_SECONDS, offsetof(serve_limits, outbox_interval),
	  "[serve] how often the outbox worker looks for due retries (new work wakes it at once)" },
	{ "drain_timeout", 15, 1, 600, TR_UNIT_SECONDS, offsetof(serve_limits, drain_timeout),
	  "[serve] after SIGTERM, exit within this even if work is still in flight" },
	{ NULL, 0, 0, 0, TR_UNIT_COUNT, 0, NULL },
};

typedef struct {
	tr_engine_slot *engines;
	tr_store_settings store_settings;
	tr_outbox_options outbox;
	char *message_domain;
	serve_limits limits;
	gint stopping;
	GMutex lock;
	GCond wake;          /* wakes the outbox worker and the SLA clock */
	gint outbox_pending; /* new work since the worker last looked */
	/* mail delivery */
	bool have_smtp;
	tr_smtp_config smtp_config;
	tr_smtp_client *smtp;
	char *envelope_from;
	/* XMPP: the connection and its worker (daemon/chat.h) */
	tr_xmpp_config xmpp_config;
	tr_xmpp *xmpp;
	tr_chat *chat;
} daemon_state;

static bool stopping(daemon_state *d)
{
	return g_atomic_int_get(&d->stopping) != 0;
}

static void wait_or_wake(daemon_state *d, int64_t seconds)
{
	gint64 until = g_get_monotonic_time() + seconds * G_USEC_PER_SEC;
	g_mutex_lock(&d->lock);
	while (!stopping(d) && !g_atomic_int_get(&d->outbox_pending) &&
	       g_cond_wait_until(&d->wake, &d->lock, until))
		;
	g_mutex_unlock(&d->lock);
}

static void notify_outbox(void *user_data)
{
	daemon_state *d = user_data;
	g_atomic_int_set(&d->outbox_pending, 1);
	g_mutex_lock(&d->lock);
	g_cond_broadcast(&d->wake);
	g_mutex_unlock(&d->lock);
	tr_chat_notify(d->chat);
}

static gint64 now_seconds(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

static gpointer outbox_thread(gpointer data)
{
	daemon_state *d = data;
	GError *error = NULL;
	tr_store *store = NULL;
	bool recovered = false;
	while (!stopping(d)) {
		if (store == NULL && (store = tr_store_open(&d->store_settings, &error)) == NULL) {
			tr_log_error("outbox: %s", error->message);
			g_clear_error(&error);
			wait_or_wake(d, 30);
			continue;
		}
		g_atomic_int_set(&d->outbox_pending, 0);
		tr_engine *engine = tr_engine_slot_get(d->engines);
		tr_deliver *worker = tr_deliver_new(store, engine, d->smtp, &d->smtp_config.limits, d->envelope_from,
		                                    "serve");
		if (!recovered) {
			recovered = tr_deliver_recover(worker, now_seconds(), &error) >= 0;
			if (!recovered) {
				tr_log_error("outbox: %s", error->message);
				g_clear_error(&error);
			}
		}
		tr_deliver_stats stats = { 0 };
		/* A few at a time: a reload or a stop is never far away. */
		bool ok = tr_deliver_run(worker, now_seconds(), 20, &stats, &error);
		tr_deliver_free(&worker);
		tr_engine_free(&engine);
		if (!ok) {
			tr_log_error("outbox: %s", error->message);
			g_clear_error(&error);
			tr_store_close(&store);
			wait_or_wake(d, 10);
			continue;
		}
		unsigned done = stats.sent + stats.temporary + stats.permanent + stats.ambiguous + stats.render_failed;
		if (done < 20)
			wait_or_wake(d, d->limits.outbox_interval);
	}
	tr_store_close(&store);
	return NULL;
}

static gpointer sla_thread(gpointer data)
{
	daemon_state *d = data;
	GError *error = NULL;
	tr_store *store = NULL;
	while (!stopping(d)) {
		if (store == NULL && (store = tr_store_open(&d->store_settings, &error)) == NULL) {
			tr_log_error("sla: %s", error->message);
			g_clear_error(&error);
		} else {
			tr_engine *engine = tr_engine_slot_get(d->engines);
			tr_sla_tick_result r;
			if (!tr_sla_tick(store, tr_engine_policy(engine), &d->outbox, now_seconds(), &r, &error)) {
				tr_log_error("sla: %s", error->message);
				g_clear_error(&error);
				tr_store_close(&store);
			} else if (r.warnings + r.breaches + r.directors + r.escalations > 0) {
				tr_log_info("sla: %u warnings, %u breaches, %u director escalations, %u unacknowledged "
				            "escalations moved up", r.warnings, r.breaches, r.directors, r.escalations);
				notify_outbox(d);
			}
			tr_engine_free(&engine);
		}
		g_mutex_lock(&d->lock);
		gint64 until = g_get_monotonic_time() + d->limits.sla_interval * G_USEC_PER_SEC;
		while (!stopping(d) && g_cond_wait_until(&d->wake, &d->lock, until))
			;
		g_mutex_unlock(&d->lock);
	}
	tr_store_close(&store);
	return NULL;
}

static bool write_pidfile(const char *path)
{
	char *text = g_strdup_printf("%d\n", (int)getpid());
	GError *error = NULL;
	bool ok = g_file_set_contents(path, text, -1, &error);
	if (!ok) {
		tr_log_error("pid file: %s", error->message);
		g_error_free(error);
	}
	g_free(text);
	return ok;
}

static bool drop_privileges(const char *user)
{
	if (user == NULL || *user == '\0' || geteuid() != 0)
		return true;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		tr_log_error("[serve] user: no such user '%s'", user);
		return false;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		tr_log_error("cannot become user %s: %s", user, g_strerror(errno));
		return false;
	}
	if (setuid(0) == 0) {
		tr_log_error("dropping privileges to %s did not stick", user);
		return false;
	}
	tr_log_info("running as user %s", user);
	return true;
}

/* Exit anyway when draining takes too long. */
static gpointer watchdog(gpointer data)
{
	daemon_state *d = data;
	g_usleep((gulong)(d->limits.drain_timeout * G_USEC_PER_SEC));
	tr_log_error("stop: work still in flight after %" G_GINT64_FORMAT " s; exiting anyway (unconfirmed "
	             "messages are redelivered and recognised)", (gint64)d->limits.drain_timeout);
	_exit(1);
	return NULL;
}

static tr_engine *load_engine(const char *path)
{
	tr_diag *diag = tr_diag_new();
	tr_engine *engine = tr_engine_load(path, diag);
	const GPtrArray *msgs = tr_diag_messages(diag);
	for (guint i = 0; i < msgs->len; i++)
		tr_log(engine != NULL ? TR_LOG_WARNING : TR_LOG_ERROR, "%s", (const char *)g_ptr_array_index(msgs, i));
	tr_diag_free(&diag);
	return engine;
}

static void load_serve_group(const tr_conf *conf, tr_diag *diag, serve_limits *limits)
{
	/* [serve] holds more than the table: pidfile, user, log, log_level. */
	static const char *const serve_keys[] = { "pidfile", "user", "log", "log_level", NULL };
	tr_conftab_load_keys(serve_limits_table, conf, diag, "serve", limits, serve_keys);
	char *log = tr_conf_string(conf, "serve", "log", "stderr");
	if (strcmp(log, "syslog") != 0 && strcmp(log, "stderr") != 0)
		tr_conf_error(conf, diag, "serve", "log", "'%s' is not stderr or syslog", log);
	g_free(log);
	char *level = tr_conf_string(conf, "serve", "log_level", "info");
	tr_log_level lvl;
	if (!tr_log_parse_level(level, &lvl))
		tr_conf_error(conf, diag, "serve", "log_level", "'%s' is not error, warning, info or debug", level);
	g_free(level);
}

void tr_serve_check_config(const tr_conf *conf, tr_diag *diag)
{
	serve_limits limits;
	load_serve_group(conf, diag, &limits);
}

int tr_serve_main(const tr_serve_options *o)
{
	tr_engine *engine = load_engine(o->config_path);
	if (engine == NULL) {
		tr_log_error("%s: configuration refused, not starting", o->config_path);
		return 2;
	}
	const tr_conf *conf = tr_engine_conf(engine);
	daemon_state d = { 0 };
	g_mutex_init(&d.lock);
	g_cond_init(&d.wake);
	tr_diag *diag = tr_diag_new();
	load_serve_group(conf, diag, &d.limits);
	tr_store_settings_load(&d.store_settings, conf, o->db_override, diag);
	char *log = o->log != NULL ? g_strdup(o->log) : tr_conf_string(conf, "serve", "log", "stderr");
	char *level = o->log_level != NULL ? g_strdup(o->log_level) : tr_conf_string(conf, "serve", "log_level", "info");
	tr_log_level lvl;
	if (tr_log_parse_level(level, &lvl))
		tr_log_set_level(lvl);
	else if (o->log_level != NULL)   /* a bad [serve] log_level: load_serve_group said so */
		tr_diag_error(diag, NULL, 0, "--log-level: '%s' is not error, warning, info or debug", level);
	if (strcmp(log, "syslog") == 0)
		tr_log_open(true, "triage");
	else if (o->log != NULL && strcmp(log, "stderr") != 0)
		tr_diag_error(diag, NULL, 0, "--log: '%s' is not stderr or syslog", log);
	GPtrArray *imaps = tr_imap_configs_load(conf, diag);
	d.have_smtp = g_key_file_has_group(tr_conf_keyfile(conf), "smtp");
	if (d.have_smtp)
		tr_smtp_config_load(&d.smtp_config, conf, diag);  /* defaults first */
	else
		tr_smtp_config_default(&d.smtp_config);
	tr_xmpp_config_load(&d.xmpp_config, conf, diag);  /* defaults first; no [xmpp]: disabled */
	const GPtrArray *msgs = tr_diag_messages(diag);
	for (guint i = 0; i < msgs->len; i++) {
		const char *msg = g_ptr_array_index(msgs, i);
		tr_log(strstr(msg, ": warning: ") != NULL ? TR_LOG_WARNING : TR_LOG_ERROR, "%s", msg);
	}
	char *pidfile = NULL, *user = NULL;
	bool pid_written = false;
	int status = 2;
	GError *error = NULL;
	if (tr_diag_error_count(diag) > 0) {
		tr_log_error("%s: configuration refused, not starting", o->config_path);
		goto refused;
	}
	tr_diag_free(&diag);
	/* Signals go to the main thread only, which waits for them; blocked
	 * before the first thread starts, so every thread inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* XMPP first: libstrophe select()s, so its socket must get a low fd
	 * number, before the store and the IMAP connections take theirs. */
	if (d.xmpp_config.enabled && (d.xmpp = tr_xmpp_start(&d.xmpp_config, &error)) == NULL)
		goto refused;
	if (d.have_smtp && (d.smtp = tr_smtp_client_new(&d.smtp_config, &error)) == NULL)
		goto refused;
	char *domain = tr_conf_string(conf, "outbound", "message_id_domain", NULL);
	if (domain == NULL) {
		const char *from = tr_outbound_from_address(tr_engine_outbound(engine));
		domain = g_strdup(strrchr(from, '@') != NULL ? strrchr(from, '@') + 1 : "triage.invalid");
	}
	d.message_domain = domain;
	d.outbox.message_domain = domain;
	d.outbox.rooms = d.xmpp_config.enabled;
	d.envelope_from = tr_conf_string(conf, "outbound", "envelope_from",
	                                 tr_outbound_from_address(tr_engine_outbound(engine)));
	/* The store must open before we commit to running. */
	tr_store *probe = tr_store_open(&d.store_settings, &error);
	if (probe == NULL)
		goto refused;
	tr_store_close(&probe);

	pidfile = o->pidfile != NULL ? g_strdup(o->pidfile) : tr_conf_file_path(conf, "serve", "pidfile", NULL);
	if (pidfile != NULL && !(pid_written = write_pidfile(pidfile)))
		goto refused;
	user = tr_conf_string(conf, "serve", "user", NULL);
	if (!drop_privileges(user))
		goto refused;

	d.engines = tr_engine_slot_new(engine);
	engine = NULL;   /* the slot's now */
	if (d.xmpp != NULL) {
		tr_chat_options co = {
			.xmpp = d.xmpp, .xmpp_config = &d.xmpp_config, .store = &d.store_settings, .engines = d.engines,
			.outbox = &d.outbox, .poll_interval = d.limits.outbox_interval,
			.drain_ms = MIN(3000, d.limits.drain_timeout * 1000 / 3), .on_commit = notify_outbox, .user_data = &d,
		};
		d.chat = tr_chat_start(&co);
	}
	GThread *outbox = d.have_smtp ? g_thread_new("outbox", outbox_thread, &d) : NULL;
	GThread *sla = g_thread_new("sla", sla_thread, &d);
	GPtrArray *watches = g_ptr_array_new();
	for (guint i = 0; i < imaps->len; i++) {
		tr_imap_watch_options wo = {
			.imap = g_ptr_array_index(imaps, i), .store = &d.store_settings, .engines = d.engines,
			.outbox = &d.outbox, .on_commit = notify_outbox, .user_data = &d,
		};
		g_ptr_array_add(watches, tr_imap_watch_start(&wo));
	}
	tr_log_info("triage serve: started (%u IMAP folder%s, %s, %s%s, store %s)", imaps->len,
	            imaps->len == 1 ? "" : "s",
	            d.have_smtp ? tr_smtp_client_relay(d.smtp) : "no [smtp] relay: mail actions stay queued",
	            d.xmpp != NULL ? "XMPP as " : "no [xmpp]", d.xmpp != NULL ? d.xmpp_config.jid : "",
	            d.store_settings.path);

	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			tr_log_info("SIGHUP: reloading %s", o->config_path);
			tr_engine *fresh = load_engine(o->config_path);
			if (fresh == NULL) {
				tr_log_error("reload refused: the configuration has errors; the running one stays in force");
			} else {
				tr_engine_slot_set(d.engines, fresh);
				tr_log_info("reloaded (generation %u); channel settings take effect at the next restart",
				            tr_engine_slot_generation(d.engines));
			}
			continue;
		}
		tr_log_info("%s: stopping (draining, at most %" G_GINT64_FORMAT " s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
		            (gint64)d.limits.drain_timeout);
		break;
	}
	g_thread_unref(g_thread_new("watchdog", watchdog, &d));
	g_atomic_int_set(&d.stopping, 1);
	g_mutex_lock(&d.lock);
	g_cond_broadcast(&d.wake);
	g_mutex_unlock(&d.lock);
	tr_chat_stop(d.chat);   /* starts draining now, in parallel with the others */
	for (guint i = 0; i < watches->len; i++)
		tr_imap_watch_stop(g_ptr_array_index(watches, i));
	for (guint i = 0; i < watches->len; i++) {
		tr_imap_watch *w = g_ptr_array_index(watches, i);
		tr_imap_watch_free(&w);
	}
	if (outbox != NULL)
		g_thread_join(outbox);
	g_thread_join(sla);
	/* After every thread that may call notify_outbox. */
	tr_chat_free(&d.chat);
	tr_xmpp_stop(&d.xmpp);
	tr_log_info("triage serve: stopped");
	g_ptr_array_free(watches, TRUE);
	tr_engine_slot_free(&d.engines);
	status = 0;

refused:
	/* Stopped, or nothing has started (status 2: say why): free what was
	 * loaded. */
	if (error != NULL)
		tr_log_error("%s", error->message);
	g_clear_error(&error);
	if (pid_written)
		unlink(pidfile);
	tr_diag_free(&diag);
	tr_smtp_client_free(&d.smtp);
	tr_xmpp_stop(&d.xmpp);
	g_ptr_array_unref(imaps);
	tr_smtp_config_clear(&d.smtp_config);
	tr_xmpp_config_clear(&d.xmpp_config);
	tr_store_settings_clear(&d.store_settings);
	g_free(d.message_domain);
	g_free(d.envelope_from);
	g_free(pidfile);
	g_free(user);
	g_free(log);
	g_free(level);
	g_cond_clear(&d.wake);
	g_mutex_clear(&d.lock);
	tr_engine_free(&engine);
	return status;
}

/*
 * serve.h — `triage serve`: the daemon (tr_serve_*)
 *
 * Runs the configured channels (IMAP folders; XMPP, LMTP and milter as
 * they are configured), the outbox worker and the SLA clock, each in its
 * own thread with its own store connection, until SIGTERM or SIGINT.
 *
 *   SIGHUP   reload triage.conf and everything it names (rules, policy,
 *            templates...); a configuration with errors is refused and the
 *            old one stays in force.  Channel settings (servers, accounts)
 *            take a restart.
 *   SIGTERM  stop taking new work, finish what is in hand (a batch being
 *            committed, a delivery in flight), exit within [serve]
 *            drain_timeout.
 *
 * [serve]: pidfile, user (drop root after start-up), log (stderr |
 * syslog), log_level (error | warning | info | debug), sla_interval,
 * outbox_interval, drain_timeout.  [xmpp]: the XMPP connection is started
 * first (low file descriptors) and served by daemon/chat.h.
 */
#ifndef TR_SERVE_H
#define TR_SERVE_H

#include "core/conf.h"

typedef struct {
	const char *config_path;
	const char *db_override;   /* --db, or NULL */
	const char *pidfile;       /* --pidfile overrides [serve] pidfile */
	const char *log;           /* --log overrides [serve] log */
	const char *log_level;     /* --log-level overrides [serve] log_level */
} tr_serve_options;

/* Run until stopped; the process exit status. */
int tr_serve_main(const tr_serve_options *options);
/* Check [serve] (keys, limits, log, log_level) as the daemon would, for
 * `triage check-config`. */
void tr_serve_check_config(const tr_conf *conf, tr_diag *diag);

#endif

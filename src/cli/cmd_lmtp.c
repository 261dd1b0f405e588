/* cmd_lmtp.c — `triage lmtp`: the LMTP/SMTP listener in the foreground */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "channels/lmtp.h"
#include "cli/cli.h"
#include "core/log.h"
#include "daemon/mailstore.h"

/* For the signal handler only: tr_lmtp_server_stop() is async-signal-safe. */
static tr_lmtp_server *serving;

static void on_signal(int sig)
{
	(void)sig;
	if (serving != NULL)
		tr_lmtp_server_stop(serving);
}

static unsigned print_diag(tr_diag *diag)
{
	const GPtrArray *msgs = tr_diag_messages(diag);
	for (guint i = 0; i < msgs->len; i++)
		fprintf(stderr, "triage lmtp: %s\n", (const char *)g_ptr_array_index(msgs, i));
	return tr_diag_error_count(diag);
}

int tr_cli_lmtp(int argc, char **argv)
{
	char *config = NULL, *listen = NULL, *db = NULL;
	gboolean no_store = FALSE;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "listen", 'l', 0, G_OPTION_ARG_STRING, &listen,
		  "listen here instead of [lmtp] listen (inet:HOST:PORT, inet:PORT@HOST, unix:PATH)", "ADDRESS" },
		{ "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ticket database instead of [store] path", "PATH" },
		{ "no-store", 0, 0, G_OPTION_ARG_NONE, &no_store,
		  "classification only: no tickets (needs [lmtp] next_hop)", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("lmtp", "",
	                  "Run the LMTP listener (also SMTP: LHLO, EHLO and HELO are answered) in the\n"
	                  "foreground until SIGTERM or SIGINT.  Every message is classified, committed\n"
	                  "to the ticket store, and passed on with X-Triage-* headers to [lmtp]\n"
	                  "next_hop; 250 only after that.  See docs/mta.md.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	if (argc > 1) {
		fprintf(stderr, "triage lmtp: unexpected argument '%s'\n", argv[1]);
		return TR_EXIT_USAGE;
	}
	int status = TR_EXIT_USAGE;
	tr_lmtp_settings settings;
	memset(&settings, 0, sizeof(settings));
	tr_store_settings store_settings;
	memset(&store_settings, 0, sizeof(store_settings));
	tr_engine_slot *engines = NULL;
	tr_mailstore *mailstore = NULL;
	tr_lmtp_gateway *gateway = NULL;
	tr_lmtp_server *server = NULL;
	char *domain = NULL;
	bool fail_classify = false;
	GError *error = NULL;

	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		goto out;
	const tr_conf *conf = tr_engine_conf(engine);
	tr_diag *diag = tr_diag_new();
	tr_lmtp_settings_load(&settings, conf, listen, diag);
	if (!no_store)
		tr_store_settings_load(&store_settings, conf, db, diag);
	unsigned errors = print_diag(diag);
	tr_diag_free(&diag);
	if (errors > 0 || !tr_cli_test_fault("lmtp", &fail_classify))
		goto out;
	engines = tr_engine_slot_new(tr_engine_ref(engine));
	tr_lmtp_store store = { NULL, NULL };
	if (!no_store) {
		tr_outbox_options outbox;
		tr_cli_outbox_options(engine, &outbox, &domain);
		mailstore = tr_mailstore_new(&store_settings, engines, &outbox);
		if (!tr_mailstore_probe(mailstore, &error)) {
			/* Keep running: every message gets 451 and the MTA retries
			 * until the store is back. */
			tr_log_error("lmtp: the ticket store cannot be opened: %s; messages get 451 until it can",
			             error->message);
			g_clear_error(&error);
		}
		store = (tr_lmtp_store){ tr_mailstore_ingest, mailstore };
	}
	gateway = tr_lmtp_gateway_new(engines, &settings, &store, &error);
	if (gateway == NULL) {
		fprintf(stderr, "triage lmtp: %s\n", error->message);
		goto out;
	}
	tr_lmtp_gateway_fail_classify(gateway, fail_classify);
	tr_lmtp_hook hook = tr_lmtp_gateway_hook(gateway);
	server = tr_lmtp_server_new(&settings, &hook, &error);
	if (server == NULL) {
		fprintf(stderr, "triage lmtp: cannot listen: %s\n", error->message);
		status = TR_EXIT_FAIL;
		goto out;
	}
	serving = server;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	tr_log_info("lmtp: listening on %s, store %s, next hop %s", tr_lmtp_server_address(server),
	            mailstore != NULL ? store_settings.path : "none (classification only)",
	            settings.next_hop != NULL ? settings.next_hop : "none");
	tr_lmtp_server_run(server);
	serving = NULL;
	tr_log_info("lmtp: stopped");
	status = TR_EXIT_OK;
out:
	g_clear_error(&error);
	tr_lmtp_server_free(&server);
	tr_lmtp_gateway_free(&gateway);
	tr_mailstore_free(&mailstore);
	tr_engine_slot_free(&engines);
	tr_lmtp_settings_clear(&settings);
	tr_store_settings_clear(&store_settings);
	tr_engine_free(&engine);
	g_free(domain);
	g_free(config);
	g_free(listen);
	g_free(db);
	return status;
}

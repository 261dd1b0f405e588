/* cmd_lmtp.c — `triage lmtp`: the LMTP/SMTP listener in the foreground */
#define G_LOG_DOMAIN "triage"
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "channels/lmtp.h"
#include "cli/cli.h"

/* For the signal handler only: tr_lmtp_server_stop() is async-signal-safe. */
static tr_lmtp_server *serving;

static void on_signal(int sig)
{
	(void)sig;
	if (serving != NULL)
		tr_lmtp_server_stop(serving);
}

static void print_diag(const tr_diag *diag)
{
	const GPtrArray *msgs = tr_diag_messages(diag);
	for (guint i = 0; i < msgs->len; i++)
		fprintf(stderr, "triage lmtp: %s\n", (const char *)g_ptr_array_index(msgs, i));
}

int tr_cli_lmtp(int argc, char **argv)
{
	char *config = NULL;
	char *listen = NULL;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "listen", 'l', 0, G_OPTION_ARG_STRING, &listen,
		  "listen here instead of [lmtp] listen (inet:HOST:PORT, inet:PORT@HOST, unix:PATH)", "ADDRESS" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("lmtp", "",
	                  "Run the LMTP listener (also SMTP: LHLO, EHLO and HELO are answered) in the\n"
	                  "foreground until SIGTERM or SIGINT.  Every message is classified, committed\n"
	                  "to the ticket store when one is attached, and passed on with X-Triage-*\n"
	                  "headers to [lmtp] next_hop; 250 only after that.  See docs/mta.md.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	if (argc > 1) {
		fprintf(stderr, "triage lmtp: unexpected argument '%s'\n", argv[1]);
		return TR_EXIT_USAGE;
	}
	int status = TR_EXIT_USAGE;
	tr_lmtp_settings settings;
	memset(&settings, 0, sizeof(settings));
	tr_lmtp_gateway *gateway = NULL;
	tr_lmtp_server *server = NULL;
	tr_channel_ingest_hook ingest;
	tr_channel_reply_hook reply;
	bool fail_classify;
	GError *error = NULL;

	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		goto out;
	tr_diag *diag = tr_diag_new();
	tr_lmtp_settings_load(&settings, tr_engine_conf(engine), listen, diag);
	print_diag(diag);
	unsigned errors = tr_diag_error_count(diag);
	tr_diag_free(&diag);
	if (errors > 0)
		goto out;
	if (!tr_cli_test_hooks("lmtp", &ingest, &reply, &fail_classify))
		goto out;
	gateway = tr_lmtp_gateway_new(engine, &settings, &ingest, &error);
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
	g_message("lmtp: listening on %s%s%s", tr_lmtp_server_address(server),
	          settings.next_hop != NULL ? ", next hop " : "", settings.next_hop != NULL ? settings.next_hop : "");
	tr_lmtp_server_run(server);
	serving = NULL;
	g_message("lmtp: stopped");
	status = TR_EXIT_OK;
out:
	g_clear_error(&error);
	tr_lmtp_server_free(&server);
	tr_lmtp_gateway_free(&gateway);
	tr_lmtp_settings_clear(&settings);
	tr_cli_test_hooks_free();
	tr_engine_free(&engine);
	g_free(config);
	g_free(listen);
	return status;
}

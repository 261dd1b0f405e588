/* cmd_serve.c — `triage serve`: the daemon, in the foreground */
#include <stdio.h>

#include "cli/cli.h"
#include "daemon/serve.h"

int tr_cli_serve(int argc, char **argv)
{
	char *config = NULL, *db = NULL, *pidfile = NULL, *log = NULL, *log_level = NULL;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ticket database (overrides [store] path)", "PATH" },
		{ "pidfile", 0, 0, G_OPTION_ARG_FILENAME, &pidfile, "write the process id here ([serve] pidfile)", "FILE" },
		{ "log", 0, 0, G_OPTION_ARG_STRING, &log, "stderr or syslog ([serve] log)", "WHERE" },
		{ "log-level", 0, 0, G_OPTION_ARG_STRING, &log_level, "error, warning, info, debug ([serve] log_level)",
		  "LEVEL" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("serve", "",
	                  "Run the configured channels (IMAP folders, XMPP, LMTP, milter), the outbox\n"
	                  "worker and the SLA clock in the foreground.  SIGHUP reloads the configuration\n"
	                  "(a bad one is refused, the old one kept); SIGTERM drains and exits.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	if (argc > 1) {
		fprintf(stderr, "triage serve: unexpected argument '%s'\n", argv[1]);
		return TR_EXIT_USAGE;
	}
	tr_serve_options o = {
		.config_path = tr_cli_config_path(config), .db_override = db, .pidfile = pidfile, .log = log,
		.log_level = log_level,
	};
	int status = tr_serve_main(&o);
	g_free(config);
	g_free(db);
	g_free(pidfile);
	g_free(log);
	g_free(log_level);
	return status;
}

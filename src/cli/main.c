/* main.c — `triage` entry point: subcommand dispatch */
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"

#ifndef TR_VERSION
#define TR_VERSION "0.1.0"
#endif

static const struct {
	const char *name;
	tr_cli_fn *fn;
	const char *summary;
} commands[] = {
	{ "classify", tr_cli_classify, "normalize and classify messages, print the decision" },
	{ "check-config", tr_cli_check_config, "validate the configuration and everything it names" },
	{ "eval", tr_cli_eval, "category accuracy, precision/recall/F1 on a labeled CSV file" },
	{ "ingest", tr_cli_ingest, "run files, maildirs and mboxes through the whole pipeline into the store" },
	{ "tickets", tr_cli_tickets, "list tickets" },
	{ "show", tr_cli_show, "one ticket: messages, decisions, events, SLA state" },
	{ "ack", tr_cli_ticket_op, "record the first response / acknowledge the escalation" },
	{ "assign", tr_cli_ticket_op, "assign a ticket to a person" },
	{ "pause", tr_cli_ticket_op, "pause the SLA clocks of a ticket" },
	{ "resume", tr_cli_ticket_op, "resume the SLA clocks of a ticket" },
	{ "resolve", tr_cli_ticket_op, "resolve a ticket" },
	{ "sla-tick", tr_cli_sla_tick, "queue SLA ladder actions that are due (for cron)" },
	{ "outbox", tr_cli_outbox, "list queued actions; retry a failed one" },
	{ "serve", tr_cli_serve, "the daemon: channels, outbox worker, SLA clock" },
	{ "deliver", tr_cli_deliver, "deliver due mail actions through the [smtp] relay (for cron)" },
	{ "report", tr_cli_report, "support dashboard: volume, SLA compliance, escalations (text, JSON, HTML)" },
	{ "lmtp", tr_cli_lmtp, "LMTP/SMTP listener: classify, commit, pass on with X-Triage-* headers" },
	{ "milter", tr_cli_milter, "milter for Postfix/Sendmail: X-Triage-* headers, subject tags" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: triage COMMAND [OPTIONS] [ARGS]\n\n"
	             "triage — email/chat triage gateway.\n\ncommands:\n");
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n`triage COMMAND --help` describes each command.\n"
	             "Configuration: -c FILE, else $TRIAGE_CONFIG, else %s/triage.conf\n",
	        TR_SYSCONFDIR);
}

int main(int argc, char **argv)
{
	/* TRE counts edit costs in characters only under a UTF-8 locale. */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		setlocale(LC_CTYPE, "");
	signal(SIGPIPE, SIG_IGN);
	/* OpenSSL without its exit handler, before any library initialises it
	 * with one (the first initialisation decides): a connection thread
	 * that a bounded stop let go (xmpp.h, tr_xmpp_stop) may still be
	 * inside OpenSSL when we exit, and the handler would free OpenSSL's
	 * global state under it.  The process is ending; the kernel frees it. */
	if (!OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL)) {
		fprintf(stderr, "triage: OpenSSL cannot be initialised\n");
		return TR_EXIT_FAIL;
	}
	tr_norm_global_init();
	if (argc < 2) {
		usage(stderr);
		return TR_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
		if (strcmp(name, "help") == 0 && argc > 2) {
			char *help_argv[] = { argv[2], (char *)"--help", NULL };
			for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
				if (strcmp(argv[2], commands[i].name) == 0)
					return commands[i].fn(2, help_argv);
			}
		}
		usage(stdout);
		return TR_EXIT_OK;
	}
	if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
		printf("triage %s\n", TR_VERSION);
		return TR_EXIT_OK;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
		if (strcmp(name, commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "triage: unknown command '%s'\n\n", name);
	usage(stderr);
	return TR_EXIT_USAGE;
}

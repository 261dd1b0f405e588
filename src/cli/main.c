/* main.c — `triage` entry point: subcommand dispatch */
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

const char *tr_cli_config_path(const char *option_value)
{
	if (option_value != NULL)
		return option_value;
	const char *env = g_getenv("TRIAGE_CONFIG");
	if (env != NULL && *env != '\0')
		return env;
	return TR_SYSCONFDIR "/triage.conf";
}

gboolean tr_cli_parse(const char *command, const char *params, const char *summary,
                      GOptionEntry *entries, int *argc, char ***argv)
{
	GOptionContext *ctx = g_option_context_new(params);
	g_option_context_set_summary(ctx, summary);
	g_option_context_add_main_entries(ctx, entries, NULL);
	char *prgname = g_strdup_printf("triage %s", command);
	g_set_prgname(prgname);
	g_free(prgname);
	GError *error = NULL;
	gboolean ok = g_option_context_parse(ctx, argc, argv, &error);
	if (!ok) {
		fprintf(stderr, "triage %s: %s (try --help)\n", command, error->message);
		g_error_free(error);
	}
	g_option_context_free(ctx);
	return ok;
}

gboolean tr_cli_parse_time(const char *text, gint64 *time_r)
{
	char *end = NULL;
	gint64 n = g_ascii_strtoll(text, &end, 10);
	if (end != text && *end == '\0' && n >= 0) {
		*time_r = n;
		return TRUE;
	}
	GDateTime *dt = g_date_time_new_from_iso8601(text, NULL);
	if (dt == NULL)
		return FALSE;
	*time_r = g_date_time_to_unix(dt);
	g_date_time_unref(dt);
	return TRUE;
}

tr_engine *tr_cli_engine(const char *config_path)
{
	tr_diag *diag = tr_diag_new();
	tr_engine *engine = tr_engine_load(config_path, diag);
	const GPtrArray *msgs = tr_diag_messages(diag);
	for (guint i = 0; i < msgs->len; i++)
		fprintf(stderr, "triage: %s\n", (const char *)g_ptr_array_index(msgs, i));
	tr_diag_free(&diag);
	return engine;
}

int main(int argc, char **argv)
{
	/* TRE counts edit costs in characters only under a UTF-8 locale. */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		setlocale(LC_CTYPE, "");
	signal(SIGPIPE, SIG_IGN);
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

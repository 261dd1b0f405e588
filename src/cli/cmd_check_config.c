/* cmd_check_config.c — `triage check-config`: validate everything, print every error */
#include <stdio.h>
#include <string.h>

#include "channels/imap.h"
#include "channels/lmtp.h"
#include "channels/milter.h"
#include "channels/smtp.h"
#include "channels/xmpp.h"
#include "cli/cli.h"
#include "daemon/serve.h"
#include "core/template.h"
#include "store/store.h"

/* The groups only `triage serve` reads — [imap NAME], [smtp], [xmpp] —
 * checked by the very loaders the daemon uses, so that a configuration
 * check-config accepts is one the daemon starts with. */
static void check_channels(const tr_conf *conf, tr_diag *diag)
{
	GKeyFile *kf = tr_conf_keyfile(conf);
	GPtrArray *imaps = tr_imap_configs_load(conf, diag);
	if (imaps != NULL)
		g_ptr_array_unref(imaps);
	if (g_key_file_has_group(kf, "smtp")) {
		tr_smtp_config smtp; /* load sets the defaults first */
		tr_smtp_config_load(&smtp, conf, diag);
		tr_smtp_config_clear(&smtp);
	}
	if (g_key_file_has_group(kf, "xmpp")) {
		tr_xmpp_config xmpp; /* load sets the defaults first */
		tr_xmpp_config_load(&xmpp, conf, diag);
		tr_xmpp_config_clear(&xmpp);
	}
}

int tr_cli_check_config(int argc, char **argv)
{
	char *config = NULL;
	gboolean verbose = FALSE, limits = FALSE;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "print the effective settings", NULL },
		{ "limits", 0, 0, G_OPTION_ARG_NONE, &limits,
		  "print every named limit as a Markdown table (docs/limits.md) and exit", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("check-config", "",
	                  "Load the configuration and every file it names; print every error\n"
	                  "and warning with file and line.  Exit status 0 when there is no error.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	if (argc > 1) {
		fprintf(stderr, "triage check-config: unexpected argument '%s'\n", argv[1]);
		return TR_EXIT_USAGE;
	}
	if (limits) {
		GString *out = g_string_new("| limit | default | range | what it bounds |\n| --- | --- | --- | --- |\n");
		tr_conftab_markdown(tr_norm_limits_table, "limits", out);
		tr_conftab_markdown(tr_rules_limits_table, "rules", out);
		tr_conftab_markdown(tr_store_limits_table, "store", out);
		tr_conftab_markdown(tr_lmtp_limits_table, "lmtp", out);
		tr_conftab_markdown(tr_milter_limits_table, "milter", out);
		for (const tr_tmpl_limit *l = tr_tmpl_limits(); l->name != NULL; l++)
			g_string_append_printf(out, "| `(templates) %s` | %zu | fixed | %s |\n", l->name, l->value, l->doc);
		fputs(out->str, stdout);
		g_string_free(out, TRUE);
		g_free(config);
		return TR_EXIT_OK;
	}
	const char *path = tr_cli_config_path(config);
	tr_diag *diag = tr_diag_new();
	tr_engine *engine = tr_engine_load(path, diag);
	/* The store's groups ([store], [tickets], [ack]) and the mail
	 * channels' ([lmtp], [milter]) too. */
	tr_lmtp_settings lmtp;
	tr_milter_settings milter;
	memset(&lmtp, 0, sizeof(lmtp));
	memset(&milter, 0, sizeof(milter));
	if (engine != NULL) {
		tr_store_settings settings;
		tr_store_settings_load(&settings, tr_engine_conf(engine), NULL, diag);
		tr_store_settings_clear(&settings);
		tr_lmtp_settings_load(&lmtp, tr_engine_conf(engine), NULL, diag);
		tr_milter_settings_load(&milter, tr_engine_conf(engine), NULL, diag);
		check_channels(tr_engine_conf(engine), diag);
		tr_serve_check_config(tr_engine_conf(engine), diag);
		if (tr_diag_error_count(diag) > 0)
			tr_engine_free(&engine);
	}
	const GPtrArray *msgs = tr_diag_messages(diag);
	for (guint i = 0; i < msgs->len; i++)
		fprintf(stderr, "%s\n", (const char *)g_ptr_array_index(msgs, i));
	int status = engine != NULL ? TR_EXIT_OK : TR_EXIT_FAIL;
	if (engine != NULL) {
		printf("%s: ok (%u warning%s)\n", path, tr_diag_warning_count(diag),
		       tr_diag_warning_count(diag) == 1 ? "" : "s");
		if (verbose) {
			char *text = tr_engine_describe(engine);
			fputs(text, stdout);
			g_free(text);
			GString *more = g_string_new("\n[lmtp]\n");
			tr_conftab_print(tr_lmtp_limits_table, &lmtp.limits, more);
			g_string_append(more, "\n[milter]\n");
			tr_conftab_print(tr_milter_limits_table, &milter.limits, more);
			if (g_key_file_has_group(tr_conf_keyfile(tr_engine_conf(engine)), "xmpp")) {
				/* Loaded again for the print; its diagnostics are above. */
				tr_xmpp_config xmpp;
				tr_diag *quiet = tr_diag_new();
				tr_xmpp_config_load(&xmpp, tr_engine_conf(engine), quiet);
				tr_diag_free(&quiet);
				g_string_append(more, "\n[xmpp]\n");
				tr_xmpp_config_print(&xmpp, more);
				tr_xmpp_config_clear(&xmpp);
			}
			fputs(more->str, stdout);
			g_string_free(more, TRUE);
		}
	} else {
		fprintf(stderr, "%s: %u error%s\n", path, tr_diag_error_count(diag),
		        tr_diag_error_count(diag) == 1 ? "" : "s");
	}
	tr_lmtp_settings_clear(&lmtp);
	tr_milter_settings_clear(&milter);
	tr_engine_free(&engine);
	tr_diag_free(&diag);
	g_free(config);
	return status;
}

/* common.c — what every subcommand needs: options, config, engine, store */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

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

tr_store *tr_cli_store(const tr_engine *engine, const char *db_override)
{
	tr_diag *diag = tr_diag_new();
	tr_store_settings settings;
	tr_store_settings_load(&settings, tr_engine_conf(engine), db_override, diag);
	const GPtrArray *msgs = tr_diag_messages(diag);
	for (guint i = 0; i < msgs->len; i++)
		fprintf(stderr, "triage: %s\n", (const char *)g_ptr_array_index(msgs, i));
	tr_store *store = NULL;
	if (tr_diag_error_count(diag) == 0) {
		GError *error = NULL;
		store = tr_store_open(&settings, &error);
		if (store == NULL) {
			fprintf(stderr, "triage: %s\n", error->message);
			g_error_free(error);
		}
	}
	tr_store_settings_clear(&settings);
	tr_diag_free(&diag);
	return store;
}

void tr_cli_outbox_options(const tr_engine *engine, tr_outbox_options *options, char **domain_r)
{
	const tr_conf *conf = tr_engine_conf(engine);
	char *domain = tr_conf_string(conf, "outbound", "message_id_domain", NULL);
	if (domain == NULL || *domain == '\0') {
		g_free(domain);
		char *from = tr_conf_string(conf, "outbound", "from", "triage@triage.invalid");
		const char *at = strrchr(from, '@');
		domain = g_strdup(at != NULL ? at + 1 : "triage.invalid");
		char *gt = strchr(domain, '>');
		if (gt != NULL)
			*gt = '\0';
		g_free(from);
	}
	options->message_domain = domain;
	char *jid = tr_conf_string(conf, "xmpp", "jid", NULL);
	options->rooms = jid != NULL && *jid != '\0';
	g_free(jid);
	*domain_r = domain;
}

const char *tr_cli_actor(const char *by)
{
	if (by != NULL)
		return by;
	const char *user = g_getenv("SUDO_USER");
	if (user == NULL)
		user = g_get_user_name();
	return user != NULL ? user : "cli";
}

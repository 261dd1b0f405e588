/* cmd_report.c — `triage report`: the support dashboard as text, JSON or HTML */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/report_render.h"
#include "store/report.h"

/*
 * --since: a duration back from --now ("30d", "12h", "2w", "90m", "45s")
 * or a time (ISO 8601 with an offset, or Unix seconds).
 */
static gboolean parse_since(const char *text, gint64 now, gint64 *since_r)
{
	size_t len = strlen(text);
	if (len >= 2 && strchr("smhdw", text[len - 1]) != NULL && strspn(text, "0123456789") == len - 1) {
		gint64 n = g_ascii_strtoll(text, NULL, 10);
		gint64 mult = 1;
		switch (text[len - 1]) {
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		case 'w': mult = 7 * 86400; break;
		default: break;
		}
		if (n > G_MAXINT64 / mult / 2)
			return FALSE;
		*since_r = now - n * mult;
		return TRUE;
	}
	return tr_cli_parse_time(text, since_r);
}

static gboolean write_output(const char *path, const GString *text)
{
	if (path == NULL || strcmp(path, "-") == 0) {
		if (fwrite(text->str, 1, text->len, stdout) != text->len || fflush(stdout) != 0) {
			fprintf(stderr, "triage report: cannot write to standard output\n");
			return FALSE;
		}
		return TRUE;
	}
	GError *error = NULL;
	/* Written to a temporary file and renamed: a browser never sees half a page. */
	if (!g_file_set_contents(path, text->str, (gssize)text->len, &error)) {
		fprintf(stderr, "triage report: %s\n", error->message);
		g_error_free(error);
		return FALSE;
	}
	return TRUE;
}

int tr_cli_report(int argc, char **argv)
{
	char *config = NULL, *db = NULL, *since_text = NULL, *now_text = NULL, *html = NULL;
	gboolean json = FALSE;
	gint top = 10;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ticket database (overrides [store] path)", "PATH" },
		{ "since", 0, 0, G_OPTION_ARG_STRING, &since_text,
		  "window start: a duration before --now (30d, 12h, 2w) or a time (default 30d)", "WHEN" },
		{ "now", 0, 0, G_OPTION_ARG_STRING, &now_text, "window end and clock for open SLAs (default now)", "TIME" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "one JSON object with every figure", NULL },
		{ "html", 0, 0, G_OPTION_ARG_FILENAME, &html, "write a self-contained HTML page to FILE (- for stdout)",
		  "FILE" },
		{ "top", 0, 0, G_OPTION_ARG_INT, &top, "repeated issues listed (default 10)", "N" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	int status = TR_EXIT_USAGE;
	tr_engine *engine = NULL;
	tr_store *store = NULL;
	if (!tr_cli_parse("report", "",
	                  "The support dashboard over the tickets created in a window: volume by\n"
	                  "channel, category, priority and team; SLA compliance per priority;\n"
	                  "escalations and their reasons; reopens; first-response and resolution\n"
	                  "times; repeated issues; mass incidents; open escalations.  Text by\n"
	                  "default, --json for every figure, --html FILE for a page with charts.\n"
	                  "docs/report.md defines each figure.",
	                  entries, &argc, &argv))
		goto out;
	if (argc > 1) {
		fprintf(stderr, "triage report: unexpected argument '%s' (try --help)\n", argv[1]);
		goto out;
	}
	if (json && html != NULL) {
		fprintf(stderr, "triage report: --json and --html exclude each other\n");
		goto out;
	}
	if (top < 1 || top > 1000) {
		fprintf(stderr, "triage report: --top %d is not 1..1000\n", top);
		goto out;
	}
	gint64 now = g_get_real_time() / G_USEC_PER_SEC, since = 0;
	if (now_text != NULL && !tr_cli_parse_time(now_text, &now)) {
		fprintf(stderr, "triage report: --now '%s' is not a time\n", now_text);
		goto out;
	}
	if (!parse_since(since_text != NULL ? since_text : "30d", now, &since)) {
		fprintf(stderr, "triage report: --since '%s' is neither a duration (30d, 12h) nor a time\n", since_text);
		goto out;
	}
	if (since > now) {
		fprintf(stderr, "triage report: --since is after --now\n");
		goto out;
	}
	engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		goto out;
	store = tr_cli_store(engine, db);
	if (store == NULL)
		goto out;
	tr_report_options options = { .since = since, .now = now, .top_issues = (unsigned)top };
	GError *error = NULL;
	tr_report *report = tr_report_build(store, tr_engine_policy(engine), &options, &error);
	if (report == NULL) {
		fprintf(stderr, "triage report: %s\n", error->message);
		g_error_free(error);
		status = TR_EXIT_FAIL;
		goto out;
	}
	GString *text = g_string_new(NULL);
	if (json)
		tr_cli_report_json(report, text);
	else if (html != NULL)
		tr_cli_report_html(report, text);
	else
		tr_cli_report_text(report, text);
	status = write_output(html, text) ? TR_EXIT_OK : TR_EXIT_FAIL;
	if (status == TR_EXIT_OK && html != NULL && strcmp(html, "-") != 0)
		fprintf(stderr, "triage report: %u tickets; page written to %s\n", report->tickets, html);
	g_string_free(text, TRUE);
	tr_report_free(&report);
out:
	tr_store_close(&store);
	tr_engine_free(&engine);
	g_free(config);
	g_free(db);
	g_free(since_text);
	g_free(now_text);
	g_free(html);
	return status;
}

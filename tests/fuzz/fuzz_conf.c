/*
 * fuzz_conf.c — libFuzzer target: any bytes as a configuration set.
 *
 * The input holds one or more files, each introduced by a line
 * "==> NAME <==" (NAME one of triage.conf, policy.conf, teams.conf,
 * calendars.conf, customers.conf, articles.conf, rules.conf); text before
 * the first such line is triage.conf.  A file the input leaves out is the
 * shipped one (rules: one small rule file).  The whole engine is loaded
 * from a scratch directory, then every other loader that reads the main
 * file ([store], [tickets], [ack], [smtp], [imap NAME], [xmpp], [lmtp],
 * [milter]).  Invariants: a refused configuration always says why; every
 * diagnostic is valid UTF-8 and names a file.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channels/imap.h"
#include "channels/lmtp.h"
#include "channels/milter.h"
#include "channels/smtp.h"
#include "channels/xmpp.h"
#include "core/engine.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *scratch;

static const char *const files[] = {
	"triage.conf", "policy.conf", "teams.conf", "calendars.conf", "customers.conf", "articles.conf",
	"rules.conf", NULL,
};

static const char small_rules[] =
	"[rule refund]\nfield = text\nphrases = refund, money back\ncategory = billing\nweight = 2\n\n"
	"[rule urgent]\nfield = subject\nregex = urgent|asap\nurgency = high\n\n"
	"[rule password]\nfield = text\napprox = password reset\ncost = 1\ncategory = account\n";

static char *top_path(const char *rel)
{
	const char *top = g_getenv("TR_TOP");
	return g_build_filename(top != NULL ? top : ".", rel, NULL);
}

static void write_file(const char *name, const char *text, size_t len)
{
	char *path = strcmp(name, "rules.conf") == 0 ? g_build_filename(scratch, "rules.d", "fuzz.conf", NULL)
	                                             : g_build_filename(scratch, name, NULL);
	g_file_set_contents(path, text, (gssize)len, NULL);
	g_free(path);
}

/* The shipped file NAME (or the small rules) into the scratch directory. */
static void reset_file(const char *name)
{
	if (strcmp(name, "rules.conf") == 0) {
		write_file(name, small_rules, sizeof(small_rules) - 1);
		return;
	}
	char *rel = g_build_filename("conf", name, NULL);
	char *src = top_path(rel);
	char *text = NULL;
	size_t len = 0;
	if (!g_file_get_contents(src, &text, &len, NULL))
		abort();  /* run from the top of the tree, or set TR_TOP */
	if (strcmp(name, "triage.conf") == 0) {
		/* Absolute templates and a rules directory of our own. */
		char *templates = top_path("templates");
		GString *s = g_string_new_len(text, (gssize)len);
		g_string_append_printf(s, "\n");
		char *fixed = g_strdup_printf("templates = %s\n", templates);
		char *p = strstr(s->str, "templates = ../templates\n");
		if (p != NULL) {
			gssize at = p - s->str;
			g_string_erase(s, at, (gssize)strlen("templates = ../templates\n"));
			g_string_insert(s, at, fixed);
		}
		write_file(name, s->str, s->len);
		g_string_free(s, TRUE);
		g_free(fixed);
		g_free(templates);
	} else {
		write_file(name, text, len);
	}
	g_free(text);
	g_free(src);
	g_free(rel);
}

static void setup(void)
{
	setlocale(LC_CTYPE, "C.UTF-8");
	scratch = g_dir_make_tmp("fuzz-conf-XXXXXX", NULL);
	char *rules = g_build_filename(scratch, "rules.d", NULL);
	g_mkdir(rules, 0700);
	g_free(rules);
	/* Data the configuration names but the fuzzer does not write. */
	const char *linked[] = { "lang", "sentiment", NULL };
	for (const char *const *l = linked; *l != NULL; l++) {
		char *rel = g_build_filename("conf", *l, NULL);
		char *src = top_path(rel);
		char *dst = g_build_filename(scratch, *l, NULL);
		if (symlink(src, dst) != 0)
			abort();
		g_free(dst);
		g_free(src);
		g_free(rel);
	}
}

static bool is_file(const char *name, size_t len)
{
	for (const char *const *f = files; *f != NULL; f++) {
		if (strlen(*f) == len && memcmp(*f, name, len) == 0)
			return true;
	}
	return false;
}

static void check_diag(const tr_diag *diag)
{
	const GPtrArray *msgs = tr_diag_messages(diag);
	for (guint i = 0; i < msgs->len; i++) {
		const char *m = g_ptr_array_index(msgs, i);
		if (!g_utf8_validate(m, -1, NULL)) {
			fprintf(stderr, "diagnostic not UTF-8: %s\n", m);
			abort();
		}
		if (strstr(m, scratch) == NULL && strstr(m, "templates") == NULL) {
			fprintf(stderr, "diagnostic without a file: %s\n", m);
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (scratch == NULL)
		setup();
	for (const char *const *f = files; *f != NULL; f++)
		reset_file(*f);
	/* Split the input into files. */
	const char *p = (const char *)data, *end = p + size;
	const char *name = "triage.conf";
	size_t name_len = strlen(name);
	const char *body = p;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl != NULL ? nl : end;
		size_t line_len = (size_t)(line_end - p);
		if (line_len > 8 && memcmp(p, "==> ", 4) == 0 && memcmp(line_end - 4, " <==", 4) == 0 &&
		    is_file(p + 4, line_len - 8)) {
			char *n = g_strndup(name, name_len);
			write_file(n, body, (size_t)(p - body));
			g_free(n);
			name = p + 4;
			name_len = line_len - 8;
			body = nl != NULL ? nl + 1 : end;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	char *n = g_strndup(name, name_len);
	write_file(n, body, (size_t)(end - body));
	g_free(n);

	char *main_path = g_build_filename(scratch, "triage.conf", NULL);
	tr_diag *diag = tr_diag_new();
	tr_engine *engine = tr_engine_load(main_path, diag);
	if (engine == NULL && tr_diag_error_count(diag) == 0)
		abort();  /* a refusal always says why */
	if (engine != NULL) {
		const tr_conf *conf = tr_engine_conf(engine);
		tr_store_settings store;
		tr_store_settings_load(&store, conf, NULL, diag);
		tr_store_settings_clear(&store);
		tr_smtp_config smtp;
		tr_smtp_config_load(&smtp, conf, diag);
		tr_smtp_config_clear(&smtp);
		GPtrArray *imap = tr_imap_configs_load(conf, diag);
		if (imap != NULL)
			g_ptr_array_unref(imap);
		tr_xmpp_config xmpp;
		tr_xmpp_config_load(&xmpp, conf, diag);
		tr_xmpp_config_clear(&xmpp);
		tr_lmtp_settings lmtp;
		tr_lmtp_settings_load(&lmtp, conf, NULL, diag);
		tr_lmtp_settings_clear(&lmtp);
		tr_milter_settings milter;
		tr_milter_settings_load(&milter, conf, NULL, diag);
		tr_milter_settings_clear(&milter);
		char *text = tr_engine_describe(engine);
		if (!g_utf8_validate(text, -1, NULL))
			abort();
		g_free(text);
		tr_engine_free(&engine);
	}
	check_diag(diag);
	tr_diag_free(&diag);
	g_free(main_path);
	return 0;
}

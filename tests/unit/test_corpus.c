/*
 * test_corpus.c — the normalizer over every file of ../shared/corpus/mime
 * and ../shared/corpus/mail: no crash, no hang (a time limit per message),
 * valid UTF-8 everywhere, and a per-file summary (subject, text length,
 * parts, language, flags) equal to tests/golden/corpus-summary.tsv.
 *
 * After an intended change: TR_UPDATE_GOLDEN=1 build/tests/test_corpus
 * rewrites the summary; review the diff before committing it.
 * Under ASan the same run proves there is no leak.
 */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/lang.h"
#include "core/normalize.h"

#define SECONDS_PER_MESSAGE 10

static const char *current_file;

static void on_alarm(int sig)
{
	(void)sig;
	char text[512];
	int n = snprintf(text, sizeof(text), "TIMEOUT: %s took more than %d s\n",
	                 current_file != NULL ? current_file : "?", SECONDS_PER_MESSAGE);
	ssize_t w = write(2, text, (size_t)n);
	(void)w;
	_exit(3);
}

static void collect(const char *dir, GPtrArray *files)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	if (d == NULL)
		return;
	const char *name;
	while ((name = g_dir_read_name(d)) != NULL) {
		char *path = g_build_filename(dir, name, NULL);
		if (g_file_test(path, G_FILE_TEST_IS_DIR))
			collect(path, files);
		if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
			g_ptr_array_add(files, path);
		else
			g_free(path);
	}
	g_dir_close(d);
}

static int compare_paths(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void append_escaped(GString *out, const char *s, glong max_chars)
{
	glong n = 0;
	for (const char *p = s; *p != '\0' && n < max_chars; p = g_utf8_next_char(p), n++) {
		if (*p == '\t' || *p == '\n' || *p == '\r' || *p == '\\')
			g_string_append_printf(out, "\\x%02x", (unsigned char)*p);
		else
			g_string_append_len(out, p, g_utf8_next_char(p) - p);
	}
}

static void append_bits(GString *out, unsigned bits, unsigned count, const char *(*name)(unsigned))
{
	const char *sep = "";
	if (bits == 0)
		g_string_append_c(out, '-');
	for (unsigned i = 0; i < count; i++) {
		if (bits & (1u << i)) {
			g_string_append_printf(out, "%s%s", sep, name(i));
			sep = ",";
		}
	}
}

static void assert_msg_utf8(const tr_msg *msg, const char *file)
{
	const char *fields[] = { msg->subject, msg->text, msg->text_new, msg->text_quoted,
	                         msg->text_signature, msg->from.address };
	for (size_t i = 0; i < G_N_ELEMENTS(fields); i++) {
		if (fields[i] == NULL || !g_utf8_validate(fields[i], -1, NULL))
			fail_msg("%s: field %zu is not valid UTF-8", file, i);
	}
	for (size_t i = 0; i < msg->headers_count; i++) {
		if (!g_utf8_validate(msg->headers[i].value, -1, NULL))
			fail_msg("%s: header %s is not valid UTF-8", file, msg->headers[i].name);
	}
}

static void test_corpus(void **state)
{
	(void)state;
	char *corpus = tr_test_corpus("");
	if (corpus == NULL) {
		print_message("# ../shared/corpus is absent: corpus test skipped\n");
		skip();
	}
	GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
	char *mime = g_build_filename(corpus, "mime", NULL);
	char *mail = g_build_filename(corpus, "mail", NULL);
	collect(mime, files);
	collect(mail, files);
	g_ptr_array_sort(files, compare_paths);
	assert_true(files->len > 3000);

	tr_lang *lang = tr_lang_new(NULL, NULL, NULL);
	tr_norm *norm = tr_norm_new(NULL, lang, NULL);
	GString *summary = g_string_new("# file\tsubject\tchars\tnew\tquoted\tsignature\tparts\tlang\tflags\tauto\n");
	size_t corpus_prefix = strlen(corpus);
	unsigned empty = 0;
	gint64 start = g_get_monotonic_time();
	signal(SIGALRM, on_alarm);
	for (guint i = 0; i < files->len; i++) {
		const char *path = g_ptr_array_index(files, i);
		current_file = path;
		size_t len;
		char *data = tr_test_read(path, &len);
		alarm(SECONDS_PER_MESSAGE);
		GError *error = NULL;
		tr_msg *msg = tr_norm_parse(norm, TR_CHANNEL_FILE, data, len, &error);
		alarm(0);
		const char *rel = path + corpus_prefix + (path[corpus_prefix] == '/');
		if (msg == NULL) {
			assert_int_equal(len, 0);  /* only empty files are refused */
			g_clear_error(&error);
			empty++;
			g_string_append_printf(summary, "%s\tEMPTY\n", rel);
			g_free(data);
			continue;
		}
		assert_msg_utf8(msg, path);
		g_string_append_printf(summary, "%s\t", rel);
		append_escaped(summary, msg->subject, 60);
		g_string_append_printf(summary, "\t%ld\t%ld\t%ld\t%ld\t%u\t%s\t",
		                       g_utf8_strlen(msg->text, -1), g_utf8_strlen(msg->text_new, -1),
		                       g_utf8_strlen(msg->text_quoted, -1), g_utf8_strlen(msg->text_signature, -1),
		                       msg->part_count, msg->language != NULL ? msg->language : "-");
		append_bits(summary, msg->flags, TR_MSG_FLAG_COUNT, tr_msg_flag_name);
		g_string_append_c(summary, '\t');
		append_bits(summary, msg->auto_flags, TR_AUTO_COUNT, tr_msg_auto_name);
		g_string_append_c(summary, '\n');
		tr_msg_free(&msg);
		g_free(data);
	}
	gint64 elapsed = g_get_monotonic_time() - start;
	print_message("# %u files normalized in %.2f s (%.0f µs each), %u empty\n", files->len,
	              (double)elapsed / 1e6, (double)elapsed / files->len, empty);

	char *golden_path = tr_test_path("tests/golden/corpus-summary.tsv");
	if (g_getenv("TR_UPDATE_GOLDEN") != NULL) {
		g_file_set_contents(golden_path, summary->str, (gssize)summary->len, NULL);
		print_message("# wrote %s\n", golden_path);
	} else {
		size_t glen;
		char *golden = tr_test_read(golden_path, &glen);
		char **want = g_strsplit(golden, "\n", -1);
		char **got = g_strsplit(summary->str, "\n", -1);
		unsigned differences = 0;
		for (guint k = 0; want[k] != NULL || got[k] != NULL; k++) {
			const char *w = want[k] != NULL ? want[k] : "(missing)";
			const char *g = got[k] != NULL ? got[k] : "(missing)";
			if (strcmp(w, g) != 0 && differences++ < 10)
				print_message("# line %u\n#  want: %s\n#   got: %s\n", k + 1, w, g);
			if (want[k] == NULL || got[k] == NULL)
				break;
		}
		g_strfreev(want);
		g_strfreev(got);
		g_free(golden);
		if (differences > 0)
			fail_msg("%u summary lines differ from %s (TR_UPDATE_GOLDEN=1 to accept)",
			         differences, golden_path);
	}
	g_free(golden_path);
	g_string_free(summary, TRUE);
	tr_norm_free(&norm);
	tr_lang_free(&lang);
	g_ptr_array_unref(files);
	g_free(mime);
	g_free(mail);
	g_free(corpus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

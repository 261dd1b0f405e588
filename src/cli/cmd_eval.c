/* cmd_eval.c — `triage eval`: category quality on a labeled CSV file */
#include <csv.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/evaluation.h"
#include "core/json.h"

typedef struct {
	const char *text_column, *label_column;
	int text_index, label_index;   /* -1 until the header row is read */
	GPtrArray *row;                /* fields of the current row */
	unsigned rows;                 /* data rows seen */
	gboolean header_done;
	/* per data row */
	void (*on_row)(void *ud, const char *text, const char *label);
	void *ud;
	char *error;
} csv_state;

static void on_field(void *data, size_t len, void *ud)
{
	csv_state *st = ud;
	g_ptr_array_add(st->row, g_strndup(data != NULL ? data : "", len));
}

static void on_row_end(int c, void *ud)
{
	(void)c;
	csv_state *st = ud;
	if (!st->header_done) {
		for (guint i = 0; i < st->row->len; i++) {
			const char *name = g_ptr_array_index(st->row, i);
			if (strcmp(name, st->text_column) == 0)
				st->text_index = (int)i;
			if (strcmp(name, st->label_column) == 0)
				st->label_index = (int)i;
		}
		st->header_done = TRUE;
		if ((st->text_index < 0 || st->label_index < 0) && st->error == NULL)
			st->error = g_strdup_printf("header has no column '%s' or '%s'",
			                            st->text_column, st->label_column);
	} else if (st->error == NULL) {
		st->rows++;
		if ((guint)st->text_index < st->row->len && (guint)st->label_index < st->row->len)
			st->on_row(st->ud, g_ptr_array_index(st->row, st->text_index),
			           g_ptr_array_index(st->row, st->label_index));
	}
	g_ptr_array_set_size(st->row, 0);
}

typedef struct {
	tr_engine *engine;
	GKeyFile *map;
	tr_eval *eval;
	unsigned skipped, unmapped;
	GHashTable *unmapped_labels;
	unsigned limit;
	gint64 now;
	FILE *errors_out;  /* --errors: one line per misclassified message */
} eval_run;

static void classify_row(void *ud, const char *text, const char *label)
{
	eval_run *run = ud;
	if (run->limit > 0 && tr_eval_total(run->eval) >= run->limit)
		return;
	char *expected = g_key_file_get_string(run->map, "map", label, NULL);
	if (expected == NULL) {
		run->unmapped++;
		g_hash_table_add(run->unmapped_labels, g_strdup(label));
		return;
	}
	g_strstrip(expected);
	if (strcmp(expected, "-") == 0) {
		run->skipped++;
		g_free(expected);
		return;
	}
	const tr_norm *norm = tr_engine_norm(run->engine);
	tr_msg *msg = tr_norm_text(norm, TR_CHANNEL_FILE, NULL, text, strlen(text));
	tr_decide_input input = { .now = run->now };
	tr_decision d;
	tr_engine_decide(run->engine, msg, &input, &d);
	tr_eval_add(run->eval, expected, d.category);
	if (run->errors_out != NULL && strcmp(expected, d.category) != 0)
		fprintf(run->errors_out, "%s\t%s\t%s\t%s\n", expected, d.category, label, text);
	tr_msg_free(&msg);
	g_free(expected);
}

int tr_cli_eval(int argc, char **argv)
{
	char *config = NULL, *map_path = NULL, *errors_path = NULL;
	char *text_column = NULL, *label_column = NULL;
	gboolean json = FALSE;
	gint limit = 0;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "map", 'm', 0, G_OPTION_ARG_FILENAME, &map_path,
		  "label map: INI group [map] with 'label = category' ('-' skips the label)", "FILE" },
		{ "text-column", 0, 0, G_OPTION_ARG_STRING, &text_column, "CSV column with the text (default text)", "NAME" },
		{ "label-column", 0, 0, G_OPTION_ARG_STRING, &label_column, "CSV column with the label (default category)", "NAME" },
		{ "limit", 0, 0, G_OPTION_ARG_INT, &limit, "evaluate at most N messages", "N" },
		{ "errors", 0, 0, G_OPTION_ARG_FILENAME, &errors_path,
		  "write misclassified messages to FILE (expected, predicted, label, text)", "FILE" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the figures as JSON", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("eval", "FILE.csv",
	                  "Classify each row of a labeled CSV file (header row required) and print\n"
	                  "accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	if (argc != 2 || map_path == NULL) {
		fprintf(stderr, "triage eval: need --map FILE and one CSV file (try --help)\n");
		return TR_EXIT_USAGE;
	}
	GKeyFile *map = g_key_file_new();
	GError *error = NULL;
	if (!g_key_file_load_from_file(map, map_path, G_KEY_FILE_NONE, &error)) {
		fprintf(stderr, "triage eval: %s: %s\n", map_path, error->message);
		return TR_EXIT_USAGE;
	}
	char *data = NULL;
	gsize len = 0;
	if (!g_file_get_contents(argv[1], &data, &len, &error)) {
		fprintf(stderr, "triage eval: %s: %s\n", argv[1], error->message);
		return TR_EXIT_FAIL;
	}
	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		return TR_EXIT_USAGE;
	eval_run run = {
		.engine = engine, .map = map, .eval = tr_eval_new(), .limit = (unsigned)MAX(limit, 0),
		.unmapped_labels = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
		.now = g_get_real_time() / G_USEC_PER_SEC,
	};
	if (errors_path != NULL && (run.errors_out = fopen(errors_path, "w")) == NULL) {
		fprintf(stderr, "triage eval: %s: %s\n", errors_path, g_strerror(errno));
		return TR_EXIT_FAIL;
	}
	csv_state st = {
		.text_column = text_column ? text_column : "text",
		.label_column = label_column ? label_column : "category",
		.text_index = -1, .label_index = -1, .row = g_ptr_array_new_with_free_func(g_free),
		.on_row = classify_row, .ud = &run,
	};
	struct csv_parser parser;
	csv_init(&parser, CSV_APPEND_NULL);
	int status = TR_EXIT_OK;
	if (csv_parse(&parser, data, len, on_field, on_row_end, &st) != len ||
	    csv_fini(&parser, on_field, on_row_end, &st) != 0) {
		fprintf(stderr, "triage eval: %s: CSV error after %u rows: %s\n", argv[1], st.rows,
		        csv_strerror(csv_error(&parser)));
		status = TR_EXIT_FAIL;
	} else if (st.error != NULL) {
		fprintf(stderr, "triage eval: %s: %s\n", argv[1], st.error);
		status = TR_EXIT_FAIL;
	}
	csv_free(&parser);
	if (run.unmapped > 0) {
		fprintf(stderr, "triage eval: %u rows with labels missing from %s (not counted):", run.unmapped, map_path);
		GHashTableIter it;
		gpointer key;
		g_hash_table_iter_init(&it, run.unmapped_labels);
		while (g_hash_table_iter_next(&it, &key, NULL))
			fprintf(stderr, " %s", (const char *)key);
		fprintf(stderr, "\n");
	}
	if (status == TR_EXIT_OK) {
		if (json) {
			JsonNode *root = tr_eval_json(run.eval);
			JsonObject *obj = json_node_get_object(root);
			json_object_set_string_member(obj, "file", argv[1]);
			json_object_set_int_member(obj, "skipped", run.skipped);
			json_object_set_int_member(obj, "unmapped", run.unmapped);
			char *text = json_to_string(root, FALSE);
			printf("%s\n", text);
			g_free(text);
			json_node_unref(root);
		} else {
			char *report = tr_eval_report(run.eval);
			printf("file: %s (%u rows, %u skipped by the map)\n%s", argv[1], st.rows, run.skipped, report);
			g_free(report);
		}
	}
	if (run.errors_out != NULL)
		fclose(run.errors_out);
	g_ptr_array_unref(st.row);
	g_free(st.error);
	g_hash_table_destroy(run.unmapped_labels);
	tr_eval_free(&run.eval);
	tr_engine_free(&engine);
	g_key_file_free(map);
	g_free(data);
	g_free(config);
	g_free(map_path);
	g_free(errors_path);
	g_free(text_column);
	g_free(label_column);
	return status;
}

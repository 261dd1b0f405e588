/* cmd_ingest.c — `triage ingest`: files, maildirs and mboxes into the store */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/json.h"
#include "core/mbox.h"
#include "daemon/deliver.h"
#include "store/ingest.h"

typedef struct {
	tr_ingest *ingest;
	gboolean json;
	unsigned batch_size;
	gint64 now;
	/* the open batch: sources and results printed after the commit */
	GPtrArray *pending_names;
	GArray *pending_results;
	unsigned counts[4], failed;
} run;

static void print_result(const run *r, const char *name, const tr_ingest_result *res)
{
	if (r->json) {
		JsonBuilder *b = json_builder_new();
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "file");
		json_builder_add_string_value(b, name);
		json_builder_set_member_name(b, "result");
		json_builder_add_string_value(b, tr_ingest_kind_name(res->kind));
		json_builder_set_member_name(b, "ticket");
		json_builder_add_string_value(b, res->ticket);
		if (res->kind != TR_INGEST_DUPLICATE) {
			json_builder_set_member_name(b, "priority");
			json_builder_add_string_value(b, tr_priority_name(res->priority));
			json_builder_set_member_name(b, "category");
			json_builder_add_string_value(b, res->category);
			json_builder_set_member_name(b, "team");
			json_builder_add_string_value(b, res->team);
			json_builder_set_member_name(b, "ack_queued");
			json_builder_add_boolean_value(b, res->ack_queued);
			json_builder_set_member_name(b, "no_ack");
			if (res->no_ack != NULL)
				json_builder_add_string_value(b, res->no_ack);
			else
				json_builder_add_null_value(b);
			json_builder_set_member_name(b, "escalated");
			json_builder_add_boolean_value(b, res->escalated);
			json_builder_set_member_name(b, "reopened");
			json_builder_add_boolean_value(b, res->reopened);
			json_builder_set_member_name(b, "repeat_contact");
			json_builder_add_boolean_value(b, res->repeat_contact);
			json_builder_set_member_name(b, "flood");
			json_builder_add_boolean_value(b, res->flood);
			json_builder_set_member_name(b, "incident");
			json_builder_add_int_value(b, res->incident_id);
			json_builder_set_member_name(b, "reference_refused");
			if (res->reference[0] != '\0')
				json_builder_add_string_value(b, res->reference);
			else
				json_builder_add_null_value(b);
		}
		json_builder_end_object(b);
		JsonNode *root = json_builder_get_root(b);
		char *text = json_to_string(root, FALSE);
		printf("%s\n", text);
		g_free(text);
		json_node_unref(root);
		g_object_unref(b);
		return;
	}
	if (res->kind == TR_INGEST_DUPLICATE) {
		printf("%s: duplicate of %s (nothing stored)\n", name, res->ticket);
		return;
	}
	printf("%s: %s %s %s %s -> %s%s%s%s%s%s%s%s\n", name, res->ticket, tr_ingest_kind_name(res->kind),
	       tr_priority_name(res->priority), res->category, res->team,
	       res->ack_queued ? ", ack queued" : "", res->flood ? ", sender over its new-ticket limit" : "",
	       res->escalated ? ", escalated" : "",
	       res->reopened ? ", reopened" : "", res->incident_id ? ", incident" : "",
	       res->reference[0] ? ", refers to " : "", res->reference);
}

static bool flush(run *r, GError **error)
{
	if (!tr_ingest_batch_commit(r->ingest, error)) {
		/* Nothing of the batch was stored: report every message as failed. */
		for (guint i = 0; i < r->pending_names->len; i++)
			fprintf(stderr, "triage ingest: %s: not stored: %s\n",
			        (const char *)g_ptr_array_index(r->pending_names, i), (*error)->message);
		r->failed += r->pending_names->len;
		g_ptr_array_set_size(r->pending_names, 0);
		g_array_set_size(r->pending_results, 0);
		return false;
	}
	for (guint i = 0; i < r->pending_names->len; i++) {
		const tr_ingest_result *res = &g_array_index(r->pending_results, tr_ingest_result, i);
		print_result(r, g_ptr_array_index(r->pending_names, i), res);
		r->counts[res->kind]++;
	}
	g_ptr_array_set_size(r->pending_names, 0);
	g_array_set_size(r->pending_results, 0);
	fflush(stdout);
	return true;
}

static bool ingest_one(run *r, const char *name, const char *data, size_t len)
{
	GError *error = NULL;
	if (r->pending_names->len == 0 && !tr_ingest_batch_begin(r->ingest, &error)) {
		fprintf(stderr, "triage ingest: %s: %s\n", name, error->message);
		g_error_free(error);
		r->failed++;
		return false;
	}
	tr_ingest_input in = { .channel = TR_CHANNEL_FILE, .data = data, .len = len, .now = r->now, .source = name };
	tr_ingest_result res;
	if (!tr_ingest_batch_add(r->ingest, &in, &res, &error)) {
		fprintf(stderr, "triage ingest: %s: %s\n", name, error->message);
		if (r->json) {
			JsonObject *obj = json_object_new();
			json_object_set_string_member(obj, "file", name);
			json_object_set_string_member(obj, "error", error->message);
			JsonNode *node = json_node_init_object(json_node_alloc(), obj);
			char *text = json_to_string(node, FALSE);
			printf("%s\n", text);
			g_free(text);
			json_node_unref(node);
			json_object_unref(obj);
		}
		g_clear_error(&error);
		r->failed++;
		if (r->pending_names->len == 0)
			tr_ingest_batch_abort(r->ingest);
		return false;
	}
	g_ptr_array_add(r->pending_names, g_strdup(name));
	g_array_append_val(r->pending_results, res);
	if (r->pending_names->len >= r->batch_size && !flush(r, &error)) {
		g_clear_error(&error);
		return false;
	}
	return true;
}

static void ingest_file(run *r, const char *path)
{
	GError *error = NULL;
	GMappedFile *mapped = g_mapped_file_new(path, FALSE, &error);
	if (mapped == NULL) {
		fprintf(stderr, "triage ingest: %s: %s\n", path, error->message);
		g_error_free(error);
		r->failed++;
		return;
	}
	const char *data = g_mapped_file_get_contents(mapped);
	size_t len = g_mapped_file_get_length(mapped);
	if (data == NULL || len == 0) {
		fprintf(stderr, "triage ingest: %s: empty file\n", path);
		r->failed++;
	} else {
		tr_mbox_iter it;
		tr_mbox_iter_init(&it, data, len);
		const char *msg;
		size_t mlen;
		unsigned n = 0;
		/* An mbox of one message is reported under the file's name. */
		while (tr_mbox_iter_next(&it, &msg, &mlen)) {
			char *name = n == 0 ? g_strdup(path) : g_strdup_printf("%s#%u", path, n + 1);
			ingest_one(r, name, msg, mlen);
			g_free(name);
			n++;
		}
		tr_mbox_iter_deinit(&it);
	}
	g_mapped_file_unref(mapped);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void ingest_dir(run *r, const char *dir)
{
	/* A maildir: new/ then cur/; any other directory: its files. */
	char *new_dir = g_build_filename(dir, "new", NULL);
	char *cur_dir = g_build_filename(dir, "cur", NULL);
	const char *subdirs[2] = { dir, NULL };
	if (g_file_test(new_dir, G_FILE_TEST_IS_DIR) && g_file_test(cur_dir, G_FILE_TEST_IS_DIR)) {
		subdirs[0] = new_dir;
		subdirs[1] = cur_dir;
	}
	for (int i = 0; i < 2 && subdirs[i] != NULL; i++) {
		GError *error = NULL;
		GDir *d = g_dir_open(subdirs[i], 0, &error);
		if (d == NULL) {
			fprintf(stderr, "triage ingest: %s\n", error->message);
			g_error_free(error);
			r->failed++;
			continue;
		}
		GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
		const char *name;
		while ((name = g_dir_read_name(d)) != NULL) {
			char *path = g_build_filename(subdirs[i], name, NULL);
			if (name[0] != '.' && g_file_test(path, G_FILE_TEST_IS_REGULAR))
				g_ptr_array_add(names, path);
			else
				g_free(path);
		}
		g_dir_close(d);
		if (names->len > 1)
			qsort(names->pdata, names->len, sizeof(char *), compare_names);
		for (guint k = 0; k < names->len; k++)
			ingest_file(r, g_ptr_array_index(names, k));
		g_ptr_array_unref(names);
	}
	g_free(new_dir);
	g_free(cur_dir);
}

/* Deliver what is due through the configured relay; problems are
 * reported, the queue keeps what was not sent. */
static void deliver_now(const tr_engine *engine, tr_store *store, gint64 now)
{
	tr_diag *diag = tr_diag_new();
	tr_smtp_config config;
	GError *error = NULL;
	tr_smtp_client *smtp = NULL;
	if (!tr_smtp_config_load(&config, tr_engine_conf(engine), diag)) {
		char *text = tr_diag_join(diag);
		fprintf(stderr, "triage ingest: not delivering: %s\n", text);
		g_free(text);
	} else if ((smtp = tr_smtp_client_new(&config, &error)) == NULL) {
		fprintf(stderr, "triage ingest: not delivering: %s\n", error->message);
		g_clear_error(&error);
	} else {
		char *from = tr_conf_string(tr_engine_conf(engine), "outbound", "envelope_from",
		                            tr_outbound_from_address(tr_engine_outbound(engine)));
		tr_deliver *d = tr_deliver_new(store, engine, smtp, &config.limits, from, "ingest");
		tr_deliver_stats stats = { 0 };
		if (!tr_deliver_run(d, now, 0, &stats, &error)) {
			fprintf(stderr, "triage ingest: delivering: %s\n", error->message);
			g_clear_error(&error);
		}
		fprintf(stderr, "triage ingest: delivered %u, %u to retry, %u failed, %u ambiguous\n", stats.sent,
		        stats.temporary, stats.permanent + stats.render_failed, stats.ambiguous);
		tr_deliver_free(&d);
		g_free(from);
	}
	tr_smtp_client_free(&smtp);
	tr_smtp_config_clear(&config);
	tr_diag_free(&diag);
}

int tr_cli_ingest(int argc, char **argv)
{
	char *config = NULL, *db = NULL, *now_text = NULL;
	gboolean json = FALSE, no_deliver = FALSE;
	gint batch = 64;
	GOptionEntry entries[] = {
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "ticket database (overrides [store] path)", "PATH" },
		{ "now", 0, 0, G_OPTION_ARG_STRING, &now_text, "arrival time (ISO 8601 or Unix seconds)", "TIME" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "one JSON object per message", NULL },
		{ "batch", 0, 0, G_OPTION_ARG_INT, &batch, "messages per transaction (default 64)", "N" },
		{ "no-deliver", 0, 0, G_OPTION_ARG_NONE, &no_deliver,
		  "only queue: do not deliver through the [smtp] relay afterwards", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("ingest", "FILE|MAILDIR|MBOX...",
	                  "Run messages through the whole pipeline — normalize, classify, store the\n"
	                  "ticket, queue acknowledgments and escalations — without any server.\n"
	                  "A message seen before (same Message-ID or content) creates nothing.\n"
	                  "With an [smtp] relay configured, the queued mail is delivered at the end\n"
	                  "(like `triage deliver`); --no-deliver only queues.\n"
	                  "Exit status: 0 all stored, 1 some could not be stored, 2 usage/config error.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	if (argc < 2) {
		fprintf(stderr, "triage ingest: no FILE, MAILDIR or MBOX given (try --help)\n");
		return TR_EXIT_USAGE;
	}
	run r = { .json = json, .batch_size = (unsigned)CLAMP(batch, 1, 10000),
	          .now = g_get_real_time() / G_USEC_PER_SEC,
	          .pending_names = g_ptr_array_new_with_free_func(g_free),
	          .pending_results = g_array_new(FALSE, TRUE, sizeof(tr_ingest_result)) };
	if (now_text != NULL && !tr_cli_parse_time(now_text, &r.now)) {
		fprintf(stderr, "triage ingest: --now '%s' is not ISO 8601 or Unix seconds\n", now_text);
		return TR_EXIT_USAGE;
	}
	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		return TR_EXIT_USAGE;
	tr_store *store = tr_cli_store(engine, db);
	if (store == NULL) {
		tr_engine_free(&engine);
		return TR_EXIT_USAGE;
	}
	tr_outbox_options options;
	char *domain = NULL;
	tr_cli_outbox_options(engine, &options, &domain);
	r.ingest = tr_ingest_new(store, engine, &options);
	for (int i = 1; i < argc; i++) {
		if (g_file_test(argv[i], G_FILE_TEST_IS_DIR))
			ingest_dir(&r, argv[i]);
		else
			ingest_file(&r, argv[i]);
	}
	GError *error = NULL;
	if (r.pending_names->len > 0 && !flush(&r, &error))
		g_clear_error(&error);
	if (!json)
		fprintf(stderr, "triage ingest: %u new, %u replies, %u agent messages, %u duplicates, %u failed\n",
		        r.counts[TR_INGEST_NEW], r.counts[TR_INGEST_REPLY], r.counts[TR_INGEST_AGENT],
		        r.counts[TR_INGEST_DUPLICATE], r.failed);
	if (!no_deliver && g_key_file_has_group(tr_conf_keyfile(tr_engine_conf(engine)), "smtp"))
		deliver_now(engine, store, r.now);
	tr_ingest_free(&r.ingest);
	g_free(domain);
	tr_store_close(&store);
	tr_engine_free(&engine);
	g_ptr_array_unref(r.pending_names);
	g_array_free(r.pending_results, TRUE);
	g_free(config);
	g_free(db);
	g_free(now_text);
	return r.failed > 0 ? TR_EXIT_FAIL : TR_EXIT_OK;
}

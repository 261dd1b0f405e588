/*
 * bench_ingest.c — ingest throughput into the store: the whole pipeline
 * (normalize, classify, dedup, threading, ticket, events, outbox rows) on
 * the SpamAssassin corpus, into a fresh SQLite store per run, with
 * synchronous=FULL and NORMAL, one message per transaction and batches.
 *
 * usage: build/bench/bench_ingest [-c CONFIG] [DIR]
 * Last line:
 *   bench: ingest_full=N msg/s ingest_normal=M msg/s (batch B) single_full=S msg/s
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/engine.h"
#include "store/ingest.h"
#include "store/store.h"

typedef struct {
	char *data;
	size_t len;
} message;

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double run(const tr_engine *engine, GArray *msgs, const char *dir, int synchronous, unsigned batch)
{
	char *path = g_strdup_printf("%s/bench-%d-%u.db", dir, synchronous, batch);
	tr_store_settings settings;
	tr_store_settings_default(&settings, path);
	settings.limits.synchronous = synchronous;
	GError *error = NULL;
	tr_store *store = tr_store_open(&settings, &error);
	if (store == NULL)
		g_error("%s", error->message);
	tr_outbox_options options = { .message_domain = "example.test" };
	tr_ingest *ing = tr_ingest_new(store, engine, &options);
	double t0 = now_seconds();
	gint64 now = 1794819600;
	for (guint i = 0; i < msgs->len;) {
		if (!tr_ingest_batch_begin(ing, &error))
			g_error("%s", error->message);
		for (unsigned k = 0; k < batch && i < msgs->len; k++, i++) {
			const message *m = &g_array_index(msgs, message, i);
			tr_ingest_input in = { .channel = TR_CHANNEL_FILE, .data = m->data, .len = m->len, .now = now + i };
			tr_ingest_result res;
			if (!tr_ingest_batch_add(ing, &in, &res, &error))
				g_clear_error(&error);
		}
		if (!tr_ingest_batch_commit(ing, &error))
			g_error("%s", error->message);
	}
	double rate = msgs->len / (now_seconds() - t0);
	tr_ingest_free(&ing);
	tr_store_close(&store);
	tr_store_settings_clear(&settings);
	char *wal = g_strdup_printf("%s-wal", path), *shm = g_strdup_printf("%s-shm", path);
	g_unlink(path);
	g_unlink(wal);
	g_unlink(shm);
	g_free(wal);
	g_free(shm);
	g_free(path);
	return rate;
}

int main(int argc, char **argv)
{
	setlocale(LC_CTYPE, "C.UTF-8");
	const char *config = "conf/triage.conf";
	const char *dir = "../shared/corpus/mail/spamassassin-easy-ham";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: %s [-c CONFIG] [DIR]\n", argv[0]);
			return 0;
		} else
			dir = argv[i];
	}
	tr_norm_global_init();
	tr_diag *diag = tr_diag_new();
	tr_engine *engine = tr_engine_load(config, diag);
	if (engine == NULL) {
		char *text = tr_diag_join(diag);
		fprintf(stderr, "%s\n", text);
		return 1;
	}
	tr_diag_free(&diag);
	GDir *dh = g_dir_open(dir, 0, NULL);
	if (dh == NULL) {
		fprintf(stderr, "bench_ingest: cannot open %s\n", dir);
		return 1;
	}
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	const char *name;
	while ((name = g_dir_read_name(dh)) != NULL) {
		if (g_str_has_suffix(name, ".eml"))
			g_ptr_array_add(names, g_build_filename(dir, name, NULL));
	}
	g_dir_close(dh);
	g_ptr_array_sort(names, (GCompareFunc)strcmp);
	GArray *msgs = g_array_new(FALSE, FALSE, sizeof(message));
	for (guint i = 0; i < names->len; i++) {
		message m;
		gsize len;
		if (g_file_get_contents(g_ptr_array_index(names, i), &m.data, &len, NULL)) {
			m.len = len;
			g_array_append_val(msgs, m);
		}
	}
	/* The store lives where builds live: the same disk as in production. */
	g_mkdir_with_parents("build/bench", 0755);
	char *tmp = g_strdup("build/bench");
	printf("bench: %u messages into a fresh store each run (%s)\n", msgs->len, tmp);
	double single_full = run(engine, msgs, tmp, 2, 1);
	double single_normal = run(engine, msgs, tmp, 1, 1);
	double batch_full = run(engine, msgs, tmp, 2, 64);
	double batch_normal = run(engine, msgs, tmp, 1, 64);
	printf("bench: one message per transaction: FULL %.0f msg/s, NORMAL %.0f msg/s\n", single_full, single_normal);
	printf("bench: batches of 64: FULL %.0f msg/s, NORMAL %.0f msg/s\n", batch_full, batch_normal);
	printf("bench: ingest_full=%.0f msg/s ingest_normal=%.0f msg/s (batch 64) single_full=%.0f msg/s\n",
	       batch_full, batch_normal, single_full);
	for (guint i = 0; i < msgs->len; i++)
		g_free(g_array_index(msgs, message, i).data);
	g_array_free(msgs, TRUE);
	g_ptr_array_unref(names);
	g_free(tmp);
	tr_engine_free(&engine);
	return 0;
}

/*
 * bench_pipeline.c — normalize (+ classify) throughput on one core against
 * GMime parse-only, on the same messages in memory, in one run.
 *
 * usage: build/bench/bench_pipeline [-c CONFIG] [-p PASSES] [-m MODE] [DIR]
 *   DIR defaults to ../shared/corpus/mail/spamassassin-easy-ham
 *   MODE all (default), or one phase alone for instruction counts under
 *   callgrind or `perf stat`: gmime (parse-only), normalize, pipeline
 *   (normalize + classify).  A single phase runs one warm-up pass and
 *   PASSES timed passes and prints one line, wall and process CPU time:
 *     bench: MODE=N msg/s us_per_msg=U cpu_us_per_msg=C
 * Last line (wall time, one core):
 *   bench: pipeline=N msg/s gmime_parse=M msg/s ratio=R p50_us=A p99_us=B rss_mb=C
 * The line before it gives the same rates in process CPU time, which does
 * not count the time other processes held the core:
 *   bench: cpu: pipeline=N msg/cpu-s gmime_parse=M msg/cpu-s ratio=R
 */
#include <glib.h>
#include <gmime/gmime.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/engine.h"
#include "core/normalize.h"

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

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* GMime alone: parse and decode every text part to UTF-8.  Not inlined, so
 * that callgrind's --toggle-collect=gmime_parse_only can find it. */
static void gmime_decode_text(GMimeObject *obj, int depth)
{
	if (obj == NULL || depth > 20)
		return;
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		for (int i = 0; i < g_mime_multipart_get_count(mp); i++)
			gmime_decode_text(g_mime_multipart_get_part(mp, i), depth + 1);
	} else if (GMIME_IS_TEXT_PART(obj)) {
		g_free(g_mime_text_part_get_text(GMIME_TEXT_PART(obj)));
	}
}

static __attribute__((noinline)) void gmime_parse_only(const message *m)
{
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(m->data, m->len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	if (msg != NULL) {
		g_free(g_strdup(g_mime_message_get_subject(msg)));
		gmime_decode_text(g_mime_message_get_mime_part(msg), 0);
		g_object_unref(msg);
	}
	g_object_unref(parser);
	g_object_unref(stream);
}

/* One normalize + classify, as the daemon does it. */
static __attribute__((noinline)) void pipeline_one(const tr_engine *engine, const message *m,
                                                   const tr_decide_input *input, unsigned *hits,
                                                   unsigned *escalations)
{
	tr_msg *msg = tr_norm_parse(tr_engine_norm(engine), TR_CHANNEL_FILE, m->data, m->len, NULL);
	tr_decision d;
	tr_engine_decide(engine, msg, input, &d);
	*hits += (unsigned)d.n_hits;
	*escalations += d.escalate;
	tr_msg_free(&msg);
}

static __attribute__((noinline)) void normalize_one(const tr_norm *norm, const message *m)
{
	tr_msg *msg = tr_norm_parse(norm, TR_CHANNEL_FILE, m->data, m->len, NULL);
	tr_msg_free(&msg);
}

typedef enum { MODE_ALL, MODE_GMIME, MODE_NORMALIZE, MODE_PIPELINE } bench_mode;

int main(int argc, char **argv)
{
	setlocale(LC_CTYPE, "C.UTF-8");
	const char *config = "conf/triage.conf";
	int passes = 4;
	bench_mode mode = MODE_ALL;
	static const char *const mode_names[] = { "all", "gmime", "normalize", "pipeline" };
	const char *dir = "../shared/corpus/mail/spamassassin-easy-ham";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
		{
			int value = atoi(argv[++i]);
			passes = CLAMP(value, 1, 1000);
		}
		else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) {
			const char *name = argv[++i];
			unsigned k = 0;
			while (k < G_N_ELEMENTS(mode_names) && strcmp(name, mode_names[k]) != 0)
				k++;
			if (k == G_N_ELEMENTS(mode_names)) {
				fprintf(stderr, "bench_pipeline: unknown mode '%s' (all, gmime, normalize, pipeline)\n", name);
				return 2;
			}
			mode = (bench_mode)k;
		}
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: %s [-c CONFIG] [-p PASSES] [-m all|gmime|normalize|pipeline] [DIR]\n", argv[0]);
			return 0;
		} else
			dir = argv[i];
	}
	tr_norm_global_init();
	GDir *dh = g_dir_open(dir, 0, NULL);
	if (dh == NULL) {
		fprintf(stderr, "bench_pipeline: cannot open %s\n", dir);
		return 1;
	}
	GArray *msgs = g_array_new(FALSE, FALSE, sizeof(message));
	size_t total_bytes = 0;
	const char *name;
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	while ((name = g_dir_read_name(dh)) != NULL) {
		if (g_str_has_suffix(name, ".eml"))
			g_ptr_array_add(names, g_build_filename(dir, name, NULL));
	}
	g_dir_close(dh);
	for (guint i = 0; i < names->len; i++) {
		message m;
		gsize len;
		if (g_file_get_contents(g_ptr_array_index(names, i), &m.data, &len, NULL) && len > 0) {
			m.len = len;
			total_bytes += len;
			g_array_append_val(msgs, m);
		}
	}
	g_ptr_array_unref(names);
	guint n = msgs->len;
	if (n == 0) {
		fprintf(stderr, "bench_pipeline: no *.eml in %s\n", dir);
		return 1;
	}
	printf("bench: %u messages, %.1f MB, %d passes, config %s\n", n, total_bytes / 1e6, passes, config);

	tr_diag *diag = tr_diag_new();
	tr_engine *engine = tr_engine_load(config, diag);
	if (engine == NULL) {
		char *text = tr_diag_join(diag);
		fprintf(stderr, "%s\n", text);
		return 1;
	}
	tr_diag_free(&diag);
	const tr_norm *norm = tr_engine_norm(engine);
	tr_decide_input input = { .now = 1794819600 };
	unsigned hits = 0, escalations = 0;

	if (mode != MODE_ALL) {
		/* One phase: a warm-up pass, then the timed passes. */
		double t = 0, cpu = 0;
		for (int p = -1; p < passes; p++) {
			if (p == 0) {
				t = now_seconds();
				cpu = cpu_seconds();
			}
			for (guint i = 0; i < n; i++) {
				const message *m = &g_array_index(msgs, message, i);
				if (mode == MODE_GMIME)
					gmime_parse_only(m);
				else if (mode == MODE_NORMALIZE)
					normalize_one(norm, m);
				else
					pipeline_one(engine, m, &input, &hits, &escalations);
			}
		}
		double rate = n * passes / (now_seconds() - t);
		double cpu_per_msg = (cpu_seconds() - cpu) / (n * passes);
		printf("bench: %s=%.0f msg/s us_per_msg=%.1f cpu_us_per_msg=%.1f\n", mode_names[mode], rate,
		       1e6 / rate, cpu_per_msg * 1e6);
	} else {
		/* Warm-up, then GMime parse-only. */
		for (guint i = 0; i < n; i++)
			gmime_parse_only(&g_array_index(msgs, message, i));
		double t0 = now_seconds(), c0 = cpu_seconds();
		for (int p = 0; p < passes; p++)
			for (guint i = 0; i < n; i++)
				gmime_parse_only(&g_array_index(msgs, message, i));
		double gmime_rate = n * passes / (now_seconds() - t0);
		double gmime_cpu_rate = n * passes / (cpu_seconds() - c0);

		/* Normalize only, for the breakdown. */
		double tn = now_seconds();
		for (int p = 0; p < passes; p++)
			for (guint i = 0; i < n; i++)
				normalize_one(norm, &g_array_index(msgs, message, i));
		double normalize_rate = n * passes / (now_seconds() - tn);

		/* The pipeline — normalize, rules, sentiment, decision — timing each message. */
		double *lat = g_new(double, (gsize)n * (gsize)passes + 1);
		size_t k = 0;
		double t1 = now_seconds(), c1 = cpu_seconds();
		for (int p = 0; p < passes; p++) {
			for (guint i = 0; i < n; i++) {
				double a = now_seconds();
				pipeline_one(engine, &g_array_index(msgs, message, i), &input, &hits, &escalations);
				lat[k++] = now_seconds() - a;
			}
		}
		double pipeline_rate = n * passes / (now_seconds() - t1);
		double pipeline_cpu_rate = n * passes / (cpu_seconds() - c1);
		qsort(lat, k, sizeof(double), compare_double);
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		printf("bench: gmime parse-only %.0f msg/s; normalize %.0f msg/s; normalize+classify %.0f msg/s "
		       "(%.1f µs/msg; %.1f rule hits and %.2f escalations per message)\n",
		       gmime_rate, normalize_rate, pipeline_rate, 1e6 / pipeline_rate, (double)hits / k,
		       (double)escalations / k);
		printf("bench: cpu: pipeline=%.0f msg/cpu-s gmime_parse=%.0f msg/cpu-s ratio=%.2f\n",
		       pipeline_cpu_rate, gmime_cpu_rate, pipeline_cpu_rate / gmime_cpu_rate);
		printf("bench: pipeline=%.0f msg/s gmime_parse=%.0f msg/s ratio=%.2f p50_us=%.0f p99_us=%.0f rss_mb=%.1f\n",
		       pipeline_rate, gmime_rate, pipeline_rate / gmime_rate, lat[k / 2] * 1e6,
		       lat[(size_t)(k * 0.99)] * 1e6, ru.ru_maxrss / 1024.0);
		g_free(lat);
	}
	for (guint i = 0; i < n; i++)
		g_free(g_array_index(msgs, message, i).data);
	g_array_free(msgs, TRUE);
	tr_engine_free(&engine);
	return 0;
}

/*
 * fuzz_calendar.c — libFuzzer target for calendar configuration and
 * business-time arithmetic.
 *
 * The input is read as a key file; every group (up to a few) is built into
 * a calendar, and a calendar that builds is put through add/between/
 * next_open/is_open/format at fixed instants, checking the invariants that
 * calendar.h promises.  A broken invariant traps, so libFuzzer reports it.
 *
 * Seeds: tests/fuzz/seeds/calendar/.  A dictionary of the grammar's tokens
 * helps a lot: tests/fuzz/calendar.dict.
 *
 *   make fuzz-build && build/fuzz/fuzz_calendar -dict=tests/fuzz/calendar.dict \
 *       -max_total_time=60 build/fuzz/corpus/calendar tests/fuzz/seeds/calendar
 */
#include "core/calendar.h"

#include <glib.h>
#include <stdint.h>
#include <stdio.h>

#define FUZZ_MAX_INPUT (16 * 1024)
#define FUZZ_MAX_GROUPS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(gboolean ok, const char *what, const tr_calendar *c, gint64 t, gint64 s)
{
	if (ok)
		return;
	fprintf(stderr, "invariant broken: %s (calendar %s, tz %s, t=%" G_GINT64_FORMAT
	        ", s=%" G_GINT64_FORMAT ")\n", what, tr_calendar_get_name(c),
	        tr_calendar_get_timezone(c), t, s);
	__builtin_trap();
}

static void exercise(const tr_calendar *c, const char *zone_guess)
{
	/* Around DST changes, a year end, the epoch and the end of the range. */
	static const gint64 instants[] = {
		G_GINT64_CONSTANT(1774742400),   /* 2026-03-29T00:00Z */
		G_GINT64_CONSTANT(1792882800),   /* 2026-10-24T23:00Z */
		G_GINT64_CONSTANT(1798750800),   /* 2026-12-31T21:00Z */
		G_GINT64_CONSTANT(-5),
		TR_CALENDAR_TIME_MAX - 3 * 86400,
	};
	const gint64 amounts[] = {
		0, 1, 3600, 8 * 3600,
		tr_calendar_business_days_to_seconds(c, 2),
		tr_calendar_business_days_to_seconds(c, 30),
	};
	for (size_t i = 0; i < G_N_ELEMENTS(instants); i++) {
		gint64 t = instants[i];
		gint64 clamped = CLAMP(t, TR_CALENDAR_TIME_MIN, TR_CALENDAR_TIME_MAX);
		gint64 next = tr_calendar_next_open(c, t);
		check(next >= clamped, "next_open before start", c, t, 0);
		if (next != TR_CALENDAR_NEVER)
			check(tr_calendar_is_open(c, next), "next_open not open", c, t, 0);
		check(tr_calendar_is_open(c, clamped) == (next == clamped), "is_open vs next_open", c, t, 0);
		for (size_t k = 0; k < G_N_ELEMENTS(amounts); k++) {
			gint64 s = amounts[k];
			gint64 due = tr_calendar_add_business(c, t, s);
			if (due == TR_CALENDAR_NEVER)
				continue;
			check(due >= clamped, "due before start", c, t, s);
			check(tr_calendar_business_between(c, t, due) == s, "between(add) != s", c, t, s);
			if (s > 0)
				check(tr_calendar_is_open(c, due - 1), "due not earliest", c, t, s);
		}
		gint64 b = clamped + 40 * 86400;
		gint64 open = tr_calendar_business_between(c, t, b);
		check(open >= 0 && open <= b - clamped, "between out of bounds", c, t, 0);
		char *text = tr_calendar_format_local(c, t, NULL);
		g_free(text);
		text = tr_calendar_format_local(c, t, zone_guess);
		g_free(text);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_INPUT)
		return 0;
	GKeyFile *kf = g_key_file_new();
	if (g_key_file_load_from_data(kf, (const char *)data, size,
	                              G_KEY_FILE_KEEP_TRANSLATIONS, NULL)) {
		gsize n = 0;
		char **groups = g_key_file_get_groups(kf, &n);
		for (gsize i = 0; i < n && i < FUZZ_MAX_GROUPS; i++) {
			GError *error = NULL;
			tr_calendar *c = tr_calendar_from_keyfile(kf, groups[i], &error);
			if (c == NULL) {
				check(error != NULL && error->message != NULL, "NULL without error", NULL, 0, 0);
				g_error_free(error);
				continue;
			}
			check(error == NULL, "error on success", c, 0, 0);
			/* The group name doubles as a fuzzed time zone override. */
			exercise(c, groups[i]);
			tr_calendar_free(&c);
		}
		g_strfreev(groups);
	}
	g_key_file_free(kf);
	return 0;
}

/* test_calendar.c — business-hours calendars and business-time arithmetic */
#include "testutil.h"
#include "core/calendar.h"

#include <string.h>

#define HOUR G_GINT64_CONSTANT(3600)
#define DAY (24 * HOUR)

/* A local wall-clock time in a named zone, as Unix seconds.  Only used for
 * times that exist exactly once in that zone. */
static gint64 at(const char *zone, int y, int mo, int d, int h, int mi)
{
	GTimeZone *tz = g_time_zone_new_identifier(zone);
	assert_non_null(tz);
	GDateTime *dt = g_date_time_new(tz, y, mo, d, h, mi, 0);
	assert_non_null(dt);
	gint64 t = g_date_time_to_unix(dt);
	g_date_time_unref(dt);
	g_time_zone_unref(tz);
	return t;
}

static tr_calendar *cal(const char *zone, const char *hours, const char *holidays)
{
	GError *error = NULL;
	tr_calendar *c = tr_calendar_new("test", zone, hours, holidays, &error);
	if (c == NULL)
		fail_msg("calendar: %s", error->message);
	return c;
}

/* Asserts that an instant prints as expected in the calendar's zone. */
static void assert_local(const tr_calendar *c, gint64 t, const char *expected)
{
	char *s = tr_calendar_format_local(c, t, NULL);
	assert_non_null(s);
	if (strcmp(s, expected) != 0)
		fail_msg("got '%s', expected '%s' (t=%" G_GINT64_FORMAT ")", s, expected, t);
	g_free(s);
}

#define BERLIN "Europe/Berlin"
#define OFFICE "mon-fri 09:00-17:00"

/* ------------------------------------------------------------ basic hours */

static void test_start_inside_hours(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, OFFICE, NULL);
	gint64 tue10 = at(BERLIN, 2026, 6, 9, 10, 0);
	assert_true(tr_calendar_is_open(c, tue10));
	assert_int_equal(tr_calendar_next_open(c, tue10), tue10);
	assert_int_equal(tr_calendar_add_business(c, tue10, 4 * HOUR), at(BERLIN, 2026, 6, 9, 14, 0));
	assert_int_equal(tr_calendar_add_business(c, tue10, 8 * HOUR), at(BERLIN, 2026, 6, 10, 10, 0));
	assert_int_equal(tr_calendar_add_business(c, tue10, 0), tue10);
	assert_int_equal(tr_calendar_add_business(c, tue10, -5), tue10);
	assert_int_equal(tr_calendar_add_business(c, tue10, 1), tue10 + 1);
	tr_calendar_free(&c);
	assert_null(c);
	tr_calendar_free(&c); /* no-op */
}

static void test_start_before_hours(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, OFFICE, NULL);
	gint64 tue7 = at(BERLIN, 2026, 6, 9, 7, 0);
	assert_false(tr_calendar_is_open(c, tue7));
	assert_int_equal(tr_calendar_next_open(c, tue7), at(BERLIN, 2026, 6, 9, 9, 0));
	assert_int_equal(tr_calendar_add_business(c, tue7, 0), at(BERLIN, 2026, 6, 9, 9, 0));
	assert_int_equal(tr_calendar_add_business(c, tue7, 4 * HOUR), at(BERLIN, 2026, 6, 9, 13, 0));
	assert_int_equal(tr_calendar_business_between(c, tue7, at(BERLIN, 2026, 6, 9, 13, 0)), 4 * HOUR);
	tr_calendar_free(&c);
}

static void test_start_after_hours(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, OFFICE, NULL);
	gint64 tue18 = at(BERLIN, 2026, 6, 9, 18, 0);
	assert_false(tr_calendar_is_open(c, tue18));
	assert_int_equal(tr_calendar_add_business(c, tue18, HOUR), at(BERLIN, 2026, 6, 10, 10, 0));
	assert_int_equal(tr_calendar_business_between(c, tue18, at(BERLIN, 2026, 6, 10, 9, 0)), 0);
	tr_calendar_free(&c);
}

static void test_closing_time_boundary(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, OFFICE, NULL);
	gint64 tue9 = at(BERLIN, 2026, 6, 9, 9, 0), tue17 = at(BERLIN, 2026, 6, 9, 17, 0);
	/* A target that runs out at closing is due at closing, not next morning. */
	assert_int_equal(tr_calendar_add_business(c, tue9, 8 * HOUR), tue17);
	assert_true(tr_calendar_is_open(c, tue9));
	assert_true(tr_calendar_is_open(c, tue17 - 1));
	assert_false(tr_calendar_is_open(c, tue17));
	assert_false(tr_calendar_is_open(c, tue9 - 1));
	assert_int_equal(tr_calendar_add_business(c, tue17, 1), at(BERLIN, 2026, 6, 10, 9, 0) + 1);
	assert_int_equal(tr_calendar_business_between(c, tue9, tue17), 8 * HOUR);
	assert_int_equal(tr_calendar_business_between(c, tue17, tue9), 0);
	assert_int_equal(tr_calendar_business_between(c, tue9, tue9), 0);
	tr_calendar_free(&c);
}

static void test_over_weekend(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, OFFICE, NULL);
	gint64 fri16 = at(BERLIN, 2026, 6, 12, 16, 0);
	gint64 mon12 = at(BERLIN, 2026, 6, 15, 12, 0);
	assert_int_equal(tr_calendar_add_business(c, fri16, 4 * HOUR), mon12);
	assert_int_equal(tr_calendar_business_between(c, fri16, mon12), 4 * HOUR);
	gint64 sat11 = at(BERLIN, 2026, 6, 13, 11, 0);
	assert_false(tr_calendar_is_open(c, sat11));
	assert_int_equal(tr_calendar_next_open(c, sat11), at(BERLIN, 2026, 6, 15, 9, 0));
	tr_calendar_free(&c);
}

static void test_saturday_half_day(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, "mon-fri 09:00-17:00; sat 10:00-14:00", NULL);
	gint64 fri16 = at(BERLIN, 2026, 6, 12, 16, 0);
	assert_int_equal(tr_calendar_add_business(c, fri16, 4 * HOUR), at(BERLIN, 2026, 6, 13, 13, 0));
	assert_int_equal(tr_calendar_add_business(c, fri16, 6 * HOUR), at(BERLIN, 2026, 6, 15, 10, 0));
	assert_int_equal(tr_calendar_business_between(c, at(BERLIN, 2026, 6, 8, 0, 0),
	                                              at(BERLIN, 2026, 6, 15, 0, 0)), 44 * HOUR);
	tr_calendar_free(&c);
}

static void test_split_shift_and_merging(void **state)
{
	(void)state;
	/* Overlapping and touching intervals merge: Monday is 09:00-14:00. */
	tr_calendar *c = cal(BERLIN, "mon 09:00-12:00, 11:00-13:00; mon 13:00-14:00; "
	                             "tue 08:00-12:00,13:00-17:00", NULL);
	gint64 mon = at(BERLIN, 2026, 6, 8, 0, 0);
	assert_int_equal(tr_calendar_business_between(c, mon, mon + DAY), 5 * HOUR);
	gint64 tue11 = at(BERLIN, 2026, 6, 9, 11, 0);
	assert_int_equal(tr_calendar_add_business(c, tue11, 2 * HOUR), at(BERLIN, 2026, 6, 9, 14, 0));
	assert_false(tr_calendar_is_open(c, at(BERLIN, 2026, 6, 9, 12, 30)));
	assert_int_equal(tr_calendar_next_open(c, at(BERLIN, 2026, 6, 9, 12, 30)),
	                 at(BERLIN, 2026, 6, 9, 13, 0));
	tr_calendar_free(&c);
}

static void test_weekday_lists_and_wrap(void **state)
{
	(void)state;
	/* fri-mon wraps the week end; full names and commas work too. */
	tr_calendar *c = cal(BERLIN, "fri-mon 10:00-12:00; Wednesday, THU 10:00-11:00", NULL);
	gint64 mon = at(BERLIN, 2026, 6, 8, 0, 0);
	gint64 expect[7] = { 2, 0, 1, 1, 2, 2, 2 };
	for (int d = 0; d < 7; d++)
		assert_int_equal(tr_calendar_business_between(c, mon + d * DAY, mon + (d + 1) * DAY),
		                 expect[d] * HOUR);
	tr_calendar_free(&c);
}

/* ------------------------------------------------------------ holidays */

static void test_over_holiday(void **state)
{
	(void)state;
	tr_calendar *plain = cal(BERLIN, OFFICE, NULL);
	tr_calendar *c = cal(BERLIN, OFFICE, "2026-12-25, 2026-12-26");
	gint64 thu16 = at(BERLIN, 2026, 12, 24, 16, 0);
	assert_int_equal(tr_calendar_add_business(plain, thu16, 4 * HOUR),
	                 at(BERLIN, 2026, 12, 25, 12, 0));
	assert_int_equal(tr_calendar_add_business(c, thu16, 4 * HOUR),
	                 at(BERLIN, 2026, 12, 28, 12, 0));
	assert_false(tr_calendar_is_open(c, at(BERLIN, 2026, 12, 25, 10, 0)));
	assert_true(tr_calendar_is_open(c, at(BERLIN, 2026, 12, 24, 10, 0)));
	/* A full date holds for its year only: 2025-12-25 was a Thursday. */
	assert_true(tr_calendar_is_open(c, at(BERLIN, 2025, 12, 25, 10, 0)));
	assert_int_equal(tr_calendar_business_between(c, at(BERLIN, 2026, 12, 21, 0, 0),
	                                              at(BERLIN, 2026, 12, 28, 0, 0)), 32 * HOUR);
	tr_calendar_free(&plain);
	tr_calendar_free(&c);
}

static void test_recurring_holiday_and_year_end(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, OFFICE, "01-01, 12-25");
	/* Thursday 2026-12-31 → New Year (Fri) → weekend → Monday. */
	assert_int_equal(tr_calendar_add_business(c, at(BERLIN, 2026, 12, 31, 16, 0), 4 * HOUR),
	                 at(BERLIN, 2027, 1, 4, 12, 0));
	/* Friday 2028-12-29 → weekend → New Year (Mon) → Tuesday 2029-01-02. */
	assert_int_equal(tr_calendar_add_business(c, at(BERLIN, 2028, 12, 29, 16, 0), 4 * HOUR),
	                 at(BERLIN, 2029, 1, 2, 12, 0));
	for (int y = 2026; y <= 2040; y++)
		assert_false(tr_calendar_is_open(c, at(BERLIN, y, 12, 25, 12, 0)));
	tr_calendar_free(&c);
}

static void test_holiday_ranges(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, "mon-sun 00:00-24:00",
	                     "2026-12-24..2026-12-26; 12-31..01-01, 02-29");
	gint64 dec20 = at(BERLIN, 2026, 12, 20, 0, 0);
	/* Dec 20-31: 12 days minus 24, 25, 26, 31. */
	assert_int_equal(tr_calendar_business_between(c, dec20, at(BERLIN, 2027, 1, 1, 0, 0)), 8 * DAY);
	assert_false(tr_calendar_is_open(c, at(BERLIN, 2027, 1, 1, 12, 0)));
	assert_true(tr_calendar_is_open(c, at(BERLIN, 2027, 1, 2, 12, 0)));
	assert_false(tr_calendar_is_open(c, at(BERLIN, 2028, 2, 29, 12, 0)));
	assert_true(tr_calendar_is_open(c, at(BERLIN, 2028, 3, 1, 0, 0)));
	assert_true(tr_calendar_is_open(c, at(BERLIN, 2027, 12, 24, 12, 0)));
	tr_calendar_free(&c);
}

/* ------------------------------------------------------------ business days */

static void test_business_days(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, OFFICE, "2026-06-11");
	assert_int_equal(tr_calendar_business_day_seconds(c), 8 * HOUR);
	assert_int_equal(tr_calendar_business_days_to_seconds(c, 2), 16 * HOUR);
	/* Tuesday 15:00 + 2 business days = Thursday 15:00 … */
	gint64 tue15 = at(BERLIN, 2026, 6, 2, 15, 0);
	assert_int_equal(tr_calendar_add_business_days(c, tue15, 2), at(BERLIN, 2026, 6, 4, 15, 0));
	/* … unless Thursday is a holiday: then Friday 15:00. */
	gint64 tue15b = at(BERLIN, 2026, 6, 9, 15, 0);
	assert_int_equal(tr_calendar_add_business_days(c, tue15b, 2), at(BERLIN, 2026, 6, 12, 15, 0));
	/* 5 business days from Friday 10:00 = next Friday 10:00. */
	assert_int_equal(tr_calendar_add_business_days(c, at(BERLIN, 2026, 6, 19, 10, 0), 5),
	                 at(BERLIN, 2026, 6, 26, 10, 0));
	/* Received on Saturday: the clock starts Monday 09:00. */
	assert_int_equal(tr_calendar_add_business_days(c, at(BERLIN, 2026, 6, 20, 10, 0), 1),
	                 at(BERLIN, 2026, 6, 22, 17, 0));
	assert_int_equal(tr_calendar_add_business_days(c, tue15, 0), tue15);
	tr_calendar_free(&c);

	/* The most common day length wins: the Saturday half-day does not
	 * change a business day. */
	c = cal(BERLIN, "mon-fri 09:00-17:00; sat 10:00-14:00", NULL);
	assert_int_equal(tr_calendar_business_day_seconds(c), 8 * HOUR);
	tr_calendar_free(&c);
	c = cal(BERLIN, "mon-thu 08:00-17:00; fri 08:00-14:00", NULL);
	assert_int_equal(tr_calendar_business_day_seconds(c), 9 * HOUR);
	tr_calendar_free(&c);
	/* A tie goes to the longer day. */
	c = cal(BERLIN, "mon-tue 09:00-17:00; wed-thu 09:00-15:00", NULL);
	assert_int_equal(tr_calendar_business_day_seconds(c), 8 * HOUR);
	tr_calendar_free(&c);
	/* A whole day counts as 24 h for 24x7 and NULL. */
	c = cal(BERLIN, "24x7", NULL);
	assert_int_equal(tr_calendar_business_day_seconds(c), DAY);
	tr_calendar_free(&c);
	assert_int_equal(tr_calendar_business_day_seconds(NULL), DAY);
	assert_int_equal(tr_calendar_business_days_to_seconds(NULL, 3), 3 * DAY);
	assert_int_equal(tr_calendar_business_days_to_seconds(NULL, G_MAXUINT), (gint64)G_MAXUINT * DAY);
}

static void test_multi_day_deadline(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, OFFICE, "2026-12-25, 01-01");
	/* 40 open hours from Wednesday 2026-12-23 12:00: Wed 5, Thu 8, (Fri 25th
	 * holiday, weekend) Mon 8, Tue 8, Wed 8 → 37, then Thu 31st 09:00 + 3. */
	gint64 start = at(BERLIN, 2026, 12, 23, 12, 0);
	gint64 due = tr_calendar_add_business(c, start, 40 * HOUR);
	assert_int_equal(due, at(BERLIN, 2026, 12, 31, 12, 0));
	assert_int_equal(tr_calendar_business_between(c, start, due), 40 * HOUR);
	/* A year of business time, still O(days). */
	gint64 year = tr_calendar_business_between(c, at(BERLIN, 2027, 1, 1, 0, 0),
	                                           at(BERLIN, 2028, 1, 1, 0, 0));
	/* 2027 has 261 weekdays; 01-01 (Fri) and 12-25 (Sat) → 260 days. */
	assert_int_equal(year, 260 * 8 * HOUR);
	tr_calendar_free(&c);
}

/* ------------------------------------------------------------ DST, zones */

static void test_dst_spring_forward_berlin(void **state)
{
	(void)state;
	/* 2026-03-29: 02:00 CET → 03:00 CEST. */
	tr_calendar *c = cal(BERLIN, "sun 01:00-04:00; mon-fri 09:00-17:00", NULL);
	assert_int_equal(tr_calendar_business_between(c, at(BERLIN, 2026, 3, 28, 0, 0),
	                                              at(BERLIN, 2026, 3, 30, 0, 0)), 2 * HOUR);
	assert_int_equal(tr_calendar_business_between(c, at(BERLIN, 2026, 3, 21, 0, 0),
	                                              at(BERLIN, 2026, 3, 23, 0, 0)), 3 * HOUR);
	/* 90 open minutes from Sunday 01:00: 01:00-02:00 CET, then 03:00-03:30 CEST. */
	assert_int_equal(tr_calendar_add_business(c, at(BERLIN, 2026, 3, 29, 1, 0), 90 * 60),
	                 at(BERLIN, 2026, 3, 29, 3, 30));
	assert_local(c, at(BERLIN, 2026, 3, 29, 3, 30), "Sunday 03:30 CEST");
	/* Across the change: Friday 16:00 CET + 4 h = Friday 1 h + the short
	 * Sunday's 2 h + Monday 1 h = Monday 10:00 CEST. */
	gint64 fri16 = at(BERLIN, 2026, 3, 27, 16, 0);
	gint64 due = tr_calendar_add_business(c, fri16, 4 * HOUR);
	assert_int_equal(due, at(BERLIN, 2026, 3, 30, 10, 0));
	assert_local(c, due, "Monday 10:00 CEST");
	tr_calendar_free(&c);

	/* A whole-day calendar lasts 23 hours that Sunday. */
	c = cal(BERLIN, "sun 00:00-24:00", NULL);
	assert_int_equal(tr_calendar_business_between(c, at(BERLIN, 2026, 3, 29, 0, 0),
	                                              at(BERLIN, 2026, 3, 30, 0, 0)), 23 * HOUR);
	assert_int_equal(tr_calendar_add_business(c, at(BERLIN, 2026, 3, 28, 12, 0), 23 * HOUR),
	                 at(BERLIN, 2026, 3, 30, 0, 0));
	tr_calendar_free(&c);
}

static void test_dst_fall_back_berlin(void **state)
{
	(void)state;
	/* 2026-10-25: 03:00 CEST → 02:00 CET, 02:00-03:00 happens twice. */
	tr_calendar *c = cal(BERLIN, "sun 01:00-04:00", NULL);
	gint64 sat = at(BERLIN, 2026, 10, 24, 0, 0);
	assert_int_equal(tr_calendar_business_between(c, sat, sat + 3 * DAY), 4 * HOUR);
	/* 150 minutes from 01:00 CEST: 01:00 CEST → 03:00 CEST = 02:00 CET → 02:30 CET. */
	gint64 start = at(BERLIN, 2026, 10, 25, 1, 0);
	gint64 due = tr_calendar_add_business(c, start, 150 * 60);
	assert_int_equal(due, start + 150 * 60);
	assert_local(c, due, "Sunday 02:30 CET");
	tr_calendar_free(&c);

	/* An interval around the repeated hour is open during both passes:
	 * 02:00-02:30 local = 02:00-02:30 CEST and 02:00-02:30 CET. */
	c = cal(BERLIN, "sun 02:00-02:30", NULL);
	gint64 cest_0200 = at(BERLIN, 2026, 10, 25, 1, 0) + HOUR;
	gint64 cet_0200 = cest_0200 + HOUR;
	assert_int_equal(tr_calendar_business_between(c, sat, sat + 2 * DAY), HOUR);
	assert_true(tr_calendar_is_open(c, cest_0200 + 60));
	assert_false(tr_calendar_is_open(c, cest_0200 + 45 * 60));
	assert_true(tr_calendar_is_open(c, cet_0200 + 60));
	assert_int_equal(tr_calendar_add_business(c, cest_0200, 45 * 60), cet_0200 + 15 * 60);
	assert_int_equal(tr_calendar_next_open(c, cest_0200 + 45 * 60), cet_0200);
	tr_calendar_free(&c);

	c = cal(BERLIN, "sun 00:00-24:00", NULL);
	assert_int_equal(tr_calendar_business_between(c, at(BERLIN, 2026, 10, 25, 0, 0),
	                                              at(BERLIN, 2026, 10, 26, 0, 0)), 25 * HOUR);
	tr_calendar_free(&c);
}

#define NEW_YORK "America/New_York"

static void test_dst_new_york(void **state)
{
	(void)state;
	tr_calendar *c = cal(NEW_YORK, "sun 00:00-24:00", NULL);
	/* 2026-03-08 has 23 hours, 2026-11-01 has 25. */
	assert_int_equal(tr_calendar_business_between(c, at(NEW_YORK, 2026, 3, 7, 12, 0),
	                                              at(NEW_YORK, 2026, 3, 9, 12, 0)), 23 * HOUR);
	assert_int_equal(tr_calendar_business_between(c, at(NEW_YORK, 2026, 10, 31, 12, 0),
	                                              at(NEW_YORK, 2026, 11, 2, 12, 0)), 25 * HOUR);
	gint64 nov1 = at(NEW_YORK, 2026, 11, 1, 0, 0);
	assert_int_equal(tr_calendar_add_business(c, nov1, 25 * HOUR), at(NEW_YORK, 2026, 11, 2, 0, 0));
	tr_calendar_free(&c);

	/* The skipped hour never opens: next opening is a week later. */
	c = cal(NEW_YORK, "sun 02:00-03:00", NULL);
	assert_int_equal(tr_calendar_next_open(c, at(NEW_YORK, 2026, 3, 7, 12, 0)),
	                 at(NEW_YORK, 2026, 3, 15, 2, 0));
	tr_calendar_free(&c);

	/* The repeated hour (01:00-02:00 on 2026-11-01) counts twice. */
	c = cal(NEW_YORK, "sun 01:00-02:00", NULL);
	gint64 edt_0100 = G_GINT64_CONSTANT(1793509200); /* 05:00Z */
	assert_int_equal(tr_calendar_next_open(c, nov1), edt_0100);
	assert_int_equal(tr_calendar_add_business(c, nov1, 90 * 60), edt_0100 + 90 * 60);
	assert_local(c, edt_0100 + 90 * 60, "Sunday 01:30 EST");
	tr_calendar_free(&c);

	/* Office hours across the change: Friday 16:00 EST + 2 h = Monday 10:00 EDT. */
	c = cal(NEW_YORK, OFFICE, NULL);
	gint64 due = tr_calendar_add_business(c, at(NEW_YORK, 2026, 3, 6, 16, 0), 2 * HOUR);
	assert_int_equal(due, at(NEW_YORK, 2026, 3, 9, 10, 0));
	assert_local(c, due, "Monday 10:00 EDT");
	tr_calendar_free(&c);
}

#define KOLKATA "Asia/Kolkata"

static void test_kolkata_half_hour_zone(void **state)
{
	(void)state;
	tr_calendar *c = cal(KOLKATA, "mon-fri 09:30-18:00", "01-26, 08-15");
	gint64 mon17 = at(KOLKATA, 2026, 6, 8, 17, 0);
	gint64 due = tr_calendar_add_business(c, mon17, 2 * HOUR);
	assert_int_equal(due, at(KOLKATA, 2026, 6, 9, 10, 30));
	assert_int_equal(due, G_GINT64_CONSTANT(1780981200)); /* 2026-06-09T05:00:00Z */
	assert_local(c, due, "Tuesday 10:30 IST");
	/* Opening at 09:30 IST is 04:00Z. */
	assert_false(tr_calendar_is_open(c, G_GINT64_CONSTANT(1780977600) - 1));
	assert_true(tr_calendar_is_open(c, G_GINT64_CONSTANT(1780977600)));
	/* Independence Day 2025 was a Friday. */
	assert_int_equal(tr_calendar_add_business(c, at(KOLKATA, 2025, 8, 14, 17, 0), 2 * HOUR),
	                 at(KOLKATA, 2025, 8, 18, 10, 30));
	assert_int_equal(tr_calendar_business_day_seconds(c), 8 * HOUR + 30 * 60);
	tr_calendar_free(&c);
}

/* ------------------------------------------------------------ 24x7, empty */

static void test_always_open(void **state)
{
	(void)state;
	gint64 t = at(BERLIN, 2026, 12, 24, 22, 0);
	/* NULL means 24x7 in every function. */
	assert_true(tr_calendar_is_open(NULL, t));
	assert_int_equal(tr_calendar_next_open(NULL, t), t);
	assert_int_equal(tr_calendar_add_business(NULL, t, 5 * HOUR), t + 5 * HOUR);
	assert_int_equal(tr_calendar_business_between(NULL, t, t + 77), 77);
	assert_int_equal(tr_calendar_add_business_days(NULL, t, 2), t + 2 * DAY);
	assert_string_equal(tr_calendar_get_name(NULL), "24x7");
	assert_string_equal(tr_calendar_get_timezone(NULL), "UTC");
	assert_false(tr_calendar_is_never_open(NULL));
	assert_int_equal(tr_calendar_add_business(NULL, TR_CALENDAR_TIME_MAX, 1), TR_CALENDAR_NEVER);
	assert_int_equal(tr_calendar_add_business(NULL, t, G_MAXINT64), TR_CALENDAR_NEVER);

	/* A configured 24x7 calendar honours its holidays; wall-clock time
	 * otherwise, DST included (a 23-hour Sunday stays 23 hours). */
	tr_calendar *c = cal(BERLIN, "24x7", "12-25");
	assert_int_equal(tr_calendar_add_business(c, t, 5 * HOUR), at(BERLIN, 2026, 12, 26, 3, 0));
	assert_int_equal(tr_calendar_business_between(c, at(BERLIN, 2026, 3, 29, 0, 0),
	                                              at(BERLIN, 2026, 3, 30, 0, 0)), 23 * HOUR);
	tr_calendar_free(&c);
	c = cal(BERLIN, "always", NULL);
	assert_int_equal(tr_calendar_add_business(c, t, 5 * HOUR), t + 5 * HOUR);
	assert_int_equal(tr_calendar_business_between(c, t, t + 3 * DAY), 3 * DAY);
	tr_calendar_free(&c);
}

static void test_empty_schedule(void **state)
{
	(void)state;
	gint64 t = at(BERLIN, 2026, 6, 9, 10, 0);
	const char *never[] = { "none", NULL };
	for (int i = 0; i < 2; i++) {
		tr_calendar *c = cal(BERLIN, never[i], "2026-12-25");
		assert_true(tr_calendar_is_never_open(c));
		assert_false(tr_calendar_is_open(c, t));
		assert_int_equal(tr_calendar_next_open(c, t), TR_CALENDAR_NEVER);
		assert_int_equal(tr_calendar_add_business(c, t, HOUR), TR_CALENDAR_NEVER);
		assert_int_equal(tr_calendar_add_business_days(c, t, 1), TR_CALENDAR_NEVER);
		assert_int_equal(tr_calendar_business_between(c, t, t + 365 * DAY), 0);
		assert_int_equal(tr_calendar_business_day_seconds(c), 0);
		assert_null(tr_calendar_format_local(c, TR_CALENDAR_NEVER, NULL));
		tr_calendar_free(&c);
	}
	/* Yearly holidays covering every date close the calendar for good. */
	tr_calendar *c = cal(BERLIN, OFFICE, "01-01..12-31");
	assert_true(tr_calendar_is_never_open(c));
	assert_int_equal(tr_calendar_add_business(c, t, 1), TR_CALENDAR_NEVER);
	tr_calendar_free(&c);
}

static void test_rare_opening_is_found(void **state)
{
	(void)state;
	/* Open only on Mondays that are 29 February: the next one is 2044. */
	tr_calendar *c = cal(BERLIN, "mon 09:00-17:00", "01-01..02-28, 03-01..12-31");
	assert_false(tr_calendar_is_never_open(c));
	gint64 t = at(BERLIN, 2026, 6, 9, 10, 0);
	gint64 start = g_get_monotonic_time();
	assert_int_equal(tr_calendar_next_open(c, t), at(BERLIN, 2044, 2, 29, 9, 0));
	assert_int_equal(tr_calendar_add_business(c, t, 9 * HOUR), at(BERLIN, 2072, 2, 29, 10, 0));
	/* 2044, 2072 and 2112 are the only ones within the 100-year horizon … */
	assert_int_equal(tr_calendar_business_between(c, t, at(BERLIN, 2100, 1, 1, 0, 0)), 16 * HOUR);
	assert_int_equal(tr_calendar_add_business(c, t, 24 * HOUR), at(BERLIN, 2112, 2, 29, 17, 0));
	/* … so more than three days' worth is beyond it (the next is 2140). */
	assert_int_equal(tr_calendar_add_business(c, t, 24 * HOUR + 1), TR_CALENDAR_NEVER);
	assert_true(g_get_monotonic_time() - start < 2 * G_USEC_PER_SEC);
	tr_calendar_free(&c);
}

static void test_range_limits(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, OFFICE, NULL);
	/* Ends beyond the supported range are clamped; results beyond it are NEVER. */
	assert_int_equal(tr_calendar_business_between(c, -1000 * DAY, 0), 0);
	assert_int_equal(tr_calendar_add_business(c, TR_CALENDAR_TIME_MAX - DAY, 100 * HOUR),
	                 TR_CALENDAR_NEVER);
	assert_int_equal(tr_calendar_add_business(c, G_MININT64, 0),
	                 at(BERLIN, 1970, 1, 1, 9, 0));
	assert_int_equal(tr_calendar_add_business(c, G_MAXINT64, 1), TR_CALENDAR_NEVER);
	/* 8000 years of calendar still finish quickly. */
	gint64 start = g_get_monotonic_time();
	gint64 all = tr_calendar_business_between(c, G_MININT64, G_MAXINT64);
	assert_true(all > 0);
	assert_true(g_get_monotonic_time() - start < 10 * G_USEC_PER_SEC);
	tr_calendar_free(&c);
}

/* ------------------------------------------------------------ properties */

struct reference {
	const char *zone;
	const char *hours;
	const char *holidays;
};

/* An independent model: is the minute starting at t open?  Uses GDateTime
 * for the local time and hard-codes the schedule of the calendar under test
 * ("mon-fri 09:00-17:00; sat 10:00-14:00; sun 01:30-03:30", holidays
 * 2026-12-25 and 01-01). */
static gboolean reference_minute_open(GTimeZone *tz, gint64 t)
{
	GDateTime *utc = g_date_time_new_from_unix_utc(t);
	GDateTime *dt = g_date_time_to_timezone(utc, tz);
	int wd = g_date_time_get_day_of_week(dt);
	int minute = g_date_time_get_hour(dt) * 60 + g_date_time_get_minute(dt);
	int y = g_date_time_get_year(dt), m = g_date_time_get_month(dt),
	    d = g_date_time_get_day_of_month(dt);
	g_date_time_unref(dt);
	g_date_time_unref(utc);
	if ((y == 2026 && m == 12 && d == 25) || (m == 1 && d == 1))
		return FALSE;
	if (wd <= 5)
		return minute >= 9 * 60 && minute < 17 * 60;
	if (wd == 6)
		return minute >= 10 * 60 && minute < 14 * 60;
	return minute >= 90 && minute < 210;
}

static void test_matches_minute_model(void **state)
{
	(void)state;
	const char *zones[] = { BERLIN, NEW_YORK, KOLKATA };
	for (size_t z = 0; z < G_N_ELEMENTS(zones); z++) {
		tr_calendar *c = cal(zones[z], "mon-fri 09:00-17:00; sat 10:00-14:00; "
		                               "sun 01:30-03:30", "2026-12-25, 01-01");
		GTimeZone *tz = g_time_zone_new_identifier(zones[z]);
		/* Windows around both DST changes of each zone and the year end. */
		gint64 windows[] = {
			at(zones[z], 2026, 3, 5, 0, 0), at(zones[z], 2026, 3, 25, 0, 0),
			at(zones[z], 2026, 10, 22, 0, 0), at(zones[z], 2026, 10, 29, 0, 0),
			at(zones[z], 2026, 12, 22, 0, 0),
		};
		for (size_t w = 0; w < G_N_ELEMENTS(windows); w++) {
			gint64 from = windows[w], to = from + 12 * DAY, model = 0;
			for (gint64 t = from; t < to; t += 60) {
				gboolean open = reference_minute_open(tz, t);
				if (open != tr_calendar_is_open(c, t))
					fail_msg("%s: is_open(%" G_GINT64_FORMAT ") disagrees", zones[z], t);
				model += open ? 60 : 0;
			}
			assert_int_equal(tr_calendar_business_between(c, from, to), model);
		}
		g_time_zone_unref(tz);
		tr_calendar_free(&c);
	}
}

static void test_between_inverts_add(void **state)
{
	(void)state;
	const struct reference cals[] = {
		{ BERLIN, OFFICE, NULL },
		{ BERLIN, "mon-fri 09:00-12:00, 13:00-17:00; sat 10:00-14:00; sun 01:00-04:00",
		  "2026-12-24..2026-12-26, 01-01, 05-01" },
		{ NEW_YORK, "mon-fri 08:00-20:00; sun 00:30-02:30", "07-04, 2026-11-26" },
		{ KOLKATA, "mon-sat 09:30-18:30", "01-26, 08-15, 10-02" },
		{ "UTC", "24x7", "12-25" },
		{ "Australia/Lord_Howe", "mon-sun 01:00-03:00", NULL }, /* 30-minute DST */
	};
	GRand *rand = g_rand_new_with_seed(20260609);
	gint64 lo = at("UTC", 2025, 1, 1, 0, 0), hi = at("UTC", 2029, 1, 1, 0, 0);
	for (size_t i = 0; i < G_N_ELEMENTS(cals); i++) {
		tr_calendar *c = cal(cals[i].zone, cals[i].hours, cals[i].holidays);
		gint64 day = tr_calendar_business_day_seconds(c);
		for (int n = 0; n < 400; n++) {
			gint64 start = lo + (gint64)(g_rand_double(rand) * (double)(hi - lo));
			gint64 seconds = (gint64)(g_rand_double(rand) * (double)(10 * day));
			if (n % 10 == 0)
				seconds = 0;
			gint64 due = tr_calendar_add_business(c, start, seconds);
			assert_true(due != TR_CALENDAR_NEVER);
			assert_true(due >= start);
			assert_int_equal(tr_calendar_business_between(c, start, due), seconds);
			/* due is the earliest such instant. */
			if (seconds > 0) {
				assert_int_equal(tr_calendar_business_between(c, start, due - 1), seconds - 1);
				assert_true(tr_calendar_is_open(c, due - 1));
			} else {
				assert_int_equal(due, tr_calendar_next_open(c, start));
				assert_true(tr_calendar_is_open(c, due));
			}
			/* The other way round, and additivity. */
			gint64 b = start + (gint64)(g_rand_double(rand) * (double)(20 * DAY));
			gint64 open = tr_calendar_business_between(c, start, b);
			gint64 back = tr_calendar_add_business(c, start, open);
			assert_true(back <= b || open == 0);
			assert_int_equal(tr_calendar_business_between(c, back, b), 0);
			gint64 mid = start + (b - start) / 3;
			assert_int_equal(tr_calendar_business_between(c, start, mid) +
			                 tr_calendar_business_between(c, mid, b), open);
		}
		tr_calendar_free(&c);
	}
	g_rand_free(rand);
}

/* ------------------------------------------------------------ config */

static GKeyFile *keyfile(const char *text)
{
	GKeyFile *kf = g_key_file_new();
	GError *error = NULL;
	/* KEEP_TRANSLATIONS: otherwise GKeyFile drops "key[xx]" while loading. */
	if (!g_key_file_load_from_data(kf, text, strlen(text), G_KEY_FILE_KEEP_TRANSLATIONS,
	                               &error))
		fail_msg("key file: %s", error->message);
	return kf;
}

static void test_keyfile_example(void **state)
{
	(void)state;
	GKeyFile *kf = keyfile("[calendar emea]\n"
	                       "timezone = Europe/Berlin\n"
	                       "hours = mon-fri 09:00-17:00; sat 10:00-14:00\n"
	                       "holidays = 2026-12-25, 2026-12-26, 01-01\n"
	                       "\n"
	                       "[calendar noc]\n"
	                       "timezone = UTC\n"
	                       "hours = 24x7\n");
	GError *error = NULL;
	tr_calendar *c = tr_calendar_from_keyfile(kf, "calendar emea", &error);
	assert_non_null(c);
	assert_null(error);
	assert_string_equal(tr_calendar_get_name(c), "emea");
	assert_string_equal(tr_calendar_get_timezone(c), BERLIN);
	assert_false(tr_calendar_is_open(c, at(BERLIN, 2026, 12, 25, 12, 0)));
	assert_true(tr_calendar_is_open(c, at(BERLIN, 2026, 12, 19, 12, 0)));
	assert_false(tr_calendar_is_open(c, at(BERLIN, 2026, 12, 26, 12, 0))); /* Saturday holiday */
	assert_false(tr_calendar_is_open(c, at(BERLIN, 2030, 1, 1, 12, 0)));
	tr_calendar_free(&c);
	c = tr_calendar_from_keyfile(kf, "calendar noc", &error);
	assert_non_null(c);
	assert_string_equal(tr_calendar_get_name(c), "noc");
	assert_int_equal(tr_calendar_add_business(c, 1000000000, 77), 1000000077);
	tr_calendar_free(&c);
	g_key_file_free(kf);
}

struct bad_config {
	const char *timezone, *hours, *holidays, *extra;
	int code;
	const char *message;
};

static void test_parse_errors(void **state)
{
	(void)state;
	const struct bad_config bad[] = {
		{ BERLIN, "mon-fry 09:00-17:00", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: 'mon-fry': unknown weekday" },
		{ BERLIN, "mon, xyz 09:00-17:00", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: 'xyz': unknown weekday" },
		{ BERLIN, "mon,,tue 09:00-17:00", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: 'mon,,tue': missing weekday" },
		{ BERLIN, "09:00-17:00", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: '09:00-17:00': missing weekday" },
		{ BERLIN, "mon-fri 09:00-17:00; sat", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: 'sat': missing hours" },
		{ BERLIN, "mon 09:00", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: '09:00': bad time range" },
		{ BERLIN, "mon 9:0-17:00", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: '9:0': bad time" },
		{ BERLIN, "mon 09:00-25:00", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: '25:00': bad time" },
		{ BERLIN, "mon 09:00-24:30", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: '24:30': bad time" },
		{ BERLIN, "mon 09:60-17:00", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: '09:60': bad time" },
		{ BERLIN, "mon 09:00-17:00 pm", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: '17:00 pm': bad time" },
		{ BERLIN, "mon 17:00 - 09:00", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: '17:00 - 09:00': end is not after start" },
		{ BERLIN, "mon 09:00-09:00", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: '09:00-09:00': end is not after start" },
		{ BERLIN, "mon 09:00-17:00,", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: '': bad time range" },
		{ BERLIN, "", NULL, NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: hours: empty" },
		{ BERLIN, OFFICE, "2026-12-25, xmas", NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: holidays: 'xmas': bad date (expected YYYY-MM-DD or MM-DD)" },
		{ BERLIN, OFFICE, "2026-02-29", NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: holidays: '2026-02-29': no such date" },
		{ BERLIN, OFFICE, "13-01", NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: holidays: '13-01': no such date" },
		{ BERLIN, OFFICE, "0000-01-01", NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: holidays: '0000-01-01': no such date" },
		{ BERLIN, OFFICE, "2026-1-1", NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: holidays: '2026-1-1': bad date" },
		{ BERLIN, OFFICE, "2026-12-31..2026-12-24", NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: holidays: '2026-12-31..2026-12-24': range ends before it starts" },
		{ BERLIN, OFFICE, "2026-12-24..12-31", NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: holidays: '2026-12-24..12-31': both ends of a range need the same form" },
		{ BERLIN, OFFICE, "2026-01-01..2027-06-01", NULL, TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: holidays: '2026-01-01..2027-06-01': range longer than 366 days" },
		{ "Europe/Berln", OFFICE, NULL, NULL, TR_CALENDAR_ERROR_TIMEZONE,
		  "calendar emea: timezone: 'Europe/Berln': unknown time zone" },
		{ "/etc/localtime", OFFICE, NULL, NULL, TR_CALENDAR_ERROR_TIMEZONE,
		  "calendar emea: timezone: '/etc/localtime': unknown time zone" },
		{ "../zoneinfo/UTC", OFFICE, NULL, NULL, TR_CALENDAR_ERROR_TIMEZONE,
		  "calendar emea: timezone: '../zoneinfo/UTC': unknown time zone" },
		{ "Europe/./Berlin", OFFICE, NULL, NULL, TR_CALENDAR_ERROR_TIMEZONE,
		  "calendar emea: timezone: 'Europe/./Berlin': unknown time zone" },
		{ ":UTC", OFFICE, NULL, NULL, TR_CALENDAR_ERROR_TIMEZONE,
		  "calendar emea: timezone: ':UTC': unknown time zone" },
		{ "", OFFICE, NULL, NULL, TR_CALENDAR_ERROR_TIMEZONE,
		  "calendar emea: timezone: '': unknown time zone" },
		{ NULL, OFFICE, NULL, NULL, TR_CALENDAR_ERROR_MISSING,
		  "calendar emea: timezone: missing" },
		{ BERLIN, NULL, NULL, NULL, TR_CALENDAR_ERROR_MISSING,
		  "calendar emea: hours: missing" },
		{ BERLIN, OFFICE, NULL, "holiday = 01-01\n", TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: 'holiday': unknown key" },
		{ BERLIN, OFFICE, NULL, "hours[de] = mo-fr\n", TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: 'hours[de]': unknown key" },
		/* GKeyFile's own error (message from GLib, untranslated in tests). */
		{ BERLIN, OFFICE, NULL, "holidays = \\q\n", TR_CALENDAR_ERROR_INVALID,
		  "calendar emea: holidays: Key file contains" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		GString *text = g_string_new("[calendar emea]\n");
		if (bad[i].timezone != NULL)
			g_string_append_printf(text, "timezone = %s\n", bad[i].timezone);
		if (bad[i].hours != NULL)
			g_string_append_printf(text, "hours = %s\n", bad[i].hours);
		if (bad[i].holidays != NULL)
			g_string_append_printf(text, "holidays = %s\n", bad[i].holidays);
		if (bad[i].extra != NULL)
			g_string_append(text, bad[i].extra);
		GKeyFile *kf = keyfile(text->str);
		GError *error = NULL;
		tr_calendar *c = tr_calendar_from_keyfile(kf, "calendar emea", &error);
		if (c != NULL || error == NULL)
			fail_msg("case %zu accepted:\n%s", i, text->str);
		if (!g_str_has_prefix(error->message, bad[i].message))
			fail_msg("case %zu: got \"%s\", expected \"%s…\"", i, error->message,
			         bad[i].message);
		assert_true(error->domain == TR_CALENDAR_ERROR);
		assert_int_equal(error->code, bad[i].code);
		g_error_free(error);
		g_key_file_free(kf);
		g_string_free(text, TRUE);
	}

	/* The programmatic constructor reports the same way. */
	GError *error = NULL;
	assert_null(tr_calendar_new("apac", "Asia/Kolkata", "mon-fri 9:00-18:00; sun 10-14", NULL, &error));
	assert_string_equal(error->message, "calendar apac: hours: '10': bad time "
	                    "(expected HH:MM between 00:00 and 24:00)");
	g_clear_error(&error);

	/* A missing group. */
	GKeyFile *kf = keyfile("[other]\nx = 1\n");
	assert_null(tr_calendar_from_keyfile(kf, "calendar emea", &error));
	assert_string_equal(error->message, "calendar emea: no such group");
	assert_int_equal(error->code, TR_CALENDAR_ERROR_MISSING);
	g_clear_error(&error);
	g_key_file_free(kf);
}

static void test_parse_limits_and_forms(void **state)
{
	(void)state;
	GError *error = NULL;
	/* 48 intervals per day are fine, the 49th is not. */
	GString *hours = g_string_new("mon ");
	for (int i = 0; i < 48; i++)
		g_string_append_printf(hours, "%s%02d:%02d-%02d:%02d", i ? "," : "",
		                       i / 2, (i % 2) * 30, i / 2, (i % 2) * 30 + 10);
	tr_calendar *c = tr_calendar_new("x", "UTC", hours->str, NULL, &error);
	assert_non_null(c);
	assert_int_equal(tr_calendar_business_day_seconds(c), 48 * 600);
	tr_calendar_free(&c);
	g_string_append(hours, "; mon 23:50-23:55");
	assert_null(tr_calendar_new("x", "UTC", hours->str, NULL, &error));
	assert_non_null(strstr(error->message, "more than 48 intervals on Monday"));
	g_clear_error(&error);
	g_string_free(hours, TRUE);

	/* Whitespace, case, H:MM, trailing separators, fixed offsets, POSIX rules. */
	c = tr_calendar_new("x", "+05:30", "  MON - Fri  9:00 - 17:00 ;; ", " 2026-12-25 ;, ", &error);
	assert_non_null(c);
	assert_int_equal(tr_calendar_business_day_seconds(c), 8 * HOUR);
	tr_calendar_free(&c);
	c = tr_calendar_new("x", "CET-1CEST,M3.5.0,M10.5.0/3", "sun 00:00-24:00", NULL, &error);
	assert_non_null(c);
	assert_int_equal(tr_calendar_business_between(c, at(BERLIN, 2026, 3, 29, 0, 0),
	                                              at(BERLIN, 2026, 3, 30, 0, 0)), 23 * HOUR);
	tr_calendar_free(&c);

	/* Too many holiday dates. */
	GString *many = g_string_new("");
	for (int y = 2000; y < 2012; y++)
		g_string_append_printf(many, "%d-01-01..%d-12-31,", y, y);
	assert_null(tr_calendar_new("x", "UTC", OFFICE, many->str, &error));
	assert_non_null(strstr(error->message, "more than 4096 holiday dates"));
	g_clear_error(&error);
	g_string_free(many, TRUE);

	/* The time zone helper on its own. */
	GTimeZone *tz = tr_calendar_timezone_new(KOLKATA, &error);
	assert_non_null(tz);
	g_time_zone_unref(tz);
	assert_null(tr_calendar_timezone_new("Mars/Olympus_Mons", &error));
	assert_int_equal(error->code, TR_CALENDAR_ERROR_TIMEZONE);
	g_clear_error(&error);
	assert_null(tr_calendar_timezone_new(NULL, &error));
	g_clear_error(&error);
}

/* ------------------------------------------------------------ formatting */

static void test_format_local(void **state)
{
	(void)state;
	tr_calendar *c = cal(BERLIN, OFFICE, NULL);
	assert_local(c, at(BERLIN, 2026, 1, 5, 9, 0), "Monday 09:00 CET");
	assert_local(c, at(BERLIN, 2026, 6, 12, 16, 45), "Friday 16:45 CEST");
	char *s = tr_calendar_format_local(c, at(BERLIN, 2026, 1, 5, 9, 0), NEW_YORK);
	assert_string_equal(s, "Monday 03:00 EST");
	g_free(s);
	s = tr_calendar_format_local(c, at(BERLIN, 2026, 1, 5, 9, 0), KOLKATA);
	assert_string_equal(s, "Monday 13:30 IST");
	g_free(s);
	s = tr_calendar_format_local(c, at(BERLIN, 2026, 1, 4, 0, 30), "UTC");
	assert_string_equal(s, "Saturday 23:30 UTC");
	g_free(s);
	assert_null(tr_calendar_format_local(c, 0, "Not/A_Zone"));
	assert_null(tr_calendar_format_local(c, TR_CALENDAR_NEVER, NULL));
	assert_null(tr_calendar_format_local(c, -1, NULL));
	s = tr_calendar_format_local(NULL, 0, NULL);
	assert_string_equal(s, "Thursday 00:00 UTC");
	g_free(s);
	tr_calendar_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_inside_hours),
		cmocka_unit_test(test_start_before_hours),
		cmocka_unit_test(test_start_after_hours),
		cmocka_unit_test(test_closing_time_boundary),
		cmocka_unit_test(test_over_weekend),
		cmocka_unit_test(test_saturday_half_day),
		cmocka_unit_test(test_split_shift_and_merging),
		cmocka_unit_test(test_weekday_lists_and_wrap),
		cmocka_unit_test(test_over_holiday),
		cmocka_unit_test(test_recurring_holiday_and_year_end),
		cmocka_unit_test(test_holiday_ranges),
		cmocka_unit_test(test_business_days),
		cmocka_unit_test(test_multi_day_deadline),
		cmocka_unit_test(test_dst_spring_forward_berlin),
		cmocka_unit_test(test_dst_fall_back_berlin),
		cmocka_unit_test(test_dst_new_york),
		cmocka_unit_test(test_kolkata_half_hour_zone),
		cmocka_unit_test(test_always_open),
		cmocka_unit_test(test_empty_schedule),
		cmocka_unit_test(test_rare_opening_is_found),
		cmocka_unit_test(test_range_limits),
		cmocka_unit_test(test_matches_minute_model),
		cmocka_unit_test(test_between_inverts_add),
		cmocka_unit_test(test_keyfile_example),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_limits_and_forms),
		cmocka_unit_test(test_format_local),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

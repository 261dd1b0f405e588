/* calendar.c — business-hours calendars, see calendar.h */
#include "core/calendar.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SECONDS_PER_DAY G_GINT64_CONSTANT(86400)
/* GDate's Julian day number of 1970-01-01 (day 1 is 0001-01-01). */
#define JULIAN_OF_EPOCH 719163
/* The zone table covers instants before 2100-01-01T00:00:00Z; later ones
 * ask GLib (the same answers, only slower). */
#define ZONE_TABLE_END G_GINT64_CONSTANT(4102444800)
/* Identifiers longer than this are not time zones. */
#define TZ_IDENTIFIER_MAX 128

struct span {
	gint32 start;  /* seconds after local midnight, 0..86399 */
	gint32 end;    /* exclusive, start < end <= 86400 */
};

struct tr_calendar {
	char *name;
	char *timezone_id;
	GTimeZone *tz;
	/* Monday = 0 … Sunday = 6; sorted, merged, non-adjacent.  One spare
	 * slot lets an insertion happen before the limit is checked. */
	struct span spans[7][TR_CALENDAR_MAX_SPANS_PER_DAY + 1];
	guint n_spans[7];
	GArray *holidays;       /* gint32 days since 1970-01-01, sorted, unique */
	guint32 yearly[13];     /* bit d of yearly[m]: every m-d is a holiday */
	gboolean has_yearly;
	gboolean always_open;   /* every second of every day, no holidays */
	gboolean never_open;
	gint64 business_day_seconds;
	/* The zone's UTC offsets over [TR_CALENDAR_TIME_MIN, ZONE_TABLE_END),
	 * one entry per GTimeZone interval: zone_offset[k] holds from
	 * zone_from[k] until zone_from[k + 1] (ZONE_TABLE_END after the last).
	 * Learnt from GLib once (zone_table_build); n_zone is 0 for calendars
	 * that never look at their zone. */
	gint64 *zone_from;
	gint32 *zone_offset;
	guint n_zone;
};

static const char *const weekday_names[7] = {
	"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
};

G_DEFINE_QUARK(tr-calendar-error-quark, tr_calendar_error)

static void fail(GError **error, int code, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Sets *error to "PREFIX: <formatted>". */
static void fail(GError **error, int code, const char *prefix, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, TR_CALENDAR_ERROR, code, "%s: %s", prefix, msg);
	g_free(msg);
}

static gint64 floor_div(gint64 a, gint64 b)
{
	gint64 q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static gint64 clamp_time(gint64 t)
{
	return CLAMP(t, TR_CALENDAR_TIME_MIN, TR_CALENDAR_TIME_MAX);
}

/* 1970-01-01 was a Thursday (index 3 with Monday = 0). */
static int weekday_of_day(gint64 day)
{
	return (int)(((day % 7) + 7 + 3) % 7);
}

/* ---------------------------------------------------------------- time zones */

static gboolean tz_identifier_is_safe(const char *id)
{
	size_t len = strlen(id);
	if (len == 0 || len > TZ_IDENTIFIER_MAX || id[0] == '/' || id[0] == ':')
		return FALSE;
	for (const char *p = id; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && strchr("/_+-.:,<>", *p) == NULL)
			return FALSE;
	}
	/* GLib reads the identifier as a path under /usr/share/zoneinfo:
	 * no empty, "." or ".." components. */
	const char *comp = id;
	for (;;) {
		const char *slash = strchr(comp, '/');
		size_t n = slash != NULL ? (size_t)(slash - comp) : strlen(comp);
		if (n == 0 || (n == 1 && comp[0] == '.') ||
		    (n == 2 && comp[0] == '.' && comp[1] == '.'))
			return FALSE;
		if (slash == NULL)
			break;
		comp = slash + 1;
	}
	return TRUE;
}

GTimeZone *tr_calendar_timezone_new(const char *identifier, GError **error)
{
	if (identifier == NULL || !tz_identifier_is_safe(identifier)) {
		g_set_error(error, TR_CALENDAR_ERROR, TR_CALENDAR_ERROR_TIMEZONE,
		            "'%s': unknown time zone", identifier != NULL ? identifier : "");
		return NULL;
	}
	/* Unlike g_time_zone_new(), this returns NULL instead of UTC for a
	 * name it cannot load. */
	GTimeZone *tz = g_time_zone_new_identifier(identifier);
	if (tz == NULL)
		g_set_error(error, TR_CALENDAR_ERROR, TR_CALENDAR_ERROR_TIMEZONE,
		            "'%s': unknown time zone", identifier);
	return tz;
}

/* ---------------------------------------------------------------- parsing */

static int parse_weekday(const char *s)
{
	static const char *const full[7] = {
		"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
	};
	for (int i = 0; i < 7; i++) {
		if (g_ascii_strcasecmp(s, full[i]) == 0 ||
		    (strlen(s) == 3 && g_ascii_strncasecmp(s, full[i], 3) == 0))
			return i;
	}
	return -1;
}

/* "H:MM" or "HH:MM", 00:00..24:00, into seconds; -1 if malformed. */
static gint32 parse_clock(const char *s)
{
	int hour = 0, digits = 0;
	while (g_ascii_isdigit(*s) && digits < 3) {
		hour = hour * 10 + (*s++ - '0');
		digits++;
	}
	if (digits < 1 || digits > 2 || *s++ != ':')
		return -1;
	if (!g_ascii_isdigit(s[0]) || !g_ascii_isdigit(s[1]) || s[2] != '\0')
		return -1;
	int minute = (s[0] - '0') * 10 + (s[1] - '0');
	if (minute > 59 || hour > 24 || (hour == 24 && minute != 0))
		return -1;
	return (gint32)(hour * 3600 + minute * 60);
}

/* Add [start, end) to a weekday, merging overlapping and touching spans.
 * FALSE when the day would exceed TR_CALENDAR_MAX_SPANS_PER_DAY. */
static gboolean day_add_span(tr_calendar *c, int wd, gint32 start, gint32 end)
{
	struct span *v = c->spans[wd];
	guint n = c->n_spans[wd];
	guint k = n;
	while (k > 0 && v[k - 1].start > start) {
		v[k] = v[k - 1];
		k--;
	}
	v[k].start = start;
	v[k].end = end;
	n++;
	guint out = 0;
	for (guint i = 0; i < n; i++) {
		if (out > 0 && v[i].start <= v[out - 1].end) {
			if (v[i].end > v[out - 1].end)
				v[out - 1].end = v[i].end;
		} else {
			v[out++] = v[i];
		}
	}
	c->n_spans[wd] = out;
	return out <= TR_CALENDAR_MAX_SPANS_PER_DAY;
}

/* "mon", "mon-fri", "fri-mon" (wraps), comma lists thereof -> bit mask. */
static gboolean parse_days(const char *text, guint *mask_r, const char *prefix,
                           GError **error)
{
	gboolean ok = TRUE;
	char **parts = g_strsplit(text, ",", -1);
	*mask_r = 0;
	for (char **p = parts; ok && *p != NULL; p++) {
		char *elem = g_strstrip(*p);
		if (*elem == '\0') {
			fail(error, TR_CALENDAR_ERROR_INVALID, prefix, "'%s': missing weekday", text);
			ok = FALSE;
			break;
		}
		char *dash = strchr(elem, '-');
		int from, to;
		if (dash != NULL) {
			char *left = g_strstrip(g_strndup(elem, (gsize)(dash - elem)));
			char *right = g_strstrip(g_strdup(dash + 1));
			from = parse_weekday(left);
			to = parse_weekday(right);
			g_free(left);
			g_free(right);
		} else {
			from = to = parse_weekday(elem);
		}
		if (from < 0 || to < 0) {
			fail(error, TR_CALENDAR_ERROR_INVALID, prefix, "'%s': unknown weekday", elem);
			ok = FALSE;
			break;
		}
		for (int d = from;; d = (d + 1) % 7) {
			*mask_r |= 1u << d;
			if (d == to)
				break;
		}
	}
	g_strfreev(parts);
	return ok;
}

/* One "mon-fri 09:00-12:00, 13:00-17:00" item. */
static gboolean parse_hours_item(tr_calendar *c, char *item, const char *prefix,
                                 GError **error)
{
	char *times = item;
	while (*times != '\0' && !g_ascii_isdigit(*times))
		times++;
	if (*times == '\0') {
		fail(error, TR_CALENDAR_ERROR_INVALID, prefix,
		     "'%s': missing hours (expected e.g. 'mon-fri 09:00-17:00')", item);
		return FALSE;
	}
	char *days = g_strndup(item, (gsize)(times - item));
	g_strstrip(days);
	gboolean ok = TRUE;
	guint mask = 0;
	if (*days == '\0') {
		fail(error, TR_CALENDAR_ERROR_INVALID, prefix, "'%s': missing weekday", item);
		ok = FALSE;
	} else {
		ok = parse_days(days, &mask, prefix, error);
	}
	g_free(days);
	if (!ok)
		return FALSE;

	char **ranges = g_strsplit(times, ",", -1);
	for (char **r = ranges; ok && *r != NULL; r++) {
		char *range = g_strstrip(*r);
		char *dash = strchr(range, '-');
		if (dash == NULL) {
			fail(error, TR_CALENDAR_ERROR_INVALID, prefix,
			     "'%s': bad time range (expected HH:MM-HH:MM)", range);
			ok = FALSE;
			break;
		}
		char *left = g_strstrip(g_strndup(range, (gsize)(dash - range)));
		char *right = g_strstrip(g_strdup(dash + 1));
		gint32 start = parse_clock(left), end = parse_clock(right);
		if (start < 0 || end < 0) {
			fail(error, TR_CALENDAR_ERROR_INVALID, prefix,
			     "'%s': bad time (expected HH:MM between 00:00 and 24:00)",
			     start < 0 ? left : right);
			ok = FALSE;
		} else if (end <= start) {
			fail(error, TR_CALENDAR_ERROR_INVALID, prefix,
			     "'%s': end is not after start (split hours past midnight "
			     "into two days: 'fri 22:00-24:00; sat 00:00-02:00')", range);
			ok = FALSE;
		}
		g_free(left);
		g_free(right);
		for (int d = 0; ok && d < 7; d++) {
			if ((mask & (1u << d)) == 0)
				continue;
			if (!day_add_span(c, d, start, end)) {
				fail(error, TR_CALENDAR_ERROR_INVALID, prefix,
				     "'%s': more than %d intervals on %s", range,
				     TR_CALENDAR_MAX_SPANS_PER_DAY, weekday_names[d]);
				ok = FALSE;
			}
		}
	}
	g_strfreev(ranges);
	return ok;
}

static gboolean parse_hours(tr_calendar *c, const char *text, const char *prefix,
                            GError **error)
{
	if (text == NULL)
		return TRUE;
	char *copy = g_strstrip(g_strdup(text));
	gboolean ok = TRUE;
	if (*copy == '\0') {
		fail(error, TR_CALENDAR_ERROR_INVALID, prefix,
		     "empty (write 'none' for a calendar that is never open)");
		ok = FALSE;
	} else if (g_ascii_strcasecmp(copy, "none") == 0) {
		/* no spans */
	} else if (g_ascii_strcasecmp(copy, "24x7") == 0 ||
	           g_ascii_strcasecmp(copy, "always") == 0) {
		for (int d = 0; d < 7; d++)
			day_add_span(c, d, 0, (gint32)SECONDS_PER_DAY);
	} else {
		char **items = g_strsplit(copy, ";", -1);
		for (char **it = items; ok && *it != NULL; it++) {
			char *item = g_strstrip(*it);
			if (*item != '\0')
				ok = parse_hours_item(c, item, prefix, error);
		}
		g_strfreev(items);
	}
	g_free(copy);
	return ok;
}

enum date_form { DATE_BAD, DATE_FULL, DATE_YEARLY };

static gboolean all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!g_ascii_isdigit(s[i]))
			return FALSE;
	return TRUE;
}

static int digits_value(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* "YYYY-MM-DD" or "MM-DD"; only the shape is checked here. */
static enum date_form parse_date_shape(const char *s, int *y, int *m, int *d)
{
	size_t len = strlen(s);
	if (len == 10 && all_digits(s, 4) && s[4] == '-' && all_digits(s + 5, 2) &&
	    s[7] == '-' && all_digits(s + 8, 2)) {
		*y = digits_value(s, 4);
		*m = digits_value(s + 5, 2);
		*d = digits_value(s + 8, 2);
		return DATE_FULL;
	}
	if (len == 5 && all_digits(s, 2) && s[2] == '-' && all_digits(s + 3, 2)) {
		*y = 0;
		*m = digits_value(s, 2);
		*d = digits_value(s + 3, 2);
		return DATE_YEARLY;
	}
	return DATE_BAD;
}

/* Parse one date; full dates give days since 1970-01-01, yearly ones the
 * day of a leap year (0..365).  FALSE with *error on a bad token. */
static gboolean parse_date(const char *tok, enum date_form *form_r, gint64 *value_r,
                           const char *prefix, GError **error)
{
	int y, m, d;
	enum date_form form = parse_date_shape(tok, &y, &m, &d);
	if (form == DATE_BAD) {
		fail(error, TR_CALENDAR_ERROR_INVALID, prefix,
		     "'%s': bad date (expected YYYY-MM-DD or MM-DD)", tok);
		return FALSE;
	}
	/* 2000 is a leap year: MM-DD may name 02-29. */
	int check_year = form == DATE_FULL ? y : 2000;
	if (check_year < 1 || m < 1 || m > 12 || d < 1 ||
	    !g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)check_year)) {
		fail(error, TR_CALENDAR_ERROR_INVALID, prefix, "'%s': no such date", tok);
		return FALSE;
	}
	GDate date;
	g_date_clear(&date, 1);
	g_date_set_dmy(&date, (GDateDay)d, (GDateMonth)m, (GDateYear)check_year);
	if (form == DATE_FULL)
		*value_r = (gint64)g_date_get_julian(&date) - JULIAN_OF_EPOCH;
	else
		*value_r = (gint64)g_date_get_day_of_year(&date) - 1;
	*form_r = form;
	return TRUE;
}

static void yearly_add(tr_calendar *c, gint64 day_of_leap_year)
{
	GDate date;
	g_date_clear(&date, 1);
	g_date_set_dmy(&date, 1, G_DATE_JANUARY, 2000);
	g_date_add_days(&date, (guint)day_of_leap_year);
	c->yearly[g_date_get_month(&date)] |= 1u << g_date_get_day(&date);
	c->has_yearly = TRUE;
}

static gboolean holiday_add(tr_calendar *c, gint64 day, const char *tok,
                            const char *prefix, GError **error)
{
	if (c->holidays->len >= TR_CALENDAR_MAX_HOLIDAYS) {
		fail(error, TR_CALENDAR_ERROR_INVALID, prefix,
		     "'%s': more than %d holiday dates", tok, TR_CALENDAR_MAX_HOLIDAYS);
		return FALSE;
	}
	gint32 d32 = (gint32)day;
	g_array_append_val(c->holidays, d32);
	return TRUE;
}

static gboolean parse_holiday(tr_calendar *c, const char *tok, const char *prefix,
                              GError **error)
{
	const char *dots = strstr(tok, "..");
	if (dots == NULL) {
		enum date_form form;
		gint64 v;
		if (!parse_date(tok, &form, &v, prefix, error))
			return FALSE;
		if (form == DATE_YEARLY) {
			yearly_add(c, v);
			return TRUE;
		}
		return holiday_add(c, v, tok, prefix, error);
	}

	char *from_s = g_strstrip(g_strndup(tok, (gsize)(dots - tok)));
	char *to_s = g_strstrip(g_strdup(dots + 2));
	enum date_form from_form = DATE_BAD, to_form = DATE_BAD;
	gint64 from = 0, to = 0;
	gboolean ok = parse_date(from_s, &from_form, &from, prefix, error) &&
	              parse_date(to_s, &to_form, &to, prefix, error);
	if (ok && from_form != to_form) {
		fail(error, TR_CALENDAR_ERROR_INVALID, prefix,
		     "'%s': both ends of a range need the same form", tok);
		ok = FALSE;
	}
	if (ok && from_form == DATE_FULL) {
		if (to < from) {
			fail(error, TR_CALENDAR_ERROR_INVALID, prefix,
			     "'%s': range ends before it starts", tok);
			ok = FALSE;
		} else if (to - from + 1 > TR_CALENDAR_MAX_RANGE_DAYS) {
			fail(error, TR_CALENDAR_ERROR_INVALID, prefix,
			     "'%s': range longer than %d days", tok, TR_CALENDAR_MAX_RANGE_DAYS);
			ok = FALSE;
		}
		for (gint64 d = from; ok && d <= to; d++)
			ok = holiday_add(c, d, tok, prefix, error);
	} else if (ok) {
		/* Yearly ranges may wrap the year end: 12-24..01-01. */
		for (gint64 d = from;; d = (d + 1) % 366) {
			yearly_add(c, d);
			if (d == to)
				break;
		}
	}
	g_free(from_s);
	g_free(to_s);
	return ok;
}

static int compare_days(const void *a, const void *b)
{
	gint32 x = *(const gint32 *)a, y = *(const gint32 *)b;
	return (x > y) - (x < y);
}

static gboolean parse_holidays(tr_calendar *c, const char *text, const char *prefix,
                               GError **error)
{
	if (text == NULL)
		return TRUE;
	gboolean ok = TRUE;
	char **parts = g_strsplit_set(text, ",;", -1);
	for (char **p = parts; ok && *p != NULL; p++) {
		char *tok = g_strstrip(*p);
		if (*tok != '\0')
			ok = parse_holiday(c, tok, prefix, error);
	}
	g_strfreev(parts);
	return ok;
}

/* Derived facts, once the schedule and holidays are complete. */
static void calendar_finish(tr_calendar *c)
{
	GArray *h = c->holidays;
	if (h->len > 1) {
		qsort(h->data, h->len, sizeof(gint32), compare_days);
		guint out = 1;
		for (guint i = 1; i < h->len; i++)
			if (g_array_index(h, gint32, i) != g_array_index(h, gint32, out - 1))
				g_array_index(h, gint32, out++) = g_array_index(h, gint32, i);
		g_array_set_size(h, out);
	}

	gint64 length[7];
	gboolean any_open = FALSE, all_full = TRUE;
	for (int d = 0; d < 7; d++) {
		length[d] = 0;
		for (guint i = 0; i < c->n_spans[d]; i++)
			length[d] += c->spans[d][i].end - c->spans[d][i].start;
		if (length[d] > 0)
			any_open = TRUE;
		if (length[d] != SECONDS_PER_DAY)
			all_full = FALSE;
	}
	guint yearly_days = 0;
	for (int m = 1; m <= 12; m++)
		yearly_days += (guint)__builtin_popcount(c->yearly[m]);
	c->never_open = !any_open || yearly_days >= 366;
	c->always_open = all_full && h->len == 0 && !c->has_yearly;

	/* One business day: the most common daily length (ties: the longer). */
	gint64 best = 0;
	int best_count = 0;
	for (int d = 0; d < 7; d++) {
		if (length[d] == 0)
			continue;
		int count = 0;
		for (int e = 0; e < 7; e++)
			if (length[e] == length[d])
				count++;
		if (count > best_count || (count == best_count && length[d] > best)) {
			best = length[d];
			best_count = count;
		}
	}
	c->business_day_seconds = c->never_open ? 0 : best;
}

static void zone_table_build(tr_calendar *c);

/* prefix names the calendar in messages ("calendar emea"). */
static tr_calendar *calendar_build(const char *name, const char *prefix,
                                   const char *zone, const char *hours,
                                   const char *holidays, GError **error)
{
	tr_calendar *c = g_new0(tr_calendar, 1);
	c->name = g_strdup(name);
	c->holidays = g_array_new(FALSE, FALSE, sizeof(gint32));

	GError *tz_error = NULL;
	char *hours_prefix = g_strdup_printf("%s: hours", prefix);
	char *holidays_prefix = g_strdup_printf("%s: holidays", prefix);
	c->tz = tr_calendar_timezone_new(zone, &tz_error);
	gboolean ok = c->tz != NULL;
	if (!ok) {
		fail(error, TR_CALENDAR_ERROR_TIMEZONE, prefix, "timezone: %s", tz_error->message);
		g_error_free(tz_error);
	}
	ok = ok && parse_hours(c, hours, hours_prefix, error) &&
	     parse_holidays(c, holidays, holidays_prefix, error);
	g_free(hours_prefix);
	g_free(holidays_prefix);
	if (!ok) {
		tr_calendar_free(&c);
		return NULL;
	}
	c->timezone_id = g_strdup(zone);
	calendar_finish(c);
	if (!c->always_open && !c->never_open)
		zone_table_build(c);
	return c;
}

tr_calendar *tr_calendar_new(const char *name, const char *zone,
                             const char *hours, const char *holidays,
                             GError **error)
{
	g_return_val_if_fail(name != NULL, NULL);
	char *prefix = g_strdup_printf("calendar %s", name);
	tr_calendar *c = calendar_build(name, prefix, zone, hours, holidays, error);
	g_free(prefix);
	return c;
}

/* A string key; *value_r = NULL when absent.  FALSE on other errors. */
static gboolean keyfile_string(GKeyFile *kf, const char *group, const char *key,
                               char **value_r, GError **error)
{
	GError *local = NULL;
	*value_r = g_key_file_get_string(kf, group, key, &local);
	if (local == NULL)
		return TRUE;
	/* An invalid escape sets the error but still returns a string. */
	g_free(*value_r);
	*value_r = NULL;
	if (g_error_matches(local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND)) {
		g_error_free(local);
		return TRUE;
	}
	fail(error, TR_CALENDAR_ERROR_INVALID, group, "%s: %s", key, local->message);
	g_error_free(local);
	return FALSE;
}

tr_calendar *tr_calendar_from_keyfile(GKeyFile *kf, const char *group, GError **error)
{
	g_return_val_if_fail(kf != NULL && group != NULL, NULL);
	static const char *const known[] = { "timezone", "hours", "holidays", NULL };

	char **keys = g_key_file_get_keys(kf, group, NULL, NULL);
	if (keys == NULL) {
		fail(error, TR_CALENDAR_ERROR_MISSING, group, "no such group");
		return NULL;
	}
	gboolean ok = TRUE;
	for (char **k = keys; ok && *k != NULL; k++) {
		if (!g_strv_contains(known, *k)) {
			fail(error, TR_CALENDAR_ERROR_INVALID, group, "'%s': unknown key", *k);
			ok = FALSE;
		}
	}
	g_strfreev(keys);

	char *zone = NULL, *hours = NULL, *holidays = NULL;
	ok = ok && keyfile_string(kf, group, "timezone", &zone, error) &&
	     keyfile_string(kf, group, "hours", &hours, error) &&
	     keyfile_string(kf, group, "holidays", &holidays, error);
	if (ok && zone == NULL) {
		fail(error, TR_CALENDAR_ERROR_MISSING, group, "timezone: missing");
		ok = FALSE;
	} else if (ok && hours == NULL) {
		fail(error, TR_CALENDAR_ERROR_MISSING, group,
		     "hours: missing (e.g. 'mon-fri 09:00-17:00', '24x7' or 'none')");
		ok = FALSE;
	}

	tr_calendar *c = NULL;
	if (ok) {
		const char *name = group;
		if (g_str_has_prefix(group, "calendar ")) {
			name = group + strlen("calendar ");
			while (*name == ' ')
				name++;
			if (*name == '\0')
				name = group;
		}
		c = calendar_build(name, group, zone, hours, holidays, error);
	}
	g_free(zone);
	g_free(hours);
	g_free(holidays);
	return c;
}

void tr_calendar_free(tr_calendar **calendar)
{
	if (calendar == NULL || *calendar == NULL)
		return;
	tr_calendar *c = *calendar;
	*calendar = NULL;
	if (c->tz != NULL)
		g_time_zone_unref(c->tz);
	g_array_free(c->holidays, TRUE);
	g_free(c->zone_from);
	g_free(c->zone_offset);
	g_free(c->timezone_id);
	g_free(c->name);
	g_free(c);
}

const char *tr_calendar_get_name(const tr_calendar *c)
{
	return c != NULL ? c->name : "24x7";
}

const char *tr_calendar_get_timezone(const tr_calendar *c)
{
	return c != NULL ? c->timezone_id : "UTC";
}

gboolean tr_calendar_is_never_open(const tr_calendar *c)
{
	return c != NULL && c->never_open;
}

/* ---------------------------------------------------------------- arithmetic */

/* Month (1-12) and day of month of a day counted from 1970-01-01, in the
 * proleptic Gregorian calendar (Howard Hinnant's civil_from_days): what
 * GDate says, without building one per day walked. */
static void month_day_of_day(gint64 day, int *month_r, int *day_r)
{
	gint64 z = day + 719468;  /* days since 0000-03-01 */
	gint64 era = floor_div(z, 146097);
	gint64 doe = z - era * 146097;                                    /* [0, 146096] */
	gint64 yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	gint64 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);             /* [0, 365] */
	gint64 mp = (5 * doy + 2) / 153;                                  /* [0, 11], March = 0 */
	*day_r = (int)(doy - (153 * mp + 2) / 5 + 1);
	*month_r = (int)(mp < 10 ? mp + 3 : mp - 9);
}

static gboolean is_holiday(const tr_calendar *c, gint64 day)
{
	if (c->holidays->len > 0) {
		gint32 key = (gint32)day;
		if (bsearch(&key, c->holidays->data, c->holidays->len, sizeof(gint32),
		            compare_days) != NULL)
			return TRUE;
	}
	if (c->has_yearly) {
		int month, day_of_month;
		month_day_of_day(day, &month, &day_of_month);
		if (c->yearly[month] & (1u << day_of_month))
			return TRUE;
	}
	return FALSE;
}

/* The spans of local date `day` (days since 1970-01-01); 0 when closed. */
static guint day_spans(const tr_calendar *c, gint64 day, const struct span **spans_r)
{
	int wd = weekday_of_day(day);
	*spans_r = c->spans[wd];
	if (c->n_spans[wd] == 0 || is_holiday(c, day))
		return 0;
	return c->n_spans[wd];
}

/*
 * Walks the open pieces of [from, end) in time order.  The walk goes one
 * local date at a time; a date is cut where the UTC offset changes, and
 * within each cut the local clock runs in step with real time, so an
 * instant is open when (instant + offset - local midnight) lies in a span.
 *
 * The zone's offset intervals are learnt lazily: the end of the current
 * one is found by galloping then bisecting over g_time_zone_find_interval()
 * (GTimeZone has no accessor for transition times), so a long walk costs a
 * few dozen look-ups per DST change rather than several per day.
 */
struct piece_iter {
	const tr_calendar *cal;
	gint64 end;            /* stop before this instant */
	gint64 seg_start;      /* current cut of one local date at one offset */
	gint64 seg_end;
	gint64 midnight;       /* instant at which the local clock read 00:00 */
	const struct span *spans;
	guint n_spans, next_span;
	gint64 tz_from, tz_until;  /* one UTC offset holds over [tz_from, tz_until) */
	gint64 offset;
};

static void piece_iter_init(struct piece_iter *it, const tr_calendar *c,
                            gint64 from, gint64 end)
{
	memset(it, 0, sizeof(*it));
	it->cal = c;
	it->end = end;
	it->seg_end = from;  /* the first call to next() starts here */
	it->tz_from = it->tz_until = G_MININT64;
}

/*
 * The first instant in (t, end) that lies outside GTimeZone interval i,
 * which covers t; end when there is none.  Intervals are numbered in time
 * order, so "index != i" is monotone: gallop, then bisect.
 */
static gint64 zone_interval_end(GTimeZone *tz, gint i, gint64 t, gint64 end)
{
	gint64 last = end - 1;
	if (last <= t || g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, last) == i)
		return end;
	gint64 lo = t, hi = last, step = SECONDS_PER_DAY;
	while (hi - lo > step &&
	       g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, lo + step) == i) {
		lo += step;
		step *= 2;
	}
	if (hi - lo > step)
		hi = lo + step;
	while (hi - lo > 1) {
		gint64 mid = lo + (hi - lo) / 2;
		if (g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, mid) == i)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

/*
 * GTimeZone has no accessor for its transitions, and its look-up scans
 * them from 1900 on: a deadline walk used to spend ~0.1 M instructions per
 * message finding the next DST change.  The table is learnt once per
 * calendar, interval by interval, with the same gallop-and-bisect.
 */
static void zone_table_build(tr_calendar *c)
{
	GArray *from = g_array_new(FALSE, FALSE, sizeof(gint64));
	GArray *offset = g_array_new(FALSE, FALSE, sizeof(gint32));
	for (gint64 t = TR_CALENDAR_TIME_MIN; t < ZONE_TABLE_END;) {
		gint i = g_time_zone_find_interval(c->tz, G_TIME_TYPE_UNIVERSAL, t);
		gint32 off = g_time_zone_get_offset(c->tz, i);
		g_array_append_val(from, t);
		g_array_append_val(offset, off);
		t = zone_interval_end(c->tz, i, t, ZONE_TABLE_END);
	}
	c->n_zone = from->len;
	c->zone_from = (gint64 *)(void *)g_array_free(from, FALSE);
	c->zone_offset = (gint32 *)(void *)g_array_free(offset, FALSE);
}

/* The offset at t (in the table's range) and the end of its interval. */
static gboolean zone_table_find(const tr_calendar *c, gint64 t, gint64 *offset_r, gint64 *until_r)
{
	if (c->n_zone == 0 || t < c->zone_from[0] || t >= ZONE_TABLE_END)
		return FALSE;
	guint lo = 0, hi = c->n_zone;  /* zone_from[lo] <= t < zone_from[hi] */
	while (hi - lo > 1) {
		guint mid = lo + (hi - lo) / 2;
		if (c->zone_from[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	*offset_r = c->zone_offset[lo];
	*until_r = hi < c->n_zone ? c->zone_from[hi] : ZONE_TABLE_END;
	return TRUE;
}

/* Learn the offset at t and until when it holds (bounded by it->end). */
static void piece_iter_learn_zone(struct piece_iter *it, gint64 t)
{
	gint64 until;
	it->tz_from = t;
	if (zone_table_find(it->cal, t, &it->offset, &until)) {
		it->tz_until = MIN(until, it->end);
		return;
	}
	GTimeZone *tz = it->cal->tz;
	gint i = g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, t);
	it->offset = g_time_zone_get_offset(tz, i);
	it->tz_until = zone_interval_end(tz, i, t, it->end);
}

static gboolean piece_iter_next(struct piece_iter *it, gint64 *from_r, gint64 *to_r)
{
	for (;;) {
		while (it->next_span < it->n_spans) {
			const struct span *s = &it->spans[it->next_span++];
			gint64 from = MAX(it->seg_start, it->midnight + s->start);
			gint64 to = MIN(it->seg_end, it->midnight + s->end);
			if (from < to) {
				*from_r = from;
				*to_r = to;
				return TRUE;
			}
		}
		gint64 t = it->seg_end;
		if (t >= it->end)
			return FALSE;
		if (t < it->tz_from || t >= it->tz_until)
			piece_iter_learn_zone(it, t);
		gint64 day = floor_div(t + it->offset, SECONDS_PER_DAY);
		it->seg_start = t;
		it->midnight = day * SECONDS_PER_DAY - it->offset;
		it->seg_end = MIN(it->midnight + SECONDS_PER_DAY, it->tz_until);
		it->seg_end = MIN(it->seg_end, it->end);
		it->n_spans = day_spans(it->cal, day, &it->spans);
		it->next_span = 0;
	}
}

gboolean tr_calendar_is_open(const tr_calendar *c, gint64 t)
{
	if (c == NULL || c->always_open)
		return TRUE;
	if (c->never_open)
		return FALSE;
	t = clamp_time(t);
	gint i = g_time_zone_find_interval(c->tz, G_TIME_TYPE_UNIVERSAL, t);
	gint64 local = t + g_time_zone_get_offset(c->tz, i);
	gint64 day = floor_div(local, SECONDS_PER_DAY);
	gint64 second_of_day = local - day * SECONDS_PER_DAY;
	const struct span *spans;
	guint n = day_spans(c, day, &spans);
	for (guint k = 0; k < n; k++)
		if (second_of_day >= spans[k].start && second_of_day < spans[k].end)
			return TRUE;
	return FALSE;
}

gint64 tr_calendar_add_business(const tr_calendar *c, gint64 start, gint64 seconds)
{
	if (seconds < 0)
		seconds = 0;
	start = clamp_time(start);
	if (c == NULL || c->always_open)
		return seconds > TR_CALENDAR_TIME_MAX - start ? TR_CALENDAR_NEVER : start + seconds;
	if (c->never_open)
		return TR_CALENDAR_NEVER;

	gint64 end = start + (gint64)TR_CALENDAR_HORIZON_DAYS * SECONDS_PER_DAY;
	struct piece_iter it;
	piece_iter_init(&it, c, start, MIN(end, TR_CALENDAR_TIME_MAX));
	gint64 remaining = seconds, from, to;
	while (piece_iter_next(&it, &from, &to)) {
		if (remaining <= to - from)
			return from + remaining;
		remaining -= to - from;
	}
	return TR_CALENDAR_NEVER;
}

gint64 tr_calendar_next_open(const tr_calendar *c, gint64 t)
{
	return tr_calendar_add_business(c, t, 0);
}

gint64 tr_calendar_business_between(const tr_calendar *c, gint64 a, gint64 b)
{
	a = clamp_time(a);
	b = clamp_time(b);
	if (b <= a)
		return 0;
	if (c == NULL || c->always_open)
		return b - a;
	if (c->never_open)
		return 0;
	struct piece_iter it;
	piece_iter_init(&it, c, a, b);
	gint64 total = 0, from, to;
	while (piece_iter_next(&it, &from, &to))
		total += to - from;
	return total;
}

gint64 tr_calendar_business_day_seconds(const tr_calendar *c)
{
	return c != NULL ? c->business_day_seconds : SECONDS_PER_DAY;
}

gint64 tr_calendar_business_days_to_seconds(const tr_calendar *c, guint days)
{
	gint64 day = tr_calendar_business_day_seconds(c);
	if (day > 0 && (gint64)days > G_MAXINT64 / day)
		return G_MAXINT64;
	return (gint64)days * day;
}

gint64 tr_calendar_add_business_days(const tr_calendar *c, gint64 start, guint days)
{
	if (tr_calendar_is_never_open(c))
		return TR_CALENDAR_NEVER;
	return tr_calendar_add_business(c, start, tr_calendar_business_days_to_seconds(c, days));
}

/* ---------------------------------------------------------------- formatting */

char *tr_calendar_format_local(const tr_calendar *c, gint64 t, const char *tz_override)
{
	if (t < TR_CALENDAR_TIME_MIN || t > TR_CALENDAR_TIME_MAX)
		return NULL;
	GTimeZone *tz;
	if (tz_override != NULL)
		tz = tr_calendar_timezone_new(tz_override, NULL);
	else if (c != NULL)
		tz = g_time_zone_ref(c->tz);
	else
		tz = g_time_zone_new_utc();
	if (tz == NULL)
		return NULL;
	char *out = NULL;
	GDateTime *utc = g_date_time_new_from_unix_utc(t);
	GDateTime *local = utc != NULL ? g_date_time_to_timezone(utc, tz) : NULL;
	if (local != NULL) {
		out = g_strdup_printf("%s %02d:%02d %s",
		                      weekday_names[g_date_time_get_day_of_week(local) - 1],
		                      g_date_time_get_hour(local), g_date_time_get_minute(local),
		                      g_date_time_get_timezone_abbreviation(local));
		g_date_time_unref(local);
	}
	if (utc != NULL)
		g_date_time_unref(utc);
	g_time_zone_unref(tz);
	return out;
}

/*
 * calendar.h — business-hours calendars and business-time arithmetic
 * (tr_calendar_*)
 *
 * A calendar is a name, an IANA time zone, a weekly schedule (per weekday
 * zero or more intervals of local wall-clock time, 00:00-24:00 for a whole
 * day) and holidays (full dates and yearly month-day entries).  SLA targets
 * are measured in the open time of a calendar: the clock runs while the
 * calendar is open and stands still while it is closed.
 *
 * What "open" means, exactly: an instant t is open when its local date (in
 * the calendar's zone) is not a holiday and the local wall-clock time at t
 * lies inside one of that weekday's intervals.  Across DST changes this
 * counts real elapsed seconds: a whole-day interval lasts 23 hours on a
 * spring-forward day and 25 hours on a fall-back day; an interval that
 * contains the skipped hour is one hour shorter, one that contains the
 * repeated hour one hour longer.  Holidays close a whole local date.
 *
 * Business days: tr_calendar_business_days_to_seconds() converts N business
 * days into N x the length of one business day, where one business day is
 * the most common daily open time of the weekly schedule (ties go to the
 * longer day).  For "mon-fri 09:00-17:00; sat 10:00-14:00" that is 8 hours,
 * so "2 business days" is 16 open hours: a ticket received Tuesday 15:00 is
 * due Thursday 15:00.  Only open time counts, as with business-hours SLAs
 * in Zendesk and Freshdesk.  See docs/configuration-calendars.md.
 *
 * 24x7: a NULL calendar means "always open" (wall-clock time, UTC for
 * formatting) in every function below that takes a const tr_calendar *.
 * A configured calendar with "hours = 24x7" is open around the clock in its
 * own zone but still closed on its holidays, if it lists any.
 *
 * Instants are Unix seconds (gint64).  Arithmetic works on the range
 * [TR_CALENDAR_TIME_MIN, TR_CALENDAR_TIME_MAX]: inputs outside it are
 * clamped to it, and a result that would lie beyond it is
 * TR_CALENDAR_NEVER.  Cost is O(days spanned), never O(minutes).
 *
 * Thread safety: a calendar is immutable once built; any number of threads
 * may use one calendar at the same time.
 */
#ifndef TR_CALENDAR_H
#define TR_CALENDAR_H

#include <glib.h>

typedef struct tr_calendar tr_calendar;

/* "Never": returned by add/next_open for a calendar that has no open time
 * at all (or none within TR_CALENDAR_HORIZON_DAYS).  Compares later than
 * every real deadline, so "due <= now" stays false. */
#define TR_CALENDAR_NEVER G_MAXINT64

/* The supported range of instants: 1970-01-01T00:00:00Z and
 * 9999-12-30T00:00:00Z. */
#define TR_CALENDAR_TIME_MIN G_GINT64_CONSTANT(0)
#define TR_CALENDAR_TIME_MAX G_GINT64_CONSTANT(253402128000)

/* Limits.  A search for open time (add_business, next_open) gives up after
 * this many days and returns TR_CALENDAR_NEVER; it only matters for
 * calendars whose holidays leave almost nothing open. */
#define TR_CALENDAR_HORIZON_DAYS 36525      /* 100 years */
#define TR_CALENDAR_MAX_SPANS_PER_DAY 48    /* intervals per weekday, after merging */
#define TR_CALENDAR_MAX_HOLIDAYS 4096       /* full dates, after expanding ranges */
#define TR_CALENDAR_MAX_RANGE_DAYS 366      /* one "from..to" holiday range */

#define TR_CALENDAR_ERROR (tr_calendar_error_quark())
typedef enum {
	TR_CALENDAR_ERROR_INVALID,   /* a bad token in hours/holidays, unknown key */
	TR_CALENDAR_ERROR_TIMEZONE,  /* unknown or unsafe time zone identifier */
	TR_CALENDAR_ERROR_MISSING,   /* missing group or required key */
} tr_calendar_error;

GQuark tr_calendar_error_quark(void);

/*
 * Build a calendar from its textual parts (the programmatic constructor,
 * for tests and built-in defaults).
 *
 *   name      any label, used in error messages and by callers; copied.
 *   zone      IANA identifier ("Europe/Berlin"), see tr_calendar_timezone_new().
 *   hours     "mon-fri 09:00-17:00; sat 10:00-14:00", or "24x7"/"always",
 *             or "none".  NULL means "none": never open (every search then
 *             returns TR_CALENDAR_NEVER) — it does NOT mean 24x7.
 *   holidays  "2026-12-25, 12-26, 2026-12-28..2026-12-31"; NULL or "" = none.
 *
 * The grammar is in docs/configuration-calendars.md.  Returns a new calendar
 * (free with tr_calendar_free()), or NULL with *error set; messages read
 * "calendar NAME: hours: 'mon-fry': unknown weekday".
 */
tr_calendar *tr_calendar_new(const char *name, const char *zone,
                             const char *hours, const char *holidays,
                             GError **error);

/*
 * Build the calendar described by one group of a key file that the caller
 * has loaded.  Keys: timezone (required), hours (required), holidays
 * (optional); any other key is an error.  The calendar's name is the group
 * name without a leading "calendar " ("[calendar emea]" -> "emea").
 * Errors start with the group name: "calendar emea: hours: 'mon-fry':
 * unknown weekday", "calendar emea: timezone: 'Europe/Berln': unknown time
 * zone".  Returns a new calendar, or NULL with *error set.
 * (GKeyFile itself drops translated keys such as "hours[de]" while loading
 * unless G_KEY_FILE_KEEP_TRANSLATIONS is given; with it they are reported
 * as unknown keys.)
 */
tr_calendar *tr_calendar_from_keyfile(GKeyFile *kf, const char *group,
                                      GError **error);

/* Free a calendar and set *calendar to NULL.  NULL or *calendar == NULL is
 * a no-op. */
void tr_calendar_free(tr_calendar **calendar);

/*
 * Load a time zone by identifier and refuse what GLib would silently
 * misread: GTimeZone falls back to UTC for unknown names, and also opens
 * absolute or relative file paths.  Accepts IANA names ("Asia/Kolkata",
 * "UTC"), fixed offsets ("+05:30") and POSIX TZ rules; refuses NULL, "",
 * paths (leading '/' or ':', "." or ".." components) and unknown names.
 * Returns a reference (g_time_zone_unref() it), or NULL with *error set
 * (TR_CALENDAR_ERROR_TIMEZONE, message "'X': unknown time zone").
 */
GTimeZone *tr_calendar_timezone_new(const char *identifier, GError **error);

/* The calendar's name and time zone identifier; owned by the calendar.
 * For NULL (24x7): "24x7" and "UTC". */
const char *tr_calendar_get_name(const tr_calendar *calendar);
const char *tr_calendar_get_timezone(const tr_calendar *calendar);

/* TRUE when the calendar has no open time at all (empty schedule, or
 * yearly holidays covering every date).  FALSE for NULL. */
gboolean tr_calendar_is_never_open(const tr_calendar *calendar);

/* TRUE if instant t is open (see the top of this file).  NULL: TRUE. */
gboolean tr_calendar_is_open(const tr_calendar *calendar, gint64 t);

/* The first open instant >= t: t itself when open.  TR_CALENDAR_NEVER when
 * the calendar never opens again (within TR_CALENDAR_HORIZON_DAYS). */
gint64 tr_calendar_next_open(const tr_calendar *calendar, gint64 t);

/*
 * The instant at which `seconds` of open time have elapsed since start.
 * The clock starts at tr_calendar_next_open(start), so seconds == 0 gives
 * the next opening (start itself when open); a negative value counts as 0.
 * For seconds > 0 the result is the earliest such instant: a target that
 * runs out exactly at closing time is due at closing time, not at the next
 * opening.  For every s >= 0 with a result other than TR_CALENDAR_NEVER,
 * tr_calendar_business_between(c, start, result) == s.
 * Returns TR_CALENDAR_NEVER for a calendar that does not open (enough)
 * before TR_CALENDAR_TIME_MAX or within TR_CALENDAR_HORIZON_DAYS.
 */
gint64 tr_calendar_add_business(const tr_calendar *calendar, gint64 start,
                                gint64 seconds);

/* Open seconds in [a, b); 0 if b <= a.  Both ends are clamped to the
 * supported range.  Used to run SLA clocks that pause and resume. */
gint64 tr_calendar_business_between(const tr_calendar *calendar, gint64 a,
                                    gint64 b);

/*
 * The length of one business day in open seconds: the most common daily
 * open time among the weekdays that have hours (ties: the longer one).
 * Holidays and DST do not change it.  86400 for NULL and for 24x7; 0 for
 * a calendar that is never open.
 */
gint64 tr_calendar_business_day_seconds(const tr_calendar *calendar);

/* days x tr_calendar_business_day_seconds(), saturating at G_MAXINT64. */
gint64 tr_calendar_business_days_to_seconds(const tr_calendar *calendar,
                                            guint days);

/* tr_calendar_add_business(calendar, start, days converted as above);
 * TR_CALENDAR_NEVER for a calendar that is never open. */
gint64 tr_calendar_add_business_days(const tr_calendar *calendar, gint64 start,
                                     guint days);

/*
 * Format instant t for customer-facing text: English weekday, 24-hour local
 * time and the zone's abbreviation, e.g. "Monday 09:00 CET" (Kolkata gives
 * "IST"; zones without an abbreviation give an offset such as "-03").
 * The zone is tz_override when not NULL (an identifier as for
 * tr_calendar_timezone_new(), e.g. the customer's own zone), else the
 * calendar's (UTC for NULL).  Returns a g_malloc'd string (g_free it), or
 * NULL when tz_override is not a valid zone or t is TR_CALENDAR_NEVER or
 * outside the supported range.
 */
char *tr_calendar_format_local(const tr_calendar *calendar, gint64 t,
                               const char *tz_override);

#endif

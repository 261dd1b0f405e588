/* report_render.c — `triage report` as text, JSON and HTML; see report_render.h */
#include "cli/report_render.h"

#include <string.h>

#include "core/json.h"
#include "core/policy.h"

/* Characters of a subject shown in a table cell or a terminal line. */
#define SUBJECT_CHARS 120
/* Rows of open escalations in the text summary (the JSON and HTML have all). */
#define TEXT_ESCALATION_ROWS 20

/* ---------------------------------------------------------------- shared */

static bool is_bidi_control(gunichar c)
{
	return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

/*
 * Text from the data, safe to show: valid UTF-8, control and line
 * separator characters as spaces, bidirectional overrides dropped (they
 * would reorder what follows them), at most max_chars characters (0: no
 * limit) with an ellipsis.  g_malloc'd.
 */
static char *clean(const char *s, size_t max_chars)
{
	char *valid = g_utf8_make_valid(s != NULL ? s : "", -1);
	GString *out = g_string_sized_new(strlen(valid));
	size_t chars = 0;
	for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (is_bidi_control(c))
			continue;
		if (max_chars > 0 && chars == max_chars) {
			g_string_append(out, "\u2026");
			break;
		}
		if (g_unichar_iscntrl(c) || c == 0x2028 || c == 0x2029)
			c = ' ';
		g_string_append_unichar(out, c);
		chars++;
	}
	g_free(valid);
	return g_string_free(out, FALSE);
}

static char *utc_time(int64_t t)
{
	GDateTime *dt = g_date_time_new_from_unix_utc(t);
	char *text = dt != NULL ? g_date_time_format(dt, "%Y-%m-%d %H:%M UTC") : g_strdup("-");
	if (dt != NULL)
		g_date_time_unref(dt);
	return text;
}

char *tr_cli_report_duration(int64_t s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		return g_strdup_printf("%ds", (int)s);
	if (s < 3600)
		return g_strdup_printf("%dm", (int)(s / 60));
	if (s < 86400)
		return g_strdup_printf("%dh %02dm", (int)(s / 3600), (int)(s % 3600 / 60));
	return g_strdup_printf("%" G_GINT64_FORMAT "d %02dh", (gint64)(s / 86400), (int)(s % 86400 / 3600));
}

static char *window_length(const tr_report *r)
{
	int64_t len = r->now - r->since;
	if (len > 0 && len % 86400 == 0)
		return g_strdup_printf("%" G_GINT64_FORMAT " day%s", (gint64)(len / 86400), len == 86400 ? "" : "s");
	return tr_cli_report_duration(len);
}

/* "42.9 %" or "-" (g_malloc'd). */
static char *percent_text(double p)
{
	return p < 0 ? g_strdup("-") : g_strdup_printf("%.1f %%", p);
}

static const char *priority_name(int index)
{
	return tr_priority_name(index + 1);
}

static unsigned clock_total(const tr_report_clock *c)
{
	return c->met_on_time + c->met_late + c->open_within + c->open_breached + c->no_target;
}

/* ---------------------------------------------------------------- text */

/* s (cleaned) left-aligned in width characters, cut when longer. */
static void pad(GString *out, const char *s, size_t width)
{
	char *text = clean(s, 0);
	size_t chars = g_utf8_strlen(text, -1);
	if (chars > width) {
		char *cut = g_utf8_substring(text, 0, (glong)(width > 1 ? width - 1 : 0));
		g_string_append(out, cut);
		g_string_append(out, width > 1 ? "\u2026" : "");
		g_free(cut);
	} else {
		g_string_append(out, text);
		for (size_t i = chars; i < width; i++)
			g_string_append_c(out, ' ');
	}
	g_free(text);
}

/* "  ####" scaled to 30 columns for the largest value, and the newline. */
static void text_bar(GString *out, unsigned value, unsigned max)
{
	unsigned width = max > 0 ? (value * 30 + max - 1) / max : 0;
	if (width > 0)
		g_string_append(out, "  ");
	for (unsigned k = 0; k < width; k++)
		g_string_append_c(out, '#');
	g_string_append_c(out, '\n');
}

static void text_counts(GString *out, const char *heading, const tr_report_counts *c, unsigned total)
{
	g_string_append_printf(out, "\n%s\n", heading);
	if (c->n == 0) {
		g_string_append(out, "  (none)\n");
		return;
	}
	unsigned max = c->items[0].count;
	for (size_t i = 0; i < c->n; i++) {
		g_string_append(out, "  ");
		pad(out, c->items[i].name, 22);
		char *pct = percent_text(tr_report_percent(c->items[i].count, total));
		g_string_append_printf(out, " %6u %7s", c->items[i].count, pct);
		g_free(pct);
		text_bar(out, c->items[i].count, max);
	}
}

static void text_clock_row(GString *out, const char *label, unsigned tickets, const tr_report_clock *c)
{
	char *compliance = percent_text(tr_report_compliance(c));
	g_string_append_printf(out, "  %-16s %7u %8u %6u %8u %9u %10u %11s\n", label, tickets, c->met_on_time,
	                       c->met_late, c->open_within, c->open_breached, c->no_target, compliance);
	g_free(compliance);
}

static void text_sla(GString *out, const tr_report *r)
{
	g_string_append(out, "\nSLA compliance (on time / decided clocks)\n");
	g_string_append_printf(out, "  %-16s %7s %8s %6s %8s %9s %10s %11s\n", "", "tickets", "on time", "late",
	                       "open ok", "breached", "no target", "compliance");
	for (int clock = 0; clock < 2; clock++) {
		g_string_append_printf(out, "  %s\n", clock == 0 ? "first response" : "resolution");
		for (int p = 0; p < TR_REPORT_PRIORITIES; p++) {
			char *label = g_strdup_printf("  %s", priority_name(p));
			text_clock_row(out, label, r->sla[p].tickets, clock == 0 ? &r->sla[p].first_response : &r->sla[p].resolution);
			g_free(label);
		}
		text_clock_row(out, "  all", r->sla_all.tickets,
		               clock == 0 ? &r->sla_all.first_response : &r->sla_all.resolution);
	}
}

static void text_escalations(GString *out, const tr_report *r)
{
	g_string_append_printf(out, "\nOpen escalations (%u, any age; most urgent first)\n", r->open_escalations_total);
	if (r->n_open_escalations == 0) {
		g_string_append(out, "  (none)\n");
		return;
	}
	g_string_append(out, "  TICKET       PRI  OPEN FOR  ACKED  TEAM                SUBJECT\n");
	size_t rows = MIN(r->n_open_escalations, (size_t)TEXT_ESCALATION_ROWS);
	for (size_t i = 0; i < rows; i++) {
		const tr_report_escalation *e = &r->open_escalations[i];
		char *age = tr_cli_report_duration(e->age);
		g_string_append(out, "  ");
		pad(out, e->ticket, 12);
		g_string_append_printf(out, " %-4s %-9s %-6s ", tr_priority_name(e->priority), age,
		                       e->acknowledged ? "yes" : e->moved_up > 0 ? "NO (up)" : "no");
		pad(out, e->team, 19);
		g_string_append_c(out, ' ');
		char *subject = clean(e->subject, 60);
		g_string_append_printf(out, "%s%s\n", e->incident ? "[incident] " : "", subject);
		g_free(subject);
		g_free(age);
	}
	if (r->open_escalations_total > rows)
		g_string_append_printf(out, "  ... and %u more (--json or --html lists them)\n",
		                       r->open_escalations_total - (unsigned)rows);
}

void tr_cli_report_text(const tr_report *r, GString *out)
{
	char *since = utc_time(r->since), *now = utc_time(r->now), *len = window_length(r);
	g_string_append_printf(out, "Support report: tickets created %s .. %s (%s)\n\n", since, now, len);
	g_free(since);
	g_free(now);
	g_free(len);

	g_string_append_printf(out, "  Tickets          %6u  (%u open, %u waiting, %u paused, %u resolved)\n", r->tickets,
	                       r->status_open, r->status_waiting, r->status_paused, r->status_resolved);
	char *rate = percent_text(tr_report_percent(r->escalated, r->tickets));
	g_string_append_printf(out, "  Escalated        %6u  %s of tickets; %u not acknowledged in time\n", r->escalated,
	                       rate, r->escalation_moved_up);
	g_free(rate);
	g_string_append_printf(out, "  Open escalations %6u  (unresolved, any age)\n", r->open_escalations_total);
	rate = percent_text(tr_report_percent(r->reopened, r->resolved_ever));
	g_string_append_printf(out, "  Reopened         %6u  %s of %u resolved tickets\n", r->reopened, rate,
	                       r->resolved_ever);
	g_free(rate);
	const tr_report_durations *d[2] = { &r->first_response, &r->resolution };
	for (int i = 0; i < 2; i++) {
		char *median = tr_cli_report_duration(d[i]->median), *p90 = tr_cli_report_duration(d[i]->p90);
		if (d[i]->count > 0)
			g_string_append_printf(out, "  %-16s median %s, p90 %s (%u ticket%s)\n",
			                       i == 0 ? "First response" : "Resolution", median, p90, d[i]->count,
			                       d[i]->count == 1 ? "" : "s");
		else
			g_string_append_printf(out, "  %-16s (none yet)\n", i == 0 ? "First response" : "Resolution");
		g_free(median);
		g_free(p90);
	}

	g_string_append(out, "\nBy priority\n");
	unsigned max = 0;
	for (int p = 0; p < TR_REPORT_PRIORITIES; p++)
		max = MAX(max, r->by_priority[p]);
	for (int p = 0; p < TR_REPORT_PRIORITIES; p++) {
		char *pct = percent_text(tr_report_percent(r->by_priority[p], r->tickets));
		g_string_append_printf(out, "  %-22s %6u %7s", priority_name(p), r->by_priority[p], pct);
		g_free(pct);
		text_bar(out, r->by_priority[p], max);
	}
	text_counts(out, "By channel", &r->by_channel, r->tickets);
	text_counts(out, "By category", &r->by_category, r->tickets);
	text_counts(out, "By team", &r->by_team, r->tickets);
	text_sla(out, r);
	text_counts(out, "Escalation reasons (escalated tickets)", &r->escalation_reasons, r->escalated);
	text_escalations(out, r);

	g_string_append(out, "\nTop repeated issues (same category, similar subject)\n");
	if (r->n_top_issues == 0)
		g_string_append(out, "  (none)\n");
	for (size_t i = 0; i < r->n_top_issues; i++) {
		const tr_report_issue *x = &r->top_issues[i];
		char *subject = clean(x->subject, 60);
		g_string_append_printf(out, "  %4u tickets, %3u customers, %3u open  ", x->tickets, x->requesters, x->open);
		pad(out, x->category, 12);
		g_string_append_printf(out, " %s\n", subject);
		g_free(subject);
	}

	g_string_append(out, "\nMass incidents\n");
	if (r->n_incidents == 0)
		g_string_append(out, "  (none)\n");
	for (size_t i = 0; i < r->n_incidents; i++) {
		const tr_report_incident *x = &r->incidents[i];
		char *subject = clean(x->subject, 60);
		g_string_append(out, "  ");
		pad(out, x->ticket, 12);
		g_string_append_printf(out, " %-3s %-9s %4u tickets (%u open)  %s\n", tr_priority_name(x->priority),
		                       x->status, x->children, x->open_children, subject);
		g_free(subject);
	}
}

/* ---------------------------------------------------------------- JSON */

/* A small writer: json-glib prints 33.3 as 33.299999999999997. */
typedef struct {
	GString *out;
	int depth;
	bool first;
} json_writer;

static void jw_quote(json_writer *w, const char *s)
{
	char *valid = g_utf8_make_valid(s, -1);
	g_string_append_c(w->out, '"');
	for (const unsigned char *p = (const unsigned char *)valid; *p != '\0'; p++) {
		switch (*p) {
		case '"': g_string_append(w->out, "\\\""); break;
		case '\\': g_string_append(w->out, "\\\\"); break;
		case '\n': g_string_append(w->out, "\\n"); break;
		case '\r': g_string_append(w->out, "\\r"); break;
		case '\t': g_string_append(w->out, "\\t"); break;
		default:
			if (*p < 0x20)
				g_string_append_printf(w->out, "\\u%04x", *p);
			else
				g_string_append_c(w->out, (char)*p);
		}
	}
	g_string_append_c(w->out, '"');
	g_free(valid);
}

static void jw_key(json_writer *w, const char *name)
{
	if (w->depth > 0) {
		if (!w->first)
			g_string_append_c(w->out, ',');
		g_string_append_c(w->out, '\n');
		for (int i = 0; i < w->depth; i++)
			g_string_append(w->out, "  ");
	}
	w->first = false;
	if (name != NULL) {
		jw_quote(w, name);
		g_string_append(w->out, ": ");
	}
}

static void jw_open(json_writer *w, const char *name, char brace)
{
	jw_key(w, name);
	g_string_append_c(w->out, brace);
	w->depth++;
	w->first = true;
}

static void jw_close(json_writer *w, char brace)
{
	w->depth--;
	if (!w->first) {
		g_string_append_c(w->out, '\n');
		for (int i = 0; i < w->depth; i++)
			g_string_append(w->out, "  ");
	}
	g_string_append_c(w->out, brace);
	w->first = false;
}

static void jw_string(json_writer *w, const char *name, const char *value)
{
	jw_key(w, name);
	if (value != NULL)
		jw_quote(w, value);
	else
		g_string_append(w->out, "null");
}

static void jw_int(json_writer *w, const char *name, int64_t value)
{
	jw_key(w, name);
	g_string_append_printf(w->out, "%" G_GINT64_FORMAT, (gint64)value);
}

static void jw_bool(json_writer *w, const char *name, bool value)
{
	jw_key(w, name);
	g_string_append(w->out, value ? "true" : "false");
}

/* One decimal, or null when p < 0 (nothing to divide by). */
static void jw_percent(json_writer *w, const char *name, double p)
{
	jw_key(w, name);
	if (p < 0) {
		g_string_append(w->out, "null");
	} else {
		char buf[G_ASCII_DTOSTR_BUF_SIZE];
		g_string_append(w->out, g_ascii_formatd(buf, sizeof(buf), "%.1f", p));
	}
}

static void jw_time(json_writer *w, const char *name, int64_t t)
{
	char *text = tr_json_time(t, 0);
	jw_string(w, name, text);
	g_free(text);
}

static void jw_counts(json_writer *w, const char *name, const tr_report_counts *c)
{
	jw_open(w, name, '{');
	for (size_t i = 0; i < c->n; i++)
		jw_int(w, c->items[i].name, c->items[i].count);
	jw_close(w, '}');
}

static void jw_clock(json_writer *w, const char *name, const tr_report_clock *c)
{
	jw_open(w, name, '{');
	jw_int(w, "met_on_time", c->met_on_time);
	jw_int(w, "met_late", c->met_late);
	jw_int(w, "open_within", c->open_within);
	jw_int(w, "open_breached", c->open_breached);
	jw_int(w, "no_target", c->no_target);
	jw_percent(w, "compliance_percent", tr_report_compliance(c));
	jw_close(w, '}');
}

static void jw_sla(json_writer *w, const char *name, const tr_report_sla *s)
{
	jw_open(w, name, '{');
	jw_int(w, "tickets", s->tickets);
	jw_clock(w, "first_response", &s->first_response);
	jw_clock(w, "resolution", &s->resolution);
	jw_close(w, '}');
}

static void jw_durations(json_writer *w, const char *name, const tr_report_durations *d)
{
	jw_open(w, name, '{');
	jw_int(w, "count", d->count);
	jw_key(w, "median");
	if (d->count > 0)
		g_string_append_printf(w->out, "%" G_GINT64_FORMAT, (gint64)d->median);
	else
		g_string_append(w->out, "null");
	jw_key(w, "p90");
	if (d->count > 0)
		g_string_append_printf(w->out, "%" G_GINT64_FORMAT, (gint64)d->p90);
	else
		g_string_append(w->out, "null");
	jw_close(w, '}');
}

void tr_cli_report_json(const tr_report *r, GString *out)
{
	json_writer jw = { out, 0, true };
	json_writer *w = &jw;
	jw_open(w, NULL, '{');
	jw_open(w, "window", '{');
	jw_time(w, "since", r->since);
	jw_time(w, "now", r->now);
	jw_int(w, "since_unix", r->since);
	jw_int(w, "now_unix", r->now);
	jw_close(w, '}');

	jw_open(w, "tickets", '{');
	jw_int(w, "total", r->tickets);
	jw_int(w, "unresolved", r->tickets - r->status_resolved);
	jw_open(w, "status", '{');
	jw_int(w, "open", r->status_open);
	jw_int(w, "waiting", r->status_waiting);
	jw_int(w, "paused", r->status_paused);
	jw_int(w, "resolved", r->status_resolved);
	jw_close(w, '}');
	jw_close(w, '}');

	jw_counts(w, "by_channel", &r->by_channel);
	jw_counts(w, "by_category", &r->by_category);
	jw_open(w, "by_priority", '{');
	for (int p = 0; p < TR_REPORT_PRIORITIES; p++)
		jw_int(w, priority_name(p), r->by_priority[p]);
	jw_close(w, '}');
	jw_counts(w, "by_team", &r->by_team);
	jw_counts(w, "by_trigger", &r->by_trigger);

	jw_open(w, "sla", '{');
	for (int p = 0; p < TR_REPORT_PRIORITIES; p++)
		jw_sla(w, priority_name(p), &r->sla[p]);
	jw_sla(w, "all", &r->sla_all);
	jw_close(w, '}');

	jw_open(w, "escalations", '{');
	jw_int(w, "escalated", r->escalated);
	jw_percent(w, "rate_percent", tr_report_percent(r->escalated, r->tickets));
	jw_int(w, "not_acknowledged_in_time", r->escalation_moved_up);
	jw_int(w, "open", r->open_escalations_total);
	jw_counts(w, "reasons", &r->escalation_reasons);
	jw_close(w, '}');

	jw_open(w, "reopens", '{');
	jw_int(w, "reopened", r->reopened);
	jw_int(w, "resolved_ever", r->resolved_ever);
	jw_percent(w, "rate_percent", tr_report_percent(r->reopened, r->resolved_ever));
	jw_int(w, "reopen_count", r->reopen_count);
	jw_close(w, '}');

	jw_durations(w, "first_response_seconds", &r->first_response);
	jw_durations(w, "resolution_seconds", &r->resolution);

	jw_open(w, "open_escalations", '[');
	for (size_t i = 0; i < r->n_open_escalations; i++) {
		const tr_report_escalation *e = &r->open_escalations[i];
		jw_open(w, NULL, '{');
		jw_string(w, "ticket", e->ticket);
		jw_string(w, "priority", tr_priority_name(e->priority));
		jw_string(w, "status", e->status);
		jw_string(w, "category", e->category);
		jw_string(w, "team", e->team);
		jw_string(w, "assignee", e->assignee);
		jw_string(w, "requester", e->requester);
		jw_string(w, "subject", e->subject);
		jw_string(w, "reasons", e->reasons);
		jw_bool(w, "incident", e->incident);
		jw_bool(w, "acknowledged", e->acknowledged);
		jw_int(w, "moved_up", e->moved_up);
		jw_time(w, "created", e->created_at);
		jw_time(w, "escalated_at", e->escalated_at);
		jw_int(w, "age_seconds", e->age);
		jw_close(w, '}');
	}
	jw_close(w, ']');

	jw_open(w, "top_issues", '[');
	for (size_t i = 0; i < r->n_top_issues; i++) {
		const tr_report_issue *x = &r->top_issues[i];
		jw_open(w, NULL, '{');
		jw_string(w, "category", x->category);
		jw_string(w, "subject", x->subject);
		jw_string(w, "key", x->key);
		jw_int(w, "tickets", x->tickets);
		jw_int(w, "requesters", x->requesters);
		jw_int(w, "open", x->open);
		jw_time(w, "first", x->first_at);
		jw_time(w, "last", x->last_at);
		jw_open(w, "ticket_ids", '[');
		for (unsigned k = 0; k < x->n_samples; k++)
			jw_string(w, NULL, x->samples[k]);
		jw_close(w, ']');
		jw_close(w, '}');
	}
	jw_close(w, ']');

	jw_open(w, "incidents", '[');
	for (size_t i = 0; i < r->n_incidents; i++) {
		const tr_report_incident *x = &r->incidents[i];
		jw_open(w, NULL, '{');
		jw_string(w, "ticket", x->ticket);
		jw_string(w, "priority", tr_priority_name(x->priority));
		jw_string(w, "status", x->status);
		jw_string(w, "subject", x->subject);
		jw_time(w, "created", x->created_at);
		jw_int(w, "children", x->children);
		jw_int(w, "open_children", x->open_children);
		jw_close(w, '}');
	}
	jw_close(w, ']');
	jw_close(w, '}');
	g_string_append_c(out, '\n');
}

/* ---------------------------------------------------------------- HTML */

/* Okabe-Ito colours: told apart with the common colour vision deficiencies. */
#define COLOUR_BAR "#0072B2"
#define COLOUR_ON_TIME "#009E73"
#define COLOUR_LATE "#E69F00"
#define COLOUR_OPEN_WITHIN "#56B4E9"
#define COLOUR_BREACHED "#D55E00"
#define COLOUR_NO_TARGET "#BBBBBB"
static const char *const priority_colours[TR_REPORT_PRIORITIES] = { "#D55E00", "#E69F00", "#0072B2", "#777777" };

/* Cleaned and escaped for text and attribute values alike. */
static void html_text(GString *out, const char *s, size_t max_chars)
{
	char *text = clean(s, max_chars);
	for (const char *p = text; *p != '\0'; p++) {
		switch (*p) {
		case '<': g_string_append(out, "&lt;"); break;
		case '>': g_string_append(out, "&gt;"); break;
		case '&': g_string_append(out, "&amp;"); break;
		case '"': g_string_append(out, "&quot;"); break;
		case '\'': g_string_append(out, "&#39;"); break;
		default: g_string_append_c(out, *p);
		}
	}
	g_free(text);
}

static void html_time(GString *out, int64_t t)
{
	char *iso = tr_json_time(t, 0), *text = utc_time(t);
	g_string_append_printf(out, "<time datetime=\"%s\">%s</time>", iso != NULL ? iso : "", text);
	g_free(iso);
	g_free(text);
}

static const char html_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	/* Defence in depth: even a string that escaped escaping could not run or fetch anything. */
	"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
	"<meta name=\"generator\" content=\"triage report\">\n";

static const char html_style[] =
	"<style>\n"
	":root{color-scheme:light;--fg:#1b1b1b;--muted:#555;--line:#cfd4da;--panel:#f5f7f9}\n"
	"body{font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif;"
	"color:var(--fg);background:#fff;margin:0}\n"
	"header,main,footer{max-width:1120px;margin:0 auto;padding:0 20px}\n"
	"header{padding-top:18px}\n"
	"h1{font-size:1.6em;margin:.2em 0}\n"
	"h2{font-size:1.25em;border-bottom:2px solid var(--line);padding-bottom:4px;margin:1.8em 0 .8em}\n"
	"h3{font-size:1em;margin:0 0 6px}\n"
	".window{color:var(--muted);margin:0}\n"
	".tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(165px,1fr));gap:10px;margin:16px 0;padding:0}\n"
	".tile{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:9px 12px;margin:0}\n"
	".tile dt{font-size:.78em;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}\n"
	".tile dd{margin:2px 0 0;font-size:1.45em;font-weight:600}\n"
	".tile dd small{font-size:.6em;font-weight:400;color:var(--muted)}\n"
	".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:14px}\n"
	"figure{margin:0;background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:10px 12px}\n"
	"figcaption{font-weight:600;margin-bottom:6px}\n"
	"svg.chart{width:100%;max-width:560px;height:auto;display:block}\n"
	"svg text{font:12px system-ui,-apple-system,\"Segoe UI\",Roboto,Arial,sans-serif;fill:#1b1b1b}\n"
	"svg .empty{fill:var(--muted);font-style:italic}\n"
	".legend{list-style:none;padding:0;margin:8px 0 0;display:flex;flex-wrap:wrap;gap:6px 16px;font-size:.9em}\n"
	".swatch{display:inline-block;width:12px;height:12px;margin-right:6px;vertical-align:-1px;"
	"border:1px solid rgba(0,0,0,.35)}\n"
	"table{border-collapse:collapse;width:100%;font-size:.92em;margin:.4em 0 1em}\n"
	"caption{text-align:left;font-weight:600;padding:4px 0}\n"
	"th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}\n"
	"th{background:var(--panel)}\n"
	".num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
	"td.subject{min-width:14em;overflow-wrap:anywhere}\n"
	".pri{font-weight:700;white-space:nowrap}\n"
	".id{white-space:nowrap}\n"
	".P1{color:#a33a00}.P2{color:#7a5200}\n"
	".no{color:#a33a00;font-weight:600}\n"
	".tag{display:inline-block;font-size:.78em;border:1px solid var(--line);border-radius:3px;padding:0 4px;"
	"margin-right:4px;background:#fff}\n"
	".empty{color:var(--muted);font-style:italic}\n"
	"footer{color:var(--muted);font-size:.85em;padding:24px 20px 30px}\n"
	"@media print{figure,tr{break-inside:avoid}.charts{grid-template-columns:1fr 1fr}}\n"
	"</style>\n</head>\n";

typedef struct {
	const char *label;
	unsigned value;
	const char *colour;
} html_bar;

/* A horizontal bar chart as inline SVG, titled and described for screen readers. */
static void svg_bars(GString *out, unsigned *serial, const char *title, const char *noun, const html_bar *bars, size_t n,
                     unsigned total)
{
	const int width = 540, label_w = 185, bar_max = 290, row_h = 26;
	unsigned id = ++*serial, max = 0;
	for (size_t i = 0; i < n; i++)
		max = MAX(max, bars[i].value);
	int height = n > 0 && max > 0 ? (int)n * row_h + 8 : 40;
	g_string_append(out, "<figure>\n<figcaption>");
	html_text(out, title, 0);
	g_string_append_printf(out, "</figcaption>\n<svg class=\"chart bars\" xmlns=\"http://www.w3.org/2000/svg\" "
	                       "role=\"img\" aria-labelledby=\"chart%u-title chart%u-desc\" viewBox=\"0 0 %d %d\" "
	                       "width=\"%d\" height=\"%d\">\n<title id=\"chart%u-title\">",
	                       id, id, width, height, width, height, id);
	html_text(out, title, 0);
	g_string_append_printf(out, "</title>\n<desc id=\"chart%u-desc\">", id);
	if (n == 0 || max == 0)
		g_string_append_printf(out, "No %s in this window.", noun);
	for (size_t i = 0; i < n && max > 0; i++) {
		g_string_append_printf(out, "%s", i > 0 ? "; " : "");
		html_text(out, bars[i].label, 0);
		g_string_append_printf(out, ": %u", bars[i].value);
	}
	g_string_append(out, "</desc>\n");
	if (n == 0 || max == 0) {
		g_string_append_printf(out, "<text class=\"empty\" x=\"10\" y=\"24\">No %s in this window</text>\n", noun);
	}
	for (size_t i = 0; i < n && max > 0; i++) {
		int y = 4 + (int)i * row_h;
		int w = (int)((double)bars[i].value * bar_max / max + 0.5);
		if (bars[i].value > 0 && w < 2)
			w = 2;
		char *pct = percent_text(tr_report_percent(bars[i].value, total));
		g_string_append(out, "<g class=\"bar\"><title>");
		html_text(out, bars[i].label, 0);
		g_string_append_printf(out, ": %u %s (%s)</title>", bars[i].value, noun, pct);
		g_string_append_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label_w - 8, y + 14);
		html_text(out, bars[i].label, 26);
		g_string_append_printf(out, "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"18\" rx=\"2\" fill=\"%s\"/>"
		                       "<text x=\"%d\" y=\"%d\">%u</text></g>\n",
		                       label_w, y, w, bars[i].colour, label_w + w + 6, y + 14, bars[i].value);
		g_free(pct);
	}
	g_string_append(out, "</svg>\n</figure>\n");
}

static void svg_counts(GString *out, unsigned *serial, const char *title, const tr_report_counts *c, unsigned total)
{
	html_bar *bars = g_new0(html_bar, c->n + 1);
	for (size_t i = 0; i < c->n; i++)
		bars[i] = (html_bar){ c->items[i].name, c->items[i].count, COLOUR_BAR };
	svg_bars(out, serial, title, "tickets", bars, c->n, total);
	g_free(bars);
}

static const struct {
	const char *name, *colour;
} sla_states[] = {
	{ "met on time", COLOUR_ON_TIME },
	{ "met late", COLOUR_LATE },
	{ "open, within target", COLOUR_OPEN_WITHIN },
	{ "open, breached", COLOUR_BREACHED },
	{ "no target", COLOUR_NO_TARGET },
};

/* SLA states of one clock per priority as 100 % stacked bars. */
static void svg_sla(GString *out, unsigned *serial, const tr_report *r, bool resolution)
{
	const int width = 520, label_w = 70, bar_w = 300, row_h = 30;
	const char *clock = resolution ? "Resolution" : "First response";
	unsigned id = ++*serial;
	int rows = TR_REPORT_PRIORITIES + 1;
	int height = rows * row_h + 6;
	g_string_append_printf(out, "<figure>\n<figcaption>%s SLA by priority</figcaption>\n"
	                       "<svg class=\"chart stacked\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" "
	                       "aria-labelledby=\"chart%u-title chart%u-desc\" viewBox=\"0 0 %d %d\" width=\"%d\" "
	                       "height=\"%d\">\n<title id=\"chart%u-title\">%s SLA compliance by priority</title>\n"
	                       "<desc id=\"chart%u-desc\">",
	                       clock, id, id, width, height, width, height, id, clock, id);
	for (int p = 0; p < rows; p++) {
		const tr_report_sla *s = p < TR_REPORT_PRIORITIES ? &r->sla[p] : &r->sla_all;
		const tr_report_clock *c = resolution ? &s->resolution : &s->first_response;
		g_string_append_printf(out, "%s%s: %u on time, %u late, %u open within target, %u open breached, "
		                       "%u without target",
		                       p > 0 ? "; " : "", p < TR_REPORT_PRIORITIES ? priority_name(p) : "all",
		                       c->met_on_time, c->met_late, c->open_within, c->open_breached, c->no_target);
	}
	g_string_append(out, "</desc>\n");
	for (int p = 0; p < rows; p++) {
		const tr_report_sla *s = p < TR_REPORT_PRIORITIES ? &r->sla[p] : &r->sla_all;
		const tr_report_clock *c = resolution ? &s->resolution : &s->first_response;
		const char *label = p < TR_REPORT_PRIORITIES ? priority_name(p) : "All";
		unsigned values[] = { c->met_on_time, c->met_late, c->open_within, c->open_breached, c->no_target };
		unsigned total = clock_total(c);
		int y = 4 + p * row_h;
		g_string_append_printf(out, "<g class=\"row\"><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s (%u)</text>",
		                       label_w - 8, y + 15, label, total);
		if (total == 0) {
			g_string_append_printf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"20\" fill=\"none\" "
			                       "stroke=\"#cfd4da\"/><text class=\"empty\" x=\"%d\" y=\"%d\">no tickets</text>",
			                       label_w, y, bar_w, label_w + 8, y + 15);
		}
		unsigned cum = 0;
		for (size_t k = 0; k < G_N_ELEMENTS(values) && total > 0; k++) {
			if (values[k] == 0)
				continue;
			int x0 = label_w + (int)((double)cum * bar_w / total + 0.5);
			cum += values[k];
			int x1 = label_w + (int)((double)cum * bar_w / total + 0.5);
			g_string_append_printf(out, "<rect class=\"seg\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"20\" fill=\"%s\">"
			                       "<title>%s %s, %s: %u of %u</title></rect>",
			                       x0, y, MAX(x1 - x0, 1), sla_states[k].colour, label, clock,
			                       sla_states[k].name, values[k], total);
			if (x1 - x0 >= 24)
				g_string_append_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" aria-hidden=\"true\">%u</text>",
				                       (x0 + x1) / 2, y + 15, values[k]);
		}
		double compliance = tr_report_compliance(c);
		if (compliance < 0)
			g_string_append_printf(out, "<text x=\"%d\" y=\"%d\">none decided</text></g>\n", label_w + bar_w + 8,
			                       y + 15);
		else
			g_string_append_printf(out, "<text x=\"%d\" y=\"%d\">%.1f %% on time</text></g>\n", label_w + bar_w + 8,
			                       y + 15, compliance);
	}
	g_string_append(out, "</svg>\n</figure>\n");
}

static void html_tile(GString *out, const char *label, const char *value, const char *note)
{
	g_string_append_printf(out, "<div class=\"tile\"><dt>%s</dt><dd>%s", label, value);
	if (note != NULL && *note != '\0')
		g_string_append_printf(out, " <small>%s</small>", note);
	g_string_append(out, "</dd></div>\n");
}

static void html_tiles(GString *out, const tr_report *r)
{
	char buf[64], *a, *b;
	g_string_append(out, "<dl class=\"tiles\">\n");
	g_snprintf(buf, sizeof(buf), "%u", r->tickets);
	html_tile(out, "Tickets", buf, NULL);
	g_snprintf(buf, sizeof(buf), "%u", r->tickets - r->status_resolved);
	html_tile(out, "Unresolved", buf, NULL);
	g_snprintf(buf, sizeof(buf), "%u", r->escalated);
	a = percent_text(tr_report_percent(r->escalated, r->tickets));
	html_tile(out, "Escalated", buf, a);
	g_free(a);
	g_snprintf(buf, sizeof(buf), "%u", r->open_escalations_total);
	html_tile(out, "Open escalations", buf, "any age");
	a = percent_text(tr_report_percent(r->reopened, r->resolved_ever));
	b = g_strdup_printf("%u of %u resolved", r->reopened, r->resolved_ever);
	html_tile(out, "Reopen rate", a, b);
	g_free(a);
	g_free(b);
	const tr_report_durations *d[2] = { &r->first_response, &r->resolution };
	const char *names[2][2] = { { "First response, median", "First response, p90" },
	                            { "Resolution, median", "Resolution, p90" } };
	for (int i = 0; i < 2; i++) {
		a = d[i]->count > 0 ? tr_cli_report_duration(d[i]->median) : g_strdup("-");
		b = g_strdup_printf("%u ticket%s", d[i]->count, d[i]->count == 1 ? "" : "s");
		html_tile(out, names[i][0], a, b);
		g_free(a);
		a = d[i]->count > 0 ? tr_cli_report_duration(d[i]->p90) : g_strdup("-");
		html_tile(out, names[i][1], a, NULL);
		g_free(a);
		g_free(b);
	}
	a = percent_text(tr_report_compliance(&r->sla_all.first_response));
	html_tile(out, "First-response SLA met", a, NULL);
	g_free(a);
	a = percent_text(tr_report_compliance(&r->sla_all.resolution));
	html_tile(out, "Resolution SLA met", a, NULL);
	g_free(a);
	g_string_append(out, "</dl>\n");
}

static void html_sla_table(GString *out, const tr_report *r)
{
	g_string_append(out, "<table class=\"sla\">\n<caption>SLA clocks by priority</caption>\n<thead><tr>"
	                     "<th scope=\"col\">Clock</th><th scope=\"col\">Priority</th>"
	                     "<th scope=\"col\" class=\"num\">Tickets</th><th scope=\"col\" class=\"num\">Met on time</th>"
	                     "<th scope=\"col\" class=\"num\">Met late</th><th scope=\"col\" class=\"num\">Open, within</th>"
	                     "<th scope=\"col\" class=\"num\">Open, breached</th><th scope=\"col\" class=\"num\">No target</th>"
	                     "<th scope=\"col\" class=\"num\">Compliance</th></tr></thead>\n<tbody>\n");
	for (int clock = 0; clock < 2; clock++) {
		for (int p = 0; p <= TR_REPORT_PRIORITIES; p++) {
			const tr_report_sla *s = p < TR_REPORT_PRIORITIES ? &r->sla[p] : &r->sla_all;
			const tr_report_clock *c = clock == 1 ? &s->resolution : &s->first_response;
			char *compliance = percent_text(tr_report_compliance(c));
			g_string_append_printf(out, "<tr><td>%s</td><td>%s</td><td class=\"num\">%u</td><td class=\"num\">%u</td>"
			                       "<td class=\"num\">%u</td><td class=\"num\">%u</td><td class=\"num\">%u</td>"
			                       "<td class=\"num\">%u</td><td class=\"num\">%s</td></tr>\n",
			                       clock == 0 ? "first response" : "resolution",
			                       p < TR_REPORT_PRIORITIES ? priority_name(p) : "all", clock_total(c),
			                       c->met_on_time, c->met_late, c->open_within, c->open_breached, c->no_target,
			                       compliance);
			g_free(compliance);
		}
	}
	g_string_append(out, "</tbody>\n</table>\n");
}

static void html_escalations(GString *out, const tr_report *r)
{
	g_string_append_printf(out, "<table class=\"escalations\">\n<caption>Open escalations: %u "
	                       "(unresolved, any age; most urgent first)</caption>\n", r->open_escalations_total);
	if (r->n_open_escalations == 0) {
		g_string_append(out, "<tbody><tr><td class=\"empty\">No open escalations.</td></tr></tbody>\n</table>\n");
		return;
	}
	g_string_append(out, "<thead><tr><th scope=\"col\">Ticket</th><th scope=\"col\">Priority</th>"
	                     "<th scope=\"col\" class=\"num\">Open for</th><th scope=\"col\">Acknowledged</th>"
	                     "<th scope=\"col\">Team</th><th scope=\"col\">Assignee</th><th scope=\"col\">Category</th>"
	                     "<th scope=\"col\">Subject</th><th scope=\"col\">Reasons</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < r->n_open_escalations; i++) {
		const tr_report_escalation *e = &r->open_escalations[i];
		char *age = tr_cli_report_duration(e->age);
		const char *pri = tr_priority_name(e->priority);
		g_string_append(out, "<tr><td class=\"id\">");
		html_text(out, e->ticket, 0);
		g_string_append_printf(out, "</td><td class=\"pri %s\">%s</td><td class=\"num\">%s</td>", pri, pri, age);
		if (e->acknowledged)
			g_string_append(out, "<td>yes</td>");
		else if (e->moved_up > 0)
			g_string_append_printf(out, "<td class=\"no\">no, moved up to the %s</td>",
			                       e->moved_up >= 2 ? "manager" : "secondary on-call");
		else
			g_string_append(out, "<td class=\"no\">no</td>");
		g_string_append(out, "<td>");
		html_text(out, e->team, 40);
		g_string_append(out, "</td><td>");
		html_text(out, e->assignee != NULL ? e->assignee : "-", 40);
		g_string_append(out, "</td><td>");
		html_text(out, e->category, 40);
		g_string_append(out, "</td><td class=\"subject\">");
		if (e->incident)
			g_string_append(out, "<span class=\"tag\">incident</span>");
		html_text(out, e->subject, SUBJECT_CHARS);
		g_string_append(out, "</td><td>");
		html_text(out, e->reasons, 200);
		g_string_append(out, "</td></tr>\n");
		g_free(age);
	}
	if (r->open_escalations_total > r->n_open_escalations)
		g_string_append_printf(out, "<tr><td colspan=\"9\" class=\"empty\">… and %u more</td></tr>\n",
		                       r->open_escalations_total - (unsigned)r->n_open_escalations);
	g_string_append(out, "</tbody>\n</table>\n");
}

static void html_issues(GString *out, const tr_report *r)
{
	g_string_append(out, "<table class=\"issues\">\n<caption>Tickets with the same category and a similar "
	                     "subject</caption>\n");
	if (r->n_top_issues == 0) {
		g_string_append(out, "<tbody><tr><td class=\"empty\">No repeated issues.</td></tr></tbody>\n</table>\n");
		return;
	}
	g_string_append(out, "<thead><tr><th scope=\"col\" class=\"num\">Tickets</th>"
	                     "<th scope=\"col\" class=\"num\">Customers</th><th scope=\"col\" class=\"num\">Open</th>"
	                     "<th scope=\"col\">Category</th><th scope=\"col\">Subject</th><th scope=\"col\">First</th>"
	                     "<th scope=\"col\">Latest</th><th scope=\"col\">Latest tickets</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < r->n_top_issues; i++) {
		const tr_report_issue *x = &r->top_issues[i];
		g_string_append_printf(out, "<tr><td class=\"num\">%u</td><td class=\"num\">%u</td><td class=\"num\">%u</td><td>",
		                       x->tickets, x->requesters, x->open);
		html_text(out, x->category, 40);
		g_string_append(out, "</td><td class=\"subject\">");
		html_text(out, x->subject, SUBJECT_CHARS);
		g_string_append(out, "</td><td>");
		html_time(out, x->first_at);
		g_string_append(out, "</td><td>");
		html_time(out, x->last_at);
		g_string_append(out, "</td><td>");
		for (unsigned k = 0; k < x->n_samples; k++) {
			g_string_append(out, k > 0 ? ", <span class=\"id\">" : "<span class=\"id\">");
			html_text(out, x->samples[k], 0);
			g_string_append(out, "</span>");
		}
		g_string_append(out, "</td></tr>\n");
	}
	g_string_append(out, "</tbody>\n</table>\n");
}

static void html_incidents(GString *out, const tr_report *r)
{
	g_string_append(out, "<table class=\"incidents\">\n<caption>Mass incidents opened in the window</caption>\n");
	if (r->n_incidents == 0) {
		g_string_append(out, "<tbody><tr><td class=\"empty\">No mass incidents.</td></tr></tbody>\n</table>\n");
		return;
	}
	g_string_append(out, "<thead><tr><th scope=\"col\">Ticket</th><th scope=\"col\">Priority</th>"
	                     "<th scope=\"col\">Status</th><th scope=\"col\" class=\"num\">Tickets</th>"
	                     "<th scope=\"col\" class=\"num\">Open</th><th scope=\"col\">Opened</th>"
	                     "<th scope=\"col\">Subject</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < r->n_incidents; i++) {
		const tr_report_incident *x = &r->incidents[i];
		const char *pri = tr_priority_name(x->priority);
		g_string_append(out, "<tr><td class=\"id\">");
		html_text(out, x->ticket, 0);
		g_string_append_printf(out, "</td><td class=\"pri %s\">%s</td><td>", pri, pri);
		html_text(out, x->status, 20);
		g_string_append_printf(out, "</td><td class=\"num\">%u</td><td class=\"num\">%u</td><td>", x->children,
		                       x->open_children);
		html_time(out, x->created_at);
		g_string_append(out, "</td><td class=\"subject\">");
		html_text(out, x->subject, SUBJECT_CHARS);
		g_string_append(out, "</td></tr>\n");
	}
	g_string_append(out, "</tbody>\n</table>\n");
}

void tr_cli_report_html(const tr_report *r, GString *out)
{
	unsigned serial = 0;  /* ids of the charts' titles and descriptions */
	char *since = utc_time(r->since), *now = utc_time(r->now), *len = window_length(r);
	g_string_append(out, html_head);
	g_string_append_printf(out, "<title>Support report %s to %s — triage</title>\n", since, now);
	g_string_append(out, html_style);
	g_string_append(out, "<body>\n<header>\n<h1>Support report</h1>\n<p class=\"window\">Tickets created from ");
	html_time(out, r->since);
	g_string_append(out, " to ");
	html_time(out, r->now);
	g_string_append_printf(out, " (%s).</p>\n", len);
	html_tiles(out, r);
	g_string_append(out, "</header>\n<main>\n");
	g_free(since);
	g_free(now);
	g_free(len);

	g_string_append(out, "<section id=\"volume\" aria-labelledby=\"volume-h\">\n<h2 id=\"volume-h\">Volume</h2>\n"
	                     "<div class=\"charts\">\n");
	svg_counts(out, &serial, "Tickets by category", &r->by_category, r->tickets);
	html_bar pbars[TR_REPORT_PRIORITIES];
	for (int p = 0; p < TR_REPORT_PRIORITIES; p++)
		pbars[p] = (html_bar){ priority_name(p), r->by_priority[p], priority_colours[p] };
	svg_bars(out, &serial, "Tickets by priority", "tickets", pbars, r->tickets > 0 ? TR_REPORT_PRIORITIES : 0, r->tickets);
	svg_counts(out, &serial, "Tickets by channel", &r->by_channel, r->tickets);
	svg_counts(out, &serial, "Tickets by team", &r->by_team, r->tickets);
	g_string_append(out, "</div>\n</section>\n");

	g_string_append(out, "<section id=\"sla\" aria-labelledby=\"sla-h\">\n<h2 id=\"sla-h\">SLA compliance</h2>\n"
	                     "<div class=\"charts\">\n");
	svg_sla(out, &serial, r, false);
	svg_sla(out, &serial, r, true);
	g_string_append(out, "</div>\n<ul class=\"legend\">\n");
	for (size_t k = 0; k < G_N_ELEMENTS(sla_states); k++)
		g_string_append_printf(out, "<li><span class=\"swatch\" style=\"background:%s\"></span>%s</li>\n",
		                       sla_states[k].colour, sla_states[k].name);
	g_string_append(out, "</ul>\n<p>Compliance is the share of decided clocks (met on time, met late, open and "
	                     "breached) that were met on time.</p>\n");
	html_sla_table(out, r);
	g_string_append(out, "</section>\n");

	g_string_append(out, "<section id=\"escalations\" aria-labelledby=\"escalations-h\">\n"
	                     "<h2 id=\"escalations-h\">Escalations</h2>\n");
	char *rate = percent_text(tr_report_percent(r->escalated, r->tickets));
	g_string_append_printf(out, "<p>%u of %u tickets escalated (%s); %u of them not acknowledged in time "
	                       "(moved up the on-call ladder).</p>\n<div class=\"charts\">\n",
	                       r->escalated, r->tickets, rate, r->escalation_moved_up);
	g_free(rate);
	html_bar *rbars = g_new0(html_bar, r->escalation_reasons.n + 1);
	for (size_t i = 0; i < r->escalation_reasons.n; i++)
		rbars[i] = (html_bar){ r->escalation_reasons.items[i].name, r->escalation_reasons.items[i].count,
		                       COLOUR_BREACHED };
	svg_bars(out, &serial, "Escalation reasons", "escalated tickets", rbars, r->escalation_reasons.n, r->escalated);
	g_free(rbars);
	svg_counts(out, &serial, "Tickets by trigger", &r->by_trigger, r->tickets);
	g_string_append(out, "</div>\n");
	html_escalations(out, r);
	g_string_append(out, "</section>\n");

	g_string_append(out, "<section id=\"issues\" aria-labelledby=\"issues-h\">\n"
	                     "<h2 id=\"issues-h\">Top repeated issues</h2>\n");
	html_issues(out, r);
	g_string_append(out, "</section>\n<section id=\"incidents\" aria-labelledby=\"incidents-h\">\n"
	                     "<h2 id=\"incidents-h\">Mass incidents</h2>\n");
	html_incidents(out, r);
	g_string_append(out, "</section>\n</main>\n<footer>Generated by <code>triage report</code>. "
	                     "Every figure is defined in docs/report.md.</footer>\n</body>\n</html>\n");
}

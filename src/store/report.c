/* report.c — the dashboard's figures from one snapshot of the store; see report.h */
#include "store/report.h"

#include <stdlib.h>
#include <string.h>

#include "store/sla.h"
#include "store/store-private.h"
#include "store/ticket.h"

#define DEFAULT_TOP_ISSUES 10
#define DEFAULT_MIN_REPEAT 2
#define DEFAULT_MAX_ESCALATIONS 200
/* A leading [tag] longer than this is text, not a tag. */
#define TAG_MAX_BYTES 64

/* ---------------------------------------------------------------- subjects */

/* Reply and forward prefixes in the languages we see (lowercase). */
static const char *const reply_prefixes[] = {
	"re", "fw", "fwd", "aw", "wg", "sv", "vs", "antw", "doorst", "tr", "rv", "enc", "res", "r",
	"odp", "ynt", "fs", NULL,
};

/* Length of a "Re:", "RE :", "Re[2]:", "AW:" prefix at p, or 0. */
static size_t reply_prefix_len(const char *p)
{
	size_t n = 0;
	while (n < 8 && g_ascii_isalpha(p[n]))
		n++;
	if (n == 0 || n == 8)
		return 0;
	bool known = false;
	for (const char *const *r = reply_prefixes; *r != NULL && !known; r++)
		known = strlen(*r) == n && g_ascii_strncasecmp(p, *r, n) == 0;
	if (!known)
		return 0;
	size_t i = n;
	if (p[i] == '[' || p[i] == '(') {  /* a counter: Re[2]: */
		char close = p[i] == '[' ? ']' : ')';
		size_t digits = strspn(p + i + 1, "0123456789");
		if (digits == 0 || p[i + 1 + digits] != close)
			return 0;
		i += digits + 2;
	}
	while (p[i] == ' ')
		i++;
	return p[i] == ':' ? i + 1 : 0;
}

/* Length of a leading "[tag]" at p, or 0. */
static size_t leading_tag_len(const char *p)
{
	if (*p != '[')
		return 0;
	for (size_t i = 1; i < TAG_MAX_BYTES && p[i] != '\0'; i++) {
		if (p[i] == '[')
			return 0;
		if (p[i] == ']')
			return i > 1 ? i + 1 : 0;
	}
	return 0;
}

static const char *skip_prefixes(const char *p)
{
	for (;;) {
		while (g_ascii_isspace(*p))
			p++;
		size_t n = reply_prefix_len(p);
		if (n == 0)
			n = leading_tag_len(p);
		if (n == 0)
			return p;
		p += n;
	}
}

char *tr_report_subject_key(const char *subject, const char *ticket_prefix)
{
	char *valid = g_utf8_make_valid(subject != NULL ? subject : "", -1);
	char *stripped = tr_ticket_strip_tags(skip_prefixes(valid), ticket_prefix);
	char *folded = g_utf8_casefold(stripped, -1);
	g_free(stripped);
	g_free(valid);
	/* Words of letters and digits, one space apart. */
	GString *words = g_string_new(NULL);
	bool gap = false;
	for (const char *p = folded; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (!g_unichar_isalnum(c)) {
			gap = true;
			continue;
		}
		if (gap && words->len > 0)
			g_string_append_c(words, ' ');
		gap = false;
		g_string_append_unichar(words, c);
	}
	g_free(folded);
	/* Order numbers, invoice numbers, years: one issue, many numbers. */
	GString *key = g_string_sized_new(words->len);
	for (size_t i = 0; i < words->len;) {
		size_t run = strspn(words->str + i, "0123456789");
		if (run >= 4) {
			g_string_append_c(key, '#');
			i += run;
		} else if (run > 0) {
			g_string_append_len(key, words->str + i, (gssize)run);
			i += run;
		} else {
			g_string_append_c(key, words->str[i++]);
		}
	}
	g_string_free(words, TRUE);
	return g_string_free(key, FALSE);
}

char *tr_report_subject_display(const char *subject)
{
	char *valid = g_utf8_make_valid(subject != NULL ? subject : "", -1);
	char *out = g_strdup(skip_prefixes(valid));
	g_free(valid);
	return g_strstrip(out);
}

/* ---------------------------------------------------------------- figures */

double tr_report_percent(unsigned part, unsigned whole)
{
	return whole > 0 ? 100.0 * part / whole : -1.0;
}

double tr_report_compliance(const tr_report_clock *c)
{
	return tr_report_percent(c->met_on_time, c->met_on_time + c->met_late + c->open_breached);
}

/* name -> unsigned count */
static GHashTable *tally_new(void)
{
	return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

static void tally(GHashTable *h, const char *name)
{
	unsigned *n = g_hash_table_lookup(h, name);
	if (n == NULL) {
		n = g_new0(unsigned, 1);
		g_hash_table_insert(h, g_strdup(name), n);
	}
	(*n)++;
}

static int compare_counts(const void *a, const void *b)
{
	const tr_report_count *x = a, *y = b;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void counts_take(tr_report_counts *out, GHashTable *h)
{
	out->n = g_hash_table_size(h);
	out->items = g_new0(tr_report_count, out->n + 1);
	GHashTableIter it;
	gpointer key, value;
	size_t i = 0;
	g_hash_table_iter_init(&it, h);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		out->items[i].name = g_strdup(key);
		out->items[i].count = *(unsigned *)value;
		i++;
	}
	if (out->n > 1)
		qsort(out->items, out->n, sizeof(*out->items), compare_counts);
	g_hash_table_destroy(h);
}

static void counts_clear(tr_report_counts *c)
{
	for (size_t i = 0; i < c->n; i++)
		g_free(c->items[i].name);
	g_free(c->items);
	memset(c, 0, sizeof(*c));
}

static int compare_int64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least p % of values at or below it. */
static void durations_take(tr_report_durations *out, GArray *values)
{
	memset(out, 0, sizeof(*out));
	out->count = values->len;
	if (values->len > 0) {
		int64_t *v = (int64_t *)(void *)values->data;
		qsort(v, values->len, sizeof(int64_t), compare_int64);
		size_t n = values->len;
		out->median = v[(n * 50 + 99) / 100 - 1];
		out->p90 = v[(n * 90 + 99) / 100 - 1];
	}
	g_array_free(values, TRUE);
}

/*
 * One clock of one ticket.  Late (or breached) when the ladder recorded
 * its 100 % step, when more than the target was consumed, or when exactly
 * the target was consumed and the due time has passed: a business clock
 * stands at its target outside business hours while the customer waits.
 */
static void count_clock(tr_report_clock *c, int64_t target, bool stopped, int64_t stopped_at, int64_t consumed,
                        int64_t due, bool ladder_breach, int64_t now)
{
	if (target <= 0) {
		c->no_target++;
		return;
	}
	bool late = ladder_breach || consumed > target ||
	            (consumed == target && due > 0 && (stopped ? stopped_at : now) > due);
	if (stopped) {
		if (late)
			c->met_late++;
		else
			c->met_on_time++;
	} else if (late) {
		c->open_breached++;
	} else {
		c->open_within++;
	}
}

static void clock_add(tr_report_clock *sum, const tr_report_clock *c)
{
	sum->met_on_time += c->met_on_time;
	sum->met_late += c->met_late;
	sum->open_within += c->open_within;
	sum->open_breached += c->open_breached;
	sum->no_target += c->no_target;
}

static int priority_index(int priority)
{
	return CLAMP(priority, 1, TR_REPORT_PRIORITIES) - 1;
}

/* "trigger security, priority P1, rule score 12.0 >= 10.0" -> each reason once. */
static void tally_reasons(GHashTable *reasons, const char *detail)
{
	if (detail == NULL || *detail == '\0') {
		tally(reasons, "unspecified");
		return;
	}
	char **parts = g_strsplit(detail, ",", -1);
	GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
	for (char **p = parts; *p != NULL; p++) {
		char *reason = g_strstrip(*p);
		if (*reason == '\0')
			continue;
		if (g_str_has_prefix(reason, "rule score"))
			reason[strlen("rule score")] = '\0';
		if (g_hash_table_add(seen, reason))
			tally(reasons, reason);
	}
	g_hash_table_destroy(seen);
	g_strfreev(parts);
}

/* ---------------------------------------------------------------- repeated issues */

typedef struct {
	int64_t id, created_at;
} issue_ticket;

typedef struct {
	char *category, *key, *subject;
	unsigned open;
	int64_t first_at, last_at;
	GHashTable *requesters;
	GArray *members;   /* issue_ticket, oldest first */
} issue_acc;

static void issue_acc_free(gpointer p)
{
	issue_acc *a = p;
	g_free(a->category);
	g_free(a->key);
	g_free(a->subject);
	g_hash_table_destroy(a->requesters);
	g_array_free(a->members, TRUE);
	g_free(a);
}

static void issue_add(GHashTable *issues, const char *prefix, int64_t id, int64_t created_at, const char *category,
                      const char *subject, const char *requester, bool open)
{
	char *key = tr_report_subject_key(subject, prefix);
	if (*key == '\0') {
		g_free(key);
		return;
	}
	char *group = g_strconcat(category, "\n", key, NULL);
	issue_acc *a = g_hash_table_lookup(issues, group);
	if (a == NULL) {
		a = g_new0(issue_acc, 1);
		a->category = g_strdup(category);
		a->key = key;
		a->first_at = created_at;
		a->requesters = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		a->members = g_array_new(FALSE, FALSE, sizeof(issue_ticket));
		g_hash_table_insert(issues, group, a);
	} else {
		g_free(key);
		g_free(group);
	}
	/* Rows come oldest first: the last one seen is the latest. */
	g_free(a->subject);
	a->subject = tr_report_subject_display(subject);
	a->first_at = MIN(a->first_at, created_at);
	a->last_at = MAX(a->last_at, created_at);
	if (open)
		a->open++;
	if (!g_hash_table_contains(a->requesters, requester))
		g_hash_table_add(a->requesters, g_strdup(requester));
	issue_ticket t = { id, created_at };
	g_array_append_val(a->members, t);
}

static int compare_issues(const void *pa, const void *pb)
{
	const tr_report_issue *a = pa, *b = pb;
	if (a->tickets != b->tickets)
		return a->tickets > b->tickets ? -1 : 1;
	if (a->requesters != b->requesters)
		return a->requesters > b->requesters ? -1 : 1;
	if (a->last_at != b->last_at)
		return a->last_at > b->last_at ? -1 : 1;
	int c = strcmp(a->category, b->category);
	return c != 0 ? c : strcmp(a->key, b->key);
}

static void issues_take(tr_report *r, tr_store *store, GHashTable *issues, unsigned top, unsigned min_repeat)
{
	GArray *out = g_array_new(FALSE, TRUE, sizeof(tr_report_issue));
	GHashTableIter it;
	gpointer value;
	g_hash_table_iter_init(&it, issues);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		issue_acc *a = value;
		if (a->members->len < min_repeat)
			continue;
		tr_report_issue issue = {
			.category = a->category, .key = a->key, .subject = a->subject,
			.tickets = a->members->len, .requesters = g_hash_table_size(a->requesters), .open = a->open,
			.first_at = a->first_at, .last_at = a->last_at,
		};
		a->category = a->key = a->subject = NULL;
		for (guint i = a->members->len; i > 0 && issue.n_samples < TR_REPORT_ISSUE_SAMPLES; i--) {
			int64_t id = g_array_index(a->members, issue_ticket, i - 1).id;
			tr_store_format_ticket(store, id, issue.samples[issue.n_samples++], sizeof(issue.samples[0]));
		}
		g_array_append_val(out, issue);
	}
	if (out->len > 1)
		qsort(out->data, out->len, sizeof(tr_report_issue), compare_issues);
	for (guint i = top; i < out->len; i++) {
		tr_report_issue *x = &g_array_index(out, tr_report_issue, i);
		g_free(x->category);
		g_free(x->key);
		g_free(x->subject);
	}
	if (out->len > top)
		g_array_set_size(out, top);
	r->n_top_issues = out->len;
	r->top_issues = (tr_report_issue *)(void *)g_array_free(out, FALSE);
}

/* ---------------------------------------------------------------- queries */

enum {
	W_ID, W_STATUS, W_CHANNEL, W_REQUESTER, W_SUBJECT, W_CATEGORY, W_PRIORITY, W_TEAM, W_TRIGGERS,
	W_ESCALATED, W_CREATED, W_FIRST_RESPONSE, W_RESOLVED, W_REOPENED, W_CALENDAR,
	W_FR_TARGET, W_FR_BUSINESS, W_FR_CONSUMED, W_FR_DUE,
	W_RES_TARGET, W_RES_BUSINESS, W_RES_CONSUMED, W_RES_DUE, W_CLOCK_SINCE,
	W_FR_BREACHED, W_RES_BREACHED, W_ESCALATION_REASONS, W_MOVED_UP,
};

static const char window_sql[] =
	"SELECT t.id, t.status, t.channel, t.requester, t.subject, t.category, t.priority, t.team, t.triggers, "
	"t.escalated, t.created_at, t.first_response_at, t.resolved_at, t.reopened, t.calendar, "
	"t.fr_target, t.fr_business, t.fr_consumed, t.fr_due, "
	"t.res_target, t.res_business, t.res_consumed, t.res_due, t.clock_since, "
	"EXISTS (SELECT 1 FROM sla_ladder l WHERE l.ticket_id = t.id AND l.clock = 'first_response' "
	"AND l.step >= 100), "
	"EXISTS (SELECT 1 FROM sla_ladder l WHERE l.ticket_id = t.id AND l.clock = 'resolution' "
	"AND l.step >= 100), "
	"(SELECT e.detail FROM events e WHERE e.ticket_id = t.id AND e.kind = 'escalated' ORDER BY e.id LIMIT 1), "
	"(SELECT max(l.step) FROM sla_ladder l WHERE l.ticket_id = t.id AND l.clock = 'escalation') "
	"FROM tickets t WHERE t.is_incident = 0 AND t.created_at >= ?1 AND t.created_at <= ?2 "
	"ORDER BY t.created_at, t.id";

static const char *column_text(sqlite3_stmt *st, int col)
{
	const unsigned char *text = sqlite3_column_text(st, col);
	return text != NULL ? (const char *)text : "";
}

static bool step_ok(tr_store *store, sqlite3_stmt *st, int rc, const char *what, GError **error)
{
	if (rc == SQLITE_DONE)
		return true;
	tr_store_error(store, error, rc, what);
	sqlite3_reset(st);
	return false;
}

typedef struct {
	GHashTable *channels, *categories, *teams, *triggers, *reasons, *issues;
	GArray *first_response, *resolution;
} window_acc;

static void window_row(tr_report *r, tr_store *store, const tr_policy *policy, sqlite3_stmt *st, window_acc *acc)
{
	int64_t now = r->now;
	const char *status = column_text(st, W_STATUS);
	bool resolved = strcmp(status, "resolved") == 0;
	int p = priority_index(sqlite3_column_int(st, W_PRIORITY));
	r->tickets++;
	if (resolved)
		r->status_resolved++;
	else if (strcmp(status, "waiting") == 0)
		r->status_waiting++;
	else if (strcmp(status, "paused") == 0)
		r->status_paused++;
	else
		r->status_open++;
	tally(acc->channels, column_text(st, W_CHANNEL));
	tally(acc->categories, column_text(st, W_CATEGORY));
	tally(acc->teams, column_text(st, W_TEAM));
	r->by_priority[p]++;
	char **triggers = g_strsplit(column_text(st, W_TRIGGERS), ",", -1);
	for (char **tr = triggers; *tr != NULL; tr++) {
		if (**tr != '\0')
			tally(acc->triggers, *tr);
	}
	g_strfreev(triggers);

	/* The clocks, as tr_sla_consumed() sees them. */
	tr_ticket t;
	memset(&t, 0, sizeof(t));
	t.id = sqlite3_column_int64(st, W_ID);
	t.created_at = sqlite3_column_int64(st, W_CREATED);
	t.first_response_at = sqlite3_column_int64(st, W_FIRST_RESPONSE);
	t.resolved_at = resolved ? sqlite3_column_int64(st, W_RESOLVED) : 0;
	t.calendar = (char *)sqlite3_column_text(st, W_CALENDAR);
	t.fr_target = sqlite3_column_int64(st, W_FR_TARGET);
	t.fr_business = sqlite3_column_int(st, W_FR_BUSINESS) != 0;
	t.fr_consumed = sqlite3_column_int64(st, W_FR_CONSUMED);
	t.fr_due = sqlite3_column_int64(st, W_FR_DUE);
	t.res_target = sqlite3_column_int64(st, W_RES_TARGET);
	t.res_business = sqlite3_column_int(st, W_RES_BUSINESS) != 0;
	t.res_consumed = sqlite3_column_int64(st, W_RES_CONSUMED);
	t.res_due = sqlite3_column_int64(st, W_RES_DUE);
	t.clock_since = sqlite3_column_int64(st, W_CLOCK_SINCE);

	/* A ticket resolved without a recorded first response: the resolution was it. */
	int64_t responded_at = t.first_response_at != 0 ? t.first_response_at : t.resolved_at;
	tr_report_sla *sla = &r->sla[p];
	sla->tickets++;
	count_clock(&sla->first_response, t.fr_target, responded_at != 0, responded_at,
	            tr_sla_consumed(policy, &t, false, now), t.fr_due, sqlite3_column_int(st, W_FR_BREACHED) != 0, now);
	count_clock(&sla->resolution, t.res_target, t.resolved_at != 0, t.resolved_at,
	            tr_sla_consumed(policy, &t, true, now), t.res_due, sqlite3_column_int(st, W_RES_BREACHED) != 0, now);
	if (responded_at != 0 && responded_at >= t.created_at) {
		int64_t d = responded_at - t.created_at;
		g_array_append_val(acc->first_response, d);
	}
	if (t.resolved_at != 0 && t.resolved_at >= t.created_at) {
		int64_t d = t.resolved_at - t.created_at;
		g_array_append_val(acc->resolution, d);
	}

	int reopened = sqlite3_column_int(st, W_REOPENED);
	if (reopened > 0) {
		r->reopened++;
		r->reopen_count += (unsigned)reopened;
	}
	if (reopened > 0 || t.resolved_at != 0)
		r->resolved_ever++;

	if (sqlite3_column_int(st, W_ESCALATED) != 0) {
		r->escalated++;
		tally_reasons(acc->reasons, (const char *)sqlite3_column_text(st, W_ESCALATION_REASONS));
		if (sqlite3_column_int(st, W_MOVED_UP) > 0)
			r->escalation_moved_up++;
	}
	issue_add(acc->issues, tr_store_get_settings(store)->ticket_prefix, t.id, t.created_at,
	          column_text(st, W_CATEGORY), column_text(st, W_SUBJECT), column_text(st, W_REQUESTER), !resolved);
}

static bool read_window(tr_report *r, tr_store *store, const tr_policy *policy, const tr_report_options *o,
                        GError **error)
{
	window_acc acc = {
		tally_new(), tally_new(), tally_new(), tally_new(), tally_new(),
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, issue_acc_free),
		g_array_new(FALSE, FALSE, sizeof(int64_t)), g_array_new(FALSE, FALSE, sizeof(int64_t)),
	};
	sqlite3_stmt *st = tr_store_stmt(store, window_sql);
	sqlite3_bind_int64(st, 1, r->since);
	sqlite3_bind_int64(st, 2, r->now);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		window_row(r, store, policy, st, &acc);
	bool ok = step_ok(store, st, rc, "report: tickets", error);
	sqlite3_reset(st);
	for (int i = 0; i < TR_REPORT_PRIORITIES; i++) {
		r->sla_all.tickets += r->sla[i].tickets;
		clock_add(&r->sla_all.first_response, &r->sla[i].first_response);
		clock_add(&r->sla_all.resolution, &r->sla[i].resolution);
	}
	counts_take(&r->by_channel, acc.channels);
	counts_take(&r->by_category, acc.categories);
	counts_take(&r->by_team, acc.teams);
	counts_take(&r->by_trigger, acc.triggers);
	counts_take(&r->escalation_reasons, acc.reasons);
	durations_take(&r->first_response, acc.first_response);
	durations_take(&r->resolution, acc.resolution);
	issues_take(r, store, acc.issues, o->top_issues > 0 ? o->top_issues : DEFAULT_TOP_ISSUES,
	            o->min_repeat > 0 ? o->min_repeat : DEFAULT_MIN_REPEAT);
	g_hash_table_destroy(acc.issues);
	return ok;
}

static bool read_open_escalations(tr_report *r, tr_store *store, const tr_report_options *o, GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(store, "SELECT count(*) FROM tickets WHERE escalated = 1 "
	                                        "AND status != 'resolved' AND created_at <= ?1");
	sqlite3_bind_int64(st, 1, r->now);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return step_ok(store, st, rc, "report: open escalations", error);
	r->open_escalations_total = (unsigned)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);

	st = tr_store_stmt(store,
		"SELECT t.id, t.priority, t.status, t.category, t.team, t.subject, t.requester, t.assignee, "
		"t.is_incident, t.escalation_acked_at IS NOT NULL, t.created_at, t.escalated_at, "
		"(SELECT e.detail FROM events e WHERE e.ticket_id = t.id AND e.kind = 'escalated' ORDER BY e.id LIMIT 1), "
		"(SELECT max(l.step) FROM sla_ladder l WHERE l.ticket_id = t.id AND l.clock = 'escalation') "
		"FROM tickets t WHERE t.escalated = 1 AND t.status != 'resolved' AND t.created_at <= ?1 "
		"ORDER BY t.priority, t.escalation_acked_at IS NOT NULL, t.escalated_at, t.id LIMIT ?2");
	sqlite3_bind_int64(st, 1, r->now);
	sqlite3_bind_int64(st, 2, o->max_open_escalations > 0 ? o->max_open_escalations : DEFAULT_MAX_ESCALATIONS);
	GArray *rows = g_array_new(FALSE, TRUE, sizeof(tr_report_escalation));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		tr_report_escalation e = {
			.id = sqlite3_column_int64(st, 0),
			.priority = sqlite3_column_int(st, 1),
			.status = g_strdup(column_text(st, 2)),
			.category = g_strdup(column_text(st, 3)),
			.team = g_strdup(column_text(st, 4)),
			.subject = g_utf8_make_valid(column_text(st, 5), -1),
			.requester = g_strdup(column_text(st, 6)),
			.assignee = tr_store_column_dup(st, 7),
			.incident = sqlite3_column_int(st, 8) != 0,
			.acknowledged = sqlite3_column_int(st, 9) != 0,
			.created_at = sqlite3_column_int64(st, 10),
			.escalated_at = sqlite3_column_int64(st, 11),
			.reasons = g_strdup(column_text(st, 12)),
			.moved_up = (unsigned)MAX(sqlite3_column_int(st, 13), 0),
		};
		tr_store_format_ticket(store, e.id, e.ticket, sizeof(e.ticket));
		if (e.escalated_at == 0)
			e.escalated_at = e.created_at;
		e.age = MAX(r->now - e.escalated_at, 0);
		g_array_append_val(rows, e);
	}
	r->n_open_escalations = rows->len;
	r->open_escalations = (tr_report_escalation *)(void *)g_array_free(rows, FALSE);
	bool ok = step_ok(store, st, rc, "report: open escalations", error);
	sqlite3_reset(st);
	return ok;
}

static bool read_incidents(tr_report *r, tr_store *store, GError **error)
{
	sqlite3_stmt *st = tr_store_stmt(store,
		"SELECT t.id, t.priority, t.status, t.subject, t.created_at, "
		"coalesce(c.children, 0), coalesce(c.open_children, 0) FROM tickets t "
		"LEFT JOIN (SELECT parent_id, count(*) AS children, sum(status != 'resolved') AS open_children "
		"FROM tickets WHERE parent_id IS NOT NULL GROUP BY parent_id) c ON c.parent_id = t.id "
		"WHERE t.is_incident = 1 AND t.created_at >= ?1 AND t.created_at <= ?2 "
		"ORDER BY 6 DESC, t.created_at DESC, t.id");
	sqlite3_bind_int64(st, 1, r->since);
	sqlite3_bind_int64(st, 2, r->now);
	GArray *rows = g_array_new(FALSE, TRUE, sizeof(tr_report_incident));
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		tr_report_incident inc = {
			.id = sqlite3_column_int64(st, 0),
			.priority = sqlite3_column_int(st, 1),
			.status = g_strdup(column_text(st, 2)),
			.subject = g_utf8_make_valid(column_text(st, 3), -1),
			.created_at = sqlite3_column_int64(st, 4),
			.children = (unsigned)sqlite3_column_int64(st, 5),
			.open_children = (unsigned)sqlite3_column_int64(st, 6),
		};
		tr_store_format_ticket(store, inc.id, inc.ticket, sizeof(inc.ticket));
		g_array_append_val(rows, inc);
	}
	r->n_incidents = rows->len;
	r->incidents = (tr_report_incident *)(void *)g_array_free(rows, FALSE);
	bool ok = step_ok(store, st, rc, "report: incidents", error);
	sqlite3_reset(st);
	return ok;
}

tr_report *tr_report_build(tr_store *store, const tr_policy *policy, const tr_report_options *options,
                           GError **error)
{
	tr_report *r = g_new0(tr_report, 1);
	r->since = options->since;
	r->now = options->now;
	/* One snapshot for every query (a reader never blocks the writers in WAL mode). */
	bool own = !tr_store_in_transaction(store);
	if (own && !tr_store_exec_stmt(store, tr_store_stmt(store, "BEGIN DEFERRED"), "report: begin", error)) {
		tr_report_free(&r);
		return NULL;
	}
	bool ok = read_window(r, store, policy, options, error) && read_open_escalations(r, store, options, error) &&
	          read_incidents(r, store, error);
	if (own) {
		if (ok)
			ok = tr_store_exec_stmt(store, tr_store_stmt(store, "COMMIT"), "report: end", error);
		else
			tr_store_rollback(store);
	}
	if (!ok)
		tr_report_free(&r);
	return r;
}

void tr_report_free(tr_report **rp)
{
	tr_report *r = *rp;
	if (r == NULL)
		return;
	*rp = NULL;
	counts_clear(&r->by_channel);
	counts_clear(&r->by_category);
	counts_clear(&r->by_team);
	counts_clear(&r->by_trigger);
	counts_clear(&r->escalation_reasons);
	for (size_t i = 0; i < r->n_open_escalations; i++) {
		tr_report_escalation *e = &r->open_escalations[i];
		g_free(e->status);
		g_free(e->category);
		g_free(e->team);
		g_free(e->subject);
		g_free(e->requester);
		g_free(e->assignee);
		g_free(e->reasons);
	}
	g_free(r->open_escalations);
	for (size_t i = 0; i < r->n_top_issues; i++) {
		g_free(r->top_issues[i].category);
		g_free(r->top_issues[i].key);
		g_free(r->top_issues[i].subject);
	}
	g_free(r->top_issues);
	for (size_t i = 0; i < r->n_incidents; i++) {
		g_free(r->incidents[i].status);
		g_free(r->incidents[i].subject);
	}
	g_free(r->incidents);
	g_free(r);
}

/* policy.c — priority, triggers, SLA, routing, teams, on-call; see policy.h */
#include "core/policy.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ model */

enum { P1_WHEN_IMPACT_HIGH = 1, P1_WHEN_ENTERPRISE = 2, P1_WHEN_VIP = 4 };

typedef struct {
	int min_priority;    /* 0: none */
	int raise;           /* levels */
	unsigned p1_when;    /* P1_WHEN_* */
	bool escalate;
} trigger_policy;

typedef struct {
	int64_t seconds;     /* clock seconds, or business seconds when business */
	int64_t days;        /* business days (when business and days > 0) */
	bool business;
	char *text;          /* as written, for messages */
} sla_target;

typedef struct {
	char *calendar;
	sla_target first[TR_PRIORITY_COUNT], resolution[TR_PRIORITY_COUNT];
} sla_tier;

typedef struct {
	char *name;
	char **categories, **triggers_any, **tiers, **languages;
	uint32_t trigger_mask;
	unsigned priority_mask;  /* bit p-1 */
	unsigned customer_mask;  /* bit tr_customer_tier */
	int vip;                 /* -1 any, 0 no, 1 yes */
	char *team, *tier, *assignee;
	int escalate;            /* -1 unchanged */
} route;

typedef enum { ASSIGN_NONE, ASSIGN_ROUND_ROBIN, ASSIGN_LEAST_LOADED } assign_mode;

typedef struct {
	char *name;
	char **members;
	assign_mode assign;
	char *oncall;            /* rotation name */
	volatile gint next;      /* round-robin counter */
	tr_team_info info;
	char *mailbox, *room, *lead, *manager, *director;
} team;

typedef struct {
	tr_person_info info;
	char *name, *display, *email, *jid;
} person;

typedef struct {
	char *name;
	GTimeZone *tz;
	int64_t start;           /* first handover, Unix time */
	int64_t period;          /* seconds */
	char **primary, **secondary;
} rotation;

struct tr_policy {
	char *default_category;
	tr_level default_urgency, default_impact;
	double negative_sentiment;
	double escalate_score;
	double min_category_score;
	int escalate_priority;
	char *default_team;
	char *default_tier;
	char *default_language;
	char **languages;
	char **our_addresses;
	int matrix[4][4];        /* [urgency][impact], levels 1..3 used */
	trigger_policy triggers[TR_TRIGGER_COUNT];
	sla_tier sla[TR_CUSTOMER_TIER_COUNT];
	GPtrArray *routes;       /* route* */
	GHashTable *teams;       /* name -> team* */
	GHashTable *people;      /* name -> person* */
	GHashTable *people_by_address; /* lowercase email/jid -> person* (borrowed) */
	int64_t ack_timeout[TR_PRIORITY_COUNT];
	GHashTable *rotations;   /* name -> rotation* */
	GHashTable *calendars;   /* name -> tr_calendar* */
	tr_customers *customers;
};

static const char *const priority_names[] = { "P1", "P2", "P3", "P4" };

const char *tr_priority_name(int priority)
{
	return priority >= 1 && priority <= TR_PRIORITY_COUNT ? priority_names[priority - 1] : "P?";
}

bool tr_priority_parse(const char *text, int *priority_r)
{
	for (int i = 0; i < TR_PRIORITY_COUNT; i++) {
		if (g_ascii_strcasecmp(text, priority_names[i]) == 0) {
			*priority_r = i + 1;
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------------ helpers */

static bool is_our_address(const tr_policy *p, const char *address);

static char **list(const tr_conf *conf, const char *group, const char *key)
{
	char *value = tr_conf_string(conf, group, key, NULL);
	if (value == NULL)
		return NULL;
	char **items = g_strsplit_set(value, ",;", -1);
	GPtrArray *out = g_ptr_array_new();
	for (char **it = items; *it != NULL; it++) {
		g_strstrip(*it);
		if (**it != '\0')
			g_ptr_array_add(out, g_strdup(*it));
	}
	g_strfreev(items);
	g_free(value);
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

static bool in_list(char *const *items, const char *s)
{
	if (items == NULL || s == NULL)
		return false;
	for (char *const *it = items; *it != NULL; it++) {
		if (g_ascii_strcasecmp(*it, s) == 0)
			return true;
	}
	return false;
}

static double get_double(const tr_conf *conf, tr_diag *diag, const char *group, const char *key,
                         double def, double min, double max)
{
	char *value = tr_conf_string(conf, group, key, NULL);
	if (value == NULL)
		return def;
	char *end = NULL;
	double v = g_ascii_strtod(value, &end);
	if (end == value || *end != '\0' || v < min || v > max) {
		tr_conf_error(conf, diag, group, key, "'%s' is not a number in %g..%g", value, min, max);
		v = def;
	}
	g_free(value);
	return v;
}

static int get_priority(const tr_conf *conf, tr_diag *diag, const char *group, const char *key, int def)
{
	char *value = tr_conf_string(conf, group, key, NULL);
	int p = def;
	if (value != NULL && !tr_priority_parse(value, &p)) {
		tr_conf_error(conf, diag, group, key, "'%s' is not P1, P2, P3 or P4", value);
		p = def;
	}
	g_free(value);
	return p;
}

static tr_level get_level(const tr_conf *conf, tr_diag *diag, const char *group, const char *key,
                          tr_level def)
{
	char *value = tr_conf_string(conf, group, key, NULL);
	tr_level l = def;
	if (value != NULL && !tr_level_parse(value, &l)) {
		tr_conf_error(conf, diag, group, key, "'%s' is not low, medium or high", value);
		l = def;
	}
	g_free(value);
	return l;
}

/* "15m", "4h", "2d" (clock), "4bh" (business hours), "2bd" (business days). */
static bool parse_target(const char *text, sla_target *t)
{
	char *end = NULL;
	gint64 n = g_ascii_strtoll(text, &end, 10);
	if (end == text || n <= 0 || n > 100000)
		return false;
	memset(t, 0, sizeof(*t));
	if (strcmp(end, "m") == 0)
		t->seconds = n * 60;
	else if (strcmp(end, "h") == 0)
		t->seconds = n * 3600;
	else if (strcmp(end, "d") == 0)
		t->seconds = n * 86400;
	else if (strcmp(end, "bm") == 0)
		t->seconds = n * 60, t->business = true;
	else if (strcmp(end, "bh") == 0)
		t->seconds = n * 3600, t->business = true;
	else if (strcmp(end, "bd") == 0)
		t->days = n, t->business = true;
	else
		return false;
	t->text = g_strdup(text);
	return true;
}

/* ------------------------------------------------------------------ defaults */

static void set_target(sla_target *t, const char *text)
{
	g_free(t->text);
	if (!parse_target(text, t))
		g_error("bad built-in SLA target %s", text);
}

static void builtin_defaults(tr_policy *p)
{
	p->default_category = g_strdup("general");
	p->default_urgency = TR_LEVEL_MEDIUM;
	p->default_impact = TR_LEVEL_MEDIUM;
	p->negative_sentiment = -0.7;
	p->escalate_score = 10;
	p->min_category_score = 1.0;
	p->escalate_priority = 1;
	p->default_team = g_strdup("support");
	p->default_tier = g_strdup("L1");
	p->default_language = g_strdup("en");
	p->ack_timeout[0] = 5 * 60;
	p->ack_timeout[1] = 15 * 60;
	p->ack_timeout[2] = 3600;
	p->ack_timeout[3] = 4 * 3600;
	/* urgency x impact: P1 high x high ... P4 low x low */
	static const int m[3][3] = { { 4, 4, 3 }, { 4, 3, 2 }, { 3, 2, 1 } };  /* [u-1][i-1] */
	for (int u = 1; u <= 3; u++)
		for (int i = 1; i <= 3; i++)
			p->matrix[u][i] = m[u - 1][i - 1];
	for (int t = 0; t < TR_TRIGGER_COUNT; t++)
		p->triggers[t] = (trigger_policy){ 0, 0, 0, false };
	const unsigned severe = P1_WHEN_IMPACT_HIGH | P1_WHEN_ENTERPRISE;
	p->triggers[TR_TRIGGER_SECURITY] = (trigger_policy){ 2, 0, severe, true };
	p->triggers[TR_TRIGGER_LEGAL] = (trigger_policy){ 2, 0, severe, true };
	p->triggers[TR_TRIGGER_OUTAGE] = (trigger_policy){ 2, 0, severe, true };
	p->triggers[TR_TRIGGER_DATA_LOSS] = (trigger_policy){ 2, 0, severe, true };
	p->triggers[TR_TRIGGER_ESCALATION_REQUEST] = (trigger_policy){ 3, 0, 0, true };
	p->triggers[TR_TRIGGER_COMPLAINT] = (trigger_policy){ 3, 0, 0, false };
	p->triggers[TR_TRIGGER_CHURN] = (trigger_policy){ 3, 0, 0, true };
	p->triggers[TR_TRIGGER_VIP] = (trigger_policy){ 3, 0, 0, false };
	p->triggers[TR_TRIGGER_NEGATIVE_SENTIMENT] = (trigger_policy){ 3, 0, 0, true };
	p->triggers[TR_TRIGGER_REPEAT_CONTACT] = (trigger_policy){ 0, 1, 0, true };
	p->triggers[TR_TRIGGER_MASS_INCIDENT] = (trigger_policy){ 2, 0, severe, true };
	/* SLA: first response / resolution per priority, per customer tier. */
	static const char *const def[TR_CUSTOMER_TIER_COUNT][TR_PRIORITY_COUNT][2] = {
		{ { "15m", "4h" }, { "1h", "8h" }, { "4bh", "2bd" }, { "1bd", "5bd" } },     /* enterprise */
		{ { "30m", "8h" }, { "2h", "1bd" }, { "8bh", "3bd" }, { "2bd", "8bd" } },    /* professional */
		{ { "1h", "1bd" }, { "4bh", "3bd" }, { "1bd", "5bd" }, { "3bd", "10bd" } },  /* starter */
		{ { "4bh", "2bd" }, { "1bd", "5bd" }, { "2bd", "10bd" }, { "5bd", "20bd" } }, /* free */
	};
	for (int c = 0; c < TR_CUSTOMER_TIER_COUNT; c++) {
		for (int pr = 0; pr < TR_PRIORITY_COUNT; pr++) {
			set_target(&p->sla[c].first[pr], def[c][pr][0]);
			set_target(&p->sla[c].resolution[pr], def[c][pr][1]);
		}
	}
}

/* ------------------------------------------------------------------ loading */

static const char *const classifier_keys[] = {
	"default_category", "default_urgency", "default_impact", "negative_sentiment",
	"escalate_score", "escalate_priority", "min_category_score", "default_team",
	"default_tier", "default_language", "languages", "our_addresses", NULL,
};

static void load_classifier(tr_policy *p, const tr_conf *conf, tr_diag *diag,
                            const char *const *categories)
{
	const char *g = "classifier";
	tr_conf_check_keys(conf, diag, g, classifier_keys);
	char *cat = tr_conf_string(conf, g, "default_category", NULL);
	if (cat != NULL) {
		g_free(p->default_category);
		p->default_category = cat;
	}
	(void)categories;
	p->default_urgency = get_level(conf, diag, g, "default_urgency", p->default_urgency);
	p->default_impact = get_level(conf, diag, g, "default_impact", p->default_impact);
	p->negative_sentiment = get_double(conf, diag, g, "negative_sentiment", p->negative_sentiment, -1, 1);
	p->escalate_score = get_double(conf, diag, g, "escalate_score", p->escalate_score, 0, 10000);
	p->min_category_score = get_double(conf, diag, g, "min_category_score", p->min_category_score, 0, 1000);
	p->escalate_priority = get_priority(conf, diag, g, "escalate_priority", p->escalate_priority);
	char *s;
	if ((s = tr_conf_string(conf, g, "default_team", NULL)) != NULL) {
		g_free(p->default_team);
		p->default_team = s;
	}
	if ((s = tr_conf_string(conf, g, "default_tier", NULL)) != NULL) {
		g_free(p->default_tier);
		p->default_tier = s;
	}
	if ((s = tr_conf_string(conf, g, "default_language", NULL)) != NULL) {
		g_free(p->default_language);
		p->default_language = s;
	}
	p->languages = list(conf, g, "languages");
	if (p->languages == NULL)
		p->languages = g_strsplit("en,es,de,fr,pt", ",", -1);
	char **ours = list(conf, g, "our_addresses");
	if (ours != NULL) {
		for (char **a = ours; *a != NULL; a++) {
			char *lower = g_ascii_strdown(*a, -1);
			g_free(*a);
			*a = lower;
		}
	}
	p->our_addresses = ours;
}

static void load_priority(tr_policy *p, const tr_conf *conf, tr_diag *diag)
{
	const char *g = "priority";
	static const char *const keys[] = { "high", "medium", "low", NULL };
	if (!g_key_file_has_group(tr_conf_keyfile(conf), g))
		return;
	tr_conf_check_keys(conf, diag, g, keys);
	for (int u = 3; u >= 1; u--) {
		char **row = list(conf, g, keys[3 - u]);
		if (row == NULL)
			continue;
		if (g_strv_length(row) != 3) {
			tr_conf_error(conf, diag, g, keys[3 - u],
			              "needs three priorities: impact high, medium, low (e.g. P1, P2, P3)");
		} else {
			for (int i = 0; i < 3; i++) {
				int pr;
				if (!tr_priority_parse(row[i], &pr))
					tr_conf_error(conf, diag, g, keys[3 - u], "'%s' is not P1..P4", row[i]);
				else
					p->matrix[u][3 - i] = pr;
			}
		}
		g_strfreev(row);
	}
}

static void load_trigger(tr_policy *p, const tr_conf *conf, tr_diag *diag, const char *group)
{
	static const char *const keys[] = { "min_priority", "raise", "p1_when", "escalate", NULL };
	tr_trigger t;
	if (!tr_trigger_parse(group + 8, &t)) {
		tr_conf_error(conf, diag, group, NULL, "unknown trigger '%s'", group + 8);
		return;
	}
	tr_conf_check_keys(conf, diag, group, keys);
	trigger_policy *tp = &p->triggers[t];
	tp->min_priority = get_priority(conf, diag, group, "min_priority", tp->min_priority);
	tp->raise = (int)get_double(conf, diag, group, "raise", tp->raise, 0, 3);
	tp->escalate = tr_conf_bool(conf, diag, group, "escalate", tp->escalate);
	char **when = list(conf, group, "p1_when");
	if (when != NULL) {
		tp->p1_when = 0;
		for (char **w = when; *w != NULL; w++) {
			if (strcmp(*w, "impact_high") == 0)
				tp->p1_when |= P1_WHEN_IMPACT_HIGH;
			else if (strcmp(*w, "enterprise") == 0)
				tp->p1_when |= P1_WHEN_ENTERPRISE;
			else if (strcmp(*w, "vip") == 0)
				tp->p1_when |= P1_WHEN_VIP;
			else if (strcmp(*w, "never") != 0)
				tr_conf_error(conf, diag, group, "p1_when",
				              "'%s' is not impact_high, enterprise, vip or never", *w);
		}
		g_strfreev(when);
	}
}

static void load_sla(tr_policy *p, const tr_conf *conf, tr_diag *diag, const char *group)
{
	static const char *const keys[] = { "calendar", "P1", "P2", "P3", "P4", NULL };
	tr_customer_tier tier;
	if (!tr_customer_tier_parse(group + 4, &tier)) {
		tr_conf_error(conf, diag, group, NULL,
		              "unknown customer tier '%s' (enterprise, professional, starter, free)", group + 4);
		return;
	}
	tr_conf_check_keys(conf, diag, group, keys);
	sla_tier *st = &p->sla[tier];
	char *cal = tr_conf_string(conf, group, "calendar", NULL);
	if (cal != NULL) {
		g_free(st->calendar);
		st->calendar = cal;
		if (g_hash_table_lookup(p->calendars, cal) == NULL && strcmp(cal, "24x7") != 0)
			tr_conf_error(conf, diag, group, "calendar", "no [calendar %s] in the calendars file", cal);
	}
	for (int pr = 0; pr < TR_PRIORITY_COUNT; pr++) {
		char **pair = list(conf, group, priority_names[pr]);
		if (pair == NULL)
			continue;
		sla_target first, resolution;
		if (g_strv_length(pair) != 2 || !parse_target(pair[0], &first)) {
			tr_conf_error(conf, diag, group, priority_names[pr],
			              "needs 'first response, resolution' like '4bh, 2bd' (m, h, d clock; bm, bh, bd business)");
		} else if (!parse_target(pair[1], &resolution)) {
			g_free(first.text);
			tr_conf_error(conf, diag, group, priority_names[pr], "bad resolution target '%s'", pair[1]);
		} else {
			g_free(st->first[pr].text);
			g_free(st->resolution[pr].text);
			st->first[pr] = first;
			st->resolution[pr] = resolution;
		}
		g_strfreev(pair);
	}
}

static void route_free(gpointer data)
{
	route *r = data;
	g_free(r->name);
	g_strfreev(r->categories);
	g_strfreev(r->triggers_any);
	g_strfreev(r->tiers);
	g_strfreev(r->languages);
	g_free(r->team);
	g_free(r->tier);
	g_free(r->assignee);
	g_free(r);
}

static void load_route(tr_policy *p, const tr_conf *conf, tr_diag *diag, const char *group,
                       const char *const *categories)
{
	static const char *const keys[] = {
		"category", "trigger", "priority", "customer_tier", "language", "vip",
		"team", "tier", "assignee", "escalate", NULL,
	};
	tr_conf_check_keys(conf, diag, group, keys);
	route *r = g_new0(route, 1);
	r->name = g_strdup(group + 6);
	r->vip = -1;
	r->escalate = -1;
	r->categories = list(conf, group, "category");
	for (char **c = r->categories; c != NULL && *c != NULL; c++) {
		bool known = strcmp(*c, p->default_category) == 0;
		for (const char *const *k = categories; !known && k != NULL && *k != NULL; k++)
			known = strcmp(*k, *c) == 0;
		if (!known)
			tr_conf_error(conf, diag, group, "category", "no rule contributes to category '%s'", *c);
	}
	r->triggers_any = list(conf, group, "trigger");
	for (char **t = r->triggers_any; t != NULL && *t != NULL; t++) {
		tr_trigger trig;
		if (tr_trigger_parse(*t, &trig))
			r->trigger_mask |= 1u << trig;
		else
			tr_conf_error(conf, diag, group, "trigger", "unknown trigger '%s'", *t);
	}
	char **prios = list(conf, group, "priority");
	for (char **pr = prios; pr != NULL && *pr != NULL; pr++) {
		int n;
		if (tr_priority_parse(*pr, &n))
			r->priority_mask |= 1u << (n - 1);
		else
			tr_conf_error(conf, diag, group, "priority", "'%s' is not P1..P4", *pr);
	}
	g_strfreev(prios);
	r->tiers = list(conf, group, "customer_tier");
	for (char **t = r->tiers; t != NULL && *t != NULL; t++) {
		tr_customer_tier ct;
		if (tr_customer_tier_parse(*t, &ct))
			r->customer_mask |= 1u << ct;
		else
			tr_conf_error(conf, diag, group, "customer_tier", "unknown customer tier '%s'", *t);
	}
	r->languages = list(conf, group, "language");
	if (g_key_file_has_key(tr_conf_keyfile(conf), group, "vip", NULL))
		r->vip = tr_conf_bool(conf, diag, group, "vip", false);
	if (g_key_file_has_key(tr_conf_keyfile(conf), group, "escalate", NULL))
		r->escalate = tr_conf_bool(conf, diag, group, "escalate", false);
	r->team = tr_conf_string(conf, group, "team", NULL);
	r->tier = tr_conf_string(conf, group, "tier", NULL);
	r->assignee = tr_conf_string(conf, group, "assignee", NULL);
	if (r->team == NULL)
		tr_conf_error(conf, diag, group, NULL, "a route needs a team");
	if (r->tier == NULL)
		tr_conf_error(conf, diag, group, NULL, "a route needs a tier (L1, L2, L3, specialist, ...)");
	g_ptr_array_add(p->routes, r);
}

static void team_free(gpointer data)
{
	team *t = data;
	g_free(t->name);
	g_strfreev(t->members);
	g_free(t->oncall);
	g_free(t->mailbox);
	g_free(t->room);
	g_free(t->lead);
	g_free(t->manager);
	g_free(t->director);
	g_free(t);
}

static void person_free(gpointer data)
{
	person *pe = data;
	g_free(pe->name);
	g_free(pe->display);
	g_free(pe->email);
	g_free(pe->jid);
	g_free(pe);
}

static void rotation_free(gpointer data)
{
	rotation *r = data;
	g_free(r->name);
	if (r->tz != NULL)
		g_time_zone_unref(r->tz);
	g_strfreev(r->primary);
	g_strfreev(r->secondary);
	g_free(r);
}

static void check_people(tr_policy *p, const tr_conf *conf, tr_diag *diag, const char *group,
                         const char *key, char *const *names)
{
	for (char *const *n = names; n != NULL && *n != NULL; n++) {
		if (!g_hash_table_contains(p->people, *n))
			tr_conf_error(conf, diag, group, key, "no [person %s]", *n);
	}
}

static void load_teams(tr_policy *p, const tr_conf *conf, tr_diag *diag)
{
	gsize n = 0;
	char **groups = g_key_file_get_groups(tr_conf_keyfile(conf), &n);
	/* People first: teams and rotations refer to them. */
	static const char *const person_keys[] = { "name", "email", "jid", NULL };
	for (gsize i = 0; i < n; i++) {
		if (strncmp(groups[i], "person ", 7) == 0) {
			tr_conf_check_keys(conf, diag, groups[i], person_keys);
			person *pe = g_new0(person, 1);
			pe->name = g_strdup(groups[i] + 7);
			pe->display = tr_conf_string(conf, groups[i], "name", pe->name);
			char *email = tr_conf_string(conf, groups[i], "email", NULL);
			char *jid = tr_conf_string(conf, groups[i], "jid", NULL);
			pe->email = email != NULL ? g_ascii_strdown(email, -1) : NULL;
			pe->jid = jid != NULL ? g_ascii_strdown(jid, -1) : NULL;
			g_free(email);
			g_free(jid);
			if (pe->email != NULL && strchr(pe->email, '@') == NULL)
				tr_conf_error(conf, diag, groups[i], "email", "'%s' is not an address", pe->email);
			pe->info = (tr_person_info){ pe->name, pe->display, pe->email, pe->jid };
			if (pe->email != NULL)
				g_hash_table_insert(p->people_by_address, g_strdup(pe->email), pe);
			if (pe->jid != NULL)
				g_hash_table_insert(p->people_by_address, g_strdup(pe->jid), pe);
			g_hash_table_insert(p->people, g_strdup(pe->name), pe);
		}
	}
	static const char *const team_keys[] = {
		"members", "assign", "mailbox", "room", "lead", "manager", "director", "oncall",
		"ack_timeout", "name", NULL,
	};
	static const char *const rotation_keys[] = {
		"timezone", "start", "period", "primary", "secondary", NULL,
	};
	for (gsize i = 0; i < n; i++) {
		const char *g = groups[i];
		if (strncmp(g, "person ", 7) == 0)
			continue;
		if (strncmp(g, "team ", 5) == 0) {
			tr_conf_check_keys(conf, diag, g, team_keys);
			team *t = g_new0(team, 1);
			t->name = g_strdup(g + 5);
			t->members = list(conf, g, "members");
			check_people(p, conf, diag, g, "members", t->members);
			const char *roles[] = { "lead", "manager", "director" };
			char **slots[] = { &t->lead, &t->manager, &t->director };
			for (int k = 0; k < 3; k++) {
				char **who = list(conf, g, roles[k]);
				check_people(p, conf, diag, g, roles[k], who);
				if (who != NULL && who[0] != NULL)
					*slots[k] = g_strdup(who[0]);
				g_strfreev(who);
			}
			t->mailbox = tr_conf_string(conf, g, "mailbox", NULL);
			t->room = tr_conf_string(conf, g, "room", NULL);
			t->info = (tr_team_info){ t->name, t->mailbox, t->room, t->lead, t->manager, t->director };
			char *assign = tr_conf_string(conf, g, "assign", "none");
			if (strcmp(assign, "round-robin") == 0)
				t->assign = ASSIGN_ROUND_ROBIN;
			else if (strcmp(assign, "least-loaded") == 0)
				t->assign = ASSIGN_LEAST_LOADED;
			else if (strcmp(assign, "none") != 0)
				tr_conf_error(conf, diag, g, "assign", "'%s' is not round-robin, least-loaded or none", assign);
			g_free(assign);
			t->oncall = tr_conf_string(conf, g, "oncall", NULL);
			g_hash_table_insert(p->teams, g_strdup(t->name), t);
		} else if (strncmp(g, "oncall ", 7) == 0) {
			tr_conf_check_keys(conf, diag, g, rotation_keys);
			rotation *r = g_new0(rotation, 1);
			r->name = g_strdup(g + 7);
			char *zone_name = tr_conf_string(conf, g, "timezone", "UTC");
			r->tz = g_time_zone_new_identifier(zone_name);
			if (r->tz == NULL) {
				tr_conf_error(conf, diag, g, "timezone", "unknown time zone '%s'", zone_name);
				r->tz = g_time_zone_new_utc();
			}
			g_free(zone_name);
			char *start = tr_conf_string(conf, g, "start", "2026-01-05 09:00");
			int y, mo, d, h, mi;
			if (sscanf(start, "%d-%d-%d %d:%d", &y, &mo, &d, &h, &mi) != 5) {
				tr_conf_error(conf, diag, g, "start", "'%s' is not 'YYYY-MM-DD HH:MM'", start);
			} else {
				GDateTime *dt = g_date_time_new(r->tz, y, mo, d, h, mi, 0);
				if (dt == NULL)
					tr_conf_error(conf, diag, g, "start", "'%s' is not a valid time", start);
				else {
					r->start = g_date_time_to_unix(dt);
					g_date_time_unref(dt);
				}
			}
			g_free(start);
			char *period = tr_conf_string(conf, g, "period", "7d");
			if (!tr_conf_parse_int(period, TR_UNIT_SECONDS, &r->period) || r->period < 3600)
				tr_conf_error(conf, diag, g, "period", "'%s' is not a duration of at least 1h", period);
			g_free(period);
			r->primary = list(conf, g, "primary");
			r->secondary = list(conf, g, "secondary");
			if (r->primary == NULL || r->primary[0] == NULL)
				tr_conf_error(conf, diag, g, "primary", "an on-call rotation needs primary people");
			check_people(p, conf, diag, g, "primary", r->primary);
			check_people(p, conf, diag, g, "secondary", r->secondary);
			g_hash_table_insert(p->rotations, g_strdup(r->name), r);
		} else {
			tr_diag_error(diag, tr_conf_path(conf), tr_conf_line(conf, g, NULL),
			              "[%s]: unknown group ([team NAME], [person NAME], [oncall NAME])", g);
		}
	}
	/* Rotations named by teams must exist. */
	GHashTableIter it;
	gpointer value;
	g_hash_table_iter_init(&it, p->teams);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		team *t = value;
		if (t->oncall != NULL && !g_hash_table_contains(p->rotations, t->oncall)) {
			char *group = g_strdup_printf("team %s", t->name);
			tr_conf_error(conf, diag, group, "oncall", "no [oncall %s]", t->oncall);
			g_free(group);
		}
	}
	g_strfreev(groups);
}

static void load_calendars(tr_policy *p, const tr_conf *conf, tr_diag *diag)
{
	gsize n = 0;
	char **groups = g_key_file_get_groups(tr_conf_keyfile(conf), &n);
	for (gsize i = 0; i < n; i++) {
		if (strncmp(groups[i], "calendar ", 9) != 0) {
			tr_diag_error(diag, tr_conf_path(conf), tr_conf_line(conf, groups[i], NULL),
			              "[%s]: unknown group ([calendar NAME])", groups[i]);
			continue;
		}
		GError *error = NULL;
		tr_calendar *cal = tr_calendar_from_keyfile(tr_conf_keyfile(conf), groups[i], &error);
		if (cal == NULL) {
			tr_conf_error(conf, diag, groups[i], NULL, "%s", error->message);
			g_error_free(error);
			continue;
		}
		if (tr_calendar_is_never_open(cal))
			tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, groups[i], NULL),
			                "[%s] is never open: business-time deadlines can never be met", groups[i]);
		g_hash_table_insert(p->calendars, g_strdup(tr_calendar_get_name(cal)), cal);
	}
	g_strfreev(groups);
}

static void calendar_free(gpointer data)
{
	tr_calendar *cal = data;
	tr_calendar_free(&cal);
}

static tr_conf *load_named(const tr_conf *main, tr_diag *diag, const char *key, const char *def)
{
	char *path = tr_conf_file_path(main, "triage", key, def);
	tr_conf *conf = NULL;
	if (path != NULL && g_file_test(path, G_FILE_TEST_EXISTS))
		conf = tr_conf_load(path, diag);
	else if (g_key_file_has_key(tr_conf_keyfile(main), "triage", key, NULL))
		tr_conf_error(main, diag, "triage", key, "%s does not exist", path);
	g_free(path);
	return conf;
}

tr_policy *tr_policy_load(const tr_conf *main, const char *const *categories, tr_diag *diag)
{
	unsigned errors_before = tr_diag_error_count(diag);
	tr_policy *p = g_new0(tr_policy, 1);
	p->routes = g_ptr_array_new_with_free_func(route_free);
	p->teams = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, team_free);
	p->people = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, person_free);
	p->people_by_address = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	p->rotations = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, rotation_free);
	p->calendars = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, calendar_free);
	builtin_defaults(p);

	tr_conf *calendars = load_named(main, diag, "calendars", "calendars.conf");
	if (calendars != NULL)
		load_calendars(p, calendars, diag);
	tr_conf *teams = load_named(main, diag, "teams", "teams.conf");
	if (teams != NULL)
		load_teams(p, teams, diag);
	char *customers_path = tr_conf_file_path(main, "triage", "customers", "customers.conf");
	p->customers = tr_customers_load(g_file_test(customers_path, G_FILE_TEST_EXISTS) ? customers_path : NULL, diag);
	g_free(customers_path);

	tr_conf *conf = load_named(main, diag, "policy", "policy.conf");
	if (conf != NULL) {
		load_classifier(p, conf, diag, categories);
		load_priority(p, conf, diag);
		gsize n = 0;
		char **groups = g_key_file_get_groups(tr_conf_keyfile(conf), &n);
		for (gsize i = 0; i < n; i++) {
			const char *g = groups[i];
			if (strcmp(g, "classifier") == 0 || strcmp(g, "priority") == 0)
				continue;
			if (strcmp(g, "escalation") == 0) {
				static const char *const keys[] = {
					"ack_timeout_P1", "ack_timeout_P2", "ack_timeout_P3", "ack_timeout_P4", NULL,
				};
				tr_conf_check_keys(conf, diag, g, keys);
				for (int pr = 0; pr < TR_PRIORITY_COUNT; pr++) {
					char *v = tr_conf_string(conf, g, keys[pr], NULL);
					if (v != NULL && (!tr_conf_parse_int(v, TR_UNIT_SECONDS, &p->ack_timeout[pr]) ||
					                  p->ack_timeout[pr] < 60))
						tr_conf_error(conf, diag, g, keys[pr], "'%s' is not a duration of at least 1m", v);
					g_free(v);
				}
				continue;
			}
			if (strncmp(g, "trigger ", 8) == 0)
				load_trigger(p, conf, diag, g);
			else if (strncmp(g, "sla ", 4) == 0)
				load_sla(p, conf, diag, g);
			else if (strncmp(g, "route ", 6) == 0)
				load_route(p, conf, diag, g, categories);
			else
				tr_diag_error(diag, tr_conf_path(conf), tr_conf_line(conf, g, NULL),
				              "[%s]: unknown group ([classifier], [priority], [escalation], "
				              "[trigger NAME], [sla TIER], [route NAME])", g);
		}
		g_strfreev(groups);
		/* Every team named by a route must exist (when teams are configured). */
		for (guint i = 0; i < p->routes->len; i++) {
			route *r = g_ptr_array_index(p->routes, i);
			char *group = g_strdup_printf("route %s", r->name);
			if (r->team != NULL && teams != NULL && !g_hash_table_contains(p->teams, r->team))
				tr_conf_error(conf, diag, group, "team", "no [team %s] in %s", r->team, tr_conf_path(teams));
			if (r->assignee != NULL && r->assignee[0] != '@' && !g_hash_table_contains(p->people, r->assignee))
				tr_conf_error(conf, diag, group, "assignee", "no [person %s]", r->assignee);
			if (r->assignee != NULL && r->assignee[0] == '@' && strcmp(r->assignee, "@account_manager") != 0 &&
			    strcmp(r->assignee, "@oncall") != 0)
				tr_conf_error(conf, diag, group, "assignee",
				              "'%s': a person, @account_manager or @oncall", r->assignee);
			g_free(group);
		}
		if (p->routes->len == 0)
			tr_diag_warning(diag, tr_conf_path(conf), 0, "no [route NAME]: everything goes to team %s",
			                p->default_team);
	}
	if (p->customers != NULL && teams != NULL) {
		for (unsigned i = 0; i < tr_customers_count(p->customers); i++) {
			const tr_customer *c = tr_customers_get(p->customers, i);
			if (c->account_manager != NULL && !g_hash_table_contains(p->people, c->account_manager))
				tr_diag_error(diag, tr_customers_path(p->customers), c->line,
				              "customer %s: account_manager '%s' has no [person]", c->account, c->account_manager);
			if (c->calendar != NULL && !g_hash_table_contains(p->calendars, c->calendar))
				tr_diag_error(diag, tr_customers_path(p->customers), c->line, "customer %s: no [calendar %s]",
				              c->account, c->calendar);
		}
	}
	tr_conf_free(&conf);
	tr_conf_free(&teams);
	tr_conf_free(&calendars);
	if (tr_diag_error_count(diag) > errors_before || p->customers == NULL)
		tr_policy_free(&p);
	return p;
}

void tr_policy_free(tr_policy **policyp)
{
	tr_policy *p = *policyp;
	if (p == NULL)
		return;
	*policyp = NULL;
	g_free(p->default_category);
	g_free(p->default_team);
	g_free(p->default_tier);
	g_free(p->default_language);
	g_strfreev(p->languages);
	g_strfreev(p->our_addresses);
	for (int c = 0; c < TR_CUSTOMER_TIER_COUNT; c++) {
		g_free(p->sla[c].calendar);
		for (int pr = 0; pr < TR_PRIORITY_COUNT; pr++) {
			g_free(p->sla[c].first[pr].text);
			g_free(p->sla[c].resolution[pr].text);
		}
	}
	g_ptr_array_unref(p->routes);
	g_hash_table_destroy(p->teams);
	g_hash_table_destroy(p->people_by_address);
	g_hash_table_destroy(p->people);
	g_hash_table_destroy(p->rotations);
	g_hash_table_destroy(p->calendars);
	tr_customers_free(&p->customers);
	g_free(p);
}

const tr_customers *tr_policy_customers(const tr_policy *p)
{
	return p->customers;
}

const tr_calendar *tr_policy_calendar(const tr_policy *p, const char *name)
{
	return name != NULL ? g_hash_table_lookup(p->calendars, name) : NULL;
}

const tr_team_info *tr_policy_team(const tr_policy *p, const char *name)
{
	const team *t = name != NULL ? g_hash_table_lookup(p->teams, name) : NULL;
	return t != NULL ? &t->info : NULL;
}

const tr_person_info *tr_policy_person(const tr_policy *p, const char *name)
{
	const person *pe = name != NULL ? g_hash_table_lookup(p->people, name) : NULL;
	return pe != NULL ? &pe->info : NULL;
}

const tr_person_info *tr_policy_person_by_address(const tr_policy *p, const char *address)
{
	const person *pe = address != NULL ? g_hash_table_lookup(p->people_by_address, address) : NULL;
	return pe != NULL ? &pe->info : NULL;
}

int64_t tr_policy_ack_timeout(const tr_policy *p, int priority)
{
	return priority >= 1 && priority <= TR_PRIORITY_COUNT ? p->ack_timeout[priority - 1] : 3600;
}

bool tr_policy_is_our_address(const tr_policy *p, const char *address)
{
	return is_our_address(p, address);
}

double tr_policy_negative_sentiment(const tr_policy *p)
{
	return p->negative_sentiment;
}

bool tr_policy_oncall(const tr_policy *p, const char *team_name, int64_t t,
                      const char **primary_r, const char **secondary_r)
{
	const team *tm = team_name != NULL ? g_hash_table_lookup(p->teams, team_name) : NULL;
	const rotation *r = tm != NULL && tm->oncall != NULL ? g_hash_table_lookup(p->rotations, tm->oncall) : NULL;
	*primary_r = *secondary_r = NULL;
	if (r == NULL || r->primary == NULL || r->primary[0] == NULL || r->period <= 0)
		return false;
	int64_t elapsed = t - r->start;
	int64_t index = elapsed >= 0 ? elapsed / r->period : -((-elapsed + r->period - 1) / r->period);
	guint np = g_strv_length(r->primary);
	*primary_r = r->primary[((index % np) + np) % np];
	if (r->secondary != NULL && r->secondary[0] != NULL) {
		guint ns = g_strv_length(r->secondary);
		*secondary_r = r->secondary[((index % ns) + ns) % ns];
	}
	return true;
}

/* ------------------------------------------------------------------ deciding */

typedef struct {
	tr_pool *pool;
	GPtrArray *lines;
} explainer;

static void explain(explainer *ex, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void explain(explainer *ex, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_ptr_array_add(ex->lines, tr_pool_vprintf(ex->pool, fmt, ap));
	va_end(ap);
}

static int compare_scores(const void *a, const void *b)
{
	const tr_category_score *x = a, *y = b;
	return x->score < y->score ? 1 : x->score > y->score ? -1 : strcmp(x->name, y->name);
}

static bool route_matches(const route *r, const tr_decision *d, const tr_msg *msg)
{
	if (r->categories != NULL && !in_list(r->categories, d->category))
		return false;
	if (r->trigger_mask != 0 && (r->trigger_mask & d->triggers) == 0)
		return false;
	if (r->priority_mask != 0 && (r->priority_mask & (1u << (d->priority - 1))) == 0)
		return false;
	if (r->customer_mask != 0 && (r->customer_mask & (1u << d->customer->tier)) == 0)
		return false;
	if (r->languages != NULL && !in_list(r->languages, msg->language))
		return false;
	if (r->vip >= 0 && (bool)r->vip != d->customer->vip)
		return false;
	return true;
}

static const char *pick_member(const tr_policy *p, const char *team_name, const tr_decide_input *in)
{
	team *t = team_name != NULL ? g_hash_table_lookup(p->teams, team_name) : NULL;
	if (t == NULL || t->members == NULL || t->members[0] == NULL || t->assign == ASSIGN_NONE)
		return NULL;
	guint n = g_strv_length(t->members);
	if (t->assign == ASSIGN_LEAST_LOADED && in->member_load != NULL) {
		const char *best = NULL;
		int best_load = G_MAXINT;
		for (guint i = 0; i < n; i++) {
			int load = in->member_load(in->member_load_data, t->members[i]);
			if (load < best_load) {
				best_load = load;
				best = t->members[i];
			}
		}
		return best;
	}
	guint k = (guint)g_atomic_int_add(&t->next, 1);
	return t->members[k % n];
}

static int64_t target_seconds(const sla_target *t, const tr_calendar *cal)
{
	if (t->business && t->days > 0)
		return cal != NULL ? tr_calendar_business_days_to_seconds(cal, t->days) : t->days * 86400;
	return t->seconds;
}

static int64_t target_due(const sla_target *t, const tr_calendar *cal, int64_t start)
{
	if (!t->business || cal == NULL)
		return start + target_seconds(t, cal);
	if (t->days > 0)
		return tr_calendar_add_business_days(cal, start, t->days);
	return tr_calendar_add_business(cal, start, t->seconds);
}

static bool is_our_address(const tr_policy *p, const char *address)
{
	return in_list(p->our_addresses, address);
}

/*
 * Whether a reply could reach ADDRESS: one '@', a local part and a domain
 * of printable characters, and for mail a domain with a dot or an address
 * literal (a chat JID may be user@host).  A sender mangled by NUL bytes or
 * spaces ("bin@exa mple.test" parses as "bin@exa") is not acknowledged.
 */
static bool address_replyable(const char *address, bool mail)
{
	const char *at = strchr(address, '@');
	if (at == NULL || at == address || at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return false;
	if (strlen(address) > 254)
		return false;
	for (const unsigned char *c = (const unsigned char *)address; *c != '\0'; c++) {
		if (*c <= ' ' || *c == 0x7f)
			return false;
	}
	const char *domain = at + 1;
	return !mail || domain[0] == '[' || strchr(domain, '.') != NULL;
}

void tr_policy_decide(const tr_policy *p, const tr_msg *msg, const tr_signals *signals,
                      const tr_decide_input *input, tr_decision *d)
{
	memset(d, 0, sizeof(*d));
	tr_pool *pool = msg->pool;
	explainer ex = { pool, g_ptr_array_new() };
	d->hits = signals->hits;
	d->n_hits = signals->n_hits;
	d->sentiment = signals->sentiment;
	d->customer = tr_customers_lookup(p->customers, msg->from.address);

	/* Rules: categories, urgency, impact, triggers, score. */
	GHashTable *scores = g_hash_table_new(g_str_hash, g_str_equal);
	GPtrArray *names = g_ptr_array_new();
	tr_level max_urgency = TR_LEVEL_NONE, max_impact = TR_LEVEL_NONE;
	bool low_urgency = false;
	const char *urgency_rule = NULL, *impact_rule = NULL;
	for (size_t i = 0; i < signals->n_hits; i++) {
		const tr_rule_hit *h = &signals->hits[i];
		if (h->negated)
			continue;
		const tr_rule_effect *e = tr_rule_get_effect(h->rule);
		for (unsigned c = 0; c < e->n_categories; c++) {
			double *slot = g_hash_table_lookup(scores, e->categories[c].name);
			if (slot == NULL) {
				slot = tr_pool_alloc(pool, sizeof(double));
				g_hash_table_insert(scores, (gpointer)e->categories[c].name, slot);
				g_ptr_array_add(names, (gpointer)e->categories[c].name);
			}
			*slot += e->categories[c].weight;
		}
		if (e->urgency == TR_LEVEL_LOW)
			low_urgency = true;
		else if (e->urgency > max_urgency) {
			max_urgency = e->urgency;
			urgency_rule = tr_rule_name(h->rule);
		}
		if (e->impact > max_impact) {
			max_impact = e->impact;
			impact_rule = tr_rule_name(h->rule);
		}
		d->triggers |= e->triggers;
		d->score += e->score;
	}
	d->n_category_scores = names->len;
	d->category_scores = tr_pool_alloc_array(pool, names->len + 1, sizeof(tr_category_score));
	for (guint i = 0; i < names->len; i++) {
		d->category_scores[i].name = g_ptr_array_index(names, i);
		d->category_scores[i].score = *(double *)g_hash_table_lookup(scores, g_ptr_array_index(names, i));
	}
	qsort(d->category_scores, d->n_category_scores, sizeof(tr_category_score), compare_scores);
	g_hash_table_destroy(scores);
	g_ptr_array_free(names, TRUE);
	if (d->n_category_scores > 0 && d->category_scores[0].score >= p->min_category_score) {
		d->category = d->category_scores[0].name;
		explain(&ex, "category %s (score %.1f%s)", d->category, d->category_scores[0].score,
		        d->n_category_scores > 1 ? tr_pool_printf(pool, ", next %s %.1f", d->category_scores[1].name,
		                                                  d->category_scores[1].score) : "");
	} else {
		d->category = p->default_category;
		explain(&ex, "category %s (no rule scored %.1f or more)", d->category, p->min_category_score);
	}

	d->urgency = max_urgency != TR_LEVEL_NONE ? max_urgency : low_urgency ? TR_LEVEL_LOW : p->default_urgency;
	d->impact = max_impact != TR_LEVEL_NONE ? max_impact : p->default_impact;
	d->priority = p->matrix[d->urgency][d->impact];
	explain(&ex, "urgency %s%s%s%s, impact %s%s%s%s -> %s", tr_level_name(d->urgency),
	        urgency_rule ? " (" : low_urgency && max_urgency == TR_LEVEL_NONE ? " (customer says it can wait" : " (default",
	        urgency_rule ? urgency_rule : "", ")",
	        tr_level_name(d->impact), impact_rule ? " (" : " (default", impact_rule ? impact_rule : "", ")",
	        tr_priority_name(d->priority));

	/* Triggers the classifier adds. */
	if (signals->sentiment.compound <= p->negative_sentiment) {
		d->triggers |= 1u << TR_TRIGGER_NEGATIVE_SENTIMENT;
		explain(&ex, "sentiment %.2f <= %.2f: negative_sentiment", signals->sentiment.compound,
		        p->negative_sentiment);
	}
	if (d->customer->vip || d->customer->tier == TR_CUSTOMER_ENTERPRISE) {
		d->triggers |= 1u << TR_TRIGGER_VIP;
		explain(&ex, "customer %s: %s%s", d->customer->account ? d->customer->account : msg->from.address,
		        tr_customer_tier_name(d->customer->tier), d->customer->vip ? ", VIP" : "");
	}
	d->triggers |= input->extra_triggers;

	/* Triggers raise priority; nothing lowers it. */
	GPtrArray *reasons = g_ptr_array_new();
	for (int t = 0; t < TR_TRIGGER_COUNT; t++) {
		if (!(d->triggers & (1u << t)))
			continue;
		const trigger_policy *tp = &p->triggers[t];
		int before = d->priority, pr = d->priority;
		if (tp->raise > 0)
			pr = MAX(1, pr - tp->raise);
		if (tp->min_priority > 0 && pr > tp->min_priority)
			pr = tp->min_priority;
		if (((tp->p1_when & P1_WHEN_IMPACT_HIGH) && d->impact == TR_LEVEL_HIGH) ||
		    ((tp->p1_when & P1_WHEN_ENTERPRISE) && d->customer->tier == TR_CUSTOMER_ENTERPRISE) ||
		    ((tp->p1_when & P1_WHEN_VIP) && d->customer->vip))
			pr = 1;
		if (pr < before) {
			d->priority = pr;
			explain(&ex, "trigger %s raises %s -> %s", tr_trigger_name((tr_trigger)t),
			        tr_priority_name(before), tr_priority_name(pr));
		}
		if (tp->escalate)
			g_ptr_array_add(reasons, (gpointer)tr_pool_printf(pool, "trigger %s", tr_trigger_name((tr_trigger)t)));
	}
	if (d->priority <= p->escalate_priority)
		g_ptr_array_add(reasons, (gpointer)tr_pool_printf(pool, "priority %s", tr_priority_name(d->priority)));
	if (d->score >= p->escalate_score)
		g_ptr_array_add(reasons, (gpointer)tr_pool_printf(pool, "rule score %.1f >= %.1f", d->score, p->escalate_score));

	/* Routing: the first route whose conditions all hold. */
	d->team = p->default_team;
	d->tier = p->default_tier;
	const route *chosen = NULL;
	for (guint i = 0; i < p->routes->len && chosen == NULL; i++) {
		const route *r = g_ptr_array_index(p->routes, i);
		if (route_matches(r, d, msg))
			chosen = r;
	}
	if (chosen != NULL) {
		d->route = chosen->name;
		d->team = chosen->team;
		d->tier = chosen->tier;
		if (chosen->escalate == 1)
			g_ptr_array_add(reasons, (gpointer)tr_pool_printf(pool, "route %s", chosen->name));
		else if (chosen->escalate == 0)
			g_ptr_array_set_size(reasons, 0);
	}
	explain(&ex, "route %s -> team %s, tier %s", d->route ? d->route : "(default)", d->team, d->tier);

	/* Who: a named person, the account manager, on-call, or the team's turn. */
	tr_policy_oncall(p, d->team, input->now, &d->oncall_primary, &d->oncall_secondary);
	bool page_oncall = d->priority == 1 || g_strcmp0(d->tier, "L3") == 0;
	const char *spec = chosen != NULL ? chosen->assignee : NULL;
	if (spec != NULL && strcmp(spec, "@account_manager") == 0 && d->customer->account_manager != NULL)
		d->assignee = d->customer->account_manager;
	else if (spec != NULL && strcmp(spec, "@oncall") == 0 && d->oncall_primary != NULL)
		d->assignee = d->oncall_primary;
	else if (spec != NULL && spec[0] != '@')
		d->assignee = spec;
	else if (page_oncall && d->oncall_primary != NULL)
		d->assignee = d->oncall_primary;
	else
		d->assignee = pick_member(p, d->team, input);
	if (!page_oncall)
		d->oncall_primary = d->oncall_secondary = NULL;
	if (d->assignee != NULL)
		explain(&ex, "assignee %s%s", d->assignee, page_oncall && d->assignee == d->oncall_primary ? " (on call now)" : "");

	d->escalate = reasons->len > 0;
	d->n_escalate_reasons = reasons->len;
	d->escalate_reasons = tr_pool_alloc_array(pool, reasons->len + 1, sizeof(char *));
	if (reasons->len > 0)
		memcpy(d->escalate_reasons, reasons->pdata, reasons->len * sizeof(char *));
	g_ptr_array_free(reasons, TRUE);
	if (d->escalate) {
		GString *why = g_string_new(NULL);
		for (size_t i = 0; i < d->n_escalate_reasons; i++)
			g_string_append_printf(why, "%s%s", i ? ", " : "", d->escalate_reasons[i]);
		explain(&ex, "escalate now: %s", why->str);
		g_string_free(why, TRUE);
	}

	/* Reply language: the customer's, the message's, else the default. */
	if (d->customer->language != NULL && in_list(p->languages, d->customer->language))
		d->language = d->customer->language;
	else if (msg->language != NULL && in_list(p->languages, msg->language))
		d->language = msg->language;
	else
		d->language = p->default_language;

	/* Acknowledge? Never to automatic mail (RFC 3834) or to ourselves. */
	if (tr_msg_is_auto(msg)) {
		GString *why = g_string_new("auto-generated (");
		for (unsigned i = 0, n = 0; i < TR_AUTO_COUNT; i++) {
			if (msg->auto_flags & (1u << i))
				g_string_append_printf(why, "%s%s", n++ ? ", " : "", tr_msg_auto_name(i));
		}
		g_string_append_c(why, ')');
		d->no_ack_reason = tr_pool_strdup(pool, why->str);
		g_string_free(why, TRUE);
	} else if (*msg->from.address == '\0' || strchr(msg->from.address, '@') == NULL) {
		d->no_ack_reason = "no sender address";
	} else if (!address_replyable(msg->from.address, msg->channel != TR_CHANNEL_XMPP)) {
		d->no_ack_reason = "the sender address cannot take a reply";
	} else if (is_our_address(p, msg->from.address)) {
		d->no_ack_reason = "sent from one of our own addresses";
	} else if (tr_msg_header(msg, "X-Triage-Loop") != NULL) {
		d->no_ack_reason = "carries our loop marker (X-Triage-Loop)";
	}
	d->ack = d->no_ack_reason == NULL;
	if (!d->ack)
		explain(&ex, "no acknowledgment: %s", d->no_ack_reason);

	/* SLA targets for priority x customer tier, in the right calendar. */
	const sla_tier *st = &p->sla[d->customer->tier];
	const char *cal_name = d->customer->calendar != NULL ? d->customer->calendar : st->calendar;
	const tr_calendar *cal = tr_policy_calendar(p, cal_name);
	const sla_target *first = &st->first[d->priority - 1], *resolution = &st->resolution[d->priority - 1];
	d->sla.calendar = cal != NULL ? tr_calendar_get_name(cal) : NULL;
	d->sla.first_response_business = first->business && cal != NULL;
	d->sla.resolution_business = resolution->business && cal != NULL;
	d->sla.first_response_minutes = target_seconds(first, cal) / 60;
	d->sla.resolution_minutes = target_seconds(resolution, cal) / 60;
	d->sla.first_response_due = target_due(first, cal, input->now);
	d->sla.resolution_due = target_due(resolution, cal, input->now);
	explain(&ex, "SLA %s %s: first response %s, resolution %s%s%s", tr_customer_tier_name(d->customer->tier),
	        tr_priority_name(d->priority), first->text, resolution->text,
	        d->sla.calendar ? " in calendar " : "", d->sla.calendar ? d->sla.calendar : "");

	d->n_explanation = ex.lines->len;
	d->explanation = tr_pool_alloc_array(pool, ex.lines->len + 1, sizeof(char *));
	if (ex.lines->len > 0)
		memcpy(d->explanation, ex.lines->pdata, ex.lines->len * sizeof(char *));
	g_ptr_array_free(ex.lines, TRUE);
}

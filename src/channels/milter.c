/* milter.c — triage inside the MTA's SMTP session; see milter.h */
#include "channels/milter.h"

#include <errno.h>
#include <gio/gio.h>
#include <gmime/gmime.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/netaddr.h"
#include "core/normalize.h"
#include "core/rules.h"
#include "core/xtriage.h"

const tr_conftab tr_milter_limits_table[] = {
	{ "body_bytes", 256 * 1024, 1024, 64 * 1024 * 1024, TR_UNIT_BYTES, offsetof(tr_milter_limits, body_bytes),
	  "[milter] body bytes kept and classified; the rest of the body is not looked at" },
	{ "header_bytes", 256 * 1024, 4096, 16 * 1024 * 1024, TR_UNIT_BYTES, offsetof(tr_milter_limits, header_bytes),
	  "[milter] header bytes kept and classified" },
	{ "timeout", 300, 1, 7200, TR_UNIT_SECONDS, offsetof(tr_milter_limits, timeout),
	  "[milter] wait this long for the MTA (libmilter smfi_settimeout)" },
	{ "hook_timeout", 30, 1, 600, TR_UNIT_SECONDS, offsetof(tr_milter_limits, hook_timeout),
	  "[milter] the ticket store may take this long per message; keep it below the MTA's "
	  "milter_content_timeout" },
	{ "rules_header_bytes", 200, 16, 900, TR_UNIT_BYTES, offsetof(tr_milter_limits, rules_header_bytes),
	  "[milter] characters of the rule list in X-Triage-Rules" },
	{ NULL, 0, 0, 0, TR_UNIT_COUNT, 0, NULL },
};

#define DEFAULT_LISTEN "inet:10030@127.0.0.1"

/* A list setting ("a, b c") as lowercased words; NULL or "" gives none. */
static char **split_list(const char *text)
{
	GPtrArray *out = g_ptr_array_new();
	if (text != NULL) {
		char **words = g_strsplit_set(text, ", \t;", -1);
		for (char **w = words; *w != NULL; w++) {
			if (**w != '\0')
				g_ptr_array_add(out, g_ascii_strdown(*w, -1));
		}
		g_strfreev(words);
	}
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

/* The address inside "<...>" (after a source route), trimmed; in pool. */
static const char *strip_brackets(tr_pool *pool, const char *text)
{
	while (*text == ' ' || *text == '\t')
		text++;
	const char *end = text + strlen(text);
	if (*text == '<') {
		const char *gt = strchr(text, '>');
		text++;
		end = gt != NULL ? gt : text + strlen(text);
		if (*text == '@') {
			const char *colon = memchr(text, ':', (size_t)(end - text));
			if (colon != NULL)
				text = colon + 1;
		}
	}
	while (end > text && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return tr_pool_strndup(pool, text, (size_t)(end - text));
}

/* ---- settings ---- */

void tr_milter_settings_default(tr_milter_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->listen = g_strdup(DEFAULT_LISTEN);
	s->recipients = g_new0(char *, 1);
	s->agent_domains = g_new0(char *, 1);
	s->quarantine_categories = g_new0(char *, 1);
	s->ticket_prefix = g_strdup("TKT");
	s->team_mailboxes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	tr_conftab_defaults(tr_milter_limits_table, &s->limits);
}

void tr_milter_settings_clear(tr_milter_settings *s)
{
	g_free(s->listen);
	g_strfreev(s->recipients);
	g_strfreev(s->agent_domains);
	g_strfreev(s->quarantine_categories);
	g_free(s->ticket_prefix);
	if (s->team_mailboxes != NULL)
		g_hash_table_destroy(s->team_mailboxes);
	memset(s, 0, sizeof(*s));
}

/* [team NAME] mailbox = ... from the teams file the policy also reads. */
static void load_team_mailboxes(tr_milter_settings *s, const tr_conf *conf, tr_diag *diag)
{
	char *path = tr_conf_file_path(conf, "triage", "teams", "teams.conf");
	tr_diag *quiet = tr_diag_new();   /* the policy reports this file's errors */
	tr_conf *teams = tr_conf_load(path, quiet);
	tr_diag_free(&quiet);
	if (teams == NULL) {
		if (s->escalation_recipient)
			tr_conf_error(conf, diag, "milter", "escalation_recipient", "cannot read the teams file %s", path);
		g_free(path);
		return;
	}
	gsize n = 0;
	char **groups = g_key_file_get_groups(tr_conf_keyfile(teams), &n);
	for (gsize i = 0; i < n; i++) {
		if (!g_str_has_prefix(groups[i], "team "))
			continue;
		char *mailbox = tr_conf_string(teams, groups[i], "mailbox", NULL);
		if (mailbox != NULL && *mailbox != '\0')
			g_hash_table_replace(s->team_mailboxes, g_strdup(groups[i] + 5), mailbox);
		else
			g_free(mailbox);
	}
	g_strfreev(groups);
	tr_conf_free(&teams);
	g_free(path);
}

void tr_milter_settings_load(tr_milter_settings *s, const tr_conf *conf, const char *listen_override,
                             tr_diag *diag)
{
	static const char *const extra[] = {
		"listen", "recipients", "agent_domains", "on_error", "tag_priority", "tag_ticket",
		"escalation_recipient", "quarantine_triggers", "quarantine_categories", NULL,
	};
	tr_milter_settings_default(s);
	tr_conftab_load_keys(tr_milter_limits_table, conf, diag, "milter", &s->limits, extra);

	char *listen = listen_override != NULL ? g_strdup(listen_override)
	                                       : tr_conf_string(conf, "milter", "listen", DEFAULT_LISTEN);
	tr_netaddr addr;
	GError *error = NULL;
	if (!tr_netaddr_parse(listen, &addr, &error)) {
		if (listen_override != NULL)
			tr_diag_error(diag, NULL, 0, "--listen: %s", error->message);
		else
			tr_conf_error(conf, diag, "milter", "listen", "%s", error->message);
		g_clear_error(&error);
	}
	g_free(s->listen);
	s->listen = listen;

	char *text = tr_conf_string(conf, "milter", "recipients", NULL);
	g_strfreev(s->recipients);
	s->recipients = split_list(text);
	for (char **r = s->recipients; *r != NULL; r++) {
		const char *at = strchr(*r, '@');
		if (at == NULL || at[1] == '\0' || strchr(at + 1, '@') != NULL)
			tr_conf_error(conf, diag, "milter", "recipients",
			              "'%s' is neither an address nor @domain", *r);
	}
	if (s->recipients[0] == NULL && g_key_file_has_group(tr_conf_keyfile(conf), "milter"))
		tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, "milter", NULL),
		                "[milter] recipients is empty: no message will be triaged");
	g_free(text);

	text = tr_conf_string(conf, "milter", "agent_domains", NULL);
	if (text == NULL)
		text = tr_conf_string(conf, "tickets", "agent_domains", NULL);
	g_strfreev(s->agent_domains);
	s->agent_domains = split_list(text);
	g_free(text);

	text = tr_conf_string(conf, "tickets", "prefix", NULL);
	if (text != NULL && *text != '\0') {
		g_free(s->ticket_prefix);
		s->ticket_prefix = g_ascii_strup(text, -1);
	}
	g_free(text);

	text = tr_conf_string(conf, "milter", "on_error", NULL);
	if (text != NULL) {
		if (g_ascii_strcasecmp(text, "accept") == 0)
			s->on_error = TR_MILTER_ON_ERROR_ACCEPT;
		else if (g_ascii_strcasecmp(text, "tempfail") == 0)
			s->on_error = TR_MILTER_ON_ERROR_TEMPFAIL;
		else
			tr_conf_error(conf, diag, "milter", "on_error", "'%s' is not accept or tempfail", text);
	}
	g_free(text);

	text = tr_conf_string(conf, "milter", "tag_priority", NULL);
	char **words = split_list(text);
	for (char **w = words; *w != NULL; w++) {
		int p;
		if (strcmp(*w, "none") == 0)
			continue;
		if (tr_priority_parse(*w, &p))
			s->tag_priorities |= 1u << p;
		else
			tr_conf_error(conf, diag, "milter", "tag_priority", "'%s' is not a priority P1..P4", *w);
	}
	g_strfreev(words);
	g_free(text);
	s->tag_ticket = tr_conf_bool(conf, diag, "milter", "tag_ticket", false);
	s->escalation_recipient = tr_conf_bool(conf, diag, "milter", "escalation_recipient", false);

	text = tr_conf_string(conf, "milter", "quarantine_triggers", NULL);
	words = split_list(text);
	for (char **w = words; *w != NULL; w++) {
		tr_trigger t;
		if (tr_trigger_parse(*w, &t))
			s->quarantine_triggers |= 1u << t;
		else
			tr_conf_error(conf, diag, "milter", "quarantine_triggers", "'%s' is not a trigger", *w);
	}
	g_strfreev(words);
	g_free(text);
	text = tr_conf_string(conf, "milter", "quarantine_categories", NULL);
	g_strfreev(s->quarantine_categories);
	s->quarantine_categories = split_list(text);
	g_free(text);

	load_team_mailboxes(s, conf, diag);
}

static const char *bare_address(char *buf, size_t size, const char *addr)
{
	while (*addr == ' ')
		addr++;
	if (*addr == '<')
		addr++;
	g_strlcpy(buf, addr, size);
	char *gt = strchr(buf, '>');
	if (gt != NULL)
		*gt = '\0';
	for (char *c = buf; *c != '\0'; c++)
		*c = g_ascii_tolower(*c);
	return buf;
}

bool tr_milter_selected(const tr_milter_settings *s, const char *rcpt)
{
	char buf[512];
	const char *addr = bare_address(buf, sizeof(buf), rcpt);
	const char *at = strrchr(addr, '@');
	for (char **r = s->recipients; *r != NULL; r++) {
		if ((*r)[0] == '@') {
			if (at != NULL && strcmp(at, *r) == 0)
				return true;
		} else if (strcmp(addr, *r) == 0) {
			return true;
		}
	}
	return false;
}

static bool agent_sender(const tr_milter_settings *s, const char *address)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;
	if (at == NULL)
		return false;
	for (char **d = s->agent_domains; *d != NULL; d++)
		if (g_ascii_strcasecmp(at + 1, *d) == 0)
			return true;
	return false;
}

/* ---- the filter ---- */

struct tr_milter {
	tr_engine_slot *engines;
	const tr_milter_settings *settings;
	tr_milter_store store;
	gint fail_classify;
};

tr_milter *tr_milter_new(tr_engine_slot *engines, const tr_milter_settings *settings,
                         const tr_milter_store *store)
{
	tr_milter *m = g_new0(tr_milter, 1);
	m->engines = engines;
	m->settings = settings;
	if (store != NULL)
		m->store = *store;
	return m;
}

void tr_milter_free(tr_milter **mp)
{
	g_clear_pointer(mp, g_free);
}

void tr_milter_fail_classify(tr_milter *m, bool fail)
{
	g_atomic_int_set(&m->fail_classify, fail ? 1 : 0);
}

tr_milter_verdict tr_milter_on_error_verdict(const tr_milter *m)
{
	return m->settings->on_error == TR_MILTER_ON_ERROR_TEMPFAIL ? TR_MILTER_TEMPFAIL : TR_MILTER_ACCEPT;
}

/* ---- one message ---- */

typedef struct {
	const char *name;   /* as sent */
	int index;          /* 1-based among headers of that name (any case) */
} triage_header;

struct tr_milter_msg {
	tr_milter *milter;
	tr_pool *pool;
	const char *from;            /* without <> */
	GPtrArray *rcpts;            /* pool strings, without <> */
	bool selected;
	bool agent;                  /* the sender is in agent_domains */
	GString *raw;                /* headers as received (CRLF), blank line, body prefix */
	bool headers_done;
	bool headers_truncated;
	size_t body_bytes;           /* body bytes seen (kept or not) */
	GHashTable *name_counts;     /* lowercase name -> count (GINT) */
	GArray *triage_headers;      /* triage_header, in arrival order */
	const char *subject_raw;     /* first Subject value, or NULL */
	GArray *actions;             /* tr_milter_action */
};

tr_milter_msg *tr_milter_msg_new(tr_milter *milter, const char *from)
{
	tr_milter_msg *msg = g_new0(tr_milter_msg, 1);
	msg->milter = milter;
	msg->pool = tr_pool_new(4096);
	msg->from = strip_brackets(msg->pool, from != NULL ? from : "");
	msg->agent = agent_sender(milter->settings, msg->from);
	msg->rcpts = g_ptr_array_new();
	msg->raw = g_string_sized_new(8192);
	msg->name_counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	msg->triage_headers = g_array_new(FALSE, FALSE, sizeof(triage_header));
	msg->actions = g_array_new(FALSE, TRUE, sizeof(tr_milter_action));
	return msg;
}

void tr_milter_msg_free(tr_milter_msg **msgp)
{
	tr_milter_msg *msg = *msgp;
	if (msg == NULL)
		return;
	*msgp = NULL;
	g_ptr_array_free(msg->rcpts, TRUE);
	g_string_free(msg->raw, TRUE);
	g_hash_table_destroy(msg->name_counts);
	g_array_free(msg->triage_headers, TRUE);
	g_array_free(msg->actions, TRUE);
	tr_pool_free(&msg->pool);
	g_free(msg);
}

void tr_milter_msg_rcpt(tr_milter_msg *msg, const char *rcpt)
{
	const char *addr = strip_brackets(msg->pool, rcpt != NULL ? rcpt : "");
	g_ptr_array_add(msg->rcpts, (gpointer)addr);
	if (tr_milter_selected(msg->milter->settings, addr))
		msg->selected = true;
}

/* Append text with its line ends made CRLF (libmilter folds with bare LF). */
static void append_crlf(GString *out, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\n' && (p == text || p[-1] != '\r'))
			g_string_append_c(out, '\r');
		g_string_append_c(out, *p);
	}
}

void tr_milter_msg_header(tr_milter_msg *msg, const char *name, const char *value)
{
	if (name == NULL)
		return;
	if (value == NULL)
		value = "";
	char *lower = g_ascii_strdown(name, -1);
	int count = GPOINTER_TO_INT(g_hash_table_lookup(msg->name_counts, lower)) + 1;
	g_hash_table_replace(msg->name_counts, lower, GINT_TO_POINTER(count));
	if (tr_xtriage_is_header(name, strlen(name))) {
		/* Forged (or ours from an earlier pass): removed at eom, and never
		 * shown to the classifier. */
		triage_header h = { tr_pool_strdup(msg->pool, name), count };
		g_array_append_val(msg->triage_headers, h);
		return;
	}
	if (msg->subject_raw == NULL && g_ascii_strcasecmp(name, "Subject") == 0)
		msg->subject_raw = tr_pool_strdup(msg->pool, value);
	size_t need = strlen(name) + strlen(value) + 4;
	if (msg->raw->len + need > (size_t)msg->milter->settings->limits.header_bytes) {
		msg->headers_truncated = true;
		return;
	}
	g_string_append(msg->raw, name);
	g_string_append(msg->raw, ": ");
	append_crlf(msg->raw, value);
	g_string_append(msg->raw, "\r\n");
}

static void end_headers(tr_milter_msg *msg)
{
	if (!msg->headers_done) {
		g_string_append(msg->raw, "\r\n");
		msg->headers_done = true;
	}
}

/* An agent's message is only of interest with a ticket tag in its subject:
 * most mail from the company's own domain has none. */
static bool agent_reply_tagged(const tr_milter_msg *msg)
{
	if (msg->subject_raw == NULL)
		return false;
	char *decoded = g_mime_utils_header_decode_text(NULL, msg->subject_raw);
	char ticket[64];
	bool tagged = tr_xtriage_find_ticket(decoded, msg->milter->settings->ticket_prefix, ticket, sizeof(ticket));
	g_free(decoded);
	return tagged;
}

tr_milter_verdict tr_milter_msg_eoh(tr_milter_msg *msg)
{
	end_headers(msg);
	if (msg->agent && !msg->selected && (msg->milter->store.reply == NULL || !agent_reply_tagged(msg)))
		msg->agent = false;
	return msg->selected || msg->agent ? TR_MILTER_CONTINUE : TR_MILTER_ACCEPT;
}

void tr_milter_msg_body(tr_milter_msg *msg, const void *data, size_t len)
{
	end_headers(msg);
	size_t limit = (size_t)msg->milter->settings->limits.body_bytes;
	size_t kept = msg->body_bytes < limit ? MIN(len, limit - msg->body_bytes) : 0;
	if (msg->selected && kept > 0)
		g_string_append_len(msg->raw, data, (gssize)kept);
	msg->body_bytes += len;
}

static void add_action(tr_milter_msg *msg, tr_milter_action_kind kind, const char *name, int index,
                       const char *value)
{
	tr_milter_action a = { kind, name, index, value };
	g_array_append_val(msg->actions, a);
}

/* Remove every X-Triage-* header that arrived: per name from the highest
 * index down, so the lower indexes stay valid while deleting. */
static void delete_forged(tr_milter_msg *msg)
{
	for (guint i = msg->triage_headers->len; i > 0; i--) {
		const triage_header *h = &g_array_index(msg->triage_headers, triage_header, i - 1);
		add_action(msg, TR_MILTER_DELETE_HEADER, h->name, h->index, NULL);
	}
}

static bool subject_has(const char *decoded, const char *tag)
{
	if (decoded == NULL)
		return false;
	char *a = g_ascii_strdown(decoded, -1), *b = g_ascii_strdown(tag, -1);
	bool found = strstr(a, b) != NULL;
	g_free(a);
	g_free(b);
	return found;
}

static void tag_subject(tr_milter_msg *msg, const tr_msg *parsed, const tr_decision *d, const char *ticket)
{
	const tr_milter_settings *s = msg->milter->settings;
	GString *tags = g_string_new(NULL);
	if (s->tag_priorities & (1u << d->priority)) {
		char tag[8];
		g_snprintf(tag, sizeof(tag), "[%s]", tr_priority_name(d->priority));
		if (!subject_has(parsed->subject, tag))
			g_string_append_printf(tags, "%s ", tag);
	}
	if (s->tag_ticket && ticket[0] != '\0') {
		char *tag = g_strdup_printf("[%s]", ticket);
		if (!subject_has(parsed->subject, tag))
			g_string_append_printf(tags, "%s ", tag);
		g_free(tag);
	}
	if (tags->len > 0) {
		if (msg->subject_raw != NULL) {
			const char *old = msg->subject_raw;
			while (*old == ' ' || *old == '\t')
				old++;
			char *value = tr_pool_printf(msg->pool, "%s%s", tags->str, old);
			/* What we write back has no line break but folds: a bare CR or
			 * LF in the original becomes a space. */
			for (char *c = value; *c != '\0'; c++) {
				if (*c == '\r' || (*c == '\n' && c[1] != ' ' && c[1] != '\t'))
					*c = ' ';
			}
			add_action(msg, TR_MILTER_CHANGE_HEADER, "Subject", 1, value);
		} else {
			g_string_truncate(tags, tags->len - 1);
			add_action(msg, TR_MILTER_ADD_HEADER, "Subject", 0, tr_pool_strdup(msg->pool, tags->str));
		}
	}
	g_string_free(tags, TRUE);
}

static void escalation_rcpt(tr_milter_msg *msg, const tr_decision *d)
{
	const tr_milter_settings *s = msg->milter->settings;
	if (!s->escalation_recipient || !d->escalate || d->team == NULL)
		return;
	const char *mailbox = g_hash_table_lookup(s->team_mailboxes, d->team);
	if (mailbox == NULL)
		return;
	for (guint i = 0; i < msg->rcpts->len; i++)
		if (g_ascii_strcasecmp(g_ptr_array_index(msg->rcpts, i), mailbox) == 0)
			return;
	add_action(msg, TR_MILTER_ADD_RCPT, NULL, 0, tr_pool_printf(msg->pool, "<%s>", mailbox));
}

static void quarantine(tr_milter_msg *msg, const tr_decision *d)
{
	const tr_milter_settings *s = msg->milter->settings;
	uint32_t hit = d->triggers & s->quarantine_triggers;
	if (hit != 0) {
		for (unsigned t = 0; t < TR_TRIGGER_COUNT; t++) {
			if (hit & (1u << t)) {
				add_action(msg, TR_MILTER_QUARANTINE, NULL, 0,
				           tr_pool_printf(msg->pool, "triage: trigger %s", tr_trigger_name(t)));
				return;
			}
		}
	}
	for (char **c = s->quarantine_categories; *c != NULL && d->category != NULL; c++) {
		if (g_ascii_strcasecmp(*c, d->category) == 0) {
			add_action(msg, TR_MILTER_QUARANTINE, NULL, 0,
			           tr_pool_printf(msg->pool, "triage: category %s", d->category));
			return;
		}
	}
}

/* The on_error outcome: accept with only the forged headers removed, or
 * tempfail with no change. */
static tr_milter_verdict fail_safe(tr_milter_msg *msg, const char *queue_id, const char *what)
{
	bool tempfail = msg->milter->settings->on_error == TR_MILTER_ON_ERROR_TEMPFAIL;
	tr_log_warning("milter %s: from=<%s>: %s; %s", queue_id != NULL ? queue_id : "-", msg->from, what,
	          tempfail ? "temporary failure (on_error = tempfail)" : "accepted without triage (on_error = accept)");
	g_array_set_size(msg->actions, 0);
	if (tempfail)
		return TR_MILTER_TEMPFAIL;
	if (msg->selected)
		delete_forged(msg);
	return TR_MILTER_CONTINUE;
}

/* The store's input for this message. */
static tr_ingest_input ingest_input(const tr_milter_msg *msg, const char *source, int64_t now)
{
	return (tr_ingest_input){
		.channel = TR_CHANNEL_MILTER,
		.data = msg->raw->str,
		.len = msg->raw->len,
		.envelope_from = msg->from,
		.envelope_to = (const char *const *)msg->rcpts->pdata,
		.n_envelope_to = msg->rcpts->len,
		.now = now,
		.source = source,
	};
}

static void record_agent_reply(tr_milter_msg *msg, const tr_msg *parsed, const char *qid, const char *source,
                               int64_t now, bool *failed)
{
	const tr_milter *m = msg->milter;
	char ticket[64];
	if (!msg->agent || m->store.reply == NULL ||
	    !tr_xtriage_find_ticket(parsed->subject, m->settings->ticket_prefix, ticket, sizeof(ticket)))
		return;
	const char *agent = *parsed->from.address != '\0' && agent_sender(m->settings, parsed->from.address)
	                    ? parsed->from.address : msg->from;
	tr_ingest_input in = ingest_input(msg, source, now);
	GError *error = NULL;
	bool recorded = false;
	if (!m->store.reply(m->store.context, ticket, &in, &recorded, &error)) {
		tr_log_warning("milter %s: agent reply on %s by %s not recorded: %s", qid, ticket, agent,
		               error != NULL ? error->message : "the store hook failed");
		g_clear_error(&error);
		*failed = true;
		return;
	}
	if (recorded)
		tr_log_info("milter %s: ticket=%s answered by %s (first response recorded)", qid, ticket, agent);
	else
		tr_log_info("milter %s: %s answered by %s: no such ticket, nothing recorded", qid, ticket, agent);
}

/* The store's view of the ticket goes into the headers (see lmtp.c). */
static void apply_result(tr_pool *pool, tr_decision *d, const tr_ingest_result *r)
{
	if (r->priority >= 1 && r->priority <= TR_PRIORITY_COUNT)
		d->priority = r->priority;
	if (r->category[0] != '\0')
		d->category = tr_pool_strdup(pool, r->category);
	if (r->team[0] != '\0')
		d->team = tr_pool_strdup(pool, r->team);
}

tr_milter_verdict tr_milter_msg_eom(tr_milter_msg *msg, const char *queue_id,
                                    const tr_milter_action **actions_r, size_t *n_actions_r)
{
	tr_milter *m = msg->milter;
	const tr_milter_settings *s = m->settings;
	const char *qid = queue_id != NULL ? queue_id : "-";
	int64_t started = g_get_monotonic_time();
	int64_t now = g_get_real_time() / G_USEC_PER_SEC;
	tr_milter_verdict verdict = TR_MILTER_CONTINUE;
	tr_engine *engine = NULL;
	tr_msg *parsed = NULL;
	GError *error = NULL;
	char *source = NULL;
	*actions_r = NULL;
	*n_actions_r = 0;
	g_array_set_size(msg->actions, 0);
	end_headers(msg);
	if (!msg->selected && !msg->agent)
		return TR_MILTER_ACCEPT;

	if (g_atomic_int_get(&m->fail_classify)) {
		verdict = fail_safe(msg, queue_id, "internal error (test fault: classify)");
		goto out;
	}
	engine = tr_engine_slot_get(m->engines);
	parsed = tr_norm_parse(tr_engine_norm(engine), TR_CHANNEL_MILTER, msg->raw->str, msg->raw->len, &error);
	if (parsed == NULL) {
		char *what = g_strdup_printf("cannot normalize: %s", error != NULL ? error->message : "?");
		verdict = fail_safe(msg, queue_id, what);
		g_free(what);
		g_clear_error(&error);
		goto out;
	}
	parsed->envelope_from = tr_pool_strdup(parsed->pool, msg->from);
	if (*msg->from == '\0')
		parsed->auto_flags |= TR_AUTO_NULL_SENDER;
	const char **to = tr_pool_alloc_array(parsed->pool, msg->rcpts->len + 1, sizeof(char *));
	for (guint i = 0; i < msg->rcpts->len; i++)
		to[i] = tr_pool_strdup(parsed->pool, g_ptr_array_index(msg->rcpts, i));
	parsed->envelope_to = to;
	parsed->envelope_to_count = msg->rcpts->len;
	bool truncated = msg->body_bytes > (size_t)s->limits.body_bytes || msg->headers_truncated;
	if (truncated)
		parsed->flags |= TR_MSG_TRUNCATED_SIZE;
	source = g_strdup_printf("milter %s%s", qid, truncated ? " (truncated to body_bytes)" : "");

	bool hook_failed = false;
	record_agent_reply(msg, parsed, qid, source, now, &hook_failed);
	if (hook_failed) {
		verdict = fail_safe(msg, queue_id, "the reply hook failed");
		goto out;
	}
	if (!msg->selected)
		goto out;   /* an agent's reply to a customer: nothing to change */

	tr_decide_input input = { .now = now };
	tr_decision d;
	memset(&d, 0, sizeof(d));
	tr_engine_decide(engine, parsed, &input, &d);

	char ticket[sizeof(((tr_ingest_result *)0)->ticket)] = "";
	const char *stored = "none";
	if (m->store.ingest != NULL) {
		tr_ingest_input in = ingest_input(msg, source, now);
		tr_ingest_result result;
		memset(&result, 0, sizeof(result));
		if (!m->store.ingest(m->store.context, &in, &result, &error)) {
			char *what = g_strdup_printf("not committed: %s", error != NULL ? error->message : "the store hook failed");
			verdict = fail_safe(msg, queue_id, what);
			g_free(what);
			g_clear_error(&error);
			goto out;
		}
		g_strlcpy(ticket, result.ticket, sizeof(ticket));
		apply_result(parsed->pool, &d, &result);
		stored = tr_ingest_kind_name(result.kind);
	}
	if (g_get_monotonic_time() - started > s->limits.hook_timeout * G_USEC_PER_SEC) {
		/* Too late to be of use: the MTA may have given up on us already.
		 * Whatever was committed is recognised when the message comes again. */
		verdict = fail_safe(msg, queue_id, "timeout (hook_timeout)");
		goto out;
	}

	delete_forged(msg);
	tr_xtriage_header headers[TR_XTRIAGE_HEADERS_MAX];
	size_t nh = tr_xtriage_headers(msg->pool, &d, ticket, (size_t)s->limits.rules_header_bytes, "\n\t", headers);
	for (size_t i = 0; i < nh; i++)
		add_action(msg, TR_MILTER_ADD_HEADER, headers[i].name, 0, headers[i].value);
	tag_subject(msg, parsed, &d, ticket);
	escalation_rcpt(msg, &d);
	quarantine(msg, &d);
	tr_log_info("milter %s: from=<%s> nrcpt=%u size=%zu priority=%s category=%s team=%s ticket=%s store=%s "
	            "changes=%u (%.1f ms)",
	            qid, msg->from, msg->rcpts->len, msg->body_bytes, tr_priority_name(d.priority), d.category,
	            d.team, ticket[0] != '\0' ? ticket : "-", stored, msg->actions->len,
	            (double)(g_get_monotonic_time() - started) / 1000.0);
out:
	tr_msg_free(&parsed);
	tr_engine_free(&engine);
	g_free(source);
	*actions_r = (const tr_milter_action *)(void *)msg->actions->data;
	*n_actions_r = msg->actions->len;
	return verdict;
}

/* ---- libmilter binding ---- */

/* libmilter has no user data for the filter: the one running milter. */
static tr_milter *running;

static tr_milter_msg *priv(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

static void drop_priv(SMFICTX *ctx)
{
	tr_milter_msg *msg = priv(ctx);
	if (msg != NULL) {
		smfi_setpriv(ctx, NULL);
		tr_milter_msg_free(&msg);
	}
}

static sfsistat cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *addr)
{
	(void)ctx;
	(void)hostname;
	(void)addr;
	return SMFIS_CONTINUE;
}

/*
 * HELO and DATA need nothing from triage, yet they are answered: without
 * these callbacks libmilter negotiates both steps away, but Postfix still
 * sends their macros, and nothing answers them.  The MTA's next write
 * (MAIL after HELO, the first header after DATA) then finds unacknowledged
 * data in flight, and Nagle holds it until the milter's delayed ACK, 40 ms
 * later on Linux: measured through Postfix on loopback, the SMTP
 * transaction took 55 ms (p50) with the DATA step left out and 9 ms with it
 * answered.  The same reason keeps every other step answered (no SMFIP_NR_*).
 */
static sfsistat cb_helo(SMFICTX *ctx, char *name)
{
	(void)ctx;
	(void)name;
	return SMFIS_CONTINUE;
}

static sfsistat cb_data(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat cb_envfrom(SMFICTX *ctx, char **argv)
{
	drop_priv(ctx);   /* a message the MTA ended without abort */
	tr_milter_msg *msg = tr_milter_msg_new(running, argv != NULL ? argv[0] : "");
	if (smfi_setpriv(ctx, msg) != MI_SUCCESS) {
		tr_milter_msg_free(&msg);
		tr_log_warning("milter: smfi_setpriv failed");
		return tr_milter_on_error_verdict(running) == TR_MILTER_TEMPFAIL ? SMFIS_TEMPFAIL : SMFIS_ACCEPT;
	}
	return SMFIS_CONTINUE;
}

static sfsistat cb_envrcpt(SMFICTX *ctx, char **argv)
{
	tr_milter_msg *msg = priv(ctx);
	if (msg != NULL && argv != NULL && argv[0] != NULL)
		tr_milter_msg_rcpt(msg, argv[0]);
	return SMFIS_CONTINUE;
}

static sfsistat cb_header(SMFICTX *ctx, char *name, char *value)
{
	tr_milter_msg *msg = priv(ctx);
	if (msg != NULL)
		tr_milter_msg_header(msg, name, value);
	return SMFIS_CONTINUE;
}

static sfsistat cb_eoh(SMFICTX *ctx)
{
	tr_milter_msg *msg = priv(ctx);
	if (msg == NULL || tr_milter_msg_eoh(msg) == TR_MILTER_ACCEPT) {
		drop_priv(ctx);
		return SMFIS_ACCEPT;   /* not ours: no body, no changes */
	}
	return SMFIS_CONTINUE;
}

static sfsistat cb_body(SMFICTX *ctx, unsigned char *data, size_t len)
{
	tr_milter_msg *msg = priv(ctx);
	if (msg != NULL)
		tr_milter_msg_body(msg, data, len);
	return SMFIS_CONTINUE;
}

static int apply(SMFICTX *ctx, const tr_milter_action *a)
{
	switch (a->kind) {
	case TR_MILTER_DELETE_HEADER:
		return smfi_chgheader(ctx, (char *)a->name, a->index, NULL);
	case TR_MILTER_CHANGE_HEADER:
		return smfi_chgheader(ctx, (char *)a->name, a->index, (char *)a->value);
	case TR_MILTER_ADD_HEADER:
		return smfi_addheader(ctx, (char *)a->name, (char *)a->value);
	case TR_MILTER_ADD_RCPT:
		return smfi_addrcpt(ctx, (char *)a->value);
	case TR_MILTER_QUARANTINE:
		return smfi_quarantine(ctx, (char *)a->value);
	}
	return MI_FAILURE;
}

static sfsistat cb_eom(SMFICTX *ctx)
{
	tr_milter_msg *msg = priv(ctx);
	if (msg == NULL)
		return SMFIS_CONTINUE;
	const char *queue_id = smfi_getsymval(ctx, (char *)"i");
	const tr_milter_action *actions;
	size_t n;
	tr_milter_verdict verdict = tr_milter_msg_eom(msg, queue_id, &actions, &n);
	sfsistat status = verdict == TR_MILTER_TEMPFAIL ? SMFIS_TEMPFAIL
	                : verdict == TR_MILTER_ACCEPT ? SMFIS_ACCEPT : SMFIS_CONTINUE;
	if (verdict == TR_MILTER_CONTINUE) {
		for (size_t i = 0; i < n; i++) {
			if (apply(ctx, &actions[i]) != MI_SUCCESS) {
				tr_milter_verdict v = tr_milter_on_error_verdict(running);
				tr_log_warning("milter %s: the MTA refused a change (%s %s); %s", queue_id != NULL ? queue_id : "-",
				          actions[i].name != NULL ? actions[i].name : "", actions[i].value != NULL ? actions[i].value : "",
				          v == TR_MILTER_TEMPFAIL ? "temporary failure" : "accepted as far as changed");
				status = v == TR_MILTER_TEMPFAIL ? SMFIS_TEMPFAIL : SMFIS_ACCEPT;
				break;
			}
		}
	}
	drop_priv(ctx);
	return status;
}

static sfsistat cb_abort(SMFICTX *ctx)
{
	drop_priv(ctx);
	return SMFIS_CONTINUE;
}

static sfsistat cb_close(SMFICTX *ctx)
{
	drop_priv(ctx);
	return SMFIS_CONTINUE;
}

/* The TCP listening sockets of this process (fd numbers). */
static GArray *tcp_listeners(void)
{
	GArray *fds = g_array_new(FALSE, FALSE, sizeof(int));
	GDir *dir = g_dir_open("/proc/self/fd", 0, NULL);
	if (dir == NULL)
		return fds;
	const char *name;
	while ((name = g_dir_read_name(dir)) != NULL) {
		int fd = atoi(name), listening = 0, domain = 0, type = 0;
		socklen_t len = sizeof(int);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening &&
		    (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len)) == 0 &&
		    (domain == AF_INET || domain == AF_INET6) &&
		    (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len)) == 0 && type == SOCK_STREAM)
			g_array_append_val(fds, fd);
	}
	g_dir_close(dir);
	return fds;
}

static bool fd_in(const GArray *fds, int fd)
{
	for (guint i = 0; i < fds->len; i++)
		if (g_array_index(fds, int, i) == fd)
			return true;
	return false;
}

/*
 * libmilter writes each modification at end of message with its own
 * write() and never sets TCP_NODELAY, so with Nagle on, the second and
 * later replies wait for the MTA's delayed ACK: about 40 ms per message on
 * Linux, whatever the filter's own speed (the final CONTINUE is always at
 * least the second reply when headers are added).  Accepted sockets
 * inherit TCP_NODELAY from the listening socket, which libmilter keeps to
 * itself: find the one smfi_opensocket() just made (a TCP listener that
 * was not there before) and set it there.  Best effort: unix sockets have
 * no Nagle, and failing leaves the filter correct, only slower.
 */
static void tcp_nodelay_on_new_listener(const GArray *before)
{
	GArray *after = tcp_listeners();
	int one = 1;
	for (guint i = 0; i < after->len; i++) {
		int fd = g_array_index(after, int, i);
		if (!fd_in(before, fd) && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
			tr_log_warning("milter: TCP_NODELAY on the listening socket: %s", g_strerror(errno));
	}
	g_array_free(after, TRUE);
}

bool tr_milter_run(tr_milter *m, GError **error)
{
	tr_netaddr addr;
	if (!tr_netaddr_parse(m->settings->listen, &addr, error))
		return false;
	char *spec = tr_netaddr_milter_spec(&addr);
	struct smfiDesc desc = {
		.xxfi_name = (char *)"triage",
		.xxfi_version = SMFI_VERSION,
		.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_QUARANTINE,
		.xxfi_connect = cb_connect,
		.xxfi_helo = cb_helo,
		.xxfi_envfrom = cb_envfrom,
		.xxfi_envrcpt = cb_envrcpt,
		.xxfi_header = cb_header,
		.xxfi_eoh = cb_eoh,
		.xxfi_body = cb_body,
		.xxfi_eom = cb_eom,
		.xxfi_abort = cb_abort,
		.xxfi_close = cb_close,
		.xxfi_data = cb_data,
	};
	running = m;
	const char *failed = NULL;
	GArray *listeners_before = tcp_listeners();
	if (smfi_setconn(spec) != MI_SUCCESS)
		failed = "smfi_setconn";
	else if (smfi_register(desc) != MI_SUCCESS)
		failed = "smfi_register";
	else if (smfi_settimeout((int)m->settings->limits.timeout) != MI_SUCCESS)
		failed = "smfi_settimeout";
	else if (smfi_opensocket(true) != MI_SUCCESS)
		failed = "smfi_opensocket (address in use or not allowed?)";
	else if (addr.family == TR_NETADDR_INET)
		tcp_nodelay_on_new_listener(listeners_before);
	g_array_free(listeners_before, TRUE);
	if (failed != NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "milter on %s: %s failed", spec, failed);
		g_free(spec);
		running = NULL;
		return false;
	}
	tr_log_info("milter: listening on %s", spec);
	int rc = smfi_main();
	running = NULL;
	if (rc != MI_SUCCESS) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "milter on %s: smfi_main failed", spec);
		g_free(spec);
		return false;
	}
	g_free(spec);
	return true;
}

void tr_milter_stop(void)
{
	smfi_stop();
}

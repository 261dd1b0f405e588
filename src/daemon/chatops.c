/* chatops.c — who may run a chat command, and what it does; see chatops.h */
#include "daemon/chatops.h"

#include <string.h>

#include "store/sla.h"
#include "store/ticket.h"

/* !open lists at most this many tickets. */
#define OPEN_LIST_MAX 10

/* ------------------------------------------------------------ authorization */

void tr_chatops_actor_clear(tr_chatops_actor *a)
{
	g_free(a->name);
	g_free(a->person);
	g_free(a->display);
	memset(a, 0, sizeof(*a));
}

static bool in_list(char *const *list, const char *s)
{
	for (char *const *it = list; it != NULL && *it != NULL; it++) {
		if (strcmp(*it, s) == 0)
			return true;
	}
	return false;
}

static void actor_from_person(tr_chatops_actor *a, const tr_person_info *p)
{
	a->name = g_strdup(p->name);
	a->person = g_strdup(p->name);
	a->display = g_strdup(p->display != NULL ? p->display : p->name);
}

bool tr_chatops_authorize(const tr_xmpp_config *cfg, const tr_policy *policy, const char *jid,
                          const char *nick, const char *room, tr_chatops_actor *a)
{
	memset(a, 0, sizeof(*a));
	if (jid != NULL && *jid != '\0') {
		/* The real JID is the identity; a nick proves nothing. */
		char *bare_raw = tr_xmpp_jid_bare(jid);
		char *bare = tr_xmpp_jid_normalize(bare_raw);
		g_free(bare_raw);
		const tr_person_info *p = tr_policy_person_by_address(policy, bare);
		bool allowed = p != NULL || in_list(cfg->operators, bare);
		if (p != NULL) {
			actor_from_person(a, p);
			g_free(bare);
		} else {
			a->name = bare;
			a->display = g_strdup(bare);
		}
		return allowed;
	}
	if (nick != NULL && *nick != '\0') {
		bool allowed = in_list(cfg->operators_by_nick, nick);
		const tr_person_info *p = allowed ? tr_policy_person(policy, nick) : NULL;
		if (p != NULL) {
			actor_from_person(a, p);
		} else {
			a->name = g_strdup_printf("%s/%s", room != NULL ? room : "room", nick);
			a->display = g_strdup(nick);
		}
		return allowed;
	}
	a->name = g_strdup("unknown");
	a->display = g_strdup("unknown");
	return false;
}

/* ------------------------------------------------------------ commands */

/* "3h05m", "12m", "2d4h", "40s": a short span for a chat line. */
static void append_span(GString *out, int64_t s)
{
	if (s < 0)
		s = -s;
	if (s < 60)
		g_string_append_printf(out, "%" G_GINT64_FORMAT "s", (gint64)s);
	else if (s < 3600)
		g_string_append_printf(out, "%" G_GINT64_FORMAT "m", (gint64)(s / 60));
	else if (s < 86400)
		g_string_append_printf(out, "%" G_GINT64_FORMAT "h%02" G_GINT64_FORMAT "m", (gint64)(s / 3600),
		                       (gint64)(s % 3600 / 60));
	else
		g_string_append_printf(out, "%" G_GINT64_FORMAT "d%" G_GINT64_FORMAT "h", (gint64)(s / 86400),
		                       (gint64)(s % 86400 / 3600));
}

/* One SLA clock: "met", "paused", "due in 12m (40%)", "overdue by 5m". */
static void append_clock(GString *out, const tr_policy *policy, const tr_ticket *t, bool resolution, int64_t now)
{
	int64_t target = resolution ? t->res_target : t->fr_target;
	int64_t met = resolution ? t->resolved_at : t->first_response_at;
	int64_t due = resolution ? t->res_due : t->fr_due;
	if (met != 0) {
		g_string_append(out, "met ");
		append_span(out, now - met);
		g_string_append(out, " ago");
	} else if (target <= 0) {
		g_string_append(out, "none");
	} else if (t->clock_since == 0) {
		g_string_append(out, "paused");
	} else if (due > now) {
		g_string_append(out, "due in ");
		append_span(out, due - now);
		g_string_append_printf(out, " (%" G_GINT64_FORMAT "%%)",
		                       (gint64)(tr_sla_consumed(policy, t, resolution, now) * 100 / target));
	} else {
		g_string_append(out, "overdue by ");
		append_span(out, now - due);
	}
}

/* Customer text in a one-line summary: the first line, at most max chars. */
static void append_excerpt(GString *out, const char *text, glong max)
{
	if (text == NULL || *text == '\0') {
		g_string_append(out, "(no subject)");
		return;
	}
	const char *end = text;
	glong n = 0;
	while (*end != '\0' && *end != '\n' && n < max) {
		end = g_utf8_next_char(end);
		n++;
	}
	g_string_append_len(out, text, end - text);
	if (*end != '\0' && *end != '\n')
		g_string_append(out, "…");
}

static void show_ticket(GString *out, const tr_policy *policy, const tr_ticket *t, int64_t now)
{
	g_string_append_printf(out, "%s %s %s · %s · %s → %s/%s · assignee %s\n", t->public_id,
	                       tr_priority_name(t->priority), t->status, t->category, t->channel, t->team, t->tier,
	                       t->assignee != NULL ? t->assignee : "(none)");
	g_string_append_printf(out, "from %s (%s)%s · created ", t->requester, t->customer_tier,
	                       t->escalated ? (t->escalation_acked_at != 0 ? " · escalation acked" : " · escalated")
	                                    : "");
	append_span(out, now - t->created_at);
	g_string_append(out, " ago\nfirst response: ");
	append_clock(out, policy, t, false, now);
	g_string_append(out, " · resolution: ");
	append_clock(out, policy, t, true, now);
	g_string_append(out, "\nsubject: ");
	append_excerpt(out, t->subject, 120);
}

static void list_open(GString *out, tr_store *store, const tr_chatcmd *cmd)
{
	tr_ticket_filter filter = {
		.open_only = true, .priority = cmd->priority, .team = *cmd->team != '\0' ? cmd->team : NULL,
		.limit = OPEN_LIST_MAX + 1,
	};
	tr_ticket_iter *it = tr_ticket_list_init(store, &filter);
	tr_ticket t;
	unsigned n = 0;
	bool more = false;
	while (tr_ticket_list_next(it, &t)) {
		if (n == OPEN_LIST_MAX) {
			more = true;
			tr_ticket_clear(&t);
			break;
		}
		g_string_append_printf(out, "%s%s %s %s %s %s · ", n > 0 ? "\n" : "", t.public_id, tr_priority_name(t.priority),
		                       t.status, t.team, t.assignee != NULL ? t.assignee : "-");
		append_excerpt(out, t.subject, 60);
		tr_ticket_clear(&t);
		n++;
	}
	tr_ticket_list_deinit(&it);
	if (n == 0)
		g_string_append(out, "no open tickets");
	if (more)
		g_string_append_printf(out, "\n(first %u shown; `triage tickets --open` for all)", OPEN_LIST_MAX);
	if (*cmd->team != '\0' || cmd->priority > 0) {
		GString *head = g_string_new("open");
		if (cmd->priority > 0)
			g_string_append_printf(head, " %s", tr_priority_name(cmd->priority));
		if (*cmd->team != '\0')
			g_string_append_printf(head, " in %s", cmd->team);
		g_string_append(head, ":\n");
		g_string_prepend(out, head->str);
		g_string_free(head, TRUE);
	}
}

/* The effect of a ticket command, inside the caller's transaction. */
static bool apply(tr_store *store, const tr_policy *policy, const tr_chatcmd *cmd, const tr_chatops_actor *actor,
                  const tr_ticket *t, int64_t now, GString *reply, GError **error)
{
	const char *id = t->public_id;
	switch (cmd->kind) {
	case TR_CHATCMD_ACK:
		if (!tr_ticket_ack(store, policy, t->id, actor->name, now, error))
			return false;
		if (t->first_response_at != 0 && (!t->escalated || t->escalation_acked_at != 0))
			g_string_append_printf(reply, "%s was already acknowledged; noted", id);
		else
			g_string_append_printf(reply, "%s acknowledged by %s: first response recorded, escalation "
			                              "reminders stopped", id, actor->display);
		return true;
	case TR_CHATCMD_CLAIM:
	case TR_CHATCMD_ASSIGN: {
		const char *who = cmd->kind == TR_CHATCMD_CLAIM ? actor->person : cmd->name;
		const tr_person_info *p = who != NULL ? tr_policy_person(policy, who) : NULL;
		if (p == NULL) {
			if (cmd->kind == TR_CHATCMD_CLAIM)
				g_string_append_printf(reply, "!claim needs your JID on a [person] in teams.conf; "
				                              "use !assign %s NAME", id);
			else
				g_string_append_printf(reply, "no person '%s' in teams.conf", cmd->name);
			return false;
		}
		if (!tr_ticket_assign(store, t->id, p->name, actor->name, now, error))
			return false;
		g_string_append_printf(reply, "%s assigned to %s", id, p->display);
		return true;
	}
	case TR_CHATCMD_RESOLVE:
		if (strcmp(t->status, "resolved") == 0) {
			g_string_append_printf(reply, "%s is already resolved", id);
			return false;
		}
		if (!tr_ticket_resolve(store, policy, t->id, actor->name, now, error))
			return false;
		g_string_append_printf(reply, "%s resolved by %s", id, actor->display);
		return true;
	case TR_CHATCMD_PAUSE:
		if (strcmp(t->status, "open") != 0) {
			g_string_append_printf(reply, "%s is %s, not running", id, t->status);
			return false;
		}
		if (!tr_ticket_pause(store, policy, t->id, false, actor->name, now, error))
			return false;
		g_string_append_printf(reply, "%s paused: its SLA clocks are stopped until !resume", id);
		return true;
	case TR_CHATCMD_RESUME:
		if (strcmp(t->status, "paused") != 0 && strcmp(t->status, "waiting") != 0) {
			g_string_append_printf(reply, "%s is %s, not paused", id, t->status);
			return false;
		}
		if (!tr_ticket_resume(store, policy, t->id, actor->name, now, error))
			return false;
		g_string_append_printf(reply, "%s resumed: its SLA clocks run again", id);
		return true;
	case TR_CHATCMD_SHOW:
		show_ticket(reply, policy, t, now);
		return true;
	default:
		g_string_append(reply, "not a ticket command");
		return false;
	}
}

bool tr_chatops_execute(tr_store *store, const tr_engine *engine, const tr_chatcmd *cmd,
                        const tr_chatops_actor *actor, const char *where, int64_t now, GString *reply)
{
	const tr_policy *policy = tr_engine_policy(engine);
	const char *prefix = tr_store_get_settings(store)->ticket_prefix;
	char buf[2048];
	switch (cmd->kind) {
	case TR_CHATCMD_HELP:
		g_string_append(reply, tr_chatcmd_help(cmd->topic, prefix, buf, sizeof(buf)));
		return true;
	case TR_CHATCMD_OPEN:
		list_open(reply, store, cmd);
		return true;
	case TR_CHATCMD_NONE:
	case TR_CHATCMD_INVALID:
		g_string_append(reply, cmd->kind == TR_CHATCMD_INVALID ? cmd->error : "not a command");
		return false;
	default:
		break;
	}
	GError *error = NULL;
	if (!tr_store_begin(store, &error)) {
		g_string_append_printf(reply, "sorry, the ticket store is busy (%s); try again", error->message);
		g_error_free(error);
		return false;
	}
	char tbuf[40];
	const char *public_id = tr_store_format_ticket(store, cmd->ticket, tbuf, sizeof(tbuf));
	tr_ticket t;
	bool found = tr_ticket_get(store, cmd->ticket, &t, &error);
	bool done = false, ok = true;
	if (!found) {
		ok = g_error_matches(error, TR_STORE_ERROR, TR_STORE_ERROR_NOT_FOUND);
		if (ok)
			g_string_append_printf(reply, "no ticket %s", public_id);
		g_clear_error(&error);
		tr_store_rollback(store);
		if (!ok)
			g_string_append(reply, "sorry, the ticket store failed; try again");
		return false;
	}
	done = apply(store, policy, cmd, actor, &t, now, reply, &error);
	if (done) {
		char *detail = g_strdup_printf("!%s%s%s via %s", tr_chatcmd_name(cmd->kind),
		                               cmd->kind == TR_CHATCMD_ASSIGN ? " " : "",
		                               cmd->kind == TR_CHATCMD_ASSIGN ? cmd->name : "", where);
		ok = tr_ticket_event(store, t.id, now, "chat_command", actor->name, detail, &error);
		g_free(detail);
	} else {
		ok = error == NULL;
	}
	if (ok && done)
		ok = tr_store_commit(store, &error);
	else
		tr_store_rollback(store);
	if (!ok) {
		g_string_truncate(reply, 0);
		g_string_append_printf(reply, "%s: nothing changed: %s", public_id,
		                       error != NULL ? error->message : "store error");
		done = false;
	}
	g_clear_error(&error);
	tr_ticket_clear(&t);
	return done;
}

/* deliver.c — the mail outbox worker; see deliver.h */
#include "daemon/deliver.h"

#include <string.h>

#include "core/log.h"
#include "store/context.h"
#include "store/ingest.h"
#include "store/outbox.h"

struct tr_deliver {
	tr_store *store;
	const tr_engine *engine;
	const tr_smtp_client *smtp;
	const tr_smtp_limits *limits;
	char *envelope_from;
	char *worker;
};

tr_deliver *tr_deliver_new(tr_store *store, const tr_engine *engine, const tr_smtp_client *smtp,
                           const tr_smtp_limits *limits, const char *envelope_from, const char *worker)
{
	tr_deliver *d = g_new0(tr_deliver, 1);
	d->store = store;
	d->engine = engine;
	d->smtp = smtp;
	d->limits = limits;
	d->envelope_from = g_strdup(envelope_from != NULL ? envelope_from : "");
	d->worker = g_strdup(worker != NULL ? worker : "deliver");
	return d;
}

void tr_deliver_free(tr_deliver **dp)
{
	tr_deliver *d = *dp;
	if (d == NULL)
		return;
	*dp = NULL;
	g_free(d->envelope_from);
	g_free(d->worker);
	g_free(d);
}

void tr_deliver_set_engine(tr_deliver *d, const tr_engine *engine)
{
	d->engine = engine;
}

int tr_deliver_recover(tr_deliver *d, int64_t now, GError **error)
{
	int n = tr_outbox_recover(d->store, "smtp", now, d->limits->ambiguous_delay, error);
	if (n > 0)
		tr_log_warning("outbox: %d deliveries were interrupted mid-way; each is retried once after %" G_GINT64_FORMAT
		               " s, marked as a possible duplicate", n, (gint64)d->limits->ambiguous_delay);
	return n;
}

static const char *ticket_of(tr_deliver *d, const tr_outbox_row *row, char *buf, size_t size)
{
	if (row->ticket_id == 0)
		return "-";
	return tr_store_format_ticket(d->store, row->ticket_id, buf, size);
}

/* A customer address the relay says does not exist: no more acks to it. */
static void maybe_suppress(tr_deliver *d, const tr_outbox_row *row, const tr_smtp_result *r, int64_t now)
{
	if (strcmp(row->kind, "ack") != 0 && strcmp(row->kind, "customer_notice") != 0)
		return;
	if (r == NULL || r->n_recipients == 0 || r->recipients[0].status != TR_SMTP_PERMANENT)
		return;
	const char *enhanced = r->recipients[0].enhanced;
	if (r->recipients[0].code != 550 && !(enhanced != NULL && g_str_has_prefix(enhanced, "5.1.")))
		return;
	tr_ingest *ing = tr_ingest_new(d->store, d->engine, NULL);
	GError *error = NULL;
	if (!tr_ingest_suppress(ing, row->recipient, "relay refused the address", now, &error)) {
		tr_log_warning("outbox: cannot record the bounce of %s: %s", row->recipient, error->message);
		g_error_free(error);
	}
	tr_ingest_free(&ing);
}

static bool deliver_one(tr_deliver *d, tr_outbox_row *row, int64_t now, tr_deliver_stats *stats, GError **error)
{
	char tbuf[40];
	const char *ticket = ticket_of(d, row, tbuf, sizeof(tbuf));
	size_t len = 0;
	GError *render_error = NULL;
	char *data = tr_context_render(d->store, d->engine, row, now, &len, &render_error);
	if (data == NULL) {
		/* A template or data problem will not fix itself by waiting. */
		tr_log_error("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s: cannot render: %s", ticket,
		             (gint64)row->id, row->kind, row->recipient, render_error->message);
		bool ok = tr_outbox_failed(d->store, row->id, now, render_error->message, error);
		g_error_free(render_error);
		stats->render_failed++;
		return ok;
	}
	const char *recipients[] = { row->recipient, NULL };
	tr_smtp_result *result = NULL;
	GError *send_error = NULL;
	tr_smtp_send(d->smtp, d->envelope_from, recipients, data, len, &result, &send_error);
	g_free(data);
	tr_smtp_status status = result != NULL ? result->status : TR_SMTP_TEMPORARY;
	const char *why = send_error != NULL ? send_error->message : result != NULL ? result->summary : "";
	tr_smtp_retry_state state = {
		.attempts = (unsigned)MAX(row->attempts, 1),
		.ambiguous = tr_outbox_ambiguous_count(row) + (status == TR_SMTP_AMBIGUOUS),
		.age = now - row->created_at,
	};
	tr_smtp_retry_decision next = tr_smtp_retry_next(d->limits, status, &state, g_random_int());
	bool ok;
	switch (status) {
	case TR_SMTP_SENT:
		ok = tr_outbox_sent(d->store, row->id, now, error);
		tr_log_info("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s sent (%s)%s", ticket, (gint64)row->id,
		            row->kind, row->recipient, result != NULL && result->queue_reply ? result->queue_reply : "",
		            tr_outbox_ambiguous_count(row) ? " - a resend after an ambiguous attempt" : "");
		stats->sent++;
		break;
	case TR_SMTP_PERMANENT:
		ok = tr_outbox_failed(d->store, row->id, now, why, error);
		maybe_suppress(d, row, result, now);
		tr_log_warning("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s failed permanently: %s", ticket,
		               (gint64)row->id, row->kind, row->recipient, why);
		stats->permanent++;
		break;
	case TR_SMTP_AMBIGUOUS:
		ok = tr_outbox_ambiguous(d->store, row->id, next.retry, now + next.delay, why, error);
		tr_log_warning("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s may or may not have been delivered: %s; %s",
		               ticket, (gint64)row->id, row->kind, row->recipient, why,
		               next.retry ? "one marked retry later" : "stopped, see `triage outbox --failed`");
		stats->ambiguous++;
		break;
	default:
		if (next.retry)
			ok = tr_outbox_retry(d->store, row->id, now + next.delay, why, error);
		else
			ok = tr_outbox_failed(d->store, row->id, now, next.reason, error);
		tr_log_info("ticket=%s outbox=%" G_GINT64_FORMAT " %s to %s: temporary failure (%s); %s%" G_GINT64_FORMAT " s",
		            ticket, (gint64)row->id, row->kind, row->recipient, why,
		            next.retry ? "next attempt in " : "gave up after ", next.retry ? (gint64)next.delay : (gint64)state.age);
		stats->temporary++;
		break;
	}
	tr_smtp_result_free(&result);
	g_clear_error(&send_error);
	return ok;
}

bool tr_deliver_run(tr_deliver *d, int64_t now, unsigned max, tr_deliver_stats *stats, GError **error)
{
	for (unsigned n = 0; max == 0 || n < max; n++) {
		tr_outbox_row row;
		bool found = false;
		if (!tr_outbox_claim(d->store, "smtp", d->worker, now, &row, &found, error))
			return false;
		if (!found)
			break;
		bool ok = deliver_one(d, &row, now, stats, error);
		tr_outbox_row_clear(&row);
		if (!ok)
			return false;
	}
	return true;
}

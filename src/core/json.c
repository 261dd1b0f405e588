/* json.c — JSON views; see json.h */
#include "core/json.h"

#include <string.h>

#include "core/classify.h"

static void member_string(JsonBuilder *b, const char *name, const char *value)
{
	json_builder_set_member_name(b, name);
	if (value != NULL)
		json_builder_add_string_value(b, value);
	else
		json_builder_add_null_value(b);
}

static void member_int(JsonBuilder *b, const char *name, gint64 value)
{
	json_builder_set_member_name(b, name);
	json_builder_add_int_value(b, value);
}

static void add_addr(JsonBuilder *b, const tr_addr *a)
{
	json_builder_begin_object(b);
	member_string(b, "name", a->name);
	member_string(b, "address", a->address);
	json_builder_end_object(b);
}

static void member_addr_list(JsonBuilder *b, const char *name, const tr_addr_list *list)
{
	json_builder_set_member_name(b, name);
	json_builder_begin_array(b);
	for (size_t i = 0; i < list->count; i++)
		add_addr(b, &list->items[i]);
	json_builder_end_array(b);
}

static void member_bits(JsonBuilder *b, const char *name, unsigned bits, unsigned count,
                        const char *(*bit_name)(unsigned))
{
	json_builder_set_member_name(b, name);
	json_builder_begin_array(b);
	for (unsigned i = 0; i < count; i++) {
		if (bits & (1u << i))
			json_builder_add_string_value(b, bit_name(i));
	}
	json_builder_end_array(b);
}

char *tr_json_time(int64_t unix_time, int tz_minutes)
{
	GTimeZone *tz = g_time_zone_new_offset(tz_minutes * 60);
	GDateTime *utc = g_date_time_new_from_unix_utc(unix_time);
	char *text = NULL;
	if (utc != NULL) {
		GDateTime *local = g_date_time_to_timezone(utc, tz);
		text = g_date_time_format(local, "%Y-%m-%dT%H:%M:%S%:z");
		g_date_time_unref(local);
		g_date_time_unref(utc);
	}
	g_time_zone_unref(tz);
	return text;
}

void tr_json_msg(JsonBuilder *b, const tr_msg *msg)
{
	member_string(b, "channel", tr_channel_name(msg->channel));
	member_int(b, "size", (gint64)msg->size);
	member_string(b, "content_hash", msg->content_hash);
	member_string(b, "message_id", msg->message_id);
	member_string(b, "in_reply_to", msg->in_reply_to);
	json_builder_set_member_name(b, "references");
	json_builder_begin_array(b);
	for (size_t i = 0; i < msg->references_count; i++)
		json_builder_add_string_value(b, msg->references[i]);
	json_builder_end_array(b);
	char *date = msg->date != 0 ? tr_json_time(msg->date, msg->date_tz_minutes) : NULL;
	member_string(b, "date", date);
	g_free(date);
	member_string(b, "envelope_from", msg->envelope_from);
	json_builder_set_member_name(b, "envelope_to");
	json_builder_begin_array(b);
	for (size_t i = 0; i < msg->envelope_to_count; i++)
		json_builder_add_string_value(b, msg->envelope_to[i]);
	json_builder_end_array(b);
	json_builder_set_member_name(b, "from");
	add_addr(b, &msg->from);
	member_addr_list(b, "to", &msg->to);
	member_addr_list(b, "cc", &msg->cc);
	member_addr_list(b, "reply_to", &msg->reply_to);
	member_string(b, "subject", msg->subject);
	member_string(b, "language", msg->language);

	json_builder_set_member_name(b, "text");
	json_builder_begin_object(b);
	member_string(b, "source", msg->text_source);
	member_int(b, "chars", (gint64)g_utf8_strlen(msg->text, -1));
	member_string(b, "new", msg->text_new);
	member_string(b, "quoted", msg->text_quoted);
	member_string(b, "signature", msg->text_signature);
	member_string(b, "quote_marker", msg->quote_marker);
	json_builder_end_object(b);

	json_builder_set_member_name(b, "attachments");
	json_builder_begin_array(b);
	for (size_t i = 0; i < msg->attachments_count; i++) {
		const tr_attachment *a = &msg->attachments[i];
		json_builder_begin_object(b);
		member_string(b, "filename", a->filename);
		member_string(b, "content_type", a->content_type);
		member_int(b, "size", (gint64)a->size);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);

	json_builder_set_member_name(b, "bounced");
	json_builder_begin_array(b);
	for (size_t i = 0; i < msg->bounced_count; i++)
		json_builder_add_string_value(b, msg->bounced[i]);
	json_builder_end_array(b);
	json_builder_set_member_name(b, "auto_generated");
	json_builder_add_boolean_value(b, tr_msg_is_auto(msg));
	member_bits(b, "auto", msg->auto_flags, TR_AUTO_COUNT, tr_msg_auto_name);
	json_builder_set_member_name(b, "auth");
	if (msg->auth.spf == NULL && msg->auth.dkim == NULL && msg->auth.dmarc == NULL) {
		json_builder_add_null_value(b);
	} else {
		json_builder_begin_object(b);
		member_string(b, "spf", msg->auth.spf);
		member_string(b, "dkim", msg->auth.dkim);
		member_string(b, "dmarc", msg->auth.dmarc);
		json_builder_end_object(b);
	}
	member_int(b, "parts", msg->part_count);
	member_int(b, "mime_depth", msg->mime_depth);
	member_bits(b, "flags", msg->flags, TR_MSG_FLAG_COUNT, tr_msg_flag_name);
}

char *tr_json_to_line(JsonBuilder *b)
{
	JsonNode *root = json_builder_get_root(b);
	JsonGenerator *gen = json_generator_new();
	json_generator_set_root(gen, root);
	char *line = json_generator_to_data(gen, NULL);
	g_object_unref(gen);
	json_node_unref(root);
	return line;
}

static void member_double(JsonBuilder *b, const char *name, double value)
{
	json_builder_set_member_name(b, name);
	/* Four decimals: stable output, no binary noise. */
	json_builder_add_double_value(b, (double)(gint64)(value * 10000 + (value < 0 ? -0.5 : 0.5)) / 10000);
}

static void member_time(JsonBuilder *b, const char *name, int64_t t)
{
	char *text = t > 0 && t < G_MAXINT64 ? tr_json_time(t, 0) : NULL;
	member_string(b, name, text);
	g_free(text);
}

void tr_json_decision(JsonBuilder *b, const tr_decision *d, tr_pool *pool)
{
	member_string(b, "category", d->category);
	json_builder_set_member_name(b, "category_scores");
	json_builder_begin_object(b);
	for (size_t i = 0; i < d->n_category_scores; i++)
		member_double(b, d->category_scores[i].name, d->category_scores[i].score);
	json_builder_end_object(b);
	member_string(b, "priority", tr_priority_name(d->priority));
	member_string(b, "urgency", tr_level_name(d->urgency));
	member_string(b, "impact", tr_level_name(d->impact));
	member_string(b, "tier", d->tier);
	member_string(b, "team", d->team);
	member_string(b, "route", d->route);
	member_string(b, "assignee", d->assignee);
	json_builder_set_member_name(b, "oncall");
	if (d->oncall_primary != NULL) {
		json_builder_begin_object(b);
		member_string(b, "primary", d->oncall_primary);
		member_string(b, "secondary", d->oncall_secondary);
		json_builder_end_object(b);
	} else {
		json_builder_add_null_value(b);
	}
	member_string(b, "customer_tier", tr_customer_tier_name(d->customer->tier));
	json_builder_set_member_name(b, "customer");
	json_builder_begin_object(b);
	member_string(b, "account", d->customer->account);
	json_builder_set_member_name(b, "vip");
	json_builder_add_boolean_value(b, d->customer->vip);
	member_string(b, "account_manager", d->customer->account_manager);
	json_builder_end_object(b);
	json_builder_set_member_name(b, "sentiment");
	json_builder_begin_object(b);
	member_double(b, "compound", d->sentiment.compound);
	member_double(b, "pos", d->sentiment.pos);
	member_double(b, "neu", d->sentiment.neu);
	member_double(b, "neg", d->sentiment.neg);
	json_builder_end_object(b);
	json_builder_set_member_name(b, "triggers");
	json_builder_begin_array(b);
	for (int t = 0; t < TR_TRIGGER_COUNT; t++) {
		if (d->triggers & (1u << t))
			json_builder_add_string_value(b, tr_trigger_name((tr_trigger)t));
	}
	json_builder_end_array(b);
	member_double(b, "score", d->score);
	json_builder_set_member_name(b, "escalate");
	json_builder_add_boolean_value(b, d->escalate);
	json_builder_set_member_name(b, "escalate_reasons");
	json_builder_begin_array(b);
	for (size_t i = 0; i < d->n_escalate_reasons; i++)
		json_builder_add_string_value(b, d->escalate_reasons[i]);
	json_builder_end_array(b);
	json_builder_set_member_name(b, "ack");
	json_builder_add_boolean_value(b, d->ack);
	member_string(b, "no_ack_reason", d->no_ack_reason);
	member_string(b, "reply_language", d->language);
	json_builder_set_member_name(b, "sla");
	json_builder_begin_object(b);
	member_int(b, "first_response_minutes", d->sla.first_response_minutes);
	member_int(b, "resolution_minutes", d->sla.resolution_minutes);
	json_builder_set_member_name(b, "first_response_business");
	json_builder_add_boolean_value(b, d->sla.first_response_business);
	json_builder_set_member_name(b, "resolution_business");
	json_builder_add_boolean_value(b, d->sla.resolution_business);
	member_string(b, "calendar", d->sla.calendar);
	member_time(b, "first_response_due", d->sla.first_response_due);
	member_time(b, "resolution_due", d->sla.resolution_due);
	json_builder_end_object(b);
	json_builder_set_member_name(b, "rules");
	json_builder_begin_array(b);
	for (size_t i = 0; i < d->n_hits; i++) {
		const tr_rule_hit *h = &d->hits[i];
		json_builder_begin_object(b);
		member_string(b, "name", tr_rule_name(h->rule));
		member_string(b, "field", h->field == TR_FIELD_HEADER
		              ? tr_pool_printf(pool, "header:%s", h->header) : tr_field_name(h->field));
		member_string(b, "contributes", h->negated ? "nothing (negated)" : tr_classify_contribution(pool, h->rule));
		member_string(b, "match", h->match);
		if (h->cost > 0)
			member_int(b, "cost", h->cost);
		json_builder_set_member_name(b, "negated");
		json_builder_add_boolean_value(b, h->negated);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_set_member_name(b, "explanation");
	json_builder_begin_array(b);
	for (size_t i = 0; i < d->n_explanation; i++)
		json_builder_add_string_value(b, d->explanation[i]);
	json_builder_end_array(b);
}

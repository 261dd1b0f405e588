/* json.c — JSON views; see json.h */
#include "core/json.h"

#include <string.h>

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

/* outbound.c — templates, articles, composing mail; see outbound.h */
#include "core/outbound.h"

#include <gmime/gmime.h>
#include <string.h>

#include "core/template.h"

const char *const tr_outbound_mail_templates[] = {
	"ack", "breach_notice", "escalation", "escalation_page", "escalation_reminder", "incident",
	"sla_warning", "sla_breach", NULL,
};
const char *const tr_outbound_chat_templates[] = {
	"ack", "breach_notice", "escalation", "escalation_reminder", "incident", "sla_warning", "sla_breach",
	"escalation_page", NULL,
};

const char *const tr_outbound_known_variables[] = {
	"lang", "tz", "subject", "business_hours",
	"ticket.id", "ticket.priority", "ticket.category", "ticket.status", "ticket.subject", "ticket.team",
	"ticket.tier", "ticket.assignee", "ticket.created", "ticket.triggers[]", "ticket.escalated",
	"ticket.incident", "ticket.channel", "ticket.requester",
	"customer.name", "customer.address", "customer.tier", "customer.account", "customer.vip",
	"customer.timezone", "customer.account_manager",
	"message.subject", "message.excerpt", "message.from", "message.date", "message.language",
	"message.message_id",
	"sla.first_response_minutes", "sla.first_response_due", "sla.first_response_business",
	"sla.resolution_minutes", "sla.resolution_due", "sla.resolution_business",
	"sla.first_response_percent", "sla.resolution_percent", "sla.calendar",
	"team.name", "team.mailbox", "team.room", "team.signature",
	"support.address", "support.name",
	"articles[].title", "articles[].url",
	"escalation.reasons[]", "escalation.triggers[]", "escalation.rules[].name", "escalation.rules[].field",
	"escalation.rules[].contributes", "escalation.rules[].match", "escalation.sentiment",
	"escalation.oncall", "escalation.secondary", "escalation.category_scores",
	"thread[].at", "thread[].direction", "thread[].from", "thread[].subject", "thread[].excerpt",
	"ladder.clock", "ladder.step", "ladder.role", "ladder.person", "ladder.due",
	"incident.children", "incident.customers",
	"person.name", "person.display",
	NULL,
};

typedef struct {
	char *name, *url;
	GHashTable *titles;   /* lang -> title ("" = default) */
	char **categories, **rules;
} article;

struct tr_outbound {
	GHashTable *templates;  /* "mail/ack.en" -> tr_tmpl_file*, "chat/ack.en" -> tr_tmpl* */
	GPtrArray *articles;    /* article* in file order */
	char *from;             /* "Support <support@example.test>" */
	char *from_address;
	char *loop_marker;      /* our domain */
};

static void article_free(gpointer p)
{
	article *a = p;
	g_free(a->name);
	g_free(a->url);
	g_hash_table_destroy(a->titles);
	g_strfreev(a->categories);
	g_strfreev(a->rules);
	g_free(a);
}

static void template_value_free(gpointer p)
{
	/* Values are tr_tmpl_file* (mail) or tr_tmpl* (chat): keys tell them apart,
	 * so both kinds are wrapped in a small box. */
	g_free(p);
}

typedef struct {
	bool chat;
	tr_tmpl_file *file;
	tr_tmpl *tmpl;
} template_box;

static void box_free(gpointer p)
{
	template_box *b = p;
	tr_tmpl_file_free(&b->file);
	tr_tmpl_free(&b->tmpl);
	template_value_free(b);
}

static bool known_name(const char *const *names, const char *name)
{
	for (const char *const *n = names; *n != NULL; n++) {
		if (strcmp(*n, name) == 0)
			return true;
	}
	return false;
}

static void load_dir(tr_outbound *o, const char *base, bool chat, tr_diag *diag)
{
	char *dir = g_build_filename(base, chat ? "chat" : "mail", NULL);
	GDir *d = g_dir_open(dir, 0, NULL);
	if (d == NULL) {
		tr_diag_error(diag, dir, 0, "template directory missing");
		g_free(dir);
		return;
	}
	const char *entry;
	while ((entry = g_dir_read_name(d)) != NULL) {
		if (!g_str_has_suffix(entry, ".tmpl"))
			continue;
		char *path = g_build_filename(dir, entry, NULL);
		/* NAME.LANG.tmpl */
		char *stem = g_strndup(entry, strlen(entry) - 5);
		char *dot = strrchr(stem, '.');
		if (dot == NULL || strlen(dot + 1) != 2) {
			tr_diag_error(diag, path, 0, "template files are named NAME.LANG.tmpl (e.g. ack.en.tmpl)");
		} else if (!known_name(chat ? tr_outbound_chat_templates : tr_outbound_mail_templates,
		                       (*dot = '\0', stem))) {
			tr_diag_warning(diag, path, 0, "'%s' is not a template triage uses (ignored)", stem);
		} else {
			*dot = '.';
			GError *error = NULL;
			template_box *box = g_new0(template_box, 1);
			box->chat = chat;
			bool ok;
			if (chat) {
				char *src = NULL;
				gsize len = 0;
				ok = g_file_get_contents(path, &src, &len, &error) &&
				     (box->tmpl = tr_tmpl_compile(path, src, len, &error)) != NULL &&
				     tr_tmpl_check(box->tmpl, tr_outbound_known_variables, &error);
				g_free(src);
			} else {
				ok = (box->file = tr_tmpl_file_load(path, &error)) != NULL &&
				     tr_tmpl_file_check(box->file, tr_outbound_known_variables, &error);
			}
			if (!ok) {
				/* The message already starts with path:line:col. */
				tr_diag_error(diag, NULL, 0, "%s", error->message);
				g_error_free(error);
				box_free(box);
			} else {
				g_hash_table_replace(o->templates, g_strdup_printf("%s/%s", chat ? "chat" : "mail", stem), box);
			}
		}
		g_free(stem);
		g_free(path);
	}
	g_dir_close(d);
	g_free(dir);
}

static char **split(const char *value)
{
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
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

static void load_articles(tr_outbound *o, const char *path, tr_diag *diag)
{
	tr_conf *conf = tr_conf_load(path, diag);
	if (conf == NULL)
		return;
	gsize n = 0;
	char **groups = g_key_file_get_groups(tr_conf_keyfile(conf), &n);
	for (gsize i = 0; i < n; i++) {
		if (strncmp(groups[i], "article ", 8) != 0) {
			tr_diag_error(diag, path, tr_conf_line(conf, groups[i], NULL),
			              "[%s]: unknown group ([article NAME])", groups[i]);
			continue;
		}
		article *a = g_new0(article, 1);
		a->name = g_strdup(groups[i] + 8);
		a->titles = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
		gsize nk = 0;
		char **keys = g_key_file_get_keys(tr_conf_keyfile(conf), groups[i], &nk, NULL);
		for (gsize k = 0; k < nk; k++) {
			char *value = tr_conf_string(conf, groups[i], keys[k], "");
			if (strcmp(keys[k], "title") == 0) {
				g_hash_table_replace(a->titles, g_strdup(""), value);
				continue;
			}
			if (g_str_has_prefix(keys[k], "title_") && strlen(keys[k]) == 8) {
				g_hash_table_replace(a->titles, g_strdup(keys[k] + 6), value);
				continue;
			}
			if (strcmp(keys[k], "url") == 0) {
				if (!g_str_has_prefix(value, "https://") && !g_str_has_prefix(value, "http://"))
					tr_conf_error(conf, diag, groups[i], "url", "'%s' is not an http(s) URL", value);
				a->url = value;
				continue;
			}
			if (strcmp(keys[k], "categories") == 0)
				a->categories = split(value);
			else if (strcmp(keys[k], "rules") == 0)
				a->rules = split(value);
			else
				tr_diag_warning(diag, path, tr_conf_line(conf, groups[i], keys[k]),
				                "[%s] unknown key '%s' (ignored)", groups[i], keys[k]);
			g_free(value);
		}
		g_strfreev(keys);
		if (a->url == NULL || g_hash_table_lookup(a->titles, "") == NULL)
			tr_conf_error(conf, diag, groups[i], NULL, "an article needs title and url");
		g_ptr_array_add(o->articles, a);
	}
	g_strfreev(groups);
	tr_conf_free(&conf);
}

tr_outbound *tr_outbound_load(const tr_conf *main, tr_diag *diag)
{
	unsigned errors_before = tr_diag_error_count(diag);
	tr_outbound *o = g_new0(tr_outbound, 1);
	o->templates = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, box_free);
	o->articles = g_ptr_array_new_with_free_func(article_free);
	static const char *const outbound_keys[] = {
		"from", "envelope_from", "message_id_domain", "templates", "articles", NULL,
	};
	if (g_key_file_has_group(tr_conf_keyfile(main), "outbound"))
		tr_conf_check_keys(main, diag, "outbound", outbound_keys);
	o->from = tr_conf_string(main, "outbound", "from", NULL);
	if (o->from == NULL) {
		tr_diag_warning(diag, tr_conf_path(main), 0,
		                "[outbound] from is not set: acknowledgments would come from support@example.test");
		o->from = g_strdup("Support <support@example.test>");
	}
	InternetAddressList *list = internet_address_list_parse(NULL, o->from);
	InternetAddress *ia = list != NULL && internet_address_list_length(list) > 0
	                      ? internet_address_list_get_address(list, 0) : NULL;
	if (ia == NULL || !INTERNET_ADDRESS_IS_MAILBOX(ia)) {
		tr_conf_error(main, diag, "outbound", "from", "'%s' is not an address", o->from);
		o->from_address = g_strdup("support@example.test");
	} else {
		o->from_address = g_ascii_strdown(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)), -1);
	}
	if (list != NULL)
		g_object_unref(list);
	const char *at = strrchr(o->from_address, '@');
	o->loop_marker = g_strdup(at != NULL ? at + 1 : o->from_address);
	char *dir = tr_conf_file_path(main, "outbound", "templates", "../templates");
	load_dir(o, dir, false, diag);
	load_dir(o, dir, true, diag);
	/* Every template the product sends must exist at least in English. */
	for (const char *const *n = tr_outbound_mail_templates; *n != NULL; n++) {
		char *key = g_strdup_printf("mail/%s.en", *n);
		if (!g_hash_table_contains(o->templates, key))
			tr_diag_error(diag, dir, 0, "missing mail/%s.en.tmpl", *n);
		g_free(key);
	}
	g_free(dir);
	char *articles = tr_conf_file_path(main, "outbound", "articles", NULL);
	if (articles != NULL)
		load_articles(o, articles, diag);
	g_free(articles);
	if (tr_diag_error_count(diag) > errors_before)
		tr_outbound_free(&o);
	return o;
}

void tr_outbound_free(tr_outbound **op)
{
	tr_outbound *o = *op;
	if (o == NULL)
		return;
	*op = NULL;
	g_hash_table_destroy(o->templates);
	g_ptr_array_unref(o->articles);
	g_free(o->from);
	g_free(o->from_address);
	g_free(o->loop_marker);
	g_free(o);
}

const char *tr_outbound_from(const tr_outbound *o)
{
	return o->from;
}

const char *tr_outbound_from_address(const tr_outbound *o)
{
	return o->from_address;
}

static const template_box *find(const tr_outbound *o, bool chat, const char *name, const char *lang)
{
	char key[96];
	g_snprintf(key, sizeof(key), "%s/%s.%s", chat ? "chat" : "mail", name, lang != NULL ? lang : "en");
	const template_box *b = g_hash_table_lookup(o->templates, key);
	if (b == NULL) {
		g_snprintf(key, sizeof(key), "%s/%s.en", chat ? "chat" : "mail", name);
		b = g_hash_table_lookup(o->templates, key);
	}
	return b;
}

bool tr_outbound_has(const tr_outbound *o, bool chat, const char *name)
{
	return find(o, chat, name, "en") != NULL;
}

static bool in_list(char *const *list, const char *s)
{
	for (char *const *it = list; it != NULL && *it != NULL; it++) {
		if (strcmp(*it, s) == 0)
			return true;
	}
	return false;
}

JsonNode *tr_outbound_articles(const tr_outbound *o, const char *category, const char *const *rules,
                               const char *lang, unsigned max)
{
	JsonArray *arr = json_array_new();
	GHashTable *taken = g_hash_table_new(g_direct_hash, g_direct_equal);
	/* Articles mapped to a rule that fired first: they are more specific. */
	for (int pass = 0; pass < 2; pass++) {
		for (guint i = 0; i < o->articles->len && json_array_get_length(arr) < max; i++) {
			article *a = g_ptr_array_index(o->articles, i);
			if (g_hash_table_contains(taken, a))
				continue;
			bool hit = false;
			if (pass == 0) {
				for (const char *const *r = rules; r != NULL && *r != NULL && !hit; r++)
					hit = in_list(a->rules, *r);
			} else {
				hit = category != NULL && in_list(a->categories, category);
			}
			if (!hit)
				continue;
			g_hash_table_add(taken, a);
			const char *title = lang != NULL ? g_hash_table_lookup(a->titles, lang) : NULL;
			if (title == NULL)
				title = g_hash_table_lookup(a->titles, "");
			JsonObject *obj = json_object_new();
			json_object_set_string_member(obj, "title", title);
			json_object_set_string_member(obj, "url", a->url);
			json_array_add_object_element(arr, obj);
		}
	}
	g_hash_table_destroy(taken);
	JsonNode *node = json_node_new(JSON_NODE_ARRAY);
	json_node_take_array(node, arr);
	return node;
}

char *tr_outbound_chat(const tr_outbound *o, const char *name, const char *lang, JsonNode *context,
                       GError **error)
{
	const template_box *b = find(o, true, name, lang);
	if (b == NULL) {
		g_set_error(error, TR_TMPL_ERROR, TR_TMPL_ERROR_FILE, "no chat template %s", name);
		return NULL;
	}
	return tr_tmpl_render(b->tmpl, context, lang, TR_TMPL_TEXT, 0, error);
}

/* ---------------------------------------------------------------- composing */

/* A raw header value folded at spaces so that no line passes 78
 * characters (the template gives one line of ASCII encoded words). */
static char *fold_raw(const char *name, const char *value)
{
	GString *out = g_string_new(" ");
	size_t column = strlen(name) + 2;
	char **words = g_strsplit(value, " ", -1);
	bool first = true;
	for (char **w = words; *w != NULL; w++) {
		if (**w == '\0')
			continue;
		size_t len = strlen(*w);
		if (!first && column + 1 + len > 78) {
			g_string_append(out, "\n ");
			column = 1;
		} else if (!first) {
			g_string_append_c(out, ' ');
			column++;
		}
		g_string_append(out, *w);
		column += len;
		first = false;
	}
	g_string_append_c(out, '\n');
	g_strfreev(words);
	return g_string_free(out, FALSE);
}

static void set_raw_header(GMimeObject *obj, const char *name, const char *encoded)
{
	g_mime_object_set_header(obj, name, "x", NULL);
	GMimeHeader *h = g_mime_header_list_get_header(g_mime_object_get_header_list(obj), name);
	char *raw = fold_raw(name, encoded);
	g_mime_header_set_raw_value(h, raw);
	g_free(raw);
}

static bool ascii_only(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return false;
	}
	return true;
}

static GMimeObject *text_part(const char *text)
{
	GMimePart *part = g_mime_part_new_with_type("text", "plain");
	g_mime_object_set_content_type_parameter(GMIME_OBJECT(part), "charset", "utf-8");
	size_t len = strlen(text);
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(text, len);
	GMimeDataWrapper *wrapper = g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(part, wrapper);
	g_object_unref(wrapper);
	g_object_unref(stream);
	g_mime_part_set_content_encoding(part, ascii_only(text, len) ? GMIME_CONTENT_ENCODING_7BIT
	                                                           : GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	return GMIME_OBJECT(part);
}

/* The original, byte for byte: GMime never re-serialises untrusted mail
 * here (its boundary code can hang on hostile parameters). */
static GMimeObject *rfc822_part(const char *data, size_t len)
{
	GMimePart *part = g_mime_part_new_with_type("message", "rfc822");
	g_mime_object_set_disposition(GMIME_OBJECT(part), "inline");
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeDataWrapper *wrapper = g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(part, wrapper);
	g_object_unref(wrapper);
	g_object_unref(stream);
	/* message/rfc822 may only be 7bit or 8bit (RFC 2046 5.2.1). */
	g_mime_part_set_content_encoding(part, ascii_only(data, len) ? GMIME_CONTENT_ENCODING_7BIT
	                                                           : GMIME_CONTENT_ENCODING_8BIT);
	return GMIME_OBJECT(part);
}

char *tr_outbound_compose(const tr_outbound *o, JsonNode *context, const tr_outbound_mail *mail, size_t *len_r,
                          GError **error)
{
	const char *lang = mail->lang != NULL ? mail->lang : "en";
	const template_box *box = find(o, false, mail->template_name, lang);
	if (box == NULL) {
		g_set_error(error, TR_TMPL_ERROR, TR_TMPL_ERROR_FILE, "no mail template %s", mail->template_name);
		return NULL;
	}
	char *body = tr_tmpl_render(tr_tmpl_file_body(box->file), context, lang, TR_TMPL_TEXT, 0, error);
	if (body == NULL)
		return NULL;
	GMimeMessage *m = g_mime_message_new(TRUE);
	GMimeObject *top = GMIME_OBJECT(m);
	InternetAddressList *from = internet_address_list_parse(NULL, o->from);
	if (from != NULL) {
		internet_address_list_append(g_mime_message_get_from(m), from);
		g_object_unref(from);
	}
	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_TO, NULL, mail->to);
	bool ok = true;
	for (guint i = 0; i < tr_tmpl_file_n_headers(box->file) && ok; i++) {
		const char *name = tr_tmpl_file_header_name(box->file, i);
		char *value = tr_tmpl_render(tr_tmpl_file_header(box->file, i), context, lang, TR_TMPL_HEADER, 998, error);
		if (value == NULL) {
			ok = false;
			break;
		}
		set_raw_header(top, name, value);
		g_free(value);
	}
	if (!ok) {
		g_free(body);
		g_object_unref(m);
		return NULL;
	}
	GDateTime *date = g_date_time_new_from_unix_utc(mail->date);
	g_mime_message_set_date(m, date);
	g_date_time_unref(date);
	g_mime_message_set_message_id(m, mail->message_id);
	if (mail->in_reply_to != NULL) {
		char *irt = g_strdup_printf("<%s>", mail->in_reply_to);
		g_mime_object_set_header(top, "In-Reply-To", irt, NULL);
		g_free(irt);
	}
	if (mail->references != NULL || mail->in_reply_to != NULL) {
		GString *refs = g_string_new(NULL);
		unsigned n = 0;
		for (const char *const *r = mail->references; r != NULL && *r != NULL; r++)
			n++;
		/* The newest ten are enough for any mail client to thread. */
		unsigned skip = n > 9 ? n - 9 : 0, k = 0;
		for (const char *const *r = mail->references; r != NULL && *r != NULL; r++, k++) {
			if (k >= skip && (mail->in_reply_to == NULL || strcmp(*r, mail->in_reply_to) != 0))
				g_string_append_printf(refs, "%s<%s>", refs->len ? " " : "", *r);
		}
		if (mail->in_reply_to != NULL)
			g_string_append_printf(refs, "%s<%s>", refs->len ? " " : "", mail->in_reply_to);
		set_raw_header(top, "References", refs->str);
		g_string_free(refs, TRUE);
	}
	g_mime_object_set_header(top, "Auto-Submitted", mail->auto_submitted != NULL ? mail->auto_submitted
	                                                                             : "auto-generated", NULL);
	g_mime_object_set_header(top, "X-Auto-Response-Suppress", "All", NULL);
	g_mime_object_set_header(top, "X-Triage-Loop", o->loop_marker, NULL);
	if (mail->bulk)
		g_mime_object_set_header(top, "Precedence", "bulk", NULL);
	GMimeObject *text = text_part(body);
	if (mail->attach != NULL && mail->attach_len > 0) {
		GMimeMultipart *mixed = g_mime_multipart_new_with_subtype("mixed");
		g_mime_multipart_add(mixed, text);
		GMimeObject *orig = rfc822_part(mail->attach, mail->attach_len);
		g_mime_multipart_add(mixed, orig);
		g_object_unref(orig);
		g_mime_message_set_mime_part(m, GMIME_OBJECT(mixed));
		g_object_unref(mixed);
	} else {
		g_mime_message_set_mime_part(m, text);
	}
	g_object_unref(text);
	GMimeFormatOptions *fo = g_mime_format_options_clone(NULL);
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	char *out = g_mime_object_to_string(top, fo);
	g_mime_format_options_free(fo);
	g_object_unref(m);
	g_free(body);
	if (len_r != NULL)
		*len_r = strlen(out);
	return out;
}

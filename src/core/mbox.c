/* mbox.c — mboxrd splitting; see mbox.h */
#include "core/mbox.h"

#include <glib.h>
#include <string.h>

bool tr_mbox_detect(const char *data, size_t len)
{
	return len >= 5 && memcmp(data, "From ", 5) == 0;
}

void tr_mbox_iter_init(tr_mbox_iter *it, const char *data, size_t len)
{
	memset(it, 0, sizeof(*it));
	it->data = data;
	it->len = len;
	it->single = !tr_mbox_detect(data, len);
}

/* Start of the next "From " line at or after pos (a line start), or len. */
static size_t next_separator(const char *data, size_t len, size_t pos)
{
	while (pos < len) {
		if (len - pos >= 5 && memcmp(data + pos, "From ", 5) == 0)
			return pos;
		const char *nl = memchr(data + pos, '\n', len - pos);
		if (nl == NULL)
			return len;
		pos = (size_t)(nl - data) + 1;
	}
	return len;
}

bool tr_mbox_iter_next(tr_mbox_iter *it, const char **msg_r, size_t *len_r)
{
	g_clear_pointer(&it->buffer, g_free);
	if (it->single) {
		if (it->pos > 0 || it->len == 0)
			return false;
		it->pos = it->len;
		*msg_r = it->data;
		*len_r = it->len;
		return true;
	}
	while (it->pos < it->len) {
		/* Skip the separator line. */
		const char *nl = memchr(it->data + it->pos, '\n', it->len - it->pos);
		size_t body = nl != NULL ? (size_t)(nl - it->data) + 1 : it->len;
		size_t end = next_separator(it->data, it->len, body);
		it->pos = end;
		if (end == body)
			continue;  /* an empty message */
		/* Unescape ">From " lines into a copy. */
		GString *out = g_string_sized_new(end - body);
		size_t p = body;
		while (p < end) {
			const char *lnl = memchr(it->data + p, '\n', end - p);
			size_t line_end = lnl != NULL ? (size_t)(lnl - it->data) + 1 : end;
			size_t q = p;
			while (q < line_end && it->data[q] == '>')
				q++;
			if (q > p && line_end - q >= 5 && memcmp(it->data + q, "From ", 5) == 0)
				p++;  /* drop one '>' */
			g_string_append_len(out, it->data + p, (gssize)(line_end - p));
			p = line_end;
		}
		*len_r = out->len;
		it->buffer = g_string_free(out, FALSE);
		*msg_r = it->buffer;
		return true;
	}
	return false;
}

void tr_mbox_iter_deinit(tr_mbox_iter *it)
{
	g_clear_pointer(&it->buffer, g_free);
}

/* msg.c — the normalized message, see msg.h */
#include "core/msg.h"

#include <glib.h>
#include <openssl/evp.h>
#include <string.h>

static const char *const channel_names[] = {
	[TR_CHANNEL_FILE] = "file",
	[TR_CHANNEL_IMAP] = "imap",
	[TR_CHANNEL_LMTP] = "lmtp",
	[TR_CHANNEL_MILTER] = "milter",
	[TR_CHANNEL_XMPP] = "xmpp",
};

static const char *const auto_names[TR_AUTO_COUNT] = {
	"auto_submitted", "precedence", "list", "suppress", "report", "bounce",
	"null_sender", "system_sender", "noreply_sender", "autoreply_header",
	"autoreply_subject", "bulk_sender",
};

static const char *const flag_names[TR_MSG_FLAG_COUNT] = {
	"truncated_size", "truncated_headers", "truncated_depth",
	"truncated_parts", "truncated_text", "charset_repaired",
	"html_converted", "no_text", "no_headers", "broken_mime", "nul_bytes",
};

tr_msg *tr_msg_new(tr_channel channel)
{
	tr_pool *pool = tr_pool_new(16 * 1024);
	tr_msg *msg = tr_pool_alloc(pool, sizeof(*msg));
	msg->pool = pool;
	msg->channel = channel;
	msg->from.address = "";
	msg->subject = "";
	msg->text = msg->text_new = msg->text_quoted = msg->text_signature = "";
	msg->text_source = "none";
	return msg;
}

void tr_msg_free(tr_msg **msgp)
{
	tr_msg *msg = *msgp;
	if (msg == NULL)
		return;
	*msgp = NULL;
	tr_pool *pool = msg->pool;
	tr_pool_free(&pool);
}

bool tr_msg_is_auto(const tr_msg *msg)
{
	return msg->auto_flags != 0;
}

const char *tr_msg_header(const tr_msg *msg, const char *name)
{
	for (size_t i = 0; i < msg->headers_count; i++) {
		if (g_ascii_strcasecmp(msg->headers[i].name, name) == 0)
			return msg->headers[i].value;
	}
	return NULL;
}

const char *tr_msg_from_domain(const tr_msg *msg)
{
	const char *at = strrchr(msg->from.address, '@');
	return at != NULL ? at + 1 : "";
}

const char *tr_channel_name(tr_channel channel)
{
	if ((unsigned)channel < G_N_ELEMENTS(channel_names))
		return channel_names[channel];
	return "unknown";
}

bool tr_channel_parse(const char *name, tr_channel *channel_r)
{
	for (unsigned i = 0; i < G_N_ELEMENTS(channel_names); i++) {
		if (strcmp(name, channel_names[i]) == 0) {
			*channel_r = (tr_channel)i;
			return true;
		}
	}
	return false;
}

const char *tr_msg_auto_name(unsigned bit_index)
{
	return bit_index < TR_AUTO_COUNT ? auto_names[bit_index] : "unknown";
}

const char *tr_msg_flag_name(unsigned bit_index)
{
	return bit_index < TR_MSG_FLAG_COUNT ? flag_names[bit_index] : "unknown";
}

/* OpenSSL's SHA-256 uses the CPU's SHA instructions where there are some:
 * ten times faster than GLib's portable one on a mail's text.  The
 * algorithm is fetched once; a fetched EVP_MD is immutable and shareable. */
static const EVP_MD *sha256(void)
{
	static gsize once = 0;
	static EVP_MD *md;
	if (g_once_init_enter(&once)) {
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
		if (md == NULL)
			g_error("tr_msg_content_hash: OpenSSL has no SHA256");
		g_once_init_leave(&once, 1);
	}
	return md;
}

/* One digest context per thread, reset for every message: creating and
 * freeing one per message cost as much as hashing a short mail. */
static void digest_ctx_free(gpointer ctx)
{
	EVP_MD_CTX_free(ctx);
}

static GPrivate digest_ctx_key = G_PRIVATE_INIT(digest_ctx_free);

static EVP_MD_CTX *digest_ctx(void)
{
	EVP_MD_CTX *ctx = g_private_get(&digest_ctx_key);
	if (ctx == NULL) {
		ctx = EVP_MD_CTX_new();
		if (ctx == NULL)
			g_error("tr_msg_content_hash: cannot allocate a digest context");
		g_private_set(&digest_ctx_key, ctx);
	}
	return ctx;
}

void tr_msg_content_hash(tr_msg *msg)
{
	EVP_MD_CTX *ctx = digest_ctx();
	if (!EVP_DigestInit_ex2(ctx, sha256(), NULL))
		g_error("tr_msg_content_hash: cannot start SHA-256");
	char date[32];
	g_snprintf(date, sizeof(date), "%" G_GINT64_FORMAT, (gint64)msg->date);
	const char *fields[] = { msg->from.address, date, msg->subject, msg->text };
	for (size_t i = 0; i < G_N_ELEMENTS(fields); i++) {
		/* Length-prefixed so that field boundaries cannot be shifted. */
		size_t field_len = strlen(fields[i]);
		char len[24];
		int n = g_snprintf(len, sizeof(len), "%zu:", field_len);
		EVP_DigestUpdate(ctx, len, (size_t)n);
		EVP_DigestUpdate(ctx, fields[i], field_len);
	}
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_DigestFinal_ex(ctx, digest, &digest_len);
	static const char hex[] = "0123456789abcdef";
	G_STATIC_ASSERT(sizeof(msg->content_hash) == 2 * 32 + 1);
	for (unsigned i = 0; i < 32 && i < digest_len; i++) {
		msg->content_hash[2 * i] = hex[digest[i] >> 4];
		msg->content_hash[2 * i + 1] = hex[digest[i] & 15];
	}
	msg->content_hash[64] = '\0';
}

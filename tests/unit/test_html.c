/* test_html.c — HTML mail bodies to text
 *
 * The client fixtures are reduced from the markup Gmail, Outlook (web and
 * desktop), Apple Mail and Thunderbird produce; they were written for these
 * tests.
 */
#include "testutil.h"
#include "core/html.h"
#include "core/quote.h"

#include <string.h>
#include <time.h>

static tr_pool *pool;

static int setup(void **state)
{
	(void)state;
	pool = tr_pool_new(0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tr_pool_free(&pool);
	return 0;
}

static char *convert_max(const char *html, size_t len, size_t max, gboolean *truncated)
{
	char *text = tr_html_to_text(pool, html, len, max, truncated);
	assert_non_null(text);
	assert_true(strlen(text) <= max);
	assert_true(g_utf8_validate(text, -1, NULL));
	return text;
}

static char *convert(const char *html)
{
	gboolean truncated = TRUE;
	char *text = convert_max(html, strlen(html), SIZE_MAX, &truncated);
	assert_false(truncated);
	return text;
}

static void expect(const char *html, const char *text)
{
	assert_string_equal(convert(html), text);
}

/* ---- layout ---- */

static void test_paragraphs_and_breaks(void **state)
{
	(void)state;
	expect("<p>Hello   <b>world</b>,\n  how are\tyou?</p><p>Second&nbsp;para</p>",
	       "Hello world, how are you?\n\nSecond para");
	expect("line one<br>line two<br><br>after blank<br><br><br><br><br>capped",
	       "line one\nline two\n\nafter blank\n\n\ncapped");
	expect("<div>a</div><div>b<br></div><div><br></div><div>c</div>", "a\nb\n\nc");
	expect("<h1>Title</h1>text<h2>Sub</h2>more", "Title\n\ntext\n\nSub\n\nmore");
	expect("<span>inline</span><span>joined</span> <i>spaced</i>", "inlinejoined spaced");
	expect("<p>&lt;tag&gt; &amp; &quot;q&quot; &eacute;&#233;&#xE9; &euro;</p>",
	       "<tag> & \"q\" ééé €");
	expect("zero\xe2\x80\x8bwidth\xc2\xad soft", "zerowidth soft");
}

static void test_dropped_content(void **state)
{
	(void)state;
	expect("<html><head><title>Invoice</title><style>p { color: red }</style>"
	       "<script>var x = '<p>no</p>';</script></head><body>"
	       "<div style=\"display: none; max-height: 0\">Preheader: 50% off!</div>"
	       "<span style='DISPLAY:NONE'>hidden</span><div hidden>also hidden</div>"
	       "<p style=\"mso-hide:all\">outlook only</p>"
	       "<noscript>enable js</noscript><template><p>tpl</p></template>"
	       "<svg><text>vector</text></svg><!-- a comment -->"
	       "<p>Visible text</p></body></html>",
	       "Visible text");
}

static void test_lists(void **state)
{
	(void)state;
	expect("<p>Steps:</p><ul><li>Open settings</li><li>Click <b>Export</b>"
	       "<ol><li>choose CSV</li><li>save</li></ol></li><li>Done</li></ul><p>After</p>",
	       "Steps:\n\n- Open settings\n- Click Export\n  1. choose CSV\n  2. save\n- Done\n\nAfter");
	expect("<ol><li>first<br>continued</li><li></li><li>third</li></ol>",
	       "1. first\n   continued\n3. third");
}

static void test_tables(void **state)
{
	(void)state;
	expect("<table><tr><th>Order</th><th>Status</th></tr>"
	       "<tr><td>4711</td><td>shipped</td></tr>"
	       "<tr><td>4712</td><td></td><td>lost</td></tr></table>",
	       "Order | Status\n4711 | shipped\n4712 | lost");
	/* layout tables with one cell per row add no separators */
	expect("<table><tr><td><table><tr><td>Logo</td></tr><tr><td>Body text</td></tr></table></td></tr></table>",
	       "Logo\nBody text");
}

static void test_pre(void **state)
{
	(void)state;
	expect("<p>Log:</p><pre>\n$ make\ncc -o x x.c\n  error:   boom\n\n\n\nend</pre>after",
	       "Log:\n\n$ make\ncc -o x x.c\n  error:   boom\n\n\n\nend\n\nafter");
}

static void test_links(void **state)
{
	(void)state;
	expect("See <a href=\"https://status.acme.example/incidents/42\">the status page</a>.",
	       "See the status page <https://status.acme.example/incidents/42>.");
	/* the text is the URL: not repeated */
	expect("<a href=\"https://www.acme.example/\">www.acme.example</a> and "
	       "<a href=\"http://acme.example/help\">http://acme.example/help</a>",
	       "www.acme.example and http://acme.example/help");
	/* mailto, javascript, and empty links add nothing */
	expect("<a href=\"mailto:help@acme.example\">write us</a> <a href=\"javascript:x()\">js</a> "
	       "<a href=\"https://acme.example/x\"></a>end",
	       "write us js end");
	/* click trackers longer than TR_HTML_MAX_LINK_URL are not shown */
	GString *html = g_string_new("<a href=\"https://t.example/c?");
	for (int i = 0; i < TR_HTML_MAX_LINK_URL; i++)
		g_string_append_c(html, 'x');
	g_string_append(html, "\">Unsubscribe</a>");
	expect(html->str, "Unsubscribe");
	g_string_free(html, TRUE);
}

static void test_images(void **state)
{
	(void)state;
	expect("<p><img src=\"cid:logo\" alt=\"Acme Corp\"> news "
	       "<img src=\"x.png\" alt=\"image001.png\"><img src=\"p.gif\" width=\"1\" height=\"1\" alt=\"tracker\">"
	       "<img src=\"e.png\" alt=\"  \">end</p>",
	       "Acme Corp news end");
}

/* ---- quoted history ---- */

static const char gmail_reply[] =
	"<div dir=\"ltr\">Hi,<div><br></div><div>the export still fails.</div><div><br></div>"
	"<div>Thanks,</div><div>John</div>"
	"<div><br></div>-- <br><div dir=\"ltr\" class=\"gmail_signature\" data-smartmail=\"gmail_signature\">"
	"<div dir=\"ltr\">John Smith<br>Acme Corp | +1 555 123 4567</div></div></div><br>"
	"<div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">On Mon, Jan 8, 2024 at 10:02 AM "
	"Acme Support &lt;<a href=\"mailto:support@acme.example\">support@acme.example</a>&gt; wrote:<br></div>"
	"<blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);"
	"padding-left:1ex\"><div dir=\"ltr\">Please restart the export.<div><br></div>"
	"<div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">On Sun, Jan 7, 2024 at 6:40 PM "
	"John Smith &lt;john@example.com&gt; wrote:<br></div><blockquote class=\"gmail_quote\">"
	"<div dir=\"ltr\">The export fails.</div></blockquote></div></div></blockquote></div>";

static void test_gmail(void **state)
{
	(void)state;
	const char *text = convert(gmail_reply);
	assert_string_equal(text,
	                    "Hi,\n"
	                    "\n"
	                    "the export still fails.\n"
	                    "\n"
	                    "Thanks,\n"
	                    "John\n"
	                    "\n"
	                    "-- \n"
	                    "John Smith\n"
	                    "Acme Corp | +1 555 123 4567\n"
	                    "\n"
	                    "> On Mon, Jan 8, 2024 at 10:02 AM Acme Support <support@acme.example> wrote:\n"
	                    "> Please restart the export.\n"
	                    "\n"
	                    "> > On Sun, Jan 7, 2024 at 6:40 PM John Smith <john@example.com> wrote:\n"
	                    "> > The export fails.");
	tr_quote_parts q;
	tr_quote_split(pool, text, strlen(text), &q);
	assert_string_equal(q.new_text, "Hi,\n\nthe export still fails.");
	assert_string_equal(q.signature, "Thanks,\nJohn\n\n-- \nJohn Smith\nAcme Corp | +1 555 123 4567");
	assert_string_equal(q.marker, "quote-prefix");
	assert_true(g_str_has_prefix(q.quoted, "> On Mon, Jan 8, 2024"));
}

static void test_gmail_signature_without_prefix(void **state)
{
	(void)state;
	expect("<div dir=\"ltr\">Please call me.<br clear=\"all\"><div><br></div>"
	       "<div dir=\"ltr\" class=\"gmail_signature\">Jane Roe<br>+49 30 1234567</div></div>",
	       "Please call me.\n\n-- \nJane Roe\n+49 30 1234567");
}

static void test_gmail_forward(void **state)
{
	(void)state;
	expect("<div dir=\"ltr\">FYI, third reminder although we paid.<br><br>"
	       "<div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">---------- Forwarded message ---------<br>"
	       "From: <b class=\"gmail_sendername\">Billing</b> <span>&lt;billing@vendor.example&gt;</span><br>"
	       "Date: Mon, Jan 8, 2024 at 9:00 AM<br>Subject: Payment overdue<br></div><br><br>"
	       "<div>Your invoice is overdue.</div></div></div>",
	       "FYI, third reminder although we paid.\n"
	       "\n"
	       "> ---------- Forwarded message ---------\n"
	       "> From: Billing <billing@vendor.example>\n"
	       "> Date: Mon, Jan 8, 2024 at 9:00 AM\n"
	       "> Subject: Payment overdue\n"
	       "\n"
	       "\n"
	       "> Your invoice is overdue.");
}

static const char outlook_web_reply[] =
	"<html><head><style type=\"text/css\" style=\"display:none;\">P {margin:0;}</style></head>"
	"<body dir=\"ltr\"><div style=\"font-family: Calibri, Arial; font-size: 12pt;\">Hello,</div>"
	"<div style=\"font-family: Calibri\"><br></div>"
	"<div style=\"font-family: Calibri\">the VPN drops every five minutes.</div>"
	"<div style=\"font-family: Calibri\"><br></div>"
	"<div id=\"Signature\"><div>Kind regards<br>Anna Lee<br>Phone: +44 20 7946 0958</div></div>"
	"<div id=\"appendonsend\"></div>"
	"<hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">"
	"<div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri, sans-serif\" style=\"font-size:11pt\" color=\"#000000\">"
	"<b>From:</b> Acme Support &lt;support@acme.example&gt;<br><b>Sent:</b> Monday, January 8, 2024 10:02 AM<br>"
	"<b>To:</b> Anna Lee &lt;anna.lee@example.com&gt;<br><b>Subject:</b> RE: VPN drops</font>"
	"<div>&nbsp;</div></div>"
	"<div class=\"BodyFragment\"><font size=\"2\"><span style=\"font-size:11pt;\">"
	"<div class=\"PlainText\">Did you try reconnecting?</div></span></font></div></body></html>";

static void test_outlook_web(void **state)
{
	(void)state;
	const char *text = convert(outlook_web_reply);
	assert_string_equal(text,
	                    "Hello,\n"
	                    "\n"
	                    "the VPN drops every five minutes.\n"
	                    "\n"
	                    "-- \n"
	                    "Kind regards\n"
	                    "Anna Lee\n"
	                    "Phone: +44 20 7946 0958\n"
	                    "> ---\n"
	                    "> From: Acme Support <support@acme.example>\n"
	                    "> Sent: Monday, January 8, 2024 10:02 AM\n"
	                    "> To: Anna Lee <anna.lee@example.com>\n"
	                    "> Subject: RE: VPN drops\n"
	                    "> Did you try reconnecting?");
	tr_quote_parts q;
	tr_quote_split(pool, text, strlen(text), &q);
	assert_string_equal(q.new_text, "Hello,\n\nthe VPN drops every five minutes.");
	assert_string_equal(q.signature, "-- \nKind regards\nAnna Lee\nPhone: +44 20 7946 0958");
	assert_string_equal(q.marker, "quote-prefix");
}

static void test_outlook_desktop(void **state)
{
	(void)state;
	expect("<div class=\"WordSection1\"><p class=\"MsoNormal\">Hallo,<o:p></o:p></p>"
	       "<p class=\"MsoNormal\">die Rechnung ist doppelt.<o:p></o:p></p>"
	       "<p class=\"MsoNormal\"><o:p>&nbsp;</o:p></p>"
	       "<div><div style=\"border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm\">"
	       "<p class=\"MsoNormal\"><b>Von:</b> Acme Support &lt;support@acme.example&gt; <br>"
	       "<b>Gesendet:</b> Montag, 8. Januar 2024 10:02<br><b>An:</b> Jens<br>"
	       "<b>Betreff:</b> AW: Rechnung<o:p></o:p></p></div></div>"
	       "<p class=\"MsoNormal\"><o:p>&nbsp;</o:p></p><p class=\"MsoNormal\">Wir prüfen das.<o:p></o:p></p></div>",
	       "Hallo,\n"
	       "\n"
	       "die Rechnung ist doppelt.\n"
	       "\n"
	       "> Von: Acme Support <support@acme.example>\n"
	       "> Gesendet: Montag, 8. Januar 2024 10:02\n"
	       "> An: Jens\n"
	       "> Betreff: AW: Rechnung\n"
	       "\n"
	       "> Wir prüfen das.");
}

static void test_thunderbird(void **state)
{
	(void)state;
	expect("<p>Thanks, fixed.</p><div class=\"moz-cite-prefix\">On 08/01/2024 10:02, Acme Support wrote:<br></div>"
	       "<blockquote type=\"cite\" cite=\"mid:1@acme.example\">Please replace the certificate.<br>"
	       "<div class=\"moz-cite-prefix\">On 07/01/2024 18:40, Tom wrote:<br></div>"
	       "<blockquote type=\"cite\">TLS fails.</blockquote></blockquote>"
	       "<pre class=\"moz-signature\" cols=\"72\">-- \nTom Baker</pre>",
	       "Thanks, fixed.\n"
	       "\n"
	       "> On 08/01/2024 10:02, Acme Support wrote:\n"
	       "> Please replace the certificate.\n"
	       "> > On 07/01/2024 18:40, Tom wrote:\n"
	       "> > TLS fails.\n"
	       "\n"
	       "-- \n"
	       "Tom Baker");
}

static void test_apple_mail(void **state)
{
	(void)state;
	const char *text = convert(
		"<html><body dir=\"auto\">Still broken.<br><br><div dir=\"ltr\">Sent from my iPhone</div>"
		"<div dir=\"ltr\"><br><blockquote type=\"cite\">On Jan 8, 2024, at 10:02, Acme Support "
		"&lt;support@acme.example&gt; wrote:<br><br></blockquote></div>"
		"<blockquote type=\"cite\"><div dir=\"ltr\">Please update to 2.4.1.</div></blockquote></body></html>");
	assert_string_equal(text,
	                    "Still broken.\n"
	                    "\n"
	                    "Sent from my iPhone\n"
	                    "\n"
	                    "> On Jan 8, 2024, at 10:02, Acme Support <support@acme.example> wrote:\n"
	                    "\n"
	                    "> Please update to 2.4.1.");
	tr_quote_parts q;
	tr_quote_split(pool, text, strlen(text), &q);
	assert_string_equal(q.new_text, "Still broken.");
	assert_string_equal(q.signature, "Sent from my iPhone");
}

/* ---- limits and hostile input ---- */

static void test_max_bytes(void **state)
{
	(void)state;
	gboolean truncated = FALSE;
	/* "é" is two bytes: a cut at 5 must not split the third one */
	char *text = convert_max("<p>ééé</p>", strlen("<p>ééé</p>"), 5, &truncated);
	assert_string_equal(text, "éé");
	assert_true(truncated);
	text = convert_max("<p>ééé</p>", strlen("<p>ééé</p>"), 6, &truncated);
	assert_string_equal(text, "ééé");
	assert_false(truncated);
	text = convert_max("<p>abc</p>", 10, 0, &truncated);
	assert_string_equal(text, "");
	assert_true(truncated);
	/* a cut right after a quote prefix leaves no dangling "> " */
	text = convert_max("<p>new</p><blockquote>quoted</blockquote>", 41, 7, &truncated);
	assert_string_equal(text, "new");
	assert_true(truncated);
	assert_string_equal(tr_html_to_text(pool, NULL, 0, 100, NULL), "");
	assert_string_equal(tr_html_to_text(pool, "   \n ", 5, 100, NULL), "");
}

static void test_nul_and_invalid_utf8(void **state)
{
	(void)state;
	static const char html[] = "<p>be\0fore</p><p>x\xff\xfe" "y</p><p>\xc3</p>";
	gboolean truncated;
	char *text = convert_max(html, sizeof(html) - 1, SIZE_MAX, &truncated);
	assert_string_equal(text, "be\xef\xbf\xbd" "fore\n\nx\xef\xbf\xbd\xef\xbf\xbdy\n\n\xef\xbf\xbd");
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_deep_nesting(void **state)
{
	(void)state;
	GString *html = g_string_new("<p>top</p>");
	for (int i = 0; i < 10000; i++)
		g_string_append(html, "<div>");
	g_string_append(html, "deep");
	for (int i = 0; i < 10000; i++)
		g_string_append(html, "</div>");
	gboolean truncated = FALSE;
	char *text = convert_max(html->str, html->len, SIZE_MAX, &truncated);
	assert_string_equal(text, "top");
	assert_true(truncated);

	/* nested quotes: the prefix stops growing at TR_HTML_MAX_QUOTE_PREFIX */
	g_string_assign(html, "");
	for (int i = 0; i < 200; i++)
		g_string_append(html, "<blockquote>q");
	text = convert_max(html->str, html->len, SIZE_MAX, &truncated);
	assert_false(truncated);
	const char *last = strrchr(text, '\n') + 1;
	size_t prefix = 2 * TR_HTML_MAX_QUOTE_PREFIX;
	assert_int_equal(strlen(last), prefix + 1);
	g_string_free(html, TRUE);
}

static void test_five_megabytes_of_tags(void **state)
{
	(void)state;
	static const char *const units[] = {
		"<p>x", "<b>", "<td>x<tr>", "<table>", "<li>", "</i>", "<a href=\"https://e.example/\">x",
		"<br>", "<div style=\"display:none\">", "<blockquote>", "<", "&amp;", "<!--",
	};
	const size_t size = 5u << 20;
	for (size_t u = 0; u < G_N_ELEMENTS(units); u++) {
		GString *html = g_string_sized_new(size + 64);
		/* the stray-end-tag case is worst below the depth cap */
		if (strcmp(units[u], "</i>") == 0)
			for (int i = 0; i < TR_HTML_MAX_DEPTH - 4; i++)
				g_string_append(html, "<b>");
		while (html->len < size)
			g_string_append(html, units[u]);
		double t0 = seconds();
		gboolean truncated;
		char *text = convert_max(html->str, html->len, 1 << 20, &truncated);
		double elapsed = seconds() - t0;
		print_message("# %-32s %6.0f ms, %zu bytes out\n", units[u], elapsed * 1000, strlen(text));
		assert_true(elapsed < 20.0);
		tr_pool_clear(pool);
		g_string_free(html, TRUE);
	}
}

static void test_corpus_smoke(void **state)
{
	(void)state;
	char *dir = tr_test_corpus("mail/spamassassin-easy-ham");
	if (dir == NULL) {
		skip();
		return;
	}
	GDir *d = g_dir_open(dir, 0, NULL);
	assert_non_null(d);
	const char *name;
	unsigned files = 0;
	while ((name = g_dir_read_name(d)) != NULL) {
		char *path = g_build_filename(dir, name, NULL);
		size_t len;
		char *data = tr_test_read(path, &len);
		if (strstr(data, "<html") != NULL || strstr(data, "<HTML") != NULL) {
			gboolean truncated;
			convert_max(data, len, 64 * 1024, &truncated);
			files++;
		}
		g_free(data);
		g_free(path);
		tr_pool_clear(pool);
	}
	g_dir_close(d);
	g_free(dir);
	print_message("# %u corpus files with HTML converted\n", files);
	assert_true(files > 0);
}

int main(void)
{
	tr_html_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_paragraphs_and_breaks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropped_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pre, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_images, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gmail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gmail_signature_without_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gmail_forward, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outlook_web, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outlook_desktop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thunderbird, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apple_mail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul_and_invalid_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_nesting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_five_megabytes_of_tags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corpus_smoke, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

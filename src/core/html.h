/*
 * html.h — HTML mail bodies to readable plain text (tr_html_*)
 *
 * The normalizer hands us the HTML part of a message, already converted to
 * UTF-8; we give back the text a person would read in a mail client, laid
 * out so that the quote splitter (core/quote.h) can tell the customer's new
 * words from quoted history.
 *
 * How the HTML is read: libxml2's HTML parser in SAX mode (no tree is
 * built), options RECOVER|NOERROR|NOWARNING|NONET|COMPACT, encoding forced
 * to UTF-8 (a <meta charset> in the document cannot override it).  Nothing
 * is ever fetched.  Memory is bounded by the nesting depth and the output
 * size, not by the number of elements.
 *
 * Rendering rules:
 * - Dropped with their content: head, title, script, style, noscript,
 *   template, svg, math, iframe, object, select, comments, and any element
 *   hidden with style display:none / visibility:hidden / mso-hide:all or
 *   the hidden attribute (e-mail "preheaders").
 * - Block elements (div, p, h1-h6, ul/ol, li, table, tr, blockquote, pre,
 *   hr, address, section, article, header, footer, ...) start a new line;
 *   p, h1-h6, pre and top-level lists are separated by a blank line.
 *   <br> is a newline; at most two blank lines in a row.
 * - Whitespace collapses as in a browser (also U+00A0 and friends); zero
 *   width characters and C0 controls are dropped.  <pre> (and textarea,
 *   xmp, listing) keeps its spaces and newlines.
 * - <li> gets "- " (unordered) or "N. " (ordered), nested lists are
 *   indented by two spaces per level (at most TR_HTML_MAX_INDENT levels).
 * - Table cells of one row are joined with " | " (empty cells collapse),
 *   each row on its own line.
 * - <hr> becomes a line "---".
 * - <img alt> is kept when the alt text is meaningful: non-empty, not a
 *   file name, at most TR_HTML_MAX_ALT bytes, and not a 0/1-pixel image.
 * - Links keep their text.  When the href is an http(s) URL that differs
 *   from the text (compared without scheme, "www." and trailing "/"), and
 *   is at most TR_HTML_MAX_LINK_URL bytes, " <URL>" is appended: support
 *   mail often says "click here" or hides a phishing target behind a
 *   harmless-looking text, and the URL is what matters then.  Longer URLs
 *   (click trackers) and mailto: links are not shown.
 * - Quoted history: every output line inside a quote is prefixed with
 *   "> " per level ("> > " when nested, at most TR_HTML_MAX_QUOTE_PREFIX
 *   levels shown).  A level is opened by:
 *     <blockquote> (any, including type=cite from Apple Mail/Thunderbird),
 *     Gmail's div.gmail_quote (also protonmail_quote, yahoo_quoted) — the
 *       blockquote directly inside it does not open a second level, so the
 *       attribution and the quote it introduces read "> On ... wrote:" /
 *       "> quoted text",
 *     Thunderbird's div.moz-cite-prefix (the attribution before the
 *       blockquote).
 *   Outlook puts the quoted original after the reply, not inside any
 *   container: from an element with id appendonsend or divRplyFwdMsg
 *   (also the x_-prefixed copies in forwarded mail), OLK_SRC_BODY_SECTION
 *   (Outlook for Mac), or Outlook desktop's reply-header div (border-top
 *   solid #E1E1E1 / #B5C4DF), everything to the end of the document is one
 *   level deeper.
 *   Blank lines carry no prefix.
 * - A signature block that the mail client marks (Gmail's
 *   div.gmail_signature, Outlook on the web's div#Signature) is preceded
 *   by a "-- " line when it is not inside a quote, so that the quote
 *   splitter can find it.
 *
 * The result is valid UTF-8 with LF line ends, without leading blank
 * lines or trailing whitespace, and at most max_bytes long (cut on a UTF-8
 * character boundary).
 */
#ifndef TR_HTML_H
#define TR_HTML_H

#include <stddef.h>

#include <glib.h>

#include "core/pool.h"

/* Limits (compile-time; the defaults are the values).
 *
 * TR_HTML_MAX_DEPTH       element nesting.  Deeper input stops the
 *                         conversion there (the text so far is returned,
 *                         *truncated_r is set); libxml2 itself stops at 256
 *                         when it builds a tree.  This also bounds
 *                         libxml2's own end-tag search, which is linear in
 *                         the depth.
 * TR_HTML_MAX_INPUT       bytes of HTML looked at (libxml2 takes an int);
 *                         the rest is ignored and *truncated_r set.
 * TR_HTML_MAX_QUOTE_PREFIX "> " levels written at the start of a line.
 * TR_HTML_MAX_INDENT      list nesting levels that indent.
 * TR_HTML_MAX_LINK_URL    longest href shown in <...> after a link.
 * TR_HTML_MAX_ALT         longest img alt text kept.
 */
#define TR_HTML_MAX_DEPTH 256
#define TR_HTML_MAX_INPUT (256u * 1024 * 1024)
#define TR_HTML_MAX_QUOTE_PREFIX 16
#define TR_HTML_MAX_INDENT 8
#define TR_HTML_MAX_LINK_URL 256
#define TR_HTML_MAX_ALT 200

/* Initialise libxml2's parser globals.  Call once from the main thread
 * before threads start (tr_html_to_text() calls it too, but libxml2's
 * first initialisation is not thread-safe). */
void tr_html_init(void);

/* Convert len bytes of HTML (UTF-8; NUL bytes and invalid sequences are
 * replaced by U+FFFD, not trusted) to plain text as described above.
 * html may be NULL when len is 0.
 *
 * At most max_bytes bytes of text are produced (plus the terminating NUL).
 * *truncated_r (may be NULL) is set to TRUE when the text was cut at
 * max_bytes or the input exceeded TR_HTML_MAX_DEPTH / TR_HTML_MAX_INPUT,
 * FALSE otherwise.
 *
 * Returns a NUL-terminated string allocated from pool (never NULL; "" for
 * input without text).  The caller owns it through the pool. */
char *tr_html_to_text(tr_pool *pool, const char *html, size_t len,
                      size_t max_bytes, gboolean *truncated_r);

#endif

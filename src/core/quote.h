/*
 * quote.h — split a message body into new text, quoted history and
 * signature (tr_quote_*)
 *
 * The classifier should judge what the customer just wrote, not the
 * thread below it or the phone numbers in the signature.  Input is the
 * body as plain text (UTF-8, LF line ends), from a text/plain part or from
 * tr_html_to_text(), which renders HTML quotes as "> " lines.
 *
 * Quoted history is found line by line, with cheap tests first (first and
 * last non-blank byte, length, then a known word); no regular expressions.
 *
 * 1. Lines whose first non-blank byte is '>' are quoted, wherever they
 *    are (">From " escaped by mbox counts as text unless a neighbouring
 *    line is quoted).  Unquoted lines between quoted blocks are the
 *    customer's answers (interleaved reply, bottom posting) and stay new
 *    text; several such runs are joined with a blank line.
 * 2. An attribution line introduces quoted history.  It is a line (or two
 *    or three lines wrapped by the client) ending in ':' with the verb at
 *    its place: "... wrote:", "El ... escribió:", "Am ... schrieb <Name>:",
 *    "<Name> schrieb am ...:", "Le ... a écrit :", "Em ... escreveu:",
 *    "Op ... schreef <Name>:", "Il ... ha scritto:".  It is *strong* when it
 *    starts with the language's opener (On/El/Am/Le/Em/Op/Il) and holds a
 *    digit (the date), or holds an address ('@'); otherwise *weak*
 *    ("Bob wrote:").
 *    - Followed (after at most 3 blank lines) by '>' lines, the attribution
 *      belongs to that quote; text after the quote is still new text (1.).
 *    - A strong attribution not followed by '>' lines cuts: it and
 *      everything after it are quoted (top posting where the client did
 *      not prefix the history, e.g. Outlook or HTML converted without
 *      quote markup) — unless nothing new precedes it, see 4.
 *    - A weak one not followed by '>' lines is ordinary text, so "On
 *      Monday I wrote to you about ..." or "here is what I wrote:" never
 *      hide the customer's words.
 * 3. These always cut (the line and everything after it is quoted):
 *    separator lines "-----Original Message-----" (also Ursprüngliche
 *    Nachricht, Original-Nachricht, Mensaje original, Message d'origine,
 *    Mensagem original, Messaggio originale, Oorspronkelijk bericht) —
 *    marker "original-message";
 *    "---------- Forwarded message ---------" (Mensaje reenviado,
 *    Weitergeleitete Nachricht, Message transféré, Mensagem encaminhada,
 *    Messaggio inoltrato, Doorgestuurd bericht), Lotus "Forwarded by ...",
 *    and Apple's "Begin forwarded message:" (and its translations) —
 *    marker "forward";
 *    an Outlook header block: a "From:" line (De:, Von:, De :, Van:, Da:;
 *    "*From:*" too) followed, without a blank line, by at least two more
 *    header lines among the next eight (Sent/Date/To/Cc/Subject and
 *    Enviado el/Fecha/Para/Asunto, Gesendet/Datum/An/Betreff,
 *    Envoyé/Date/À/Objet, Enviada em/Data/Para/Assunto, ...), with the
 *    "________________________________" line before it when there is
 *    one — marker "outlook-header".
 * 4. A cut with no new text above it (the message starts with the quote)
 *    covers only its own block: the attribution lines, or the separator
 *    and the known header lines right after it.  The lines below are then
 *    classified as above, so bottom-posted answers ("----- Original
 *    Message -----", headers, '>' quote, answer) and the body of a
 *    forward without comment are new text rather than nothing.
 *
 * Signature, looked for at the end of the new text only:
 * - a "-- " line (at most 40 non-blank lines after it) or a bare "--"
 *   line (at most 15) starts it;
 * - above that (or at the end), a sign-off standing alone on its line —
 *   "Best regards", "Thanks", "Saludos", "Mit freundlichen Grüßen",
 *   "Cordialement", "Atenciosamente", ... optionally followed by ", Name"
 *   of at most three capitalised words — or a mobile footer ("Sent from
 *   my iPhone", "Enviado desde mi iPhone", "Von meinem iPhone gesendet",
 *   "Envoyé de mon iPhone", "Enviado do meu iPhone", "Get Outlook for
 *   iOS", ...) starts it when at most 5 non-blank lines follow, none
 *   longer than 100 bytes, none a sentence of 5+ words ending in . ! ?,
 *   and no "P.S." among them.  The topmost such line wins.
 * - "Thanks for the quick reply, but it still fails" is not a sign-off.
 * - When the signature would leave no new text, there is no signature.
 *
 * Limits: TR_QUOTE_MAX_ATTRIBUTION bytes for an attribution (joined
 * lines), TR_QUOTE_HEADER_LOOKAHEAD lines after "From:", the signature
 * tail sizes above.  Time is linear in the input; a 1 MB single line is
 * fine.
 */
#ifndef TR_QUOTE_H
#define TR_QUOTE_H

#include <stddef.h>

#include "core/pool.h"

#define TR_QUOTE_MAX_ATTRIBUTION 400
#define TR_QUOTE_HEADER_LOOKAHEAD 8

typedef struct {
	const char *new_text;  size_t new_len;    /* what the customer just wrote */
	const char *quoted;    size_t quoted_len; /* quoted history / forwarded content */
	const char *signature; size_t signature_len;
	/* What started the quote: "attribution", "original-message",
	 * "outlook-header", "forward", "quote-prefix"; NULL when nothing is
	 * quoted.  Static strings. */
	const char *marker;
} tr_quote_parts;

/* Split len bytes of text (UTF-8, LF newlines; CR before LF is tolerated;
 * text may be NULL when len is 0) into *out.
 *
 * new_text, quoted and signature are NUL-terminated strings allocated from
 * pool (never NULL, "" when empty), each without leading blank lines and
 * trailing whitespace.  quoted keeps the lines as they were (with their
 * '>' prefixes and attribution); separate quoted or new runs are joined
 * with one blank line. */
void tr_quote_split(tr_pool *pool, const char *text, size_t len, tr_quote_parts *out);

#endif

/*
 * smtp.h — outbound mail through a relay, with libESMTP (tr_smtp_*)
 *
 * The outbox worker hands over one prepared message (RFC 5322 bytes with
 * CRLF line ends, built elsewhere), an envelope sender and one or more
 * recipients.  tr_smtp_send() runs one SMTP session to the configured relay
 * and says, per recipient, what became of it:
 *
 *   SENT       the relay took responsibility (2xx to RCPT and to the end
 *              of the data)
 *   TEMPORARY  not delivered, and the relay cannot have accepted it: a 4xx
 *              reply, or the connection, STARTTLS, certificate check or
 *              AUTH failed, or the session broke before the last byte of
 *              the message was handed over.  Safe to try again later.
 *   PERMANENT  refused for good: a 5xx reply to MAIL, RCPT or the data, an
 *              address we refuse to put on the wire, a message over
 *              max_message_bytes.  Retrying will not help.
 *   AMBIGUOUS  the end of the data (the final "." or BDAT LAST) may have
 *              reached the relay but its reply never came (timeout,
 *              connection reset).  The relay may or may not deliver it:
 *              do not blindly send it again (see tr_smtp_retry_next()).
 *
 * A message with several recipients may be partly sent: look at every
 * recipient.  docs/smtp.md has the configuration, the TLS policy and what
 * the outbox does with each class.
 *
 * Threads: a tr_smtp_client is read-only after tr_smtp_client_new() and may
 * be used by any number of threads at once; each tr_smtp_send() runs its
 * own libESMTP session with its own SSL_CTX.  SIGPIPE is blocked in the
 * calling thread for the duration of a send (and any SIGPIPE raised by it
 * is consumed), so the process need not ignore SIGPIPE.  The calling thread
 * blocks for up to `timeout` per network step (`final_timeout` for the
 * reply to the end of the data, where giving up makes the delivery
 * AMBIGUOUS); connect() itself has no timeout in libESMTP (the kernel's
 * applies: immediate for a refused port, minutes for a silent host).
 *
 * libESMTP cannot check a certificate against an IP address; for an IP
 * literal host this module lets OpenSSL check the certificate's IP SAN
 * instead.  A DNS name is still the better choice for `host`.
 */
#ifndef TR_SMTP_H
#define TR_SMTP_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/pool.h"

/* ---- configuration: the [smtp] group ---- */

typedef enum {
	TR_SMTP_TLS_REQUIRED = 0,  /* STARTTLS or no delivery (default) */
	TR_SMTP_TLS_OPTIONAL,      /* STARTTLS when offered, plain text when not */
	TR_SMTP_TLS_NONE,          /* never STARTTLS: only for a relay on a trusted link */
} tr_smtp_tls;

typedef struct {
	int64_t port;              /* relay TCP port (25; 587 for submission) */
	int64_t timeout;           /* seconds per network step (reply wait, write) */
	int64_t final_timeout;     /* seconds to wait for the reply to the end of the data */
	int64_t max_message_bytes; /* larger messages fail PERMANENT without a connection */
	int64_t retry_base;        /* seconds: first TEMPORARY retry delay */
	int64_t retry_max;         /* seconds: cap of the exponential backoff */
	int64_t retry_give_up;     /* seconds since the first attempt: stop retrying TEMPORARY */
	int64_t ambiguous_delay;   /* seconds before the one resend of an AMBIGUOUS message */
	int64_t ambiguous_retries; /* resends after AMBIGUOUS (0 = never, a human decides) */
} tr_smtp_limits;

/* Named limits (name, default, min, max, unit, doc), STYLE.md rule 6. */
extern const tr_conftab tr_smtp_limits_table[];

typedef struct {
	char *host;                /* relay host name (or IP literal, not IPv6) */
	tr_smtp_tls tls;
	char *ca_file;             /* PEM CA bundle; NULL = the system store */
	bool verify;               /* check the relay's certificate (default yes) */
	char *auth_user;           /* NULL = no AUTH */
	char *auth_password;       /* from auth_password or auth_password_file */
	char *helo;                /* EHLO name; NULL = the system host name */
	tr_smtp_limits limits;
} tr_smtp_config;

/* Defaults: host localhost, tls required, verify yes, the limits table. */
void tr_smtp_config_default(tr_smtp_config *config);
/* Read [smtp] from conf (defaults for what is absent).  Every problem goes
 * to diag with file:line; returns false when there was an error.  Relative
 * paths (ca_file, auth_password_file) are relative to the config file.
 * config need not be initialised: it is overwritten, not freed (so never
 * call it on a struct tr_smtp_config_default() already filled).  Clear it
 * with tr_smtp_config_clear() either way. */
bool tr_smtp_config_load(tr_smtp_config *config, const tr_conf *conf, tr_diag *diag);
/* Free the strings (the password is wiped first) and zero the struct. */
void tr_smtp_config_clear(tr_smtp_config *config);
/* "key = value" lines of the effective configuration (password hidden). */
void tr_smtp_config_print(const tr_smtp_config *config, GString *out);
/* "required", "optional", "none". */
const char *tr_smtp_tls_name(tr_smtp_tls tls);

/* ---- the client ---- */

#define TR_SMTP_ERROR (tr_smtp_error_quark())
GQuark tr_smtp_error_quark(void);
typedef enum {
	TR_SMTP_ERROR_CONFIG,      /* tr_smtp_client_new(): unusable configuration */
	TR_SMTP_ERROR_TEMPORARY,   /* tr_smtp_send(): the overall status, see below */
	TR_SMTP_ERROR_PERMANENT,
	TR_SMTP_ERROR_AMBIGUOUS,
} tr_smtp_error_code;

typedef struct tr_smtp_client tr_smtp_client;

/* Copy config and load the CA store once (shared read-only by every
 * session).  NULL + TR_SMTP_ERROR_CONFIG naming host:port on error. */
tr_smtp_client *tr_smtp_client_new(const tr_smtp_config *config, GError **error);
void tr_smtp_client_free(tr_smtp_client **client);
/* "host:port" of the relay (owned by the client). */
const char *tr_smtp_client_relay(const tr_smtp_client *client);

/* ---- one delivery ---- */

typedef enum {
	TR_SMTP_SENT = 0,
	TR_SMTP_TEMPORARY,
	TR_SMTP_PERMANENT,
	TR_SMTP_AMBIGUOUS,
} tr_smtp_status;

/* How far the session got (for logs; classification is in the status). */
typedef enum {
	TR_SMTP_PHASE_NONE = 0,    /* nothing sent: bad input, or no connection */
	TR_SMTP_PHASE_CONNECTED,   /* greeting, EHLO, STARTTLS, AUTH */
	TR_SMTP_PHASE_ENVELOPE,    /* the relay answered MAIL FROM */
	TR_SMTP_PHASE_DATA,        /* message bytes were being handed over */
	TR_SMTP_PHASE_END_OF_DATA, /* all of it handed over: the end may have gone out */
	TR_SMTP_PHASE_REPLIED,     /* the relay answered the end of the data */
} tr_smtp_phase;

typedef struct {
	const char *address;       /* as given */
	tr_smtp_status status;
	int code;                  /* the SMTP reply that decided it, 0 when none */
	const char *enhanced;      /* "5.1.1", or "" */
	const char *reply;         /* that reply's text, or our own diagnosis */
} tr_smtp_rcpt_result;

typedef struct {
	/* The most urgent thing to do: AMBIGUOUS when any recipient is,
	 * else TEMPORARY when any is, else PERMANENT when any is, else SENT. */
	tr_smtp_status status;
	size_t n_recipients;
	tr_smtp_rcpt_result *recipients;   /* in the order given */
	size_t n_sent, n_temporary, n_permanent, n_ambiguous;
	tr_smtp_phase phase;
	const char *relay;         /* "host:port" */
	const char *summary;       /* one line naming the relay, for logs and GError */
	bool tls;                  /* STARTTLS succeeded */
	const char *tls_cipher;    /* "ECDHE-ECDSA-AES256-GCM-SHA384", or NULL */
	bool authenticated;
	const char *queue_reply;   /* the relay's reply to the data ("250 2.0.0 Ok: queued as …") or NULL */
	bool line_ends_fixed;      /* the message had bare CR or LF, sent as CRLF */
	int64_t elapsed_us;
	tr_pool *pool;             /* owns everything above, the struct included */
} tr_smtp_result;

void tr_smtp_result_free(tr_smtp_result **result);
const char *tr_smtp_status_name(tr_smtp_status status);   /* "sent", "temporary", … */
const char *tr_smtp_phase_name(tr_smtp_phase phase);

/*
 * Deliver data (len bytes, CRLF line ends: a missing final CRLF is added,
 * and a bare CR or LF is sent as CRLF — with libESMTP a bare LF before a
 * "." would otherwise escape dot-stuffing, the SMTP smuggling pattern)
 * from sender ("" = the null reverse path <>) to recipients (NULL-terminated,
 * at least one).  Returns true when every recipient is SENT.  Otherwise
 * false and, when error is not NULL, a TR_SMTP_ERROR whose code is the
 * overall status (TEMPORARY, PERMANENT, AMBIGUOUS) and whose message names
 * the relay host:port.  *result_r (when not NULL) always receives the
 * per-recipient detail; free it with tr_smtp_result_free().
 *
 * Addresses are refused (PERMANENT, never sent) unless they are printable
 * ASCII without spaces, '<', '>' or control characters, contain '@' and fit
 * in 254 bytes: they come from customers and go into SMTP commands.
 *
 * libESMTP edits the header block on the way: it drops Return-Path and
 * Original-Recipient, drops a repeated Date/From/To/Cc/Message-Id/…, and
 * adds Date, From and Message-Id when missing.  A message that has exactly
 * one of each passes byte for byte.
 */
bool tr_smtp_send(const tr_smtp_client *client, const char *sender, const char *const *recipients,
                  const char *data, size_t len, tr_smtp_result **result_r, GError **error);

/* ---- what to do next: a pure retry schedule ---- */

typedef struct {
	unsigned attempts;         /* deliveries tried so far, the one just finished included (>= 1) */
	unsigned ambiguous;        /* how many of them ended AMBIGUOUS */
	int64_t age;               /* seconds since the first attempt */
} tr_smtp_retry_state;

typedef struct {
	bool retry;                /* false: final, stop (sent, refused, expired, or a human decides) */
	int64_t delay;             /* seconds until the next attempt (when retry) */
	bool marked;               /* the next attempt may duplicate an earlier delivery: log it as such */
	const char *reason;        /* static text, for the outbox's event log */
} tr_smtp_retry_decision;

/*
 * After an attempt that ended with status:
 *   SENT, PERMANENT   no retry.
 *   TEMPORARY         exponential backoff retry_base * 2^(attempts-1), capped
 *                     at retry_max, with "equal jitter" (half fixed, half
 *                     random from random_value); no retry once age reaches
 *                     retry_give_up.
 *   AMBIGUOUS         up to ambiguous_retries resends, each ambiguous_delay
 *                     (+ up to 10 % jitter) later, marked; after that final.
 * Once any attempt was AMBIGUOUS, every later attempt is marked.
 * random_value is any uniformly random 32-bit number (g_random_int()).
 */
tr_smtp_retry_decision tr_smtp_retry_next(const tr_smtp_limits *limits, tr_smtp_status status,
                                          const tr_smtp_retry_state *state, uint32_t random_value);

#endif

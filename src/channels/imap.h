/*
 * imap.h — the IMAP session layer of the support-mailbox channel (tr_imap_*)
 *
 * One tr_imap is one account/folder as configured in an [imap NAME]
 * group.  It lives as long as the daemon thread that watches the folder
 * and carries the connection inside: tr_imap_connect() (again after any
 * network error), then search, fetch, mark, wait, ... on the selected
 * folder.  The daemon's loop looks like this:
 *
 *     s = tr_imap_new(&config);
 *     for (;;) {
 *         if (!tr_imap_is_connected(s) && !tr_imap_connect(s, known_uidvalidity, &box, &error))
 *             ...classify error, sleep tr_backoff_next(), continue...
 *         tr_imap_search(s, TR_IMAP_SEARCH_PENDING, 0, &uids, &error);
 *         for each uid: tr_imap_fetch() -> ingest -> commit -> tr_imap_mark()
 *                       (unparsable: tr_imap_quarantine())
 *         tr_imap_wait(s, seconds, &error);   -> NEW_MAIL / TIMEOUT / INTERRUPTED
 *     }
 *     tr_imap_free(&s);
 *
 * Security.  The Debian build of libetpan (GnuTLS) checks no certificate
 * at all.  This module verifies the server's chain itself with OpenSSL,
 * right after the TLS handshake (implicit TLS) or right after STARTTLS,
 * before a single IMAP command is sent on the encrypted stream and long
 * before LOGIN: the chain must lead to ca_file (or, without ca_file, to
 * the system's trust store) and the certificate must name tls_name
 * (default: host; DNS name or IP address).  STARTTLS is mandatory when
 * configured (a server that does not offer it is refused), and data the
 * server sent before the handshake completed is refused as an injection
 * attempt.  Plain-text IMAP needs allow_plain.  See docs/imap.md.
 *
 * Marking.  Fetching uses BODY.PEEK[], so nothing changes on the server
 * until tr_imap_mark(), which the daemon calls only after the ticket is
 * committed: the keyword ($Triaged), \Seen, and/or a MOVE, as configured.
 * Catch-up (TR_IMAP_SEARCH_PENDING) does not rely on \Seen: a message a
 * human has already read is still pending until it carries the keyword
 * (or has been moved away).
 *
 * Errors.  Expected failures return false/NULL and a GError in
 * TR_IMAP_ERROR whose message names the peer ("imap 127.0.0.1:993") and,
 * once selected, the folder.  tr_imap_error_class() maps a code to what
 * the caller should do.  After a network-class error the session is
 * disconnected (tr_imap_is_connected() is false) and every call fails
 * fast until the next tr_imap_connect().  Per-message errors leave the
 * session usable.
 *
 * Threads.  A tr_imap is used by one thread.  The only exception is
 * tr_imap_interrupt(), which any thread may call at any time while the
 * tr_imap exists (not from a signal handler: it takes a mutex).
 */
#ifndef TR_IMAP_H
#define TR_IMAP_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"

/* ---- configuration ------------------------------------------------------ */

typedef enum {
	TR_IMAP_SECURITY_IMPLICIT,   /* "imaps": TLS from the first byte (port 993) */
	TR_IMAP_SECURITY_STARTTLS,   /* "starttls": plain connect, STARTTLS required (143) */
	TR_IMAP_SECURITY_PLAIN,      /* "plain": no TLS at all; needs allow_plain (143) */
} tr_imap_security;

/* What tr_imap_mark() does to a message whose ticket is committed. */
enum {
	TR_IMAP_MARK_KEYWORD = 1 << 0,   /* add config.keyword ($Triaged) */
	TR_IMAP_MARK_SEEN = 1 << 1,      /* add \Seen */
	TR_IMAP_MARK_MOVE = 1 << 2,      /* MOVE to config.move_to */
};

/* Capabilities a server may announce and this module uses. */
enum {
	TR_IMAP_CAP_IDLE = 1 << 0,
	TR_IMAP_CAP_MOVE = 1 << 1,
	TR_IMAP_CAP_UIDPLUS = 1 << 2,
	TR_IMAP_CAP_STARTTLS = 1 << 3,
	TR_IMAP_CAP_LOGINDISABLED = 1 << 4,
};

/* Named integer settings of an [imap NAME] group (tr_imap_limits_table). */
typedef struct {
	int64_t port;            /* 0 = 993 for imaps, 143 otherwise */
	int64_t timeout;         /* seconds for connect and for each command's reply */
	int64_t poll_interval;   /* seconds between NOOP polls when IDLE is unavailable */
	int64_t idle_restart;    /* seconds after which an IDLE is re-issued (RFC 2177: < 29 min) */
	int64_t message_bytes;   /* larger messages are reported (TOO_BIG), never fetched */
} tr_imap_limits;

extern const tr_conftab tr_imap_limits_table[];

typedef struct {
	char *name;              /* NAME of [imap NAME]; "imap" when built in code */
	char *host;              /* server host name or address (required) */
	char *tls_name;          /* name the certificate must carry; NULL = host */
	tr_imap_security security;   /* default IMPLICIT */
	bool allow_plain;        /* security = plain is refused unless set */
	char *ca_file;           /* PEM trust anchors; NULL = the system store */
	bool verify;             /* default true; false accepts any certificate (logged) */
	char *user;
	char *password;          /* from password or password_file */
	char *folder;            /* default "INBOX" */
	unsigned mark;           /* TR_IMAP_MARK_*; default KEYWORD */
	char *move_to;           /* folder for TR_IMAP_MARK_MOVE, else NULL */
	char *keyword;           /* default "$Triaged" */
	char *quarantine;        /* default "Quarantine" */
	unsigned ignore_caps;    /* TR_IMAP_CAP_IDLE/MOVE/UIDPLUS to treat as absent */
	tr_imap_limits limits;
} tr_imap_config;

/* Defaults (see the field comments); strings are g_malloc'd copies. */
void tr_imap_config_init(tr_imap_config *config);
/* Free every string and zero the struct (it may be init'ed again). */
void tr_imap_config_clear(tr_imap_config *config);
/* Deep copy into dst (which is overwritten, not cleared). */
void tr_imap_config_copy(tr_imap_config *dst, const tr_imap_config *src);

/*
 * Read group ("imap support") of conf into config (initialised here, so
 * clear it afterwards even on failure).  Keys: host, port, security
 * (imaps | starttls | plain), allow_plain, tls_name, ca_file, verify,
 * user, password | password_file, folder, mark (keyword, seen, move:FOLDER,
 * comma-separated), keyword, quarantine, ignore_capabilities, and the
 * limits (timeout, poll_interval, idle_restart, message_bytes).  Every
 * problem is reported to diag with file:line.  Returns true when this
 * group added no error.
 */
bool tr_imap_config_load(tr_imap_config *config, const tr_conf *conf, const char *group,
                         tr_diag *diag);
/* Every [imap NAME] group of conf, in file order: a GPtrArray of
 * g_malloc'd tr_imap_config (its free function clears and frees them).
 * Groups with errors are reported and left out. */
GPtrArray *tr_imap_configs_load(const tr_conf *conf, tr_diag *diag);

/*
 * "keyword", "seen", "move:Done", "keyword,seen" ... into TR_IMAP_MARK_*
 * flags and the move folder (g_malloc'd, NULL without move).  On error
 * returns false and a message (g_malloc'd) in *error_r.  At least one
 * item is required; each may appear once.
 */
bool tr_imap_parse_mark(const char *text, unsigned *mark_r, char **move_to_r, char **error_r);
/* Is name usable as a folder: 1..255 bytes of printable ASCII (modified
 * UTF-7 for anything else), no '*' or '%', no leading/trailing '/'? */
bool tr_imap_folder_name_valid(const char *name, const char **why_r);
/* Is keyword a valid IMAP flag keyword (atom, no '\', 1..64 bytes)? */
bool tr_imap_keyword_valid(const char *keyword);

/* ---- errors ------------------------------------------------------------- */

#define TR_IMAP_ERROR (tr_imap_error_quark())
GQuark tr_imap_error_quark(void);

typedef enum {
	TR_IMAP_ERROR_NETWORK,      /* resolve/connect/read/write failed, timeout, TLS
	                               handshake failed, BYE, unparsable reply */
	TR_IMAP_ERROR_CERTIFICATE,  /* certificate not trusted or not for this host */
	TR_IMAP_ERROR_AUTH,         /* LOGIN refused */
	TR_IMAP_ERROR_CONFIG,       /* plain not allowed, STARTTLS not offered, keywords
	                               not storable, bad ca_file, ... */
	TR_IMAP_ERROR_MAILBOX,      /* SELECT or CREATE refused, folder read-only */
	TR_IMAP_ERROR_MESSAGE,      /* the server said NO/BAD to a command on one message */
	TR_IMAP_ERROR_GONE,         /* no message with that UID (expunged meanwhile) */
	TR_IMAP_ERROR_TOO_BIG,      /* message larger than limits.message_bytes */
	TR_IMAP_ERROR_UIDVALIDITY,  /* UIDVALIDITY differs from the one known */
} tr_imap_error_code;

typedef enum {
	TR_IMAP_CLASS_NONE,      /* no error / not an IMAP error */
	TR_IMAP_CLASS_NETWORK,   /* reconnect with tr_backoff_network */
	TR_IMAP_CLASS_SLOW,      /* log loudly, retry on tr_backoff_slow (auth, certificate,
	                            config, mailbox) */
	TR_IMAP_CLASS_MESSAGE,   /* skip or quarantine this one message, keep going */
	TR_IMAP_CLASS_RESYNC,    /* UIDVALIDITY changed: forget UID checkpoints, catch up */
} tr_imap_error_class;

tr_imap_error_class tr_imap_error_class_of(const GError *error);
const char *tr_imap_error_class_name(tr_imap_error_class error_class);

/* ---- session ------------------------------------------------------------ */

typedef struct tr_imap tr_imap;

/* What SELECT (and the capabilities) said. */
typedef struct {
	uint32_t uidvalidity;
	uint32_t uidnext;        /* 0 when the server did not say */
	uint32_t exists;         /* messages in the folder */
	unsigned caps;           /* TR_IMAP_CAP_* in effect (ignore_caps removed) */
	bool keywords_storable;  /* PERMANENTFLAGS allows config.keyword */
} tr_imap_mailbox;

/* A session for config (deep-copied).  Does not connect. */
tr_imap *tr_imap_new(const tr_imap_config *config);
/* Log out (when connected) and free; sets *session to NULL. */
void tr_imap_free(tr_imap **session);

/*
 * Connect, verify TLS, log in, read capabilities, SELECT the folder.
 * Disconnects first when connected.  known_uidvalidity is the value the
 * caller stored with its UID checkpoints (0 = none): when the server's
 * differs, returns false with TR_IMAP_ERROR_UIDVALIDITY BUT stays
 * connected and selected with *mailbox_r filled in; the new value is
 * adopted, so the caller resets its checkpoints and goes on.
 */
bool tr_imap_connect(tr_imap *session, uint32_t known_uidvalidity, tr_imap_mailbox *mailbox_r,
                     GError **error);
/* LOGOUT when possible, then close.  Safe when not connected. */
void tr_imap_disconnect(tr_imap *session);
bool tr_imap_is_connected(const tr_imap *session);
/* "host:port" of the peer (owned by the session). */
const char *tr_imap_peer(const tr_imap *session);
/* The selected folder's state as last seen (valid while connected). */
const tr_imap_mailbox *tr_imap_mailbox_info(const tr_imap *session);

typedef enum {
	TR_IMAP_SEARCH_ALL,      /* every message not flagged \Deleted */
	TR_IMAP_SEARCH_PENDING,  /* not yet triaged: without the keyword when mark has
	                            KEYWORD, else every message (moved ones are gone) */
	TR_IMAP_SEARCH_TRIAGED,  /* carries the keyword but is still here (e.g. a MOVE
	                            that failed after the keyword was set) */
} tr_imap_search_kind;

/* UIDs >= min_uid (0 or 1 = all) matching kind, ascending, in a GArray of
 * uint32_t (g_array_unref).  \Deleted messages are never returned. */
bool tr_imap_search(tr_imap *session, tr_imap_search_kind kind, uint32_t min_uid,
                    GArray **uids_r, GError **error);

enum {
	TR_IMAP_FLAG_SEEN = 1 << 0,
	TR_IMAP_FLAG_ANSWERED = 1 << 1,
	TR_IMAP_FLAG_FLAGGED = 1 << 2,
	TR_IMAP_FLAG_DELETED = 1 << 3,
	TR_IMAP_FLAG_DRAFT = 1 << 4,
	TR_IMAP_FLAG_TRIAGED = 1 << 5,   /* carries config.keyword */
};

typedef struct {
	uint32_t uid;
	size_t size;          /* RFC822.SIZE as announced */
	char *data;           /* the raw message, NUL-terminated (g_malloc'd) */
	size_t len;           /* bytes in data */
	unsigned flags;       /* TR_IMAP_FLAG_* when fetched (before any marking) */
	char **keywords;      /* every keyword, NULL-terminated (g_strfreev) */
} tr_imap_message;

/*
 * Fetch one message by UID with BODY.PEEK[] (\Seen is not set).  First
 * asks for its size and flags: a message over limits.message_bytes fails
 * with TR_IMAP_ERROR_TOO_BIG and is not downloaded (the partial fetch is
 * also capped, in case the size was wrong).  A UID that no longer exists
 * fails with TR_IMAP_ERROR_GONE.  *message_r is the caller's.
 */
bool tr_imap_fetch(tr_imap *session, uint32_t uid, tr_imap_message **message_r, GError **error);
void tr_imap_message_free(tr_imap_message **message);
/* Only the flags of uid (TR_IMAP_FLAG_*), e.g. to check a mark. */
bool tr_imap_fetch_flags(tr_imap *session, uint32_t uid, unsigned *flags_r, GError **error);

/* The configured mark (keyword first, then \Seen, then MOVE), after the
 * ticket is committed. */
bool tr_imap_mark(tr_imap *session, uint32_t uid, GError **error);
/* Add TR_IMAP_FLAG_SEEN, TR_IMAP_FLAG_TRIAGED (the keyword) and/or
 * TR_IMAP_FLAG_DELETED; other bits are ignored. */
bool tr_imap_add_flags(tr_imap *session, uint32_t uid, unsigned flags, GError **error);
/* Move uid to folder (created when missing): MOVE, or without MOVE
 * COPY + \Deleted + UID EXPUNGE (UIDPLUS); without UIDPLUS the original
 * stays flagged \Deleted (no plain EXPUNGE: it would remove other
 * clients' deleted mail too). */
bool tr_imap_move(tr_imap *session, uint32_t uid, const char *folder, GError **error);
/* Move to config.quarantine. */
bool tr_imap_quarantine(tr_imap *session, uint32_t uid, GError **error);
/* CREATE folder unless LIST shows it (cached per connection). */
bool tr_imap_ensure_folder(tr_imap *session, const char *folder, GError **error);

/* NOOP; *new_mail_r (may be NULL) tells whether the server reported new
 * messages (an EXISTS) in reply. */
bool tr_imap_noop(tr_imap *session, bool *new_mail_r, GError **error);

typedef enum {
	TR_IMAP_WAIT_ERROR,        /* *error is set (network class: reconnect) */
	TR_IMAP_WAIT_NEW_MAIL,     /* the folder grew (or changed since the last search) */
	TR_IMAP_WAIT_TIMEOUT,      /* seconds passed without news */
	TR_IMAP_WAIT_INTERRUPTED,  /* tr_imap_interrupt() was called */
} tr_imap_wait_result;

/*
 * Wait up to seconds for new mail: IDLE (re-issued every
 * limits.idle_restart), or without IDLE a NOOP every
 * limits.poll_interval.  Returns at once with NEW_MAIL when messages
 * arrived since the last tr_imap_search(), and with INTERRUPTED when an
 * interrupt is pending.  The session stays selected afterwards.
 */
tr_imap_wait_result tr_imap_wait(tr_imap *session, int seconds, GError **error);
/* Make the current or next tr_imap_wait() of session return INTERRUPTED
 * at once.  Thread-safe; one pending interrupt is consumed by one wait. */
void tr_imap_interrupt(tr_imap *session);

/* Protocol trace for debugging and tests: every chunk sent ('>') and
 * received ('<').  Private data (the LOGIN command) is never passed on:
 * fn receives "<private>" instead.  fn runs in the session's thread. */
typedef void tr_imap_trace_fn(char direction, const char *data, size_t len, void *context);
void tr_imap_set_trace(tr_imap *session, tr_imap_trace_fn *fn, void *context);

#endif

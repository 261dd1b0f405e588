/*
 * milter_driver.c — drive `triage milter` (or an MTA in front of it) at a
 * steady offered load and report per-message latency, throughput and the
 * milter's memory.
 *
 * usage: build/bench/milter_driver [options] inet:HOST:PORT
 *   --smtp        speak SMTP to an MTA (Postfix with or without
 *                 smtpd_milters) instead of the milter protocol
 *   -r RATE       offered load in messages/s, open loop (default 200)
 *   -n COUNT      messages at that rate (default 2000)
 *   -m COUNT      then COUNT messages closed loop: as fast as answers come
 *                 (the highest sustained rate); 0 = skip (default 0)
 *   -w COUNT      warm-up messages before measuring (default 200)
 *   -c CONNS      concurrent connections (default 8)
 *   -k N          messages per connection (default 1: a connection per
 *                 message, as an MTA with one message per SMTP session)
 *   -p PID        the milter's process: VmRSS and CPU time from /proc
 *   -i N          sample VmRSS every N messages (default COUNT/10)
 *   -t RCPT       recipient (default support@example.test)
 *   -f FROM       sender (default customer@bench.example)
 *   -L LABEL      name in the last line (default milter_direct / smtp)
 *   -d DIR        messages (default ../shared/corpus/mail/spamassassin-easy-ham)
 *
 * Open loop: message k is due at t0 + k/RATE whether or not earlier ones
 * were answered; its latency runs from that due time to the final reply
 * (the milter's answer to end-of-message, or the MTA's reply to the
 * message text).  A milter that stalls therefore shows its stall in every
 * message that waited behind it, instead of the driver quietly sending
 * less (coordinated omission).  CONNS connections share the schedule; a
 * message waits when all of them are busy, and that wait counts.
 *
 * The milter protocol is spoken from scratch (libmilter's wire format,
 * protocol version 6, as Postfix speaks it): OPTNEG, then per connection
 * CONNECT and HELO, per message MAIL, RCPT, DATA, HEADER…, EOH, BODY…,
 * the end-of-message macros and BODYEOB, then every modification up to
 * ACCEPT/CONTINUE/TEMPFAIL…, and QUIT.  Whatever the filter negotiates
 * away (steps, replies) is honoured.  Each message gets a fresh
 * Message-ID (a store would otherwise see duplicates).
 *
 * Last line:
 *   bench: LABEL rate=R n=N p50_us=… p90_us=… p99_us=… max_us=… achieved=… answered=… errors=…
 *          [max_rate=…] [rss_Xk_mb=… rss_Yk_mb=…] [cpu_us=…]
 */
#include <errno.h>
#include <inttypes.h>
#include <glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* libmilter's wire format (libmilter/mfdef.h), spelled out so the driver
 * does not depend on the library it is measuring. */
enum {
	SMFIC_ABORT = 'A', SMFIC_BODY = 'B', SMFIC_CONNECT = 'C', SMFIC_MACRO = 'D', SMFIC_BODYEOB = 'E',
	SMFIC_HELO = 'H', SMFIC_HEADER = 'L', SMFIC_MAIL = 'M', SMFIC_EOH = 'N', SMFIC_OPTNEG = 'O',
	SMFIC_QUIT = 'Q', SMFIC_RCPT = 'R', SMFIC_DATA = 'T',
};
enum {
	SMFIR_ADDRCPT = '+', SMFIR_DELRCPT = '-', SMFIR_ADDRCPT_PAR = '2', SMFIR_SHUTDOWN = '4', SMFIR_ACCEPT = 'a',
	SMFIR_REPLBODY = 'b', SMFIR_CONTINUE = 'c', SMFIR_DISCARD = 'd', SMFIR_CHGFROM = 'e', SMFIR_CONN_FAIL = 'f',
	SMFIR_ADDHEADER = 'h', SMFIR_INSHEADER = 'i', SMFIR_CHGHEADER = 'm', SMFIR_PROGRESS = 'p',
	SMFIR_QUARANTINE = 'q', SMFIR_REJECT = 'r', SMFIR_SKIP = 's', SMFIR_TEMPFAIL = 't', SMFIR_REPLYCODE = 'y',
};
#define SMFI_PROT_VERSION 6u
#define SMFI_CURR_ACTS 0x1FFu
#define SMFIP_NOCONNECT 0x1u
#define SMFIP_NOHELO 0x2u
#define SMFIP_NOMAIL 0x4u
#define SMFIP_NORCPT 0x8u
#define SMFIP_NOBODY 0x10u
#define SMFIP_NOHDRS 0x20u
#define SMFIP_NOEOH 0x40u
#define SMFIP_NR_HDR 0x80u
#define SMFIP_NOUNKNOWN 0x100u
#define SMFIP_NODATA 0x200u
#define SMFIP_SKIP 0x400u
#define SMFIP_RCPT_REJ 0x800u
#define SMFIP_NR_CONN 0x1000u
#define SMFIP_NR_HELO 0x2000u
#define SMFIP_NR_MAIL 0x4000u
#define SMFIP_NR_RCPT 0x8000u
#define SMFIP_NR_DATA 0x10000u
#define SMFIP_NR_UNKN 0x20000u
#define SMFIP_NR_EOH 0x40000u
#define SMFIP_NR_BODY 0x80000u
#define SMFIP_HDR_LEADSPC 0x100000u
#define SMFI_CURR_PROT 0x1FFFFFu
#define MILTER_CHUNK_SIZE 65535u
#define REPLY_MAX (1024u * 1024u)   /* a longer milter reply is a protocol error */
#define IO_TIMEOUT_S 30

typedef struct {
	char *name;
	char *value;   /* no leading space; folded lines joined with "\n" (as Postfix sends them) */
} header;

typedef struct {
	header *headers;
	size_t n_headers;
	char *body;    /* CRLF line ends */
	size_t body_len;
	char *smtp;    /* headers, blank line and body: CRLF, dot-stuffed, without the final "." */
	size_t smtp_len;
} message;

typedef enum {
	OUT_CONTINUE,   /* answered at end of message: continue (with or without changes) */
	OUT_ACCEPT,     /* answered: accept */
	OUT_TEMPFAIL,   /* answered 4xx */
	OUT_REJECT,     /* answered 5xx / discard (the filter never should) */
	OUT_ERROR,      /* no answer: connection or protocol failure */
} outcome;

typedef struct {
	int fd;
	unsigned used;       /* messages sent on this connection */
	uint32_t proto;      /* what the filter negotiated (SMFIP_*) */
	GString *out;        /* commands not yet written */
	char in[16384];      /* read buffer */
	size_t in_pos, in_len;
	char *reply;         /* last milter reply's data */
	size_t reply_cap;
} conn;

typedef struct {
	/* settings */
	bool smtp;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	const char *from, *rcpt;
	unsigned per_conn;
	pid_t pid;
	/* the corpus */
	message *msgs;
	size_t n_msgs;
	/* the phase being run */
	double rate;            /* 0: closed loop */
	uint64_t count;
	uint64_t seq_base;      /* Message-ID / queue id numbering across phases */
	int64_t t0;
	atomic_uint_fast64_t next, done;
	uint32_t *latency_us;   /* from the due time */
	uint32_t *service_us;   /* from the first byte sent */
	uint32_t *lag_us;       /* start of sending - due time */
	uint8_t *outcomes;
	atomic_uint triaged;    /* X-Triage-Priority added (milter protocol only) */
	uint64_t rss_interval;
	double *rss_mb;         /* [count / rss_interval + 1]; [0] before the first message */
} run;

typedef struct {
	run *r;
	conn c;
} worker;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t when_ns)
{
	struct timespec ts = { .tv_sec = when_ns / 1000000000, .tv_nsec = when_ns % 1000000000 };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("milter_driver: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* ---- the corpus ---- */

/* Append text with every line end made CRLF; dot_stuff doubles a leading ".". */
static void append_crlf(GString *out, const char *text, size_t len, bool dot_stuff)
{
	bool line_start = true;
	for (size_t i = 0; i < len; i++) {
		char ch = text[i];
		if (dot_stuff && line_start && ch == '.')
			g_string_append_c(out, '.');
		line_start = false;
		if (ch == '\r' && i + 1 < len && text[i + 1] == '\n')
			continue;   /* the \n that follows writes CRLF */
		if (ch == '\n') {
			g_string_append(out, "\r\n");
			line_start = true;
		} else {
			g_string_append_c(out, ch);
		}
	}
	if (!line_start)
		g_string_append(out, "\r\n");
}

/* A file as an MTA would pass it on: the mbox "From " line dropped, the
 * header block split into fields (unfolded into name and LF-folded value),
 * the Message-ID dropped (each send gets its own). */
static bool load_message(const char *data, size_t len, message *m)
{
	const char *p = data, *end = data + len;
	if (len > 5 && memcmp(p, "From ", 5) == 0) {
		const char *nl = memchr(p, '\n', len);
		if (nl == NULL)
			return false;
		p = nl + 1;
	}
	GArray *headers = g_array_new(FALSE, FALSE, sizeof(header));
	while (p < end && *p != '\n' && !(*p == '\r' && p + 1 < end && p[1] == '\n')) {
		const char *line_end = memchr(p, '\n', (size_t)(end - p));
		const char *field_end = line_end != NULL ? line_end : end;
		while (field_end < end && field_end + 1 < end && (field_end[1] == ' ' || field_end[1] == '\t')) {
			const char *next = memchr(field_end + 1, '\n', (size_t)(end - field_end - 1));
			field_end = next != NULL ? next : end;
		}
		const char *colon = memchr(p, ':', (size_t)(field_end - p));
		if (colon != NULL && colon > p) {
			header h;
			h.name = g_strndup(p, (size_t)(colon - p));
			g_strstrip(h.name);
			const char *v = colon + 1;
			while (v < field_end && (*v == ' ' || *v == '\t'))
				v++;
			GString *value = g_string_new(NULL);
			for (const char *q = v; q < field_end; q++)
				if (*q != '\r')
					g_string_append_c(value, *q);
			h.value = g_string_free(value, FALSE);
			if (*h.name == '\0' || g_ascii_strcasecmp(h.name, "Message-ID") == 0) {
				g_free(h.name);
				g_free(h.value);
			} else {
				g_array_append_val(headers, h);
			}
		}
		p = field_end < end ? field_end + 1 : end;
	}
	if (p < end && *p == '\r')
		p++;
	if (p < end && *p == '\n')
		p++;
	if (headers->len == 0) {
		g_array_free(headers, TRUE);
		return false;
	}
	m->n_headers = headers->len;
	m->headers = (header *)(void *)g_array_free(headers, FALSE);

	GString *body = g_string_new(NULL);
	append_crlf(body, p, (size_t)(end - p), false);
	m->body_len = body->len;
	m->body = g_string_free(body, FALSE);

	GString *smtp = g_string_new(NULL);
	for (size_t i = 0; i < m->n_headers; i++) {
		GString *line = g_string_new(m->headers[i].name);
		g_string_append(line, ": ");
		g_string_append(line, m->headers[i].value);
		append_crlf(smtp, line->str, line->len, true);
		g_string_free(line, TRUE);
	}
	g_string_append(smtp, "\r\n");
	append_crlf(smtp, m->body, m->body_len, true);
	m->smtp_len = smtp->len;
	m->smtp = g_string_free(smtp, FALSE);
	return true;
}

/* g_ptr_array_sort hands pointers to the elements. */
static int compare_paths(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static message *load_corpus(const char *dir, size_t *n_r, size_t *bytes_r)
{
	GDir *dh = g_dir_open(dir, 0, NULL);
	if (dh == NULL)
		die("cannot open %s", dir);
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	const char *name;
	while ((name = g_dir_read_name(dh)) != NULL)
		if (g_str_has_suffix(name, ".eml"))
			g_ptr_array_add(names, g_build_filename(dir, name, NULL));
	g_dir_close(dh);
	g_ptr_array_sort(names, compare_paths);
	GArray *msgs = g_array_new(FALSE, TRUE, sizeof(message));
	size_t bytes = 0;
	for (guint i = 0; i < names->len; i++) {
		char *data;
		gsize len;
		message m;
		memset(&m, 0, sizeof(m));
		if (g_file_get_contents(g_ptr_array_index(names, i), &data, &len, NULL)) {
			if (load_message(data, len, &m)) {
				bytes += len;
				g_array_append_val(msgs, m);
			}
			g_free(data);
		}
	}
	g_ptr_array_unref(names);
	if (msgs->len == 0)
		die("no messages (*.eml) in %s", dir);
	*n_r = msgs->len;
	*bytes_r = bytes;
	return (message *)(void *)g_array_free(msgs, FALSE);
}

/* ---- /proc ---- */

static double rss_mb(pid_t pid)
{
	if (pid <= 0)
		return 0;
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	double mb = -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long kb;
		if (sscanf(line, "VmRSS: %lu kB", &kb) == 1) {
			mb = (double)kb / 1024.0;
			break;
		}
	}
	fclose(f);
	return mb;
}

/* utime + stime of the process, in seconds. */
static double cpu_seconds(pid_t pid)
{
	if (pid <= 0)
		return 0;
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');   /* comm may hold spaces */
	if (p == NULL)
		return -1;
	unsigned long utime = 0, stime = 0;
	/* after ")": state(3) ppid … utime is field 14, stime 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- connections ---- */

static void conn_init(conn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->out = g_string_sized_new(MILTER_CHUNK_SIZE + 64);
}

static void conn_close(conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->used = 0;
	c->in_pos = c->in_len = 0;
	g_string_truncate(c->out, 0);
}

static void conn_clear(conn *c)
{
	conn_close(c);
	g_string_free(c->out, TRUE);
	g_free(c->reply);
}

static bool conn_open(conn *c, const run *r)
{
	c->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return false;
	int one = 1;
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (const struct sockaddr *)&r->addr, r->addr_len) < 0) {
		conn_close(c);
		return false;
	}
	return true;
}

static bool write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		data += n;
		len -= (size_t)n;
	}
	return true;
}

static bool conn_flush(conn *c)
{
	bool ok = write_all(c->fd, c->out->str, c->out->len);
	g_string_truncate(c->out, 0);
	return ok;
}

static bool read_exact(conn *c, void *dst, size_t len)
{
	char *d = dst;
	while (len > 0) {
		if (c->in_pos == c->in_len) {
			ssize_t n = read(c->fd, c->in, sizeof(c->in));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return false;
			c->in_pos = 0;
			c->in_len = (size_t)n;
		}
		size_t take = MIN(len, c->in_len - c->in_pos);
		memcpy(d, c->in + c->in_pos, take);
		c->in_pos += take;
		d += take;
		len -= take;
	}
	return true;
}

/* ---- the milter protocol ---- */

static void put_u32(GString *out, uint32_t v)
{
	char b[4] = { (char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v };
	g_string_append_len(out, b, 4);
}

/* One command: length (command byte included), command, data. */
static void put_cmd(conn *c, char cmd, const void *data, size_t len)
{
	put_u32(c->out, (uint32_t)len + 1);
	g_string_append_c(c->out, cmd);
	if (len > 0)
		g_string_append_len(c->out, data, (gssize)len);
}

/* SMFIC_MACRO: the command the macros are for, then name/value pairs. */
static void put_macros(conn *c, char for_cmd, const char *const *pairs, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(pairs[i]) + 1;
	put_u32(c->out, (uint32_t)len + 1);
	g_string_append_c(c->out, SMFIC_MACRO);
	g_string_append_c(c->out, for_cmd);
	for (size_t i = 0; i < n; i++)
		g_string_append_len(c->out, pairs[i], (gssize)strlen(pairs[i]) + 1);
}

/* A command whose data is NUL-terminated strings. */
static void put_strings(conn *c, char cmd, const char *const *strings, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(strings[i]) + 1;
	put_u32(c->out, (uint32_t)len + 1);
	g_string_append_c(c->out, cmd);
	for (size_t i = 0; i < n; i++)
		g_string_append_len(c->out, strings[i], (gssize)strlen(strings[i]) + 1);
}

/* Read one reply: its command in *cmd_r, its data in c->reply (*len_r). */
static bool read_reply(conn *c, char *cmd_r, size_t *len_r)
{
	unsigned char b[4];
	if (!read_exact(c, b, 4))
		return false;
	uint32_t len = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	if (len == 0 || len > REPLY_MAX)
		return false;
	if (!read_exact(c, cmd_r, 1))
		return false;
	len--;
	if (len + 1 > c->reply_cap) {
		c->reply_cap = len + 1;
		c->reply = g_realloc(c->reply, c->reply_cap);
	}
	if (!read_exact(c, c->reply, len))
		return false;
	c->reply[len] = '\0';
	*len_r = len;
	return true;
}

/* Send what is buffered and, when the filter answers this step, read the
 * answer (progress notes skipped).  *code_r: the reply command, 'c' when
 * none is expected; false on a broken connection. */
static bool milter_step(conn *c, bool reply_expected, char *code_r)
{
	*code_r = SMFIR_CONTINUE;
	if (!reply_expected)
		return true;
	if (!conn_flush(c))
		return false;
	size_t len;
	do {
		if (!read_reply(c, code_r, &len))
			return false;
	} while (*code_r == SMFIR_PROGRESS);
	return true;
}

static bool milter_connect(conn *c, const run *r)
{
	if (!conn_open(c, r))
		return false;
	char neg[12];
	uint32_t v[3] = { SMFI_PROT_VERSION, SMFI_CURR_ACTS, SMFI_CURR_PROT };
	for (int i = 0; i < 3; i++) {
		neg[i * 4] = (char)(v[i] >> 24);
		neg[i * 4 + 1] = (char)(v[i] >> 16);
		neg[i * 4 + 2] = (char)(v[i] >> 8);
		neg[i * 4 + 3] = (char)v[i];
	}
	put_cmd(c, SMFIC_OPTNEG, neg, sizeof(neg));
	char code;
	size_t len;
	if (!conn_flush(c) || !read_reply(c, &code, &len) || code != SMFIC_OPTNEG || len < 12)
		goto fail;
	const unsigned char *p = (const unsigned char *)c->reply;
	c->proto = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];

	/* Postfix's default milter_connect_macros, then the client. */
	static const char *const connect_macros[] = { "j", "mx.example.test", "{daemon_name}", "mx",
		                                          "v", "milter_driver" };
	put_macros(c, SMFIC_CONNECT, connect_macros, G_N_ELEMENTS(connect_macros));
	if (!(c->proto & SMFIP_NOCONNECT)) {
		GString *d = g_string_new("client.bench.example");
		g_string_append_c(d, '\0');
		g_string_append_c(d, '4');
		g_string_append_c(d, (char)(40000 >> 8));
		g_string_append_c(d, (char)(40000 & 0xff));
		g_string_append(d, "192.0.2.25");
		g_string_append_c(d, '\0');
		put_cmd(c, SMFIC_CONNECT, d->str, d->len);
		g_string_free(d, TRUE);
		if (!milter_step(c, !(c->proto & SMFIP_NR_CONN), &code) || code != SMFIR_CONTINUE)
			goto fail;
	}
	if (!(c->proto & SMFIP_NOHELO)) {
		const char *helo[] = { "client.bench.example" };
		put_strings(c, SMFIC_HELO, helo, 1);
		if (!milter_step(c, !(c->proto & SMFIP_NR_HELO), &code) || code != SMFIR_CONTINUE)
			goto fail;
	}
	return true;
fail:
	conn_close(c);
	return false;
}

/* The outcome of a final reply (its data, for SMFIR_REPLYCODE, in c->reply). */
static outcome outcome_of(const conn *c, char code)
{
	switch (code) {
	case SMFIR_CONTINUE:
		return OUT_CONTINUE;
	case SMFIR_ACCEPT:
		return OUT_ACCEPT;
	case SMFIR_TEMPFAIL:
		return OUT_TEMPFAIL;
	case SMFIR_REPLYCODE:   /* "4xx …" or "5xx …" */
		return c->reply != NULL && c->reply[0] == '4' ? OUT_TEMPFAIL : OUT_REJECT;
	default:
		return OUT_REJECT;
	}
}

/* One message over the milter protocol.  *triaged_r: the filter added
 * X-Triage-Priority. */
static outcome milter_message(conn *c, const run *r, const message *m, uint64_t seq, bool *triaged_r)
{
	*triaged_r = false;
	if (c->fd < 0 && !milter_connect(c, r))
		return OUT_ERROR;
	char code = SMFIR_CONTINUE;
	char buf[128];
	c->used++;

	snprintf(buf, sizeof(buf), "<%s>", r->from);
	const char *mail[] = { buf };
	if (!(c->proto & SMFIP_NOMAIL)) {
		put_strings(c, SMFIC_MAIL, mail, 1);
		if (!milter_step(c, !(c->proto & SMFIP_NR_MAIL), &code))
			goto broken;
		if (code != SMFIR_CONTINUE)
			goto early;
	}
	snprintf(buf, sizeof(buf), "<%s>", r->rcpt);
	const char *rcpt[] = { buf };
	if (!(c->proto & SMFIP_NORCPT)) {
		put_strings(c, SMFIC_RCPT, rcpt, 1);
		if (!milter_step(c, !(c->proto & SMFIP_NR_RCPT), &code))
			goto broken;
		if (code != SMFIR_CONTINUE)
			goto early;
	}
	if (!(c->proto & SMFIP_NODATA)) {
		put_cmd(c, SMFIC_DATA, NULL, 0);
		if (!milter_step(c, !(c->proto & SMFIP_NR_DATA), &code))
			goto broken;
		if (code != SMFIR_CONTINUE)
			goto early;
	}
	if (!(c->proto & SMFIP_NOHDRS)) {
		const char *lead = (c->proto & SMFIP_HDR_LEADSPC) ? " " : "";
		char msgid[96];
		snprintf(msgid, sizeof(msgid), "%s<%" PRIu64 ".%d@milter-driver.bench.example>", lead, seq, (int)getpid());
		const char *id[] = { "Message-ID", msgid };
		put_strings(c, SMFIC_HEADER, id, 2);
		if (!milter_step(c, !(c->proto & SMFIP_NR_HDR), &code))
			goto broken;
		if (code != SMFIR_CONTINUE)
			goto early;
		for (size_t i = 0; i < m->n_headers; i++) {
			const header *h = &m->headers[i];
			size_t nl = strlen(h->name), vl = strlen(h->value);
			put_u32(c->out, (uint32_t)(nl + 1 + strlen(lead) + vl + 1 + 1));
			g_string_append_c(c->out, SMFIC_HEADER);
			g_string_append_len(c->out, h->name, (gssize)nl + 1);
			g_string_append(c->out, lead);
			g_string_append_len(c->out, h->value, (gssize)vl + 1);
			if (!milter_step(c, !(c->proto & SMFIP_NR_HDR), &code))
				goto broken;
			if (code != SMFIR_CONTINUE)
				goto early;
		}
	}
	if (!(c->proto & SMFIP_NOEOH)) {
		put_cmd(c, SMFIC_EOH, NULL, 0);
		if (!milter_step(c, !(c->proto & SMFIP_NR_EOH), &code))
			goto broken;
		if (code != SMFIR_CONTINUE)
			goto early;
	}
	if (!(c->proto & SMFIP_NOBODY)) {
		for (size_t off = 0; off < m->body_len; off += MILTER_CHUNK_SIZE) {
			put_cmd(c, SMFIC_BODY, m->body + off, MIN(MILTER_CHUNK_SIZE, m->body_len - off));
			if (!milter_step(c, !(c->proto & SMFIP_NR_BODY), &code))
				goto broken;
			if (code == SMFIR_SKIP)
				break;
			if (code != SMFIR_CONTINUE)
				goto early;
		}
	}
	/* Postfix's milter_end_of_data_macros: the queue id. */
	snprintf(buf, sizeof(buf), "B%08" PRIX64, seq);
	const char *eom_macros[] = { "i", buf };
	put_macros(c, SMFIC_BODYEOB, eom_macros, 2);
	put_cmd(c, SMFIC_BODYEOB, NULL, 0);
	if (!conn_flush(c))
		goto broken;
	for (;;) {
		size_t len;
		if (!read_reply(c, &code, &len))
			goto broken;
		switch (code) {
		case SMFIR_ADDHEADER:
		case SMFIR_INSHEADER:
			/* 'i' carries an index first */
			if (len > 4 && strcmp(c->reply + (code == SMFIR_INSHEADER ? 4 : 0), "X-Triage-Priority") == 0)
				*triaged_r = true;
			continue;
		case SMFIR_CHGHEADER:
		case SMFIR_ADDRCPT:
		case SMFIR_ADDRCPT_PAR:
		case SMFIR_DELRCPT:
		case SMFIR_REPLBODY:
		case SMFIR_CHGFROM:
		case SMFIR_QUARANTINE:
		case SMFIR_PROGRESS:
			continue;
		default:
			return outcome_of(c, code);
		}
	}
early:
	/* The filter decided before the end (accept after the headers: not
	 * ours).  An MTA skips the rest and, for the next message on this
	 * connection, starts over. */
	put_cmd(c, SMFIC_ABORT, NULL, 0);
	return outcome_of(c, code);
broken:
	conn_close(c);
	return OUT_ERROR;
}

static void milter_quit(conn *c)
{
	if (c->fd < 0)
		return;
	put_cmd(c, SMFIC_QUIT, NULL, 0);
	conn_flush(c);
	conn_close(c);
}

/* ---- SMTP (the MTA in front of the milter) ---- */

/* One reply (multi-line ones whole); its code, or -1. */
static int smtp_reply(conn *c)
{
	char line[1024];
	for (;;) {
		size_t n = 0;
		for (;;) {
			char ch;
			if (!read_exact(c, &ch, 1))
				return -1;
			if (ch == '\n')
				break;
			if (n < sizeof(line) - 1)
				line[n++] = ch;
		}
		line[n] = '\0';
		if (n < 4)
			return -1;
		if (line[3] != '-')
			return atoi(line);
	}
}

static bool smtp_command(conn *c, const char *text, int want_class)
{
	g_string_append(c->out, text);
	if (!conn_flush(c))
		return false;
	int code = smtp_reply(c);
	return code / 100 == want_class;
}

static outcome smtp_message(conn *c, const run *r, const message *m, uint64_t seq)
{
	char buf[256];
	if (c->fd < 0) {
		if (!conn_open(c, r))
			return OUT_ERROR;
		if (smtp_reply(c) / 100 != 2 || !smtp_command(c, "EHLO client.bench.example\r\n", 2))
			goto broken;
	}
	c->used++;
	snprintf(buf, sizeof(buf), "MAIL FROM:<%s>\r\n", r->from);
	if (!smtp_command(c, buf, 2))
		goto broken;
	snprintf(buf, sizeof(buf), "RCPT TO:<%s>\r\n", r->rcpt);
	if (!smtp_command(c, buf, 2) || !smtp_command(c, "DATA\r\n", 3))
		goto broken;
	snprintf(buf, sizeof(buf), "Message-ID: <%" PRIu64 ".%d@milter-driver.bench.example>\r\n", seq, (int)getpid());
	struct iovec iov[3] = {
		{ buf, strlen(buf) },
		{ m->smtp, m->smtp_len },
		{ (char *)".\r\n", 3 },
	};
	size_t total = iov[0].iov_len + iov[1].iov_len + iov[2].iov_len;
	ssize_t n = writev(c->fd, iov, 3);
	if (n < 0)
		goto broken;
	if ((size_t)n < total) {   /* finish by hand */
		size_t skip = (size_t)n;
		for (int i = 0; i < 3; i++) {
			if (skip >= iov[i].iov_len) {
				skip -= iov[i].iov_len;
				continue;
			}
			if (!write_all(c->fd, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip))
				goto broken;
			skip = 0;
		}
	}
	int code = smtp_reply(c);
	if (code < 0)
		goto broken;
	return code / 100 == 2 ? OUT_CONTINUE : code / 100 == 4 ? OUT_TEMPFAIL : OUT_REJECT;
broken:
	conn_close(c);
	return OUT_ERROR;
}

static void smtp_quit(conn *c)
{
	if (c->fd < 0)
		return;
	g_string_append(c->out, "QUIT\r\n");
	if (conn_flush(c))
		smtp_reply(c);
	conn_close(c);
}

/* ---- the load ---- */

static void *worker_main(void *arg)
{
	worker *w = arg;
	run *r = w->r;
	int64_t interval_ns = r->rate > 0 ? (int64_t)(1e9 / r->rate) : 0;
	for (;;) {
		uint64_t k = atomic_fetch_add(&r->next, 1);
		if (k >= r->count)
			break;
		int64_t due = r->t0 + (int64_t)k * interval_ns;
		if (r->rate > 0)
			sleep_until(due);
		int64_t start = now_ns();
		if (r->rate <= 0)
			due = start;
		const message *m = &r->msgs[(r->seq_base + k) % r->n_msgs];
		bool triaged = false;
		outcome o = r->smtp ? smtp_message(&w->c, r, m, r->seq_base + k)
		                    : milter_message(&w->c, r, m, r->seq_base + k, &triaged);
		int64_t end = now_ns();
		r->latency_us[k] = (uint32_t)MIN((end - due) / 1000, (int64_t)UINT32_MAX);
		r->service_us[k] = (uint32_t)MIN((end - start) / 1000, (int64_t)UINT32_MAX);
		r->lag_us[k] = (uint32_t)MIN((start - due) / 1000, (int64_t)UINT32_MAX);
		r->outcomes[k] = (uint8_t)o;
		if (triaged)
			atomic_fetch_add(&r->triaged, 1);
		if (w->c.fd >= 0 && w->c.used >= r->per_conn) {
			if (r->smtp)
				smtp_quit(&w->c);
			else
				milter_quit(&w->c);
		}
		uint64_t done = atomic_fetch_add(&r->done, 1) + 1;
		if (r->rss_mb != NULL && r->rss_interval > 0 && done % r->rss_interval == 0)
			r->rss_mb[done / r->rss_interval] = rss_mb(r->pid);
	}
	if (r->smtp)
		smtp_quit(&w->c);
	else
		milter_quit(&w->c);
	return NULL;
}

typedef struct {
	uint64_t n, answered, errors, tempfail, reject, accept_early;
	unsigned triaged;
	double seconds, achieved;
	uint32_t p50, p90, p99, p999, max;    /* latency from the due time */
	uint32_t svc_p50, svc_p99, lag_p99;
	double cpu_seconds;                   /* the milter's */
	double driver_cpu_seconds;            /* this program's own, for comparison */
} phase_result;

static double own_cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static uint32_t percentile(const uint32_t *sorted, uint64_t n, double q)
{
	if (n == 0)
		return 0;
	uint64_t i = (uint64_t)(q * (double)n);
	return sorted[MIN(i, n - 1)];
}

static phase_result run_phase(run *r, double rate, uint64_t count, unsigned conns, uint64_t rss_interval)
{
	r->rate = rate;
	r->count = count;
	atomic_store(&r->next, 0);
	atomic_store(&r->done, 0);
	atomic_store(&r->triaged, 0);
	r->latency_us = g_new0(uint32_t, count);
	r->service_us = g_new0(uint32_t, count);
	r->lag_us = g_new0(uint32_t, count);
	r->outcomes = g_new0(uint8_t, count);
	r->rss_interval = rss_interval;
	r->rss_mb = NULL;
	if (rss_interval > 0) {
		r->rss_mb = g_new0(double, count / rss_interval + 1);
		r->rss_mb[0] = rss_mb(r->pid);
	}
	double cpu0 = cpu_seconds(r->pid), own0 = own_cpu_seconds();
	worker *workers = g_new0(worker, conns);
	pthread_t *threads = g_new0(pthread_t, conns);
	r->t0 = now_ns() + 20 * 1000000;   /* every thread is up before the first due time */
	for (unsigned i = 0; i < conns; i++) {
		workers[i].r = r;
		conn_init(&workers[i].c);
		if (pthread_create(&threads[i], NULL, worker_main, &workers[i]) != 0)
			die("pthread_create failed");
	}
	for (unsigned i = 0; i < conns; i++) {
		pthread_join(threads[i], NULL);
		conn_clear(&workers[i].c);
	}
	int64_t t1 = now_ns();
	phase_result res;
	memset(&res, 0, sizeof(res));
	res.cpu_seconds = r->pid > 0 ? cpu_seconds(r->pid) - cpu0 : 0;
	res.driver_cpu_seconds = own_cpu_seconds() - own0;
	res.n = count;
	res.seconds = (double)(t1 - r->t0) / 1e9;
	for (uint64_t k = 0; k < count; k++) {
		switch ((outcome)r->outcomes[k]) {
		case OUT_CONTINUE:
			res.answered++;
			break;
		case OUT_ACCEPT:
			res.answered++;
			res.accept_early++;
			break;
		case OUT_TEMPFAIL:
			res.answered++;
			res.tempfail++;
			break;
		case OUT_REJECT:
			res.answered++;
			res.reject++;
			break;
		case OUT_ERROR:
			res.errors++;
			break;
		}
	}
	res.triaged = atomic_load(&r->triaged);
	res.achieved = (double)count / res.seconds;
	qsort(r->latency_us, count, sizeof(uint32_t), compare_u32);
	qsort(r->service_us, count, sizeof(uint32_t), compare_u32);
	qsort(r->lag_us, count, sizeof(uint32_t), compare_u32);
	res.p50 = percentile(r->latency_us, count, 0.50);
	res.p90 = percentile(r->latency_us, count, 0.90);
	res.p99 = percentile(r->latency_us, count, 0.99);
	res.p999 = percentile(r->latency_us, count, 0.999);
	res.max = count > 0 ? r->latency_us[count - 1] : 0;
	res.svc_p50 = percentile(r->service_us, count, 0.50);
	res.svc_p99 = percentile(r->service_us, count, 0.99);
	res.lag_p99 = percentile(r->lag_us, count, 0.99);
	g_free(r->latency_us);
	g_free(r->service_us);
	g_free(r->lag_us);
	g_free(r->outcomes);
	g_free(workers);
	g_free(threads);
	r->seq_base += count;
	return res;
}

static void print_phase(const char *name, const phase_result *p)
{
	printf("bench: %s: n=%" PRIu64 " in %.1f s = %.1f msg/s; answered=%" PRIu64 " (early accept %" PRIu64
	       ", tempfail %" PRIu64 ", reject %" PRIu64 ") triaged=%u errors=%" PRIu64 "\n",
	       name, p->n, p->seconds, p->achieved, p->answered, p->accept_early, p->tempfail, p->reject, p->triaged,
	       p->errors);
	printf("bench: %s: latency from due time p50=%u p90=%u p99=%u p99.9=%u max=%u µs; "
	       "service time p50=%u p99=%u µs; send lag p99=%u µs",
	       name, p->p50, p->p90, p->p99, p->p999, p->max, p->svc_p50, p->svc_p99, p->lag_p99);
	if (p->cpu_seconds > 0)
		printf("; milter CPU %.0f µs/msg", p->cpu_seconds * 1e6 / (double)p->n);
	printf("; driver CPU %.0f µs/msg\n", p->driver_cpu_seconds * 1e6 / (double)p->n);
}

/* "10k" for multiples of 1000, else the number. */
static void count_label(char *buf, size_t size, uint64_t n)
{
	if (n >= 1000 && n % 1000 == 0)
		snprintf(buf, size, "%" PRIu64 "k", n / 1000);
	else
		snprintf(buf, size, "%" PRIu64, n);
}

static bool parse_target(const char *spec, run *r)
{
	const char *hostport = spec;
	if (g_str_has_prefix(spec, "inet:"))
		hostport = spec + 5;
	/* inet:PORT@HOST (libmilter's spelling) or HOST:PORT */
	char *host, *port;
	const char *at = strchr(hostport, '@');
	const char *colon = strrchr(hostport, ':');
	if (at != NULL) {
		port = g_strndup(hostport, (size_t)(at - hostport));
		host = g_strdup(at + 1);
	} else if (colon != NULL) {
		host = g_strndup(hostport, (size_t)(colon - hostport));
		port = g_strdup(colon + 1);
	} else {
		return false;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai = NULL;
	int rc = getaddrinfo(host, port, &hints, &ai);
	g_free(host);
	g_free(port);
	if (rc != 0 || ai == NULL)
		return false;
	memcpy(&r->addr, ai->ai_addr, ai->ai_addrlen);
	r->addr_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return true;
}

static void usage(FILE *to)
{
	fprintf(to, "usage: milter_driver [--smtp] [-r RATE] [-n COUNT] [-m MAX_COUNT] [-w WARMUP] [-c CONNS] [-k PER_CONN]\n"
	            "                     [-p PID] [-i RSS_EVERY] [-t RCPT] [-f FROM] [-L LABEL] [-d DIR] inet:HOST:PORT\n");
}

int main(int argc, char **argv)
{
	run r;
	memset(&r, 0, sizeof(r));
	r.from = "customer@bench.example";
	r.rcpt = "support@example.test";
	r.per_conn = 1;
	double rate = 200;
	uint64_t count = 2000, max_count = 0, warmup = 200, rss_every = 0;
	unsigned conns = 8;
	const char *label = NULL, *dir = "../shared/corpus/mail/spamassassin-easy-ham", *target = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--smtp") == 0) {
			r.smtp = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (a[0] != '-') {
			target = a;
			continue;
		}
		if (v == NULL || a[1] == '\0' || a[2] != '\0') {
			usage(stderr);
			return 2;
		}
		i++;
		switch (a[1]) {
		case 'r': rate = atof(v); break;
		case 'n': count = strtoull(v, NULL, 10); break;
		case 'm': max_count = strtoull(v, NULL, 10); break;
		case 'w': warmup = strtoull(v, NULL, 10); break;
		case 'c': conns = (unsigned)CLAMP(atoi(v), 1, 1000); break;
		case 'k': r.per_conn = (unsigned)MAX(atoi(v), 1); break;
		case 'p': r.pid = (pid_t)atoi(v); break;
		case 'i': rss_every = strtoull(v, NULL, 10); break;
		case 't': r.rcpt = v; break;
		case 'f': r.from = v; break;
		case 'L': label = v; break;
		case 'd': dir = v; break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (target == NULL || !parse_target(target, &r) || count == 0 || rate < 0) {
		usage(stderr);
		return 2;
	}
	if (label == NULL)
		label = r.smtp ? "smtp" : "milter_direct";
	if (rss_every == 0)
		rss_every = count >= 10 ? count / 10 : 1;
	signal(SIGPIPE, SIG_IGN);

	size_t bytes;
	r.msgs = load_corpus(dir, &r.n_msgs, &bytes);
	double load[3] = { 0, 0, 0 };
	getloadavg(load, 3);
	printf("bench: %zu messages from %s (%.1f MB), %s %s, %u connections, %u message(s) per connection; "
	       "%ld cores, load average %.2f\n",
	       r.n_msgs, dir, (double)bytes / 1e6, r.smtp ? "SMTP to" : "milter protocol to", target, conns,
	       r.per_conn, sysconf(_SC_NPROCESSORS_ONLN), load[0]);
	fflush(stdout);

	if (warmup > 0) {
		phase_result w = run_phase(&r, 0, warmup, conns, 0);
		if (w.errors == warmup)
			die("no answer from %s (warm-up: %" PRIu64 " failures)", target, w.errors);
	}
	double rss_start = rss_mb(r.pid);
	phase_result steady = run_phase(&r, rate, count, conns, rss_every);
	char name[64];
	snprintf(name, sizeof(name), "steady %.0f msg/s", rate);
	print_phase(name, &steady);
	GString *rss_line = g_string_new(NULL);
	GString *rss_fields = g_string_new(NULL);
	if (r.pid > 0) {
		g_string_append_printf(rss_line, "bench: milter VmRSS MB: %.1f before", rss_start);
		uint64_t first = 0, last = 0;
		for (uint64_t i = 1; i <= count / rss_every; i++) {
			char at[32];
			count_label(at, sizeof(at), i * rss_every);
			g_string_append_printf(rss_line, ", %.1f at %s", r.rss_mb[i], at);
			if (first == 0)
				first = i;
			last = i;
		}
		printf("%s\n", rss_line->str);
		if (first > 0) {
			char a[32], b[32];
			count_label(a, sizeof(a), first * rss_every);
			count_label(b, sizeof(b), last * rss_every);
			g_string_append_printf(rss_fields, " rss_%s_mb=%.1f rss_%s_mb=%.1f", a, r.rss_mb[first], b,
			                       r.rss_mb[last]);
		}
	}
	g_free(r.rss_mb);
	r.rss_mb = NULL;

	phase_result max;
	memset(&max, 0, sizeof(max));
	if (max_count > 0) {
		max = run_phase(&r, 0, max_count, conns, 0);
		snprintf(name, sizeof(name), "closed loop, %u connections", conns);
		print_phase(name, &max);
		if (r.pid > 0)
			printf("bench: milter VmRSS MB: %.1f after the closed loop\n", rss_mb(r.pid));
	}

	printf("bench: %s rate=%.0f n=%" PRIu64 " p50_us=%u p90_us=%u p99_us=%u max_us=%u achieved=%.1f "
	       "answered=%" PRIu64 " triaged=%u errors=%" PRIu64,
	       label, rate, count, steady.p50, steady.p90, steady.p99, steady.max, steady.achieved, steady.answered,
	       steady.triaged, steady.errors);
	if (max_count > 0)
		printf(" max_rate=%.0f", max.achieved);
	printf("%s", rss_fields->str);
	if (steady.cpu_seconds > 0)
		printf(" cpu_us=%.0f", steady.cpu_seconds * 1e6 / (double)count);
	printf("\n");
	g_string_free(rss_line, TRUE);
	g_string_free(rss_fields, TRUE);
	bool ok = steady.errors == 0 && max.errors == 0;
	return ok ? 0 : 1;
}

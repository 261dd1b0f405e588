/*
 * netaddr.h — listen and connect addresses as written in the config
 * (tr_netaddr_*)
 *
 * "inet:HOST:PORT" (Postfix style), "inet:PORT@HOST" and "inet6:PORT@HOST"
 * (milter style), "inet:PORT" (any address), "[v6]:PORT" hosts, and
 * "unix:PATH" (also "local:PATH").  Pure parsing: nothing is resolved.
 */
#ifndef TR_NETADDR_H
#define TR_NETADDR_H

#include <glib.h>
#include <stdbool.h>

typedef enum { TR_NETADDR_INET, TR_NETADDR_UNIX } tr_netaddr_family;

typedef struct {
	tr_netaddr_family family;
	char host[256];      /* inet: name or address, "" = any; IPv6 without [] */
	char port[16];       /* inet: a number; "0" = any free port (tests) */
	char path[108];      /* unix: socket path (fits sun_path) */
} tr_netaddr;

/* False with *error (naming spec) when malformed. */
bool tr_netaddr_parse(const char *spec, tr_netaddr *addr, GError **error);
/* libmilter's form: "inet:PORT@HOST", "inet6:PORT@HOST", "unix:PATH" (g_free). */
char *tr_netaddr_milter_spec(const tr_netaddr *addr);
/* "HOST:PORT", "[V6]:PORT", "*:PORT" or "unix:PATH", for log lines (g_free). */
char *tr_netaddr_describe(const tr_netaddr *addr);

#endif

/* netaddr.c — listen and connect addresses; see netaddr.h */
#include "core/netaddr.h"

#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>

static bool port_ok(const char *port)
{
	if (*port == '\0' || strlen(port) > 5)
		return false;
	for (const char *p = port; *p != '\0'; p++)
		if (!g_ascii_isdigit(*p))
			return false;
	long n = strtol(port, NULL, 10);
	return n >= 0 && n <= 65535;   /* 0: any free port (tests) */
}

static bool addr_error(GError **error, const char *spec, const char *why)
{
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
	            "address '%s': %s (inet:HOST:PORT, inet:PORT@HOST or unix:PATH)", spec, why);
	return false;
}

bool tr_netaddr_parse(const char *spec, tr_netaddr *addr, GError **error)
{
	memset(addr, 0, sizeof(*addr));
	if (spec == NULL || *spec == '\0')
		return addr_error(error, "", "empty");
	const char *rest = spec;
	if (g_str_has_prefix(spec, "unix:") || g_str_has_prefix(spec, "local:")) {
		rest = strchr(spec, ':') + 1;
		if (*rest == '\0')
			return addr_error(error, spec, "no socket path");
		if (strlen(rest) >= sizeof(addr->path))
			return addr_error(error, spec, "socket path too long");
		addr->family = TR_NETADDR_UNIX;
		g_strlcpy(addr->path, rest, sizeof(addr->path));
		return true;
	}
	if (g_str_has_prefix(spec, "inet:"))
		rest = spec + 5;
	else if (g_str_has_prefix(spec, "inet6:"))
		rest = spec + 6;
	else if (spec[0] == '/')
		return addr_error(error, spec, "say unix:PATH for a socket path");
	addr->family = TR_NETADDR_INET;
	const char *at = strchr(rest, '@');
	const char *host, *port;
	size_t host_len, port_len;
	if (at != NULL) {             /* PORT@HOST */
		port = rest;
		port_len = (size_t)(at - rest);
		host = at + 1;
		host_len = strlen(host);
	} else {
		const char *colon = strrchr(rest, ':');
		if (colon == NULL) {  /* PORT */
			port = rest;
			port_len = strlen(rest);
			host = "";
			host_len = 0;
		} else {              /* HOST:PORT or [V6]:PORT */
			host = rest;
			host_len = (size_t)(colon - rest);
			port = colon + 1;
			port_len = strlen(port);
		}
	}
	if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
		host++;
		host_len -= 2;
	}
	if (host_len >= sizeof(addr->host) || port_len >= sizeof(addr->port))
		return addr_error(error, spec, "host or port too long");
	memcpy(addr->host, host, host_len);
	memcpy(addr->port, port, port_len);
	if (!port_ok(addr->port))
		return addr_error(error, spec, "the port must be a number from 0 to 65535");
	for (const char *p = addr->host; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && *p != '.' && *p != '-' && *p != ':' && *p != '_')
			return addr_error(error, spec, "bad host name");
	return true;
}

char *tr_netaddr_milter_spec(const tr_netaddr *addr)
{
	if (addr->family == TR_NETADDR_UNIX)
		return g_strdup_printf("unix:%s", addr->path);
	if (addr->host[0] == '\0')
		return g_strdup_printf("inet:%s", addr->port);
	return g_strdup_printf("%s:%s@%s", strchr(addr->host, ':') != NULL ? "inet6" : "inet", addr->port,
	                       addr->host);
}

char *tr_netaddr_describe(const tr_netaddr *addr)
{
	if (addr->family == TR_NETADDR_UNIX)
		return g_strdup_printf("unix:%s", addr->path);
	if (strchr(addr->host, ':') != NULL)
		return g_strdup_printf("[%s]:%s", addr->host, addr->port);
	return g_strdup_printf("%s:%s", addr->host[0] != '\0' ? addr->host : "*", addr->port);
}

/*
 * customers.h — the customer directory (tr_customers_*)
 *
 * conf/customers.conf maps sender addresses and domains to an account:
 * customer tier (enterprise, professional, starter, free), VIP flag,
 * preferred language, account manager, business-hours calendar.
 *
 *   [customer bigcorp]
 *   match = bigcorp.example, ceo@partner.example
 *   tier = enterprise
 *   vip = yes
 *
 * Lookup order: the exact address, then its domain, then each parent
 * domain (mail.bigcorp.example -> bigcorp.example).  Unknown senders get
 * the [default] group's tier (free unless configured).
 * A directory is read-only after loading and may be shared by threads.
 */
#ifndef TR_CUSTOMERS_H
#define TR_CUSTOMERS_H

#include <stdbool.h>

#include "core/conf.h"

typedef enum {
	TR_CUSTOMER_ENTERPRISE = 0,
	TR_CUSTOMER_PROFESSIONAL,
	TR_CUSTOMER_STARTER,
	TR_CUSTOMER_FREE,
	TR_CUSTOMER_TIER_COUNT
} tr_customer_tier;

typedef struct {
	const char *account;          /* group name; NULL for unknown senders */
	tr_customer_tier tier;
	bool vip;
	const char *language;         /* preferred reply language or NULL */
	const char *account_manager;  /* person name or NULL */
	const char *calendar;         /* calendar name or NULL */
	const char *timezone;         /* IANA zone for dates in replies or NULL */
	int line;                     /* line of its group in the file, 0 if none */
} tr_customer;

typedef struct tr_customers tr_customers;

/* path NULL: an empty directory (everyone gets the default tier). */
tr_customers *tr_customers_load(const char *path, tr_diag *diag);
void tr_customers_free(tr_customers **customers);

/* The entry for address (lowercase addr-spec); never NULL.  Owned by the
 * directory. */
const tr_customer *tr_customers_lookup(const tr_customers *customers, const char *address);
unsigned tr_customers_count(const tr_customers *customers);
/* Iterate over entries (index < count), for config checks. */
const tr_customer *tr_customers_get(const tr_customers *customers, unsigned index);
/* The file the directory was read from (NULL for an empty one), for
 * diagnostics that name file and line. */
const char *tr_customers_path(const tr_customers *customers);

const char *tr_customer_tier_name(tr_customer_tier tier);
bool tr_customer_tier_parse(const char *text, tr_customer_tier *tier_r);

#endif

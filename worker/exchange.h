/*
 * The exchange as the tenant API sees it (Binance-compatible REST): signed
 * open-orders requests on behalf of a tenant, and the exchange-info cache
 * that warmup fills and a timer refreshes.  Worker process only.
 */
#ifndef SPARK_EXCHANGE_H
#define SPARK_EXCHANGE_H

#include <event2/event.h>

#include "http.h"
#include "upstream.h"
#include "../shared/config.h"
#include "../shared/tenants.h"

struct exch;

/*
 * Starts the warmup fetch of WARMUP_PRELOAD_SYMBOLS' exchange info (retried
 * with backoff until it succeeds); warm(arg) is called once it has.
 */
struct exch *exch_new(struct event_base *base, const struct config *cfg,
                      struct upstream *up, void (*warm)(void *), void *arg);

/* From now on answers to exch's own fetches are ignored (before up_free). */
void exch_stop(struct exch *x);

void exch_free(struct exch *x);

/* GET /api/private/open-orders?symbol=…: answers req, now or later. */
void exch_open_orders(struct exch *x, struct http_request *req,
                      const struct tenant *tn, const char *headers);

/* GET /api/public/exchange-info[?symbol=…]: from the cache only. */
void exch_exchange_info(struct exch *x, struct http_request *req);

/*
 * Lowercase hex HMAC-SHA256 of query under key, a tenant's exchange_mac;
 * 0, or -1 when key is NULL or the MAC fails.
 */
int exch_sign(EVP_MAC_CTX *key, const char *query, char out[65]);

#endif

/*
 * The exchange as the tenant API sees it (see exchange.h).
 *
 * Open orders: the query (symbol, recvWindow, timestamp) is signed with the
 * calling tenant's own secret and sent with its key; the exchange's answer
 * is checked to be a JSON array before it goes back.  Errors map as:
 * exchange 4xx -> the same status with its code and message; 429 or 418
 * (its rate limit) -> 503 with Retry-After; 5xx or unreachable -> 502;
 * timeout -> 504; no free outbound slot -> 503.
 *
 * The sanity check of an answer is structural (a JSON array, whole): the
 * body goes back byte for byte, so parsing it in full would cost the
 * request path a tenth of its time for nothing the tenant can use.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "exchange.h"
#include "../shared/clock.h"
#include "../shared/log.h"

#define EXCH_RETRY_MIN_MS 250
#define EXCH_RETRY_MAX_MS 10000

struct exch {
    const struct config  *cfg;
    struct upstream      *up;
    void                (*warm)(void *);
    void                 *warm_arg;
    int                   is_warm;
    int                   stopping;      /* exch_stop() was called */
    int                   attempts;
    struct timespec       started;
    struct event         *fetch_ev;
    json_t               *symbols;       /* symbol -> its exchangeInfo */
};

struct exch_call {
    struct http_request  *req;
    char                 *headers;
};


int
exch_sign(EVP_MAC_CTX *key, const char *query, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[32];
    size_t len = 0;

    /* Initialized without a key, the context starts over with its own. */
    if (key == NULL || EVP_MAC_init(key, NULL, 0, NULL) != 1
        || EVP_MAC_update(key, (const unsigned char *) query,
                          strlen(query)) != 1
        || EVP_MAC_final(key, mac, &len, sizeof(mac)) != 1
        || len != sizeof(mac))
    {
        return -1;
    }

    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 0xf];
    }
    out[64] = '\0';
    return 0;
}


/*
 * The symbol= parameter of a query: 1 with it in out, 0 when absent, -1
 * when malformed.
 */
static int
exch_query_symbol(const char *query, char out[CONFIG_SYMBOL_MAX + 1])
{
    const char *p = query;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t) (end - p) : strlen(p);

        if (len >= 7 && strncmp(p, "symbol=", 7) == 0) {
            if (!config_symbol_valid(p + 7, len - 7)) {
                return -1;
            }
            memcpy(out, p + 7, len - 7);
            out[len - 7] = '\0';
            return 1;
        }
        p = end != NULL ? end + 1 : NULL;
    }

    return 0;
}


static void
exch_reply_json(struct http_request *req, int status, const char *headers,
                json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);

    if (text == NULL) {
        http_respond_error(req, 500, headers, "internal", "out of memory");
    } else {
        http_respond(req, status, headers, text, strlen(text));
    }
    free(text);
    json_decref(body);
}


/* The exchange refused: pass its status, code and message on. */
static void
exch_rejected(struct exch_call *c, const struct up_result *r)
{
    json_t *err = json_loadb(r->body, r->len, 0, NULL);
    json_t *code = json_object_get(err, "code");
    json_t *msg = json_object_get(err, "msg");

    exch_reply_json(c->req, (int) r->status, c->headers,
                    json_pack("{s:s, s:s, s:I}", "error", "exchange_rejected",
                              "message", json_is_string(msg)
                              ? json_string_value(msg)
                              : "the exchange refused the request",
                              "exchange_code", json_is_integer(code)
                              ? json_integer_value(code) : 0));
    json_decref(err);
}


/* 503 with Retry-After, after the tenant's own headers. */
static void
exch_retry_later(struct exch_call *c, long seconds, const char *code,
                 const char *message)
{
    char headers[768];

    snprintf(headers, sizeof(headers), "%sRetry-After: %ld\r\n", c->headers,
             seconds > 0 ? seconds : 1);
    http_respond_error(c->req, 503, headers, code, message);
}


/* A whole JSON array: '[' ... ']' around it, nothing but space outside. */
static int
exch_looks_like_array(const char *body, size_t len)
{
    size_t first = 0, last = len;

    while (first < len && isspace((unsigned char) body[first])) {
        first++;
    }
    while (last > first && isspace((unsigned char) body[last - 1])) {
        last--;
    }

    return last - first >= 2 && body[first] == '[' && body[last - 1] == ']';
}


static void
exch_answered(struct exch_call *c, const struct up_result *r)
{
    if (r->status == 429 || r->status == 418) {
        exch_retry_later(c, r->retry_after_s, "exchange_rate_limited",
                         "the exchange is rate limiting this service; "
                         "retry after Retry-After seconds");
        return;
    }
    if (r->status >= 400 && r->status < 500) {
        exch_rejected(c, r);
        return;
    }

    if (r->status != 200 || !exch_looks_like_array(r->body, r->len)) {
        log_warn("UPSTREAM",
                 "open orders: exchange status %ld or not a JSON array",
                 r->status);
        http_respond_error(c->req, 502, c->headers, "upstream_error",
                           "the exchange answered with an error");
        return;
    }

    http_respond(c->req, 200, c->headers, r->body, r->len);
}


static void
exch_orders_done(const struct up_result *r, void *arg)
{
    struct exch_call *c = arg;

    switch (r->outcome) {
    case UP_ANSWERED:
        exch_answered(c, r);
        break;
    case UP_TIMEOUT:
        http_respond_error(c->req, 504, c->headers, "upstream_timeout",
                           "the exchange did not answer in time");
        break;
    case UP_UNREACHABLE:
        log_debug("UPSTREAM", "open orders: %s", r->error);
        http_respond_error(c->req, 502, c->headers, "upstream_unavailable",
                           "the exchange cannot be reached");
        break;
    case UP_BUSY:
        exch_retry_later(c, 1, "upstream_busy",
                         "too many exchange requests under way; retry shortly");
        break;
    }

    free(c->headers);
    free(c);
}


void
exch_open_orders(struct exch *x, struct http_request *req,
                 const struct tenant *tn, const char *headers)
{
    char symbol[CONFIG_SYMBOL_MAX + 1], query[160], path[320], sig[65];
    struct exch_call *c;
    struct timespec now;
    int has;

    if (tn->exchange_key == NULL) {
        http_respond_error(req, 403, headers, "no_exchange_credentials",
                           "this tenant has no exchange credentials");
        return;
    }

    has = req->query != NULL ? exch_query_symbol(req->query, symbol) : 0;
    if (has < 0) {
        http_respond_error(req, 400, headers, "bad_symbol",
                           "symbol must be 2-20 capital letters or digits");
        return;
    }

    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(query, sizeof(query), "%s%s%srecvWindow=%d&timestamp=%lld",
             has ? "symbol=" : "", has ? symbol : "", has ? "&" : "",
             x->cfg->exchange_recv_window_ms,
             (long long) now.tv_sec * 1000 + now.tv_nsec / 1000000);

    c = calloc(1, sizeof(*c));
    if (c == NULL || exch_sign(tn->exchange_mac, query, sig) != 0
        || (c->headers = strdup(headers)) == NULL)
    {
        free(c);
        http_respond_error(req, 500, headers, "internal", "out of memory");
        return;
    }
    c->req = req;

    snprintf(path, sizeof(path), "/api/v3/openOrders?%s&signature=%s", query,
             sig);
    up_get(x->up, path, tn->exchange_key, exch_orders_done, c);
}


void
exch_exchange_info(struct exch *x, struct http_request *req)
{
    char symbol[CONFIG_SYMBOL_MAX + 1];
    json_t *one;
    int has;

    if (x->symbols == NULL) {
        http_respond_error(req, 503, "Retry-After: 1\r\n", "warming_up",
                           "exchange info is not loaded yet");
        return;
    }

    has = req->query != NULL ? exch_query_symbol(req->query, symbol) : 0;
    if (has < 0) {
        http_respond_error(req, 400, NULL, "bad_symbol",
                           "symbol must be 2-20 capital letters or digits");
        return;
    }
    if (!has) {
        exch_reply_json(req, 200, NULL, json_pack("{s:O}", "symbols",
                                                  x->symbols));
        return;
    }

    one = json_object_get(x->symbols, symbol);
    if (one == NULL) {
        http_respond_error(req, 404, NULL, "unknown_symbol",
                           "that symbol is not preloaded "
                           "(WARMUP_PRELOAD_SYMBOLS)");
        return;
    }
    exch_reply_json(req, 200, NULL, json_incref(one));
}


/* Keeps the symbols of an exchangeInfo answer; returns how many, or -1. */
static int
exch_take_info(struct exch *x, const struct up_result *r)
{
    json_t *root, *list, *sym, *symbols;
    size_t i;

    if (r->outcome != UP_ANSWERED || r->status != 200) {
        return -1;
    }

    root = json_loadb(r->body, r->len, 0, NULL);
    list = json_object_get(root, "symbols");
    symbols = json_object();
    json_array_foreach(list, i, sym) {
        json_t *name = json_object_get(sym, "symbol");

        if (json_is_string(name)) {
            json_object_set(symbols, json_string_value(name), sym);
        }
    }
    json_decref(root);

    if (json_object_size(symbols) == 0) {
        json_decref(symbols);
        return -1;
    }

    json_decref(x->symbols);
    x->symbols = symbols;
    return (int) json_object_size(symbols);
}


static void exch_fetch_cb(evutil_socket_t fd, short what, void *arg);


static void
exch_schedule(struct exch *x, int ms)
{
    struct timeval tv = clock_tv_ms(ms);

    evtimer_add(x->fetch_ev, &tv);
}


static void
exch_info_done(const struct up_result *r, void *arg)
{
    struct exch *x = arg;
    int n, delay;

    if (x->stopping) {
        return;
    }

    n = exch_take_info(x, r);
    if (n < 0) {
        delay = clock_backoff_ms(EXCH_RETRY_MIN_MS, EXCH_RETRY_MAX_MS,
                                 (unsigned) x->attempts);
        x->attempts++;
        log_warn(x->is_warm ? "UPSTREAM" : "WARMUP",
                 "exchange info failed (%s, status %ld); retrying in %d ms",
                 r->outcome == UP_ANSWERED ? "bad answer" : r->error,
                 r->status, delay);
        exch_schedule(x, delay);
        return;
    }

    x->attempts = 0;
    exch_schedule(x, x->cfg->exchange_info_refresh_s * 1000);
    if (!x->is_warm) {
        log_info("WARMUP", "exchange info for %d symbols cached in %.1f ms",
                 n, clock_since_s(&x->started) * 1e3);
        x->is_warm = 1;
        x->warm(x->warm_arg);
    }
}


/* GET /api/v3/exchangeInfo?symbols=["A","B"] (URL-encoded). */
static void
exch_fetch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct exch *x = arg;
    char path[CONFIG_STR_MAX * 9 + 64];
    size_t n;

    (void) fd;
    (void) what;

    n = (size_t) snprintf(path, sizeof(path),
                          "/api/v3/exchangeInfo?symbols=%%5B%%22");
    for (const char *s = x->cfg->warmup_symbols; *s != '\0'; s++) {
        n += (size_t) snprintf(path + n, sizeof(path) - n, *s == ','
                               ? "%%22%%2C%%22" : "%c", *s);
    }
    snprintf(path + n, sizeof(path) - n, "%%22%%5D");

    up_get(x->up, path, NULL, exch_info_done, x);
}


struct exch *
exch_new(struct event_base *base, const struct config *cfg,
         struct upstream *up, void (*warm)(void *), void *arg)
{
    struct exch *x = calloc(1, sizeof(*x));

    if (x == NULL) {
        return NULL;
    }

    x->cfg = cfg;
    x->up = up;
    x->warm = warm;
    x->warm_arg = arg;
    clock_gettime(CLOCK_MONOTONIC, &x->started);

    x->fetch_ev = evtimer_new(base, exch_fetch_cb, x);
    if (x->fetch_ev == NULL) {
        free(x);
        return NULL;
    }

    exch_schedule(x, 0);
    return x;
}


void
exch_stop(struct exch *x)
{
    x->stopping = 1;
}


void
exch_free(struct exch *x)
{
    if (x != NULL) {
        event_free(x->fetch_ev);
        json_decref(x->symbols);
        free(x);
    }
}

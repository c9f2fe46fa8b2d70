/*
 * A test exchange for spark-executor's tests and local runs.
 *
 * A small Binance-compatible spot REST server on libevent's evhttp:
 * /api/v3/ping, /api/v3/time, /api/v3/exchangeInfo (symbols with real
 * filters) and the signed /api/v3/openOrders, which checks the API key, the
 * HMAC-SHA256 signature and the timestamp window and returns that key's own
 * orders.  Switches for latency, injected errors, forced status codes and
 * outages are set on the command line or at run time with POST /__control;
 * GET /__stats counts what arrived.  See tests/exchange/README.md.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#define EX_DEFAULT_PORT        4100
#define EX_DEFAULT_RECV_WINDOW 5000
#define EX_MAX_RECV_WINDOW     60000
#define EX_FUTURE_SLACK_MS     1000
#define EX_MAX_LATENCY_MS      600000
#define EX_MAX_RETRY_AFTER     86400
#define EX_SIG_HEX_LEN         64
#define EX_SIG_PREFIX_LEN      (sizeof("signature=") - 1)
#define EX_MAX_HEADERS_SIZE    16384
#define EX_MAX_BODY_SIZE       65536

#define EX_MSG_UNKNOWN \
    "An unknown error occurred while processing the request."
#define EX_MSG_BUSY \
    "Server is currently overloaded with other requests. " \
    "Please try again in a few minutes."
#define EX_MSG_NO_PARAM \
    "Mandatory parameter '%s' was not sent, was empty/null, or malformed."

/* What can be flipped on the command line and through POST /__control. */
struct ex_switches {
    long long latency_ms;
    double error_rate;
    long long status;         /* 0: off, else forced on signed endpoints */
    long long retry_after;    /* seconds, sent with a forced 429 or 418 */
    bool outage;
    bool verbose;
};

enum ex_slot {
    EX_SLOT_PING, EX_SLOT_TIME, EX_SLOT_INFO, EX_SLOT_ORDERS, EX_SLOT_OTHER,
    EX_SLOT_COUNT
};

struct ex_stats {
    uint64_t requests[EX_SLOT_COUNT];
    uint64_t keys_rejected;
    uint64_t signatures_rejected;
    uint64_t timestamps_rejected;
    uint64_t errors_injected;
    uint64_t status_forced;
    uint64_t outage_closed;
    uint64_t in_flight;       /* answers waiting for their latency */
    uint64_t max_in_flight;
    json_t *peers;            /* "address:port" of each client connection */
};

struct ex_pending;
struct ex_account;

struct ex_server {
    struct event_base *base;
    struct evhttp *http;
    struct event *sigint;
    struct event *sigterm;
    struct ex_switches sw;
    struct ex_stats stats;
    json_t *accounts;               /* API key -> {"secret", "orders"} */
    json_t *account_ids;            /* API key -> index in account_list */
    struct ex_account *account_list;
    size_t account_count;
    EVP_MAC *hmac;
    struct ex_pending *pending;     /* answers held back by the latency */
    uint64_t rng;
};

struct ex_options {
    const char *bind;
    long long port;
    const char *accounts;
    struct ex_switches sw;
    long long seed;
};

/*
 * One answer: HTTP status, JSON body (owned) or text printed at start (not
 * owned, outlives every connection) and an optional Retry-After.
 */
struct ex_reply {
    int status;
    json_t *body;
    const char *text;
    size_t text_len;
    long long retry_after;
};

/* An answer, already in the request's output buffer, held by the latency. */
struct ex_pending {
    struct ex_server *server;
    struct evhttp_request *req;
    struct event *timer;
    int status;
    struct ex_pending *prev;
    struct ex_pending *next;
};

typedef void (*ex_handler)(struct ex_server *, struct evhttp_request *,
                           const struct evkeyvalq *, struct ex_reply *);

struct ex_route {
    const char *path;
    enum ex_slot slot;
    bool is_signed;
    ex_handler handle;
};

/* Trading rules of one symbol, as Binance prints them (8 decimals). */
struct ex_symbol {
    const char *name;
    const char *base;
    const char *quote;
    const char *min_price;
    const char *max_price;
    const char *tick_size;
    const char *min_qty;
    const char *max_qty;
    const char *step_size;
    const char *market_max_qty;
    const char *min_notional;
    const char *max_notional;
};

static const struct ex_symbol ex_symbols[] = {
    { "BTCUSDT", "BTC", "USDT", "0.01000000", "1000000.00000000",
      "0.01000000", "0.00001000", "9000.00000000", "0.00001000",
      "114.27308962", "5.00000000", "9000000.00000000" },
    { "ETHUSDT", "ETH", "USDT", "0.01000000", "1000000.00000000",
      "0.01000000", "0.00010000", "9000.00000000", "0.00010000",
      "2841.53214583", "5.00000000", "9000000.00000000" },
    { "BNBUSDT", "BNB", "USDT", "0.01000000", "100000.00000000",
      "0.01000000", "0.00100000", "900000.00000000", "0.00100000",
      "6321.76454861", "5.00000000", "9000000.00000000" },
    { "SOLUSDT", "SOL", "USDT", "0.01000000", "10000.00000000",
      "0.01000000", "0.00100000", "9000000.00000000", "0.00100000",
      "41588.25740972", "5.00000000", "9000000.00000000" },
    { "ETHBTC", "ETH", "BTC", "0.00001000", "922327.00000000",
      "0.00001000", "0.00010000", "100000.00000000", "0.00010000",
      "2275.62138472", "0.00010000", "9000000.00000000" },
    { "LTCBTC", "LTC", "BTC", "0.00000100", "100000.00000000",
      "0.00000100", "0.00100000", "100000.00000000", "0.00100000",
      "6913.29576389", "0.00010000", "9000000.00000000" },
};

#define EX_SYMBOL_COUNT (sizeof(ex_symbols) / sizeof(ex_symbols[0]))

/*
 * What the signed endpoint needs of one account, made once at start: the
 * accounts never change while the exchange runs, so keying the HMAC and
 * printing the orders for every request would only burn the CPU that a
 * benchmark shares with the service it measures.
 */
struct ex_account {
    EVP_MAC_CTX *mac;               /* HMAC-SHA256 keyed with the secret */
    char *orders[1 + EX_SYMBOL_COUNT];  /* JSON: all, then each symbol's */
    size_t orders_len[1 + EX_SYMBOL_COUNT];
};

/* Accounts served when no --accounts file is given: fake demo values. */
static const char ex_demo_accounts[] =
    "{\"demo-exch-key-A\": {\"secret\": \"demo-exch-secret-A-not-real\","
    " \"orders\": ["
    "  {\"orderId\": 4112001, \"symbol\": \"BTCUSDT\", \"side\": \"BUY\","
    "   \"price\": \"88000.00000000\", \"origQty\": \"0.00150000\","
    "   \"clientOrderId\": \"demoA-btc-bid-1\"},"
    "  {\"orderId\": 4112002, \"symbol\": \"ETHUSDT\", \"side\": \"SELL\","
    "   \"price\": \"3600.00000000\", \"origQty\": \"0.25000000\","
    "   \"clientOrderId\": \"demoA-eth-ask-1\"},"
    "  {\"orderId\": 4112003, \"symbol\": \"BNBUSDT\", \"side\": \"BUY\","
    "   \"price\": \"610.00000000\", \"origQty\": \"1.00000000\","
    "   \"timeInForce\": \"GTC\", \"clientOrderId\": \"demoA-bnb-bid-1\"}]},"
    " \"demo-exch-key-B\": {\"secret\": \"demo-exch-secret-B-not-real\","
    " \"orders\": ["
    "  {\"orderId\": 4113001, \"symbol\": \"BTCUSDT\", \"side\": \"SELL\","
    "   \"price\": \"99500.00000000\", \"origQty\": \"0.01000000\","
    "   \"clientOrderId\": \"demoB-btc-ask-1\"},"
    "  {\"orderId\": 4113002, \"symbol\": \"ETHUSDT\", \"side\": \"BUY\","
    "   \"price\": \"2950.00000000\", \"origQty\": \"1.50000000\","
    "   \"clientOrderId\": \"demoB-eth-bid-1\"}]}}";

/* How an order field from the accounts file is checked and defaulted. */
enum ex_kind {
    EX_KIND_TEXT, EX_KIND_DECIMAL, EX_KIND_INT, EX_KIND_BOOL, EX_KIND_ID,
    EX_KIND_CLIENT_ID, EX_KIND_TIME
};

struct ex_field {
    const char *name;
    enum ex_kind kind;
    const char *fallback;     /* NULL for text and decimals: required */
};

/* The fields of a Binance open order, in Binance's order. */
static const struct ex_field ex_order_fields[] = {
    { "symbol", EX_KIND_TEXT, NULL },
    { "orderId", EX_KIND_ID, NULL },
    { "orderListId", EX_KIND_INT, "-1" },
    { "clientOrderId", EX_KIND_CLIENT_ID, NULL },
    { "price", EX_KIND_DECIMAL, NULL },
    { "origQty", EX_KIND_DECIMAL, NULL },
    { "executedQty", EX_KIND_DECIMAL, "0.00000000" },
    { "cummulativeQuoteQty", EX_KIND_DECIMAL, "0.00000000" },
    { "status", EX_KIND_TEXT, "NEW" },
    { "timeInForce", EX_KIND_TEXT, "GTC" },
    { "type", EX_KIND_TEXT, "LIMIT" },
    { "side", EX_KIND_TEXT, NULL },
    { "stopPrice", EX_KIND_DECIMAL, "0.00000000" },
    { "icebergQty", EX_KIND_DECIMAL, "0.00000000" },
    { "time", EX_KIND_TIME, NULL },
    { "updateTime", EX_KIND_TIME, NULL },
    { "isWorking", EX_KIND_BOOL, "true" },
    { "workingTime", EX_KIND_TIME, NULL },
    { "origQuoteOrderQty", EX_KIND_DECIMAL, "0.00000000" },
    { "selfTradePreventionMode", EX_KIND_TEXT, "EXPIRE_MAKER" },
};

#define EX_FIELD_COUNT (sizeof(ex_order_fields) / sizeof(ex_order_fields[0]))

static const char *const ex_order_types[] = {
    "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
    "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"
};

static const char *const ex_symbol_flags[] = {
    "icebergAllowed", "ocoAllowed", "otoAllowed",
    "quoteOrderQtyMarketAllowed", "allowTrailingStop", "cancelReplaceAllowed",
    "isSpotTradingAllowed", "isMarginTradingAllowed"
};

#define EX_COUNT(a) (sizeof(a) / sizeof((a)[0]))


/* ---- small helpers ---------------------------------------------------- */

static long long
ex_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* A whole decimal integer in [min, max]; no spaces, no sign but '-'. */
static int
ex_parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v;

    if (s == NULL || !(isdigit((unsigned char) s[0]) || s[0] == '-'))
        return -1;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;

    *out = v;
    return 0;
}


static int
ex_parse_rate(const char *s, double *out)
{
    char *end;
    double v;

    if (s == NULL || !(isdigit((unsigned char) s[0]) || s[0] == '.'))
        return -1;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0 && v <= 1.0))
        return -1;

    *out = v;
    return 0;
}


/* A forced status is 0 (off) or an error status 400..599. */
static bool
ex_status_valid(long long code)
{
    return code == 0 || (code >= 400 && code <= 599);
}


/* xorshift64*: a uniform double in [0, 1) for the error rate. */
static double
ex_random(struct ex_server *s)
{
    uint64_t x = s->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;

    return (double) ((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}


static void
ex_seed(struct ex_server *s, long long seed)
{
    uint64_t x = seed != 0 ? (uint64_t) seed
                           : (uint64_t) ex_now_ms() ^ (uint64_t) getpid();

    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    s->rng = (x ^ (x >> 31)) | 1;
}


/* ---- signatures -------------------------------------------------------- */

/*
 * An HMAC-SHA256 context keyed with secret.  Keyed once here, it only
 * starts over per request: the one-shot HMAC() fetches the digest and
 * hashes the key pads again on every call.
 */
static EVP_MAC_CTX *
ex_mac_new(EVP_MAC *hmac, const char *secret)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end()
    };
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac);

    if (ctx == NULL
        || EVP_MAC_init(ctx, (const unsigned char *) secret, strlen(secret),
                        params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}


/*
 * Lowercase hex HMAC-SHA256 of the two pieces one after the other, as if
 * they were one string: the payload is the query around its signature=,
 * so it needs no copy.
 */
static int
ex_hmac_hex(EVP_MAC_CTX *mac, const char *a, size_t a_len, const char *b,
            size_t b_len, char out[EX_SIG_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;

    /* Without a key, the context starts over with the one it was given. */
    if (EVP_MAC_init(mac, NULL, 0, NULL) != 1
        || EVP_MAC_update(mac, (const unsigned char *) a, a_len) != 1
        || EVP_MAC_update(mac, (const unsigned char *) b, b_len) != 1
        || EVP_MAC_final(mac, md, &md_len, sizeof(md)) != 1
        || md_len * 2 != EX_SIG_HEX_LEN)
        return -1;

    for (size_t i = 0; i < md_len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[EX_SIG_HEX_LEN] = '\0';

    return 0;
}


/* Where the parameter `name=...` sits in a raw query: [*start, *end). */
static bool
ex_find_param(const char *query, const char *name, size_t *start,
              size_t *end)
{
    size_t n = strlen(name);
    size_t pos = 0;

    for (;;) {
        size_t seg_end = pos + strcspn(query + pos, "&");

        if (seg_end - pos > n && strncmp(query + pos, name, n) == 0
            && query[pos + n] == '=') {
            *start = pos;
            *end = seg_end;
            return true;
        }

        if (query[seg_end] == '\0')
            return false;
        pos = seg_end + 1;
    }
}


/*
 * Signs the raw query without the parameter at [start, end) and its '&':
 * the part before it, then the rest.  Compares in constant time; upper- or
 * lowercase hex is accepted.
 */
static bool
ex_signature_matches(EVP_MAC_CTX *mac, const char *query, size_t start,
                     size_t end, const char *sig, size_t sig_len)
{
    char want[EX_SIG_HEX_LEN + 1];
    char got[EX_SIG_HEX_LEN];
    size_t head = start > 0 ? start - 1 : 0;
    size_t rest = start == 0 && query[end] == '&' ? end + 1 : end;

    if (sig_len != EX_SIG_HEX_LEN
        || ex_hmac_hex(mac, query, head, query + rest, strlen(query + rest),
                       want) != 0)
        return false;

    for (size_t i = 0; i < EX_SIG_HEX_LEN; i++)
        got[i] = (char) tolower((unsigned char) sig[i]);

    return CRYPTO_memcmp(want, got, EX_SIG_HEX_LEN) == 0;
}


/* ---- answers ----------------------------------------------------------- */

static void
ex_error(struct ex_reply *r, int status, int code, const char *msg)
{
    r->status = status;
    r->body = json_pack("{s:i, s:s}", "code", code, "msg", msg);
}


static void
ex_error_missing(struct ex_reply *r, const char *param)
{
    char msg[160];

    snprintf(msg, sizeof(msg), EX_MSG_NO_PARAM, param);
    ex_error(r, 400, -1102, msg);
}


static void
ex_error_illegal(struct ex_reply *r, const char *param)
{
    char msg[160];

    snprintf(msg, sizeof(msg), "Illegal characters found in parameter '%s'.",
             param);
    ex_error(r, 400, -1100, msg);
}


static void
ex_ok(struct ex_reply *r, json_t *body)
{
    r->status = 200;
    r->body = body;
}


static const char *
ex_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 418: return "I'm a teapot";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default:  return "Error";
    }
}


static void
ex_free_text(const void *data, size_t len, void *arg)
{
    (void) len;
    (void) arg;

    free((void *) data);
}


/*
 * Puts the headers on the request and the body straight into its output
 * buffer, which evhttp_send_reply() sends as is: no buffer of our own to
 * make, move and free per request.  JSON text is handed over without a
 * copy; text printed at start is only referenced.
 */
static void
ex_render(struct evhttp_request *req, struct ex_reply *r)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    char seconds[24];
    char *text;

    if (r->body == NULL && r->text == NULL)
        ex_error(r, 500, -1000, EX_MSG_UNKNOWN);

    evhttp_add_header(headers, "Content-Type",
                      "application/json;charset=UTF-8");
    if (r->retry_after > 0) {
        snprintf(seconds, sizeof(seconds), "%lld", r->retry_after);
        evhttp_add_header(headers, "Retry-After", seconds);
    }

    if (r->body == NULL) {
        evbuffer_add_reference(out, r->text, r->text_len, NULL, NULL);
        return;
    }

    text = json_dumps(r->body, JSON_COMPACT);
    if (text != NULL
        && evbuffer_add_reference(out, text, strlen(text), ex_free_text,
                                  NULL) != 0)
        free(text);
    json_decref(r->body);
    r->body = NULL;
}


static void
ex_send_now(struct evhttp_request *req, int status)
{
    evhttp_send_reply(req, status, ex_reason(status), NULL);
}


static void
ex_pending_finish(struct ex_pending *p)
{
    struct ex_server *s = p->server;

    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        s->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;

    s->stats.in_flight--;
    ex_send_now(p->req, p->status);
    event_free(p->timer);
    free(p);
}


static void
ex_on_latency(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;

    ex_pending_finish(arg);
}


/* Holds the answer back for the latency switch; -1 if it cannot. */
static int
ex_defer(struct ex_server *s, struct evhttp_request *req, int status)
{
    struct timeval tv = {
        .tv_sec = s->sw.latency_ms / 1000,
        .tv_usec = (s->sw.latency_ms % 1000) * 1000,
    };
    struct ex_pending *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return -1;

    p->timer = evtimer_new(s->base, ex_on_latency, p);
    if (p->timer == NULL || evtimer_add(p->timer, &tv) != 0) {
        if (p->timer != NULL)
            event_free(p->timer);
        free(p);
        return -1;
    }

    p->server = s;
    p->req = req;
    p->status = status;
    p->next = s->pending;
    if (s->pending != NULL)
        s->pending->prev = p;
    s->pending = p;

    if (++s->stats.in_flight > s->stats.max_in_flight)
        s->stats.max_in_flight = s->stats.in_flight;
    return 0;
}


static const char *
ex_method(struct evhttp_request *req)
{
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:    return "GET";
    case EVHTTP_REQ_POST:   return "POST";
    case EVHTTP_REQ_PUT:    return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_HEAD:   return "HEAD";
    default:                return "OTHER";
    }
}


/* Sends r, after the latency switch when delay is set. */
static void
ex_send(struct ex_server *s, struct evhttp_request *req, const char *path,
        struct ex_reply *r, bool delay)
{
    ex_render(req, r);

    if (s->sw.verbose)
        printf("exchange: %s %s -> %d\n", ex_method(req), path, r->status);

    if (delay && s->sw.latency_ms > 0 && ex_defer(s, req, r->status) == 0)
        return;

    ex_send_now(req, r->status);
}


/*
 * Closes the connection without an answer: the socket is shut down first,
 * so the reply that hands the request back to evhttp cannot be written and
 * evhttp frees the connection on the write error.
 */
static void
ex_drop(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = NULL;

    if (conn != NULL)
        bev = evhttp_connection_get_bufferevent(conn);
    if (bev != NULL && bufferevent_getfd(bev) >= 0)
        shutdown(bufferevent_getfd(bev), SHUT_RDWR);

    evhttp_send_reply(req, 503, ex_reason(503), NULL);
}


/* ---- public endpoints ------------------------------------------------- */

static void
ex_ping(struct ex_server *s, struct evhttp_request *req,
        const struct evkeyvalq *params, struct ex_reply *r)
{
    (void) s;
    (void) req;
    (void) params;

    ex_ok(r, json_object());
}


static void
ex_time(struct ex_server *s, struct evhttp_request *req,
        const struct evkeyvalq *params, struct ex_reply *r)
{
    (void) s;
    (void) req;
    (void) params;

    ex_ok(r, json_pack("{s:I}", "serverTime", (json_int_t) ex_now_ms()));
}


static const struct ex_symbol *
ex_symbol_find(const char *name)
{
    for (size_t i = 0; i < EX_SYMBOL_COUNT; i++) {
        if (strcmp(ex_symbols[i].name, name) == 0)
            return &ex_symbols[i];
    }

    return NULL;
}


static json_t *
ex_price_filters(const struct ex_symbol *sym)
{
    return json_pack(
        "[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}, {s:s, s:i},"
        " {s:s, s:s, s:s, s:s}]",
        "filterType", "PRICE_FILTER", "minPrice", sym->min_price,
        "maxPrice", sym->max_price, "tickSize", sym->tick_size,
        "filterType", "LOT_SIZE", "minQty", sym->min_qty,
        "maxQty", sym->max_qty, "stepSize", sym->step_size,
        "filterType", "ICEBERG_PARTS", "limit", 10,
        "filterType", "MARKET_LOT_SIZE", "minQty", "0.00000000",
        "maxQty", sym->market_max_qty, "stepSize", "0.00000000");
}


static json_t *
ex_filters(const struct ex_symbol *sym)
{
    json_t *filters = ex_price_filters(sym);
    json_t *more = json_pack(
        "[{s:s, s:i, s:i, s:i, s:i}, {s:s, s:s, s:s, s:s, s:s, s:i},"
        " {s:s, s:s, s:b, s:s, s:b, s:i}, {s:s, s:i}, {s:s, s:i}]",
        "filterType", "TRAILING_DELTA", "minTrailingAboveDelta", 10,
        "maxTrailingAboveDelta", 2000, "minTrailingBelowDelta", 10,
        "maxTrailingBelowDelta", 2000,
        "filterType", "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp", "5",
        "bidMultiplierDown", "0.2", "askMultiplierUp", "5",
        "askMultiplierDown", "0.2", "avgPriceMins", 5,
        "filterType", "NOTIONAL", "minNotional", sym->min_notional,
        "applyMinToMarket", 1, "maxNotional", sym->max_notional,
        "applyMaxToMarket", 0, "avgPriceMins", 5,
        "filterType", "MAX_NUM_ORDERS", "maxNumOrders", 200,
        "filterType", "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders", 5);

    json_array_extend(filters, more);
    json_decref(more);
    return filters;
}


static json_t *
ex_strings(const char *const *names, size_t count)
{
    json_t *list = json_array();

    for (size_t i = 0; i < count; i++)
        json_array_append_new(list, json_string(names[i]));

    return list;
}


static json_t *
ex_symbol_json(const struct ex_symbol *sym)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:i, s:s, s:i, s:i, s:i, s:i, s:o}",
        "symbol", sym->name, "status", "TRADING",
        "baseAsset", sym->base, "baseAssetPrecision", 8,
        "quoteAsset", sym->quote, "quotePrecision", 8,
        "quoteAssetPrecision", 8, "baseCommissionPrecision", 8,
        "quoteCommissionPrecision", 8,
        "orderTypes", ex_strings(ex_order_types, EX_COUNT(ex_order_types)));

    for (size_t i = 0; i < EX_COUNT(ex_symbol_flags); i++)
        json_object_set_new(o, ex_symbol_flags[i], json_true());

    json_object_set_new(o, "filters", ex_filters(sym));
    json_object_set_new(o, "permissions", json_array());
    json_object_set_new(o, "permissionSets", json_pack("[[s]]", "SPOT"));
    json_object_set_new(o, "defaultSelfTradePreventionMode",
                        json_string("EXPIRE_MAKER"));
    json_object_set_new(o, "allowedSelfTradePreventionModes",
                        json_pack("[s, s, s]", "EXPIRE_TAKER",
                                  "EXPIRE_MAKER", "EXPIRE_BOTH"));
    return o;
}


static json_t *
ex_rate_limits(void)
{
    return json_pack(
        "[{s:s, s:s, s:i, s:i}, {s:s, s:s, s:i, s:i}, {s:s, s:s, s:i, s:i},"
        " {s:s, s:s, s:i, s:i}]",
        "rateLimitType", "REQUEST_WEIGHT", "interval", "MINUTE",
        "intervalNum", 1, "limit", 6000,
        "rateLimitType", "ORDERS", "interval", "SECOND",
        "intervalNum", 10, "limit", 100,
        "rateLimitType", "ORDERS", "interval", "DAY",
        "intervalNum", 1, "limit", 200000,
        "rateLimitType", "RAW_REQUESTS", "interval", "MINUTE",
        "intervalNum", 5, "limit", 61000);
}


/* Appends one named symbol; -1 with r set when it is empty or unknown. */
static int
ex_info_add(json_t *list, const char *name, struct ex_reply *r)
{
    const struct ex_symbol *sym;

    if (*name == '\0') {
        ex_error(r, 400, -1105, "Parameter 'symbol' was empty.");
        return -1;
    }

    sym = ex_symbol_find(name);
    if (sym == NULL) {
        ex_error(r, 400, -1121, "Invalid symbol.");
        return -1;
    }

    json_array_append_new(list, ex_symbol_json(sym));
    return 0;
}


/* symbols=["BTCUSDT","ETHUSDT"]: a JSON array of names. */
static int
ex_info_add_many(json_t *list, const char *text, struct ex_reply *r)
{
    json_t *names = json_loads(text, 0, NULL);
    json_t *name;
    size_t i;
    int rc = 0;

    if (!json_is_array(names) || json_array_size(names) == 0) {
        json_decref(names);
        ex_error_illegal(r, "symbols");
        return -1;
    }

    json_array_foreach(names, i, name) {
        if (!json_is_string(name)) {
            ex_error_illegal(r, "symbols");
            rc = -1;
        } else {
            rc = ex_info_add(list, json_string_value(name), r);
        }

        if (rc != 0)
            break;
    }

    json_decref(names);
    return rc;
}


static void
ex_exchange_info(struct ex_server *s, struct evhttp_request *req,
                 const struct evkeyvalq *params, struct ex_reply *r)
{
    const char *one = evhttp_find_header(params, "symbol");
    const char *many = evhttp_find_header(params, "symbols");
    json_t *list = json_array();
    int rc = 0;

    (void) s;
    (void) req;

    if (one != NULL && many != NULL) {
        ex_error(r, 400, -1128, "Combination of optional parameters invalid.");
        rc = -1;
    } else if (one != NULL) {
        rc = ex_info_add(list, one, r);
    } else if (many != NULL) {
        rc = ex_info_add_many(list, many, r);
    } else {
        for (size_t i = 0; i < EX_SYMBOL_COUNT; i++)
            json_array_append_new(list, ex_symbol_json(&ex_symbols[i]));
    }

    if (rc != 0) {
        json_decref(list);
        return;
    }

    ex_ok(r, json_pack("{s:s, s:I, s:o, s:[], s:o}", "timezone", "UTC",
                       "serverTime", (json_int_t) ex_now_ms(),
                       "rateLimits", ex_rate_limits(),
                       "exchangeFilters", "symbols", list));
}


/* ---- the signed endpoint ---------------------------------------------- */

/* X-MBX-APIKEY must name a known account. */
static const struct ex_account *
ex_check_key(struct ex_server *s, struct evhttp_request *req,
             struct ex_reply *r)
{
    const char *key = evhttp_find_header(
        evhttp_request_get_input_headers(req), "X-MBX-APIKEY");
    json_t *id;

    if (key == NULL || *key == '\0') {
        s->stats.keys_rejected++;
        ex_error(r, 401, -2014, "API-key format invalid.");
        return NULL;
    }

    id = json_object_get(s->account_ids, key);
    if (id == NULL) {
        s->stats.keys_rejected++;
        ex_error(r, 401, -2015,
                 "Invalid API-key, IP, or permissions for action.");
        return NULL;
    }
    return &s->account_list[json_integer_value(id)];
}


/* The signature covers the query exactly as sent, minus signature=. */
static int
ex_check_signature(struct ex_server *s, struct evhttp_request *req,
                   const struct ex_account *account, struct ex_reply *r)
{
    const char *uri = evhttp_request_get_uri(req);
    const char *mark = strchr(uri, '?');
    const char *query = mark != NULL ? mark + 1 : "";
    size_t start, end, value;

    if (!ex_find_param(query, "signature", &start, &end)) {
        ex_error_missing(r, "signature");
        return -1;
    }

    value = start + EX_SIG_PREFIX_LEN;
    if (!ex_signature_matches(account->mac, query, start, end,
                              query + value, end - value)) {
        s->stats.signatures_rejected++;
        ex_error(r, 400, -1022, "Signature for this request is not valid.");
        return -1;
    }
    return 0;
}


/* timestamp within recvWindow of server time, at most 1 s ahead. */
static int
ex_check_timestamp(struct ex_server *s, const struct evkeyvalq *params,
                   struct ex_reply *r)
{
    const char *window_text = evhttp_find_header(params, "recvWindow");
    long long ts, window = EX_DEFAULT_RECV_WINDOW, now;

    if (ex_parse_ll(evhttp_find_header(params, "timestamp"), 0, LLONG_MAX,
                    &ts) != 0) {
        ex_error_missing(r, "timestamp");
        return -1;
    }

    if (window_text != NULL
        && ex_parse_ll(window_text, 0, LLONG_MAX, &window) != 0) {
        ex_error_illegal(r, "recvWindow");
        return -1;
    }
    if (window > EX_MAX_RECV_WINDOW) {
        ex_error(r, 400, -1131, "recvWindow must be less than 60000");
        return -1;
    }

    now = ex_now_ms();
    if (ts >= now + EX_FUTURE_SLACK_MS || now - ts > window) {
        s->stats.timestamps_rejected++;
        ex_error(r, 400, -1021,
                 "Timestamp for this request is outside of the recvWindow.");
        return -1;
    }
    return 0;
}


/* The orders of an account, all (symbol NULL) or one symbol's. */
static json_t *
ex_orders_of(json_t *account, const char *symbol)
{
    json_t *out = json_array();
    json_t *order;
    size_t i;

    json_array_foreach(json_object_get(account, "orders"), i, order) {
        const char *sym = json_string_value(json_object_get(order, "symbol"));

        if (symbol == NULL || strcmp(symbol, sym) == 0)
            json_array_append(out, order);
    }

    return out;
}


static void
ex_open_orders(struct ex_server *s, struct evhttp_request *req,
               const struct evkeyvalq *params, struct ex_reply *r)
{
    const char *symbol = evhttp_find_header(params, "symbol");
    const struct ex_account *account = ex_check_key(s, req, r);
    const struct ex_symbol *sym = NULL;
    size_t which;

    if (account == NULL || ex_check_signature(s, req, account, r) != 0
        || ex_check_timestamp(s, params, r) != 0)
        return;

    if (symbol != NULL && *symbol == '\0') {
        ex_error(r, 400, -1105, "Parameter 'symbol' was empty.");
        return;
    }
    if (symbol != NULL && (sym = ex_symbol_find(symbol)) == NULL) {
        ex_error(r, 400, -1121, "Invalid symbol.");
        return;
    }

    /* The text printed at start: [0] all orders, [1 + i] ex_symbols[i]. */
    which = sym != NULL ? 1 + (size_t) (sym - ex_symbols) : 0;
    r->status = 200;
    r->text = account->orders[which];
    r->text_len = account->orders_len[which];
}


/* The answer the --status switch forces on signed endpoints. */
static void
ex_forced(struct ex_server *s, struct ex_reply *r)
{
    int code = (int) s->sw.status;

    s->stats.status_forced++;

    if (code == 429 || code == 418) {
        ex_error(r, code, -1003, code == 429 ? "Too many requests."
                 : "Way too many requests; IP banned.");
        r->retry_after = s->sw.retry_after;
    } else if (code == 503) {
        ex_error(r, code, -1008, EX_MSG_BUSY);
    } else if (code == 401 || code == 403) {
        ex_error(r, code, -2015,
                 "Invalid API-key, IP, or permissions for action.");
    } else {
        ex_error(r, code, -1000, EX_MSG_UNKNOWN);
    }
}


/* ---- control and stats ------------------------------------------------ */

static const struct ex_route ex_routes[] = {
    { "/api/v3/ping", EX_SLOT_PING, false, ex_ping },
    { "/api/v3/time", EX_SLOT_TIME, false, ex_time },
    { "/api/v3/exchangeInfo", EX_SLOT_INFO, false, ex_exchange_info },
    { "/api/v3/openOrders", EX_SLOT_ORDERS, true, ex_open_orders },
};


static json_t *
ex_stats_json(const struct ex_server *s)
{
    const struct ex_stats *st = &s->stats;
    json_t *paths = json_object();
    uint64_t total = st->requests[EX_SLOT_OTHER];

    for (size_t i = 0; i < EX_COUNT(ex_routes); i++) {
        uint64_t n = st->requests[ex_routes[i].slot];

        json_object_set_new(paths, ex_routes[i].path, json_integer(n));
        total += n;
    }
    json_object_set_new(paths, "other",
                        json_integer(st->requests[EX_SLOT_OTHER]));

    return json_pack(
        "{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "requests", paths, "total", (json_int_t) total,
        "keysRejected", (json_int_t) st->keys_rejected,
        "signaturesRejected", (json_int_t) st->signatures_rejected,
        "timestampsRejected", (json_int_t) st->timestamps_rejected,
        "errorsInjected", (json_int_t) st->errors_injected,
        "statusForced", (json_int_t) st->status_forced,
        "outageClosed", (json_int_t) st->outage_closed,
        "inFlight", (json_int_t) st->in_flight,
        "maxInFlight", (json_int_t) st->max_in_flight,
        "connections", (json_int_t) json_object_size(st->peers));
}


static json_t *
ex_switches_json(const struct ex_switches *sw)
{
    return json_pack("{s:I, s:f, s:I, s:I, s:b, s:b}",
                     "latencyMs", (json_int_t) sw->latency_ms,
                     "errorRate", sw->error_rate,
                     "status", (json_int_t) sw->status,
                     "retryAfter", (json_int_t) sw->retry_after,
                     "outage", sw->outage, "verbose", sw->verbose);
}


static int
ex_json_ll(json_t *v, long long min, long long max, long long *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < min
        || json_integer_value(v) > max)
        return -1;

    *out = json_integer_value(v);
    return 0;
}


static int
ex_json_bool(json_t *v, bool *out)
{
    if (!json_is_boolean(v))
        return -1;

    *out = json_is_true(v);
    return 0;
}


static int
ex_json_rate(json_t *v, double *out)
{
    double rate = json_number_value(v);

    if (!json_is_number(v) || !(rate >= 0.0 && rate <= 1.0))
        return -1;

    *out = rate;
    return 0;
}


static int
ex_json_status(json_t *v, long long *out)
{
    long long code;

    if (json_is_null(v) || json_is_false(v)) {
        *out = 0;
        return 0;
    }

    if (ex_json_ll(v, 0, 599, &code) != 0 || !ex_status_valid(code))
        return -1;

    *out = code;
    return 0;
}


/* One field of a /__control body into sw; -1 if unknown or invalid. */
static int
ex_control_field(const char *key, json_t *v, struct ex_switches *sw,
                 bool *reset)
{
    if (strcmp(key, "latencyMs") == 0)
        return ex_json_ll(v, 0, EX_MAX_LATENCY_MS, &sw->latency_ms);
    if (strcmp(key, "errorRate") == 0)
        return ex_json_rate(v, &sw->error_rate);
    if (strcmp(key, "status") == 0)
        return ex_json_status(v, &sw->status);
    if (strcmp(key, "retryAfter") == 0)
        return ex_json_ll(v, 0, EX_MAX_RETRY_AFTER, &sw->retry_after);
    if (strcmp(key, "outage") == 0)
        return ex_json_bool(v, &sw->outage);
    if (strcmp(key, "verbose") == 0)
        return ex_json_bool(v, &sw->verbose);
    if (strcmp(key, "resetStats") == 0)
        return ex_json_bool(v, reset);
    return -1;
}


static void
ex_reset_stats(struct ex_stats *st)
{
    uint64_t in_flight = st->in_flight;
    json_t *peers = st->peers;

    memset(st, 0, sizeof(*st));
    st->in_flight = in_flight;
    st->max_in_flight = in_flight;
    st->peers = peers;
    json_object_clear(peers);
}


/* POST /__control: all fields are checked before any is applied. */
static void
ex_control(struct ex_server *s, struct evhttp_request *req,
           struct ex_reply *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_t *body = json_loadb((const char *) evbuffer_pullup(in, -1), len,
                              0, NULL);
    struct ex_switches sw = s->sw;
    bool reset = false;
    const char *key;
    json_t *v;
    char msg[160];

    if (!json_is_object(body)) {
        json_decref(body);
        ex_error(r, 400, -1100, "The control body must be a JSON object.");
        return;
    }

    json_object_foreach(body, key, v) {
        if (ex_control_field(key, v, &sw, &reset) != 0) {
            snprintf(msg, sizeof(msg), "Bad control field '%.64s'.", key);
            json_decref(body);
            ex_error(r, 400, -1100, msg);
            return;
        }
    }

    json_decref(body);
    s->sw = sw;
    if (reset)
        ex_reset_stats(&s->stats);
    ex_ok(r, ex_switches_json(&s->sw));
}


/* /__control and /__stats: never delayed, failed or dropped, not counted. */
static void
ex_admin(struct ex_server *s, struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct ex_reply r = { 0 };

    if (strcmp(path, "/__stats") == 0 && cmd == EVHTTP_REQ_GET)
        ex_ok(&r, ex_stats_json(s));
    else if (strcmp(path, "/__control") == 0 && cmd == EVHTTP_REQ_GET)
        ex_ok(&r, ex_switches_json(&s->sw));
    else if (strcmp(path, "/__control") == 0 && cmd == EVHTTP_REQ_POST)
        ex_control(s, req, &r);
    else
        ex_error(&r, 404, -1000, "Unknown endpoint.");

    ex_send(s, req, path, &r, false);
}


/* ---- dispatch ---------------------------------------------------------- */

static const struct ex_route *
ex_route_find(const char *path)
{
    for (size_t i = 0; i < EX_COUNT(ex_routes); i++) {
        if (strcmp(ex_routes[i].path, path) == 0)
            return &ex_routes[i];
    }

    return NULL;
}


static int
ex_parse_params(struct evhttp_request *req, struct evkeyvalq *params)
{
    const char *query =
        evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));

    TAILQ_INIT(params);
    if (query == NULL)
        return 0;

    return evhttp_parse_query_str(query, params);
}


/* Builds the answer to a known endpoint, with the switches applied. */
static void
ex_answer(struct ex_server *s, struct evhttp_request *req,
          const struct ex_route *route, struct ex_reply *r)
{
    struct evkeyvalq params;

    if (route == NULL) {
        ex_error(r, 404, -1000, "Unknown endpoint.");
    } else if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        ex_error(r, 405, -1000, "Method not allowed.");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "GET");
    } else if (s->sw.error_rate > 0 && ex_random(s) < s->sw.error_rate) {
        s->stats.errors_injected++;
        ex_error(r, 500, -1000, EX_MSG_UNKNOWN);
    } else if (route->is_signed && s->sw.status != 0) {
        ex_forced(s, r);
    } else if (ex_parse_params(req, &params) != 0) {
        ex_error(r, 400, -1100, "Illegal characters found in a parameter.");
        evhttp_clear_headers(&params);
    } else {
        route->handle(s, req, &params, r);
        evhttp_clear_headers(&params);
    }
}


/*
 * Counts client connections by their address and port, so that a test can
 * tell whether a client keeps its connections alive and reuses them.
 */
static void
ex_note_peer(struct ex_server *s, struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    char *address = NULL;
    ev_uint16_t port = 0;
    char peer[80];

    if (conn == NULL || s->stats.peers == NULL)
        return;

    evhttp_connection_get_peer(conn, &address, &port);
    snprintf(peer, sizeof(peer), "%s:%u", address != NULL ? address : "?",
             (unsigned) port);
    json_object_set_new(s->stats.peers, peer, json_true());
}


static void
ex_on_request(struct evhttp_request *req, void *arg)
{
    struct ex_server *s = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const struct ex_route *route;
    struct ex_reply r = { 0 };

    if (path == NULL || *path == '\0')
        path = "/";

    if (strncmp(path, "/__", 3) == 0) {
        ex_admin(s, req, path);
        return;
    }

    route = ex_route_find(path);
    s->stats.requests[route != NULL ? route->slot : EX_SLOT_OTHER]++;
    ex_note_peer(s, req);

    if (s->sw.outage) {
        s->stats.outage_closed++;
        ex_drop(req);
        return;
    }

    ex_answer(s, req, route, &r);
    ex_send(s, req, path, &r, true);
}


/* ---- accounts ---------------------------------------------------------- */

static bool
ex_is_decimal(const char *s)
{
    size_t whole = strspn(s, "0123456789");
    size_t frac = 0;

    if (s[whole] == '.')
        frac = strspn(s + whole + 1, "0123456789");

    return whole + frac > 0
           && s[whole + (s[whole] == '.' ? 1 + frac : 0)] == '\0';
}


/* The value a missing field gets; NULL with *problem if it is required. */
static json_t *
ex_field_default(const struct ex_field *f, json_t *order,
                 json_int_t *next_id, long long now, const char **problem)
{
    char buf[48];
    json_t *t = json_object_get(order, "time");

    switch (f->kind) {
    case EX_KIND_ID:
        return json_integer((*next_id)++);
    case EX_KIND_CLIENT_ID:
        snprintf(buf, sizeof(buf), "ex-%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(order, "orderId")));
        return json_string(buf);
    case EX_KIND_TIME:
        return json_integer(t != NULL ? json_integer_value(t) : now);
    case EX_KIND_INT:
        return json_integer(strtoll(f->fallback, NULL, 10));
    case EX_KIND_BOOL:
        return json_boolean(strcmp(f->fallback, "true") == 0);
    default:
        break;
    }

    if (f->fallback == NULL)
        *problem = "is required";
    return f->fallback != NULL ? json_string(f->fallback) : NULL;
}


/* A given field, type-checked; numbers for decimals become strings. */
static json_t *
ex_field_given(const struct ex_field *f, json_t *v, const char **problem)
{
    char buf[64];

    switch (f->kind) {
    case EX_KIND_TEXT:
    case EX_KIND_CLIENT_ID:
        *problem = "must be a non-empty string";
        return json_string_length(v) > 0 ? json_incref(v) : NULL;
    case EX_KIND_DECIMAL:
        *problem = "must be a decimal string or a number >= 0";
        if (json_is_string(v) && ex_is_decimal(json_string_value(v)))
            return json_incref(v);
        if (!json_is_number(v) || json_number_value(v) < 0)
            return NULL;
        snprintf(buf, sizeof(buf), "%.8f", json_number_value(v));
        return json_string(buf);
    case EX_KIND_BOOL:
        *problem = "must be true or false";
        return json_is_boolean(v) ? json_incref(v) : NULL;
    default:
        *problem = "must be an integer";
        return json_is_integer(v) ? json_incref(v) : NULL;
    }
}


/* A full Binance-shaped order from a (possibly partial) file entry. */
static json_t *
ex_order_normalise(json_t *in, json_int_t *next_id, long long now,
                   const char **field, const char **problem)
{
    json_t *out = json_object();

    if (!json_is_object(in)) {
        *field = "order";
        *problem = "must be a JSON object";
        json_decref(out);
        return NULL;
    }

    for (size_t i = 0; i < EX_FIELD_COUNT; i++) {
        const struct ex_field *f = &ex_order_fields[i];
        json_t *given = json_object_get(in, f->name);
        json_t *v = given != NULL ? ex_field_given(f, given, problem)
                    : ex_field_default(f, out, next_id, now, problem);

        if (v == NULL) {
            *field = f->name;
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, f->name, v);
    }

    json_object_update_missing(out, in);
    return out;
}


static json_int_t
ex_max_order_id(json_t *raw)
{
    json_int_t max = 0;
    const char *key;
    json_t *account, *order;
    size_t i;

    json_object_foreach(raw, key, account) {
        json_array_foreach(json_object_get(account, "orders"), i, order) {
            json_t *id = json_object_get(order, "orderId");

            if (json_is_integer(id) && json_integer_value(id) > max)
                max = json_integer_value(id);
        }
    }

    return max;
}


static const char *
ex_account_problem(json_t *account)
{
    json_t *secret = json_object_get(account, "secret");
    json_t *orders = json_object_get(account, "orders");
    const char *key;
    json_t *v;

    if (!json_is_object(account))
        return "must be an object with \"secret\" and \"orders\"";
    if (json_string_length(secret) == 0)
        return "needs a non-empty \"secret\" string";
    if (orders != NULL && !json_is_array(orders))
        return "\"orders\" must be an array";

    json_object_foreach(account, key, v) {
        if (strcmp(key, "secret") != 0 && strcmp(key, "orders") != 0)
            return "has an unknown field (only \"secret\" and \"orders\")";
    }
    return NULL;
}


static json_t *
ex_account_normalise(const char *source, const char *key, json_t *account,
                     json_int_t *next_id, long long now)
{
    const char *problem = ex_account_problem(account);
    const char *field = NULL;
    json_t *orders = json_array();
    json_t *order;
    size_t i;

    if (problem != NULL) {
        fprintf(stderr, "exchange: %s: account \"%s\" %s\n", source, key,
                problem);
        json_decref(orders);
        return NULL;
    }

    json_array_foreach(json_object_get(account, "orders"), i, order) {
        json_t *norm = ex_order_normalise(order, next_id, now, &field,
                                          &problem);

        if (norm == NULL) {
            fprintf(stderr, "exchange: %s: account \"%s\" order %zu: "
                    "\"%s\" %s\n", source, key, i + 1, field, problem);
            json_decref(orders);
            return NULL;
        }
        json_array_append_new(orders, norm);
    }

    return json_pack("{s:O, s:o}", "secret",
                     json_object_get(account, "secret"), "orders", orders);
}


static json_t *
ex_accounts_normalise(const char *source, json_t *raw)
{
    json_int_t next_id = ex_max_order_id(raw) + 1;
    long long now = ex_now_ms();
    json_t *out = json_object();
    const char *key;
    json_t *account;

    json_object_foreach(raw, key, account) {
        json_t *norm = ex_account_normalise(source, key, account, &next_id,
                                            now);

        if (norm == NULL) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, key, norm);
    }

    return out;
}


/* The --accounts file, or the demo accounts when file is NULL. */
static json_t *
ex_accounts_load(const char *file)
{
    const char *source = file != NULL ? file : "demo accounts";
    json_error_t err;
    json_t *raw, *accounts;

    raw = file != NULL ? json_load_file(file, 0, &err)
                       : json_loads(ex_demo_accounts, 0, &err);
    if (raw == NULL) {
        fprintf(stderr, "exchange: %s: line %d: %s\n", source, err.line,
                err.text);
        return NULL;
    }

    if (!json_is_object(raw) || json_object_size(raw) == 0) {
        fprintf(stderr, "exchange: %s: must be a non-empty JSON object "
                "of API keys\n", source);
        json_decref(raw);
        return NULL;
    }

    accounts = ex_accounts_normalise(source, raw);
    json_decref(raw);
    return accounts;
}


/* ---- command line ------------------------------------------------------ */

static void
ex_usage(FILE *out)
{
    fprintf(out,
        "usage: exchange [options]\n"
        "  --port N          listen port (default 4100, 0 = any free port)\n"
        "  --bind ADDR       listen address (default 127.0.0.1)\n"
        "  --accounts FILE   API keys, secrets and orders (JSON); default:\n"
        "                    two built-in demo accounts\n"
        "  --latency-ms N    hold every answer back N ms\n"
        "  --error-rate P    answer this fraction of requests with 500\n"
        "  --status CODE     force signed endpoints to answer CODE\n"
        "                    (400..599, 0 = off; 429/418 add Retry-After)\n"
        "  --retry-after S   Retry-After seconds for 429/418 (default 2)\n"
        "  --outage          close every connection without answering\n"
        "  --seed N          seed for the error-rate draws\n"
        "  --verbose         one line per request\n"
        "  --help\n");
}


static int
ex_bad_value(const char *option, const char *value, const char *want)
{
    fprintf(stderr, "exchange: --%s must be %s, got \"%s\"\n", option, want,
            value);
    return -1;
}


/* One option with its argument into opt; -1 after printing a problem. */
static int
ex_option(const char *name, const char *arg, struct ex_options *opt)
{
    struct ex_switches *sw = &opt->sw;

    if (strcmp(name, "port") == 0 && ex_parse_ll(arg, 0, 65535,
                                                 &opt->port) != 0)
        return ex_bad_value(name, arg, "an integer in 0..65535");
    if (strcmp(name, "latency-ms") == 0
        && ex_parse_ll(arg, 0, EX_MAX_LATENCY_MS, &sw->latency_ms) != 0)
        return ex_bad_value(name, arg, "an integer in 0..600000");
    if (strcmp(name, "error-rate") == 0
        && ex_parse_rate(arg, &sw->error_rate) != 0)
        return ex_bad_value(name, arg, "a number in 0..1");
    if (strcmp(name, "status") == 0
        && (ex_parse_ll(arg, 0, 599, &sw->status) != 0
            || !ex_status_valid(sw->status)))
        return ex_bad_value(name, arg, "0 or a status in 400..599");
    if (strcmp(name, "retry-after") == 0
        && ex_parse_ll(arg, 0, EX_MAX_RETRY_AFTER, &sw->retry_after) != 0)
        return ex_bad_value(name, arg, "an integer in 0..86400");
    if (strcmp(name, "seed") == 0
        && ex_parse_ll(arg, LLONG_MIN, LLONG_MAX, &opt->seed) != 0)
        return ex_bad_value(name, arg, "an integer");
    if (strcmp(name, "bind") == 0)
        opt->bind = arg;
    if (strcmp(name, "accounts") == 0)
        opt->accounts = arg;
    return 0;
}


static const struct option ex_long_options[] = {
    { "port", required_argument, NULL, 0 },
    { "bind", required_argument, NULL, 0 },
    { "accounts", required_argument, NULL, 0 },
    { "latency-ms", required_argument, NULL, 0 },
    { "error-rate", required_argument, NULL, 0 },
    { "status", required_argument, NULL, 0 },
    { "retry-after", required_argument, NULL, 0 },
    { "seed", required_argument, NULL, 0 },
    { "outage", no_argument, NULL, 'o' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};


/* 0: run; 1: --help was printed; -1: bad usage (printed). */
static int
ex_parse_args(int argc, char **argv, struct ex_options *opt)
{
    int c, index;

    *opt = (struct ex_options) { .bind = "127.0.0.1",
                                 .port = EX_DEFAULT_PORT,
                                 .sw = { .retry_after = 2 } };

    while ((c = getopt_long(argc, argv, "", ex_long_options, &index)) != -1) {
        if (c == 'h') {
            ex_usage(stdout);
            return 1;
        }
        if (c == 'o' || c == 'v') {
            *(c == 'o' ? &opt->sw.outage : &opt->sw.verbose) = true;
            continue;
        }
        if (c != 0 || ex_option(ex_long_options[index].name, optarg,
                                opt) != 0) {
            ex_usage(stderr);
            return -1;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "exchange: unexpected argument \"%s\"\n",
                argv[optind]);
        return -1;
    }
    return 0;
}


/* ---- server ------------------------------------------------------------ */

static void
ex_on_signal(evutil_socket_t fd, short what, void *arg)
{
    struct ex_server *s = arg;

    (void) fd;
    (void) what;

    event_base_loopexit(s->base, NULL);
}


static int
ex_listen(struct ex_server *s, const struct ex_options *opt)
{
    struct evhttp_bound_socket *bound;
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    int port;

    bound = evhttp_bind_socket_with_handle(s->http, opt->bind,
                                           (ev_uint16_t) opt->port);
    if (bound == NULL) {
        fprintf(stderr, "exchange: cannot listen on %s:%lld: %s\n",
                opt->bind, opt->port, strerror(errno));
        return -1;
    }

    if (getsockname(evhttp_bound_socket_get_fd(bound),
                    (struct sockaddr *) &addr, &len) != 0)
        return -1;
    port = ntohs(addr.ss_family == AF_INET6
                 ? ((struct sockaddr_in6 *) &addr)->sin6_port
                 : ((struct sockaddr_in *) &addr)->sin_port);

    printf("exchange: listening on http://%s%s%s:%d (%zu accounts, "
           "%zu symbols)\n", strchr(opt->bind, ':') ? "[" : "", opt->bind,
           strchr(opt->bind, ':') ? "]" : "", port,
           json_object_size(s->accounts), EX_SYMBOL_COUNT);
    fflush(stdout);
    return 0;
}


/*
 * Keys each account's HMAC and prints its open orders, all and per symbol,
 * exactly as they would be printed per request.
 */
static int
ex_accounts_prepare(struct ex_server *s)
{
    const char *key;
    size_t i = 0;
    json_t *account;

    s->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    s->account_ids = json_object();
    s->account_list = calloc(json_object_size(s->accounts),
                             sizeof(*s->account_list));
    if (s->hmac == NULL || s->account_ids == NULL || s->account_list == NULL)
        goto fail;
    s->account_count = json_object_size(s->accounts);

    json_object_foreach(s->accounts, key, account) {
        struct ex_account *a = &s->account_list[i];
        const char *secret =
            json_string_value(json_object_get(account, "secret"));

        a->mac = ex_mac_new(s->hmac, secret);
        if (a->mac == NULL)
            goto fail;

        for (size_t k = 0; k < 1 + EX_SYMBOL_COUNT; k++) {
            json_t *list = ex_orders_of(account, k == 0 ? NULL
                                                 : ex_symbols[k - 1].name);

            a->orders[k] = json_dumps(list, JSON_COMPACT);
            json_decref(list);
            if (a->orders[k] == NULL)
                goto fail;
            a->orders_len[k] = strlen(a->orders[k]);
        }

        if (json_object_set_new(s->account_ids, key,
                                json_integer((json_int_t) i)) != 0)
            goto fail;
        i++;
    }
    return 0;

fail:
    fprintf(stderr, "exchange: cannot prepare the accounts\n");
    return -1;
}


/*
 * The changelist folds the event changes of one loop pass into one
 * epoll_ctl per descriptor: evhttp turns reading off and writing on for
 * every answer and back after it, four epoll_ctl calls a request without
 * it.  (Its known trap, descriptors shared through dup(), is not one of
 * ours.)
 */
static struct event_base *
ex_base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base = NULL;

    if (cfg != NULL
        && event_config_set_flag(cfg,
                                 EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
        base = event_base_new_with_config(cfg);
    if (cfg != NULL)
        event_config_free(cfg);

    return base != NULL ? base : event_base_new();
}


static int
ex_server_init(struct ex_server *s, const struct ex_options *opt)
{
    *s = (struct ex_server) { .sw = opt->sw };
    ex_seed(s, opt->seed);

    s->accounts = ex_accounts_load(opt->accounts);
    if (s->accounts == NULL)
        return -1;

    if (ex_accounts_prepare(s) != 0)
        return -1;

    s->stats.peers = json_object();
    s->base = ex_base_new();
    s->http = s->base != NULL ? evhttp_new(s->base) : NULL;
    if (s->http == NULL)
        return -1;

    evhttp_set_max_headers_size(s->http, EX_MAX_HEADERS_SIZE);
    evhttp_set_max_body_size(s->http, EX_MAX_BODY_SIZE);
    evhttp_set_gencb(s->http, ex_on_request, s);

    s->sigint = evsignal_new(s->base, SIGINT, ex_on_signal, s);
    s->sigterm = evsignal_new(s->base, SIGTERM, ex_on_signal, s);
    if (s->sigint == NULL || s->sigterm == NULL
        || event_add(s->sigint, NULL) != 0
        || event_add(s->sigterm, NULL) != 0)
        return -1;

    return ex_listen(s, opt);
}


/*
 * Hands answers still held by the latency back to evhttp (they go down with
 * their connections), then frees everything.
 */
static void
ex_server_free(struct ex_server *s)
{
    while (s->pending != NULL)
        ex_pending_finish(s->pending);

    if (s->sigint != NULL)
        event_free(s->sigint);
    if (s->sigterm != NULL)
        event_free(s->sigterm);
    if (s->http != NULL)
        evhttp_free(s->http);
    if (s->base != NULL)
        event_base_free(s->base);

    /* Last: the answers evhttp has just let go of referenced this text. */
    for (size_t i = 0; i < s->account_count; i++) {
        EVP_MAC_CTX_free(s->account_list[i].mac);
        for (size_t k = 0; k < 1 + EX_SYMBOL_COUNT; k++)
            free(s->account_list[i].orders[k]);
    }
    free(s->account_list);
    EVP_MAC_free(s->hmac);
    json_decref(s->account_ids);
    json_decref(s->accounts);
    json_decref(s->stats.peers);
}


int
main(int argc, char **argv)
{
    struct ex_options opt;
    struct ex_server s;
    int rc = ex_parse_args(argc, argv, &opt);

    if (rc != 0)
        return rc > 0 ? 0 : 2;

    signal(SIGPIPE, SIG_IGN);

    if (ex_server_init(&s, &opt) != 0) {
        ex_server_free(&s);
        return 1;
    }

    rc = event_base_dispatch(s.base) < 0 ? 1 : 0;
    ex_server_free(&s);
    return rc;
}

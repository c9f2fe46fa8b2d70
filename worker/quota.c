/*
 * Tenant quotas through Redis, with a replica-local fallback (see quota.h).
 * Worker process only; everything runs on the worker's event loop.
 *
 * Batching: requests for one tenant wait in one pending batch; a tenant has
 * at most one call in flight per worker, and the next batch goes out when
 * it returns.  So a hot tenant costs about one call per round trip, not
 * one per request, and a quiet one still gets its answer within one.
 *
 * Time budget: a batch's deadline runs from its first request, whether it
 * is still pending or already sent, so no request waits longer than
 * REDIS_TIMEOUT_MS for its decision.
 *
 * Lifetimes: a batch is on the pending list until it is sent, then on the
 * in-flight list and owned by hiredis until its reply callback runs
 * (hiredis calls it with a NULL reply when the connection goes away).  A
 * batch whose deadline passed first is decided by the fallback, leaves the
 * in-flight list, and is only freed by that later callback.
 *
 * The link: a TCP connection is not yet a working Redis (a stopped server
 * still accepts, a wrong password refuses every call).  It is up only once
 * AUTH, SELECT and SCRIPT LOAD are answered, and an error to any of them
 * drops it, with the reason workers report and the master logs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "quota.h"
#include "../shared/clock.h"
#include "../shared/log.h"

#define QUOTA_ANSWER_TIMEOUT_MS 500
#define QUOTA_BACKOFF_MIN_MS     100
#define QUOTA_BACKOFF_MAX_MS     5000
#define QUOTA_MAX_FAILURES       3       /* calls in a row, then reconnect */
#define QUOTA_HEARTBEAT_MS       5000
#define QUOTA_REPLICA_TTL_S      15
#define QUOTA_REPLICAS_KEY       "spark:replicas"

/*
 * GCRA for n requests in one step, in integer microseconds on the Redis
 * clock: the same arithmetic as shared/gcra.c.  A denied request writes
 * nothing; the key expires when the bucket would be full again.
 * ARGV: emission_us, burst, n.  Returns {admitted, remaining,
 * retry_after_us (-1 when all admitted), reset_after_us, now_us}.
 */
static const char quota_script[] =
    "local emission = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[2])\n"
    "local n = tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000000 + t[2]\n"
    "local tolerance = emission * burst\n"
    "local tat = tonumber(redis.call('GET', KEYS[1])) or now\n"
    "if tat < now then tat = now end\n"
    "local fit = math.floor((tolerance - (tat - now)) / emission)\n"
    "if fit < 0 then fit = 0 end\n"
    "local k = math.min(n, fit)\n"
    "tat = tat + k * emission\n"
    "if k > 0 then\n"
    "  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX',\n"
    "             math.ceil((tat - now) / 1000) + 1)\n"
    "end\n"
    "local retry = -1\n"
    "if k < n then retry = tat + emission - tolerance - now end\n"
    "return {k, math.floor((tolerance - (tat - now)) / emission), retry,\n"
    "        tat - now, now}\n";

enum quota_link {
    LINK_DOWN,                /* waiting out the reconnect delay */
    LINK_CONNECTING,          /* TCP under way */
    LINK_HANDSHAKE,           /* connected, AUTH/SELECT/SCRIPT LOAD owed */
    LINK_UP                   /* Redis answered: calls may go */
};

struct quota_wait {
    struct http_request  *req;
    quota_fn              fn;
    void                 *arg;
    struct quota_wait    *next;
};

struct quota_batch {
    struct quota         *q;
    struct quota_batch   *next;           /* in pending or in flight */
    char                  org[TENANT_ORG_MAX + 1];
    double                qps;
    long                  burst;
    long                  n;
    struct quota_wait    *head, **tail;
    struct event          deadline;
    int64_t               sent_us;
    unsigned              sent:1;
    unsigned              decided:1;
    unsigned              retried:1;
};

struct quota {
    struct event_base    *base;
    const struct config  *cfg;
    struct localquota    *local;
    char                  replica_id[160];
    int                   use_redis;
    const struct config_redis *rd;        /* REDIS_URL, checked at start */
    redisAsyncContext    *ac;
    enum quota_link       link;
    int                   handshake_left; /* its replies still owed */
    int                   attempts;       /* reconnects since last up */
    int                   failures;       /* calls failed or late in a row */
    int                   refused;        /* calls refused since an answer */
    int                   heartbeat_owed; /* its ZCARD not answered yet */
    int                   closing;        /* quota_free() under way */
    char                  drop_why[96];   /* for the disconnect callback */
    struct event         *reconnect_ev;
    struct event         *answer_timeout_ev;  /* connect, handshake, beat */
    struct event         *flush_ev;
    struct event         *heartbeat_ev;
    struct quota_batch   *pending;
    struct quota_batch   *inflight;       /* sent, not yet decided */
    struct timeval        budget;
    char                  sha[41];
    struct quota_counters counters;
    struct timespec       started;        /* for the warmup line */
    void                (*warm)(void *);  /* quota_warmup(), until called */
    void                 *warm_arg;
};

static void quota_connect(struct quota *q);
static void quota_heartbeat_cb(evutil_socket_t fd, short what, void *arg);


static void
quota_reply_wait(struct quota_wait *w, const char *org,
                 const struct quota_decision *d)
{
    w->fn(w->req, org, d, w->arg);
    free(w);
}


/* The replica-local bucket; share > 1 divides the quota among replicas. */
static void
quota_decide_local(struct quota *q, const char *org, double qps, long burst,
                   enum quota_source source, struct quota_wait *w)
{
    long share = 1;
    struct quota_decision d;
    struct gcra_result r;
    long k;

    if (source == QUOTA_DEGRADED) {
        share = q->counters.replicas_seen > 0
                ? (long) q->counters.replicas_seen
                : (long) q->cfg->hpa_min_replicas;
    }

    d.source = source;
    d.qps = qps / (double) share;
    d.limit = burst / share > 0 ? burst / share : 1;

    k = lq_take(q->local, org, d.qps, d.limit, 1, &r);
    d.admitted = k != 0;
    d.remaining = k < 0 ? d.limit : r.remaining;
    d.retry_after_us = k < 0 ? -1 : r.retry_after_us;
    d.reset_after_us = k < 0 ? 0 : r.reset_after_us;

    quota_reply_wait(w, org, &d);
}


/* Decides a wait without Redis, as REDIS_FAIL_MODE says. */
static void
quota_decide_fallback(struct quota *q, const char *org, double qps,
                      long burst, struct quota_wait *w)
{
    struct quota_decision d = { .limit = burst, .qps = qps,
                                .retry_after_us = -1 };

    switch (q->cfg->redis_fail_mode) {
    case REDIS_FAIL_LOCAL:
        quota_decide_local(q, org, qps, burst, QUOTA_DEGRADED, w);
        return;
    case REDIS_FAIL_OPEN:
        d.source = QUOTA_OPEN;
        d.admitted = 1;
        break;
    case REDIS_FAIL_CLOSED:
        d.source = QUOTA_CLOSED;
        d.admitted = 0;
        break;
    }

    quota_reply_wait(w, org, &d);
}


static void
quota_batch_fallback(struct quota_batch *b)
{
    struct quota_wait *w, *next;

    b->decided = 1;
    for (w = b->head; w != NULL; w = next) {
        next = w->next;
        quota_decide_fallback(b->q, b->org, b->qps, b->burst, w);
    }
    b->head = NULL;
    b->tail = &b->head;
}


static void
quota_batch_free(struct quota_batch *b)
{
    event_del(&b->deadline);
    free(b);
}


static void
quota_batch_apply(struct quota_batch *b, const redisReply *reply)
{
    long k = (long) reply->element[0]->integer;
    struct quota_decision d = {
        .source = QUOTA_REDIS,
        .limit = b->burst,
        .qps = b->qps,
        .retry_after_us = reply->element[2]->integer,
        .reset_after_us = reply->element[3]->integer,
    };
    long remaining = (long) reply->element[1]->integer;
    struct quota_wait *w, *next;
    long i = 0;

    b->decided = 1;
    for (w = b->head; w != NULL; w = next, i++) {
        next = w->next;
        d.admitted = i < k;
        d.remaining = d.admitted ? remaining + (k - 1 - i) : remaining;
        quota_reply_wait(w, b->org, &d);
    }
    b->head = NULL;
}


static int
quota_reply_ok(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
        return 0;
    }

    for (size_t i = 0; i < 5; i++) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER) {
            return 0;
        }
    }

    return 1;
}


static int quota_send(struct quota *q, struct quota_batch *b, int eval);


/*
 * Pending batches go out from a zero timeout: libevent runs it after the
 * reads that its next poll finds, so what arrives meanwhile joins them.
 */
static void
quota_flush_soon(struct quota *q)
{
    static const struct timeval now = { 0, 0 };

    if (!evtimer_pending(q->flush_ev, NULL)) {
        evtimer_add(q->flush_ev, &now);
    }
}


static struct quota_batch *
quota_find(struct quota_batch *list, const char *org)
{
    for (; list != NULL; list = list->next) {
        if (strcmp(list->org, org) == 0) {
            return list;
        }
    }

    return NULL;
}


static void
quota_unlink(struct quota_batch **list, struct quota_batch *b)
{
    for (; *list != NULL; list = &(*list)->next) {
        if (*list == b) {
            *list = b->next;
            return;
        }
    }
}


/* b is decided: off the in-flight list, and its tenant's next batch may go. */
static void
quota_landed(struct quota *q, struct quota_batch *b)
{
    quota_unlink(&q->inflight, b);

    if (!q->closing && quota_find(q->pending, b->org) != NULL) {
        quota_flush_soon(q);
    }
}


/*
 * Notes the first failure since Redis last answered: where and why, for
 * the master, which logs the replica's transition from what workers
 * report.  Each worker's own view is a debug line.
 */
static void
quota_note_lost(struct quota *q, const char *why)
{
    char *out = q->counters.redis_why;
    size_t size = sizeof(q->counters.redis_why);

    if (q->counters.redis_lost) {
        return;
    }

    if (snprintf(out, size, "%.64s:%d (%s)", q->rd->host, q->rd->port, why)
        >= (int) size)
    {
        /* a long reason is cut, and the line still reads */
        memcpy(out + size - 5, "...)", 5);
    }
    log_debug("REDIS", "%s unreachable", q->counters.redis_why);
    q->counters.redis_lost = 1;
}


/* The first outcome of connecting ends the warmup step, either way. */
static void
quota_warm(struct quota *q, const char *why)
{
    void (*done)(void *) = q->warm;
    double ms = clock_since_s(&q->started) * 1e3;

    if (done == NULL) {
        return;
    }
    if (why == NULL) {
        log_info("WARMUP", "quota script loaded into Redis in %.1f ms", ms);
    } else {
        log_warn("WARMUP", "Redis not ready after %.1f ms (%s); not waiting",
                 ms, why);
    }

    q->warm = NULL;
    done(q->warm_arg);
}


static void
quota_link_lost(struct quota *q, const char *why)
{
    int delay = clock_backoff_ms(QUOTA_BACKOFF_MIN_MS, QUOTA_BACKOFF_MAX_MS,
                                 (unsigned) q->attempts);
    struct timeval tv;

    if (q->closing) {
        return;
    }
    /* jitter: somewhere in [delay/2, delay], so replicas do not align */
    delay = delay / 2 + rand() % (delay / 2 + 1);

    q->link = LINK_DOWN;
    q->counters.redis_up = 0;
    q->attempts++;
    q->heartbeat_owed = 0;
    evtimer_del(q->answer_timeout_ev);
    quota_note_lost(q, why);
    quota_warm(q, why);

    /* what waits for a tenant's call in flight takes the fallback now */
    if (q->pending != NULL) {
        quota_flush_soon(q);
    }

    tv = clock_tv_ms(delay);
    evtimer_add(q->reconnect_ev, &tv);
}


/*
 * Ends the connection for why.  A connected context reports through
 * quota_disconnected_cb(), after hiredis has run the callbacks still owed
 * with NULL replies; inside a reply callback that happens once it returns.
 * A context still connecting has no disconnect callback, so this reports.
 */
static void
quota_drop(struct quota *q, const char *why)
{
    redisAsyncContext *ac = q->ac;

    if (ac == NULL) {
        return;
    }

    /* nothing more is sent on it meanwhile */
    q->link = LINK_DOWN;

    if (ac->c.flags & REDIS_CONNECTED) {
        snprintf(q->drop_why, sizeof(q->drop_why), "%s", why);
        redisAsyncFree(ac);
        return;
    }

    q->ac = NULL;
    redisAsyncFree(ac);
    quota_link_lost(q, why);
}


/*
 * Redis answered a quota call with an error or a reply of the wrong shape:
 * the batch took the fail mode, and the link counts as failing until a
 * call is answered, so the master reports it.  Some errors only end with
 * a new connection (READONLY after a failover), hence the drop after a few
 * in a row.
 */
static void
quota_call_refused(struct quota *q, const redisReply *reply)
{
    char why[96];

    snprintf(why, sizeof(why), "quota call refused: %s",
             reply->type == REDIS_REPLY_ERROR ? reply->str
             : "unexpected reply");
    log_debug("REDIS", "%s", why);
    q->refused = 1;
    quota_note_lost(q, why);

    if (++q->failures >= QUOTA_MAX_FAILURES) {
        quota_drop(q, why);
    }
}


/* A quota call was answered: Redis works, whatever failed before. */
static void
quota_call_answered(struct quota *q)
{
    q->failures = 0;
    if (q->refused) {
        q->refused = 0;
        q->attempts = 0;
        q->counters.redis_lost = 0;
        log_debug("REDIS", "quota calls are answered again");
    }
}


static void
quota_reply_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct quota_batch *b = privdata;
    struct quota *q = b->q;
    redisReply *reply = r;

    (void) ac;

    if (b->decided) {
        quota_batch_free(b);
        return;
    }

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR
        && strncmp(reply->str, "NOSCRIPT", 8) == 0 && !b->retried)
    {
        /* the script cache was flushed: send the script itself once */
        b->retried = 1;
        if (quota_send(q, b, 1) == 0) {
            return;
        }
        reply = NULL;           /* the context is going away */
    }

    quota_landed(q, b);

    if (!quota_reply_ok(reply)) {
        q->counters.redis_errors++;
        quota_batch_fallback(b);
        quota_batch_free(b);
        if (reply != NULL) {
            quota_call_refused(q, reply);
        }
        return;
    }

    quota_call_answered(q);
    q->counters.redis_answers++;
    q->counters.redis_rtt_us += (uint64_t) (clock_now_us() - b->sent_us);
    quota_batch_apply(b, reply);
    quota_batch_free(b);
}


static void
quota_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct quota_batch *b = arg;
    struct quota *q = b->q;
    char why[96];

    (void) fd;
    (void) what;

    /* Still pending behind its tenant's call in flight, which is late as
     * well and counts for both: no call of its own to count. */
    if (!b->sent) {
        quota_unlink(&q->pending, b);
        quota_batch_fallback(b);
        quota_batch_free(b);
        return;
    }

    /* Decide now; the batch stays with hiredis until its reply. */
    q->counters.redis_errors++;
    quota_landed(q, b);
    quota_batch_fallback(b);

    if (++q->failures >= QUOTA_MAX_FAILURES) {
        snprintf(why, sizeof(why), "%d calls in a row past the %d ms budget",
                 q->failures, q->cfg->redis_timeout_ms);
        log_debug("REDIS", "%s; reconnecting", why);
        quota_drop(q, why);
    }
}


/* Sends b; returns 0, or -1 when it could not be queued. */
static int
quota_send(struct quota *q, struct quota_batch *b, int eval)
{
    char key[TENANT_ORG_MAX + 16], emission[24], burst[24], n[24];
    const char *argv[7];
    size_t lens[7];

    snprintf(key, sizeof(key), "spark:rl:{%s}", b->org);
    snprintf(emission, sizeof(emission), "%lld",
             (long long) gcra_emission_us(b->qps));
    snprintf(burst, sizeof(burst), "%ld", b->burst);
    snprintf(n, sizeof(n), "%ld", b->n);

    argv[0] = eval ? "EVAL" : "EVALSHA";
    argv[1] = eval ? quota_script : q->sha;
    argv[2] = "1";
    argv[3] = key;
    argv[4] = emission;
    argv[5] = burst;
    argv[6] = n;
    for (int i = 0; i < 7; i++) {
        lens[i] = strlen(argv[i]);
    }

    if (q->ac == NULL
        || redisAsyncCommandArgv(q->ac, quota_reply_cb, b, 7, argv, lens)
           != REDIS_OK)
    {
        return -1;
    }

    q->counters.redis_calls++;
    if (!b->sent) {
        b->sent = 1;
        b->sent_us = clock_now_us();
    }
    return 0;
}


static void
quota_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct quota *q = arg;
    struct quota_batch *b, *next;
    int sent = 0;

    (void) fd;
    (void) what;

    b = q->pending;
    q->pending = NULL;

    for (; b != NULL; b = next) {
        next = b->next;
        if (q->link == LINK_UP && quota_find(q->inflight, b->org) != NULL) {
            /* goes when the tenant's call in flight returns */
            b->next = q->pending;
            q->pending = b;
        } else if (q->link == LINK_UP && quota_send(q, b, 0) == 0) {
            b->next = q->inflight;
            q->inflight = b;
            sent = 1;
        } else {
            quota_batch_fallback(b);
            quota_batch_free(b);
        }
    }

    /* Write the calls now rather than on the next EPOLLOUT: a loop turn
     * sooner, and no epoll_ctl pair around it. */
    if (sent) {
        redisAsyncHandleWrite(q->ac);
    }
}


/* The tenant's pending batch, or a new one whose deadline starts now. */
static struct quota_batch *
quota_batch_for(struct quota *q, const struct tenant *tn)
{
    struct quota_batch *b = quota_find(q->pending, tn->org);

    if (b != NULL) {
        return b;
    }

    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }

    b->q = q;
    snprintf(b->org, sizeof(b->org), "%s", tn->org);
    b->qps = tn->qps;
    b->burst = tn->burst;
    b->tail = &b->head;
    evtimer_assign(&b->deadline, q->base, quota_deadline_cb, b);
    evtimer_add(&b->deadline, &q->budget);

    quota_flush_soon(q);
    b->next = q->pending;
    q->pending = b;
    return b;
}


void
quota_take(struct quota *q, const struct tenant *tn, struct http_request *req,
           quota_fn fn, void *arg)
{
    struct quota_wait *w = malloc(sizeof(*w));
    struct quota_batch *b;

    if (w == NULL) {
        struct quota_decision d = { .source = QUOTA_CLOSED };

        fn(req, tn->org, &d, arg);
        return;
    }
    w->req = req;
    w->fn = fn;
    w->arg = arg;
    w->next = NULL;

    if (!q->use_redis) {
        quota_decide_local(q, tn->org, tn->qps, tn->burst, QUOTA_LOCAL, w);
        return;
    }

    b = q->link == LINK_UP ? quota_batch_for(q, tn) : NULL;
    if (b == NULL) {
        quota_decide_fallback(q, tn->org, tn->qps, tn->burst, w);
        return;
    }

    *b->tail = w;
    b->tail = &w->next;
    b->n++;
}


/*
 * Redis answered the whole handshake.  The first real reply is what clears
 * redis_lost, not the TCP connect; refused quota calls keep it set until
 * one is answered, so a link that connects but cannot decide never
 * reports itself back.
 */
static void
quota_link_up(struct quota *q)
{
    evtimer_del(q->answer_timeout_ev);
    q->link = LINK_UP;
    q->counters.redis_up = 1;
    q->failures = 0;
    if (!q->refused) {
        q->counters.redis_lost = 0;
        q->attempts = 0;
    }

    log_debug("REDIS", "%s:%d answers", q->rd->host, q->rd->port);
    quota_warm(q, NULL);
    quota_heartbeat_cb(-1, 0, q);
}


/* privdata names the command, for the reason an error reply gives. */
static void
quota_handshake_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct quota *q = ac->data;
    const char *command = privdata;
    redisReply *reply = r;
    char why[96];

    /* NULL: the context is going; its disconnect callback says why */
    if (reply == NULL || ac != q->ac || q->link != LINK_HANDSHAKE) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%s refused: %s", command, reply->str);
        quota_drop(q, why);
        return;
    }

    if (--q->handshake_left == 0) {
        quota_link_up(q);
    }
}


static void
quota_connected_cb(const redisAsyncContext *ac, int status)
{
    struct quota *q = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        q->ac = NULL;
        quota_link_lost(q, ac->errstr);
        return;
    }

    /* the answer timeout keeps running: it covers the handshake too */
    q->link = LINK_HANDSHAKE;
    log_debug("REDIS", "connected to %s:%d", q->rd->host, q->rd->port);
}


static void
quota_disconnected_cb(const redisAsyncContext *ac, int status)
{
    struct quota *q = ac->data;
    char why[sizeof(q->drop_why)];

    (void) status;

    snprintf(why, sizeof(why), "%s",
             q->drop_why[0] != '\0' ? q->drop_why
             : ac->err != 0 ? ac->errstr : "connection closed");
    q->drop_why[0] = '\0';
    q->ac = NULL;
    quota_link_lost(q, why);
}


static void
quota_answer_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct quota *q = arg;
    char why[96];

    (void) fd;
    (void) what;

    if (q->link == LINK_CONNECTING) {
        quota_drop(q, "connect timed out");
    } else if (q->link == LINK_HANDSHAKE) {
        snprintf(why, sizeof(why), "connected, but no reply in %d ms",
                 QUOTA_ANSWER_TIMEOUT_MS);
        quota_drop(q, why);
    } else if (q->link == LINK_UP && q->heartbeat_owed) {
        snprintf(why, sizeof(why), "no reply to the heartbeat in %d ms",
                 QUOTA_ANSWER_TIMEOUT_MS);
        quota_drop(q, why);
    }
}


static void
quota_reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    quota_connect(arg);
}


/* Queues the handshake, sent first once connected; counts its replies. */
static void
quota_handshake(struct quota *q, redisAsyncContext *ac)
{
    const struct config_redis *rd = q->rd;

    q->handshake_left = 0;

    if (rd->user[0] != '\0') {
        redisAsyncCommand(ac, quota_handshake_cb, "AUTH", "AUTH %s %s",
                          rd->user, rd->password);
        q->handshake_left++;
    } else if (rd->password[0] != '\0') {
        redisAsyncCommand(ac, quota_handshake_cb, "AUTH", "AUTH %s",
                          rd->password);
        q->handshake_left++;
    }

    if (rd->db != 0) {
        redisAsyncCommand(ac, quota_handshake_cb, "SELECT", "SELECT %d",
                          rd->db);
        q->handshake_left++;
    }

    redisAsyncCommand(ac, quota_handshake_cb, "SCRIPT LOAD", "SCRIPT LOAD %s",
                      quota_script);
    q->handshake_left++;
}


static void
quota_connect(struct quota *q)
{
    struct timeval tv = { 0, QUOTA_ANSWER_TIMEOUT_MS * 1000 };
    redisAsyncContext *ac;

    ac = redisAsyncConnect(q->rd->host, q->rd->port);
    if (ac == NULL || ac->err != 0) {
        char why[128];

        snprintf(why, sizeof(why), "%s",
                 ac != NULL ? ac->errstr : "out of memory");
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        quota_link_lost(q, why);
        return;
    }

    q->ac = ac;
    q->link = LINK_CONNECTING;
    q->drop_why[0] = '\0';
    ac->data = q;
    redisLibeventAttach(ac, q->base);
    redisAsyncSetConnectCallback(ac, quota_connected_cb);
    redisAsyncSetDisconnectCallback(ac, quota_disconnected_cb);
    quota_handshake(q, ac);

    evtimer_add(q->answer_timeout_ev, &tv);
}


static void
quota_replicas_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct quota *q = privdata;
    redisReply *reply = r;

    if (reply == NULL || ac != q->ac) {
        return;                 /* a connection that is going away */
    }

    q->heartbeat_owed = 0;
    evtimer_del(q->answer_timeout_ev);

    if (reply->type == REDIS_REPLY_INTEGER
        && reply->integer > 0)
    {
        q->counters.replicas_seen = (uint32_t) reply->integer;
    }
}


/*
 * Every replica notes itself in a sorted set; its size is the count of
 * replicas that share the quota, used to divide it when Redis is away.
 * The beat is also how a worker with no quota calls to make finds out
 * that Redis stopped answering: its reply is owed within
 * QUOTA_ANSWER_TIMEOUT_MS.
 */
static void
quota_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    struct quota *q = arg;
    long long now = (long long) time(NULL);
    struct timeval tv = clock_tv_ms(QUOTA_ANSWER_TIMEOUT_MS);

    (void) fd;
    (void) what;

    if (q->link != LINK_UP) {
        return;
    }

    redisAsyncCommand(q->ac, NULL, NULL, "ZADD %s %lld %s",
                      QUOTA_REPLICAS_KEY, now, q->replica_id);
    redisAsyncCommand(q->ac, NULL, NULL, "ZREMRANGEBYSCORE %s -inf %lld",
                      QUOTA_REPLICAS_KEY, now - QUOTA_REPLICA_TTL_S);
    redisAsyncCommand(q->ac, quota_replicas_cb, q, "ZCARD %s",
                      QUOTA_REPLICAS_KEY);
    q->heartbeat_owed = 1;
    evtimer_add(q->answer_timeout_ev, &tv);
}


static int
quota_script_sha(char out[41])
{
    unsigned char md[20];
    unsigned int len = 0;

    if (EVP_Digest(quota_script, strlen(quota_script), md, &len,
                   EVP_sha1(), NULL) != 1 || len != sizeof(md))
    {
        return -1;
    }

    for (int i = 0; i < 20; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
    return 0;
}


static int
quota_start_redis(struct quota *q)
{
    struct timeval beat = { QUOTA_HEARTBEAT_MS / 1000, 0 };

    if (quota_script_sha(q->sha) != 0) {
        log_error("REDIS", "EVP_Digest() of the quota script failed");
        return -1;
    }

    q->budget = clock_tv_ms(q->cfg->redis_timeout_ms);
    q->reconnect_ev = evtimer_new(q->base, quota_reconnect_cb, q);
    q->answer_timeout_ev = evtimer_new(q->base, quota_answer_timeout_cb, q);
    q->flush_ev = event_new(q->base, -1, 0, quota_flush_cb, q);
    q->heartbeat_ev = event_new(q->base, -1, EV_PERSIST, quota_heartbeat_cb,
                                q);
    if (q->reconnect_ev == NULL || q->answer_timeout_ev == NULL
        || q->flush_ev == NULL || q->heartbeat_ev == NULL)
    {
        return -1;
    }

    event_add(q->heartbeat_ev, &beat);
    quota_connect(q);
    return 0;
}


struct quota *
quota_new(struct event_base *base, const struct config *cfg,
          struct localquota *local, const char *replica_id)
{
    struct quota *q = calloc(1, sizeof(*q));

    if (q == NULL) {
        return NULL;
    }

    q->base = base;
    q->cfg = cfg;
    q->local = local;
    q->use_redis = cfg->redis_url[0] != '\0';
    q->rd = &cfg->redis;
    clock_gettime(CLOCK_MONOTONIC, &q->started);
    snprintf(q->replica_id, sizeof(q->replica_id), "%s", replica_id);
    srand((unsigned) (time(NULL) ^ getpid()));

    if (q->use_redis && quota_start_redis(q) != 0) {
        quota_free(q);
        return NULL;
    }

    return q;
}


void
quota_free(struct quota *q)
{
    struct event *evs[4];
    struct quota_batch *b, *next;

    if (q == NULL) {
        return;
    }
    q->closing = 1;

    for (b = q->pending; b != NULL; b = next) {
        next = b->next;
        quota_batch_fallback(b);
        quota_batch_free(b);
    }
    q->pending = NULL;
    if (q->ac != NULL) {
        /* runs the callbacks of batches still in flight */
        redisAsyncFree(q->ac);
    }

    evs[0] = q->reconnect_ev;
    evs[1] = q->answer_timeout_ev;
    evs[2] = q->flush_ev;
    evs[3] = q->heartbeat_ev;
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (evs[i] != NULL) {
            event_free(evs[i]);
        }
    }
    free(q);
}


void
quota_warmup(struct quota *q, void (*done)(void *), void *arg)
{
    if (!q->use_redis) {
        done(arg);
        return;
    }

    q->warm = done;
    q->warm_arg = arg;

    /* a connect that failed at once, inside quota_new() */
    if (q->counters.redis_lost) {
        quota_warm(q, q->counters.redis_why);
    }
}


void
quota_counters(const struct quota *q, struct quota_counters *out)
{
    *out = q->counters;
}

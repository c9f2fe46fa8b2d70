/*
 * Outbound HTTP through libcurl multi on libevent (see upstream.h).
 *
 * curl tells us which sockets to watch (up_socket_cb) and when to wake it
 * (up_timer_cb); we hand events back with curl_multi_socket_action() and
 * collect finished transfers with curl_multi_info_read().  curl's own
 * callbacks never call back into curl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "upstream.h"
#include "../shared/clock.h"
#include "../shared/tenants.h"
#include "../shared/log.h"

#define UP_QUEUE_PER_SLOT 8          /* queue length = cap * this */
#define UP_QUEUE_WAIT_MS  2000       /* longest wait for a free slot */
#define UP_BODY_MAX       (8 * 1024 * 1024)
#define UP_SPARE_MAX      64         /* easy handles kept for reuse */

struct up_job {
    struct upstream      *u;
    CURL                 *easy;
    struct curl_slist    *headers;
    struct evbuffer      *body;
    char                 *url;
    long                  retry_after_s;
    up_done_fn            fn;
    void                 *arg;
    struct event          deadline;   /* while queued */
    struct up_job        *next;       /* in the queue, or running */
    char                  error[CURL_ERROR_SIZE];
};

struct upstream {
    struct event_base    *base;
    const struct config  *cfg;
    CURLM                *multi;
    struct event         *timer;
    int                   cap;
    int                   inflight;
    int                   queued;
    struct up_job        *head, *tail;     /* waiting for a slot */
    struct up_job        *running;         /* added to the multi handle */
    CURL                 *spare[UP_SPARE_MAX];  /* reset handles to reuse */
    int                   nspare;
    struct up_sock       *socks;     /* by descriptor */
    int                   nsocks;
    int                   env_proxy; /* a proxy variable is set */
};

/*
 * A socket of curl's as the loop knows it.  curl stops watching a kept-alive
 * connection after each transfer and watches it again for the next one;
 * the registration stays in between (two epoll_ctl calls fewer a request)
 * and is dropped only when the idle socket stirs, or curl closes it.
 */
struct up_sock {
    struct event         *ev;
    short                 kind;      /* registered with; 0 when not */
    unsigned              watched:1; /* curl wants its events now */
};

static void up_check_done(struct upstream *u);
static size_t up_write_cb(char *data, size_t size, size_t n, void *arg);
static size_t up_header_cb(char *line, size_t size, size_t n, void *arg);
static int up_close_cb(void *arg, curl_socket_t s);


/*
 * Keeps an easy handle for the next request, or frees it.  Its options
 * stay set: up_start() replaces every per-request one.
 */
static void
up_spare(struct upstream *u, CURL *easy)
{
    if (u->nspare < UP_SPARE_MAX) {
        u->spare[u->nspare++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}


/*
 * Whether the environment names a proxy for libcurl.  Without one, the
 * handles say "no proxy" outright: libcurl would otherwise read the same
 * variables again for every transfer.
 */
static int
up_env_has_proxy(void)
{
    static const char *const names[] = {
        "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
        "all_proxy", "ALL_PROXY"
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *value = getenv(names[i]);

        if (value != NULL && value[0] != '\0') {
            return 1;
        }
    }
    return 0;
}


/* A new easy handle with the options every request shares. */
static CURL *
up_easy_new(struct upstream *u)
{
    const struct config *cfg = u->cfg;
    CURL *easy = curl_easy_init();

    if (easy == NULL) {
        return NULL;
    }

    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, up_close_cb);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, u);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, up_write_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, up_header_cb);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     (long) cfg->exchange_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) cfg->exchange_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "spark-executor");
    if (cfg->exchange_ca_file[0] != '\0') {
        curl_easy_setopt(easy, CURLOPT_CAINFO, cfg->exchange_ca_file);
    }
    if (!u->env_proxy) {
        curl_easy_setopt(easy, CURLOPT_PROXY, "");
        curl_easy_setopt(easy, CURLOPT_NOPROXY, "");
    }

    return easy;
}


static void
up_job_free(struct up_job *j)
{
    event_del(&j->deadline);
    if (j->easy != NULL) {
        up_spare(j->u, j->easy);
    }
    curl_slist_free_all(j->headers);
    if (j->body != NULL) {
        evbuffer_free(j->body);
    }
    free(j->url);
    free(j);
}


static void
up_finish(struct up_job *j, enum up_outcome outcome, long status)
{
    struct up_result r = { .outcome = outcome, .status = status,
                           .retry_after_s = j->retry_after_s,
                           .error = j->error };

    if (j->body != NULL) {
        r.len = evbuffer_get_length(j->body);
        r.body = (const char *) evbuffer_pullup(j->body, -1);
    }

    j->fn(&r, j->arg);
    up_job_free(j);
}


static size_t
up_write_cb(char *data, size_t size, size_t n, void *arg)
{
    struct up_job *j = arg;

    if (evbuffer_get_length(j->body) + size * n > UP_BODY_MAX) {
        return 0;                       /* curl fails the transfer */
    }

    evbuffer_add(j->body, data, size * n);
    return size * n;
}


static size_t
up_header_cb(char *line, size_t size, size_t n, void *arg)
{
    struct up_job *j = arg;

    if (size * n > 12 && strncasecmp(line, "Retry-After:", 12) == 0) {
        j->retry_after_s = strtol(line + 12, NULL, 10);
    }

    return size * n;
}


static int
up_start(struct up_job *j)
{
    struct upstream *u = j->u;

    j->easy = u->nspare > 0 ? u->spare[--u->nspare] : up_easy_new(u);
    if (j->easy == NULL) {
        return -1;
    }

    curl_easy_setopt(j->easy, CURLOPT_URL, j->url);
    curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(j->easy, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
    curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->error);

    if (curl_multi_add_handle(u->multi, j->easy) != CURLM_OK) {
        curl_easy_cleanup(j->easy);
        j->easy = NULL;
        return -1;
    }

    u->inflight++;
    j->next = u->running;
    u->running = j;
    return 0;
}


/* Starts queued jobs while there is room. */
static void
up_drain_queue(struct upstream *u)
{
    while (u->head != NULL && u->inflight < u->cap) {
        struct up_job *j = u->head;

        u->head = j->next;
        if (u->head == NULL) {
            u->tail = NULL;
        }
        u->queued--;
        event_del(&j->deadline);

        if (up_start(j) != 0) {
            snprintf(j->error, sizeof(j->error), "could not start");
            up_finish(j, UP_UNREACHABLE, 0);
        }
    }
}


static void
up_queue_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct up_job *j = arg, **p;
    struct upstream *u = j->u;

    (void) fd;
    (void) what;

    for (p = &u->head; *p != NULL; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            break;
        }
    }
    u->tail = NULL;
    for (struct up_job *t = u->head; t != NULL; t = t->next) {
        u->tail = t;
    }
    u->queued--;

    snprintf(j->error, sizeof(j->error), "no free outbound slot in time");
    up_finish(j, UP_BUSY, 0);
}


static enum up_outcome
up_outcome_of(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return UP_ANSWERED;
    case CURLE_OPERATION_TIMEDOUT:
        return UP_TIMEOUT;
    default:
        return UP_UNREACHABLE;
    }
}


/* Takes j off the multi handle and the running list. */
static void
up_unrun(struct upstream *u, struct up_job *j)
{
    struct up_job **p;

    for (p = &u->running; *p != NULL; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            break;
        }
    }

    curl_multi_remove_handle(u->multi, j->easy);
    u->inflight--;
}


static void
up_check_done(struct upstream *u)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
        struct up_job *j;
        long status = 0;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &j);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        up_unrun(u, j);

        if (msg->data.result != CURLE_OK && j->error[0] == '\0') {
            snprintf(j->error, sizeof(j->error), "%s",
                     curl_easy_strerror(msg->data.result));
        }
        up_finish(j, up_outcome_of(msg->data.result), status);
    }

    up_drain_queue(u);
}


/* Takes the socket's event off the loop. */
static void
up_sock_unregister(struct up_sock *sk)
{
    if (sk->kind != 0) {
        event_del(sk->ev);
        sk->kind = 0;
    }
    sk->watched = 0;
}


static void
up_event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct upstream *u = arg;
    int action = ((kind & EV_READ) ? CURL_CSELECT_IN : 0)
                 | ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;

    if (!u->socks[fd].watched) {
        /* an idle kept-alive connection stirred (closed by the exchange,
         * most likely): curl finds out when it next uses or prunes it */
        up_sock_unregister(&u->socks[fd]);
        return;
    }

    curl_multi_socket_action(u->multi, fd, action, &running);
    up_check_done(u);
}


static void
up_timeout_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct upstream *u = arg;
    int running;

    (void) fd;
    (void) kind;

    curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    up_check_done(u);
}


static int
up_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    struct upstream *u = arg;
    struct timeval tv = clock_tv_ms(timeout_ms);

    (void) multi;

    if (timeout_ms < 0) {
        evtimer_del(u->timer);
    } else {
        evtimer_add(u->timer, &tv);
    }

    return 0;
}


/* The record of descriptor s, with its event allocated. */
static struct up_sock *
up_sock_for(struct upstream *u, curl_socket_t s)
{
    if (s >= u->nsocks) {
        int n = s + 64;
        struct up_sock *socks = realloc(u->socks, (size_t) n * sizeof(*socks));

        if (socks == NULL) {
            return NULL;
        }
        memset(socks + u->nsocks, 0, (size_t) (n - u->nsocks) * sizeof(*socks));
        u->socks = socks;
        u->nsocks = n;
    }

    if (u->socks[s].ev == NULL) {
        u->socks[s].ev = event_new(u->base, s, EV_READ, up_event_cb, u);
        if (u->socks[s].ev == NULL) {
            return NULL;
        }
    }
    return &u->socks[s];
}


static int
up_socket_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
    struct upstream *u = arg;
    struct up_sock *sk;
    short kind;

    (void) easy;
    (void) sockp;

    if (what == CURL_POLL_REMOVE) {
        if (s < u->nsocks) {
            u->socks[s].watched = 0;     /* registration kept: see up_sock */
        }
        return 0;
    }

    sk = up_sock_for(u, s);
    if (sk == NULL) {
        return -1;
    }

    kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0)
           | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    sk->watched = 1;
    if (sk->kind == kind) {
        return 0;
    }

    up_sock_unregister(sk);
    sk->watched = 1;
    event_assign(sk->ev, u->base, s, kind, up_event_cb, u);
    if (event_add(sk->ev, NULL) != 0) {
        return -1;
    }
    sk->kind = kind;
    return 0;
}


/* curl closes a socket: off the loop first, so the descriptor's next user
 * starts clean. */
static int
up_close_cb(void *arg, curl_socket_t s)
{
    struct upstream *u = arg;

    if (s < u->nsocks) {
        up_sock_unregister(&u->socks[s]);
    }
    return close(s);
}


struct upstream *
up_new(struct event_base *base, const struct config *cfg, int cap)
{
    struct upstream *u = calloc(1, sizeof(*u));

    if (u == NULL) {
        return NULL;
    }

    u->base = base;
    u->cfg = cfg;
    u->env_proxy = up_env_has_proxy();
    u->cap = cap > 0 ? cap : 1;
    u->multi = curl_multi_init();
    u->timer = evtimer_new(base, up_timeout_cb, u);
    if (u->multi == NULL || u->timer == NULL) {
        log_error("UPSTREAM", "could not set up libcurl");
        up_free(u);
        return NULL;
    }

    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, up_socket_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, up_timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long) u->cap);
    curl_multi_setopt(u->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      (long) u->cap);
    return u;
}


void
up_free(struct upstream *u)
{
    struct up_job *j, *next;

    if (u == NULL) {
        return;
    }

    for (j = u->head; j != NULL; j = next) {
        next = j->next;
        snprintf(j->error, sizeof(j->error), "shutting down");
        up_finish(j, UP_BUSY, 0);
    }
    u->head = NULL;

    while (u->running != NULL) {
        j = u->running;
        up_unrun(u, j);
        snprintf(j->error, sizeof(j->error), "shutting down");
        up_finish(j, UP_BUSY, 0);
    }

    while (u->nspare > 0) {
        curl_easy_cleanup(u->spare[--u->nspare]);
    }
    if (u->multi != NULL) {
        curl_multi_cleanup(u->multi);
    }
    for (int i = 0; i < u->nsocks; i++) {
        if (u->socks[i].ev != NULL) {
            event_free(u->socks[i].ev);
        }
    }
    free(u->socks);
    if (u->timer != NULL) {
        event_free(u->timer);
    }
    free(u);
}


static struct up_job *
up_job_new(struct upstream *u, const char *path_and_query,
           const char *api_key, up_done_fn fn, void *arg)
{
    struct up_job *j = calloc(1, sizeof(*j));
    size_t len = strlen(u->cfg->exchange_base_url) + strlen(path_and_query);
    char key_header[sizeof("X-MBX-APIKEY: ") + TENANT_EXCHANGE_KEY_MAX];

    if (j == NULL) {
        return NULL;
    }

    j->u = u;
    j->fn = fn;
    j->arg = arg;
    j->body = evbuffer_new();
    j->url = malloc(len + 1);
    evtimer_assign(&j->deadline, u->base, up_queue_deadline_cb, j);

    if (api_key != NULL) {
        snprintf(key_header, sizeof(key_header), "X-MBX-APIKEY: %s", api_key);
        j->headers = curl_slist_append(NULL, key_header);
    }
    if (j->body == NULL || j->url == NULL
        || (api_key != NULL && j->headers == NULL))
    {
        up_job_free(j);
        return NULL;
    }

    snprintf(j->url, len + 1, "%s%s", u->cfg->exchange_base_url,
             path_and_query);
    return j;
}


void
up_get(struct upstream *u, const char *path_and_query, const char *api_key,
       up_done_fn fn, void *arg)
{
    struct timeval wait = clock_tv_ms(UP_QUEUE_WAIT_MS);
    struct up_result busy = { .outcome = UP_BUSY,
                              .error = "outbound queue full" };
    struct up_job *j;

    if (u->queued >= u->cap * UP_QUEUE_PER_SLOT) {
        fn(&busy, arg);
        return;
    }

    j = up_job_new(u, path_and_query, api_key, fn, arg);
    if (j == NULL) {
        busy.error = "out of memory";
        fn(&busy, arg);
        return;
    }

    if (u->inflight < u->cap && up_start(j) == 0) {
        return;
    }

    if (u->tail != NULL) {
        u->tail->next = j;
    } else {
        u->head = j;
    }
    u->tail = j;
    u->queued++;
    evtimer_add(&j->deadline, &wait);
}


void
up_set_cap(struct upstream *u, int cap)
{
    u->cap = cap > 0 ? cap : 1;
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long) u->cap);
    curl_multi_setopt(u->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      (long) u->cap);
    up_drain_queue(u);
}


int
up_inflight(const struct upstream *u)
{
    return u->inflight;
}


int
up_cap(const struct upstream *u)
{
    return u->cap;
}

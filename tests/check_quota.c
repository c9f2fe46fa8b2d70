/*
 * Unit tests for worker/quota.c against a fake Redis on loopback, in this
 * process and on the quota's own event loop: when the link counts as up,
 * what a refused or unanswered call decides, and how long a request may
 * wait.  The quota against a real redis-server is covered by
 * tests/blackbox.py.
 */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "../worker/quota.h"
#include "check_run.h"

enum fake_mode {
    FAKE_SILENT,              /* the kernel accepts; nobody ever reads */
    FAKE_WRONGPASS,           /* AUTH is refused */
    FAKE_HANG_CALLS,          /* answers until the first quota call */
    FAKE_REFUSE_CALLS,        /* quota calls get an error reply */
    FAKE_NOSCRIPT_ONCE        /* the first EVALSHA finds no script */
};

struct fake {
    enum fake_mode           mode;
    int                      fd;          /* FAKE_SILENT's socket */
    struct evconnlistener   *listener;
    struct bufferevent      *bev;
    int                      port;
    int                      hung;
    int                      noscript_sent;
    char                     seen[8192];  /* what the client sent */
    size_t                   seen_len;
};

struct taken {
    int                 done;
    struct quota_decision d;
    int64_t             asked_us;
    int64_t             waited_us;
};

struct harness {
    struct event_base  *base;
    struct config       cfg;
    struct localquota  *lq;
    struct quota       *q;
    struct fake         fake;
    int                 ever_up;      /* redis_up seen at some tick */
    int               (*until)(struct harness *h);
};

static const char reply_call[] = "*5\r\n:1\r\n:2\r\n:-1\r\n:250000\r\n:0\r\n";


/* Length of the first whole command in buf, its name in name; 0 if cut. */
static size_t
fake_command(const char *buf, size_t len, char *name, size_t size)
{
    const char *p = buf, *end = buf + len, *eol;
    long n;

    name[0] = '\0';
    eol = memchr(p, '\n', len);
    if (eol == NULL || *p != '*') {
        return 0;
    }
    n = strtol(p + 1, NULL, 10);
    p = eol + 1;

    for (long i = 0; i < n; i++) {
        long arg;

        eol = p < end ? memchr(p, '\n', (size_t) (end - p)) : NULL;
        if (eol == NULL) {
            return 0;
        }
        arg = strtol(p + 1, NULL, 10);
        if (eol + 1 + arg + 2 > end) {
            return 0;
        }
        if (i == 0) {
            snprintf(name, size, "%.*s", (int) arg, eol + 1);
        }
        p = eol + 1 + arg + 2;
    }

    return (size_t) (p - buf);
}


static const char *
fake_reply(struct fake *f, const char *name)
{
    if (strcmp(name, "AUTH") == 0) {
        return f->mode == FAKE_WRONGPASS
               ? "-WRONGPASS invalid username-password pair or user is "
                 "disabled.\r\n"
               : "+OK\r\n";
    }
    if (strcmp(name, "SELECT") == 0) {
        return "+OK\r\n";
    }
    if (strcmp(name, "SCRIPT") == 0) {
        return "$40\r\n0123456789012345678901234567890123456789\r\n";
    }
    if (strcmp(name, "EVAL") == 0) {
        return reply_call;
    }
    if (strcmp(name, "EVALSHA") != 0) {
        return ":1\r\n";                /* the heartbeat's ZADD and ZCARD */
    }

    switch (f->mode) {
    case FAKE_HANG_CALLS:
        f->hung = 1;
        return NULL;
    case FAKE_REFUSE_CALLS:
        return "-NOPERM this user has no permissions to run the 'evalsha' "
               "command\r\n";
    case FAKE_NOSCRIPT_ONCE:
        if (!f->noscript_sent) {
            f->noscript_sent = 1;
            return "-NOSCRIPT No matching script. Please use EVAL.\r\n";
        }
        return reply_call;
    default:
        return reply_call;
    }
}


static void
fake_read_cb(struct bufferevent *bev, void *arg)
{
    struct fake *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char name[32];
    size_t len, used;
    const char *buf;

    for (;;) {
        len = evbuffer_get_length(in);
        buf = len > 0 ? (const char *) evbuffer_pullup(in, -1) : NULL;
        used = buf != NULL ? fake_command(buf, len, name, sizeof(name)) : 0;
        if (used == 0) {
            return;
        }

        if (f->seen_len + used < sizeof(f->seen)) {
            memcpy(f->seen + f->seen_len, buf, used);
            f->seen_len += used;
        }
        evbuffer_drain(in, used);

        if (f->hung || f->mode == FAKE_SILENT) {
            continue;
        }
        buf = fake_reply(f, name);
        if (buf != NULL) {
            bufferevent_write(bev, buf, strlen(buf));
        }
    }
}


static void
fake_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
               struct sockaddr *sa, int len, void *arg)
{
    struct fake *f = arg;

    (void) sa;
    (void) len;

    /* one client at a time: a reconnect replaces the last one */
    if (f->bev != NULL) {
        bufferevent_free(f->bev);
    }
    f->hung = 0;
    f->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
                                    BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(f->bev, fake_read_cb, NULL, NULL, f);
    bufferevent_enable(f->bev, EV_READ);
}


static void
fake_start(struct fake *f, struct event_base *base, enum fake_mode mode)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    int fd;

    memset(f, 0, sizeof(*f));
    f->mode = mode;
    f->fd = -1;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sin, &len), 0);
    f->port = ntohs(sin.sin_port);

    if (mode == FAKE_SILENT) {
        ck_assert_int_eq(listen(fd, 16), 0);
        f->fd = fd;
        return;
    }

    evutil_make_socket_nonblocking(fd);
    f->listener = evconnlistener_new(base, fake_accept_cb, f,
                                     LEV_OPT_CLOSE_ON_FREE, 16, fd);
    ck_assert_ptr_nonnull(f->listener);
}


static void
fake_stop(struct fake *f)
{
    if (f->bev != NULL) {
        bufferevent_free(f->bev);
    }
    if (f->listener != NULL) {
        evconnlistener_free(f->listener);
    }
    if (f->fd >= 0) {
        close(f->fd);
    }
}


static void
harness_start(struct harness *h, enum fake_mode mode, const char *userinfo,
              int timeout_ms)
{
    const char *why = NULL;

    memset(h, 0, sizeof(*h));
    h->base = event_base_new();
    ck_assert_ptr_nonnull(h->base);
    fake_start(&h->fake, h->base, mode);

    snprintf(h->cfg.redis_url, sizeof(h->cfg.redis_url),
             "redis://%s127.0.0.1:%d/0", userinfo, h->fake.port);
    ck_assert_int_eq(config_parse_redis_url(h->cfg.redis_url, &h->cfg.redis,
                                            &why), 0);
    h->cfg.redis_fail_mode = REDIS_FAIL_LOCAL;
    h->cfg.redis_timeout_ms = timeout_ms;
    h->cfg.hpa_min_replicas = 2;

    h->lq = lq_create();
    ck_assert_ptr_nonnull(h->lq);
    h->q = quota_new(h->base, &h->cfg, h->lq, "replica-under-test");
    ck_assert_ptr_nonnull(h->q);
}


static void
harness_stop(struct harness *h)
{
    quota_free(h->q);
    fake_stop(&h->fake);
    lq_destroy(h->lq);
    event_base_free(h->base);
}


static struct quota_counters
harness_counters(const struct harness *h)
{
    struct quota_counters c;

    quota_counters(h->q, &c);
    c.redis_why[sizeof(c.redis_why) - 1] = '\0';
    return c;
}


static void
harness_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct harness *h = arg;

    (void) fd;
    (void) what;

    h->ever_up |= harness_counters(h).redis_up != 0;
    if (h->until != NULL && h->until(h)) {
        event_base_loopbreak(h->base);
    }
}


static void
harness_limit_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    event_base_loopbreak(arg);
}


/* Runs the loop for ms, or until until(h) holds; returns whether it does. */
static int
harness_run(struct harness *h, int ms, int (*until)(struct harness *h))
{
    struct timeval tick = { 0, 2000 };
    struct timeval limit = { ms / 1000, (ms % 1000) * 1000 };
    struct event *t, *l;

    h->until = until;
    t = event_new(h->base, -1, EV_PERSIST, harness_tick_cb, h);
    l = evtimer_new(h->base, harness_limit_cb, h->base);
    event_add(t, &tick);
    evtimer_add(l, &limit);

    event_base_dispatch(h->base);

    event_free(t);
    event_free(l);
    h->until = NULL;
    return until == NULL || until(h);
}


static int
harness_up(struct harness *h)
{
    return harness_counters(h).redis_up != 0;
}


static int
harness_lost(struct harness *h)
{
    return harness_counters(h).redis_lost != 0;
}


static void
taken_cb(struct http_request *req, const char *org,
         const struct quota_decision *d, void *arg)
{
    struct taken *t = arg;

    (void) req;
    (void) org;

    t->done = 1;
    t->d = *d;
    t->waited_us = lq_now_us() - t->asked_us;
}


static void
harness_take(struct harness *h, struct taken *t)
{
    static struct tenant tn = { .org = "orgT", .qps = 4, .burst = 3 };

    memset(t, 0, sizeof(*t));
    t->asked_us = lq_now_us();
    quota_take(h->q, &tn, NULL, taken_cb, t);
}


START_TEST(a_server_that_accepts_but_never_answers_is_not_up)
{
    struct harness h;
    struct quota_counters c;
    struct taken t;

    harness_start(&h, FAKE_SILENT, "", 25);

    /* the handshake times out, and the reconnect connects again */
    harness_run(&h, 800, NULL);

    c = harness_counters(&h);
    ck_assert_int_eq(h.ever_up, 0);
    ck_assert_uint_eq(c.redis_lost, 1);
    ck_assert_msg(strstr(c.redis_why, "no reply") != NULL, "%s",
                  c.redis_why);

    /* meanwhile decisions take the fail mode at once */
    harness_take(&h, &t);
    ck_assert_int_eq(t.done, 1);
    ck_assert_int_eq(t.d.source, QUOTA_DEGRADED);

    harness_stop(&h);
}
END_TEST


START_TEST(a_refused_auth_drops_the_link_with_the_reason)
{
    static const char auth[] =
        "$4\r\nAUTH\r\n$5\r\nspark\r\n$7\r\nhunter2\r\n";
    struct harness h;
    struct quota_counters c;

    harness_start(&h, FAKE_WRONGPASS, "spark:hunter2@", 25);

    ck_assert(harness_run(&h, 1000, harness_lost));

    c = harness_counters(&h);
    ck_assert_int_eq(h.ever_up, 0);
    ck_assert_msg(strstr(c.redis_why, "AUTH refused: WRONGPASS") != NULL,
                  "%s", c.redis_why);
    ck_assert_ptr_null(strstr(c.redis_why, "hunter2"));
    /* the user of the URL goes with the password */
    ck_assert_ptr_nonnull(memmem(h.fake.seen, h.fake.seen_len, auth,
                                 sizeof(auth) - 1));

    harness_stop(&h);
}
END_TEST


START_TEST(a_request_behind_a_hung_call_waits_at_most_the_budget)
{
    struct harness h;
    struct taken first, second;

    harness_start(&h, FAKE_HANG_CALLS, "", 100);
    ck_assert(harness_run(&h, 1000, harness_up));

    /* the second joins a batch that waits for the first's call */
    harness_take(&h, &first);
    harness_run(&h, 40, NULL);
    harness_take(&h, &second);
    harness_run(&h, 1000, NULL);

    ck_assert_int_eq(first.done, 1);
    ck_assert_int_eq(second.done, 1);
    ck_assert_int_eq(first.d.source, QUOTA_DEGRADED);
    ck_assert_int_eq(second.d.source, QUOTA_DEGRADED);
    ck_assert_msg(first.waited_us < 130000, "%lld us",
                  (long long) first.waited_us);
    ck_assert_msg(second.waited_us < 130000, "%lld us",
                  (long long) second.waited_us);

    harness_stop(&h);
}
END_TEST


START_TEST(refused_calls_take_the_fail_mode_and_count_as_failing)
{
    struct harness h;
    struct quota_counters c;
    struct taken t;

    harness_start(&h, FAKE_REFUSE_CALLS, "", 100);
    ck_assert(harness_run(&h, 1000, harness_up));

    harness_take(&h, &t);
    harness_run(&h, 50, NULL);

    c = harness_counters(&h);
    ck_assert_int_eq(t.done, 1);
    ck_assert_int_eq(t.d.source, QUOTA_DEGRADED);
    ck_assert_uint_eq(c.redis_errors, 1);
    ck_assert_uint_eq(c.redis_lost, 1);
    ck_assert_msg(strstr(c.redis_why, "NOPERM") != NULL, "%s", c.redis_why);

    /* a few in a row reconnect; the new link answers its handshake, but
     * it is still failing until a call is answered */
    for (int i = 0; i < 3; i++) {
        harness_take(&h, &t);
        harness_run(&h, 50, NULL);
    }
    harness_run(&h, 300, NULL);
    ck_assert(harness_up(&h));
    ck_assert(harness_lost(&h));

    harness_stop(&h);
}
END_TEST


START_TEST(a_flushed_script_is_sent_again_and_decides)
{
    struct harness h;
    struct quota_counters c;
    struct taken t;

    harness_start(&h, FAKE_NOSCRIPT_ONCE, "", 100);
    ck_assert(harness_run(&h, 1000, harness_up));

    harness_take(&h, &t);
    harness_run(&h, 50, NULL);

    c = harness_counters(&h);
    ck_assert_int_eq(t.done, 1);
    ck_assert_int_eq(t.d.source, QUOTA_REDIS);
    ck_assert_int_eq(t.d.admitted, 1);
    ck_assert_uint_eq(c.redis_calls, 2);
    ck_assert_uint_eq(c.redis_errors, 0);
    ck_assert_uint_eq(c.redis_lost, 0);

    harness_stop(&h);
}
END_TEST


int
main(void)
{
    Suite *s = suite_create("quota");
    TCase *tc = tcase_create("link");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, a_server_that_accepts_but_never_answers_is_not_up);
    tcase_add_test(tc, a_refused_auth_drops_the_link_with_the_reason);
    tcase_add_test(tc, a_request_behind_a_hung_call_waits_at_most_the_budget);
    tcase_add_test(tc, refused_calls_take_the_fail_mode_and_count_as_failing);
    tcase_add_test(tc, a_flushed_script_is_sent_again_and_decides);
    suite_add_tcase(s, tc);

    return check_run(s);
}

/*
 * Unit tests for worker/quota.c against a real redis-server, with the
 * quota in this process on its own event loop: when the link counts as
 * up, what a refused or unanswered call decides, and how long a request
 * may wait.  Each case starts its own redis-server on a free loopback
 * port and kills it at its end.  A server stopped with SIGSTOP is one
 * that accepts (the kernel completes the handshake) but never answers;
 * ACL users refuse AUTH or the quota calls.  The service as a whole
 * against Redis is covered by tests/blackbox.py.
 */
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "../shared/clock.h"
#include "../worker/quota.h"
#include "check_run.h"

#define REDIS_START_TRIES   5
#define REDIS_START_MS      5000

struct redis {
    pid_t               pid;
    int                 port;
    int                 paused;
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
    struct redis        redis;
    int                 ever_up;      /* redis_up seen at some tick */
    int               (*until)(struct harness *h);
};

/* An ACL user that may run everything. */
static const char *const user_spark[] = {
    "--user", "spark", "on", ">rightpass", "~*", "&*", "+@all", NULL
};

/* One whose handshake passes (SCRIPT LOAD) but whose calls are refused. */
static const char *const user_spark_without_calls[] = {
    "--user", "spark", "on", ">rightpass", "~*", "&*", "+@all",
    "-evalsha", "-eval", NULL
};


static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

    nanosleep(&ts, NULL);
}


/* A loopback port nobody listens on now (another may take it meanwhile). */
static int
redis_free_port(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    int fd;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sin, &len), 0);
    close(fd);

    return ntohs(sin.sin_port);
}


/*
 * One command over a new blocking connection; the reply, for the caller
 * to free, or NULL when the server cannot be reached or does not answer
 * within a second.
 */
__attribute__((format(printf, 2, 3)))
static redisReply *
redis_command(const struct redis *r, const char *fmt, ...)
{
    struct timeval tv = { 1, 0 };
    redisContext *c;
    redisReply *reply = NULL;
    va_list ap;

    c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c != NULL && c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK) {
        va_start(ap, fmt);
        reply = redisvCommand(c, fmt, ap);
        va_end(ap);
    }

    redisFree(c);
    return reply;
}


/* Whether the server on r->port answers, and is the one r started. */
static int
redis_answers(const struct redis *r)
{
    redisReply *reply = redis_command(r, "INFO server");
    char pid[32];
    int ours;

    snprintf(pid, sizeof(pid), "process_id:%d\r\n", (int) r->pid);
    ours = reply != NULL && reply->type == REDIS_REPLY_STRING
           && strstr(reply->str, pid) != NULL;

    freeReplyObject(reply);
    return ours;
}


/* The child: dies with this process, even from a failed assertion. */
static void
redis_exec(pid_t parent, char *const argv[])
{
    int null;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(127);
    }

    null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
    }
    close_range(3, ~0U, 0);

    execvp(argv[0], argv);
    _exit(127);
}


/* Starts redis-server on port; 0 once it answers, -1 if it exited. */
static int
redis_spawn(struct redis *r, int port, const char *const *rules)
{
    const char *argv[32] = {
        "redis-server", "--port", NULL, "--bind", "127.0.0.1",
        "--save", "", "--appendonly", "no"
    };
    char port_arg[16];
    pid_t parent = getpid();
    size_t n = 9;

    snprintf(port_arg, sizeof(port_arg), "%d", port);
    argv[2] = port_arg;
    for (; rules != NULL && *rules != NULL; rules++) {
        ck_assert_uint_lt(n, sizeof(argv) / sizeof(argv[0]) - 1);
        argv[n++] = *rules;
    }

    r->port = port;
    r->pid = fork();
    ck_assert_int_ge(r->pid, 0);
    if (r->pid == 0) {
        redis_exec(parent, (char *const *) argv);
    }

    for (int waited = 0; waited < REDIS_START_MS; waited += 5) {
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            return -1;          /* most likely, the port was taken */
        }
        if (redis_answers(r)) {
            return 0;
        }
        sleep_ms(5);
    }

    ck_abort_msg("redis-server on port %d did not answer in %d ms", port,
                 REDIS_START_MS);
    return -1;
}


/* A redis-server without persistence, rules added to its command line. */
static void
redis_start(struct redis *r, const char *const *rules)
{
    memset(r, 0, sizeof(*r));

    for (int i = 0; i < REDIS_START_TRIES; i++) {
        if (redis_spawn(r, redis_free_port(), rules) == 0) {
            return;
        }
    }

    ck_abort_msg("redis-server did not start in %d tries", REDIS_START_TRIES);
}


/* The state letter of /proc/PID/stat, or '?'. */
static char
redis_state(const struct redis *r)
{
    char path[64], buf[256], *paren;
    FILE *f;
    size_t len;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) r->pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return '?';
    }
    len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';

    /* "pid (comm) S ...": the comm may hold spaces, not a ')' then ' ' */
    paren = strrchr(buf, ')');
    return paren != NULL && paren[1] == ' ' ? paren[2] : '?';
}


/* Stops the server; returns once it is stopped, so nothing more is read. */
static void
redis_pause(struct redis *r)
{
    ck_assert_int_eq(kill(r->pid, SIGSTOP), 0);
    r->paused = 1;

    for (int waited = 0; redis_state(r) != 'T'; waited++) {
        ck_assert_msg(waited < 1000, "redis-server %d did not stop",
                      (int) r->pid);
        sleep_ms(1);
    }
}


static void
redis_stop(struct redis *r)
{
    if (r->pid <= 0) {
        return;
    }

    if (r->paused) {
        kill(r->pid, SIGCONT);
    }
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}


/* Whether ACL LOG holds an entry for reason and username. */
static int
redis_acl_logged(const struct redis *r, const char *reason,
                 const char *username)
{
    redisReply *log = redis_command(r, "ACL LOG");
    int found = 0;

    ck_assert_ptr_nonnull(log);
    ck_assert_int_eq(log->type, REDIS_REPLY_ARRAY);

    for (size_t i = 0; i < log->elements && !found; i++) {
        const redisReply *e = log->element[i];
        int reason_is = 0, user_is = 0;

        /* each entry: field, value, field, value, ... */
        for (size_t j = 0; j + 1 < e->elements; j += 2) {
            const redisReply *k = e->element[j], *v = e->element[j + 1];

            if (k->type != REDIS_REPLY_STRING
                || v->type != REDIS_REPLY_STRING)
            {
                continue;
            }
            reason_is |= strcmp(k->str, "reason") == 0
                         && strcmp(v->str, reason) == 0;
            user_is |= strcmp(k->str, "username") == 0
                       && strcmp(v->str, username) == 0;
        }
        found = reason_is && user_is;
    }

    freeReplyObject(log);
    return found;
}


/* A redis-server to connect to, started with rules; no quota yet. */
static void
harness_redis(struct harness *h, const char *const *rules)
{
    memset(h, 0, sizeof(*h));
    redis_start(&h->redis, rules);
}


/* The quota under test, connecting at once to the harness' server. */
static void
harness_quota(struct harness *h, const char *userinfo, int timeout_ms)
{
    const char *why = NULL;

    h->base = event_base_new();
    ck_assert_ptr_nonnull(h->base);

    snprintf(h->cfg.redis_url, sizeof(h->cfg.redis_url),
             "redis://%s127.0.0.1:%d/0", userinfo, h->redis.port);
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
harness_start(struct harness *h, const char *const *rules,
              const char *userinfo, int timeout_ms)
{
    harness_redis(h, rules);
    harness_quota(h, userinfo, timeout_ms);
}


static void
harness_stop(struct harness *h)
{
    quota_free(h->q);
    lq_destroy(h->lq);
    event_base_free(h->base);
    redis_stop(&h->redis);
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
    t->waited_us = clock_now_us() - t->asked_us;
}


static void
harness_take(struct harness *h, struct taken *t)
{
    static struct tenant tn = { .org = "orgT", .qps = 4, .burst = 3 };

    memset(t, 0, sizeof(*t));
    t->asked_us = clock_now_us();
    quota_take(h->q, &tn, NULL, taken_cb, t);
}


START_TEST(a_server_that_accepts_but_never_answers_is_not_up)
{
    struct harness h;
    struct quota_counters c;
    struct taken t;

    harness_redis(&h, NULL);
    redis_pause(&h.redis);
    harness_quota(&h, "", 25);

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
    struct harness h;
    struct quota_counters c;

    harness_start(&h, user_spark, "spark:hunter2@", 25);

    ck_assert(harness_run(&h, 1000, harness_lost));

    c = harness_counters(&h);
    ck_assert_int_eq(h.ever_up, 0);
    ck_assert_msg(strstr(c.redis_why, "AUTH refused: WRONGPASS") != NULL,
                  "%s", c.redis_why);
    ck_assert_ptr_null(strstr(c.redis_why, "hunter2"));
    /* the user of the URL goes with the password */
    ck_assert(redis_acl_logged(&h.redis, "auth", "spark"));

    harness_stop(&h);
}
END_TEST


START_TEST(a_request_behind_a_hung_call_waits_at_most_the_budget)
{
    struct harness h;
    struct taken first, second;

    harness_start(&h, NULL, "", 100);
    ck_assert(harness_run(&h, 1000, harness_up));
    redis_pause(&h.redis);

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

    harness_start(&h, user_spark_without_calls, "spark:rightpass@", 100);
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
    redisReply *flushed;

    harness_start(&h, NULL, "", 100);
    ck_assert(harness_run(&h, 1000, harness_up));

    /* the handshake loaded the script; now Redis forgets it */
    flushed = redis_command(&h.redis, "SCRIPT FLUSH");
    ck_assert_ptr_nonnull(flushed);
    ck_assert_int_eq(flushed->type, REDIS_REPLY_STATUS);
    freeReplyObject(flushed);

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

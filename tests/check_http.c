/*
 * Unit tests for worker/http.c, over real loopback sockets: the server runs
 * on an event_base that each test turns by hand while a plain socket plays
 * the client.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "../worker/http.h"
#include "check_run.h"

struct fixture {
    struct event_base   *base;
    struct http_server  *srv;
    int                  port;
    int                  drained;
    int                  handled;     /* handler calls */
};

static struct fixture fx;


/* Larger than a loopback socket's send buffer: answering it fills the
 * socket and leaves the rest for libevent to write. */
#define BIG_ANSWER (4 * 1024 * 1024)


static void
echo_handler(struct http_request *req, void *arg)
{
    const char *who = http_header(req, "X-Who");
    char body[256];
    int n;

    (void) arg;
    fx.handled++;
    if (strcmp(req->path, "/big") == 0) {
        char *big = malloc(BIG_ANSWER);

        ck_assert_ptr_nonnull(big);
        memset(big, 'x', BIG_ANSWER);
        http_respond(req, 200, NULL, big, BIG_ANSWER);
        free(big);
        return;
    }
    n = snprintf(body, sizeof(body), "{\"path\":\"%s\",\"query\":\"%s\","
                 "\"who\":\"%s\",\"body\":%zu}", req->path,
                 req->query ? req->query : "", who ? who : "", req->body_len);
    http_respond(req, 200, "X-Test: yes\r\n", body, (size_t) n);
}


static void
start_server(size_t max_header, size_t max_body, int max_conns)
{
    struct http_limits limits = {
        .max_header_bytes = max_header,
        .max_body_bytes = max_body,
        .idle_timeout_ms = 5000,
        .max_conns = max_conns,
    };
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    int fd;

    memset(&fx, 0, sizeof(fx));
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *) &sin, &len);
    fx.port = ntohs(sin.sin_port);

    fx.base = event_base_new();
    fx.srv = http_server_new(fx.base, fd, &limits, echo_handler, NULL);
    ck_assert_ptr_nonnull(fx.srv);
    http_server_start(fx.srv);
}


static void
stop_server(void)
{
    http_server_free(fx.srv);
    event_base_free(fx.base);
}


static int
client(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_port = htons((uint16_t) fx.port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}


static void
send_all(int fd, const char *data, size_t len)
{
    ck_assert_int_eq(write(fd, data, len), (ssize_t) len);
}


static int
count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) {
        n++;
    }
    return n;
}


/*
 * Turns the server's loop and reads what the client got until `want`
 * answers arrived, the server closed, or a second passed.  Returns 1 if the
 * server closed the connection.
 */
static int
pump(int fd, char *buf, size_t size, int want)
{
    struct timespec start, now;
    size_t got = strlen(buf);

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        ssize_t n;

        event_base_loop(fx.base, EVLOOP_NONBLOCK);
        n = read(fd, buf + got, size - got - 1);
        if (n == 0) {
            return 1;
        }
        if (n > 0) {
            got += (size_t) n;
            buf[got] = '\0';
        }
        if (want > 0 && count(buf, "HTTP/1.") >= want
            && strstr(strrchr(buf, '{') ? strrchr(buf, '{') : buf, "}"))
        {
            return 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 2) {
            return 0;
        }
        usleep(1000);
    }
}


START_TEST(a_get_is_answered_and_the_connection_kept)
{
    char buf[4096] = "";
    int fd;

    start_server(8192, 1024, 10);
    fd = client();

    send_all(fd, "GET /a?x=1 HTTP/1.1\r\nHost: t\r\nX-Who: me\r\n\r\n", 43);
    ck_assert_int_eq(pump(fd, buf, sizeof(buf), 1), 0);
    ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Content-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "X-Test: yes\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "{\"path\":\"/a\",\"query\":\"x=1\","
                                      "\"who\":\"me\",\"body\":0}"));
    ck_assert_ptr_null(strstr(buf, "Connection: close"));

    buf[0] = '\0';
    send_all(fd, "GET /b HTTP/1.1\r\nHost: t\r\n\r\n", 28);
    ck_assert_int_eq(pump(fd, buf, sizeof(buf), 1), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"path\":\"/b\""));

    close(fd);
    stop_server();
}
END_TEST


START_TEST(an_answer_leaves_in_the_loop_turn_that_made_it)
{
    struct pollfd pfd;
    char buf[4096];
    ssize_t n;
    int fd;

    start_server(8192, 1024, 10);
    fd = client();

    send_all(fd, "GET /now HTTP/1.1\r\nHost: t\r\n\r\n", 30);
    for (int turns = 0; fx.handled == 0 && turns < 1000; turns++) {
        event_base_loop(fx.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
    ck_assert_int_eq(fx.handled, 1);

    /* no further loop turn: the answer must already be on the socket */
    pfd = (struct pollfd) { .fd = fd, .events = POLLIN };
    ck_assert_int_eq(poll(&pfd, 1, 200), 1);
    n = read(fd, buf, sizeof(buf) - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "\"path\":\"/now\""));

    close(fd);
    stop_server();
}
END_TEST


START_TEST(a_large_answer_reaches_a_slow_reader_whole)
{
    static char buf[BIG_ANSWER + 4096];
    struct timespec start, now;
    const char *body;
    size_t got = 0;
    int fd;

    start_server(8192, 1024, 10);
    fd = client();

    send_all(fd, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n", 30);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        ssize_t n;

        event_base_loop(fx.base, EVLOOP_NONBLOCK);
        n = read(fd, buf + got, 16384);          /* a small bite at a time */
        if (n > 0) {
            got += (size_t) n;
        }
        body = memmem(buf, got, "\r\n\r\n", 4);
        if (body != NULL && got - (size_t) (body + 4 - buf) >= BIG_ANSWER) {
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        ck_assert_msg(now.tv_sec - start.tv_sec < 10, "got %zu bytes", got);
    }
    buf[got] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "Content-Length: 4194304\r\n"));
    ck_assert_uint_eq(got - (size_t) (body + 4 - buf), BIG_ANSWER);

    /* the connection goes on once libevent has written the rest */
    buf[0] = '\0';
    send_all(fd, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n", 32);
    ck_assert_int_eq(pump(fd, buf, sizeof(buf), 1), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"path\":\"/after\""));

    close(fd);
    stop_server();
}
END_TEST


START_TEST(pipelined_requests_are_answered_in_order)
{
    static const char two[] =
        "GET /one HTTP/1.1\r\nHost: t\r\n\r\n"
        "GET /two HTTP/1.1\r\nHost: t\r\n\r\n";
    char buf[4096] = "";
    int fd;

    start_server(8192, 1024, 10);
    fd = client();

    send_all(fd, two, sizeof(two) - 1);
    pump(fd, buf, sizeof(buf), 2);
    ck_assert_int_eq(count(buf, "HTTP/1.1 200"), 2);
    ck_assert(strstr(buf, "/one") != NULL && strstr(buf, "/two") != NULL);
    ck_assert(strstr(buf, "/one") < strstr(buf, "/two"));

    close(fd);
    stop_server();
}
END_TEST


START_TEST(a_body_is_read_and_an_oversized_one_refused_with_413)
{
    static const char ok[] =
        "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    static const char big[] =
        "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n";
    char buf[4096] = "";
    int fd;

    start_server(8192, 10, 10);
    fd = client();
    send_all(fd, ok, sizeof(ok) - 1);
    pump(fd, buf, sizeof(buf), 1);
    ck_assert_ptr_nonnull(strstr(buf, "\"body\":5"));

    buf[0] = '\0';
    send_all(fd, big, sizeof(big) - 1);
    ck_assert_int_eq(pump(fd, buf, sizeof(buf), 0), 1);
    ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 413 "));
    ck_assert_ptr_nonnull(strstr(buf, "{\"error\":\"payload_too_large\""));
    ck_assert_ptr_nonnull(strstr(buf, "Connection: close\r\n"));

    close(fd);
    stop_server();
}
END_TEST


START_TEST(oversized_headers_get_431_in_json)
{
    char req[3000], buf[4096] = "";
    int fd;

    start_server(1024, 0, 10);
    fd = client();

    memset(req, 'a', sizeof(req));
    memcpy(req, "GET / HTTP/1.1\r\nX-Big: ", 23);
    memcpy(req + sizeof(req) - 4, "\r\n\r\n", 4);
    send_all(fd, req, sizeof(req));

    ck_assert_int_eq(pump(fd, buf, sizeof(buf), 0), 1);
    ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 431 "));
    ck_assert_ptr_nonnull(strstr(buf, "\"error\":\"header_fields_too_large\""));

    close(fd);
    stop_server();
}
END_TEST


static void
assert_status(const char *request, const char *status)
{
    char buf[4096] = "";
    int fd = client();

    send_all(fd, request, strlen(request));
    ck_assert_int_eq(pump(fd, buf, sizeof(buf), 0), 1);
    ck_assert_msg(strstr(buf, status) != NULL, "wanted %s for %s, got %s",
                  status, request, buf);
    ck_assert_ptr_nonnull(strstr(buf, "{\"error\":"));
    close(fd);
}


START_TEST(malformed_requests_get_the_right_4xx_or_5xx)
{
    start_server(8192, 1024, 10);
    assert_status("GARBAGE\r\n\r\n", " 400 ");
    assert_status("GET nothing HTTP/1.1\r\n\r\n", " 400 ");
    assert_status("GET / HTTP/2.0\r\n\r\n", " 505 ");
    assert_status("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", " 400 ");
    assert_status("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", " 400 ");
    assert_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                  " 501 ");
    stop_server();
}
END_TEST


START_TEST(content_length_must_be_digits_given_once)
{
    start_server(8192, 1024, 10);
    assert_status("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
                  " 400 ");
    assert_status("POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\nhello",
                  " 400 ");
    assert_status("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
                  "Content-Length: 5\r\n\r\nhello", " 400 ");
    assert_status("POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n",
                  " 413 ");
    assert_status("POST / HTTP/1.1\r\nContent-Length: "
                  "99999999999999999999999\r\n\r\n", " 413 ");
    stop_server();
}
END_TEST


START_TEST(http_1_0_closes_unless_keep_alive_is_asked)
{
    char buf[4096] = "";
    int fd;

    start_server(8192, 1024, 10);
    fd = client();
    send_all(fd, "GET /x HTTP/1.0\r\n\r\n", 19);
    ck_assert_int_eq(pump(fd, buf, sizeof(buf), 0), 1);
    ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.0 200 OK\r\n"));
    ck_assert_ptr_nonnull(strstr(buf, "Connection: close\r\n"));
    close(fd);

    buf[0] = '\0';
    fd = client();
    send_all(fd, "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 43);
    ck_assert_int_eq(pump(fd, buf, sizeof(buf), 1), 0);
    ck_assert_ptr_nonnull(strstr(buf, "Connection: keep-alive\r\n"));
    close(fd);
    stop_server();
}
END_TEST


START_TEST(at_the_cap_connections_wait_in_the_queue)
{
    struct http_counters c;
    char buf[4096] = "";
    int first, second;

    start_server(8192, 1024, 1);
    first = client();
    second = client();

    send_all(second, "GET /late HTTP/1.1\r\nHost: t\r\n\r\n", 31);
    pump(first, buf, sizeof(buf), 0);
    http_server_counters(fx.srv, &c);
    ck_assert_uint_eq(c.connections, 1);
    ck_assert_uint_eq(c.accepted, 1);

    close(first);
    buf[0] = '\0';
    ck_assert_int_eq(pump(second, buf, sizeof(buf), 1), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"path\":\"/late\""));
    http_server_counters(fx.srv, &c);
    ck_assert_uint_eq(c.accepted, 2);

    close(second);
    stop_server();
}
END_TEST


static void
on_drained(void *arg)
{
    (void) arg;
    fx.drained = 1;
}


START_TEST(drain_closes_idle_connections_and_serves_the_queue)
{
    char buf[4096] = "";
    int idle, queued;

    start_server(8192, 1024, 10);
    idle = client();
    pump(idle, buf, sizeof(buf), 0);

    /* connected but not yet accepted when the drain starts */
    queued = client();
    send_all(queued, "GET /q HTTP/1.1\r\nHost: t\r\n\r\n", 28);

    http_server_drain(fx.srv, on_drained, NULL);

    ck_assert_int_eq(pump(idle, buf, sizeof(buf), 0), 1);
    buf[0] = '\0';
    ck_assert_int_eq(pump(queued, buf, sizeof(buf), 0), 1);
    ck_assert_msg(strstr(buf, "\"path\":\"/q\"") != NULL, "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "Connection: close\r\n"));

    event_base_loop(fx.base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(fx.drained, 1);

    close(idle);
    close(queued);
    stop_server();
}
END_TEST


int
main(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("server");

    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, a_get_is_answered_and_the_connection_kept);
    tcase_add_test(tc, an_answer_leaves_in_the_loop_turn_that_made_it);
    tcase_add_test(tc, a_large_answer_reaches_a_slow_reader_whole);
    tcase_add_test(tc, pipelined_requests_are_answered_in_order);
    tcase_add_test(tc, a_body_is_read_and_an_oversized_one_refused_with_413);
    tcase_add_test(tc, oversized_headers_get_431_in_json);
    tcase_add_test(tc, malformed_requests_get_the_right_4xx_or_5xx);
    tcase_add_test(tc, content_length_must_be_digits_given_once);
    tcase_add_test(tc, http_1_0_closes_unless_keep_alive_is_asked);
    tcase_add_test(tc, at_the_cap_connections_wait_in_the_queue);
    tcase_add_test(tc, drain_closes_idle_connections_and_serves_the_queue);
    suite_add_tcase(s, tc);

    return check_run(s);
}

/*
 * The worker's HTTP/1.1 server (see http.h).  Worker process only.
 *
 * One request is handled at a time per connection: the next one is parsed
 * only once the answer to the last is flushed, so pipelined requests are
 * answered in order, and the input buffer's high-water mark stops reading
 * from a client that sends without reading its answers.
 *
 * Answers are written straight to the socket; only what the kernel does
 * not take at once is left to libevent's write event, which spares two
 * epoll_ctl calls per request.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "http.h"
#include "../shared/clock.h"
#include "../shared/log.h"

#define HTTP_ACCEPT_BUDGET 4          /* per wakeup, to share the queue */
#define HTTP_WRITE_TIMEOUT_MS 30000

/*
 * While draining, a keep-alive connection is closed once it has been idle
 * this long: a client that is about to send its next request gets it
 * answered with Connection: close rather than a reset connection.
 */
#define HTTP_DRAIN_IDLE_MS 250
#define HTTP_DRAIN_SWEEP_MS 50

struct http_server {
    struct event_base   *base;
    struct event        *accept_ev;
    int                  listen_fd;    /* -1 once closed */
    int                  started;
    int                  accepting;
    int                  out_of_fds;   /* accept4() hit EMFILE/ENFILE */
    struct http_limits   limits;
    http_handler_fn      handler;
    void                *handler_arg;
    http_observer_fn     observer;
    void                *observer_arg;
    struct http_conn    *conns;        /* every open connection */
    struct http_counters counters;
    int                  draining;
    struct event        *sweep_ev;     /* closes idle ones while draining */
    int                  drained_called;
    void               (*drained)(void *);
    void                *drained_arg;
};

struct http_conn {
    struct http_server  *srv;
    struct bufferevent  *bev;          /* NULL once closed */
    struct http_conn    *prev, *next;
    struct http_request  req;
    char                *head;         /* the request's header block */
    size_t               head_size;
    unsigned             busy:1;       /* req is with the handler */
    unsigned             dispatching:1;  /* inside the handler call */
    unsigned             writing:1;    /* libevent is flushing an answer */
    unsigned             reading_body:1;
    unsigned             close_after_write:1;
    struct timespec      idle_since;   /* last answer flushed, or accept */
};

static void conn_process(struct http_conn *c);
static void conn_close(struct http_conn *c);
static int conn_flush(struct http_conn *c);
static void conn_after_write(struct http_conn *c);


const char *
http_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return "Unknown";
    }
}


/* The Date header value, formatted once a second. */
static const char *
http_date(void)
{
    static char buf[40];
    static time_t cached;
    time_t now = time(NULL);
    struct tm tm;

    if (now != cached) {
        gmtime_r(&now, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = now;
    }

    return buf;
}


static void
conn_write(struct http_conn *c, enum http_method method, int minor,
           int status, int keep_alive, const char *headers, const char *body,
           size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char head[512];
    int n;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.%d %d %s\r\n"
                 "Date: %s\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %zu\r\n"
                 "%s",
                 minor, status, http_status_text(status), http_date(), len,
                 !keep_alive ? "Connection: close\r\n"
                 : minor == 0 ? "Connection: keep-alive\r\n" : "");

    evbuffer_add(out, head, (size_t) n);
    if (headers != NULL) {
        evbuffer_add(out, headers, strlen(headers));
    }
    evbuffer_add(out, "\r\n", 2);
    if (method != HTTP_HEAD && len > 0) {
        evbuffer_add(out, body, len);
    }

    c->srv->counters.requests++;
    if (!keep_alive) {
        c->close_after_write = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
}


/*
 * Writes the output straight to the socket, in the loop turn that made the
 * answer.  Returns 1 when all of it went out; otherwise libevent writes the
 * rest and calls conn_write_cb.  A socket bufferevent keeps the front of
 * its output frozen against anyone but itself: thaw it for the write, as
 * its own write callback does.
 */
static int
conn_flush(struct http_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evutil_socket_t fd = bufferevent_getfd(c->bev);

    evbuffer_unfreeze(out, 1);
    while (evbuffer_get_length(out) > 0) {
        if (evbuffer_write(out, fd) <= 0) {
            break;
        }
    }
    evbuffer_freeze(out, 1);

    if (evbuffer_get_length(out) == 0) {
        return 1;
    }

    /* EAGAIN, or an error that libevent will report to conn_event_cb */
    c->writing = 1;
    bufferevent_enable(c->bev, EV_WRITE);
    return 0;
}


/* An answer is out: close, or go on with what the client sent since. */
static void
conn_after_write(struct http_conn *c)
{
    if (c->close_after_write) {
        conn_close(c);
        return;
    }

    clock_gettime(CLOCK_MONOTONIC, &c->idle_since);
    conn_process(c);
}


static void
conn_free(struct http_conn *c)
{
    if (c->req.body != NULL) {
        evbuffer_free(c->req.body);
    }
    free(c->head);
    free(c);
}


void
http_respond(struct http_request *req, int status, const char *headers,
             const char *body, size_t len)
{
    struct http_conn *c = req->conn;
    int keep_alive = req->keep_alive && !c->srv->draining;

    c->busy = 0;
    if (c->srv->observer != NULL) {
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        c->srv->observer(req, status,
                         (int64_t) (now.tv_sec - req->started.tv_sec) * 1000000
                         + (now.tv_nsec - req->started.tv_nsec) / 1000,
                         c->srv->observer_arg);
    }

    if (c->bev == NULL) {
        /* the client left while the handler worked */
        conn_free(c);
        return;
    }

    conn_write(c, req->method, req->minor, status, keep_alive, headers,
               body, len);

    if (req->body != NULL) {
        evbuffer_free(req->body);
        req->body = NULL;
    }

    /* Inside the handler call, conn_process() carries on by itself. */
    if (conn_flush(c) && !c->dispatching) {
        conn_after_write(c);
    }
}


/* The JSON error body every error answer carries; returns its length. */
static size_t
http_error_body(char *buf, size_t size, const char *code, const char *message)
{
    int n = snprintf(buf, size, "{\"error\":\"%s\",\"message\":\"%s\"}",
                     code, message);

    return n < (int) size ? (size_t) n : size - 1;
}


void
http_respond_error(struct http_request *req, int status, const char *headers,
                   const char *code, const char *message)
{
    char body[256];
    size_t n = http_error_body(body, sizeof(body), code, message);

    http_respond(req, status, headers, body, n);
}


/* An error found before a request exists: answer it and close. */
static void
conn_fail(struct http_conn *c, int status, const char *code,
          const char *message)
{
    char body[256];
    size_t n = http_error_body(body, sizeof(body), code, message);

    conn_write(c, HTTP_GET, 1, status, 0, NULL, body, n);
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));

    /* libevent writes it; the write callback then closes */
    c->writing = 1;
    bufferevent_enable(c->bev, EV_WRITE);
}


const char *
http_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0) {
            return req->headers[i].value;
        }
    }

    return NULL;
}


static enum http_method
http_method_parse(const char *m)
{
    static const char *const names[] = {
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(m, names[i]) == 0) {
            return (enum http_method) i;
        }
    }

    return HTTP_OTHER;
}


/* Parses "METHOD /target HTTP/1.x"; returns 0 or an HTTP status. */
static int
http_parse_request_line(struct http_request *req, char *line)
{
    char *target, *version, *q;

    target = strchr(line, ' ');
    if (target == NULL) {
        return 400;
    }
    *target++ = '\0';

    version = strchr(target, ' ');
    if (version == NULL) {
        return 400;
    }
    *version++ = '\0';

    if (strncmp(version, "HTTP/1.", 7) != 0 || version[7] < '0'
        || version[7] > '9' || version[8] != '\0')
    {
        return strncmp(version, "HTTP/", 5) == 0 ? 505 : 400;
    }

    if (target[0] != '/') {
        return 400;
    }

    req->method = http_method_parse(line);
    req->minor = version[7] - '0';
    req->path = target;
    q = strchr(target, '?');
    req->query = NULL;
    if (q != NULL) {
        *q = '\0';
        req->query = q + 1;
    }

    return 0;
}


static char *
http_trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t') {
        s++;
    }

    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t')) {
        *--end = '\0';
    }

    return s;
}


/* The characters of a header name (RFC 9110, 5.6.2). */
static const char http_token_chars[] =
    "!#$%&'*+-.^_`|~0123456789"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";


/* Splits the header lines in place; returns 0 or an HTTP status. */
static int
http_parse_headers(struct http_request *req, char *p)
{
    req->nheaders = 0;

    while (*p != '\0') {
        char *eol = strstr(p, "\r\n");
        char *colon;

        if (eol == NULL) {
            return 400;
        }
        *eol = '\0';

        colon = strchr(p, ':');
        if (colon == NULL || colon == p
            || strspn(p, http_token_chars) != (size_t) (colon - p))
        {
            return 400;
        }
        if (req->nheaders == HTTP_HEADERS_MAX) {
            return 431;
        }

        *colon = '\0';
        req->headers[req->nheaders].name = p;
        req->headers[req->nheaders].value = http_trim(colon + 1);
        req->nheaders++;
        p = eol + 2;
    }

    return 0;
}


/*
 * The body length: Content-Length given at most once and only digits, as
 * RFC 9112 asks.  Anything looser ("+5", " 5", two of them) is how a proxy
 * in front and this server could come to frame one request differently.
 * Returns 0 or an HTTP status.
 */
static int
http_parse_length(struct http_request *req, size_t max_body)
{
    const char *cl = NULL;
    size_t n = 0;

    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, "Content-Length") == 0) {
            if (cl != NULL) {
                return 400;
            }
            cl = req->headers[i].value;
        }
    }

    req->body_len = 0;
    if (cl == NULL) {
        return 0;
    }
    if (*cl == '\0') {
        return 400;
    }

    /* n stays at most max_body (a config value), far from overflowing */
    for (const char *d = cl; *d != '\0'; d++) {
        if (*d < '0' || *d > '9') {
            return 400;
        }
        n = n * 10 + (size_t) (*d - '0');
        if (n > max_body) {
            return 413;
        }
    }

    req->body_len = n;
    return 0;
}


/* Reads framing and persistence; returns 0 or an HTTP status. */
static int
http_parse_framing(struct http_request *req, size_t max_body)
{
    const char *conn = http_header(req, "Connection");
    int status;

    if (http_header(req, "Transfer-Encoding") != NULL) {
        return 501;
    }

    status = http_parse_length(req, max_body);
    if (status != 0) {
        return status;
    }

    if (req->minor == 0) {
        req->keep_alive = conn != NULL && strcasecmp(conn, "keep-alive") == 0;
    } else {
        req->keep_alive = conn == NULL || strcasecmp(conn, "close") != 0;
    }

    return 0;
}


static void
conn_fail_status(struct http_conn *c, int status)
{
    switch (status) {
    case 413:
        conn_fail(c, 413, "payload_too_large",
                  "the request body is larger than this server accepts");
        break;
    case 431:
        conn_fail(c, 431, "header_fields_too_large",
                  "the request headers are larger than this server accepts");
        break;
    case 501:
        conn_fail(c, 501, "not_implemented",
                  "Transfer-Encoding is not supported; send Content-Length");
        break;
    case 505:
        conn_fail(c, 505, "http_version_not_supported",
                  "only HTTP/1.0 and HTTP/1.1 are served");
        break;
    default:
        conn_fail(c, 400, "bad_request", "the request is malformed");
        break;
    }
}


/*
 * Takes one header block from the input.  Returns 1 when a request head
 * was parsed, 0 when more bytes are needed, -1 after answering an error.
 */
static int
conn_read_head(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t max = c->srv->limits.max_header_bytes;
    struct evbuffer_ptr end;
    char *line_end;
    size_t len;
    int status;

    /* Tolerate blank lines before a request (RFC 9112, 2.2). */
    while (evbuffer_get_length(in) >= 2) {
        char crlf[2];

        evbuffer_copyout(in, crlf, 2);
        if (crlf[0] != '\r' || crlf[1] != '\n') {
            break;
        }
        evbuffer_drain(in, 2);
    }

    end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0) {
        if (evbuffer_get_length(in) >= max) {
            conn_fail_status(c, 431);
            return -1;
        }
        return 0;
    }

    len = (size_t) end.pos + 4;
    if (len > max) {
        conn_fail_status(c, 431);
        return -1;
    }

    if (c->head_size < len + 1) {
        char *head = realloc(c->head, len + 1);

        if (head == NULL) {
            conn_fail(c, 500, "internal", "out of memory");
            return -1;
        }
        c->head = head;
        c->head_size = len + 1;
    }

    evbuffer_remove(in, c->head, len);
    c->head[len - 2] = '\0';           /* keep the last line's CRLF */

    line_end = strstr(c->head, "\r\n");
    *line_end = '\0';

    status = http_parse_request_line(&c->req, c->head);
    if (status == 0) {
        status = http_parse_headers(&c->req, line_end + 2);
    }
    if (status == 0) {
        status = http_parse_framing(&c->req, c->srv->limits.max_body_bytes);
    }
    if (status != 0) {
        conn_fail_status(c, status);
        return -1;
    }

    return 1;
}


static void
conn_dispatch(struct http_conn *c)
{
    struct http_server *srv = c->srv;

    c->busy = 1;
    c->dispatching = 1;
    c->req.conn = c;
    c->req.user = NULL;
    clock_gettime(CLOCK_MONOTONIC, &c->req.started);

    srv->handler(&c->req, srv->handler_arg);
    c->dispatching = 0;
}


/*
 * Takes the next request (head and body) from the input.  Returns 1 when
 * one is ready, 0 when more bytes are needed, -1 after answering an error.
 */
static int
conn_next_request(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    if (!c->reading_body) {
        int rc = conn_read_head(c);

        if (rc != 1) {
            return rc;
        }
        c->reading_body = c->req.body_len > 0;
        c->req.body = NULL;
    }

    if (c->reading_body) {
        if (evbuffer_get_length(in) < c->req.body_len) {
            return 0;
        }
        c->req.body = evbuffer_new();
        if (c->req.body == NULL) {
            conn_fail(c, 500, "internal", "out of memory");
            return -1;
        }
        evbuffer_remove_buffer(in, c->req.body, c->req.body_len);
        c->reading_body = 0;
    }

    return 1;
}


/* Answers the requests the input holds, one after another, while each is
 * answered at once; stops at one that is answered later. */
static void
conn_process(struct http_conn *c)
{
    while (!c->busy && !c->writing && !c->close_after_write) {
        if (conn_next_request(c) != 1) {
            return;
        }

        conn_dispatch(c);

        if (!c->busy && !c->writing) {
            if (c->close_after_write) {
                conn_close(c);
                return;
            }
            clock_gettime(CLOCK_MONOTONIC, &c->idle_since);
        }
    }
}


static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void) bev;
    conn_process(arg);
}


static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;

    if (!c->writing) {
        return;
    }
    c->writing = 0;
    bufferevent_disable(bev, EV_WRITE);
    conn_after_write(c);
}


static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct http_conn *c = arg;

    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING)
        && evbuffer_get_length(bufferevent_get_input(bev)) > 0 && !c->busy)
    {
        /* a request started and stalled: say so before closing */
        conn_fail(c, 408, "request_timeout",
                  "the request was not received in time");
        return;
    }

    conn_close(c);
}


static void
srv_pause_accept(struct http_server *srv)
{
    if (srv->accepting) {
        event_del(srv->accept_ev);
        srv->accepting = 0;
    }
}


static void
srv_resume_accept(struct http_server *srv)
{
    if (!srv->accepting && srv->started && !srv->draining
        && srv->listen_fd >= 0
        && (int) srv->counters.connections < srv->limits.max_conns)
    {
        event_add(srv->accept_ev, NULL);
        srv->accepting = 1;
    }
}


static void
srv_drained_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *srv = arg;

    (void) fd;
    (void) what;
    srv->drained(srv->drained_arg);
}


static void
srv_check_drained(struct http_server *srv)
{
    if (srv->draining && srv->counters.connections == 0
        && !srv->drained_called)
    {
        /* from the loop, never from inside a connection's callback */
        srv->drained_called = 1;
        event_base_once(srv->base, -1, EV_TIMEOUT, srv_drained_cb, srv,
                        NULL);
    }
}


static void
conn_close(struct http_conn *c)
{
    struct http_server *srv = c->srv;

    if (c->bev == NULL) {
        return;
    }

    bufferevent_free(c->bev);
    c->bev = NULL;

    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    srv->counters.connections--;

    if (!c->busy) {
        conn_free(c);
    }

    srv_resume_accept(srv);
    srv_check_drained(srv);
}


static void
conn_new(struct http_server *srv, int fd)
{
    struct timeval idle, wr;
    struct http_conn *c;
    int one = 1;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error("HTTP", "out of memory for a connection, closing it");
        close(fd);
        return;
    }

    c->srv = srv;
    clock_gettime(CLOCK_MONOTONIC, &c->idle_since);
    c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        log_error("HTTP", "bufferevent_socket_new() failed, closing fd %d",
                  fd);
        close(fd);
        free(c);
        return;
    }

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    idle = clock_tv_ms(srv->limits.idle_timeout_ms);
    wr = clock_tv_ms(HTTP_WRITE_TIMEOUT_MS);
    bufferevent_set_timeouts(c->bev, &idle, &wr);
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             srv->limits.max_header_bytes
                             + srv->limits.max_body_bytes + 4096);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    /* Writing is armed only when a direct write leaves bytes behind. */
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_enable(c->bev, EV_READ);

    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->counters.connections++;
    srv->counters.accepted++;
}


/* Accepts up to budget connections; returns how many were taken. */
static int
srv_accept(struct http_server *srv, int budget)
{
    int taken = 0;

    while (taken < budget && srv->listen_fd >= 0) {
        int fd = accept4(srv->listen_fd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* once per shortage, not once per connection closed */
                if (!srv->out_of_fds) {
                    log_error("HTTP",
                              "accept4() failed: %s; paused until one closes",
                              strerror(errno));
                }
                srv->out_of_fds = 1;
                srv_pause_accept(srv);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK
                       && errno != EINTR && errno != ECONNABORTED)
            {
                log_warn("HTTP", "accept4() failed: %s", strerror(errno));
            }
            break;
        }

        srv->out_of_fds = 0;
        conn_new(srv, fd);
        taken++;
    }

    return taken;
}


static void
srv_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *srv = arg;
    int room = srv->limits.max_conns - (int) srv->counters.connections;

    (void) fd;
    (void) what;

    srv_accept(srv, room < HTTP_ACCEPT_BUDGET ? room : HTTP_ACCEPT_BUDGET);

    if ((int) srv->counters.connections >= srv->limits.max_conns) {
        /* leave the rest in the kernel queue for the other workers */
        srv_pause_accept(srv);
    }
}


void
http_server_set_max_conns(struct http_server *srv, int max_conns)
{
    srv->limits.max_conns = max_conns > 0 ? max_conns : 1;

    if ((int) srv->counters.connections >= srv->limits.max_conns) {
        srv_pause_accept(srv);
    } else {
        srv_resume_accept(srv);
    }
}


struct http_server *
http_server_new(struct event_base *base, int listen_fd,
                const struct http_limits *limits, http_handler_fn handler,
                void *arg)
{
    struct http_server *srv;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        return NULL;
    }

    srv->base = base;
    srv->listen_fd = listen_fd;
    srv->limits = *limits;
    srv->handler = handler;
    srv->handler_arg = arg;

    srv->accept_ev = event_new(base, listen_fd, EV_READ | EV_PERSIST,
                               srv_accept_cb, srv);
    if (srv->accept_ev == NULL) {
        free(srv);
        return NULL;
    }

    return srv;
}


void
http_server_start(struct http_server *srv)
{
    srv->started = 1;
    srv_resume_accept(srv);
}


static int
conn_idle_ms(const struct http_conn *c, const struct timespec *now)
{
    if (c->busy || c->reading_body || c->writing
        || evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
    {
        return -1;
    }

    return (int) ((now->tv_sec - c->idle_since.tv_sec) * 1000
                  + (now->tv_nsec - c->idle_since.tv_nsec) / 1000000);
}


static void
srv_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *srv = arg;
    struct http_conn *c, *next;
    struct timespec now;

    (void) fd;
    (void) what;

    clock_gettime(CLOCK_MONOTONIC, &now);
    for (c = srv->conns; c != NULL; c = next) {
        next = c->next;
        if (conn_idle_ms(c, &now) >= HTTP_DRAIN_IDLE_MS) {
            conn_close(c);
        }
    }
}


void
http_server_drain(struct http_server *srv, void (*done)(void *), void *arg)
{
    struct timeval every = { 0, HTTP_DRAIN_SWEEP_MS * 1000 };

    if (srv->draining) {
        return;
    }

    /* Connections already queued were accepted by the kernel: serve them. */
    if (srv->listen_fd >= 0) {
        while (srv_accept(srv, HTTP_ACCEPT_BUDGET) == HTTP_ACCEPT_BUDGET) {
            /* keep taking until the queue is empty */
        }
        srv_pause_accept(srv);
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }

    srv->draining = 1;
    srv->drained = done;
    srv->drained_arg = arg;

    srv->sweep_ev = event_new(srv->base, -1, EV_PERSIST, srv_sweep_cb, srv);
    if (srv->sweep_ev != NULL) {
        event_add(srv->sweep_ev, &every);
    }
    srv_sweep_cb(-1, 0, srv);
    srv_check_drained(srv);
}


void
http_server_observe(struct http_server *srv, http_observer_fn fn, void *arg)
{
    srv->observer = fn;
    srv->observer_arg = arg;
}


void
http_server_counters(const struct http_server *srv, struct http_counters *out)
{
    *out = srv->counters;
    out->max_conns = (uint32_t) srv->limits.max_conns;
}


void
http_server_free(struct http_server *srv)
{
    while (srv->conns != NULL) {
        conn_close(srv->conns);
    }

    event_free(srv->accept_ev);
    if (srv->sweep_ev != NULL) {
        event_free(srv->sweep_ev);
    }
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
    }
    free(srv);
}

/*
 * The worker's HTTP/1.1 server, on libevent bufferevents over the listening
 * socket the master shares with every worker.
 *
 * It owns accepting (with a connection cap: at the cap it stops accepting
 * and leaves connections in the kernel queue for its siblings), request
 * parsing with header and body limits, keep-alive and idle timeouts, and
 * draining.  What a request means is the handler's business.
 *
 * A request is answered exactly once with http_respond(), at once or later
 * from another callback: a connection that closes meanwhile is kept until
 * that answer, which then goes nowhere.  Worker process only.
 */
#ifndef SPARK_HTTP_H
#define SPARK_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#define HTTP_HEADERS_MAX 64

enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_PATCH,
    HTTP_OPTIONS,
    HTTP_OTHER
};

struct http_header {
    const char  *name;
    const char  *value;
};

struct http_conn;

struct http_request {
    struct http_conn    *conn;
    enum http_method     method;
    const char          *path;        /* target without the query */
    const char          *query;       /* after '?', or NULL */
    int                  minor;       /* HTTP/1.<minor> */
    int                  keep_alive;
    size_t               nheaders;
    struct http_header   headers[HTTP_HEADERS_MAX];
    size_t               body_len;
    struct evbuffer     *body;        /* NULL when there is none */
    struct timespec      started;
    void                *user;        /* the handler's, NULL at first */
};

typedef void (*http_handler_fn)(struct http_request *req, void *arg);

/* Told of every answer to a request, just before it is written. */
typedef void (*http_observer_fn)(const struct http_request *req, int status,
                                 int64_t duration_us, void *arg);

struct http_limits {
    size_t  max_header_bytes;
    size_t  max_body_bytes;
    int     idle_timeout_ms;
    int     max_conns;
};

struct http_counters {
    uint64_t  accepted;
    uint64_t  requests;
    uint32_t  connections;
    uint32_t  max_conns;             /* the cap now */
};

struct http_server;

/* Serves listen_fd (listening, non-blocking) once started. */
struct http_server *http_server_new(struct event_base *base, int listen_fd,
                                    const struct http_limits *limits,
                                    http_handler_fn handler, void *arg);

/* Starts accepting (a worker does once it is warm). */
void http_server_start(struct http_server *srv);

void http_server_free(struct http_server *srv);

/* A new connection cap; past it, accepting pauses until some close. */
void http_server_set_max_conns(struct http_server *srv, int max_conns);

void http_server_observe(struct http_server *srv, http_observer_fn fn,
                         void *arg);

/*
 * Takes what is queued on the listening socket, closes it, answers the
 * requests under way with Connection: close, closes connections once idle
 * for a moment (so a request already on its way is answered), and
 * calls done(arg) from the event loop once no connection is left.
 */
void http_server_drain(struct http_server *srv, void (*done)(void *),
                       void *arg);

void http_server_counters(const struct http_server *srv,
                          struct http_counters *out);

/* The value of a request header (case-insensitive name), or NULL. */
const char *http_header(const struct http_request *req, const char *name);

/*
 * Answers req with a JSON body.  headers holds extra "Name: value\r\n"
 * lines, or is NULL.  req must not be used afterwards.
 */
void http_respond(struct http_request *req, int status, const char *headers,
                  const char *body, size_t len);

/* Answers {"error":code,"message":message}; message must need no escaping. */
void http_respond_error(struct http_request *req, int status,
                        const char *headers, const char *code,
                        const char *message);

const char *http_status_text(int status);

#endif

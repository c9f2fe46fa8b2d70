/*
 * bare_server.c - the baseline for benchmarks.
 *
 * The least a libevent evhttp server can do to answer the health route of
 * the tenant API: no authentication, no quota, no metrics. scripts/bench
 * measures it next to spark-executor, so the difference between the two is
 * what the service itself costs.
 *
 *   bare_server PORT [PROCESSES]
 *
 * GET /api/private/health answers 200 {"status":"ok","org":"orgA"}; every
 * other request answers 404. With PROCESSES > 1 the listening socket is made
 * once and that many forked children share it, each with its own event_base,
 * as the service's workers do. The parent then only waits: SIGTERM or SIGINT
 * to it stops the children, and it exits when they are all gone.
 */

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define HEALTH_PATH "/api/private/health"
#define HEALTH_BODY "{\"status\":\"ok\",\"org\":\"orgA\"}"
#define NOT_FOUND_BODY \
    "{\"error\":\"not_found\",\"message\":\"no such route\"}"
#define MAX_PROCESSES 64

static void
reply_json(struct evhttp_request *req, int code, const char *reason,
    const char *body)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer  *out = evhttp_request_get_output_buffer(req);

    evhttp_add_header(headers, "Content-Type", "application/json");

    /* The bodies are string literals: reference them, do not copy. */
    evbuffer_add_reference(out, body, strlen(body), NULL, NULL);

    evhttp_send_reply(req, code, reason, NULL);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char              *path = evhttp_uri_get_path(uri);

    (void) arg;

    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET
        && path != NULL && strcmp(path, HEALTH_PATH) == 0)
    {
        reply_json(req, 200, "OK", HEALTH_BODY);
        return;
    }

    reply_json(req, 404, "Not Found", NOT_FOUND_BODY);
}

static void
on_stop_signal(evutil_socket_t sig, short events, void *arg)
{
    (void) sig;
    (void) events;

    event_base_loopbreak(arg);
}

/* Runs one event loop on the shared socket until SIGTERM or SIGINT. */
static int
serve(int fd)
{
    struct event_base *base;
    struct evhttp     *http;
    struct event      *term, *intr;
    int                rc = -1;

    base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "bare_server: event_base_new failed\n");
        return -1;
    }

    http = evhttp_new(base);
    term = evsignal_new(base, SIGTERM, on_stop_signal, base);
    intr = evsignal_new(base, SIGINT, on_stop_signal, base);

    if (http == NULL || term == NULL || intr == NULL
        || evsignal_add(term, NULL) != 0 || evsignal_add(intr, NULL) != 0
        || evhttp_accept_socket(http, fd) != 0)
    {
        fprintf(stderr, "bare_server: event loop setup failed\n");
        goto done;
    }

    evhttp_set_gencb(http, on_request, NULL);

    rc = event_base_dispatch(base) == -1 ? -1 : 0;

done:
    if (http != NULL) {
        evhttp_free(http);
    }
    if (term != NULL) {
        event_free(term);
    }
    if (intr != NULL) {
        event_free(intr);
    }
    event_base_free(base);
    return rc;
}

/* Returns a non-blocking socket listening on all addresses, or -1. */
static int
listen_on(int port)
{
    struct sockaddr_in addr;
    int                fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        perror("bare_server: socket");
        return -1;
    }

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons((unsigned short) port);

    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1
        || bind(fd, (struct sockaddr *) &addr, sizeof(addr)) == -1
        || listen(fd, SOMAXCONN) == -1)
    {
        fprintf(stderr, "bare_server: port %d: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }

    return fd;
}

/* Signals every child still alive; pids of reaped children are 0. */
static void
stop_children(const pid_t *pids, int n, int sig)
{
    for (int i = 0; i < n; i++) {
        if (pids[i] > 0) {
            kill(pids[i], sig);
        }
    }
}

/* Marks a reaped child and returns how many are still alive. */
static int
forget_child(pid_t *pids, int n, pid_t pid)
{
    int alive = 0;

    for (int i = 0; i < n; i++) {
        if (pids[i] == pid) {
            pids[i] = 0;
        }
        alive += pids[i] > 0;
    }

    return alive;
}

/*
 * Waits in the parent until every child has exited. SIGTERM, SIGINT and
 * SIGCHLD stay blocked here and are taken with sigwait(), so no handler
 * runs: a stop signal is passed on to the children, a child's exit is reaped.
 */
static int
wait_children(pid_t *pids, int n, const sigset_t *set)
{
    int   alive = n, sig, status;
    pid_t pid;

    while (alive > 0) {
        if (sigwait(set, &sig) != 0) {
            return -1;
        }

        if (sig != SIGCHLD) {
            stop_children(pids, n, SIGTERM);
            continue;
        }

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            alive = forget_child(pids, n, pid);
        }
    }

    return 0;
}

/* Forks up to n children that serve fd; returns how many were started. */
static int
spawn_children(int fd, pid_t *pids, int n, const sigset_t *child_mask)
{
    for (int i = 0; i < n; i++) {
        pids[i] = fork();

        if (pids[i] == 0) {
            sigprocmask(SIG_SETMASK, child_mask, NULL);
            _exit(serve(fd) == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
        }

        if (pids[i] == -1) {
            perror("bare_server: fork");
            pids[i] = 0;
            return i;
        }
    }

    return n;
}

/* Forks n children that all serve fd, then waits for them. */
static int
run_children(int fd, int n)
{
    pid_t    pids[MAX_PROCESSES] = { 0 };
    sigset_t set, old;
    int      started;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);

    /* Blocked before fork, so no signal is lost before sigwait(). */
    sigprocmask(SIG_BLOCK, &set, &old);

    started = spawn_children(fd, pids, n, &old);
    close(fd);

    if (started < n) {
        stop_children(pids, started, SIGTERM);
    }

    if (wait_children(pids, started, &set) != 0) {
        return -1;
    }

    return started == n ? 0 : -1;
}

/* Parses a decimal integer in [min, max]; returns -1 when it is not one. */
static int
parse_int(const char *s, int min, int max)
{
    char *end;
    long  v;

    errno = 0;
    v = strtol(s, &end, 10);

    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }

    return (int) v;
}

int
main(int argc, char **argv)
{
    int port, processes = 1, fd;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bare_server PORT [PROCESSES]\n");
        return EXIT_FAILURE;
    }

    port = parse_int(argv[1], 1, 65535);
    if (argc == 3) {
        processes = parse_int(argv[2], 1, MAX_PROCESSES);
    }

    if (port == -1 || processes == -1) {
        fprintf(stderr, "bare_server: PORT must be 1-65535 and PROCESSES"
            " 1-%d\n", MAX_PROCESSES);
        return EXIT_FAILURE;
    }

    /* A client that hangs up early must not kill a process. */
    signal(SIGPIPE, SIG_IGN);

    fd = listen_on(port);
    if (fd == -1) {
        return EXIT_FAILURE;
    }

    if (processes == 1) {
        return serve(fd) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    }

    return run_children(fd, processes) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

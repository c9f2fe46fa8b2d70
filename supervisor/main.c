/*
 * spark-executor: the command line.  With no command (or "serve") it runs
 * the supervisor in the foreground; the other commands are for operators
 * and for the container's health check, which has no shell and no curl.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "master.h"
#include "../shared/config.h"
#include "../shared/tenants.h"

#ifndef SPARK_VERSION
#define SPARK_VERSION "dev"
#endif

#define HEALTHCHECK_TIMEOUT_S 2

static const char usage[] =
    "usage: spark-executor [serve]           run the supervisor (foreground)\n"
    "       spark-executor check-tenants FILE  validate a tenants file\n"
    "       spark-executor healthcheck         GET the local /healthz\n"
    "       spark-executor --version | --help\n"
    "\n"
    "Configuration comes from the environment (PORT, ADMIN_PORT, WORKERS,\n"
    "TENANT_KEYS_FILE, ...); see the README.\n"
    "\n"
    "Exit codes: 0 ok; 1 failure (serve: also workers killed at the drain\n"
    "deadline; check-tenants: the file is not valid; healthcheck: unhealthy\n"
    "or bad configuration); 2 bad usage; 78 bad configuration (serve,\n"
    "check-tenants).\n";


static int
cmd_check_tenants(const char *path)
{
    struct tenants_problems problems;
    struct config cfg;
    struct tenants *t;
    char err[256];

    if (config_from_env(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "spark-executor: %s\n", err);
        return 78;
    }

    t = tenants_load(path, cfg.default_qps, cfg.default_burst, &problems,
                     NULL, NULL);
    if (t == NULL) {
        for (int i = 0; i < problems.count && i < TENANTS_PROBLEMS_MAX; i++) {
            printf("%s: %s\n", path, problems.lines[i]);
        }
        if (problems.count > TENANTS_PROBLEMS_MAX) {
            printf("%s: ... and %d more problems\n", path,
                   problems.count - TENANTS_PROBLEMS_MAX);
        }
        return 1;
    }

    printf("%s: ok, %zu tenants\n", path, t->count);
    tenants_free(t);
    return 0;
}


static int
cmd_healthcheck(void)
{
    static const char request[] =
        "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
    struct timeval tv = { HEALTHCHECK_TIMEOUT_S, 0 };
    struct sockaddr_in sin;
    struct config cfg;
    char err[256], reply[64];
    ssize_t n;
    int fd, ok;

    if (config_from_env(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "spark-executor: %s\n", err);
        return 1;
    }

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t) cfg.admin_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    n = 0;
    ok = connect(fd, (struct sockaddr *) &sin, sizeof(sin)) == 0
         && write(fd, request, sizeof(request) - 1)
            == (ssize_t) sizeof(request) - 1
         && (n = read(fd, reply, sizeof(reply) - 1)) > 12;
    if (ok) {
        reply[n] = '\0';
        ok = strncmp(reply + 9, "200", 3) == 0;
    }
    close(fd);

    printf("%s\n", ok ? "healthy" : "unhealthy");
    return ok ? 0 : 1;
}


int
main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "serve";

    if (strcmp(cmd, "serve") == 0 && argc <= 2) {
        return master_main();
    }
    if (strcmp(cmd, "check-tenants") == 0 && argc == 3) {
        return cmd_check_tenants(argv[2]);
    }
    if (strcmp(cmd, "healthcheck") == 0 && argc == 2) {
        return cmd_healthcheck();
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("spark-executor %s\n", SPARK_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }

    fputs(usage, stderr);
    return 2;
}

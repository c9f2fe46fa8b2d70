/*
 * The tenants table: parsed and validated from TENANT_KEYS_FILE by the
 * master (at start and on SIGHUP), and by each worker from the bytes the
 * master validated.  A table is immutable once built; a reload builds a new
 * one and the old one is freed when nothing uses it.
 *
 * API keys are kept only as SHA-256 digests, compared in constant time;
 * no function here ever logs a key or a secret.
 */
#ifndef SPARK_TENANTS_H
#define SPARK_TENANTS_H

#include <stddef.h>

#include <openssl/types.h>

#define TENANT_DIGEST_LEN    32
#define TENANT_ORG_MAX       64
#define TENANTS_PROBLEMS_MAX 32
#define TENANT_EXCHANGE_KEY_MAX 128   /* exchange API key, visible ASCII */

struct org_tally;

struct tenant {
    char           *org;
    unsigned char   key_digest[TENANT_DIGEST_LEN];
    double          qps;
    int             burst;
    char           *exchange_key;     /* NULL when the tenant has none */
    char           *exchange_secret;
    EVP_MAC_CTX    *exchange_mac;     /* HMAC-SHA256 keyed with the secret
                                         once, so signing costs no key
                                         setup; NULL without a secret */
    struct org_tally *tally;          /* a worker's counters for the org;
                                         NULL until the worker sets it */
};

struct tenants {
    size_t          count;
    struct tenant  *items;            /* sorted by org */
};

/* Every problem found in one file, each a line naming the tenant. */
struct tenants_problems {
    int             count;            /* may exceed TENANTS_PROBLEMS_MAX */
    char            lines[TENANTS_PROBLEMS_MAX][192];
};

/*
 * Parses a tenants document.  Tenants without qps or burst get the given
 * defaults.  Returns a new table, or NULL with every problem in *problems.
 */
struct tenants *tenants_parse(const char *json, size_t len,
                              double default_qps, int default_burst,
                              struct tenants_problems *problems);

/*
 * Reads and parses a file.  On success, when raw is not NULL, *raw and
 * *raw_len receive the exact bytes that were validated (caller frees).
 */
struct tenants *tenants_load(const char *path, double default_qps,
                             int default_burst,
                             struct tenants_problems *problems,
                             char **raw, size_t *raw_len);

void tenants_free(struct tenants *t);

const struct tenant *tenants_find(const struct tenants *t, const char *org);

/*
 * The tenant whose org and key both match, else NULL.  Unknown orgs and
 * wrong keys take the same path and the same time.
 */
const struct tenant *tenants_auth(const struct tenants *t, const char *org,
                                  const char *key, size_t key_len);

/* SHA-256 of data; returns 0, or -1 if the digest could not be made. */
int tenants_digest(const void *data, size_t len,
                   unsigned char out[TENANT_DIGEST_LEN]);

#endif

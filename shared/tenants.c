/*
 * The tenants table (see tenants.h): jansson parsing, validation that
 * reports every problem at once, and constant-time key checks.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "tenants.h"

#define TENANT_KEY_MIN   16
#define TENANT_LIMIT_MAX 1000000
#define TENANTS_FILE_MAX (16 * 1024 * 1024)


static void
tenants_problem(struct tenants_problems *p, const char *fmt, ...)
{
    va_list ap;

    if (p->count < TENANTS_PROBLEMS_MAX) {
        va_start(ap, fmt);
        vsnprintf(p->lines[p->count], sizeof(p->lines[0]), fmt, ap);
        va_end(ap);
    }
    p->count++;
}


int
tenants_digest(const void *data, size_t len,
               unsigned char out[TENANT_DIGEST_LEN])
{
    /* Fetched once: an implicit fetch on every call costs a lock. */
    static EVP_MD *sha256;

    if (sha256 == NULL) {
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (sha256 == NULL) {
            return -1;
        }
    }

    return EVP_Digest(data, len, out, NULL, sha256, NULL) == 1 ? 0 : -1;
}


static int
tenants_org_valid(const char *org)
{
    size_t len = strlen(org);

    if (len == 0 || len > TENANT_ORG_MAX) {
        return 0;
    }

    for (const char *c = org; *c != '\0'; c++) {
        if (!isalnum((unsigned char) *c) && *c != '-' && *c != '_'
            && *c != '.')
        {
            return 0;
        }
    }

    return 1;
}


static int
tenants_hex_digest(const char *hex, unsigned char out[TENANT_DIGEST_LEN])
{
    if (strlen(hex) != TENANT_DIGEST_LEN * 2) {
        return -1;
    }

    for (int i = 0; i < TENANT_DIGEST_LEN; i++) {
        unsigned int byte;

        if (!isxdigit((unsigned char) hex[2 * i])
            || !isxdigit((unsigned char) hex[2 * i + 1])
            || sscanf(hex + 2 * i, "%2x", &byte) != 1)
        {
            return -1;
        }
        out[i] = (unsigned char) byte;
    }

    return 0;
}


static void
tenants_parse_key(const char *org, json_t *obj, struct tenant *t,
                  struct tenants_problems *p)
{
    json_t *plain = json_object_get(obj, "apiKey");
    json_t *hashed = json_object_get(obj, "apiKeySha256");

    if ((plain == NULL) == (hashed == NULL)) {
        tenants_problem(p, "%s: exactly one of apiKey and apiKeySha256 "
                        "is required", org);
        return;
    }

    if (plain != NULL) {
        if (!json_is_string(plain)
            || json_string_length(plain) < TENANT_KEY_MIN)
        {
            tenants_problem(p, "%s: apiKey must be a string of at least %d "
                            "characters", org, TENANT_KEY_MIN);
            return;
        }
        if (tenants_digest(json_string_value(plain),
                           json_string_length(plain), t->key_digest) != 0)
        {
            tenants_problem(p, "%s: apiKey could not be hashed", org);
        }
        return;
    }

    if (!json_is_string(hashed)
        || tenants_hex_digest(json_string_value(hashed), t->key_digest) != 0)
    {
        tenants_problem(p, "%s: apiKeySha256 must be 64 hexadecimal digits",
                        org);
    }
}


static void
tenants_parse_limits(const char *org, json_t *obj, struct tenant *t,
                     struct tenants_problems *p)
{
    json_t *qps = json_object_get(obj, "qps");
    json_t *burst = json_object_get(obj, "burst");

    if (qps != NULL) {
        if (!json_is_number(qps) || !isfinite(json_number_value(qps))
            || json_number_value(qps) <= 0
            || json_number_value(qps) > TENANT_LIMIT_MAX)
        {
            tenants_problem(p, "%s: qps must be a number in (0, %d]", org,
                            TENANT_LIMIT_MAX);
        } else {
            t->qps = json_number_value(qps);
        }
    }

    if (burst != NULL) {
        if (!json_is_integer(burst) || json_integer_value(burst) < 1
            || json_integer_value(burst) > TENANT_LIMIT_MAX)
        {
            tenants_problem(p, "%s: burst must be an integer in 1..%d", org,
                            TENANT_LIMIT_MAX);
        } else {
            t->burst = (int) json_integer_value(burst);
        }
    }
}


/* An HMAC-SHA256 context keyed with secret (NULL secret: NULL). */
static EVP_MAC_CTX *
tenants_mac_new(const char *secret)
{
    /* Fetched once, as in tenants_digest(). */
    static EVP_MAC *hmac;
    EVP_MAC_CTX *ctx;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end()
    };

    if (secret == NULL) {
        return NULL;
    }
    if (hmac == NULL) {
        hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (hmac == NULL) {
            return NULL;
        }
    }

    ctx = EVP_MAC_CTX_new(hmac);
    if (ctx == NULL
        || EVP_MAC_init(ctx, (const unsigned char *) secret, strlen(secret),
                        params) != 1)
    {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}


/* 1 if s is 1..max visible ASCII characters: no space, CR or LF. */
static int
tenants_header_safe(const char *s, size_t max)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        if (n == max || s[n] < '!' || s[n] > '~') {
            return 0;
        }
    }
    return n > 0;
}


static void
tenants_parse_exchange(const char *org, json_t *obj, struct tenant *t,
                       struct tenants_problems *p)
{
    json_t *ex = json_object_get(obj, "exchange");
    json_t *key, *secret, *value;
    const char *field;

    if (ex == NULL) {
        return;
    }

    if (!json_is_object(ex)) {
        tenants_problem(p, "%s: exchange must be an object", org);
        return;
    }

    json_object_foreach(ex, field, value) {
        if (strcmp(field, "apiKey") != 0 && strcmp(field, "apiSecret") != 0) {
            tenants_problem(p, "%s: exchange: unknown field \"%.40s\"", org,
                            field);
        }
    }

    key = json_object_get(ex, "apiKey");
    secret = json_object_get(ex, "apiSecret");
    if (!json_is_string(key) || json_string_length(key) == 0
        || !json_is_string(secret) || json_string_length(secret) == 0)
    {
        tenants_problem(p, "%s: exchange needs non-empty apiKey and "
                        "apiSecret strings", org);
        return;
    }

    /* It goes into a request header as it is. */
    if (!tenants_header_safe(json_string_value(key), TENANT_EXCHANGE_KEY_MAX)) {
        tenants_problem(p, "%s: exchange: apiKey must be at most %d visible "
                        "ASCII characters", org, TENANT_EXCHANGE_KEY_MAX);
        return;
    }

    t->exchange_key = strdup(json_string_value(key));
    t->exchange_secret = strdup(json_string_value(secret));
    t->exchange_mac = tenants_mac_new(t->exchange_secret);
    if (t->exchange_mac == NULL) {
        tenants_problem(p, "%s: exchange: cannot set up HMAC-SHA256", org);
    }
}


static void
tenants_parse_one(const char *org, json_t *obj, struct tenant *t,
                  struct tenants_problems *p)
{
    static const char *const known[] = {
        "apiKey", "apiKeySha256", "qps", "burst", "exchange"
    };
    const char *field;
    json_t *value;

    json_object_foreach(obj, field, value) {
        size_t i = 0;

        while (i < sizeof(known) / sizeof(known[0])
               && strcmp(field, known[i]) != 0)
        {
            i++;
        }
        if (i == sizeof(known) / sizeof(known[0])) {
            tenants_problem(p, "%s: unknown field \"%.40s\"", org, field);
        }
    }

    tenants_parse_key(org, obj, t, p);
    tenants_parse_limits(org, obj, t, p);
    tenants_parse_exchange(org, obj, t, p);
}


static int
tenants_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tenant *) a)->org,
                  ((const struct tenant *) b)->org);
}


static int
tenants_fill(struct tenants *t, json_t *root, double default_qps,
             int default_burst, struct tenants_problems *p)
{
    const char *org;
    json_t *obj;

    json_object_foreach(root, org, obj) {
        struct tenant *tn = &t->items[t->count++];

        tn->org = strdup(org);
        tn->qps = default_qps;
        tn->burst = default_burst;
        if (tn->org == NULL) {
            tenants_problem(p, "out of memory");
            return -1;
        }

        if (!tenants_org_valid(org)) {
            tenants_problem(p, "\"%.64s\": an org id must be 1..%d letters, "
                            "digits, '-', '_' or '.'", org, TENANT_ORG_MAX);
            continue;
        }
        if (!json_is_object(obj)) {
            tenants_problem(p, "%s: must be an object", org);
            continue;
        }

        tenants_parse_one(org, obj, tn, p);
    }

    return 0;
}


struct tenants *
tenants_parse(const char *json, size_t len, double default_qps,
              int default_burst, struct tenants_problems *problems)
{
    struct tenants *t;
    json_error_t jerr;
    json_t *root;

    memset(problems, 0, sizeof(*problems));

    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        tenants_problem(problems, "line %d column %d: %s", jerr.line,
                        jerr.column, jerr.text);
        return NULL;
    }

    if (!json_is_object(root) || json_object_size(root) == 0) {
        tenants_problem(problems, "the file must be a JSON object with at "
                        "least one tenant");
        json_decref(root);
        return NULL;
    }

    t = calloc(1, sizeof(*t));
    if (t != NULL) {
        t->items = calloc(json_object_size(root), sizeof(*t->items));
    }
    if (t == NULL || t->items == NULL) {
        tenants_problem(problems, "out of memory");
        free(t);
        json_decref(root);
        return NULL;
    }

    tenants_fill(t, root, default_qps, default_burst, problems);
    json_decref(root);

    if (problems->count > 0) {
        tenants_free(t);
        return NULL;
    }

    qsort(t->items, t->count, sizeof(*t->items), tenants_cmp);
    return t;
}


static char *
tenants_read_file(const char *path, size_t *len,
                  struct tenants_problems *p)
{
    FILE *f;
    char *buf, *fit;
    size_t n;

    f = fopen(path, "rbe");
    if (f == NULL) {
        tenants_problem(p, "%s: %s", path, strerror(errno));
        return NULL;
    }

    buf = malloc(TENANTS_FILE_MAX + 1);
    if (buf == NULL) {
        tenants_problem(p, "out of memory");
        fclose(f);
        return NULL;
    }

    n = fread(buf, 1, TENANTS_FILE_MAX + 1, f);
    if (ferror(f) || n > TENANTS_FILE_MAX) {
        if (ferror(f)) {
            tenants_problem(p, "%s: read error", path);
        } else {
            tenants_problem(p, "%s: larger than %d MiB", path,
                            TENANTS_FILE_MAX >> 20);
        }
        free(buf);
        fclose(f);
        return NULL;
    }

    fclose(f);

    /* The text is kept while it is in force: give back what it left over. */
    fit = realloc(buf, n > 0 ? n : 1);
    *len = n;
    return fit != NULL ? fit : buf;
}


struct tenants *
tenants_load(const char *path, double default_qps, int default_burst,
             struct tenants_problems *problems, char **raw, size_t *raw_len)
{
    struct tenants *t;
    size_t len;
    char *buf;

    memset(problems, 0, sizeof(*problems));

    buf = tenants_read_file(path, &len, problems);
    if (buf == NULL) {
        return NULL;
    }

    t = tenants_parse(buf, len, default_qps, default_burst, problems);
    if (t != NULL && raw != NULL) {
        *raw = buf;
        *raw_len = len;
    } else {
        free(buf);
    }

    return t;
}


void
tenants_free(struct tenants *t)
{
    if (t == NULL) {
        return;
    }

    for (size_t i = 0; i < t->count; i++) {
        free(t->items[i].org);
        free(t->items[i].exchange_key);
        if (t->items[i].exchange_secret != NULL) {
            OPENSSL_cleanse(t->items[i].exchange_secret,
                            strlen(t->items[i].exchange_secret));
            free(t->items[i].exchange_secret);
        }
        EVP_MAC_CTX_free(t->items[i].exchange_mac);
    }

    free(t->items);
    free(t);
}


const struct tenant *
tenants_find(const struct tenants *t, const char *org)
{
    struct tenant key = { .org = (char *) org };

    return bsearch(&key, t->items, t->count, sizeof(*t->items), tenants_cmp);
}


const struct tenant *
tenants_auth(const struct tenants *t, const char *org, const char *key,
             size_t key_len)
{
    static const unsigned char nobody[TENANT_DIGEST_LEN];
    unsigned char digest[TENANT_DIGEST_LEN];
    const struct tenant *tn;
    int same;

    if (tenants_digest(key, key_len, digest) != 0) {
        return NULL;
    }

    /* An unknown org still pays for one digest comparison. */
    tn = tenants_find(t, org);
    same = CRYPTO_memcmp(digest, tn != NULL ? tn->key_digest : nobody,
                         TENANT_DIGEST_LEN) == 0;

    return (tn != NULL && same) ? tn : NULL;
}

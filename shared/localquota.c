/*
 * Per-replica GCRA buckets in shared memory (see localquota.h).
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "clock.h"
#include "localquota.h"
#include "log.h"

struct lq_slot {
    _Atomic uint64_t  key;           /* 0 = free */
    _Atomic int64_t   tat;
};

struct localquota {
    struct lq_slot    slots[LQ_SLOTS];
};


/* FNV-1a, never 0 (0 marks a free slot). */
static uint64_t
lq_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    while (*s != '\0') {
        h ^= (unsigned char) *s++;
        h *= 1099511628211ULL;
    }

    return h != 0 ? h : 1;
}


struct localquota *
lq_create(void)
{
    struct localquota *lq;

    lq = mmap(NULL, sizeof(*lq), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (lq == MAP_FAILED) {
        log_error("QUOTA", "mmap() of %zu bytes failed: %s", sizeof(*lq),
                  strerror(errno));
        return NULL;
    }

    return lq;
}


void
lq_destroy(struct localquota *lq)
{
    if (lq != NULL) {
        munmap(lq, sizeof(*lq));
    }
}


static struct lq_slot *
lq_slot(struct localquota *lq, const char *org)
{
    uint64_t key = lq_hash(org);

    for (uint64_t i = 0; i < LQ_SLOTS; i++) {
        struct lq_slot *s = &lq->slots[(key + i) % LQ_SLOTS];
        uint64_t seen = atomic_load(&s->key);

        if (seen == key) {
            return s;
        }
        if (seen == 0) {
            uint64_t expected = 0;

            if (atomic_compare_exchange_strong(&s->key, &expected, key)
                || expected == key)
            {
                return s;
            }
        }
    }

    return NULL;
}


long
lq_take(struct localquota *lq, const char *org, double qps, long burst,
        long n, struct gcra_result *r)
{
    struct lq_slot *s = lq_slot(lq, org);
    int64_t emission = gcra_emission_us(qps);

    if (s == NULL) {
        return -1;
    }

    for (;;) {
        int64_t seen = atomic_load(&s->tat);
        int64_t tat = seen;

        if (gcra_take(&tat, clock_now_us(), emission, burst, n, r) == 0
            || atomic_compare_exchange_weak(&s->tat, &seen, tat))
        {
            return r->admitted;
        }
    }
}

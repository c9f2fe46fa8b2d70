/*
 * The control channel between the master and one worker: a Unix stream
 * socketpair carrying length-prefixed frames, read and written through a
 * bufferevent on each side.  Both ends run the same binary, so payloads
 * are plain structs in host byte order.
 *
 *   master -> worker   CHAN_TENANTS  generation + the validated tenants JSON
 *                      CHAN_DRAIN    stop accepting, finish, exit 0
 *                      CHAN_SHARES   struct chan_shares: the worker's part
 *                                    of the replica's limits, when the
 *                                    number of workers changes
 *   worker -> master   CHAN_STATS    struct worker_stats, every second and
 *                                    at once after a tenants change
 *                      CHAN_ORGS     struct org_tally[], the orgs whose
 *                                    counts changed, before each CHAN_STATS
 */
#ifndef SPARK_CHANNEL_H
#define SPARK_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>

#define CHAN_FRAME_MAX (32 * 1024 * 1024)

enum chan_type {
    CHAN_TENANTS = 1,
    CHAN_DRAIN,
    CHAN_STATS,
    CHAN_ORGS,
    CHAN_SHARES
};

/* A worker's part of the per-replica limits. */
struct chan_shares {
    int32_t   max_conns;             /* of HTTP_SERVER_CONCURRENCY */
    int32_t   outbound;              /* of OUTBOUND_MAX_CONCURRENCY */
};

struct chan_frame {
    uint32_t  type;
    uint32_t  len;
    char     *payload;               /* malloc'd, NULL when len is 0 */
};

/* Queues one frame; returns 0, or -1 if it could not be queued. */
int chan_send(struct bufferevent *bev, enum chan_type type,
              const void *payload, size_t len);

/* Like chan_send, with the payload in two parts (a header and a body). */
int chan_send2(struct bufferevent *bev, enum chan_type type,
               const void *head, size_t head_len,
               const void *body, size_t body_len);

/*
 * Takes one complete frame from the input buffer.  Returns 1 with *frame
 * filled (the caller frees frame->payload), 0 when more bytes are needed,
 * -1 on a frame larger than CHAN_FRAME_MAX or out of memory.
 */
int chan_recv(struct bufferevent *bev, struct chan_frame *frame);

#endif

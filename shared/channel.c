/*
 * Length-prefixed frames over a master/worker socketpair (see channel.h).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "channel.h"


int
chan_send2(struct bufferevent *bev, enum chan_type type,
           const void *head, size_t head_len, const void *body,
           size_t body_len)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    uint32_t hdr[2];

    if (head_len + body_len > CHAN_FRAME_MAX) {
        return -1;
    }

    hdr[0] = (uint32_t) type;
    hdr[1] = (uint32_t) (head_len + body_len);

    if (evbuffer_add(out, hdr, sizeof(hdr)) != 0
        || (head_len > 0 && evbuffer_add(out, head, head_len) != 0)
        || (body_len > 0 && evbuffer_add(out, body, body_len) != 0))
    {
        return -1;
    }

    return 0;
}


int
chan_send(struct bufferevent *bev, enum chan_type type, const void *payload,
          size_t len)
{
    return chan_send2(bev, type, payload, len, NULL, 0);
}


int
chan_recv(struct bufferevent *bev, struct chan_frame *frame)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    uint32_t hdr[2];

    if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t) sizeof(hdr)) {
        return 0;
    }

    if (hdr[1] > CHAN_FRAME_MAX) {
        return -1;
    }

    if (evbuffer_get_length(in) < sizeof(hdr) + hdr[1]) {
        return 0;
    }

    frame->type = hdr[0];
    frame->len = hdr[1];
    frame->payload = NULL;
    evbuffer_drain(in, sizeof(hdr));

    if (frame->len > 0) {
        frame->payload = malloc(frame->len);
        if (frame->payload == NULL) {
            return -1;
        }
        evbuffer_remove(in, frame->payload, frame->len);
    }

    return 1;
}

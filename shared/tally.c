/*
 * Org id -> struct org_tally (see tally.h): entries in an array of pointers
 * (stable addresses), indexed by an open-addressing hash table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

struct tally_map {
    struct org_tally  **items;
    size_t              count, cap;
    size_t             *index;       /* slot -> item + 1, 0 = empty */
    size_t              slots;       /* a power of two, > 2 * count */
};


static size_t
tally_hash(const char *s)
{
    size_t h = 5381;

    while (*s != '\0') {
        h = h * 33 + (unsigned char) *s++;
    }

    return h;
}


struct tally_map *
tally_new(void)
{
    struct tally_map *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        return NULL;
    }

    m->slots = 64;
    m->index = calloc(m->slots, sizeof(*m->index));
    if (m->index == NULL) {
        free(m);
        return NULL;
    }

    return m;
}


void
tally_free(struct tally_map *m)
{
    if (m == NULL) {
        return;
    }

    for (size_t i = 0; i < m->count; i++) {
        free(m->items[i]);
    }
    free(m->items);
    free(m->index);
    free(m);
}


static size_t *
tally_slot(size_t *index, size_t slots, struct org_tally **items,
           const char *org)
{
    size_t i = tally_hash(org) & (slots - 1);

    while (index[i] != 0 && strcmp(items[index[i] - 1]->org, org) != 0) {
        i = (i + 1) & (slots - 1);
    }

    return &index[i];
}


static int
tally_grow(struct tally_map *m)
{
    size_t slots = m->slots * 2;
    size_t *index = calloc(slots, sizeof(*index));

    if (index == NULL) {
        return -1;
    }

    for (size_t i = 0; i < m->count; i++) {
        *tally_slot(index, slots, m->items, m->items[i]->org) = i + 1;
    }

    free(m->index);
    m->index = index;
    m->slots = slots;
    return 0;
}


struct org_tally *
tally_get(struct tally_map *m, const char *org)
{
    struct org_tally *t;
    size_t *slot;

    slot = tally_slot(m->index, m->slots, m->items, org);
    if (*slot != 0) {
        return m->items[*slot - 1];
    }

    /* keep the table at most half full, so that probing stays short */
    if (2 * (m->count + 1) > m->slots) {
        if (tally_grow(m) != 0) {
            return NULL;
        }
        slot = tally_slot(m->index, m->slots, m->items, org);
    }

    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct org_tally **items = realloc(m->items, cap * sizeof(*items));

        if (items == NULL) {
            return NULL;
        }
        m->items = items;
        m->cap = cap;
    }

    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    snprintf(t->org, sizeof(t->org), "%s", org);

    m->items[m->count++] = t;
    *slot = m->count;
    return t;
}


size_t
tally_count(const struct tally_map *m)
{
    return m->count;
}


struct org_tally *
tally_at(const struct tally_map *m, size_t i)
{
    return m->items[i];
}

/*
 * sessions.c - DeepLog's session table of a detector: a hash map from the session's name to a
 * slot, each slot's ring of its last h keys, an LRU list for eviction beyond max_sessions, and
 * a free list of the slots of ended sessions.
 */
#include <stdlib.h>
#include <string.h>

#include "sessions.h"

void ae_sessions_init(ae_sessions *t, size_t h, size_t start_key, size_t max, size_t key_words)
{
    memset(t, 0, sizeof *t);
    t->h = h;
    t->key_words = key_words;
    t->start_key = start_key;
    t->max = max;
    t->lru_head = t->lru_tail = t->free_head = AE_NO_ROW;
}

void ae_sessions_free(ae_sessions *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->slots[i].name);
    free(t->slots);
    free(t->rings);
    free(t->key_bits);
    ae_strmap_free(&t->map);
    memset(t, 0, sizeof *t);
}

uint32_t *ae_sessions_ring(const ae_sessions *t, uint32_t i)
{
    return t->rings + (size_t)i * 2 * t->h;
}

uint64_t *ae_sessions_key_bits(const ae_sessions *t, uint32_t i)
{
    return t->key_bits + (size_t)i * t->key_words;
}

static void lru_unlink(ae_sessions *t, uint32_t i)
{
    ae_dsession *s = &t->slots[i];
    if (s->prev != AE_NO_ROW)
        t->slots[s->prev].next = s->next;
    else
        t->lru_head = s->next;
    if (s->next != AE_NO_ROW)
        t->slots[s->next].prev = s->prev;
    else
        t->lru_tail = s->prev;
}

static void lru_push_front(ae_sessions *t, uint32_t i)
{
    ae_dsession *s = &t->slots[i];
    s->prev = AE_NO_ROW;
    s->next = t->lru_head;
    if (t->lru_head != AE_NO_ROW)
        t->slots[t->lru_head].prev = i;
    t->lru_head = i;
    if (t->lru_tail == AE_NO_ROW)
        t->lru_tail = i;
}

ae_status ae_sessions_get(ae_sessions *t, const char *name, size_t len, uint32_t *out)
{
    uint64_t hash = ae_strmap_hash(name, len);
    uint32_t i;
    if (ae_strmap_get(&t->map, name, len, hash, &i)) {
        if (t->lru_head != i) {
            lru_unlink(t, i);
            lru_push_front(t, i);
        }
        *out = i;
        return AE_OK;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return AE_ERR_NO_MEMORY;
    memcpy(copy, name, len);
    copy[len] = '\0';
    int reuse = t->free_head != AE_NO_ROW;
    int evict = !reuse && t->n == t->max;
    if (reuse) { /* the slot of an ended session */
        i = t->free_head;
        t->free_head = t->slots[i].next;
    } else if (evict) { /* reuse the slot of the least recently seen session */
        i = t->lru_tail;
        ae_dsession *old = &t->slots[i];
        ae_strmap_del(&t->map, old->name, old->len, old->hash);
        lru_unlink(t, i);
        free(old->name);
        old->name = NULL;
    } else {
        if (t->n == t->cap) {
            size_t cap = t->cap ? 2 * t->cap : 64;
            if (cap > t->max)
                cap = t->max;
            ae_dsession *grown = realloc(t->slots, cap * sizeof *grown);
            if (grown != NULL)
                t->slots = grown;
            uint32_t *rings = grown == NULL ? NULL
                                            : realloc(t->rings, cap * 2 * t->h * sizeof *rings);
            if (rings != NULL)
                t->rings = rings;
            /* + 1: a valid pointer even with no key-set check */
            uint64_t *bits = rings == NULL ? NULL
                             : realloc(t->key_bits, (cap * t->key_words + 1) * sizeof *bits);
            if (bits == NULL) {
                free(copy);
                return AE_ERR_NO_MEMORY;
            }
            t->key_bits = bits;
            t->cap = cap;
        }
        i = (uint32_t)t->n;
    }
    ae_dsession *s = &t->slots[i];
    s->name = copy;
    s->len = len;
    s->hash = hash;
    s->count = 0;
    s->last_line_no = 0;
    s->last_ts = INT64_MIN;
    memset(ae_sessions_key_bits(t, i), 0, t->key_words * sizeof *t->key_bits);
    if (t->start_key != SIZE_MAX) { /* a full window of start keys: the first key is predicted */
        uint32_t *ring = ae_sessions_ring(t, i);
        for (size_t j = 0; j < 2 * t->h; j++)
            ring[j] = (uint32_t)t->start_key;
        s->count = t->h;
    }
    /* After a deletion the map has room: only a new slot can fail here. */
    if (ae_strmap_put(&t->map, copy, len, hash, i) != 0) {
        free(copy);
        s->name = NULL;
        return AE_ERR_NO_MEMORY;
    }
    if (!evict && !reuse)
        t->n++;
    if (!evict)
        t->n_live++;
    lru_push_front(t, i);
    *out = i;
    return AE_OK;
}

void ae_sessions_end(ae_sessions *t, uint32_t i)
{
    ae_dsession *s = &t->slots[i];
    ae_strmap_del(&t->map, s->name, s->len, s->hash);
    lru_unlink(t, i);
    free(s->name);
    s->name = NULL;
    s->next = t->free_head;
    t->free_head = i;
    t->n_live--;
    t->n_ended++;
}

/*
 * sessions.h - DeepLog's session table of a detector (sessions.c). Not public.
 */
#ifndef ALOG_EDGE_SESSIONS_H
#define ALOG_EDGE_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "queue.h"

/* DeepLog's state of one session: its last h keys and its place in the LRU list. */
typedef struct ae_dsession {
    char *name;
    size_t len;
    uint64_t hash;
    uint64_t count;         /* keys in the ring (start keys included) */
    uint64_t last_line_no;  /* the session's last line */
    int64_t last_ts;        /* its timestamp (INT64_MIN: none yet) */
    uint32_t prev, next;    /* LRU neighbours (AE_NO_ROW: none); head = most recent; next links
                               the free slots of ended sessions */
} ae_dsession;

typedef struct ae_sessions {
    ae_dsession *slots;
    uint32_t *rings;        /* per slot 2h keys: each key at i and i + h (windows contiguous) */
    uint64_t *key_bits;     /* per slot its keys so far (key_words words): DeepLog's key sets */
    size_t n, cap;          /* slots in use (live or free), allocated */
    uint32_t lru_head, lru_tail;
    uint32_t free_head;     /* slots of ended sessions (AE_NO_ROW: none) */
    size_t n_live;          /* sessions held */
    size_t n_ended;         /* sessions that ended (closing key, idle, end of input) */
    ae_strmap map;
    size_t h;               /* keys per window */
    size_t key_words;       /* words of a slot's key bitset (0: no key-set check) */
    size_t start_key;       /* a new session's ring is full of it; SIZE_MAX: none */
    size_t max;             /* sessions held at most */
} ae_sessions;

/* An empty table; each slot has a bitset of key_words words (0: none) for the key-set check.
 * @return nothing. */
void ae_sessions_init(ae_sessions *t, size_t h, size_t start_key, size_t max, size_t key_words);

/* The slot of a session, made on first sight (dropping the least recently seen session when
 * `max` are held; with a start key its ring starts full of it), and made the most recent.
 * @return AE_OK and *out, or AE_ERR_NO_MEMORY. */
ae_status ae_sessions_get(ae_sessions *t, const char *name, size_t len, uint32_t *out);

/* The 2h keys of slot i. @return them. */
uint32_t *ae_sessions_ring(const ae_sessions *t, uint32_t i);

/* The key bitset of slot i (zeroed when the slot is given to a session). @return it. */
uint64_t *ae_sessions_key_bits(const ae_sessions *t, uint32_t i);

/* Drop session i (ended): its slot goes to the free list. @return nothing. */
void ae_sessions_end(ae_sessions *t, uint32_t i);

/* @return nothing; frees the table. */
void ae_sessions_free(ae_sessions *t);

#endif /* ALOG_EDGE_SESSIONS_H */

/*
 * queue.h - the verdicts a detector holds until their model run is done (or behind one, to keep
 * the line order), with the text they point to. Used by detector.c and counts.c. Not public.
 */
#ifndef ALOG_EDGE_QUEUE_H
#define ALOG_EDGE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#define AE_NO_ROW UINT32_MAX
#define AE_NO_TEXT SIZE_MAX

/* A verdict waiting for its model run (or behind one, to keep the line order). */
typedef struct ae_item {
    unsigned char mscred;   /* 0: a DeepLog key, 1: an MSCRED window */
    unsigned char unseen;   /* DeepLog: the key was never seen in training */
    unsigned char scored;   /* MSCRED: score known already (an all-zero window) */
    unsigned char end;      /* DeepLog: the verdict on a session's end (key = the end key) */
    unsigned char key_set;  /* DeepLog: the key-set check flags it (deeplog_keysets.c) */
    uint32_t row;           /* the batch row of its model input, or AE_NO_ROW */
    uint64_t line_no;
    size_t key;
    size_t line, line_len;  /* offsets into the text arena (NUL-terminated there) */
    size_t session;         /* DeepLog: offset of the session name */
    size_t host;            /* offset of the host (series for MSCRED), or AE_NO_TEXT */
    int64_t bucket, slot_start_us, end_us;
    uint64_t first_line_no, last_line_no;
    float score;
} ae_item;

typedef struct ae_queue {
    ae_item *items;
    size_t n_items, cap_items;
    char *text;             /* the items' strings, each NUL-terminated */
    size_t text_len, text_cap;
} ae_queue;

/* Copy bytes into the text arena with a NUL after them.
 * @return their offset, or AE_NO_TEXT when out of memory. */
size_t ae_queue_text(ae_queue *q, const char *s, size_t len);

/* The text at an offset. @return it, or NULL for AE_NO_TEXT. */
const char *ae_queue_text_at(const ae_queue *q, size_t offset);

/* A new item at the end of the queue (zeroed but for row = AE_NO_ROW and the texts AE_NO_TEXT).
 * @return it, or NULL when out of memory. */
ae_item *ae_queue_item(ae_queue *q);

/* Forget every item and text (keeping the memory). @return nothing. */
void ae_queue_clear(ae_queue *q);

/* @return nothing; frees the items and the text. */
void ae_queue_free(ae_queue *q);

#endif /* ALOG_EDGE_QUEUE_H */

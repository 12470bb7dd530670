/*
 * detector_impl.h - a detector's state, shared by detector.c (lines, DeepLog sessions, the
 * queue of pending verdicts, events) and counts.c (MSCRED's count series). Not public.
 */
#ifndef ALOG_EDGE_DETECTOR_IMPL_H
#define ALOG_EDGE_DETECTOR_IMPL_H

#include "model_impl.h"

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

/* The first and last line counted in a bucket; valid while tag is that bucket. */
typedef struct ae_bucket_lines {
    int64_t tag;
    uint64_t first, last;
} ae_bucket_lines;

/* MSCRED's count series of one host (or of the whole stream). */
typedef struct ae_series {
    char *name;
    size_t len;
    uint64_t hash;
    int started;
    int64_t first_abs;      /* absolute bucket of bucket 0 (time buckets) */
    int64_t cur;            /* the open bucket */
    uint64_t lines;         /* lines counted (line buckets) */
    float *rows;            /* ring of window rows x features counts */
    int64_t *row_tag;       /* the bucket each ring row holds (-1: none, i.e. zeros) */
    ae_bucket_lines *spans; /* ring of max(window, stride) line spans */
    float *pending;         /* counts of lines seen before any timestamp (bfill), or NULL */
    uint64_t pending_first, pending_last;
} ae_series;

struct ae_detector {
    ae_model *m;
    ae_detector_params p;
    int year;
    int deeplog, mscred;    /* the models this detector runs */
    ae_detector_stats stats;
    char errmsg[512];

    /* DeepLog sessions */
    ae_dsession *sessions;
    uint32_t *rings;        /* per session 2h keys: each key at i and i + h (windows contiguous) */
    uint64_t *key_bits;     /* per session its keys so far (key_sets.words words), for key sets */
    size_t n_sessions, cap_sessions;
    uint32_t lru_head, lru_tail;
    uint32_t free_head;     /* slots of ended sessions (AE_NO_ROW: none) */
    size_t n_live;          /* sessions held */
    size_t n_ended;         /* sessions that ended (closing key, idle, end of input) */
    int64_t idle_ts;        /* the last timestamp seen (INT64_MIN: none), for idle sessions */
    ae_strmap session_map;
    ae_deeplog_batch dl;
    size_t dl_rows;         /* rows pending */

    /* MSCRED series */
    ae_series *series;
    size_t n_series, cap_series;
    ae_strmap series_map;
    int have_ts;
    int64_t last_ts;        /* forward fill for lines without a timestamp */
    int any_pending;        /* some series holds lines from before the first timestamp */
    ae_bound_run *ms_run;
    float *ms_x;            /* [ms_cap][window][features] */
    float *ms_scores;
    size_t ms_rows, ms_cap;
    int have_zero_score;
    float zero_score;

    /* queue */
    ae_item *items;
    size_t n_items, cap_items;
    char *text;
    size_t text_len, text_cap;
};

/* Copy bytes into the text arena with a NUL after them.
 * @return their offset, or AE_NO_TEXT when out of memory. */
size_t ae_detector_text(ae_detector *d, const char *s, size_t len);

/* A new item at the end of the queue (zeroed but for row = AE_NO_ROW, host = AE_NO_TEXT).
 * @return it, or NULL when out of memory. */
ae_item *ae_detector_item(ae_detector *d);

/* Run the models on what is pending when a batch is full (or `force`), then emit the queue.
 * @return AE_OK, AE_ERR_ONNXRUNTIME, AE_ERR_NO_MEMORY, AE_ERR_IO (the callback stopped). */
ae_status ae_detector_drain(ae_detector *d, int force);

/* counts.c */

/* Count the line (key, timestamp or none) in the series of `host`, closing the buckets it ends
 * and queueing the windows they complete.
 * @return AE_OK, AE_ERR_NO_MEMORY, or a model error. */
ae_status ae_counts_line(ae_detector *d, const ae_strspan *host, int has_ts, int64_t ts,
                         size_t key, uint64_t line_no);

/* Close every open bucket (queueing the windows that end there) and start new series.
 * @return as ae_counts_line. */
ae_status ae_counts_finish(ae_detector *d);

/* @return nothing; frees the series. */
void ae_counts_free(ae_detector *d);

#endif /* ALOG_EDGE_DETECTOR_IMPL_H */

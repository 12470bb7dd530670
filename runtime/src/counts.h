/*
 * counts.h - MSCRED's count series of a stream (counts.c): buckets, windows, and the batch of
 * windows for one onnxruntime run. A detector owns one; counts.c knows nothing of detectors.
 * Not public.
 */
#ifndef ALOG_EDGE_COUNTS_H
#define ALOG_EDGE_COUNTS_H

#include "model_impl.h"
#include "queue.h"

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

typedef struct ae_counts {
    const ae_model *m;
    ae_queue *queue;        /* where windows are queued (the detector's) */
    /* Run what is pending and emit the queue (the detector's drain; `force`: even when the
     * batches are not full). @return AE_OK or the run's or the callback's status. */
    ae_status (*drain)(void *owner, int force);
    void *owner;
    int report_all;         /* queue all-zero windows even when they are normal */
    uint64_t *windows_scored; /* the detector's counter, for windows judged without an item */
    char *errmsg;           /* the detector's message buffer */
    size_t errmsg_len;

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
} ae_counts;

/* The batch buffers and bound run for `batch_size` windows (at most a few per run); the caller
 * has set m, queue, drain, owner, report_all, windows_scored and errmsg.
 * @return AE_OK, AE_ERR_NO_MEMORY or a model error, with the message in c->errmsg. */
ae_status ae_counts_init(ae_counts *c, size_t batch_size);

/* Count the line (key, timestamp or none) in the series of `host`, closing the buckets it ends
 * and queueing the windows they complete.
 * @return AE_OK, AE_ERR_NO_MEMORY, or a model error. */
ae_status ae_counts_line(ae_counts *c, const ae_strspan *host, int has_ts, int64_t ts,
                         size_t key, uint64_t line_no);

/* Close every open bucket (queueing the windows that end there) and start new series.
 * @return as ae_counts_line. */
ae_status ae_counts_finish(ae_counts *c);

/* @return nothing; frees the series and the batch. */
void ae_counts_free(ae_counts *c);

#endif /* ALOG_EDGE_COUNTS_H */

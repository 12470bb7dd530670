/*
 * counts.c - MSCRED's inputs in a stream, as counts.count_series and timeline.score_windows
 * make them: per host ("<all>" without one, or the whole stream), the count of each key per
 * bucket (bucket_seconds by timestamp, epoch-aligned, or bucket_lines lines), a series starting
 * at its first bucket, and windows of `window` buckets ending at buckets window-1,
 * window-1+stride, ... Lines without a timestamp take the last one seen (forward fill); those
 * before any timestamp take the first one (back fill).
 *
 * A ring of `window` rows holds the counts; each row is tagged with its bucket, so that empty
 * buckets cost nothing and a window over only empty buckets is known to be all zeros (its score
 * is computed once).
 */
#include <stdlib.h>
#include <string.h>

#include "counts.h"

/* MSCRED windows per onnxruntime call: its intermediate tensors are large (the demo model
 * peaks ~8 MB above its resident size for one window, ~35 MB for four) while a batch saves
 * next to nothing per window. */
#define AE_MSCRED_DETECTOR_BATCH 1

static const char ALL[] = "<all>";

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static size_t span_len(const ae_model *m)
{
    return m->window > m->stride ? m->window : m->stride;
}

static size_t ring(int64_t bucket, size_t len)
{
    return (size_t)(bucket % (int64_t)len);
}

static void series_reset(const ae_model *m, ae_series *s)
{
    s->started = 0;
    s->lines = 0;
    s->cur = 0;
    s->first_abs = 0;
    for (size_t i = 0; i < m->window; i++)
        s->row_tag[i] = -1;
    for (size_t i = 0; i < span_len(m); i++)
        s->spans[i].tag = -1;
}

void ae_counts_free(ae_counts *c)
{
    for (size_t i = 0; i < c->n_series; i++) {
        ae_series *s = &c->series[i];
        free(s->name);
        free(s->rows);
        free(s->row_tag);
        free(s->spans);
        free(s->pending);
    }
    free(c->series);
    c->series = NULL;
    c->n_series = c->cap_series = 0;
    ae_strmap_free(&c->series_map);
    ae_bound_run_free(c->ms_run);
    c->ms_run = NULL;
    free(c->ms_x);
    free(c->ms_scores);
    c->ms_x = c->ms_scores = NULL;
}

ae_status ae_counts_init(ae_counts *c, size_t batch_size)
{
    const ae_model *m = c->m;
    c->ms_cap = batch_size < AE_MSCRED_DETECTOR_BATCH ? batch_size : AE_MSCRED_DETECTOR_BATCH;
    /* one more row for the all-zero window */
    c->ms_x = malloc((c->ms_cap + 1) * m->window * m->features * sizeof *c->ms_x);
    c->ms_scores = malloc((c->ms_cap + 1) * sizeof *c->ms_scores);
    if (c->ms_x == NULL || c->ms_scores == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, c->errmsg, c->errmsg_len, "out of memory");
    return ae_mscred_bind(m, &c->ms_run, c->errmsg, c->errmsg_len);
}

static ae_status oom(ae_counts *c)
{
    return ae_fail(AE_ERR_NO_MEMORY, c->errmsg, c->errmsg_len, "out of memory");
}

/* The series of a name, made on first sight. */
static ae_status series_of(ae_counts *c, const char *name, size_t len, ae_series **out)
{
    const ae_model *m = c->m;
    uint64_t hash = ae_strmap_hash(name, len);
    uint32_t index;
    if (ae_strmap_get(&c->series_map, name, len, hash, &index)) {
        *out = &c->series[index];
        return AE_OK;
    }
    if (c->n_series == c->cap_series) {
        size_t cap = c->cap_series ? 2 * c->cap_series : 8;
        ae_series *grown = realloc(c->series, cap * sizeof *grown);
        if (grown == NULL)
            return oom(c);
        c->series = grown;
        c->cap_series = cap;
    }
    ae_series *s = &c->series[c->n_series];
    memset(s, 0, sizeof *s);
    s->name = malloc(len + 1);
    s->rows = malloc(m->window * m->features * sizeof *s->rows);
    s->row_tag = malloc(m->window * sizeof *s->row_tag);
    s->spans = malloc(span_len(m) * sizeof *s->spans);
    if (s->name == NULL || s->rows == NULL || s->row_tag == NULL || s->spans == NULL ||
        ae_strmap_put(&c->series_map, s->name, len, hash, (uint32_t)c->n_series) != 0) {
        free(s->name);
        free(s->rows);
        free(s->row_tag);
        free(s->spans);
        return oom(c);
    }
    memcpy(s->name, name, len);
    s->name[len] = '\0';
    s->len = len;
    s->hash = hash;
    series_reset(m, s);
    c->n_series++;
    *out = s;
    return AE_OK;
}

/* Open bucket b: its row and line span start empty. */
static void open_bucket(const ae_model *m, ae_series *s, int64_t b)
{
    size_t r = ring(b, m->window);
    s->row_tag[r] = b;
    memset(s->rows + r * m->features, 0, m->features * sizeof *s->rows);
    s->spans[ring(b, span_len(m))] = (ae_bucket_lines){b, 0, 0};
    s->cur = b;
}

static void start(const ae_model *m, ae_series *s, int64_t first_abs)
{
    s->started = 1;
    s->first_abs = first_abs;
    open_bucket(m, s, 0);
}

static void count(const ae_model *m, ae_series *s, size_t key, float n, uint64_t first,
                  uint64_t last)
{
    s->rows[ring(s->cur, m->window) * m->features + key] += n;
    ae_bucket_lines *span = &s->spans[ring(s->cur, span_len(m))];
    if (span->first == 0 || first < span->first)
        span->first = first;
    if (last > span->last)
        span->last = last;
}

/* The score of a window of zeros, computed once (an extra row of ms_x). */
static ae_status zero_score(ae_counts *c)
{
    if (c->have_zero_score)
        return AE_OK;
    const ae_model *m = c->m;
    size_t cells = m->window * m->features;
    float *row = c->ms_x + c->ms_cap * cells;
    memset(row, 0, cells * sizeof *row);
    char why[400];
    ae_status status = ae_mscred_run(c->m, c->ms_run, row, 1, &c->ms_scores[c->ms_cap], why,
                                     sizeof why);
    if (status != AE_OK)
        return ae_fail(status, c->errmsg, c->errmsg_len, "%s", why);
    c->zero_score = c->ms_scores[c->ms_cap];
    c->have_zero_score = 1;
    return AE_OK;
}

/* The slot a window ending at bucket e judges: its last `stride` buckets. */
static void fill_slot(const ae_model *m, const ae_series *s, int64_t e, ae_item *it)
{
    int64_t lo = e - (int64_t)m->stride + 1;
    if (lo < 0)
        lo = 0;
    it->bucket = e;
    if (m->bucket_us > 0) {
        it->slot_start_us = (s->first_abs + lo) * m->bucket_us;
        it->end_us = (s->first_abs + e) * m->bucket_us + m->bucket_us;
    } else {
        it->slot_start_us = it->end_us = INT64_MIN;
    }
    for (int64_t b = lo; b <= e; b++) {
        const ae_bucket_lines *span = &s->spans[ring(b, span_len(m))];
        if (span->tag != b || span->first == 0)
            continue;
        if (it->first_line_no == 0 || span->first < it->first_line_no)
            it->first_line_no = span->first;
        if (span->last > it->last_line_no)
            it->last_line_no = span->last;
    }
}

/* Queue the window of buckets e-window+1 .. e (copied out of the ring). */
static ae_status queue_window(ae_counts *c, ae_series *s, int64_t e)
{
    const ae_model *m = c->m;
    int64_t first = e - (int64_t)m->window + 1;
    int any = 0;
    for (size_t j = 0; j < m->window && !any; j++)
        any = s->row_tag[ring(first + (int64_t)j, m->window)] == first + (int64_t)j;
    ae_status status = AE_OK;
    if (!any && (status = zero_score(c)) != AE_OK)
        return status;
    if (any && c->ms_rows == c->ms_cap && (status = c->drain(c->owner, 1)) != AE_OK)
        return status;
    size_t host = ae_queue_text(c->queue, s->name, s->len);
    ae_item *it = host == AE_NO_TEXT ? NULL : ae_queue_item(c->queue);
    if (it == NULL)
        return oom(c);
    it->mscred = 1;
    it->host = host;
    fill_slot(m, s, e, it);
    if (!any) {
        it->scored = 1;
        it->score = c->zero_score;
        return AE_OK;
    }
    float *x = c->ms_x + c->ms_rows * m->window * m->features;
    for (size_t j = 0; j < m->window; j++) {
        int64_t b = first + (int64_t)j;
        size_t r = ring(b, m->window);
        if (s->row_tag[r] == b)
            memcpy(x + j * m->features, s->rows + r * m->features, m->features * sizeof *x);
        else
            memset(x + j * m->features, 0, m->features * sizeof *x);
    }
    it->row = (uint32_t)c->ms_rows++;
    return AE_OK;
}

/* The first bucket >= b at which a window ends. */
static int64_t first_window_end(const ae_model *m, int64_t b)
{
    int64_t w = (int64_t)m->window - 1, stride = (int64_t)m->stride;
    if (b <= w)
        return w;
    return w + (b - w + stride - 1) / stride * stride;
}

/* Close the open bucket and the empty ones up to `target` (exclusive), queueing the windows
 * that end in them; then open `target`. */
static ae_status advance(ae_counts *c, ae_series *s, int64_t target)
{
    const ae_model *m = c->m;
    int64_t old = s->cur, stride = (int64_t)m->stride;
    int64_t e = first_window_end(m, old);
    ae_status status = AE_OK;
    /* Windows that still hold counted buckets. */
    for (; e < target && e - (int64_t)m->window + 1 <= old; e += stride)
        if ((status = queue_window(c, s, e)) != AE_OK)
            return status;
    /* Windows of empty buckets only: one score for all; queued only when they are reported. */
    if (e < target) {
        if ((status = zero_score(c)) != AE_OK)
            return status;
        int report = c->report_all || c->zero_score > m->threshold;
        if (!report) {
            *c->windows_scored += (uint64_t)((target - 1 - e) / stride + 1);
        } else {
            for (; e < target; e += stride)
                if ((status = queue_window(c, s, e)) != AE_OK ||
                    (status = c->drain(c->owner, 0)) != AE_OK)
                    return status;
        }
    }
    open_bucket(m, s, target);
    return AE_OK;
}

/* The lines seen before the first timestamp take its bucket (back fill). */
static ae_status place_pending(ae_counts *c, int64_t ts)
{
    const ae_model *m = c->m;
    int64_t abs = floor_div(ts, m->bucket_us);
    for (size_t i = 0; i < c->n_series; i++) {
        ae_series *s = &c->series[i];
        if (s->pending == NULL)
            continue;
        if (!s->started) {
            start(m, s, abs);
        } else if (abs - s->first_abs > s->cur) {
            ae_status status = advance(c, s, abs - s->first_abs);
            if (status != AE_OK)
                return status;
        }
        for (size_t k = 0; k < m->features; k++)
            if (s->pending[k] != 0)
                count(m, s, k, s->pending[k], s->pending_first, s->pending_last);
        free(s->pending);
        s->pending = NULL;
    }
    c->any_pending = 0;
    return AE_OK;
}

ae_status ae_counts_line(ae_counts *c, const ae_strspan *host, int has_ts, int64_t ts,
                         size_t key, uint64_t line_no)
{
    const ae_model *m = c->m;
    const char *name = ALL;
    size_t len = sizeof ALL - 1;
    if (m->per_host && host != NULL) {
        name = host->p;
        len = host->len;
    }
    ae_series *s = NULL;
    ae_status status = series_of(c, name, len, &s);
    if (status != AE_OK)
        return status;
    int64_t bucket;
    if (m->bucket_us > 0) {
        if (has_ts) {
            c->have_ts = 1;
            c->last_ts = ts;
            if (c->any_pending && (status = place_pending(c, ts)) != AE_OK)
                return status;
        } else if (c->have_ts) {
            ts = c->last_ts;
        } else {
            if (s->pending == NULL) {
                if ((s->pending = calloc(m->features, sizeof *s->pending)) == NULL)
                    return oom(c);
                s->pending_first = line_no;
            }
            s->pending[key] += 1;
            s->pending_last = line_no;
            c->any_pending = 1;
            return AE_OK;
        }
        int64_t abs = floor_div(ts, m->bucket_us);
        if (!s->started)
            start(m, s, abs);
        bucket = abs - s->first_abs;
    } else {
        bucket = (int64_t)(s->lines / m->bucket_lines);
        s->lines++;
        if (!s->started)
            start(m, s, 0);
    }
    /* A line older than the open bucket counts in it. */
    if (bucket > s->cur && (status = advance(c, s, bucket)) != AE_OK)
        return status;
    count(m, s, key, 1, line_no, line_no);
    return AE_OK;
}

ae_status ae_counts_finish(ae_counts *c)
{
    const ae_model *m = c->m;
    for (size_t i = 0; i < c->n_series; i++) {
        ae_series *s = &c->series[i];
        free(s->pending); /* no timestamp ever: Python refuses such input; nothing to count */
        s->pending = NULL;
        if (!s->started)
            continue;
        if (first_window_end(m, s->cur) == s->cur) {
            ae_status status = queue_window(c, s, s->cur);
            if (status != AE_OK)
                return status;
        }
        series_reset(m, s);
    }
    c->any_pending = 0;
    return AE_OK;
}

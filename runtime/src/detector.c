/*
 * detector.c - raw lines of one stream in, verdicts out: each line is keyed by the matcher, its
 * host / timestamp / session ids found (fields.c), counted for MSCRED (counts.c) and judged by
 * DeepLog per session (the session table: sessions.c). The queue (queue.c) is shared with
 * counts.c, which reaches the drain through a callback: counts.c does not depend on this file.
 *
 * Verdicts wait in a queue, in line order, while model work is pending: DeepLog windows until
 * batch_size of them fill the batch, MSCRED windows until a few do. Verdicts that need no model
 * (the first h keys of a session, all-zero windows) pass through at once when nothing waits
 * before them. With batch_size 1 every key is judged as it arrives.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "counts.h"
#include "queue.h"
#include "sessions.h"

/* Verdicts without model work queued behind pending ones: bounded, so memory stays bounded. */
#define AE_QUEUE_TEXT_LIMIT (4u << 20)

struct ae_detector {
    const ae_model *m;      /* shared with other detectors and threads: only read */
    ae_matcher *matcher;    /* a clone of the model's: this stream's scratch */
    ae_fields *fields;      /* likewise */
    ae_detector_params p;
    int year;
    int deeplog, mscred;    /* the models this detector runs */
    ae_detector_stats stats;
    char errmsg[512];

    /* DeepLog sessions */
    ae_sessions sessions;
    int64_t idle_ts;        /* the last timestamp seen (INT64_MIN: none), for idle sessions */
    ae_deeplog_batch dl;
    size_t dl_rows;         /* rows pending */

    ae_counts counts;       /* MSCRED */
    ae_queue queue;
};

static const char STREAM[] = "<stream>";

ae_detector_params ae_detector_default_params(void)
{
    ae_detector_params p;
    memset(&p, 0, sizeof p);
    p.on_event = NULL;
    p.user = NULL;
    p.batch_size = 256;
    p.report_all = 0;
    p.max_sessions = 100000;
    p.year = 0;
    return p;
}

static ae_status oom(ae_detector *d)
{
    return ae_fail(AE_ERR_NO_MEMORY, d->errmsg, sizeof d->errmsg, "out of memory");
}

void ae_detector_free(ae_detector *d)
{
    if (d == NULL)
        return;
    ae_deeplog_batch_free(&d->dl);
    ae_fields_free(d->fields);
    ae_matcher_free(d->matcher);
    ae_sessions_free(&d->sessions);
    ae_counts_free(&d->counts);
    ae_queue_free(&d->queue);
    free(d);
}

static ae_status drain(ae_detector *d, int force);

/* counts.c's way to the queue's drain (it knows nothing of detectors). */
static ae_status drain_for_counts(void *detector, int force)
{
    return drain(detector, force);
}

static int current_year(void)
{
    time_t now = time(NULL);
    struct tm tm;
    if (now == (time_t)-1 || localtime_r(&now, &tm) == NULL)
        return 1970;
    return tm.tm_year + 1900;
}

ae_status ae_detector_new(const ae_model *m, const ae_detector_params *params,
                          ae_detector **out, char *err, size_t err_len)
{
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (out == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "ae_detector_new: out is NULL");
    *out = NULL;
    if (m == NULL || params == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len,
                       "ae_detector_new: the model or the params is NULL");
    const ae_detector_params *p = params;
    if (p->on_event == NULL || p->batch_size == 0 || p->max_sessions == 0 || p->year < 0 ||
        p->year > 9999)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len,
                       "ae_detector_new: %s", p->on_event == NULL ? "no on_event callback"
                       : p->batch_size == 0 ? "batch_size is 0"
                       : p->max_sessions == 0 ? "max_sessions is 0"
                                              : "year is not in 0..9999");
    int deeplog = m->deeplog != NULL, mscred = m->mscred != NULL;
    ae_detector *d = calloc(1, sizeof *d);
    if (d == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "out of memory");
    d->m = m;
    d->p = *p;
    if (d->p.max_sessions > UINT32_MAX - 1)
        d->p.max_sessions = UINT32_MAX - 1;
    d->year = p->year > 0 ? p->year : current_year();
    d->deeplog = deeplog;
    d->mscred = mscred;
    ae_sessions_init(&d->sessions, m->h, m->start_key, d->p.max_sessions, m->key_sets.words);
    d->idle_ts = INT64_MIN;
    /* the model is shared: this stream's matcher scratch, field buffers and model runs */
    ae_status status = ae_matcher_clone(m->matcher, &d->matcher);
    if (status == AE_OK)
        status = ae_fields_clone(m->fields, &d->fields);
    if (status != AE_OK)
        ae_fail(status, d->errmsg, sizeof d->errmsg, "out of memory");
    if (status == AE_OK && deeplog)
        status = ae_deeplog_batch_reserve(m, &d->dl, p->batch_size, d->errmsg, sizeof d->errmsg);
    if (status == AE_OK && mscred) {
        ae_counts *c = &d->counts;
        c->m = m;
        c->queue = &d->queue;
        c->drain = drain_for_counts;
        c->owner = d;
        c->report_all = p->report_all;
        c->windows_scored = &d->stats.windows_scored;
        c->errmsg = d->errmsg;
        c->errmsg_len = sizeof d->errmsg;
        status = ae_counts_init(c, p->batch_size);
    }
    if (status != AE_OK) {
        ae_fail(status, err, err_len, "%s", d->errmsg);
        ae_detector_free(d);
        return status;
    }
    *out = d;
    return AE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The queue
 */

static void clear_queue(ae_detector *d)
{
    ae_queue_clear(&d->queue);
    d->dl_rows = 0;
    d->counts.ms_rows = 0;
}

static const char *text_at(const ae_detector *d, size_t offset)
{
    return ae_queue_text_at(&d->queue, offset);
}

/* Judge and report every queued verdict (the model outputs are in place). */
static ae_status emit(ae_detector *d)
{
    const ae_model *m = d->m;
    size_t classes = m->classes;
    for (size_t i = 0; i < d->queue.n_items; i++) {
        const ae_item *it = &d->queue.items[i];
        ae_event ev;
        memset(&ev, 0, sizeof ev);
        if (!it->mscred) {
            ae_deeplog_event *e = &ev.deeplog;
            ev.kind = AE_EVENT_DEEPLOG;
            ev.anomalous = it->unseen;
            ev.reason = it->unseen ? AE_REASON_UNSEEN : AE_REASON_NONE;
            e->rank = -1;
            e->probability = NAN;
            if (it->row != AE_NO_ROW) {
                ae_deeplog_judge(d->dl.logits + (size_t)it->row * classes, classes, it->key,
                                 &e->rank, &e->probability);
                ae_reason why = ae_deeplog_rule_reason(m, e->rank, e->probability);
                if (!ev.anomalous && why != AE_REASON_NONE) {
                    ev.anomalous = 1;
                    ev.reason = it->end ? AE_REASON_END : why;
                }
            }
            if (!ev.anomalous && it->key_set) {
                ev.anomalous = 1;
                ev.reason = AE_REASON_KEY_SET;
            }
            e->line_no = it->line_no;
            e->session = text_at(d, it->session);
            e->key = it->key;
            e->template_ = it->end ? NULL : ae_vocab_template(m->vocab, it->key);
            e->line = it->end ? "" : text_at(d, it->line);
            e->line_len = it->end ? 0 : it->line_len;
            e->host = text_at(d, it->host);
            d->stats.keys_judged++;
            d->stats.deeplog_anomalies += (uint64_t)ev.anomalous;
        } else {
            ae_mscred_event *e = &ev.mscred;
            ev.kind = AE_EVENT_MSCRED;
            e->series = text_at(d, it->host);
            e->score = it->scored ? it->score : d->counts.ms_scores[it->row];
            e->threshold = m->threshold;
            ev.anomalous = e->score > m->threshold;
            ev.reason = ev.anomalous ? AE_REASON_SCORE : AE_REASON_NONE;
            e->bucket = it->bucket;
            e->slot_start_us = it->slot_start_us;
            e->end_us = it->end_us;
            e->first_line_no = it->first_line_no;
            e->last_line_no = it->last_line_no;
            d->stats.windows_scored++;
            d->stats.mscred_alarms += (uint64_t)ev.anomalous;
        }
        if ((ev.anomalous || d->p.report_all) && d->p.on_event(&ev, d->p.user) != 0) {
            clear_queue(d);
            return ae_fail(AE_STOPPED, d->errmsg, sizeof d->errmsg,
                           "stopped by the event callback");
        }
    }
    clear_queue(d);
    return AE_OK;
}

/* Run the models on what is pending when a batch is full (or `force`), then emit the queue.
 * @return AE_OK, AE_ERR_ONNXRUNTIME, AE_ERR_NO_MEMORY, AE_STOPPED (the callback stopped). */
static ae_status drain(ae_detector *d, int force)
{
    int pending = d->dl_rows > 0 || d->counts.ms_rows > 0;
    int full = (d->deeplog && d->dl_rows >= d->dl.cap_rows) ||
               (d->mscred && d->counts.ms_rows >= d->counts.ms_cap) ||
               d->queue.n_items >= 8 * d->p.batch_size + 64 || d->queue.text_len >= AE_QUEUE_TEXT_LIMIT;
    if (d->queue.n_items == 0 || (pending && !full && !force))
        return AE_OK;
    ae_status status = AE_OK;
    char why[400];
    if (d->dl_rows > 0)
        status = ae_deeplog_batch_run(d->m, &d->dl, d->dl_rows, why, sizeof why);
    if (status == AE_OK && d->counts.ms_rows > 0)
        status = ae_mscred_run(d->m, d->counts.ms_run, d->counts.ms_x, d->counts.ms_rows,
                               d->counts.ms_scores, why, sizeof why);
    if (status != AE_OK) { /* the verdicts waiting for the run are lost: say so */
        ae_fail(status, d->errmsg, sizeof d->errmsg, "%s (%zu verdicts dropped)", why,
                d->queue.n_items);
        clear_queue(d);
        return status;
    }
    return emit(d);
}

/* ---------------------------------------------------------------------------------------------
 * DeepLog sessions (the table: sessions.c)
 */

/* A line being queued: its text and host are copied into the arena once, and again when a
 * full batch ran (which empties the arena) before all its sessions were queued. */
typedef struct queued_line {
    const char *text;
    size_t len;
    const ae_strspan *host;
    size_t key;
    uint64_t line_no;
    int64_t ts;              /* INT64_MIN: none */
    size_t text_at, host_at; /* AE_NO_TEXT: not copied (yet) */
} queued_line;

/* Queue the verdict on the end of session i (with session keys), then drop the session. */
static ae_status end_session(ae_detector *d, uint32_t i)
{
    const ae_model *m = d->m;
    ae_dsession *s = &d->sessions.slots[i];
    if (m->start_key != SIZE_MAX) {
        ae_status status;
        if (d->dl_rows == d->dl.cap_rows && (status = drain(d, 1)) != AE_OK)
            return status;
        size_t session = ae_queue_text(&d->queue, s->name, s->len);
        ae_item *it = session == AE_NO_TEXT ? NULL : ae_queue_item(&d->queue);
        if (it == NULL)
            return oom(d);
        it->end = 1;
        it->key = m->end_key;
        it->line_no = s->last_line_no;
        it->session = session;
        it->row = (uint32_t)d->dl_rows;
        it->key_set = (unsigned char)ae_key_set_end(m, ae_sessions_key_bits(&d->sessions, i));
        const uint32_t *ring = ae_sessions_ring(&d->sessions, i);
        size_t at = (size_t)(s->count % m->h);
        int64_t *x = d->dl.x + d->dl_rows * m->h;
        for (size_t j = 0; j < m->h; j++)
            x[j] = ring[at + j];
        d->dl_rows++;
    }
    ae_sessions_end(&d->sessions, i);
    return AE_OK;
}

/* End the sessions whose last line is more than session_idle before `now`, least recently seen
 * first (sessions without a timestamp never idle out). */
static ae_status end_idle_sessions(ae_detector *d, int64_t now)
{
    ae_status status = AE_OK;
    while (status == AE_OK && d->sessions.lru_tail != AE_NO_ROW) {
        const ae_dsession *s = &d->sessions.slots[d->sessions.lru_tail];
        if (s->last_ts == INT64_MIN || now - s->last_ts <= d->m->session_idle_us)
            break;
        status = end_session(d, d->sessions.lru_tail);
    }
    return status;
}

/* Queue DeepLog's verdict on the line's key in session `name`, with the window of its last h
 * keys. */
static ae_status queue_key(ae_detector *d, queued_line *q, const char *name, size_t len)
{
    const ae_model *m = d->m;
    ae_status status;
    if (d->dl_rows == d->dl.cap_rows) {
        if ((status = drain(d, 1)) != AE_OK)
            return status;
        q->text_at = AE_NO_TEXT;
    }
    if (q->text_at == AE_NO_TEXT) {
        q->text_at = ae_queue_text(&d->queue, q->text, q->len);
        q->host_at = q->host != NULL ? ae_queue_text(&d->queue, q->host->p, q->host->len) : 0;
        if (q->text_at == AE_NO_TEXT || q->host_at == AE_NO_TEXT)
            return oom(d);
        if (q->host == NULL)
            q->host_at = AE_NO_TEXT;
    }
    uint32_t i = 0;
    if ((status = ae_sessions_get(&d->sessions, name, len, &i)) != AE_OK)
        return oom(d);
    size_t session = ae_queue_text(&d->queue, name, len);
    ae_item *it = session == AE_NO_TEXT ? NULL : ae_queue_item(&d->queue);
    if (it == NULL)
        return oom(d);
    it->key = q->key;
    it->unseen = q->key == m->n || !m->seen[q->key];
    it->key_set = (unsigned char)ae_key_set_add(m, ae_sessions_key_bits(&d->sessions, i), q->key);
    it->line_no = q->line_no;
    it->line = q->text_at;
    it->line_len = q->len;
    it->session = session;
    it->host = q->host_at;
    ae_dsession *s = &d->sessions.slots[i];
    uint32_t *ring = ae_sessions_ring(&d->sessions, i);
    size_t at = (size_t)(s->count % m->h);
    if (s->count >= m->h) {
        it->row = (uint32_t)d->dl_rows;
        int64_t *x = d->dl.x + d->dl_rows * m->h;
        for (size_t j = 0; j < m->h; j++)
            x[j] = ring[at + j];
        d->dl_rows++;
    }
    ring[at] = ring[at + m->h] = (uint32_t)q->key;
    s->count++;
    s->last_line_no = q->line_no;
    if (q->ts != INT64_MIN)
        s->last_ts = q->ts;
    if (!m->closing[q->key])
        return AE_OK;
    q->text_at = AE_NO_TEXT; /* ending it may run a full batch, which empties the arena */
    return end_session(d, i);
}

/* Each session key of the line: split at spaces as dataset.sequences_from_parsed does. */
static ae_status queue_sessions(ae_detector *d, const ae_strspan *ids, size_t n_ids,
                                const ae_strspan *host, size_t key, uint64_t line_no,
                                int64_t ts, const char *line, size_t line_len)
{
    queued_line q = {line, line_len, host, key, line_no, ts, AE_NO_TEXT, AE_NO_TEXT};
    ae_status status = AE_OK;
    if (n_ids > 0) {
        for (size_t i = 0; i < n_ids && status == AE_OK; i++)
            status = queue_key(d, &q, ids[i].p, ids[i].len);
        return status;
    }
    /* no session id: the host, else the one stream */
    const char *p = host != NULL ? host->p : STREAM;
    const char *end = p + (host != NULL ? host->len : sizeof STREAM - 1);
    for (;;) {
        const char *space = memchr(p, ' ', (size_t)(end - p));
        const char *stop = space != NULL ? space : end;
        status = queue_key(d, &q, p, (size_t)(stop - p));
        if (status != AE_OK || space == NULL)
            return status;
        p = space + 1;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Lines
 */

ae_status ae_detector_push(ae_detector *d, const char *line, size_t len, uint64_t line_no)
{
    if (d == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    d->errmsg[0] = '\0';
    if (line == NULL && len > 0)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, d->errmsg, sizeof d->errmsg, "line is NULL");
    if (line == NULL)
        line = "";
    const ae_model *m = d->m;
    d->stats.lines++;
    ae_match_detail md;
    ae_status status = ae_matcher_match_detail(d->matcher, line, len, &md);
    if (status != AE_OK) {
        if (status == AE_BLANK)
            d->stats.blank++;
        else if (status == AE_ERR_FORMAT || status == AE_ERR_TOO_LARGE)
            d->stats.refused++;
        return ae_fail(status, d->errmsg, sizeof d->errmsg, "%s", ae_matcher_errmsg(d->matcher));
    }
    size_t raw = len;
    while (raw > 0 && (line[raw - 1] == '\n' || line[raw - 1] == '\r'))
        raw--;
    size_t key = md.index;
    ae_strspan host_span;
    const ae_strspan *host = ae_fields_host(d->fields, d->matcher, line, &host_span) ? &host_span
                                                                                     : NULL;
    const ae_strspan *ids = NULL;
    size_t n_ids = 0;
    if (d->deeplog) {
        status = ae_fields_sessions(d->fields, md.content, md.content_len, &ids, &n_ids,
                                    d->errmsg, sizeof d->errmsg);
        if (status != AE_OK) {
            if (status == AE_ERR_TOO_LARGE)
                d->stats.refused++;
            return status;
        }
    }
    d->stats.unknown += key == m->n;
    int64_t ts = 0;
    int has_ts = 0;
    int idle = d->deeplog && m->session_idle_us > 0;
    if (((d->mscred && m->bucket_us > 0) || idle) &&
        (has_ts = ae_fields_timestamp(d->fields, d->matcher, line, d->year, &ts)) < 0)
        return oom(d);
    if (d->mscred && (status = ae_counts_line(&d->counts, host, has_ts && m->bucket_us > 0, ts, key,
                                              line_no)) != AE_OK)
        return status;
    if (idle && has_ts) {
        d->idle_ts = ts;
        if ((status = end_idle_sessions(d, ts)) != AE_OK)
            return status;
    }
    /* a line without a timestamp takes the last one seen (as MSCRED's buckets do) */
    int64_t line_ts = !idle ? INT64_MIN : has_ts ? ts : d->idle_ts;
    if (d->deeplog && (status = queue_sessions(d, ids, n_ids, host, key, line_no, line_ts, line,
                                               raw)) != AE_OK)
        return status;
    return drain(d, 0);
}

ae_status ae_detector_flush(ae_detector *d)
{
    if (d == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    d->errmsg[0] = '\0';
    return drain(d, 1);
}

ae_status ae_detector_finish(ae_detector *d)
{
    if (d == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    d->errmsg[0] = '\0';
    ae_status status = AE_OK;
    while (status == AE_OK && d->sessions.lru_tail != AE_NO_ROW) /* end of input: every one */
        status = end_session(d, d->sessions.lru_tail);
    if (status == AE_OK)
        status = drain(d, 1);
    if (status == AE_OK && d->mscred)
        status = ae_counts_finish(&d->counts);
    if (status == AE_OK)
        status = drain(d, 1);
    return status;
}

ae_status ae_detector_stats_get(const ae_detector *d, ae_detector_stats *stats)
{
    if (d == NULL || stats == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    *stats = d->stats;
    stats->sessions = d->sessions.n_live + d->sessions.n_ended;
    return AE_OK;
}

const char *ae_detector_errmsg(const ae_detector *d)
{
    return d == NULL ? "" : d->errmsg;
}

/*
 * detector.c - raw lines of one stream in, verdicts out: each line is keyed by the matcher, its
 * host / timestamp / session ids found (fields.c), counted for MSCRED (counts.c) and judged by
 * DeepLog per session.
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

#include "detector_impl.h"

/* MSCRED windows per onnxruntime call: its intermediate tensors are large (the demo model
 * peaks ~8 MB above its resident size for one window, ~35 MB for four) while a batch saves
 * next to nothing per window. */
#define AE_MSCRED_DETECTOR_BATCH 1
/* Verdicts without model work queued behind pending ones: bounded, so memory stays bounded. */
#define AE_QUEUE_TEXT_LIMIT (4u << 20)

static const char STREAM[] = "<stream>";

ae_detector_params ae_detector_default_params(void)
{
    ae_detector_params p;
    memset(&p, 0, sizeof p);
    p.on_event = NULL;
    p.user = NULL;
    p.batch_size = 256;
    p.deeplog = 1;
    p.mscred = 1;
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
    ae_bound_run_free(d->ms_run);
    for (size_t i = 0; i < d->n_sessions; i++)
        free(d->sessions[i].name);
    free(d->sessions);
    free(d->rings);
    free(d->key_bits);
    ae_strmap_free(&d->session_map);
    ae_counts_free(d);
    free(d->ms_x);
    free(d->ms_scores);
    free(d->items);
    free(d->text);
    free(d);
}

static int current_year(void)
{
    time_t now = time(NULL);
    struct tm tm;
    if (now == (time_t)-1 || localtime_r(&now, &tm) == NULL)
        return 1970;
    return tm.tm_year + 1900;
}

ae_status ae_detector_new(ae_model *m, const ae_detector_params *params, ae_detector **out,
                          char *err, size_t err_len)
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
    int deeplog = p->deeplog && m->deeplog != NULL, mscred = p->mscred && m->mscred != NULL;
    if (!deeplog && !mscred)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len,
                       "ae_detector_new: no model to run (the params leave out every model the "
                       "model directory loaded)");
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
    d->lru_head = d->lru_tail = d->free_head = AE_NO_ROW;
    d->idle_ts = INT64_MIN;
    ae_status status = AE_OK;
    if (deeplog)
        status = ae_deeplog_batch_reserve(m, &d->dl, p->batch_size);
    if (status == AE_OK && mscred) {
        d->ms_cap = p->batch_size < AE_MSCRED_DETECTOR_BATCH ? p->batch_size
                                                             : AE_MSCRED_DETECTOR_BATCH;
        /* one more row for the all-zero window */
        d->ms_x = malloc((d->ms_cap + 1) * m->window * m->features * sizeof *d->ms_x);
        d->ms_scores = malloc((d->ms_cap + 1) * sizeof *d->ms_scores);
        if (d->ms_x == NULL || d->ms_scores == NULL)
            status = ae_fail(AE_ERR_NO_MEMORY, m->errmsg, sizeof m->errmsg, "out of memory");
        else
            status = ae_mscred_bind(m, &d->ms_run);
    }
    if (status != AE_OK) {
        ae_fail(status, err, err_len, "%s", m->errmsg);
        ae_detector_free(d);
        return status;
    }
    *out = d;
    return AE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The queue
 */

size_t ae_detector_text(ae_detector *d, const char *s, size_t len)
{
    if (d->text_len + len + 1 > d->text_cap) {
        size_t cap = d->text_cap ? d->text_cap : 4096;
        while (cap < d->text_len + len + 1)
            cap *= 2;
        char *grown = realloc(d->text, cap);
        if (grown == NULL)
            return AE_NO_TEXT;
        d->text = grown;
        d->text_cap = cap;
    }
    size_t at = d->text_len;
    memcpy(d->text + at, s, len);
    d->text[at + len] = '\0';
    d->text_len += len + 1;
    return at;
}

ae_item *ae_detector_item(ae_detector *d)
{
    if (d->n_items == d->cap_items) {
        size_t cap = d->cap_items ? 2 * d->cap_items : 64;
        ae_item *grown = realloc(d->items, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        d->items = grown;
        d->cap_items = cap;
    }
    ae_item *it = &d->items[d->n_items++];
    memset(it, 0, sizeof *it);
    it->row = AE_NO_ROW;
    it->host = AE_NO_TEXT;
    it->line = AE_NO_TEXT;
    it->session = AE_NO_TEXT;
    return it;
}

static void clear_queue(ae_detector *d)
{
    d->n_items = 0;
    d->text_len = 0;
    d->dl_rows = 0;
    d->ms_rows = 0;
}

static const char *text_at(const ae_detector *d, size_t offset)
{
    return offset == AE_NO_TEXT ? NULL : d->text + offset;
}

/* Judge and report every queued verdict (the model outputs are in place). */
static ae_status emit(ae_detector *d)
{
    const ae_model *m = d->m;
    size_t classes = m->classes;
    for (size_t i = 0; i < d->n_items; i++) {
        const ae_item *it = &d->items[i];
        ae_event ev;
        memset(&ev, 0, sizeof ev);
        ev.rank = -1;
        ev.probability = NAN;
        ev.score = NAN;
        ev.threshold = NAN;
        ev.slot_start_us = ev.end_us = INT64_MIN;
        ev.host = text_at(d, it->host);
        if (!it->mscred) {
            ev.model = "deeplog";
            ev.anomalous = it->unseen;
            ev.reason = it->unseen ? AE_REASON_UNSEEN : AE_REASON_NONE;
            if (it->row != AE_NO_ROW) {
                ae_deeplog_judge(d->dl.logits + (size_t)it->row * classes, classes, it->key,
                                 &ev.rank, &ev.probability);
                ae_reason why = ae_deeplog_rule_reason(m, ev.rank, ev.probability);
                if (!ev.anomalous && why != AE_REASON_NONE) {
                    ev.anomalous = 1;
                    ev.reason = it->end ? AE_REASON_END : why;
                }
            }
            if (!ev.anomalous && it->key_set) {
                ev.anomalous = 1;
                ev.reason = AE_REASON_KEY_SET;
            }
            ev.line_no = it->line_no;
            ev.session = text_at(d, it->session);
            ev.key = it->key;
            ev.template_ = it->end ? NULL : ae_vocab_template(m->vocab, it->key);
            ev.line = it->end ? "" : text_at(d, it->line);
            ev.line_len = it->end ? 0 : it->line_len;
            d->stats.keys_judged++;
            d->stats.deeplog_anomalies += (uint64_t)ev.anomalous;
        } else {
            ev.model = "mscred";
            ev.score = it->scored ? it->score : d->ms_scores[it->row];
            ev.threshold = m->threshold;
            ev.anomalous = ev.score > m->threshold;
            ev.reason = ev.anomalous ? AE_REASON_SCORE : AE_REASON_NONE;
            ev.bucket = it->bucket;
            ev.slot_start_us = it->slot_start_us;
            ev.end_us = it->end_us;
            ev.first_line_no = it->first_line_no;
            ev.last_line_no = it->last_line_no;
            d->stats.windows_scored++;
            d->stats.mscred_alarms += (uint64_t)ev.anomalous;
        }
        if ((ev.anomalous || d->p.report_all) && d->p.on_event(&ev, d->p.user) != 0) {
            clear_queue(d);
            return ae_fail(AE_ERR_IO, d->errmsg, sizeof d->errmsg,
                           "stopped by the event callback");
        }
    }
    clear_queue(d);
    return AE_OK;
}

ae_status ae_detector_drain(ae_detector *d, int force)
{
    int pending = d->dl_rows > 0 || d->ms_rows > 0;
    int full = (d->deeplog && d->dl_rows >= d->dl.cap_rows) ||
               (d->mscred && d->ms_rows >= d->ms_cap) ||
               d->n_items >= 8 * d->p.batch_size + 64 || d->text_len >= AE_QUEUE_TEXT_LIMIT;
    if (d->n_items == 0 || (pending && !full && !force))
        return AE_OK;
    ae_status status = AE_OK;
    if (d->dl_rows > 0)
        status = ae_deeplog_batch_run(d->m, &d->dl, d->dl_rows);
    if (status == AE_OK && d->ms_rows > 0)
        status = ae_mscred_run(d->m, d->ms_run, d->ms_x, d->ms_rows, d->ms_scores);
    if (status != AE_OK) { /* the verdicts waiting for the run are lost: say so */
        ae_fail(status, d->errmsg, sizeof d->errmsg, "%s (%zu verdicts dropped)", d->m->errmsg,
                d->n_items);
        clear_queue(d);
        return status;
    }
    return emit(d);
}

/* ---------------------------------------------------------------------------------------------
 * DeepLog sessions: a hash map to an array, an LRU list for eviction beyond max_sessions
 */

static void lru_unlink(ae_detector *d, uint32_t i)
{
    ae_dsession *s = &d->sessions[i];
    if (s->prev != AE_NO_ROW)
        d->sessions[s->prev].next = s->next;
    else
        d->lru_head = s->next;
    if (s->next != AE_NO_ROW)
        d->sessions[s->next].prev = s->prev;
    else
        d->lru_tail = s->prev;
}

static void lru_push_front(ae_detector *d, uint32_t i)
{
    ae_dsession *s = &d->sessions[i];
    s->prev = AE_NO_ROW;
    s->next = d->lru_head;
    if (d->lru_head != AE_NO_ROW)
        d->sessions[d->lru_head].prev = i;
    d->lru_head = i;
    if (d->lru_tail == AE_NO_ROW)
        d->lru_tail = i;
}

/* The session of a name, made on first sight (dropping the least recently seen one when
 * max_sessions are held), and made the most recent. */
static ae_status session_of(ae_detector *d, const char *name, size_t len, uint32_t *out)
{
    uint64_t hash = ae_strmap_hash(name, len);
    uint32_t i;
    if (ae_strmap_get(&d->session_map, name, len, hash, &i)) {
        if (d->lru_head != i) {
            lru_unlink(d, i);
            lru_push_front(d, i);
        }
        *out = i;
        return AE_OK;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return oom(d);
    memcpy(copy, name, len);
    copy[len] = '\0';
    int reuse = d->free_head != AE_NO_ROW;
    int evict = !reuse && d->n_sessions == d->p.max_sessions;
    if (reuse) { /* the slot of an ended session */
        i = d->free_head;
        d->free_head = d->sessions[i].next;
    } else if (evict) { /* reuse the slot of the least recently seen session */
        i = d->lru_tail;
        ae_dsession *old = &d->sessions[i];
        ae_strmap_del(&d->session_map, old->name, old->len, old->hash);
        lru_unlink(d, i);
        free(old->name);
        old->name = NULL;
    } else {
        if (d->n_sessions == d->cap_sessions) {
            size_t cap = d->cap_sessions ? 2 * d->cap_sessions : 64;
            if (cap > d->p.max_sessions)
                cap = d->p.max_sessions;
            ae_dsession *grown = realloc(d->sessions, cap * sizeof *grown);
            if (grown != NULL)
                d->sessions = grown;
            uint32_t *rings = grown == NULL ? NULL
                                            : realloc(d->rings, cap * 2 * d->m->h * sizeof *rings);
            if (rings != NULL)
                d->rings = rings;
            uint64_t *bits = rings == NULL ? NULL
                             : realloc(d->key_bits, cap * d->m->key_sets.words * sizeof *bits + 1);
            if (bits == NULL) {
                free(copy);
                return oom(d);
            }
            d->key_bits = bits;
            d->cap_sessions = cap;
        }
        i = (uint32_t)d->n_sessions;
    }
    ae_dsession *s = &d->sessions[i];
    s->name = copy;
    s->len = len;
    s->hash = hash;
    s->count = 0;
    s->last_line_no = 0;
    s->last_ts = INT64_MIN;
    memset(d->key_bits + (size_t)i * d->m->key_sets.words, 0, d->m->key_sets.words * sizeof *d->key_bits);
    if (d->m->start_key != SIZE_MAX) { /* a full window of start keys: the first key is predicted */
        uint32_t *ring = d->rings + (size_t)i * 2 * d->m->h;
        for (size_t j = 0; j < 2 * d->m->h; j++)
            ring[j] = (uint32_t)d->m->start_key;
        s->count = d->m->h;
    }
    /* After a deletion the map has room: only a new slot can fail here. */
    if (ae_strmap_put(&d->session_map, copy, len, hash, i) != 0) {
        free(copy);
        s->name = NULL;
        return oom(d);
    }
    if (!evict && !reuse)
        d->n_sessions++;
    if (!evict)
        d->n_live++;
    lru_push_front(d, i);
    *out = i;
    return AE_OK;
}

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
    ae_dsession *s = &d->sessions[i];
    if (m->start_key != SIZE_MAX) {
        ae_status status;
        if (d->dl_rows == d->dl.cap_rows && (status = ae_detector_drain(d, 1)) != AE_OK)
            return status;
        size_t session = ae_detector_text(d, s->name, s->len);
        ae_item *it = session == AE_NO_TEXT ? NULL : ae_detector_item(d);
        if (it == NULL)
            return oom(d);
        it->end = 1;
        it->key = m->end_key;
        it->line_no = s->last_line_no;
        it->session = session;
        it->row = (uint32_t)d->dl_rows;
        it->key_set = (unsigned char)ae_key_set_end(m, d->key_bits + (size_t)i * m->key_sets.words);
        const uint32_t *ring = d->rings + (size_t)i * 2 * m->h;
        size_t at = (size_t)(s->count % m->h);
        int64_t *x = d->dl.x + d->dl_rows * m->h;
        for (size_t j = 0; j < m->h; j++)
            x[j] = ring[at + j];
        d->dl_rows++;
    }
    ae_strmap_del(&d->session_map, s->name, s->len, s->hash);
    lru_unlink(d, i);
    free(s->name);
    s->name = NULL;
    s->next = d->free_head;
    d->free_head = i;
    d->n_live--;
    d->n_ended++;
    return AE_OK;
}

/* End the sessions whose last line is more than session_idle before `now`, least recently seen
 * first (sessions without a timestamp never idle out). */
static ae_status end_idle_sessions(ae_detector *d, int64_t now)
{
    ae_status status = AE_OK;
    while (status == AE_OK && d->lru_tail != AE_NO_ROW) {
        const ae_dsession *s = &d->sessions[d->lru_tail];
        if (s->last_ts == INT64_MIN || now - s->last_ts <= d->m->session_idle_us)
            break;
        status = end_session(d, d->lru_tail);
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
        if ((status = ae_detector_drain(d, 1)) != AE_OK)
            return status;
        q->text_at = AE_NO_TEXT;
    }
    if (q->text_at == AE_NO_TEXT) {
        q->text_at = ae_detector_text(d, q->text, q->len);
        q->host_at = q->host != NULL ? ae_detector_text(d, q->host->p, q->host->len) : 0;
        if (q->text_at == AE_NO_TEXT || q->host_at == AE_NO_TEXT)
            return oom(d);
        if (q->host == NULL)
            q->host_at = AE_NO_TEXT;
    }
    uint32_t i = 0;
    if ((status = session_of(d, name, len, &i)) != AE_OK)
        return status;
    size_t session = ae_detector_text(d, name, len);
    ae_item *it = session == AE_NO_TEXT ? NULL : ae_detector_item(d);
    if (it == NULL)
        return oom(d);
    it->key = q->key;
    it->unseen = q->key == m->n || !m->seen[q->key];
    it->key_set = (unsigned char)ae_key_set_add(m, d->key_bits + (size_t)i * m->key_sets.words, q->key);
    it->line_no = q->line_no;
    it->line = q->text_at;
    it->line_len = q->len;
    it->session = session;
    it->host = q->host_at;
    ae_dsession *s = &d->sessions[i];
    uint32_t *ring = d->rings + (size_t)i * 2 * m->h;
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
    ae_model *m = d->m;
    d->stats.lines++;
    ae_match_detail md;
    ae_status status = ae_matcher_match_detail(m->matcher, line, len, &md);
    if (status != AE_OK) {
        if (status == AE_ERR_NOT_FOUND)
            d->stats.blank++;
        else if (status == AE_ERR_FORMAT || status == AE_ERR_TOO_LARGE)
            d->stats.refused++;
        return ae_fail(status, d->errmsg, sizeof d->errmsg, "%s", ae_matcher_errmsg(m->matcher));
    }
    size_t raw = len;
    while (raw > 0 && (line[raw - 1] == '\n' || line[raw - 1] == '\r'))
        raw--;
    size_t key = md.index;
    ae_strspan host_span;
    const ae_strspan *host = ae_fields_host(m->fields, m->matcher, line, &host_span) ? &host_span
                                                                                     : NULL;
    const ae_strspan *ids = NULL;
    size_t n_ids = 0;
    if (d->deeplog) {
        status = ae_fields_sessions(m->fields, md.content, md.content_len, &ids, &n_ids,
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
        (has_ts = ae_fields_timestamp(m->fields, m->matcher, line, d->year, &ts)) < 0)
        return oom(d);
    if (d->mscred && (status = ae_counts_line(d, host, has_ts && m->bucket_us > 0, ts, key,
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
    return ae_detector_drain(d, 0);
}

ae_status ae_detector_flush(ae_detector *d)
{
    if (d == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    d->errmsg[0] = '\0';
    return ae_detector_drain(d, 1);
}

ae_status ae_detector_finish(ae_detector *d)
{
    if (d == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    d->errmsg[0] = '\0';
    ae_status status = AE_OK;
    while (status == AE_OK && d->lru_tail != AE_NO_ROW) /* end of input ends every session */
        status = end_session(d, d->lru_tail);
    if (status == AE_OK)
        status = ae_detector_drain(d, 1);
    if (status == AE_OK && d->mscred)
        status = ae_counts_finish(d);
    if (status == AE_OK)
        status = ae_detector_drain(d, 1);
    return status;
}

ae_status ae_detector_stats_get(const ae_detector *d, ae_detector_stats *stats)
{
    if (d == NULL || stats == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    *stats = d->stats;
    stats->sessions = d->n_live + d->n_ended;
    return AE_OK;
}

const char *ae_detector_errmsg(const ae_detector *d)
{
    return d == NULL ? "" : d->errmsg;
}

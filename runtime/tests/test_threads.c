/*
 * test_threads.c - one `const ae_model *` shared by detectors, scorers and matchers on several
 * threads at once gives what one thread gives (run it under TSan too: the "tsan" preset).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ae_test.h"

#define THREADS 4
#define LINES 6000
#define T0 1773489600LL

static const char *full(void)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/full_model", AE_TEST_FIXTURES);
    return path;
}

/* A log in the fixture's format: interleaved sessions on three hosts, some lines without a
 * session, a few unknown ones, a few blank ones, time moving on by 0-3 seconds. */
typedef struct log_text {
    char *text;
    size_t *start, *len;
    size_t n;
} log_text;

static int make_log(log_text *log)
{
    static const char *const hosts[] = {"node-a", "node-b", "node-c"};
    static const char *const steps[] = {"start job sid=%04x", "step sid=%04x done",
                                        "copy sid=%04x to /data/%u", "finish job sid=%04x",
                                        "rare event sid=%04x", "unheard of %u things"};
    size_t cap = (size_t)LINES * 96;
    log->text = malloc(cap);
    log->start = malloc(LINES * sizeof *log->start);
    log->len = malloc(LINES * sizeof *log->len);
    if (log->text == NULL || log->start == NULL || log->len == NULL)
        return 0;
    unsigned state = 12345u, used = 0;
    long long t = T0;
    for (size_t i = 0; i < LINES; i++) {
        state = state * 1103515245u + 12345u;
        unsigned r = state >> 8;
        t += r % 4;
        char content[64];
        unsigned sid = 0x1000 + r % 37, kind = (r / 37) % 16;
        const char *fmt = steps[kind < 13 ? kind % 4 : kind == 13 ? 4 : 5];
        if (kind == 15)
            snprintf(content, sizeof content, fmt, r % 1000);
        else if (strstr(fmt, "copy") != NULL)
            snprintf(content, sizeof content, fmt, sid, r % 100);
        else
            snprintf(content, sizeof content, fmt, sid);
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
        int k = i % 500 == 499 ? snprintf(log->text + used, cap - used, " \t\n")
                               : snprintf(log->text + used, cap - used, "%s %s app: %s\n",
                                          stamp, hosts[r % 3], content);
        log->start[i] = used;
        log->len[i] = (size_t)k;
        used += (unsigned)k;
    }
    log->n = LINES;
    return 1;
}

static void free_log(log_text *log)
{
    free(log->text);
    free(log->start);
    free(log->len);
}

/* The verdicts of one run as text, one line per event. */
typedef struct verdicts {
    char *text;
    size_t len, cap;
    int failed;
} verdicts;

static void put(verdicts *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(verdicts *v, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k < 0 || v->failed)
        return;
    if (v->len + (size_t)k + 1 > v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 1 << 16;
        while (cap < v->len + (size_t)k + 1)
            cap *= 2;
        char *grown = realloc(v->text, cap);
        if (grown == NULL) {
            v->failed = 1;
            return;
        }
        v->text = grown;
        v->cap = cap;
    }
    memcpy(v->text + v->len, line, (size_t)k + 1);
    v->len += (size_t)k;
}

static int record(const ae_event *ev, void *user)
{
    verdicts *v = user;
    if (ev->kind == AE_EVENT_DEEPLOG) {
        const ae_deeplog_event *e = &ev->deeplog;
        put(v, "D %llu %s %s %zu %s %lld %.9g %.*s\n", (unsigned long long)e->line_no, e->session,
            e->host ? e->host : "-", e->key, ae_reason_name(ev->reason), (long long)e->rank,
            (double)e->probability, (int)e->line_len, e->line);
    } else {
        const ae_mscred_event *e = &ev->mscred;
        put(v, "M %s %lld %lld %lld %llu-%llu %.9g %d\n", e->series, (long long)e->bucket,
            (long long)e->slot_start_us, (long long)e->end_us,
            (unsigned long long)e->first_line_no, (unsigned long long)e->last_line_no,
            (double)e->score, ev->anomalous);
    }
    return 0;
}

typedef struct detect_job {
    const ae_model *model;
    const log_text *log;
    size_t batch;
    verdicts out;
    ae_status status;
    uint64_t blank;
} detect_job;

/* Every line of the log through a detector of its own; every verdict reported. */
static void *detect(void *arg)
{
    detect_job *job = arg;
    ae_detector_params p = ae_detector_default_params();
    p.on_event = record;
    p.user = &job->out;
    p.batch_size = job->batch;
    p.report_all = 1;
    ae_detector *d = NULL;
    job->status = ae_detector_new(job->model, &p, &d, NULL, 0);
    for (size_t i = 0; i < job->log->n && job->status == AE_OK; i++) {
        ae_status st = ae_detector_push(d, job->log->text + job->log->start[i], job->log->len[i],
                                        i + 1);
        job->blank += st == AE_BLANK;
        if (st != AE_OK && st != AE_BLANK)
            job->status = st;
    }
    if (job->status == AE_OK)
        job->status = ae_detector_finish(d);
    ae_detector_free(d);
    return NULL;
}

AE_TEST(threads_share_one_model_and_each_detector_gives_the_verdicts_of_one_thread)
{
    char err[512];
    ae_model *model = NULL;
    CHECK_STATUS(ae_model_load(full(), NULL, &model, err, sizeof err), AE_OK);
    log_text log = {0};
    CHECK(make_log(&log));
    detect_job alone = {model, &log, 256, {0}, AE_OK, 0};
    detect(&alone);
    CHECK_STATUS(alone.status, AE_OK);
    CHECK(!alone.out.failed && alone.out.len > 0);
    CHECK(alone.blank == LINES / 500);
    /* every kind of verdict is in the reference, so the comparison covers them all */
    CHECK(strstr(alone.out.text, "D ") != NULL && strstr(alone.out.text, "M ") != NULL);
    CHECK(strstr(alone.out.text, " top_k ") != NULL && strstr(alone.out.text, " unseen ") != NULL);

    /* several batch sizes at once: the verdicts do not depend on it either */
    static const size_t batches[THREADS] = {256, 1, 7, 64};
    detect_job jobs[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (detect_job){model, &log, batches[t], {0}, AE_OK, 0};
        CHECK(pthread_create(&threads[t], NULL, detect, &jobs[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
        CHECK_STATUS(jobs[t].status, AE_OK);
        CHECK(!jobs[t].out.failed);
        CHECK(jobs[t].out.len == alone.out.len);
        CHECK(jobs[t].out.text != NULL && strcmp(jobs[t].out.text, alone.out.text) == 0);
        free(jobs[t].out.text);
    }
    free(alone.out.text);
    free_log(&log);
    ae_model_free(model);
}

typedef struct score_job {
    const ae_model *model;
    const size_t *keys;
    size_t n;
    const float *windows;
    size_t n_windows;
    ae_key_verdict *verdicts;
    float *scores;
    ae_status status;
} score_job;

static void *score(void *arg)
{
    score_job *job = arg;
    char why[256];
    for (int round = 0; round < 20 && job->status == AE_OK; round++) {
        job->status = ae_deeplog_score(job->model, job->keys, job->n, 16, job->verdicts, NULL,
                                       why, sizeof why);
        if (job->status == AE_OK)
            job->status = ae_mscred_score(job->model, job->windows, job->n_windows, job->scores,
                                          why, sizeof why);
    }
    return NULL;
}

AE_TEST(threads_score_keys_and_windows_on_one_model_at_once_as_one_thread_does)
{
    char err[512];
    ae_model *model = NULL;
    CHECK_STATUS(ae_model_load(full(), NULL, &model, err, sizeof err), AE_OK);
    ae_model_info info;
    CHECK_STATUS(ae_model_info_get(model, &info), AE_OK);
    enum { KEYS = 300, WINDOWS = 6 };
    size_t keys[KEYS];
    for (size_t i = 0; i < KEYS; i++)
        keys[i] = (i * 7 + i / 5) % (info.num_templates + 1);
    size_t cells = info.mscred_window * info.feature_dim;
    float *windows = calloc(WINDOWS * cells, sizeof *windows);
    CHECK(windows != NULL);
    for (size_t i = 0; i < WINDOWS * cells; i++)
        windows[i] = (float)((i * 31) % 5);
    ae_key_verdict ref[KEYS], got[THREADS][KEYS];
    float ref_scores[WINDOWS], got_scores[THREADS][WINDOWS];
    score_job alone = {model, keys, KEYS, windows, WINDOWS, ref, ref_scores, AE_OK};
    score(&alone);
    CHECK_STATUS(alone.status, AE_OK);
    score_job jobs[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (score_job){model, keys, KEYS, windows, WINDOWS, got[t], got_scores[t], AE_OK};
        CHECK(pthread_create(&threads[t], NULL, score, &jobs[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
        CHECK_STATUS(jobs[t].status, AE_OK);
        for (size_t i = 0; i < KEYS; i++)
            CHECK(got[t][i].anomalous == ref[i].anomalous && got[t][i].reason == ref[i].reason &&
                  got[t][i].rank == ref[i].rank &&
                  (got[t][i].rank < 0 || got[t][i].probability == ref[i].probability));
        CHECK(memcmp(got_scores[t], ref_scores, sizeof ref_scores) == 0);
    }
    free(windows);
    ae_model_free(model);
}

typedef struct match_job {
    const ae_matcher *shared;
    const log_text *log;
    size_t *keys;
    ae_status status;
} match_job;

static void *match(void *arg)
{
    match_job *job = arg;
    ae_matcher *m = NULL;
    job->status = ae_matcher_clone(job->shared, &m);
    for (size_t i = 0; i < job->log->n && job->status == AE_OK; i++) {
        ae_status st = ae_matcher_match(m, job->log->text + job->log->start[i], job->log->len[i],
                                        &job->keys[i], NULL);
        if (st != AE_OK && st != AE_BLANK)
            job->status = st;
    }
    ae_matcher_free(m);
    return NULL;
}

AE_TEST(threads_match_lines_with_clones_of_the_model_matcher_as_one_thread_does)
{
    char err[512];
    ae_model *model = NULL;
    CHECK_STATUS(ae_model_load(full(), NULL, &model, err, sizeof err), AE_OK);
    log_text log = {0};
    CHECK(make_log(&log));
    size_t *ref = calloc(LINES, sizeof *ref), *got = calloc((size_t)THREADS * LINES, sizeof *got);
    CHECK(ref != NULL && got != NULL);
    match_job alone = {ae_model_matcher(model), &log, ref, AE_OK};
    match(&alone);
    CHECK_STATUS(alone.status, AE_OK);
    match_job jobs[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (match_job){ae_model_matcher(model), &log, got + (size_t)t * LINES, AE_OK};
        CHECK(pthread_create(&threads[t], NULL, match, &jobs[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
        CHECK_STATUS(jobs[t].status, AE_OK);
        CHECK(memcmp(got + (size_t)t * LINES, ref, LINES * sizeof *ref) == 0);
    }
    CHECK_STATUS(ae_matcher_clone(NULL, NULL), AE_ERR_INVALID_ARGUMENT);
    free(ref);
    free(got);
    free_log(&log);
    ae_model_free(model);
}

#include "test_threads_cases.h"
AE_TEST_MAIN()

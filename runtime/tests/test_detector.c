/*
 * test_detector.c - streams of raw lines through a detector on the full_model fixture
 * (make_onnx_fixtures.py): "<Timestamp> <Host> <Component>: <Content>", sessions sid=xxxx,
 * templates 0 "start job <*>", 1 "step <*> done", 2 "copy <*> to <*>", 3 "finish job <*>",
 * 4 "rare event <*>" (never seen in training), 5 = unknown; DeepLog h = 3, top_k 2, its logits
 * put 1/3 per window key on the key after it in the cycle 0 1 2 3; MSCRED windows of 4 buckets
 * of 10 s every 2 buckets, score = the lines in the window, threshold 10.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ae_test.h"
#include "internal.h"

#ifndef AE_TEST_FIXTURES
#error "AE_TEST_FIXTURES must name the folder written by make_onnx_fixtures.py"
#endif

/* 2026-03-14T12:00:00Z, a multiple of 10 s. */
#define T0 1773489600LL

/* The events of a run, one text line each. */
typedef struct recorder {
    char log[65536];
    size_t events;
    size_t stop_at; /* ask to stop at this event (1-based); 0: never */
    const ae_vocab *vocab;
    int bad; /* an event broke a rule of ae_event */
} recorder;

static void add(recorder *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(recorder *r, const char *fmt, ...)
{
    size_t used = strlen(r->log);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->log + used, sizeof r->log - used, fmt, ap);
    va_end(ap);
}

static void add_time(recorder *r, int64_t us)
{
    if (us == INT64_MIN)
        add(r, " null");
    else
        add(r, " +%llds", (long long)(us / 1000000 - T0));
}

static int record(const ae_event *ev, void *user)
{
    recorder *r = user;
    r->events++;
    if (ev->kind == AE_EVENT_DEEPLOG) {
        const ae_deeplog_event *e = &ev->deeplog;
        /* the rules of ae_event for a key */
        if ((e->rank < 0) != isnan(e->probability) || e->line == NULL ||
            (ev->reason == AE_REASON_END) != (ev->anomalous && e->line_len == 0 && e->key > 5) ||
            strlen(e->line) != e->line_len || e->template_ != ae_vocab_template(r->vocab, e->key) ||
            (e->line_len > 0 && e->line[e->line_len - 1] == '\n')) {
            fprintf(stderr, "bad: %s rank %lld p %g len %zu/%zu\n", e->line, (long long)e->rank,
                    e->probability, e->line_len, strlen(e->line));
            r->bad = 1;
        }
        add(r, "D%llu %s %s k%zu %s r%lld\n", (unsigned long long)e->line_no, e->session,
            e->host ? e->host : "-", e->key,
            ev->anomalous ? ae_reason_name(ev->reason) : "ok", (long long)e->rank);
    } else {
        const ae_mscred_event *e = &ev->mscred;
        if (ev->kind != AE_EVENT_MSCRED || ev->anomalous != (ev->reason == AE_REASON_SCORE) ||
            e->series == NULL)
            r->bad = 1;
        add(r, "M %s b%lld", e->series, (long long)e->bucket);
        add_time(r, e->slot_start_us);
        add_time(r, e->end_us);
        add(r, " l%llu-%llu s%g %s\n", (unsigned long long)e->first_line_no,
            (unsigned long long)e->last_line_no, e->score, ev->anomalous ? "alarm" : "ok");
    }
    return r->stop_at != 0 && r->events >= r->stop_at;
}

static const char *full(void)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/full_model", AE_TEST_FIXTURES);
    return path;
}

static const char *with_session_keys(void)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/session_model", AE_TEST_FIXTURES);
    return path;
}

/* The model directory with the models asked for (the detector runs every model loaded). */
static ae_model *load_models(const char *dir, int deeplog, int mscred)
{
    char err[512];
    ae_model *m = NULL;
    ae_model_params mp = ae_model_default_params();
    mp.load_deeplog = deeplog;
    mp.load_mscred = mscred;
    if (ae_model_load(dir, &mp, &m, err, sizeof err) != AE_OK)
        fprintf(stderr, "loading %s: %s\n", dir, err);
    return m;
}

static ae_model *load(const char *dir)
{
    return load_models(dir, 1, 1);
}

static ae_detector_params params(recorder *r, int all)
{
    ae_detector_params p = ae_detector_default_params();
    p.on_event = record;
    p.user = r;
    p.report_all = all;
    return p;
}

/* A log line at T0 + seconds (seconds < 0: an unparsable timestamp). */
static const char *line_at(long seconds, const char *host, const char *content)
{
    static char buf[512];
    char stamp[64] = "not-a-time";
    if (seconds >= 0) {
        time_t t = (time_t)(T0 + seconds);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    snprintf(buf, sizeof buf, "%s %s app: %s\n", stamp, host, content);
    return buf;
}

typedef struct input {
    long seconds;
    const char *host, *content;
} input;

/* Push the lines (numbered from 1), then finish. @return 1 if every call succeeded. */
static int run(ae_detector *d, const input *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *text = line_at(lines[i].seconds, lines[i].host, lines[i].content);
        ae_status st = ae_detector_push(d, text, strlen(text), i + 1);
        if (st != AE_OK) {
            fprintf(stderr, "line %zu: %s: %s\n", i + 1, ae_strerror(st), ae_detector_errmsg(d));
            return 0;
        }
    }
    ae_status st = ae_detector_finish(d);
    if (st != AE_OK)
        fprintf(stderr, "finish: %s\n", ae_detector_errmsg(d));
    return st == AE_OK;
}

#define N_LINES(a) (sizeof(a) / sizeof(a)[0])

/* ---------------------------------------------------------------------------------------------
 * API
 */

AE_TEST(detector_default_params_batch_256_windows_and_keep_100000_sessions)
{
    ae_detector_params p = ae_detector_default_params();
    CHECK(p.on_event == NULL && p.batch_size == 256);
    CHECK(!p.report_all && p.max_sessions == 100000 && p.year == 0);
}

AE_TEST(detector_new_refuses_no_callback_and_zero_sizes)
{
    ae_model *m = load(full());
    CHECK(m != NULL);
    recorder r = {0};
    ae_detector *d = NULL;
    char err[256];
    ae_detector_params p = params(&r, 0);
    p.on_event = NULL;
    CHECK_STATUS(ae_detector_new(m, &p, &d, err, sizeof err), AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err, "no on_event callback");
    p = params(&r, 0);
    p.batch_size = 0;
    CHECK_STATUS(ae_detector_new(m, &p, &d, err, sizeof err), AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err, "batch_size is 0");
    p = params(&r, 0);
    p.max_sessions = 0;
    CHECK_STATUS(ae_detector_new(m, &p, &d, err, sizeof err), AE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ae_detector_new(NULL, &p, &d, err, sizeof err), AE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ae_detector_new(m, NULL, &d, err, sizeof err), AE_ERR_INVALID_ARGUMENT);
    CHECK(d == NULL);
    ae_model_free(m);
}

AE_TEST(detector_functions_take_null_without_harm)
{
    ae_detector_free(NULL);
    CHECK_STATUS(ae_detector_push(NULL, "x", 1, 1), AE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ae_detector_flush(NULL), AE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ae_detector_finish(NULL), AE_ERR_INVALID_ARGUMENT);
    ae_detector_stats stats;
    CHECK_STATUS(ae_detector_stats_get(NULL, &stats), AE_ERR_INVALID_ARGUMENT);
    CHECK_STR(ae_detector_errmsg(NULL), "");
}

/* ---------------------------------------------------------------------------------------------
 * DeepLog
 */

/* A detector on the fixture; `max_sessions` 0 keeps the default. */
typedef struct setup {
    ae_model *m;
    ae_detector *d;
    recorder r;
} setup;

static int open_setup(setup *s, const char *dir, int deeplog, int mscred, int all,
                      size_t batch, size_t max_sessions)
{
    memset(s, 0, sizeof *s);
    if ((s->m = load_models(dir, deeplog, mscred)) == NULL)
        return 0;
    s->r.vocab = ae_model_vocab(s->m);
    ae_detector_params p = params(&s->r, all);
    p.batch_size = batch;
    if (max_sessions)
        p.max_sessions = max_sessions;
    char err[256];
    if (ae_detector_new(s->m, &p, &s->d, err, sizeof err) != AE_OK) {
        fprintf(stderr, "%s\n", err);
        return 0;
    }
    return 1;
}

static void close_setup(setup *s)
{
    ae_detector_free(s->d);
    ae_model_free(s->m);
}

AE_TEST(detector_judges_each_session_on_its_own_keys)
{
    static const input lines[] = {
        {0, "h1", "start job sid=aaaa"},  {1, "h1", "start job sid=bbbb"},
        {2, "h1", "step sid=aaaa done"},  {3, "h1", "copy sid=aaaa to x"},
        {4, "h1", "step sid=bbbb done"},  {5, "h1", "finish job sid=aaaa"},
        {6, "h1", "start job sid=aaaa"},  {7, "h1", "rare event sid=aaaa"},
        {8, "h1", "step sid=aaaa done"},  {9, "h1", "start job sid=aaaa"},
    };
    setup s;
    CHECK(open_setup(&s, full(), 1, 0, 1, 256, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    /* line 8: key 4 after [2, 3, 0] ranks 3 but is unseen first; line 9: key 1 after [3, 0, 4]
       (logits 2/3 on 0, 1/3 on 1) ranks 1; line 10: key 0 after [0, 4, 1] ranks 0 */
    CHECK_STR(s.r.log, "D1 aaaa h1 k0 ok r-1\n"
                       "D2 bbbb h1 k0 ok r-1\n"
                       "D3 aaaa h1 k1 ok r-1\n"
                       "D4 aaaa h1 k2 ok r-1\n"
                       "D5 bbbb h1 k1 ok r-1\n"
                       "D6 aaaa h1 k3 ok r0\n"
                       "D7 aaaa h1 k0 ok r0\n"
                       "D8 aaaa h1 k4 unseen r3\n"
                       "D9 aaaa h1 k1 ok r1\n"
                       "D10 aaaa h1 k0 ok r0\n");
    CHECK(!s.r.bad);
    ae_detector_stats st;
    CHECK_STATUS(ae_detector_stats_get(s.d, &st), AE_OK);
    CHECK(st.lines == 10 && st.keys_judged == 10 && st.deeplog_anomalies == 1);
    CHECK(st.sessions == 2 && st.unknown == 0 && st.blank == 0 && st.refused == 0);
    close_setup(&s);
}

AE_TEST(detector_flags_a_key_outside_the_top_k_of_its_window)
{
    static const input lines[] = {
        {0, "h1", "start job sid=aaaa"}, {1, "h1", "start job sid=aaaa"},
        {2, "h1", "step sid=aaaa done"}, {3, "h1", "finish job sid=aaaa"},
    };
    setup s;
    CHECK(open_setup(&s, full(), 1, 0, 0, 256, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    /* after [0, 0, 1]: 2/3 on key 1, 1/3 on key 2: key 3 ties with 0, 4, 5 at rank 2 */
    CHECK_STR(s.r.log, "D4 aaaa h1 k3 top_k r2\n");
    close_setup(&s);
}

/* session_model: logits = mean of one-hot rows over the window (cycle start 0 1 2 3 end), so
 * p(0 | start start start) = e/(e+7) = 0.28, p(1 | start start start) = 1/(e+7) = 0.10,
 * p(end | start start 0) = 0.107, and 0.149..0.152 along the cycle: threshold 0.12. */
AE_TEST(detector_predicts_a_sessions_first_key_and_judges_where_it_ends)
{
    static const input lines[] = {
        {0, "h1", "start job sid=aaaa"}, {1, "h1", "step sid=aaaa done"},
        {2, "h1", "step sid=bbbb done"},  /* bbbb starts in the middle */
        {3, "h1", "copy a to sid=aaaa"}, {4, "h1", "start job sid=cccc"},  /* cccc stops early */
        {5, "h1", "finish job sid=aaaa"},  /* a closing template: aaaa ends here, normally */
        {6, "h1", "start job sid=aaaa"},   /* a new aaaa, from start keys again */
    };
    setup s;
    CHECK(open_setup(&s, with_session_keys(), 1, 0, 1, 256, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    CHECK(!s.r.bad);
    CHECK_STR(s.r.log, "D1 aaaa h1 k0 ok r0\n"
                       "D2 aaaa h1 k1 ok r1\n"
                       "D3 bbbb h1 k1 probability r1\n"
                       "D4 aaaa h1 k2 ok r0\n"
                       "D5 cccc h1 k0 ok r0\n"
                       "D6 aaaa h1 k3 ok r0\n"
                       "D6 aaaa - k7 ok r0\n"
                       "D7 aaaa h1 k0 ok r0\n"
                       "D3 bbbb - k7 end r2\n"  /* end of input, least recently seen first */
                       "D5 cccc - k7 end r2\n"
                       "D7 aaaa - k7 end r2\n");
    ae_detector_stats st;
    CHECK_STATUS(ae_detector_stats_get(s.d, &st), AE_OK);
    CHECK(st.sessions == 4 && st.deeplog_anomalies == 4);
    close_setup(&s);
}

AE_TEST(detector_ends_a_session_idle_for_the_metas_session_idle_seconds)
{
    static const input lines[] = {
        {0, "h1", "start job sid=aaaa"}, {50, "h1", "start job sid=bbbb"},
        {100, "h1", "step sid=bbbb done"},  /* aaaa idle for 100 s > 60: it ends first */
        {101, "h1", "step sid=aaaa done"},  /* a new aaaa: "step" first is improbable */
    };
    setup s;
    CHECK(open_setup(&s, with_session_keys(), 1, 0, 0, 1, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    CHECK_STR(s.r.log, "D1 aaaa - k7 end r2\n"
                       "D4 aaaa h1 k1 probability r1\n"
                       "D3 bbbb - k7 end r3\n"
                       "D4 aaaa - k7 end r2\n");
    close_setup(&s);
}

AE_TEST(detector_falls_back_to_the_host_then_to_the_one_stream)
{
    static const input lines[] = {{0, "h1", "start job 1"}, {1, "h2", "start job 2"}};
    setup s;
    CHECK(open_setup(&s, full(), 1, 0, 1, 256, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    const char *loose = "a line the format misses\n";
    CHECK_STATUS(ae_detector_push(s.d, loose, strlen(loose), 3), AE_OK);
    CHECK_STATUS(ae_detector_finish(s.d), AE_OK);
    CHECK_STR(s.r.log, "D1 h1 h1 k0 ok r-1\n"
                       "D2 h2 h2 k0 ok r-1\n"
                       "D3 <stream> - k5 unseen r-1\n");
    close_setup(&s);
}

AE_TEST(detector_puts_a_line_into_every_session_it_names)
{
    static const input lines[] = {{0, "h1", "copy sid=aaaa to sid=bbbb"},
                                  {1, "h1", "copy sid=bbbb to sid=bbbb"}};
    setup s;
    CHECK(open_setup(&s, full(), 1, 0, 1, 256, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    CHECK_STR(s.r.log, "D1 aaaa h1 k2 ok r-1\n"
                       "D1 bbbb h1 k2 ok r-1\n"
                       "D2 bbbb h1 k2 ok r-1\n");
    close_setup(&s);
}

AE_TEST(detector_drops_the_least_recently_seen_session_beyond_max_sessions)
{
    static const input lines[] = {
        {0, "h", "start job sid=bbbb"},  {0, "h", "step sid=bbbb done"},
        {0, "h", "copy sid=bbbb to x"},  {0, "h", "start job sid=aaaa"},
        {0, "h", "step sid=aaaa done"},  {0, "h", "copy sid=aaaa to x"},
        {0, "h", "finish job sid=aaaa"}, {0, "h", "start job sid=cccc"},
        {0, "h", "finish job sid=bbbb"}, {0, "h", "start job sid=aaaa"},
    };
    setup s;
    CHECK(open_setup(&s, full(), 1, 0, 1, 256, 2));
    CHECK(run(s.d, lines, N_LINES(lines)));
    /* line 8 drops bbbb (aaaa was seen later), so line 9 starts it anew; it drops aaaa */
    CHECK_STR(s.r.log, "D1 bbbb h k0 ok r-1\nD2 bbbb h k1 ok r-1\nD3 bbbb h k2 ok r-1\n"
                       "D4 aaaa h k0 ok r-1\nD5 aaaa h k1 ok r-1\nD6 aaaa h k2 ok r-1\n"
                       "D7 aaaa h k3 ok r0\nD8 cccc h k0 ok r-1\nD9 bbbb h k3 ok r-1\n"
                       "D10 aaaa h k0 ok r-1\n");
    ae_detector_stats st;
    CHECK_STATUS(ae_detector_stats_get(s.d, &st), AE_OK);
    CHECK_SIZE(st.sessions, 2);
    close_setup(&s);
}

AE_TEST(detector_waits_for_a_full_batch_or_a_flush)
{
    setup s;
    CHECK(open_setup(&s, full(), 1, 0, 1, 3, 0));
    const char *keys[] = {"start job sid=aaaa", "step sid=aaaa done", "copy sid=aaaa to x",
                          "finish job sid=aaaa", "start job sid=aaaa", "start job sid=bbbb",
                          "step sid=aaaa done", "copy sid=aaaa to x"};
    const size_t events_after[] = {1, 2, 3, 3, 3, 3, 7, 7};
    for (size_t i = 0; i < 8; i++) {
        const char *text = line_at((long)i, "h", keys[i]);
        CHECK_STATUS(ae_detector_push(s.d, text, strlen(text), i + 1), AE_OK);
        CHECK_SIZE(s.r.events, events_after[i]); /* the new session's key waits behind them */
    }
    CHECK_STATUS(ae_detector_flush(s.d), AE_OK);
    CHECK_SIZE(s.r.events, 8);
    close_setup(&s);
}

AE_TEST(detector_skips_blank_and_refused_lines_and_goes_on)
{
    setup s;
    CHECK(open_setup(&s, full(), 1, 1, 1, 1, 0));
    CHECK_STATUS(ae_detector_push(s.d, " \t\r\n", 4, 1), AE_BLANK);
    CHECK_STATUS(ae_detector_push(s.d, "bad \xff byte\n", 11, 2), AE_ERR_FORMAT);
    CHECK_CONTAINS(ae_detector_errmsg(s.d), "not valid UTF-8 (byte 5)");
    CHECK_STATUS(ae_detector_push(s.d, "nul \0 byte", 10, 3), AE_ERR_FORMAT);
    CHECK_CONTAINS(ae_detector_errmsg(s.d), "NUL");
    const char *ok = line_at(0, "h", "start job sid=aaaa");
    CHECK_STATUS(ae_detector_push(s.d, ok, strlen(ok), 4), AE_OK);
    CHECK_STR(ae_detector_errmsg(s.d), "");
    CHECK_STR(s.r.log, "D4 aaaa h k0 ok r-1\n");
    ae_detector_stats st;
    CHECK_STATUS(ae_detector_stats_get(s.d, &st), AE_OK);
    CHECK(st.lines == 4 && st.blank == 1 && st.refused == 2 && st.keys_judged == 1);
    close_setup(&s);
}

AE_TEST(detector_stops_when_the_callback_asks_with_an_io_error)
{
    setup s;
    CHECK(open_setup(&s, full(), 1, 0, 1, 1, 0));
    s.r.stop_at = 2;
    const char *a = line_at(0, "h", "copy sid=aaaa to sid=bbbb");
    CHECK_STATUS(ae_detector_push(s.d, a, strlen(a), 1), AE_STOPPED);
    CHECK_CONTAINS(ae_detector_errmsg(s.d), "stopped by the event callback");
    CHECK_SIZE(s.r.events, 2);
    close_setup(&s);
}

/* ---------------------------------------------------------------------------------------------
 * MSCRED
 */

AE_TEST(detector_closes_buckets_and_scores_a_window_every_stride)
{
    static const input lines[] = {
        {0, "h1", "start job 1"},  {1, "h1", "start job 1"},  {10, "h1", "start job 1"},
        {20, "h1", "start job 1"}, {21, "h1", "start job 1"}, {22, "h1", "start job 1"},
        {30, "h1", "start job 1"}, {40, "h1", "start job 1"}, {50, "h1", "start job 1"},
        {60, "h1", "start job 1"},
    };
    setup s;
    CHECK(open_setup(&s, full(), 0, 1, 1, 256, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    /* windows end at buckets 3, 5, ...; each judges its last 2 buckets (the slot) */
    CHECK_STR(s.r.log, "M h1 b3 +20s +40s l4-7 s7 ok\n"
                       "M h1 b5 +40s +60s l8-9 s6 ok\n");
    CHECK(!s.r.bad);
    close_setup(&s);
}

AE_TEST(detector_keeps_a_series_per_host_and_alarms_above_the_threshold)
{
    input lines[40];
    size_t n = 0;
    for (int i = 0; i < 12; i++)
        lines[n++] = (input){i, "h1", "start job 1"};
    lines[n++] = (input){5, "h2", "start job 1"};
    lines[n++] = (input){35, "h1", "start job 1"};
    lines[n++] = (input){45, "h2", "start job 1"};
    lines[n++] = (input){46, "h1", "start job 1"};
    setup s;
    CHECK(open_setup(&s, full(), 0, 1, 0, 256, 0));
    CHECK(run(s.d, lines, n));
    CHECK_STR(s.r.log, "M h1 b3 +20s +40s l14-14 s13 alarm\n");
    ae_detector_stats st;
    CHECK_STATUS(ae_detector_stats_get(s.d, &st), AE_OK);
    CHECK(st.windows_scored == 2 && st.mscred_alarms == 1); /* h2's window of buckets 0..3 too */
    close_setup(&s);
}

AE_TEST(detector_scores_windows_across_a_gap_of_empty_buckets)
{
    static const input lines[] = {{0, "h1", "start job 1"}, {100, "h1", "start job 1"}};
    setup s;
    CHECK(open_setup(&s, full(), 0, 1, 1, 256, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    CHECK_STR(s.r.log, "M h1 b3 +20s +40s l0-0 s1 ok\n"
                       "M h1 b5 +40s +60s l0-0 s0 ok\n"
                       "M h1 b7 +60s +80s l0-0 s0 ok\n"
                       "M h1 b9 +80s +100s l0-0 s0 ok\n");
    close_setup(&s);
    /* reported only as counts when none is an anomaly */
    CHECK(open_setup(&s, full(), 0, 1, 0, 256, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    CHECK_STR(s.r.log, "");
    ae_detector_stats st;
    CHECK_STATUS(ae_detector_stats_get(s.d, &st), AE_OK);
    CHECK(st.windows_scored == 4 && st.mscred_alarms == 0);
    close_setup(&s);
}

AE_TEST(detector_fills_missing_timestamps_forward_and_backward)
{
    static const input lines[] = {
        {-1, "h1", "start job 1"}, {25, "h1", "start job 1"}, {-1, "h1", "start job 1"},
        {31, "h1", "start job 1"}, {45, "h1", "start job 1"}, {55, "h1", "start job 1"},
        {60, "h1", "start job 1"},
    };
    setup s;
    CHECK(open_setup(&s, full(), 0, 1, 1, 256, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    /* lines 1 and 3 count in the bucket of 25 s, the series' first (T0 + 20 s) */
    CHECK_STR(s.r.log, "M h1 b3 +40s +60s l5-6 s6 ok\n");
    close_setup(&s);
}

AE_TEST(detector_starts_new_series_after_finish)
{
    static const input lines[] = {{0, "h1", "start job 1"}, {31, "h1", "start job 1"}};
    static const input later[] = {{1000, "h1", "start job 1"}, {1031, "h1", "start job 1"}};
    setup s;
    CHECK(open_setup(&s, full(), 0, 1, 1, 256, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    CHECK(run(s.d, later, N_LINES(later)));
    CHECK_STR(s.r.log, "M h1 b3 +20s +40s l2-2 s2 ok\n"
                       "M h1 b3 +1020s +1040s l2-2 s2 ok\n");
    close_setup(&s);
}

/* The fixture with its MSCRED counting by `lines` lines for the whole stream. */
static const char *line_bucket_model(size_t lines)
{
    static const char *const files[] = {"vocab.json", "parser.json", "mscred.onnx"};
    char src[4096], err[256];
    for (size_t i = 0; i < 3; i++) {
        snprintf(src, sizeof src, "%s/full_model/%s", AE_TEST_FIXTURES, files[i]);
        char *data = NULL;
        size_t len = 0;
        if (ae_read_file(src, 1u << 26, &data, &len, err, sizeof err) != AE_OK)
            return NULL;
        ae_test_write(files[i], data, len);
        free(data);
    }
    char meta[1024];
    snprintf(meta, sizeof meta,
             "{\"model_type\": \"mscred\", \"feature_dim\": 6, \"unk_index\": 5, "
             "\"window_size\": 4, \"threshold\": 10, \"broken_cell_level\": 0.5, \"gap\": 2, "
             "\"counts\": {\"bucket_seconds\": null, \"bucket_lines\": %zu, "
             "\"per_host\": false}}", lines);
    ae_test_write_text("mscred.onnx.meta.json", meta);
    return ae_test_tmpdir();
}

AE_TEST(detector_counts_buckets_of_lines_for_the_whole_stream)
{
    input lines[9];
    for (int i = 0; i < 9; i++)
        lines[i] = (input){-1, i % 2 ? "h1" : "h2", "start job 1"};
    const char *dir = line_bucket_model(2);
    CHECK(dir != NULL);
    setup s;
    CHECK(open_setup(&s, dir, 1, 1, 1, 256, 0));
    CHECK(run(s.d, lines, N_LINES(lines)));
    CHECK_STR(s.r.log, "M <all> b3 null null l5-8 s8 ok\n");
    close_setup(&s);
}

/* ---------------------------------------------------------------------------------------------
 * Batches
 */

/* A stream with interleaved sessions and hosts, unknown lines, missing timestamps and gaps. */
static size_t make_stream(input *lines, size_t n)
{
    static const char *const contents[] = {
        "start job sid=aaaa", "step sid=aaaa done", "copy sid=aaaa to sid=bbbb",
        "finish job sid=aaaa", "start job sid=bbbb", "step sid=bbbb done",
        "finish job sid=bbbb", "start job sid=cccc", "step sid=cccc done",
        "rare event x", "start job 7", "nothing we know", "finish job sid=cccc",
    };
    static const char *const hosts[] = {"h0", "h1", "h2"};
    static const long gaps[] = {0, 1, 2, 0, 7, 1, 0, 30, 3};
    uint32_t rng = 12345;
    long t = 0;
    for (size_t i = 0; i < n; i++) {
        rng = rng * 1103515245u + 12345u;
        uint32_t r = rng >> 8;
        t += i == n / 2 ? 400 : gaps[r % 9];
        lines[i].seconds = r % 23 == 0 ? -1 : t;
        lines[i].host = hosts[(r >> 4) % 3];
        lines[i].content = contents[(r >> 7) % 13];
    }
    return n;
}

AE_TEST(detector_gives_the_same_events_in_batch_and_follow_modes)
{
    static input lines[600];
    size_t n = make_stream(lines, 600);
    static char reference[2][65536];
    const size_t batches[] = {1, 2, 3, 5, 256, 10000};
    for (int all = 0; all < 2; all++) {
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            setup s;
            CHECK(open_setup(&s, full(), 1, 1, all, batches[b], 0));
            CHECK(run(s.d, lines, n));
            CHECK(!s.r.bad);
            if (b == 0) {
                memcpy(reference[all], s.r.log, sizeof s.r.log);
                CHECK(strstr(s.r.log, "M h") != NULL && strstr(s.r.log, "D") != NULL);
                CHECK(all || strstr(s.r.log, "top_k") != NULL);
            } else if (strcmp(s.r.log, reference[all]) != 0) {
                ae_test_fail_at(__FILE__, __LINE__, "batch %zu (all %d) differs from batch 1",
                                batches[b], all);
                close_setup(&s);
                return;
            }
            close_setup(&s);
        }
    }
}

#include "test_detector_cases.h"
AE_TEST_MAIN()

/*
 * bench.c - `alog-edge bench`: throughput, latency, memory and load time on a real log.
 *
 * Every figure is measured on the calling thread (onnxruntime with --threads, default 1) over
 * repeated passes of the log held in memory, so disk speed does not enter.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alog_edge.h"
#include "bench.h"
#include "cli.h"
#include "cli_borrowed.h" /* ae_read_file */

static const char BENCH_USAGE[] =
    "usage: alog-edge bench [--seconds S] [--batch N] [--threads N] [--json] <model_dir> <log>\n"
    "\n"
    "Measures, on <log> held in memory:\n"
    "  load           ae_model_load of <model_dir> and load to the first verdict\n"
    "  match          template matching alone, lines/s\n"
    "  deeplog        matching + DeepLog with batched onnxruntime calls, lines/s and keys/s\n"
    "  both           matching + DeepLog + MSCRED, lines/s\n"
    "  windows        DeepLog windows/s at the batch size (onnxruntime plus the runtime's part)\n"
    "  follow         per-line latency in follow mode (match + one DeepLog call per key):\n"
    "                 p50, p99, max\n"
    "  mscred         one MSCRED window (scored when a bucket closes, every stride buckets)\n"
    "  memory         RSS after loading and peak RSS (VmHWM) of the process\n"
    "\n"
    "options:\n"
    "  --seconds S    time per throughput figure (default 2)\n"
    "  --batch N      DeepLog windows per onnxruntime call (default 256)\n"
    "  --threads N    onnxruntime intra-op threads (default 1: one core)\n"
    "  --json         one JSON object on stdout instead of the table\n"
    "  --match-only   only matching, with vocab.json and parser.json (no models needed)\n"
    "  -h, --help     print this help and exit\n"
    "\n"
    "Exit status: 0 done; 1 error (one line on stderr); 2 usage error.\n";

typedef struct bench_counts {
    unsigned long long events;
    int first_seen;
} bench_counts;

static int count_event(const ae_event *event, void *user)
{
    (void)event;
    bench_counts *c = user;
    c->events++;
    c->first_seen = 1;
    return 0;
}

/* Feed every line through a fresh detector, pass after pass, for at least `seconds`.
 * @return lines/s, or -1 on an error (printed); *keys_per_s gets DeepLog verdicts/s. */
static double detector_rate(const ae_model *model, const log_lines *log, size_t batch,
                            double seconds, double *keys_per_s)
{
    bench_counts counts = {0, 0};
    ae_detector_params p = ae_detector_default_params();
    p.on_event = count_event;
    p.user = &counts;
    p.batch_size = batch;
    unsigned long long lines = 0, judged = 0;
    double t0 = bench_now_s(), elapsed = 0;
    do {
        char err[512];
        ae_detector *d = NULL;
        if (ae_detector_new(model, &p, &d, err, sizeof err) != AE_OK) {
            fprintf(stderr, "error: %s\n", err);
            return -1;
        }
        for (size_t i = 0; i < log->count; i++) {
            ae_status st = ae_detector_push(d, log->text + log->start[i], log->len[i], i + 1);
            if (st == AE_ERR_ONNXRUNTIME || st == AE_ERR_NO_MEMORY || st == AE_STOPPED) {
                fprintf(stderr, "error: %s\n", ae_detector_errmsg(d));
                ae_detector_free(d);
                return -1;
            }
        }
        ae_status st = ae_detector_finish(d);
        ae_detector_stats stats;
        ae_detector_stats_get(d, &stats);
        if (st != AE_OK) {
            fprintf(stderr, "error: %s\n", ae_detector_errmsg(d));
            ae_detector_free(d);
            return -1;
        }
        ae_detector_free(d);
        lines += log->count;
        judged += stats.keys_judged;
        elapsed = bench_now_s() - t0;
    } while (elapsed < seconds);
    if (keys_per_s != NULL)
        *keys_per_s = (double)judged / elapsed;
    return (double)lines / elapsed;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct bench_result {
    size_t lines;
    double load_ms, first_verdict_ms;
    double match_lps, match_cpu_lps, deeplog_lps, deeplog_kps, both_lps, windows_ps;
    size_t windows_batch;
    double p50_us, p99_us, max_us, mscred_window_ms;
    double cpu_p50_us, cpu_p99_us; /* the same per line in this thread's CPU time */
    long rss_load_kb, rss_peak_kb;
    long rss_file_kb, rss_anon_kb; /* after load: mapped files (onnxruntime's code), heap */
    long peak_load_kb, peak_match_kb, peak_detect_kb, peak_follow_kb; /* per phase */
    double load_text_ms, load_deeplog_ms, load_mscred_ms; /* CPU ms: vocab + parser, each model */
    double load_cpu_ms, first_verdict_cpu_ms, load_first_use_ms;
    int has_deeplog, has_mscred;
} bench_result;

/* CPU ms of a model load with only the models asked for (the best of three). */
static double load_cpu_ms(const char *model_dir, int threads, int deeplog, int mscred)
{
    double best = -1;
    for (int round = 0; round < 3; round++) {
        char err[512];
        ae_model_params mp = ae_model_default_params();
        mp.session.intra_op_threads = threads;
        mp.load_deeplog = deeplog;
        mp.load_mscred = mscred;
        ae_model *model = NULL;
        double t0 = bench_cpu_s();
        ae_status st = ae_model_load(model_dir, &mp, &model, err, sizeof err);
        double ms = (bench_cpu_s() - t0) * 1e3;
        ae_model_free(model);
        if (st != AE_OK)
            return -1;
        if (best < 0 || ms < best)
            best = ms;
    }
    return best;
}

static int run_bench(const char *model_dir, const log_lines *log, double seconds, size_t batch,
                     int threads, bench_result *r)
{
    char err[1024];
    ae_model_params mp = ae_model_default_params();
    mp.session.intra_op_threads = threads;
    ae_model *model = NULL;
    ae_model *deeplog_model = NULL; /* DeepLog alone, when the directory has both models */
    ae_matcher *matcher = NULL;
    int rc = -1;
    size_t *key_buf = NULL;
    ae_key_verdict *verdicts = NULL;
    double *lat = NULL;
    ae_detector *d = NULL;

    /* load, and load to the first verdict (follow mode: the first key judged) */
    bench_phase_peak_kb();
    double t0 = bench_now_s(), c0 = bench_cpu_s();
    if (ae_model_load(model_dir, &mp, &model, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    ae_ort_release_load_pages(); /* as `run` does after loading */
    r->load_ms = (bench_now_s() - t0) * 1e3;
    r->load_cpu_ms = (bench_cpu_s() - c0) * 1e3;
    bench_counts first = {0, 0};
    ae_detector_params fp = ae_detector_default_params();
    fp.on_event = count_event;
    fp.user = &first;
    fp.batch_size = 1;
    fp.report_all = 1;
    if (ae_detector_new(model, &fp, &d, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    for (size_t i = 0; i < log->count && !first.first_seen; i++)
        ae_detector_push(d, log->text + log->start[i], log->len[i], i + 1);
    r->first_verdict_ms = first.first_seen ? (bench_now_s() - t0) * 1e3 : NAN;
    r->first_verdict_cpu_ms = first.first_seen ? (bench_cpu_s() - c0) * 1e3 : NAN;
    ae_detector_free(d);
    d = NULL;
    r->rss_load_kb = bench_status_kb("VmRSS");
    r->rss_file_kb = bench_status_kb("RssFile");
    r->rss_anon_kb = bench_status_kb("RssAnon");
    r->peak_load_kb = bench_phase_peak_kb();

    ae_model_info info;
    ae_model_info_get(model, &info);
    r->has_deeplog = info.has_deeplog;
    r->has_mscred = info.has_mscred;
    r->lines = log->count;

    /* matching alone */
    if (ae_matcher_clone(ae_model_matcher(model), &matcher) != AE_OK)
        goto oom;
    unsigned long long matched = 0;
    t0 = bench_now_s();
    double elapsed = 0;
    key_buf = malloc(log->count * sizeof *key_buf);
    if (key_buf == NULL)
        goto oom;
    size_t n_keys = 0;
    double cpu0 = bench_cpu_s();
    do {
        n_keys = 0;
        for (size_t i = 0; i < log->count; i++) {
            size_t key;
            if (ae_matcher_match(matcher, log->text + log->start[i], log->len[i], &key, NULL) ==
                AE_OK)
                key_buf[n_keys++] = key;
        }
        matched += log->count;
        elapsed = bench_now_s() - t0;
    } while (elapsed < seconds);
    r->match_lps = (double)matched / elapsed;
    r->match_cpu_lps = (double)matched / (bench_cpu_s() - cpu0);
    r->peak_match_kb = bench_phase_peak_kb();

    const ae_model *dl_model = model;
    if (info.has_deeplog && info.has_mscred) {
        ae_model_params dp = mp;
        dp.load_mscred = 0;
        if (ae_model_load(model_dir, &dp, &deeplog_model, err, sizeof err) != AE_OK) {
            fprintf(stderr, "error: %s\n", err);
            goto done;
        }
        dl_model = deeplog_model;
    }
    if (info.has_deeplog) {
        r->deeplog_lps = detector_rate(dl_model, log, batch, seconds, &r->deeplog_kps);
        if (r->deeplog_lps < 0)
            goto done;
        /* windows/s: the log's keys as one sequence, every window of h keys scored */
        if (n_keys > info.deeplog_window) {
            verdicts = malloc(n_keys * sizeof *verdicts);
            if (verdicts == NULL)
                goto oom;
            unsigned long long windows = 0;
            t0 = bench_now_s();
            do {
                if (ae_deeplog_score(model, key_buf, n_keys, batch, verdicts, NULL, err,
                                     sizeof err) != AE_OK) {
                    fprintf(stderr, "error: %s\n", err);
                    goto done;
                }
                /* with session keys every key and the end are predicted */
                windows += info.session_keys ? n_keys + 1 : n_keys - info.deeplog_window;
                elapsed = bench_now_s() - t0;
            } while (elapsed < seconds);
            r->windows_ps = (double)windows / elapsed;
            r->windows_batch = batch;
        }
    }
    if (info.has_mscred) {
        r->both_lps = detector_rate(model, log, batch, seconds, NULL);
        if (r->both_lps < 0)
            goto done;
    }

    r->peak_detect_kb = bench_phase_peak_kb();
    /* follow mode: one push per line, each key judged at once by DeepLog (MSCRED's windows close
     * every few hundred lines and are timed on their own below) */
    bench_counts sink = {0, 0};
    ae_detector_params lp = ae_detector_default_params();
    lp.on_event = count_event;
    lp.user = &sink;
    lp.batch_size = 1;
    if (ae_detector_new(dl_model, &lp, &d, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    size_t n_lat = log->count < 200000 ? log->count : 200000;
    lat = malloc(n_lat * sizeof *lat);
    if (lat == NULL)
        goto oom;
    double *cpu_lat = malloc(n_lat * sizeof *cpu_lat);
    if (cpu_lat == NULL)
        goto oom;
    for (size_t i = 0; i < n_lat; i++) {
        double s = bench_now_s(), c = bench_thread_cpu_s();
        ae_status st = ae_detector_push(d, log->text + log->start[i], log->len[i], i + 1);
        cpu_lat[i] = (bench_thread_cpu_s() - c) * 1e6;
        lat[i] = (bench_now_s() - s) * 1e6;
        if (st == AE_ERR_ONNXRUNTIME || st == AE_ERR_NO_MEMORY || st == AE_STOPPED) {
            fprintf(stderr, "error: %s\n", ae_detector_errmsg(d));
            free(cpu_lat);
            goto done;
        }
    }
    qsort(cpu_lat, n_lat, sizeof *cpu_lat, compare_doubles);
    r->cpu_p50_us = cpu_lat[n_lat / 2];
    r->cpu_p99_us = cpu_lat[(size_t)((double)(n_lat - 1) * 0.99)];
    free(cpu_lat);
    qsort(lat, n_lat, sizeof *lat, compare_doubles);
    r->p50_us = lat[n_lat / 2];
    r->p99_us = lat[(size_t)((double)(n_lat - 1) * 0.99)];
    r->max_us = lat[n_lat - 1];
    if (info.has_mscred) {
        /* one MSCRED window: what closing a bucket costs, once per stride buckets per host */
        size_t cells = info.mscred_window * info.feature_dim;
        float *window = calloc(cells, sizeof *window), score;
        if (window == NULL)
            goto oom;
        for (size_t i = 0; i < cells; i++)
            window[i] = (float)(i % 7 == 0);
        unsigned long long n = 0;
        t0 = bench_now_s();
        do {
            if (ae_mscred_score(model, window, 1, &score, err, sizeof err) != AE_OK) {
                fprintf(stderr, "error: %s\n", err);
                free(window);
                goto done;
            }
            n++;
            elapsed = bench_now_s() - t0;
        } while (elapsed < seconds / 4);
        free(window);
        r->mscred_window_ms = elapsed / (double)n * 1e3;
    }
    r->peak_follow_kb = bench_phase_peak_kb();
    r->rss_peak_kb = r->peak_load_kb;
    long phases[] = {r->peak_match_kb, r->peak_detect_kb, r->peak_follow_kb};
    for (size_t i = 0; i < sizeof phases / sizeof *phases; i++)
        if (phases[i] > r->rss_peak_kb)
            r->rss_peak_kb = phases[i];
    /* what load spends, after the peaks are taken: the text files, then each model on top */
    { /* vocab + parser on their own: ae_model_load needs one model at least */
        char err2[512];
        ae_vocab *v = NULL;
        ae_matcher *mt = NULL;
        char *vp = join_path(model_dir, "vocab.json"), *pp = join_path(model_dir, "parser.json");
        double c1 = bench_cpu_s();
        if (vp != NULL && pp != NULL && ae_vocab_load(vp, &v, err2, sizeof err2) == AE_OK &&
            ae_matcher_load(pp, v, &mt, err2, sizeof err2) == AE_OK)
            r->load_text_ms = (bench_cpu_s() - c1) * 1e3;
        ae_matcher_free(mt);
        ae_vocab_free(v);
        free(vp);
        free(pp);
    }
    double both = load_cpu_ms(model_dir, threads, 1, 1);
    r->load_deeplog_ms = r->has_deeplog ? load_cpu_ms(model_dir, threads, 1, 0) - r->load_text_ms : 0;
    r->load_mscred_ms = r->has_mscred ? both - r->load_text_ms - r->load_deeplog_ms : 0;
    /* the rest of the first load: onnxruntime's first use in the process (its code paged in) */
    r->load_first_use_ms = r->load_cpu_ms - both;
    rc = 0;
    goto done;
oom:
    fputs("error: out of memory\n", stderr);
done:
    ae_detector_free(d);
    free(lat);
    free(verdicts);
    free(key_buf);
    ae_matcher_free(matcher);
    ae_model_free(deeplog_model);
    ae_model_free(model);
    return rc;
}

static void print_json(const char *model_dir, const char *log_path, const bench_result *r,
                       size_t batch, int threads)
{
    out_line o = {0};
    out_str(&o, "{\"model_dir\": ");
    out_json_string(&o, model_dir, strlen(model_dir));
    out_str(&o, ", \"log\": ");
    out_json_string(&o, log_path, strlen(log_path));
    char buf[1024];
    snprintf(buf, sizeof buf,
             ", \"target\": \"%s\", \"threads\": %d, \"batch\": %zu, \"lines\": %zu"
             ", \"load_ms\": %.3f, \"first_verdict_ms\": %.3f, \"match_lines_per_s\": %.0f"
             ", \"deeplog_lines_per_s\": %.0f, \"deeplog_keys_per_s\": %.0f"
             ", \"both_lines_per_s\": %.0f, \"deeplog_windows_per_s\": %.0f"
             ", \"follow_p50_us\": %.2f, \"follow_p99_us\": %.2f, \"follow_max_us\": %.2f"
             ", \"mscred_window_ms\": %.3f"
             ", \"rss_after_load_kb\": %ld, \"peak_rss_kb\": %ld"
             ", \"match_cpu_lines_per_s\": %.0f, \"peak_rss_load_kb\": %ld"
             ", \"peak_rss_match_kb\": %ld, \"peak_rss_detect_kb\": %ld"
             ", \"peak_rss_follow_kb\": %ld, \"load_text_cpu_ms\": %.3f"
             ", \"load_deeplog_cpu_ms\": %.3f, \"load_mscred_cpu_ms\": %.3f"
             ", \"load_cpu_ms\": %.3f, \"first_verdict_cpu_ms\": %.3f"
             ", \"load_first_use_cpu_ms\": %.3f, \"rss_after_load_file_kb\": %ld"
             ", \"rss_after_load_anon_kb\": %ld, \"follow_cpu_p50_us\": %.2f"
             ", \"follow_cpu_p99_us\": %.2f}\n",
             AE_TARGET, threads, batch, r->lines, r->load_ms,
             isnan(r->first_verdict_ms) ? -1.0 : r->first_verdict_ms, r->match_lps,
             r->deeplog_lps, r->deeplog_kps, r->both_lps, r->windows_ps, r->p50_us, r->p99_us,
             r->max_us, r->mscred_window_ms, r->rss_load_kb, r->rss_peak_kb, r->match_cpu_lps,
             r->peak_load_kb, r->peak_match_kb, r->peak_detect_kb, r->peak_follow_kb,
             r->load_text_ms, r->load_deeplog_ms, r->load_mscred_ms, r->load_cpu_ms,
             isnan(r->first_verdict_cpu_ms) ? -1.0 : r->first_verdict_cpu_ms, r->load_first_use_ms,
             r->rss_file_kb, r->rss_anon_kb, r->cpu_p50_us, r->cpu_p99_us);
    out_str(&o, buf);
    if (!o.failed)
        fwrite(o.data, 1, o.len, stdout);
    free(o.data);
}

static void print_table(const char *model_dir, const char *log_path, const bench_result *r,
                        size_t batch, int threads)
{
    printf("alog-edge bench: %s (%zu lines), models %s, %s, %d thread%s\n", log_path, r->lines,
           model_dir, AE_TARGET, threads, threads == 1 ? "" : "s");
    printf("  load                      %8.1f ms  (to the first verdict %.1f ms)\n", r->load_ms,
           r->first_verdict_ms);
    printf("  load, CPU                 %.1f ms: vocab + parser %.1f, DeepLog %.1f, MSCRED %.1f, "
           "onnxruntime's first use %.1f\n",
           r->load_cpu_ms, r->load_text_ms, r->load_deeplog_ms, r->load_mscred_ms,
           r->load_first_use_ms);
    printf("  match                     %10.0f lines/s  (%.0f per CPU second)\n", r->match_lps,
           r->match_cpu_lps);
    if (r->has_deeplog) {
        printf("  match + DeepLog (b%zu)    %10.0f lines/s  (%.0f keys/s)\n", batch, r->deeplog_lps,
               r->deeplog_kps);
        printf("  DeepLog windows (b%zu)    %10.0f windows/s\n", batch, r->windows_ps);
    }
    if (r->has_mscred) {
        printf("  match + both models       %10.0f lines/s\n", r->both_lps);
        printf("  MSCRED, one window        %10.2f ms\n", r->mscred_window_ms);
    }
    printf("  follow mode, per line     p50 %.1f us, p99 %.1f us, max %.1f us (match + DeepLog)\n",
           r->p50_us, r->p99_us, r->max_us);
    printf("  follow mode, CPU time     p50 %.1f us, p99 %.1f us\n", r->cpu_p50_us, r->cpu_p99_us);
    printf("  memory                    RSS after load %.1f MB, peak %.1f MB\n",
           (double)r->rss_load_kb / 1024.0, (double)r->rss_peak_kb / 1024.0);
    printf("  RSS after load, split     files %.1f MB (code, models), heap %.1f MB\n",
           (double)r->rss_file_kb / 1024.0, (double)r->rss_anon_kb / 1024.0);
    printf("  peak RSS per phase        load %.1f, match %.1f, batched %.1f, follow %.1f MB\n",
           (double)r->peak_load_kb / 1024.0, (double)r->peak_match_kb / 1024.0,
           (double)r->peak_detect_kb / 1024.0, (double)r->peak_follow_kb / 1024.0);
}

/* Matching alone on a directory with vocab.json and parser.json: lines/s and per CPU second. */
static int match_only(const char *model_dir, const log_lines *log, double seconds, int json)
{
    char err[1024], *vocab_path = join_path(model_dir, "vocab.json"),
                    *parser_path = join_path(model_dir, "parser.json");
    ae_vocab *vocab = NULL;
    ae_matcher *matcher = NULL;
    int rc = -1;
    if (vocab_path == NULL || parser_path == NULL) {
        fputs("error: out of memory\n", stderr);
        goto done;
    }
    if (ae_vocab_load(vocab_path, &vocab, err, sizeof err) != AE_OK ||
        ae_matcher_load(parser_path, vocab, &matcher, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    unsigned long long matched = 0, unknown = 0;
    size_t unk = ae_vocab_size(vocab); /* the unknown index */
    double t0 = bench_now_s(), c0 = bench_cpu_s(), elapsed;
    do {
        for (size_t i = 0; i < log->count; i++) {
            size_t key;
            if (ae_matcher_match(matcher, log->text + log->start[i], log->len[i], &key, NULL) !=
                    AE_OK || key == unk)
                unknown++;
        }
        matched += log->count;
        elapsed = bench_now_s() - t0;
    } while (elapsed < seconds);
    double cpu = bench_cpu_s() - c0;
    if (json)
        printf("{\"lines\": %zu, \"match_lines_per_s\": %.0f, \"match_cpu_lines_per_s\": %.0f, "
               "\"unknown_share\": %.6f, \"peak_rss_kb\": %ld}\n", log->count, matched / elapsed,
               matched / cpu, (double)unknown / (double)matched, bench_status_kb("VmHWM"));
    else
        printf("match: %.0f lines/s, %.0f per CPU second (%zu lines, %.2f%% unknown)\n",
               matched / elapsed, matched / cpu, log->count, 100.0 * unknown / matched);
    rc = 0;
done:
    ae_matcher_free(matcher);
    ae_vocab_free(vocab);
    free(vocab_path);
    free(parser_path);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    const char *model_dir = NULL, *log_path = NULL;
    double seconds = 2.0;
    long batch = 256, threads = 1;
    int json = 0, only_match = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(BENCH_USAGE, stdout);
            return EXIT_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--match-only") == 0) {
            only_match = 1;
        } else if (strcmp(a, "--seconds") == 0 || strcmp(a, "--batch") == 0 ||
                   strcmp(a, "--threads") == 0) {
            if (i + 1 >= argc)
                return usage_error("bench", 1, "%s needs a value", a);
            char *end = NULL;
            const char *v = argv[++i];
            if (strcmp(a, "--seconds") == 0) {
                seconds = strtod(v, &end);
                if (end == v || *end != '\0' || !(seconds > 0 && seconds <= 3600))
                    return usage_error("bench", 1, "--seconds %s is not in (0, 3600]", v);
            } else {
                long n = strtol(v, &end, 10);
                if (end == v || *end != '\0' || n < 1 || n > 65536)
                    return usage_error("bench", 1, "%s is not a whole number in 1..65536", v);
                *(strcmp(a, "--batch") == 0 ? &batch : &threads) = n;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("bench", 1, "unknown option %s", a);
        } else if (model_dir == NULL) {
            model_dir = a;
        } else if (log_path == NULL) {
            log_path = a;
        } else {
            return usage_error("bench", 1, "unexpected argument %s", a);
        }
    }
    if (log_path == NULL)
        return usage_error("bench", 0, "%s needs the model directory and a log file", "bench");

    log_lines log = {0};
    bench_result r;
    memset(&r, 0, sizeof r);
    int rc = EXIT_ERROR;
    if (only_match) {
        if (bench_load_lines(log_path, &log) == 0 && match_only(model_dir, &log, seconds, json) == 0)
            rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_ERROR;
    } else if (bench_load_lines(log_path, &log) == 0 &&
        run_bench(model_dir, &log, seconds, (size_t)batch, (int)threads, &r) == 0) {
        if (json)
            print_json(model_dir, log_path, &r, (size_t)batch, (int)threads);
        else
            print_table(model_dir, log_path, &r, (size_t)batch, (int)threads);
        rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_ERROR;
    }
    free(log.text);
    free(log.start);
    free(log.len);
    return rc;
}

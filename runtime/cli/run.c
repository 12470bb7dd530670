/*
 * run.c - `alog-edge run`: raw log lines in, one JSON line per anomaly out (DeepLog per key,
 * MSCRED per window), from a file read to its end, stdin, or a followed file.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "alog_edge.h"
#include "cli.h"
#include "internal.h" /* ae_ort_release_load_pages */

static const char RUN_USAGE[] =
    "usage: alog-edge run [--follow] [--max-idle SECONDS] [--batch N] [--all] [--no-deeplog]\n"
    "                     [--multiline]\n"
    "                     [--no-mscred] [--top-k K] [--threshold X] [--threads N] [--year Y]\n"
    "                     <model_dir> [FILE|-]\n"
    "\n"
    "Keys every line of FILE (\"-\" or none: stdin) with the model directory's parser.json,\n"
    "judges each key with DeepLog in its session (session id, else host, else the whole\n"
    "stream) and each window of per-bucket template counts with MSCRED, and writes one JSON\n"
    "line per anomaly:\n"
    "\n"
    "  {\"model\": \"deeplog\", \"line_no\": 12, \"session\": \"02ef75c9\", \"host\": \"edge-06\",\n"
    "   \"index\": 17, \"template\": \"...\", \"anomalous\": true, \"reason\": \"top_k\", \"rank\": 12,\n"
    "   \"probability\": 0.00123, \"line\": \"<the raw line>\"}\n"
    "  {\"model\": \"mscred\", \"host\": \"edge-06\", \"bucket\": 123, \"slot_start\":\n"
    "   \"2026-03-14T12:10:00.000000Z\", \"end\": \"2026-03-14T12:11:40.000000Z\",\n"
    "   \"first_line_no\": 100, \"last_line_no\": 180, \"score\": 203, \"threshold\": 181.5,\n"
    "   \"anomalous\": true}\n"
    "\n"
    "reason is \"unseen\" (a key never seen in training, the unknown key included), \"top_k\"\n"
    "(not among the top K predictions of the keys before it), \"probability\" (its predicted\n"
    "probability is below the threshold) or \"end\" (the model did not expect the session to\n"
    "end there: index is the end key, line_no the session's last line, line \"\"), \"key_set\"\n"
    "(the session's keys are no training session's key set: at the key that made them new,\n"
    "or at the end when they stop short of every set; meta key_sets). A session\n"
    "ends at the end of input, on a template the model directory declares as closing\n"
    "(closing_keys), or after --session-idle. Without session keys in the model the first keys\n"
    "of a session are only checked for unseen keys (rank and probability null). template is\n"
    "null for the unknown key and the end key. An MSCRED window judges its slot (its last\n"
    "stride buckets, slot_start to end; null for buckets of lines); host is the count series (\"<all>\": lines without a host, or the whole\n"
    "stream). At the end one summary line goes to stderr.\n"
    "\n";

/* Two strings: C11 compilers need only support literals of 4095 bytes. */
static const char RUN_OPTIONS[] =
    "options:\n"
    "  --follow           read FILE as it grows (tail -F): poll at its end every 100 ms, read a\n"
    "                     rotated file to its end and then the new one from its start, and read\n"
    "                     a truncated one again from its start; keys are judged one at a time\n"
    "                     (batch 1) unless --batch says otherwise. SIGINT or SIGTERM end it\n"
    "  --max-idle S       with --follow: stop after S seconds without new data\n"
    "  --batch N          DeepLog windows per onnxruntime call (default 256; 1 with --follow)\n"
    "  --all              write every verdict, normal ones too (\"anomalous\": false)\n"
    "  --multiline        a line that does not fit the log format continues the record before\n"
    "                     it (stack traces), judged as one line; on by itself when parser.json\n"
    "                     says \"multiline\": true; with --follow a record ends when no\n"
    "                     new line came for 100 ms\n"
    "  --no-deeplog       do not run DeepLog\n"
    "  --no-mscred        do not run MSCRED\n"
    "  --top-k K          DeepLog's top K (default: the model's top_k)\n"
    DEEPLOG_RULE_HELP
    DEEPLOG_IDLE_HELP
    "  --threshold X      MSCRED's alarm threshold (default: the model's threshold)\n"
    "  --threads N        onnxruntime threads per model (default 1)\n"
    "  --year Y           the year of timestamps that have none (syslog); default: the year of\n"
    "                     FILE's modification time, or the current year for stdin\n"
    "  -h, --help         print this help and exit\n"
    "\n"
    "A line that is not valid UTF-8, holds a NUL byte or is longer than 1048576 bytes is skipped\n"
    "and reported on stderr (the first 10). gzip-compressed input is refused: decompress it\n"
    "(zcat FILE | alog-edge run DIR -).\n"
    "\n"
    "Exit status: 0 done (anomalies found or not); 1 error (bad model directory, unreadable\n"
    "input, write error; one line on stderr: error: <file>: <what is wrong>); 2 usage error;\n"
    "3 some lines were skipped as refused, the others were judged.\n";

enum { MAX_LINE_WARNINGS = 10, POLL_MS = 100 };

/* Set by SIGINT / SIGTERM in --follow mode: finish and exit 0. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---------------------------------------------------------------------------------------------
 * The run
 */

typedef struct run_opts {
    int follow, all, deeplog, mscred, batch_set, multiline;
    double max_idle;
    unsigned long long batch, top_k, threads, year;
    double threshold;
    int threshold_set;
    ae_model_params dl; /* DeepLog's rule options */
    const char *model_dir, *input;
} run_opts;

typedef struct run_state {
    const run_opts *opt;
    const char *input_name;
    ae_detector *det;
    event_writer w;
    unsigned long long line_no, refused;
    unsigned long long earlier_lines; /* of the files before a rotation or truncation */
    int gzip_checked;
    record_joiner joiner; /* multiline records (joiner.matcher NULL: one record per line) */
} run_state;

/* A new file (rotated in) or the same one truncated: numbering restarts, the count goes on. */
static void restart_numbering(run_state *s)
{
    s->earlier_lines += s->line_no;
    s->line_no = 0;
}

/* Report an error of the detector. @return EXIT_ERROR. */
static int detector_error(run_state *s, ae_status status)
{
    if (s->w.write_error)
        fprintf(stderr, "error: writing to stdout: %s\n", strerror(s->w.write_error));
    else if (s->w.out_of_memory || status == AE_ERR_NO_MEMORY)
        fputs("error: out of memory\n", stderr);
    else
        fprintf(stderr, "error: %s: %s\n", s->opt->model_dir, ae_detector_errmsg(s->det));
    return EXIT_ERROR;
}

static void refuse(run_state *s, const char *why)
{
    if (s->refused < MAX_LINE_WARNINGS)
        fprintf(stderr, "warning: %s: line %llu: %s: skipped\n", s->input_name, s->line_no, why);
    else if (s->refused == MAX_LINE_WARNINGS)
        fprintf(stderr, "warning: %s: more refused lines (not shown)\n", s->input_name);
    s->refused++;
}

static int take_record(run_state *s, const char *line, size_t len, unsigned long long line_no);

/* The held multiline record, if any. @return -1 to go on, or an exit status. */
static int take_held(run_state *s)
{
    if (!s->joiner.held)
        return -1;
    int rc = take_record(s, s->joiner.data, s->joiner.len, s->joiner.line_no);
    joiner_reset(&s->joiner);
    return rc;
}

/* One line read. @return -1 to go on, or an exit status. */
static int take_line(run_state *s, int got, const char *line, size_t len)
{
    s->line_no++;
    if (!s->gzip_checked) {
        s->gzip_checked = 1;
        if (got == READ_LINE && len >= 2 && (unsigned char)line[0] == 0x1f &&
            (unsigned char)line[1] == 0x8b) {
            fprintf(stderr, "error: %s: gzip-compressed input: decompress it first "
                    "(zcat FILE | alog-edge run DIR -)\n", s->input_name);
            return EXIT_ERROR;
        }
    }
    if (got == READ_TOO_LONG) {
        int held = take_held(s);
        if (held >= 0)
            return held;
        char why[96];
        snprintf(why, sizeof why, "longer than %u bytes (%zu)", AE_LINE_MAX_BYTES, len);
        refuse(s, why);
        return -1;
    }
    if (s->joiner.matcher != NULL && got == READ_LINE) {
        int joined = joiner_offer(&s->joiner, line, len);
        if (joined == JOIN_TAKEN)
            return -1;
        int rc = joined == JOIN_NO_MEMORY ? detector_error(s, AE_ERR_NO_MEMORY) : take_held(s);
        if (rc >= 0)
            return rc;
        if (joined == JOIN_STARTS)
            return joiner_start(&s->joiner, line, len, s->line_no) == 0
                       ? -1 : detector_error(s, AE_ERR_NO_MEMORY);
    } else if (s->joiner.matcher != NULL) {
        int rc = take_held(s);
        if (rc >= 0)
            return rc;
    }
    return take_record(s, line, len, s->line_no);
}

/* Judge one record. @return -1 to go on, or an exit status. */
static int take_record(run_state *s, const char *line, size_t len, unsigned long long line_no)
{
    ae_status status = ae_detector_push(s->det, line, len, line_no);
    if (status == AE_OK || status == AE_BLANK)
        return -1;
    if (status == AE_ERR_FORMAT || status == AE_ERR_TOO_LARGE) {
        refuse(s, ae_detector_errmsg(s->det));
        return -1;
    }
    return detector_error(s, status);
}

static int read_to_end(run_state *s, FILE *f)
{
    line_reader r = {0};
    r.f = f;
    r.cap = 64 * 1024;
    if ((r.buf = calloc(1, r.cap)) == NULL) { /* zeroed: see reader_fill */
        fputs("error: out of memory\n", stderr);
        return EXIT_ERROR;
    }
    int rc = -1;
    while (rc < 0) {
        const char *line = NULL;
        size_t len = 0;
        int got = reader_next(&r, &line, &len);
        if (got == READ_EOF)
            break;
        if (got == READ_ERROR) {
            fprintf(stderr, "error: %s: %s\n", s->input_name, strerror(errno));
            rc = EXIT_ERROR;
            break;
        }
        rc = take_line(s, got, line, len);
    }
    if (rc < 0)
        rc = take_held(s);
    free(r.buf);
    return rc;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The last line of a file without its "\n" (at rotation or exit). @return as take_line. */
static int take_rest(run_state *s, follower *f)
{
    const char *line;
    size_t len;
    return follow_rest(f, &line, &len) ? take_line(s, READ_LINE, line, len) : -1;
}

static int follow(run_state *s, follower *fp)
{
    follower f = *fp;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a signal cuts the poll short */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    double last_data = seconds_now();
    int rc = -1;
    while (rc < 0 && !stop_requested) {
        const char *line = NULL;
        size_t len = 0;
        int got = follow_next(&f, &line, &len, POLL_MS);
        if (got == READ_LINE || got == READ_TOO_LONG) {
            rc = take_line(s, got, line, len);
            last_data = seconds_now();
            continue;
        }
        if (got == READ_EOF)
            break;
        if (got == READ_ERROR) {
            fprintf(stderr, "error: %s: %s\n", s->input_name, strerror(errno));
            rc = EXIT_ERROR;
            break;
        }
        /* Nothing new: judge the held record (a continuation after a pause starts its own),
         * show what is judged, then look at the file again. */
        if ((rc = take_held(s)) >= 0)
            break;
        ae_status status = ae_detector_flush(s->det);
        if (status != AE_OK) {
            rc = detector_error(s, status);
            break;
        }
        int change = follow_check(&f);
        if (change == FOLLOW_TRUNCATED) {
            fprintf(stderr, "run: %s: truncated: reading it again from its start\n",
                    s->input_name);
            restart_numbering(s);
            continue;
        }
        if (change == FOLLOW_ROTATED) {
            /* Whatever reached the old file meanwhile first, then the new one. */
            while (rc < 0 && (got = follow_next(&f, &line, &len, 0)) != READ_AGAIN &&
                   got != READ_EOF) {
                if (got == READ_ERROR) {
                    fprintf(stderr, "error: %s: %s\n", s->input_name, strerror(errno));
                    rc = EXIT_ERROR;
                } else {
                    rc = take_line(s, got, line, len);
                }
            }
            if (rc < 0)
                rc = take_rest(s, &f);
            if (rc < 0)
                rc = take_held(s);
            if (rc >= 0)
                break;
            int opened = follow_reopen(&f);
            if (opened < 0) {
                fprintf(stderr, "error: %s: %s\n", s->input_name, strerror(errno));
                rc = EXIT_ERROR;
                break;
            }
            if (opened == 0) {
                fprintf(stderr, "run: %s: rotated: reading the new file from its start\n",
                        s->input_name);
                restart_numbering(s);
                last_data = seconds_now();
                continue;
            }
        }
        if (change < 0) {
            fprintf(stderr, "error: %s: %s\n", s->input_name, strerror(errno));
            rc = EXIT_ERROR;
            break;
        }
        if (s->opt->max_idle > 0 && seconds_now() - last_data >= s->opt->max_idle)
            break;
        if (f.regular) {
            struct timespec pause = {0, POLL_MS * 1000000L};
            nanosleep(&pause, NULL); /* a signal ends it early */
        }
    }
    if (rc < 0)
        rc = take_rest(s, &f);
    if (rc < 0)
        rc = take_held(s);
    *fp = f;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    return rc;
}

static int parse_run_args(int argc, char **argv, run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->dl = ae_model_default_params();
    o->deeplog = o->mscred = 1;
    o->batch = 256;
    o->threads = 1;
    int positional = 0, options_done = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int missing = 0, dl_option = 0;
        if (!options_done && strcmp(a, "--") == 0) {
            options_done = 1;
        } else if (!options_done && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            fputs(RUN_USAGE, stdout);
            fputs(RUN_OPTIONS, stdout);
            return EXIT_OK;
        } else if (!options_done && strcmp(a, "--follow") == 0) {
            o->follow = 1;
        } else if (!options_done && strcmp(a, "--all") == 0) {
            o->all = 1;
        } else if (!options_done && strcmp(a, "--multiline") == 0) {
            o->multiline = 1;
        } else if (!options_done && strcmp(a, "--no-deeplog") == 0) {
            o->deeplog = 0;
        } else if (!options_done && strcmp(a, "--no-mscred") == 0) {
            o->mscred = 0;
        } else if (!options_done &&
                   ((v = option_value(argc, argv, &i, "--max-idle", &missing)) || missing)) {
            if (missing || parse_number(v, &o->max_idle) != 0 || o->max_idle <= 0)
                return usage_error("run", 1, "--max-idle needs a number of seconds above 0, got %s",
                                   missing ? "nothing" : v);
        } else if (!options_done &&
                   ((v = option_value(argc, argv, &i, "--batch", &missing)) || missing)) {
            if (missing || parse_count(v, 1, 1u << 20, &o->batch) != 0)
                return usage_error("run", 1, "--batch needs an integer in 1..1048576, got %s",
                                   missing ? "nothing" : v);
            o->batch_set = 1;
        } else if (!options_done &&
                   ((v = option_value(argc, argv, &i, "--top-k", &missing)) || missing)) {
            if (missing || parse_count(v, 1, 1u << 30, &o->top_k) != 0)
                return usage_error("run", 1, "--top-k needs a positive integer, got %s",
                                   missing ? "nothing" : v);
        } else if (!options_done &&
                   ((v = option_value(argc, argv, &i, "--threshold", &missing)) || missing)) {
            if (missing || parse_number(v, &o->threshold) != 0 || o->threshold < 0)
                return usage_error("run", 1, "--threshold needs a number >= 0, got %s",
                                   missing ? "nothing" : v);
            o->threshold_set = 1;
        } else if (!options_done &&
                   ((v = option_value(argc, argv, &i, "--threads", &missing)) || missing)) {
            if (missing || parse_count(v, 1, 256, &o->threads) != 0)
                return usage_error("run", 1, "--threads needs an integer in 1..256, got %s",
                                   missing ? "nothing" : v);
        } else if (!options_done &&
                   ((v = option_value(argc, argv, &i, "--year", &missing)) || missing)) {
            if (missing || parse_count(v, 1, 9999, &o->year) != 0)
                return usage_error("run", 1, "--year needs a year in 1..9999, got %s",
                                   missing ? "nothing" : v);
        } else if (!options_done &&
                   (dl_option = parse_deeplog_option(argc, argv, &i, "run", 1, &o->dl)) != 0) {
            if (dl_option > 1)
                return EXIT_USAGE;
        } else if (!options_done && a[0] == '-' && a[1] != '\0') {
            return usage_error("run", 1, "unknown option %s", a);
        } else if (positional == 0) {
            o->model_dir = a;
            positional++;
        } else if (positional == 1) {
            o->input = a;
            positional++;
        } else {
            return usage_error("run", 1, "unexpected argument %s", a);
        }
    }
    if (o->model_dir == NULL)
        return usage_error("run", 1, "%s", "needs the model directory");
    if (!o->deeplog && !o->mscred)
        return usage_error("run", 1, "%s", "--no-deeplog and --no-mscred leave nothing to run");
    if (o->max_idle > 0 && !o->follow)
        return usage_error("run", 1, "%s", "--max-idle needs --follow");
    if (o->follow && !o->batch_set)
        o->batch = 1;
    return -1;
}

/* Python's year_for: the file's modification year (local time) for yearless timestamps. */
static int year_of_file(const char *path)
{
    struct stat st;
    struct tm tm;
    time_t t;
    if (path == NULL || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    t = st.st_mtime;
    return localtime_r(&t, &tm) != NULL ? tm.tm_year + 1900 : 0;
}

int cmd_run(int argc, char **argv)
{
    run_opts opt;
    int rc = parse_run_args(argc, argv, &opt);
    if (rc >= 0)
        return rc;
    int from_stdin = opt.input == NULL || strcmp(opt.input, "-") == 0;
    run_state s;
    memset(&s, 0, sizeof s);
    s.opt = &opt;
    s.input_name = from_stdin ? "<stdin>" : opt.input;

    /* The input first: a followed file may rotate while the models load. */
    FILE *in = NULL;
    follower f;
    memset(&f, 0, sizeof f);
    f.fd = -1;
    struct stat st;
    if (!from_stdin && stat(opt.input, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "error: %s: is a directory, expected a log file\n", opt.input);
        return EXIT_ERROR;
    }
    if (opt.follow ? follow_open(&f, from_stdin ? NULL : opt.input) != 0
                   : !from_stdin && (in = fopen(opt.input, "rb")) == NULL) {
        fprintf(stderr, "error: %s: %s\n", s.input_name, strerror(errno));
        follow_close(&f);
        return EXIT_ERROR;
    }

    char err[1024];
    ae_model_params mp = ae_model_default_params();
    mp.session.intra_op_threads = (int)opt.threads;
    mp.load_deeplog = opt.deeplog;
    mp.load_mscred = opt.mscred;
    mp.top_k = (int)opt.top_k;
    mp.deeplog_rule = opt.dl.deeplog_rule;
    mp.probability_threshold = opt.dl.probability_threshold;
    mp.session_idle = opt.dl.session_idle;
    mp.mscred_threshold = opt.threshold_set ? opt.threshold : -1.0;
    ae_model *model = NULL;
    outq q;
    memset(&q, 0, sizeof q);
    rc = -1;
    if (ae_model_load(opt.model_dir, &mp, &model, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        rc = EXIT_ERROR;
    } else {
        ae_ort_release_load_pages(); /* a long run: loading's code out of the RSS (ortmemory.c) */
    }
    ae_detector_params dp = ae_detector_default_params();
    dp.on_event = write_event;
    dp.user = &s.w;
    dp.batch_size = (size_t)opt.batch;
    dp.report_all = opt.all;
    dp.year = opt.year ? (int)opt.year : year_of_file(from_stdin ? NULL : opt.input);
    if (rc < 0 && ae_detector_new(model, &dp, &s.det, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s: %s\n", opt.model_dir, err);
        rc = EXIT_ERROR;
    }
    if (rc < 0 && opt.follow) {
        if (outq_start(&q) != 0) {
            fputs("error: cannot start the output thread\n", stderr);
            rc = EXIT_ERROR;
        }
        s.w.q = &q;
    }
    ae_matcher *joiner_matcher = NULL; /* the joiner's own: the model's is shared */
    if (rc < 0 && (opt.multiline || ae_matcher_multiline(ae_model_matcher(model)))) {
        if (ae_matcher_clone(ae_model_matcher(model), &joiner_matcher) != AE_OK) {
            fputs("error: out of memory\n", stderr);
            rc = EXIT_ERROR;
        }
        s.joiner.matcher = joiner_matcher;
    }
    static char out_buffer[1 << 16];
    if (rc < 0 && !opt.follow)
        setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);

    if (rc < 0)
        rc = opt.follow ? follow(&s, &f) : read_to_end(&s, from_stdin ? stdin : in);
    if (rc < 0) {
        ae_status status = ae_detector_finish(s.det);
        if (status != AE_OK)
            rc = detector_error(&s, status);
    }
    int out_failed = opt.follow ? outq_stop(&q) != 0 : fflush(stdout) != 0;
    if (rc < 0 && out_failed) {
        fprintf(stderr, "error: writing to stdout: %s\n", strerror(errno));
        rc = EXIT_ERROR;
    }
    if (rc < 0) {
        ae_detector_stats stats;
        ae_detector_stats_get(s.det, &stats);
        fprintf(stderr, "run: %llu lines (%llu refused), %zu sessions, %llu DeepLog anomalies, "
                "%llu MSCRED windows, %llu alarms\n", s.earlier_lines + s.line_no, s.refused,
                stats.sessions,
                (unsigned long long)stats.deeplog_anomalies,
                (unsigned long long)stats.windows_scored, (unsigned long long)stats.mscred_alarms);
        rc = s.refused > 0 ? EXIT_REFUSED_LINES : EXIT_OK;
    }
    free(s.w.o.data);
    joiner_free(&s.joiner);
    ae_matcher_free(joiner_matcher);
    ae_detector_free(s.det);
    follow_close(&f);
    if (in != NULL)
        fclose(in);
    ae_model_free(model);
    return rc;
}

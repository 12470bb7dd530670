/*
 * score.c - `alog-edge score`: sessions of keys in (DeepLog's HDFS format, as
 * dataset.read_hdfs_sessions reads it), one JSON line of DeepLog verdicts per session out, for
 * parity with the Python evaluation (evaluate.deeplog_verdicts).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alog_edge.h"
#include "cli.h"
#include "cli_borrowed.h" /* Python's whitespace rules, shared with the matcher */

static const char SCORE_USAGE[] =
    "usage: alog-edge score [--templates FILE] [--top-k K] [--batch N] [--detail] <model_dir>\n"
    "                       [FILE|-]\n"
    "\n"
    "Judges sessions of keys with the model directory's DeepLog, as the Python evaluation\n"
    "does. Each line of FILE (\"-\" or none: stdin) is one session in DeepLog's HDFS format:\n"
    "\"<name>,<space separated ids>\" or just the ids (blank lines are skipped). Without\n"
    "--templates the ids are vocab indices 0..N (N: the unknown key); with --templates FILE an\n"
    "id E (1-based) is the template on line E of FILE (or row E of a LogHub CSV with an\n"
    "EventTemplate column), looked up in the vocab (a template not there is the unknown key).\n"
    "Writes one JSON line per session:\n"
    "\n"
    "  {\"session\": \"blk_38865049064139660\", \"keys\": 19, \"anomalous\": true, \"anomalies\": 2,\n"
    "   \"first_anomaly\": 11, \"end_anomalous\": false}\n"
    "\n"
    "session is the name, or \"<file>:<line>\" without one; first_anomaly is the 0-based\n"
    "position of the first anomalous key (null for none; the number of keys when only the end\n"
    "is); end_anomalous says the model did not expect the session to end after its last key\n"
    "(never with a model without session keys). anomalies counts the end too.\n"
    "\n"
    "options:\n"
    "  --templates FILE   the event templates of the ids (line E = id E)\n"
    "  --top-k K          DeepLog's top K (default: the model's top_k)\n"
    DEEPLOG_RULE_HELP
    "  --batch N          windows per onnxruntime call (default 256)\n"
    "  --detail           add per key: \"reason\" (\"\", \"unseen\", \"top_k\", \"probability\",\n"
    "                     \"key_set\"),\n"
    "                     \"rank\" and \"probability\" (null where not predicted: the first keys\n"
    "                     of a model without session keys), and \"end_rank\", \"end_probability\",\n"
    "                     \"end_reason\" (\"\", \"end\", \"key_set\")\n"
    "  -h, --help         print this help and exit\n"
    "\n"
    "Exit status: 0 done; 1 error (bad model directory, unreadable input, an id that is not an\n"
    "integer or out of range: error: <file>: line <n>: <what is wrong>, and nothing more is\n"
    "written); 2 usage error.\n";

/* ---------------------------------------------------------------------------------------------
 * Sessions
 */

/* Python's int() of an ASCII token: sign, digits, single underscores between digits.
 * @return 0 with *v (saturated) and *text (the normalised decimal) or -1. */
static int python_int(const char *s, size_t len, long long *v, char *text, size_t cap)
{
    size_t i = 0, t = 0;
    int neg = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == len)
        return -1;
    unsigned long long acc = 0;
    int saturated = 0, digits = 0;
    for (; i < len; i++) {
        if (s[i] == '_' && digits && i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9')
            continue;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        digits = 1;
        if (acc > (unsigned long long)(INT64_MAX / 10) - 1)
            saturated = 1;
        else
            acc = acc * 10 + (unsigned long long)(s[i] - '0');
        if ((t > 0 || s[i] != '0') && t + 2 < cap)
            text[t++] = s[i];
    }
    if (t == 0)
        text[t++] = '0';
    text[t] = '\0';
    if (neg && !(t == 1 && text[0] == '0')) {
        memmove(text + 1, text, t + 1);
        text[0] = '-';
    }
    *v = saturated ? (neg ? INT64_MIN : INT64_MAX) : (neg ? -(long long)acc : (long long)acc);
    return 0;
}

typedef struct score_opts {
    const char *templates, *model_dir, *input;
    unsigned long long top_k, batch;
    int detail;
    ae_model_params dl; /* DeepLog's rule options */
} score_opts;

static void out_probability(out_line *o, float probability)
{
    if (isnan(probability)) {
        out_str(o, "null");
    } else {
        char num[40];
        int len = snprintf(num, sizeof num, "%.9g", (double)probability);
        out_put(o, num, (size_t)len);
    }
}

static void out_verdicts(out_line *o, const ae_key_verdict *v, size_t n, const ae_key_verdict *end)
{
    out_str(o, ", \"reason\": [");
    for (size_t i = 0; i < n; i++) {
        const char *r = ae_reason_name(v[i].reason);
        out_str(o, i ? ", " : "");
        out_json_string(o, r, strlen(r));
    }
    out_str(o, "], \"rank\": [");
    for (size_t i = 0; i < n; i++) {
        out_str(o, i ? ", " : "");
        if (v[i].rank < 0) {
            out_str(o, "null");
        } else {
            out_size(o, (unsigned long long)v[i].rank);
        }
    }
    out_str(o, "], \"probability\": [");
    for (size_t i = 0; i < n; i++) {
        out_str(o, i ? ", " : "");
        out_probability(o, v[i].probability);
    }
    out_str(o, "], \"end_rank\": ");
    if (end->rank < 0)
        out_str(o, "null");
    else
        out_size(o, (unsigned long long)end->rank);
    out_str(o, ", \"end_probability\": ");
    out_probability(o, end->probability);
    const char *why = ae_reason_name(end->reason);
    out_str(o, ", \"end_reason\": ");
    out_json_string(o, why, strlen(why));
}

/* One session line: its keys into k and its name (NULL for none).
 * @return 0, or -1 after printing the error. */
static int parse_session(const score_opts *opt, size_t unk, const keys *events,
                         const checked_reader *c, const char *line, size_t len, keys *k,
                         const char **name, size_t *name_len)
{
    size_t a, b;
    ae_py_strip(line, len, &a, &b);
    const char *text = line + a, *comma = NULL;
    for (const char *p = text; p < line + b; p++)
        if (*p == ',')
            comma = p;
    *name = comma != NULL && comma > text ? text : NULL; /* rpartition(","); "" is no name */
    *name_len = *name != NULL ? (size_t)(comma - text) : 0;
    k->n = 0;
    for (const char *p = comma != NULL ? comma + 1 : text, *end = line + b; p < end;) {
        size_t w = ae_py_space_at(p, (size_t)(end - p));
        if (w > 0) {
            p += w;
            continue;
        }
        const char *tok = p;
        while (p < end && ae_py_space_at(p, (size_t)(end - p)) == 0)
            p++;
        long long id;
        char norm[64];
        if (python_int(tok, (size_t)(p - tok), &id, norm, sizeof norm) != 0) {
            fprintf(stderr, "error: %s: line %llu: event ids must be integers\n", c->name,
                    c->line_no);
            return -1;
        }
        size_t key;
        if (opt->templates != NULL) {
            if (id < 1 || (unsigned long long)id > events->n) {
                fprintf(stderr, "error: %s: line %llu: event id %s is not in the templates "
                        "file (1..%zu)\n", c->name, c->line_no, norm, events->n);
                return -1;
            }
            key = events->v[id - 1];
        } else {
            if (id < 0 || (unsigned long long)id > unk) {
                fprintf(stderr, "error: %s: line %llu: key %s is not a vocab index (0..%zu)\n",
                        c->name, c->line_no, norm, unk);
                return -1;
            }
            key = (size_t)id;
        }
        if (push_key(k, key) != 0) {
            fputs("error: out of memory\n", stderr);
            return -1;
        }
    }
    return 0;
}

/* Score every session of the input: a first pass checks every line (Python refuses the whole
 * file for one bad line, so nothing is written then), a second one scores and writes.
 * @return an exit status. */
static int score_sessions(const score_opts *opt, ae_model *model, const keys *events,
                          checked_reader *c, const char *base)
{
    size_t unk = ae_vocab_size(ae_model_vocab(model));
    keys k = {0};
    ae_key_verdict *v = NULL;
    size_t v_cap = 0, name_len;
    out_line o = {0};
    const char *line, *name;
    size_t len;
    int got, rc = EXIT_OK;
    while ((got = next_checked(c, &line, &len)) > 0)
        if (!ae_line_is_blank(line, len) &&
            parse_session(opt, unk, events, c, line, len, &k, &name, &name_len) != 0)
            goto fail;
    if (got < 0 || rewind_checked(c) != 0)
        goto fail;
    while ((got = next_checked(c, &line, &len)) > 0) {
        if (ae_line_is_blank(line, len))
            continue;
        if (parse_session(opt, unk, events, c, line, len, &k, &name, &name_len) != 0)
            goto fail;
        if (k.n > v_cap) {
            ae_key_verdict *grown = realloc(v, k.n * sizeof *grown);
            if (grown == NULL)
                goto oom;
            v = grown;
            v_cap = k.n;
        }
        ae_key_verdict end;
        char why[512];
        ae_status status = ae_deeplog_score(model, k.v, k.n, (size_t)opt->batch, v, &end, why,
                                            sizeof why);
        if (status == AE_ERR_NO_MEMORY)
            goto oom;
        if (status != AE_OK) {
            fprintf(stderr, "error: %s: %s\n", opt->model_dir, why);
            goto fail;
        }
        size_t anomalies = 0, first = SIZE_MAX;
        for (size_t i = 0; i < k.n; i++)
            if (v[i].anomalous) {
                anomalies++;
                if (first == SIZE_MAX)
                    first = i;
            }
        if (end.anomalous) { /* the end counts as position n */
            anomalies++;
            if (first == SIZE_MAX)
                first = k.n;
        }
        o.len = 0;
        out_str(&o, "{\"session\": ");
        if (name != NULL) {
            out_json_string(&o, name, name_len);
        } else {
            char made[512];
            int n = snprintf(made, sizeof made, "%s:%llu", base, c->line_no);
            out_json_string(&o, made, (size_t)n < sizeof made ? (size_t)n : sizeof made - 1);
        }
        out_str(&o, ", \"keys\": ");
        out_size(&o, k.n);
        out_str(&o, anomalies ? ", \"anomalous\": true" : ", \"anomalous\": false");
        out_str(&o, ", \"anomalies\": ");
        out_size(&o, anomalies);
        out_str(&o, ", \"first_anomaly\": ");
        if (first == SIZE_MAX)
            out_str(&o, "null");
        else
            out_size(&o, first);
        out_str(&o, end.anomalous ? ", \"end_anomalous\": true" : ", \"end_anomalous\": false");
        if (opt->detail)
            out_verdicts(&o, v, k.n, &end);
        out_str(&o, "}\n");
        if (o.failed)
            goto oom;
        if (fwrite(o.data, 1, o.len, stdout) != o.len) {
            fprintf(stderr, "error: writing to stdout: %s\n", strerror(errno));
            goto fail;
        }
    }
    if (got < 0)
        goto fail;
    goto done;
oom:
    fputs("error: out of memory\n", stderr);
fail:
    rc = EXIT_ERROR;
done:
    free(k.v);
    free(v);
    free(o.data);
    return rc;
}

static int parse_score_args(int argc, char **argv, score_opts *o)
{
    memset(o, 0, sizeof *o);
    o->dl = ae_model_default_params();
    o->batch = 256;
    int positional = 0, options_done = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int missing = 0, dl_option = 0;
        if (!options_done && strcmp(a, "--") == 0) {
            options_done = 1;
        } else if (!options_done && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            fputs(SCORE_USAGE, stdout);
            return EXIT_OK;
        } else if (!options_done && strcmp(a, "--detail") == 0) {
            o->detail = 1;
        } else if (!options_done &&
                   ((v = option_value(argc, argv, &i, "--templates", &missing)) || missing)) {
            if (missing)
                return usage_error("score", 1, "%s", "--templates needs a file");
            o->templates = v;
        } else if (!options_done &&
                   ((v = option_value(argc, argv, &i, "--top-k", &missing)) || missing)) {
            if (missing || parse_count(v, 1, 1u << 30, &o->top_k) != 0)
                return usage_error("score", 1, "--top-k needs a positive integer, got %s",
                                   missing ? "nothing" : v);
        } else if (!options_done &&
                   ((v = option_value(argc, argv, &i, "--batch", &missing)) || missing)) {
            if (missing || parse_count(v, 1, 1u << 20, &o->batch) != 0)
                return usage_error("score", 1, "--batch needs an integer in 1..1048576, got %s",
                                   missing ? "nothing" : v);
        } else if (!options_done &&
                   (dl_option = parse_deeplog_option(argc, argv, &i, "score", 0, &o->dl)) != 0) {
            if (dl_option > 1)
                return EXIT_USAGE;
        } else if (!options_done && a[0] == '-' && a[1] != '\0') {
            return usage_error("score", 1, "unknown option %s", a);
        } else if (positional == 0) {
            o->model_dir = a;
            positional++;
        } else if (positional == 1) {
            o->input = a;
            positional++;
        } else {
            return usage_error("score", 1, "unexpected argument %s", a);
        }
    }
    if (o->model_dir == NULL)
        return usage_error("score", 1, "%s", "needs the model directory");
    return -1;
}

int cmd_score(int argc, char **argv)
{
    score_opts opt;
    int rc = parse_score_args(argc, argv, &opt);
    if (rc >= 0)
        return rc;
    char err[1024];
    ae_model_params mp = ae_model_default_params();
    mp.load_mscred = 0;
    mp.top_k = (int)opt.top_k;
    mp.deeplog_rule = opt.dl.deeplog_rule;
    mp.probability_threshold = opt.dl.probability_threshold;
    ae_model *model = NULL;
    if (ae_model_load(opt.model_dir, &mp, &model, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        return EXIT_ERROR;
    }
    ae_model_info info;
    ae_model_info_get(model, &info);
    if (!info.has_deeplog) {
        fprintf(stderr, "error: %s: has no deeplog.onnx to score with\n", opt.model_dir);
        ae_model_free(model);
        return EXIT_ERROR;
    }
    keys events = {0};
    if (opt.templates != NULL && read_templates(opt.templates, ae_model_vocab(model), &events)) {
        ae_model_free(model);
        free(events.v);
        return EXIT_ERROR;
    }
    int from_stdin = opt.input == NULL || strcmp(opt.input, "-") == 0;
    const char *name = from_stdin ? "<stdin>" : opt.input;
    const char *slash = strrchr(name, '/');
    const char *base = from_stdin ? "<stdin>" : slash != NULL ? slash + 1 : name;
    checked_reader c;
    static char out_buffer[1 << 16];
    setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);
    if (open_checked(&c, from_stdin ? NULL : opt.input, name) != 0)
        rc = EXIT_ERROR;
    else
        rc = score_sessions(&opt, model, &events, &c, base);
    if (fflush(stdout) != 0 && rc == EXIT_OK) {
        fprintf(stderr, "error: writing to stdout: %s\n", strerror(errno));
        rc = EXIT_ERROR;
    }
    close_checked(&c);
    free(events.v);
    ae_model_free(model);
    return rc;
}

/*
 * events.c - the detector's verdicts as JSON lines (`alog-edge run`), floats as %.9g, times as
 * UTC "2026-03-14T12:10:00.000000Z", null where a value is missing.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alog_edge.h"
#include "cli.h"

static void out_number(out_line *o, double v)
{
    if (!isfinite(v)) {
        out_str(o, "null");
        return;
    }
    char num[40];
    int n = snprintf(num, sizeof num, "%.9g", v);
    out_put(o, num, (size_t)n);
}

static void out_int(out_line *o, long long v)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", v);
    out_put(o, num, (size_t)n);
}

static void out_line_no(out_line *o, uint64_t v)
{
    if (v == 0)
        out_str(o, "null");
    else
        out_size(o, v);
}

/* A UTC time as "2026-03-14T12:10:00.000000Z", or null. */
static void out_time(out_line *o, int64_t us)
{
    if (us == INT64_MIN) {
        out_str(o, "null");
        return;
    }
    int64_t sec = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    char day[48], text[80];
    if (gmtime_r(&t, &tm) == NULL || strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        out_str(o, "null");
        return;
    }
    int n = snprintf(text, sizeof text, "\"%s.%06lldZ\"", day, (long long)frac);
    out_put(o, text, (size_t)n);
}

static void out_nullable_string(out_line *o, const char *s, size_t len)
{
    if (s == NULL)
        out_str(o, "null");
    else
        out_json_string(o, s, len);
}

int write_event(const ae_event *ev, void *user)
{
    event_writer *w = user;
    out_line *o = &w->o;
    o->len = 0;
    if (ev->kind == AE_EVENT_DEEPLOG) {
        const ae_deeplog_event *e = &ev->deeplog;
        out_str(o, "{\"model\": \"deeplog\", \"line_no\": ");
        out_size(o, e->line_no);
        out_str(o, ", \"session\": ");
        out_json_string(o, e->session, strlen(e->session));
        out_str(o, ", \"host\": ");
        out_nullable_string(o, e->host, e->host ? strlen(e->host) : 0);
        out_str(o, ", \"index\": ");
        out_size(o, e->key);
        out_str(o, ", \"template\": ");
        out_nullable_string(o, e->template_, e->template_ ? strlen(e->template_) : 0);
        out_str(o, ev->anomalous ? ", \"anomalous\": true, \"reason\": "
                                 : ", \"anomalous\": false, \"reason\": ");
        out_json_string(o, ae_reason_name(ev->reason), strlen(ae_reason_name(ev->reason)));
        out_str(o, ", \"rank\": ");
        if (e->rank < 0)
            out_str(o, "null");
        else
            out_int(o, e->rank);
        out_str(o, ", \"probability\": ");
        out_number(o, e->probability);
        out_str(o, ", \"line\": ");
        out_json_string(o, e->line, e->line_len);
        out_str(o, "}\n");
    } else {
        const ae_mscred_event *e = &ev->mscred;
        out_str(o, "{\"model\": \"mscred\", \"host\": ");
        out_json_string(o, e->series, strlen(e->series));
        out_str(o, ", \"bucket\": ");
        out_int(o, e->bucket);
        out_str(o, ", \"slot_start\": ");
        out_time(o, e->slot_start_us);
        out_str(o, ", \"end\": ");
        out_time(o, e->end_us);
        out_str(o, ", \"first_line_no\": ");
        out_line_no(o, e->first_line_no);
        out_str(o, ", \"last_line_no\": ");
        out_line_no(o, e->last_line_no);
        out_str(o, ", \"score\": ");
        out_number(o, e->score);
        out_str(o, ", \"threshold\": ");
        out_number(o, e->threshold);
        out_str(o, ev->anomalous ? ", \"anomalous\": true}\n" : ", \"anomalous\": false}\n");
    }
    if (o->failed) {
        w->out_of_memory = 1;
        return 1;
    }
    int failed = w->q != NULL ? outq_write(w->q, o->data, o->len) != 0
                              : fwrite(o->data, 1, o->len, stdout) != o->len;
    if (failed) {
        w->write_error = errno ? errno : EIO;
        return 1;
    }
    return 0;
}

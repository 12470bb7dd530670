/*
 * test_fields.c - a line's timestamp, host and session ids as the Python parser finds them.
 * The expected timestamps are what pandas 3 gives (parse.timestamps: to_datetime with the
 * format, errors="coerce", then datetime64[us]), in microseconds since the epoch.
 */
#include <stdio.h>
#include <string.h>

#include "ae_test.h"
#include "internal.h"

#ifndef AE_TEST_FIXTURES
#error "AE_TEST_FIXTURES must name the folder written by make_onnx_fixtures.py"
#endif

#define NAT INT64_MIN

typedef struct ts_case {
    const char *text;
    int64_t us; /* NAT: unparsable */
} ts_case;

/* Check every case of a format; report the first that differs. */
static int check_format(const char *format, const ts_case *cases, size_t n)
{
    char why[256];
    ae_timefmt *f = NULL;
    if (ae_timefmt_new(format, &f, why, sizeof why) != AE_OK) {
        ae_test_fail_at(__FILE__, __LINE__, "format %s: %s", format, why);
        return 0;
    }
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        int64_t us = 0;
        int got = ae_timefmt_parse(f, cases[i].text, strlen(cases[i].text), &us);
        if (got != (cases[i].us != NAT) || (got && us != cases[i].us)) {
            ae_test_fail_at(__FILE__, __LINE__, "%s: \"%s\" gave %s%lld, expected %lld", format,
                            cases[i].text, got ? "" : "NaT ", (long long)us,
                            (long long)cases[i].us);
            ok = 0;
        }
    }
    ae_timefmt_free(f);
    return ok;
}

#define CHECK_FORMAT(format, cases) CHECK(check_format(format, cases, sizeof cases / sizeof cases[0]))

AE_TEST(fields_iso8601_reads_utc_offsets_fractions_and_short_forms_as_pandas_does)
{
    static const ts_case cases[] = {
        {"2026-03-14T12:00:02.116Z", 1773489602116000},
        {"2026-03-14T12:00:02+02:00", 1773482402000000},
        {"2026-03-14T12:00:02+0200", 1773482402000000},
        {"2026-03-14T12:00:02-05", 1773507602000000},
        {"2026-03-14T12:00:02.5-05:30", 1773509402500000},
        {"2026-03-14T12:00:02 +02:00", 1773482402000000},
        {"2026-03-14T12:00:02+14:00", 1773439202000000},
        {"2026-03-14 12:00:02", 1773489602000000},
        {"2026-03-14T12:00:02.123456789Z", 1773489602123456},
        {"2026-03-14T12:00:02.9999999Z", 1773489602999999},
        {"2026-03-14T12:00:02.Z", 1773489602000000},
        {"20260314T120002", 1773489602000000},
        {"2026-3-4T1:2:3", 1772586123000000},
        {"2026/03/14 12:00:02", 1773489602000000},
        {" 2026-03-14T12:00:02Z", 1773489602000000},
        {"2026-03-14T12:00:02Z ", 1773489602000000},
        {"2026-03-14", 1773446400000000},
        {"2026-03-14T12", 1773489600000000},
        {"2026-03-14T12:00", 1773489600000000},
        {"2026-03", 1772323200000000},
        {"2026", 1767225600000000},
        {"1969-12-31T23:59:59.5Z", -500000},
        {"2024-02-29T00:00:00", 1709164800000000},
        {"20260314", 1773446400000000},
        {"2026-03-14T1:2", 1773450120000000},
        {"2026-03-14T12:0", 1773489600000000},
    };
    CHECK_FORMAT("ISO8601", cases);
}

AE_TEST(fields_iso8601_misses_what_pandas_refuses)
{
    static const ts_case cases[] = {
        {"2026-03-14t12:00:02z", NAT},      {"2026-03-14T24:00:00", NAT},
        {"2026-02-29T00:00:00", NAT},       {"2026-03-14T12:00:02,5Z", NAT},
        {"2026-03-14T12:00:60", NAT},       {"x", NAT},
        {"+2026-03-14", NAT},               {"2026-03-14  12:00:02", NAT},
        {"2026-03-14T12:00:02+24:00", NAT}, {"2026-03-14T12:00:02UTC", NAT},
        {"2026-03-14T12:00:02+02:00:30", NAT}, {"", NAT},
        {"202603", NAT},                    {"2026-13-01", NAT},
        {"2026-03-14T1", NAT},
    };
    CHECK_FORMAT("ISO8601", cases);
}

AE_TEST(fields_strptime_reads_the_hdfs_preset_with_pythons_backtracking)
{
    static const ts_case cases[] = {
        {"081109 203615", 1226262975000000}, {"081109 20361", 1226262961000000},
        {"81109 203615", 371507775000000},   {"081109  203615", 1226262975000000},
        {"081332 203615", NAT},              {"691109 203615", -4505025000000},
    };
    CHECK_FORMAT("%y%m%d %H%M%S", cases);
}

AE_TEST(fields_strptime_reads_fractions_of_up_to_nine_digits)
{
    static const ts_case bgl[] = {
        {"2005-06-03-15.42.50.675872", 1117813370675872},
        {"2005-06-03-15.42.50.6758729", 1117813370675872},
        {"2005-06-03-15.42.50.6758729999", NAT},
        {"2005-06-03-15.42.50", NAT},
        {"2005-06-03-15.42.60.1", 1117813380100000}, /* second 60 rolls over */
    };
    CHECK_FORMAT("%Y-%m-%d-%H.%M.%S.%f", bgl);
    static const ts_case comma[] = {
        {"2015-10-18 18:01:47,978", 1445191307978000},
        {"2015-10-18 18:01:47,97", 1445191307970000},
        {"2015-10-18 18:01:47", NAT},
    };
    CHECK_FORMAT("%Y-%m-%d %H:%M:%S,%f", comma);
    static const ts_case dot[] = {
        {"2017-05-16 00:00:00.008", 1494892800008000},
        {"2017-5-6 0:0:0.1", 1494028800100000},
        {"2017-05-16T00:00:00.008", NAT},
        {" 2017-05-16 00:00:00.008", NAT},
        {"2017-05-16 00:00:00.008 ", NAT},
    };
    CHECK_FORMAT("%Y-%m-%d %H:%M:%S.%f", dot);
}

AE_TEST(fields_strptime_reads_yearless_syslog_with_the_year_put_before_it)
{
    static const ts_case cases[] = {
        {"2024 Jun 14 15:16:01", 1718378161000000}, {"2024 jun  4 15:16:01", 1717514161000000},
        {"2025 Feb 29 00:00:00", NAT},              {"2024 Feb 29 00:00:00", 1709164800000000},
        {"2024 JUNE 14 15:16:01", NAT},             {"2024 Jun 14 15:16:61", 1718378221000000},
    };
    CHECK_FORMAT("%Y %b %d %H:%M:%S", cases);
}

AE_TEST(fields_strptime_reads_names_am_pm_day_of_year_and_literals)
{
    static const ts_case ampm[] = {
        {"2024 Jan 5 3:04:05 PM", 1704467045000000},
        {"2024 Jan 5 12:04:05 AM", 1704413045000000},
        {"2024 jan 5 12:04:05 pm", 1704456245000000},
        {"2024 Jan 5 12:04:05", NAT},
    };
    CHECK_FORMAT("%Y %b %d %I:%M:%S %p", ampm);
    static const ts_case julian[] = {{"2024 032 10:00", 1706781600000000},
                                     {"2023 366 10:00", 1704103200000000}};
    CHECK_FORMAT("%Y %j %H:%M", julian);
    static const ts_case months[] = {{"2024 june 4 15:16:01", 1717514161000000},
                                     {"2024 SEPTEMBER 30 00:00:00", 1727654400000000}};
    CHECK_FORMAT("%Y %B %d %H:%M:%S", months);
    static const ts_case literal[] = {{"[2024-01-05] 10:00", 1704448800000000},
                                      {"(2024-01-05) 10:00", NAT}};
    CHECK_FORMAT("[%Y-%m-%d] %H:%M", literal);
    static const ts_case percent[] = {{"2024-01-05 10:00 %", 1704448800000000}};
    CHECK_FORMAT("%Y-%m-%d %H:%M %%", percent);
    static const ts_case caseless[] = {{"2024-01-05t10:00:00", 1704448800000000}};
    CHECK_FORMAT("%Y-%m-%dT%H:%M:%S", caseless);
}

AE_TEST(fields_strptime_refuses_directives_it_does_not_support)
{
    const char *formats[] = {"%Y %z", "%Z", "%c", "%Y %", "%d %d", "%Q"};
    const char *why_part[] = {"%z is not supported", "%Z is not supported",
                              "%c is not supported", "a lone % ends the format",
                              "%d appears twice", "%Q is not supported"};
    for (size_t i = 0; i < 6; i++) {
        char why[256] = "";
        ae_timefmt *f = (ae_timefmt *)why;
        CHECK_STATUS(ae_timefmt_new(formats[i], &f, why, sizeof why), AE_ERR_FORMAT);
        CHECK(f == NULL);
        CHECK_CONTAINS(why, why_part[i]);
    }
    ae_timefmt_free(NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Fields of lines, from a parser.json
 */

typedef struct loaded {
    ae_vocab *vocab;
    ae_matcher *matcher;
    ae_fields *fields;
} loaded;

static void unload(loaded *l)
{
    ae_fields_free(l->fields);
    ae_matcher_free(l->matcher);
    ae_vocab_free(l->vocab);
}

/* A parser.json with these fields (JSON fragments); the templates of the fixture vocab. */
static const char *parser(const char *log_format, const char *line_regex, const char *extra)
{
    static char text[4096];
    snprintf(text, sizeof text,
             "{\"format_version\": 1, \"log_format\": \"%s\", \"line_regex\": \"%s\", %s, "
             "\"masking\": [], \"drain\": {\"sim_th\": 0.4, \"depth\": 4}, \"mode\": \"drain\", "
             "\"templates\": [{\"cluster_id\": 1, \"template\": \"start job <*>\", "
             "\"tokens\": [\"start\", \"job\", \"<*>\"]}]}",
             log_format, line_regex, extra);
    return ae_test_write_text("parser.json", text);
}

static ae_status load_fields(const char *path, loaded *l, char *err, size_t err_len)
{
    char vocab[4096];
    snprintf(vocab, sizeof vocab, "%s/full_model/vocab.json", AE_TEST_FIXTURES);
    memset(l, 0, sizeof *l);
    ae_status status = ae_vocab_load(vocab, &l->vocab, err, err_len);
    if (status == AE_OK)
        status = ae_matcher_load(path, l->vocab, &l->matcher, err, err_len);
    if (status == AE_OK)
        status = ae_fields_load(path, l->matcher, &l->fields, err, err_len);
    return status;
}

static const char SYSLOG_REGEX[] =
    "^(?P<Month>.*?)\\\\s+(?P<Day>.*?)\\\\s+(?P<Time>.*?)\\\\s+(?P<Host>.*?)\\\\s+"
    "(?P<Component>.*?):\\\\s+(?P<Content>.*?)$";

AE_TEST(fields_join_timestamp_fields_after_the_year_of_a_yearless_format)
{
    const char *path = parser(
        "<Month> <Day> <Time> <Host> <Component>: <Content>", SYSLOG_REGEX,
        "\"host_field\": \"Host\", \"session_regex\": null, \"timestamp\": {\"fields\": "
        "[\"Month\", \"Day\", \"Time\"], \"format\": \"%b %d %H:%M:%S\", \"yearless\": true}");
    char err[512];
    loaded l;
    CHECK_STATUS(load_fields(path, &l, err, sizeof err), AE_OK);
    CHECK(ae_fields_has_timestamp(l.fields));
    const char *line = "Jun  4 15:16:01 node-7 sshd: start job 12\n";
    size_t key;
    CHECK_STATUS(ae_matcher_match(l.matcher, line, strlen(line), &key, NULL), AE_OK);
    CHECK_SIZE(key, 0);
    int64_t us = 0;
    CHECK(ae_fields_timestamp(l.fields, l.matcher, line, 2024, &us) == 1);
    CHECK(us == 1717514161000000);
    CHECK(ae_fields_timestamp(l.fields, l.matcher, line, 2025, &us) == 1);
    CHECK(us == 1717514161000000 + 365 * 86400 * (int64_t)1000000);
    ae_strspan host;
    CHECK(ae_fields_host(l.fields, l.matcher, line, &host) == 1);
    CHECK(host.len == 6 && memcmp(host.p, "node-7", 6) == 0);
    /* a line the format misses has neither host nor timestamp */
    const char *loose = "no format here\n";
    CHECK_STATUS(ae_matcher_match(l.matcher, loose, strlen(loose), &key, NULL), AE_OK);
    CHECK(ae_fields_timestamp(l.fields, l.matcher, loose, 2024, &us) == 0);
    CHECK(ae_fields_host(l.fields, l.matcher, loose, &host) == 0);
    unload(&l);
}

AE_TEST(fields_give_no_timestamp_or_host_when_parser_json_names_none)
{
    const char *path = parser("<Content>", "^(?P<Content>.*?)$",
                              "\"host_field\": null, \"timestamp\": {\"fields\": [], "
                              "\"format\": null, \"yearless\": false}");
    char err[512];
    loaded l;
    CHECK_STATUS(load_fields(path, &l, err, sizeof err), AE_OK);
    CHECK(!ae_fields_has_timestamp(l.fields));
    const char *line = "start job 1";
    size_t key;
    CHECK_STATUS(ae_matcher_match(l.matcher, line, strlen(line), &key, NULL), AE_OK);
    int64_t us;
    ae_strspan host;
    CHECK(ae_fields_timestamp(l.fields, l.matcher, line, 2024, &us) == 0);
    CHECK(ae_fields_host(l.fields, l.matcher, line, &host) == 0);
    const ae_strspan *ids;
    size_t n = 9;
    CHECK_STATUS(ae_fields_sessions(l.fields, line, strlen(line), &ids, &n, err, sizeof err),
                 AE_OK);
    CHECK_SIZE(n, 0);
    unload(&l);
}

/* The session ids of a content as "a|b|c". */
static const char *ids_of(loaded *l, const char *content)
{
    static char out[256];
    char why[256];
    const ae_strspan *ids;
    size_t n = 0;
    out[0] = '\0';
    if (ae_fields_sessions(l->fields, content, strlen(content), &ids, &n, why, sizeof why) !=
        AE_OK)
        return "error";
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%.*s", i ? "|" : "",
                 (int)ids[i].len, ids[i].p);
    return out;
}

AE_TEST(fields_find_session_ids_in_order_without_repeats)
{
    const char *path = parser("<Content>", "^(?P<Content>.*?)$",
                              "\"session_regex\": \"\\\\bsid=([0-9a-f]{4})\\\\b\"");
    char err[512];
    loaded l;
    CHECK_STATUS(load_fields(path, &l, err, sizeof err), AE_OK);
    CHECK_STR(ids_of(&l, "copy sid=bbbb to sid=aaaa and sid=bbbb"), "bbbb|aaaa");
    CHECK_STR(ids_of(&l, "nothing here sid=xyzw"), "");
    unload(&l);
}

AE_TEST(fields_take_the_whole_match_of_a_regex_without_groups_and_split_ids_at_spaces)
{
    const char *path = parser("<Content>", "^(?P<Content>.*?)$",
                              "\"session_regex\": \"blk_-?\\\\d+\"");
    char err[512];
    loaded l;
    CHECK_STATUS(load_fields(path, &l, err, sizeof err), AE_OK);
    CHECK_STR(ids_of(&l, "Deleting blk_-12 and blk_7 blk_-12"), "blk_-12|blk_7");
    unload(&l);
    path = parser("<Content>", "^(?P<Content>.*?)$", "\"session_regex\": \"pair=(\\\\w+ \\\\w+)\"");
    CHECK_STATUS(load_fields(path, &l, err, sizeof err), AE_OK);
    /* " ".join(ids).split(" "): the pieces are sessions, repeats included */
    CHECK_STR(ids_of(&l, "pair=a b pair=b c"), "a|b|b|c");
    unload(&l);
}

AE_TEST(fields_load_refuses_fields_that_line_regex_lacks_or_cannot_read)
{
    char err[512];
    loaded l;
    const char *path = parser("<Content>", "^(?P<Content>.*?)$", "\"host_field\": \"Host\"");
    CHECK_STATUS(load_fields(path, &l, err, sizeof err), AE_ERR_FORMAT);
    CHECK_CONTAINS(err, "parser.json: host_field \"Host\" is not a group of line_regex");
    unload(&l);
    path = parser("<Content>", "^(?P<Content>.*?)$",
                  "\"timestamp\": {\"fields\": [\"Date\"], \"format\": \"%Y\"}");
    CHECK_STATUS(load_fields(path, &l, err, sizeof err), AE_ERR_FORMAT);
    CHECK_CONTAINS(err, "timestamp field \"Date\" is not a group of line_regex");
    unload(&l);
    path = parser("<Content>", "^(?P<Content>.*?)$",
                  "\"timestamp\": {\"fields\": [\"Content\"], \"format\": \"%Y %z\"}");
    CHECK_STATUS(load_fields(path, &l, err, sizeof err), AE_ERR_FORMAT);
    CHECK_CONTAINS(err, "timestamp.format \"%Y %z\": the directive %z is not supported");
    unload(&l);
    path = parser("<Content>", "^(?P<Content>.*?)$", "\"session_regex\": \"(unclosed\"");
    CHECK_STATUS(load_fields(path, &l, err, sizeof err), AE_ERR_FORMAT);
    CHECK_CONTAINS(err, "session_regex: invalid regex");
    unload(&l);
    path = parser("<Content>", "^(?P<Content>.*?)$", "\"session_regex\": 5");
    CHECK_STATUS(load_fields(path, &l, err, sizeof err), AE_ERR_FORMAT);
    CHECK_CONTAINS(err, "session_regex is a number, not a string");
    unload(&l);
    ae_fields_free(NULL);
}

#include "test_fields_cases.h"
AE_TEST_MAIN()

/*
 * test_match.c - matching raw lines to templates as the Python parser does (parse.match with
 * Drain3's match(content, "always"), or TemplateListMatcher in mode "templates").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ae_test.h"
#include "internal.h"

/* A parser.json for the format "<Level>: <Content>" (Python's format_to_regex of it). */
static const char *parser_text(const char *mode, const char *masks, const char *delimiters,
                               const char *templates)
{
    static char text[1 << 16];
    snprintf(text, sizeof text,
             "{\"format_version\": 1, \"preset\": \"test\", \"log_format\": \"<Level>: <Content>\",\n"
             " \"line_regex\": \"^(?P<Level>.*?):\\\\s+(?P<Content>.*?)$\",\n"
             " \"headers\": [\"Level\", \"Content\"], \"content_group\": \"Content\",\n"
             " \"masking\": [%s], \"mask_prefix\": \"<\", \"mask_suffix\": \">\",\n"
             " \"param_str\": \"<*>\", \"extra_delimiters\": [%s],\n"
             " \"drain\": {\"sim_th\": 0.4, \"depth\": 4}, \"mode\": \"%s\",\n"
             " \"templates\": [%s]}\n",
             masks, delimiters, mode, templates);
    return text;
}

typedef struct fixture {
    ae_vocab *vocab;
    ae_matcher *matcher;
} fixture;

/* Load a vocab (C form) and a parser.json; on failure the case fails and f is zeroed. */
static int load(fixture *f, const char *vocab_json, const char *parser_json)
{
    char err[512];
    f->vocab = NULL;
    f->matcher = NULL;
    if (ae_vocab_load(ae_test_write_text("vocab.json", vocab_json), &f->vocab, err,
                      sizeof err) != AE_OK) {
        ae_test_fail_at(__FILE__, __LINE__, "vocab: %s", err);
        return 0;
    }
    if (ae_matcher_load(ae_test_write_text("parser.json", parser_json), f->vocab, &f->matcher,
                        err, sizeof err) != AE_OK) {
        ae_test_fail_at(__FILE__, __LINE__, "parser: %s", err);
        ae_vocab_free(f->vocab);
        f->vocab = NULL;
        return 0;
    }
    return 1;
}

static void unload(fixture *f)
{
    ae_matcher_free(f->matcher);
    ae_vocab_free(f->vocab);
}

/* Match a NUL-terminated line; the index, or (size_t)-1 on a status other than AE_OK. */
static size_t key(fixture *f, const char *line)
{
    size_t index = 0;
    const char *t = NULL;
    if (ae_matcher_match(f->matcher, line, strlen(line), &index, &t) != AE_OK)
        return (size_t)-1;
    if ((index == ae_vocab_size(f->vocab)) != (t == NULL))
        return (size_t)-2; /* a template exactly for the known indices */
    return index;
}

#define T(id, tokens_json, text) "{\"cluster_id\": " #id ", \"template\": \"" text "\", \"tokens\": " tokens_json "}"

AE_TEST(match_keys_a_line_by_the_content_group_of_the_line_format)
{
    fixture f;
    if (!load(&f, "{\"0\": \"user <*> logged in\", \"1\": \"disk full\"}",
              parser_text("drain", "", "",
                          T(4, "[\"disk\", \"full\"]", "disk full") ","
                          T(7, "[\"user\", \"<*>\", \"logged\", \"in\"]", "user <*> logged in"))))
        return;
    CHECK_SIZE(key(&f, "INFO: user bob logged in"), 0);
    CHECK_SIZE(key(&f, "WARN:   disk full"), 1);
    ae_match_detail d;
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, "ERR:\tdisk  full\n", 16, &d), AE_OK);
    CHECK(d.format_matched == 1);
    CHECK(d.content_len == 10 && memcmp(d.content, "disk  full", 10) == 0);
    CHECK(d.cluster_id == 4);
    CHECK_SIZE(d.n_tokens, 2);
    CHECK_STR(d.template_, "disk full");
    unload(&f);
}

AE_TEST(match_uses_the_whole_line_when_the_line_format_does_not_fit)
{
    fixture f;
    if (!load(&f, "{\"0\": \"disk full\"}",
              parser_text("drain", "", "", T(1, "[\"disk\", \"full\"]", "disk full"))))
        return;
    ae_match_detail d;
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, "disk full", 9, &d), AE_OK);
    CHECK(d.format_matched == 0);
    CHECK_SIZE(d.content_len, 9);
    CHECK_SIZE(d.index, 0);
    unload(&f);
}

AE_TEST(match_prefers_the_template_with_more_wildcards)
{
    /* Drain3's fast_match picks the perfect match with the most parameters, not the fewest. */
    fixture f;
    if (!load(&f, "{\"0\": \"a b c\", \"1\": \"a <*> c\", \"2\": \"<*> <*> c\"}",
              parser_text("drain", "", "",
                          T(1, "[\"a\", \"b\", \"c\"]", "a b c") ","
                          T(2, "[\"a\", \"<*>\", \"c\"]", "a <*> c") ","
                          T(3, "[\"<*>\", \"<*>\", \"c\"]", "<*> <*> c"))))
        return;
    CHECK_SIZE(key(&f, "I: a b c"), 2);
    CHECK_SIZE(key(&f, "I: x y c"), 2);
    CHECK_SIZE(key(&f, "I: a b d"), 3); /* unknown */
    unload(&f);
}

AE_TEST(match_prefers_the_template_with_more_wildcards_and_on_ties_the_earliest)
{
    fixture f;
    if (!load(&f, "{\"0\": \"<*> b c\", \"1\": \"a <*> c\", \"2\": \"a b <*>\"}",
              parser_text("drain", "", "",
                          T(9, "[\"<*>\", \"b\", \"c\"]", "<*> b c") ","
                          T(3, "[\"a\", \"<*>\", \"c\"]", "a <*> c") ","
                          T(5, "[\"a\", \"b\", \"<*>\"]", "a b <*>"))))
        return;
    CHECK_SIZE(key(&f, "I: a b c"), 0); /* all three fit with one "<*>": the first in the file */
    CHECK_SIZE(key(&f, "I: a x c"), 1);
    CHECK_SIZE(key(&f, "I: a b x"), 2);
    unload(&f);
}

AE_TEST(match_needs_the_same_token_count_and_equal_tokens_outside_wildcards)
{
    fixture f;
    if (!load(&f, "{\"0\": \"to /<*>\", \"1\": \"<*>\"}",
              parser_text("drain", "", "",
                          T(1, "[\"to\", \"/<*>\"]", "to /<*>") "," T(2, "[\"<*>\"]", "<*>"))))
        return;
    CHECK_SIZE(key(&f, "I: to /<*>"), 0);
    CHECK_SIZE(key(&f, "I: to /x"), 2);   /* "/<*>" is a literal token, not a wildcard */
    CHECK_SIZE(key(&f, "I: to"), 1);
    CHECK_SIZE(key(&f, "I: <*>"), 1);
    unload(&f);
}

AE_TEST(match_applies_the_masks_in_order_before_tokenising)
{
    fixture f;
    if (!load(&f, "{\"0\": \"from <IP> port <NUM>\", \"1\": \"from <*> port <*>\"}",
              parser_text("drain",
                          "{\"regex_pattern\": \"(\\\\d+\\\\.){3}\\\\d+\", \"mask_with\": \"IP\"},"
                          "{\"regex_pattern\": \"\\\\d+\", \"mask_with\": \"NUM\"}",
                          "",
                          T(1, "[\"from\", \"<IP>\", \"port\", \"<NUM>\"]", "from <IP> port <NUM>"))))
        return;
    ae_match_detail d;
    const char *line = "I: from 10.0.0.1 port 22";
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, line, strlen(line), &d), AE_OK);
    CHECK(d.masked_len == 20 && memcmp(d.masked, "from <IP> port <NUM>", 20) == 0);
    CHECK_SIZE(d.index, 0);
    unload(&f);
}

AE_TEST(match_masks_every_match_like_python_re_sub_including_empty_matches)
{
    /* re.sub("x*", "<->", "abxd") == "<->a<->b<-><->d<->" in Python 3.7+. */
    fixture f;
    if (!load(&f, "{\"0\": \"z\"}",
              parser_text("drain", "{\"regex_pattern\": \"x*\", \"mask_with\": \"-\"}", "",
                          T(1, "[\"z\"]", "z"))))
        return;
    ae_match_detail d;
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, "I: abxd", 7, &d), AE_OK);
    CHECK(d.masked_len == 18 && memcmp(d.masked, "<->a<->b<-><->d<->", 18) == 0);
    unload(&f);
}

AE_TEST(match_masks_use_python_re_semantics_for_s_and_lookbehinds)
{
    fixture f;
    if (!load(&f, "{\"0\": \"z\"}",
              parser_text("drain",
                          "{\"regex_pattern\": \"a\\\\sb\", \"mask_with\": \"S\"},"
                          "{\"regex_pattern\": \"(?<![\\\\w.])\\\\d+(?![\\\\w.])\", \"mask_with\": \"N\"}",
                          "", T(1, "[\"z\"]", "z"))))
        return;
    ae_match_detail d;
    /* \x1c is whitespace for Python, U+180E is not (PCRE2 alone would say the opposite). */
    const char *line = "I: a\x1c" "b a\xe1\xa0\x8e" "b 12 x12 1.5 \xd9\xa3\xd9\xa4";
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, line, strlen(line), &d), AE_OK);
    const char *want = "<S> a\xe1\xa0\x8e" "b <N> x12 1.5 <N>";
    CHECK(d.masked_len == strlen(want) && memcmp(d.masked, want, d.masked_len) == 0);
    unload(&f);
}

AE_TEST(match_masks_see_what_earlier_masks_wrote_unicode_rules_and_prefiltered_bytes_alike)
{
    /* A replacement may bring the first non-ASCII character (the next masks then need Unicode
     * rules: U+0663 is a digit for Python) or the byte a later mask needs. */
    fixture f;
    if (!load(&f, "{\"0\": \"z\"}",
              parser_text("drain",
                          "{\"regex_pattern\": \"x\", \"mask_with\": \"\xd9\xa3\"},"
                          "{\"regex_pattern\": \"a\", \"mask_with\": \"@\"},"
                          "{\"regex_pattern\": \"(?<!\\\\w)\\\\d+\", \"mask_with\": \"N\"},"
                          "{\"regex_pattern\": \"@>\", \"mask_with\": \"X\"}",
                          "", T(1, "[\"z\"]", "z"))))
        return;
    ae_match_detail d;
    const char *line = "I: x 7 a";
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, line, strlen(line), &d), AE_OK);
    const char *want = "<<N>> <N> <<X>";
    CHECK(d.masked_len == strlen(want) && memcmp(d.masked, want, d.masked_len) == 0);
    unload(&f);
}

AE_TEST(match_splits_tokens_at_python_whitespace_only)
{
    fixture f;
    if (!load(&f, "{\"0\": \"a b c d e\"}",
              parser_text("drain", "", "",
                          T(1, "[\"a\", \"b\", \"c\", \"d\", \"e\"]", "a b c d e"))))
        return;
    /* \x1c, U+3000, U+00A0, U+2028, \x0b separate tokens; U+180E and U+200B do not. */
    CHECK_SIZE(key(&f, "I: \xe3\x80\x80 a\x1c" "b\xc2\xa0" "c\xe2\x80\xa8" "d\x0b" "e\xe2\x80\x83"),
               0);
    ae_match_detail d;
    const char *line = "I: a\xe1\xa0\x8e" "b c\xe2\x80\x8b" "d";
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, line, strlen(line), &d), AE_OK);
    CHECK_SIZE(d.n_tokens, 2);
    unload(&f);
}

AE_TEST(match_line_format_whitespace_is_python_whitespace)
{
    fixture f;
    if (!load(&f, "{\"0\": \"x\"}", parser_text("drain", "", "", T(1, "[\"x\"]", "x"))))
        return;
    ae_match_detail d;
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, "I:\x1fx", 4, &d), AE_OK);
    CHECK(d.format_matched == 1);
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, "I:\xe1\xa0\x8ex", 6, &d), AE_OK);
    CHECK(d.format_matched == 0);
    unload(&f);
}

AE_TEST(match_turns_extra_delimiters_into_spaces_after_stripping)
{
    fixture f;
    if (!load(&f, "{\"0\": \"k <*> v\"}",
              parser_text("drain", "", "\"=\", \"::\"",
                          T(1, "[\"k\", \"<*>\", \"v\"]", "k <*> v"))))
        return;
    CHECK_SIZE(key(&f, "I: k=1::v"), 0);
    CHECK_SIZE(key(&f, "I: k = 1 :: v"), 0);
    unload(&f);
}

AE_TEST(match_gives_the_unknown_index_and_no_template_when_nothing_matches)
{
    fixture f;
    if (!load(&f, "{\"0\": \"a\", \"1\": \"b\"}",
              parser_text("drain", "", "", T(1, "[\"a\"]", "a") "," T(2, "[\"b\"]", "b"))))
        return;
    size_t index = 0;
    const char *t = "set";
    CHECK_STATUS(ae_matcher_match(f.matcher, "I: c", 4, &index, &t), AE_OK);
    CHECK_SIZE(index, 2);
    CHECK(t == NULL);
    unload(&f);
}

AE_TEST(match_gives_the_unknown_index_for_a_template_missing_from_the_vocab)
{
    fixture f;
    if (!load(&f, "{\"0\": \"a\"}",
              parser_text("drain", "", "", T(1, "[\"a\"]", "a") "," T(2, "[\"b\"]", "b"))))
        return;
    ae_match_detail d;
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, "I: b", 4, &d), AE_OK);
    CHECK(d.cluster_id == 2);
    CHECK_SIZE(d.index, 1);
    CHECK(d.template_ == NULL);
    unload(&f);
}

AE_TEST(match_keys_an_unmatched_line_by_its_content_when_the_vocab_has_it)
{
    /* parse.match: an unmatched line's "template" is its content, looked up in the vocab. */
    fixture f;
    if (!load(&f, "{\"0\": \"a\", \"1\": \"odd  line \"}",
              parser_text("drain", "", "", T(1, "[\"a\"]", "a"))))
        return;
    CHECK_SIZE(key(&f, "I: odd  line "), 1);
    CHECK_SIZE(key(&f, "I: odd line"), 2);
    unload(&f);
}

AE_TEST(match_keys_a_multiline_record_by_its_first_lines_format_and_all_its_lines)
{
    fixture f;
    if (!load(&f, "{\"0\": \"Task <*> failed at x\"}",
              parser_text("drain", "{\"regex_pattern\": \"\\\\d+\", \"mask_with\": \"*\"}", "",
                          T(1, "[\"Task\", \"<*>\", \"failed\", \"at\", \"x\"]",
                            "Task <*> failed at x"))))
        return;
    const char *record = "E: Task 7 failed\n\tat x";
    ae_match_detail d;
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, record, strlen(record), &d), AE_OK);
    CHECK(d.format_matched == 1);
    CHECK(d.content_len == strlen("Task 7 failed\n\tat x") &&
          memcmp(d.content, "Task 7 failed\n\tat x", d.content_len) == 0);
    CHECK_SIZE(d.n_tokens, 5);
    CHECK_SIZE(d.index, 0);
    CHECK(ae_matcher_line_fits(f.matcher, "E: Task 7 failed\n", 17) == 1);
    CHECK(ae_matcher_line_fits(f.matcher, "\tat x\r\n", 7) == 0);
    CHECK(ae_matcher_line_fits(f.matcher, "bad \xff", 5) == -1);
    CHECK(ae_matcher_line_fits(NULL, "x", 1) == -1);
    CHECK(ae_matcher_multiline(f.matcher) == 0);
    unload(&f);
}

AE_TEST(match_copies_the_content_of_a_record_whose_content_group_is_not_last)
{
    fixture f;
    static char parser[1 << 12];
    snprintf(parser, sizeof parser,
             "{\"format_version\": 1, \"log_format\": \"<Content> (<Level>)\",\n"
             " \"line_regex\": \"^(?P<Content>.*?)\\\\s+\\\\((?P<Level>.*?)\\\\)$\",\n"
             " \"masking\": [], \"multiline\": true, \"drain\": {\"sim_th\": 0.4, \"depth\": 4},\n"
             " \"mode\": \"drain\", \"templates\": [%s]}",
             T(1, "[\"a\", \"b\", \"c\"]", "a b c"));
    if (!load(&f, "{\"0\": \"a b c\"}", parser))
        return;
    ae_match_detail d;
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, "a b (INFO)\nc", 12, &d), AE_OK);
    CHECK(d.content_len == 5 && memcmp(d.content, "a b\nc", 5) == 0);
    CHECK_SIZE(d.index, 0);
    CHECK(ae_matcher_multiline(f.matcher) == 1);
    unload(&f);
}

AE_TEST(match_says_the_regex_engine_gave_up_on_a_catastrophic_mask_as_python_does)
{
    fixture f;
    if (!load(&f, "{\"0\": \"a\"}",
              parser_text("drain", "{\"regex_pattern\": \"((a+)+)+$\", \"mask_with\": \"A\"}", "",
                          T(1, "[\"a\"]", "a"))))
        return;
    const char *line = "E: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";
    size_t index = 0;
    CHECK_STATUS(ae_matcher_match(f.matcher, line, strlen(line), &index, NULL), AE_ERR_TOO_LARGE);
    CHECK_SIZE(index, 1);
    CHECK(strcmp(ae_matcher_errmsg(f.matcher),
                 "masking[0]: the regex engine gave up on this line (too much backtracking)") == 0);
    unload(&f);
}

AE_TEST(match_reports_a_blank_line_as_not_found)
{
    fixture f;
    if (!load(&f, "{\"0\": \"a\"}", parser_text("drain", "", "", T(1, "[\"a\"]", "a"))))
        return;
    size_t index = 0;
    const char *blank[] = {"", "\n", "\r\n", "  \t", "\xe3\x80\x80\xc2\xa0\x1c\r\r\n"};
    for (size_t i = 0; i < sizeof blank / sizeof blank[0]; i++) {
        CHECK_STATUS(ae_matcher_match(f.matcher, blank[i], strlen(blank[i]), &index, NULL),
                     AE_BLANK);
        CHECK_SIZE(index, 1);
    }
    CHECK(ae_line_is_blank(" \xe1\xa0\x8e ", 5) == 0); /* U+180E is not whitespace */
    unload(&f);
}

AE_TEST(match_strips_trailing_carriage_returns_and_newlines)
{
    fixture f;
    if (!load(&f, "{\"0\": \"a b\"}",
              parser_text("drain", "", "", T(1, "[\"a\", \"b\"]", "a b"))))
        return;
    ae_match_detail d;
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, "I: a b\r\r\n", 9, &d), AE_OK);
    CHECK_SIZE(d.content_len, 3);
    CHECK_SIZE(d.index, 0);
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, "I: a\rb", 6, &d), AE_OK);
    CHECK_SIZE(d.index, 0); /* a "\r" inside the line is whitespace */
    unload(&f);
}

AE_TEST(match_refuses_nul_bytes_and_invalid_utf8_with_the_byte_number)
{
    fixture f;
    if (!load(&f, "{\"0\": \"a\"}", parser_text("drain", "", "", T(1, "[\"a\"]", "a"))))
        return;
    size_t index = 0;
    const char *t = "set";
    CHECK_STATUS(ae_matcher_match(f.matcher, "I: a\0b", 6, &index, &t), AE_ERR_FORMAT);
    CHECK_SIZE(index, 1);
    CHECK(t == NULL);
    CHECK_STR(ae_matcher_errmsg(f.matcher), "contains NUL bytes (byte 5)");
    CHECK_STATUS(ae_matcher_match(f.matcher, "I: caf\xc3", 7, &index, &t), AE_ERR_FORMAT);
    CHECK_STR(ae_matcher_errmsg(f.matcher), "not valid UTF-8 (byte 7)");
    CHECK_STATUS(ae_matcher_match(f.matcher, "I: \xed\xa0\x80", 6, &index, &t), AE_ERR_FORMAT);
    CHECK_STR(ae_matcher_errmsg(f.matcher), "not valid UTF-8 (byte 4)");
    CHECK_STATUS(ae_matcher_match(f.matcher, "I: a", 4, &index, &t), AE_OK);
    CHECK_STR(ae_matcher_errmsg(f.matcher), "");
    unload(&f);
}

AE_TEST(match_refuses_a_line_longer_than_the_limit_but_takes_one_at_the_limit)
{
    fixture f;
    if (!load(&f, "{\"0\": \"<*>\"}", parser_text("drain", "", "", T(1, "[\"<*>\"]", "<*>"))))
        return;
    size_t n = AE_LINE_MAX_BYTES + 2;
    char *line = malloc(n);
    CHECK(line != NULL);
    memset(line, 'a', n);
    memcpy(line, "I: ", 3);
    size_t index = 9;
    ae_status at_limit = ae_matcher_match(f.matcher, line, AE_LINE_MAX_BYTES, &index, NULL);
    size_t index_at_limit = index;
    line[AE_LINE_MAX_BYTES] = '\n'; /* the "\n" does not count */
    ae_status with_newline = ae_matcher_match(f.matcher, line, AE_LINE_MAX_BYTES + 1, &index,
                                              NULL);
    line[AE_LINE_MAX_BYTES] = 'a';
    ae_status above = ae_matcher_match(f.matcher, line, AE_LINE_MAX_BYTES + 1, &index, NULL);
    free(line);
    CHECK_STATUS(at_limit, AE_OK);
    CHECK_SIZE(index_at_limit, 0);
    CHECK_STATUS(with_newline, AE_OK);
    CHECK_STATUS(above, AE_ERR_TOO_LARGE);
    CHECK_CONTAINS(ae_matcher_errmsg(f.matcher), "longer than 1048576 bytes");
    unload(&f);
}

AE_TEST(match_handles_a_megabyte_line_full_of_masked_values)
{
    /* The default masks' shapes on 1 MiB of numbers and paths: no regex limit, and fast. */
    fixture f;
    if (!load(&f, "{\"0\": \"<*>\"}",
              parser_text("drain",
                          "{\"regex_pattern\": \"(?<![\\\\w/.:~-])(?:/[\\\\w.@%+~-]+)+/?\", \"mask_with\": \"PATH\"},"
                          "{\"regex_pattern\": \"(?<![\\\\w.])[-+]?\\\\d+(?:[.,]\\\\d+)*(?![\\\\w.])\", \"mask_with\": \"NUM\"}",
                          "", T(1, "[\"<*>\"]", "<*>"))))
        return;
    size_t n = AE_LINE_MAX_BYTES;
    char *line = malloc(n);
    CHECK(line != NULL);
    memcpy(line, "I: ", 3);
    for (size_t i = 3; i < n; i++)
        line[i] = i < n / 2 ? "/ab"[i % 3] : "1.5 "[i % 4];
    ae_match_detail d;
    clock_t started = clock();
    ae_status status = ae_matcher_match_detail(f.matcher, line, n, &d);
    double seconds = (double)(clock() - started) / CLOCKS_PER_SEC;
    free(line);
    CHECK_STATUS(status, AE_OK);
    CHECK(d.n_tokens > 1000);
    CHECK(seconds < 20.0); /* generous: sanitizers and qemu are slow */
    unload(&f);
}

AE_TEST(match_matches_an_empty_content_to_a_template_without_tokens)
{
    fixture f;
    if (!load(&f, "{\"0\": \"\", \"1\": \"a\"}",
              parser_text("drain", "", "", T(1, "[\"a\"]", "a") "," T(5, "[]", ""))))
        return;
    ae_match_detail d;
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, "I: ", 3, &d), AE_OK);
    CHECK(d.format_matched == 1);
    CHECK_SIZE(d.content_len, 0);
    CHECK(d.cluster_id == 5);
    CHECK_SIZE(d.index, 0);
    unload(&f);
}

#define TT(id, text) "{\"cluster_id\": " #id ", \"template\": \"" text "\"}"

AE_TEST(match_templates_mode_prefers_the_template_with_the_most_literal_characters)
{
    fixture f;
    if (!load(&f, "{\"0\": \"<*>block<*>\", \"1\": \"<*>Served block<*>to<*>\", "
                  "\"2\": \"<*>Served<*>\"}",
              parser_text("templates", "", "",
                          TT(1, "<*>block<*>") "," TT(2, "<*>Served block<*>to<*>") ","
                          TT(3, "<*>Served<*>"))))
        return;
    CHECK_SIZE(key(&f, "I: 10.0.0.1 Served block blk_1 to /10.0.0.2"), 1);
    CHECK_SIZE(key(&f, "I: Served a block"), 2); /* 6 literal characters beat 5 */
    CHECK_SIZE(key(&f, "I: a block"), 0);
    CHECK_SIZE(key(&f, "I: Served"), 2);
    CHECK_SIZE(key(&f, "I: nothing"), 3);
    unload(&f);
}

AE_TEST(match_templates_mode_counts_literal_characters_as_code_points_and_ties_go_first)
{
    /* "é<*>" has 2 bytes of literal text but 1 character; "ab<*>" has 2 characters. */
    fixture f;
    if (!load(&f, "{\"0\": \"\xc3\xa9<*>\", \"1\": \"<*>b<*>\", \"2\": \"<*>\xc3\xa9<*>\", "
                  "\"3\": \"<*>x<*>\"}",
              parser_text("templates", "", "",
                          TT(1, "\xc3\xa9<*>") "," TT(2, "<*>b<*>") "," TT(3, "<*>\xc3\xa9<*>") ","
                          TT(4, "<*>x<*>"))))
        return;
    CHECK_SIZE(key(&f, "I: \xc3\xa9x"), 0);  /* 1 character each: the earliest of 1, 3, 4 */
    CHECK_SIZE(key(&f, "I: b\xc3\xa9"), 1);
    CHECK_SIZE(key(&f, "I: xx\xc3\xa9"), 2);
    unload(&f);
}

AE_TEST(match_templates_mode_wildcards_match_any_text_including_none)
{
    fixture f;
    if (!load(&f, "{\"0\": \"a<*>b<*>c\", \"1\": \"ab\"}",
              parser_text("templates", "", "", TT(1, "a<*>b<*>c") "," TT(2, "ab"))))
        return;
    CHECK_SIZE(key(&f, "I: abc"), 0);
    CHECK_SIZE(key(&f, "I: a  b \t c"), 0);
    CHECK_SIZE(key(&f, "I: ab"), 1);
    CHECK_SIZE(key(&f, "I: abx"), 2);
    CHECK_SIZE(key(&f, "I: acb"), 2);
    unload(&f);
}

AE_TEST(match_templates_mode_needs_the_literal_parts_in_order_without_overlap)
{
    fixture f;
    if (!load(&f, "{\"0\": \"ab<*>ba\", \"1\": \"<*>a<*>a<*>\"}",
              parser_text("templates", "", "", TT(1, "ab<*>ba") "," TT(2, "<*>a<*>a<*>"))))
        return;
    CHECK_SIZE(key(&f, "I: aba"), 1);   /* "ab" and "ba" would overlap: only "a..a" fits */
    CHECK_SIZE(key(&f, "I: abba"), 0);
    CHECK_SIZE(key(&f, "I: a"), 2);
    unload(&f);
}

AE_TEST(match_templates_mode_does_not_apply_the_masks)
{
    fixture f;
    if (!load(&f, "{\"0\": \"port <*>\", \"1\": \"port <NUM>\"}",
              parser_text("templates", "{\"regex_pattern\": \"\\\\d+\", \"mask_with\": \"NUM\"}",
                          "", TT(1, "port <*>"))))
        return;
    ae_match_detail d;
    CHECK_STATUS(ae_matcher_match_detail(f.matcher, "I: port 22", 10, &d), AE_OK);
    CHECK(d.masked == d.content);
    CHECK_SIZE(d.index, 0);
    CHECK_SIZE(key(&f, "I: port <NUM>"), 0);
    unload(&f);
}

/* ------------------------------------------------------------------------------------------
 * Property tests: the indexes give what a linear scan in Python's way gives.
 */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

enum { N_TPL = 60, MAX_TOK = 5 };

AE_TEST(match_drain_trie_agrees_with_drain3s_linear_scan_on_random_templates)
{
    static const char *words[] = {"a", "b", "c", "<*>"};
    static char tokens[N_TPL][MAX_TOK][4];
    static size_t counts[N_TPL];
    char *templates = calloc(1, 1 << 16), *vocab = calloc(1, 1 << 16);
    CHECK(templates != NULL && vocab != NULL);
    size_t tl = 0, vl = 0;
    vl += (size_t)snprintf(vocab + vl, 64, "{");
    for (size_t t = 0; t < N_TPL; t++) {
        counts[t] = 1 + rnd(MAX_TOK);
        char text[64] = "", json_tokens[128] = "[";
        for (size_t i = 0; i < counts[t]; i++) {
            strcpy(tokens[t][i], words[rnd(4)]);
            strcat(text, i ? " " : "");
            strcat(text, tokens[t][i]);
            strcat(json_tokens, i ? ", \"" : "\"");
            strcat(json_tokens, tokens[t][i]);
            strcat(json_tokens, "\"");
        }
        strcat(json_tokens, "]");
        tl += (size_t)snprintf(templates + tl, 512,
                               "%s{\"cluster_id\": %zu, \"template\": \"%s #%zu\", \"tokens\": %s}",
                               t ? "," : "", t + 1, text, t, json_tokens);
        vl += (size_t)snprintf(vocab + vl, 128, "%s\"%zu\": \"%s #%zu\"", t ? "," : "", t, text, t);
    }
    snprintf(vocab + vl, 4, "}");
    fixture f;
    int ok = load(&f, vocab, parser_text("drain", "", "", templates));
    free(templates);
    free(vocab);
    if (!ok)
        return;
    for (int trial = 0; trial < 3000; trial++) {
        size_t k = 1 + rnd(MAX_TOK);
        char line[64] = "I:";
        const char *toks[MAX_TOK];
        for (size_t i = 0; i < k; i++) {
            toks[i] = words[rnd(4)];
            strcat(line, " ");
            strcat(line, toks[i]);
        }
        /* Drain3's fast_match with include_params and sim_th 1.0, in parser.json order. */
        size_t expected = N_TPL, best_params = 0;
        for (size_t t = 0; t < N_TPL; t++) {
            if (counts[t] != k)
                continue;
            size_t params = 0, same = 1;
            for (size_t i = 0; i < k && same; i++) {
                if (strcmp(tokens[t][i], "<*>") == 0)
                    params++;
                else
                    same = strcmp(tokens[t][i], toks[i]) == 0;
            }
            if (same && (expected == N_TPL || params > best_params)) {
                expected = t;
                best_params = params;
            }
        }
        size_t got = key(&f, line);
        if (got != expected) {
            ae_test_fail_at(__FILE__, __LINE__, "\"%s\": trie %zu, scan %zu", line, got,
                            expected);
            break;
        }
    }
    unload(&f);
}

/* Python's re.match("^" + ".*?".join(escaped parts) + "$", s, re.S) by plain recursion. */
static int glob(const char *p, const char *s)
{
    if (*p == '\0')
        return *s == '\0';
    if (strncmp(p, "<*>", 3) == 0) {
        for (const char *t = s;; t++) {
            if (glob(p + 3, t))
                return 1;
            if (*t == '\0')
                return 0;
        }
    }
    return *s == *p && glob(p + 1, s + 1);
}

AE_TEST(match_templates_automaton_agrees_with_a_linear_scan_on_random_templates)
{
    static const char *pieces[] = {"a", "b", "ab", "ba", "<*>", "<*>", "c"};
    static char texts[N_TPL][32];
    static size_t literal[N_TPL];
    char *templates = calloc(1, 1 << 16), *vocab = calloc(1, 1 << 16);
    CHECK(templates != NULL && vocab != NULL);
    size_t tl = 0, vl = 0;
    vl += (size_t)snprintf(vocab + vl, 64, "{");
    for (size_t t = 0; t < N_TPL; t++) {
        size_t n = 1 + rnd(4);
        texts[t][0] = '\0';
        literal[t] = 0;
        for (size_t i = 0; i < n; i++) {
            const char *piece = pieces[rnd(7)];
            strcat(texts[t], piece);
            literal[t] += strcmp(piece, "<*>") == 0 ? 0 : strlen(piece);
        }
        tl += (size_t)snprintf(templates + tl, 256, "%s{\"cluster_id\": %zu, \"template\": \"%s\"}",
                               t ? "," : "", t + 1, texts[t]);
    }
    /* The vocab: templates by first appearance (duplicates share an index). */
    size_t index_of[N_TPL], n_vocab = 0;
    for (size_t t = 0; t < N_TPL; t++) {
        index_of[t] = n_vocab;
        for (size_t u = 0; u < t; u++)
            if (strcmp(texts[u], texts[t]) == 0) {
                index_of[t] = index_of[u];
                break;
            }
        if (index_of[t] == n_vocab)
            vl += (size_t)snprintf(vocab + vl, 128, "%s\"%zu\": \"%s\"", n_vocab ? "," : "",
                                   n_vocab, texts[t]), n_vocab++;
    }
    snprintf(vocab + vl, 4, "}");
    fixture f;
    int ok = load(&f, vocab, parser_text("templates", "", "", templates));
    free(templates);
    free(vocab);
    if (!ok)
        return;
    for (int trial = 0; trial < 3000; trial++) {
        char content[16] = "";
        size_t n = rnd(7);
        for (size_t i = 0; i < n; i++)
            content[i] = "abc"[rnd(3)];
        content[n] = '\0';
        size_t expected = n_vocab;
        long best = -1;
        for (size_t t = 0; t < N_TPL; t++)
            if ((long)literal[t] > best && glob(texts[t], content)) {
                expected = index_of[t];
                best = (long)literal[t];
            }
        char line[32];
        snprintf(line, sizeof line, "I: %s", content); /* "I: " gives an empty content */
        size_t got = key(&f, line);
        if (got != expected) {
            ae_test_fail_at(__FILE__, __LINE__, "\"%s\": automaton %zu, scan %zu", content, got,
                            expected);
            break;
        }
    }
    unload(&f);
}

AE_TEST(match_python_whitespace_is_exactly_str_isspace)
{
    /* [c for c in range(0x110000) if chr(c).isspace()] in Python 3.11 */
    static const unsigned spaces[] = {0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
                                      0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
                                      0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028,
                                      0x2029, 0x202f, 0x205f, 0x3000};
    size_t next = 0;
    for (unsigned c = 1; c < 0x110000; c++) {
        if (c >= 0xD800 && c <= 0xDFFF)
            continue;
        char b[4];
        size_t n;
        if (c < 0x80) {
            b[0] = (char)c;
            n = 1;
        } else if (c < 0x800) {
            b[0] = (char)(0xC0 | (c >> 6));
            b[1] = (char)(0x80 | (c & 63));
            n = 2;
        } else if (c < 0x10000) {
            b[0] = (char)(0xE0 | (c >> 12));
            b[1] = (char)(0x80 | ((c >> 6) & 63));
            b[2] = (char)(0x80 | (c & 63));
            n = 3;
        } else {
            b[0] = (char)(0xF0 | (c >> 18));
            b[1] = (char)(0x80 | ((c >> 12) & 63));
            b[2] = (char)(0x80 | ((c >> 6) & 63));
            b[3] = (char)(0x80 | (c & 63));
            n = 4;
        }
        int expected = next < sizeof spaces / sizeof spaces[0] && spaces[next] == c;
        next += (size_t)expected;
        size_t got = ae_py_space_at(b, n);
        if ((got == n) != expected || (got != 0 && got != n)) {
            ae_test_fail_at(__FILE__, __LINE__, "U+%04X: ae_py_space_at gave %zu", c, got);
            return;
        }
    }
    size_t a, z;
    ae_py_strip("\xe3\x80\x80 x\xc2\xa0y \x1c", 10, &a, &z);
    CHECK_SIZE(a, 4);
    CHECK_SIZE(z, 8);
}

AE_TEST(match_functions_refuse_null_arguments_and_free_accepts_null)
{
    size_t index = 0;
    ae_match_detail d;
    CHECK_STATUS(ae_matcher_match(NULL, "x", 1, &index, NULL), AE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ae_matcher_match_detail(NULL, "x", 1, &d), AE_ERR_INVALID_ARGUMENT);
    CHECK_STR(ae_matcher_errmsg(NULL), "");
    CHECK_STR(ae_matcher_mode(NULL), "");
    CHECK_SIZE(ae_matcher_template_count(NULL), 0);
    ae_matcher_free(NULL);
    fixture f;
    if (!load(&f, "{\"0\": \"a\"}", parser_text("drain", "", "", T(1, "[\"a\"]", "a"))))
        return;
    CHECK_STATUS(ae_matcher_match(f.matcher, NULL, 1, &index, NULL), AE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ae_matcher_match(f.matcher, "x", 1, NULL, NULL), AE_ERR_INVALID_ARGUMENT);
    CHECK_STR(ae_matcher_mode(f.matcher), "drain");
    CHECK_SIZE(ae_matcher_template_count(f.matcher), 1);
    unload(&f);
}

#include "test_match_cases.h"
AE_TEST_MAIN()

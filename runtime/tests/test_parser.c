/*
 * test_parser.c - loading parser.json: what is accepted, and every refusal names the file and
 * the field.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ae_test.h"
#include "internal.h"

static const char VOCAB[] = "{\"0\": \"user <*> logged in\"}";

/* The fields of a valid parser.json (drain mode), in order. */
static const char *const DEFAULTS[][2] = {
    {"format_version", "1"},
    {"log_format", "\"<Level>: <Content>\""},
    {"line_regex", "\"^(?P<Level>.*?):\\\\s+(?P<Content>.*?)$\""},
    {"masking", "[{\"regex_pattern\": \"\\\\d+\", \"mask_with\": \"NUM\"}]"},
    {"drain", "{\"sim_th\": 0.4, \"depth\": 4}"},
    {"mode", "\"drain\""},
    {"templates", "[{\"cluster_id\": 1, \"template\": \"user <*> logged in\",\n"
                  "  \"tokens\": [\"user\", \"<*>\", \"logged\", \"in\"]}]"},
};

/*
 * A valid parser.json with some fields changed: (key, JSON value) pairs ending with NULL; a
 * default key with the value NULL is left out, a key that is not a default is added.
 */
static const char *parser_with(const char *key, ...)
{
    static char text[8192];
    const char *keys[16], *values[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, key);
    for (const char *k = key; k != NULL && n < 16; k = va_arg(ap, const char *)) {
        keys[n] = k;
        values[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    size_t len = 0;
    int used[16] = {0};
    len += (size_t)snprintf(text + len, sizeof text - len, "{");
    const char *sep = "";
    for (size_t d = 0; d < sizeof DEFAULTS / sizeof DEFAULTS[0]; d++) {
        const char *value = DEFAULTS[d][1];
        for (size_t i = 0; i < n; i++)
            if (strcmp(keys[i], DEFAULTS[d][0]) == 0) {
                value = values[i];
                used[i] = 1;
            }
        if (value == NULL)
            continue;
        len += (size_t)snprintf(text + len, sizeof text - len, "%s\"%s\": %s", sep,
                                DEFAULTS[d][0], value);
        sep = ",\n ";
    }
    for (size_t i = 0; i < n; i++)
        if (!used[i] && values[i] != NULL)
            len += (size_t)snprintf(text + len, sizeof text - len, "%s\"%s\": %s", sep, keys[i],
                                    values[i]);
    snprintf(text + len, sizeof text - len, "}\n");
    return text;
}

/* Load `text` as parser.json; the status, with the message in err. */
static ae_status load_text(const char *text, char *err, size_t err_len)
{
    ae_vocab *vocab = NULL;
    char verr[256];
    if (ae_vocab_load(ae_test_write_text("vocab.json", VOCAB), &vocab, verr, sizeof verr) !=
        AE_OK) {
        snprintf(err, err_len, "vocab: %s", verr);
        return AE_ERR_IO;
    }
    ae_matcher *m = (ae_matcher *)&verr; /* must be reset to NULL on failure */
    ae_status status = ae_matcher_load(ae_test_write_text("parser.json", text), vocab, &m, err,
                                       err_len);
    if (status != AE_OK && m != NULL)
        snprintf(err, err_len, "*out was not reset to NULL");
    ae_matcher_free(status == AE_OK ? m : NULL);
    ae_vocab_free(vocab);
    return status;
}

#define CHECK_REFUSED(text, status, why)                                                         \
    do {                                                                                         \
        char err_[1024];                                                                         \
        CHECK_STATUS(load_text((text), err_, sizeof err_), status);                              \
        CHECK_CONTAINS(err_, "parser.json: ");                                                   \
        CHECK_CONTAINS(err_, (why));                                                             \
    } while (0)

AE_TEST(parser_loads_a_parser_json_as_invoke_parse_writes_it)
{
    char err[512];
    CHECK_STATUS(load_text(parser_with(NULL), err, sizeof err), AE_OK);
    /* Optional fields may be null; fields the matcher does not need are ignored. */
    CHECK_STATUS(load_text(parser_with("extra_delimiters", "null", "session_regex", "null",
                                       "timestamp", "{}", "match_strategy", "\"always\"",
                                       "mask_prefix", "\"<\"", NULL),
                           err, sizeof err),
                 AE_OK);
}

AE_TEST(parser_refuses_malformed_json_with_the_line_and_column)
{
    CHECK_REFUSED("{\"format_version\": 1,\n \"mode\": }", AE_ERR_FORMAT,
                  "not valid JSON (line 2, column 10)");
    CHECK_REFUSED("{} []", AE_ERR_FORMAT, "unexpected content after the JSON object");
    CHECK_REFUSED("[1, 2]", AE_ERR_FORMAT, "expected a JSON object (a parser.json), found an array");
    CHECK_REFUSED("", AE_ERR_FORMAT, "not valid JSON");
}

AE_TEST(parser_refuses_duplicate_keys_which_python_would_read_differently)
{
    /* json.load keeps the last value of a repeated key, cJSON the first: refuse both readings. */
    CHECK_REFUSED(parser_with("mode", "\"drain\", \"mode\": \"templates\"", NULL), AE_ERR_FORMAT,
                  "the key \"mode\" appears twice in the top-level object");
    CHECK_REFUSED(parser_with("templates", "[{\"cluster_id\": 1, \"template\": \"a\", "
                              "\"tokens\": [\"a\"], \"cluster_id\": 2}]", NULL),
                  AE_ERR_FORMAT, "the key \"cluster_id\" appears twice in templates[0]");
}

AE_TEST(parser_refuses_a_missing_field_by_its_name)
{
    const char *fields[] = {"format_version", "log_format", "line_regex", "masking", "drain",
                            "mode", "templates"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char why[96];
        snprintf(why, sizeof why, "not a parser.json: the field \"%s\" is missing", fields[i]);
        CHECK_REFUSED(parser_with(fields[i], NULL, NULL), AE_ERR_FORMAT, why);
    }
}

AE_TEST(parser_refuses_a_format_version_it_does_not_read)
{
    CHECK_REFUSED(parser_with("format_version", "2", NULL), AE_ERR_FORMAT,
                  "format_version 2 is not supported (this runtime reads version 1)");
    CHECK_REFUSED(parser_with("format_version", "\"1\"", NULL), AE_ERR_FORMAT,
                  "format_version is a string, not a number");
}

AE_TEST(parser_refuses_an_unknown_mode_or_match_strategy)
{
    CHECK_REFUSED(parser_with("mode", "\"fuzzy\"", NULL), AE_ERR_FORMAT,
                  "unknown mode \"fuzzy\" (this runtime knows \"drain\" and \"templates\")");
    CHECK_REFUSED(parser_with("match_strategy", "\"never\"", NULL), AE_ERR_FORMAT,
                  "match_strategy \"never\" is not supported in mode \"drain\" (only \"always\")");
}

AE_TEST(parser_refuses_an_invalid_regex_with_pcre2s_message_and_the_offset)
{
    CHECK_REFUSED(parser_with("masking", "[{\"regex_pattern\": \"ab(c\", \"mask_with\": \"X\"}]",
                              NULL),
                  AE_ERR_FORMAT,
                  "masking[0].regex_pattern: invalid regex: missing closing parenthesis at "
                  "offset 4 of \"ab(c\"");
    /* The offset is in the user's pattern, not in the translated one (\s expands). */
    CHECK_REFUSED(parser_with("line_regex", "\"^\\\\s+(?P<Content>.*?)$)\"", NULL), AE_ERR_FORMAT,
                  "line_regex: invalid regex: unmatched closing parenthesis at offset 21");
}

AE_TEST(parser_refuses_python_constructs_that_have_no_pcre2_equivalent)
{
    CHECK_REFUSED(parser_with("masking", "[{\"regex_pattern\": \"\\\\N{EM DASH}\", "
                              "\"mask_with\": \"X\"}]", NULL),
                  AE_ERR_FORMAT, "masking[0].regex_pattern: named characters");
    CHECK_REFUSED(parser_with("masking", "[{\"regex_pattern\": \"[\\\\S,]+\", "
                              "\"mask_with\": \"X\"}]", NULL),
                  AE_ERR_FORMAT, "\\S inside a character class is not supported");
    CHECK_REFUSED(parser_with("masking", "[{\"regex_pattern\": \"\\\\d\", \"mask_with\": "
                              "\"a\\\\1\"}]", NULL),
                  AE_ERR_FORMAT, "masking[0].mask_with: a backslash in a mask is not supported");
}

AE_TEST(parser_refuses_a_content_group_missing_from_the_line_regex)
{
    CHECK_REFUSED(parser_with("content_group", "\"Message\"", NULL), AE_ERR_FORMAT,
                  "line_regex has no group named \"Message\" (content_group)");
}

AE_TEST(parser_refuses_mistyped_fields_naming_them)
{
    CHECK_REFUSED(parser_with("masking", "{}", NULL), AE_ERR_FORMAT,
                  "masking is an object, not an array");
    CHECK_REFUSED(parser_with("masking", "[{\"regex_pattern\": 5, \"mask_with\": \"X\"}]", NULL),
                  AE_ERR_FORMAT, "masking[0].regex_pattern is a number, not a string");
    CHECK_REFUSED(parser_with("extra_delimiters", "[\"\"]", NULL), AE_ERR_FORMAT,
                  "extra_delimiters[0] is empty");
    CHECK_REFUSED(parser_with("templates", "[{\"cluster_id\": 1, \"template\": \"a\"}]", NULL),
                  AE_ERR_FORMAT, "templates[0].tokens is missing, not an array of strings");
    CHECK_REFUSED(parser_with("templates", "[{\"cluster_id\": 1, \"template\": \"a\", "
                              "\"tokens\": [\"a\", 2]}]", NULL),
                  AE_ERR_FORMAT, "templates[0].tokens[1] is a number, not a string");
    CHECK_REFUSED(parser_with("templates", "[7]", NULL), AE_ERR_FORMAT,
                  "templates[0] is a number, not an object");
    CHECK_REFUSED(parser_with("drain", "[]", NULL), AE_ERR_FORMAT,
                  "drain is an array, not an object");
    CHECK_REFUSED(parser_with("line_regex", "null", NULL), AE_ERR_FORMAT,
                  "line_regex is null, not a string");
}

AE_TEST(parser_refuses_cluster_ids_that_are_not_positive_integers_or_repeat)
{
    CHECK_REFUSED(parser_with("templates", "[{\"cluster_id\": 0, \"template\": \"a\", "
                              "\"tokens\": [\"a\"]}]", NULL),
                  AE_ERR_FORMAT, "templates[0].cluster_id is 0, not a positive integer");
    CHECK_REFUSED(parser_with("templates", "[{\"cluster_id\": 1.5, \"template\": \"a\", "
                              "\"tokens\": [\"a\"]}]", NULL),
                  AE_ERR_FORMAT, "templates[0].cluster_id is 1.5, not a positive integer");
    CHECK_REFUSED(parser_with("templates", "[{\"cluster_id\": \"1\", \"template\": \"a\", "
                              "\"tokens\": [\"a\"]}]", NULL),
                  AE_ERR_FORMAT, "templates[0].cluster_id is a string, not a positive integer");
    CHECK_REFUSED(parser_with("templates", "[{\"cluster_id\": 3, \"template\": \"a\", "
                              "\"tokens\": [\"a\"]}, {\"cluster_id\": 3, \"template\": \"b\", "
                              "\"tokens\": [\"b\"]}]", NULL),
                  AE_ERR_FORMAT, "templates[1].cluster_id 3 appears twice (also in templates[0])");
}

AE_TEST(parser_refuses_invalid_utf8_and_nul_escapes)
{
    CHECK_REFUSED("{\"a\": \"\xff\"}", AE_ERR_FORMAT, "invalid UTF-8 at byte 7 (line 1, column 8)");
    CHECK_REFUSED(parser_with("line_regex", "\"^(?P<Content>a\\u0000)$\"", NULL), AE_ERR_FORMAT,
                  "a NUL character (\\u0000) in a string");
}

AE_TEST(parser_refuses_a_file_above_the_size_limit_and_a_missing_file)
{
    char err[512];
    ae_vocab *vocab = NULL;
    CHECK_STATUS(ae_vocab_load(ae_test_write_text("vocab.json", VOCAB), &vocab, err, sizeof err),
                 AE_OK);
    ae_matcher *m = NULL;
    const char *path = ae_test_write_text("parser.json", parser_with(NULL));
    ae_status big = ae_matcher_load_limited(path, 100, vocab, &m, err, sizeof err);
    char big_err[512];
    snprintf(big_err, sizeof big_err, "%s", err);
    ae_status missing = ae_matcher_load("/nonexistent/parser.json", vocab, &m, err, sizeof err);
    ae_vocab_free(vocab);
    CHECK_STATUS(big, AE_ERR_TOO_LARGE);
    CHECK_CONTAINS(big_err, "parser.json: file too large (");
    CHECK_CONTAINS(big_err, "the limit is 100)");
    CHECK_STATUS(missing, AE_ERR_IO);
    CHECK_STR(err, "/nonexistent/parser.json: No such file or directory");
    CHECK(m == NULL);
}

AE_TEST(parser_refuses_null_arguments)
{
    char err[256];
    ae_matcher *m = NULL;
    CHECK_STATUS(ae_matcher_load("parser.json", NULL, &m, err, sizeof err),
                 AE_ERR_INVALID_ARGUMENT);
    CHECK_STR(err, "ae_matcher_load: vocab is NULL");
    CHECK_STATUS(ae_matcher_load(NULL, NULL, NULL, err, sizeof err), AE_ERR_INVALID_ARGUMENT);
}

AE_TEST(parser_compiles_the_masks_only_in_drain_mode_as_python_does)
{
    /* TemplateListMatcher never compiles the masks; neither does the runtime. */
    char err[512];
    CHECK_STATUS(load_text(parser_with("mode", "\"templates\"", "masking",
                                       "[{\"regex_pattern\": \"ab(c\", \"mask_with\": \"X\"}]",
                                       "templates", "[{\"cluster_id\": 1, \"template\": "
                                       "\"user <*> logged in\"}]", NULL),
                           err, sizeof err),
                 AE_OK);
}

#include "test_parser_cases.h"
AE_TEST_MAIN()

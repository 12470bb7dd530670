/*
 * test_vocab.c - vocab.json (C form) loading and lookups.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ae_test.h"
#include "internal.h"

/* Load a vocab.json written from `text`; the error text lands in err. */
static ae_status load_text(const char *text, ae_vocab **vocab, char *err, size_t err_len)
{
    return ae_vocab_load(ae_test_write_text("vocab.json", text), vocab, err, err_len);
}

/* Expect `text` to be refused with AE_ERR_FORMAT and a message containing `why`. */
#define CHECK_REFUSED(text, why)                                                                 \
    do {                                                                                         \
        char err_[512];                                                                          \
        ae_vocab *v_ = (ae_vocab *)&err_; /* must be reset to NULL */                            \
        CHECK_STATUS(load_text((text), &v_, err_, sizeof err_), AE_ERR_FORMAT);                  \
        CHECK(v_ == NULL);                                                                       \
        CHECK_CONTAINS(err_, "vocab.json: ");                                                    \
        CHECK_CONTAINS(err_, (why));                                                             \
    } while (0)

AE_TEST(vocab_loads_a_dense_vocab_and_maps_indices_to_templates_and_back)
{
    char err[256];
    ae_vocab *v = NULL;
    CHECK_STATUS(load_text("{\"0\": \"Receiving block <*> src: <*>\",\n"
                           " \"1\": \"PacketResponder <*> terminating\",\n"
                           " \"2\": \"Verification succeeded for <*>\"}\n",
                           &v, err, sizeof err),
                 AE_OK);
    CHECK_SIZE(ae_vocab_size(v), 3);
    CHECK_STR(ae_vocab_template(v, 0), "Receiving block <*> src: <*>");
    CHECK_STR(ae_vocab_template(v, 2), "Verification succeeded for <*>");
    size_t index = 99;
    CHECK_STATUS(ae_vocab_lookup(v, "PacketResponder <*> terminating", &index), AE_OK);
    CHECK_SIZE(index, 1);
    CHECK_STATUS(ae_vocab_lookup(v, "Receiving block <*> src: <*>", &index), AE_OK);
    CHECK_SIZE(index, 0);
    ae_vocab_free(v);
}

AE_TEST(vocab_accepts_keys_in_any_order)
{
    char err[256];
    ae_vocab *v = NULL;
    CHECK_STATUS(load_text("{\"2\": \"c\", \"0\": \"a\", \"1\": \"b\"}", &v, err, sizeof err),
                 AE_OK);
    CHECK_STR(ae_vocab_template(v, 0), "a");
    CHECK_STR(ae_vocab_template(v, 1), "b");
    CHECK_STR(ae_vocab_template(v, 2), "c");
    ae_vocab_free(v);
}

AE_TEST(vocab_decodes_escapes_and_unicode_in_templates)
{
    char err[256];
    ae_vocab *v = NULL;
    CHECK_STATUS(load_text("{\"0\": \"quote \\\" backslash \\\\ tab \\t\", "
                           "\"1\": \"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \\u00e9 \\ud83d\\ude00\", "
                           "\"2\": \"not a nul: \\\\u0000\"}",
                           &v, err, sizeof err),
                 AE_OK);
    CHECK_STR(ae_vocab_template(v, 0), "quote \" backslash \\ tab \t");
    CHECK_STR(ae_vocab_template(v, 1),
              "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xc3\xa9 \xf0\x9f\x98\x80");
    CHECK_STR(ae_vocab_template(v, 2), "not a nul: \\u0000");
    size_t index = 0;
    CHECK_STATUS(ae_vocab_lookup(v, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xc3\xa9 \xf0\x9f\x98\x80",
                                 &index),
                 AE_OK);
    CHECK_SIZE(index, 1);
    ae_vocab_free(v);
}

AE_TEST(vocab_reports_an_unknown_template_as_not_found)
{
    char err[256];
    ae_vocab *v = NULL;
    CHECK_STATUS(load_text("{\"0\": \"alpha <*>\", \"1\": \"beta\"}", &v, err, sizeof err), AE_OK);
    size_t index = 42;
    CHECK_STATUS(ae_vocab_lookup(v, "gamma", &index), AE_ERR_NOT_FOUND);
    CHECK_STATUS(ae_vocab_lookup(v, "alpha", &index), AE_ERR_NOT_FOUND);
    CHECK_STATUS(ae_vocab_lookup(v, "", &index), AE_ERR_NOT_FOUND);
    CHECK_SIZE(index, 42);
    ae_vocab_free(v);
}

AE_TEST(vocab_looks_up_a_template_given_by_length_without_a_nul)
{
    char err[256];
    ae_vocab *v = NULL;
    CHECK_STATUS(load_text("{\"0\": \"disk full\", \"1\": \"disk\"}", &v, err, sizeof err), AE_OK);
    const char line[] = "disk full on /dev/sda1";
    size_t index = 0;
    CHECK_STATUS(ae_vocab_lookup_n(v, line, 9, &index), AE_OK);
    CHECK_SIZE(index, 0);
    CHECK_STATUS(ae_vocab_lookup_n(v, line, 4, &index), AE_OK);
    CHECK_SIZE(index, 1);
    CHECK_STATUS(ae_vocab_lookup_n(v, line, 5, &index), AE_ERR_NOT_FOUND);
    ae_vocab_free(v);
}

AE_TEST(vocab_returns_null_for_an_index_out_of_range)
{
    char err[256];
    ae_vocab *v = NULL;
    CHECK_STATUS(load_text("{\"0\": \"only\"}", &v, err, sizeof err), AE_OK);
    CHECK(ae_vocab_template(v, 1) == NULL);
    CHECK(ae_vocab_template(v, (size_t)-1) == NULL);
    ae_vocab_free(v);
}

AE_TEST(vocab_indexes_a_large_vocab_and_finds_every_template)
{
    enum { N = 20000 };
    size_t cap = (size_t)N * 48 + 16, len = 0;
    char *text = malloc(cap);
    CHECK(text != NULL);
    len += (size_t)snprintf(text + len, cap - len, "{");
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s\"%d\": \"event %d on <*> code %x\"",
                                i ? ", " : "", i, i, (unsigned)i * 2654435761u);
    len += (size_t)snprintf(text + len, cap - len, "}");
    char err[256];
    ae_vocab *v = NULL;
    ae_status status = load_text(text, &v, err, sizeof err);
    free(text);
    CHECK_STATUS(status, AE_OK);
    CHECK_SIZE(ae_vocab_size(v), N);
    for (int i = 0; i < N; i++) {
        char tmpl[64];
        snprintf(tmpl, sizeof tmpl, "event %d on <*> code %x", i, (unsigned)i * 2654435761u);
        size_t index = 0;
        CHECK_STATUS(ae_vocab_lookup(v, tmpl, &index), AE_OK);
        CHECK_SIZE(index, (size_t)i);
    }
    ae_vocab_free(v);
}

AE_TEST(vocab_rejects_a_document_that_is_not_an_object)
{
    CHECK_REFUSED("[\"a\", \"b\"]", "expected a JSON object");
    CHECK_REFUSED("\"a\"", "found a string");
}

AE_TEST(vocab_rejects_an_empty_vocab)
{
    CHECK_REFUSED("{}", "the vocab is empty");
}

AE_TEST(vocab_rejects_a_key_that_is_not_a_decimal_index)
{
    CHECK_REFUSED("{\"0\": \"a\", \"one\": \"b\"}", "key \"one\" is not a decimal index");
    CHECK_REFUSED("{\"0\": \"a\", \"1.0\": \"b\"}", "key \"1.0\" is not a decimal index");
    CHECK_REFUSED("{\"0\": \"a\", \"\": \"b\"}", "key \"\" is not a decimal index");
    CHECK_REFUSED("{\"0\": \"a\", \" 1\": \"b\"}", "key \" 1\" is not a decimal index");
}

AE_TEST(vocab_rejects_a_negative_key)
{
    CHECK_REFUSED("{\"0\": \"a\", \"-1\": \"b\"}", "key \"-1\" is negative");
}

AE_TEST(vocab_rejects_a_key_with_a_leading_zero)
{
    CHECK_REFUSED("{\"0\": \"a\", \"01\": \"b\"}", "key \"01\" has a leading zero");
}

AE_TEST(vocab_rejects_a_vocab_with_a_gap)
{
    CHECK_REFUSED("{\"0\": \"a\", \"2\": \"c\", \"3\": \"d\"}", "index 1 is missing");
    CHECK_REFUSED("{\"1\": \"a\"}", "index 0 is missing");
    CHECK_REFUSED("{\"0\": \"a\", \"99999999999999999999999\": \"b\"}", "index 1 is missing");
}

AE_TEST(vocab_rejects_a_duplicate_key)
{
    CHECK_REFUSED("{\"0\": \"a\", \"1\": \"b\", \"1\": \"c\"}", "duplicate key \"1\"");
}

AE_TEST(vocab_rejects_a_value_that_is_not_a_string)
{
    CHECK_REFUSED("{\"0\": \"a\", \"1\": 7}", "the value of key \"1\" is a number");
    CHECK_REFUSED("{\"0\": null}", "the value of key \"0\" is null");
    CHECK_REFUSED("{\"0\": [\"a\"]}", "the value of key \"0\" is an array");
}

AE_TEST(vocab_rejects_the_training_form_and_names_invoke_convert)
{
    CHECK_REFUSED("{\"Receiving block <*>\": 0, \"PacketResponder <*>\": 1}",
                  "run `invoke convert`");
}

AE_TEST(vocab_rejects_the_template_id_form_and_names_invoke_fix_vocab)
{
    CHECK_REFUSED("{\"1\": 0, \"2\": 1}", "this is a template_id vocab");
    CHECK_REFUSED("{\"1\": 0}", "`invoke fix-vocab`");
}

AE_TEST(vocab_rejects_two_keys_with_the_same_template)
{
    CHECK_REFUSED("{\"0\": \"a\", \"1\": \"b\", \"2\": \"a\"}",
                  "keys \"0\" and \"2\" have the same template");
}

AE_TEST(vocab_rejects_invalid_utf8)
{
    CHECK_REFUSED("{\"0\": \"bad \xff byte\"}", "invalid UTF-8 at byte 11");
    CHECK_REFUSED("{\"0\": \"overlong \xc0\xaf\"}", "invalid UTF-8");
    CHECK_REFUSED("{\"0\": \"surrogate \xed\xa0\x80\"}", "invalid UTF-8");
    CHECK_REFUSED("{\"0\": \"truncated \xe6\x97\"}", "invalid UTF-8");
    CHECK_REFUSED("{\"0\": \"lone surrogate escape \\ud800\"}", "not valid JSON");
}

AE_TEST(vocab_rejects_a_nul_character_in_a_template)
{
    CHECK_REFUSED("{\"0\": \"a\",\n \"1\": \"cut\\u0000short\"}", "NUL character");
    CHECK_REFUSED("{\"0\": \"a\",\n \"1\": \"cut\\u0000short\"}", "line 2, column 11");
}

AE_TEST(vocab_rejects_malformed_json_with_its_line_and_column)
{
    CHECK_REFUSED("{\"0\": \"a\",\n \"1\": \"b\",\n}", "not valid JSON (line 3");
    CHECK_REFUSED("{\"0\": \"unterminated}", "not valid JSON");
    CHECK_REFUSED("", "not valid JSON");
}

AE_TEST(vocab_rejects_content_after_the_object)
{
    CHECK_REFUSED("{\"0\": \"a\"}\n{\"1\": \"b\"}\n", "unexpected content after the JSON object");
}

AE_TEST(vocab_rejects_a_file_larger_than_the_limit)
{
    char err[256];
    ae_vocab *v = NULL;
    const char *path = ae_test_write_text("vocab.json", "{\"0\": \"a template longer than 16\"}");
    CHECK_STATUS(ae_vocab_load_limited(path, 16, &v, err, sizeof err), AE_ERR_TOO_LARGE);
    CHECK(v == NULL);
    CHECK_CONTAINS(err, "file too large (34 bytes; the limit is 16)");
    CHECK_STATUS(ae_vocab_load_limited(path, 34, &v, err, sizeof err), AE_OK);
    ae_vocab_free(v);
}

AE_TEST(vocab_reports_a_missing_file_with_its_path)
{
    char err[512], path[4200];
    snprintf(path, sizeof path, "%s/no-such-vocab.json", ae_test_tmpdir());
    ae_vocab *v = NULL;
    CHECK_STATUS(ae_vocab_load(path, &v, err, sizeof err), AE_ERR_IO);
    CHECK(v == NULL);
    CHECK_CONTAINS(err, path);
    CHECK_CONTAINS(err, "No such file or directory");
}

AE_TEST(vocab_rejects_a_directory)
{
    char err[512];
    ae_vocab *v = NULL;
    CHECK_STATUS(ae_vocab_load(ae_test_tmpdir(), &v, err, sizeof err), AE_ERR_IO);
    CHECK_CONTAINS(err, "not a regular file");
}

AE_TEST(vocab_truncates_its_message_to_the_error_buffer)
{
    char err[16];
    memset(err, 'x', sizeof err);
    ae_vocab *v = NULL;
    CHECK_STATUS(ae_vocab_load("/nonexistent/vocab.json", &v, err, 8), AE_ERR_IO);
    CHECK_STR(err, "/nonexi");
    CHECK(err[8] == 'x');
    CHECK_STATUS(ae_vocab_load("/nonexistent/vocab.json", &v, NULL, 0), AE_ERR_IO);
}

AE_TEST(vocab_functions_accept_null_handles)
{
    char err[128];
    size_t index = 0;
    ae_vocab_free(NULL);
    CHECK_SIZE(ae_vocab_size(NULL), 0);
    CHECK(ae_vocab_template(NULL, 0) == NULL);
    CHECK_STATUS(ae_vocab_lookup(NULL, "a", &index), AE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ae_vocab_load(NULL, NULL, err, sizeof err), AE_ERR_INVALID_ARGUMENT);
    ae_vocab *v = NULL;
    CHECK_STATUS(ae_vocab_load(NULL, &v, err, sizeof err), AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err, "path is NULL");
}

#include "test_vocab_cases.h"
AE_TEST_MAIN()

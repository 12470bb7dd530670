/*
 * test_model.c - model directories loaded and checked (vocab, parser.json, ONNX files and their
 * meta.json), DeepLog's rule and MSCRED's score on the tiny real models of
 * make_onnx_fixtures.py (full_model/: 5 templates, seq_len 3, top_k 2, seen keys 0..3; MSCRED
 * window 4 x 6 features whose score is the sum of the counts).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ae_test.h"
#include "internal.h"

#ifndef AE_TEST_FIXTURES
#error "AE_TEST_FIXTURES must name the folder written by make_onnx_fixtures.py"
#endif

static const char *const FILES[] = {"vocab.json", "parser.json", "deeplog.onnx",
                                    "deeplog.onnx.meta.json", "mscred.onnx",
                                    "mscred.onnx.meta.json"};

/* Copy full_model/<name> into the case's directory, keeping `keep` of its bytes (all: -1). */
static int copy_part(const char *name, long keep)
{
    char src[4096], err[512];
    snprintf(src, sizeof src, "%s/full_model/%s", AE_TEST_FIXTURES, name);
    char *data = NULL;
    size_t len = 0;
    if (ae_read_file(src, 1u << 26, &data, &len, err, sizeof err) != AE_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    ae_test_write(name, data, keep < 0 || (size_t)keep > len ? len : (size_t)keep);
    free(data);
    return 0;
}

/* Whether a space-separated list holds a name. */
static int listed(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            return 1;
    return 0;
}

/* The fixture directory copied into the case's directory, but for the files in `skip`. */
static const char *copy_model(const char *skip)
{
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        if (skip != NULL && listed(skip, FILES[i]))
            continue;
        if (copy_part(FILES[i], -1) != 0)
            return NULL;
    }
    return ae_test_tmpdir();
}

/* Replace `from` by `to` in the case's copy of a file. */
static int edit(const char *name, const char *from, const char *to)
{
    char src[4096], err[512];
    snprintf(src, sizeof src, "%s/%s", ae_test_tmpdir(), name);
    char *data = NULL;
    size_t len = 0;
    if (ae_read_file(src, 1u << 26, &data, &len, err, sizeof err) != AE_OK)
        return -1;
    char *at = strstr(data, from);
    if (at == NULL) {
        fprintf(stderr, "%s has no \"%s\"\n", name, from);
        free(data);
        return -1;
    }
    size_t head = (size_t)(at - data), lf = strlen(from), lt = strlen(to);
    char *out = malloc(len - lf + lt + 1);
    memcpy(out, data, head);
    memcpy(out + head, to, lt);
    memcpy(out + head + lt, at + lf, len - head - lf + 1);
    ae_test_write_text(name, out);
    free(out);
    free(data);
    return 0;
}

static ae_model *load(const char *dir, const ae_model_params *params)
{
    char err[512];
    ae_model *m = NULL;
    if (ae_model_load(dir, params, &m, err, sizeof err) != AE_OK)
        fprintf(stderr, "loading %s: %s\n", dir, err);
    return m;
}

static const char *full(void)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/full_model", AE_TEST_FIXTURES);
    return path;
}

/* Load a directory that must fail with `status` and a message holding `part`. */
#define CHECK_REFUSED(dir, params, status, part)                                                 \
    do {                                                                                         \
        char err_[1024] = "unset";                                                               \
        ae_model *m_ = (ae_model *)&err_;                                                        \
        CHECK_STATUS(ae_model_load((dir), (params), &m_, err_, sizeof err_), status);            \
        CHECK(m_ == NULL);                                                                       \
        CHECK_CONTAINS(err_, part);                                                              \
    } while (0)

/* ---------------------------------------------------------------------------------------------
 * Loading
 */

AE_TEST(model_default_params_take_the_metas_values_on_one_thread)
{
    ae_model_params p = ae_model_default_params();
    CHECK(p.session.intra_op_threads == 1 && p.session.inter_op_threads == 1);
    CHECK(p.load_deeplog == 1 && p.load_mscred == 1);
    CHECK(p.top_k == 0 && p.mscred_threshold < 0 && p.session.log_severity == 3);
}

AE_TEST(model_load_reads_a_whole_model_directory)
{
    ae_model *m = load(full(), NULL);
    CHECK(m != NULL);
    ae_model_info info;
    CHECK_STATUS(ae_model_info_get(m, &info), AE_OK);
    CHECK_SIZE(info.num_templates, 5);
    CHECK(info.has_deeplog && info.has_mscred);
    CHECK_SIZE(info.deeplog_window, 3);
    CHECK(info.top_k == 2);
    CHECK_SIZE(info.deeplog_seen_keys, 4);
    CHECK_SIZE(info.mscred_window, 4);
    CHECK_SIZE(info.mscred_stride, 2);
    CHECK_SIZE(info.feature_dim, 6);
    CHECK(info.threshold == 10.0 && info.broken_cell_level == 0.5);
    CHECK(info.bucket_seconds == 10.0 && info.bucket_lines == 0 && info.per_host == 1);
    CHECK_SIZE(ae_vocab_size(ae_model_vocab(m)), 5);
    CHECK(ae_model_matcher(m) != NULL);
    CHECK_STR(ae_matcher_mode(ae_model_matcher(m)), "drain");
    ae_model_free(m);
}

AE_TEST(model_load_takes_top_k_and_threshold_from_the_params)
{
    ae_model_params p = ae_model_default_params();
    p.top_k = 7;
    p.mscred_threshold = 0.5;
    ae_model *m = load(full(), &p);
    CHECK(m != NULL);
    ae_model_info info;
    CHECK_STATUS(ae_model_info_get(m, &info), AE_OK);
    CHECK(info.top_k == 7 && info.threshold == 0.5);
    ae_model_free(m);
}

static const char *with_session_keys(void)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/session_model", AE_TEST_FIXTURES);
    return path;
}

AE_TEST(model_load_reads_the_rule_session_keys_and_session_ends_from_the_meta)
{
    ae_model *m = load(with_session_keys(), NULL);
    CHECK(m != NULL);
    ae_model_info info;
    CHECK_STATUS(ae_model_info_get(m, &info), AE_OK);
    CHECK(info.deeplog_rule == AE_RULE_PROBABILITY && info.probability_threshold == 0.12);
    CHECK(info.session_keys == 1 && info.start_key == 6 && info.end_key == 7);
    CHECK(info.closing_keys == 1 && info.session_idle == 60.0);
    ae_model_free(m);
    m = load(full(), NULL); /* a meta written before them: the paper's rule, no session keys */
    CHECK(m != NULL);
    CHECK_STATUS(ae_model_info_get(m, &info), AE_OK);
    CHECK(info.deeplog_rule == AE_RULE_TOP_K && info.session_keys == 0 && info.closing_keys == 0 &&
          info.session_idle == 0);
    ae_model_free(m);
}

AE_TEST(model_load_takes_the_rule_and_idle_time_from_the_params_over_the_meta)
{
    ae_model_params p = ae_model_default_params();
    p.top_k = 3; /* a g alone selects the top_k rule */
    p.session_idle = 0;
    ae_model *m = load(with_session_keys(), &p);
    CHECK(m != NULL);
    ae_model_info info;
    CHECK_STATUS(ae_model_info_get(m, &info), AE_OK);
    CHECK(info.deeplog_rule == AE_RULE_TOP_K && info.top_k == 3 && info.session_idle == 0);
    ae_model_free(m);
    p = ae_model_default_params();
    p.probability_threshold = 0.5; /* and a threshold the probability rule */
    m = load(full(), &p);
    CHECK(m != NULL);
    CHECK_STATUS(ae_model_info_get(m, &info), AE_OK);
    CHECK(info.deeplog_rule == AE_RULE_PROBABILITY && info.probability_threshold == 0.5);
    ae_model_free(m);
    p = ae_model_default_params();
    p.deeplog_rule = (ae_deeplog_rule)7;
    CHECK_REFUSED(full(), &p, AE_ERR_INVALID_ARGUMENT, "invalid model parameters");
}

AE_TEST(model_load_refuses_a_rule_or_session_keys_the_meta_gets_wrong)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("deeplog.onnx.meta.json", "\"top_k\": 2", "\"top_k\": 2, \"rule\": \"median\"") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT, "rule is \"median\", not \"top_k\" or \"probability\"");
    CHECK(edit("deeplog.onnx.meta.json", "\"median\"", "\"probability\"") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT, "probability_threshold is missing");
    CHECK(edit("deeplog.onnx.meta.json", "\"probability\"", "\"top_k\", \"start_key\": 6") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT, "start_key and end_key go together");
    CHECK(edit("deeplog.onnx.meta.json", "\"start_key\": 6", "\"closing_keys\": [9]") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT, "closing_keys[0] is not a key in 0..5");
    CHECK(edit("deeplog.onnx.meta.json", "\"closing_keys\": [9]", "\"num_classes\": 8") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT, "num_classes");  /* the graph gives 6 */
}

AE_TEST(model_load_refuses_a_missing_directory_naming_it)
{
    CHECK_REFUSED("/nonexistent/models", NULL, AE_ERR_IO,
                  "/nonexistent/models: No such file or directory");
}

AE_TEST(model_load_refuses_a_file_given_as_the_directory)
{
    const char *file = ae_test_write_text("models", "not a directory");
    CHECK_REFUSED(file, NULL, AE_ERR_IO, "models: not a directory");
}

AE_TEST(model_load_refuses_a_directory_without_vocab_or_parser_json)
{
    const char *dir = copy_model("vocab.json");
    CHECK(dir != NULL);
    CHECK_REFUSED(dir, NULL, AE_ERR_IO, "/vocab.json: No such file or directory");
    ae_test_write_text("vocab.json", "{\"0\": \"a <*>\"}");
    CHECK_REFUSED(dir, NULL, AE_ERR_FORMAT, "deeplog.onnx.meta.json: vocab_size is 6, but "
                  "vocab.json has 1 templates");
}

AE_TEST(model_load_refuses_a_directory_without_parser_json)
{
    const char *dir = copy_model("parser.json");
    CHECK(dir != NULL);
    CHECK_REFUSED(dir, NULL, AE_ERR_IO, "/parser.json: No such file or directory");
}

AE_TEST(model_load_refuses_a_directory_with_neither_model)
{
    const char *dir = copy_model("deeplog.onnx mscred.onnx deeplog.onnx.meta.json "
                                 "mscred.onnx.meta.json");
    CHECK(dir != NULL);
    CHECK_REFUSED(dir, NULL, AE_ERR_FORMAT, ": holds neither deeplog.onnx nor mscred.onnx");
}

AE_TEST(model_load_refuses_a_meta_whose_onnx_file_went_missing)
{
    const char *dir = copy_model("mscred.onnx");
    CHECK(dir != NULL);
    CHECK_REFUSED(dir, NULL, AE_ERR_IO, "/mscred.onnx: No such file or directory "
                  "(mscred.onnx.meta.json is there)");
}

AE_TEST(model_load_takes_a_directory_with_one_model)
{
    const char *dir = copy_model("deeplog.onnx deeplog.onnx.meta.json");
    CHECK(dir != NULL);
    ae_model *m = load(dir, NULL);
    CHECK(m != NULL);
    ae_model_info info;
    CHECK_STATUS(ae_model_info_get(m, &info), AE_OK);
    CHECK(!info.has_deeplog && info.has_mscred);
    ae_model_free(m);
}

AE_TEST(model_load_skips_the_models_the_params_leave_out)
{
    ae_model_params p = ae_model_default_params();
    p.load_mscred = 0;
    const char *dir = copy_model("mscred.onnx.meta.json"); /* a skipped model's meta is unread */
    CHECK(dir != NULL);
    ae_model *m = load(dir, &p);
    CHECK(m != NULL);
    ae_model_info info;
    CHECK_STATUS(ae_model_info_get(m, &info), AE_OK);
    CHECK(info.has_deeplog && !info.has_mscred);
    ae_model_free(m);
    p.load_deeplog = 0;
    CHECK_REFUSED(full(), &p, AE_ERR_INVALID_ARGUMENT, "skip every model");
}

AE_TEST(model_load_refuses_invalid_params)
{
    ae_model_params p = ae_model_default_params();
    p.session.intra_op_threads = 0;
    CHECK_REFUSED(full(), &p, AE_ERR_INVALID_ARGUMENT, "invalid model parameters");
    p = ae_model_default_params();
    p.top_k = -1;
    CHECK_REFUSED(full(), &p, AE_ERR_INVALID_ARGUMENT, "invalid model parameters");
    p = ae_model_default_params();
    p.mscred_threshold = NAN;
    CHECK_REFUSED(full(), &p, AE_ERR_INVALID_ARGUMENT, "invalid model parameters");
    ae_model *m = NULL;
    CHECK_STATUS(ae_model_load(NULL, NULL, &m, NULL, 0), AE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ae_model_load(full(), NULL, NULL, NULL, 0), AE_ERR_INVALID_ARGUMENT);
}

AE_TEST(model_load_refuses_an_onnx_file_without_its_meta)
{
    const char *dir = copy_model("deeplog.onnx.meta.json");
    CHECK(dir != NULL);
    CHECK_REFUSED(dir, NULL, AE_ERR_IO, "/deeplog.onnx.meta.json: No such file or directory");
}

AE_TEST(model_load_refuses_a_truncated_onnx_file_with_onnxruntimes_reason)
{
    const char *dir = copy_model("mscred.onnx");
    CHECK(dir != NULL);
    CHECK(copy_part("mscred.onnx", 100) == 0);
    CHECK_REFUSED(dir, NULL, AE_ERR_ONNXRUNTIME, "/mscred.onnx: ");
}

AE_TEST(model_load_refuses_an_empty_onnx_file)
{
    const char *dir = copy_model("deeplog.onnx");
    CHECK(dir != NULL);
    CHECK(copy_part("deeplog.onnx", 0) == 0);
    CHECK_REFUSED(dir, NULL, AE_ERR_ONNXRUNTIME, "/deeplog.onnx: ");
}

AE_TEST(model_load_refuses_a_meta_whose_vocab_size_disagrees)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("deeplog.onnx.meta.json", "\"vocab_size\": 6", "\"vocab_size\": 7") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/deeplog.onnx.meta.json: vocab_size is 7, but vocab.json has 5 templates "
                  "(expected 6: the templates and the unknown key)");
}

AE_TEST(model_load_refuses_a_meta_whose_feature_dim_disagrees)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("mscred.onnx.meta.json", "\"feature_dim\": 6", "\"feature_dim\": 5") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/mscred.onnx.meta.json: feature_dim is 5, but vocab.json has 5 templates");
}

AE_TEST(model_load_refuses_a_meta_whose_unk_index_is_not_the_template_count)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("deeplog.onnx.meta.json", "\"unk_index\": 5", "\"unk_index\": 0") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/deeplog.onnx.meta.json: unk_index is 0, but vocab.json has 5 templates "
                  "(expected 5)");
}

AE_TEST(model_load_refuses_a_meta_with_a_missing_field)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("deeplog.onnx.meta.json", "\"seq_len\"", "\"seq_length\"") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/deeplog.onnx.meta.json: seq_len is missing");
}

AE_TEST(model_load_refuses_a_meta_field_of_the_wrong_type)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("deeplog.onnx.meta.json", "\"top_k\": 2", "\"top_k\": \"2\"") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/deeplog.onnx.meta.json: top_k is a string, not an integer");
    CHECK(edit("deeplog.onnx.meta.json", "\"top_k\": \"2\"", "\"top_k\": 2.5") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT, "top_k is 2.5, not an integer");
    CHECK(edit("deeplog.onnx.meta.json", "\"top_k\": 2.5", "\"top_k\": 2") == 0);
    CHECK(edit("mscred.onnx.meta.json", "\"per_host\": true", "\"per_host\": 1") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/mscred.onnx.meta.json: counts.per_host is a number, not a boolean");
}

AE_TEST(model_load_refuses_the_meta_of_another_model_type)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("mscred.onnx.meta.json", "\"model_type\": \"mscred\"",
               "\"model_type\": \"deeplog\"") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/mscred.onnx.meta.json: model_type is \"deeplog\", expected \"mscred\"");
}

AE_TEST(model_load_refuses_a_meta_that_is_not_json)
{
    CHECK(copy_model(NULL) != NULL);
    ae_test_write_text("deeplog.onnx.meta.json", "{\"model_type\": ");
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/deeplog.onnx.meta.json: not valid JSON (line 1");
    ae_test_write_text("deeplog.onnx.meta.json", "[1, 2]");
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT, "expected a JSON object, found an array");
}

AE_TEST(model_load_refuses_a_window_that_disagrees_with_the_onnx_input)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("mscred.onnx.meta.json", "\"window_size\": 4", "\"window_size\": 5") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/mscred.onnx: \"input_features\" has 4 on axis 2, but the meta's "
                  "window_size is 5");
}

AE_TEST(model_load_refuses_seen_keys_outside_the_vocab)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("deeplog.onnx.meta.json", "    3\n  ]", "    9\n  ]") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/deeplog.onnx.meta.json: seen_keys[3] is not a key in 0..5");
}

AE_TEST(model_load_refuses_time_buckets_without_timestamps_in_parser_json)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("parser.json", "\"format\": \"ISO8601\"", "\"format\": null") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/mscred.onnx.meta.json: counts.bucket_seconds needs timestamps");
}

AE_TEST(model_load_refuses_counts_without_a_bucket_size)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("mscred.onnx.meta.json", "\"bucket_seconds\": 10.0", "\"bucket_seconds\": null") ==
          0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "counts has neither bucket_seconds nor a positive integer bucket_lines");
}

AE_TEST(model_load_reads_line_buckets)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("mscred.onnx.meta.json", "\"bucket_seconds\": 10.0", "\"bucket_seconds\": null") ==
          0);
    CHECK(edit("mscred.onnx.meta.json", "\"bucket_lines\": null", "\"bucket_lines\": 3") == 0);
    CHECK(edit("mscred.onnx.meta.json", "\"per_host\": true", "\"per_host\": false") == 0);
    ae_model *m = load(ae_test_tmpdir(), NULL);
    CHECK(m != NULL);
    ae_model_info info;
    CHECK_STATUS(ae_model_info_get(m, &info), AE_OK);
    CHECK(info.bucket_seconds == 0 && info.bucket_lines == 3 && info.per_host == 0);
    ae_model_free(m);
}

AE_TEST(model_load_refuses_a_parser_json_whose_fields_are_not_groups_of_its_format)
{
    CHECK(copy_model(NULL) != NULL);
    CHECK(edit("parser.json", "\"host_field\": \"Host\"", "\"host_field\": \"Node\"") == 0);
    CHECK_REFUSED(ae_test_tmpdir(), NULL, AE_ERR_FORMAT,
                  "/parser.json: host_field \"Node\" is not a group of line_regex");
}

AE_TEST(model_functions_take_null_without_harm)
{
    char why[512] = "";
    ae_model_free(NULL);
    ae_model_info info;
    CHECK_STATUS(ae_model_info_get(NULL, &info), AE_ERR_INVALID_ARGUMENT);
    CHECK(ae_model_vocab(NULL) == NULL);
    CHECK(ae_model_matcher(NULL) == NULL);
    ae_key_verdict v;
    CHECK_STATUS(ae_deeplog_score(NULL, NULL, 0, 0, &v, NULL, why, sizeof why), AE_ERR_INVALID_ARGUMENT);
    float score;
    CHECK_STATUS(ae_mscred_score(NULL, NULL, 0, &score, why, sizeof why), AE_ERR_INVALID_ARGUMENT);
}

/* ---------------------------------------------------------------------------------------------
 * DeepLog and MSCRED
 */

AE_TEST(model_reason_names_are_the_json_words)
{
    CHECK_STR(ae_reason_name(AE_REASON_NONE), "");
    CHECK_STR(ae_reason_name(AE_REASON_UNSEEN), "unseen");
    CHECK_STR(ae_reason_name(AE_REASON_TOP_K), "top_k");
    CHECK_STR(ae_reason_name(AE_REASON_SCORE), "score");
}

AE_TEST(model_deeplog_flags_unseen_keys_also_among_the_first_h)
{
    char why[512] = "";
    ae_model *m = load(full(), NULL);
    CHECK(m != NULL);
    const size_t keys[] = {4, 0, 5, 1};
    ae_key_verdict v[4];
    CHECK_STATUS(ae_deeplog_score(m, keys, 4, 0, v, NULL, why, sizeof why), AE_OK);
    CHECK(v[0].anomalous && v[0].reason == AE_REASON_UNSEEN && v[0].rank == -1);
    CHECK(isnan(v[0].probability));
    CHECK(!v[1].anomalous && v[1].reason == AE_REASON_NONE && v[1].rank == -1);
    CHECK(v[2].anomalous && v[2].reason == AE_REASON_UNSEEN); /* the unknown key */
    /* key 1 after [4, 0, 5]: logits 2/3 on key 0, 1/3 on key 1: rank 1 */
    CHECK(!v[3].anomalous && v[3].rank == 1);
    ae_model_free(m);
}

AE_TEST(model_deeplog_ranks_by_strictly_larger_logits_so_ties_share_a_rank)
{
    char why[512] = "";
    ae_model *m = load(full(), NULL);
    CHECK(m != NULL);
    /* After [0, 0, 1] the logits are 0, 2/3, 1/3, 0, 0, 0. */
    const size_t keys[][4] = {{0, 0, 1, 1}, {0, 0, 1, 2}, {0, 0, 1, 3}, {0, 0, 1, 0}};
    const int64_t ranks[] = {0, 1, 2, 2};
    double z = exp(2.0 / 3) + exp(1.0 / 3) + 4;
    const double probs[] = {exp(2.0 / 3) / z, exp(1.0 / 3) / z, 1 / z, 1 / z};
    for (size_t i = 0; i < 4; i++) {
        ae_key_verdict v[4];
        CHECK_STATUS(ae_deeplog_score(m, keys[i], 4, 0, v, NULL, why, sizeof why), AE_OK);
        CHECK(v[3].rank == ranks[i]);
        CHECK(fabs(v[3].probability - probs[i]) < 1e-6);
        /* top_k 2: ranks 0 and 1 are normal, rank 2 is not */
        CHECK(v[3].anomalous == (ranks[i] >= 2));
        CHECK(v[3].reason == (ranks[i] >= 2 ? AE_REASON_TOP_K : AE_REASON_NONE));
    }
    ae_model_free(m);
}

AE_TEST(model_deeplog_top_k_boundary_moves_with_the_params)
{
    char why[512] = "";
    ae_model_params p = ae_model_default_params();
    p.top_k = 3;
    ae_model *m = load(full(), &p);
    CHECK(m != NULL);
    const size_t keys[] = {0, 0, 1, 3};
    ae_key_verdict v[4];
    CHECK_STATUS(ae_deeplog_score(m, keys, 4, 0, v, NULL, why, sizeof why), AE_OK);
    CHECK(v[3].rank == 2 && !v[3].anomalous);
    ae_model_free(m);
}

AE_TEST(model_deeplog_gives_the_same_verdicts_in_any_batch_size)
{
    char why[512] = "";
    ae_model *m = load(full(), NULL);
    CHECK(m != NULL);
    size_t keys[97];
    for (size_t i = 0; i < 97; i++)
        keys[i] = (i * 7 + i / 5) % 6;
    ae_key_verdict ref[97], v[97];
    CHECK_STATUS(ae_deeplog_score(m, keys, 97, 1, ref, NULL, why, sizeof why), AE_OK);
    const size_t batches[] = {2, 3, 0, 1000, 94};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        CHECK_STATUS(ae_deeplog_score(m, keys, 97, batches[b], v, NULL, why, sizeof why), AE_OK);
        for (size_t i = 0; i < 97; i++) {
            CHECK(v[i].anomalous == ref[i].anomalous && v[i].reason == ref[i].reason);
            CHECK(v[i].rank == ref[i].rank);
            CHECK(i < 3 ? isnan(v[i].probability) : v[i].probability == ref[i].probability);
        }
    }
    ae_model_free(m);
}

AE_TEST(model_deeplog_refuses_a_key_above_the_unknown_key)
{
    char why[512] = "";
    ae_model *m = load(full(), NULL);
    CHECK(m != NULL);
    const size_t keys[] = {0, 6};
    ae_key_verdict v[2];
    CHECK_STATUS(ae_deeplog_score(m, keys, 2, 0, v, NULL, why, sizeof why), AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(why, "keys[1] is 6, above the unknown key 5");
    CHECK_STATUS(ae_deeplog_score(m, NULL, 0, 0, NULL, NULL, why, sizeof why), AE_OK);
    CHECK_STATUS(ae_deeplog_score(m, NULL, 2, 0, v, NULL, why, sizeof why), AE_ERR_INVALID_ARGUMENT);
    ae_model_free(m);
}

AE_TEST(model_deeplog_and_mscred_refuse_to_run_when_not_loaded)
{
    char why[512] = "";
    ae_model_params p = ae_model_default_params();
    p.load_deeplog = 0;
    ae_model *m = load(full(), &p);
    CHECK(m != NULL);
    const size_t keys[] = {0};
    ae_key_verdict v[1];
    CHECK_STATUS(ae_deeplog_score(m, keys, 1, 0, v, NULL, why, sizeof why), AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(why, "no DeepLog model");
    ae_model_free(m);
    p = ae_model_default_params();
    p.load_mscred = 0;
    m = load(full(), &p);
    CHECK(m != NULL);
    float counts[24] = {0}, score;
    CHECK_STATUS(ae_mscred_score(m, counts, 1, &score, why, sizeof why), AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(why, "no MSCRED model");
    ae_model_free(m);
}

AE_TEST(model_mscred_returns_the_models_score_of_each_window)
{
    char why[512] = "";
    ae_model *m = load(full(), NULL);
    CHECK(m != NULL);
    enum { N = 9, CELLS = 4 * 6 };
    float counts[N * CELLS], scores[N];
    for (size_t w = 0; w < N; w++)
        for (size_t c = 0; c < CELLS; c++)
            counts[w * CELLS + c] = (float)(c % 6 == w % 6); /* 4 cells per window, but ... */
    counts[5 * CELLS] = 10; /* ... window 5 has 10 more */
    CHECK_STATUS(ae_mscred_score(m, counts, N, scores, why, sizeof why), AE_OK);
    for (size_t w = 0; w < N; w++)
        CHECK(scores[w] == (w == 5 ? 14.0f : 4.0f));
    CHECK_STATUS(ae_mscred_score(m, NULL, 0, NULL, why, sizeof why), AE_OK);
    CHECK_STATUS(ae_mscred_score(m, NULL, 1, scores, why, sizeof why), AE_ERR_INVALID_ARGUMENT);
    ae_model_free(m);
}

#include "test_model_cases.h"
AE_TEST_MAIN()

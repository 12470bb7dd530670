/*
 * test_session.c - ONNX models opened, described and run through onnxruntime.
 *
 * The models are real ONNX files written at build time by make_onnx_fixtures.py into
 * AE_TEST_FIXTURES (a compile definition set by CMake).
 */
#include <stdio.h>
#include <string.h>

#include "ae_test.h"

#ifndef AE_TEST_FIXTURES
#error "AE_TEST_FIXTURES must name the folder written by make_onnx_fixtures.py"
#endif

static const char *fixture(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", AE_TEST_FIXTURES, name);
    return path;
}

static ae_session *open_fixture(const char *name)
{
    char err[512];
    ae_session *session = NULL;
    if (ae_session_open(fixture(name), NULL, &session, err, sizeof err) != AE_OK)
        fprintf(stderr, "opening %s: %s\n", name, err);
    return session;
}

static ae_tensor tensor(ae_dtype dtype, size_t rank, const int64_t *dims, void *data, size_t size)
{
    ae_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.rank = rank;
    for (size_t d = 0; d < rank; d++)
        t.dims[d] = dims[d];
    t.data = data;
    t.size = size;
    return t;
}

AE_TEST(session_default_params_run_on_one_thread)
{
    ae_session_params p = ae_session_default_params();
    CHECK(p.intra_op_threads == 1);
    CHECK(p.inter_op_threads == 1);
    CHECK(p.log_severity == 3);
}

AE_TEST(session_reports_the_onnxruntime_version_and_api_version)
{
    CHECK(strncmp(ae_onnxruntime_version(), "1.", 2) == 0);
    CHECK(ae_onnxruntime_api_version() >= 21);
}

AE_TEST(session_reports_the_inputs_and_outputs_of_a_model)
{
    ae_session *s = open_fixture("add.onnx");
    CHECK(s != NULL);
    CHECK_SIZE(ae_session_input_count(s), 2);
    CHECK_SIZE(ae_session_output_count(s), 1);
    const ae_tensor_info *a = ae_session_input(s, 0), *b = ae_session_input(s, 1);
    const ae_tensor_info *sum = ae_session_output(s, 0);
    CHECK(a != NULL && b != NULL && sum != NULL);
    CHECK_STR(a->name, "a");
    CHECK_STR(b->name, "b");
    CHECK_STR(sum->name, "sum");
    CHECK(a->dtype == AE_DTYPE_FLOAT32 && sum->dtype == AE_DTYPE_FLOAT32);
    CHECK_SIZE(a->rank, 1);
    CHECK(a->dims[0] == AE_DIM_DYNAMIC);
    CHECK_STR(a->dim_names[0], "n");
    CHECK(ae_session_input(s, 2) == NULL);
    CHECK(ae_session_output(s, 1) == NULL);
    CHECK_STR(ae_session_errmsg(s), "");
    ae_session_free(s);
}

AE_TEST(session_reports_fixed_and_named_axes)
{
    ae_session *s = open_fixture("model_dir/deeplog.onnx");
    CHECK(s != NULL);
    const ae_tensor_info *in = ae_session_input(s, 0), *out = ae_session_output(s, 0);
    CHECK_STR(in->name, "input_sequence");
    CHECK(in->dtype == AE_DTYPE_INT64);
    CHECK_SIZE(in->rank, 2);
    CHECK_STR(in->dim_names[0], "batch_size");
    CHECK_STR(in->dim_names[1], "sequence_length");
    CHECK_STR(out->name, "predictions");
    CHECK_SIZE(out->rank, 2);
    CHECK(out->dims[0] == AE_DIM_DYNAMIC);
    CHECK(out->dims[1] == 3);
    CHECK_STR(out->dim_names[1], "");
    CHECK_STR(ae_dtype_name(in->dtype), "int64");
    CHECK_STR(ae_dtype_name(out->dtype), "float32");
    ae_session_free(s);
}

AE_TEST(session_runs_a_model_and_copies_its_outputs)
{
    ae_session *s = open_fixture("add.onnx");
    CHECK(s != NULL);
    float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, sum[4] = {0, 0, 0, -1};
    const int64_t n[1] = {3};
    ae_tensor inputs[2] = {tensor(AE_DTYPE_FLOAT32, 1, n, a, sizeof a),
                           tensor(AE_DTYPE_FLOAT32, 1, n, b, sizeof b)};
    ae_tensor output = tensor(AE_DTYPE_UNSUPPORTED, 0, n, sum, sizeof sum);
    CHECK_STATUS(ae_session_run(s, inputs, 2, &output, 1), AE_OK);
    CHECK(output.dtype == AE_DTYPE_FLOAT32);
    CHECK_SIZE(output.rank, 1);
    CHECK(output.dims[0] == 3);
    CHECK(sum[0] == 11 && sum[1] == 22 && sum[2] == 33 && sum[3] == -1);
    CHECK(a[0] == 1 && b[2] == 30);
    ae_session_free(s);
}

AE_TEST(session_runs_a_model_on_int64_keys)
{
    ae_session *s = open_fixture("model_dir/deeplog.onnx");
    CHECK(s != NULL);
    int64_t keys[2][3] = {{0, 1, 2}, {2, 2, 2}};
    float logits[2][3];
    const int64_t dims[2] = {2, 3};
    ae_tensor in = tensor(AE_DTYPE_INT64, 2, dims, keys, sizeof keys);
    ae_tensor out = tensor(AE_DTYPE_FLOAT32, 0, dims, logits, sizeof logits);
    CHECK_STATUS(ae_session_run(s, &in, 1, &out, 1), AE_OK);
    CHECK(out.dims[0] == 2 && out.dims[1] == 3);
    const float expected[2][3] = {{10, 11, 12}, {20, 21, 22}};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            CHECK(logits[i][j] > expected[i][j] - 1e-5f && logits[i][j] < expected[i][j] + 1e-5f);
    ae_session_free(s);
}

AE_TEST(session_runs_a_model_with_two_outputs)
{
    ae_session *s = open_fixture("model_dir/mscred.onnx");
    CHECK(s != NULL);
    CHECK_SIZE(ae_session_output_count(s), 2);
    float features[2][1][5][3], reconstruction[2][1][5][3], score[2];
    for (int b = 0; b < 2; b++)
        for (int w = 0; w < 5; w++)
            for (int f = 0; f < 3; f++)
                features[b][0][w][f] = (float)(b + 1);
    const int64_t dims[4] = {2, 1, 5, 3};
    ae_tensor in = tensor(AE_DTYPE_FLOAT32, 4, dims, features, sizeof features);
    ae_tensor out[2] = {tensor(AE_DTYPE_FLOAT32, 0, dims, reconstruction, sizeof reconstruction),
                        tensor(AE_DTYPE_FLOAT32, 0, dims, score, sizeof score)};
    CHECK_STATUS(ae_session_run(s, &in, 1, out, 2), AE_OK);
    CHECK_SIZE(out[0].rank, 4);
    CHECK_SIZE(out[1].rank, 1);
    CHECK(out[1].dims[0] == 2);
    CHECK(memcmp(reconstruction, features, sizeof features) == 0);
    CHECK(score[0] == 15.0f && score[1] == 30.0f);
    ae_session_free(s);
}

AE_TEST(session_rejects_an_input_of_the_wrong_type)
{
    ae_session *s = open_fixture("model_dir/deeplog.onnx");
    CHECK(s != NULL);
    float keys[3] = {0, 1, 2}, logits[3];
    const int64_t dims[2] = {1, 3};
    ae_tensor in = tensor(AE_DTYPE_FLOAT32, 2, dims, keys, sizeof keys);
    ae_tensor out = tensor(AE_DTYPE_FLOAT32, 0, dims, logits, sizeof logits);
    CHECK_STATUS(ae_session_run(s, &in, 1, &out, 1), AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(ae_session_errmsg(s), "input \"input_sequence\": expected int64, got float32");
    ae_session_free(s);
}

AE_TEST(session_rejects_a_wrong_number_of_inputs_or_outputs)
{
    ae_session *s = open_fixture("add.onnx");
    CHECK(s != NULL);
    float a[1] = {1}, sum[1];
    const int64_t n[1] = {1};
    ae_tensor in = tensor(AE_DTYPE_FLOAT32, 1, n, a, sizeof a);
    ae_tensor out = tensor(AE_DTYPE_FLOAT32, 0, n, sum, sizeof sum);
    CHECK_STATUS(ae_session_run(s, &in, 1, &out, 1), AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(ae_session_errmsg(s), "the model has 2 inputs and 1 outputs, got 1 and 1");
    ae_session_free(s);
}

AE_TEST(session_rejects_an_input_whose_fixed_axis_differs)
{
    ae_session *s = open_fixture("model_dir/mscred.onnx");
    CHECK(s != NULL);
    float features[4 * 3] = {0}, reconstruction[4 * 3], score[1];
    const int64_t dims[4] = {1, 1, 4, 3};
    ae_tensor in = tensor(AE_DTYPE_FLOAT32, 4, dims, features, sizeof features);
    ae_tensor out[2] = {tensor(AE_DTYPE_FLOAT32, 0, dims, reconstruction, sizeof reconstruction),
                        tensor(AE_DTYPE_FLOAT32, 0, dims, score, sizeof score)};
    CHECK_STATUS(ae_session_run(s, &in, 1, out, 2), AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(ae_session_errmsg(s), "axis 2 must be 5, got 4");
    ae_session_free(s);
}

AE_TEST(session_rejects_an_input_whose_size_does_not_match_its_shape)
{
    ae_session *s = open_fixture("add.onnx");
    CHECK(s != NULL);
    float a[3] = {1, 2, 3}, sum[3];
    const int64_t n[1] = {3};
    ae_tensor inputs[2] = {tensor(AE_DTYPE_FLOAT32, 1, n, a, sizeof a),
                           tensor(AE_DTYPE_FLOAT32, 1, n, a, 2 * sizeof(float))};
    ae_tensor out = tensor(AE_DTYPE_FLOAT32, 0, n, sum, sizeof sum);
    CHECK_STATUS(ae_session_run(s, inputs, 2, &out, 1), AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(ae_session_errmsg(s), "input \"b\": 8 bytes given for its shape, which needs 12");
    ae_session_free(s);
}

AE_TEST(session_rejects_an_output_buffer_that_is_too_small)
{
    ae_session *s = open_fixture("add.onnx");
    CHECK(s != NULL);
    float a[3] = {1, 2, 3}, sum[2] = {-1, -1};
    const int64_t n[1] = {3};
    ae_tensor inputs[2] = {tensor(AE_DTYPE_FLOAT32, 1, n, a, sizeof a),
                           tensor(AE_DTYPE_FLOAT32, 1, n, a, sizeof a)};
    ae_tensor out = tensor(AE_DTYPE_FLOAT32, 0, n, sum, sizeof sum);
    CHECK_STATUS(ae_session_run(s, inputs, 2, &out, 1), AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(ae_session_errmsg(s), "output \"sum\" needs 12 bytes, the buffer has 8");
    CHECK(sum[0] == -1 && sum[1] == -1);
    ae_session_free(s);
}

AE_TEST(session_turns_an_onnxruntime_failure_during_a_run_into_a_message)
{
    ae_session *s = open_fixture("add.onnx");
    CHECK(s != NULL);
    float a[3] = {1, 2, 3}, b[2] = {1, 2}, sum[3];
    const int64_t n3[1] = {3}, n2[1] = {2};
    ae_tensor inputs[2] = {tensor(AE_DTYPE_FLOAT32, 1, n3, a, sizeof a),
                           tensor(AE_DTYPE_FLOAT32, 1, n2, b, sizeof b)};
    ae_tensor out = tensor(AE_DTYPE_FLOAT32, 0, n3, sum, sizeof sum);
    CHECK_STATUS(ae_session_run(s, inputs, 2, &out, 1), AE_ERR_ONNXRUNTIME);
    CHECK_CONTAINS(ae_session_errmsg(s), "run: ");
    CHECK(strchr(ae_session_errmsg(s), '\n') == NULL);
    /* The session stays usable after a failed run. */
    inputs[1] = tensor(AE_DTYPE_FLOAT32, 1, n3, a, sizeof a);
    CHECK_STATUS(ae_session_run(s, inputs, 2, &out, 1), AE_OK);
    CHECK(sum[2] == 6);
    CHECK_STR(ae_session_errmsg(s), "");
    ae_session_free(s);
}

AE_TEST(session_fails_with_the_path_on_a_missing_model)
{
    char err[512];
    ae_session *s = (ae_session *)err; /* must be reset to NULL */
    CHECK_STATUS(ae_session_open(fixture("no-such-model.onnx"), NULL, &s, err, sizeof err),
                 AE_ERR_IO);
    CHECK(s == NULL);
    CHECK_CONTAINS(err, "no-such-model.onnx: No such file or directory");
}

AE_TEST(session_fails_with_the_onnxruntime_message_on_a_file_that_is_not_a_model)
{
    char err[512];
    ae_session *s = NULL;
    const char *path = ae_test_write_text("broken.onnx", "this is not a protobuf");
    CHECK_STATUS(ae_session_open(path, NULL, &s, err, sizeof err), AE_ERR_ONNXRUNTIME);
    CHECK(s == NULL);
    CHECK_CONTAINS(err, path);
    CHECK(strlen(err) > strlen(path) + 2);
    CHECK(strchr(err, '\n') == NULL);
}

AE_TEST(session_rejects_invalid_parameters)
{
    char err[512];
    ae_session *s = NULL;
    ae_session_params p = ae_session_default_params();
    p.intra_op_threads = 0;
    CHECK_STATUS(ae_session_open(fixture("add.onnx"), &p, &s, err, sizeof err),
                 AE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(err, "invalid session parameters");
    p = ae_session_default_params();
    p.log_severity = 5;
    CHECK_STATUS(ae_session_open(fixture("add.onnx"), &p, &s, err, sizeof err),
                 AE_ERR_INVALID_ARGUMENT);
}

AE_TEST(session_opens_models_side_by_side_with_their_own_environments)
{
    ae_session_params p = ae_session_default_params();
    p.intra_op_threads = 2;
    char err[512];
    ae_session *a = NULL, *b = NULL;
    CHECK_STATUS(ae_session_open(fixture("model_dir/deeplog.onnx"), &p, &a, err, sizeof err),
                 AE_OK);
    CHECK_STATUS(ae_session_open(fixture("model_dir/mscred.onnx"), NULL, &b, err, sizeof err),
                 AE_OK);
    CHECK_STR(ae_session_input(a, 0)->name, "input_sequence");
    CHECK_STR(ae_session_input(b, 0)->name, "input_features");
    ae_session_free(a);
    CHECK_STR(ae_session_output(b, 1)->name, "anomaly_score");
    ae_session_free(b);
}

AE_TEST(session_functions_accept_null_handles)
{
    ae_session_free(NULL);
    CHECK_SIZE(ae_session_input_count(NULL), 0);
    CHECK_SIZE(ae_session_output_count(NULL), 0);
    CHECK(ae_session_input(NULL, 0) == NULL);
    CHECK_STR(ae_session_errmsg(NULL), "");
    CHECK_STATUS(ae_session_run(NULL, NULL, 0, NULL, 0), AE_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ae_session_open(fixture("add.onnx"), NULL, NULL, NULL, 0),
                 AE_ERR_INVALID_ARGUMENT);
    CHECK_SIZE(ae_dtype_size(AE_DTYPE_UNSUPPORTED), 0);
    CHECK_STR(ae_dtype_name(AE_DTYPE_UNSUPPORTED), "unsupported");
}

#include "test_session_cases.h"
AE_TEST_MAIN()

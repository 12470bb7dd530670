/*
 * ortsession.c - an ONNX model loaded into onnxruntime through its C API.
 *
 * Each session owns its OrtEnv, options and CPU memory info: no global state. Every OrtStatus is
 * turned into an ae_status plus a message and released.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <onnxruntime_c_api.h>

#include "ortsession_impl.h"


const char *ae_onnxruntime_version(void)
{
    return OrtGetApiBase()->GetVersionString();
}

int ae_onnxruntime_api_version(void)
{
    return ORT_API_VERSION;
}

ae_session_params ae_session_default_params(void)
{
    ae_session_params params;
    params.intra_op_threads = 1;
    params.inter_op_threads = 1;
    params.log_severity = 3;
    return params;
}

const char *ae_dtype_name(ae_dtype dtype)
{
    switch (dtype) {
    case AE_DTYPE_FLOAT32: return "float32";
    case AE_DTYPE_FLOAT64: return "float64";
    case AE_DTYPE_INT64: return "int64";
    case AE_DTYPE_INT32: return "int32";
    case AE_DTYPE_INT8: return "int8";
    case AE_DTYPE_UINT8: return "uint8";
    case AE_DTYPE_BOOL: return "bool";
    case AE_DTYPE_UNSUPPORTED: break;
    }
    return "unsupported";
}

size_t ae_dtype_size(ae_dtype dtype)
{
    switch (dtype) {
    case AE_DTYPE_FLOAT32: return 4;
    case AE_DTYPE_FLOAT64: return 8;
    case AE_DTYPE_INT64: return 8;
    case AE_DTYPE_INT32: return 4;
    case AE_DTYPE_INT8: return 1;
    case AE_DTYPE_UINT8: return 1;
    case AE_DTYPE_BOOL: return 1;
    case AE_DTYPE_UNSUPPORTED: break;
    }
    return 0;
}

static ae_dtype from_ort(ONNXTensorElementDataType type)
{
    switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return AE_DTYPE_FLOAT32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return AE_DTYPE_FLOAT64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return AE_DTYPE_INT64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return AE_DTYPE_INT32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return AE_DTYPE_INT8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return AE_DTYPE_UINT8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return AE_DTYPE_BOOL;
    default: return AE_DTYPE_UNSUPPORTED;
    }
}

ONNXTensorElementDataType to_ort(ae_dtype dtype)
{
    switch (dtype) {
    case AE_DTYPE_FLOAT32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case AE_DTYPE_FLOAT64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
    case AE_DTYPE_INT64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case AE_DTYPE_INT32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case AE_DTYPE_INT8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case AE_DTYPE_UINT8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case AE_DTYPE_BOOL: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case AE_DTYPE_UNSUPPORTED: break;
    }
    return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

/*
 * Turn an OrtStatus into a message ("<prefix>: <onnxruntime's text>") and release it.
 * @return AE_OK for a NULL status, AE_ERR_ONNXRUNTIME otherwise.
 */
ae_status ort_check(const OrtApi *api, OrtStatus *st, char *err, size_t err_len,
                    const char *prefix)
{
    if (st == NULL)
        return AE_OK;
    const char *msg = api->GetErrorMessage(st);
    /* onnxruntime's messages may end with a newline: keep the message to one line. */
    size_t len = strcspn(msg, "\r\n");
    ae_fail(AE_ERR_ONNXRUNTIME, err, err_len, "%s: %.*s", prefix, (int)len, msg);
    api->ReleaseStatus(st);
    return AE_ERR_ONNXRUNTIME;
}

static void free_infos(ae_tensor_info *infos, size_t n)
{
    for (size_t i = 0; infos != NULL && i < n; i++) {
        free((char *)infos[i].name);
        for (size_t d = 0; d < AE_TENSOR_MAX_RANK; d++)
            if (infos[i].dim_names[d] != NULL && infos[i].dim_names[d][0] != '\0')
                free((char *)infos[i].dim_names[d]);
    }
    free(infos);
}

void ae_session_free(ae_session *s)
{
    if (s == NULL)
        return;
    if (s->session != NULL)
        s->api->ReleaseSession(s->session);
    if (s->cpu != NULL)
        s->api->ReleaseMemoryInfo(s->cpu);
    if (s->env != NULL)
        s->api->ReleaseEnv(s->env);
    free_infos(s->inputs, s->n_inputs);
    free_infos(s->outputs, s->n_outputs);
    free(s->input_names);
    free(s->output_names);
    free(s);
}

static char *dup_string(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (copy != NULL)
        memcpy(copy, s, len);
    return copy;
}

/* Describe input (is_input) or output `index` into *info. */
static ae_status describe(ae_session *s, int is_input, size_t index, ae_tensor_info *info,
                          const char *path, char *err, size_t err_len)
{
    const OrtApi *api = s->api;
    OrtAllocator *allocator = NULL;
    ae_status status = ort_check(api, api->GetAllocatorWithDefaultOptions(&allocator), err,
                                 err_len, path);
    if (status != AE_OK)
        return status;
    for (size_t d = 0; d < AE_TENSOR_MAX_RANK; d++)
        info->dim_names[d] = "";

    char *name = NULL;
    status = ort_check(api,
                       is_input ? api->SessionGetInputName(s->session, index, allocator, &name)
                                : api->SessionGetOutputName(s->session, index, allocator, &name),
                       err, err_len, path);
    if (status != AE_OK)
        return status;
    info->name = dup_string(name);
    OrtStatus *freed = api->AllocatorFree(allocator, name);
    if (freed != NULL)
        api->ReleaseStatus(freed);
    if (info->name == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", path);

    OrtTypeInfo *type_info = NULL;
    status = ort_check(api,
                       is_input ? api->SessionGetInputTypeInfo(s->session, index, &type_info)
                                : api->SessionGetOutputTypeInfo(s->session, index, &type_info),
                       err, err_len, path);
    if (status != AE_OK)
        return status;
    const OrtTensorTypeAndShapeInfo *tensor = NULL;
    status = ort_check(api, api->CastTypeInfoToTensorInfo(type_info, &tensor), err, err_len, path);
    if (status == AE_OK && tensor == NULL) {
        /* A sequence or map: the runtime's models only have tensors. */
        info->dtype = AE_DTYPE_UNSUPPORTED;
        info->rank = 0;
        api->ReleaseTypeInfo(type_info);
        return AE_OK;
    }
    ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    size_t rank = 0;
    if (status == AE_OK)
        status = ort_check(api, api->GetTensorElementType(tensor, &type), err, err_len, path);
    if (status == AE_OK)
        status = ort_check(api, api->GetDimensionsCount(tensor, &rank), err, err_len, path);
    if (status == AE_OK && rank > AE_TENSOR_MAX_RANK)
        status = ae_fail(AE_ERR_TOO_LARGE, err, err_len,
                         "%s: %s \"%s\" has rank %zu (at most %d is supported)", path,
                         is_input ? "input" : "output", info->name, rank, AE_TENSOR_MAX_RANK);
    const char *symbolic[AE_TENSOR_MAX_RANK] = {0};
    if (status == AE_OK && rank > 0)
        status = ort_check(api, api->GetDimensions(tensor, info->dims, rank), err, err_len, path);
    if (status == AE_OK && rank > 0)
        status = ort_check(api, api->GetSymbolicDimensions(tensor, symbolic, rank), err, err_len,
                           path);
    if (status == AE_OK) {
        info->dtype = from_ort(type);
        info->rank = rank;
        for (size_t d = 0; d < rank; d++) {
            if (info->dims[d] < 0)
                info->dims[d] = AE_DIM_DYNAMIC;
            if (symbolic[d] != NULL && symbolic[d][0] != '\0') {
                char *copy = dup_string(symbolic[d]);
                if (copy == NULL) {
                    status = ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", path);
                    break;
                }
                info->dim_names[d] = copy;
            }
        }
    }
    api->ReleaseTypeInfo(type_info);
    return status;
}

/* onnxruntime's own log lines would come before (and repeat) our one error line: every failure
 * also comes back as an OrtStatus, whose text the caller's message carries. */
static void ORT_API_CALL drop_ort_log(void *param, OrtLoggingLevel severity, const char *category,
                                      const char *logid, const char *code_location,
                                      const char *message)
{
    (void)param;
    (void)severity;
    (void)category;
    (void)logid;
    (void)code_location;
    (void)message;
}

ae_status ae_session_open(const char *path, const ae_session_params *params, ae_session **out,
                          char *err, size_t err_len)
{
    return ae_session_open_tuned(path, params, NULL, out, err, err_len);
}

ae_status ae_session_open_tuned(const char *path, const ae_session_params *params,
                                const ae_session_tuning *tuning, ae_session **out, char *err,
                                size_t err_len)
{
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (out == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "ae_session_open: out is NULL");
    *out = NULL;
    if (path == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "ae_session_open: path is NULL");
    ae_session_params p = params != NULL ? *params : ae_session_default_params();
    if (p.intra_op_threads < 1 || p.inter_op_threads < 1 || p.log_severity < 0 ||
        p.log_severity > 4)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len,
                       "%s: invalid session parameters (threads must be >= 1, log severity 0..4)",
                       path);

    /* onnxruntime's message for a missing file is long-winded: check the file first. */
    ae_status status = ae_check_regular_file(path, err, err_len);
    if (status != AE_OK)
        return status;

    const OrtApi *api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    if (api == NULL)
        return ae_fail(AE_ERR_ONNXRUNTIME, err, err_len,
                       "%s: onnxruntime %s does not provide C API version %d", path,
                       ae_onnxruntime_version(), ORT_API_VERSION);

    ae_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", path);
    s->api = api;
    OrtSessionOptions *options = NULL;
    status = ort_check(api, api->CreateEnvWithCustomLogger(drop_ort_log, NULL,
                                                           (OrtLoggingLevel)p.log_severity,
                                                           "alog-edge", &s->env),
                       err, err_len, path);
    if (status == AE_OK)
        status = ort_check(api, api->CreateSessionOptions(&options), err, err_len, path);
    if (status == AE_OK)
        status = ort_check(api, api->SetIntraOpNumThreads(options, p.intra_op_threads), err,
                           err_len, path);
    if (status == AE_OK)
        status = ort_check(api, api->SetInterOpNumThreads(options, p.inter_op_threads), err,
                           err_len, path);
    if (status == AE_OK)
        status = ort_check(api,
                           api->SetSessionGraphOptimizationLevel(
                               options, tuning != NULL && tuning->preoptimized ? ORT_DISABLE_ALL
                                                                               : ORT_ENABLE_ALL),
                           err, err_len, path);
    if (status == AE_OK && tuning != NULL && !tuning->cpu_arena)
        status = ort_check(api, api->DisableCpuMemArena(options), err, err_len, path);
    if (status == AE_OK && tuning != NULL && !tuning->mem_pattern)
        status = ort_check(api, api->DisableMemPattern(options), err, err_len, path);
    if (status == AE_OK && tuning != NULL && !tuning->spinning)
        status = ort_check(api,
                           api->AddSessionConfigEntry(options, "session.intra_op.allow_spinning",
                                                      "0"),
                           err, err_len, path);
    if (status == AE_OK && tuning != NULL && !tuning->spinning)
        status = ort_check(api,
                           api->AddSessionConfigEntry(options, "session.inter_op.allow_spinning",
                                                      "0"),
                           err, err_len, path);
    if (status == AE_OK && tuning != NULL && !tuning->prepacking)
        status = ort_check(api,
                           api->AddSessionConfigEntry(options, "session.disable_prepacking", "1"),
                           err, err_len, path);
    if (status == AE_OK)
        status = ort_check(api, api->CreateSession(s->env, path, options, &s->session), err,
                           err_len, path);
    if (options != NULL)
        api->ReleaseSessionOptions(options);
    if (status == AE_OK)
        status = ort_check(api,
                           api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &s->cpu),
                           err, err_len, path);
    if (status == AE_OK)
        status = ort_check(api, api->SessionGetInputCount(s->session, &s->n_inputs), err,
                           err_len, path);
    if (status == AE_OK)
        status = ort_check(api, api->SessionGetOutputCount(s->session, &s->n_outputs), err,
                           err_len, path);
    if (status != AE_OK) {
        ae_session_free(s);
        return status;
    }

    /* +1: calloc(0) may return NULL. */
    s->inputs = calloc(s->n_inputs + 1, sizeof *s->inputs);
    s->outputs = calloc(s->n_outputs + 1, sizeof *s->outputs);
    s->input_names = calloc(s->n_inputs + 1, sizeof *s->input_names);
    s->output_names = calloc(s->n_outputs + 1, sizeof *s->output_names);
    if (s->inputs == NULL || s->outputs == NULL || s->input_names == NULL ||
        s->output_names == NULL) {
        ae_session_free(s);
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", path);
    }
    for (size_t i = 0; i < s->n_inputs + s->n_outputs && status == AE_OK; i++) {
        int is_input = i < s->n_inputs;
        size_t index = is_input ? i : i - s->n_inputs;
        ae_tensor_info *info = is_input ? &s->inputs[index] : &s->outputs[index];
        status = describe(s, is_input, index, info, path, err, err_len);
        if (status == AE_OK)
            (is_input ? s->input_names : s->output_names)[index] = info->name;
    }
    if (status != AE_OK) {
        ae_session_free(s);
        return status;
    }
    *out = s;
    return AE_OK;
}

size_t ae_session_input_count(const ae_session *s)
{
    return s == NULL ? 0 : s->n_inputs;
}

size_t ae_session_output_count(const ae_session *s)
{
    return s == NULL ? 0 : s->n_outputs;
}

const ae_tensor_info *ae_session_input(const ae_session *s, size_t index)
{
    return s == NULL || index >= s->n_inputs ? NULL : &s->inputs[index];
}

const ae_tensor_info *ae_session_output(const ae_session *s, size_t index)
{
    return s == NULL || index >= s->n_outputs ? NULL : &s->outputs[index];
}

const char *ae_session_errmsg(const ae_session *s)
{
    return s == NULL ? "" : s->errmsg;
}

/* Number of elements of a shape; 0 with *ok = 0 on a negative dim or an overflow. */
size_t element_count(const int64_t *dims, size_t rank, int *ok)
{
    size_t count = 1;
    *ok = 1;
    for (size_t d = 0; d < rank; d++) {
        if (dims[d] < 0 || (dims[d] > 0 && count > SIZE_MAX / (size_t)dims[d])) {
            *ok = 0;
            return 0;
        }
        count *= (size_t)dims[d];
    }
    return count;
}

/* Check input i against the model's declaration and wrap it in an OrtValue (no copy). */
static ae_status make_input(ae_session *s, size_t i, const ae_tensor *t, OrtValue **value)
{
    const ae_tensor_info *info = &s->inputs[i];
    if (t->dtype != info->dtype || info->dtype == AE_DTYPE_UNSUPPORTED)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, s->errmsg, sizeof s->errmsg,
                       "input \"%s\": expected %s, got %s", info->name,
                       ae_dtype_name(info->dtype), ae_dtype_name(t->dtype));
    if (t->rank != info->rank)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, s->errmsg, sizeof s->errmsg,
                       "input \"%s\": expected rank %zu, got %zu", info->name, info->rank,
                       t->rank);
    for (size_t d = 0; d < t->rank; d++) {
        if (info->dims[d] != AE_DIM_DYNAMIC && info->dims[d] != t->dims[d])
            return ae_fail(AE_ERR_INVALID_ARGUMENT, s->errmsg, sizeof s->errmsg,
                           "input \"%s\": axis %zu must be %lld, got %lld", info->name, d,
                           (long long)info->dims[d], (long long)t->dims[d]);
    }
    int ok = 0;
    size_t count = element_count(t->dims, t->rank, &ok);
    size_t elem = ae_dtype_size(t->dtype);
    if (!ok || count > SIZE_MAX / elem || count * elem != t->size || (t->data == NULL && count))
        return ae_fail(AE_ERR_INVALID_ARGUMENT, s->errmsg, sizeof s->errmsg,
                       "input \"%s\": %zu bytes given for its shape, which needs %zu",
                       info->name, t->size, ok ? count * elem : 0);
    return ort_check(s->api,
                     s->api->CreateTensorWithDataAsOrtValue(s->cpu, t->data, t->size, t->dims,
                                                            t->rank, to_ort(t->dtype), value),
                     s->errmsg, sizeof s->errmsg, info->name);
}

/* Copy output i of a run into the caller's tensor. */
static ae_status take_output(ae_session *s, size_t i, OrtValue *value, ae_tensor *t)
{
    const OrtApi *api = s->api;
    const char *name = s->outputs[i].name;
    OrtTensorTypeAndShapeInfo *shape = NULL;
    ae_status status = ort_check(api, api->GetTensorTypeAndShape(value, &shape), s->errmsg,
                                 sizeof s->errmsg, name);
    if (status != AE_OK)
        return status;
    ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    size_t rank = 0;
    status = ort_check(api, api->GetTensorElementType(shape, &type), s->errmsg, sizeof s->errmsg,
                       name);
    if (status == AE_OK)
        status = ort_check(api, api->GetDimensionsCount(shape, &rank), s->errmsg,
                           sizeof s->errmsg, name);
    if (status == AE_OK && rank > AE_TENSOR_MAX_RANK)
        status = ae_fail(AE_ERR_TOO_LARGE, s->errmsg, sizeof s->errmsg,
                         "output \"%s\" has rank %zu", name, rank);
    if (status == AE_OK && rank > 0)
        status = ort_check(api, api->GetDimensions(shape, t->dims, rank), s->errmsg,
                           sizeof s->errmsg, name);
    api->ReleaseTensorTypeAndShapeInfo(shape);
    if (status != AE_OK)
        return status;
    t->dtype = from_ort(type);
    t->rank = rank;
    if (t->dtype == AE_DTYPE_UNSUPPORTED)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, s->errmsg, sizeof s->errmsg,
                       "output \"%s\" has an unsupported element type", name);
    int ok = 0;
    size_t count = element_count(t->dims, rank, &ok);
    size_t bytes = count * ae_dtype_size(t->dtype);
    if (!ok || bytes > t->size || (t->data == NULL && bytes > 0))
        return ae_fail(AE_ERR_INVALID_ARGUMENT, s->errmsg, sizeof s->errmsg,
                       "output \"%s\" needs %zu bytes, the buffer has %zu", name, bytes, t->size);
    void *src = NULL;
    status = ort_check(api, api->GetTensorMutableData(value, &src), s->errmsg, sizeof s->errmsg,
                       name);
    if (status == AE_OK && bytes > 0)
        memcpy(t->data, src, bytes);
    return status;
}

ae_status ae_session_run(ae_session *s, const ae_tensor *inputs, size_t n_inputs,
                         ae_tensor *outputs, size_t n_outputs)
{
    if (s == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    s->errmsg[0] = '\0';
    if ((inputs == NULL && n_inputs > 0) || (outputs == NULL && n_outputs > 0))
        return ae_fail(AE_ERR_INVALID_ARGUMENT, s->errmsg, sizeof s->errmsg,
                       "inputs or outputs is NULL");
    if (n_inputs != s->n_inputs || n_outputs != s->n_outputs)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, s->errmsg, sizeof s->errmsg,
                       "the model has %zu inputs and %zu outputs, got %zu and %zu", s->n_inputs,
                       s->n_outputs, n_inputs, n_outputs);
    OrtValue **in = calloc(n_inputs + 1, sizeof *in);
    OrtValue **out = calloc(n_outputs + 1, sizeof *out);
    ae_status status = AE_OK;
    if (in == NULL || out == NULL)
        status = ae_fail(AE_ERR_NO_MEMORY, s->errmsg, sizeof s->errmsg, "out of memory");
    for (size_t i = 0; i < n_inputs && status == AE_OK; i++)
        status = make_input(s, i, &inputs[i], &in[i]);
    if (status == AE_OK)
        status = ort_check(s->api,
                           s->api->Run(s->session, NULL, s->input_names,
                                       (const OrtValue *const *)in, n_inputs, s->output_names,
                                       n_outputs, out),
                           s->errmsg, sizeof s->errmsg, "run");
    for (size_t i = 0; i < n_outputs && status == AE_OK; i++)
        status = take_output(s, i, out[i], &outputs[i]);
    for (size_t i = 0; in != NULL && i < n_inputs; i++)
        if (in[i] != NULL)
            s->api->ReleaseValue(in[i]);
    for (size_t i = 0; out != NULL && i < n_outputs; i++)
        if (out[i] != NULL)
            s->api->ReleaseValue(out[i]);
    free(in);
    free(out);
    return status;
}

/*
 * ortsession_impl.h - an onnxruntime session's state, shared by ortsession.c (loading, plain
 * runs) and ortbound.c (bound runs). Not part of the public API.
 */
#ifndef ALOG_EDGE_ORTSESSION_IMPL_H
#define ALOG_EDGE_ORTSESSION_IMPL_H

#include <onnxruntime_c_api.h>

#include "internal.h"

struct ae_session {
    const OrtApi *api;
    OrtEnv *env;
    OrtSession *session;
    OrtMemoryInfo *cpu;
    size_t n_inputs, n_outputs;
    ae_tensor_info *inputs, *outputs;
    const char **input_names, **output_names; /* the same strings, as onnxruntime wants them */
    char errmsg[512];
};

/*
 * Turn an OrtStatus into a message ("<prefix>: <onnxruntime's text>") and release it.
 * @return AE_OK for a NULL status, AE_ERR_ONNXRUNTIME otherwise.
 */
ae_status ort_check(const OrtApi *api, OrtStatus *st, char *err, size_t err_len,
                    const char *prefix);

/* onnxruntime's element type of a dtype. @return it, or UNDEFINED. */
ONNXTensorElementDataType to_ort(ae_dtype dtype);

/* Number of elements of a shape. @return it; 0 with *ok = 0 on a negative dim or an overflow. */
size_t element_count(const int64_t *dims, size_t rank, int *ok);

#endif /* ALOG_EDGE_ORTSESSION_IMPL_H */

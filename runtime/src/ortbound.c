/*
 * ortbound.c - bound runs of an onnxruntime session: one named input to some named outputs over
 * the caller's buffers, with their OrtValues kept while the buffers and shapes stay the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ortsession_impl.h"

/* ---------------------------------------------------------------------------------------------
 * Bound runs: the OrtValues over the caller's buffers live as long as the buffers and shapes do.
 */

typedef struct bound_value {
    OrtValue *value;
    void *data;
    size_t size;
    size_t rank;
    int64_t dims[AE_TENSOR_MAX_RANK];
} bound_value;

struct ae_bound_run {
    const ae_session *s;      /* shared: onnxruntime's Run is thread-safe */
    const char *input_name;
    const ae_tensor_info *input_info;
    const char *output_names[AE_BOUND_MAX_OUTPUTS];
    const ae_tensor_info *output_info[AE_BOUND_MAX_OUTPUTS];
    size_t n_outputs;
    bound_value in;
    bound_value out[AE_BOUND_MAX_OUTPUTS];
    char errmsg[512];         /* the run's own: the session is shared */
};

static const ae_tensor_info *find_info(const ae_tensor_info *infos, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(infos[i].name, name) == 0)
            return &infos[i];
    return NULL;
}

ae_status ae_bound_run_new(const ae_session *s, const char *input, const char *const *outputs,
                           size_t n_outputs, ae_bound_run **out, char *err, size_t err_len)
{
    if (out == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "ae_bound_run_new: out is NULL");
    *out = NULL;
    if (s == NULL || input == NULL || (outputs == NULL && n_outputs > 0) || n_outputs == 0 ||
        n_outputs > AE_BOUND_MAX_OUTPUTS)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len,
                       "ae_bound_run_new: a NULL argument or 0 or more than %d outputs",
                       AE_BOUND_MAX_OUTPUTS);
    ae_bound_run *r = calloc(1, sizeof *r);
    if (r == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "out of memory");
    r->s = s;
    r->input_info = find_info(s->inputs, s->n_inputs, input);
    if (r->input_info == NULL || s->n_inputs != 1) {
        free(r);
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len,
                       "the model needs exactly one input, named \"%s\"", input);
    }
    r->input_name = r->input_info->name;
    for (size_t i = 0; i < n_outputs; i++) {
        r->output_info[i] = find_info(s->outputs, s->n_outputs, outputs[i]);
        if (r->output_info[i] == NULL) {
            free(r);
            return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "the model has no output \"%s\"",
                           outputs[i]);
        }
        r->output_names[i] = r->output_info[i]->name;
    }
    r->n_outputs = n_outputs;
    *out = r;
    return AE_OK;
}

static void unbind(const OrtApi *api, bound_value *b)
{
    if (b->value != NULL)
        api->ReleaseValue(b->value);
    b->value = NULL;
}

/* Reuse b's OrtValue when t has the same buffer and shape; wrap t anew otherwise. */
static ae_status bind(const ae_session *s, char *errmsg, size_t errmsg_len, bound_value *b,
                      const ae_tensor *t, const ae_tensor_info *info)
{
    if (b->value != NULL && b->data == t->data && b->size == t->size && b->rank == t->rank &&
        memcmp(b->dims, t->dims, t->rank * sizeof t->dims[0]) == 0)
        return AE_OK;
    unbind(s->api, b);
    int ok = 0;
    size_t count = element_count(t->dims, t->rank, &ok);
    size_t elem = ae_dtype_size(t->dtype);
    if (t->dtype != info->dtype || t->rank != info->rank || t->rank > AE_TENSOR_MAX_RANK ||
        !ok || elem == 0 || count > SIZE_MAX / elem || count * elem > t->size || t->data == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, errmsg, errmsg_len,
                       "\"%s\": a %s tensor of rank %zu and %zu bytes does not fit %s rank %zu",
                       info->name, ae_dtype_name(t->dtype), t->rank, t->size,
                       ae_dtype_name(info->dtype), info->rank);
    ae_status status = ort_check(
        s->api,
        s->api->CreateTensorWithDataAsOrtValue(s->cpu, t->data, count * elem, t->dims, t->rank,
                                               to_ort(t->dtype), &b->value),
        errmsg, errmsg_len, info->name);
    if (status != AE_OK) {
        b->value = NULL;
        return status;
    }
    b->data = t->data;
    b->size = t->size;
    b->rank = t->rank;
    memcpy(b->dims, t->dims, t->rank * sizeof t->dims[0]);
    return AE_OK;
}

ae_status ae_bound_run_exec(ae_bound_run *r, const ae_tensor *input, const ae_tensor *outputs)
{
    if (r == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    const ae_session *s = r->s;
    r->errmsg[0] = '\0';
    if (input == NULL || outputs == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, r->errmsg, sizeof r->errmsg,
                       "input or outputs is NULL");
    ae_status status = bind(s, r->errmsg, sizeof r->errmsg, &r->in, input, r->input_info);
    OrtValue *values[AE_BOUND_MAX_OUTPUTS] = {0};
    for (size_t i = 0; i < r->n_outputs && status == AE_OK; i++) {
        status = bind(s, r->errmsg, sizeof r->errmsg, &r->out[i], &outputs[i], r->output_info[i]);
        values[i] = r->out[i].value;
    }
    if (status != AE_OK)
        return status;
    const OrtValue *in = r->in.value;
    return ort_check(s->api,
                     s->api->Run(s->session, NULL, &r->input_name, &in, 1, r->output_names,
                                 r->n_outputs, values),
                     r->errmsg, sizeof r->errmsg, "run");
}

const char *ae_bound_run_errmsg(const ae_bound_run *r)
{
    return r == NULL ? "" : r->errmsg;
}

void ae_bound_run_free(ae_bound_run *r)
{
    if (r == NULL)
        return;
    unbind(r->s->api, &r->in);
    for (size_t i = 0; i < r->n_outputs; i++)
        unbind(r->s->api, &r->out[i]);
    free(r);
}

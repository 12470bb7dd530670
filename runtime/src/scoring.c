/*
 * scoring.c - running the models: DeepLog's rule on key windows (evaluate.deeplog_verdicts) and
 * MSCRED's anomaly score on count windows, through bound runs that allocate nothing per call.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"

/* MSCRED windows per onnxruntime call in ae_mscred_score: its intermediate tensors are large,
 * so a bigger batch costs memory and gains little (see detector.c). */
#define AE_MSCRED_BATCH 1

const char *ae_reason_name(ae_reason reason)
{
    switch (reason) {
    case AE_REASON_NONE: return "";
    case AE_REASON_UNSEEN: return "unseen";
    case AE_REASON_TOP_K: return "top_k";
    case AE_REASON_SCORE: return "score";
    case AE_REASON_PROBABILITY: return "probability";
    case AE_REASON_END: return "end";
    case AE_REASON_KEY_SET: return "key_set";
    }
    return "";
}

void ae_deeplog_judge(const float *logits, size_t classes, size_t key, int64_t *rank,
                      float *probability)
{
    float target = logits[key], max = logits[0];
    int64_t above = 0;
    for (size_t c = 0; c < classes; c++) {
        above += logits[c] > target;
        if (logits[c] > max)
            max = logits[c];
    }
    double sum = 0;
    for (size_t c = 0; c < classes; c++)
        sum += exp((double)logits[c] - max);
    *rank = above;
    *probability = (float)(exp((double)target - max) / sum);
}

ae_reason ae_deeplog_rule_reason(const ae_model *m, int64_t rank, float probability)
{
    /* float against float, as the Python rule compares float32 values */
    if (m->rule == AE_RULE_PROBABILITY)
        return probability < (float)m->probability_threshold ? AE_REASON_PROBABILITY
                                                             : AE_REASON_NONE;
    return rank >= m->top_k ? AE_REASON_TOP_K : AE_REASON_NONE;
}

void ae_deeplog_batch_free(ae_deeplog_batch *b)
{
    if (b == NULL)
        return;
    ae_bound_run_free(b->run);
    free(b->x);
    free(b->logits);
    memset(b, 0, sizeof *b);
}

ae_status ae_deeplog_batch_reserve(const ae_model *m, ae_deeplog_batch *b, size_t rows, char *err,
                                   size_t err_len)
{
    if (b->run == NULL) {
        const char *outputs[] = {AE_DEEPLOG_OUTPUT};
        ae_status status = ae_bound_run_new(m->deeplog, AE_DEEPLOG_INPUT, outputs, 1, &b->run,
                                            err, err_len);
        if (status != AE_OK)
            return status;
    }
    if (rows <= b->cap_rows)
        return AE_OK;
    size_t classes = m->classes;
    if (rows > SIZE_MAX / sizeof(float) / classes / 2 || rows > SIZE_MAX / sizeof(int64_t) / m->h)
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "batch too large");
    int64_t *x = realloc(b->x, rows * m->h * sizeof *x);
    if (x != NULL)
        b->x = x;
    float *logits = x != NULL ? realloc(b->logits, rows * classes * sizeof *logits) : NULL;
    if (logits == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "out of memory");
    b->logits = logits;
    b->cap_rows = rows;
    return AE_OK;
}

ae_status ae_deeplog_batch_run(const ae_model *m, ae_deeplog_batch *b, size_t rows, char *err,
                               size_t err_len)
{
    ae_tensor in, out;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    in.dtype = AE_DTYPE_INT64;
    in.rank = 2;
    in.dims[0] = (int64_t)rows;
    in.dims[1] = (int64_t)m->h;
    in.data = b->x;
    in.size = b->cap_rows * m->h * sizeof *b->x;
    out.dtype = AE_DTYPE_FLOAT32;
    out.rank = 2;
    out.dims[0] = (int64_t)rows;
    out.dims[1] = (int64_t)m->classes;
    out.data = b->logits;
    out.size = b->cap_rows * m->classes * sizeof *b->logits;
    ae_status status = ae_bound_run_exec(b->run, &in, &out);
    if (status != AE_OK)
        ae_fail(status, err, err_len, "deeplog.onnx: %s", ae_bound_run_errmsg(b->run));
    return status;
}

/* Key i of the padded session: h start keys, the keys, the end key (with session keys). */
static int64_t padded_key(const ae_model *m, const size_t *keys, size_t n, size_t i)
{
    if (m->start_key == SIZE_MAX)
        return (int64_t)keys[i];
    if (i < m->h)
        return (int64_t)m->start_key;
    return (int64_t)(i - m->h < n ? keys[i - m->h] : m->end_key);
}

/* The key-set check after the model's rule: it marks only what is not anomalous already. */
static ae_status key_sets_judge(const ae_model *m, const size_t *keys, size_t n,
                                ae_key_verdict *out, ae_key_verdict *end, char *err,
                                size_t err_len)
{
    if (!m->key_sets.on)
        return AE_OK;
    uint64_t *have = calloc(m->key_sets.words, sizeof *have);
    if (have == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (ae_key_set_add(m, have, keys[i]) && !out[i].anomalous) {
            out[i].anomalous = 1;
            out[i].reason = AE_REASON_KEY_SET;
        }
    if (ae_key_set_end(m, have) && !end->anomalous) {
        end->anomalous = 1;
        end->reason = AE_REASON_KEY_SET;
    }
    free(have);
    return AE_OK;
}

/* ae_deeplog_score over a batch of the caller's. */
static ae_status deeplog_score(const ae_model *m, const size_t *keys, size_t n, size_t batch_size,
                               ae_key_verdict *out, ae_key_verdict *end, ae_deeplog_batch *batch,
                               char *err, size_t err_len)
{
    if (m->deeplog == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len,
                       "the model directory has no DeepLog model loaded");
    if (n > 0 && (keys == NULL || out == NULL))
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "keys or out is NULL");
    for (size_t i = 0; i < n; i++)
        if (keys[i] > m->n)
            return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len,
                           "keys[%zu] is %zu, above the unknown key %zu", i, keys[i], m->n);
    for (size_t i = 0; i < n; i++) {
        int unseen = keys[i] == m->n || !m->seen[keys[i]];
        out[i].anomalous = unseen;
        out[i].reason = unseen ? AE_REASON_UNSEEN : AE_REASON_NONE;
        out[i].rank = -1;
        out[i].probability = NAN;
    }
    ae_key_verdict end_scratch;
    if (end == NULL)
        end = &end_scratch;
    end->anomalous = 0;
    end->reason = AE_REASON_NONE;
    end->rank = -1;
    end->probability = NAN;
    /* targets: padded keys h.. (key first + t, and the end as target n with session keys) */
    int padded = m->start_key != SIZE_MAX;
    size_t total = padded ? n + m->h + 1 : n;
    if (total <= m->h)
        return key_sets_judge(m, keys, n, out, end, err, err_len);
    size_t windows = total - m->h, first_key = padded ? 0 : m->h;
    if (batch_size == 0)
        batch_size = 256;
    size_t rows = windows < batch_size ? windows : batch_size;
    ae_status status = ae_deeplog_batch_reserve(m, batch, rows, err, err_len);
    if (status != AE_OK)
        return status;
    size_t classes = m->classes;
    for (size_t first = 0; first < windows; first += rows) {
        size_t count = windows - first < rows ? windows - first : rows;
        for (size_t r = 0; r < count; r++)
            for (size_t j = 0; j < m->h; j++)
                batch->x[r * m->h + j] = padded_key(m, keys, n, first + r + j);
        if ((status = ae_deeplog_batch_run(m, batch, count, err, err_len)) != AE_OK)
            return status;
        for (size_t r = 0; r < count; r++) {
            size_t target = first_key + first + r;
            ae_key_verdict *v = target < n ? &out[target] : end;
            size_t key = (size_t)padded_key(m, keys, n, first + r + m->h);
            ae_deeplog_judge(batch->logits + r * classes, classes, key, &v->rank,
                             &v->probability);
            ae_reason why = ae_deeplog_rule_reason(m, v->rank, v->probability);
            if (!v->anomalous && why != AE_REASON_NONE) {
                v->anomalous = 1;
                v->reason = v == end ? AE_REASON_END : why;
            }
        }
    }
    return key_sets_judge(m, keys, n, out, end, err, err_len);
}

ae_status ae_deeplog_score(const ae_model *m, const size_t *keys, size_t n, size_t batch_size,
                           ae_key_verdict *out, ae_key_verdict *end, char *err, size_t err_len)
{
    ae_fail(AE_OK, err, err_len, "%s", "");
    if (m == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "model is NULL");
    ae_deeplog_batch batch; /* per call: the model is shared */
    memset(&batch, 0, sizeof batch);
    ae_status status = deeplog_score(m, keys, n, batch_size, out, end, &batch, err, err_len);
    ae_deeplog_batch_free(&batch);
    return status;
}

ae_status ae_mscred_bind(const ae_model *m, ae_bound_run **out, char *err, size_t err_len)
{
    const char *outputs[] = {AE_MSCRED_OUTPUT};
    return ae_bound_run_new(m->mscred, AE_MSCRED_INPUT, outputs, 1, out, err, err_len);
}

ae_status ae_mscred_run(const ae_model *m, ae_bound_run *run, const float *counts, size_t n,
                        float *scores, char *err, size_t err_len)
{
    ae_tensor in, out;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    size_t cells = m->window * m->features;
    in.dtype = AE_DTYPE_FLOAT32;
    in.rank = 4;
    in.dims[0] = (int64_t)n;
    in.dims[1] = 1;
    in.dims[2] = (int64_t)m->window;
    in.dims[3] = (int64_t)m->features;
    in.data = (void *)(uintptr_t)counts; /* onnxruntime only reads its inputs */
    in.size = n * cells * sizeof *counts;
    out.dtype = AE_DTYPE_FLOAT32;
    out.rank = 1;
    out.dims[0] = (int64_t)n;
    out.data = scores;
    out.size = n * sizeof *scores;
    ae_status status = ae_bound_run_exec(run, &in, &out);
    if (status != AE_OK)
        ae_fail(status, err, err_len, "mscred.onnx: %s", ae_bound_run_errmsg(run));
    return status;
}

ae_status ae_mscred_score(const ae_model *m, const float *counts, size_t n, float *scores,
                          char *err, size_t err_len)
{
    ae_fail(AE_OK, err, err_len, "%s", "");
    if (m == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "model is NULL");
    if (m->mscred == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len,
                       "the model directory has no MSCRED model loaded");
    if (n > 0 && (counts == NULL || scores == NULL))
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "counts or scores is NULL");
    ae_status status = AE_OK;
    ae_bound_run *run = NULL; /* per call: the model is shared */
    if (n > 0)
        status = ae_mscred_bind(m, &run, err, err_len);
    size_t cells = m->window * m->features;
    for (size_t first = 0; first < n && status == AE_OK; first += AE_MSCRED_BATCH) {
        size_t count = n - first < AE_MSCRED_BATCH ? n - first : AE_MSCRED_BATCH;
        status = ae_mscred_run(m, run, counts + first * cells, count, scores + first, err,
                               err_len);
    }
    ae_bound_run_free(run);
    return status;
}

/*
 * model_impl.h - a loaded model directory, shared by model.c (loading), scoring.c (running the
 * models) and detector.c (streams). Not part of the public API.
 */
#ifndef ALOG_EDGE_MODEL_IMPL_H
#define ALOG_EDGE_MODEL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* The input and output names fixed by the design (`invoke convert`). */
#define AE_DEEPLOG_INPUT "input_sequence"
#define AE_DEEPLOG_OUTPUT "predictions"
#define AE_MSCRED_INPUT "input_features"
#define AE_MSCRED_OUTPUT "anomaly_score"

/* Batch buffers over which one bound run works. */
typedef struct ae_deeplog_batch {
    ae_bound_run *run;
    int64_t *x;       /* [rows, h] keys */
    float *logits;    /* [rows, N + 1] */
    size_t cap_rows;
} ae_deeplog_batch;

/* DeepLog's key-set check (deeplog_keysets.c): the key sets of normal training sessions. */
typedef struct ae_key_sets {
    int on;           /* meta key_sets not null */
    uint64_t *bits;   /* [count][words] bitsets of keys 0..N */
    size_t count, words;
} ae_key_sets;

struct ae_model {
    ae_vocab *vocab;
    ae_matcher *matcher;
    ae_fields *fields;
    size_t n;            /* templates; the unknown key */
    ae_session_params session_params;

    /* DeepLog */
    ae_session *deeplog;
    size_t h;            /* seq_len: keys before the predicted one */
    int top_k;
    ae_deeplog_rule rule;
    double probability_threshold;
    size_t classes;      /* the output width: N + 1, or N + 3 with session keys */
    size_t start_key, end_key; /* SIZE_MAX: none (no session keys) */
    unsigned char *closing; /* [N + 1]: 1 for a key that ends its session */
    size_t n_closing;
    int64_t session_idle_us; /* 0: sessions never idle out */
    unsigned char *seen; /* [N + 1]: 1 for a key seen in training */
    size_t n_seen;
    ae_key_sets key_sets; /* read-only once loaded; a session's own keys live in its detector */

    /* MSCRED */
    ae_session *mscred;
    size_t window;       /* buckets per window */
    size_t stride;       /* the model's gap */
    size_t features;     /* N + 1 */
    double threshold;
    double broken_cell_level;
    double bucket_seconds;
    int64_t bucket_us;   /* > 0: time buckets */
    size_t bucket_lines; /* > 0: line buckets */
    int per_host;
};

/* DeepLog's logits for `rows` windows of h keys (x, row-major) into batch->logits; the batch
 * buffers must hold them (ae_deeplog_batch_reserve). The model is only read.
 * @return AE_OK, AE_ERR_ONNXRUNTIME or AE_ERR_NO_MEMORY with the detail in err. */
ae_status ae_deeplog_batch_run(const ae_model *model, ae_deeplog_batch *batch, size_t rows,
                               char *err, size_t err_len);

/* Grow a batch's buffers to `rows` rows (and make its bound run).
 * @return AE_OK or AE_ERR_NO_MEMORY / AE_ERR_INVALID_ARGUMENT with the detail in err. */
ae_status ae_deeplog_batch_reserve(const ae_model *model, ae_deeplog_batch *batch, size_t rows,
                                   char *err, size_t err_len);

/* @return nothing; frees the buffers and the bound run (before the model's session). */
void ae_deeplog_batch_free(ae_deeplog_batch *batch);

/* The rank (classes with a strictly larger logit) and softmax probability of `key` among
 * `classes` logits. @return nothing. */
void ae_deeplog_judge(const float *logits, size_t classes, size_t key, int64_t *rank,
                      float *probability);

/* The model's rule on a predicted key (unseen keys aside).
 * @return AE_REASON_NONE, AE_REASON_TOP_K or AE_REASON_PROBABILITY. */
ae_reason ae_deeplog_rule_reason(const ae_model *model, int64_t rank, float probability);

/* The meta's key_sets (null or absent: the check is off); needs the session keys read first.
 * @return AE_OK, AE_ERR_FORMAT or AE_ERR_NO_MEMORY with the reason in why. */
struct cJSON;
ae_status ae_key_sets_load(ae_model *model, const struct cJSON *meta, char *why, size_t why_len);

/* @return nothing; frees the sets. */
void ae_key_sets_free(ae_key_sets *key_sets);

/* Add `key` to a session's bitset `have` (key_sets.words words).
 * @return 1 when the session's keys fitted inside a known set and with this key fit inside none. */
int ae_key_set_add(const ae_model *model, uint64_t *have, size_t key);

/* @return 1 when a session ending with keys `have` fits inside a known set without being one. */
int ae_key_set_end(const ae_model *model, const uint64_t *have);

/* MSCRED's anomaly_score of `n` windows through `run`.
 * @return AE_OK or AE_ERR_ONNXRUNTIME / AE_ERR_NO_MEMORY with the detail in err. */
ae_status ae_mscred_run(const ae_model *model, ae_bound_run *run, const float *counts, size_t n,
                        float *scores, char *err, size_t err_len);

/* A bound run of the model's MSCRED (anomaly_score only).
 * @return AE_OK and *out, or an error with the detail in err. */
ae_status ae_mscred_bind(const ae_model *model, ae_bound_run **out, char *err, size_t err_len);

#endif /* ALOG_EDGE_MODEL_IMPL_H */

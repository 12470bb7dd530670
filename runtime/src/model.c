/*
 * model.c - loading a model directory: vocab.json, parser.json (matcher and line fields), and
 * each of deeplog.onnx / mscred.onnx present with its .onnx.meta.json, checked against the vocab
 * and against the inputs and outputs the ONNX file declares.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jsonfile.h"
#include "model_impl.h"

/* Largest meta.json (seen_keys holds up to N numbers). */
#define AE_META_MAX_BYTES (64u * 1024u * 1024u)
/* Bounds that keep buffer sizes sane: a larger model is not one for a small device. */
#define AE_MAX_WINDOW (1 << 16)

/* Measured on the demo models with both loaded (onnxruntime 1.31, x86_64): the CPU arena off
 * gives the smallest peak (`alog-edge run` on test.log: 43.5 MB against 46.6 MB with it on;
 * `alog-edge bench`: 49.0 against 51.2 MB) at the same speed; memory patterns off; worker threads
 * sleep rather than spin (one core is the user's); prepacking kept (off saved nothing and was
 * slower). */
static const ae_session_tuning TUNING = {0, 0, 0, 1, 0};
static const ae_session_tuning TUNING_PREOPTIMIZED = {0, 0, 0, 1, 1};

/* FNV-1a 64 of a file's bytes, read in blocks; 0 when it cannot be read. */
static uint64_t file_fnv1a(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    uint64_t h = 0xcbf29ce484222325u;
    unsigned char block[16384];
    size_t n;
    while ((n = fread(block, 1, sizeof block, f)) > 0)
        for (size_t i = 0; i < n; i++) {
            h ^= block[i];
            h *= 0x100000001b3u;
        }
    int bad = ferror(f);
    fclose(f);
    return bad ? 0 : h;
}

/*
 * A model's session: from "<model>.opt-<FNV-1a 64 of the model file>.onnx" beside it when convert
 * saved one for exactly this model file (optimised there, checked against golden.json there and by
 * selftest here), loaded without optimising again; otherwise from the model, optimised at load.
 * @return as ae_session_open_tuned.
 */
static ae_status open_model_session(const ae_model *m, const char *onnx_path, ae_session **session,
                                    char *err, size_t err_len)
{
    size_t len = strlen(onnx_path);
    char *opt = malloc(len + 32);
    if (opt == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", onnx_path);
    uint64_t h = file_fnv1a(onnx_path);
    snprintf(opt, len + 32, "%.*s.opt-%016llx.onnx", (int)(len - 5), onnx_path,
             (unsigned long long)h);
    struct stat st;
    ae_status status;
    if (h != 0 && stat(opt, &st) == 0 && S_ISREG(st.st_mode))
        status = ae_session_open_tuned(opt, &m->session_params, &TUNING_PREOPTIMIZED, session, err,
                                       err_len);
    else
        status = ae_session_open_tuned(onnx_path, &m->session_params, &TUNING, session, err,
                                       err_len);
    free(opt);
    return status;
}

ae_model_params ae_model_default_params(void)
{
    ae_model_params p;
    p.session = ae_session_default_params();
    p.load_deeplog = 1;
    p.load_mscred = 1;
    p.top_k = 0;
    p.deeplog_rule = AE_RULE_META;
    p.probability_threshold = -1.0;
    p.session_idle = -1.0;
    p.mscred_threshold = -1.0;
    return p;
}

void ae_model_free(ae_model *m)
{
    if (m == NULL)
        return;
    ae_session_free(m->deeplog);
    ae_session_free(m->mscred);
    free(m->seen);
    free(m->closing);
    ae_key_sets_free(&m->key_sets);
    ae_fields_free(m->fields);
    ae_matcher_free(m->matcher);
    ae_vocab_free(m->vocab);
    free(m);
}

static char *join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    char *path = malloc(len);
    if (path != NULL)
        snprintf(path, len, "%s/%s", dir, name);
    return path;
}

/* A loader's context: the file being read, for messages. */
typedef struct loader {
    ae_model *m;
    const char *file;
    char *err;
    size_t err_len;
} loader;

static ae_status fail(loader *L, ae_status status, const char *fmt, ...) AE_PRINTF(3, 4);

static ae_status fail(loader *L, ae_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ae_vfail_file(status, L->err, L->err_len, L->file, fmt, ap);
    va_end(ap);
    return status;
}

/* A required integer field in [min, max]. */
static ae_status get_int(loader *L, const cJSON *meta, const char *name, int64_t min,
                         int64_t max, int64_t *value)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(meta, name);
    if (item == NULL)
        return fail(L, AE_ERR_FORMAT, "%s is missing", name);
    if (!ae_json_int(item, min, max, value)) {
        if (cJSON_IsNumber(item))
            return fail(L, AE_ERR_FORMAT, "%s is %g, not an integer in %lld..%lld", name,
                        item->valuedouble, (long long)min, (long long)max);
        return fail(L, AE_ERR_FORMAT, "%s is %s, not an integer", name, ae_json_kind(item));
    }
    return AE_OK;
}

/* A required number field (finite). */
static ae_status get_number(loader *L, const cJSON *meta, const char *name, double *value)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(meta, name);
    if (item == NULL)
        return fail(L, AE_ERR_FORMAT, "%s is missing", name);
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return fail(L, AE_ERR_FORMAT, "%s is %s, not a number", name, ae_json_kind(item));
    *value = item->valuedouble;
    return AE_OK;
}

/* model_type must name the model the file belongs to. */
static ae_status check_type(loader *L, const cJSON *meta, const char *type)
{
    if (!cJSON_IsObject(meta))
        return fail(L, AE_ERR_FORMAT, "expected a JSON object, found %s", ae_json_kind(meta));
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(meta, "model_type");
    if (item == NULL)
        return fail(L, AE_ERR_FORMAT, "model_type is missing");
    if (!cJSON_IsString(item))
        return fail(L, AE_ERR_FORMAT, "model_type is %s, not a string", ae_json_kind(item));
    if (strcmp(item->valuestring, type) != 0)
        return fail(L, AE_ERR_FORMAT, "model_type is \"%.60s\", expected \"%s\"",
                    item->valuestring, type);
    return AE_OK;
}

/* The vocabulary-dependent fields: `size_field` (N + 1 classes or features) and unk_index. */
static ae_status check_vocab(loader *L, const cJSON *meta, const char *size_field)
{
    ae_model *m = L->m;
    int64_t size = 0, unk = 0;
    ae_status status = get_int(L, meta, size_field, 1, (int64_t)1 << 40, &size);
    if (status != AE_OK)
        return status;
    if ((uint64_t)size != (uint64_t)m->n + 1)
        return fail(L, AE_ERR_FORMAT,
                    "%s is %lld, but vocab.json has %zu templates (expected %zu: the templates "
                    "and the unknown key)", size_field, (long long)size, m->n, m->n + 1);
    if ((status = get_int(L, meta, "unk_index", 0, (int64_t)1 << 40, &unk)) != AE_OK)
        return status;
    if ((uint64_t)unk != (uint64_t)m->n)
        return fail(L, AE_ERR_FORMAT, "unk_index is %lld, but vocab.json has %zu templates "
                    "(expected %zu)", (long long)unk, m->n, m->n);
    return AE_OK;
}

/* An optional field: absent or null leaves *present 0. */
static const cJSON *optional(const cJSON *meta, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(meta, name);
    return item == NULL || cJSON_IsNull(item) ? NULL : item;
}

/* Session keys, the rule and session ends, each optional (metas written before them mean the
 * paper's rule: top_k, no session keys, sessions end at end of input). */
static ae_status deeplog_rule_meta(loader *L, const cJSON *meta, const ae_model_params *p)
{
    ae_model *m = L->m;
    ae_status status;
    int64_t classes = (int64_t)m->n + 1, start = -1, end = -1;
    m->start_key = m->end_key = SIZE_MAX;
    if (optional(meta, "num_classes") != NULL &&
        (status = get_int(L, meta, "num_classes", (int64_t)m->n + 1, (int64_t)m->n + 3,
                          &classes)) != AE_OK)
        return status;
    m->classes = (size_t)classes;
    if ((optional(meta, "start_key") != NULL) != (optional(meta, "end_key") != NULL))
        return fail(L, AE_ERR_FORMAT, "start_key and end_key go together (one is null)");
    if (optional(meta, "start_key") != NULL) {
        if ((status = get_int(L, meta, "start_key", (int64_t)m->n + 1, classes - 1, &start)) !=
                AE_OK ||
            (status = get_int(L, meta, "end_key", (int64_t)m->n + 1, classes - 1, &end)) != AE_OK)
            return status;
        if (start == end)
            return fail(L, AE_ERR_FORMAT, "start_key and end_key are both %lld", (long long)end);
        m->start_key = (size_t)start;
        m->end_key = (size_t)end;
    }
    const cJSON *rule = optional(meta, "rule");
    m->rule = AE_RULE_TOP_K;
    if (rule != NULL) {
        if (!cJSON_IsString(rule))
            return fail(L, AE_ERR_FORMAT, "rule is %s, not a string", ae_json_kind(rule));
        if (strcmp(rule->valuestring, "probability") == 0)
            m->rule = AE_RULE_PROBABILITY;
        else if (strcmp(rule->valuestring, "top_k") != 0)
            return fail(L, AE_ERR_FORMAT, "rule is \"%.40s\", not \"top_k\" or \"probability\"",
                        rule->valuestring);
    }
    m->probability_threshold = 0;
    if (optional(meta, "probability_threshold") != NULL &&
        (status = get_number(L, meta, "probability_threshold", &m->probability_threshold)) != AE_OK)
        return status;
    if (m->rule == AE_RULE_PROBABILITY && optional(meta, "probability_threshold") == NULL)
        return fail(L, AE_ERR_FORMAT, "rule is \"probability\" but probability_threshold is missing");
    /* the params override: a rule, or a parameter that implies its rule */
    if (p->deeplog_rule != AE_RULE_META)
        m->rule = p->deeplog_rule;
    else if (p->probability_threshold >= 0)
        m->rule = AE_RULE_PROBABILITY;
    else if (p->top_k > 0)
        m->rule = AE_RULE_TOP_K;
    if (p->probability_threshold >= 0)
        m->probability_threshold = p->probability_threshold;
    double idle = 0;
    if (optional(meta, "session_idle_seconds") != NULL &&
        (status = get_number(L, meta, "session_idle_seconds", &idle)) != AE_OK)
        return status;
    if (p->session_idle >= 0)
        idle = p->session_idle;
    if (idle < 0 || idle > 1e9)
        return fail(L, AE_ERR_FORMAT, "session_idle_seconds is %g, not in 0..1e9", idle);
    m->session_idle_us = (int64_t)(idle * 1e6);
    const cJSON *closing = optional(meta, "closing_keys");
    if (closing != NULL && !cJSON_IsArray(closing))
        return fail(L, AE_ERR_FORMAT, "closing_keys is %s, not an array of keys",
                    ae_json_kind(closing));
    size_t i = 0;
    for (const cJSON *k = closing != NULL ? closing->child : NULL; k != NULL; k = k->next, i++) {
        int64_t key = 0;
        if (!ae_json_int(k, 0, (int64_t)m->n, &key))
            return fail(L, AE_ERR_FORMAT, "closing_keys[%zu] is not a key in 0..%zu", i, m->n);
        m->n_closing += !m->closing[key];
        m->closing[key] = 1;
    }
    char why[256];
    if ((status = ae_key_sets_load(m, meta, why, sizeof why)) != AE_OK)
        return fail(L, status, "%s", why);
    return AE_OK;
}

static ae_status deeplog_meta(loader *L, const cJSON *meta, const ae_model_params *p)
{
    ae_model *m = L->m;
    ae_status status;
    int64_t h = 0, top_k = 0;
    if ((status = check_type(L, meta, "deeplog")) != AE_OK ||
        (status = check_vocab(L, meta, "vocab_size")) != AE_OK ||
        (status = get_int(L, meta, "seq_len", 1, AE_MAX_WINDOW, &h)) != AE_OK ||
        (status = get_int(L, meta, "top_k", 1, (int64_t)1 << 40, &top_k)) != AE_OK)
        return status;
    m->h = (size_t)h;
    m->top_k = p->top_k > 0 ? p->top_k : (top_k > INT32_MAX ? INT32_MAX : (int)top_k);
    const cJSON *seen = cJSON_GetObjectItemCaseSensitive(meta, "seen_keys");
    if (!cJSON_IsArray(seen))
        return fail(L, AE_ERR_FORMAT, "seen_keys is %s, not an array of keys",
                    ae_json_kind(seen));
    if ((m->seen = calloc(m->n + 1, 1)) == NULL || (m->closing = calloc(m->n + 1, 1)) == NULL)
        return fail(L, AE_ERR_NO_MEMORY, "out of memory");
    size_t i = 0;
    for (const cJSON *k = seen->child; k != NULL; k = k->next, i++) {
        int64_t key = 0;
        if (!ae_json_int(k, 0, (int64_t)m->n, &key))
            return fail(L, AE_ERR_FORMAT, "seen_keys[%zu] is not a key in 0..%zu", i, m->n);
        m->n_seen += !m->seen[key];
        m->seen[key] = 1;
    }
    return deeplog_rule_meta(L, meta, p);
}

static ae_status mscred_meta(loader *L, const cJSON *meta, const ae_model_params *p)
{
    ae_model *m = L->m;
    ae_status status;
    int64_t window = 0, gap = 0;
    double threshold = 0;
    if ((status = check_type(L, meta, "mscred")) != AE_OK ||
        (status = check_vocab(L, meta, "feature_dim")) != AE_OK ||
        (status = get_int(L, meta, "window_size", 1, AE_MAX_WINDOW, &window)) != AE_OK ||
        (status = get_int(L, meta, "gap", 1, AE_MAX_WINDOW, &gap)) != AE_OK ||
        (status = get_number(L, meta, "threshold", &threshold)) != AE_OK)
        return status;
    m->features = m->n + 1;
    m->window = (size_t)window;
    m->stride = (size_t)gap;
    m->threshold = p->mscred_threshold >= 0 ? p->mscred_threshold : threshold;
    const cJSON *level = cJSON_GetObjectItemCaseSensitive(meta, "broken_cell_level");
    m->broken_cell_level = cJSON_IsNumber(level) ? level->valuedouble : NAN;

    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(meta, "counts");
    if (!cJSON_IsObject(counts))
        return fail(L, AE_ERR_FORMAT, "counts is %s, not an object {bucket_seconds, "
                    "bucket_lines, per_host}", ae_json_kind(counts));
    const cJSON *seconds = cJSON_GetObjectItemCaseSensitive(counts, "bucket_seconds");
    const cJSON *lines = cJSON_GetObjectItemCaseSensitive(counts, "bucket_lines");
    const cJSON *per_host = cJSON_GetObjectItemCaseSensitive(counts, "per_host");
    if (!cJSON_IsBool(per_host))
        return fail(L, AE_ERR_FORMAT, "counts.per_host is %s, not a boolean",
                    ae_json_kind(per_host));
    m->per_host = cJSON_IsTrue(per_host);
    /* counts.CountSpec: time buckets when bucket_seconds is set, else line buckets. */
    if (seconds != NULL && !cJSON_IsNull(seconds)) {
        double us = cJSON_IsNumber(seconds) ? nearbyint(seconds->valuedouble * 1e6) : 0;
        if (!cJSON_IsNumber(seconds) || !(us >= 1 && us <= 1e15))
            return fail(L, AE_ERR_FORMAT,
                        "counts.bucket_seconds is %s, not a number of seconds >= 1e-6",
                        ae_json_kind(seconds));
        m->bucket_seconds = seconds->valuedouble;
        m->bucket_us = (int64_t)us;
        if (!ae_fields_has_timestamp(m->fields))
            return fail(L, AE_ERR_FORMAT, "counts.bucket_seconds needs timestamps, but "
                        "parser.json has no timestamp format and fields");
    } else {
        int64_t n = 0;
        if (!ae_json_int(lines, 1, (int64_t)1 << 40, &n))
            return fail(L, AE_ERR_FORMAT, "counts has neither bucket_seconds nor a positive "
                        "integer bucket_lines");
        m->bucket_lines = (size_t)n;
    }
    return AE_OK;
}

/* The declared input/output of an ONNX file by name, with its type and rank checked. */
static ae_status tensor(loader *L, ae_session *s, int input, const char *name, ae_dtype dtype,
                        size_t rank, const ae_tensor_info **out)
{
    size_t n = input ? ae_session_input_count(s) : ae_session_output_count(s);
    *out = NULL;
    for (size_t i = 0; i < n && *out == NULL; i++) {
        const ae_tensor_info *t = input ? ae_session_input(s, i) : ae_session_output(s, i);
        if (strcmp(t->name, name) == 0)
            *out = t;
    }
    if (*out == NULL || (input && n != 1))
        return fail(L, AE_ERR_FORMAT, "expected %s \"%s\"%s", input ? "one input" : "an output",
                    name, *out == NULL ? ", which the model lacks" : ", found more inputs");
    if ((*out)->dtype != dtype || (*out)->rank != rank)
        return fail(L, AE_ERR_FORMAT, "%s \"%s\" is %s of rank %zu, expected %s of rank %zu",
                    input ? "input" : "output", name, ae_dtype_name((*out)->dtype),
                    (*out)->rank, ae_dtype_name(dtype), rank);
    if ((*out)->dims[0] != AE_DIM_DYNAMIC)
        return fail(L, AE_ERR_FORMAT, "%s \"%s\" has a fixed batch axis of %lld: export it with "
                    "a dynamic batch_size", input ? "input" : "output", name,
                    (long long)(*out)->dims[0]);
    return AE_OK;
}

/* A fixed axis must have the size the meta gives; a dynamic one takes it. */
static ae_status check_dim(loader *L, const ae_tensor_info *t, size_t axis, size_t want,
                           const char *what)
{
    if (t->dims[axis] != AE_DIM_DYNAMIC && (uint64_t)t->dims[axis] != (uint64_t)want)
        return fail(L, AE_ERR_FORMAT, "\"%s\" has %lld on axis %zu, but the meta's %s is %zu",
                    t->name, (long long)t->dims[axis], axis, what, want);
    return AE_OK;
}

static ae_status deeplog_onnx(loader *L)
{
    ae_model *m = L->m;
    const ae_tensor_info *in, *out;
    ae_status status;
    if ((status = tensor(L, m->deeplog, 1, AE_DEEPLOG_INPUT, AE_DTYPE_INT64, 2, &in)) != AE_OK ||
        (status = tensor(L, m->deeplog, 0, AE_DEEPLOG_OUTPUT, AE_DTYPE_FLOAT32, 2, &out)) !=
            AE_OK ||
        (status = check_dim(L, in, 1, m->h, "seq_len")) != AE_OK ||
        (status = check_dim(L, out, 1, m->classes, "num_classes")) != AE_OK)
        return status;
    return AE_OK;
}

static ae_status mscred_onnx(loader *L)
{
    ae_model *m = L->m;
    const ae_tensor_info *in, *out;
    ae_status status;
    if ((status = tensor(L, m->mscred, 1, AE_MSCRED_INPUT, AE_DTYPE_FLOAT32, 4, &in)) != AE_OK ||
        (status = tensor(L, m->mscred, 0, AE_MSCRED_OUTPUT, AE_DTYPE_FLOAT32, 1, &out)) !=
            AE_OK ||
        (status = check_dim(L, in, 1, 1, "channel count")) != AE_OK ||
        (status = check_dim(L, in, 2, m->window, "window_size")) != AE_OK ||
        (status = check_dim(L, in, 3, m->features, "feature_dim")) != AE_OK)
        return status;
    return AE_OK;
}

/* 1 if path exists, 0 if it does not; -1 (with err set) when it cannot be told. */
static int exists(const char *path, char *err, size_t err_len)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    ae_fail(AE_ERR_IO, err, err_len, "%s: %s", path, strerror(errno));
    return -1;
}

/* One model: its meta, its session, the two checked against each other. */
static ae_status load_one(ae_model *m, const char *dir, const char *name, int deeplog,
                          const ae_model_params *p, int *found, char *err, size_t err_len)
{
    char meta_name[64];
    snprintf(meta_name, sizeof meta_name, "%s.meta.json", name);
    char *onnx_path = join(dir, name), *meta_path = join(dir, meta_name);
    ae_status status = AE_OK;
    cJSON *meta = NULL;
    *found = 0;
    if (onnx_path == NULL || meta_path == NULL) {
        status = ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", dir);
        goto done;
    }
    int here = exists(onnx_path, err, err_len);
    if (here < 0) {
        status = AE_ERR_IO;
        goto done;
    }
    *found = here;
    if (!(deeplog ? p->load_deeplog : p->load_mscred))
        goto done;
    if (!here) { /* a meta without its model: the model went missing */
        int meta_here = exists(meta_path, err, err_len);
        if (meta_here != 0)
            status = meta_here < 0 ? AE_ERR_IO
                                   : ae_fail(AE_ERR_IO, err, err_len, "%s: No such file or "
                                             "directory (%s is there)", onnx_path, meta_name);
        goto done;
    }
    /* The meta first: its messages are clearer than onnxruntime's. */
    if ((status = ae_json_load(meta_path, AE_META_MAX_BYTES, &meta, err, err_len)) != AE_OK)
        goto done;
    loader L = {m, meta_path, err, err_len};
    if ((status = deeplog ? deeplog_meta(&L, meta, p) : mscred_meta(&L, meta, p)) != AE_OK)
        goto done;
    ae_session **session = deeplog ? &m->deeplog : &m->mscred;
    if ((status = open_model_session(m, onnx_path, session, err, err_len)) != AE_OK)
        goto done;
    L.file = onnx_path;
    status = deeplog ? deeplog_onnx(&L) : mscred_onnx(&L);
done:
    cJSON_Delete(meta);
    free(onnx_path);
    free(meta_path);
    return status;
}

static ae_status load(ae_model *m, const char *dir, const ae_model_params *p, char *err,
                      size_t err_len)
{
    char *vocab_path = join(dir, "vocab.json"), *parser_path = join(dir, "parser.json");
    ae_status status = AE_OK;
    if (vocab_path == NULL || parser_path == NULL)
        status = ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", dir);
    if (status == AE_OK)
        status = ae_vocab_load(vocab_path, &m->vocab, err, err_len);
    if (status == AE_OK)
        status = ae_matcher_load(parser_path, m->vocab, &m->matcher, err, err_len);
    if (status == AE_OK)
        status = ae_fields_load(parser_path, m->matcher, &m->fields, err, err_len);
    free(vocab_path);
    free(parser_path);
    if (status != AE_OK)
        return status;
    m->n = ae_vocab_size(m->vocab);
    int has_deeplog = 0, has_mscred = 0;
    if ((status = load_one(m, dir, "deeplog.onnx", 1, p, &has_deeplog, err, err_len)) != AE_OK ||
        (status = load_one(m, dir, "mscred.onnx", 0, p, &has_mscred, err, err_len)) != AE_OK)
        return status;
    if (!has_deeplog && !has_mscred)
        return ae_fail(AE_ERR_FORMAT, err, err_len,
                       "%s: holds neither deeplog.onnx nor mscred.onnx", dir);
    if (m->deeplog == NULL && m->mscred == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len,
                       "%s: the parameters skip every model the directory holds", dir);
    return AE_OK;
}

ae_status ae_model_load(const char *dir, const ae_model_params *params, ae_model **out,
                        char *err, size_t err_len)
{
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (out == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "ae_model_load: out is NULL");
    *out = NULL;
    if (dir == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "ae_model_load: dir is NULL");
    ae_model_params p = params != NULL ? *params : ae_model_default_params();
    if (p.session.intra_op_threads < 1 || p.session.inter_op_threads < 1 || p.top_k < 0 ||
        p.session.log_severity < 0 || p.session.log_severity > 4 ||
        isnan(p.mscred_threshold) || isnan(p.probability_threshold) || isnan(p.session_idle) ||
        p.deeplog_rule < AE_RULE_META || p.deeplog_rule > AE_RULE_PROBABILITY)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len,
                       "%s: invalid model parameters (threads >= 1, top_k >= 0, log severity "
                       "0..4, a rule of ae_deeplog_rule, thresholds and idle time that are "
                       "numbers)", dir);
    struct stat st;
    if (stat(dir, &st) != 0)
        return ae_fail(AE_ERR_IO, err, err_len, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ae_fail(AE_ERR_IO, err, err_len, "%s: not a directory, expected a model directory",
                       dir);
    ae_model *m = calloc(1, sizeof *m);
    if (m == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", dir);
    m->session_params = p.session;
    m->threshold = NAN;
    m->broken_cell_level = NAN;
    ae_status status = load(m, dir, &p, err, err_len);
    if (status != AE_OK) {
        ae_model_free(m);
        return status;
    }
    *out = m;
    return AE_OK;
}

ae_status ae_model_info_get(const ae_model *m, ae_model_info *info)
{
    if (m == NULL || info == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    memset(info, 0, sizeof *info);
    info->num_templates = m->n;
    info->has_deeplog = m->deeplog != NULL;
    info->deeplog_window = m->h;
    info->top_k = m->top_k;
    info->deeplog_rule = m->rule;
    info->probability_threshold = m->probability_threshold;
    info->session_keys = m->start_key != SIZE_MAX;
    info->start_key = m->start_key;
    info->end_key = m->end_key;
    info->closing_keys = m->n_closing;
    info->session_idle = (double)m->session_idle_us / 1e6;
    info->deeplog_seen_keys = m->n_seen;
    info->has_mscred = m->mscred != NULL;
    info->mscred_window = m->window;
    info->mscred_stride = m->stride;
    info->feature_dim = m->mscred != NULL ? m->features : m->n + 1;
    info->threshold = m->threshold;
    info->broken_cell_level = m->broken_cell_level;
    info->bucket_seconds = m->bucket_seconds;
    info->bucket_lines = m->bucket_lines;
    info->per_host = m->per_host;
    return AE_OK;
}

const ae_vocab *ae_model_vocab(const ae_model *m)
{
    return m == NULL ? NULL : m->vocab;
}

const ae_matcher *ae_model_matcher(const ae_model *m)
{
    return m == NULL ? NULL : m->matcher;
}

/*
 * selftest.c - `alog-edge selftest`: load the model directory, then replay golden.json with
 * onnxruntime and compare every output with what onnxruntime gave when the models were converted.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alog_edge.h"
#include "cli.h"
#include "cli_borrowed.h" /* golden.json read as the loaders read their JSON */

static const char SELFTEST_USAGE[] =
    "usage: alog-edge selftest [--tolerance X] <model_dir>\n"
    "\n"
    "Proves that this device computes what the converting machine computed: loads the whole\n"
    "model directory (vocab, parser, models, meta files; every check of `run`), then runs each\n"
    "case of <model_dir>/golden.json through onnxruntime and compares every output element with\n"
    "the recorded one. One JSON line per case on stdout:\n"
    "\n"
    "  {\"case\": \"deeplog.onnx: real windows\", \"max_abs_diff\": 2.4e-07, \"tolerance\": 1e-05,\n"
    "   \"pass\": true}\n"
    "\n"
    "and a one-line summary on stderr.\n"
    "\n"
    "options:\n"
    "  --tolerance X   largest accepted absolute difference (default: golden.json's tolerance)\n"
    "  -h, --help      print this help and exit\n"
    "\n"
    "Exit status: 0 every case passed; 4 some output differed beyond the tolerance; 1 error (a\n"
    "bad model directory or golden.json: one line on stderr); 2 usage error.\n";

enum { EXIT_SELFTEST_FAILED = 4 };

#define GOLDEN_MAX_BYTES (256u * 1024u * 1024u)
#define MAX_CASE_TENSORS 8

/* A tensor of golden.json: {"dtype": "float32", "shape": [..], "data": [..]}; an output may
 * record only some of its elements: "indices": [flat positions] with "data" their values (then
 * t.size is the whole output's size and t.data holds n_idx values). */
typedef struct golden_tensor {
    const char *name;
    ae_tensor t;
    size_t *idx;
    size_t n_idx;
} golden_tensor;

/* The optional "indices" of an output tensor of `count` elements; @return NULL or what is wrong. */
static const char *indices_from_json(const cJSON *j, size_t count, golden_tensor *g)
{
    const cJSON *indices = cJSON_GetObjectItemCaseSensitive(j, "indices");
    if (indices == NULL)
        return NULL;
    if (!cJSON_IsArray(indices) || cJSON_GetArraySize(indices) < 1)
        return "a tensor's indices are not a non-empty list";
    g->n_idx = (size_t)cJSON_GetArraySize(indices);
    if ((g->idx = malloc(g->n_idx * sizeof *g->idx)) == NULL)
        return "out of memory";
    size_t i = 0;
    for (const cJSON *v = indices->child; v != NULL; v = v->next, i++) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= (double)count ||
            v->valuedouble != floor(v->valuedouble))
            return "a tensor's indices hold something other than positions in its shape";
        g->idx[i] = (size_t)v->valuedouble;
    }
    return NULL;
}

/* Fill g from a JSON tensor (`indexed`: an output, which may list indices);
 * @return NULL or what is wrong. */
static const char *tensor_from_json(const cJSON *j, golden_tensor *g, int indexed)
{
    ae_tensor *t = &g->t;
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(data))
        return "a tensor needs dtype, shape and data";
    if (strcmp(dtype->valuestring, "float32") == 0)
        t->dtype = AE_DTYPE_FLOAT32;
    else if (strcmp(dtype->valuestring, "int64") == 0)
        t->dtype = AE_DTYPE_INT64;
    else
        return "a tensor's dtype is neither float32 nor int64";
    int rank = cJSON_GetArraySize(shape);
    if (rank < 1 || rank > AE_TENSOR_MAX_RANK)
        return "a tensor's shape has no axes or too many";
    size_t count = 1;
    t->rank = (size_t)rank;
    for (int i = 0; i < rank; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e9 ||
            d->valuedouble != floor(d->valuedouble))
            return "a tensor's shape holds something other than sizes";
        t->dims[i] = (int64_t)d->valuedouble;
        count *= (size_t)t->dims[i];
    }
    if (!indexed && cJSON_GetObjectItemCaseSensitive(j, "indices") != NULL)
        return "an input tensor cannot list indices";
    const char *why = indices_from_json(j, count, g);
    if (why != NULL)
        return why;
    size_t values = g->idx != NULL ? g->n_idx : count;
    if ((size_t)cJSON_GetArraySize(data) != values)
        return g->idx != NULL ? "a tensor's data does not have one value per index"
                              : "a tensor's data does not have the size of its shape";
    t->size = count * ae_dtype_size(t->dtype);
    t->data = malloc(values ? values * ae_dtype_size(t->dtype) : 1);
    if (t->data == NULL)
        return "out of memory";
    size_t i = 0;
    for (const cJSON *v = data->child; v != NULL; v = v->next, i++) {
        if (!cJSON_IsNumber(v))
            return "a tensor's data holds something other than numbers";
        if (t->dtype == AE_DTYPE_FLOAT32)
            ((float *)t->data)[i] = (float)v->valuedouble;
        else
            ((int64_t *)t->data)[i] = (int64_t)v->valuedouble;
    }
    return NULL;
}

/* The largest absolute difference of got against want (same dtype and size checked by caller),
 * at want's indices when it lists some. */
static double max_abs_diff(const ae_tensor *got, const golden_tensor *g)
{
    const ae_tensor *want = &g->t;
    size_t count = g->idx != NULL ? g->n_idx : want->size / ae_dtype_size(want->dtype);
    double worst = 0.0;
    for (size_t i = 0; i < count; i++) {
        size_t at = g->idx != NULL ? g->idx[i] : i;
        double a = got->dtype == AE_DTYPE_FLOAT32 ? ((const float *)got->data)[at]
                                                  : (double)((const int64_t *)got->data)[at];
        double b = want->dtype == AE_DTYPE_FLOAT32 ? ((const float *)want->data)[i]
                                                   : (double)((const int64_t *)want->data)[i];
        double d = fabs(a - b);
        if (!(d <= worst)) /* NaN counts as the worst */
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

typedef struct selftest_state {
    const char *model_dir;
    const char *golden_path;
    char *session_file;
    ae_session *session;
} selftest_state;

/* Run one case; @return 1 passed, 0 failed, -1 error (message printed). */
static int run_case(selftest_state *s, const cJSON *c, double tolerance, double *worst_all)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(c, "model");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(c, "inputs");
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(c, "outputs");
    if (!cJSON_IsString(model) || !cJSON_IsString(name) || !cJSON_IsObject(inputs) ||
        !cJSON_IsObject(outputs) || strchr(model->valuestring, '/') != NULL) {
        fprintf(stderr, "error: %s: a case needs model (a file name), name, inputs and outputs\n",
                s->golden_path);
        return -1;
    }
    char err[1024];
    if (s->session_file == NULL || strcmp(s->session_file, model->valuestring) != 0) {
        ae_session_free(s->session);
        s->session = NULL;
        free(s->session_file);
        s->session_file = strdup(model->valuestring);
        char *path = join_path(s->model_dir, model->valuestring);
        ae_status st = path == NULL || s->session_file == NULL
                           ? AE_ERR_NO_MEMORY
                           : ae_session_open(path, NULL, &s->session, err, sizeof err);
        free(path);
        if (st != AE_OK) {
            fprintf(stderr, "error: %s\n", st == AE_ERR_NO_MEMORY ? "out of memory" : err);
            return -1;
        }
    }
    size_t n_in = ae_session_input_count(s->session), n_out = ae_session_output_count(s->session);
    golden_tensor in[MAX_CASE_TENSORS], want[MAX_CASE_TENSORS];
    ae_tensor in_t[MAX_CASE_TENSORS], got[MAX_CASE_TENSORS];
    memset(in, 0, sizeof in);
    memset(want, 0, sizeof want);
    memset(got, 0, sizeof got);
    int result = -1;
    const char *why = NULL;
    if (n_in > MAX_CASE_TENSORS || n_out > MAX_CASE_TENSORS ||
        (size_t)cJSON_GetArraySize(inputs) != n_in) {
        why = "the case's inputs are not the model's inputs";
        goto done;
    }
    for (size_t i = 0; i < n_in; i++) {
        const ae_tensor_info *info = ae_session_input(s->session, i);
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(inputs, info->name);
        if (j == NULL) {
            why = "the case lacks one of the model's inputs";
            goto done;
        }
        if ((why = tensor_from_json(j, &in[i], 0)) != NULL)
            goto done;
        in_t[i] = in[i].t;
    }
    /* Outputs: every model output gets a buffer; the case lists the ones it recorded. */
    size_t recorded = 0;
    for (size_t i = 0; i < n_out; i++) {
        const ae_tensor_info *info = ae_session_output(s->session, i);
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(outputs, info->name);
        if (j != NULL) {
            if ((why = tensor_from_json(j, &want[i], 1)) != NULL)
                goto done;
            want[i].name = info->name;
            recorded++;
        }
    }
    if (recorded == 0 || recorded != (size_t)cJSON_GetArraySize(outputs)) {
        why = "the case's outputs are not outputs of the model";
        goto done;
    }
    /* Output buffers: the recorded size, or none yet; a run that finds a buffer too small has set
     * the output's dims, so the buffer grows to fit and the run is repeated. */
    for (size_t i = 0; i < n_out; i++) {
        got[i].size = want[i].name != NULL ? want[i].t.size : 1;
        if ((got[i].data = malloc(got[i].size)) == NULL) {
            why = "out of memory";
            goto done;
        }
    }
    for (size_t attempt = 0;; attempt++) {
        ae_status st = ae_session_run(s->session, in_t, n_in, got, n_out);
        if (st == AE_OK)
            break;
        int grew = 0;
        for (size_t i = 0; st == AE_ERR_INVALID_ARGUMENT && attempt < n_out && i < n_out; i++) {
            size_t need = ae_dtype_size(got[i].dtype);
            for (size_t a = 0; a < got[i].rank; a++)
                need *= (size_t)got[i].dims[a];
            if (need > got[i].size) {
                void *bigger = realloc(got[i].data, need);
                if (bigger == NULL) {
                    why = "out of memory";
                    goto done;
                }
                got[i].data = bigger;
                got[i].size = need;
                grew = 1;
            }
        }
        if (!grew) {
            fprintf(stderr, "error: %s/%s: case \"%s\": %s\n", s->model_dir, model->valuestring,
                    name->valuestring, ae_session_errmsg(s->session));
            goto done;
        }
    }
    double worst = 0.0;
    int shape_ok = 1;
    for (size_t i = 0; i < n_out; i++) {
        if (want[i].name == NULL)
            continue;
        if (got[i].rank != want[i].t.rank ||
            memcmp(got[i].dims, want[i].t.dims, got[i].rank * sizeof got[i].dims[0]) != 0) {
            shape_ok = 0;
            continue;
        }
        double d = max_abs_diff(&got[i], &want[i]);
        if (d > worst)
            worst = d;
    }
    int pass = shape_ok && worst <= tolerance;
    if (!shape_ok)
        worst = INFINITY;
    if (worst > *worst_all)
        *worst_all = worst;
    out_line o = {0};
    out_str(&o, "{\"case\": ");
    size_t label_len = strlen(model->valuestring) + 2 + strlen(name->valuestring) + 1;
    char *label = malloc(label_len);
    if (label != NULL) {
        snprintf(label, label_len, "%s: %s", model->valuestring, name->valuestring);
        out_json_string(&o, label, strlen(label));
        free(label);
    }
    char num[64];
    if (isinf(worst))
        snprintf(num, sizeof num, "null");
    else
        snprintf(num, sizeof num, "%.9g", worst);
    out_str(&o, ", \"max_abs_diff\": ");
    out_str(&o, num);
    snprintf(num, sizeof num, "%.9g", tolerance);
    out_str(&o, ", \"tolerance\": ");
    out_str(&o, num);
    out_str(&o, shape_ok ? "" : ", \"error\": \"output shape differs\"");
    out_str(&o, pass ? ", \"pass\": true}\n" : ", \"pass\": false}\n");
    if (o.failed || label == NULL) {
        why = "out of memory";
        free(o.data);
        goto done;
    }
    fwrite(o.data, 1, o.len, stdout);
    free(o.data);
    result = pass;
done:
    if (why != NULL)
        fprintf(stderr, "error: %s: case \"%s\": %s\n", s->golden_path, name->valuestring, why);
    for (size_t i = 0; i < MAX_CASE_TENSORS; i++) {
        free(in[i].t.data);
        free(want[i].t.data);
        free(in[i].idx);
        free(want[i].idx);
        free(got[i].data);
    }
    return result;
}

int cmd_selftest(int argc, char **argv)
{
    const char *model_dir = NULL;
    double tolerance = -1.0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(SELFTEST_USAGE, stdout);
            return EXIT_OK;
        } else if (strcmp(a, "--tolerance") == 0) {
            char *end = NULL;
            if (i + 1 >= argc)
                return usage_error("selftest", 1, "%s needs a value", a);
            tolerance = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || !(tolerance >= 0) || isinf(tolerance))
                return usage_error("selftest", 1, "--tolerance %s is not a number >= 0",
                                   argv[i]);
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("selftest", 1, "unknown option %s", a);
        } else if (model_dir == NULL) {
            model_dir = a;
        } else {
            return usage_error("selftest", 1, "unexpected argument %s", a);
        }
    }
    if (model_dir == NULL)
        return usage_error("selftest", 0, "%s needs the model directory", "selftest");

    char err[1024];
    ae_model *model = NULL;
    if (ae_model_load(model_dir, NULL, &model, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        return EXIT_ERROR;
    }
    ae_model_free(model); /* loading proved the directory; the cases get sessions of their own */

    int rc = EXIT_ERROR;
    selftest_state s = {model_dir, NULL, NULL, NULL};
    char *golden_path = join_path(model_dir, "golden.json");
    cJSON *golden = NULL;
    if (golden_path == NULL) {
        fputs("error: out of memory\n", stderr);
        goto done;
    }
    s.golden_path = golden_path;
    if (ae_json_load(golden_path, GOLDEN_MAX_BYTES, &golden, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(golden, "cases");
    const cJSON *tol = cJSON_GetObjectItemCaseSensitive(golden, "tolerance");
    if (!cJSON_IsArray(cases) || cJSON_GetArraySize(cases) == 0) {
        fprintf(stderr, "error: %s: \"cases\" is %s: needs a non-empty list of cases\n",
                golden_path, cJSON_IsArray(cases) ? "empty" : ae_json_kind(cases));
        goto done;
    }
    if (!cJSON_IsNumber(tol) || !(tol->valuedouble >= 0) || isinf(tol->valuedouble)) {
        if (cJSON_IsNumber(tol))
            fprintf(stderr, "error: %s: \"tolerance\" is %g, not a number >= 0\n", golden_path,
                    tol->valuedouble);
        else
            fprintf(stderr, "error: %s: \"tolerance\" is %s, not a number >= 0\n", golden_path,
                    ae_json_kind(tol));
        goto done;
    }
    if (tolerance < 0)
        tolerance = tol->valuedouble;
    int passed = 0, failed = 0;
    double worst = 0.0;
    for (const cJSON *c = cases->child; c != NULL; c = c->next) {
        int r = run_case(&s, c, tolerance, &worst);
        if (r < 0)
            goto done;
        if (r)
            passed++;
        else
            failed++;
    }
    if (fflush(stdout) != 0) {
        fputs("error: writing to stdout failed\n", stderr);
        goto done;
    }
    fprintf(stderr, "selftest: %d of %d cases passed (largest difference %.3g, tolerance %.3g)\n",
            passed, passed + failed, worst, tolerance);
    rc = failed ? EXIT_SELFTEST_FAILED : EXIT_OK;
done:
    cJSON_Delete(golden);
    free(golden_path);
    free(s.session_file);
    ae_session_free(s.session);
    return rc;
}

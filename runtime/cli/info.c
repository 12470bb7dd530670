/*
 * info.c - `alog-edge info <model directory>`: versions, target, and what the directory holds
 * (vocab size, each model's inputs and outputs), as one JSON object.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "alog_edge.h"
#include "cli.h"

const char INFO_USAGE[] =
    "usage: alog-edge info <model_dir>\n"
    "\n"
    "Prints one JSON object: the runtime and onnxruntime versions, the target, the vocab size,\n"
    "and every model (*.onnx) with the names, element types and shapes of its inputs and\n"
    "outputs. It reads vocab.json and the ONNX files only: `alog-edge selftest` loads the whole\n"
    "directory as run does (meta.json, parser.json) and replays golden.json.\n"
    "\n"
    "Exit status: 0 success; 1 error (a bad model directory: one line on stderr); 2 usage error.\n";

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The *.onnx regular files of a directory (not the saved optimised graphs), sorted by name.
 * @return 0 and *names / *count set (free each name and the array); -1 with errno set.
 */
static int list_models(const char *dir, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    size_t cap = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (len <= 5 || strcmp(entry->d_name + len - 5, ".onnx") != 0)
            continue;
        if (strstr(entry->d_name, ".opt-") != NULL)
            continue; /* a model's saved optimised graph (convert), not a model of its own */
        char *path = join_path(dir, entry->d_name);
        struct stat st;
        int regular = path != NULL && stat(path, &st) == 0 && S_ISREG(st.st_mode);
        free(path);
        if (!regular)
            continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 4;
            char **grown = realloc(*names, cap * sizeof *grown);
            if (grown == NULL)
                goto oom;
            *names = grown;
        }
        size_t size = len + 1;
        if (((*names)[*count] = malloc(size)) == NULL)
            goto oom;
        memcpy((*names)[*count], entry->d_name, size);
        (*count)++;
    }
    closedir(d);
    if (*count > 1)
        qsort(*names, *count, sizeof **names, compare_names);
    return 0;
oom:
    closedir(d);
    for (size_t i = 0; i < *count; i++)
        free((*names)[i]);
    free(*names);
    *names = NULL;
    *count = 0;
    return -1;
}

/* [dim, ...]: a number for a fixed axis, the axis name for a named one, null otherwise. */
static cJSON *shape_json(const ae_tensor_info *info)
{
    cJSON *shape = cJSON_CreateArray();
    for (size_t d = 0; shape != NULL && d < info->rank; d++) {
        cJSON *dim;
        if (info->dims[d] != AE_DIM_DYNAMIC)
            dim = cJSON_CreateNumber((double)info->dims[d]);
        else if (info->dim_names[d][0] != '\0')
            dim = cJSON_CreateString(info->dim_names[d]);
        else
            dim = cJSON_CreateNull();
        if (dim == NULL || !cJSON_AddItemToArray(shape, dim)) {
            cJSON_Delete(dim);
            cJSON_Delete(shape);
            return NULL;
        }
    }
    return shape;
}

/* [{"name":..., "type":..., "shape":[...]}, ...] of a session's inputs or outputs. */
static cJSON *tensors_json(const ae_session *session, int inputs)
{
    cJSON *list = cJSON_CreateArray();
    size_t n = inputs ? ae_session_input_count(session) : ae_session_output_count(session);
    for (size_t i = 0; list != NULL && i < n; i++) {
        const ae_tensor_info *info = inputs ? ae_session_input(session, i)
                                            : ae_session_output(session, i);
        cJSON *item = cJSON_CreateObject();
        cJSON *shape = shape_json(info);
        if (item == NULL || shape == NULL || !cJSON_AddItemToArray(list, item) ||
            cJSON_AddStringToObject(item, "name", info->name) == NULL ||
            cJSON_AddStringToObject(item, "type", ae_dtype_name(info->dtype)) == NULL ||
            !cJSON_AddItemToObject(item, "shape", shape)) {
            cJSON_Delete(list);
            return NULL;
        }
    }
    return list;
}

int cmd_info(const char *model_dir)
{
    char err[1024];
    int rc = EXIT_ERROR;
    char *vocab_path = join_path(model_dir, "vocab.json");
    ae_vocab *vocab = NULL;
    char **models = NULL;
    size_t n_models = 0;
    cJSON *root = NULL;
    char *text = NULL;
    if (vocab_path == NULL)
        goto oom;
    if (ae_vocab_load(vocab_path, &vocab, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    if (list_models(model_dir, &models, &n_models) != 0) {
        fprintf(stderr, "error: %s: %s\n", model_dir, strerror(errno));
        goto done;
    }

    root = cJSON_CreateObject();
    cJSON *list = NULL;
    if (root == NULL || cJSON_AddStringToObject(root, "runtime", "alog-edge") == NULL ||
        cJSON_AddStringToObject(root, "version", ae_version()) == NULL ||
        cJSON_AddStringToObject(root, "onnxruntime_version", ae_onnxruntime_version()) == NULL ||
        cJSON_AddNumberToObject(root, "onnxruntime_api_version",
                                ae_onnxruntime_api_version()) == NULL ||
        cJSON_AddStringToObject(root, "target", AE_TARGET) == NULL ||
        cJSON_AddStringToObject(root, "model_dir", model_dir) == NULL ||
        cJSON_AddNumberToObject(root, "vocab_size", (double)ae_vocab_size(vocab)) == NULL ||
        (list = cJSON_AddArrayToObject(root, "models")) == NULL)
        goto oom;

    for (size_t i = 0; i < n_models; i++) {
        char *path = join_path(model_dir, models[i]);
        if (path == NULL)
            goto oom;
        ae_session_params params = ae_session_default_params();
        ae_session *session = NULL;
        if (ae_session_open(path, &params, &session, err, sizeof err) != AE_OK) {
            fprintf(stderr, "error: %s\n", err);
            free(path);
            goto done;
        }
        free(path);
        cJSON *model = cJSON_CreateObject();
        cJSON *inputs = tensors_json(session, 1);
        cJSON *outputs = tensors_json(session, 0);
        ae_session_free(session);
        if (model == NULL || inputs == NULL || outputs == NULL ||
            !cJSON_AddItemToArray(list, model)) {
            cJSON_Delete(model);
            cJSON_Delete(inputs);
            cJSON_Delete(outputs);
            goto oom;
        }
        if (cJSON_AddStringToObject(model, "file", models[i]) == NULL ||
            !cJSON_AddItemToObject(model, "inputs", inputs)) {
            cJSON_Delete(inputs);
            cJSON_Delete(outputs);
            goto oom;
        }
        if (!cJSON_AddItemToObject(model, "outputs", outputs)) {
            cJSON_Delete(outputs);
            goto oom;
        }
    }
    if ((text = cJSON_PrintUnformatted(root)) == NULL)
        goto oom;
    if (puts(text) == EOF || fflush(stdout) != 0) {
        perror("error: writing to stdout");
        goto done;
    }
    rc = EXIT_OK;
    goto done;
oom:
    fputs("error: out of memory\n", stderr);
done:
    cJSON_free(text);
    cJSON_Delete(root);
    for (size_t i = 0; i < n_models; i++)
        free(models[i]);
    free(models);
    ae_vocab_free(vocab);
    free(vocab_path);
    return rc;
}


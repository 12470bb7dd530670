/*
 * jsonfile.c - reading the runtime's small JSON files with cJSON (see jsonfile.h).
 */
#include <stdlib.h>

#include "jsonfile.h"

ae_status ae_json_load(const char *path, size_t max_bytes, cJSON **root, char *err,
                       size_t err_len)
{
    *root = NULL;
    char *text = NULL;
    size_t len = 0, bad = 0, line = 0, col = 0;
    ae_status status = ae_read_file(path, max_bytes, &text, &len, err, err_len);
    if (status != AE_OK)
        return status;
    if (!ae_utf8_valid((const unsigned char *)text, len, &bad)) {
        ae_json_line_col(text, bad, &line, &col);
        status = ae_fail(AE_ERR_FORMAT, err, err_len,
                         "%s: invalid UTF-8 at byte %zu (line %zu, column %zu)", path, bad, line,
                         col);
    } else if ((bad = ae_json_find_nul_escape(text, len)) != (size_t)-1) {
        ae_json_line_col(text, bad, &line, &col);
        status = ae_fail(AE_ERR_FORMAT, err, err_len,
                         "%s: a NUL character (\\u0000) in a string at line %zu, column %zu",
                         path, line, col);
    } else {
        const char *end = NULL;
        *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
        if (*root == NULL) {
            size_t at = end != NULL && end >= text && end <= text + len ? (size_t)(end - text) : 0;
            ae_json_line_col(text, at, &line, &col);
            status = ae_fail(AE_ERR_FORMAT, err, err_len,
                             "%s: not valid JSON (line %zu, column %zu)", path, line, col);
        } else {
            while (end < text + len &&
                   (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
                end++;
            if (end < text + len) {
                ae_json_line_col(text, (size_t)(end - text), &line, &col);
                status = ae_fail(AE_ERR_FORMAT, err, err_len,
                                 "%s: unexpected content after the JSON value (line %zu, "
                                 "column %zu)", path, line, col);
                cJSON_Delete(*root);
                *root = NULL;
            }
        }
    }
    free(text);
    return status;
}

const char *ae_json_kind(const cJSON *item)
{
    if (item == NULL) return "missing";
    if (cJSON_IsObject(item)) return "an object";
    if (cJSON_IsArray(item)) return "an array";
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    return "an unknown value";
}

int ae_json_int(const cJSON *item, int64_t min, int64_t max, int64_t *value)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double v = item->valuedouble;
    if (!(v >= (double)min && v <= (double)max))
        return 0;
    int64_t i = (int64_t)v;
    if ((double)i != v)
        return 0;
    *value = i;
    return 1;
}

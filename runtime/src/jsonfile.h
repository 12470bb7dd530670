/*
 * jsonfile.h - reading the runtime's small JSON files (meta.json, parser.json's extra fields)
 * with cJSON, with errors as "<path>: <what>". Not part of the public API.
 */
#ifndef ALOG_EDGE_JSONFILE_H
#define ALOG_EDGE_JSONFILE_H

#include <cjson/cJSON.h>

#include "internal.h"

/*
 * Read and parse a JSON file of at most max_bytes: valid UTF-8, no \u0000 escape, nothing after
 * the value.
 * @return AE_OK and *root (cJSON_Delete it); AE_ERR_IO, AE_ERR_TOO_LARGE, AE_ERR_FORMAT or
 *         AE_ERR_NO_MEMORY with "<path>: <what>" in err.
 */
ae_status ae_json_load(const char *path, size_t max_bytes, cJSON **root, char *err,
                       size_t err_len);

/* What a JSON value is, for messages: "missing", "a string", "null", ...
 * @return a static string. */
const char *ae_json_kind(const cJSON *item);

/*
 * An integral JSON number within [min, max].
 * @return 1 and *value; 0 if item is not such a number.
 */
int ae_json_int(const cJSON *item, int64_t min, int64_t max, int64_t *value);

#endif /* ALOG_EDGE_JSONFILE_H */

/*
 * vocab.c - the model directory's vocab.json (C form: {"0": "<template>", ...}).
 *
 * Templates live in one arena; an open-addressing hash table (FNV-1a, linear probing, load
 * factor at most 1/2) maps a template back to its index without scanning.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "jsonfile.h"

struct ae_vocab {
    size_t n;
    char *arena;          /* the templates, each NUL-terminated */
    const char **templates; /* n pointers into arena */
    size_t *lengths;      /* n lengths in bytes */
    uint32_t *slots;      /* index + 1, or 0 for an empty slot */
    size_t mask;          /* slot count - 1 (a power of two) */
};

/* Largest vocab: slots hold index + 1 in 32 bits. */
#define AE_VOCAB_MAX_ENTRIES ((size_t)UINT32_MAX - 1)

void ae_vocab_free(ae_vocab *vocab)
{
    if (vocab == NULL)
        return;
    free(vocab->arena);
    free(vocab->templates);
    free(vocab->lengths);
    free(vocab->slots);
    free(vocab);
}

size_t ae_vocab_size(const ae_vocab *vocab)
{
    return vocab == NULL ? 0 : vocab->n;
}

const char *ae_vocab_template(const ae_vocab *vocab, size_t index)
{
    if (vocab == NULL || index >= vocab->n)
        return NULL;
    return vocab->templates[index];
}

ae_status ae_vocab_lookup_n(const ae_vocab *vocab, const char *template_, size_t len,
                            size_t *index)
{
    if (vocab == NULL || template_ == NULL || index == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    for (size_t slot = (size_t)ae_fnv1a(template_, len) & vocab->mask;;
         slot = (slot + 1) & vocab->mask) {
        uint32_t entry = vocab->slots[slot];
        if (entry == 0)
            return AE_ERR_NOT_FOUND;
        size_t i = entry - 1;
        if (vocab->lengths[i] == len && memcmp(vocab->templates[i], template_, len) == 0) {
            *index = i;
            return AE_OK;
        }
    }
}

ae_status ae_vocab_lookup(const ae_vocab *vocab, const char *template_, size_t *index)
{
    if (template_ == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    return ae_vocab_lookup_n(vocab, template_, strlen(template_), index);
}

/* A key as an index: 0 = ok, -1 = not decimal, -2 = negative, -3 = leading zero, -4 = huge. */
static int parse_index(const char *key, size_t *value)
{
    if (key[0] == '-' && key[1] >= '0' && key[1] <= '9')
        return -2;
    if (key[0] == '\0')
        return -1;
    size_t v = 0;
    for (const char *p = key; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v > (SIZE_MAX - 9) / 10)
            return -4;
        v = v * 10 + (size_t)(*p - '0');
    }
    if (key[0] == '0' && key[1] != '\0')
        return -3;
    *value = v;
    return 0;
}

/* Insert index i into the table; fails (returning the other index + 1) on an equal template. */
static size_t hash_insert(ae_vocab *v, size_t i)
{
    for (size_t slot = (size_t)ae_fnv1a(v->templates[i], v->lengths[i]) & v->mask;;
         slot = (slot + 1) & v->mask) {
        uint32_t entry = v->slots[slot];
        if (entry == 0) {
            v->slots[slot] = (uint32_t)(i + 1);
            return 0;
        }
        size_t j = entry - 1;
        if (v->lengths[j] == v->lengths[i] &&
            memcmp(v->templates[j], v->templates[i], v->lengths[i]) == 0)
            return j + 1;
    }
}

/* Validate the parsed object and build the vocab from it. */
/* Every key a decimal number: the template_id form {"<template id>": index}. */
static int all_keys_are_ids(const cJSON *root)
{
    for (const cJSON *item = root->child; item != NULL; item = item->next) {
        const char *k = item->string;
        if (k == NULL || *k == '\0')
            return 0;
        for (; *k != '\0'; k++)
            if (*k < '0' || *k > '9')
                return 0;
    }
    return 1;
}

static ae_status build(const char *path, const cJSON *root, ae_vocab **out, char *err,
                       size_t err_len)
{
    if (!cJSON_IsObject(root))
        return ae_fail(AE_ERR_FORMAT, err, err_len,
                       "%s: expected a JSON object {\"0\": \"<template>\", ...}, found %s", path,
                       ae_json_kind(root));
    size_t n = 0, numbers = 0;
    for (const cJSON *item = root->child; item != NULL; item = item->next) {
        n++;
        if (cJSON_IsNumber(item))
            numbers++;
    }
    if (n == 0)
        return ae_fail(AE_ERR_FORMAT, err, err_len, "%s: the vocab is empty", path);
    if (numbers == n && all_keys_are_ids(root))
        return ae_fail(AE_ERR_FORMAT, err, err_len,
                       "%s: this is a template_id vocab {\"<template id>\": index}; the model "
                       "directory needs the C form {\"<index>\": \"<template>\"}: turn it into "
                       "the training form with `invoke fix-vocab`, then run `invoke convert`",
                       path);
    if (numbers == n)
        return ae_fail(AE_ERR_FORMAT, err, err_len,
                       "%s: this is the training form {\"<template>\": index}; the model directory "
                       "needs the C form {\"<index>\": \"<template>\"}: run `invoke convert`",
                       path);
    if (n > AE_VOCAB_MAX_ENTRIES)
        return ae_fail(AE_ERR_TOO_LARGE, err, err_len, "%s: too many entries (%zu)", path, n);

    ae_status status = AE_ERR_NO_MEMORY;
    ae_vocab *v = calloc(1, sizeof *v);
    const cJSON **by_index = calloc(n, sizeof *by_index);
    if (v == NULL || by_index == NULL)
        goto oom;
    v->n = n;

    size_t arena_size = 0;
    for (const cJSON *item = root->child; item != NULL; item = item->next) {
        size_t index = 0;
        switch (parse_index(item->string, &index)) {
        case -1:
            status = ae_fail(AE_ERR_FORMAT, err, err_len,
                             "%s: key \"%s\" is not a decimal index (keys are 0..N-1)", path,
                             item->string);
            goto fail;
        case -2:
            status = ae_fail(AE_ERR_FORMAT, err, err_len,
                             "%s: key \"%s\" is negative (keys are 0..N-1)", path, item->string);
            goto fail;
        case -3:
            status = ae_fail(AE_ERR_FORMAT, err, err_len,
                             "%s: key \"%s\" has a leading zero (keys are 0..N-1)", path,
                             item->string);
            goto fail;
        case -4:
            index = n; /* out of range: reported as a missing index below */
            break;
        default:
            break;
        }
        if (!cJSON_IsString(item)) {
            status = ae_fail(AE_ERR_FORMAT, err, err_len,
                             "%s: the value of key \"%s\" is %s, not a template string", path,
                             item->string, ae_json_kind(item));
            goto fail;
        }
        if (index >= n)
            continue; /* some index below n is then missing: reported below */
        if (by_index[index] != NULL) {
            status = ae_fail(AE_ERR_FORMAT, err, err_len, "%s: duplicate key \"%s\"", path,
                             item->string);
            goto fail;
        }
        by_index[index] = item;
        size_t len = strlen(item->valuestring);
        if (len >= SIZE_MAX - arena_size - 1) {
            status = ae_fail(AE_ERR_TOO_LARGE, err, err_len, "%s: templates too large", path);
            goto fail;
        }
        arena_size += len + 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (by_index[i] == NULL) {
            status = ae_fail(AE_ERR_FORMAT, err, err_len,
                             "%s: index %zu is missing: keys must be the dense indices 0..%zu",
                             path, i, n - 1);
            goto fail;
        }
    }

    size_t slots = 1;
    while (slots < 2 * n)
        slots <<= 1;
    v->arena = malloc(arena_size);
    v->templates = malloc(n * sizeof *v->templates);
    v->lengths = malloc(n * sizeof *v->lengths);
    v->slots = calloc(slots, sizeof *v->slots);
    if (v->arena == NULL || v->templates == NULL || v->lengths == NULL || v->slots == NULL)
        goto oom;
    v->mask = slots - 1;
    char *dst = v->arena;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(by_index[i]->valuestring);
        memcpy(dst, by_index[i]->valuestring, len + 1);
        v->templates[i] = dst;
        v->lengths[i] = len;
        dst += len + 1;
        size_t other = hash_insert(v, i);
        if (other != 0) {
            status = ae_fail(AE_ERR_FORMAT, err, err_len,
                             "%s: keys \"%zu\" and \"%zu\" have the same template", path,
                             other - 1, i);
            goto fail;
        }
    }
    free(by_index);
    *out = v;
    return AE_OK;

oom:
    status = ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", path);
fail:
    free(by_index);
    ae_vocab_free(v);
    return status;
}

ae_status ae_vocab_load_limited(const char *path, size_t max_bytes, ae_vocab **out, char *err,
                                size_t err_len)
{
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (out == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "ae_vocab_load: out is NULL");
    *out = NULL;
    if (path == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "ae_vocab_load: path is NULL");

    char *text = NULL;
    size_t len = 0;
    ae_status status = ae_read_file(path, max_bytes, &text, &len, err, err_len);
    if (status != AE_OK)
        return status;

    size_t bad = 0, line = 0, col = 0;
    if (!ae_utf8_valid((const unsigned char *)text, len, &bad)) {
        ae_json_line_col(text, bad, &line, &col);
        status = ae_fail(AE_ERR_FORMAT, err, err_len,
                         "%s: invalid UTF-8 at byte %zu (line %zu, column %zu)", path, bad, line,
                         col);
        free(text);
        return status;
    }
    if ((bad = ae_json_find_nul_escape(text, len)) != (size_t)-1) {
        ae_json_line_col(text, bad, &line, &col);
        status = ae_fail(AE_ERR_FORMAT, err, err_len,
                         "%s: a NUL character (\\u0000) in a string at line %zu, column %zu",
                         path, line, col);
        free(text);
        return status;
    }

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root == NULL) {
        size_t offset = end != NULL && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        ae_json_line_col(text, offset, &line, &col);
        status = ae_fail(AE_ERR_FORMAT, err, err_len, "%s: not valid JSON (line %zu, column %zu)",
                         path, line, col);
        free(text);
        return status;
    }
    while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end < text + len) {
        ae_json_line_col(text, (size_t)(end - text), &line, &col);
        status = ae_fail(AE_ERR_FORMAT, err, err_len,
                         "%s: unexpected content after the JSON object (line %zu, column %zu)",
                         path, line, col);
    } else {
        status = build(path, root, out, err, err_len);
    }
    cJSON_Delete(root);
    free(text);
    return status;
}

ae_status ae_vocab_load(const char *path, ae_vocab **out, char *err, size_t err_len)
{
    return ae_vocab_load_limited(path, AE_VOCAB_MAX_BYTES, out, err, err_len);
}

/*
 * fields.c - a line's host, timestamp and session ids, as the Python parser finds them
 * (parse.split_lines, parse.timestamps, parse.sessions, dataset.session_of_lines).
 *
 * The host and timestamp fields are named groups of line_regex: the matcher keeps their spans
 * from its own match, so a line is not matched twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "jsonfile.h"

struct ae_fields {
    int shared;             /* a clone: session_re is its original's (timefmt is a clone too) */
    int has_host;
    size_t host_slot;

    ae_timefmt *timefmt; /* NULL: no timestamps */
    int yearless;
    size_t ts_slots[AE_MATCHER_MAX_KEPT];
    size_t n_ts;
    char *ts_buf;
    size_t ts_cap;

    pcre2_code *session_re; /* NULL: no session ids */
    int session_group;      /* 1 if the regex has groups, else 0 (the whole match) */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    ae_strspan *ids;        /* the distinct matches, then the keys they split into */
    size_t n_ids, cap_ids;
    ae_strspan *keys;
    size_t cap_keys;
};

void ae_fields_free(ae_fields *f)
{
    if (f == NULL)
        return;
    ae_timefmt_free(f->timefmt);
    free(f->ts_buf);
    if (!f->shared)
        pcre2_code_free(f->session_re);
    pcre2_match_data_free(f->md);
    pcre2_match_context_free(f->mctx);
    pcre2_jit_stack_free(f->jit_stack);
    free(f->ids);
    free(f->keys);
    free(f);
}

/* A group of line_regex the matcher keeps for us. */
static ae_status keep(ae_matcher *m, const char *path, const char *what, const char *name,
                      size_t *slot, char *err, size_t err_len)
{
    ae_status status = ae_matcher_keep_group(m, name, slot);
    if (status == AE_ERR_NOT_FOUND)
        return ae_fail(AE_ERR_FORMAT, err, err_len,
                       "%s: %s \"%.100s\" is not a group of line_regex", path, what, name);
    if (status == AE_ERR_TOO_LARGE)
        return ae_fail(AE_ERR_FORMAT, err, err_len, "%s: %s: more than %d fields", path, what,
                       AE_MATCHER_MAX_KEPT - 1);
    return status;
}

/* The match data of session_regex (each clone has its own). @return 0, or -1 out of memory. */
static int session_scratch(ae_fields *f)
{
    f->md = pcre2_match_data_create_from_pattern(f->session_re, NULL);
    f->mctx = pcre2_match_context_create(NULL);
    f->jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    if (f->md == NULL || f->mctx == NULL || f->jit_stack == NULL)
        return -1;
    pcre2_jit_stack_assign(f->mctx, NULL, f->jit_stack);
    pcre2_set_heap_limit(f->mctx, 64 * 1024); /* KiB, for the interpreter */
    return 0;
}

/* Python's re.compile(session_regex), through the same translation as the matcher's regexes. */
static ae_status compile_session_regex(ae_fields *f, const char *path, const char *pattern,
                                       char *err, size_t err_len)
{
    char *translated = NULL, why[256];
    size_t translated_len = 0;
    ae_status status = ae_pyre_translate(pattern, strlen(pattern), &translated, &translated_len,
                                         NULL, why, sizeof why);
    if (status != AE_OK)
        return ae_fail(status, err, err_len, "%s: session_regex: %s in the pattern \"%.300s\"",
                       path, why, pattern);
    int code = 0;
    PCRE2_SIZE offset = 0;
    f->session_re = pcre2_compile((PCRE2_SPTR)translated, translated_len,
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C, &code, &offset,
                                  NULL);
    free(translated);
    if (f->session_re == NULL) {
        PCRE2_UCHAR msg[200];
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", code);
        return ae_fail(AE_ERR_FORMAT, err, err_len,
                       "%s: session_regex: invalid regex: %s in \"%.300s\"", path,
                       (const char *)msg, pattern);
    }
    (void)pcre2_jit_compile(f->session_re, PCRE2_JIT_COMPLETE);
    uint32_t groups = 0;
    pcre2_pattern_info(f->session_re, PCRE2_INFO_CAPTURECOUNT, &groups);
    f->session_group = groups > 0;
    if (session_scratch(f) != 0)
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", path);
    return AE_OK;
}

ae_status ae_fields_clone(const ae_fields *f, ae_fields **out)
{
    *out = NULL;
    ae_fields *c = calloc(1, sizeof *c);
    if (c == NULL)
        return AE_ERR_NO_MEMORY;
    c->shared = 1;
    c->has_host = f->has_host;
    c->host_slot = f->host_slot;
    c->yearless = f->yearless;
    memcpy(c->ts_slots, f->ts_slots, sizeof c->ts_slots);
    c->n_ts = f->n_ts;
    c->session_re = f->session_re;
    c->session_group = f->session_group;
    if ((f->timefmt != NULL && ae_timefmt_clone(f->timefmt, &c->timefmt) != AE_OK) ||
        (c->session_re != NULL && session_scratch(c) != 0)) {
        ae_fields_free(c);
        return AE_ERR_NO_MEMORY;
    }
    *out = c;
    return AE_OK;
}

static ae_status load_timestamp(ae_fields *f, ae_matcher *m, const char *path,
                                const cJSON *ts, char *err, size_t err_len)
{
    if (ts == NULL || cJSON_IsNull(ts))
        return AE_OK;
    if (!cJSON_IsObject(ts))
        return ae_fail(AE_ERR_FORMAT, err, err_len, "%s: timestamp is %s, not an object", path,
                       ae_json_kind(ts));
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(ts, "fields");
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(ts, "format");
    const cJSON *yearless = cJSON_GetObjectItemCaseSensitive(ts, "yearless");
    if (fields != NULL && !cJSON_IsNull(fields) && !cJSON_IsArray(fields))
        return ae_fail(AE_ERR_FORMAT, err, err_len, "%s: timestamp.fields is %s, not an array",
                       path, ae_json_kind(fields));
    if (format != NULL && !cJSON_IsNull(format) && !cJSON_IsString(format))
        return ae_fail(AE_ERR_FORMAT, err, err_len, "%s: timestamp.format is %s, not a string",
                       path, ae_json_kind(format));
    if (yearless != NULL && !cJSON_IsNull(yearless) && !cJSON_IsBool(yearless))
        return ae_fail(AE_ERR_FORMAT, err, err_len,
                       "%s: timestamp.yearless is %s, not a boolean", path,
                       ae_json_kind(yearless));
    /* Python: no format or no fields -> no timestamps. */
    if (!cJSON_IsString(format) || format->valuestring[0] == '\0' || !cJSON_IsArray(fields) ||
        cJSON_GetArraySize(fields) == 0)
        return AE_OK;
    size_t i = 0;
    for (const cJSON *name = fields->child; name != NULL; name = name->next, i++) {
        if (!cJSON_IsString(name))
            return ae_fail(AE_ERR_FORMAT, err, err_len,
                           "%s: timestamp.fields[%zu] is %s, not a string", path, i,
                           ae_json_kind(name));
        if (f->n_ts == AE_MATCHER_MAX_KEPT - 1)
            return ae_fail(AE_ERR_FORMAT, err, err_len, "%s: timestamp.fields: more than %d",
                           path, AE_MATCHER_MAX_KEPT - 1);
        ae_status status = keep(m, path, "timestamp field", name->valuestring,
                                &f->ts_slots[f->n_ts], err, err_len);
        if (status != AE_OK)
            return status;
        f->n_ts++;
    }
    f->yearless = cJSON_IsTrue(yearless);
    const char *text = format->valuestring;
    char *prefixed = NULL;
    if (f->yearless) { /* parse.timestamps: "%Y " + format, "<year> " + text */
        size_t len = strlen(text);
        if ((prefixed = malloc(len + 4)) == NULL)
            return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", path);
        memcpy(prefixed, "%Y ", 3);
        memcpy(prefixed + 3, text, len + 1);
        text = prefixed;
    }
    char why[256];
    ae_status status = ae_timefmt_new(text, &f->timefmt, why, sizeof why);
    free(prefixed);
    if (status != AE_OK)
        return ae_fail(status, err, err_len, "%s: timestamp.format \"%.100s\": %s", path,
                       format->valuestring, why);
    return AE_OK;
}

static ae_status load(ae_fields *f, ae_matcher *m, const char *path, const cJSON *root,
                      char *err, size_t err_len)
{
    if (!cJSON_IsObject(root))
        return ae_fail(AE_ERR_FORMAT, err, err_len, "%s: not a JSON object", path);
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(root, "host_field");
    if (host != NULL && !cJSON_IsNull(host)) {
        if (!cJSON_IsString(host))
            return ae_fail(AE_ERR_FORMAT, err, err_len, "%s: host_field is %s, not a string",
                           path, ae_json_kind(host));
        ae_status status = keep(m, path, "host_field", host->valuestring, &f->host_slot, err,
                                err_len);
        if (status != AE_OK)
            return status;
        f->has_host = 1;
    }
    const cJSON *session = cJSON_GetObjectItemCaseSensitive(root, "session_regex");
    if (session != NULL && !cJSON_IsNull(session)) {
        if (!cJSON_IsString(session))
            return ae_fail(AE_ERR_FORMAT, err, err_len, "%s: session_regex is %s, not a string",
                           path, ae_json_kind(session));
        if (session->valuestring[0] != '\0') { /* Python: an empty regex means none */
            ae_status status = compile_session_regex(f, path, session->valuestring, err,
                                                     err_len);
            if (status != AE_OK)
                return status;
        }
    }
    return load_timestamp(f, m, path, cJSON_GetObjectItemCaseSensitive(root, "timestamp"), err,
                          err_len);
}

ae_status ae_fields_load(const char *path, ae_matcher *m, ae_fields **out, char *err,
                         size_t err_len)
{
    if (out == NULL || path == NULL || m == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "ae_fields_load: NULL argument");
    *out = NULL;
    cJSON *root = NULL;
    ae_status status = ae_json_load(path, AE_PARSER_MAX_BYTES, &root, err, err_len);
    if (status != AE_OK)
        return status;
    ae_fields *f = calloc(1, sizeof *f);
    if (f == NULL)
        status = ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory", path);
    else
        status = load(f, m, path, root, err, err_len);
    cJSON_Delete(root);
    if (status != AE_OK) {
        ae_fields_free(f);
        return status;
    }
    *out = f;
    return AE_OK;
}

int ae_fields_has_timestamp(const ae_fields *f)
{
    return f != NULL && f->timefmt != NULL;
}

int ae_fields_host(const ae_fields *f, const ae_matcher *m, const char *line, ae_strspan *host)
{
    size_t start, len;
    if (f == NULL || !f->has_host || !ae_matcher_kept(m, f->host_slot, &start, &len))
        return 0;
    host->p = line + start;
    host->len = len;
    return 1;
}

static int ts_reserve(ae_fields *f, size_t need)
{
    if (need <= f->ts_cap)
        return 0;
    size_t cap = f->ts_cap ? f->ts_cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(f->ts_buf, cap);
    if (p == NULL)
        return -1;
    f->ts_buf = p;
    f->ts_cap = cap;
    return 0;
}

int ae_fields_timestamp(ae_fields *f, const ae_matcher *m, const char *line, int year,
                        int64_t *us)
{
    if (f == NULL || f->timefmt == NULL)
        return 0;
    size_t start, len;
    if (f->n_ts == 1 && !f->yearless) { /* the usual case: parse the field in place */
        if (!ae_matcher_kept(m, f->ts_slots[0], &start, &len))
            return 0;
        return ae_timefmt_parse(f->timefmt, line + start, len, us);
    }
    /* The fields joined by single spaces, after "<year> " for a yearless format. */
    size_t n = 0;
    if (f->yearless) {
        char prefix[24];
        int k = snprintf(prefix, sizeof prefix, "%d ", year);
        if (ts_reserve(f, (size_t)k + 1) != 0)
            return -1;
        memcpy(f->ts_buf, prefix, (size_t)k);
        n = (size_t)k;
    }
    for (size_t i = 0; i < f->n_ts; i++) {
        if (!ae_matcher_kept(m, f->ts_slots[i], &start, &len))
            return 0; /* a missing field makes the whole text missing */
        if (ts_reserve(f, n + len + 2) != 0)
            return -1;
        if (i > 0)
            f->ts_buf[n++] = ' ';
        memcpy(f->ts_buf + n, line + start, len);
        n += len;
    }
    return ae_timefmt_parse(f->timefmt, f->ts_buf, n, us);
}

static int push_span(ae_strspan **array, size_t *cap, size_t n, const char *p, size_t len)
{
    if (n == *cap) {
        size_t grown_cap = *cap ? 2 * *cap : 8;
        ae_strspan *grown = realloc(*array, grown_cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        *array = grown;
        *cap = grown_cap;
    }
    (*array)[n] = (ae_strspan){p, len};
    return 0;
}

ae_status ae_fields_sessions(ae_fields *f, const char *content, size_t len,
                             const ae_strspan **ids, size_t *n, char *why, size_t why_len)
{
    *ids = NULL;
    *n = 0;
    if (f == NULL || f->session_re == NULL)
        return AE_OK;
    /* Python's finditer: after an empty match the next may not be empty at the same place. */
    size_t n_ids = 0, pos = 0;
    uint32_t options = 0;
    while (pos <= len) {
        int rc = pcre2_match(f->session_re, (PCRE2_SPTR)content, len, pos,
                             options | PCRE2_NO_UTF_CHECK, f->md, f->mctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(f->session_re, (PCRE2_SPTR)content, len, pos,
                             options | PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, f->md, f->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return ae_fail(rc == PCRE2_ERROR_NOMEMORY ? AE_ERR_NO_MEMORY : AE_ERR_TOO_LARGE, why,
                           why_len, "session_regex: the regex engine gave up on this line");
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(f->md);
        size_t a = ov[0], b = ov[1];
        if (b < a) /* \K tricks; Python patterns have none */
            break;
        size_t ga = ov[2 * f->session_group], gb = ov[2 * f->session_group + 1];
        if (ga != PCRE2_UNSET && gb >= ga) { /* an unset group 1: Python fails; skip it */
            int seen = 0;
            for (size_t i = 0; i < n_ids && !seen; i++)
                seen = f->ids[i].len == gb - ga && memcmp(f->ids[i].p, content + ga, gb - ga) == 0;
            if (!seen && push_span(&f->ids, &f->cap_ids, n_ids++, content + ga, gb - ga) != 0)
                return ae_fail(AE_ERR_NO_MEMORY, why, why_len, "out of memory");
        }
        options = a == b ? PCRE2_NOTEMPTY_ATSTART : 0;
        pos = b;
    }
    /* " ".join(ids).split(" "): an id with spaces names several sessions. */
    size_t n_keys = 0;
    for (size_t i = 0; i < n_ids; i++) {
        const char *p = f->ids[i].p, *end = p + f->ids[i].len;
        for (;;) {
            const char *space = memchr(p, ' ', (size_t)(end - p));
            const char *stop = space != NULL ? space : end;
            if (push_span(&f->keys, &f->cap_keys, n_keys++, p, (size_t)(stop - p)) != 0)
                return ae_fail(AE_ERR_NO_MEMORY, why, why_len, "out of memory");
            if (space == NULL)
                break;
            p = space + 1;
        }
    }
    *ids = f->keys;
    *n = n_keys;
    return AE_OK;
}

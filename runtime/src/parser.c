/*
 * parser.c - loading a parser.json into a matcher: validation, regex compilation (Python `re`
 * patterns through match_regex.c), and the indexes that spare a scan of every template per line:
 *
 * - mode "drain": one trie per token count; a node has exact children (a hash keyed by the
 *   parent and the token) and one wildcard child for "<*>"; a leaf holds the earliest template
 *   with that token sequence.
 * - mode "templates": a template with a literal prefix sits in a trie of prefixes (only the
 *   templates whose prefix starts a line can match it), else one with a literal suffix in a
 *   trie of reversed suffixes, else in an Aho-Corasick automaton over its longest literal part
 *   (only the templates whose part occurs in the line can match it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jsonfile.h"
#include "match_impl.h"

/* Short names for ae_load_fail and ae_load_oom (matcher.c): this file reports most of
 * parser.json's errors. */
#define lfail ae_load_fail
#define oom ae_load_oom

/* ---------------------------------------------------------------------------------------------
 * JSON helpers
 */

static const cJSON *field(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* A string field: required (missing -> error) or optional (missing or null -> fallback). */
static ae_status get_string(ae_loader *L, const cJSON *obj, const char *name, const char *where,
                            const char *fallback, const char **out)
{
    const cJSON *item = field(obj, name);
    if ((item == NULL || cJSON_IsNull(item)) && fallback != NULL) {
        *out = fallback;
        return AE_OK;
    }
    if (item == NULL)
        return lfail(L, AE_ERR_FORMAT, "%s%s is missing", where, name);
    if (!cJSON_IsString(item))
        return lfail(L, AE_ERR_FORMAT, "%s%s is %s, not a string", where, name, ae_json_kind(item));
    *out = item->valuestring;
    return AE_OK;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Refuse a key repeated in any object: Python's json keeps the last value, cJSON finds the first,
 * so the two would read different parsers. `where` names the value ("" for the top level).
 */
static ae_status check_unique_keys(ae_loader *L, const cJSON *item, const char *where)
{
    if (cJSON_IsObject(item)) {
        size_t n = 0;
        for (const cJSON *c = item->child; c != NULL; c = c->next)
            n++;
        const char *repeated = NULL;
        if (n <= 8) {
            for (const cJSON *a = item->child; a != NULL && repeated == NULL; a = a->next)
                for (const cJSON *b = a->next; b != NULL; b = b->next)
                    if (strcmp(a->string, b->string) == 0) {
                        repeated = a->string;
                        break;
                    }
        } else {
            const char **keys = malloc(n * sizeof *keys);
            if (keys == NULL)
                return oom(L);
            size_t i = 0;
            for (const cJSON *c = item->child; c != NULL; c = c->next)
                keys[i++] = c->string;
            qsort(keys, n, sizeof *keys, compare_keys);
            for (i = 1; i < n && repeated == NULL; i++)
                if (strcmp(keys[i - 1], keys[i]) == 0)
                    repeated = keys[i];
            free(keys);
        }
        if (repeated != NULL)
            return lfail(L, AE_ERR_FORMAT, "the key \"%.100s\" appears twice in %s", repeated,
                         where[0] ? where : "the top-level object");
    }
    if (!cJSON_IsObject(item) && !cJSON_IsArray(item))
        return AE_OK;
    size_t i = 0;
    for (const cJSON *c = item->child; c != NULL; c = c->next, i++) {
        if (!cJSON_IsObject(c) && !cJSON_IsArray(c))
            continue;
        char inner[256];
        if (cJSON_IsObject(item))
            snprintf(inner, sizeof inner, "%s%s%.60s", where, where[0] ? "." : "", c->string);
        else
            snprintf(inner, sizeof inner, "%s[%zu]", where, i);
        ae_status status = check_unique_keys(L, c, inner);
        if (status != AE_OK)
            return status;
    }
    return AE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Regexes
 */

/*
 * Compiles a Python pattern twice: *out with UTF + UCP (Python's str semantics) and *ascii_out
 * with UTF alone, whose \w, \d, \b and POSIX classes are ASCII-only: on a text of ASCII
 * characters both give the same answers, and the second is faster.
 */
static ae_status compile(ae_loader *L, const char *what, const char *pattern, uint32_t options,
                         pcre2_code **out, pcre2_code **ascii_out)
{
    ae_matcher *m = L->m;
    char *translated = NULL;
    size_t translated_len = 0, *map = NULL;
    char why[256];
    size_t len = strlen(pattern);
    ae_status status = ae_pyre_translate(pattern, len, &translated, &translated_len, &map, why,
                                         sizeof why);
    if (status == AE_ERR_NO_MEMORY)
        return oom(L);
    if (status != AE_OK)
        return lfail(L, status, "%s: %s in the pattern \"%.300s\"", what, why, pattern);
    int code = 0;
    PCRE2_SIZE offset = 0;
    *out = pcre2_compile((PCRE2_SPTR)translated, translated_len,
                         PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C | options, &code, &offset,
                         m->cctx);
    if (*out == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", code);
        size_t at = offset <= translated_len ? map[offset] : len;
        free(translated);
        free(map);
        if (code == PCRE2_ERROR_NOMEMORY)
            return oom(L);
        return lfail(L, AE_ERR_FORMAT, "%s: invalid regex: %s at offset %zu of \"%.300s\"", what,
                     (const char *)msg, at, pattern);
    }
    *ascii_out = pcre2_compile((PCRE2_SPTR)translated, translated_len,
                               PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C | options, &code, &offset,
                               m->cctx);
    free(translated);
    free(map);
    if (*ascii_out == NULL && code == PCRE2_ERROR_NOMEMORY)
        return oom(L);
    /* JIT when the platform allows it; otherwise PCRE2's interpreter gives the same results. */
    (void)pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE);
    if (*ascii_out != NULL) /* else the UCP one serves every text */
        (void)pcre2_jit_compile(*ascii_out, PCRE2_JIT_COMPLETE);
    return AE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Templates
 */

/* A positive integral JSON number (cluster_id). */
static int positive_integer(const cJSON *item, int64_t *value)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double v = item->valuedouble;
    if (!(v >= 1.0 && v <= 9007199254740992.0))
        return 0;
    int64_t i = (int64_t)v;
    if ((double)i != v)
        return 0;
    *value = i;
    return 1;
}

static ae_status load_templates(ae_loader *L, const cJSON *templates)
{
    ae_matcher *m = L->m;
    size_t n = (size_t)cJSON_GetArraySize(templates);
    if (n >= UINT32_MAX - 1)
        return lfail(L, AE_ERR_TOO_LARGE, "too many templates (%zu)", n);
    m->tpls = calloc(n ? n : 1, sizeof *m->tpls);
    if (m->tpls == NULL)
        return oom(L);
    ae_imap ids = {0};
    ae_status status = AE_OK;
    size_t t = 0;
    for (const cJSON *e = templates->child; e != NULL; e = e->next, t++) {
        char where[64];
        snprintf(where, sizeof where, "templates[%zu]", t);
        if (!cJSON_IsObject(e)) {
            status = lfail(L, AE_ERR_FORMAT, "%s is %s, not an object", where, ae_json_kind(e));
            break;
        }
        ae_tpl *tpl = &m->tpls[t];
        m->n_tpls = t + 1;
        const cJSON *id = field(e, "cluster_id");
        if (id == NULL) {
            status = lfail(L, AE_ERR_FORMAT, "%s.cluster_id is missing", where);
            break;
        }
        if (!positive_integer(id, &tpl->cluster_id)) {
            if (cJSON_IsNumber(id))
                status = lfail(L, AE_ERR_FORMAT, "%s.cluster_id is %g, not a positive integer",
                               where, id->valuedouble);
            else
                status = lfail(L, AE_ERR_FORMAT, "%s.cluster_id is %s, not a positive integer",
                               where, ae_json_kind(id));
            break;
        }
        uint32_t seen = ae_imap_get(&ids, (uint64_t)tpl->cluster_id);
        if (seen != AE_NONE) {
            status = lfail(L, AE_ERR_FORMAT, "%s.cluster_id %lld appears twice (also in "
                           "templates[%u])", where, (long long)tpl->cluster_id, seen - 1);
            break;
        }
        if (ae_imap_put(&ids, (uint64_t)tpl->cluster_id, (uint32_t)t + 1) != 0) {
            status = oom(L);
            break;
        }
        const char *text;
        char inner[80];
        snprintf(inner, sizeof inner, "%s.", where);
        if ((status = get_string(L, e, "template", inner, NULL, &text)) != AE_OK)
            break;
        size_t len = strlen(text);
        if ((tpl->text.p = ae_arena_copy(&m->arena, text, len)) == NULL) {
            status = oom(L);
            break;
        }
        tpl->text.len = len;
        if (ae_vocab_lookup_n(m->vocab, text, len, &tpl->vocab_index) != AE_OK)
            tpl->vocab_index = m->unk;
        if (m->mode == AE_MODE_DRAIN) {
            const cJSON *tokens = field(e, "tokens");
            if (!cJSON_IsArray(tokens)) {
                status = lfail(L, AE_ERR_FORMAT, "%s.tokens is %s, not an array of strings "
                               "(mode \"drain\" needs every template's tokens)", where,
                               ae_json_kind(tokens));
                break;
            }
            if ((status = ae_drain_insert(L, (uint32_t)t, tokens, where)) != AE_OK)
                break;
        } else if ((status = ae_templates_insert(L, (uint32_t)t)) != AE_OK) {
            break;
        }
    }
    free(ids.slots);
    if (status != AE_OK)
        return status;
    m->n_tpls = n;
    if (m->mode == AE_MODE_TEMPLATES) {
        if ((status = ae_templates_finish(L)) != AE_OK)
            return status;
    }
    return AE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * parser.json
 */

static const char *const REQUIRED[] = {"format_version", "log_format", "line_regex", "masking",
                                       "drain", "mode", "templates"};

static ae_status build(ae_loader *L, const cJSON *root)
{
    ae_matcher *m = L->m;
    ae_status status;
    if (!cJSON_IsObject(root))
        return lfail(L, AE_ERR_FORMAT, "expected a JSON object (a parser.json), found %s",
                     ae_json_kind(root));
    if ((status = check_unique_keys(L, root, "")) != AE_OK)
        return status;
    for (size_t i = 0; i < sizeof REQUIRED / sizeof REQUIRED[0]; i++)
        if (field(root, REQUIRED[i]) == NULL)
            return lfail(L, AE_ERR_FORMAT, "not a parser.json: the field \"%s\" is missing",
                         REQUIRED[i]);

    const cJSON *version = field(root, "format_version");
    if (!cJSON_IsNumber(version))
        return lfail(L, AE_ERR_FORMAT, "format_version is %s, not a number", ae_json_kind(version));
    if (version->valuedouble != (double)AE_PARSER_FORMAT_VERSION)
        return lfail(L, AE_ERR_FORMAT,
                     "format_version %g is not supported (this runtime reads version %d)",
                     version->valuedouble, AE_PARSER_FORMAT_VERSION);
    const char *text;
    if ((status = get_string(L, root, "log_format", "", NULL, &text)) != AE_OK)
        return status;
    if (!cJSON_IsObject(field(root, "drain")))
        return lfail(L, AE_ERR_FORMAT, "drain is %s, not an object",
                     ae_json_kind(field(root, "drain")));

    const char *mode;
    if ((status = get_string(L, root, "mode", "", NULL, &mode)) != AE_OK)
        return status;
    const char *strategy_expected;
    if (strcmp(mode, "drain") == 0) {
        m->mode = AE_MODE_DRAIN;
        strategy_expected = "always";
    } else if (strcmp(mode, "templates") == 0) {
        m->mode = AE_MODE_TEMPLATES;
        strategy_expected = "most_literal";
    } else {
        return lfail(L, AE_ERR_FORMAT,
                     "unknown mode \"%.100s\" (this runtime knows \"drain\" and \"templates\")",
                     mode);
    }
    const char *strategy;
    if ((status = get_string(L, root, "match_strategy", "", strategy_expected, &strategy)) !=
        AE_OK)
        return status;
    if (strcmp(strategy, strategy_expected) != 0)
        return lfail(L, AE_ERR_FORMAT,
                     "match_strategy \"%.100s\" is not supported in mode \"%s\" (only \"%s\")",
                     strategy, mode, strategy_expected);

    /* Masking: prefix, suffix and the rules (compiled in mode "drain" only, as Python does). */
    const char *prefix, *suffix, *param;
    if ((status = get_string(L, root, "mask_prefix", "", "<", &prefix)) != AE_OK ||
        (status = get_string(L, root, "mask_suffix", "", ">", &suffix)) != AE_OK ||
        (status = get_string(L, root, "param_str", "", "<*>", &param)) != AE_OK)
        return status;
    if (param[0] == '\0')
        return lfail(L, AE_ERR_FORMAT, "param_str is empty");
    if ((m->param_str.p = ae_arena_copy(&m->arena, param, strlen(param))) == NULL)
        return oom(L);
    m->param_str.len = strlen(param);
    const cJSON *masking = field(root, "masking");
    if (!cJSON_IsArray(masking))
        return lfail(L, AE_ERR_FORMAT, "masking is %s, not an array", ae_json_kind(masking));
    size_t n_masks = (size_t)cJSON_GetArraySize(masking), i = 0;
    if (m->mode == AE_MODE_DRAIN && n_masks > 0 &&
        (m->masks = calloc(n_masks, sizeof *m->masks)) == NULL)
        return oom(L);
    for (const cJSON *rule = masking->child; rule != NULL; rule = rule->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "masking[%zu].", i);
        if (!cJSON_IsObject(rule))
            return lfail(L, AE_ERR_FORMAT, "masking[%zu] is %s, not an object", i, ae_json_kind(rule));
        const char *pattern, *with;
        if ((status = get_string(L, rule, "regex_pattern", where, NULL, &pattern)) != AE_OK ||
            (status = get_string(L, rule, "mask_with", where, NULL, &with)) != AE_OK)
            return status;
        size_t lp = strlen(prefix), lw = strlen(with), ls = strlen(suffix);
        if (memchr(prefix, '\\', lp) != NULL || memchr(with, '\\', lw) != NULL ||
            memchr(suffix, '\\', ls) != NULL)
            return lfail(L, AE_ERR_FORMAT, "%smask_with: a backslash in a mask is not supported "
                         "(Python's re.sub would read it as an escape)", where);
        if (m->mode != AE_MODE_DRAIN)
            continue;
        char what[80];
        snprintf(what, sizeof what, "%sregex_pattern", where);
        ae_mask *mask = &m->masks[i];
        if ((status = compile(L, what, pattern, 0, &mask->re, &mask->re_ascii)) != AE_OK)
            return status;
        m->n_masks = i + 1;
        ae_prefilter_init(mask->re, &mask->pf);
        ae_literals_of(pattern, strlen(pattern), &mask->literals);
        ae_factors_of(pattern, strlen(pattern), &mask->factors);
        ae_prefilter_init(mask->re_ascii != NULL ? mask->re_ascii : mask->re, &mask->pf_ascii);
        char *repl = malloc(lp + lw + ls + 1);
        if (repl == NULL)
            return oom(L);
        memcpy(repl, prefix, lp);
        memcpy(repl + lp, with, lw);
        memcpy(repl + lp + lw, suffix, ls);
        m->masks[i].repl.p = ae_arena_copy(&m->arena, repl, lp + lw + ls);
        m->masks[i].repl.len = lp + lw + ls;
        uint64_t bytes[4];
        m->masks[i].repl_ascii = ae_bytes_scan(repl, lp + lw + ls, bytes);
        free(repl);
        if (m->masks[i].repl.p == NULL)
            return oom(L);
    }

    const cJSON *multiline = field(root, "multiline");
    if (multiline != NULL && !cJSON_IsNull(multiline) && !cJSON_IsBool(multiline))
        return lfail(L, AE_ERR_FORMAT, "multiline is %s, not true or false", ae_json_kind(multiline));
    m->multiline = cJSON_IsTrue(multiline);

    const cJSON *delims = field(root, "extra_delimiters");
    if (delims != NULL && !cJSON_IsNull(delims)) {
        if (!cJSON_IsArray(delims))
            return lfail(L, AE_ERR_FORMAT, "extra_delimiters is %s, not an array", ae_json_kind(delims));
        size_t n = (size_t)cJSON_GetArraySize(delims);
        if (n > 0 && (m->delims = calloc(n, sizeof *m->delims)) == NULL)
            return oom(L);
        i = 0;
        for (const cJSON *d = delims->child; d != NULL; d = d->next, i++) {
            if (!cJSON_IsString(d))
                return lfail(L, AE_ERR_FORMAT, "extra_delimiters[%zu] is %s, not a string", i,
                             ae_json_kind(d));
            size_t len = strlen(d->valuestring);
            if (len == 0)
                return lfail(L, AE_ERR_FORMAT, "extra_delimiters[%zu] is empty", i);
            if ((m->delims[i].p = ae_arena_copy(&m->arena, d->valuestring, len)) == NULL)
                return oom(L);
            m->delims[i].len = len;
            m->n_delims = i + 1;
        }
    }

    /* The line format. Anchored at the start like Python's re.match. */
    const char *line_regex, *group;
    if ((status = get_string(L, root, "line_regex", "", NULL, &line_regex)) != AE_OK ||
        (status = get_string(L, root, "content_group", "", "Content", &group)) != AE_OK)
        return status;
    if ((status = compile(L, "line_regex", line_regex, PCRE2_ANCHORED, &m->line_re,
                          &m->line_re_ascii)) != AE_OK)
        return status;
    char *greedy = ae_pyre_greedy_tail(line_regex); /* valid: only its tail differs */
    pcre2_code *fast = NULL, *fast_ascii = NULL;
    if (greedy != NULL && compile(L, "line_regex", greedy, PCRE2_ANCHORED, &fast, &fast_ascii) == AE_OK) {
        pcre2_code_free(m->line_re);
        pcre2_code_free(m->line_re_ascii);
        m->line_re = fast;
        m->line_re_ascii = fast_ascii;
    }
    free(greedy);
    int number = pcre2_substring_number_from_name(m->line_re, (PCRE2_SPTR)group);
    if (number <= 0)
        return lfail(L, AE_ERR_FORMAT, "line_regex has no group named \"%.100s\" "
                     "(content_group)", group);
    m->content_group = (uint32_t)number;

    const cJSON *templates = field(root, "templates");
    if (!cJSON_IsArray(templates))
        return lfail(L, AE_ERR_FORMAT, "templates is %s, not an array", ae_json_kind(templates));
    return load_templates(L, templates);
}

ae_status ae_matcher_load_limited(const char *path, size_t max_bytes, const ae_vocab *vocab,
                                  ae_matcher **out, char *err, size_t err_len)
{
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (out == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "ae_matcher_load: out is NULL");
    *out = NULL;
    if (path == NULL || vocab == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, err, err_len, "ae_matcher_load: %s is NULL",
                       path == NULL ? "parser_path" : "vocab");

    char *text = NULL;
    size_t len = 0;
    ae_status status = ae_read_file(path, max_bytes, &text, &len, err, err_len);
    if (status != AE_OK)
        return status;
    ae_loader L = {path, err, err_len, NULL};
    size_t bad = 0, line = 0, col = 0;
    if (!ae_utf8_valid((const unsigned char *)text, len, &bad)) {
        ae_json_line_col(text, bad, &line, &col);
        status = lfail(&L, AE_ERR_FORMAT, "invalid UTF-8 at byte %zu (line %zu, column %zu)", bad,
                       line, col);
        free(text);
        return status;
    }
    if ((bad = ae_json_find_nul_escape(text, len)) != (size_t)-1) {
        ae_json_line_col(text, bad, &line, &col);
        status = lfail(&L, AE_ERR_FORMAT,
                       "a NUL character (\\u0000) in a string at line %zu, column %zu", line, col);
        free(text);
        return status;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root == NULL) {
        size_t offset = end != NULL && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        ae_json_line_col(text, offset, &line, &col);
        status = lfail(&L, AE_ERR_FORMAT, "not valid JSON (line %zu, column %zu)", line, col);
        free(text);
        return status;
    }
    while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end < text + len) {
        ae_json_line_col(text, (size_t)(end - text), &line, &col);
        status = lfail(&L, AE_ERR_FORMAT,
                       "unexpected content after the JSON object (line %zu, column %zu)", line,
                       col);
        cJSON_Delete(root);
        free(text);
        return status;
    }

    ae_matcher *m = calloc(1, sizeof *m);
    L.m = m;
    if (m == NULL) {
        status = oom(&L);
    } else {
        m->vocab = vocab;
        m->unk = ae_vocab_size(vocab);
        m->cctx = pcre2_compile_context_create(NULL);
        if (m->cctx == NULL || pcre2_set_newline(m->cctx, PCRE2_NEWLINE_LF) != 0) {
            status = oom(&L);
        } else {
            /* node 0 stands for "none"; state 0 is the root of the automaton */
            if (ae_reserve((void **)&m->nodes, &m->cap_nodes, 1, sizeof *m->nodes) != 0 ||
                ae_reserve((void **)&m->ac, &m->cap_ac, 1, sizeof *m->ac) != 0) {
                status = oom(&L);
            } else {
                m->nodes[0] = (ae_node){AE_NONE, AE_NONE};
                m->n_nodes = 1;
                m->ac[0] = (ae_acstate){0, AE_NONE, AE_NONE};
                m->n_ac = 1;
                status = build(&L, root);
                if (status == AE_OK && ae_matcher_new_scratch(m) != 0)
                    status = oom(&L);
            }
        }
    }
    cJSON_Delete(root);
    free(text);
    if (status != AE_OK) {
        ae_matcher_free(m);
        return status;
    }
    *out = m;
    return AE_OK;
}

ae_status ae_matcher_load(const char *parser_path, const ae_vocab *vocab, ae_matcher **out,
                          char *err, size_t err_len)
{
    return ae_matcher_load_limited(parser_path, AE_PARSER_MAX_BYTES, vocab, out, err, err_len);
}

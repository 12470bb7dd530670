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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jsonfile.h"
#include "match_impl.h"

typedef struct loader {
    const char *path;
    char *err;
    size_t err_len;
    ae_matcher *m;
} loader;

static ae_status lfail(loader *L, ae_status status, const char *fmt, ...) AE_PRINTF(3, 4);

static ae_status lfail(loader *L, ae_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ae_vfail_file(status, L->err, L->err_len, L->path, fmt, ap);
    va_end(ap);
    return status;
}

static ae_status oom(loader *L)
{
    return lfail(L, AE_ERR_NO_MEMORY, "out of memory");
}

/* ---------------------------------------------------------------------------------------------
 * Arena, hash maps
 */

static const char *arena_copy(ae_matcher *m, const char *s, size_t len)
{
    ae_arena_block *b = m->arena;
    if (b == NULL || b->cap - b->used < len + 1) {
        size_t cap = len + 1 > 60000 ? len + 1 : 60000;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = m->arena;
        m->arena = b;
    }
    char *dst = b->data + b->used;
    memcpy(dst, s, len);
    dst[len] = '\0';
    b->used += len + 1;
    return dst;
}

static uint64_t kmap_hash(uint32_t parent, const char *key, size_t len)
{
    uint64_t h = ae_hash_bytes(key, len) ^ ((uint64_t)parent * 0x9E3779B97F4A7C15u);
    return h ^ (h >> 29);
}

uint32_t ae_kmap_get(const ae_kmap *map, uint32_t parent, const char *key, size_t len)
{
    if (map->count == 0)
        return AE_NONE;
    uint64_t h = kmap_hash(parent, key, len);
    for (size_t i = (size_t)h & map->mask;; i = (i + 1) & map->mask) {
        const ae_kmap_slot *s = &map->slots[i];
        if (s->child == AE_NONE)
            return AE_NONE;
        if (s->hash == h && s->parent == parent && s->key_len == len &&
            memcmp(s->key, key, len) == 0)
            return s->child;
    }
}

static int kmap_grow(ae_kmap *map)
{
    size_t n = map->slots == NULL ? 16 : 2 * (map->mask + 1);
    ae_kmap_slot *slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return -1;
    if (map->slots != NULL) {
        for (size_t i = 0; i <= map->mask; i++) {
            ae_kmap_slot s = map->slots[i];
            if (s.child == AE_NONE)
                continue;
            size_t j = (size_t)s.hash & (n - 1);
            while (slots[j].child != AE_NONE)
                j = (j + 1) & (n - 1);
            slots[j] = s;
        }
        free(map->slots);
    }
    map->slots = slots;
    map->mask = n - 1;
    return 0;
}

/* Insert (the key must be absent and outlive the map). @return 0, or -1 out of memory. */
static int kmap_put(ae_kmap *map, uint32_t parent, const char *key, size_t len, uint32_t child)
{
    if ((map->slots == NULL || 2 * (map->count + 1) > map->mask + 1) && kmap_grow(map) != 0)
        return -1;
    uint64_t h = kmap_hash(parent, key, len);
    size_t i = (size_t)h & map->mask;
    while (map->slots[i].child != AE_NONE)
        i = (i + 1) & map->mask;
    map->slots[i] = (ae_kmap_slot){h, key, (uint32_t)len, parent, child};
    map->count++;
    return 0;
}

static size_t imap_slot(uint64_t key, size_t mask)
{
    uint64_t h = key * 0x9E3779B97F4A7C15u;
    return (size_t)(h ^ (h >> 32)) & mask;
}

uint32_t ae_imap_get(const ae_imap *map, uint64_t key)
{
    if (map->count == 0)
        return AE_NONE;
    for (size_t i = imap_slot(key, map->mask);; i = (i + 1) & map->mask) {
        const ae_imap_slot *s = &map->slots[i];
        if (!s->used)
            return AE_NONE;
        if (s->key == key)
            return s->value;
    }
}

static int imap_grow(ae_imap *map)
{
    size_t n = map->slots == NULL ? 16 : 2 * (map->mask + 1);
    ae_imap_slot *slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return -1;
    if (map->slots != NULL) {
        for (size_t i = 0; i <= map->mask; i++) {
            if (!map->slots[i].used)
                continue;
            size_t j = imap_slot(map->slots[i].key, n - 1);
            while (slots[j].used)
                j = (j + 1) & (n - 1);
            slots[j] = map->slots[i];
        }
        free(map->slots);
    }
    map->slots = slots;
    map->mask = n - 1;
    return 0;
}

/* Insert an absent key. @return 0, or -1 out of memory. */
static int imap_put(ae_imap *map, uint64_t key, uint32_t value)
{
    if ((map->slots == NULL || 2 * (map->count + 1) > map->mask + 1) && imap_grow(map) != 0)
        return -1;
    size_t i = imap_slot(key, map->mask);
    while (map->slots[i].used)
        i = (i + 1) & map->mask;
    map->slots[i] = (ae_imap_slot){key, value, 1};
    map->count++;
    return 0;
}

/* Grow an array of `size`-byte elements to hold at least `need`. @return 0, or -1. */
static int reserve(void **array, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size)
            return -1;
        n *= 2;
    }
    void *grown = realloc(*array, n * size);
    if (grown == NULL)
        return -1;
    *array = grown;
    *cap = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Freeing
 */

void ae_matcher_free(ae_matcher *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_masks; i++) {
        pcre2_code_free(m->masks[i].re);
        pcre2_code_free(m->masks[i].re_ascii);
    }
    free(m->masks);
    pcre2_code_free(m->line_re);
    pcre2_code_free(m->line_re_ascii);
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mctx);
    pcre2_jit_stack_free(m->jit_stack);
    pcre2_compile_context_free(m->cctx);
    free(m->delims);
    free(m->tpls);
    free(m->nodes);
    free(m->children.slots);
    free(m->roots.slots);
    free(m->prefixes.out);
    free(m->prefixes.next.slots);
    free(m->suffixes.out);
    free(m->suffixes.next.slots);
    free(m->parts);
    free(m->rank);
    free(m->ac);
    free(m->ac_next.slots);
    free(m->buf[0].data);
    free(m->buf[1].data);
    free(m->tokbuf.data);
    free(m->recbuf.data);
    free(m->tokens);
    free(m->stack);
    free(m->cands);
    while (m->arena != NULL) {
        ae_arena_block *next = m->arena->next;
        free(m->arena);
        m->arena = next;
    }
    free(m);
}

/* ---------------------------------------------------------------------------------------------
 * JSON helpers
 */

static const cJSON *field(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* A string field: required (missing -> error) or optional (missing or null -> fallback). */
static ae_status get_string(loader *L, const cJSON *obj, const char *name, const char *where,
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
static ae_status check_unique_keys(loader *L, const cJSON *item, const char *where)
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
static ae_status compile(loader *L, const char *what, const char *pattern, uint32_t options,
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
 * Templates and indexes
 */

static uint32_t new_node(ae_matcher *m)
{
    if (reserve((void **)&m->nodes, &m->cap_nodes, m->n_nodes + 1, sizeof *m->nodes) != 0 ||
        m->n_nodes >= UINT32_MAX - 1)
        return AE_NONE;
    m->nodes[m->n_nodes] = (ae_node){AE_NONE, AE_NONE};
    return (uint32_t)m->n_nodes++;
}

/* Add template t with its tokens to the drain trie of its token count. */
static ae_status drain_insert(loader *L, uint32_t t, const cJSON *tokens, const char *where)
{
    ae_matcher *m = L->m;
    size_t k = (size_t)cJSON_GetArraySize(tokens);
    uint32_t node = ae_imap_get(&m->roots, (uint64_t)k);
    if (node == AE_NONE) {
        if ((node = new_node(m)) == AE_NONE || imap_put(&m->roots, (uint64_t)k, node) != 0)
            return oom(L);
    }
    size_t i = 0;
    for (const cJSON *tok = tokens->child; tok != NULL; tok = tok->next, i++) {
        if (!cJSON_IsString(tok))
            return lfail(L, AE_ERR_FORMAT, "%s.tokens[%zu] is %s, not a string", where, i,
                         ae_json_kind(tok));
        const char *s = tok->valuestring;
        size_t len = strlen(s);
        if (len == m->param_str.len && memcmp(s, m->param_str.p, len) == 0) {
            if (m->nodes[node].wild == AE_NONE) {
                uint32_t child = new_node(m);
                if (child == AE_NONE)
                    return oom(L);
                m->nodes[node].wild = child;
            }
            node = m->nodes[node].wild;
            continue;
        }
        uint32_t child = ae_kmap_get(&m->children, node, s, len);
        if (child == AE_NONE) {
            const char *key = arena_copy(m, s, len);
            if (key == NULL || (child = new_node(m)) == AE_NONE ||
                kmap_put(&m->children, node, key, len, child) != 0)
                return oom(L);
        }
        node = child;
    }
    if (m->nodes[node].leaf == AE_NONE) /* an equal earlier template keeps the leaf */
        m->nodes[node].leaf = t + 1;
    return AE_OK;
}

static uint32_t new_state(ae_matcher *m)
{
    if (reserve((void **)&m->ac, &m->cap_ac, m->n_ac + 1, sizeof *m->ac) != 0 ||
        m->n_ac >= (UINT32_MAX >> 8))
        return AE_NONE;
    m->ac[m->n_ac] = (ae_acstate){0, AE_NONE, AE_NONE, 0};
    return (uint32_t)m->n_ac++;
}

static uint32_t ac_goto(const ae_matcher *m, uint32_t state, unsigned char byte)
{
    if (state == 0)
        return m->ac_root[byte];
    return ae_imap_get(&m->ac_next, ((uint64_t)state << 8) | byte);
}

uint32_t ae_trie_next(const ae_trie *trie, uint32_t state, unsigned char byte)
{
    if (state == 0)
        return trie->root[byte];
    return ae_imap_get(&trie->next, ((uint64_t)state << 8) | byte);
}

/* Add template t under `len` bytes of `key`, read forwards or (reverse) backwards. */
static ae_status trie_insert(loader *L, ae_trie *trie, uint32_t t, const char *key, size_t len,
                             int reverse)
{
    ae_matcher *m = L->m;
    if (trie->n == 0) {
        if (reserve((void **)&trie->out, &trie->cap, 1, sizeof *trie->out) != 0)
            return oom(L);
        trie->out[0] = AE_NONE;
        trie->n = 1;
    }
    uint32_t state = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)key[reverse ? len - 1 - i : i];
        uint32_t next = ae_trie_next(trie, state, b);
        if (next == AE_NONE) {
            if (trie->n >= (UINT32_MAX >> 8) ||
                reserve((void **)&trie->out, &trie->cap, trie->n + 1, sizeof *trie->out) != 0)
                return oom(L);
            next = (uint32_t)trie->n++;
            trie->out[next] = AE_NONE;
            if (state == 0)
                trie->root[b] = next;
            else if (imap_put(&trie->next, ((uint64_t)state << 8) | b, next) != 0)
                return oom(L);
        }
        state = next;
    }
    m->tpls[t].next_out = trie->out[state];
    trie->out[state] = t + 1;
    return AE_OK;
}

/* Split template t on "<*>" into literal parts and index it (see ae_matcher.prefixes). */
static ae_status templates_insert(loader *L, uint32_t t)
{
    ae_matcher *m = L->m;
    ae_tpl *tpl = &m->tpls[t];
    static const char WILD[] = "<*>";
    const char *s = tpl->text.p, *end = s + tpl->text.len;
    tpl->first_part = (uint32_t)m->n_parts;
    tpl->literal = 0;
    size_t best = (size_t)-1, best_len = 0;
    for (;;) {
        const char *hit = NULL;
        for (const char *p = s; p + 3 <= end; p++)
            if (memcmp(p, WILD, 3) == 0) {
                hit = p;
                break;
            }
        const char *stop = hit != NULL ? hit : end;
        ae_span part = {s, (size_t)(stop - s)};
        if (reserve((void **)&m->parts, &m->cap_parts, m->n_parts + 1, sizeof *m->parts) != 0)
            return oom(L);
        m->parts[m->n_parts++] = part;
        tpl->literal += ae_utf8_count(part.p, part.len);
        if (best == (size_t)-1 || part.len > best_len) {
            best = m->n_parts - 1;
            best_len = part.len;
        }
        if (hit == NULL)
            break;
        s = hit + 3;
    }
    tpl->n_parts = (uint32_t)(m->n_parts - tpl->first_part);
    const ae_span *first = &m->parts[tpl->first_part], *last = &m->parts[m->n_parts - 1];
    if (first->len > 0) /* the content must start with it: the most selective key */
        return trie_insert(L, &m->prefixes, t, first->p, first->len, 0);
    if (last->len > 0)  /* ... or end with it */
        return trie_insert(L, &m->suffixes, t, last->p, last->len, 1);
    if (best_len == 0) { /* no literal text: matches every content */
        if (m->first_always == AE_NONE)
            m->first_always = t + 1;
        return AE_OK;
    }
    /* Insert the anchor into the trie of the automaton. */
    const unsigned char *a = (const unsigned char *)m->parts[best].p;
    uint32_t state = 0;
    for (size_t i = 0; i < best_len; i++) {
        uint32_t next = ac_goto(m, state, a[i]);
        if (next == AE_NONE) {
            if ((next = new_state(m)) == AE_NONE)
                return oom(L);
            if (state == 0)
                m->ac_root[a[i]] = next;
            else if (imap_put(&m->ac_next, ((uint64_t)state << 8) | a[i], next) != 0)
                return oom(L);
        }
        state = next;
    }
    tpl->next_out = m->ac[state].out;
    m->ac[state].out = t + 1;
    return AE_OK;
}

/* Fail and dictionary links of the automaton, breadth first. */
static ae_status templates_link(loader *L)
{
    ae_matcher *m = L->m;
    if (m->n_ac <= 1)
        return AE_OK;
    /* Children of each state, from the transition maps. */
    size_t n = m->n_ac;
    uint32_t *first = malloc(n * sizeof *first);
    uint32_t *next = malloc(n * sizeof *next);  /* sibling list, per child state */
    unsigned char *byte = malloc(n);
    uint32_t *queue = malloc(n * sizeof *queue);
    if (first == NULL || next == NULL || byte == NULL || queue == NULL) {
        free(first);
        free(next);
        free(byte);
        free(queue);
        return oom(L);
    }
    for (size_t i = 0; i < n; i++)
        first[i] = AE_NONE;
    for (unsigned b = 0; b < 256; b++) {
        uint32_t c = m->ac_root[b];
        if (c != AE_NONE) {
            byte[c] = (unsigned char)b;
            next[c] = first[0];
            first[0] = c;
        }
    }
    for (size_t i = 0; m->ac_next.slots != NULL && i <= m->ac_next.mask; i++) {
        const ae_imap_slot *s = &m->ac_next.slots[i];
        if (!s->used)
            continue;
        uint32_t parent = (uint32_t)(s->key >> 8), c = s->value;
        byte[c] = (unsigned char)(s->key & 0xFF);
        next[c] = first[parent];
        first[parent] = c;
    }
    size_t head = 0, tail = 0;
    for (uint32_t c = first[0]; c != AE_NONE; c = next[c]) {
        m->ac[c].fail = 0;
        m->ac[c].dict = AE_NONE;
        queue[tail++] = c;
    }
    while (head < tail) {
        uint32_t s = queue[head++];
        for (uint32_t c = first[s]; c != AE_NONE; c = next[c]) {
            uint32_t f = m->ac[s].fail, to;
            while ((to = ac_goto(m, f, byte[c])) == AE_NONE && f != 0)
                f = m->ac[f].fail;
            m->ac[c].fail = to != AE_NONE && to != c ? to : 0;
            uint32_t fc = m->ac[c].fail;
            m->ac[c].dict = fc != 0 && m->ac[fc].out != AE_NONE ? fc : m->ac[fc].dict;
            queue[tail++] = c;
        }
    }
    free(first);
    free(next);
    free(byte);
    free(queue);
    return AE_OK;
}

typedef struct rank_key {
    size_t literal;
    uint32_t t;
} rank_key;

static int by_priority(const void *a, const void *b)
{
    const rank_key *x = a, *y = b;
    if (x->literal != y->literal)
        return x->literal > y->literal ? -1 : 1;
    return x->t < y->t ? -1 : x->t > y->t;
}

static ae_status templates_rank(loader *L)
{
    ae_matcher *m = L->m;
    if (m->n_tpls == 0)
        return AE_OK;
    rank_key *keys = malloc(m->n_tpls * sizeof *keys);
    m->rank = malloc(m->n_tpls * sizeof *m->rank);
    if (keys == NULL || m->rank == NULL) {
        free(keys);
        return oom(L);
    }
    for (size_t t = 0; t < m->n_tpls; t++)
        keys[t] = (rank_key){m->tpls[t].literal, (uint32_t)t};
    qsort(keys, m->n_tpls, sizeof *keys, by_priority);
    for (size_t r = 0; r < m->n_tpls; r++)
        m->rank[keys[r].t] = (uint32_t)r;
    free(keys);
    return AE_OK;
}

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

static ae_status load_templates(loader *L, const cJSON *templates)
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
        if (imap_put(&ids, (uint64_t)tpl->cluster_id, (uint32_t)t + 1) != 0) {
            status = oom(L);
            break;
        }
        const char *text;
        char inner[80];
        snprintf(inner, sizeof inner, "%s.", where);
        if ((status = get_string(L, e, "template", inner, NULL, &text)) != AE_OK)
            break;
        size_t len = strlen(text);
        if ((tpl->text.p = arena_copy(m, text, len)) == NULL) {
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
            if ((status = drain_insert(L, (uint32_t)t, tokens, where)) != AE_OK)
                break;
        } else if ((status = templates_insert(L, (uint32_t)t)) != AE_OK) {
            break;
        }
    }
    free(ids.slots);
    if (status != AE_OK)
        return status;
    m->n_tpls = n;
    if (m->mode == AE_MODE_TEMPLATES) {
        if ((status = templates_link(L)) != AE_OK || (status = templates_rank(L)) != AE_OK)
            return status;
    }
    m->cand_cap = n ? n : 1;
    m->cands = malloc(m->cand_cap * sizeof *m->cands);
    return m->cands == NULL ? oom(L) : AE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * parser.json
 */

static const char *const REQUIRED[] = {"format_version", "log_format", "line_regex", "masking",
                                       "drain", "mode", "templates"};

static ae_status build(loader *L, const cJSON *root)
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
    if ((m->param_str.p = arena_copy(m, param, strlen(param))) == NULL)
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
        m->masks[i].repl.p = arena_copy(m, repl, lp + lw + ls);
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
            if ((m->delims[i].p = arena_copy(m, d->valuestring, len)) == NULL)
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
    if ((m->md = pcre2_match_data_create_from_pattern(m->line_re, NULL)) == NULL)
        return oom(L);

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
    loader L = {path, err, err_len, NULL};
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
        m->mctx = pcre2_match_context_create(NULL);
        m->jit_stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, NULL);
        if (m->cctx == NULL || m->mctx == NULL || m->jit_stack == NULL ||
            pcre2_set_newline(m->cctx, PCRE2_NEWLINE_LF) != 0) {
            status = oom(&L);
        } else {
            pcre2_jit_stack_assign(m->mctx, NULL, m->jit_stack);
            pcre2_set_heap_limit(m->mctx, 64 * 1024); /* KiB, for the interpreter */
            /* node 0 stands for "none"; state 0 is the root of the automaton */
            if (reserve((void **)&m->nodes, &m->cap_nodes, 1, sizeof *m->nodes) != 0 ||
                reserve((void **)&m->ac, &m->cap_ac, 1, sizeof *m->ac) != 0) {
                status = oom(&L);
            } else {
                m->nodes[0] = (ae_node){AE_NONE, AE_NONE};
                m->n_nodes = 1;
                m->ac[0] = (ae_acstate){0, AE_NONE, AE_NONE, 0};
                m->n_ac = 1;
                status = build(&L, root);
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

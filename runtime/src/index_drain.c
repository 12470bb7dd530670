/*
 * index_drain.c - mode "drain": one trie of tokens per token count, built from parser.json's
 * templates, and Drain3's match(content, "always") over it.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jsonfile.h"
#include "match_impl.h"

static uint32_t new_node(ae_matcher *m)
{
    if (ae_reserve((void **)&m->nodes, &m->cap_nodes, m->n_nodes + 1, sizeof *m->nodes) != 0 ||
        m->n_nodes >= UINT32_MAX - 1)
        return AE_NONE;
    m->nodes[m->n_nodes] = (ae_node){AE_NONE, AE_NONE};
    return (uint32_t)m->n_nodes++;
}

ae_status ae_drain_insert(ae_loader *L, uint32_t t, const cJSON *tokens, const char *where)
{
    ae_matcher *m = L->m;
    size_t k = (size_t)cJSON_GetArraySize(tokens);
    uint32_t node = ae_imap_get(&m->roots, (uint64_t)k);
    if (node == AE_NONE) {
        if ((node = new_node(m)) == AE_NONE || ae_imap_put(&m->roots, (uint64_t)k, node) != 0)
            return ae_load_oom(L);
    }
    size_t i = 0;
    for (const cJSON *tok = tokens->child; tok != NULL; tok = tok->next, i++) {
        if (!cJSON_IsString(tok))
            return ae_load_fail(L, AE_ERR_FORMAT, "%s.tokens[%zu] is %s, not a string", where, i,
                                ae_json_kind(tok));
        const char *s = tok->valuestring;
        size_t len = strlen(s);
        if (len == m->param_str.len && memcmp(s, m->param_str.p, len) == 0) {
            if (m->nodes[node].wild == AE_NONE) {
                uint32_t child = new_node(m);
                if (child == AE_NONE)
                    return ae_load_oom(L);
                m->nodes[node].wild = child;
            }
            node = m->nodes[node].wild;
            continue;
        }
        uint32_t child = ae_kmap_get(&m->children, node, s, len);
        if (child == AE_NONE) {
            const char *key = ae_arena_copy(&m->arena, s, len);
            if (key == NULL || (child = new_node(m)) == AE_NONE ||
                ae_kmap_put(&m->children, node, key, len, child) != 0)
                return ae_load_oom(L);
        }
        node = child;
    }
    if (m->nodes[node].leaf == AE_NONE) /* an equal earlier template keeps the leaf */
        m->nodes[node].leaf = t + 1;
    return AE_OK;
}

/*
 * Drain3's match(content, "always") over the trie of the token count: every template whose
 * tokens equal the line's except at its "<*>"s; the most "<*>"s win, ties go to the earliest.
 * Depth first through both the exact child and the wildcard child of every node.
 * @return the template ordinal + 1, or AE_NONE.
 */
uint32_t ae_drain_search(ae_matcher *m, size_t k, ae_status *status)
{
    *status = AE_OK;
    if (k > UINT32_MAX - 1)
        return AE_NONE;
    uint32_t root = ae_imap_get(&m->roots, (uint64_t)k);
    if (root == AE_NONE)
        return AE_NONE;
    if (m->stack_cap < 2 * k + 2) {
        size_t cap = 2 * k + 2;
        ae_frame *grown = realloc(m->stack, cap * sizeof *grown);
        if (grown == NULL) {
            *status = ae_fail(AE_ERR_NO_MEMORY, m->errmsg, sizeof m->errmsg, "out of memory");
            return AE_NONE;
        }
        m->stack = grown;
        m->stack_cap = cap;
    }
    uint32_t best = AE_NONE;
    uint32_t best_params = 0;
    size_t top = 0;
    m->stack[top++] = (ae_frame){root, 0, 0};
    while (top > 0) {
        ae_frame f = m->stack[--top];
        if (f.depth == k) {
            uint32_t leaf = m->nodes[f.node].leaf;
            if (leaf != AE_NONE &&
                (best == AE_NONE || f.params > best_params ||
                 (f.params == best_params && leaf < best))) {
                best = leaf;
                best_params = f.params;
            }
            continue;
        }
        /* No template below can have more "<*>"s than params + what is left. */
        if (best != AE_NONE && f.params + (k - f.depth) < best_params)
            continue;
        const ae_span *tok = &m->tokens[f.depth];
        uint32_t exact = ae_kmap_get(&m->children, f.node, tok->p, tok->len);
        if (exact != AE_NONE)
            m->stack[top++] = (ae_frame){exact, f.depth + 1, f.params};
        uint32_t wild = m->nodes[f.node].wild;
        if (wild != AE_NONE)
            m->stack[top++] = (ae_frame){wild, f.depth + 1, f.params + 1};
    }
    return best;
}

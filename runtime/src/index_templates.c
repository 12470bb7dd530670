/*
 * index_templates.c - mode "templates" (a user template list): templates indexed by their
 * literal prefix (a byte trie), else their literal suffix (a reversed trie), else their longest
 * literal part (an Aho-Corasick automaton); and the search that tries the candidates in
 * priority order.
 */
#include <stdlib.h>
#include <string.h>

#include "match_impl.h"

static uint32_t new_state(ae_matcher *m)
{
    if (ae_reserve((void **)&m->ac, &m->cap_ac, m->n_ac + 1, sizeof *m->ac) != 0 ||
        m->n_ac >= (UINT32_MAX >> 8))
        return AE_NONE;
    m->ac[m->n_ac] = (ae_acstate){0, AE_NONE, AE_NONE};
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
static ae_status trie_insert(ae_loader *L, ae_trie *trie, uint32_t t, const char *key, size_t len,
                             int reverse)
{
    ae_matcher *m = L->m;
    if (trie->n == 0) {
        if (ae_reserve((void **)&trie->out, &trie->cap, 1, sizeof *trie->out) != 0)
            return ae_load_oom(L);
        trie->out[0] = AE_NONE;
        trie->n = 1;
    }
    uint32_t state = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)key[reverse ? len - 1 - i : i];
        uint32_t next = ae_trie_next(trie, state, b);
        if (next == AE_NONE) {
            if (trie->n >= (UINT32_MAX >> 8) ||
                ae_reserve((void **)&trie->out, &trie->cap, trie->n + 1, sizeof *trie->out) != 0)
                return ae_load_oom(L);
            next = (uint32_t)trie->n++;
            trie->out[next] = AE_NONE;
            if (state == 0)
                trie->root[b] = next;
            else if (ae_imap_put(&trie->next, ((uint64_t)state << 8) | b, next) != 0)
                return ae_load_oom(L);
        }
        state = next;
    }
    m->tpls[t].next_out = trie->out[state];
    trie->out[state] = t + 1;
    return AE_OK;
}

/* Split template t on "<*>" into literal parts and index it (see ae_matcher.prefixes). */
ae_status ae_templates_insert(ae_loader *L, uint32_t t)
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
        if (ae_reserve((void **)&m->parts, &m->cap_parts, m->n_parts + 1, sizeof *m->parts) != 0)
            return ae_load_oom(L);
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
                return ae_load_oom(L);
            if (state == 0)
                m->ac_root[a[i]] = next;
            else if (ae_imap_put(&m->ac_next, ((uint64_t)state << 8) | a[i], next) != 0)
                return ae_load_oom(L);
        }
        state = next;
    }
    tpl->next_out = m->ac[state].out;
    m->ac[state].out = t + 1;
    return AE_OK;
}

/* Fail and dictionary links of the automaton, breadth first. */
static ae_status templates_link(ae_loader *L)
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
        return ae_load_oom(L);
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

static ae_status templates_rank(ae_loader *L)
{
    ae_matcher *m = L->m;
    if (m->n_tpls == 0)
        return AE_OK;
    rank_key *keys = malloc(m->n_tpls * sizeof *keys);
    m->rank = malloc(m->n_tpls * sizeof *m->rank);
    if (keys == NULL || m->rank == NULL) {
        free(keys);
        return ae_load_oom(L);
    }
    for (size_t t = 0; t < m->n_tpls; t++)
        keys[t] = (rank_key){m->tpls[t].literal, (uint32_t)t};
    qsort(keys, m->n_tpls, sizeof *keys, by_priority);
    for (size_t r = 0; r < m->n_tpls; r++)
        m->rank[keys[r].t] = (uint32_t)r;
    free(keys);
    return AE_OK;
}

ae_status ae_templates_finish(ae_loader *L)
{
    ae_status status = templates_link(L);
    return status == AE_OK ? templates_rank(L) : status;
}

/* Naive search for needle in hay (the parts are short; lines are at most 1 MiB). */
static const char *find(const char *hay, size_t n, const char *needle, size_t k)
{
    if (k == 0)
        return hay;
    if (k > n)
        return NULL;
    const char *last = hay + (n - k);
    for (const char *p = hay; p <= last;) {
        const char *hit = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (hit == NULL)
            return NULL;
        if (memcmp(hit, needle, k) == 0)
            return hit;
        p = hit + 1;
    }
    return NULL;
}

/*
 * Python's re.match("^" + ".*?".join(map(re.escape, parts)) + "$", content, re.S): the content
 * starts with the first part, ends with the last, and holds the others in order between them.
 * The earliest place for each middle part is never worse than a later one.
 */
static int template_fits(const ae_matcher *m, const ae_tpl *tpl, const char *s, size_t n)
{
    const ae_span *parts = m->parts + tpl->first_part;
    size_t np = tpl->n_parts;
    if (np == 1)
        return n == parts[0].len && memcmp(s, parts[0].p, n) == 0;
    const ae_span *first = &parts[0], *last = &parts[np - 1];
    if (n < first->len + last->len || memcmp(s, first->p, first->len) != 0 ||
        memcmp(s + n - last->len, last->p, last->len) != 0)
        return 0;
    const char *p = s + first->len, *end = s + n - last->len;
    for (size_t i = 1; i + 1 < np; i++) {
        const char *hit = find(p, (size_t)(end - p), parts[i].p, parts[i].len);
        if (hit == NULL)
            return 0;
        p = hit + parts[i].len;
    }
    return 1;
}

/* Candidates (template ordinal + 1) in a binary min-heap by rank. */
static void sift_down(uint32_t *c, size_t root, size_t n, const uint32_t *rank)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && rank[c[child + 1] - 1] < rank[c[child] - 1])
            child++;
        if (rank[c[root] - 1] <= rank[c[child] - 1])
            return;
        uint32_t t = c[root];
        c[root] = c[child];
        c[child] = t;
        root = child;
    }
}

/* Collect the templates chained from `t` (ordinal + 1). */
static size_t collect(ae_matcher *m, uint32_t t, size_t nc)
{
    for (; t != AE_NONE; t = m->tpls[t - 1].next_out)
        if (nc < m->cand_cap)
            m->cands[nc++] = t;
    return nc;
}

/*
 * Mode "templates". Candidates: the templates whose literal prefix starts the content (a walk
 * down the prefix trie), whose literal suffix ends it (the suffix trie, backwards), or whose
 * longest literal part occurs in it (one pass of the Aho-Corasick automaton). They are tried in
 * priority order (most literal code points, then the earliest) off a min-heap, so that only the
 * ones before the first that fits are ordered; the earliest template without literal text
 * matches anything.
 * @return the template ordinal + 1, or AE_NONE.
 */
uint32_t ae_templates_search(ae_matcher *m, const char *s, size_t n)
{
    size_t nc = 0;
    const unsigned char *u = (const unsigned char *)s;
    uint32_t st = 0;
    for (size_t i = 0; i < n && m->prefixes.n > 1; i++) {
        if ((st = ae_trie_next(&m->prefixes, st, u[i])) == AE_NONE)
            break;
        nc = collect(m, m->prefixes.out[st], nc);
    }
    st = 0;
    for (size_t i = n; i > 0 && m->suffixes.n > 1; i--) {
        if ((st = ae_trie_next(&m->suffixes, st, u[i - 1])) == AE_NONE)
            break;
        nc = collect(m, m->suffixes.out[st], nc);
    }
    if (m->n_ac > 1) {
        if (++m->serial == 0) { /* wrapped: forget every stamp */
            for (size_t i = 0; i < m->n_ac; i++)
                m->ac_stamp[i] = 0;
            m->serial = 1;
        }
        uint32_t state = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t next;
            for (;;) {
                next = state == 0 ? m->ac_root[u[i]]
                                  : ae_imap_get(&m->ac_next, ((uint64_t)state << 8) | u[i]);
                if (next != AE_NONE || state == 0)
                    break;
                state = m->ac[state].fail;
            }
            state = next; /* AE_NONE == the root */
            uint32_t out = m->ac[state].out != AE_NONE ? state : m->ac[state].dict;
            for (; out != AE_NONE; out = m->ac[out].dict) {
                if (m->ac_stamp[out] == m->serial)
                    break; /* this state and its dictionary chain are collected already */
                m->ac_stamp[out] = m->serial;
                nc = collect(m, m->ac[out].out, nc);
            }
        }
    }
    uint32_t *c = m->cands;
    for (size_t i = nc / 2; i-- > 0;)
        sift_down(c, i, nc, m->rank);
    while (nc > 0) {
        uint32_t t = c[0];
        if (template_fits(m, &m->tpls[t - 1], s, n))
            return t;
        c[0] = c[--nc];
        sift_down(c, 0, nc, m->rank);
    }
    return m->first_always;
}

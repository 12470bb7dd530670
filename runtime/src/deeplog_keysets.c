/*
 * deeplog_keysets.c - DeepLog's key-set check (py/alog_edge/models/deeplog_keysets.py): a
 * session whose set of keys no normal training session had is anomalous. The key after which
 * the session's keys fit inside no known set is flagged (not the keys after it); the end is
 * flagged when they fit inside one without being one. Sets are bitsets of N + 1 keys (the
 * unknown key fits no set). The sets are read-only once loaded (the model is shared); each
 * session's keys so far live in its detector's session table (sessions.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonfile.h"
#include "model_impl.h"

void ae_key_sets_free(ae_key_sets *ks)
{
    if (ks == NULL)
        return;
    free(ks->bits);
    memset(ks, 0, sizeof *ks);
}

ae_status ae_key_sets_load(ae_model *m, const cJSON *meta, char *why, size_t why_len)
{
    ae_key_sets *ks = &m->key_sets;
    memset(ks, 0, sizeof *ks);
    const cJSON *sets = cJSON_GetObjectItemCaseSensitive(meta, "key_sets");
    if (sets == NULL || cJSON_IsNull(sets))
        return AE_OK;
    if (!cJSON_IsArray(sets))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "key_sets is %s, not an array of key arrays",
                       ae_json_kind(sets));
    if (m->start_key == SIZE_MAX)
        return ae_fail(AE_ERR_FORMAT, why, why_len,
                       "key_sets need session keys (start_key and end_key are null)");
    size_t count = (size_t)cJSON_GetArraySize(sets), words = (m->n + 1 + 63) / 64;
    ks->bits = calloc(count ? count * words : 1, sizeof *ks->bits);
    if (ks->bits == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, why, why_len, "out of memory");
    ks->words = words;
    ks->on = 1;
    size_t i = 0;
    for (const cJSON *set = sets->child; set != NULL; set = set->next, i++) {
        if (!cJSON_IsArray(set))
            return ae_fail(AE_ERR_FORMAT, why, why_len, "key_sets[%zu] is %s, not an array of keys",
                           i, ae_json_kind(set));
        size_t j = 0;
        for (const cJSON *k = set->child; k != NULL; k = k->next, j++) {
            int64_t key = 0;
            if (!ae_json_int(k, 0, (int64_t)m->n - 1, &key))
                return ae_fail(AE_ERR_FORMAT, why, why_len,
                               "key_sets[%zu][%zu] is not a key in 0..%zu", i, j, m->n - 1);
            ks->bits[i * words + (size_t)key / 64] |= (uint64_t)1 << (key % 64);
        }
    }
    ks->count = i;
    return AE_OK;
}

/* Whether `have` lies inside known set s (exact: equal to it). */
static int inside(const ae_key_sets *ks, size_t s, const uint64_t *have, int exact)
{
    const uint64_t *known = ks->bits + s * ks->words;
    for (size_t w = 0; w < ks->words; w++)
        if ((have[w] & ~known[w]) != 0 || (exact && have[w] != known[w]))
            return 0;
    return 1;
}

static int fits(const ae_key_sets *ks, const uint64_t *have, int exact)
{
    for (size_t s = 0; s < ks->count; s++)
        if (inside(ks, s, have, exact))
            return 1;
    return 0;
}

static int empty(const ae_key_sets *ks, const uint64_t *have)
{
    for (size_t w = 0; w < ks->words; w++)
        if (have[w] != 0)
            return 0;
    return 1;
}

int ae_key_set_add(const ae_model *m, uint64_t *have, size_t key)
{
    uint64_t bit = (uint64_t)1 << (key % 64);
    if (!m->key_sets.on || (have[key / 64] & bit) != 0)
        return 0;
    /* no key yet fits (even no set at all): the first key can break the fit */
    int before = empty(&m->key_sets, have) || fits(&m->key_sets, have, 0);
    have[key / 64] |= bit;
    return before && !fits(&m->key_sets, have, 0);
}

int ae_key_set_end(const ae_model *m, const uint64_t *have)
{
    const ae_key_sets *ks = &m->key_sets;
    return ks->on && !empty(ks, have) && fits(ks, have, 0) && !fits(ks, have, 1);
}

/*
 * test_keysets.c - DeepLog's key-set check (deeplog_keysets.c) on hand-made sets: what meta.json's
 * key_sets may hold, and which keys and ends are flagged, as
 * py/alog_edge/models/deeplog_keysets.py does.
 */
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ae_test.h"
#include "model_impl.h"

/* A model of 70 templates (keys 0..69, unknown 70: bitsets of two words) with session keys. */
static ae_status load(ae_model *m, const char *json, char *why, size_t why_len)
{
    memset(m, 0, sizeof *m);
    m->n = 70;
    m->start_key = 71;
    m->end_key = 72;
    cJSON *meta = cJSON_Parse(json);
    ae_status status = meta == NULL ? AE_ERR_FORMAT : ae_key_sets_load(m, meta, why, why_len);
    cJSON_Delete(meta);
    return status;
}

AE_TEST(keysets_null_or_absent_turn_the_check_off)
{
    ae_model m;
    char why[256];
    uint64_t have[2] = {0, 0};
    CHECK_STATUS(load(&m, "{\"key_sets\": null}", why, sizeof why), AE_OK);
    CHECK(!m.key_sets.on && !ae_key_set_add(&m, have, 5) && !ae_key_set_end(&m, have));
    ae_key_sets_free(&m.key_sets);
    CHECK_STATUS(load(&m, "{}", why, sizeof why), AE_OK);
    CHECK(!m.key_sets.on);
    ae_key_sets_free(&m.key_sets);
    ae_key_sets_free(NULL);
}

AE_TEST(keysets_a_new_combination_is_flagged_at_the_key_that_makes_it_and_once)
{
    ae_model m;
    char why[256];
    CHECK_STATUS(load(&m, "{\"key_sets\": [[1, 2, 65], [1, 3]]}", why, sizeof why), AE_OK);
    uint64_t have[2] = {0, 0};
    CHECK(!ae_key_set_add(&m, have, 1));
    CHECK(!ae_key_set_add(&m, have, 65)); /* the second word: inside {1, 2, 65} */
    CHECK(ae_key_set_add(&m, have, 3));   /* {1, 3, 65} fits no set */
    CHECK(!ae_key_set_add(&m, have, 3));  /* a repeated key is not new to its session */
    CHECK(!ae_key_set_add(&m, have, 4));  /* a further new key: reported already */
    CHECK(!ae_key_set_end(&m, have));     /* already reported at its keys */
    uint64_t unknown[2] = {0, 0};
    CHECK(ae_key_set_add(&m, unknown, 70)); /* the unknown key fits no set */
    ae_key_sets_free(&m.key_sets);
}

AE_TEST(keysets_an_end_short_of_every_set_is_flagged_and_a_complete_one_is_not)
{
    ae_model m;
    char why[256];
    CHECK_STATUS(load(&m, "{\"key_sets\": [[1, 2, 65], [1, 3]]}", why, sizeof why), AE_OK);
    uint64_t have[2] = {0, 0};
    CHECK(!ae_key_set_end(&m, have)); /* no key: no session */
    CHECK(!ae_key_set_add(&m, have, 1));
    CHECK(ae_key_set_end(&m, have));  /* {1}: inside both, neither */
    CHECK(!ae_key_set_add(&m, have, 3));
    CHECK(!ae_key_set_end(&m, have)); /* {1, 3} is one */
    ae_key_sets_free(&m.key_sets);
}

AE_TEST(keysets_an_empty_list_makes_every_session_new)
{
    ae_model m;
    char why[256];
    CHECK_STATUS(load(&m, "{\"key_sets\": []}", why, sizeof why), AE_OK);
    uint64_t have[2] = {0, 0};
    CHECK(m.key_sets.on && ae_key_set_add(&m, have, 0));
    ae_key_sets_free(&m.key_sets);
}

AE_TEST(keysets_refuses_what_the_loader_cannot_use_naming_it)
{
    static const struct {
        const char *json, *says;
    } bad[] = {
        {"{\"key_sets\": 3}", "key_sets is a number, not an array of key arrays"},
        {"{\"key_sets\": [[1], 2]}", "key_sets[1] is a number, not an array of keys"},
        {"{\"key_sets\": [[1, 70]]}", "key_sets[0][1] is not a key in 0..69"},
        {"{\"key_sets\": [[1.5]]}", "key_sets[0][0] is not a key in 0..69"},
        {"{\"key_sets\": [[-1]]}", "key_sets[0][0] is not a key in 0..69"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ae_model m;
        char why[256] = "";
        CHECK_STATUS(load(&m, bad[i].json, why, sizeof why), AE_ERR_FORMAT);
        CHECK_STR(why, bad[i].says);
        ae_key_sets_free(&m.key_sets);
    }
    ae_model m;
    char why[256] = "";
    memset(&m, 0, sizeof m);
    m.n = 70;
    m.start_key = m.end_key = SIZE_MAX;
    cJSON *meta = cJSON_Parse("{\"key_sets\": [[1]]}");
    CHECK_STATUS(ae_key_sets_load(&m, meta, why, sizeof why), AE_ERR_FORMAT);
    cJSON_Delete(meta);
    CHECK_STR(why, "key_sets need session keys (start_key and end_key are null)");
}

#include "test_keysets_cases.h"
AE_TEST_MAIN()

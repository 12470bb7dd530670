/*
 * test_strmap.c - the string -> index map behind the detector's sessions and series: lookups
 * stay right through growth and deletions (backward shift), checked against a plain array.
 */
#include <stdio.h>
#include <string.h>

#include "ae_test.h"
#include "internal.h"

enum { KEYS = 3000 };

static char names[KEYS][16];

static void make_names(void)
{
    for (int i = 0; i < KEYS; i++)
        snprintf(names[i], sizeof names[i], "s%d", i * 7919 % 100003);
}

AE_TEST(strmap_finds_what_was_put_and_nothing_else)
{
    make_names();
    ae_strmap map = {0};
    for (uint32_t i = 0; i < KEYS; i++) {
        const char *k = names[i];
        CHECK(ae_strmap_put(&map, k, strlen(k), ae_strmap_hash(k, strlen(k)), i) == 0);
    }
    CHECK_SIZE(map.count, KEYS);
    for (uint32_t i = 0; i < KEYS; i++) {
        uint32_t v = 0;
        const char *k = names[i];
        CHECK(ae_strmap_get(&map, k, strlen(k), ae_strmap_hash(k, strlen(k)), &v) == 1);
        CHECK(v == i);
    }
    uint32_t v;
    CHECK(ae_strmap_get(&map, "absent", 6, ae_strmap_hash("absent", 6), &v) == 0);
    CHECK(ae_strmap_get(&map, "s", 1, ae_strmap_hash("s", 1), &v) == 0);
    ae_strmap_free(&map);
    ae_strmap_free(&map); /* twice is harmless */
}

AE_TEST(strmap_keeps_every_other_key_reachable_through_deletions)
{
    make_names();
    ae_strmap map = {0};
    static unsigned char present[KEYS];
    memset(present, 0, sizeof present);
    uint32_t rng = 7;
    for (int step = 0; step < 40000; step++) {
        rng = rng * 1103515245u + 12345u;
        uint32_t i = (rng >> 8) % KEYS;
        const char *k = names[i];
        uint64_t h = ae_strmap_hash(k, strlen(k));
        if (present[i]) {
            ae_strmap_del(&map, k, strlen(k), h);
            present[i] = 0;
        } else {
            CHECK(ae_strmap_put(&map, k, strlen(k), h, i) == 0);
            present[i] = 1;
        }
        if (step % 997 == 0) {
            size_t n = 0;
            for (uint32_t j = 0; j < KEYS; j++) {
                uint32_t v = 0;
                const char *kj = names[j];
                int got = ae_strmap_get(&map, kj, strlen(kj), ae_strmap_hash(kj, strlen(kj)), &v);
                CHECK(got == present[j]);
                CHECK(!got || v == j);
                n += present[j];
            }
            CHECK_SIZE(map.count, n);
        }
    }
    ae_strmap_del(&map, "absent", 6, ae_strmap_hash("absent", 6)); /* a no-op */
    ae_strmap_free(&map);
}

#include "test_strmap_cases.h"
AE_TEST_MAIN()

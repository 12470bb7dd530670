/*
 * strmap.c - a string -> index hash map with deletion (the detector's sessions and series).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

uint64_t ae_strmap_hash(const char *key, size_t len)
{
    uint64_t h = ae_fnv1a(key, len);
    return h ^ (h >> 31);
}

static int same(const ae_strmap_slot *s, const char *key, size_t len, uint64_t hash)
{
    return s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0;
}

int ae_strmap_get(const ae_strmap *map, const char *key, size_t len, uint64_t hash,
                  uint32_t *value)
{
    if (map->count == 0)
        return 0;
    for (size_t i = (size_t)hash & map->mask;; i = (i + 1) & map->mask) {
        const ae_strmap_slot *s = &map->slots[i];
        if (!s->used)
            return 0;
        if (same(s, key, len, hash)) {
            *value = s->value;
            return 1;
        }
    }
}

static int grow(ae_strmap *map)
{
    size_t n = map->slots == NULL ? 16 : 2 * (map->mask + 1);
    ae_strmap_slot *slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return -1;
    for (size_t i = 0; map->slots != NULL && i <= map->mask; i++) {
        if (!map->slots[i].used)
            continue;
        size_t j = (size_t)map->slots[i].hash & (n - 1);
        while (slots[j].used)
            j = (j + 1) & (n - 1);
        slots[j] = map->slots[i];
    }
    free(map->slots);
    map->slots = slots;
    map->mask = n - 1;
    return 0;
}

int ae_strmap_put(ae_strmap *map, const char *key, size_t len, uint64_t hash, uint32_t value)
{
    if ((map->slots == NULL || 2 * (map->count + 1) > map->mask + 1) && grow(map) != 0)
        return -1;
    size_t i = (size_t)hash & map->mask;
    while (map->slots[i].used)
        i = (i + 1) & map->mask;
    map->slots[i] = (ae_strmap_slot){hash, key, len, value, 1};
    map->count++;
    return 0;
}

void ae_strmap_del(ae_strmap *map, const char *key, size_t len, uint64_t hash)
{
    if (map->count == 0)
        return;
    size_t i = (size_t)hash & map->mask;
    for (;; i = (i + 1) & map->mask) {
        if (!map->slots[i].used)
            return;
        if (same(&map->slots[i], key, len, hash))
            break;
    }
    /* Backward shift: move later entries of the probe run into the hole when their home
     * slot does not lie (cyclically) between the hole and them. */
    size_t hole = i;
    for (size_t j = (hole + 1) & map->mask; map->slots[j].used; j = (j + 1) & map->mask) {
        size_t home = (size_t)map->slots[j].hash & map->mask;
        int between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (between)
            continue;
        map->slots[hole] = map->slots[j];
        hole = j;
    }
    map->slots[hole].used = 0;
    map->count--;
}

void ae_strmap_free(ae_strmap *map)
{
    free(map->slots);
    map->slots = NULL;
    map->mask = map->count = 0;
}

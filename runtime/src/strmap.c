/*
 * strmap.c - the runtime's hash maps: ae_strmap, string -> index with deletion (the detector's
 * sessions and series); the matcher's id maps (kmap: (parent, bytes) -> child, imap: uint64 ->
 * uint32) and its string arena; ae_reserve for growing arrays.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "match_impl.h"

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

/* ---------------------------------------------------------------------------------------------
 * The string arena and the id maps of the matcher
 */

const char *ae_arena_copy(ae_arena_block **arena, const char *s, size_t len)
{
    ae_arena_block *b = *arena;
    if (b == NULL || b->cap - b->used < len + 1) {
        size_t cap = len + 1 > 60000 ? len + 1 : 60000;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = *arena;
        *arena = b;
    }
    char *dst = b->data + b->used;
    memcpy(dst, s, len);
    dst[len] = '\0';
    b->used += len + 1;
    return dst;
}

void ae_arena_free(ae_arena_block **arena)
{
    while (*arena != NULL) {
        ae_arena_block *next = (*arena)->next;
        free(*arena);
        *arena = next;
    }
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

int ae_kmap_put(ae_kmap *map, uint32_t parent, const char *key, size_t len, uint32_t child)
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

int ae_imap_put(ae_imap *map, uint64_t key, uint32_t value)
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

int ae_reserve(void **array, size_t *cap, size_t need, size_t size)
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

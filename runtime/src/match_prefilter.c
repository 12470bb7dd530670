/*
 * match_prefilter.c - when a mask cannot match a text, and when ASCII-only rules give the same
 * answers as Unicode ones.
 *
 * A mask is skipped only on what PCRE2 itself proves from the compiled pattern (the bytes a match
 * can start with, a byte every match contains, the shortest match): PCRE2 uses the same facts to
 * fail without trying, so skipping gives the same result as running it. The bytes of a text are
 * over-approximated while masking (a mask's output holds its input's bytes and its replacement's),
 * so one scan per line is enough.
 */
#include <string.h>

#include "match_impl.h"

static void set_byte(uint64_t *set, unsigned b)
{
    set[b >> 6] |= (uint64_t)1 << (b & 63);
}

static int has_byte(const uint64_t *set, unsigned b)
{
    return (int)((set[b >> 6] >> (b & 63)) & 1);
}

/* A byte that every match contains: both cases of an ASCII letter (the pattern may be caseless);
 * a non-ASCII code unit is not used (its other case may be other bytes). */
static void add_need(ae_prefilter *pf, uint32_t unit)
{
    if (unit >= 0x80 || pf->n_need == 2)
        return;
    unsigned char lo = (unsigned char)unit, up = (unsigned char)unit;
    if (unit >= 'a' && unit <= 'z')
        up = (unsigned char)(unit - 'a' + 'A');
    else if (unit >= 'A' && unit <= 'Z')
        lo = (unsigned char)(unit - 'A' + 'a');
    pf->need[pf->n_need][0] = lo;
    pf->need[pf->n_need][1] = up;
    pf->n_need++;
}

void ae_bytes_add(uint64_t *bytes, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        set_byte(bytes, (unsigned char)s[i]);
}

void ae_prefilter_init(const pcre2_code *re, ae_prefilter *pf)
{
    memset(pf, 0, sizeof *pf);
    uint32_t min_len = 0, type = 0, unit = 0;
    if (pcre2_pattern_info(re, PCRE2_INFO_MINLENGTH, &min_len) == 0)
        pf->min_len = min_len; /* in characters: never more than the bytes */
    const uint8_t *bitmap = NULL;
    if (pcre2_pattern_info(re, PCRE2_INFO_FIRSTBITMAP, &bitmap) == 0 && bitmap != NULL) {
        pf->has_start = 1;
        for (unsigned b = 0; b < 256; b++)
            if ((bitmap[b >> 3] >> (b & 7)) & 1)
                set_byte(pf->start, b);
    }
    if (pcre2_pattern_info(re, PCRE2_INFO_FIRSTCODETYPE, &type) == 0 && type == 1 &&
        pcre2_pattern_info(re, PCRE2_INFO_FIRSTCODEUNIT, &unit) == 0)
        add_need(pf, unit);
    if (pcre2_pattern_info(re, PCRE2_INFO_LASTCODETYPE, &type) == 0 && type == 1 &&
        pcre2_pattern_info(re, PCRE2_INFO_LASTCODEUNIT, &unit) == 0)
        add_need(pf, unit);
}

int ae_prefilter_may_match(const ae_prefilter *pf, const uint64_t *bytes, size_t len)
{
    if (len < pf->min_len)
        return 0;
    for (unsigned i = 0; i < pf->n_need; i++)
        if (!has_byte(bytes, pf->need[i][0]) && !has_byte(bytes, pf->need[i][1]))
            return 0;
    if (pf->has_start) {
        uint64_t any = 0;
        for (unsigned w = 0; w < 4; w++)
            any |= pf->start[w] & bytes[w];
        if (any == 0)
            return 0;
    }
    return 1;
}

int ae_bytes_scan(const char *s, size_t len, uint64_t *bytes)
{
    const unsigned char *u = (const unsigned char *)s;
    /* ASCII first, in two registers (a set in memory costs a store-to-load round trip per byte). */
    uint64_t lo = 0, hi = 0;
    unsigned char high = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned c = u[i];
        uint64_t bit = (uint64_t)1 << (c & 63);
        high |= (unsigned char)c;
        lo |= c & 64 ? 0 : bit;
        hi |= c & 64 ? bit : 0;
    }
    memset(bytes, 0, 4 * sizeof *bytes);
    if (high < 0x80) {
        bytes[0] = lo;
        bytes[1] = hi;
        return 1;
    }
    for (size_t i = 0; i < len; i++)
        set_byte(bytes, u[i]);
    return 0;
}

int ae_ascii_only(const char *s, size_t len)
{
    uint64_t any = 0, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, s + i, 8);
        any |= w;
    }
    for (; i < len; i++)
        any |= (unsigned char)s[i];
    return (any & 0x8080808080808080u) == 0;
}

uint64_t ae_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0x9E3779B97F4A7C15u ^ len, w;
    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9u;
        h ^= h >> 31;
    }
    if (len > 0) {
        w = 0;
        memcpy(&w, p, len);
        h = (h ^ w) * 0x94D049BB133111EBu;
        h ^= h >> 29;
    }
    return h;
}

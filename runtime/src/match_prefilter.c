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
    unsigned char high = 0;
    memset(bytes, 0, 4 * sizeof *bytes);
    for (size_t i = 0; i < len; i++) {
        set_byte(bytes, u[i]);
        high |= u[i];
    }
    return high < 0x80;
}

/*
 * match_text.c - Python's notion of whitespace on UTF-8 bytes: str.isspace(), str.strip(),
 * `not line.strip()`, and len() of a str.
 */
#include "internal.h"

size_t ae_py_space_at(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (len == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80)
        return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) ? 1 : 0;
    switch (c) {
    case 0xC2: /* U+0085 NEL, U+00A0 NO-BREAK SPACE */
        return len >= 2 && (s[1] == 0x85 || s[1] == 0xA0) ? 2 : 0;
    case 0xE1: /* U+1680 OGHAM SPACE MARK (not U+180E, which Python does not count) */
        return len >= 3 && s[1] == 0x9A && s[2] == 0x80 ? 3 : 0;
    case 0xE2:
        if (len < 3)
            return 0;
        if (s[1] == 0x80) /* U+2000-U+200A, U+2028, U+2029, U+202F */
            return s[2] <= 0x8A || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF ? 3 : 0;
        return s[1] == 0x81 && s[2] == 0x9F ? 3 : 0; /* U+205F */
    case 0xE3: /* U+3000 IDEOGRAPHIC SPACE */
        return len >= 3 && s[1] == 0x80 && s[2] == 0x80 ? 3 : 0;
    default:
        return 0;
    }
}

/* Byte length of the whitespace code point that ends s[0..end), or 0. */
static size_t space_before(const char *s, size_t end)
{
    size_t start = end;
    /* Back over at most three continuation bytes to the lead byte of the last code point. */
    while (start > 0 && end - start < 4) {
        start--;
        if (((unsigned char)s[start] & 0xC0) != 0x80)
            break;
    }
    size_t n = ae_py_space_at(s + start, end - start);
    return n == end - start ? n : 0;
}

void ae_py_strip(const char *s, size_t len, size_t *start, size_t *end)
{
    size_t a = 0, b = len, n;
    while (a < b && (n = ae_py_space_at(s + a, b - a)) > 0)
        a += n;
    while (b > a && (n = space_before(s, b)) > 0)
        b -= n;
    *start = a;
    *end = b;
}

int ae_line_is_blank(const char *line, size_t len)
{
    if (line == NULL || len == 0)
        return 1;
    size_t a, b;
    ae_py_strip(line, len, &a, &b);
    return a == b;
}

size_t ae_utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/*
 * match_regex.c - Python `re` patterns as PCRE2 patterns.
 *
 * PCRE2 compiled with UTF + UCP agrees with Python 3.11's `re` on str patterns for what log
 * formats and masks use (checked over every code point: \w, \W, \d, \D, \b, \B are equal), except
 * for these, which are translated:
 *   \s, \S       PCRE2's UCP set lacks \x1c-\x1f and has U+180E; Python's is str.isspace()
 *   \v           PCRE2: any vertical space; Python: \x0b only
 *   \Z           PCRE2: end or before a final newline; Python: end only (PCRE2's \z)
 *   \uXXXX, \UXXXXXXXX   Python escapes that PCRE2 lacks: \x{...}
 *   x{,n}, x{,}  Python 3.11: {0,n}, {0,}; PCRE2 10.42: literal text
 *   [ in a class Python: a literal; PCRE2: may open a POSIX class ([:alpha:])
 * and these, which cannot be expressed simply, are refused:
 *   \N{name}     (Python's named characters), \S inside a class, verbose mode (?x)
 * Escapes Python rejects (\h, \K, \p, \Q, ...) never reach here from a valid Python pattern; PCRE2
 * constructs Python rejects ((*VERB), (?|...), (?R)) likewise.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "match_impl.h"

/* Python's whitespace (str.isspace()) as the body of a character class. */
#define PY_SPACE_SET                                                                             \
    "\\t-\\r\\x1c-\\x20\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"    \
    "\\x{205f}\\x{3000}"

typedef struct out_buf {
    char *data;
    size_t *map;
    size_t len, cap;
} out_buf;

static int put(out_buf *o, const char *s, size_t n, size_t src)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 64;
        while (o->len + n + 1 > cap)
            cap *= 2;
        char *d = realloc(o->data, cap);
        if (d == NULL)
            return -1;
        o->data = d;
        size_t *m = realloc(o->map, cap * sizeof *m);
        if (m == NULL)
            return -1;
        o->map = m;
        o->cap = cap;
    }
    memcpy(o->data + o->len, s, n);
    for (size_t i = 0; i < n; i++)
        o->map[o->len + i] = src;
    o->len += n;
    return 0;
}

static int puts_(out_buf *o, const char *s, size_t src)
{
    return put(o, s, strlen(s), src);
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of the UTF-8 sequence that starts with byte c (1 for ASCII and stray bytes). */
static size_t seq_len(unsigned char c)
{
    if (c >= 0xF0)
        return 4;
    if (c >= 0xE0)
        return 3;
    if (c >= 0xC0)
        return 2;
    return 1;
}

/*
 * A Python escape \u or \U at py[i] (py[i] == '\\'): writes \x{...}.
 * @return bytes consumed, or 0 when malformed (Python would refuse the pattern too).
 */
static size_t unicode_escape(const char *py, size_t len, size_t i, out_buf *o, int *oom)
{
    size_t digits = py[i + 1] == 'u' ? 4 : 8;
    if (i + 2 + digits > len)
        return 0;
    unsigned long v = 0;
    for (size_t k = 0; k < digits; k++) {
        char c = py[i + 2 + k];
        if (!is_hex(c))
            return 0;
        v = v * 16 + (unsigned long)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    if (v > 0x10FFFF)
        return 0;
    char buf[16];
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    buf[n++] = '\\';
    buf[n++] = 'x';
    buf[n++] = '{';
    char rev[8];
    size_t r = 0;
    do {
        rev[r++] = hex[v & 15];
        v >>= 4;
    } while (v != 0);
    while (r > 0)
        buf[n++] = rev[--r];
    buf[n++] = '}';
    if (put(o, buf, n, i) != 0)
        *oom = 1;
    return 2 + digits;
}

ae_status ae_pyre_translate(const char *py, size_t len, char **out, size_t *out_len,
                            size_t **map, char *why, size_t why_len)
{
    out_buf o = {0};
    int in_class = 0, oom = 0;
    size_t class_start = 0; /* offset of the first member of the current class */
    *out = NULL;
    *out_len = 0;
    if (map != NULL)
        *map = NULL;
    size_t i = 0;
    while (i < len && !oom) {
        char c = py[i];
        if (c == '\\') {
            if (i + 1 >= len) { /* a trailing backslash: let PCRE2 report it */
                oom = put(&o, py + i, 1, i) != 0;
                i++;
                continue;
            }
            char e = py[i + 1];
            size_t used;
            switch (e) {
            case 's':
                oom = puts_(&o, in_class ? PY_SPACE_SET : "[" PY_SPACE_SET "]", i) != 0;
                i += 2;
                break;
            case 'S':
                if (in_class) {
                    free(o.data);
                    free(o.map);
                    return ae_fail(AE_ERR_FORMAT, why, why_len,
                                   "\\S inside a character class is not supported (offset %zu)",
                                   i);
                }
                oom = puts_(&o, "[^" PY_SPACE_SET "]", i) != 0;
                i += 2;
                break;
            case 'v':
                oom = puts_(&o, "\\x0b", i) != 0;
                i += 2;
                break;
            case 'Z':
                oom = puts_(&o, in_class ? "Z" : "\\z", i) != 0; /* \Z in a class: Python errs */
                i += 2;
                break;
            case 'u':
            case 'U':
                used = unicode_escape(py, len, i, &o, &oom);
                if (used == 0) {
                    free(o.data);
                    free(o.map);
                    return ae_fail(AE_ERR_FORMAT, why, why_len,
                                   "bad escape \\%c at offset %zu", e, i);
                }
                i += used;
                break;
            case 'N':
                free(o.data);
                free(o.map);
                return ae_fail(AE_ERR_FORMAT, why, why_len,
                               "named characters (\\N{...}) are not supported (offset %zu)", i);
            default: {
                /* Any other escape means the same in both (an escaped non-ASCII character is
                 * that character): copy it whole. */
                size_t n = 1 + seq_len((unsigned char)e);
                if (i + n > len)
                    n = len - i;
                oom = put(&o, py + i, n, i) != 0;
                i += n;
                break;
            }
            }
            continue;
        }
        if (in_class) {
            if (c == ']' && i > class_start) {
                in_class = 0;
                oom = put(&o, "]", 1, i) != 0;
            } else if (c == '[') {
                oom = put(&o, "\\[", 2, i) != 0;
            } else {
                oom = put(&o, py + i, 1, i) != 0;
            }
            i++;
            continue;
        }
        if (c == '[') {
            in_class = 1;
            oom = put(&o, "[", 1, i) != 0;
            i++;
            if (i < len && py[i] == '^') {
                oom = oom || put(&o, "^", 1, i) != 0;
                i++;
            }
            class_start = i; /* a ']' right here is a member */
            continue;
        }
        if (c == '{' && i + 1 < len && py[i + 1] == ',') {
            size_t k = i + 2;
            while (k < len && py[k] >= '0' && py[k] <= '9')
                k++;
            if (k < len && py[k] == '}') { /* {,n} or {,}: Python's {0,n} / {0,} */
                oom = put(&o, "{0", 2, i) != 0 || put(&o, py + i + 1, k + 1 - (i + 1), i) != 0;
                i = k + 1;
                continue;
            }
        }
        if (c == '(' && i + 2 < len && py[i + 1] == '?') {
            /* Inline flags (?aiLmsux) or (?flags:...): refuse verbose mode. */
            size_t k = i + 2;
            int verbose = 0, off = 0;
            while (k < len && py[k] != '\0' && strchr("aiLmsux-", py[k]) != NULL) {
                off |= py[k] == '-';
                verbose |= py[k] == 'x' && !off;
                k++;
            }
            if (verbose && k < len && (py[k] == ')' || py[k] == ':')) {
                free(o.data);
                free(o.map);
                return ae_fail(AE_ERR_FORMAT, why, why_len,
                               "verbose mode ((?x)) is not supported (offset %zu)", i);
            }
        }
        oom = put(&o, py + i, 1, i) != 0;
        i++;
    }
    if (oom || put(&o, "", 0, len) != 0) {
        free(o.data);
        free(o.map);
        return ae_fail(AE_ERR_NO_MEMORY, why, why_len, "out of memory");
    }
    o.data[o.len] = '\0';
    o.map[o.len] = len;
    *out = o.data;
    *out_len = o.len;
    if (map != NULL)
        *map = o.map;
    else
        free(o.map);
    return AE_OK;
}

/*
 * A line format that ends with "(?P<name>.*?)$" gets "(?P<name>.*)$": on a subject without "\n"
 * (the first line of a record) "$" holds at its end only, and on one with "\n"s "." stops at the
 * first, so both find the same single place for the group's end; the greedy form goes there at
 * once instead of one character at a time. Patterns with inline flags ((?s) lets "." take "\n")
 * are left alone.
 */
char *ae_pyre_greedy_tail(const char *pattern)
{
    static const char tail[] = ">.*?)$";
    size_t len = strlen(pattern), tl = sizeof tail - 1;
    const char *open = NULL;
    for (const char *p = strstr(pattern, "(?"); p != NULL; p = strstr(p + 2, "(?")) {
        char c = p[2];
        if (c != ':' && c != '=' && c != '!' && c != '<' && c != 'P')
            return NULL; /* flags, comments, conditionals */
        if (c == 'P' && p[3] == '<')
            open = p;
    }
    if (open == NULL || len < tl || strcmp(pattern + len - tl, tail) != 0)
        return NULL;
    for (const char *q = open + 4; q < pattern + len - tl; q++)
        if (!(*q == '_' || (*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z') ||
              (*q >= 'A' && *q <= 'Z')))
            return NULL; /* the last "(?P<" does not open the final group */
    char *out = malloc(len);
    if (out == NULL)
        return NULL;
    memcpy(out, pattern, len - tl);
    memcpy(out + len - tl, ">.*)$", 6);
    return out;
}

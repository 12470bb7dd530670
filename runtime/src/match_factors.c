/*
 * match_factors.c - sequences of character classes that every match of a Python pattern holds
 * ("DDDD-" for a date, "HH:HH:" for a MAC address, ":D" for a port), read from the pattern's text,
 * so that a mask is not run on an ASCII text that holds none of them. On ASCII text \d, \w, \s and
 * "." are ASCII sets, so a class is 128 bits. Like match_literals.c the reading is partial: a
 * construct it does not know gives no factors (the mask always runs), never wrong ones.
 */
#include <string.h>

#include "match_impl.h"

typedef struct reader {
    const char *p;
    size_t len, i;
    int bail;
} reader;

typedef struct run {
    unsigned len;
    uint64_t cls[AE_FACTOR_LEN][2];
} run;

static void set_add(uint64_t *set, unsigned c)
{
    set[c >> 6] |= (uint64_t)1 << (c & 63);
}

static void set_range(uint64_t *set, unsigned lo, unsigned hi)
{
    for (unsigned c = lo; c <= hi; c++)
        set_add(set, c);
}

static int set_has(const uint64_t *set, unsigned char c)
{
    return c < 128 && (int)((set[c >> 6] >> (c & 63)) & 1);
}

static unsigned set_count(const uint64_t *set)
{
    return (unsigned)(__builtin_popcountll(set[0]) + __builtin_popcountll(set[1]));
}

/* Python's \d, \w, \s (str patterns) restricted to ASCII; upper case: the complement. */
static int escape_set(char e, uint64_t *set)
{
    uint64_t s[2] = {0, 0};
    switch (e | 0x20) {
    case 'd':
        set_range(s, '0', '9');
        break;
    case 'w':
        set_range(s, '0', '9');
        set_range(s, 'a', 'z');
        set_range(s, 'A', 'Z');
        set_add(s, '_');
        break;
    case 's':
        set_range(s, 0x09, 0x0D);
        set_range(s, 0x1C, 0x20);
        break;
    default:
        return 0;
    }
    if (e >= 'A' && e <= 'Z') {
        s[0] = ~s[0];
        s[1] = ~s[1];
    }
    set[0] |= s[0];
    set[1] |= s[1];
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* One character of an escape that stands for a single character (after the backslash), or -1. */
static int escape_char(reader *R, int in_class)
{
    char e = R->p[R->i];
    switch (e) {
    case 't': R->i++; return '\t';
    case 'n': R->i++; return '\n';
    case 'r': R->i++; return '\r';
    case 'f': R->i++; return '\f';
    case 'v': R->i++; return '\v';
    case 'a': R->i++; return '\a';
    case 'b':
        if (!in_class)
            return -1;
        R->i++;
        return '\b';
    case 'x':
        if (R->i + 2 < R->len && hexval(R->p[R->i + 1]) >= 0 && hexval(R->p[R->i + 2]) >= 0) {
            int v = hexval(R->p[R->i + 1]) * 16 + hexval(R->p[R->i + 2]);
            R->i += 3;
            return v;
        }
        return -1;
    default:
        if ((unsigned char)e < 0x80 && !((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') ||
                                          (e >= 'A' && e <= 'Z'))) {
            R->i++;
            return (unsigned char)e; /* escaped punctuation is itself */
        }
        return -1;
    }
}

/* A class "[...]" (R at '['); only what Python reads the same way everywhere. */
static void char_class(reader *R, uint64_t *set)
{
    uint64_t s[2] = {0, 0};
    int negate = 0;
    R->i++;
    if (R->i < R->len && R->p[R->i] == '^') {
        negate = 1;
        R->i++;
    }
    int first = 1;
    while (!R->bail) {
        if (R->i >= R->len) {
            R->bail = 1;
            return;
        }
        char c = R->p[R->i];
        if (c == ']' && !first) {
            R->i++;
            break;
        }
        first = 0;
        int lo;
        if (c == '\\') {
            R->i++;
            if (R->i >= R->len) {
                R->bail = 1;
                return;
            }
            if (escape_set(R->p[R->i], s)) {
                R->i++;
                if (R->i < R->len && R->p[R->i] == '-' && R->i + 1 < R->len && R->p[R->i + 1] != ']')
                    R->bail = 1; /* a range from a set */
                continue;
            }
            if ((lo = escape_char(R, 1)) < 0) {
                R->bail = 1;
                return;
            }
        } else if ((unsigned char)c >= 0x80) {
            R->bail = 1; /* non-ASCII members: not read */
            return;
        } else {
            lo = (unsigned char)c;
            R->i++;
        }
        int hi = lo;
        if (R->i + 1 < R->len && R->p[R->i] == '-' && R->p[R->i + 1] != ']') {
            R->i++;
            char h = R->p[R->i];
            if (h == '\\') {
                R->i++;
                if (R->i >= R->len || (hi = escape_char(R, 1)) < 0) {
                    R->bail = 1;
                    return;
                }
            } else if ((unsigned char)h >= 0x80) {
                R->bail = 1;
                return;
            } else {
                hi = (unsigned char)h;
                R->i++;
            }
            if (hi < lo) {
                R->bail = 1;
                return;
            }
        }
        set_range(s, (unsigned)lo, (unsigned)(hi > 127 ? 127 : hi));
    }
    if (negate) {
        s[0] = ~s[0];
        s[1] = ~s[1];
    }
    set[0] = s[0];
    set[1] = s[1];
}

/* A quantifier after an atom: {min, max} (max UINT32_MAX for none); none: {1, 1}. */
static void quantifier(reader *R, unsigned *min, unsigned *max)
{
    *min = *max = 1;
    if (R->i >= R->len)
        return;
    char c = R->p[R->i];
    if (c == '*' || c == '+' || c == '?') {
        *min = c == '+';
        *max = c == '?' ? 1 : UINT32_MAX;
        R->i++;
    } else if (c == '{') {
        size_t k = R->i + 1;
        unsigned lo = 0, hi = 0, digits = 0, hdigits = 0;
        while (k < R->len && R->p[k] >= '0' && R->p[k] <= '9' && digits < 6)
            lo = lo * 10 + (unsigned)(R->p[k++] - '0'), digits++;
        int comma = k < R->len && R->p[k] == ',';
        if (comma) {
            k++;
            while (k < R->len && R->p[k] >= '0' && R->p[k] <= '9' && hdigits < 6)
                hi = hi * 10 + (unsigned)(R->p[k++] - '0'), hdigits++;
        }
        if (k >= R->len || R->p[k] != '}' || (!digits && !comma)) {
            R->bail = 1; /* a literal '{' (or a count too large to read): not read */
            return;
        }
        *min = lo;
        *max = !comma ? lo : hdigits ? hi : UINT32_MAX;
        R->i = k + 1;
    } else {
        return;
    }
    if (R->i < R->len && (R->p[R->i] == '?' || R->p[R->i] == '+'))
        R->i++; /* lazy or possessive: the same strings */
}

/* Keep the most selective factors: the score of a factor is the sum of its classes' rarity. */
static unsigned factor_score(const ae_factor *f)
{
    unsigned s = 0;
    for (unsigned k = 0; k < f->len; k++)
        s += 129 - set_count(f->cls[k]);
    return s;
}

static void emit(ae_factor_alt *alt, run *r)
{
    if (r->len == 0)
        return;
    ae_factor f;
    memset(&f, 0, sizeof f);
    f.len = (unsigned char)r->len;
    memcpy(f.cls, r->cls, r->len * sizeof r->cls[0]);
    unsigned best = UINT32_MAX;
    for (unsigned k = 0; k < f.len; k++) {
        unsigned n = set_count(f.cls[k]);
        if (n < best) {
            best = n;
            f.anchor = (unsigned char)k;
        }
    }
    f.anchor_byte = -1;
    for (unsigned c = 0; best == 1 && c < 128; c++)
        if (set_has(f.cls[f.anchor], (unsigned char)c))
            f.anchor_byte = (int)c; /* a single byte: found with memchr */
    r->len = 0;
    for (unsigned k = 0; k < alt->n; k++)
        if (alt->f[k].len == f.len && memcmp(alt->f[k].cls, f.cls, sizeof f.cls) == 0)
            return; /* the same factor twice (the copies of a repeated group) */
    if (alt->n < AE_FACTORS) {
        alt->f[alt->n++] = f;
        return;
    }
    unsigned weakest = 0;
    for (unsigned k = 1; k < alt->n; k++)
        if (factor_score(&alt->f[k]) < factor_score(&alt->f[weakest]))
            weakest = k;
    if (factor_score(&f) > factor_score(&alt->f[weakest]))
        alt->f[weakest] = f;
}

static void append(ae_factor_alt *alt, run *r, const uint64_t *set)
{
    if (r->len == AE_FACTOR_LEN)
        emit(alt, r); /* a prefix of a factor is one too; the rest starts a new one */
    r->cls[r->len][0] = set[0];
    r->cls[r->len][1] = set[1];
    r->len++;
}

/* Skip a group's body (R after its opening parenthesis) to its ')'; *alternation: a '|' at its
 * top level. */
static void skip_group(reader *R, int *alternation)
{
    unsigned depth = 0;
    *alternation = 0;
    while (R->i < R->len) {
        char c = R->p[R->i];
        if (c == '\\') {
            R->i += 2;
        } else if (c == '[') {
            uint64_t ignored[2];
            char_class(R, ignored);
            if (R->bail)
                return;
        } else if (c == '(') {
            depth++;
            R->i++;
        } else if (c == ')') {
            if (depth == 0) {
                R->i++;
                return;
            }
            depth--;
            R->i++;
        } else {
            if (c == '|' && depth == 0)
                *alternation = 1;
            R->i++;
        }
    }
    R->bail = 1;
}

static void sequence(reader *R, size_t end, ae_factor_alt *alt, run *r, unsigned depth);

/* A group (R at '('). */
static void group(reader *R, ae_factor_alt *alt, run *r, unsigned depth)
{
    R->i++;
    int lookaround = 0;
    if (R->i < R->len && R->p[R->i] == '?') {
        const char *q = R->p + R->i + 1;
        size_t left = R->len - R->i - 1;
        if (left >= 1 && q[0] == ':') {
            R->i += 2;
        } else if (left >= 1 && (q[0] == '=' || q[0] == '!')) {
            R->i += 2;
            lookaround = 1;
        } else if (left >= 2 && q[0] == '<' && (q[1] == '=' || q[1] == '!')) {
            R->i += 3;
            lookaround = 1;
        } else if (left >= 2 && q[0] == 'P' && q[1] == '<') {
            const char *close = memchr(q, '>', left);
            if (close == NULL) {
                R->bail = 1;
                return;
            }
            R->i = (size_t)(close - R->p) + 1;
        } else {
            R->bail = 1; /* flags, (?P=name), (?(...)), comments */
            return;
        }
    }
    size_t body = R->i;
    int alternation;
    skip_group(R, &alternation);
    if (R->bail)
        return;
    size_t close = R->i - 1; /* the ')' */
    unsigned min, max;
    quantifier(R, &min, &max);
    if (R->bail)
        return;
    if (lookaround) {
        if (min != 1 || max != 1)
            R->bail = 1; /* a quantified assertion: not read */
        return;         /* zero width: what is before and after it stay adjacent */
    }
    size_t after = R->i;
    if (alternation || depth > 20) { /* its width is not known: the factors stop here */
        emit(alt, r);
        return;
    }
    if (min == max && min <= 8) { /* exactly min copies, side by side */
        for (unsigned k = 0; k < min && !R->bail; k++) {
            R->i = body;
            sequence(R, close, alt, r, depth + 1);
        }
        R->i = after;
        if (min == 0)
            emit(alt, r);
        return;
    }
    if (min == 0) {
        emit(alt, r);
        return;
    }
    /* At least one copy: the first touches what is before, the last what follows. */
    R->i = body;
    sequence(R, close, alt, r, depth + 1);
    emit(alt, r);
    R->i = body;
    sequence(R, close, alt, r, depth + 1);
    R->i = after;
}

/* Atoms up to `end` (a group's ')') or, at the top, up to '|' or the end. */
static void sequence(reader *R, size_t end, ae_factor_alt *alt, run *r, unsigned depth)
{
    while (R->i < end && !R->bail) {
        char c = R->p[R->i];
        uint64_t set[2] = {0, 0};
        int zero_width = 0;
        if (c == '|') {
            if (depth == 0)
                return;
            R->bail = 1; /* a group with alternatives is never read inside */
            return;
        }
        if (c == ')') {
            R->bail = 1;
            return;
        }
        if (c == '(') {
            group(R, alt, r, depth);
            continue;
        }
        if (c == '[') {
            char_class(R, set);
        } else if (c == '\\') {
            R->i++;
            if (R->i >= R->len) {
                R->bail = 1;
                return;
            }
            char e = R->p[R->i];
            if (escape_set(e, set)) {
                R->i++;
            } else if (e == 'b' || e == 'B' || e == 'A' || e == 'Z') {
                R->i++;
                zero_width = 1;
            } else {
                int ch = escape_char(R, 0);
                if (ch < 0 || ch > 127) {
                    R->bail = 1; /* \1, \N{..}, \u....: not read */
                    return;
                }
                set_add(set, (unsigned)ch);
            }
        } else if (c == '^' || c == '$') {
            R->i++;
            zero_width = 1;
        } else if (c == '.') {
            set[0] = ~(uint64_t)0 & ~((uint64_t)1 << '\n');
            set[1] = ~(uint64_t)0;
            R->i++;
        } else if (c == '*' || c == '+' || c == '?' || c == '{' || (unsigned char)c >= 0x80) {
            R->bail = 1;
            return;
        } else {
            set_add(set, (unsigned char)c);
            R->i++;
        }
        if (R->bail)
            return;
        unsigned min, max;
        quantifier(R, &min, &max);
        if (R->bail)
            return;
        if (zero_width) {
            if (min != 1 || max != 1)
                R->bail = 1;
            continue;
        }
        unsigned copies = min < AE_FACTOR_LEN ? min : AE_FACTOR_LEN;
        for (unsigned k = 0; k < copies; k++)
            append(alt, r, set);
        if (min != max || min > copies) { /* its last `copies` characters touch what follows */
            emit(alt, r);
            for (unsigned k = 0; k < copies; k++)
                append(alt, r, set);
        }
    }
}

void ae_factors_of(const char *pattern, size_t len, ae_factor_reqs *out)
{
    reader R = {pattern, len, 0, 0};
    memset(out, 0, sizeof *out);
    ae_factor_reqs got;
    memset(&got, 0, sizeof got);
    for (;;) {
        if (got.n_alts == AE_FACTOR_ALTS)
            return; /* too many alternatives: no requirement */
        ae_factor_alt *alt = &got.alt[got.n_alts++];
        run r;
        r.len = 0;
        sequence(&R, len, alt, &r, 0);
        emit(alt, &r);
        /* Only factors with a byte of their own are kept: memchr finds them fast, while a
         * factor of classes alone ("D", "HHHHHHHH") costs a scan that most texts pass. */
        unsigned kept = 0;
        for (unsigned k = 0; k < alt->n; k++)
            if (alt->f[k].anchor_byte >= 0)
                alt->f[kept++] = alt->f[k];
        alt->n = kept;
        if (R.bail || alt->n == 0)
            return; /* an alternative without factors: any text may match */
        for (unsigned a = 1; a < alt->n; a++) /* the most selective first */
            for (unsigned b = a; b > 0 && factor_score(&alt->f[b]) > factor_score(&alt->f[b - 1]); b--) {
                ae_factor t = alt->f[b];
                alt->f[b] = alt->f[b - 1];
                alt->f[b - 1] = t;
            }
        if (R.i < len && R.p[R.i] == '|') {
            R.i++;
            continue;
        }
        break;
    }
    if (R.i == len)
        *out = got;
}

static int factor_at(const ae_factor *f, const unsigned char *s, size_t start)
{
    for (unsigned k = 0; k < f->len; k++)
        if (!set_has(f->cls[k], s[start + k]))
            return 0;
    return 1;
}

static int factor_present(const ae_factor *f, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    if (n < f->len)
        return 0;
    const uint64_t *anchor = f->cls[f->anchor];
    size_t a = f->anchor, last = n - f->len; /* the factor starts at 0..last */
    if (f->anchor_byte >= 0) {
        unsigned char b = (unsigned char)f->anchor_byte;
        const unsigned char *p = s + a, *stop = s + last + a + 1;
        while (p < stop && (p = memchr(p, b, (size_t)(stop - p))) != NULL) {
            if (factor_at(f, s, (size_t)(p - s) - a))
                return 1;
            p++;
        }
        return 0;
    }
    for (size_t i = 0; i <= last; i++)
        if (set_has(anchor, s[i + a]) && factor_at(f, s, i))
            return 1;
    return 0;
}

int ae_factors_present(const ae_factor_reqs *reqs, const char *s, size_t n)
{
    if (reqs->n_alts == 0)
        return 1;
    for (unsigned a = 0; a < reqs->n_alts; a++) {
        const ae_factor_alt *alt = &reqs->alt[a];
        unsigned k = 0;
        while (k < alt->n && factor_present(&alt->f[k], s, n))
            k++;
        if (k == alt->n)
            return 1;
    }
    return 0;
}

/*
 * match_literals.c - literal strings that every match of a Python pattern holds, read from the
 * pattern's text, so that a mask whose literal is not in a line is not run on it ("://" of a URL
 * mask, "@" of an e-mail mask). The reading is deliberately partial: a construct it does not know
 * (flags, backreferences, conditionals, numeric escapes) gives no literals, never wrong ones.
 */
#include <string.h>

#include "match_impl.h"

typedef struct reader {
    const char *p;
    size_t len, i;
    int bail;
} reader;

/* The weakest requirement (shortest of its alternatives) scores lowest. */
static size_t score(const ae_literal_req *r)
{
    size_t best = AE_LITERAL_MAX;
    for (unsigned a = 0; a < r->n_alts; a++)
        if (r->len[a] < best)
            best = r->len[a];
    return best * 8 + (AE_LITERAL_ALTS - r->n_alts);
}

static void add_req(ae_literal_reqs *set, const ae_literal_req *r)
{
    if (r->n_alts == 0)
        return;
    if (set->n < AE_LITERAL_REQS) {
        set->r[set->n++] = *r;
        return;
    }
    unsigned weakest = 0;
    for (unsigned k = 1; k < set->n; k++)
        if (score(&set->r[k]) < score(&set->r[weakest]))
            weakest = k;
    if (score(r) > score(&set->r[weakest]))
        set->r[weakest] = *r;
}

static void flush_run(ae_literal_reqs *set, char *run, size_t *run_len)
{
    if (*run_len > 0) {
        ae_literal_req r = {0};
        r.n_alts = 1;
        r.len[0] = (unsigned char)*run_len;
        memcpy(r.s[0], run, *run_len);
        add_req(set, &r);
    }
    *run_len = 0;
}

static void alternation(reader *R, ae_literal_reqs *out, unsigned depth);

/* A quantifier after an atom: its smallest count (0 or 1 = "at least one"), and whether it is
 * exactly one. No quantifier: exactly one. */
static void quantifier(reader *R, int *at_least_one, int *exactly_one)
{
    *at_least_one = 1;
    *exactly_one = 1;
    if (R->i >= R->len)
        return;
    char c = R->p[R->i];
    if (c == '*' || c == '?') {
        *at_least_one = 0;
        *exactly_one = 0;
        R->i++;
    } else if (c == '+') {
        *exactly_one = 0;
        R->i++;
    } else if (c == '{') {
        size_t k = R->i + 1, lo = 0, digits = 0;
        while (k < R->len && R->p[k] >= '0' && R->p[k] <= '9') {
            lo = lo * 10 + (size_t)(R->p[k] - '0');
            k++;
            digits++;
        }
        int comma = k < R->len && R->p[k] == ',';
        if (comma) {
            k++;
            while (k < R->len && R->p[k] >= '0' && R->p[k] <= '9')
                k++;
        }
        if (k >= R->len || R->p[k] != '}' || (!digits && !comma))
            return; /* not a quantifier: a literal '{', read as the next atom */
        *at_least_one = digits && lo >= 1;
        *exactly_one = digits && lo == 1 && !comma;
        R->i = k + 1;
    } else {
        return;
    }
    if (R->i < R->len && (R->p[R->i] == '?' || R->p[R->i] == '+'))
        R->i++; /* lazy or possessive: the same strings */
}

/* One alternative: a run of atoms up to '|' or ')'. */
static void sequence(reader *R, ae_literal_reqs *out, unsigned depth)
{
    char run[AE_LITERAL_MAX];
    size_t run_len = 0;
    while (R->i < R->len && !R->bail) {
        char c = R->p[R->i];
        if (c == '|' || c == ')')
            break;
        /* the atom: a literal (lit, n bytes), a group's requirements, or something else */
        char lit[4];
        size_t n = 0;
        ae_literal_reqs inner = {0};
        int group = 0, zero_width = 0;
        if (c == '(') {
            R->i++;
            int keep = 1;
            if (R->i < R->len && R->p[R->i] == '?') {
                const char *q = R->p + R->i + 1;
                size_t left = R->len - R->i - 1;
                if (left >= 1 && (q[0] == ':' || q[0] == '=')) {
                    R->i += 2;
                    zero_width = q[0] == '=';
                } else if (left >= 1 && q[0] == '!') {
                    R->i += 2;
                    keep = 0;
                } else if (left >= 2 && q[0] == '<' && (q[1] == '=' || q[1] == '!')) {
                    keep = q[1] == '=';
                    zero_width = 1;
                    R->i += 3;
                } else if (left >= 2 && q[0] == 'P' && q[1] == '<') {
                    const char *end = memchr(q, '>', left);
                    if (end == NULL) {
                        R->bail = 1;
                        return;
                    }
                    R->i = (size_t)(end - R->p) + 1;
                } else {
                    R->bail = 1; /* flags, (?P=name), (?(...)), comments */
                    return;
                }
            }
            if (depth > 50) {
                R->bail = 1;
                return;
            }
            alternation(R, &inner, depth + 1);
            if (R->bail || R->i >= R->len || R->p[R->i] != ')') {
                R->bail = 1;
                return;
            }
            R->i++;
            if (!keep)
                inner.n = 0;
            group = 1;
        } else if (c == '[') {
            size_t k = R->i + 1;
            if (k < R->len && R->p[k] == '^')
                k++;
            if (k < R->len && R->p[k] == ']')
                k++;
            while (k < R->len && R->p[k] != ']')
                k += R->p[k] == '\\' ? 2 : 1;
            if (k >= R->len) {
                R->bail = 1;
                return;
            }
            R->i = k + 1;
        } else if (c == '\\') {
            if (R->i + 1 >= R->len) {
                R->bail = 1;
                return;
            }
            unsigned char e = (unsigned char)R->p[R->i + 1];
            if (strchr("dDwWsS", e) != NULL && e != '\0') {
                R->i += 2;
            } else if (strchr("bBAZ", e) != NULL && e != '\0') {
                R->i += 2;
                zero_width = 1;
            } else if (e < 0x80 && !((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') ||
                                     (e >= 'A' && e <= 'Z'))) {
                lit[0] = (char)e; /* an escaped punctuation character is itself */
                n = 1;
                R->i += 2;
            } else {
                R->bail = 1; /* \x.., \u...., \N{..}, \1, \t, ...: not read */
                return;
            }
        } else if (c == '.' || c == '^' || c == '$') {
            zero_width = c != '.';
            R->i++;
        } else if (c == '*' || c == '+' || c == '?') {
            R->bail = 1;
            return;
        } else {
            unsigned char u = (unsigned char)c;
            n = u >= 0xF0 ? 4 : u >= 0xE0 ? 3 : u >= 0xC0 ? 2 : 1;
            if (R->i + n > R->len) {
                R->bail = 1;
                return;
            }
            memcpy(lit, R->p + R->i, n);
            R->i += n;
        }
        int at_least_one, exactly_one;
        quantifier(R, &at_least_one, &exactly_one);
        if (n > 0 && at_least_one) {
            if (run_len + n > AE_LITERAL_MAX)
                flush_run(out, run, &run_len);
            memcpy(run + run_len, lit, n);
            run_len += n;
            if (!exactly_one) { /* "ab+c" holds "ab" and "bc" */
                flush_run(out, run, &run_len);
                memcpy(run, lit, n);
                run_len = n;
            }
            continue;
        }
        flush_run(out, run, &run_len);
        (void)zero_width; /* a lookahead's or lookbehind's literals are in the text all the same */
        if (group && at_least_one)
            for (unsigned k = 0; k < inner.n; k++)
                add_req(out, &inner.r[k]);
    }
    flush_run(out, run, &run_len);
}

/* Alternatives: every match holds one of the strongest requirements of each. */
static void alternation(reader *R, ae_literal_reqs *out, unsigned depth)
{
    ae_literal_req any = {0};
    int alternatives = 0, lost = 0;
    ae_literal_reqs first = {0};
    for (;;) {
        ae_literal_reqs alt = {0};
        sequence(R, &alt, depth);
        if (R->bail)
            return;
        if (alternatives == 0)
            first = alt;
        alternatives++;
        if (alt.n == 0) {
            lost = 1;
        } else if (!lost) {
            unsigned best = 0;
            for (unsigned k = 1; k < alt.n; k++)
                if (score(&alt.r[k]) > score(&alt.r[best]))
                    best = k;
            const ae_literal_req *b = &alt.r[best];
            if (any.n_alts + b->n_alts > AE_LITERAL_ALTS) {
                lost = 1;
            } else {
                for (unsigned a = 0; a < b->n_alts; a++) {
                    any.len[any.n_alts] = b->len[a];
                    memcpy(any.s[any.n_alts], b->s[a], b->len[a]);
                    any.n_alts++;
                }
            }
        }
        if (R->i < R->len && R->p[R->i] == '|') {
            R->i++;
            continue;
        }
        break;
    }
    if (alternatives == 1)
        *out = first;
    else if (!lost)
        add_req(out, &any);
}

void ae_literals_of(const char *pattern, size_t len, ae_literal_reqs *out)
{
    reader R = {pattern, len, 0, 0};
    memset(out, 0, sizeof *out);
    alternation(&R, out, 0);
    if (R.bail || R.i != R.len)
        memset(out, 0, sizeof *out);
}

static int contains(const char *s, size_t n, const char *needle, size_t k)
{
    if (k > n)
        return 0;
    const char *last = s + (n - k);
    for (const char *p = s; p <= last;) {
        const char *hit = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (hit == NULL)
            return 0;
        if (memcmp(hit, needle, k) == 0)
            return 1;
        p = hit + 1;
    }
    return 0;
}

int ae_literals_present(const ae_literal_reqs *reqs, const char *s, size_t n)
{
    for (unsigned k = 0; k < reqs->n; k++) {
        const ae_literal_req *r = &reqs->r[k];
        int found = 0;
        for (unsigned a = 0; a < r->n_alts && !found; a++)
            found = contains(s, n, r->s[a], r->len[a]);
        if (!found)
            return 0;
    }
    return 1;
}

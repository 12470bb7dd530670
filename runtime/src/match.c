/*
 * match.c - matching one raw line to its template, as the Python parser does (see the
 * "Matching raw log lines" section of alog_edge.h for the steps).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match_impl.h"

static ae_status line_fail(ae_matcher *m, ae_status status, const char *fmt, ...)
    AE_PRINTF(3, 4);

static ae_status line_fail(ae_matcher *m, ae_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ae_vfail(status, m->errmsg, sizeof m->errmsg, fmt, ap);
    va_end(ap);
    return status;
}

static int buf_reserve(ae_buf *b, size_t need)
{
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return -1;
    /* Zeroed once as it grows: PCRE2's JIT code may read a few bytes past the masked text,
     * which valgrind would report if they were never written. */
    memset(data + b->cap, 0, cap - b->cap);
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_append(ae_buf *b, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (buf_reserve(b, b->len + n) != 0)
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static ae_status regex_error(ae_matcher *m, int rc, const char *what)
{
    PCRE2_UCHAR msg[200];
    if (pcre2_get_error_message(rc, msg, sizeof msg) < 0)
        snprintf((char *)msg, sizeof msg, "error %d", rc);
    if (rc == PCRE2_ERROR_NOMEMORY)
        return line_fail(m, AE_ERR_NO_MEMORY, "%s: out of memory", what);
    /* The same words as the Python parser's time bound (bounded.py): both key the line unknown. */
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
        return line_fail(m, AE_ERR_TOO_LARGE,
                         "%s: the regex engine gave up on this line (too much backtracking)", what);
    return line_fail(m, AE_ERR_TOO_LARGE, "%s: the regex engine gave up on this line: %s", what,
                     (const char *)msg);
}

/*
 * pcre2_match on valid UTF-8; when the JIT stack runs out, once more with the interpreter
 * (whose frames are on the heap, up to the match context's heap limit).
 */
static int run_regex(ae_matcher *m, const pcre2_code *re, const char *s, size_t len,
                     size_t start, uint32_t options)
{
    /* JIT-compiled code straight to the JIT (pcre2_match only adds checks made already); a
     * pattern the JIT did not compile says so without trying. */
    int rc = pcre2_jit_match(re, (PCRE2_SPTR)s, len, start, options, m->md, m->mctx);
    if (rc == PCRE2_ERROR_JIT_BADOPTION)
        rc = pcre2_match(re, (PCRE2_SPTR)s, len, start, options | PCRE2_NO_UTF_CHECK, m->md,
                         m->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)s, len, start,
                         options | PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, m->md, m->mctx);
    return rc;
}

/*
 * Python's re.sub(pattern, repl, s) with a literal repl: every non-overlapping match, left to
 * right; after an empty match the next one may not be empty at the same place (Python 3.7+).
 * *replaced is 0 when nothing matched: out is then untouched and the text is s.
 */
static ae_status mask_once(ae_matcher *m, const pcre2_code *re, const ae_mask *mask,
                           const char *s, size_t len, ae_buf *out, size_t index, int *replaced)
{
    out->len = 0;
    *replaced = 0;
    size_t pos = 0, copied = 0;
    uint32_t options = 0;
    for (;;) {
        int rc = run_regex(m, re, s, len, pos, options);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            char what[48];
            snprintf(what, sizeof what, "masking[%zu]", index);
            return regex_error(m, rc, what);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        size_t a = ov[0], b = ov[1];
        if (a > b || a < copied || b > len) /* \K tricks; Python patterns have none */
            return line_fail(m, AE_ERR_FORMAT, "masking[%zu]: unsupported match shape", index);
        if (buf_append(out, s + copied, a - copied) != 0 ||
            buf_append(out, mask->repl.p, mask->repl.len) != 0)
            return line_fail(m, AE_ERR_NO_MEMORY, "out of memory");
        *replaced = 1;
        copied = b;
        pos = b;
        options = a == b ? PCRE2_NOTEMPTY_ATSTART : 0;
        if (pos > len)
            break;
    }
    if (!*replaced)
        return AE_OK; /* no match: the caller keeps s */
    if (buf_append(out, s + copied, len - copied) != 0)
        return line_fail(m, AE_ERR_NO_MEMORY, "out of memory");
    return AE_OK;
}

/* ae_py_space_at with ASCII answered inline (\t-\r, \x1c-\x20: str.isspace()). */
static inline size_t space_at(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80)
        return (size_t)((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20));
    return ae_py_space_at(s, n);
}

/* Drain3's get_content_as_tokens: strip, every extra delimiter -> " ", split. */
static ae_status tokenize(ae_matcher *m, const char *s, size_t len, size_t *n_tokens)
{
    size_t a, b;
    ae_py_strip(s, len, &a, &b);
    const char *text = s + a;
    size_t n = b - a;
    if (m->n_delims > 0) {
        ae_buf *t = &m->tokbuf;
        if (buf_reserve(t, n + 1) != 0)
            return line_fail(m, AE_ERR_NO_MEMORY, "out of memory");
        memcpy(t->data, text, n);
        t->len = n;
        for (size_t d = 0; d < m->n_delims; d++) {
            const ae_span *dl = &m->delims[d];
            size_t r = 0, w = 0;
            while (r < t->len) {
                if (t->len - r >= dl->len && memcmp(t->data + r, dl->p, dl->len) == 0) {
                    t->data[w++] = ' ';
                    r += dl->len;
                } else {
                    t->data[w++] = t->data[r++];
                }
            }
            t->len = w;
        }
        text = t->data;
        n = t->len;
    }
    size_t count = 0, i = 0, w;
    while (i < n) {
        if ((w = space_at(text + i, n - i)) > 0) {
            i += w;
            continue;
        }
        size_t start = i;
        while (i < n && space_at(text + i, n - i) == 0)
            i++;
        if (count == m->tok_cap) {
            size_t cap = m->tok_cap ? 2 * m->tok_cap : 64;
            ae_span *grown = realloc(m->tokens, cap * sizeof *grown);
            if (grown == NULL)
                return line_fail(m, AE_ERR_NO_MEMORY, "out of memory");
            m->tokens = grown;
            m->tok_cap = cap;
        }
        m->tokens[count++] = (ae_span){text + start, i - start};
    }
    *n_tokens = count;
    return AE_OK;
}

static void set_unknown(const ae_matcher *m, ae_match_detail *d)
{
    d->index = m != NULL ? m->unk : 0;
    d->template_ = NULL;
}

ae_status ae_matcher_match_detail(ae_matcher *m, const char *line, size_t len,
                                  ae_match_detail *d)
{
    if (d == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    memset(d, 0, sizeof *d);
    set_unknown(m, d);
    if (m == NULL || (line == NULL && len > 0))
        return AE_ERR_INVALID_ARGUMENT;
    if (line == NULL)
        line = "";
    m->errmsg[0] = '\0';

    /* What Python's logformat.read_lines refuses, in its order (for a record: its first line). */
    size_t raw = len > 0 && line[len - 1] == '\n' ? len - 1 : len;
    const char *inner_nl = memchr(line, '\n', raw);
    if (inner_nl != NULL)
        raw = (size_t)(inner_nl - line);
    if (raw > AE_LINE_MAX_BYTES)
        return line_fail(m, AE_ERR_TOO_LARGE, "longer than %u bytes (%zu)", AE_LINE_MAX_BYTES,
                         raw);
    const char *nul = memchr(line, '\0', len);
    if (nul != NULL)
        return line_fail(m, AE_ERR_FORMAT, "contains NUL bytes (byte %zu)",
                         (size_t)(nul - line) + 1);
    size_t bad = 0;
    int ascii = ae_ascii_only(line, len); /* ASCII is valid UTF-8 */
    if (!ascii && !ae_utf8_valid((const unsigned char *)line, len, &bad))
        return line_fail(m, AE_ERR_FORMAT, "not valid UTF-8 (byte %zu)", bad + 1);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) /* rstrip("\r\n") */
        len--;
    if (ae_line_is_blank(line, len))
        return line_fail(m, AE_BLANK, "blank line");

    /* The content: the format's content group, or the whole line. A record of several lines:
     * the format on its first line, then its other lines. */
    const char *nl = memchr(line, '\n', len);
    size_t first = nl != NULL ? (size_t)(nl - line) : len;
    const pcre2_code *line_re = ascii && m->line_re_ascii != NULL ? m->line_re_ascii : m->line_re;
    int rc = run_regex(m, line_re, line, first, 0, 0);
    if (rc == PCRE2_ERROR_NOMATCH) {
        d->content = line;
        d->content_len = len;
        for (size_t i = 0; i < m->n_kept; i++)
            m->kept_span[i][0] = m->kept_span[i][1] = PCRE2_UNSET;
    } else if (rc < 0) {
        return regex_error(m, rc, "line_regex");
    } else {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        /* The masks below reuse the match data: keep the spans the caller asked for now. */
        for (size_t i = 0; i < m->n_kept; i++) {
            m->kept_span[i][0] = ov[2 * m->kept_group[i]];
            m->kept_span[i][1] = ov[2 * m->kept_group[i] + 1];
        }
        size_t a = ov[2 * m->content_group], b = ov[2 * m->content_group + 1];
        d->format_matched = 1;
        if (a == PCRE2_UNSET || b < a || b > first)
            a = b = 0;
        d->content = line + a;
        d->content_len = b - a;
        if (nl != NULL && b == first) {
            d->content_len = len - a;
        } else if (nl != NULL) {
            ae_buf *rb = &m->recbuf;
            rb->len = 0;
            if (buf_append(rb, line + a, b - a) != 0 ||
                buf_append(rb, line + first, len - first) != 0)
                return line_fail(m, AE_ERR_NO_MEMORY, "out of memory");
            d->content = rb->data;
            d->content_len = rb->len;
        }
    }

    uint32_t found;
    ae_status status = AE_OK;
    if (m->mode == AE_MODE_DRAIN) {
        const char *s = d->content;
        size_t n = d->content_len;
        size_t turn = 0;
        uint64_t bytes[4];
        ascii = ae_bytes_scan(s, n, bytes); /* the masks see the content only */
        for (size_t i = 0; i < m->n_masks; i++) {
            const ae_mask *mask = &m->masks[i];
            const pcre2_code *re = ascii && mask->re_ascii != NULL ? mask->re_ascii : mask->re;
            /* What PCRE2 would reject without trying, skipped before the call. */
            if (!ae_prefilter_may_match(re == mask->re ? &mask->pf : &mask->pf_ascii, bytes, n) ||
                !ae_literals_present(&mask->literals, s, n) ||
                (ascii && !ae_factors_present(&mask->factors, s, n)))
                continue;
            ae_buf *out = &m->buf[turn];
            int replaced;
            if ((status = mask_once(m, re, mask, s, n, out, i, &replaced)) != AE_OK)
                return status;
            if (!replaced)
                continue; /* the text is unchanged: keep it where it is */
            turn ^= 1;
            s = out->data != NULL ? out->data : "";
            n = out->len;
            ae_bytes_add(bytes, mask->repl.p, mask->repl.len);
            ascii = ascii && mask->repl_ascii;
        }
        d->masked = s;
        d->masked_len = n;
        if ((status = tokenize(m, s, n, &d->n_tokens)) != AE_OK)
            return status;
        found = ae_drain_search(m, d->n_tokens, &status);
        if (status != AE_OK)
            return status;
    } else {
        d->masked = d->content;
        d->masked_len = d->content_len;
        found = ae_templates_search(m, d->content, d->content_len);
    }

    if (found != AE_NONE) {
        const ae_tpl *tpl = &m->tpls[found - 1];
        d->cluster_id = tpl->cluster_id;
        d->index = tpl->vocab_index;
    } else if (ae_vocab_lookup_n(m->vocab, d->content, d->content_len, &d->index) != AE_OK) {
        /* Python keys an unmatched line by its content: known when that is in the vocab. */
        d->index = m->unk;
    }
    d->template_ = ae_vocab_template(m->vocab, d->index);
    return AE_OK;
}

ae_status ae_matcher_match(ae_matcher *m, const char *line, size_t len, size_t *index,
                           const char **template_)
{
    ae_match_detail d;
    if (template_ != NULL)
        *template_ = NULL;
    if (index == NULL) {
        if (m != NULL)
            line_fail(m, AE_ERR_INVALID_ARGUMENT, "index is NULL");
        return AE_ERR_INVALID_ARGUMENT;
    }
    ae_status status = ae_matcher_match_detail(m, line, len, &d);
    *index = d.index;
    if (template_ != NULL)
        *template_ = d.template_;
    return status;
}

int ae_matcher_line_fits(ae_matcher *m, const char *line, size_t len)
{
    if (m == NULL || (line == NULL && len > 0))
        return -1;
    size_t bad = 0;
    if (line == NULL)
        line = "";
    if (memchr(line, '\0', len) != NULL || !ae_utf8_valid((const unsigned char *)line, len, &bad))
        return -1;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    int rc = run_regex(m, m->line_re, line, len, 0, 0);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    return rc < 0 ? -1 : 1;
}

int ae_matcher_multiline(const ae_matcher *m)
{
    return m != NULL && m->multiline;
}

const char *ae_matcher_errmsg(const ae_matcher *m)
{
    return m == NULL ? "" : m->errmsg;
}

const char *ae_matcher_mode(const ae_matcher *m)
{
    if (m == NULL)
        return "";
    return m->mode == AE_MODE_DRAIN ? "drain" : "templates";
}

size_t ae_matcher_template_count(const ae_matcher *m)
{
    return m == NULL ? 0 : m->n_tpls;
}

ae_status ae_matcher_keep_group(ae_matcher *m, const char *name, size_t *slot)
{
    if (m == NULL || name == NULL || slot == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    int number = pcre2_substring_number_from_name(m->line_re, (PCRE2_SPTR)name);
    if (number <= 0)
        return AE_ERR_NOT_FOUND;
    for (size_t i = 0; i < m->n_kept; i++)
        if (m->kept_group[i] == (uint32_t)number) {
            *slot = i;
            return AE_OK;
        }
    if (m->n_kept == AE_MATCHER_MAX_KEPT)
        return AE_ERR_TOO_LARGE;
    m->kept_group[m->n_kept] = (uint32_t)number;
    m->kept_span[m->n_kept][0] = m->kept_span[m->n_kept][1] = PCRE2_UNSET;
    *slot = m->n_kept++;
    return AE_OK;
}

int ae_matcher_kept(const ae_matcher *m, size_t slot, size_t *start, size_t *len)
{
    if (m == NULL || slot >= m->n_kept)
        return 0;
    size_t a = m->kept_span[slot][0], b = m->kept_span[slot][1];
    if (a == PCRE2_UNSET || b == PCRE2_UNSET || b < a)
        return 0;
    *start = a;
    *len = b - a;
    return 1;
}

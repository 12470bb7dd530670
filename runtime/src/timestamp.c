/*
 * timestamp.c - log timestamps parsed as the Python parser does (parse.timestamps): pandas'
 * to_datetime with format "ISO8601" (converted to UTC) or with a strptime format, then
 * truncated to microseconds. Unparsable text is "missing", never an error.
 *
 * "ISO8601" follows pandas' parse_iso_8601_datetime; a strptime format becomes the same regex as
 * pandas' TimeRE (Python's _strptime dialect, %f up to 9 digits, case-insensitive, whitespace
 * runs as \s+), run by PCRE2 so that its backtracking matches Python's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "internal.h"

/* The directives of pandas' TimeRE that a format may use, with their regexes (\d -> [0-9]: the
 * runtime reads ASCII digits only). %z, %Z, %U, %W, %c, %x, %X and the others are refused. */
typedef struct directive {
    char code;
    const char *regex;
} directive;

static const directive DIRECTIVES[] = {
    {'d', "3[0-1]|[1-2][0-9]|0[1-9]|[1-9]| [1-9]"},
    {'f', "[0-9]{1,9}"},
    {'H', "2[0-3]|[0-1][0-9]|[0-9]"},
    {'I', "1[0-2]|0[1-9]|[1-9]"},
    {'j', "36[0-6]|3[0-5][0-9]|[1-2][0-9][0-9]|0[1-9][0-9]|00[1-9]|[1-9][0-9]|0[1-9]|[1-9]"},
    {'m', "1[0-2]|0[1-9]|[1-9]"},
    {'M', "[0-5][0-9]|[0-9]"},
    {'S', "6[0-1]|[0-5][0-9]|[0-9]"},
    {'y', "[0-9][0-9]"},
    {'Y', "[0-9][0-9][0-9][0-9]"},
    {'b', "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"},
    {'B', "september|february|november|december|january|october|august|march|april|june|july|"
          "may"},
    {'a', "mon|tue|wed|thu|fri|sat|sun"},
    {'A', "wednesday|thursday|saturday|tuesday|monday|friday|sunday"},
    {'p', "am|pm"},
};
enum { N_DIRECTIVES = sizeof DIRECTIVES / sizeof DIRECTIVES[0] };

static const char *const MONTHS[12] = {"january", "february", "march", "april", "may", "june",
                                       "july", "august", "september", "october", "november",
                                       "december"};

struct ae_timefmt {
    int iso;
    int shared_re;  /* a clone: re is its original's */
    pcre2_code *re;
    pcre2_match_data *md;
    uint32_t group[N_DIRECTIVES]; /* capture group of each directive; 0 when absent */
};

void ae_timefmt_free(ae_timefmt *f)
{
    if (f == NULL)
        return;
    pcre2_match_data_free(f->md);
    if (!f->shared_re)
        pcre2_code_free(f->re);
    free(f);
}

ae_status ae_timefmt_clone(const ae_timefmt *f, ae_timefmt **out)
{
    *out = NULL;
    ae_timefmt *c = malloc(sizeof *c);
    if (c == NULL)
        return AE_ERR_NO_MEMORY;
    *c = *f;
    c->shared_re = 1;
    c->md = NULL;
    if (c->re != NULL && (c->md = pcre2_match_data_create_from_pattern(c->re, NULL)) == NULL) {
        ae_timefmt_free(c);
        return AE_ERR_NO_MEMORY;
    }
    *out = c;
    return AE_OK;
}

static int directive_index(char code)
{
    for (int i = 0; i < N_DIRECTIVES; i++)
        if (DIRECTIVES[i].code == code)
            return i;
    return -1;
}

typedef struct growbuf {
    char *p;
    size_t len, cap;
    int failed;
} growbuf;

static void put(growbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

ae_status ae_timefmt_new(const char *format, ae_timefmt **out, char *why, size_t why_len)
{
    *out = NULL;
    ae_timefmt *f = calloc(1, sizeof *f);
    if (f == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, why, why_len, "out of memory");
    if (strcmp(format, "ISO8601") == 0) {
        f->iso = 1;
        *out = f;
        return AE_OK;
    }
    /* The Python pattern, as _strptime's TimeRE.pattern builds it. */
    growbuf b = {0};
    uint32_t next_group = 1;
    for (const char *p = format; *p != '\0'; p++) {
        if (*p == '%') {
            char code = p[1];
            if (code == '\0') {
                free(b.p);
                ae_timefmt_free(f);
                return ae_fail(AE_ERR_FORMAT, why, why_len, "a lone %% ends the format");
            }
            p++;
            if (code == '%') {
                put(&b, "%", 1);
                continue;
            }
            int d = directive_index(code);
            if (d < 0 || f->group[d] != 0) {
                free(b.p);
                ae_timefmt_free(f);
                return ae_fail(AE_ERR_FORMAT, why, why_len,
                               d < 0 ? "the directive %%%c is not supported"
                                     : "the directive %%%c appears twice",
                               code);
            }
            f->group[d] = next_group++;
            put(&b, "(", 1);
            put(&b, DIRECTIVES[d].regex, strlen(DIRECTIVES[d].regex));
            put(&b, ")", 1);
        } else if (*p == ' ' || (*p >= '\t' && *p <= '\r')) {
            while (p[1] == ' ' || (p[1] >= '\t' && p[1] <= '\r'))
                p++;
            put(&b, "\\s+", 3);
        } else if (strchr("\\.^$*+?(){}[]|", *p) != NULL) {
            put(&b, "\\", 1);
            put(&b, p, 1);
        } else {
            put(&b, p, 1);
        }
    }
    put(&b, "", 0);
    if (b.failed) {
        free(b.p);
        ae_timefmt_free(f);
        return ae_fail(AE_ERR_NO_MEMORY, why, why_len, "out of memory");
    }
    /* Python's \s (the translation gives PCRE2 the same set), Unicode case folding. */
    char *translated = NULL;
    size_t translated_len = 0;
    ae_status status = ae_pyre_translate(b.p, b.len, &translated, &translated_len, NULL, why,
                                         why_len);
    free(b.p);
    if (status != AE_OK) {
        ae_timefmt_free(f);
        return status;
    }
    int code = 0;
    PCRE2_SIZE offset = 0;
    f->re = pcre2_compile((PCRE2_SPTR)translated, translated_len,
                          PCRE2_UTF | PCRE2_CASELESS | PCRE2_ANCHORED | PCRE2_NEVER_BACKSLASH_C,
                          &code, &offset, NULL);
    free(translated);
    if (f->re == NULL) {
        PCRE2_UCHAR msg[200];
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", code);
        ae_timefmt_free(f);
        return ae_fail(code == PCRE2_ERROR_NOMEMORY ? AE_ERR_NO_MEMORY : AE_ERR_FORMAT, why,
                       why_len, "not a usable format: %s", (const char *)msg);
    }
    (void)pcre2_jit_compile(f->re, PCRE2_JIT_COMPLETE);
    if ((f->md = pcre2_match_data_create_from_pattern(f->re, NULL)) == NULL) {
        ae_timefmt_free(f);
        return ae_fail(AE_ERR_NO_MEMORY, why, why_len, "out of memory");
    }
    *out = f;
    return AE_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Calendar
 */

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int DAYS[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : DAYS[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t to_micros(int64_t days, int64_t h, int64_t mi, int64_t s, int64_t us)
{
    return ((days * 24 + h) * 60 + mi) * 60000000 + s * 1000000 + us;
}

/* ---------------------------------------------------------------------------------------------
 * ISO 8601 as pandas reads it
 */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int c_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int parse_iso(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    while (i < n && c_space(s[i]))
        i++;
    if (i >= n || !(n - i >= 4 && is_digit(s[i]) && is_digit(s[i + 1]) && is_digit(s[i + 2]) &&
                    is_digit(s[i + 3])))
        return 0; /* pandas' years are 4 digits (a sign is out of its range anyway) */
    int64_t year = (s[i] - '0') * 1000 + (s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 +
                   (s[i + 3] - '0');
    i += 4;
    int month = 1, day = 1;
    int64_t hour = 0, minute = 0, second = 0, micros = 0, offset_minutes = 0;
    if (i == n)
        goto finish;
    char sep = 0;
    if (!is_digit(s[i])) {
        if (strchr("-./\\ ", s[i]) == NULL)
            return 0;
        sep = s[i++];
        if (i == n || !is_digit(s[i]))
            return 0;
    }
    month = s[i++] - '0';
    if (i < n && is_digit(s[i]))
        month = month * 10 + (s[i++] - '0');
    else if (!sep)
        return 0;
    if (month < 1 || month > 12)
        return 0;
    if (i == n) {
        if (!sep) /* YYYYMM is not ISO 8601 */
            return 0;
        goto finish;
    }
    if (sep) {
        if (s[i] != sep || n - i == 1)
            return 0;
        i++;
    }
    if (!is_digit(s[i]))
        return 0;
    day = s[i++] - '0';
    if (i < n && is_digit(s[i]))
        day = day * 10 + (s[i++] - '0');
    else if (!sep)
        return 0;
    if (day < 1 || day > days_in_month(year, month))
        return 0;
    if (i == n)
        goto finish;
    if ((s[i] != 'T' && s[i] != ' ') || n - i == 1)
        return 0;
    i++;
    if (!is_digit(s[i]))
        return 0;
    hour = s[i++] - '0';
    int hour2 = 0;
    if (i < n && is_digit(s[i])) {
        hour2 = 1;
        hour = hour * 10 + (s[i++] - '0');
        if (hour >= 24)
            return 0;
    }
    if (i == n) {
        if (!hour2)
            return 0;
        goto finish;
    }
    int hms_sep = 0;
    if (s[i] == ':') {
        hms_sep = 1;
        i++;
        if (i == n || !is_digit(s[i]))
            return 0;
    } else if (!is_digit(s[i])) {
        if (!hour2)
            return 0;
        goto timezone;
    }
    minute = s[i++] - '0';
    if (i < n && is_digit(s[i])) {
        minute = minute * 10 + (s[i++] - '0');
        if (minute >= 60)
            return 0;
    } else if (!hms_sep) {
        return 0;
    }
    if (i == n)
        goto timezone;
    if (hms_sep && s[i] == ':') {
        i++;
        if (i == n || !is_digit(s[i]))
            return 0;
    } else if (!(!hms_sep && is_digit(s[i]))) {
        goto timezone;
    }
    second = s[i++] - '0';
    if (i < n && is_digit(s[i])) {
        second = second * 10 + (s[i++] - '0');
        if (second >= 60)
            return 0;
    } else if (!hms_sep) {
        return 0;
    }
    if (i < n && s[i] == '.') {
        i++;
        for (int k = 0; k < 6; k++) {
            micros *= 10;
            if (i < n && is_digit(s[i]))
                micros += s[i++] - '0';
        }
        while (i < n && is_digit(s[i])) /* picoseconds, attoseconds: below a microsecond */
            i++;
    }
timezone:
    while (i < n && c_space(s[i]))
        i++;
    if (i == n)
        goto finish;
    if (s[i] == 'Z') {
        i++;
    } else if (s[i] == '-' || s[i] == '+') {
        int neg = s[i++] == '-';
        int64_t oh, om = 0;
        if (n - i >= 2 && is_digit(s[i]) && is_digit(s[i + 1])) {
            oh = (s[i] - '0') * 10 + (s[i + 1] - '0');
            i += 2;
            if (oh >= 24)
                return 0;
        } else if (i < n && is_digit(s[i])) {
            oh = s[i++] - '0';
        } else {
            return 0;
        }
        if (i < n) {
            if (s[i] == ':')
                i++;
            if (n - i >= 2 && is_digit(s[i]) && is_digit(s[i + 1])) {
                om = (s[i] - '0') * 10 + (s[i + 1] - '0');
                i += 2;
                if (om >= 60)
                    return 0;
            } else if (i < n && is_digit(s[i])) {
                om = s[i++] - '0';
            } else {
                return 0;
            }
        }
        offset_minutes = (neg ? -1 : 1) * (oh * 60 + om);
    }
    while (i < n && c_space(s[i]))
        i++;
    if (i != n)
        return 0;
finish:
    *out = to_micros(days_from_civil(year, month, day), hour, minute, second, micros) -
           offset_minutes * 60000000;
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * strptime formats as pandas' array_strptime reads them
 */

/* The digits of group g as a number. */
static int64_t number(const char *s, const PCRE2_SIZE *ov, uint32_t g)
{
    int64_t v = 0;
    for (PCRE2_SIZE i = ov[2 * g]; i < ov[2 * g + 1]; i++)
        if (is_digit(s[i]))
            v = v * 10 + (s[i] - '0');
    return v;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The month (1..12) a name or abbreviation matched by the regex stands for; 0 if none (only a
 * non-ASCII case folding could match and then fail Python's lower() lookup). */
static int month_of(const char *s, size_t len, int full)
{
    for (int m = 0; m < 12; m++) {
        size_t want = full ? strlen(MONTHS[m]) : 3;
        if (len != want)
            continue;
        size_t k = 0;
        while (k < len && lower(s[k]) == MONTHS[m][k])
            k++;
        if (k == len)
            return m + 1;
    }
    return 0;
}

static int group_of(const ae_timefmt *f, char code)
{
    return (int)f->group[directive_index(code)];
}

static int parse_strptime(ae_timefmt *f, const char *s, size_t n, int64_t *out)
{
    int rc = pcre2_match(f->re, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, f->md, NULL);
    if (rc < 0)
        return 0;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(f->md);
    if (ov[1] != n) /* "unconverted data remains" */
        return 0;
    int64_t year = 1900, hour = 0, minute = 0, second = 0, micros = 0, julian = -1;
    int month = 1, day = 1;
    uint32_t g;
    if ((g = (uint32_t)group_of(f, 'y')) != 0) {
        year = number(s, ov, g);
        year += year <= 68 ? 2000 : 1900;
    }
    if ((g = (uint32_t)group_of(f, 'Y')) != 0)
        year = number(s, ov, g);
    if ((g = (uint32_t)group_of(f, 'm')) != 0)
        month = (int)number(s, ov, g);
    if ((g = (uint32_t)group_of(f, 'b')) != 0 || (g = (uint32_t)group_of(f, 'B')) != 0) {
        /* pandas applies the directives in the format's order; both at once is unusual */
        int full = group_of(f, 'b') == 0;
        month = month_of(s + ov[2 * g], ov[2 * g + 1] - ov[2 * g], full);
        if (month == 0)
            return 0;
    }
    if ((g = (uint32_t)group_of(f, 'd')) != 0)
        day = (int)number(s, ov, g);
    if ((g = (uint32_t)group_of(f, 'H')) != 0)
        hour = number(s, ov, g);
    if ((g = (uint32_t)group_of(f, 'I')) != 0) {
        hour = number(s, ov, g);
        uint32_t p = (uint32_t)group_of(f, 'p');
        int pm = p != 0 && lower(s[ov[2 * p]]) == 'p';
        if (!pm && hour == 12)
            hour = 0;
        else if (pm && hour != 12)
            hour += 12;
    }
    if ((g = (uint32_t)group_of(f, 'M')) != 0)
        minute = number(s, ov, g);
    if ((g = (uint32_t)group_of(f, 'S')) != 0)
        second = number(s, ov, g); /* 60 and 61 roll over, as in pandas */
    if ((g = (uint32_t)group_of(f, 'f')) != 0) {
        /* padded to nanoseconds, then truncated to microseconds */
        size_t digits = ov[2 * g + 1] - ov[2 * g];
        micros = number(s, ov, g);
        for (size_t k = digits; k < 9; k++)
            micros *= 10;
        micros /= 1000;
    }
    if ((g = (uint32_t)group_of(f, 'j')) != 0)
        julian = number(s, ov, g);
    int64_t days;
    if (julian < 0) {
        if (day > days_in_month(year, month))
            return 0;
        days = days_from_civil(year, month, day);
    } else {
        days = days_from_civil(year, 1, 1) + julian - 1;
    }
    *out = to_micros(days, hour, minute, second, micros);
    return 1;
}

int ae_timefmt_parse(ae_timefmt *f, const char *text, size_t len, int64_t *us)
{
    if (f == NULL || text == NULL)
        return 0;
    return f->iso ? parse_iso(text, len, us) : parse_strptime(f, text, len, us);
}

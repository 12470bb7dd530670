/*
 * records.c - multiline records for the CLI: a line that does not fit the format continues the
 * record before it, joined with "\n" (Python's split_lines with a multiline format).
 */
#include <stdlib.h>
#include <string.h>

#include "alog_edge.h"
#include "cli.h"

static int hold(record_joiner *j, const char *s, size_t n, int newline)
{
    size_t need = j->len + n + (newline ? 1 : 0) + 1;
    if (need > j->cap) {
        size_t cap = j->cap ? j->cap : 4096;
        while (cap < need)
            cap *= 2;
        char *data = realloc(j->data, cap);
        if (data == NULL)
            return -1;
        /* Zeroed: PCRE2's JIT code may read a few bytes past the record (see reader_fill). */
        memset(data + j->cap, 0, cap - j->cap);
        j->data = data;
        j->cap = cap;
    }
    if (newline)
        j->data[j->len++] = '\n';
    memcpy(j->data + j->len, s, n);
    j->len += n;
    j->data[j->len] = '\0';
    return 0;
}

int joiner_offer(record_joiner *j, const char *line, size_t len)
{
    size_t n = len;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (ae_line_is_blank(line, n))
        return JOIN_TAKEN; /* skipped, as Python skips blank lines; the record stays open */
    int fits = ae_matcher_line_fits(j->matcher, line, n);
    if (fits == 0 && j->open)
        return hold(j, line, n, 1) == 0 ? JOIN_TAKEN : JOIN_NO_MEMORY;
    if (fits < 0)
        return JOIN_ALONE; /* invalid, or the regex gave up: a record of its own */
    return JOIN_STARTS;
}

int joiner_start(record_joiner *j, const char *line, size_t len, unsigned long long line_no)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    j->len = 0;
    j->line_no = line_no;
    j->held = j->open = 1;
    return hold(j, line, len, 0);
}

void joiner_reset(record_joiner *j)
{
    j->len = 0;
    j->held = j->open = 0;
}

void joiner_free(record_joiner *j)
{
    free(j->data);
    memset(j, 0, sizeof *j);
}

/*
 * reader.c - lines of a stream for the CLI, with a bound on the line length.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alog_edge.h"
#include "cli.h"

long reader_fill(line_reader *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end == r->cap) {
        size_t cap = r->cap * 2;
        char *buf = realloc(r->buf, cap);
        if (buf == NULL) {
            errno = ENOMEM;
            return -1;
        }
        /* Zeroed, like the first buffer: PCRE2's JIT code may read a few bytes past a line's
         * end, which valgrind would report if they were never written. */
        memset(buf + r->cap, 0, cap - r->cap);
        r->buf = buf;
        r->cap = cap;
    }
    size_t n = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
    r->end += n;
    if (n == 0) {
        if (ferror(r->f))
            return -1;
        r->eof = 1;
    }
    return (long)n;
}

int reader_next(line_reader *r, const char **line, size_t *len)
{
    size_t scanned = r->start;
    for (;;) {
        char *nl = memchr(r->buf + scanned, '\n', r->end - scanned);
        if (nl != NULL) {
            *line = r->buf + r->start;
            *len = (size_t)(nl - *line) + 1;
            r->start += *len;
            return READ_LINE;
        }
        if (r->end - r->start > AE_LINE_MAX_BYTES) {
            /* Too long: skip to the end of the line, counting its bytes. */
            size_t skipped = r->end - r->start;
            r->start = r->end = 0;
            for (;;) {
                if (reader_fill(r) < 0)
                    return READ_ERROR;
                if (r->end == 0 && r->eof)
                    break;
                nl = memchr(r->buf, '\n', r->end);
                if (nl != NULL) {
                    skipped += (size_t)(nl - r->buf);
                    r->start = (size_t)(nl - r->buf) + 1;
                    break;
                }
                skipped += r->end;
                r->end = 0;
            }
            *len = skipped;
            return READ_TOO_LONG;
        }
        if (r->eof) {
            if (r->end == r->start)
                return READ_EOF;
            *line = r->buf + r->start;
            *len = r->end - r->start;
            r->start = r->end;
            return READ_LINE;
        }
        size_t seen = r->end - r->start; /* scan only the new bytes next time */
        if (reader_fill(r) < 0)
            return READ_ERROR;
        scanned = r->start + seen;
    }
}

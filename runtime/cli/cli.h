/*
 * cli.h - what the commands of the alog-edge CLI share: exit codes, JSON line output, line input.
 */
#ifndef ALOG_EDGE_CLI_H
#define ALOG_EDGE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__aarch64__)
#define AE_TARGET "aarch64"
#elif defined(__x86_64__)
#define AE_TARGET "x86_64"
#else
#define AE_TARGET "unknown"
#endif

enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2, EXIT_REFUSED_LINES = 3 };

/* A growable output line; `failed` is set when memory ran out (later writes are dropped). */
typedef struct out_line {
    char *data;
    size_t len, cap;
    int failed;
} out_line;

void out_put(out_line *o, const char *s, size_t n);
void out_str(out_line *o, const char *s);
void out_size(out_line *o, unsigned long long v);
/* A JSON string as Python's json.dumps(..., ensure_ascii=False) writes it (valid UTF-8 in). */
void out_json_string(out_line *o, const char *s, size_t n);

/* Lines of a stream, with their "\n"; lines longer than AE_LINE_MAX_BYTES are skipped, not kept. */
typedef struct line_reader {
    FILE *f;
    char *buf;
    size_t cap, start, end;
    int eof;
} line_reader;

enum { READ_LINE = 1, READ_TOO_LONG = 2, READ_EOF = 0, READ_ERROR = -1 };

/* Read more bytes behind buf[end].
 * @return bytes read, 0 at EOF (r->eof set), -1 on an error (errno set). */
long reader_fill(line_reader *r);

/* The next line.
 * @return READ_LINE with *line / *len (with its "\n" when it has one); READ_TOO_LONG with *len
 *         its length for a line above AE_LINE_MAX_BYTES (skipped); READ_EOF; READ_ERROR. */
int reader_next(line_reader *r, const char **line, size_t *len);

/* "dir/name" in a new string (free it).
 * @return the path, or NULL when out of memory. */
char *join_path(const char *dir, const char *name);

#endif /* ALOG_EDGE_CLI_H */

/*
 * checked.c - input lines checked as Python's logformat.read_lines checks them (`alog-edge
 * score`): a line that is too long, holds a NUL byte or is not UTF-8 is an error naming it, and
 * stdin is spooled to a temporary file so that the input can be read twice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alog_edge.h"
#include "cli.h"
#include "cli_borrowed.h" /* Python's UTF-8 rules, shared with the matcher */

/* stdin into an unnamed temporary file, so that it can be read twice. @return it, or NULL. */
static FILE *spool_stdin(void)
{
    FILE *tmp = tmpfile();
    char buf[1 << 16];
    size_t n;
    while (tmp != NULL && (n = fread(buf, 1, sizeof buf, stdin)) > 0)
        if (fwrite(buf, 1, n, tmp) != n) {
            fclose(tmp);
            return NULL;
        }
    if (tmp != NULL && (ferror(stdin) || fflush(tmp) != 0 || fseek(tmp, 0, SEEK_SET) != 0)) {
        fclose(tmp);
        return NULL;
    }
    return tmp;
}

int open_checked(checked_reader *c, const char *path, const char *name)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    struct stat st;
    if (path != NULL && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "error: %s: is a directory, expected a file\n", path);
        return -1;
    }
    c->r.f = path == NULL ? spool_stdin() : fopen(path, "rb");
    c->r.cap = 64 * 1024;
    if (c->r.f == NULL || (c->r.buf = calloc(1, c->r.cap)) == NULL) {
        fprintf(stderr, "error: %s: %s\n", name, strerror(errno));
        return -1;
    }
    return 0;
}

/* Read the input again from its start (stdin was spooled to a temporary file).
 * @return 0, or -1 after printing the error. */
int rewind_checked(checked_reader *c)
{
    if (fseek(c->r.f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "error: %s: %s\n", c->name, strerror(errno));
        return -1;
    }
    clearerr(c->r.f);
    c->r.start = c->r.end = 0;
    c->r.eof = 0;
    c->line_no = 0;
    return 0;
}

void close_checked(checked_reader *c)
{
    if (c->r.f != NULL)
        fclose(c->r.f);
    free(c->r.buf);
}

/* The next line without its line end.
 * @return 1 with *line / *len; 0 at the end; -1 after printing an error. */
int next_checked(checked_reader *c, const char **line, size_t *len)
{
    int got = reader_next(&c->r, line, len);
    if (got == READ_EOF) {
        if (!c->any) {
            fprintf(stderr, "error: %s: is empty: no log lines\n", c->name);
            return -1;
        }
        return 0;
    }
    if (got == READ_ERROR) {
        fprintf(stderr, "error: %s: %s\n", c->name, strerror(errno));
        return -1;
    }
    c->line_no++;
    if (got == READ_TOO_LONG) {
        fprintf(stderr, "error: %s: line %llu is longer than %u bytes\n", c->name, c->line_no,
                AE_LINE_MAX_BYTES);
        return -1;
    }
    if (memchr(*line, '\0', *len) != NULL) {
        fprintf(stderr, "error: %s: line %llu contains NUL bytes: this looks like a binary file\n",
                c->name, c->line_no);
        return -1;
    }
    size_t bad = 0;
    if (!ae_utf8_valid((const unsigned char *)*line, *len, &bad)) {
        fprintf(stderr, "error: %s: line %llu is not valid UTF-8 (byte %zu)\n", c->name,
                c->line_no, bad + 1);
        return -1;
    }
    while (*len > 0 && ((*line)[*len - 1] == '\n' || (*line)[*len - 1] == '\r'))
        (*len)--;
    c->any = c->any || !ae_line_is_blank(*line, *len);
    return 1;
}

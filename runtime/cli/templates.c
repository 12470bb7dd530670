/*
 * templates.c - an event templates file for `alog-edge score --templates` as
 * parse.read_template_file reads it: one template per line (line E = event id E, stripped, none
 * empty), or a LogHub CSV whose first line starts with "EventId,EventTemplate".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alog_edge.h"
#include "cli.h"
#include "cli_borrowed.h" /* Python's str.strip() */

int push_key(keys *k, size_t key)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 64;
        size_t *grown = realloc(k->v, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        k->v = grown;
        k->cap = cap;
    }
    k->v[k->n++] = key;
    return 0;
}

/* Field `want` of a CSV line (RFC 4180 quotes) into buf. @return 0, or -1 if it has fewer. */
static int csv_field(const char *s, size_t len, size_t want, char *buf, size_t cap,
                     size_t *out_len)
{
    size_t field = 0, i = 0, n = 0;
    for (;;) {
        int quoted = i < len && s[i] == '"';
        i += (size_t)quoted;
        for (; i < len; i++) {
            char ch = s[i];
            if (quoted && ch == '"') {
                if (i + 1 < len && s[i + 1] == '"') {
                    i++;
                } else {
                    quoted = 0;
                    continue;
                }
            } else if (!quoted && ch == ',') {
                break;
            }
            if (field == want && n + 1 < cap)
                buf[n++] = ch;
        }
        if (field == want) {
            buf[n] = '\0';
            *out_len = n;
            return 0;
        }
        if (i >= len)
            return -1;
        i++; /* the comma */
        field++;
    }
}

/* The vocab key of every template of the file, in its order. @return 0 or -1 (printed). */
int read_templates(const char *path, const ae_vocab *vocab, keys *out)
{
    checked_reader c;
    if (open_checked(&c, path, path) != 0) {
        close_checked(&c);
        return -1;
    }
    size_t unk = ae_vocab_size(vocab), column = 0;
    int csv = 0, got, rc = 0;
    char *field = malloc(AE_LINE_MAX_BYTES + 1);
    const char *line;
    size_t len;
    if (field == NULL) {
        fputs("error: out of memory\n", stderr);
        rc = -1;
    }
    while (rc == 0 && (got = next_checked(&c, &line, &len)) > 0) {
        if (c.line_no == 1 && len >= 21 && memcmp(line, "EventId,EventTemplate", 21) == 0) {
            csv = 1; /* pandas.read_csv: the EventTemplate column of each non-blank row */
            for (size_t f = 0;; f++) {
                size_t n;
                if (csv_field(line, len, f, field, AE_LINE_MAX_BYTES + 1, &n) != 0)
                    break;
                if (strcmp(field, "EventTemplate") == 0) {
                    column = f;
                    break;
                }
            }
            continue;
        }
        const char *text;
        size_t n = 0;
        if (csv) {
            if (ae_line_is_blank(line, len))
                continue;
            if (csv_field(line, len, column, field, AE_LINE_MAX_BYTES + 1, &n) != 0 || n == 0)
                memcpy(field, "nan", (n = 3) + 1); /* pandas' NaN, as str() writes it */
            text = field;
        } else {
            size_t a, b;
            ae_py_strip(line, len, &a, &b);
            if (a == b) {
                fprintf(stderr, "error: %s: line %llu is empty: every line must hold a "
                        "template\n", path, c.line_no);
                rc = -1;
                break;
            }
            text = line + a;
            n = b - a;
        }
        size_t key;
        if (ae_vocab_lookup_n(vocab, text, n, &key) != AE_OK)
            key = unk;
        if (push_key(out, key) != 0) {
            fputs("error: out of memory\n", stderr);
            rc = -1;
        }
    }
    if (rc == 0 && got < 0)
        rc = -1;
    free(field);
    close_checked(&c);
    return rc;
}

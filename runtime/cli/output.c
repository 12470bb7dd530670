/*
 * output.c - JSON lines for the CLI: a growable line buffer and correctly escaped strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void out_put(out_line *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->len + n)
            cap *= 2;
        char *data = realloc(o->data, cap);
        if (data == NULL) {
            o->failed = 1;
            return;
        }
        o->data = data;
        o->cap = cap;
    }
    memcpy(o->data + o->len, s, n);
    o->len += n;
}

void out_str(out_line *o, const char *s)
{
    out_put(o, s, strlen(s));
}

void out_size(out_line *o, unsigned long long v)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%llu", v);
    out_put(o, num, (size_t)n);
}

/* A JSON string as Python's json.dumps(..., ensure_ascii=False) writes it (valid UTF-8 in). */
void out_json_string(out_line *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    out_put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        out_put(o, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        out_put(o, esc, len);
    }
    out_put(o, s + run, n - run);
    out_put(o, "\"", 1);
}

char *join_path(const char *dir, const char *name)
{
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    char *path = malloc(len);
    if (path != NULL)
        snprintf(path, len, "%s/%s", dir, name);
    return path;
}

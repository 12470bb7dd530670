/*
 * match.c - `alog-edge match`: each line of a log keyed to its template as the Python parser
 * keys it (one JSON line per line; --explain adds the content, the masked text, the tokens).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alog_edge.h"
#include "cli.h"

static const char MATCH_USAGE[] =
    "usage: alog-edge match [--explain] [--multiline] <model_dir> [FILE|-]\n"
    "\n"
    "Keys every line of FILE (\"-\" or none: stdin) with <model_dir>/parser.json and\n"
    "<model_dir>/vocab.json exactly as the Python parser does (`invoke match --model-dir`), and\n"
    "writes one JSON line per non-blank input line:\n"
    "\n"
    "  {\"line_no\": 12, \"index\": 3, \"template\": \"Receiving block <*> src: <*>\"}\n"
    "\n"
    "line_no counts every line from 1, blank ones too (a line holding only whitespace is\n"
    "skipped). index is the template's vocab index; the unknown index N (the vocab size) has\n"
    "\"template\": null. A trailing \"\\r\" is ignored.\n"
    "\n"
    "A line that is not valid UTF-8, holds a NUL byte or is longer than 1048576 bytes is not\n"
    "matched (the Python parser refuses such input): it gets the unknown index and an \"error\"\n"
    "field, e.g. {\"line_no\": 7, \"index\": 42, \"template\": null, \"error\": \"not valid UTF-8\n"
    "(byte 5)\"}, the first ones are also reported on stderr, and the exit status is 3.\n"
    "gzip-compressed input is refused: decompress it (zcat FILE | alog-edge match DIR -).\n"
    "\n"
    "options:\n"
    "  --explain    add what led to the index: cluster_id (of parser.json, 0 for none),\n"
    "               format_matched (the line format matched), content (the format's content),\n"
    "               masked (the content after the masks) and tokens (their count)\n"
    "  --multiline  a line that does not fit the log format continues the record before it\n"
    "               (stack traces): one JSON line per record, with its first line's line_no\n"
    "               (on by itself when parser.json says \"multiline\": true)\n"
    "  -h, --help   print this help and exit\n"
    "\n"
    "Exit status: 0 every line matched; 1 error (bad model directory, unreadable input, write\n"
    "error; one line on stderr: error: <file>: <what is wrong>); 2 usage error; 3 some lines\n"
    "were refused, the others matched.\n";

enum { MAX_LINE_WARNINGS = 10 };

typedef struct match_out {
    ae_matcher *matcher;
    size_t unk;
    int explain;
    const char *input_name;
    unsigned long long refused;
    out_line o;
} match_out;

/* Match one record (got: READ_LINE or READ_TOO_LONG) and write its JSON line.
 * @return 0, 1 nothing written (blank), -1 out of memory, -2 write error (reported). */
static int emit_match(match_out *mo, int got, const char *line, size_t len,
                      unsigned long long line_no)
{
    ae_match_detail d;
    ae_status status;
    char too_long[96];
    const char *why = NULL;
    if (got == READ_TOO_LONG) {
        snprintf(too_long, sizeof too_long, "longer than %u bytes (%zu)", AE_LINE_MAX_BYTES, len);
        why = too_long;
        memset(&d, 0, sizeof d);
        d.index = mo->unk;
    } else {
        status = ae_matcher_match_detail(mo->matcher, line, len, &d);
        if (status == AE_BLANK)
            return 1; /* blank */
        if (status == AE_ERR_NO_MEMORY)
            return -1;
        if (status != AE_OK)
            why = ae_matcher_errmsg(mo->matcher);
    }
    out_line *o = &mo->o;
    o->len = 0;
    out_str(o, "{\"line_no\": ");
    out_size(o, line_no);
    out_str(o, ", \"index\": ");
    out_size(o, d.index);
    out_str(o, ", \"template\": ");
    if (d.template_ != NULL)
        out_json_string(o, d.template_, strlen(d.template_));
    else
        out_str(o, "null");
    if (why != NULL) {
        out_str(o, ", \"error\": ");
        out_json_string(o, why, strlen(why));
        if (mo->refused < MAX_LINE_WARNINGS)
            fprintf(stderr, "warning: %s: line %llu: %s: matched as unknown\n", mo->input_name,
                    line_no, why);
        else if (mo->refused == MAX_LINE_WARNINGS)
            fprintf(stderr, "warning: %s: more refused lines: see their \"error\" field\n",
                    mo->input_name);
        mo->refused++;
    } else if (mo->explain) {
        out_str(o, ", \"cluster_id\": ");
        out_size(o, (unsigned long long)d.cluster_id);
        out_str(o, d.format_matched ? ", \"format_matched\": true" : ", \"format_matched\": false");
        out_str(o, ", \"content\": ");
        out_json_string(o, d.content, d.content_len);
        out_str(o, ", \"masked\": ");
        out_json_string(o, d.masked, d.masked_len);
        out_str(o, ", \"tokens\": ");
        out_size(o, d.n_tokens);
    }
    out_str(o, "}\n");
    if (o->failed)
        return -1;
    if (fwrite(o->data, 1, o->len, stdout) != o->len) {
        fprintf(stderr, "error: writing to stdout: %s\n", strerror(errno));
        return -2;
    }
    return 0;
}

/* Write the held multiline record, if any. @return as emit_match. */
static int emit_held(match_out *mo, record_joiner *j)
{
    if (!j->held)
        return 0;
    int rc = emit_match(mo, READ_LINE, j->data, j->len, j->line_no);
    joiner_reset(j);
    return rc > 0 ? 0 : rc;
}

int cmd_match(int argc, char **argv)
{
    int explain = 0, multiline = 0;
    const char *model_dir = NULL, *input = NULL;
    int positional = 0, options_done = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && strcmp(a, "--") == 0) {
            options_done = 1;
        } else if (!options_done && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            fputs(MATCH_USAGE, stdout);
            return EXIT_OK;
        } else if (!options_done && strcmp(a, "--explain") == 0) {
            explain = 1;
        } else if (!options_done && strcmp(a, "--multiline") == 0) {
            multiline = 1;
        } else if (!options_done && a[0] == '-' && a[1] != '\0') {
            return usage_error("match", 1, "unknown option %s", a);
        } else if (positional == 0) {
            model_dir = a;
            positional++;
        } else if (positional == 1) {
            input = a;
            positional++;
        } else {
            return usage_error("match", 1, "unexpected argument %s", a);
        }
    }
    if (model_dir == NULL)
        return usage_error("match", 0, "%s needs the model directory", "match");

    char err[1024];
    int rc = EXIT_ERROR;
    ae_vocab *vocab = NULL;
    ae_matcher *matcher = NULL;
    line_reader r = {0};
    match_out mo = {0};
    record_joiner j = {0};
    char *vocab_path = join_path(model_dir, "vocab.json");
    char *parser_path = join_path(model_dir, "parser.json");
    int from_stdin = input == NULL || strcmp(input, "-") == 0;
    const char *input_name = from_stdin ? "<stdin>" : input;
    if (vocab_path == NULL || parser_path == NULL)
        goto oom;
    struct stat st;
    if (stat(model_dir, &st) != 0) {
        fprintf(stderr, "error: %s: %s\n", model_dir, strerror(errno));
        goto done;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "error: %s: not a directory, expected a model directory\n", model_dir);
        goto done;
    }
    if (ae_vocab_load(vocab_path, &vocab, err, sizeof err) != AE_OK ||
        ae_matcher_load(parser_path, vocab, &matcher, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }

    if (from_stdin) {
        r.f = stdin;
    } else {
        if (stat(input, &st) == 0 && S_ISDIR(st.st_mode)) {
            fprintf(stderr, "error: %s: is a directory, expected a log file\n", input);
            goto done;
        }
        if ((r.f = fopen(input, "rb")) == NULL) {
            fprintf(stderr, "error: %s: %s\n", input, strerror(errno));
            goto done;
        }
    }
    r.cap = 64 * 1024;
    if ((r.buf = calloc(1, r.cap)) == NULL) /* zeroed: see reader_fill */
        goto oom;
    static char out_buffer[1 << 16];
    setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);

    /* gzip is not read here: say so rather than matching compressed bytes. */
    while (!r.eof && r.end < 2 && reader_fill(&r) > 0)
        ;
    if (r.end >= 2 && (unsigned char)r.buf[0] == 0x1f && (unsigned char)r.buf[1] == 0x8b) {
        fprintf(stderr, "error: %s: gzip-compressed input: decompress it first "
                "(zcat FILE | alog-edge match DIR -)\n", input_name);
        goto done;
    }

    mo.matcher = matcher;
    mo.unk = ae_vocab_size(vocab);
    mo.explain = explain;
    mo.input_name = input_name;
    j.matcher = matcher;
    multiline = multiline || ae_matcher_multiline(matcher);
    unsigned long long line_no = 0;
    for (;;) {
        const char *line = NULL;
        size_t len = 0;
        int got = reader_next(&r, &line, &len);
        if (got == READ_EOF)
            break;
        if (got == READ_ERROR) {
            fprintf(stderr, "error: %s: %s\n", input_name, strerror(errno));
            goto done;
        }
        line_no++;
        int joined = JOIN_ALONE;
        if (multiline && got == READ_LINE && (joined = joiner_offer(&j, line, len)) == JOIN_TAKEN)
            continue;
        if (joined == JOIN_NO_MEMORY)
            goto oom;
        int emitted = emit_held(&mo, &j);
        if (emitted == 0 && joined == JOIN_STARTS)
            emitted = joiner_start(&j, line, len, line_no);
        else if (emitted == 0)
            emitted = emit_match(&mo, got, line, len, line_no);
        if (emitted == -1)
            goto oom;
        if (emitted == -2)
            goto done;
    }
    int emitted = emit_held(&mo, &j);
    if (emitted == -1)
        goto oom;
    if (emitted == -2)
        goto done;
    if (fflush(stdout) != 0) {
        fprintf(stderr, "error: writing to stdout: %s\n", strerror(errno));
        goto done;
    }
    rc = mo.refused > 0 ? EXIT_REFUSED_LINES : EXIT_OK;
    goto done;
oom:
    fputs("error: out of memory\n", stderr);
done:
    fflush(stdout);
    if (r.f != NULL && r.f != stdin)
        fclose(r.f);
    free(r.buf);
    free(mo.o.data);
    joiner_free(&j);
    ae_matcher_free(matcher);
    ae_vocab_free(vocab);
    free(vocab_path);
    free(parser_path);
    return rc;
}


/*
 * cli.h - what the commands of the alog-edge CLI share: exit codes, JSON line output, line input.
 */
#ifndef ALOG_EDGE_CLI_H
#define ALOG_EDGE_CLI_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "alog_edge.h"

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

/* ---------------------------------------------------------------------------------------------
 * Following a growing file or a pipe (follow.c)
 */

enum { READ_AGAIN = 3 }; /* follow_next: no whole line yet */
enum { FOLLOW_SAME = 0, FOLLOW_TRUNCATED = 1, FOLLOW_ROTATED = 2 };

typedef struct follower {
    const char *path; /* NULL: stdin */
    int fd;
    int regular;      /* a regular file (polled at its end) rather than a pipe */
    int closed;       /* a pipe's writer is gone */
    dev_t dev;
    ino_t ino;
    off_t offset;     /* bytes read from the file */
    char *buf;
    size_t cap, start, end;
    int skipping;     /* inside a line longer than AE_LINE_MAX_BYTES */
    size_t skipped;
    int at_end;       /* the last read found the end of the file */
    int truncated;    /* seen truncated or rewritten: follow_check restarts it */
    char sig[64];     /* the last bytes read (a rewrite in place changes them) */
    size_t sig_len;
} follower;

/* Open a file (path) or stdin (NULL). @return 0, or -1 with errno set. */
int follow_open(follower *f, const char *path);

/* The next whole line; a pipe is waited on for up to wait_ms.
 * @return READ_LINE (*line, *len with its "\n"), READ_TOO_LONG (*len), READ_AGAIN (nothing
 *         whole yet), READ_EOF (a pipe closed), READ_ERROR (errno set). */
int follow_next(follower *f, const char **line, size_t *len, int wait_ms);

/* A last line without its "\n" (at rotation or exit), dropping anything else buffered.
 * @return 1 with *line / *len, or 0. */
int follow_rest(follower *f, const char **line, size_t *len);

/* At the end of the file: was it truncated (then it is read again from its start) or does its
 * path name a new file? @return FOLLOW_SAME, FOLLOW_TRUNCATED, FOLLOW_ROTATED, -1 (errno). */
int follow_check(follower *f);

/* Switch to the file the path names now. @return 0, 1 (no file there yet), -1 (errno). */
int follow_reopen(follower *f);

void follow_close(follower *f);

/* ---------------------------------------------------------------------------------------------
 * Option values (args.c)
 */

/* A usage error on stderr: "error: [<command>: ]<message> (see alog-edge [<command> ]--help)";
 * `command` NULL for the top level, `named` to name the command before the message.
 * @return EXIT_USAGE. */
int usage_error(const char *command, int named, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The value of option `name` at argv[*i] ("--name value", *i moves past it, or "--name=value").
 * @return the value; NULL if argv[*i] is another option, or with *missing set if the value is
 *         missing. */
const char *option_value(int argc, char **argv, int *i, const char *name, int *missing);

/* A decimal integer in [min, max]. @return 0 and *out, or -1. */
int parse_count(const char *s, unsigned long long min, unsigned long long max,
                unsigned long long *out);

/* A finite number. @return 0 and *out, or -1. */
int parse_number(const char *s, double *out);

/* DeepLog's rule options of run and score, into the model params: --rule top_k|probability,
 * --probability-threshold P, and with `idle` --session-idle S.
 * @return 1 when argv[*i] was one of them, 0 when not, or EXIT_USAGE + 100 after printing
 *         "error: <cmd>: ..." for a bad value. */
int parse_deeplog_option(int argc, char **argv, int *i, const char *cmd, int idle,
                         ae_model_params *mp);

/* The help lines of those options. */
#define DEEPLOG_RULE_HELP                                                                        \
    "  --rule R           DeepLog's rule: top_k (the paper's) or probability (default: the\n"    \
    "                     model's rule; --top-k alone selects top_k)\n"                          \
    "  --probability-threshold P\n"                                                             \
    "                     DeepLog's probability threshold (default: the model's; selects the\n" \
    "                     probability rule)\n"
#define DEEPLOG_IDLE_HELP                                                                        \
    "  --session-idle S   a DeepLog session ends after S seconds without a line of it (by the\n" \
    "                     lines' timestamps; 0: never; default: the model's\n"                   \
    "                     session_idle_seconds)\n"

/* ---------------------------------------------------------------------------------------------
 * stdout written by a thread of its own (outq.c), so that following input never waits on it
 */

typedef struct outq {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t has_data, has_room;
    char *buf;
    size_t len, cap;
    int closing, error, started;
} outq;

/* @return 0, or -1 when the thread cannot start. */
int outq_start(outq *q);
/* Queue bytes (waits only beyond a large backlog). @return 0, or -1 with errno (a failed
 * write to stdout, out of memory). */
int outq_write(outq *q, const char *data, size_t len);
/* Write what is queued and stop the thread. @return 0, or -1 with errno of a failed write. */
int outq_stop(outq *q);

/* ---------------------------------------------------------------------------------------------
 * run: verdicts as JSON lines (events.c)
 */

typedef struct event_writer {
    out_line o;
    outq *q;         /* --follow: stdout through its own thread; otherwise stdio */
    int write_error; /* errno of a failed write, or 0 */
    int out_of_memory;
} event_writer;

/* The detector's callback: one JSON line per event to stdout.
 * @return 0, or 1 after a failed write (w->write_error) or running out of memory. */
int write_event(const ae_event *ev, void *user);

/* ---------------------------------------------------------------------------------------------
 * score: checked input lines (checked.c) and the templates file (templates.c)
 */

typedef struct checked_reader {
    line_reader r;
    const char *name;
    unsigned long long line_no;
    int any; /* a non-blank line was seen */
} checked_reader;

/* Open path (NULL: stdin, spooled). @return 0, or -1 after printing the error. */
int open_checked(checked_reader *c, const char *path, const char *name);
/* The next line without its line end. @return 1 with *line / *len; 0 at the end; -1 after
 * printing the error (a bad line, or no non-blank line at all: "is empty"). */
int next_checked(checked_reader *c, const char **line, size_t *len);
/* Start again at the first line. @return 0, or -1 after printing the error. */
int rewind_checked(checked_reader *c);
void close_checked(checked_reader *c);

typedef struct keys {
    size_t *v;
    size_t n, cap;
} keys;

/* @return 0, or -1 when out of memory. */
int push_key(keys *k, size_t key);
/* The vocab key of every template of a templates file, in its order (not in the vocab: the
 * unknown key). @return 0, or -1 after printing the error. */
int read_templates(const char *path, const ae_vocab *vocab, keys *out);

/* Multiline records (records.c): a line that does not fit the format continues the record
 * before it. Offer each line; on JOIN_STARTS or JOIN_ALONE first handle the held record (if
 * held), then joiner_start the line (STARTS) or handle it by itself (ALONE). */
typedef struct record_joiner {
    ae_matcher *matcher;
    char *data; /* the held record: its lines without their line endings, joined with "\n" */
    size_t len, cap;
    unsigned long long line_no; /* of its first line */
    int held, open;
} record_joiner;

enum { JOIN_TAKEN = 0, JOIN_STARTS = 1, JOIN_ALONE = 2, JOIN_NO_MEMORY = -1 };

/* @return JOIN_TAKEN (joined to the held record, or a blank line: nothing to do), JOIN_STARTS
 *         (the line starts a record), JOIN_ALONE (a record of its own: invalid input or the
 *         regex engine gave up), JOIN_NO_MEMORY. */
int joiner_offer(record_joiner *j, const char *line, size_t len);
/* Hold the line as a new record. @return 0, or -1 when out of memory. */
int joiner_start(record_joiner *j, const char *line, size_t len, unsigned long long line_no);
/* Forget the held record (after handling it). */
void joiner_reset(record_joiner *j);
void joiner_free(record_joiner *j);

/* The commands (main.c dispatches). @return the exit status. */
int cmd_run(int argc, char **argv);
int cmd_match(int argc, char **argv);
/* `info <model directory>` (info.c; main.c checks the argument count). */
int cmd_info(const char *model_dir);
extern const char INFO_USAGE[];
int cmd_score(int argc, char **argv);

/* "dir/name" in a new string (free it).
 * @return the path, or NULL when out of memory. */
char *join_path(const char *dir, const char *name);

/* The commands; argv holds the arguments after the command's name.
 * @return the process exit status. */
int cmd_selftest(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_verify(int argc, char **argv);

#endif /* ALOG_EDGE_CLI_H */

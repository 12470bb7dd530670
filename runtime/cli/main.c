/*
 * alog-edge - the command line of the alog-edge runtime.
 *
 * Errors are one line on stderr, "error: <file>: <what is wrong>", with exit status 1;
 * usage errors exit with status 2; `match` exits with status 3 when it refused input lines
 * (reported, and matched as unknown) but finished.
 */
#include <dirent.h>
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


static const char USAGE[] =
    "usage: alog-edge <command> [arguments]\n"
    "\n"
    "Finds anomalies in log streams with DeepLog and MSCRED models run by onnxruntime.\n"
    "\n"
    "commands:\n"
    "  info <model_dir>   print one JSON object: the runtime and onnxruntime versions, the\n"
    "                     target, the vocab size, and every model (*.onnx) with the names,\n"
    "                     element types and shapes of its inputs and outputs\n"
    "  match [--explain] [--multiline] <model_dir> [FILE|-]\n"
    "                     key every line of FILE (default: stdin) with the model directory's\n"
    "                     parser.json and vocab.json, as `invoke match` does: one JSON line per\n"
    "                     non-blank line (see alog-edge match --help)\n"
    "  run [--follow] [--max-idle S] [--batch N] [--all] [--no-deeplog] [--no-mscred]\n"
    "      [--top-k K] [--threshold X] [--threads N] [--year Y] <model_dir> [FILE|-]\n"
    "                     judge every line of FILE (default: stdin; --follow: as it grows)\n"
    "                     with DeepLog and MSCRED: one JSON line per anomaly (see alog-edge\n"
    "                     run --help)\n"
    "  score [--templates FILE] [--top-k K] [--batch N] [--detail] <model_dir> [FILE|-]\n"
    "                     judge sessions of keys (DeepLog's HDFS format) with DeepLog: one\n"
    "                     JSON line per session (see alog-edge score --help)\n"
    "  selftest <model_dir>\n"
    "                     load the model directory and replay golden.json: exit 0 when this\n"
    "                     device computes what the converting machine did, 4 when not\n"
    "  bench <model_dir> <log>\n"
    "                     measure matching and detection speed, latency, memory and load time\n"
    "  verify [--keys DIR|FILE] <bundle_dir>\n"
    "                     check an unpacked bundle: its minisign signature against the trusted\n"
    "                     keys, then every file's size, mode and sha256: exit 0 when it\n"
    "                     verifies, 5 when not (see alog-edge verify --help)\n"
    "\n"
    "options:\n"
    "  -h, --help         print this help and exit\n"
    "  -V, --version      print the version and exit\n"
    "\n"
    "Errors are one line on stderr (error: <file>: <what is wrong>). Exit status: 0 success,\n"
    "1 error (bad model directory, unreadable input, write error), 2 usage error, 3 (match, run)\n"
    "some input lines were refused (reported) and the others were processed, 4 (selftest) an\n"
    "output differs from golden.json, 5 (verify) the bundle does not verify.\n";

static const char INFO_USAGE[] =
    "usage: alog-edge info <model_dir>\n"
    "\n"
    "Prints one JSON object: the runtime and onnxruntime versions, the target, the vocab size,\n"
    "and every model (*.onnx) with the names, element types and shapes of its inputs and\n"
    "outputs. It reads vocab.json and the ONNX files only: `alog-edge selftest` loads the whole\n"
    "directory as run does (meta.json, parser.json) and replays golden.json.\n"
    "\n"
    "Exit status: 0 success; 1 error (a bad model directory: one line on stderr); 2 usage error.\n";

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

static int usage_error(const char *fmt, const char *arg)
{
    fputs("error: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see alog-edge --help)\n", stderr);
    return EXIT_USAGE;
}


static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The *.onnx regular files of a directory (not the saved optimised graphs), sorted by name.
 * @return 0 and *names / *count set (free each name and the array); -1 with errno set.
 */
static int list_models(const char *dir, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    size_t cap = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (len <= 5 || strcmp(entry->d_name + len - 5, ".onnx") != 0)
            continue;
        if (strstr(entry->d_name, ".opt-") != NULL)
            continue; /* a model's saved optimised graph (convert), not a model of its own */
        char *path = join_path(dir, entry->d_name);
        struct stat st;
        int regular = path != NULL && stat(path, &st) == 0 && S_ISREG(st.st_mode);
        free(path);
        if (!regular)
            continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 4;
            char **grown = realloc(*names, cap * sizeof *grown);
            if (grown == NULL)
                goto oom;
            *names = grown;
        }
        size_t size = len + 1;
        if (((*names)[*count] = malloc(size)) == NULL)
            goto oom;
        memcpy((*names)[*count], entry->d_name, size);
        (*count)++;
    }
    closedir(d);
    if (*count > 1)
        qsort(*names, *count, sizeof **names, compare_names);
    return 0;
oom:
    closedir(d);
    for (size_t i = 0; i < *count; i++)
        free((*names)[i]);
    free(*names);
    *names = NULL;
    *count = 0;
    return -1;
}

/* [dim, ...]: a number for a fixed axis, the axis name for a named one, null otherwise. */
static cJSON *shape_json(const ae_tensor_info *info)
{
    cJSON *shape = cJSON_CreateArray();
    for (size_t d = 0; shape != NULL && d < info->rank; d++) {
        cJSON *dim;
        if (info->dims[d] != AE_DIM_DYNAMIC)
            dim = cJSON_CreateNumber((double)info->dims[d]);
        else if (info->dim_names[d][0] != '\0')
            dim = cJSON_CreateString(info->dim_names[d]);
        else
            dim = cJSON_CreateNull();
        if (dim == NULL || !cJSON_AddItemToArray(shape, dim)) {
            cJSON_Delete(dim);
            cJSON_Delete(shape);
            return NULL;
        }
    }
    return shape;
}

/* [{"name":..., "type":..., "shape":[...]}, ...] of a session's inputs or outputs. */
static cJSON *tensors_json(const ae_session *session, int inputs)
{
    cJSON *list = cJSON_CreateArray();
    size_t n = inputs ? ae_session_input_count(session) : ae_session_output_count(session);
    for (size_t i = 0; list != NULL && i < n; i++) {
        const ae_tensor_info *info = inputs ? ae_session_input(session, i)
                                            : ae_session_output(session, i);
        cJSON *item = cJSON_CreateObject();
        cJSON *shape = shape_json(info);
        if (item == NULL || shape == NULL || !cJSON_AddItemToArray(list, item) ||
            cJSON_AddStringToObject(item, "name", info->name) == NULL ||
            cJSON_AddStringToObject(item, "type", ae_dtype_name(info->dtype)) == NULL ||
            !cJSON_AddItemToObject(item, "shape", shape)) {
            cJSON_Delete(list);
            return NULL;
        }
    }
    return list;
}

static int cmd_info(const char *model_dir)
{
    char err[1024];
    int rc = EXIT_ERROR;
    char *vocab_path = join_path(model_dir, "vocab.json");
    ae_vocab *vocab = NULL;
    char **models = NULL;
    size_t n_models = 0;
    cJSON *root = NULL;
    char *text = NULL;
    if (vocab_path == NULL)
        goto oom;
    if (ae_vocab_load(vocab_path, &vocab, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    if (list_models(model_dir, &models, &n_models) != 0) {
        fprintf(stderr, "error: %s: %s\n", model_dir, strerror(errno));
        goto done;
    }

    root = cJSON_CreateObject();
    cJSON *list = NULL;
    if (root == NULL || cJSON_AddStringToObject(root, "runtime", "alog-edge") == NULL ||
        cJSON_AddStringToObject(root, "version", ae_version()) == NULL ||
        cJSON_AddStringToObject(root, "onnxruntime_version", ae_onnxruntime_version()) == NULL ||
        cJSON_AddNumberToObject(root, "onnxruntime_api_version",
                                ae_onnxruntime_api_version()) == NULL ||
        cJSON_AddStringToObject(root, "target", AE_TARGET) == NULL ||
        cJSON_AddStringToObject(root, "model_dir", model_dir) == NULL ||
        cJSON_AddNumberToObject(root, "vocab_size", (double)ae_vocab_size(vocab)) == NULL ||
        (list = cJSON_AddArrayToObject(root, "models")) == NULL)
        goto oom;

    for (size_t i = 0; i < n_models; i++) {
        char *path = join_path(model_dir, models[i]);
        if (path == NULL)
            goto oom;
        ae_session_params params = ae_session_default_params();
        ae_session *session = NULL;
        if (ae_session_open(path, &params, &session, err, sizeof err) != AE_OK) {
            fprintf(stderr, "error: %s\n", err);
            free(path);
            goto done;
        }
        free(path);
        cJSON *model = cJSON_CreateObject();
        cJSON *inputs = tensors_json(session, 1);
        cJSON *outputs = tensors_json(session, 0);
        ae_session_free(session);
        if (model == NULL || inputs == NULL || outputs == NULL ||
            !cJSON_AddItemToArray(list, model)) {
            cJSON_Delete(model);
            cJSON_Delete(inputs);
            cJSON_Delete(outputs);
            goto oom;
        }
        if (cJSON_AddStringToObject(model, "file", models[i]) == NULL ||
            !cJSON_AddItemToObject(model, "inputs", inputs)) {
            cJSON_Delete(inputs);
            cJSON_Delete(outputs);
            goto oom;
        }
        if (!cJSON_AddItemToObject(model, "outputs", outputs)) {
            cJSON_Delete(outputs);
            goto oom;
        }
    }
    if ((text = cJSON_PrintUnformatted(root)) == NULL)
        goto oom;
    if (puts(text) == EOF || fflush(stdout) != 0) {
        perror("error: writing to stdout");
        goto done;
    }
    rc = EXIT_OK;
    goto done;
oom:
    fputs("error: out of memory\n", stderr);
done:
    cJSON_free(text);
    cJSON_Delete(root);
    for (size_t i = 0; i < n_models; i++)
        free(models[i]);
    free(models);
    ae_vocab_free(vocab);
    free(vocab_path);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * match
 */

static int match_usage_error(const char *fmt, const char *arg)
{
    fputs("error: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see alog-edge match --help)\n", stderr);
    return EXIT_USAGE;
}

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

static int cmd_match(int argc, char **argv)
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
            return match_usage_error("match: unknown option %s", a);
        } else if (positional == 0) {
            model_dir = a;
            positional++;
        } else if (positional == 1) {
            input = a;
            positional++;
        } else {
            return match_usage_error("match: unexpected argument %s", a);
        }
    }
    if (model_dir == NULL)
        return match_usage_error("%s needs the model directory", "match");

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

/* A closed standard descriptor would be taken by the next open() (onnxruntime's model file,
 * then read as the log): hold it with /dev/null opened the other way, so that using it fails
 * (EBADF) and the command says so. */
static void hold_closed_std_fds(void)
{
    static const int flags[3] = {O_WRONLY, O_RDONLY, O_RDONLY};
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        int got = open("/dev/null", flags[fd]);
        if (got >= 0 && got != fd) {
            dup2(got, fd);
            close(got);
        }
    }
}

int main(int argc, char **argv)
{
    hold_closed_std_fds();
    if (argc < 2) {
        fputs(USAGE, stderr);
        return EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0) {
        fputs(USAGE, stdout);
        return EXIT_OK;
    }
    if (strcmp(command, "-V") == 0 || strcmp(command, "--version") == 0) {
        printf("alog-edge %s (onnxruntime %s, %s)\n", ae_version(), ae_onnxruntime_version(),
               AE_TARGET);
        return EXIT_OK;
    }
    if (strcmp(command, "match") == 0)
        return cmd_match(argc - 2, argv + 2);
    if (strcmp(command, "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (strcmp(command, "score") == 0)
        return cmd_score(argc - 2, argv + 2);
    if (strcmp(command, "selftest") == 0)
        return cmd_selftest(argc - 2, argv + 2);
    if (strcmp(command, "bench") == 0)
        return cmd_bench(argc - 2, argv + 2);
    if (strcmp(command, "verify") == 0)
        return cmd_verify(argc - 2, argv + 2);
    if (strcmp(command, "info") == 0) {
        if (argc == 3 && (strcmp(argv[2], "-h") == 0 || strcmp(argv[2], "--help") == 0)) {
            fputs(INFO_USAGE, stdout);
            return EXIT_OK;
        }
        if (argc != 3)
            return usage_error("%s needs exactly one argument: the model directory", "info");
        return cmd_info(argv[2]);
    }
    if (command[0] == '-')
        return usage_error("unknown option %s", command);
    return usage_error("unknown command %s", command);
}

/*
 * fuzz_load_model.c - libFuzzer target for the model directory's meta.json and golden.json loaders:
 * the first byte of an input picks the file ('D': deeplog.onnx.meta.json, 'M':
 * mscred.onnx.meta.json, anything else: golden.json), the rest is its content, written into a copy
 * of the tiny full_model fixture (runtime/tests/make_onnx_fixtures.py). A meta goes through
 * ae_model_load (a loaded model's info must keep the loader's ranges); a golden.json through
 * `alog-edge selftest`'s own code, which must end in 0, 1 or 4, never a crash.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alog_edge.h"
#include "cli.h"

#ifndef AE_FUZZ_FIXTURES
#error "AE_FUZZ_FIXTURES: the folder holding full_model/ (make_onnx_fixtures.py)"
#endif

static const char *const FILES[] = {"vocab.json", "parser.json", "deeplog.onnx",
                                    "deeplog.onnx.meta.json", "mscred.onnx",
                                    "mscred.onnx.meta.json"};
static char dir[4096];

#define REQUIRE(cond)                                                                            \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_load_model: %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    REQUIRE(in != NULL && out != NULL);
    char buf[1 << 14];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        REQUIRE(fwrite(buf, 1, n, out) == n);
    REQUIRE(fclose(in) == 0 && fclose(out) == 0);
}

static void path_of(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void remove_dir(void)
{
    char path[4096 + 64];
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        path_of(path, sizeof path, FILES[i]);
        unlink(path);
    }
    path_of(path, sizeof path, "golden.json");
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/fuzz_load_model.%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    REQUIRE(mkdir(dir, 0700) == 0);
    atexit(remove_dir);
    char from[4096 + 64], to[4096 + 64];
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        snprintf(from, sizeof from, "%s/full_model/%s", AE_FUZZ_FIXTURES, FILES[i]);
        path_of(to, sizeof to, FILES[i]);
        copy_file(from, to);
    }
    /* selftest's JSON lines and messages are not what is checked here */
    REQUIRE(freopen("/dev/null", "w", stdout) != NULL);
    return 0;
}

static void write_file(const char *name, const uint8_t *data, size_t size)
{
    char path[4096 + 64];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL && fwrite(data, 1, size, f) == size && fclose(f) == 0);
}

static void restore(const char *name)
{
    char from[4096 + 64], to[4096 + 64];
    snprintf(from, sizeof from, "%s/full_model/%s", AE_FUZZ_FIXTURES, name);
    path_of(to, sizeof to, name);
    copy_file(from, to);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] == 'D' || data[0] == 'M') {
        const char *name = data[0] == 'D' ? "deeplog.onnx.meta.json" : "mscred.onnx.meta.json";
        write_file(name, data + 1, size - 1);
        char err[512];
        memset(err, 'x', sizeof err);
        ae_model_params p = ae_model_default_params();
        p.session.log_severity = 4;
        ae_model *m = (ae_model *)err;
        ae_status status = ae_model_load(dir, &p, &m, err, sizeof err);
        REQUIRE(memchr(err, '\0', sizeof err) != NULL);
        if (status != AE_OK) {
            REQUIRE(m == NULL);
            REQUIRE(strncmp(err, dir, strlen(dir)) == 0); /* the message names the file */
        } else {
            ae_model_info info;
            REQUIRE(ae_model_info_get(m, &info) == AE_OK);
            REQUIRE(!info.has_deeplog || (info.top_k >= 1 && info.deeplog_window >= 1 &&
                                          info.deeplog_window <= (1 << 16) &&
                                          info.deeplog_seen_keys <= info.num_templates + 1));
            REQUIRE(!info.has_mscred || (info.mscred_window >= 1 && info.mscred_window <= (1 << 16) &&
                                         info.mscred_stride >= 1 && isfinite(info.threshold) &&
                                         (info.bucket_seconds > 0) != (info.bucket_lines > 0)));
            ae_model_free(m);
        }
        restore(name);
    } else {
        write_file("golden.json", data + 1, size - 1);
        char *args[] = {dir, NULL};
        int rc = cmd_selftest(1, args);
        REQUIRE(rc == 0 || rc == 1 || rc == 4);
    }
    return 0;
}

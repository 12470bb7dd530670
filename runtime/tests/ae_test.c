/*
 * ae_test.c - the runtime's small test harness (see ae_test.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ae_test.h"

#define MAX_FILES 64

static int failed;
static char tmpdir[4096];
static char files[MAX_FILES][4096];
static size_t n_files;

void ae_test_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    failed = 1;
}

const char *ae_test_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/ae_test.XXXXXX", base && *base ? base : "/tmp");
        if (mkdtemp(tmpdir) == NULL) {
            fprintf(stderr, "mkdtemp(%s): %s\n", tmpdir, strerror(errno));
            exit(2);
        }
    }
    return tmpdir;
}

const char *ae_test_write(const char *name, const void *content, size_t len)
{
    if (n_files == MAX_FILES) {
        fputs("ae_test_write: too many files in one case\n", stderr);
        exit(2);
    }
    char *path = files[n_files];
    int written = snprintf(path, sizeof files[0], "%s/%s", ae_test_tmpdir(), name);
    if (written < 0 || (size_t)written >= sizeof files[0]) {
        fprintf(stderr, "ae_test_write: path too long for %s\n", name);
        exit(2);
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(content, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "writing %s: %s\n", path, strerror(errno));
        exit(2);
    }
    n_files++;
    return path;
}

const char *ae_test_write_text(const char *name, const char *text)
{
    return ae_test_write(name, text, strlen(text));
}

static void cleanup(void)
{
    for (size_t i = 0; i < n_files; i++)
        unlink(files[i]);
    n_files = 0;
    if (tmpdir[0] != '\0')
        rmdir(tmpdir);
    tmpdir[0] = '\0';
}

static int run_case(const ae_test_case *c)
{
    failed = 0;
    c->run();
    cleanup();
    printf("%s %s\n", failed ? "FAIL" : "ok  ", c->name);
    fflush(stdout);
    return !failed;
}

int ae_test_main(int argc, char **argv, const ae_test_case *cases, size_t n_cases)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n_cases; i++)
            puts(cases[i].name);
        return 0;
    }
    if (argc == 2) {
        for (size_t i = 0; i < n_cases; i++)
            if (strcmp(cases[i].name, argv[1]) == 0)
                return run_case(&cases[i]) ? 0 : 1;
        fprintf(stderr, "no test case named %s (--list shows them)\n", argv[1]);
        return 2;
    }
    if (argc > 2) {
        fprintf(stderr, "usage: %s [--list | <case>]\n", argv[0]);
        return 2;
    }
    size_t passed = 0;
    for (size_t i = 0; i < n_cases; i++)
        passed += (size_t)run_case(&cases[i]);
    printf("%zu passed, %zu failed\n", passed, n_cases - passed);
    return passed == n_cases ? 0 : 1;
}

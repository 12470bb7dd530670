/*
 * bench_measure.c - the clocks, memory figures and in-memory log of `alog-edge bench` (bench.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alog_edge.h"
#include "bench.h"
#include "cli_borrowed.h" /* ae_read_file */

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A field of /proc/self/status in kB (VmRSS, VmHWM); 0 where /proc is missing. */
long bench_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    char line[256];
    long kb = 0;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* CPU seconds of this process: the machine may be shared, and wall time then measures the others. */
double bench_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds of this thread (per-line latency without the other processes' time slices). */
double bench_thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The peak RSS since the last call (VmHWM, then reset to the current RSS where Linux allows it:
 * "5" to /proc/self/clear_refs), so that each phase reports its own peak. */
long bench_phase_peak_kb(void)
{
    long kb = bench_status_kb("VmHWM");
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f != NULL) {
        fputs("5", f);
        fclose(f);
    }
    return kb;
}


int bench_load_lines(const char *path, log_lines *out)
{
    char *text = NULL, err[1024];
    size_t n = 0;
    if (ae_read_file(path, SIZE_MAX, &text, &n, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += text[i] == '\n';
    lines += n > 0 && text[n - 1] != '\n';
    out->text = text;
    out->start = malloc((lines ? lines : 1) * sizeof *out->start);
    out->len = malloc((lines ? lines : 1) * sizeof *out->len);
    if (out->start == NULL || out->len == NULL) {
        fputs("error: out of memory\n", stderr);
        return -1;
    }
    size_t at = 0, k = 0;
    while (at < n) {
        const char *nl = memchr(text + at, '\n', n - at);
        size_t end = nl ? (size_t)(nl - text) : n;
        if (end - at <= AE_LINE_MAX_BYTES) {
            out->start[k] = at;
            out->len[k] = end - at;
            k++;
        }
        at = end + 1;
    }
    out->count = k;
    if (k == 0) {
        fprintf(stderr, "error: %s: holds no lines\n", path);
        return -1;
    }
    return 0;
}

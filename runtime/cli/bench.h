/*
 * bench.h - what `alog-edge bench` measures with (bench_measure.c): clocks, memory, the log in memory.
 */
#ifndef ALOG_EDGE_CLI_BENCH_H
#define ALOG_EDGE_CLI_BENCH_H

#include <stddef.h>

/* The log held in memory: line k is text[start[k] .. start[k] + len[k]). */
typedef struct log_lines {
    char *text;
    size_t *start, *len;
    size_t count;
} log_lines;

/* @return monotonic seconds. */
double bench_now_s(void);
/* @return a field of /proc/self/status in kB (VmRSS, VmHWM); 0 where /proc is missing. */
long bench_status_kb(const char *field);
/* @return CPU seconds of this process (the machine may be shared: wall time then measures the others). */
double bench_cpu_s(void);
/* @return CPU seconds of this thread. */
double bench_thread_cpu_s(void);
/* @return the peak RSS in kB since the last call (then reset where Linux allows), so each phase has its own. */
long bench_phase_peak_kb(void);
/* Read `path` into `out`, one entry per line of at most AE_LINE_MAX_BYTES.
 * @return 0, or -1 after one line on stderr. */
int bench_load_lines(const char *path, log_lines *out);

#endif

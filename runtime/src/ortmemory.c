/*
 * ortmemory.c - take out of this process's RSS the pages of onnxruntime's code that loading ran
 * once.
 *
 * onnxruntime's static initialisers, environment and session creation (kernel registration,
 * graph partitioning, protobuf parsing) run code that inference never runs again; those pages
 * stay mapped and count in the RSS. MADV_DONTNEED on a clean, file-backed private mapping only
 * unmaps its pages from this process: they stay in the page cache, and a page needed again comes
 * back with a minor fault and the same bytes. A mapping with a page this process wrote (an
 * "Anonymous" copy, such as relocated data) is never touched: DONTNEED would lose the write.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

void ae_ort_release_load_pages(void)
{
    FILE *smaps = fopen("/proc/self/smaps", "r");
    if (smaps == NULL)
        return;
    char line[1024];
    unsigned long start = 0, end = 0;
    int candidate = 0; /* the current mapping: onnxruntime's, read-only */
    while (fgets(line, sizeof line, smaps) != NULL) {
        unsigned long a, b;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && strchr(line, '\n') != NULL &&
            line[0] != ' ' && strchr(perms, 'p') != NULL) {
            start = a;
            end = b;
            candidate = strstr(line, "/libonnxruntime.so") != NULL && perms[1] != 'w';
            continue;
        }
        unsigned long kb;
        if (candidate && sscanf(line, "Rss: %lu kB", &kb) == 1) {
            candidate = kb > 0; /* qemu-user's emulated smaps says 0 for everything: trust nothing */
        } else if (candidate && sscanf(line, "Anonymous: %lu kB", &kb) == 1) {
            if (kb == 0)
                (void)madvise((void *)start, end - start, MADV_DONTNEED);
            candidate = 0;
        }
    }
    fclose(smaps);
}

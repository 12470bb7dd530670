/*
 * args.c - the arguments of the CLI commands: option values ("--name value" or "--name=value"),
 * numbers checked, and the one form of a usage error.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int usage_error(const char *command, int named, const char *fmt, ...)
{
    fputs("error: ", stderr);
    if (command != NULL && named)
        fprintf(stderr, "%s: ", command);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (command != NULL)
        fprintf(stderr, " (see alog-edge %s --help)\n", command);
    else
        fputs(" (see alog-edge --help)\n", stderr);
    return EXIT_USAGE;
}

const char *option_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    const char *a = argv[*i];
    size_t len = strlen(name);
    *missing = 0;
    if (strncmp(a, name, len) != 0)
        return NULL;
    if (a[len] == '=')
        return a + len + 1;
    if (a[len] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int parse_count(const char *s, unsigned long long min, unsigned long long max,
                unsigned long long *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int parse_number(const char *s, double *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int parse_deeplog_option(int argc, char **argv, int *i, const char *cmd, int idle,
                         ae_model_params *mp)
{
    const char *v;
    int missing = 0;
    const char *bad = NULL;
    if ((v = option_value(argc, argv, i, "--rule", &missing)) || missing) {
        if (!missing && strcmp(v, "top_k") == 0)
            mp->deeplog_rule = AE_RULE_TOP_K;
        else if (!missing && strcmp(v, "probability") == 0)
            mp->deeplog_rule = AE_RULE_PROBABILITY;
        else
            bad = "--rule needs top_k or probability, got %s";
    } else if ((v = option_value(argc, argv, i, "--probability-threshold", &missing)) ||
               missing) {
        if (missing || parse_number(v, &mp->probability_threshold) != 0 ||
            mp->probability_threshold < 0 || mp->probability_threshold > 1)
            bad = "--probability-threshold needs a number in 0..1, got %s";
    } else if (idle && ((v = option_value(argc, argv, i, "--session-idle", &missing)) || missing)) {
        if (missing || parse_number(v, &mp->session_idle) != 0 || mp->session_idle < 0 ||
            mp->session_idle > 1e9)
            bad = "--session-idle needs a number of seconds in 0..1e9, got %s";
    } else {
        return 0;
    }
    if (bad == NULL)
        return 1;
    fprintf(stderr, "error: %s: ", cmd);
    fprintf(stderr, bad, missing ? "nothing" : v);
    fprintf(stderr, " (see alog-edge %s --help)\n", cmd);
    return EXIT_USAGE + 100;
}

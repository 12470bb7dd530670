/*
 * alog-edge - the command line of the alog-edge runtime.
 *
 * Errors are one line on stderr, "error: <file>: <what is wrong>", with exit status 1;
 * usage errors exit with status 2; `match` exits with status 3 when it refused input lines
 * (reported, and matched as unknown) but finished.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
            return usage_error(NULL, 0, "%s needs exactly one argument: the model directory",
                               "info");
        return cmd_info(argv[2]);
    }
    if (command[0] == '-')
        return usage_error(NULL, 0, "unknown option %s", command);
    return usage_error(NULL, 0, "unknown command %s", command);
}

/*
 * fuzz_load_json.c - libFuzzer target for the JSON loaders: the first byte of an input picks the
 * file ('P': parser.json, with the vocab of runtime/fuzz/models/drain; anything else:
 * vocab.json), the rest is the file's content. A parser.json that loads then matches a few
 * lines, so that whatever regexes and templates it brings are exercised too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#ifndef AE_FUZZ_MODELS
#error "AE_FUZZ_MODELS: the folder of the model directories"
#endif

static ae_vocab *vocab;
static char path[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[1024];
    if (ae_vocab_load(AE_FUZZ_MODELS "/drain/vocab.json", &vocab, err, sizeof err) != AE_OK) {
        fprintf(stderr, "fuzz_load_json: %s\n", err);
        abort();
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/fuzz_load_json.%ld.json", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    return 0;
}

#define REQUIRE(cond)                                                                            \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_load_json: %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static const char *const LINES[] = {
    "Mar  3 10:00:01 edge-01 sshd[812]: Accepted password for admin from 192.168.1.20 port 5 ssh2",
    ("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
     "blk_38865 terminating"),
    "no format  a=1,b=2 \xe3\x80\x80 /var/log x",
    "",
    "   ",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data + 1, 1, size - 1, f) != size - 1 || fclose(f) != 0) {
        perror(path);
        abort();
    }
    char err[256];
    memset(err, 'x', sizeof err);
    if (data[0] == 'P') {
        ae_matcher *m = (ae_matcher *)err;
        ae_status status = ae_matcher_load_limited(path, 1 << 20, vocab, &m, err, sizeof err);
        REQUIRE(memchr(err, '\0', sizeof err) != NULL);
        if (status != AE_OK) {
            REQUIRE(m == NULL);
            REQUIRE(strncmp(err, path, strlen(path)) == 0);
        } else {
            for (size_t i = 0; i < sizeof LINES / sizeof LINES[0]; i++) {
                size_t index = 0;
                const char *t = NULL;
                ae_status s = ae_matcher_match(m, LINES[i], strlen(LINES[i]), &index, &t);
                REQUIRE(s == AE_OK || s == AE_BLANK || s == AE_ERR_TOO_LARGE);
                REQUIRE(index <= ae_vocab_size(vocab));
                REQUIRE((t == NULL) == (index == ae_vocab_size(vocab)));
            }
            ae_matcher_free(m);
        }
    } else {
        ae_vocab *v = (ae_vocab *)err;
        ae_status status = ae_vocab_load_limited(path, 1 << 20, &v, err, sizeof err);
        REQUIRE(memchr(err, '\0', sizeof err) != NULL);
        if (status != AE_OK) {
            REQUIRE(v == NULL);
        } else {
            size_t n = ae_vocab_size(v);
            for (size_t i = 0; i < n; i++) {
                size_t back = n;
                REQUIRE(ae_vocab_lookup(v, ae_vocab_template(v, i), &back) == AE_OK && back == i);
            }
            ae_vocab_free(v);
        }
    }
    unlink(path);
    return 0;
}

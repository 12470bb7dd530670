/*
 * fuzz_verify.c - libFuzzer target for the parsers of `alog-edge verify`: the first byte of an
 * input picks the parser ('S': a minisign signature file, 'K': a public key file, anything else:
 * MANIFEST.json), the rest is the file's content. A signature that parses is then checked
 * against the fixture key and manifest of runtime/tests/data/verify (it must not verify unless it
 * is the real one); a manifest that parses must hold what its parser promises.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verify.h"

#ifndef AE_FUZZ_VERIFY_DATA
#error "AE_FUZZ_VERIFY_DATA: the folder of the verify fixtures"
#endif

#define REQUIRE(cond)                                                                            \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_verify: %s:%d: %s\n", __FILE__, __LINE__, #cond);             \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static ae_minisign_key key;
static char *manifest, *genuine[2];
static size_t manifest_len, genuine_len[2];

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[512], why[256];
    char *text = NULL;
    size_t len = 0;
    REQUIRE(ae_read_file(AE_FUZZ_VERIFY_DATA "/key.pub", 4096, &text, &len, err, sizeof err) == AE_OK);
    REQUIRE(ae_minisign_key_parse(text, len, &key, why, sizeof why) == AE_OK);
    free(text);
    REQUIRE(ae_read_file(AE_FUZZ_VERIFY_DATA "/MANIFEST.json", 1 << 20, &manifest, &manifest_len,
                         err, sizeof err) == AE_OK);
    REQUIRE(ae_read_file(AE_FUZZ_VERIFY_DATA "/MANIFEST.json.minisig", 4096, &genuine[0],
                         &genuine_len[0], err, sizeof err) == AE_OK);
    REQUIRE(ae_read_file(AE_FUZZ_VERIFY_DATA "/MANIFEST.json.legacy.minisig", 4096, &genuine[1],
                         &genuine_len[1], err, sizeof err) == AE_OK);
    return 0;
}

static int safe(const char *path)
{
    return path[0] != '/' && strstr(path, "..") == NULL && strstr(path, "//") == NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char why[512];
    if (data[0] == 'S') {
        static ae_minisig sig;
        if (ae_minisig_parse(text, len, &sig, why, sizeof why) != AE_OK)
            return 0;
        REQUIRE(sig.trusted_comment_len <= AE_MINISIG_COMMENT_MAX);
        REQUIRE(strlen(sig.trusted_comment) <= sig.trusted_comment_len);
        ae_status st = ae_minisig_verify(&sig, &key, (const unsigned char *)manifest, manifest_len,
                                         why, sizeof why);
        /* only the fixture's own signatures (modulo the untrusted comment and line ends) verify */
        if (st == AE_OK) {
            static ae_minisig real;
            const int legacy = memcmp(sig.alg, "Ed", 2) == 0;
            REQUIRE(ae_minisig_parse(genuine[legacy], genuine_len[legacy], &real, why, sizeof why) ==
                    AE_OK);
            REQUIRE(memcmp(real.sig, sig.sig, 64) == 0);
            REQUIRE(memcmp(real.global_sig, sig.global_sig, 64) == 0);
            REQUIRE(strcmp(real.trusted_comment, sig.trusted_comment) == 0);
        }
    } else if (data[0] == 'K') {
        ae_minisign_key k;
        (void)ae_minisign_key_parse(text, len, &k, why, sizeof why);
    } else {
        ae_manifest *m = NULL;
        if (ae_manifest_parse(text, len, &m, why, sizeof why) != AE_OK) {
            REQUIRE(m == NULL);
            return 0;
        }
        REQUIRE(m->n_files > 0);
        for (size_t i = 0; i < m->n_files; i++) {
            REQUIRE(safe(m->files[i].path));
            REQUIRE(i == 0 || strcmp(m->files[i - 1].path, m->files[i].path) < 0);
            REQUIRE(m->files[i].mode == 0644 || m->files[i].mode == 0755);
        }
        ae_manifest_free(m);
    }
    return 0;
}

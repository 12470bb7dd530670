/*
 * test_verify.c - minisign signatures (made by the stock minisign tool: data/verify/) and bundle
 * manifests: what verifies, and that any change to the signed bytes does not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ae_test.h"
#include "internal.h"
#include "verify.h"

#define DATA AE_TEST_DATA "/verify/"

static char *slurp(const char *name, size_t *len)
{
    char err[512];
    char *text = NULL;
    if (ae_read_file(name, 1 << 20, &text, len, err, sizeof err) != AE_OK) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    return text;
}

typedef struct fixture {
    char *manifest, *sig_text, *key_text, *other_text;
    size_t manifest_len, sig_len, key_len, other_len;
    ae_minisig sig;
    ae_minisign_key key, other;
} fixture;

static int load(fixture *f, const char *sig_file)
{
    char why[256];
    memset(f, 0, sizeof *f);
    f->manifest = slurp(DATA "MANIFEST.json", &f->manifest_len);
    f->sig_text = slurp(sig_file, &f->sig_len);
    f->key_text = slurp(DATA "key.pub", &f->key_len);
    f->other_text = slurp(DATA "other.pub", &f->other_len);
    return f->manifest && f->sig_text && f->key_text && f->other_text &&
           ae_minisig_parse(f->sig_text, f->sig_len, &f->sig, why, sizeof why) == AE_OK &&
           ae_minisign_key_parse(f->key_text, f->key_len, &f->key, why, sizeof why) == AE_OK &&
           ae_minisign_key_parse(f->other_text, f->other_len, &f->other, why, sizeof why) == AE_OK;
}

static void unload(fixture *f)
{
    free(f->manifest);
    free(f->sig_text);
    free(f->key_text);
    free(f->other_text);
}

static int verifies(const fixture *f, const ae_minisig *sig, const ae_minisign_key *key,
                    const char *msg, size_t len, char *why, size_t why_len)
{
    return ae_minisig_verify(sig, key, (const unsigned char *)msg, len, why, why_len) == AE_OK;
    (void)f;
}

/* Every single-bit change of the manifest makes the signature fail. */
static int every_flip_fails(fixture *f)
{
    char why[256];
    for (size_t i = 0; i < f->manifest_len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            f->manifest[i] ^= (char)(1 << bit);
            int ok = verifies(f, &f->sig, &f->key, f->manifest, f->manifest_len, why, sizeof why);
            f->manifest[i] ^= (char)(1 << bit);
            if (ok)
                return 0;
        }
    }
    return 1;
}

AE_TEST(verify_accepts_a_prehashed_signature_of_the_stock_minisign_tool_and_no_altered_byte)
{
    fixture f;
    char why[256];
    int ok = load(&f, DATA "MANIFEST.json.minisig");
    if (!ok) unload(&f);
    CHECK(ok);
    CHECK(memcmp(f.sig.alg, "ED", 2) == 0);
    CHECK_STR(f.sig.trusted_comment, "fixture prehashed");
    ok = verifies(&f, &f.sig, &f.key, f.manifest, f.manifest_len, why, sizeof why);
    int flips = every_flip_fails(&f);
    unload(&f);
    CHECK(ok);
    CHECK(flips);
}

AE_TEST(verify_accepts_a_legacy_signature_of_the_stock_minisign_tool_and_no_altered_byte)
{
    fixture f;
    char why[256];
    int ok = load(&f, DATA "MANIFEST.json.legacy.minisig");
    if (!ok) unload(&f);
    CHECK(ok);
    CHECK(memcmp(f.sig.alg, "Ed", 2) == 0);
    ok = verifies(&f, &f.sig, &f.key, f.manifest, f.manifest_len, why, sizeof why);
    int flips = every_flip_fails(&f);
    unload(&f);
    CHECK(ok);
    CHECK(flips);
}

AE_TEST(verify_refuses_an_altered_trusted_comment)
{
    fixture f;
    char why[256];
    int ok = load(&f, DATA "MANIFEST.json.minisig");
    if (!ok) unload(&f);
    CHECK(ok);
    f.sig.trusted_comment[0] ^= 1;
    ok = verifies(&f, &f.sig, &f.key, f.manifest, f.manifest_len, why, sizeof why);
    unload(&f);
    CHECK(!ok);
    CHECK(strstr(why, "trusted comment") != NULL);
}

AE_TEST(verify_refuses_another_key_and_a_key_that_only_borrows_the_id)
{
    fixture f;
    char why[256];
    int ok = load(&f, DATA "MANIFEST.json.minisig");
    if (!ok) unload(&f);
    CHECK(ok);
    int other = verifies(&f, &f.sig, &f.other, f.manifest, f.manifest_len, why, sizeof why);
    int names_ids = strstr(why, "signed by key") != NULL;
    ae_minisign_key forged = f.other;
    memcpy(forged.key_id, f.key.key_id, 8);
    int borrowed = verifies(&f, &f.sig, &forged, f.manifest, f.manifest_len, why, sizeof why);
    unload(&f);
    CHECK(!other);
    CHECK(names_ids);
    CHECK(!borrowed);
    CHECK(strstr(why, "does not verify") != NULL);
}

AE_TEST(verify_prints_key_ids_as_minisign_does)
{
    fixture f;
    int ok = load(&f, DATA "MANIFEST.json.minisig");
    if (!ok) unload(&f);
    CHECK(ok);
    char id[17];
    ae_key_id_text(f.key.key_id, id);
    int in_comment = strstr(f.key_text, id) != NULL; /* "minisign public key <ID>" */
    int in_manifest = strstr(f.manifest, id) != NULL;
    unload(&f);
    CHECK(in_comment);
    CHECK(in_manifest);
}

AE_TEST(verify_key_parser_takes_a_key_file_or_a_bare_key_line_and_refuses_the_rest)
{
    fixture f;
    char why[256];
    int ok = load(&f, DATA "MANIFEST.json.minisig");
    if (!ok) unload(&f);
    CHECK(ok);
    ae_minisign_key bare;
    const char *line = strchr(f.key_text, '\n') + 1;
    ae_status st = ae_minisign_key_parse(line, strlen(line), &bare, why, sizeof why);
    int same = st == AE_OK && memcmp(&bare, &f.key, sizeof bare) == 0;
    int sig_as_key = ae_minisign_key_parse(f.sig_text, f.sig_len, &bare, why, sizeof why) != AE_OK;
    unload(&f);
    CHECK(same);
    CHECK(sig_as_key);
    CHECK_STATUS(ae_minisign_key_parse("", 0, &bare, why, sizeof why), AE_ERR_FORMAT);
    CHECK_STATUS(ae_minisign_key_parse("untrusted comment: x\nRWQ=\n", 26, &bare, why, sizeof why),
                 AE_ERR_FORMAT);
}

AE_TEST(verify_signature_parser_refuses_malformed_files_with_a_reason)
{
    static const char *bad[] = {
        "",
        "untrusted comment: a\n",
        "untrusted comment: a\nRUQ=\ntrusted comment: b\nAAAA\n",
        "comment: a\nRUQ=\ntrusted comment: b\nAAAA\n",
        "untrusted comment: a\n!!!!\ntrusted comment: b\nAAAA\n",
        "untrusted comment: a\nRUQ=\ntrusted comment: b\nAAAA\nextra\n",
    };
    char why[256];
    ae_minisig *sig = malloc(sizeof *sig);
    CHECK(sig != NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        ae_status st = ae_minisig_parse(bad[i], strlen(bad[i]), sig, why, sizeof why);
        if (st != AE_ERR_FORMAT || why[0] == '\0') {
            free(sig);
            CHECK(st == AE_ERR_FORMAT && why[0] != '\0');
        }
    }
    free(sig);
}

AE_TEST(verify_manifest_parser_reads_the_files_sizes_modes_and_hashes)
{
    size_t len = 0;
    char why[256];
    char *text = slurp(DATA "MANIFEST.json", &len);
    CHECK(text != NULL);
    ae_manifest *m = NULL;
    ae_status st = ae_manifest_parse(text, len, &m, why, sizeof why);
    free(text);
    CHECK_STATUS(st, AE_OK);
    int ok = m->n_files == 2 && strcmp(m->files[0].path, "bin/alog-edge") == 0 &&
             m->files[0].mode == 0755 && m->files[0].size == 16 && m->files[1].mode == 0644 &&
             strcmp(m->version, "0.1.0+fixture") == 0 && strcmp(m->target, "x86_64") == 0 &&
             strcmp(m->min_glibc, "2.17") == 0 && m->created == 1700000000 &&
             m->files[1].sha256[0] == 0xeb;
    ae_manifest_free(m);
    ae_manifest_free(NULL);
    CHECK(ok);
}

/* The fixture manifest with one substring replaced. */
static ae_status parse_changed(const char *from, const char *to, char *why, size_t why_len)
{
    size_t len = 0;
    char *text = slurp(DATA "MANIFEST.json", &len);
    if (text == NULL)
        return AE_ERR_IO;
    char *at = strstr(text, from);
    ae_status st = AE_ERR_IO;
    if (at != NULL) {
        size_t out_len = len - strlen(from) + strlen(to);
        char *out = malloc(out_len + 1);
        if (out != NULL) {
            size_t head = (size_t)(at - text);
            memcpy(out, text, head);
            memcpy(out + head, to, strlen(to));
            memcpy(out + head + strlen(to), at + strlen(from), len - head - strlen(from));
            out[out_len] = '\0';
            ae_manifest *m = NULL;
            st = ae_manifest_parse(out, out_len, &m, why, why_len);
            ae_manifest_free(m);
            free(out);
        }
    }
    free(text);
    return st;
}

AE_TEST(verify_manifest_parser_refuses_unsafe_paths_bad_fields_and_wrong_parts)
{
    static const char *changes[][3] = {
        {"\"models/vocab.json\"", "\"../vocab.json\"", "bad path"},
        {"\"models/vocab.json\"", "\"/etc/passwd\"", "bad path"},
        {"\"models/vocab.json\"", "\"models/./vocab.json\"", "bad path"},
        {"\"models/vocab.json\"", "\"MANIFEST.json\"", "lists itself"},
        {"\"models/vocab.json\"", "\"a/vocab.json\"", "not sorted"},
        {"\"size\": 15", "\"size\": 16", "parts.models"},
        {"\"size\": 15", "\"size\": -1", "bad size"},
        {"\"mode\": \"0644\"", "\"mode\": \"4755\"", "mode"},
        {"\"format\": 1", "\"format\": 2", "format"},
        {"\"target\": \"x86_64\"", "\"target\": \"mips\"", "target"},
        {"\"version\": \"0.1.0+fixture\"", "\"version\": \"../x\"", "bad version"},
        {"\"min_glibc\": \"2.17\"", "\"min_glibc\": \"2.17; rm\"", "min_glibc"},
        {"\"elf_machine\": null}", "\"elf_machine\": \"aarch64\"}", "built for aarch64"},
        {"\"format\": 1,", "\"format\": 1, \"format\": 1,", "unique keys"},
        {"ebfa2ea4", "EBFA2EA4", "bad sha256"},
    };
    char why[256];
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        why[0] = '\0';
        ae_status st = parse_changed(changes[i][0], changes[i][1], why, sizeof why);
        if (st != AE_ERR_FORMAT || strstr(why, changes[i][2]) == NULL)
            ae_test_fail_at(__FILE__, __LINE__, "change %zu (%s): %s, \"%s\"", i, changes[i][1],
                            ae_strerror(st), why);
    }
}

AE_TEST(verify_version_compare_orders_glibc_versions_numerically)
{
    CHECK(ae_version_compare("2.36", "2.4") > 0);
    CHECK(ae_version_compare("2.34", "2.36") < 0);
    CHECK(ae_version_compare("2.36", "2.36") == 0);
    CHECK(ae_version_compare("2.36", "2.36.0") == 0);
    CHECK(ae_version_compare("3", "2.99") > 0);
}

#include "test_verify_cases.h"
AE_TEST_MAIN()

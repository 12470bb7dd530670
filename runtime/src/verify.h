/*
 * verify.h - minisign signatures and bundle manifests, for `alog-edge verify` (libsodium).
 * Not part of the public API.
 *
 * minisign's formats: a public key file is "untrusted comment: ..." and the base64 of
 * "Ed" || key id (8) || Ed25519 public key (32). A signature file has four lines: the untrusted
 * comment, base64 of algorithm (2) || key id (8) || signature (64), "trusted comment: <text>",
 * and base64 of the global signature (64) over signature || text. Algorithm "ED" signs the
 * BLAKE2b-512 of the data (minisign's default), legacy "Ed" the data itself.
 */
#ifndef ALOG_EDGE_VERIFY_H
#define ALOG_EDGE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define AE_MINISIG_COMMENT_MAX 8192
#define AE_MANIFEST_MAX_BYTES (16u << 20)
#define AE_MANIFEST_MAX_FILES 100000

typedef struct ae_minisig {
    unsigned char alg[2];
    unsigned char key_id[8];
    unsigned char sig[64];
    char trusted_comment[AE_MINISIG_COMMENT_MAX + 1];
    size_t trusted_comment_len;
    unsigned char global_sig[64];
} ae_minisig;

typedef struct ae_minisign_key {
    unsigned char key_id[8];
    unsigned char pk[32];
} ae_minisign_key;

typedef struct ae_manifest_file {
    char *path;
    uint64_t size;
    unsigned mode;              /* 0644 or 0755 */
    unsigned char sha256[32];
    char elf_machine[8];        /* "x86_64", "aarch64" or "" (not an ELF file) */
} ae_manifest_file;

typedef struct ae_manifest {
    char version[65];
    char target[8];
    char key_id[17];
    char min_glibc[16];         /* "" when none is recorded */
    int64_t created;
    size_t n_files;
    ae_manifest_file *files;    /* sorted by path */
} ae_manifest;

/*
 * Parse a minisign signature file (4 lines; "\r\n" accepted).
 * @return AE_OK and *out; AE_ERR_FORMAT with the reason in why; AE_ERR_INVALID_ARGUMENT for NULL.
 */
ae_status ae_minisig_parse(const char *text, size_t len, ae_minisig *out, char *why, size_t why_len);

/*
 * Parse a minisign public key: its file (comment line + key line) or the key line alone.
 * @return AE_OK and *out; AE_ERR_FORMAT with the reason in why; AE_ERR_INVALID_ARGUMENT for NULL.
 */
ae_status ae_minisign_key_parse(const char *text, size_t len, ae_minisign_key *out, char *why,
                                size_t why_len);

/*
 * Check a signature of msg and its trusted comment with a key whose id matches the signature's.
 * @return AE_OK when both verify; AE_ERR_FORMAT with the reason in why (another key id, a bad
 *         signature or comment signature, libsodium unusable); AE_ERR_INVALID_ARGUMENT for NULL.
 */
ae_status ae_minisig_verify(const ae_minisig *sig, const ae_minisign_key *key,
                            const unsigned char *msg, size_t len, char *why, size_t why_len);

/*
 * A key id as minisign prints it: the 8 bytes as a little-endian number, 16 upper-case hex digits.
 * @return out.
 */
char *ae_key_id_text(const unsigned char id[8], char out[17]);

/*
 * Parse and check MANIFEST.json: format 1, version, target, key id, glibc, created, and files
 * (safe relative paths, sorted and unique, size, mode 0644/0755, sha256, elf_machine) whose
 * sha256sum lines give the manifest's "parts" digests and byte counts.
 * @return AE_OK and *out (ae_manifest_free it); AE_ERR_FORMAT with the reason in why;
 *         AE_ERR_TOO_LARGE, AE_ERR_NO_MEMORY or AE_ERR_INVALID_ARGUMENT.
 */
ae_status ae_manifest_parse(const char *json, size_t len, ae_manifest **out, char *why,
                            size_t why_len);

/* Free a manifest; NULL is a no-op. */
void ae_manifest_free(ae_manifest *m);

/*
 * Compare dotted versions ("2.36" vs "2.4").
 * @return <0, 0 or >0 as a is older, equal or newer than b (missing parts count as 0).
 */
int ae_version_compare(const char *a, const char *b);

#endif /* ALOG_EDGE_VERIFY_H */

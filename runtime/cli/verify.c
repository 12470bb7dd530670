/*
 * verify.c - `alog-edge verify`: is an unpacked bundle signed by a trusted key and complete?
 *
 * Order: the minisign signature of MANIFEST.json (and of its trusted comment) against the trusted
 * keys, then the manifest itself (target, glibc of this device), then every file's type, size,
 * mode and sha256, and nothing unlisted beside them. One line per problem on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#if defined(__GLIBC__)
#include <gnu/libc-version.h>
#endif

#include "cli.h"
#include "cli_borrowed.h"

enum { EXIT_NOT_VERIFIED = 5 };

#define DEFAULT_KEYS "/opt/alog-edge/keys"
#define MAX_KEYS 64

static const char VERIFY_USAGE[] =
    "usage: alog-edge verify [--keys DIR|FILE] [--manifest-only] <bundle_dir>\n"
    "\n"
    "Checks an unpacked bundle before it is trusted: the minisign signature of\n"
    "<bundle_dir>/MANIFEST.json (MANIFEST.json.minisig, prehashed ED or legacy Ed, and the\n"
    "signature of its trusted comment) against the trusted public keys, then the manifest\n"
    "(its target is this device's architecture, its min_glibc is not newer than this\n"
    "device's glibc), then every listed file: a regular file (not a link) of the listed size,\n"
    "mode and sha256; and no file beside them that the manifest does not list.\n"
    "Prints one line on stdout when the bundle verifies, one line per problem on stderr\n"
    "(error: <file>: <what is wrong>) when it does not.\n"
    "\n"
    "options:\n"
    "  --keys DIR|FILE  the trusted minisign public keys: every *.pub in DIR, or one key file\n"
    "                   (default: $ALOG_EDGE_KEYS, else " DEFAULT_KEYS ")\n"
    "  --manifest-only  check the signature and the manifest only, not the files (before\n"
    "                   an installer unpacks the rest)\n"
    "  -h, --help       print this help and exit\n"
    "\n"
    "Exit status: 0 the bundle verifies; 5 it does not (signature, key, manifest or a file);\n"
    "1 error (out of memory, an unreadable keys folder); 2 usage error.\n";

typedef struct trusted {
    ae_minisign_key keys[MAX_KEYS];
    size_t count;
} trusted;

static int add_key_file(trusted *t, const char *path)
{
    char err[512], why[256];
    char *text = NULL;
    size_t len = 0;
    if (ae_read_file(path, 64 * 1024, &text, &len, err, sizeof err) != AE_OK) {
        fprintf(stderr, "warning: %s\n", err);
        return 0;
    }
    int ok = t->count < MAX_KEYS &&
             ae_minisign_key_parse(text, len, &t->keys[t->count], why, sizeof why) == AE_OK;
    if (ok)
        t->count++;
    else
        fprintf(stderr, "warning: %s: %s (ignored)\n", path,
                t->count < MAX_KEYS ? why : "more than 64 keys");
    free(text);
    return ok;
}

/* @return 0, or -1 when the keys cannot be read at all (printed). */
static int load_keys(const char *where, trusted *t)
{
    struct stat st;
    if (stat(where, &st) != 0) {
        fprintf(stderr, "error: %s: %s\n", where, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        add_key_file(t, where);
        return 0;
    }
    DIR *d = opendir(where);
    if (d == NULL) {
        fprintf(stderr, "error: %s: %s\n", where, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n <= 4 || strcmp(e->d_name + n - 4, ".pub") != 0)
            continue;
        char *path = join_path(where, e->d_name);
        if (path == NULL) {
            closedir(d);
            fputs("error: out of memory\n", stderr);
            return -1;
        }
        add_key_file(t, path);
        free(path);
    }
    closedir(d);
    return 0;
}

/* The signature check. @return 0 when MANIFEST.json is signed by a trusted key (*key_id set). */
static int check_signature(const char *dir, const char *manifest, size_t manifest_len,
                           const trusted *t, char key_id[17])
{
    char err[1024], why[512], id[17];
    char *sig_path = join_path(dir, "MANIFEST.json.minisig");
    char *text = NULL;
    size_t len = 0;
    int rc = -1;
    ae_minisig *sig = malloc(sizeof *sig);
    if (sig_path == NULL || sig == NULL) {
        fputs("error: out of memory\n", stderr);
        goto done;
    }
    if (ae_read_file(sig_path, 64 * 1024, &text, &len, err, sizeof err) != AE_OK) {
        fprintf(stderr, "error: %s (the bundle is unsigned)\n", err);
        goto done;
    }
    if (ae_minisig_parse(text, len, sig, why, sizeof why) != AE_OK) {
        fprintf(stderr, "error: %s: %s\n", sig_path, why);
        goto done;
    }
    const ae_minisign_key *key = NULL;
    for (size_t i = 0; i < t->count && key == NULL; i++)
        if (memcmp(t->keys[i].key_id, sig->key_id, 8) == 0)
            key = &t->keys[i];
    if (key == NULL) {
        fprintf(stderr, "error: %s: signed by key %s, which is not a trusted key (%zu trusted)\n",
                sig_path, ae_key_id_text(sig->key_id, id), t->count);
        goto done;
    }
    if (ae_minisig_verify(sig, key, (const unsigned char *)manifest, manifest_len, why,
                          sizeof why) != AE_OK) {
        fprintf(stderr, "error: %s: %s: MANIFEST.json or its signature was altered\n", sig_path,
                why);
        goto done;
    }
    ae_key_id_text(key->key_id, key_id);
    rc = 0;
done:
    free(sig_path);
    free(text);
    free(sig);
    return rc;
}

/* The manifest's demands on this device. @return the number of problems (printed). */
static int check_device(const char *path, const ae_manifest *m, const char *signer)
{
    int problems = 0;
    if (strcmp(m->key_id, signer) != 0) {
        fprintf(stderr, "error: %s: names key %s, but key %s signed it\n", path, m->key_id, signer);
        problems++;
    }
    if (strcmp(m->target, AE_TARGET) != 0) {
        fprintf(stderr, "error: %s: the bundle is for %s, this device is %s\n", path, m->target,
                AE_TARGET);
        problems++;
    }
    if (m->min_glibc[0] != '\0') {
#if defined(__GLIBC__)
        const char *have = gnu_get_libc_version();
        if (ae_version_compare(have, m->min_glibc) < 0) {
            fprintf(stderr, "error: %s: the bundle needs glibc %s, this device has %s\n", path,
                    m->min_glibc, have);
            problems++;
        }
#else
        fprintf(stderr, "error: %s: the bundle needs glibc %s, this device's C library is not glibc\n",
                path, m->min_glibc);
        problems++;
#endif
    }
    return problems;
}

/* sha256 of a regular file. @return 0, or -1 with errno. */
static int sha256_file(const char *path, unsigned char out[32])
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
    }
    close(fd);
    crypto_hash_sha256_final(&st, out);
    return 0;
}

/* @return 1 when the file is a regular file of the listed size, mode and sha256 (else printed). */
static int check_file(const char *dir, const ae_manifest_file *f)
{
    char *path = join_path(dir, f->path);
    if (path == NULL) {
        fputs("error: out of memory\n", stderr);
        return 0;
    }
    struct stat st;
    unsigned char digest[32];
    int ok = 0;
    if (lstat(path, &st) != 0)
        fprintf(stderr, "error: %s: listed in the manifest but %s\n", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        fprintf(stderr, "error: %s: not a regular file (%s)\n", path,
                S_ISLNK(st.st_mode) ? "a symbolic link" : "a folder or special file");
    else if ((uint64_t)st.st_size != f->size)
        fprintf(stderr, "error: %s: %lld bytes, the manifest says %llu\n", path,
                (long long)st.st_size, (unsigned long long)f->size);
    else if ((st.st_mode & 07777) != f->mode)
        fprintf(stderr, "error: %s: mode %04o, the manifest says %04o\n", path,
                (unsigned)(st.st_mode & 07777), f->mode);
    else if (sha256_file(path, digest) != 0)
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
    else if (sodium_memcmp(digest, f->sha256, 32) != 0)
        fprintf(stderr, "error: %s: sha256 differs from the manifest\n", path);
    else
        ok = 1;
    free(path);
    return ok;
}

static int compare_path(const void *key, const void *item)
{
    return strcmp((const char *)key, ((const ae_manifest_file *)item)->path);
}

/* Every entry under dir/rel that the manifest does not list. @return problems (printed). */
static int check_unlisted(const char *dir, const char *rel, const ae_manifest *m, int depth)
{
    char *path = rel[0] ? join_path(dir, rel) : strdup(dir);
    if (path == NULL) {
        fputs("error: out of memory\n", stderr);
        return 1;
    }
    DIR *d = depth > 32 ? NULL : opendir(path);
    if (d == NULL) {
        fprintf(stderr, "error: %s: %s\n", path, depth > 32 ? "folders nested too deep" : strerror(errno));
        free(path);
        return 1;
    }
    int problems = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (!rel[0] && (strcmp(e->d_name, "MANIFEST.json") == 0 ||
                        strcmp(e->d_name, "MANIFEST.json.minisig") == 0))
            continue;
        char *child = rel[0] ? join_path(rel, e->d_name) : strdup(e->d_name);
        char *full = child ? join_path(dir, child) : NULL;
        struct stat st;
        if (child == NULL || full == NULL) {
            fputs("error: out of memory\n", stderr);
            problems++;
        } else if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            problems += check_unlisted(dir, child, m, depth + 1);
        } else if (bsearch(child, m->files, m->n_files, sizeof *m->files, compare_path) == NULL) {
            fprintf(stderr, "error: %s: not listed in the manifest\n", full);
            problems++;
        }
        free(child);
        free(full);
    }
    closedir(d);
    free(path);
    return problems;
}

int cmd_verify(int argc, char **argv)
{
    const char *dir = NULL;
    const char *keys_at = getenv("ALOG_EDGE_KEYS");
    int manifest_only = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(VERIFY_USAGE, stdout);
            return EXIT_OK;
        } else if (strcmp(a, "--keys") == 0) {
            if (i + 1 >= argc)
                return usage_error("verify", 1, "%s needs a folder or a key file", a);
            keys_at = argv[++i];
        } else if (strcmp(a, "--manifest-only") == 0) {
            manifest_only = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("verify", 1, "unknown option %s", a);
        } else if (dir == NULL) {
            dir = a;
        } else {
            return usage_error("verify", 1, "unexpected argument %s", a);
        }
    }
    if (dir == NULL)
        return usage_error("verify", 0, "%s needs the unpacked bundle's folder", "verify");
    if (keys_at == NULL || keys_at[0] == '\0')
        keys_at = DEFAULT_KEYS;
    if (sodium_init() < 0) {
        fputs("error: libsodium cannot be initialised\n", stderr);
        return EXIT_ERROR;
    }

    int rc = EXIT_NOT_VERIFIED;
    char err[1024], why[512], signer[17];
    char *manifest_path = join_path(dir, "MANIFEST.json");
    char *text = NULL;
    size_t len = 0;
    ae_manifest *m = NULL;
    trusted *t = calloc(1, sizeof *t);
    if (manifest_path == NULL || t == NULL) {
        fputs("error: out of memory\n", stderr);
        rc = EXIT_ERROR;
        goto done;
    }
    if (load_keys(keys_at, t) != 0) {
        rc = EXIT_ERROR;
        goto done;
    }
    if (t->count == 0) {
        fprintf(stderr, "error: %s: no trusted minisign public key (*.pub)\n", keys_at);
        goto done;
    }
    ae_status st = ae_read_file(manifest_path, AE_MANIFEST_MAX_BYTES, &text, &len, err, sizeof err);
    if (st != AE_OK) {
        fprintf(stderr, "error: %s\n", err);
        goto done;
    }
    if (check_signature(dir, text, len, t, signer) != 0)
        goto done;
    st = ae_manifest_parse(text, len, &m, why, sizeof why);
    if (st != AE_OK) {
        fprintf(stderr, "error: %s: %s\n", manifest_path, why);
        rc = st == AE_ERR_NO_MEMORY ? EXIT_ERROR : EXIT_NOT_VERIFIED;
        goto done;
    }
    int problems = check_device(manifest_path, m, signer);
    for (size_t i = 0; !manifest_only && i < m->n_files; i++)
        problems += !check_file(dir, &m->files[i]);
    if (!manifest_only)
        problems += check_unlisted(dir, "", m, 0);
    if (problems == 0) {
        printf("verified %s%s: alog-edge %s for %s, %zu files, signed by key %s\n", dir,
               manifest_only ? " (signature and manifest)" : "", m->version, m->target, m->n_files,
               signer);
        rc = EXIT_OK;
    }
done:
    ae_manifest_free(m);
    free(text);
    free(manifest_path);
    free(t);
    return rc;
}

/*
 * verify.c - minisign signature, public key and MANIFEST.json parsing and checking (libsodium,
 * cJSON). See verify.h.
 */
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "jsonfile.h"

#define UNTRUSTED_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX "trusted comment: "

/* The next line of text[*pos..len) without its "\n" (and "\r"); 0 at the end. */
static int next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *n)
{
    if (*pos >= len)
        return 0;
    const char *start = text + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    size_t l = nl ? (size_t)(nl - start) : len - *pos;
    *pos += l + (nl ? 1 : 0);
    if (l > 0 && start[l - 1] == '\r')
        l--;
    *line = start;
    *n = l;
    return 1;
}

/* Strict base64 (the original alphabet, with padding) of exactly `want` bytes. */
static int decode_exact(const char *b64, size_t n, unsigned char *out, size_t want)
{
    unsigned char buf[128];
    size_t got = 0;
    const char *end = NULL;
    if (want > sizeof buf || n == 0 || n > 2 * sizeof buf)
        return 0;
    if (sodium_base642bin(buf, sizeof buf, b64, n, NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 || end != b64 + n || got != want)
        return 0;
    memcpy(out, buf, want);
    return 1;
}

static int starts_with(const char *line, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && memcmp(line, prefix, p) == 0;
}

ae_status ae_minisig_parse(const char *text, size_t len, ae_minisig *out, char *why, size_t why_len)
{
    if (text == NULL || out == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, why, why_len, "NULL argument");
    if (sodium_init() < 0)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "libsodium cannot be initialised");
    memset(out, 0, sizeof *out);
    const char *lines[4];
    size_t lens[4], pos = 0, count = 0;
    const char *line;
    size_t n;
    while (next_line(text, len, &pos, &line, &n)) {
        if (count == 4) {
            if (n == 0 && pos >= len)
                break; /* a final empty line */
            return ae_fail(AE_ERR_FORMAT, why, why_len, "more than 4 lines");
        }
        lines[count] = line;
        lens[count++] = n;
    }
    if (count != 4)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "%zu lines, a minisign signature has 4", count);
    if (!starts_with(lines[0], lens[0], UNTRUSTED_PREFIX))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "line 1 is not an untrusted comment");
    unsigned char sig_line[74];
    if (!decode_exact(lines[1], lens[1], sig_line, sizeof sig_line))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "line 2 is not the base64 of a signature");
    if (memcmp(sig_line, "ED", 2) != 0 && memcmp(sig_line, "Ed", 2) != 0)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "unknown signature algorithm (not ED or Ed)");
    memcpy(out->alg, sig_line, 2);
    memcpy(out->key_id, sig_line + 2, 8);
    memcpy(out->sig, sig_line + 10, 64);
    if (!starts_with(lines[2], lens[2], TRUSTED_PREFIX))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "line 3 is not a trusted comment");
    size_t tlen = lens[2] - strlen(TRUSTED_PREFIX);
    if (tlen > AE_MINISIG_COMMENT_MAX)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "trusted comment longer than %d bytes",
                       AE_MINISIG_COMMENT_MAX);
    memcpy(out->trusted_comment, lines[2] + strlen(TRUSTED_PREFIX), tlen);
    out->trusted_comment[tlen] = '\0';
    out->trusted_comment_len = tlen;
    if (!decode_exact(lines[3], lens[3], out->global_sig, sizeof out->global_sig))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "line 4 is not the base64 of a comment signature");
    return AE_OK;
}

ae_status ae_minisign_key_parse(const char *text, size_t len, ae_minisign_key *out, char *why,
                                size_t why_len)
{
    if (text == NULL || out == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, why, why_len, "NULL argument");
    if (sodium_init() < 0)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "libsodium cannot be initialised");
    memset(out, 0, sizeof *out);
    size_t pos = 0, n = 0, count = 0;
    const char *line = NULL, *key = NULL;
    size_t key_len = 0;
    while (next_line(text, len, &pos, &line, &n)) {
        if (n == 0 && pos >= len)
            break;
        count++;
        if (count == 1 && starts_with(line, n, UNTRUSTED_PREFIX))
            continue;
        if (key != NULL)
            return ae_fail(AE_ERR_FORMAT, why, why_len, "more than one key line");
        key = line;
        key_len = n;
    }
    unsigned char raw[42];
    if (key == NULL || !decode_exact(key, key_len, raw, sizeof raw))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "not a minisign public key");
    if (memcmp(raw, "Ed", 2) != 0)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "not an Ed25519 minisign public key");
    memcpy(out->key_id, raw + 2, 8);
    memcpy(out->pk, raw + 10, 32);
    return AE_OK;
}

char *ae_key_id_text(const unsigned char id[8], char out[17])
{
    static const char hex[] = "0123456789ABCDEF";
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[id[7 - i] >> 4];
        out[2 * i + 1] = hex[id[7 - i] & 15];
    }
    out[16] = '\0';
    return out;
}

ae_status ae_minisig_verify(const ae_minisig *sig, const ae_minisign_key *key,
                            const unsigned char *msg, size_t len, char *why, size_t why_len)
{
    if (sig == NULL || key == NULL || (msg == NULL && len > 0))
        return ae_fail(AE_ERR_INVALID_ARGUMENT, why, why_len, "NULL argument");
    if (sodium_init() < 0)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "libsodium cannot be initialised");
    char a[17], b[17];
    if (memcmp(sig->key_id, key->key_id, 8) != 0)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "signed by key %s, not by key %s",
                       ae_key_id_text(sig->key_id, a), ae_key_id_text(key->key_id, b));
    int ok;
    if (memcmp(sig->alg, "ED", 2) == 0) {
        unsigned char digest[crypto_generichash_BYTES_MAX];
        if (crypto_generichash(digest, sizeof digest, msg, len, NULL, 0) != 0)
            return ae_fail(AE_ERR_FORMAT, why, why_len, "BLAKE2b failed");
        ok = crypto_sign_verify_detached(sig->sig, digest, sizeof digest, key->pk) == 0;
    } else {
        ok = crypto_sign_verify_detached(sig->sig, msg, len, key->pk) == 0;
    }
    if (!ok)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "the signature does not verify with key %s",
                       ae_key_id_text(key->key_id, a));
    unsigned char global[64 + AE_MINISIG_COMMENT_MAX];
    memcpy(global, sig->sig, 64);
    memcpy(global + 64, sig->trusted_comment, sig->trusted_comment_len);
    if (crypto_sign_verify_detached(sig->global_sig, global, 64 + sig->trusted_comment_len,
                                    key->pk) != 0)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "the trusted comment's signature does not verify");
    return AE_OK;
}

int ae_version_compare(const char *a, const char *b)
{
    while (*a || *b) {
        unsigned long x = strtoul(a, (char **)&a, 10), y = strtoul(b, (char **)&b, 10);
        if (x != y)
            return x < y ? -1 : 1;
        if (*a == '.')
            a++;
        if (*b == '.')
            b++;
        if ((*a && (*a < '0' || *a > '9')) || (*b && (*b < '0' || *b > '9')))
            return strcmp(a, b);
    }
    return 0;
}

/* --- MANIFEST.json ------------------------------------------------------------------------- */

static int only_chars(const char *s, const char *allowed)
{
    return s[strspn(s, allowed)] == '\0';
}

#define SAFE_NAME_CHARS "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_+.@-"

/* A relative path of safe names: no empty, "." or ".." component, no leading "/". */
static int safe_path(const char *p)
{
    if (*p == '\0' || strlen(p) > 1024)
        return 0;
    const char *s = p;
    while (1) {
        size_t n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!strchr(SAFE_NAME_CHARS, s[i]) || s[i] == '\0')
                return 0;
        if (s[n] == '\0')
            return 1;
        s += n + 1;
    }
}

/* What VERSION_RE of alog_edge.delivery.manifest accepts: [0-9A-Za-z][0-9A-Za-z._+-]{0,63}. */
static int safe_version(const char *v)
{
    static const char alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    return v[0] != '\0' && strchr(alnum, v[0]) && strlen(v) <= 64 &&
           v[strspn(v, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._+-")] == '\0';
}

static int hex_bytes(const char *s, unsigned char *out, size_t n)
{
    if (strlen(s) != 2 * n || !only_chars(s, "0123456789abcdef"))
        return 0;
    size_t bin_len = 0;
    return sodium_hex2bin(out, n, s, 2 * n, NULL, &bin_len, NULL) == 0 && bin_len == n;
}

static int has_duplicate_keys(const cJSON *object)
{
    for (const cJSON *a = object->child; a != NULL; a = a->next)
        for (const cJSON *b = a->next; b != NULL; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return 1;
    return 0;
}

static const char *string_field(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static int copy_string(char *dst, size_t cap, const char *src)
{
    if (src == NULL || strlen(src) >= cap)
        return 0;
    memcpy(dst, src, strlen(src) + 1);
    return 1;
}

static ae_status parse_file(const cJSON *item, ae_manifest_file *f, size_t i, char *why, size_t why_len)
{
    if (!cJSON_IsObject(item) || has_duplicate_keys(item))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "files[%zu] is not an object with unique keys", i);
    const char *path = string_field(item, "path");
    if (path == NULL || !safe_path(path))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "files[%zu]: bad path", i);
    if (strcmp(path, "MANIFEST.json") == 0 || strcmp(path, "MANIFEST.json.minisig") == 0)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "%s lists itself", path);
    if ((f->path = strdup(path)) == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, why, why_len, "out of memory");
    int64_t size;
    if (!ae_json_int(cJSON_GetObjectItemCaseSensitive(item, "size"), 0, (int64_t)1 << 53, &size))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "%s: bad size", path);
    f->size = (uint64_t)size;
    const char *mode = string_field(item, "mode");
    if (mode == NULL || (strcmp(mode, "0644") != 0 && strcmp(mode, "0755") != 0))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "%s: mode is not \"0644\" or \"0755\"", path);
    f->mode = strcmp(mode, "0755") == 0 ? 0755u : 0644u;
    const char *sha = string_field(item, "sha256");
    if (sha == NULL || !hex_bytes(sha, f->sha256, 32))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "%s: bad sha256", path);
    const cJSON *machine = cJSON_GetObjectItemCaseSensitive(item, "elf_machine");
    if (machine != NULL && !cJSON_IsNull(machine)) {
        if (!cJSON_IsString(machine) || (strcmp(machine->valuestring, "x86_64") != 0 &&
                                         strcmp(machine->valuestring, "aarch64") != 0))
            return ae_fail(AE_ERR_FORMAT, why, why_len, "%s: bad elf_machine", path);
        memcpy(f->elf_machine, machine->valuestring, strlen(machine->valuestring) + 1);
    }
    return AE_OK;
}

/* The sha256 of "<sha256 hex>  <path>\n" lines of the files of one part, and their bytes. */
static void part_digest(const ae_manifest *m, int models, unsigned char digest[32], uint64_t *bytes)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    *bytes = 0;
    for (size_t i = 0; i < m->n_files; i++) {
        const ae_manifest_file *f = &m->files[i];
        if ((strncmp(f->path, "models/", 7) == 0) != models)
            continue;
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, f->sha256, 32);
        crypto_hash_sha256_update(&st, (const unsigned char *)hex, 64);
        crypto_hash_sha256_update(&st, (const unsigned char *)"  ", 2);
        crypto_hash_sha256_update(&st, (const unsigned char *)f->path, strlen(f->path));
        crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
        *bytes += f->size;
    }
    crypto_hash_sha256_final(&st, digest);
}

static ae_status check_part(const ae_manifest *m, const cJSON *parts, const char *name, char *why,
                            size_t why_len)
{
    const cJSON *part = cJSON_GetObjectItemCaseSensitive(parts, name);
    unsigned char want[32], got[32];
    uint64_t bytes;
    int64_t listed;
    const char *sha = cJSON_IsObject(part) ? string_field(part, "sha256") : NULL;
    if (sha == NULL || !hex_bytes(sha, want, 32) ||
        !ae_json_int(cJSON_GetObjectItemCaseSensitive(part, "bytes"), 0, INT64_MAX, &listed))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "parts.%s is not {\"sha256\", \"bytes\"}", name);
    part_digest(m, strcmp(name, "models") == 0, got, &bytes);
    if (memcmp(want, got, 32) != 0 || (uint64_t)listed != bytes)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "parts.%s does not match the files listed", name);
    return AE_OK;
}

static ae_status parse_root(const cJSON *root, ae_manifest *m, char *why, size_t why_len)
{
    if (!cJSON_IsObject(root) || has_duplicate_keys(root))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "not a JSON object with unique keys");
    int64_t format, created;
    if (!ae_json_int(cJSON_GetObjectItemCaseSensitive(root, "format"), 1, 1, &format))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "format is not 1");
    const char *version = string_field(root, "version");
    if (!copy_string(m->version, sizeof m->version, version) || !safe_version(version))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "bad version");
    const char *target = string_field(root, "target");
    if (target == NULL || (strcmp(target, "x86_64") != 0 && strcmp(target, "aarch64") != 0))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "target is not x86_64 or aarch64");
    memcpy(m->target, target, strlen(target) + 1);
    const char *key_id = string_field(root, "key_id");
    if (!copy_string(m->key_id, sizeof m->key_id, key_id) || strlen(key_id) != 16 ||
        !only_chars(key_id, "0123456789ABCDEF"))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "bad key_id");
    const cJSON *glibc = cJSON_GetObjectItemCaseSensitive(root, "min_glibc");
    if (glibc != NULL && !cJSON_IsNull(glibc) &&
        (!cJSON_IsString(glibc) || !copy_string(m->min_glibc, sizeof m->min_glibc, glibc->valuestring) ||
         !only_chars(m->min_glibc, "0123456789.") || m->min_glibc[0] == '.' || m->min_glibc[0] == '\0'))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "bad min_glibc");
    if (!ae_json_int(cJSON_GetObjectItemCaseSensitive(root, "created"), 0, INT64_MAX / 2, &created))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "bad created time");
    m->created = created;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    int n = cJSON_IsArray(files) ? cJSON_GetArraySize(files) : 0;
    if (n <= 0 || n > AE_MANIFEST_MAX_FILES)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "files is not a list of 1 to %d files",
                       AE_MANIFEST_MAX_FILES);
    if ((m->files = calloc((size_t)n, sizeof *m->files)) == NULL)
        return ae_fail(AE_ERR_NO_MEMORY, why, why_len, "out of memory");
    int has_binary = 0;
    for (const cJSON *item = files->child; item != NULL; item = item->next) {
        ae_manifest_file *f = &m->files[m->n_files];
        ae_status st = parse_file(item, f, m->n_files, why, why_len);
        m->n_files++;
        if (st != AE_OK)
            return st;
        if (m->n_files > 1 && strcmp(m->files[m->n_files - 2].path, f->path) >= 0)
            return ae_fail(AE_ERR_FORMAT, why, why_len, "files are not sorted by path (at %s)", f->path);
        if (f->elf_machine[0] && strcmp(f->elf_machine, m->target) != 0)
            return ae_fail(AE_ERR_FORMAT, why, why_len, "%s is built for %s, the bundle is for %s",
                           f->path, f->elf_machine, m->target);
        has_binary |= strcmp(f->path, "bin/alog-edge") == 0;
    }
    if (!has_binary)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "bin/alog-edge is not listed");
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(root, "parts");
    ae_status st = check_part(m, parts, "runtime", why, why_len);
    return st != AE_OK ? st : check_part(m, parts, "models", why, why_len);
}

ae_status ae_manifest_parse(const char *json, size_t len, ae_manifest **out, char *why, size_t why_len)
{
    if (json == NULL || out == NULL)
        return ae_fail(AE_ERR_INVALID_ARGUMENT, why, why_len, "NULL argument");
    *out = NULL;
    if (len > AE_MANIFEST_MAX_BYTES)
        return ae_fail(AE_ERR_TOO_LARGE, why, why_len, "larger than %u bytes", AE_MANIFEST_MAX_BYTES);
    if (sodium_init() < 0)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "libsodium cannot be initialised");
    size_t bad = 0;
    if (!ae_utf8_valid((const unsigned char *)json, len, &bad))
        return ae_fail(AE_ERR_FORMAT, why, why_len, "not valid UTF-8 (byte %zu)", bad);
    if (memchr(json, '\0', len) != NULL || ae_json_find_nul_escape(json, len) != (size_t)-1)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "holds a NUL character");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (root == NULL)
        return ae_fail(AE_ERR_FORMAT, why, why_len, "not JSON");
    while (end != NULL && end < json + len && strchr(" \t\r\n", *end))
        end++;
    if (end != json + len) {
        cJSON_Delete(root);
        return ae_fail(AE_ERR_FORMAT, why, why_len, "text after the JSON object");
    }
    ae_manifest *m = calloc(1, sizeof *m);
    if (m == NULL) {
        cJSON_Delete(root);
        return ae_fail(AE_ERR_NO_MEMORY, why, why_len, "out of memory");
    }
    ae_status st = parse_root(root, m, why, why_len);
    cJSON_Delete(root);
    if (st != AE_OK) {
        ae_manifest_free(m);
        return st;
    }
    *out = m;
    return AE_OK;
}

void ae_manifest_free(ae_manifest *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_files; i++)
        free(m->files[i].path);
    free(m->files);
    free(m);
}

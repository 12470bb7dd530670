/*
 * common.c - status texts, version, error messages, file reading, UTF-8 and hashing helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

const char *ae_strerror(ae_status status)
{
    switch (status) {
    case AE_OK: return "success";
    case AE_ERR_INVALID_ARGUMENT: return "invalid argument";
    case AE_ERR_NO_MEMORY: return "out of memory";
    case AE_ERR_IO: return "input/output error";
    case AE_ERR_TOO_LARGE: return "too large";
    case AE_ERR_FORMAT: return "malformed content";
    case AE_ERR_NOT_FOUND: return "not found";
    case AE_ERR_ONNXRUNTIME: return "onnxruntime error";
    case AE_BLANK: return "blank line";
    case AE_STOPPED: return "stopped by the callback";
    }
    return "unknown status";
}

const char *ae_version(void)
{
    return AE_VERSION_STRING;
}

unsigned ae_version_number(void)
{
    return AE_VERSION_NUMBER;
}

ae_status ae_vfail(ae_status status, char *err, size_t err_len, const char *fmt, va_list ap)
{
    if (err != NULL && err_len > 0) {
        if (vsnprintf(err, err_len, fmt, ap) < 0)
            err[0] = '\0';
    }
    return status;
}

ae_status ae_vfail_file(ae_status status, char *err, size_t err_len, const char *path, const char *fmt,
                        va_list ap)
{
    char msg[768];
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        msg[0] = '\0';
    return ae_fail(status, err, err_len, "%s: %s", path, msg);
}

ae_status ae_fail(ae_status status, char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ae_vfail(status, err, err_len, fmt, ap);
    va_end(ap);
    return status;
}

/* strerror() is not thread-safe; this is the XSI strerror_r of _POSIX_C_SOURCE. */
static const char *errno_text(int errnum, char *buf, size_t len)
{
    if (strerror_r(errnum, buf, len) != 0)
        snprintf(buf, len, "error %d", errnum);
    return buf;
}

ae_status ae_check_regular_file(const char *path, char *err, size_t err_len)
{
    char why[128];
    struct stat st;
    if (stat(path, &st) != 0)
        return ae_fail(AE_ERR_IO, err, err_len, "%s: %s", path, errno_text(errno, why, sizeof why));
    if (!S_ISREG(st.st_mode))
        return ae_fail(AE_ERR_IO, err, err_len, "%s: not a regular file", path);
    if (access(path, R_OK) != 0)
        return ae_fail(AE_ERR_IO, err, err_len, "%s: %s", path, errno_text(errno, why, sizeof why));
    return AE_OK;
}

ae_status ae_read_file(const char *path, size_t max_bytes, char **data, size_t *len, char *err,
                       size_t err_len)
{
    char why[128];
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ae_fail(AE_ERR_IO, err, err_len, "%s: %s", path, errno_text(errno, why, sizeof why));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ae_fail(AE_ERR_IO, err, err_len, "%s: %s", path, errno_text(e, why, sizeof why));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ae_fail(AE_ERR_IO, err, err_len, "%s: not a regular file", path);
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size > (uintmax_t)max_bytes) {
        close(fd);
        return ae_fail(AE_ERR_TOO_LARGE, err, err_len,
                       "%s: file too large (%jd bytes; the limit is %zu)", path,
                       (intmax_t)st.st_size, max_bytes);
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (buf == NULL) {
        close(fd);
        return ae_fail(AE_ERR_NO_MEMORY, err, err_len, "%s: out of memory (%zu bytes)", path,
                       size + 1);
    }
    size_t got = 0;
    for (;;) {
        /* Read one byte past the size seen by fstat, to notice a file that grew meanwhile. */
        char extra;
        char *dst = got < size ? buf + got : &extra;
        size_t want = got < size ? size - got : 1;
        ssize_t n = read(fd, dst, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return ae_fail(AE_ERR_IO, err, err_len, "%s: %s", path, errno_text(e, why, sizeof why));
        }
        if (n == 0)
            break;
        if (got >= size) {
            free(buf);
            close(fd);
            return ae_fail(AE_ERR_IO, err, err_len, "%s: the file changed while it was read",
                           path);
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return AE_OK;
}

int ae_utf8_valid(const unsigned char *s, size_t len, size_t *bad_offset)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* no overlong forms */
            else if (c == 0xED)
                hi = 0x9F; /* no UTF-16 surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* no overlong forms */
            else if (c == 0xF4)
                hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            goto bad;
        }
        if (len - i <= need)
            goto bad;
        if (s[i + 1] < lo || s[i + 1] > hi)
            goto bad;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                goto bad;
        i += need + 1;
    }
    return 1;
bad:
    if (bad_offset != NULL)
        *bad_offset = i;
    return 0;
}

uint64_t ae_fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3u;
    }
    return h;
}

void ae_json_line_col(const char *text, size_t offset, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

size_t ae_json_find_nul_escape(const char *text, size_t len)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            if (text[i] == '"')
                in_string = 1;
        } else if (text[i] == '"') {
            in_string = 0;
        } else if (text[i] == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0)
                return i;
            i++; /* skip the escaped character */
        }
    }
    return (size_t)-1;
}

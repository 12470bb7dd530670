/*
 * follow.c - lines of a file that grows (tail -F) or of a pipe, for `alog-edge run --follow`.
 *
 * A regular file is read to its end, then polled: when its path names another file (rotation)
 * the old one is read to its end and the new one from its start; when it shrinks below the read
 * offset, or the bytes just before the offset changed (truncated and written again past the
 * offset before the poll saw it), it is read again from its start. A pipe is read as data
 * arrives.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alog_edge.h"
#include "cli.h"

int follow_open(follower *f, const char *path)
{
    memset(f, 0, sizeof f[0]);
    f->fd = -1;
    f->path = path;
    f->cap = 64 * 1024;
    if ((f->buf = calloc(1, f->cap)) == NULL) { /* zeroed: see reader_fill */
        errno = ENOMEM;
        return -1;
    }
    if (path == NULL) {
        f->fd = STDIN_FILENO;
    } else if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        return -1;
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return -1;
    f->regular = S_ISREG(st.st_mode);
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    return 0;
}

void follow_close(follower *f)
{
    if (f->fd >= 0 && f->path != NULL)
        close(f->fd);
    f->fd = -1;
    free(f->buf);
    f->buf = NULL;
}

/* Remember the last bytes read, to notice a file rewritten in place. */
static void keep_signature(follower *f, const char *data, size_t n)
{
    size_t cap = sizeof f->sig;
    if (n >= cap) {
        memcpy(f->sig, data + n - cap, cap);
        f->sig_len = cap;
        return;
    }
    size_t keep = f->sig_len + n > cap ? cap - n : f->sig_len;
    memmove(f->sig, f->sig + f->sig_len - keep, keep);
    memcpy(f->sig + keep, data, n);
    f->sig_len = keep + n;
}

/* Whether the file was truncated or rewritten under the read offset. */
static int rewritten(follower *f)
{
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return 0;
    if (st.st_size < f->offset)
        return 1;
    char now[sizeof f->sig];
    return f->sig_len > 0 &&
           (pread(f->fd, now, f->sig_len, f->offset - (off_t)f->sig_len) != (ssize_t)f->sig_len ||
            memcmp(now, f->sig, f->sig_len) != 0);
}

/* Read what is there. @return bytes read, 0 at the end for now (or for good: f->closed), -1 on
 * an error; EINTR counts as nothing read. */
static long fill(follower *f, int wait_ms)
{
    if (f->regular && f->at_end && f->path != NULL && rewritten(f)) {
        f->truncated = 1; /* follow_check starts it again */
        return 0;
    }
    if (f->start > 0) {
        memmove(f->buf, f->buf + f->start, f->end - f->start);
        f->end -= f->start;
        f->start = 0;
    }
    if (f->end == f->cap) {
        char *grown = realloc(f->buf, 2 * f->cap);
        if (grown == NULL) {
            errno = ENOMEM;
            return -1;
        }
        memset(grown + f->cap, 0, f->cap);
        f->buf = grown;
        f->cap *= 2;
    }
    if (!f->regular) {
        struct pollfd p = {f->fd, POLLIN, 0};
        int ready = poll(&p, 1, wait_ms);
        if (ready < 0)
            return errno == EINTR ? 0 : -1;
        if (ready == 0)
            return 0;
    }
    ssize_t n = read(f->fd, f->buf + f->end, f->cap - f->end);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0 && !f->regular)
        f->closed = 1;
    f->at_end = n == 0;
    if (n > 0)
        keep_signature(f, f->buf + f->end, (size_t)n);
    f->end += (size_t)n;
    f->offset += (off_t)n;
    return (long)n;
}

int follow_next(follower *f, const char **line, size_t *len, int wait_ms)
{
    size_t scanned = f->start;
    for (;;) {
        char *nl = memchr(f->buf + scanned, '\n', f->end - scanned);
        if (nl != NULL) {
            size_t n = (size_t)(nl - (f->buf + f->start)) + 1;
            if (f->skipping) { /* the end of a line that was too long */
                *len = f->skipped + n - 1;
                f->skipping = 0;
                f->start += n;
                return READ_TOO_LONG;
            }
            *line = f->buf + f->start;
            *len = n;
            f->start += n;
            return READ_LINE;
        }
        if (f->end - f->start > AE_LINE_MAX_BYTES) { /* drop it, remember its length */
            if (!f->skipping)
                f->skipped = 0;
            f->skipped += f->end - f->start;
            f->skipping = 1;
            f->start = f->end;
        }
        if (f->closed) {
            if (f->end > f->start && !f->skipping) {
                *line = f->buf + f->start;
                *len = f->end - f->start;
                f->start = f->end;
                return READ_LINE;
            }
            if (f->skipping) {
                *len = f->skipped + (f->end - f->start);
                f->skipping = 0;
                f->start = f->end;
                return READ_TOO_LONG;
            }
            return READ_EOF;
        }
        size_t seen = f->end - f->start;
        long n = fill(f, wait_ms);
        if (n < 0)
            return READ_ERROR;
        if (n == 0 && !f->closed)
            return READ_AGAIN;
        scanned = f->start + seen;
    }
}

int follow_rest(follower *f, const char **line, size_t *len)
{
    if (f->end > f->start && !f->skipping) {
        *line = f->buf + f->start;
        *len = f->end - f->start;
        f->start = f->end = 0;
        return 1;
    }
    f->start = f->end = 0;
    f->skipping = 0;
    f->skipped = 0;
    return 0;
}

/* Forget what was read: the next read starts at byte 0 of f->fd (truncated or a new file). */
static void read_from_start(follower *f)
{
    f->offset = 0;
    f->sig_len = 0;
    f->at_end = 0;
    f->truncated = 0;
    f->start = f->end = 0;
    f->skipping = 0;
    f->skipped = 0;
}

int follow_check(follower *f)
{
    if (!f->regular || f->path == NULL)
        return FOLLOW_SAME;
    struct stat now;
    if (f->truncated || rewritten(f)) {
        if (lseek(f->fd, 0, SEEK_SET) < 0)
            return -1;
        read_from_start(f);
        return FOLLOW_TRUNCATED;
    }
    if (stat(f->path, &now) != 0 || (now.st_dev == f->dev && now.st_ino == f->ino))
        return FOLLOW_SAME; /* gone for now (mid-rotation), or still the same file */
    return FOLLOW_ROTATED;
}

int follow_reopen(follower *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 1 : -1; /* renamed away again: try later */
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    close(f->fd);
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->regular = S_ISREG(st.st_mode);
    read_from_start(f);
    return 0;
}

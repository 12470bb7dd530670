/*
 * outq.c - stdout written by a thread of its own (run --follow): a reader that waited on a full
 * pipe would miss a file rotated and rewritten meanwhile, so output queues in memory (up to a
 * bound, then the writer waits) while the input is followed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum { OUTQ_LIMIT = 64 << 20 };

static void *writer(void *arg)
{
    outq *q = arg;
    char *spare = NULL;
    size_t spare_cap = 0;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (q->len == 0 && !q->closing)
            pthread_cond_wait(&q->has_data, &q->mu);
        if (q->len == 0)
            break; /* closing, all written */
        /* Take the pending bytes (the main thread fills the spare buffer meanwhile). */
        char *data = q->buf;
        size_t len = q->len, cap = q->cap;
        q->buf = spare;
        q->cap = spare_cap;
        q->len = 0;
        pthread_cond_broadcast(&q->has_room);
        pthread_mutex_unlock(&q->mu);
        int error = 0;
        for (size_t done = 0; done < len && !error;) {
            ssize_t n = write(STDOUT_FILENO, data + done, len - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                error = n < 0 ? errno : EIO;
            else
                done += (size_t)n;
        }
        spare = data;
        spare_cap = cap;
        pthread_mutex_lock(&q->mu);
        if (error) { /* nothing more can be written: the main thread sees q->error */
            q->error = error;
            q->len = 0;
            pthread_cond_broadcast(&q->has_room);
        }
    }
    pthread_mutex_unlock(&q->mu);
    free(spare);
    return NULL;
}

int outq_start(outq *q)
{
    memset(q, 0, sizeof *q);
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&q->has_data, NULL) != 0 || pthread_cond_init(&q->has_room, NULL) != 0 ||
        pthread_create(&q->thread, NULL, writer, q) != 0) {
        pthread_mutex_destroy(&q->mu);
        return -1;
    }
    q->started = 1;
    return 0;
}

int outq_write(outq *q, const char *data, size_t len)
{
    pthread_mutex_lock(&q->mu);
    while (q->error == 0 && q->len > 0 && q->len + len > OUTQ_LIMIT)
        pthread_cond_wait(&q->has_room, &q->mu);
    int error = q->error;
    if (error == 0 && q->len + len > q->cap) {
        size_t cap = q->cap ? q->cap : 64 * 1024;
        while (cap < q->len + len)
            cap *= 2;
        char *grown = realloc(q->buf, cap);
        if (grown == NULL) {
            error = ENOMEM;
        } else {
            q->buf = grown;
            q->cap = cap;
        }
    }
    if (error == 0) {
        memcpy(q->buf + q->len, data, len);
        q->len += len;
        pthread_cond_signal(&q->has_data);
    }
    pthread_mutex_unlock(&q->mu);
    errno = error;
    return error == 0 ? 0 : -1;
}

int outq_stop(outq *q)
{
    if (!q->started)
        return 0;
    pthread_mutex_lock(&q->mu);
    q->closing = 1;
    pthread_cond_signal(&q->has_data);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    int error = q->error;
    free(q->buf);
    pthread_cond_destroy(&q->has_data);
    pthread_cond_destroy(&q->has_room);
    pthread_mutex_destroy(&q->mu);
    q->started = 0;
    errno = error;
    return error == 0 ? 0 : -1;
}

/*
 * queue.c - the verdicts waiting for their model run, in line order, and their text.
 */
#include <stdlib.h>
#include <string.h>

#include "queue.h"

size_t ae_queue_text(ae_queue *q, const char *s, size_t len)
{
    if (q->text_len + len + 1 > q->text_cap) {
        size_t cap = q->text_cap ? q->text_cap : 4096;
        while (cap < q->text_len + len + 1)
            cap *= 2;
        char *grown = realloc(q->text, cap);
        if (grown == NULL)
            return AE_NO_TEXT;
        q->text = grown;
        q->text_cap = cap;
    }
    size_t at = q->text_len;
    memcpy(q->text + at, s, len);
    q->text[at + len] = '\0';
    q->text_len += len + 1;
    return at;
}

ae_item *ae_queue_item(ae_queue *q)
{
    if (q->n_items == q->cap_items) {
        size_t cap = q->cap_items ? 2 * q->cap_items : 64;
        ae_item *grown = realloc(q->items, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        q->items = grown;
        q->cap_items = cap;
    }
    ae_item *it = &q->items[q->n_items++];
    memset(it, 0, sizeof *it);
    it->row = AE_NO_ROW;
    it->host = AE_NO_TEXT;
    it->line = AE_NO_TEXT;
    it->session = AE_NO_TEXT;
    return it;
}

const char *ae_queue_text_at(const ae_queue *q, size_t offset)
{
    return offset == AE_NO_TEXT ? NULL : q->text + offset;
}

void ae_queue_clear(ae_queue *q)
{
    q->n_items = 0;
    q->text_len = 0;
}

void ae_queue_free(ae_queue *q)
{
    free(q->items);
    free(q->text);
    memset(q, 0, sizeof *q);
}

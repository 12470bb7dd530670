/*
 * matcher.c - a matcher's lifetime: the loader's error messages, its per-line scratch, clones
 * that share its tables, and freeing (parser.c and index_*.c build the tables, match.c matches).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "match_impl.h"

ae_status ae_load_fail(ae_loader *L, ae_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ae_vfail_file(status, L->err, L->err_len, L->path, fmt, ap);
    va_end(ap);
    return status;
}

ae_status ae_load_oom(ae_loader *L)
{
    return ae_load_fail(L, AE_ERR_NO_MEMORY, "out of memory");
}

/* The per-line scratch of a matcher or a clone. */
static void free_scratch(ae_matcher *m)
{
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mctx);
    pcre2_jit_stack_free(m->jit_stack);
    free(m->buf[0].data);
    free(m->buf[1].data);
    free(m->tokbuf.data);
    free(m->recbuf.data);
    free(m->tokens);
    free(m->stack);
    free(m->cands);
    free(m->ac_stamp);
}

int ae_matcher_new_scratch(ae_matcher *m)
{
    m->mctx = pcre2_match_context_create(NULL);
    m->jit_stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, NULL);
    if (m->line_re != NULL && m->md == NULL)
        m->md = pcre2_match_data_create_from_pattern(m->line_re, NULL);
    m->cand_cap = m->n_tpls ? m->n_tpls : 1;
    m->cands = malloc(m->cand_cap * sizeof *m->cands);
    m->ac_stamp = calloc(m->n_ac ? m->n_ac : 1, sizeof *m->ac_stamp);
    if (m->mctx == NULL || m->jit_stack == NULL || m->md == NULL || m->cands == NULL ||
        m->ac_stamp == NULL)
        return -1;
    pcre2_jit_stack_assign(m->mctx, NULL, m->jit_stack);
    pcre2_set_heap_limit(m->mctx, 64 * 1024); /* KiB, for the interpreter */
    return 0;
}

ae_status ae_matcher_clone(const ae_matcher *m, ae_matcher **out)
{
    if (out == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (m == NULL)
        return AE_ERR_INVALID_ARGUMENT;
    ae_matcher *c = malloc(sizeof *c);
    if (c == NULL)
        return AE_ERR_NO_MEMORY;
    *c = *m; /* the tables' pointers; the scratch is replaced below */
    c->owner = m->owner != NULL ? m->owner : m;
    c->md = NULL;
    c->mctx = NULL;
    c->jit_stack = NULL;
    for (size_t i = 0; i < AE_MATCHER_MAX_KEPT; i++)
        c->kept_span[i][0] = c->kept_span[i][1] = PCRE2_UNSET;
    memset(c->buf, 0, sizeof c->buf);
    memset(&c->tokbuf, 0, sizeof c->tokbuf);
    memset(&c->recbuf, 0, sizeof c->recbuf);
    c->tokens = NULL;
    c->tok_cap = 0;
    c->stack = NULL;
    c->stack_cap = 0;
    c->cands = NULL;
    c->ac_stamp = NULL;
    c->serial = 0;
    c->errmsg[0] = '\0';
    if (ae_matcher_new_scratch(c) != 0) {
        ae_matcher_free(c);
        return AE_ERR_NO_MEMORY;
    }
    *out = c;
    return AE_OK;
}

void ae_matcher_free(ae_matcher *m)
{
    if (m == NULL)
        return;
    free_scratch(m);
    if (m->owner != NULL) { /* a clone: the tables are its owner's */
        free(m);
        return;
    }
    for (size_t i = 0; i < m->n_masks; i++) {
        pcre2_code_free(m->masks[i].re);
        pcre2_code_free(m->masks[i].re_ascii);
    }
    free(m->masks);
    pcre2_code_free(m->line_re);
    pcre2_code_free(m->line_re_ascii);
    pcre2_compile_context_free(m->cctx);
    free(m->delims);
    free(m->tpls);
    free(m->nodes);
    free(m->children.slots);
    free(m->roots.slots);
    free(m->prefixes.out);
    free(m->prefixes.next.slots);
    free(m->suffixes.out);
    free(m->suffixes.next.slots);
    free(m->parts);
    free(m->rank);
    free(m->ac);
    free(m->ac_next.slots);
    ae_arena_free(&m->arena);
    free(m);
}

/*
 * fuzz_match_line.c - libFuzzer target: one input = one raw log line, matched by the two model
 * directories of runtime/fuzz/models (mode "drain" with the default masks and extra delimiters,
 * mode "templates" with the HDFS template list).
 *
 * Besides the sanitizers, it checks the matcher's contract and compares both indexes with a
 * linear scan done the way the Python parser does it (Drain3's fast_match over the tokens; the
 * most literal template by a recursive glob).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match_impl.h"

#ifndef AE_FUZZ_MODELS
#error "AE_FUZZ_MODELS: the folder of the model directories"
#endif

typedef struct model {
    ae_vocab *vocab;
    ae_matcher *matcher;
} model;

static model drain_model, templates_model;

static void load(model *m, const char *kind)
{
    char vocab[4096], parser[4096], err[1024];
    snprintf(vocab, sizeof vocab, "%s/%s/vocab.json", AE_FUZZ_MODELS, kind);
    snprintf(parser, sizeof parser, "%s/%s/parser.json", AE_FUZZ_MODELS, kind);
    if (ae_vocab_load(vocab, &m->vocab, err, sizeof err) != AE_OK ||
        ae_matcher_load(parser, m->vocab, &m->matcher, err, sizeof err) != AE_OK) {
        fprintf(stderr, "fuzz_match_line: %s\n", err);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    load(&drain_model, "drain");
    load(&templates_model, "templates");
    return 0;
}

#define REQUIRE(cond)                                                                            \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_match_line: %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

/* Drain3: the template with equal tokens outside "<*>", the most "<*>", the earliest. */
static size_t drain_scan(const ae_matcher *m, size_t n_tokens)
{
    size_t best = (size_t)-1, best_params = 0;
    for (size_t t = 0; t < m->n_tpls; t++) {
        /* The model's templates are Drain3's: their text is their tokens joined by " ". */
        const char *p = m->tpls[t].text.p, *end = p + m->tpls[t].text.len;
        size_t i = 0, params = 0;
        int same = 1;
        while (same && p <= end) {
            const char *sp = memchr(p, ' ', (size_t)(end - p));
            size_t len = (size_t)((sp ? sp : end) - p);
            if (i >= n_tokens) {
                same = 0;
                break;
            }
            if (len == 3 && memcmp(p, "<*>", 3) == 0)
                params++;
            else
                same = m->tokens[i].len == len && memcmp(m->tokens[i].p, p, len) == 0;
            i++;
            if (sp == NULL)
                break;
            p = sp + 1;
        }
        if (m->tpls[t].text.len == 0)
            i = 0;
        if (same && i == n_tokens && (best == (size_t)-1 || params > best_params)) {
            best = t;
            best_params = params;
        }
    }
    return best;
}

/* "<*>" = any text: the classic star-backtracking wildcard match, O(len(p) * len(s)). */
static int is_star(const char *p, const char *pe)
{
    return pe - p >= 3 && memcmp(p, "<*>", 3) == 0;
}

static int glob(const char *p, const char *pe, const char *s, const char *se)
{
    const char *star = NULL, *mark = NULL;
    while (s < se) {
        if (p < pe && is_star(p, pe)) {
            p += 3;
            star = p;
            mark = s;
        } else if (p < pe && *p == *s) {
            p++;
            s++;
        } else if (star != NULL) {
            p = star;
            s = ++mark;
        } else {
            return 0;
        }
    }
    while (p < pe && is_star(p, pe))
        p += 3;
    return p == pe;
}

static size_t templates_scan(const ae_matcher *m, const char *s, size_t n)
{
    size_t best = (size_t)-1, best_len = 0;
    for (size_t t = 0; t < m->n_tpls; t++) {
        const ae_tpl *tpl = &m->tpls[t];
        if ((best == (size_t)-1 || tpl->literal > best_len) &&
            glob(tpl->text.p, tpl->text.p + tpl->text.len, s, s + n)) {
            best = t;
            best_len = tpl->literal;
        }
    }
    return best;
}

static void check(model *md, const uint8_t *data, size_t size)
{
    ae_matcher *m = md->matcher;
    size_t unk = ae_vocab_size(md->vocab);
    ae_match_detail d;
    ae_status status = ae_matcher_match_detail(m, (const char *)data, size, &d);
    REQUIRE(status == AE_OK || status == AE_BLANK || status == AE_ERR_FORMAT ||
            status == AE_ERR_TOO_LARGE);
    REQUIRE(d.index <= unk);
    REQUIRE((d.template_ == NULL) == (d.index == unk));
    if (d.template_ != NULL)
        REQUIRE(strcmp(d.template_, ae_vocab_template(md->vocab, d.index)) == 0);
    if (status != AE_OK) {
        REQUIRE(d.index == unk);
        REQUIRE(ae_matcher_errmsg(m)[0] != '\0');
        if (status == AE_BLANK)
            REQUIRE(ae_line_is_blank((const char *)data, size));
        return;
    }
    REQUIRE(!ae_line_is_blank((const char *)data, size));
    /* The content lies in the line, or for a record whose content group is not last (a "\n"
     * inside) in the matcher's record buffer. */
    REQUIRE((d.content >= (const char *)data && d.content + d.content_len <= (const char *)data + size) ||
            (d.content == m->recbuf.data && d.content_len == m->recbuf.len));
    size_t expected;
    if (m->mode == AE_MODE_DRAIN)
        expected = drain_scan(m, d.n_tokens);
    else
        expected = templates_scan(m, d.content, d.content_len);
    if (expected == (size_t)-1) {
        REQUIRE(d.cluster_id == 0);
    } else {
        REQUIRE(d.cluster_id == m->tpls[expected].cluster_id);
    }
    size_t index = 0;
    const char *t = NULL;
    REQUIRE(ae_matcher_match(m, (const char *)data, size, &index, &t) == AE_OK);
    REQUIRE(index == d.index && t == d.template_);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(&drain_model, data, size);
    check(&templates_model, data, size);
    return 0;
}

/*
 * match_impl.h - the matcher's data, shared by parser.c (loading parser.json, building the
 * indexes) and match.c (matching lines). Not part of the public API.
 */
#ifndef ALOG_EDGE_MATCH_IMPL_H
#define ALOG_EDGE_MATCH_IMPL_H

#include <stddef.h>
#include <stdint.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "internal.h"

enum { AE_MODE_DRAIN = 1, AE_MODE_TEMPLATES = 2 };

typedef struct ae_span {
    const char *p;
    size_t len;
} ae_span;

typedef struct ae_buf {
    char *data;
    size_t len, cap;
} ae_buf;

/* What PCRE2 proves about every match of a pattern (match_prefilter.c). */
typedef struct ae_prefilter {
    uint64_t start[4];       /* the bytes a match can start with, when has_start */
    int has_start;
    unsigned n_need;
    unsigned char need[2][2]; /* bytes a match contains: need[i][0] or need[i][1] */
    size_t min_len;          /* characters of the shortest match */
} ae_prefilter;

/* Literal strings every match holds (match_literals.c): each requirement is met when one of its
 * alternatives occurs; all requirements must be met. */
#define AE_LITERAL_MAX 16
#define AE_LITERAL_ALTS 16
#define AE_LITERAL_REQS 3
typedef struct ae_literal_req {
    unsigned n_alts;
    unsigned char len[AE_LITERAL_ALTS];
    char s[AE_LITERAL_ALTS][AE_LITERAL_MAX];
} ae_literal_req;

typedef struct ae_literal_reqs {
    ae_literal_req r[AE_LITERAL_REQS];
    unsigned n;
} ae_literal_reqs;

/* Sequences of ASCII classes every match holds (match_factors.c): met when one alternative has
 * all its factors; no alternatives: always. */
#define AE_FACTOR_LEN 12
#define AE_FACTORS 4
#define AE_FACTOR_ALTS 4
typedef struct ae_factor {
    unsigned char len, anchor; /* anchor: the rarest class, searched first */
    int anchor_byte;           /* its byte when it has one only, else -1 */
    uint64_t cls[AE_FACTOR_LEN][2];
} ae_factor;

typedef struct ae_factor_alt {
    unsigned n;
    ae_factor f[AE_FACTORS];
} ae_factor_alt;

typedef struct ae_factor_reqs {
    unsigned n_alts;
    ae_factor_alt alt[AE_FACTOR_ALTS];
} ae_factor_reqs;

typedef struct ae_mask {
    pcre2_code *re;       /* UTF + UCP: Python's str semantics */
    pcre2_code *re_ascii; /* UTF without UCP: the same answers on ASCII-only text, faster */
    ae_prefilter pf, pf_ascii;
    ae_literal_reqs literals;
    ae_factor_reqs factors; /* checked on ASCII text only */
    ae_span repl;         /* mask_prefix + mask_with + mask_suffix */
    int repl_ascii;
} ae_mask;

typedef struct ae_tpl {
    int64_t cluster_id;
    ae_span text;        /* the template string */
    size_t vocab_index;  /* its index in the vocab, or the unknown index */
    /* mode "templates" */
    uint32_t first_part; /* the literal parts between "<*>"s: parts[first_part .. + n_parts) */
    uint32_t n_parts;
    size_t literal;      /* code points of literal text: the priority */
    uint32_t next_out;   /* next template (ordinal + 1) with the same index key */
} ae_tpl;

/* A node of the drain trie: the child for the wildcard "<*>" and the earliest template that
 * ends here (ordinal + 1). */
typedef struct ae_node {
    uint32_t wild;
    uint32_t leaf;
} ae_node;

/* An Aho-Corasick state over the templates' anchors (their longest literal part). */
typedef struct ae_acstate {
    uint32_t fail;  /* longest proper suffix state */
    uint32_t dict;  /* nearest state on the fail chain with outputs, or AE_NONE */
    uint32_t out;   /* first template (ordinal + 1) whose anchor ends here, or AE_NONE */
} ae_acstate;

/* A byte trie (the literal prefixes, or the reversed literal suffixes, of templates). */
typedef struct ae_trie {
    uint32_t *out;         /* per state: first template (ordinal + 1) whose string ends here */
    size_t n, cap;         /* states; state 0 is the root */
    uint32_t root[256];    /* transitions of the root (AE_NONE: none) */
    ae_imap next;          /* transitions of the other states: key (state << 8) | byte */
} ae_trie;

typedef struct ae_frame {
    uint32_t node, depth, params;
} ae_frame;

/*
 * A matcher: the tables compiled from parser.json (read-only after loading) and the per-line
 * scratch below. A clone (ae_matcher_clone) copies the table pointers of its owner, which
 * outlives it, and has scratch of its own: clones of one matcher match on several threads.
 */
struct ae_matcher {
    const ae_matcher *owner; /* a clone: the matcher whose tables it borrows; NULL: its own */
    const ae_vocab *vocab;
    size_t unk;
    int mode;
    ae_arena_block *arena;

    pcre2_compile_context *cctx;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    pcre2_match_data *md;
    pcre2_code *line_re;
    pcre2_code *line_re_ascii; /* UTF without UCP, for ASCII-only lines */
    uint32_t content_group;
    /* groups whose spans each match keeps (ae_matcher_keep_group): host, timestamp fields */
    uint32_t kept_group[AE_MATCHER_MAX_KEPT];
    size_t kept_span[AE_MATCHER_MAX_KEPT][2]; /* start, end; PCRE2_UNSET when not taking part */
    size_t n_kept;

    ae_mask *masks;
    size_t n_masks;
    ae_span *delims;
    size_t n_delims;
    ae_span param_str;

    ae_tpl *tpls;
    size_t n_tpls;

    /* mode "drain": one trie per token count */
    ae_node *nodes; /* nodes[0] is unused: 0 means "none" */
    size_t n_nodes, cap_nodes;
    ae_kmap children;
    ae_imap roots;

    /* mode "templates": a template is indexed by its literal prefix if it has one, else by
     * its literal suffix, else by its longest literal part (Aho-Corasick), else it has no
     * literal text at all and matches anything */
    ae_trie prefixes, suffixes;
    ae_span *parts;
    size_t n_parts, cap_parts;
    uint32_t *rank;        /* rank[t]: position of template t in priority order */
    uint32_t first_always; /* earliest template without literal text (ordinal + 1) */
    ae_acstate *ac;
    size_t n_ac, cap_ac;
    uint32_t ac_root[256]; /* transitions of the root state (AE_NONE: stay at the root) */
    ae_imap ac_next;       /* transitions of the other states: key (state << 8) | byte */

    /* per-line scratch (with md, mctx, jit_stack and kept_span above) */
    uint32_t serial;
    uint32_t *ac_stamp;    /* per state: the line serial that last collected its outputs */
    ae_buf buf[2];
    ae_buf tokbuf;
    ae_buf recbuf; /* the content of a multiline record whose content group is not last */
    int multiline; /* parser.json "multiline" */
    ae_span *tokens;
    size_t tok_cap;
    ae_frame *stack;
    size_t stack_cap;
    uint32_t *cands;
    size_t cand_cap;
    char errmsg[256];
};

/* Prefilters (match_prefilter.c). */
void ae_prefilter_init(const pcre2_code *re, ae_prefilter *pf);
/* @return 0 when no match is possible in a text of `len` bytes whose bytes are in `bytes`. */
int ae_prefilter_may_match(const ae_prefilter *pf, const uint64_t *bytes, size_t len);
/* The set of bytes of s (256 bits). @return 1 when they are all ASCII. */
int ae_bytes_scan(const char *s, size_t len, uint64_t *bytes);
void ae_bytes_add(uint64_t *bytes, const char *s, size_t len);
/* @return 1 when every byte of s is ASCII. */
int ae_ascii_only(const char *s, size_t len);
/* A hash of bytes read a word at a time (in-memory tables only: not stable across builds). */
uint64_t ae_hash_bytes(const void *data, size_t len);

/* The literals of a Python pattern (none when it cannot tell). */
void ae_literals_of(const char *pattern, size_t len, ae_literal_reqs *out);
/* @return 1 when s holds every requirement (always, for none). */
int ae_literals_present(const ae_literal_reqs *reqs, const char *s, size_t n);

/* The class factors of a Python pattern (none when it cannot tell). */
void ae_factors_of(const char *pattern, size_t len, ae_factor_reqs *out);
/* @return 1 when the ASCII text s may hold a match (always, for none). */
int ae_factors_present(const ae_factor_reqs *reqs, const char *s, size_t n);

/* The line format with its final "(?P<name>.*?)$" made greedy (match_regex.c): the same matches.
 * @return a malloc'ed pattern, or NULL when it does not end so (or out of memory). */
char *ae_pyre_greedy_tail(const char *pattern);

/* Scratch for a matcher whose tables are built: match data, JIT stack, candidates, stamps
 * (matcher.c). @return 0, or -1 when out of memory. */
int ae_matcher_new_scratch(ae_matcher *m);

struct cJSON;

/* parser.json's loading: the file, the error buffer and the matcher being built. */
typedef struct ae_loader {
    const char *path;
    char *err;
    size_t err_len;
    ae_matcher *m;
} ae_loader;

/* "<path>: <message>" into the loader's buffer. @return status. */
ae_status ae_load_fail(ae_loader *L, ae_status status, const char *fmt, ...) AE_PRINTF(3, 4);
/* @return AE_ERR_NO_MEMORY, with "<path>: out of memory". */
ae_status ae_load_oom(ae_loader *L);

/* Mode "drain" (index_drain.c): add template t with its tokens (a JSON array) to the trie of
 * its token count. @return AE_OK, AE_ERR_FORMAT or AE_ERR_NO_MEMORY with the loader's message. */
ae_status ae_drain_insert(ae_loader *L, uint32_t t, const struct cJSON *tokens, const char *where);
/* Drain3's match over the trie of k tokens (the matcher's tokens).
 * @return the template ordinal + 1, or AE_NONE (*status AE_ERR_NO_MEMORY when out of memory). */
uint32_t ae_drain_search(ae_matcher *m, size_t k, ae_status *status);

/* Mode "templates" (index_templates.c): index template t by its literal parts. @return AE_OK
 * or AE_ERR_NO_MEMORY. */
ae_status ae_templates_insert(ae_loader *L, uint32_t t);
/* After the last insert: the automaton's links and the priority order. @return as above. */
ae_status ae_templates_finish(ae_loader *L);
/* The trie's transition from `state` on `byte`, or AE_NONE. */
uint32_t ae_trie_next(const ae_trie *trie, uint32_t state, unsigned char byte);
/* The template a content matches. @return the template ordinal + 1, or AE_NONE. */
uint32_t ae_templates_search(ae_matcher *m, const char *s, size_t n);

#endif /* ALOG_EDGE_MATCH_IMPL_H */

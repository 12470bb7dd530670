/*
 * alog_edge.h - the public API of the alog-edge runtime.
 *
 * alog-edge detects anomalies in raw log streams on small Linux devices with two models exported
 * to ONNX (DeepLog, MSCRED) and run by onnxruntime. This header is the only public one.
 *
 * Usage:
 *
 *     char err[256];
 *     ae_vocab *vocab = NULL;
 *     if (ae_vocab_load("models/vocab.json", &vocab, err, sizeof err) != AE_OK) {
 *         fprintf(stderr, "error: %s\n", err);          // "models/vocab.json: <what is wrong>"
 *         return 1;
 *     }
 *     size_t key;
 *     if (ae_vocab_lookup(vocab, "Receiving block <*>", &key) == AE_OK)
 *         printf("key %zu\n", key);
 *
 *     ae_session_params params = ae_session_default_params();
 *     ae_session *model = NULL;
 *     if (ae_session_open("models/deeplog.onnx", &params, &model, err, sizeof err) != AE_OK) {
 *         fprintf(stderr, "error: %s\n", err);
 *         ae_vocab_free(vocab);
 *         return 1;
 *     }
 *     const ae_tensor_info *in = ae_session_input(model, 0);  // "input_sequence", int64, rank 2
 *     ...
 *     ae_session_free(model);
 *
 *     ae_matcher *matcher = NULL;                        // raw log line -> template index
 *     if (ae_matcher_load("models/parser.json", vocab, &matcher, err, sizeof err) != AE_OK) {
 *         fprintf(stderr, "error: %s\n", err);
 *         ae_vocab_free(vocab);
 *         return 1;
 *     }
 *     const char *template_;
 *     ae_status st = ae_matcher_match(matcher, line, line_len, &key, &template_);
 *     if (st == AE_OK)                                  // key == ae_vocab_size(vocab): unknown
 *         printf("%zu %s\n", key, template_ ? template_ : "(unknown)");
 *     else if (st != AE_ERR_NOT_FOUND)                  // AE_ERR_NOT_FOUND: a blank line
 *         fprintf(stderr, "skipped: %s\n", ae_matcher_errmsg(matcher));
 *     ae_matcher_free(matcher);
 *     ae_vocab_free(vocab);
 *
 * Conventions:
 * - Every function that can fail returns an ae_status; AE_OK is 0. ae_strerror() names a status.
 * - Functions that fail before a handle exists write a one-line message into a caller-owned
 *   buffer `err` of `err_len` bytes (always NUL-terminated, truncated to fit; `err` may be NULL).
 *   File errors read "<path>: <what is wrong>". A session keeps the message of its last failure
 *   (ae_session_errmsg), a matcher that of its last refused line (ae_matcher_errmsg).
 * - Handles are opaque. `*_free(NULL)` is a no-op. The library has no global state and never
 *   aborts or exits. A handle may be used by one thread at a time; a loaded ae_vocab is read-only
 *   and may be shared by threads.
 * - Strings are UTF-8.
 */
#ifndef ALOG_EDGE_H
#define ALOG_EDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AE_VERSION_MAJOR 0
#define AE_VERSION_MINOR 1
#define AE_VERSION_PATCH 0
#define AE_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------------------------------------
 * Status, versions
 */

typedef enum ae_status {
    AE_OK = 0,
    AE_ERR_INVALID_ARGUMENT, /* a NULL handle or pointer, an index out of range, a bad tensor */
    AE_ERR_NO_MEMORY,        /* an allocation failed */
    AE_ERR_IO,               /* a file could not be opened or read */
    AE_ERR_TOO_LARGE,        /* a file or value is larger than the runtime accepts */
    AE_ERR_FORMAT,           /* a file's content is malformed (the message says where and how) */
    AE_ERR_NOT_FOUND,        /* a lookup found nothing */
    AE_ERR_ONNXRUNTIME       /* onnxruntime reported an error (the message has its text) */
} ae_status;

/*
 * A short static description of a status, e.g. "malformed content" for AE_ERR_FORMAT.
 * @return a string with static storage; "unknown status" for a value not in ae_status.
 */
const char *ae_strerror(ae_status status);

/*
 * The version of this library, e.g. "0.1.0" (AE_VERSION_STRING when the header matches it).
 * @return a string with static storage.
 */
const char *ae_version(void);

/*
 * The version of the onnxruntime library loaded at run time, e.g. "1.31.1".
 * @return a string owned by onnxruntime, valid while the process runs.
 */
const char *ae_onnxruntime_version(void);

/*
 * The onnxruntime C API version this library was compiled against (ORT_API_VERSION); any
 * onnxruntime that provides at least this API version can run it.
 * @return the API version, e.g. 21.
 */
int ae_onnxruntime_api_version(void);

/* ---------------------------------------------------------------------------------------------
 * Vocabulary: template index <-> template string
 *
 * vocab.json of a model directory (the "C form" written by `invoke convert`):
 *     {"0": "<template>", "1": "<template>", ...}
 * Keys are the decimal indices 0..N-1, each exactly once, without sign or leading zeros; values
 * are the distinct template strings. Unknown templates map to the reserved index N (see
 * ae_vocab_size). A file larger than AE_VOCAB_MAX_BYTES is refused.
 */

#define AE_VOCAB_MAX_BYTES (64u * 1024u * 1024u)

typedef struct ae_vocab ae_vocab;

/*
 * Load a vocab.json. Refuses (AE_ERR_FORMAT, with a message naming the problem): anything but a
 * JSON object, an empty object, keys that are not decimal indices, negative or duplicate keys,
 * a missing index, values that are not strings, two equal templates, invalid UTF-8 or a NUL
 * character, and the training form {"<template>": index} (converted by `invoke convert`).
 * @return AE_OK and *out set (free it with ae_vocab_free); otherwise *out is NULL and err holds
 *         "<path>: <what is wrong>": AE_ERR_IO, AE_ERR_TOO_LARGE, AE_ERR_FORMAT, AE_ERR_NO_MEMORY
 *         or AE_ERR_INVALID_ARGUMENT (NULL path or out).
 */
ae_status ae_vocab_load(const char *path, ae_vocab **out, char *err, size_t err_len);

/*
 * Number of templates N; N is also the index reserved for unknown templates.
 * @return N, or 0 for a NULL vocab.
 */
size_t ae_vocab_size(const ae_vocab *vocab);

/*
 * The template of an index.
 * @return the NUL-terminated template, valid until ae_vocab_free; NULL if index >= N.
 */
const char *ae_vocab_template(const ae_vocab *vocab, size_t index);

/*
 * Find the index of a NUL-terminated template (a hash lookup, not a scan).
 * @return AE_OK and *index set; AE_ERR_NOT_FOUND if the template is not in the vocab;
 *         AE_ERR_INVALID_ARGUMENT for a NULL argument.
 */
ae_status ae_vocab_lookup(const ae_vocab *vocab, const char *template_, size_t *index);

/*
 * Find the index of a template given as `len` bytes (not necessarily NUL-terminated).
 * @return as ae_vocab_lookup.
 */
ae_status ae_vocab_lookup_n(const ae_vocab *vocab, const char *template_, size_t len,
                            size_t *index);

/*
 * Free a vocab and its strings.
 * @return nothing; a NULL vocab is a no-op.
 */
void ae_vocab_free(ae_vocab *vocab);

/* ---------------------------------------------------------------------------------------------
 * ONNX model sessions (the onnxruntime C API underneath)
 */

typedef enum ae_dtype {
    AE_DTYPE_UNSUPPORTED = 0, /* any element type not listed here, or not a tensor */
    AE_DTYPE_FLOAT32,
    AE_DTYPE_FLOAT64,
    AE_DTYPE_INT64,
    AE_DTYPE_INT32,
    AE_DTYPE_INT8,
    AE_DTYPE_UINT8,
    AE_DTYPE_BOOL
} ae_dtype;

/*
 * The name of an element type as in numpy: "float32", "int64", ... ("unsupported" otherwise).
 * @return a string with static storage.
 */
const char *ae_dtype_name(ae_dtype dtype);

/*
 * Size in bytes of one element of a type.
 * @return the size, or 0 for AE_DTYPE_UNSUPPORTED.
 */
size_t ae_dtype_size(ae_dtype dtype);

#define AE_TENSOR_MAX_RANK 8
#define AE_DIM_DYNAMIC (-1)

/* An input or output of a model, as declared in the model. */
typedef struct ae_tensor_info {
    const char *name;
    ae_dtype dtype;
    size_t rank;                            /* number of axes, at most AE_TENSOR_MAX_RANK */
    int64_t dims[AE_TENSOR_MAX_RANK];       /* AE_DIM_DYNAMIC for an axis of unknown size */
    const char *dim_names[AE_TENSOR_MAX_RANK]; /* symbolic axis name ("batch_size") or "" */
} ae_tensor_info;

/* A tensor passed to or returned by ae_session_run: caller-owned memory, row-major. */
typedef struct ae_tensor {
    ae_dtype dtype;
    size_t rank;
    int64_t dims[AE_TENSOR_MAX_RANK];
    void *data;   /* inputs: the elements; outputs: a buffer that receives them */
    size_t size;  /* inputs: bytes in data; outputs: capacity of data in bytes */
} ae_tensor;

typedef struct ae_session_params {
    int intra_op_threads; /* threads inside one operator; 1 = run on the calling thread only */
    int inter_op_threads; /* threads across independent operators */
    int log_severity;     /* onnxruntime's log level: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal */
} ae_session_params;

typedef struct ae_session ae_session;

/*
 * Default session parameters: 1 intra-op thread, 1 inter-op thread, log severity 3 (errors).
 * @return the parameters by value.
 */
ae_session_params ae_session_default_params(void);

/*
 * Load an ONNX model into a new session with its own onnxruntime environment.
 * `params` may be NULL for ae_session_default_params().
 * @return AE_OK and *out set (free it with ae_session_free); otherwise *out is NULL and err holds
 *         "<path>: <what is wrong>": AE_ERR_IO (cannot read the file), AE_ERR_ONNXRUNTIME (not a
 *         model onnxruntime can load), AE_ERR_TOO_LARGE (an input or output of rank above
 *         AE_TENSOR_MAX_RANK), AE_ERR_NO_MEMORY or AE_ERR_INVALID_ARGUMENT.
 */
ae_status ae_session_open(const char *path, const ae_session_params *params, ae_session **out,
                          char *err, size_t err_len);

/*
 * Number of inputs of the model.
 * @return the count, or 0 for a NULL session.
 */
size_t ae_session_input_count(const ae_session *session);

/*
 * Number of outputs of the model.
 * @return the count, or 0 for a NULL session.
 */
size_t ae_session_output_count(const ae_session *session);

/*
 * Description of input `index` (in the model's order).
 * @return a description valid until ae_session_free; NULL if index is out of range.
 */
const ae_tensor_info *ae_session_input(const ae_session *session, size_t index);

/*
 * Description of output `index` (in the model's order).
 * @return a description valid until ae_session_free; NULL if index is out of range.
 */
const ae_tensor_info *ae_session_output(const ae_session *session, size_t index);

/*
 * Run the model: `inputs` are all its inputs in the model's order; `outputs` receive all its
 * outputs in the model's order (dtype, rank and dims are set; the elements are copied into
 * data when size suffices). Input elements are not modified.
 * @return AE_OK; AE_ERR_INVALID_ARGUMENT for a wrong count, type, rank, size or a too small output
 *         buffer; AE_ERR_ONNXRUNTIME when onnxruntime fails; AE_ERR_NO_MEMORY. The detail is in
 *         ae_session_errmsg.
 */
ae_status ae_session_run(ae_session *session, const ae_tensor *inputs, size_t n_inputs,
                         ae_tensor *outputs, size_t n_outputs);

/*
 * The message of the last failure of a session.
 * @return a NUL-terminated message valid until the next call on the session; "" if none.
 */
const char *ae_session_errmsg(const ae_session *session);

/*
 * Release a session and its onnxruntime environment.
 * @return nothing; a NULL session is a no-op.
 */
void ae_session_free(ae_session *session);

/* ---------------------------------------------------------------------------------------------
 * Matching raw log lines to templates: parser.json of a model directory
 *
 * parser.json (written by `invoke parse`, copied into the model directory by `invoke convert`)
 * holds the line format regex, the ordered masks, the extra delimiters and the ordered templates.
 * A matcher keys each raw line exactly as the Python parser does (parse.match; `invoke match`):
 *
 * 1. The line loses its trailing "\r"s and "\n"s. A line that holds only whitespace (Python's
 *    str.isspace() set) is blank: Python skips it, ae_matcher_match returns AE_ERR_NOT_FOUND.
 * 2. content = the named group `content_group` ("Content") of `line_regex` matched at the start
 *    of the line, or the whole line when the format does not match.
 * 3. Mode "drain" (templates mined by Drain3): every mask replaces all its non-overlapping matches
 *    in turn by mask_prefix + mask_with + mask_suffix (Python's re.sub), the text is stripped,
 *    every extra delimiter becomes a space, and it is split at whitespace runs into tokens. The
 *    template is Drain3's match(content, "always"): among the templates with as many tokens whose
 *    every token but param_str ("<*>") equals the line's, the one with the most "<*>" tokens;
 *    ties go to the earliest in parser.json. A trie per token count finds it without a scan.
 *    Mode "templates" (a user template list): masks do not apply; a template's "<*>" stands for
 *    any text, also empty, and must cover the whole content; of the templates that match, the
 *    one with the most literal characters (code points) wins, ties to the earliest. The
 *    candidates come from a trie of the templates' literal prefixes, one of their literal
 *    suffixes, and an Aho-Corasick automaton over the longest literal part of the others.
 * 4. index = the vocab index of the template; when no template matches, that of the content
 *    itself (the Python parser keys unmatched lines by their content); otherwise, or when the
 *    string is not in the vocab, the unknown index N = ae_vocab_size(vocab).
 *
 * Regexes are Python `re` patterns run by PCRE2 (UTF + UCP, JIT): the few places where the two
 * dialects differ (\s, \S, \v, \Z, \uXXXX, \UXXXXXXXX, {,n}, "[" inside a class) are translated,
 * and the constructs that cannot be translated (\N{...}, \S inside a class, verbose mode,
 * backslashes in mask replacements) are refused when loading.
 *
 * A matcher keeps per-line scratch buffers: use one matcher per thread (matchers may share their
 * vocab). It never scans every template per line.
 */

/* Largest parser.json accepted. */
#define AE_PARSER_MAX_BYTES (64u * 1024u * 1024u)
/* Longest line accepted, in bytes without its "\n" (Python's logformat.MAX_LINE_BYTES). */
#define AE_LINE_MAX_BYTES (1024u * 1024u)
/* The parser.json format_version this runtime reads. */
#define AE_PARSER_FORMAT_VERSION 1

typedef struct ae_matcher ae_matcher;

/* What ae_matcher_match_detail found for one line (pointers valid until the next call on the
 * matcher or until the line's buffer changes). */
typedef struct ae_match_detail {
    size_t index;            /* vocab index; ae_vocab_size(vocab) for an unknown template */
    const char *template_;   /* the vocab's template of index; NULL for the unknown index */
    int64_t cluster_id;      /* cluster_id of the matching parser.json template; 0 for none */
    int format_matched;      /* 1 if line_regex matched (content is its content group) */
    const char *content;     /* the content: points into the line */
    size_t content_len;
    const char *masked;      /* drain mode: the content after the masks; templates mode: content */
    size_t masked_len;
    size_t n_tokens;         /* drain mode: tokens of the masked content; templates mode: 0 */
} ae_match_detail;

/*
 * Load a parser.json and build its matcher for a vocab. The vocab is borrowed: it must outlive
 * the matcher. Refuses (AE_ERR_FORMAT, with a message that names the field): malformed JSON,
 * invalid UTF-8 or a \u0000 escape, a key repeated in an object (Python's json module would
 * keep the last value), a missing or mistyped field (format_version, log_format,
 * line_regex, masking, drain, mode, templates), a format_version other than
 * AE_PARSER_FORMAT_VERSION, an unknown mode or match_strategy, a regex PCRE2 cannot compile (with
 * PCRE2's message and the offset in the pattern), a pattern construct that has no PCRE2
 * equivalent, a content_group the line regex lacks, an empty extra delimiter, a template without
 * tokens in mode "drain", a cluster_id that is not a positive integer or appears twice.
 * @return AE_OK and *out set (free it with ae_matcher_free); otherwise *out is NULL and err holds
 *         "<path>: <what is wrong>": AE_ERR_IO, AE_ERR_TOO_LARGE (file above
 *         AE_PARSER_MAX_BYTES), AE_ERR_FORMAT, AE_ERR_NO_MEMORY or AE_ERR_INVALID_ARGUMENT.
 */
ae_status ae_matcher_load(const char *parser_path, const ae_vocab *vocab, ae_matcher **out,
                          char *err, size_t err_len);

/*
 * Match one line: `len` bytes, not necessarily NUL-terminated, that may end in "\n" or "\r\n".
 * On any status but AE_OK, *index is the unknown index and *template_ is NULL.
 * `template_` may be NULL.
 * @return AE_OK with *index set (ae_vocab_size(vocab) when no known template matches) and
 *         *template_ the vocab's template or NULL for the unknown index; AE_ERR_NOT_FOUND for a
 *         blank line (nothing to match); AE_ERR_FORMAT for a line with a NUL byte or invalid
 *         UTF-8, AE_ERR_TOO_LARGE for a line longer than AE_LINE_MAX_BYTES or one that exceeds
 *         the regex engine's limits (the detail is in ae_matcher_errmsg); AE_ERR_NO_MEMORY;
 *         AE_ERR_INVALID_ARGUMENT for a NULL matcher, line (with len > 0) or index.
 */
ae_status ae_matcher_match(ae_matcher *matcher, const char *line, size_t len, size_t *index,
                           const char **template_);

/*
 * As ae_matcher_match, with the intermediate results (content, masked content, token count,
 * cluster id) for diagnostics (`alog-edge match --explain`).
 * @return as ae_matcher_match; detail->index and detail->template_ are set on every status.
 */
ae_status ae_matcher_match_detail(ae_matcher *matcher, const char *line, size_t len,
                                  ae_match_detail *detail);

/*
 * Why the last ae_matcher_match call did not return AE_OK, e.g. "not valid UTF-8 (byte 7)" or
 * "blank line".
 * @return a NUL-terminated message valid until the next call on the matcher; "" after AE_OK.
 */
const char *ae_matcher_errmsg(const ae_matcher *matcher);

/*
 * The matching mode of the parser.json.
 * @return "drain" or "templates"; "" for a NULL matcher.
 */
const char *ae_matcher_mode(const ae_matcher *matcher);

/*
 * Number of templates in the parser.json.
 * @return the count, or 0 for a NULL matcher.
 */
size_t ae_matcher_template_count(const ae_matcher *matcher);

/*
 * Whether a line is blank as Python's `not line.strip()` says (only whitespace of Python's
 * str.isspace() set, counting a trailing "\r\n"); bytes that are not valid UTF-8 are not
 * whitespace.
 * @return 1 if blank (also for len 0), 0 otherwise.
 */
int ae_line_is_blank(const char *line, size_t len);

/*
 * Free a matcher (not its vocab).
 * @return nothing; a NULL matcher is a no-op.
 */
void ae_matcher_free(ae_matcher *matcher);

#ifdef __cplusplus
}
#endif

#endif /* ALOG_EDGE_H */

/*
 * alog_edge.h - the public API of the alog-edge runtime.
 *
 * alog-edge detects anomalies in raw log streams on small Linux devices with two models exported
 * to ONNX (DeepLog, MSCRED) and run by onnxruntime. This header is the only public one.
 *
 * Usage, the main path (a model directory in, one callback per anomaly out):
 *
 *     static int print_event(const ae_event *ev, void *user)
 *     {
 *         (void)user;
 *         if (ev->kind == AE_EVENT_DEEPLOG)
 *             printf("line %llu: %s (%s)\n", (unsigned long long)ev->deeplog.line_no,
 *                    ev->deeplog.template_ ? ev->deeplog.template_ : "(unknown)",
 *                    ae_reason_name(ev->reason));
 *         else
 *             printf("%s: window score %g\n", ev->mscred.series, ev->mscred.score);
 *         return 0;                                      // non-zero: stop (AE_STOPPED)
 *     }
 *
 *     char err[512];
 *     ae_model *model = NULL;                            // read-only: share it between threads
 *     if (ae_model_load("models/onnx", NULL, &model, err, sizeof err) != AE_OK) {
 *         fprintf(stderr, "error: %s\n", err);           // "models/onnx/vocab.json: <what>"
 *         return 1;
 *     }
 *     ae_detector_params params = ae_detector_default_params();
 *     params.on_event = print_event;
 *     ae_detector *det = NULL;                           // one per stream (and thread)
 *     if (ae_detector_new(model, &params, &det, err, sizeof err) != AE_OK) {
 *         fprintf(stderr, "error: %s\n", err);
 *         ae_model_free(model);
 *         return 1;
 *     }
 *     char line[65536];
 *     uint64_t line_no = 0;
 *     while (fgets(line, sizeof line, stdin) != NULL) {
 *         ae_status st = ae_detector_push(det, line, strlen(line), ++line_no);
 *         if (st == AE_BLANK)                            // not an error: nothing to judge
 *             continue;
 *         if (st == AE_ERR_FORMAT || st == AE_ERR_TOO_LARGE)   // a refused line: go on
 *             fprintf(stderr, "line %llu: %s\n", (unsigned long long)line_no,
 *                     ae_detector_errmsg(det));
 *         else if (st != AE_OK)
 *             break;                                     // onnxruntime, memory, AE_STOPPED
 *     }
 *     ae_detector_finish(det);                           // the verdicts still pending
 *     ae_detector_free(det);
 *     ae_model_free(model);
 *
 * Conventions:
 * - Every function that can fail returns an ae_status: AE_OK is 0, errors are AE_ERR_*, and the
 *   outcomes that are not errors have their own codes (AE_BLANK, AE_STOPPED, as SQLite's ROW
 *   and DONE). ae_strerror() names a status.
 * - Functions that fail before a handle exists write a one-line message into a caller-owned
 *   buffer `err` of `err_len` bytes (always NUL-terminated, truncated to fit; `err` may be NULL).
 *   File errors read "<path>: <what is wrong>". A handle with state keeps the message of its
 *   last failure (ae_detector_errmsg, ae_matcher_errmsg, ae_session_errmsg).
 * - Handles are opaque. `*_free(NULL)` is a no-op. The library has no global state and never
 *   aborts or exits.
 * - Threads: ae_model and ae_vocab are read-only after loading (`const`), and may be shared by
 *   any number of threads and detectors. ae_detector, ae_matcher and ae_session hold per-call
 *   state: one thread at a time each (ae_matcher_clone gives each thread a matcher of its own
 *   over the same compiled tables).
 * - Strings are UTF-8.
 * - Stability: everything above the "Advanced API" fence below keeps source and binary
 *   compatibility within a major version (AE_VERSION_MAJOR); the advanced part (raw onnxruntime
 *   sessions, the matcher's diagnostics) may change in a minor version.
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
/* MAJOR * 10000 + MINOR * 100 + PATCH, as zstd's ZSTD_VERSION_NUMBER (see ae_version_number). */
#define AE_VERSION_NUMBER (AE_VERSION_MAJOR * 10000 + AE_VERSION_MINOR * 100 + AE_VERSION_PATCH)

/* The functions the shared library exports; everything else in it is hidden
 * (-fvisibility=hidden). */
#if defined(__GNUC__) && __GNUC__ >= 4
#define AE_API __attribute__((visibility("default")))
#else
#define AE_API
#endif

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
    AE_ERR_ONNXRUNTIME,      /* onnxruntime reported an error (the message has its text) */

    /* Outcomes that are not errors (their values are far from the errors'). */
    AE_BLANK = 100,          /* the line is blank (only whitespace): nothing to match or judge */
    AE_STOPPED = 101         /* the event callback returned non-zero: the call stopped there */
} ae_status;

/*
 * A short static description of a status, e.g. "malformed content" for AE_ERR_FORMAT.
 * @return a string with static storage; "unknown status" for a value not in ae_status.
 */
AE_API const char *ae_strerror(ae_status status);

/*
 * The version of this library, e.g. "0.1.0" (AE_VERSION_STRING when the header matches it).
 * @return a string with static storage.
 */
AE_API const char *ae_version(void);

/*
 * The version of this library as a number (AE_VERSION_NUMBER of the library that was built,
 * which may differ from the header a program was compiled with).
 * @return MAJOR * 10000 + MINOR * 100 + PATCH, e.g. 100 for 0.1.0.
 */
AE_API unsigned ae_version_number(void);

/*
 * The version of the onnxruntime library loaded at run time, e.g. "1.31.1".
 * @return a string owned by onnxruntime, valid while the process runs.
 */
AE_API const char *ae_onnxruntime_version(void);

/*
 * The onnxruntime C API version this library was compiled against (ORT_API_VERSION); any
 * onnxruntime that provides at least this API version can run it.
 * @return the API version, e.g. 21.
 */
AE_API int ae_onnxruntime_api_version(void);

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
AE_API ae_status ae_vocab_load(const char *path, ae_vocab **out, char *err, size_t err_len);

/*
 * Number of templates N; N is also the index reserved for unknown templates.
 * @return N, or 0 for a NULL vocab.
 */
AE_API size_t ae_vocab_size(const ae_vocab *vocab);

/*
 * The template of an index.
 * @return the NUL-terminated template, valid until ae_vocab_free; NULL if index >= N.
 */
AE_API const char *ae_vocab_template(const ae_vocab *vocab, size_t index);

/*
 * Find the index of a NUL-terminated template (a hash lookup, not a scan).
 * @return AE_OK and *index set; AE_ERR_NOT_FOUND if the template is not in the vocab;
 *         AE_ERR_INVALID_ARGUMENT for a NULL argument.
 */
AE_API ae_status ae_vocab_lookup(const ae_vocab *vocab, const char *template_, size_t *index);

/*
 * Find the index of a template given as `len` bytes (not necessarily NUL-terminated).
 * @return as ae_vocab_lookup.
 */
AE_API ae_status ae_vocab_lookup_n(const ae_vocab *vocab, const char *template_, size_t len,
                                   size_t *index);

/*
 * Free a vocab and its strings.
 * @return nothing; a NULL vocab is a no-op.
 */
AE_API void ae_vocab_free(ae_vocab *vocab);

/* ---------------------------------------------------------------------------------------------
 * Matching raw log lines to templates: parser.json of a model directory
 *
 * parser.json (written by `invoke parse`, copied into the model directory by `invoke convert`)
 * holds the line format regex, the ordered masks, the extra delimiters and the ordered templates.
 * A matcher keys each raw line exactly as the Python parser does (parse.match; `invoke match`):
 *
 * 1. The line loses its trailing "\r"s and "\n"s. A line that holds only whitespace (Python's
 *    str.isspace() set) is blank: Python skips it, ae_matcher_match returns AE_BLANK.
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
 *    A record of several lines ("\n" inside: a line and the lines after it that do not fit the
 *    format, see ae_matcher_line_fits) takes line_regex on its first line: content = that
 *    line's content group + everything from the first "\n" on (Python's multiline records).
 * 4. index = the vocab index of the template; when no template matches, that of the content
 *    itself (the Python parser keys unmatched lines by their content); otherwise, or when the
 *    string is not in the vocab, the unknown index N = ae_vocab_size(vocab).
 *
 * Regexes are Python `re` patterns run by PCRE2 (UTF + UCP, JIT): the few places where the two
 * dialects differ (\s, \S, \v, \Z, \uXXXX, \UXXXXXXXX, {,n}, "[" inside a class) are translated,
 * and the constructs that cannot be translated (\N{...}, \S inside a class, verbose mode,
 * backslashes in mask replacements) are refused when loading.
 *
 * A matcher keeps per-line scratch buffers: one thread at a time. ae_matcher_clone gives another
 * thread a matcher over the same compiled tables (no second load). It never scans every template
 * per line.
 */

/* Largest parser.json accepted. */
#define AE_PARSER_MAX_BYTES (64u * 1024u * 1024u)
/* Longest line accepted, in bytes without its "\n" (Python's logformat.MAX_LINE_BYTES). */
#define AE_LINE_MAX_BYTES (1024u * 1024u)
/* The parser.json format_version this runtime reads. */
#define AE_PARSER_FORMAT_VERSION 1

typedef struct ae_matcher ae_matcher;

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
AE_API ae_status ae_matcher_load(const char *parser_path, const ae_vocab *vocab, ae_matcher **out,
                                 char *err, size_t err_len);

/*
 * Match one line: `len` bytes, not necessarily NUL-terminated, that may end in "\n" or "\r\n".
 * On any status but AE_OK, *index is the unknown index and *template_ is NULL.
 * `template_` may be NULL.
 * @return AE_OK with *index set (ae_vocab_size(vocab) when no known template matches) and
 *         *template_ the vocab's template or NULL for the unknown index; AE_BLANK (not an
 *         error) for a blank line: nothing to match; AE_ERR_FORMAT for a line with a NUL byte
 *         or invalid UTF-8, AE_ERR_TOO_LARGE for a line longer than AE_LINE_MAX_BYTES or one that exceeds
 *         the regex engine's limits (the detail is in ae_matcher_errmsg); AE_ERR_NO_MEMORY;
 *         AE_ERR_INVALID_ARGUMENT for a NULL matcher, line (with len > 0) or index.
 */
AE_API ae_status ae_matcher_match(ae_matcher *matcher, const char *line, size_t len, size_t *index,
                                  const char **template_);

/*
 * Whether parser.json asks for multiline records ("multiline": true, from `invoke parse
 * --multiline`).
 * @return 1 or 0; 0 for a NULL matcher.
 */
AE_API int ae_matcher_multiline(const ae_matcher *matcher);

/*
 * A matcher for another thread: it shares the compiled tables of `matcher` (which must outlive
 * it, and may be a clone itself) and has per-line scratch of its own.
 * @return AE_OK and *out set (free it with ae_matcher_free); AE_ERR_NO_MEMORY or
 *         AE_ERR_INVALID_ARGUMENT (a NULL argument), *out NULL.
 */
AE_API ae_status ae_matcher_clone(const ae_matcher *matcher, ae_matcher **out);

/*
 * Why the last ae_matcher_match call did not return AE_OK, e.g. "not valid UTF-8 (byte 7)" or
 * "blank line".
 * @return a NUL-terminated message valid until the next call on the matcher; "" after AE_OK.
 */
AE_API const char *ae_matcher_errmsg(const ae_matcher *matcher);

/*
 * The matching mode of the parser.json.
 * @return "drain" or "templates"; "" for a NULL matcher.
 */
AE_API const char *ae_matcher_mode(const ae_matcher *matcher);

/*
 * Number of templates in the parser.json.
 * @return the count, or 0 for a NULL matcher.
 */
AE_API size_t ae_matcher_template_count(const ae_matcher *matcher);

/*
 * Whether a line is blank as Python's `not line.strip()` says (only whitespace of Python's
 * str.isspace() set, counting a trailing "\r\n"); bytes that are not valid UTF-8 are not
 * whitespace.
 * @return 1 if blank (also for len 0), 0 otherwise.
 */
AE_API int ae_line_is_blank(const char *line, size_t len);

/*
 * Free a matcher (not its vocab; a clone frees only its own scratch).
 * @return nothing; a NULL matcher is a no-op.
 */
AE_API void ae_matcher_free(ae_matcher *matcher);

/* ---------------------------------------------------------------------------------------------
 * onnxruntime's parameters (each ae_model_params holds one for its sessions)
 */

typedef struct ae_session_params {
    int intra_op_threads; /* threads inside one operator; 1 = run on the calling thread only */
    int inter_op_threads; /* threads across independent operators */
    int log_severity;     /* onnxruntime's log level: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal */
} ae_session_params;

/*
 * Default session parameters: 1 intra-op thread, 1 inter-op thread, log severity 3 (errors).
 * @return the parameters by value.
 */
AE_API ae_session_params ae_session_default_params(void);

/* ---------------------------------------------------------------------------------------------
 * Models: a model directory loaded (vocab.json, parser.json, deeplog.onnx, mscred.onnx and their
 * .onnx.meta.json files, as `invoke convert` writes them)
 *
 * An ae_model is read-only after loading: any number of detectors on any threads share one
 * `const ae_model *` (onnxruntime's Run is thread-safe; every per-line buffer and message lives
 * in the detector or the call). A directory may hold either model or both;
 * a model whose .onnx exists must have its meta.json (and a meta.json its .onnx), and every meta
 * must agree with the vocab (vocab_size / feature_dim = N + 1, unk_index = N) and with the ONNX
 * file's declared inputs (input_sequence / input_features with a dynamic batch axis; fixed axes
 * equal to seq_len, window_size and feature_dim).
 *
 * parser.json's timestamp format is "ISO8601" (read as pandas' to_datetime(format="ISO8601",
 * utc=True) does) or a strptime format with the directives %Y %y %m %d %H %I %p %M %S %f %j %b
 * %B %a %A %% (pandas' dialect: %f takes up to 9 digits, names ignore case, a space matches any
 * run of whitespace); other directives (%z, %Z, %c, ...) are refused when loading.
 */

typedef struct ae_model ae_model;

/* DeepLog's decision rule (besides unseen keys, always anomalous). */
typedef enum ae_deeplog_rule {
    AE_RULE_META = 0,        /* params only: the rule the meta names */
    AE_RULE_TOP_K,           /* the paper's: a key outside the top g predictions is anomalous */
    AE_RULE_PROBABILITY      /* a key whose predicted probability is below the threshold */
} ae_deeplog_rule;

typedef struct ae_model_params {
    ae_session_params session; /* onnxruntime's threads and log level, for both models */
    int load_deeplog;          /* 1: load (and run) deeplog.onnx when present; 0: skip it */
    int load_mscred;           /* 1: load (and run) mscred.onnx when present; 0: skip it */
    int top_k;                 /* DeepLog top g; 0 = the meta's top_k (selects the top_k rule) */
    int deeplog_rule;          /* AE_RULE_META (0): the meta's rule; AE_RULE_TOP_K; AE_RULE_PROBABILITY */
    double probability_threshold; /* DeepLog probability rule's threshold; negative = the meta's
                                     (a value >= 0 selects the probability rule) */
    double session_idle;       /* seconds without a line that end a DeepLog session; negative =
                                  the meta's session_idle_seconds (null there: never); 0 = never */
    double mscred_threshold;   /* MSCRED alarm threshold; negative = the meta's threshold */
} ae_model_params;

/* What a loaded model directory holds (ae_model_info_get). */
typedef struct ae_model_info {
    size_t num_templates;      /* N: vocab entries; N is the unknown index */
    int has_deeplog;
    size_t deeplog_window;     /* h: keys before the predicted one */
    int top_k;                 /* g in use (params or meta) */
    ae_deeplog_rule deeplog_rule;  /* the rule in use (params or meta) */
    double probability_threshold;  /* the probability rule's threshold in use */
    int session_keys;          /* 1: start/end keys: every key and every session end is predicted */
    size_t start_key, end_key; /* the model's start and end keys (when session_keys) */
    size_t closing_keys;       /* templates the model directory declares as ending a session */
    double session_idle;       /* seconds without a line that end a session; 0 = never */
    size_t deeplog_seen_keys;  /* keys seen in training (the others are anomalous) */
    int has_mscred;
    size_t mscred_window;      /* buckets per window (the ONNX input's window_size) */
    size_t mscred_stride;      /* buckets between two scored windows (the model's step gap) */
    size_t feature_dim;        /* N + 1 */
    double threshold;          /* alarm threshold in use (params or meta) */
    double broken_cell_level;
    double bucket_seconds;     /* > 0: time buckets of this length */
    size_t bucket_lines;       /* > 0: buckets of this many lines (logs without timestamps) */
    int per_host;              /* 1: one count series per host; 0: one for the stream */
} ae_model_info;

/*
 * Default model parameters: ae_session_default_params(), both models, the meta's rule, top_k,
 * thresholds and session_idle.
 * @return the parameters by value.
 */
AE_API ae_model_params ae_model_default_params(void);

/*
 * Load a model directory. `params` may be NULL for ae_model_default_params().
 * @return AE_OK and *out set (free it with ae_model_free); otherwise *out is NULL and err holds
 *         "<file>: <what is wrong>": AE_ERR_IO (a missing file or directory), AE_ERR_FORMAT (a bad
 *         vocab, parser.json or meta.json, a meta that disagrees with the vocab or the model, a
 *         directory with neither model), AE_ERR_ONNXRUNTIME (an ONNX file onnxruntime cannot load,
 *         e.g. truncated), AE_ERR_TOO_LARGE, AE_ERR_NO_MEMORY or AE_ERR_INVALID_ARGUMENT.
 */
AE_API ae_status ae_model_load(const char *dir, const ae_model_params *params, ae_model **out,
                               char *err, size_t err_len);

/*
 * Describe a loaded model.
 * @return AE_OK and *info filled; AE_ERR_INVALID_ARGUMENT for a NULL argument.
 */
AE_API ae_status ae_model_info_get(const ae_model *model, ae_model_info *info);

/*
 * The model's vocab (owned by the model).
 * @return the vocab, valid until ae_model_free; NULL for a NULL model.
 */
AE_API const ae_vocab *ae_model_vocab(const ae_model *model);

/*
 * The model's matcher (owned by the model). Matching needs a matcher of one's own: take an
 * ae_matcher_clone of it per thread.
 * @return the matcher, valid until ae_model_free; NULL for a NULL model.
 */
AE_API const ae_matcher *ae_model_matcher(const ae_model *model);

/*
 * Free a model and everything it owns.
 * @return nothing; a NULL model is a no-op.
 */
AE_API void ae_model_free(ae_model *model);

/* Why a key or window was flagged. */
typedef enum ae_reason {
    AE_REASON_NONE = 0,   /* normal */
    AE_REASON_UNSEEN,     /* DeepLog: the key never occurred in training (the unknown key included) */
    AE_REASON_TOP_K,      /* DeepLog: the key is not among the top g predictions of the h before it */
    AE_REASON_SCORE,      /* MSCRED: the window's score is above the threshold */
    AE_REASON_PROBABILITY, /* DeepLog: the key's predicted probability is below the threshold */
    AE_REASON_END,        /* DeepLog: the model did not expect the session to end there */
    AE_REASON_KEY_SET     /* DeepLog: the session's keys are no key set of a training session (a new
                             combination at the key that made it, or an incomplete one at the end) */
} ae_reason;

/*
 * The name of a reason: "", "unseen", "top_k", "score", "probability", "end".
 * @return a string with static storage.
 */
AE_API const char *ae_reason_name(ae_reason reason);

/* DeepLog's verdict on one key of a session. */
typedef struct ae_key_verdict {
    int anomalous;
    ae_reason reason;      /* AE_REASON_UNSEEN wins over the rule's reason */
    int64_t rank;          /* classes whose logit is strictly larger than the key's; -1 where not
                              predicted (the first h keys of a session of a model without
                              session keys) */
    float probability;     /* softmax probability of the key; NAN where rank is -1 */
} ae_key_verdict;

/*
 * DeepLog on one whole session of `n` keys (indices 0..N; N is unknown), as the Python evaluation
 * does: every key is checked against the seen keys, and judged by the rule on the predictions
 * for the h keys before it. With session keys (meta start_key/end_key) the session is padded with
 * h start keys, so every key is predicted, and the end key is predicted after the last one: that
 * verdict goes to *end (reason AE_REASON_END when anomalous; `end` may be NULL). Without session
 * keys only keys i >= h are predicted and *end is normal with rank -1. The windows run through
 * onnxruntime in batches of at most `batch_size` (0 = 256).
 * @return AE_OK and out[0..n) filled; AE_ERR_INVALID_ARGUMENT (no DeepLog model, a key above N,
 *         NULL pointers with n > 0), AE_ERR_ONNXRUNTIME, AE_ERR_NO_MEMORY; the detail in err
 *         (may be NULL). Safe on a model other threads use.
 */
AE_API ae_status ae_deeplog_score(const ae_model *model, const size_t *keys, size_t n,
                                  size_t batch_size, ae_key_verdict *out, ae_key_verdict *end,
                                  char *err, size_t err_len);

/*
 * MSCRED on `n` windows of raw counts, each mscred_window x feature_dim floats, row-major
 * (bucket, then key; the last column counts unknown lines).
 * @return AE_OK and scores[0..n) set (the model's anomaly_score: poorly reconstructed cells);
 *         AE_ERR_INVALID_ARGUMENT (no MSCRED model, NULL pointers), AE_ERR_ONNXRUNTIME,
 *         AE_ERR_NO_MEMORY; the detail in err (may be NULL). Safe on a model other threads use.
 */
AE_API ae_status ae_mscred_score(const ae_model *model, const float *counts, size_t n,
                                 float *scores, char *err, size_t err_len);

/* ---------------------------------------------------------------------------------------------
 * Detectors: raw log lines of one stream in, anomalies out
 *
 * A detector keys each line with the model's matcher, finds its fields with parser.json (host
 * from host_field, timestamp from the timestamp fields and format, session ids from
 * session_regex in the content; several ids: the line joins each session), and judges it:
 * - DeepLog per session: the session's key is the session id, else the host, else "<stream>"
 *   (as `invoke build-deeplog`), judged as ae_deeplog_score does. A session ends (and, with
 *   session keys, its end is judged: an event with reason AE_REASON_END, the end key as `key`,
 *   the session's last line number and no line text) on a closing template (meta closing_keys),
 *   when a line comes session_idle seconds after the session's last one (by the lines'
 *   timestamps), and at ae_detector_finish. Sessions dropped beyond max_sessions are not judged.
 * - MSCRED per count series (per host, "<all>" for lines without one, or the whole stream):
 *   buckets of bucket_seconds by the line's timestamp (lines without one take the last timestamp
 *   seen) or of bucket_lines lines; bucket b counts from the series' first bucket; a window of
 *   mscred_window buckets is scored when bucket b closes and b + 1 - mscred_window is a
 *   non-negative multiple of mscred_stride. A bucket closes when a later bucket of its series
 *   begins, or at ae_detector_finish. Lines older than the open bucket count in it.
 * Events go to the params' callback. With batch_size > 1, DeepLog windows wait until batch_size of
 * them are pending (or ae_detector_flush / ae_detector_finish) and run in one onnxruntime call;
 * with batch_size 1 (follow mode) each key is judged as it arrives. Events of one call come in
 * line order, the same for every batch_size; the windows a line closes come before its keys.
 * Lines before the first timestamp of the stream take that timestamp's bucket (Python's back
 * fill); when none ever comes, ae_detector_finish drops their counts.
 * When the callback stops a call or onnxruntime fails, the verdicts queued for that call are
 * dropped (the detector's state stays consistent and it may be fed on).
 */

typedef struct ae_detector ae_detector;

/* Which model an event comes from: the member of ae_event that holds its fields. */
typedef enum ae_event_kind {
    AE_EVENT_DEEPLOG = 1,     /* a key of a session (or a session's end): ev->deeplog */
    AE_EVENT_MSCRED = 2       /* a window of counts: ev->mscred */
} ae_event_kind;

/* DeepLog's verdict on one line of a session. */
typedef struct ae_deeplog_event {
    uint64_t line_no;         /* the line's number as given to ae_detector_push */
    const char *session;
    size_t key;               /* template index; N = unknown; the end key for a session's end */
    const char *template_;    /* NULL for the unknown key and the end key */
    int64_t rank;             /* -1 when not predicted (the first h keys of a session without
                                 session keys) */
    float probability;        /* NAN when not predicted */
    const char *line;         /* the raw line without its line end ("" for a session's end) */
    size_t line_len;
    const char *host;         /* the line's host; NULL for a line without one */
} ae_deeplog_event;

/* MSCRED's verdict on one window of a count series. */
typedef struct ae_mscred_event {
    const char *series;       /* the host, or "<all>" for the whole stream or lines without one */
    int64_t bucket;           /* index of the window's last bucket in its series */
    int64_t slot_start_us;    /* start of the slot the window judges (its last stride buckets), */
    int64_t end_us;           /* and the end of its last bucket, microseconds since the epoch (UTC);
                                 INT64_MIN for line buckets */
    uint64_t first_line_no;   /* first and last line counted in the slot (0 if none) */
    uint64_t last_line_no;
    float score;
    double threshold;
} ae_mscred_event;

/* One verdict; pointers are valid during the callback only. */
typedef struct ae_event {
    ae_event_kind kind;
    int anomalous;            /* 0 only when the params ask for every verdict (report_all) */
    ae_reason reason;
    union {
        ae_deeplog_event deeplog; /* kind AE_EVENT_DEEPLOG */
        ae_mscred_event mscred;   /* kind AE_EVENT_MSCRED */
    };
} ae_event;

/*
 * Receives each verdict.
 * @return 0 to go on; non-zero stops the detector call, which then returns AE_STOPPED (e.g. after
 *         a write error on the output).
 */
typedef int (*ae_event_fn)(const ae_event *event, void *user);

typedef struct ae_detector_params {
    ae_event_fn on_event;     /* required */
    void *user;               /* passed to on_event */
    size_t batch_size;        /* DeepLog windows per onnxruntime call; 1 = judge each key at once */
    int report_all;           /* 1: also report normal keys and windows (anomalous = 0) */
    size_t max_sessions;      /* sessions kept; the least recently seen is dropped beyond it */
    int year;                 /* year for timestamps without one (syslog); 0 = the current year */
} ae_detector_params;

/*
 * Default detector parameters: no callback (set one), batch_size 256, anomalies only,
 * max_sessions 100000, year 0. A detector runs every model its ae_model loaded.
 * @return the parameters by value.
 */
AE_API ae_detector_params ae_detector_default_params(void);

/*
 * A new detector for one stream of lines. The model is borrowed and must outlive the detector;
 * other detectors, on other threads too, may use it at the same time.
 * @return AE_OK and *out set (free it with ae_detector_free); AE_ERR_INVALID_ARGUMENT (a NULL
 *         model or params, no callback, batch_size 0, max_sessions 0, a year outside 0..9999) or
 *         AE_ERR_NO_MEMORY, with the reason in err.
 */
AE_API ae_status ae_detector_new(const ae_model *model, const ae_detector_params *params,
                                 ae_detector **out, char *err, size_t err_len);

/*
 * Feed one raw line (`len` bytes, may end in "\n"; need not be NUL-terminated) with its line
 * number. Blank lines are skipped; a line the matcher refuses (NUL byte, invalid UTF-8, too long)
 * is skipped too and reported by the status.
 * @return AE_OK; AE_BLANK (not an error) for a blank line; the matcher's AE_ERR_FORMAT or
 *         AE_ERR_TOO_LARGE for a refused line (detail in ae_detector_errmsg; the detector goes on
 *         with the next line); AE_STOPPED when the callback asked to stop; AE_ERR_ONNXRUNTIME or
 *         AE_ERR_NO_MEMORY.
 */
AE_API ae_status ae_detector_push(ae_detector *detector, const char *line, size_t len,
                                  uint64_t line_no);

/*
 * Judge every pending DeepLog key now (end of a burst); buckets stay open.
 * @return AE_OK, AE_STOPPED, AE_ERR_ONNXRUNTIME or AE_ERR_NO_MEMORY.
 */
AE_API ae_status ae_detector_flush(ae_detector *detector);

/*
 * End of input: flush, then close every open bucket and score the windows that end there.
 * The detector may be fed again afterwards (a new series begins for each host).
 * @return AE_OK, AE_STOPPED, AE_ERR_ONNXRUNTIME or AE_ERR_NO_MEMORY.
 */
AE_API ae_status ae_detector_finish(ae_detector *detector);

/* Counters of a detector since it was made. */
typedef struct ae_detector_stats {
    uint64_t lines;           /* lines pushed */
    uint64_t blank;           /* blank lines skipped */
    uint64_t refused;         /* lines the matcher refused */
    uint64_t unknown;         /* lines of the unknown key */
    uint64_t keys_judged;     /* DeepLog verdicts (one per line and session) */
    uint64_t deeplog_anomalies;
    uint64_t windows_scored;  /* MSCRED windows */
    uint64_t mscred_alarms;
    size_t sessions;          /* DeepLog sessions held now plus those that ended */
} ae_detector_stats;

/*
 * The detector's counters.
 * @return AE_OK and *stats filled; AE_ERR_INVALID_ARGUMENT for a NULL argument.
 */
AE_API ae_status ae_detector_stats_get(const ae_detector *detector, ae_detector_stats *stats);

/*
 * The message of the detector's last failure or refused line.
 * @return a NUL-terminated message valid until the next call on the detector; "" if none.
 */
AE_API const char *ae_detector_errmsg(const ae_detector *detector);

/*
 * Free a detector (without flushing: call ae_detector_finish first to get pending verdicts).
 * @return nothing; a NULL detector is a no-op.
 */
AE_API void ae_detector_free(ae_detector *detector);

/* ---------------------------------------------------------------------------------------------
 * ========================= Advanced API (may change in a minor version) =========================
 *
 * Raw onnxruntime sessions and the matcher's diagnostics, for tools (`alog-edge selftest`,
 * `alog-edge match --explain`) and for parity checks; the stable API above does not need them.
 */

/* ---------------------------------------------------------------------------------------------
 * ONNX model sessions (the onnxruntime C API underneath)
 */

typedef struct ae_session ae_session;

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
AE_API const char *ae_dtype_name(ae_dtype dtype);

/*
 * Size in bytes of one element of a type.
 * @return the size, or 0 for AE_DTYPE_UNSUPPORTED.
 */
AE_API size_t ae_dtype_size(ae_dtype dtype);

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


/*
 * Load an ONNX model into a new session with its own onnxruntime environment.
 * `params` may be NULL for ae_session_default_params().
 * @return AE_OK and *out set (free it with ae_session_free); otherwise *out is NULL and err holds
 *         "<path>: <what is wrong>": AE_ERR_IO (cannot read the file), AE_ERR_ONNXRUNTIME (not a
 *         model onnxruntime can load), AE_ERR_TOO_LARGE (an input or output of rank above
 *         AE_TENSOR_MAX_RANK), AE_ERR_NO_MEMORY or AE_ERR_INVALID_ARGUMENT.
 */
AE_API ae_status ae_session_open(const char *path, const ae_session_params *params,
                                 ae_session **out, char *err, size_t err_len);

/*
 * Number of inputs of the model.
 * @return the count, or 0 for a NULL session.
 */
AE_API size_t ae_session_input_count(const ae_session *session);

/*
 * Number of outputs of the model.
 * @return the count, or 0 for a NULL session.
 */
AE_API size_t ae_session_output_count(const ae_session *session);

/*
 * Description of input `index` (in the model's order).
 * @return a description valid until ae_session_free; NULL if index is out of range.
 */
AE_API const ae_tensor_info *ae_session_input(const ae_session *session, size_t index);

/*
 * Description of output `index` (in the model's order).
 * @return a description valid until ae_session_free; NULL if index is out of range.
 */
AE_API const ae_tensor_info *ae_session_output(const ae_session *session, size_t index);

/*
 * Run the model: `inputs` are all its inputs in the model's order; `outputs` receive all its
 * outputs in the model's order (dtype, rank and dims are set; the elements are copied into
 * data when size suffices). Input elements are not modified.
 * @return AE_OK; AE_ERR_INVALID_ARGUMENT for a wrong count, type, rank, size or a too small output
 *         buffer; AE_ERR_ONNXRUNTIME when onnxruntime fails; AE_ERR_NO_MEMORY. The detail is in
 *         ae_session_errmsg.
 */
AE_API ae_status ae_session_run(ae_session *session, const ae_tensor *inputs, size_t n_inputs,
                                ae_tensor *outputs, size_t n_outputs);

/*
 * The message of the last failure of a session.
 * @return a NUL-terminated message valid until the next call on the session; "" if none.
 */
AE_API const char *ae_session_errmsg(const ae_session *session);

/*
 * Release a session and its onnxruntime environment.
 * @return nothing; a NULL session is a no-op.
 */
AE_API void ae_session_free(ae_session *session);

/* ---------------------------------------------------------------------------------------------
 * The matcher's diagnostics
 */

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
 * As ae_matcher_match, with the intermediate results (content, masked content, token count,
 * cluster id) for diagnostics (`alog-edge match --explain`).
 * @return as ae_matcher_match; detail->index and detail->template_ are set on every status.
 */
AE_API ae_status ae_matcher_match_detail(ae_matcher *matcher, const char *line, size_t len,
                                         ae_match_detail *detail);

/*
 * Whether a line (without its "\n") fits the format, i.e. line_regex matches it: with multiline
 * records a line that does not fit continues the record before it.
 * @return 1 it fits, 0 it does not, -1 the regex engine gave up or the arguments are NULL.
 */
AE_API int ae_matcher_line_fits(ae_matcher *matcher, const char *line, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ALOG_EDGE_H */

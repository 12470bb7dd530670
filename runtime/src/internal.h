/*
 * internal.h - helpers shared by the runtime's sources and its tests; not part of the public API.
 */
#ifndef ALOG_EDGE_INTERNAL_H
#define ALOG_EDGE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "alog_edge.h"

#if defined(__GNUC__)
#define AE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define AE_PRINTF(fmt, args)
#endif

/*
 * Write a message into a caller-owned buffer (NULL or 0 bytes: nothing is written), truncated to
 * fit and always NUL-terminated.
 * @return status, so that callers can `return ae_fail(...)`.
 */
ae_status ae_fail(ae_status status, char *err, size_t err_len, const char *fmt, ...) AE_PRINTF(4, 5);

/*
 * As ae_fail, with a va_list.
 * @return status.
 */
ae_status ae_vfail(ae_status status, char *err, size_t err_len, const char *fmt, va_list ap)
    AE_PRINTF(4, 0);

/*
 * As ae_vfail, with "<path>: " before the message (the form of every loader's error).
 * @return status.
 */
ae_status ae_vfail_file(ae_status status, char *err, size_t err_len, const char *path, const char *fmt,
                        va_list ap) AE_PRINTF(5, 0);

/*
 * Check that path names a regular file this process may read.
 * @return AE_OK; otherwise AE_ERR_IO with "<path>: <why>" in err.
 */
ae_status ae_check_regular_file(const char *path, char *err, size_t err_len);

/*
 * Read a whole regular file into a new buffer with a NUL byte after its `*len` bytes.
 * Files larger than max_bytes are refused with AE_ERR_TOO_LARGE before being read.
 * @return AE_OK and *data (free() it) and *len set; otherwise AE_ERR_IO, AE_ERR_TOO_LARGE or
 *         AE_ERR_NO_MEMORY with "<path>: <what>" in err.
 */
ae_status ae_read_file(const char *path, size_t max_bytes, char **data, size_t *len, char *err,
                       size_t err_len);

/*
 * Check that bytes are well-formed UTF-8 (no overlong forms, no surrogates, nothing above
 * U+10FFFF).
 * @return 1 if valid; 0 otherwise, with the offset of the first bad byte in *bad_offset.
 */
int ae_utf8_valid(const unsigned char *s, size_t len, size_t *bad_offset);

/*
 * 64-bit FNV-1a hash of bytes.
 * @return the hash.
 */
uint64_t ae_fnv1a(const void *data, size_t len);

/* 1-based line and column of a byte offset in a text, for error messages.
 * @return nothing; writes *line and *col. */
void ae_json_line_col(const char *text, size_t offset, size_t *line, size_t *col);

/* cJSON decodes the escape \u0000 into a NUL byte, which would silently cut a string short.
 * @return the offset of the backslash of the first such escape inside a string, or (size_t)-1. */
size_t ae_json_find_nul_escape(const char *text, size_t len);

/*
 * ae_vocab_load with an explicit size limit (the tests use small limits).
 * @return as ae_vocab_load.
 */
ae_status ae_vocab_load_limited(const char *path, size_t max_bytes, ae_vocab **out, char *err,
                                size_t err_len);

/* ---------------------------------------------------------------------------------------------
 * Matching (match_text.c, match_regex.c, parser.c, match.c)
 */

/*
 * Byte length of the Python whitespace code point (str.isspace()) that starts s[0..len):
 * \t \n \v \f \r, \x1c-\x1f, space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000. The bytes are expected to be valid UTF-8.
 * @return 1 to 3, or 0 if s does not start with one (or len is 0).
 */
size_t ae_py_space_at(const char *s, size_t len);

/*
 * Python's str.strip() on UTF-8 bytes: the span without leading and trailing whitespace.
 * @return nothing; [*start, *end) is the stripped span (start == end when all is whitespace).
 */
void ae_py_strip(const char *s, size_t len, size_t *start, size_t *end);

/*
 * Number of code points in valid UTF-8 bytes (Python's len() of the str).
 * @return the count.
 */
size_t ae_utf8_count(const char *s, size_t len);

/*
 * Translate a Python `re` pattern into a PCRE2 pattern (compiled with UTF + UCP) that matches
 * the same: \s and \S become Python's whitespace set, \v is \x0b, \Z is \z, \uXXXX and
 * \UXXXXXXXX become \x{...}, {,n} becomes {0,n}, and "[" inside a class is escaped (no POSIX
 * classes). \N{...}, \S inside a class and verbose mode are refused.
 * `map` (may be NULL) receives a malloc'ed array: map[i] = the offset in `py` of output byte i
 * (map[out_len] = py_len), to report PCRE2's error offsets in the user's pattern.
 * @return AE_OK with *out (malloc'ed, NUL-terminated) and *out_len; AE_ERR_FORMAT with the reason
 *         in why ("\\N{...} is not supported at offset 3"); AE_ERR_NO_MEMORY.
 */
ae_status ae_pyre_translate(const char *py, size_t py_len, char **out, size_t *out_len,
                            size_t **map, char *why, size_t why_len);

/*
 * ae_matcher_load with an explicit size limit for parser.json (the tests use small limits).
 * @return as ae_matcher_load.
 */
ae_status ae_matcher_load_limited(const char *parser_path, size_t max_bytes,
                                  const ae_vocab *vocab, ae_matcher **out, char *err,
                                  size_t err_len);

/*
 * Match line_regex's named group `name` on every later line and keep its span (fields.c reads
 * the host and timestamp groups this way, without a second run of the line regex).
 * @return AE_OK and *slot (for ae_matcher_kept); AE_ERR_NOT_FOUND if line_regex has no such
 *         group; AE_ERR_TOO_LARGE beyond AE_MATCHER_MAX_KEPT groups.
 */
#define AE_MATCHER_MAX_KEPT 16
ae_status ae_matcher_keep_group(ae_matcher *matcher, const char *name, size_t *slot);

/*
 * The span of kept group `slot` in the line of the last ae_matcher_match(_detail) that returned
 * AE_OK: bytes [*start, *start + *len) of that line.
 * @return 1 if line_regex matched and the group took part; 0 otherwise.
 */
int ae_matcher_kept(const ae_matcher *matcher, size_t slot, size_t *start, size_t *len);

/* ---------------------------------------------------------------------------------------------
 * Log timestamps (timestamp.c) and the fields of a line (fields.c)
 */

/* A parser.json timestamp format: "ISO8601" or a strptime format, read as pandas does. */
typedef struct ae_timefmt ae_timefmt;

/*
 * Compile a format (for a yearless one, the caller passes "%Y " + format and prefixes the text
 * with the year and a space, as parse.timestamps does).
 * @return AE_OK and *out; AE_ERR_FORMAT (an unsupported or repeated directive, a lone "%") or
 *         AE_ERR_NO_MEMORY, with the reason in why.
 */
ae_status ae_timefmt_new(const char *format, ae_timefmt **out, char *why, size_t why_len);

/*
 * Parse valid UTF-8 text: microseconds since the epoch, UTC for ISO 8601 text with an offset,
 * naive (taken as UTC) otherwise, truncated to the microsecond.
 * @return 1 and *us; 0 when pandas would give NaT.
 */
int ae_timefmt_parse(ae_timefmt *fmt, const char *text, size_t len, int64_t *us);

/*
 * A format for another thread: it shares the compiled regex of `fmt`, which must outlive it.
 * @return AE_OK and *out, or AE_ERR_NO_MEMORY.
 */
ae_status ae_timefmt_clone(const ae_timefmt *fmt, ae_timefmt **out);

/*
 * @return nothing; NULL is a no-op.
 */
void ae_timefmt_free(ae_timefmt *fmt);

/* A piece of text that is not NUL-terminated. */
typedef struct ae_strspan {
    const char *p;
    size_t len;
} ae_strspan;

/* What parser.json says about a line's host, timestamp and session ids (fields.c). */
typedef struct ae_fields ae_fields;

/*
 * Read host_field, session_regex and timestamp {fields, format, yearless} from a parser.json
 * that `matcher` was loaded from, and ask the matcher to keep the groups they name.
 * @return AE_OK and *out; AE_ERR_FORMAT (a mistyped field, a group line_regex lacks, a bad
 *         session_regex or timestamp format), AE_ERR_IO, AE_ERR_NO_MEMORY, with
 *         "<path>: <what>" in err.
 */
ae_status ae_fields_load(const char *parser_path, ae_matcher *matcher, ae_fields **out,
                         char *err, size_t err_len);

/* @return 1 if parser.json gives timestamps (a format and fields), 0 otherwise. */
int ae_fields_has_timestamp(const ae_fields *fields);

/*
 * The host of the line of the matcher's last AE_OK match (`line` is that line).
 * @return 1 and *host (pointing into line); 0 when there is none (no host_field, or the format
 *         did not match).
 */
int ae_fields_host(const ae_fields *fields, const ae_matcher *matcher, const char *line,
                   ae_strspan *host);

/*
 * The timestamp of the line of the matcher's last AE_OK match; `year` completes a yearless
 * format.
 * @return 1 and *us; 0 when missing or unparsable; -1 when out of memory.
 */
int ae_fields_timestamp(ae_fields *fields, const ae_matcher *matcher, const char *line,
                        int year, int64_t *us);

/*
 * The session keys a content names, as parse.sessions + dataset.session_of_lines make them:
 * session_regex's matches (group 1 if it has groups), duplicates dropped keeping order, joined
 * by spaces and split at every space again.
 * @return AE_OK with *ids (pointing into content, valid until the next call) and *n (0: none);
 *         AE_ERR_TOO_LARGE (the regex engine gave up) or AE_ERR_NO_MEMORY, with the reason in
 *         why.
 */
ae_status ae_fields_sessions(ae_fields *fields, const char *content, size_t len,
                             const ae_strspan **ids, size_t *n, char *why, size_t why_len);

/*
 * Fields for another thread (per-line buffers of its own; the regexes of `fields`, which must
 * outlive it). Use it with a clone of the matcher `fields` was loaded with.
 * @return AE_OK and *out, or AE_ERR_NO_MEMORY.
 */
ae_status ae_fields_clone(const ae_fields *fields, ae_fields **out);

/*
 * @return nothing; NULL is a no-op.
 */
void ae_fields_free(ae_fields *fields);

/* ---------------------------------------------------------------------------------------------
 * A string -> index hash map (strmap.c): open addressing, linear probing, deletion by backward
 * shift. Keys are borrowed: they must outlive their entries.
 */

typedef struct ae_strmap_slot {
    uint64_t hash;
    const char *key;
    size_t len;
    uint32_t value;
    uint32_t used;
} ae_strmap_slot;

typedef struct ae_strmap {
    ae_strmap_slot *slots;
    size_t mask, count;
} ae_strmap;

/* The hash ae_strmap uses for a key. @return the hash. */
uint64_t ae_strmap_hash(const char *key, size_t len);

/* @return 1 and *value if the key is there, 0 otherwise. */
int ae_strmap_get(const ae_strmap *map, const char *key, size_t len, uint64_t hash,
                  uint32_t *value);

/* Insert an absent key. @return 0, or -1 when out of memory. */
int ae_strmap_put(ae_strmap *map, const char *key, size_t len, uint64_t hash, uint32_t value);

/* Remove a key if present. @return nothing. */
void ae_strmap_del(ae_strmap *map, const char *key, size_t len, uint64_t hash);

/* @return nothing; frees the slots (not the keys). */
void ae_strmap_free(ae_strmap *map);

/* ---------------------------------------------------------------------------------------------
 * The matcher's string arena and id maps (strmap.c, beside ae_strmap): open addressing, linear
 * probing, no deletion.
 */

/* "none" for the uint32 ids below: node and state 0 are the roots, template ordinals are
 * stored + 1. */
#define AE_NONE 0u

/* Strings copied out of the JSON tree, in blocks freed together. */
typedef struct ae_arena_block {
    struct ae_arena_block *next;
    size_t used, cap;
    char data[];
} ae_arena_block;

/* (parent id, bytes) -> child id: the drain trie's exact children. */
typedef struct ae_kmap_slot {
    uint64_t hash;
    const char *key;
    uint32_t key_len;
    uint32_t parent;
    uint32_t child; /* AE_NONE: empty slot */
} ae_kmap_slot;

typedef struct ae_kmap {
    ae_kmap_slot *slots;
    size_t mask, count;
} ae_kmap;

/* uint64 -> uint32: drain roots by token count, Aho-Corasick transitions. */
typedef struct ae_imap_slot {
    uint64_t key;
    uint32_t value;
    uint32_t used;
} ae_imap_slot;

typedef struct ae_imap {
    ae_imap_slot *slots;
    size_t mask, count;
} ae_imap;

/* Copy bytes with a NUL after them into the arena. @return the copy, or NULL out of memory. */
const char *ae_arena_copy(ae_arena_block **arena, const char *s, size_t len);
/* @return nothing; frees every block. */
void ae_arena_free(ae_arena_block **arena);

/* @return the child of (parent, key), or AE_NONE. */
uint32_t ae_kmap_get(const ae_kmap *map, uint32_t parent, const char *key, size_t len);
/* Insert (the key must be absent and outlive the map). @return 0, or -1 out of memory. */
int ae_kmap_put(ae_kmap *map, uint32_t parent, const char *key, size_t len, uint32_t child);
/* @return the value of key, or AE_NONE. */
uint32_t ae_imap_get(const ae_imap *map, uint64_t key);
/* Insert an absent key. @return 0, or -1 out of memory. */
int ae_imap_put(ae_imap *map, uint64_t key, uint32_t value);

/* Grow an array of `size`-byte elements to hold at least `need`. @return 0, or -1. */
int ae_reserve(void **array, size_t *cap, size_t need, size_t size);

/* ---------------------------------------------------------------------------------------------
 * onnxruntime runs over caller-owned buffers (ortsession.c)
 */

/* Session options beyond ae_session_params (ae_session_open uses the defaults: both on). */
typedef struct ae_session_tuning {
    int cpu_arena;   /* onnxruntime's CPU memory arena */
    int mem_pattern; /* onnxruntime's memory pattern planning */
    int spinning;    /* worker threads spin while waiting for work (off: they sleep) */
    int prepacking;  /* weights copied into kernel layouts at load (off: used in place) */
    int preoptimized; /* the graph was optimised at convert time: no optimisation at load */
} ae_session_tuning;

/* Drops the clean pages of onnxruntime's library from this process (ortmemory.c). */
void ae_ort_release_load_pages(void);

/*
 * ae_session_open with tuning.
 * @return as ae_session_open.
 */
ae_status ae_session_open_tuned(const char *path, const ae_session_params *params,
                                const ae_session_tuning *tuning, ae_session **out, char *err,
                                size_t err_len);

/*
 * A run of one named input to some named outputs (not necessarily all of them) whose
 * onnxruntime values wrap the caller's buffers and are kept while the buffers and shapes stay
 * the same: a repeated run allocates nothing on this side of onnxruntime.
 */
typedef struct ae_bound_run ae_bound_run;

/*
 * @return AE_OK and *out; AE_ERR_INVALID_ARGUMENT (a name the model lacks, more than
 *         AE_BOUND_MAX_OUTPUTS outputs) or AE_ERR_NO_MEMORY, with the reason in err.
 */
#define AE_BOUND_MAX_OUTPUTS 4
ae_status ae_bound_run_new(const ae_session *session, const char *input,
                           const char *const *outputs, size_t n_outputs, ae_bound_run **out,
                           char *err, size_t err_len);

/*
 * Run: `input` is read in place; each output is written straight into outputs[i].data, whose
 * dims the caller sets to the shape the model produces (a mismatch fails in onnxruntime).
 * The session is only read: bound runs of one session may run on several threads at once.
 * @return AE_OK; AE_ERR_INVALID_ARGUMENT (wrong dtype, size); AE_ERR_ONNXRUNTIME;
 *         AE_ERR_NO_MEMORY; the detail in ae_bound_run_errmsg.
 */
ae_status ae_bound_run_exec(ae_bound_run *run, const ae_tensor *input, const ae_tensor *outputs);

/*
 * The message of the run's last failure.
 * @return a NUL-terminated message valid until the next ae_bound_run_exec; "" if none.
 */
const char *ae_bound_run_errmsg(const ae_bound_run *run);

/*
 * @return nothing; NULL is a no-op.
 */
void ae_bound_run_free(ae_bound_run *run);

#endif /* ALOG_EDGE_INTERNAL_H */

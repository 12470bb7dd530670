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

#endif /* ALOG_EDGE_INTERNAL_H */

/*
 * cli_borrowed.h - the one private header the alog-edge CLI includes: what it borrows from the
 * library's internals (not part of the public API, linked from the static library):
 * - internal.h: Python's UTF-8 and whitespace rules (ae_utf8_valid, ae_py_strip,
 *   ae_line_is_blank's helpers) for score's and templates' input, ae_read_file for bench;
 * - jsonfile.h: golden.json read as the loaders read their JSON (selftest);
 * - verify.h: minisign signatures and bundle manifests (verify).
 */
#ifndef ALOG_EDGE_CLI_BORROWED_H
#define ALOG_EDGE_CLI_BORROWED_H

#include "internal.h"
#include "jsonfile.h"
#include "verify.h"

#endif /* ALOG_EDGE_CLI_BORROWED_H */

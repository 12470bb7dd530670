/*
 * ae_test.h - the runtime's small test harness.
 *
 * A test module test_<module>.c defines cases with AE_TEST(<module>_<what it shows>), each named
 * as a sentence, and ends with `#include "test_<module>_cases.h"` and `AE_TEST_MAIN()`.
 * runtime/tests/CMakeLists.txt reads the AE_TEST lines, generates test_<module>_cases.h (the
 * case table) and registers one ctest test per case: `test_<module> <case>` runs one case,
 * `test_<module>` runs them all and `test_<module> --list` lists them.
 */
#ifndef AE_TEST_H
#define AE_TEST_H

#include <stddef.h>

#include "alog_edge.h"

typedef struct ae_test_case {
    const char *name;
    void (*run)(void);
} ae_test_case;

/*
 * Record a failure of the running case, with a printf-style message.
 * @return nothing.
 */
void ae_test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A fresh temporary directory for the running case, removed with its files after the case.
 * @return its path.
 */
const char *ae_test_tmpdir(void);

/*
 * Write `len` bytes to <ae_test_tmpdir()>/<name> (removed after the case).
 * @return the file's path, valid during the case.
 */
const char *ae_test_write(const char *name, const void *content, size_t len);

/*
 * As ae_test_write, for a NUL-terminated text.
 * @return the file's path, valid during the case.
 */
const char *ae_test_write_text(const char *name, const char *text);

/*
 * Run the case named by argv[1], all cases without an argument, or list them with --list.
 * @return the process exit status: 0 if every case run passed.
 */
int ae_test_main(int argc, char **argv, const ae_test_case *cases, size_t n_cases);

#define AE_TEST(name) static void name(void)

#define AE_TEST_MAIN()                                                                           \
    static const ae_test_case ae_test_cases_[] = {                                              \
        AE_TEST_CASES_                                                                           \
    };                                                                                           \
    int main(int argc, char **argv)                                                              \
    {                                                                                            \
        return ae_test_main(argc, argv, ae_test_cases_,                                          \
                            sizeof ae_test_cases_ / sizeof ae_test_cases_[0]);                   \
    }

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            ae_test_fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);                             \
            return;                                                                              \
        }                                                                                        \
    } while (0)

#define CHECK_STATUS(expr, expected)                                                             \
    do {                                                                                         \
        ae_status got_ = (expr);                                                                 \
        if (got_ != (expected)) {                                                                \
            ae_test_fail_at(__FILE__, __LINE__, "%s gave %s (%d), expected %s", #expr,           \
                            ae_strerror(got_), (int)got_, #expected);                            \
            return;                                                                              \
        }                                                                                        \
    } while (0)

#define CHECK_SIZE(actual, expected)                                                             \
    do {                                                                                         \
        size_t a_ = (actual), e_ = (expected);                                                   \
        if (a_ != e_) {                                                                          \
            ae_test_fail_at(__FILE__, __LINE__, "%s is %zu, expected %zu", #actual, a_, e_);    \
            return;                                                                              \
        }                                                                                        \
    } while (0)

#define CHECK_STR(actual, expected)                                                              \
    do {                                                                                         \
        const char *a_ = (actual), *e_ = (expected);                                             \
        if (a_ == NULL || strcmp(a_, e_) != 0) {                                                 \
            ae_test_fail_at(__FILE__, __LINE__, "%s is \"%s\", expected \"%s\"", #actual,       \
                            a_ ? a_ : "(null)", e_);                                             \
            return;                                                                              \
        }                                                                                        \
    } while (0)

#define CHECK_CONTAINS(text, part)                                                               \
    do {                                                                                         \
        const char *t_ = (text), *p_ = (part);                                                   \
        if (t_ == NULL || strstr(t_, p_) == NULL) {                                              \
            ae_test_fail_at(__FILE__, __LINE__, "%s is \"%s\", which lacks \"%s\"", #text,      \
                            t_ ? t_ : "(null)", p_);                                             \
            return;                                                                              \
        }                                                                                        \
    } while (0)

#endif /* AE_TEST_H */

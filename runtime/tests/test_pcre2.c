/*
 * test_pcre2.c - the packaged PCRE2 (toolchains/recipes/pcre2) has what the log matcher needs:
 * the 8-bit library with Unicode (UTF + UCP) and a working JIT on this target.
 */
#include <string.h>

#include <pcre2.h>

#include "ae_test.h"

AE_TEST(pcre2_is_built_with_unicode_and_jit)
{
    uint32_t unicode = 0, jit = 0;
    CHECK(pcre2_config(PCRE2_CONFIG_UNICODE, &unicode) == 0);
    CHECK(pcre2_config(PCRE2_CONFIG_JIT, &jit) == 0);
    CHECK(unicode == 1);
    CHECK(jit == 1);
}

AE_TEST(pcre2_jit_matches_unicode_words_with_ucp)
{
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR) "blk_(-?\\d+) \\w+", PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &code, &offset, NULL);
    CHECK(re != NULL);
    int jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    const char *subject = "deleting blk_-4292382298 caf\xc3\xa9 done";
    int rc = md == NULL ? -1
                        : pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL);
    PCRE2_SIZE *ov = md == NULL ? NULL : pcre2_get_ovector_pointer(md);
    int ok = jit == 0 && rc == 2 && ov[0] == 9 && ov[1] == 30 && ov[2] == 13 && ov[3] == 24;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    CHECK(jit == 0);
    CHECK(rc == 2);
    CHECK(ok);
}

#include "test_pcre2_cases.h"
AE_TEST_MAIN()

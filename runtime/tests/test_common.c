/*
 * test_common.c - status texts, version and the UTF-8 and hashing helpers.
 */
#include <string.h>

#include "ae_test.h"
#include "internal.h"

AE_TEST(common_strerror_names_every_status)
{
    CHECK_STR(ae_strerror(AE_OK), "success");
    CHECK_STR(ae_strerror(AE_ERR_INVALID_ARGUMENT), "invalid argument");
    CHECK_STR(ae_strerror(AE_ERR_NO_MEMORY), "out of memory");
    CHECK_STR(ae_strerror(AE_ERR_IO), "input/output error");
    CHECK_STR(ae_strerror(AE_ERR_TOO_LARGE), "too large");
    CHECK_STR(ae_strerror(AE_ERR_FORMAT), "malformed content");
    CHECK_STR(ae_strerror(AE_ERR_NOT_FOUND), "not found");
    CHECK_STR(ae_strerror(AE_ERR_ONNXRUNTIME), "onnxruntime error");
    CHECK_STR(ae_strerror(AE_BLANK), "blank line");
    CHECK_STR(ae_strerror(AE_STOPPED), "stopped by the callback");
    CHECK_STR(ae_strerror((ae_status)1000), "unknown status");
}

AE_TEST(common_outcomes_that_are_not_errors_have_codes_apart_from_the_errors)
{
    /* a caller may test `status >= AE_BLANK` for "not an error, not AE_OK" */
    CHECK(AE_OK == 0 && AE_ERR_ONNXRUNTIME < 100);
    CHECK(AE_BLANK >= 100 && AE_STOPPED >= 100 && AE_BLANK != AE_STOPPED);
}

AE_TEST(common_version_string_and_number_name_the_same_three_part_version)
{
    const char *v = ae_version();
    unsigned part[3] = {0, 0, 0};
    size_t i = 0, digits = 0;
    for (const char *p = v; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9' && digits < 2) {
            part[i] = part[i] * 10 + (unsigned)(*p - '0');
            digits++;
        } else if (*p == '.' && digits > 0 && i < 2) {
            i++;
            digits = 0;
        } else {
            CHECK(!"ae_version() is MAJOR.MINOR.PATCH with parts of one or two digits");
            return;
        }
    }
    CHECK(i == 2 && digits > 0);
    /* zstd's encoding is unambiguous only with MINOR and PATCH below 100 */
    CHECK(ae_version_number() == part[0] * 10000 + part[1] * 100 + part[2]);
}

AE_TEST(common_utf8_validator_accepts_every_well_formed_sequence_length)
{
    const char *ok[] = {"", "ascii", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf",
                        "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        CHECK(ae_utf8_valid((const unsigned char *)ok[i], strlen(ok[i]), NULL));
}

AE_TEST(common_utf8_validator_rejects_overlongs_surrogates_and_truncation)
{
    struct {
        const char *text;
        size_t bad;
    } cases[] = {
        {"a\x80", 1},             /* a lone continuation byte */
        {"ab\xc0\xaf", 2},        /* overlong '/' */
        {"\xc1\xbf", 0},          /* overlong */
        {"\xe0\x9f\xbf", 0},      /* overlong 3-byte form */
        {"\xed\xa0\x80", 0},      /* UTF-16 surrogate */
        {"\xf0\x8f\xbf\xbf", 0},  /* overlong 4-byte form */
        {"\xf4\x90\x80\x80", 0},  /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 0},  /* no such lead byte */
        {"ok\xe6\x97", 2},        /* truncated at the end */
        {"\xe6\x41\x41", 0},      /* continuation missing */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t bad = 99;
        CHECK(!ae_utf8_valid((const unsigned char *)cases[i].text, strlen(cases[i].text), &bad));
        CHECK_SIZE(bad, cases[i].bad);
    }
}

AE_TEST(common_fnv1a_hashes_match_the_reference_values)
{
    /* Reference values of 64-bit FNV-1a. */
    CHECK(ae_fnv1a("", 0) == 0xcbf29ce484222325u);
    CHECK(ae_fnv1a("a", 1) == 0xaf63dc4c8601ec8cu);
    CHECK(ae_fnv1a("foobar", 6) == 0x85944171f73967e8u);
}

#include "test_common_cases.h"
AE_TEST_MAIN()

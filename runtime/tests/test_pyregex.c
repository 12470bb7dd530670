/*
 * test_pyregex.c - Python `re` patterns translated for PCRE2 (UTF + UCP).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ae_test.h"
#include "internal.h"

#define SPACES                                                                                   \
    "\\t-\\r\\x1c-\\x20\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"    \
    "\\x{205f}\\x{3000}"

/* The translation of a pattern, or "ERROR: <why>" (a static buffer). */
static const char *tr(const char *py)
{
    static char out[1024];
    char *t = NULL, why[256];
    size_t len = 0;
    if (ae_pyre_translate(py, strlen(py), &t, &len, NULL, why, sizeof why) != AE_OK) {
        snprintf(out, sizeof out, "ERROR: %s", why);
        return out;
    }
    snprintf(out, sizeof out, "%s", t);
    free(t);
    return out;
}

AE_TEST(pyregex_turns_s_and_capital_s_into_python_whitespace)
{
    CHECK_STR(tr("a\\sb\\S+"), "a[" SPACES "]b[^" SPACES "]+");
    CHECK_STR(tr("[^\\s\"']+"), "[^" SPACES "\"']+");
}

AE_TEST(pyregex_refuses_capital_s_inside_a_class_named_characters_and_verbose_mode)
{
    CHECK_STR(tr("[\\S,]"), "ERROR: \\S inside a character class is not supported (offset 1)");
    CHECK_STR(tr("a\\N{EM DASH}"),
              "ERROR: named characters (\\N{...}) are not supported (offset 1)");
    CHECK_STR(tr("(?x) a b"), "ERROR: verbose mode ((?x)) is not supported (offset 0)");
    CHECK_STR(tr("(?ix:a)"), "ERROR: verbose mode ((?x)) is not supported (offset 0)");
    CHECK_STR(tr("(?i-x:a)"), "(?i-x:a)");
}

AE_TEST(pyregex_escapes_an_opening_bracket_inside_a_class_but_keeps_a_leading_closing_one)
{
    CHECK_STR(tr("[[:alpha:]]+"), "[\\[:alpha:]]+");
    CHECK_STR(tr("[]a]"), "[]a]");
    CHECK_STR(tr("[^]a]"), "[^]a]");
    CHECK_STR(tr("[a\\]b]"), "[a\\]b]");
}

AE_TEST(pyregex_turns_v_capital_z_and_unicode_escapes_into_pcre2_forms)
{
    CHECK_STR(tr("a\\v\\Z"), "a\\x0b\\z");
    CHECK_STR(tr("\\u00e9\\U0001F600"), "\\x{e9}\\x{1f600}");
    CHECK_STR(tr("\\u00e"), "ERROR: bad escape \\u at offset 0");
    CHECK_STR(tr("\\U00110000"), "ERROR: bad escape \\U at offset 0");
}

AE_TEST(pyregex_gives_an_omitted_lower_bound_a_zero)
{
    CHECK_STR(tr("a{,3}b{,}c{2,}d{}"), "a{0,3}b{0,}c{2,}d{}");
}

AE_TEST(pyregex_keeps_the_default_masks_as_they_are)
{
    const char *same[] = {
        "\\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\b",
        "(?<![\\w.])(?:\\d{1,3}\\.){3}\\d{1,3}(?::\\d{1,5})?(?![\\w.])",
        "(?<![\\w/.:~-])(?:/[\\w.@%+~-]+)+/?",
        "\\b(?=[0-9a-fA-F]*\\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\\b",
        "(?<=[=:])-?\\d+\\b",
        "^(?P<Date>.*?)(?P<Content>.*?)$",
        "caf\xc3\xa9\\\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        CHECK_STR(tr(same[i]), same[i]);
}

AE_TEST(pyregex_maps_output_offsets_back_to_the_python_pattern)
{
    char *t = NULL, why[64];
    size_t len = 0, *map = NULL;
    CHECK_STATUS(ae_pyre_translate("a\\s(", 4, &t, &len, &map, why, sizeof why), AE_OK);
    CHECK(t[len - 1] == '(');
    CHECK_SIZE(map[0], 0);
    CHECK_SIZE(map[1], 1);        /* "[" of the expansion of \s */
    CHECK_SIZE(map[len - 1], 3);  /* "(" */
    CHECK_SIZE(map[len], 4);
    free(t);
    free(map);
}

#include "test_pyregex_cases.h"
AE_TEST_MAIN()

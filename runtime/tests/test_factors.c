/*
 * test_factors.c - the class sequences read from mask patterns (match_factors.c) never skip a
 * text PCRE2 matches, and the line format's greedy tail (match_regex.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ae_test.h"
#include "internal.h"
#include "match_impl.h"

static int present(const char *pattern, const char *text)
{
    ae_factor_reqs r;
    ae_factors_of(pattern, strlen(pattern), &r);
    return ae_factors_present(&r, text, strlen(text));
}

static unsigned alternatives(const char *pattern)
{
    ae_factor_reqs r;
    ae_factors_of(pattern, strlen(pattern), &r);
    return r.n_alts;
}

AE_TEST(factors_of_a_date_mask_need_its_digits_and_dashes_side_by_side)
{
    const char *date = "\\b\\d{4}-\\d{2}-\\d{2}(?![\\w:])";
    CHECK(alternatives(date) == 1);
    CHECK(present(date, "on 2024-01-02 at noon"));
    CHECK(!present(date, "on 2024-01 at noon, blk_-1608999687919862906"));
}

AE_TEST(factors_of_a_repeated_group_hold_for_every_copy)
{
    const char *mac = "\\b(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}\\b";
    CHECK(present(mac, "link 00:1a:2B:3c:4d:5e up"));
    CHECK(!present(mac, "src: /10.250.19.102:54106 dest: 10:20"));
    const char *host = "(?<![\\w.-])(?:[a-zA-Z0-9-]+\\.)+[a-zA-Z][a-zA-Z0-9-]*:\\d{1,5}(?![\\w.])";
    CHECK(present(host, "to node-1.example.com:8080 now"));
    CHECK(!present(host, "NameSystem.addStoredBlock: blockMap updated"));
}

AE_TEST(factors_of_top_level_alternatives_hold_when_one_alternative_holds)
{
    const char *path = "(?<![\\w/.:~-])(?:/[\\w.@%+~-]+)+/?|(?<![\\w.])[A-Za-z]:\\\\[^\\s\\\"'<>|]*";
    CHECK(alternatives(path) == 2);
    CHECK(present(path, "open /var/log/x"));
    CHECK(present(path, "open C:\\temp"));
    CHECK(!present(path, "src: <IP> dest: <IP>"));
}

AE_TEST(factors_are_not_read_from_what_the_reader_does_not_know)
{
    CHECK(alternatives("(?i)abc") == 0);          /* flags */
    CHECK(alternatives("(a)\\1") == 0);           /* a backreference */
    CHECK(alternatives("a+|b*") == 0);            /* an alternative that needs nothing */
    CHECK(alternatives("x(?:ab|cd)y") == 1);      /* a group with alternatives: a gap */
    CHECK(alternatives("\\d+") == 0);             /* classes only: not worth a scan */
    CHECK(present("(?i)abc", "ABC"));
    CHECK(present("\\N{DIGIT ONE}", "1"));
}

/* Random ASCII texts: wherever PCRE2 finds a match of a mask, its factors are present. */
AE_TEST(factors_never_rule_out_a_text_that_pcre2_matches)
{
    static const char *patterns[] = {
        "(?<![\\w+.-])[a-zA-Z][a-zA-Z0-9+.-]*://[^\\s\\\"'<>]+",
        "(?<![\\w.+-])[\\w.+-]+@[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)+",
        "\\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\b",
        "\\b\\d{4}-\\d{2}-\\d{2}(?:[T ]\\d{2}:\\d{2}(?::\\d{2})?(?:[.,]\\d+)?(?:Z|[+-]\\d{2}:?\\d{2})?)?(?![\\w:])",
        "(?<![\\w:.])\\d{1,2}:\\d{2}:\\d{2}(?:[.,]\\d+)?(?![\\w:])",
        "\\b(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}\\b",
        "(?<![\\w.])(?:\\d{1,3}\\.){3}\\d{1,3}(?::\\d{1,5})?(?:,\\s?(?:\\d{1,3}\\.){3}\\d{1,3}(?::\\d{1,5})?)*(?![\\w.])",
        "(?<![\\w.-])(?:[a-zA-Z0-9-]+\\.)+[a-zA-Z][a-zA-Z0-9-]*:\\d{1,5}(?![\\w.])",
        "(?<![\\w/.:~-])(?:/[\\w.@%+~-]+)+/?|(?<![\\w.])[A-Za-z]:\\\\[^\\s\\\"'<>|]*",
        "\\[[^\\[\\]\\s,]*(?:,\\s?[^\\[\\]\\s,]*)+\\]",
        "\\b0[xX][0-9a-fA-F]+\\b",
        "a{2,3}b{3}-{1,}c",
    };
    static const char alphabet[] = "0123456789abcfxAFZ-:./@[], \\_=T";
    unsigned long long seed = 12345;
    size_t matched = 0;
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        char *translated = NULL, why[256];
        size_t tlen = 0;
        CHECK_STATUS(ae_pyre_translate(patterns[p], strlen(patterns[p]), &translated, &tlen, NULL,
                                       why, sizeof why),
                     AE_OK);
        int code;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)translated, tlen, PCRE2_UTF, &code, &off, NULL);
        free(translated);
        CHECK(re != NULL);
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        ae_factor_reqs reqs;
        ae_factors_of(patterns[p], strlen(patterns[p]), &reqs);
        for (int t = 0; t < 20000; t++) {
            char text[48];
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t n = 4 + (size_t)((seed >> 33) % 40);
            for (size_t i = 0; i < n; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                text[i] = alphabet[(seed >> 33) % (sizeof alphabet - 1)];
            }
            text[n] = '\0';
            if (pcre2_match(re, (PCRE2_SPTR)text, n, 0, 0, md, NULL) >= 0) {
                matched++;
                if (!ae_factors_present(&reqs, text, n)) {
                    ae_test_fail_at(__FILE__, __LINE__, "pattern %zu matches \"%s\" but its factors say no",
                                    p, text);
                    break;
                }
            }
        }
        pcre2_match_data_free(md);
        pcre2_code_free(re);
    }
    CHECK(matched > 1000); /* the texts do reach the masks */
}

AE_TEST(factors_the_line_format_ending_in_a_lazy_group_gets_a_greedy_one)
{
    char *g = ae_pyre_greedy_tail("^(?P<Date>.*?)\\s+(?P<Content>.*?)$");
    CHECK_STR(g, "^(?P<Date>.*?)\\s+(?P<Content>.*)$");
    free(g);
    CHECK(ae_pyre_greedy_tail("(?s)^(?P<Content>.*?)$") == NULL);
    CHECK(ae_pyre_greedy_tail("^(?P<Content>.*?)x$") == NULL);
    CHECK(ae_pyre_greedy_tail("^(?P<Content>\\.*?)$") == NULL);
}

#include "test_factors_cases.h"
AE_TEST_MAIN()

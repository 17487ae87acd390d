/* test_utf8.c - unit tests for the UTF-8 validator (core/utf8.c): valid
 * text of every sequence length passes; truncated, overlong, surrogate,
 * out-of-range and stray continuation bytes fail at the right offset. */
#include "utf8.h"

#include "test.h"

static bool valid(const char *s)
{
    return utf8_valid(s, strlen(s), NULL);
}

static size_t bad_at(const char *s, size_t len)
{
    size_t at = (size_t)-1;
    CHECK(!utf8_valid(s, len, &at));
    return at;
}

int main(void)
{
    CHECK(valid(""));
    CHECK(valid("plain ascii {\"a\": 1}"));
    CHECK(valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")); /* é € 😀 */
    CHECK(valid("\xed\x9f\xbf"));                             /* U+D7FF, below surrogates */
    CHECK(valid("\xf4\x8f\xbf\xbf"));                         /* U+10FFFF */
    CHECK(utf8_valid("a\0b", 3, NULL));                       /* NUL is valid UTF-8 */

    CHECK(bad_at("ab\xff", 3) == 2);
    CHECK(bad_at("\x80", 1) == 0);                 /* stray continuation */
    CHECK(bad_at("x\xc3", 2) == 1);                /* truncated */
    CHECK(bad_at("\xc0\xaf", 2) == 0);             /* overlong '/' */
    CHECK(bad_at("\xe0\x80\xaf", 3) == 0);         /* overlong, 3 bytes */
    CHECK(bad_at("\xf0\x80\x80\xaf", 4) == 0);     /* overlong, 4 bytes */
    CHECK(bad_at("ok\xed\xa0\x80", 5) == 2);       /* U+D800 surrogate */
    CHECK(bad_at("\xf4\x90\x80\x80", 4) == 0);     /* above U+10FFFF */
    CHECK(bad_at("\xf5\x80\x80\x80", 4) == 0);
    CHECK(bad_at("\xe2\x82x", 3) == 0);            /* bad third byte */
    return test_summary();
}

/* test_log.c - unit tests for the log's escaping (core/log.c): control
 * characters from outside names cannot forge lines or reach the terminal,
 * bytes that are not UTF-8 are escaped, printable text and UTF-8 pass
 * unchanged, and a cut never splits an escape or a character. */
#include "log.h"

#include "test.h"

static const char *esc(const char *in, size_t cap)
{
    static char out[256];
    log_escape(in, out, cap);
    return out;
}

int main(void)
{
    CHECK_STR(esc("plain text, caf\xc3\xa9", 256), "plain text, caf\xc3\xa9");
    CHECK_STR(esc("topic\n2026-01-01 sluice error: forged", 256),
              "topic\\n2026-01-01 sluice error: forged");
    CHECK_STR(esc("\x1b[31mred\x1b[0m", 256), "\\x1b[31mred\\x1b[0m");
    CHECK_STR(esc("a\rb\tc\\d\x7f", 256), "a\\rb\\tc\\\\d\\x7f");
    CHECK_STR(esc("ab\x01", 6), "ab");      /* "\x01" needs 4 bytes: not cut in half */
    CHECK_STR(esc("abc", 3), "ab");
    CHECK_STR(esc("t.\xff\xfe caf\xe9!", 256), "t.\\xff\\xfe caf\\xe9!"); /* not UTF-8 */
    CHECK_STR(esc("x\xe2\x82\xac", 4), "x");  /* the euro sign is not cut in half */
    CHECK_STR(esc("x\xe2\x82\xac", 5), "x\xe2\x82\xac");
    CHECK(log_escape("abc", NULL, 0) == 0);
    return test_summary();
}

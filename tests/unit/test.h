/* test.h - the tiny harness every unit test uses: checks that count and
 * report failures with file and line, and a summary line ctest can read. */
#ifndef SLUICE_TEST_H
#define SLUICE_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                              \
    do {                                                                         \
        test_checks++;                                                           \
        if (!(cond)) {                                                           \
            test_failures++;                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_STR(a, b)                                                          \
    do {                                                                         \
        const char *a_ = (a), *b_ = (b);                                         \
        test_checks++;                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                 \
            test_failures++;                                                     \
            fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__,    \
                    __LINE__, b_ ? b_ : "(null)", a_ ? a_ : "(null)");           \
        }                                                                        \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                              \
    do {                                                                         \
        const char *h_ = (hay), *n_ = (needle);                                  \
        test_checks++;                                                           \
        if (!h_ || !strstr(h_, n_)) {                                            \
            test_failures++;                                                     \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, \
                    __LINE__, h_ ? h_ : "(null)", n_);                           \
        }                                                                        \
    } while (0)

static inline int test_summary(void)
{
    printf("%d passed, %d failed\n", test_checks - test_failures, test_failures);
    return test_failures ? 1 : 0;
}

#endif

/*
 * check.h - the one assertion macro of the C unit tests (sds testhelp style).
 * Each CHECK prints "ok NAME" or "not ok NAME: file:line: expression"; main
 * returns check_failures != 0.
 */
#ifndef CT_CHECK_H
#define CT_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        char check_name_[256];                                                                     \
        snprintf(check_name_, sizeof check_name_, __VA_ARGS__);                                    \
        if (cond) {                                                                                \
            printf("ok %s\n", check_name_);                                                        \
        } else {                                                                                   \
            printf("not ok %s: %s:%d: %s\n", check_name_, __FILE__, __LINE__, #cond);             \
            check_failures++;                                                                      \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

#endif

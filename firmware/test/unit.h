// A minimal unit test harness that runs the same tests on the host (g++) and on the ATmega2560
// under simavr: failure messages and test names stay in flash, output goes through ut::out.
#ifndef EM_UNIT_H
#define EM_UNIT_H

#include "../energymon_mega/src/core/em_base.h"

namespace ut {

typedef void (*TestFn)();

struct Test {
    const char* name;  // in flash
    TestFn fn;
    Test* next;
    Test(const char* name, TestFn fn);
};

// Platform output: the host writes to stdout, the AVR to UART0.
void out_char(char c);
void out_flash(const char* s);
void out_u32(uint32_t v);

void fail(const char* file, uint16_t line, const char* expr);  // strings in flash
void fail_values(const char* file, uint16_t line, const char* expr, uint32_t a, uint32_t b);
void pass();
void flash_copy(void* dst, const void* src, size_t n);

// Runs every registered test; returns the number of failed checks.
uint32_t run_all();

}  // namespace ut

// A string literal kept in flash on the AVR, for ut::out_flash.
#ifdef __AVR__
#define PSTR_OR(s) PSTR(s)
#else
#define PSTR_OR(s) (s)
#endif

#define UT_CAT2(a, b) a##b
#define UT_CAT(a, b) UT_CAT2(a, b)

#define TEST(name)                                                        \
    static void name();                                                   \
    static const char UT_CAT(name, _name)[] EM_FLASH = #name;             \
    static ut::Test UT_CAT(name, _reg)(UT_CAT(name, _name), &name);       \
    static void name()

// Each test file says UT_FILE once, so its name is stored in flash once.
#define UT_FILE static const char ut_file_[] EM_FLASH = __FILE__
#define UT_FILE_STR() ut_file_

#define CHECK(cond)                                              \
    do {                                                         \
        if (cond) {                                              \
            ut::pass();                                          \
        } else {                                                 \
            static const char ut_expr_[] EM_FLASH = #cond;       \
            ut::fail(UT_FILE_STR(), __LINE__, ut_expr_);         \
        }                                                        \
    } while (0)

// Equality of integers up to 64 bits (each side evaluated once), printing both on failure.
#define CHECK_EQ(a, b)                                                                      \
    do {                                                                                    \
        uint64_t ut_a_ = static_cast<uint64_t>(a);                                          \
        uint64_t ut_b_ = static_cast<uint64_t>(b);                                          \
        if (ut_a_ == ut_b_) {                                                               \
            ut::pass();                                                                     \
        } else {                                                                            \
            static const char ut_expr_[] EM_FLASH = #a " == " #b;                           \
            ut::fail_values(UT_FILE_STR(), __LINE__, ut_expr_, static_cast<uint32_t>(ut_a_), \
                            static_cast<uint32_t>(ut_b_));                                  \
        }                                                                                   \
    } while (0)

#endif

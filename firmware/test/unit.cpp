#include "unit.h"

namespace ut {

static Test* g_first = nullptr;
static Test* g_last = nullptr;
static uint32_t g_failed = 0;
static uint32_t g_passed = 0;
static const char* g_current = nullptr;

Test::Test(const char* n, TestFn f) : name(n), fn(f), next(nullptr) {
    if (g_last == nullptr) {
        g_first = this;
    } else {
        g_last->next = this;
    }
    g_last = this;
}

void out_flash(const char* s) {
    for (; em::flash_byte(s) != 0; ++s) {
        out_char(static_cast<char>(em::flash_byte(s)));
    }
}

void out_u32(uint32_t v) {
    char d[10];
    uint8_t n = 0;
    do {
        d[n++] = static_cast<char>('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    while (n > 0) {
        out_char(d[--n]);
    }
}

static void text(const char* ram) {
    while (*ram != 0) {
        out_char(*ram++);
    }
}

void fail(const char* file, uint16_t line, const char* expr) {
    ++g_failed;
    text("FAIL ");
    out_flash(g_current);
    text(" ");
    out_flash(file);
    text(":");
    out_u32(line);
    text(": ");
    out_flash(expr);
    text("\n");
}

void fail_values(const char* file, uint16_t line, const char* expr, uint32_t a, uint32_t b) {
    fail(file, line, expr);
    text("     got ");
    out_u32(a);
    text(" vs ");
    out_u32(b);
    text("\n");
}

void pass() {
    ++g_passed;
}

void flash_copy(void* dst, const void* src, size_t n) {
#ifdef __AVR__
    memcpy_P(dst, src, n);
#else
    memcpy(dst, src, n);
#endif
}

uint32_t run_all() {
    uint16_t tests = 0;
    for (Test* t = g_first; t != nullptr; t = t->next) {
        g_current = t->name;
        uint32_t before = g_failed;
        t->fn();
        ++tests;
        if (g_failed == before) {
            text("ok   ");
            out_flash(t->name);
            text("\n");
        }
    }
    text(g_failed == 0 ? "ALL TESTS PASSED: " : "TESTS FAILED: ");
    out_u32(tests);
    text(" tests, ");
    out_u32(g_passed);
    text(" checks passed, ");
    out_u32(g_failed);
    text(" failed\n");
    return g_failed;
}

}  // namespace ut

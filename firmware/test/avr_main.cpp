// Runs the unit tests on the ATmega2560 (under simavr): output on UART0, then sleep with
// interrupts off, which ends the simulation.
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>

#include "unit.h"

extern "C" void __cxa_pure_virtual() {
    ut::out_flash(PSTR("pure virtual call\n"));
    for (;;) {
    }
}

void ut::out_char(char c) {
    while ((UCSR0A & (1 << UDRE0)) == 0) {
    }
    UDR0 = static_cast<uint8_t>(c);
}

// Paint the free RAM between .bss and the stack, so the stack's high-water mark can be reported.
extern uint8_t __heap_start;
static const uint8_t PAINT = 0xA5;

static uint16_t paint_free_ram() {
    uint8_t here = 0;
    uint8_t* p = &__heap_start;
    uint8_t* top = &here - 64;
    uint16_t n = 0;
    for (; p < top; ++p, ++n) {
        *p = PAINT;
    }
    return n;
}

static uint16_t untouched_ram() {
    uint8_t* p = &__heap_start;
    uint16_t n = 0;
    while (*p == PAINT) {
        ++p;
        ++n;
    }
    return n;
}

int main() {
    uint16_t painted = paint_free_ram();
    UBRR0H = 0;
    UBRR0L = 8;
    UCSR0B = (1 << TXEN0);
    ut::out_flash(PSTR("int is "));
    ut::out_u32(sizeof(int) * 8);
    ut::out_flash(PSTR(" bits\n"));
    uint32_t failed = ut::run_all();
    ut::out_flash(PSTR("free RAM never touched by the stack: "));
    ut::out_u32(untouched_ram());
    ut::out_flash(PSTR(" of "));
    ut::out_u32(painted);
    ut::out_flash(PSTR(" bytes\n"));
    // A machine-readable last line for the harness.
    ut::out_flash(failed == 0 ? PSTR("SIMAVR RESULT: PASS\n") : PSTR("SIMAVR RESULT: FAIL\n"));
    cli();
    sleep_enable();
    sleep_cpu();
    return 0;
}

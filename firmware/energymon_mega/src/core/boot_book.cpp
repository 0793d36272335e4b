#include "boot_book.h"

#include "crc16.h"

namespace em {

bool BootBook::read_slot(uint8_t slot, uint32_t* boot) {
    uint8_t s[SLOT_LEN];
    for (uint8_t i = 0; i < SLOT_LEN; ++i) {
        s[i] = eeprom_.read(static_cast<uint16_t>(slot_address(slot) + i));
    }
    if (s[0] != 'B' || s[1] != '7' || get_u16(s + 6) != crc16_modbus(s, 6)) {
        return false;
    }
    *boot = get_u32(s + 2);
    return true;
}

uint32_t BootBook::begin() {
    uint32_t last = 0;
    for (uint8_t slot = 0; slot < SLOTS; ++slot) {
        uint32_t b = 0;
        if (read_slot(slot, &b) && b > last) {
            last = b;
        }
    }
    boot_ = last + 1;
    // Forget the flag of the boot this number last stood for before the number is taken.
    set_bit(boot_, false);
    uint8_t s[SLOT_LEN];
    s[0] = 'B';
    s[1] = '7';
    put_u32(s + 2, boot_);
    put_u16(s + 6, crc16_modbus(s, 6));
    // Never the slot of the previous count: a power cut mid-write leaves that one readable.
    uint16_t at = slot_address(static_cast<uint8_t>(boot_ % SLOTS));
    for (uint8_t i = 0; i < SLOT_LEN; ++i) {
        eeprom_.write(static_cast<uint16_t>(at + i), s[i]);
    }
    return boot_;
}

void BootBook::set_bit(uint32_t boot, bool on) {
    uint16_t bit = static_cast<uint16_t>(boot % WINDOW);
    uint16_t at = static_cast<uint16_t>(BITMAP_AT + bit / 8);
    uint8_t mask = static_cast<uint8_t>(1u << (bit % 8));
    uint8_t v = eeprom_.read(at);
    eeprom_.write(at, on ? static_cast<uint8_t>(v | mask) : static_cast<uint8_t>(v & ~mask));
}

void BootBook::mark_anchored() {
    set_bit(boot_, true);
}

bool BootBook::was_anchored(uint32_t boot) {
    if (boot == 0 || boot > boot_ || boot_ - boot >= WINDOW) {
        return false;
    }
    uint16_t bit = static_cast<uint16_t>(boot % WINDOW);
    return (eeprom_.read(static_cast<uint16_t>(BITMAP_AT + bit / 8)) & (1u << (bit % 8))) != 0;
}

}  // namespace em

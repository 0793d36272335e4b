// What the device remembers in EEPROM across restarts: its boot counter (the contract's `boot`)
// and which recent boots the collector has anchored, so readings left on the SD card by an
// earlier boot are sent only if the collector can place them in time.
#ifndef EM_BOOT_BOOK_H
#define EM_BOOT_BOOK_H

#include "em_base.h"

namespace em {

class Eeprom {
public:
    virtual uint8_t read(uint16_t address) = 0;
    virtual void write(uint16_t address, uint8_t value) = 0;  // skips the write if unchanged
};

class AnchorBook {
public:
    virtual bool was_anchored(uint32_t boot) = 0;
};

class BootBook : public AnchorBook {
public:
    // How many recent boots have their anchored flag remembered.
    static const uint16_t WINDOW = 512;
    static const uint16_t BASE = 0;
    static const uint8_t SLOT_LEN = 8;  // 'B' '7' boot CRC
    // The count rotates through this many slots, so each is written once per SLOTS boots and a
    // board stuck in a reset loop wears its EEPROM that much more slowly. The first two slots
    // are where earlier firmware kept its count, so an upgraded board keeps counting up.
    static const uint8_t SLOTS = 32;
    static const uint16_t BITMAP_AT = BASE + 2 * SLOT_LEN;
    static const uint16_t MORE_SLOTS_AT = BITMAP_AT + WINDOW / 8;
    static const uint16_t END = MORE_SLOTS_AT + (SLOTS - 2) * SLOT_LEN;  // first byte not used

    static uint16_t slot_address(uint8_t slot) {
        return slot < 2 ? static_cast<uint16_t>(BASE + slot * SLOT_LEN)
                        : static_cast<uint16_t>(MORE_SLOTS_AT + (slot - 2) * SLOT_LEN);
    }

    explicit BootBook(Eeprom& eeprom) : eeprom_(eeprom), boot_(0) {}

    // Count this start: returns the new boot number (1 on a fresh EEPROM).
    uint32_t begin();
    uint32_t boot() const { return boot_; }

    // The collector acknowledged a request of this boot, so it has an anchor for it.
    void mark_anchored();
    bool was_anchored(uint32_t boot) override;

private:
    bool read_slot(uint8_t slot, uint32_t* boot);
    void set_bit(uint32_t boot, bool on);

    Eeprom& eeprom_;
    uint32_t boot_;
};

}  // namespace em

#endif

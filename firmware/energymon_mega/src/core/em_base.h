// Shared basics of the portable core: fixed-width types, the reading, strings kept in flash.
// Plain C++11 with no Arduino header, so it builds with g++ on a host and avr-gcc for the board.
#ifndef EM_BASE_H
#define EM_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __AVR__
#include <avr/pgmspace.h>
#define EM_FLASH PROGMEM
#else
#define EM_FLASH
#endif

namespace em {

// A pointer to a NUL-terminated string stored in flash on the AVR (in ordinary memory on a host).
// Its own type, so a RAM pointer can never be read with the flash accessor by mistake.
struct FlashStr {
    const char* p;
};

inline uint8_t flash_byte(const char* p) {
#ifdef __AVR__
    return pgm_read_byte(p);
#else
    return static_cast<uint8_t>(*p);
#endif
}

inline uint16_t flash_strlen(FlashStr s) {
    uint16_t n = 0;
    while (flash_byte(s.p + n) != 0) {
        ++n;
    }
    return n;
}

// The most meters one device polls; the SD record keeps the sensor index in two bits.
const uint8_t MAX_METERS = 3;

// One answer of a PZEM-004T, as its registers hold it (the units are in the names).
struct Measurement {
    uint16_t voltage_dv;
    uint32_t current_ma;
    uint32_t power_dw;
    uint32_t energy_wh;
    uint16_t frequency_dhz;
    uint16_t power_factor_centi;
    bool alarm;
};

// A measurement placed in this device's life: which boot, which reading of that boot, when.
struct Reading {
    uint32_t boot;
    uint32_t seq;
    uint64_t uptime_ms;
    uint8_t sensor;  // index into the configured meters
    Measurement m;
};

// Interval arithmetic that stays right when a 32-bit millis()/micros() counter wraps. Waits
// longer than a wrap period run on the 64-bit uptime instead (timing.h).
inline uint32_t elapsed(uint32_t now, uint32_t since) {
    return static_cast<uint32_t>(now - since);
}

// Little-endian field access for the on-card record and the EEPROM layout.
inline void put_u16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v);
    p[1] = static_cast<uint8_t>(v >> 8);
}
inline void put_u32(uint8_t* p, uint32_t v) {
    put_u16(p, static_cast<uint16_t>(v));
    put_u16(p + 2, static_cast<uint16_t>(v >> 16));
}
inline uint16_t get_u16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] | (static_cast<uint16_t>(p[1]) << 8));
}
inline uint32_t get_u32(const uint8_t* p) {
    return static_cast<uint32_t>(get_u16(p)) | (static_cast<uint32_t>(get_u16(p + 2)) << 16);
}

}  // namespace em

#endif

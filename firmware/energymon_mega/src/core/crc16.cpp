#include "crc16.h"

namespace em {

uint16_t crc16_modbus(const uint8_t* data, uint16_t len, uint16_t crc) {
    // Bitwise rather than a 512-byte table: a frame is at most 25 bytes, flash and RAM matter more.
    for (uint16_t i = 0; i < len; ++i) {
        crc ^= data[i];
        for (uint8_t bit = 0; bit < 8; ++bit) {
            if (crc & 1u) {
                crc = static_cast<uint16_t>((crc >> 1) ^ 0xA001u);
            } else {
                crc = static_cast<uint16_t>(crc >> 1);
            }
        }
    }
    return crc;
}

}  // namespace em

// The fixed-size binary record of one reading, as the RAM ring and the SD log both hold it.
// Explicit little-endian fields (never a struct's memory image) so a card written on the board
// reads the same on a PC, and a CRC so a torn or corrupted record is recognised and skipped.
//
//   0      magic 0xE5
//   1      flags: bits 0-1 sensor index, bit 7 alarm
//   2..5   boot            6..9   seq            10..15 uptime_ms (48 bit)
//   16..17 voltage_dv      18..21 current_ma     22..25 power_dw
//   26..29 energy_wh       30..31 frequency_dhz  32..33 power_factor_centi
//   34..35 CRC-16/MODBUS of bytes 0..33
#ifndef EM_RECORD_H
#define EM_RECORD_H

#include "em_base.h"

namespace em {

const uint8_t RECORD_LEN = 36;
const uint8_t RECORD_MAGIC = 0xE5;

void record_encode(const Reading& r, uint8_t* out);
// False when the bytes are not a whole, intact record (wrong magic, bad CRC, bad sensor index).
bool record_decode(const uint8_t* in, Reading& r);

}  // namespace em

#endif

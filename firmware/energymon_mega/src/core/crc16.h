// CRC-16/MODBUS: reflected polynomial 0xA001, initial value 0xFFFF, no final XOR.
// The same checksum guards Modbus frames, the SD log records and the EEPROM slots.
#ifndef EM_CRC16_H
#define EM_CRC16_H

#include "em_base.h"

namespace em {

uint16_t crc16_modbus(const uint8_t* data, uint16_t len, uint16_t crc = 0xFFFF);

}  // namespace em

#endif

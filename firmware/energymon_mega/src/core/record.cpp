#include "record.h"

#include "crc16.h"

namespace em {

static const uint8_t FLAG_ALARM = 0x80;
static const uint8_t SENSOR_MASK = 0x03;
static const uint8_t CRC_AT = RECORD_LEN - 2;

void record_encode(const Reading& r, uint8_t* out) {
    out[0] = RECORD_MAGIC;
    out[1] = static_cast<uint8_t>((r.sensor & SENSOR_MASK) | (r.m.alarm ? FLAG_ALARM : 0));
    put_u32(out + 2, r.boot);
    put_u32(out + 6, r.seq);
    put_u32(out + 10, static_cast<uint32_t>(r.uptime_ms));
    put_u16(out + 14, static_cast<uint16_t>(r.uptime_ms >> 32));
    put_u16(out + 16, r.m.voltage_dv);
    put_u32(out + 18, r.m.current_ma);
    put_u32(out + 22, r.m.power_dw);
    put_u32(out + 26, r.m.energy_wh);
    put_u16(out + 30, r.m.frequency_dhz);
    put_u16(out + 32, r.m.power_factor_centi);
    put_u16(out + CRC_AT, crc16_modbus(out, CRC_AT));
}

bool record_decode(const uint8_t* in, Reading& r) {
    if (in[0] != RECORD_MAGIC || (in[1] & ~(FLAG_ALARM | SENSOR_MASK)) != 0 ||
        (in[1] & SENSOR_MASK) >= MAX_METERS || get_u16(in + CRC_AT) != crc16_modbus(in, CRC_AT)) {
        return false;
    }
    r.sensor = static_cast<uint8_t>(in[1] & SENSOR_MASK);
    r.m.alarm = (in[1] & FLAG_ALARM) != 0;
    r.boot = get_u32(in + 2);
    r.seq = get_u32(in + 6);
    r.uptime_ms = static_cast<uint64_t>(get_u32(in + 10)) |
                  (static_cast<uint64_t>(get_u16(in + 14)) << 32);
    r.m.voltage_dv = get_u16(in + 16);
    r.m.current_ma = get_u32(in + 18);
    r.m.power_dw = get_u32(in + 22);
    r.m.energy_wh = get_u32(in + 26);
    r.m.frequency_dhz = get_u16(in + 30);
    r.m.power_factor_centi = get_u16(in + 32);
    return true;
}

}  // namespace em

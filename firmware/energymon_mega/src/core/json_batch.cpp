#include "json_batch.h"

namespace em {

static const char k_device[] EM_FLASH = "{\"device\":";
static const char k_boot[] EM_FLASH = ",\"boot\":";
static const char k_boot_nonce[] EM_FLASH = ",\"boot_nonce\":";
static const char k_uptime[] EM_FLASH = ",\"uptime_ms\":";
static const char k_dropped[] EM_FLASH = ",\"dropped\":";
static const char k_meter_errors[] EM_FLASH = ",\"meter_errors\":{";
static const char k_reset[] EM_FLASH = ",\"reset\":{\"cause\":\"";
static const char k_stage[] EM_FLASH = "\",\"stage\":\"";
static const char k_watchdog_resets[] EM_FLASH = "\",\"watchdog_resets\":";
static const char k_readings[] EM_FLASH = ",\"readings\":[";
static const char k_seq[] EM_FLASH = "{\"seq\":";
static const char k_sensor[] EM_FLASH = ",\"sensor\":";
static const char k_voltage[] EM_FLASH = ",\"voltage_v\":";
static const char k_current[] EM_FLASH = ",\"current_a\":";
static const char k_power[] EM_FLASH = ",\"power_w\":";
static const char k_energy[] EM_FLASH = ",\"energy_wh\":";
static const char k_frequency[] EM_FLASH = ",\"frequency_hz\":";
static const char k_pf[] EM_FLASH = ",\"power_factor\":";
static const char k_alarm_true[] EM_FLASH = ",\"alarm\":true}";
static const char k_alarm_false[] EM_FLASH = ",\"alarm\":false}";
static const char k_end[] EM_FLASH = "]}";
static const char k_unknown_sensor[] EM_FLASH = "?";
// The contract's names of ResetCause and Stage (docs/api.md), in enum order, each ended by a NUL
// and the list by an empty name. Lists rather than switches: avr-gcc turns a switch into a table
// of pointers in RAM.
static const char k_cause_names[] EM_FLASH = "power_on\0watchdog\0requested\0external\0";
static const char k_stage_names[] EM_FLASH = "boot\0meters\0network\0dhcp\0send\0card\0idle\0";

void Printer::bytes(const uint8_t* data, uint16_t len) {
    if (ok_ && !out_.put(data, len)) {
        ok_ = false;
    }
}

void Printer::ch(char c) {
    uint8_t b = static_cast<uint8_t>(c);
    bytes(&b, 1);
}

void Printer::flash(FlashStr s) {
    for (const char* p = s.p; flash_byte(p) != 0; ++p) {
        ch(static_cast<char>(flash_byte(p)));
    }
}

void Printer::json_string(FlashStr s) {
    static const char hex[] EM_FLASH = "0123456789abcdef";
    ch('"');
    for (const char* p = s.p; flash_byte(p) != 0; ++p) {
        uint8_t c = flash_byte(p);
        // Bytes of 0x80 and above pass through: names are UTF-8 and sent as such.
        char short_form = 0;
        switch (c) {
            case '"': short_form = '"'; break;
            case '\\': short_form = '\\'; break;
            case '\n': short_form = 'n'; break;
            case '\r': short_form = 'r'; break;
            case '\t': short_form = 't'; break;
            case '\b': short_form = 'b'; break;
            case '\f': short_form = 'f'; break;
            default: break;
        }
        if (short_form != 0) {
            ch('\\');
            ch(short_form);
        } else if (c < 0x20) {
            ch('\\');
            ch('u');
            ch('0');
            ch('0');
            ch(static_cast<char>(flash_byte(hex + (c >> 4))));
            ch(static_cast<char>(flash_byte(hex + (c & 0x0F))));
        } else {
            ch(static_cast<char>(c));
        }
    }
    ch('"');
}

void Printer::u32(uint32_t v) {
    char digits[10];
    uint8_t n = 0;
    do {
        digits[n++] = static_cast<char>('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    while (n > 0) {
        ch(digits[--n]);
    }
}

void Printer::u64(uint64_t v) {
    // One 64-bit division, then 32-bit arithmetic: the AVR's 64-bit division is slow.
    const uint32_t billion = 1000000000u;
    uint64_t high = v / billion;
    uint32_t low = static_cast<uint32_t>(v - high * billion);
    if (high == 0) {
        u32(low);
        return;
    }
    u64(high);
    char digits[9];
    for (uint8_t i = 0; i < 9; ++i) {
        digits[8 - i] = static_cast<char>('0' + low % 10u);
        low /= 10u;
    }
    bytes(reinterpret_cast<const uint8_t*>(digits), 9);
}

void Printer::fixed(uint32_t raw, uint8_t decimals) {
    uint32_t scale = 1;
    for (uint8_t i = 0; i < decimals; ++i) {
        scale *= 10u;
    }
    u32(raw / scale);
    if (decimals == 0) {
        return;
    }
    ch('.');
    uint32_t frac = raw % scale;
    char digits[9];
    for (uint8_t i = 0; i < decimals; ++i) {
        digits[decimals - 1 - i] = static_cast<char>('0' + frac % 10u);
        frac /= 10u;
    }
    bytes(reinterpret_cast<const uint8_t*>(digits), decimals);
}

static void encode_reading(Printer& p, const BatchHeader& h, const Reading& r) {
    p.flash(FlashStr{k_seq});
    p.u32(r.seq);
    p.flash(FlashStr{k_uptime});
    p.u64(r.uptime_ms);
    p.flash(FlashStr{k_sensor});
    p.json_string(r.sensor < h.sensor_count ? h.sensors[r.sensor] : FlashStr{k_unknown_sensor});
    p.flash(FlashStr{k_voltage});
    p.fixed(r.m.voltage_dv, 1);
    p.flash(FlashStr{k_current});
    p.fixed(r.m.current_ma, 3);
    p.flash(FlashStr{k_power});
    p.fixed(r.m.power_dw, 1);
    p.flash(FlashStr{k_energy});
    p.u32(r.m.energy_wh);
    p.flash(FlashStr{k_frequency});
    p.fixed(r.m.frequency_dhz, 1);
    p.flash(FlashStr{k_pf});
    p.fixed(r.m.power_factor_centi, 2);
    p.flash(FlashStr{r.m.alarm ? k_alarm_true : k_alarm_false});
}

// The n-th name of a list like k_cause_names, or null when the list has fewer.
static const char* nth_name(const char* names, uint8_t n) {
    const char* p = names;
    for (; n > 0 && flash_byte(p) != 0; --n) {
        while (flash_byte(p) != 0) {
            ++p;
        }
        ++p;
    }
    return flash_byte(p) != 0 ? p : nullptr;
}

// The names are plain ASCII without quotes, so they are printed verbatim between the quotes. A
// cause or stage this firmware has no name for is left out, never sent as a wrong one.
static void encode_reset(Printer& p, const ResetReport& r) {
    const char* cause = nth_name(k_cause_names, r.cause);
    if (cause == nullptr) {
        return;
    }
    p.flash(FlashStr{k_reset});
    p.flash(FlashStr{cause});
    // The stage only where the firmware cut the run short itself: after a power cut the marker is
    // gone, and the button says nothing about the loop.
    const char* stage = r.cause == RESET_WATCHDOG || r.cause == RESET_REQUESTED
                            ? nth_name(k_stage_names, r.stage)
                            : nullptr;
    if (stage != nullptr) {
        p.flash(FlashStr{k_stage});
        p.flash(FlashStr{stage});
    }
    p.flash(FlashStr{k_watchdog_resets});
    p.u32(r.watchdog_resets);
    p.ch('}');
}

bool encode_batch(ByteSink& out, const BatchHeader& h, ReadingSource& readings) {
    Printer p(out);
    p.flash(FlashStr{k_device});
    p.json_string(h.device);
    p.flash(FlashStr{k_boot});
    p.u32(h.boot);
    if (h.boot_nonce != 0) {
        p.flash(FlashStr{k_boot_nonce});
        p.u32(h.boot_nonce);
    }
    p.flash(FlashStr{k_uptime});
    p.u64(h.uptime_ms);
    if (h.dropped != 0) {
        p.flash(FlashStr{k_dropped});
        p.u32(h.dropped);
    }
    bool any_errors = false;
    for (uint8_t i = 0; h.meter_errors != nullptr && i < h.sensor_count; ++i) {
        if (h.meter_errors[i] == 0) {
            continue;
        }
        if (any_errors) {
            p.ch(',');
        } else {
            p.flash(FlashStr{k_meter_errors});
            any_errors = true;
        }
        p.json_string(h.sensors[i]);
        p.ch(':');
        p.u32(h.meter_errors[i]);
    }
    if (any_errors) {
        p.ch('}');
    }
    if (h.reset != nullptr) {
        encode_reset(p, *h.reset);
    }
    p.flash(FlashStr{k_readings});
    uint16_t n = readings.count();
    for (uint16_t i = 0; i < n && p.ok(); ++i) {
        Reading r;
        if (!readings.get(i, r)) {
            return false;
        }
        if (i > 0) {
            p.ch(',');
        }
        encode_reading(p, h, r);
    }
    p.flash(FlashStr{k_end});
    return p.ok();
}

}  // namespace em

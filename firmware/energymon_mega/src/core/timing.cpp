#include "timing.h"

#include "modbus.h"

namespace em {

uint64_t Uptime::update(uint32_t counter_ms) {
    if (counter_ms < last_) {
        ++wraps_;
    }
    last_ = counter_ms;
    return now();
}

bool PollClock::due(uint64_t uptime_ms, uint32_t* missed) {
    *missed = 0;
    if (next_ms_ == 0) {
        next_ms_ = uptime_ms + interval_ms_;
        return true;
    }
    if (uptime_ms < next_ms_) {
        return false;
    }
    uint64_t late = uptime_ms - next_ms_;
    if (late < interval_ms_) {
        next_ms_ += interval_ms_;
        return true;
    }
    uint64_t skipped = late / interval_ms_;
    *missed = skipped > 0xFFFFFFFFull ? 0xFFFFFFFFul : static_cast<uint32_t>(skipped);
    next_ms_ = uptime_ms + interval_ms_;
    return true;
}

static uint32_t ceil_div(uint64_t a, uint64_t b) {
    return static_cast<uint32_t>((a + b - 1) / b);
}

uint32_t wire_time_us(uint32_t chars, uint32_t baud, uint8_t bits_per_char) {
    return ceil_div(static_cast<uint64_t>(chars) * bits_per_char * 1000000u, baud);
}

uint32_t modbus_gap_us(uint32_t baud, uint8_t bits_per_char) {
    // 3.5 characters, computed in tenths of a character to stay in integers.
    return ceil_div(static_cast<uint64_t>(35) * bits_per_char * 1000000u,
                    static_cast<uint64_t>(baud) * 10u);
}

uint32_t meter_poll_us(uint32_t baud, uint8_t bits_per_char, uint32_t turnaround_us) {
    return wire_time_us(REQUEST_LEN, baud, bits_per_char) +
           wire_time_us(PZEM_REPLY_LEN, baud, bits_per_char) + modbus_gap_us(baud, bits_per_char) +
           turnaround_us;
}

uint32_t poll_cycle_us(const uint8_t* bus_of_meter, uint8_t meters, uint32_t baud,
                       uint8_t bits_per_char, uint32_t turnaround_us) {
    uint32_t per_meter = meter_poll_us(baud, bits_per_char, turnaround_us);
    uint32_t worst = 0;
    for (uint8_t i = 0; i < meters; ++i) {
        uint32_t on_bus = 0;
        for (uint8_t j = 0; j < meters; ++j) {
            if (bus_of_meter[j] == bus_of_meter[i]) {
                ++on_bus;
            }
        }
        if (on_bus * per_meter > worst) {
            worst = on_bus * per_meter;
        }
    }
    return worst;
}

}  // namespace em

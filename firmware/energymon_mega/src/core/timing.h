// Time on the device: a 64-bit uptime that survives the 49.7-day millis() wrap, and the poll cycle
// budget computed from the wire timings of Modbus-RTU.
#ifndef EM_TIMING_H
#define EM_TIMING_H

#include "em_base.h"

namespace em {

// Extends a wrapping 32-bit millisecond counter to 64 bits; must see the counter at least once
// per wrap period, which the main loop does many times a second.
class Uptime {
public:
    Uptime() : last_(0), wraps_(0) {}
    uint64_t update(uint32_t counter_ms);
    uint64_t now() const {
        return (static_cast<uint64_t>(wraps_) << 32) | last_;
    }

private:
    uint32_t last_;
    uint32_t wraps_;
};

// The poll schedule on the 64-bit uptime: one cycle per interval. After a loop held up for longer
// (a blocking library call) the schedule starts afresh and reports how many cycles were missed,
// so they are counted instead of silently skipped.
class PollClock {
public:
    explicit PollClock(uint32_t interval_ms) : interval_ms_(interval_ms), next_ms_(0) {}
    // True when a cycle is due now; `missed` is set to the cycles skipped before it.
    bool due(uint64_t uptime_ms, uint32_t* missed);

private:
    uint32_t interval_ms_;
    uint64_t next_ms_;
};

// Wire time of `chars` characters of `bits_per_char` bits each (start + data + parity + stop),
// rounded up to the microsecond.
uint32_t wire_time_us(uint32_t chars, uint32_t baud, uint8_t bits_per_char);

// The Modbus-RTU silent interval between frames: 3.5 character times.
uint32_t modbus_gap_us(uint32_t baud, uint8_t bits_per_char);

// One 10-register read of a PZEM: request, reply, the inter-frame gap, and our turnaround.
uint32_t meter_poll_us(uint32_t baud, uint8_t bits_per_char, uint32_t turnaround_us);

// A poll cycle: meters on one bus are read one after the other, buses in parallel.
uint32_t poll_cycle_us(const uint8_t* bus_of_meter, uint8_t meters, uint32_t baud,
                       uint8_t bits_per_char, uint32_t turnaround_us);

}  // namespace em

#endif

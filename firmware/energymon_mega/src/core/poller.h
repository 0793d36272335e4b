// Polls the configured PZEM-004T meters: one request at a time per serial bus, buses in parallel,
// never blocking. Every reply is validated before it is decoded; a meter that does not answer
// correctly is reported as a failure, never as a reading of zeros.
#ifndef EM_POLLER_H
#define EM_POLLER_H

#include "modbus.h"

namespace em {

const uint8_t MAX_BUSES = 3;

struct MeterDef {
    uint8_t bus;      // 0..MAX_BUSES-1: which serial link
    uint8_t address;  // Modbus address, 0x01..0xF7, or 0xF8 alone on its bus
};

// Compile-time checks of a meter table (C++11 constexpr, hence recursion instead of loops).
// 0x00 is the broadcast address, which no module answers.
constexpr bool no_broadcast_address(const MeterDef* m, uint8_t n) {
    return n == 0 || (m[n - 1].address != 0 && no_broadcast_address(m, n - 1));
}
constexpr bool bus_clash(const MeterDef* m, uint8_t i, uint8_t j, uint8_t general) {
    return m[i].bus == m[j].bus &&
           (m[i].address == m[j].address || m[i].address == general || m[j].address == general);
}
constexpr bool clashes_with_earlier(const MeterDef* m, uint8_t i, uint8_t j, uint8_t general) {
    return j < i && (bus_clash(m, i, j, general) || clashes_with_earlier(m, i, j + 1, general));
}
constexpr bool any_clash(const MeterDef* m, uint8_t n, uint8_t general) {
    return n > 1 && (clashes_with_earlier(m, static_cast<uint8_t>(n - 1), 0, general) ||
                     any_clash(m, static_cast<uint8_t>(n - 1), general));
}
// Two meters on one bus with the same address both answer and garble each other's reply.
constexpr bool distinct_addresses_per_bus(const MeterDef* m, uint8_t n) {
    return !any_clash(m, n, 0);
}
// Every module answers the general address: it is only safe for a meter alone on its bus.
constexpr bool general_address_alone(const MeterDef* m, uint8_t n) {
    return !any_clash(m, n, GENERAL_ADDRESS);
}
constexpr bool address_in_range(const MeterDef* m, uint8_t n) {
    return n == 0 || (m[n - 1].address <= GENERAL_ADDRESS && address_in_range(m, n - 1));
}

// One hardware serial port. The sketch adapts HardwareSerial; tests use a simulated wire.
class SerialLink {
public:
    virtual int16_t read_byte() = 0;  // -1 when nothing is waiting
    virtual void write_bytes(const uint8_t* data, uint8_t len) = 0;
};

class PollListener {
public:
    // `age_us`: how long before this call the reply was complete on the wire, so a reading is
    // placed when it was measured even if the loop was held up before it got to it.
    virtual void on_measurement(uint8_t meter, const Measurement& m, uint32_t age_us) = 0;
    virtual void on_failure(uint8_t meter, ReplyStatus why, uint8_t exception_code) = 0;
};

struct PollTiming {
    uint32_t reply_timeout_us;  // from sending the request to the reply's last byte
    uint32_t gap_us;            // silence on a bus between a reply and the next request
    uint32_t reply_wire_us;     // request and reply on the wire: the earliest a reply is whole
};

class MeterPoller {
public:
    MeterPoller(const MeterDef* meters, uint8_t count, SerialLink* const* links, PollTiming timing);

    // Begin a cycle over every meter; ignored while one is still running.
    void start_cycle(uint32_t now_us);
    bool busy() const;
    // Move every bus forward; call often (each loop pass). Reports through `out`.
    void service(uint32_t now_us, PollListener& out);

private:
    enum Phase : uint8_t { IDLE, READY, WAITING, GAP };
    struct Bus {
        Phase phase;
        uint8_t next;   // index of the next meter to consider on this bus
        uint8_t meter;  // meter being asked while WAITING
        uint8_t len;
        uint32_t since_us;
        uint8_t rx[MAX_FRAME];
    };

    void send_next(uint8_t b, uint32_t now_us);
    void receive(uint8_t b, uint32_t now_us, PollListener& out);

    const MeterDef* meters_;
    uint8_t count_;
    SerialLink* const* links_;
    PollTiming timing_;
    Bus buses_[MAX_BUSES];
};

}  // namespace em

#endif

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

// One hardware serial port. The sketch adapts HardwareSerial; tests use a simulated wire.
class SerialLink {
public:
    virtual int16_t read_byte() = 0;  // -1 when nothing is waiting
    virtual void write_bytes(const uint8_t* data, uint8_t len) = 0;
};

class PollListener {
public:
    virtual void on_measurement(uint8_t meter, const Measurement& m) = 0;
    virtual void on_failure(uint8_t meter, ReplyStatus why, uint8_t exception_code) = 0;
};

struct PollTiming {
    uint32_t reply_timeout_us;  // from sending the request to the reply's last byte
    uint32_t gap_us;            // silence on a bus between a reply and the next request
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

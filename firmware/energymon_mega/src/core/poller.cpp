#include "poller.h"

namespace em {

MeterPoller::MeterPoller(const MeterDef* meters, uint8_t count, SerialLink* const* links,
                         PollTiming timing)
    : meters_(meters), count_(count), links_(links), timing_(timing) {
    memset(buses_, 0, sizeof(buses_));
}

void MeterPoller::start_cycle(uint32_t now_us) {
    if (busy()) {
        return;
    }
    for (uint8_t b = 0; b < MAX_BUSES; ++b) {
        buses_[b].phase = READY;
        buses_[b].next = 0;
        buses_[b].since_us = now_us;
    }
}

bool MeterPoller::busy() const {
    for (uint8_t b = 0; b < MAX_BUSES; ++b) {
        if (buses_[b].phase != IDLE) {
            return true;
        }
    }
    return false;
}

void MeterPoller::send_next(uint8_t b, uint32_t now_us) {
    Bus& bus = buses_[b];
    while (bus.next < count_ && meters_[bus.next].bus != b) {
        ++bus.next;
    }
    if (bus.next >= count_) {
        bus.phase = IDLE;
        return;
    }
    SerialLink* link = links_[b];
    // Whatever arrived since the last frame is noise or a late reply: it must not be taken
    // for the start of the next one.
    while (link->read_byte() >= 0) {
    }
    uint8_t request[REQUEST_LEN];
    uint8_t n = modbus_read_request(request, meters_[bus.next].address, FC_READ_INPUT, 0,
                                    PZEM_REGISTERS);
    link->write_bytes(request, n);
    bus.meter = bus.next;
    ++bus.next;
    bus.len = 0;
    bus.since_us = now_us;
    bus.phase = WAITING;
}

void MeterPoller::receive(uint8_t b, uint32_t now_us, PollListener& out) {
    Bus& bus = buses_[b];
    SerialLink* link = links_[b];
    uint8_t expected = MAX_FRAME;
    for (;;) {
        expected = modbus_reply_length(bus.rx, bus.len, FC_READ_INPUT, PZEM_REGISTERS);
        if (bus.len >= expected) {
            break;
        }
        int16_t c = link->read_byte();
        if (c < 0) {
            break;
        }
        bus.rx[bus.len++] = static_cast<uint8_t>(c);
    }
    bool complete = bus.len >= expected;
    if (!complete && elapsed(now_us, bus.since_us) < timing_.reply_timeout_us) {
        return;
    }
    uint8_t code = 0;
    const MeterDef& def = meters_[bus.meter];
    ReplyStatus st = complete ? modbus_check_read_reply(bus.rx, bus.len, def.address,
                                                        FC_READ_INPUT, PZEM_REGISTERS, &code)
                              : (bus.len == 0 ? REPLY_TIMEOUT : REPLY_INCOMPLETE);
    if (st == REPLY_OK) {
        uint32_t waited = elapsed(now_us, bus.since_us);
        uint32_t age = waited > timing_.reply_wire_us ? waited - timing_.reply_wire_us : 0;
        out.on_measurement(bus.meter, pzem_decode(bus.rx), age);
    } else {
        out.on_failure(bus.meter, st, code);
    }
    bus.phase = GAP;
    bus.since_us = now_us;
}

void MeterPoller::service(uint32_t now_us, PollListener& out) {
    for (uint8_t b = 0; b < MAX_BUSES; ++b) {
        Bus& bus = buses_[b];
        if (bus.phase == WAITING) {
            receive(b, now_us, out);
        }
        if (bus.phase == READY ||
            (bus.phase == GAP && elapsed(now_us, bus.since_us) >= timing_.gap_us)) {
            send_next(b, now_us);
        }
    }
}

}  // namespace em

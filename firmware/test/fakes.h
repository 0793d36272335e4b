// Stand-ins for the hardware the core talks to: an SD card in memory that can be made to fail
// or lose power mid-write, an EEPROM, and a PZEM on a serial wire with real 9600-baud timing.
#ifndef EM_FAKES_H
#define EM_FAKES_H

#include "../energymon_mega/src/core/boot_book.h"
#include "../energymon_mega/src/core/modbus.h"
#include "../energymon_mega/src/core/poller.h"
#include "../energymon_mega/src/core/spill_log.h"

namespace fake {

class Media : public em::LogMedia {
public:
    Media(uint8_t* memory, uint32_t capacity) : mem_(memory), cap_(capacity) { reset(); }
    void reset() {
        size_ = 0;
        durable_ = 0;
        fail_after_ = -1;
        fail_syncs = false;
        syncs = 0;
        erases = 0;
        memset(meta_, 0xFF, sizeof(meta_));
    }
    uint32_t size() override { return size_; }
    bool read(uint32_t offset, uint8_t* data, uint16_t len) override {
        if (!tick() || offset + len > size_) {
            return false;
        }
        memcpy(data, mem_ + offset, len);
        return true;
    }
    bool append(const uint8_t* data, uint16_t len) override {
        if (!tick() || size_ + len > cap_) {
            return false;
        }
        memcpy(mem_ + size_, data, len);
        size_ += len;
        return true;
    }
    bool sync() override {
        if (!tick() || fail_syncs) {
            return false;
        }
        ++syncs;
        durable_ = size_;
        return true;
    }
    bool erase() override {
        if (!tick()) {
            return false;
        }
        ++erases;
        size_ = 0;
        durable_ = 0;
        return true;
    }
    bool release(uint32_t) override { return tick(); }
    bool has_room(uint16_t) override { return true; }
    bool read_meta(uint8_t* data, uint8_t len) override {
        if (!tick()) {
            return false;
        }
        memcpy(data, meta_, len);
        return true;
    }
    bool write_meta(uint8_t offset, const uint8_t* data, uint8_t len) override {
        if (!tick()) {
            return false;
        }
        memcpy(meta_ + offset, data, len);
        return true;
    }
    // The card stops answering after `n` more operations (the card pulled out).
    void fail_after(int16_t n) { fail_after_ = n; }
    // Power cut: what was appended but not synced is lost, minus `torn` bytes of it kept.
    void power_cut(uint16_t torn) {
        uint32_t keep = durable_ + torn;
        size_ = keep < size_ ? keep : size_;
        fail_after_ = -1;
    }
    uint8_t* bytes() { return mem_; }
    uint8_t* meta() { return meta_; }
    uint32_t syncs;
    uint32_t erases;
    bool fail_syncs;  // the card takes the writes but does not confirm them

private:
    bool tick() {
        if (fail_after_ == 0) {
            return false;
        }
        if (fail_after_ > 0) {
            --fail_after_;
        }
        return true;
    }
    uint8_t* mem_;
    uint32_t cap_;
    uint32_t size_;
    uint32_t durable_;
    int16_t fail_after_;
    uint8_t meta_[em::META_LEN];
};

class Eeprom : public em::Eeprom {
public:
    Eeprom() : writes(0) {
        memset(mem, 0xFF, sizeof(mem));
        memset(writes_at, 0, sizeof(writes_at));
    }
    uint8_t read(uint16_t a) override { return mem[a]; }
    void write(uint16_t a, uint8_t v) override {
        if (mem[a] != v) {
            mem[a] = v;
            ++writes;
            if (writes_at[a] < 0xFF) {
                ++writes_at[a];
            }
        }
    }
    uint8_t mem[em::BootBook::END];
    uint8_t writes_at[em::BootBook::END];
    uint32_t writes;
};

// A wire at 9600 8N1 with PZEMs on it: a request is "heard" once its last byte has been on the
// wire; the addressed meter (if present) answers after `latency_us`, one byte per character time.
class Bus : public em::SerialLink {
public:
    static const uint8_t MAX_ON_BUS = 3;
    explicit Bus(const uint32_t* clock_us) : clock_(clock_us) { clear(); }
    void clear() {
        count_ = 0;
        tx_len_ = 0;
        reply_len_ = 0;
        delivered_ = 0;
        requests = 0;
        latency_us = 0;
        corrupt_next = false;
    }
    void add_meter(uint8_t address, const em::Measurement& m) {
        addresses_[count_] = address;
        values_[count_] = m;
        ++count_;
    }
    void set(uint8_t index, const em::Measurement& m) { values_[index] = m; }
    int16_t read_byte() override {
        if (delivered_ >= reply_len_) {
            return -1;
        }
        uint32_t due = reply_start_ + (static_cast<uint32_t>(delivered_) + 1u) * CHAR_US;
        if (static_cast<int32_t>(*clock_ - due) < 0) {
            return -1;
        }
        return reply_[delivered_++];
    }
    void write_bytes(const uint8_t* data, uint8_t len) override {
        ++requests;
        uint32_t heard = *clock_ + len * CHAR_US;
        reply_len_ = 0;
        delivered_ = 0;
        for (uint8_t i = 0; i < count_; ++i) {
            if (addresses_[i] == data[0] || data[0] == em::GENERAL_ADDRESS) {
                build_reply(addresses_[i], values_[i]);
                reply_start_ = heard + latency_us;
                break;
            }
        }
    }
    static const uint32_t CHAR_US = 1042;
    uint16_t requests;
    uint32_t latency_us;
    bool corrupt_next;

private:
    void build_reply(uint8_t address, const em::Measurement& m) {
        uint8_t* f = reply_;
        f[0] = address;
        f[1] = em::FC_READ_INPUT;
        f[2] = 20;
        uint16_t regs[10] = {m.voltage_dv,
                             static_cast<uint16_t>(m.current_ma),
                             static_cast<uint16_t>(m.current_ma >> 16),
                             static_cast<uint16_t>(m.power_dw),
                             static_cast<uint16_t>(m.power_dw >> 16),
                             static_cast<uint16_t>(m.energy_wh),
                             static_cast<uint16_t>(m.energy_wh >> 16),
                             m.frequency_dhz,
                             m.power_factor_centi,
                             static_cast<uint16_t>(m.alarm ? 0xFFFF : 0)};
        for (uint8_t i = 0; i < 10; ++i) {
            f[3 + 2 * i] = static_cast<uint8_t>(regs[i] >> 8);
            f[4 + 2 * i] = static_cast<uint8_t>(regs[i]);
        }
        em::modbus_seal(f, 23);
        if (corrupt_next) {
            f[10] ^= 0x10;
            corrupt_next = false;
        }
        reply_len_ = 25;
    }
    const uint32_t* clock_;
    uint8_t count_;
    uint8_t addresses_[MAX_ON_BUS];
    em::Measurement values_[MAX_ON_BUS];
    uint8_t tx_len_;
    uint8_t reply_[25];
    uint8_t reply_len_;
    uint8_t delivered_;
    uint32_t reply_start_;
};

inline em::Reading reading(uint32_t boot, uint32_t seq, uint8_t sensor = 0) {
    em::Reading r;
    r.boot = boot;
    r.seq = seq;
    r.uptime_ms = 1000ULL * seq + 4294967000ULL;  // beyond 32 bits on purpose
    r.sensor = sensor;
    r.m.voltage_dv = static_cast<uint16_t>(2300 + seq % 50);
    r.m.current_ma = 70000UL + seq;
    r.m.power_dw = 100000UL + seq;
    r.m.energy_wh = 16777216UL + seq;
    r.m.frequency_dhz = 500;
    r.m.power_factor_centi = static_cast<uint16_t>(seq % 101);
    r.m.alarm = (seq % 7) == 0;
    return r;
}

// Remembers which boots were anchored, without EEPROM.
class Anchors : public em::AnchorBook {
public:
    Anchors() : anchored_boot(0) {}
    bool was_anchored(uint32_t boot) override { return boot == anchored_boot; }
    uint32_t anchored_boot;
};

}  // namespace fake

#endif

// Sending batches to the collector exactly as docs/api.md says, and deciding when: the first
// request of every boot is a heartbeat that anchors the boot; after that the oldest readings go
// first, as soon as there are any (or a heartbeat when idle); failures back off exponentially.
#ifndef EM_UPLINK_H
#define EM_UPLINK_H

#include "http.h"
#include "retry.h"
#include "store.h"

namespace em {

// A TCP connection to the collector. The sketch wraps EthernetClient; tests fake a collector.
class Transport : public ByteSink {
public:
    explicit Transport(uint16_t stall_ms) : stall_ms_(stall_ms) {}
    // Hands over only what the connection takes at once, waiting (and idling) for room: a
    // collector that stops reading costs at most the stall time, where the Ethernet library's
    // own wait for TX space has no limit.
    bool put(const uint8_t* data, uint16_t len) override;
    virtual uint16_t room() = 0;                                   // bytes writable now
    virtual bool write_now(const uint8_t* data, uint16_t len) = 0;  // at most room()
    virtual bool open() = 0;          // connect by IP, bounded by the connect timeout
    virtual int16_t read_byte() = 0;  // -1 when nothing is waiting
    virtual bool connected() = 0;     // still open, or unread bytes remain
    virtual void close() = 0;
    virtual uint32_t now_ms() = 0;
    // Called while waiting for the reply: poll meters, pet the watchdog. The batch in flight
    // must stay valid meanwhile: the store only appends and spills, never reorders.
    virtual void idle() = 0;

private:
    uint16_t stall_ms_;
};

struct UplinkConfig {
    Collector collector;
    FlashStr device;
    const FlashStr* sensors;
    uint8_t sensor_count;
    uint16_t batch_max;          // readings per request
    uint32_t send_interval_ms;   // between requests while everything is up to date
    uint32_t heartbeat_ms;       // an empty request after this long without one
    uint32_t reply_timeout_ms;   // from the end of the request to the end of the reply
    uint32_t backoff_base_ms;
    uint32_t backoff_max_ms;
};

enum SendResult : uint8_t {
    SEND_IDLE = 0,         // nothing was due
    SEND_ACKED,            // a batch was acknowledged
    SEND_HEARTBEAT,        // an empty request was answered
    SEND_CONNECT_FAILED,
    SEND_WRITE_FAILED,
    SEND_TIMEOUT,          // no complete reply in time
    SEND_BAD_REPLY,        // 200 without a usable ack
    SEND_REFUSED,          // a non-200 status: see status()
    SEND_STORE_FAILED,     // the batch could not be read back (the SD card failed)
};

FlashStr send_result_name(SendResult r);

class Uplink {
public:
    Uplink(const UplinkConfig& config, Store& store, BootBook& boots, uint8_t* chunk_buffer,
           uint16_t chunk_capacity);

    // Scheduling runs on the 64-bit uptime, so a wait that nobody looked at for weeks (the
    // network was down) is simply over, never mistaken for one in the future.
    bool due(uint64_t uptime_ms);
    // One attempt if due: `uptime_ms` is the device's uptime now, `meter_errors` per sensor.
    SendResult step(Transport& t, uint64_t uptime_ms, const uint32_t* meter_errors,
                    uint16_t random);

    bool anchored() const { return anchored_; }
    uint16_t status() const { return status_; }
    uint16_t failures() const { return backoff_.failures(); }
    uint16_t batch_max() const { return batch_max_; }
    uint32_t next_in_ms(uint64_t uptime_ms) const;
    // The boot's nonce, sent beside `boot` in every request (0: not sent).
    void set_boot_nonce(uint32_t nonce) { boot_nonce_ = nonce; }
    // Why this boot started, sent in every request of this boot (null: not sent). Kept by the
    // caller for the uplink's lifetime.
    void set_reset_report(const ResetReport* report) { reset_ = report; }

private:
    SendResult attempt(Transport& t, const BatchHeader& h, ReadingSource& src, uint32_t* ack,
                       bool* got_ack);
    void schedule(uint64_t uptime_ms, uint32_t wait_ms);

    const UplinkConfig& config_;
    Store& store_;
    BootBook& boots_;
    uint8_t* chunk_;
    uint16_t chunk_capacity_;
    Backoff backoff_;
    bool anchored_;
    uint16_t status_;
    uint16_t batch_max_;
    uint64_t last_attempt_ms_;
    uint32_t wait_ms_;
    uint32_t retry_after_s_;
    uint32_t boot_nonce_;
    const ResetReport* reset_;
};

}  // namespace em

#endif

#include "uplink.h"

namespace em {

static const char k_idle[] EM_FLASH = "idle";
static const char k_acked[] EM_FLASH = "acked";
static const char k_heartbeat[] EM_FLASH = "heartbeat";
static const char k_connect[] EM_FLASH = "connect failed";
static const char k_write[] EM_FLASH = "write failed";
static const char k_timeout[] EM_FLASH = "reply timeout";
static const char k_bad[] EM_FLASH = "bad reply";
static const char k_refused[] EM_FLASH = "refused";
static const char k_store[] EM_FLASH = "card read failed";

FlashStr send_result_name(SendResult r) {
    switch (r) {
        case SEND_IDLE: return FlashStr{k_idle};
        case SEND_ACKED: return FlashStr{k_acked};
        case SEND_HEARTBEAT: return FlashStr{k_heartbeat};
        case SEND_CONNECT_FAILED: return FlashStr{k_connect};
        case SEND_WRITE_FAILED: return FlashStr{k_write};
        case SEND_TIMEOUT: return FlashStr{k_timeout};
        case SEND_BAD_REPLY: return FlashStr{k_bad};
        case SEND_REFUSED: return FlashStr{k_refused};
        case SEND_STORE_FAILED: return FlashStr{k_store};
    }
    return FlashStr{k_bad};
}

bool Transport::put(const uint8_t* data, uint16_t len) {
    uint32_t since = now_ms();
    while (len > 0) {
        uint16_t n = room();
        if (n == 0) {
            if (!connected() || elapsed(now_ms(), since) >= stall_ms_) {
                return false;
            }
            idle();
            continue;
        }
        n = n < len ? n : len;
        if (!write_now(data, n)) {
            return false;
        }
        data += n;
        len = static_cast<uint16_t>(len - n);
        since = now_ms();
    }
    return true;
}

namespace {

// The readings of a planned batch, read back from the store on each encoding pass.
class BatchReadings : public ReadingSource {
public:
    BatchReadings(Store& store, const Batch& batch) : store_(store), batch_(batch) {}
    uint16_t count() override { return batch_.count; }
    bool get(uint16_t i, Reading& r) override { return store_.get(batch_, i, r); }

private:
    Store& store_;
    const Batch& batch_;
};

}  // namespace

Uplink::Uplink(const UplinkConfig& config, Store& store, BootBook& boots, uint8_t* chunk_buffer,
               uint16_t chunk_capacity)
    : config_(config),
      store_(store),
      boots_(boots),
      chunk_(chunk_buffer),
      chunk_capacity_(chunk_capacity),
      backoff_(config.backoff_base_ms, config.backoff_max_ms),
      anchored_(false),
      status_(0),
      batch_max_(config.batch_max),
      last_attempt_ms_(0),
      wait_ms_(0),
      retry_after_s_(0),
      boot_nonce_(0),
      reset_(nullptr) {}

void Uplink::schedule(uint64_t uptime_ms, uint32_t wait_ms) {
    last_attempt_ms_ = uptime_ms;
    wait_ms_ = wait_ms;
}

uint32_t Uplink::next_in_ms(uint64_t uptime_ms) const {
    uint64_t since = uptime_ms - last_attempt_ms_;
    return since >= wait_ms_ ? 0 : static_cast<uint32_t>(wait_ms_ - since);
}

bool Uplink::due(uint64_t uptime_ms) {
    if (next_in_ms(uptime_ms) > 0) {
        return false;
    }
    // Every attempt, answered or not, restarts the wait; an idle device sends a heartbeat once
    // the heartbeat interval has passed since the last one.
    return !anchored_ || store_.pending() ||
           uptime_ms - last_attempt_ms_ >= config_.heartbeat_ms;
}

SendResult Uplink::attempt(Transport& t, const BatchHeader& h, ReadingSource& src, uint32_t* ack,
                           bool* got_ack) {
    CountingSink counter;
    if (!encode_batch(counter, h, src)) {
        return SEND_STORE_FAILED;
    }
    if (!t.open()) {
        return SEND_CONNECT_FAILED;
    }
    ChunkWriter w(t, chunk_, chunk_capacity_);
    bool written = write_request_head(w, config_.collector, counter.count()) &&
                   encode_batch(w, h, src) && w.flush();
    if (!written) {
        t.close();
        return SEND_WRITE_FAILED;
    }
    ResponseParser reply;
    uint32_t started = t.now_ms();
    while (!reply.complete()) {
        int16_t c = t.read_byte();
        if (c >= 0) {
            reply.feed(static_cast<uint8_t>(c));
            continue;
        }
        if (!t.connected() || elapsed(t.now_ms(), started) >= config_.reply_timeout_ms) {
            break;
        }
        t.idle();
    }
    t.close();
    status_ = reply.status();
    retry_after_s_ = reply.retry_after_s();
    if (status_ == 0) {
        return SEND_TIMEOUT;
    }
    if (status_ != 200) {
        return SEND_REFUSED;
    }
    if (!reply.has_ack()) {
        return reply.complete() ? SEND_BAD_REPLY : SEND_TIMEOUT;
    }
    *got_ack = !reply.ack_is_null();
    *ack = reply.ack();
    return SEND_ACKED;
}

SendResult Uplink::step(Transport& t, uint64_t uptime_ms, const uint32_t* meter_errors,
                        uint16_t random) {
    if (!due(uptime_ms)) {
        return SEND_IDLE;
    }
    Batch batch;
    batch.source = FROM_NOTHING;
    batch.count = 0;
    // Until this boot is anchored, only an empty request: it anchors the boot at once, even
    // while an older boot's backlog is still on the card.
    if (anchored_) {
        store_.plan(batch_max_, batch);
    }
    BatchHeader h;
    h.device = config_.device;
    h.sensors = config_.sensors;
    h.sensor_count = config_.sensor_count;
    bool current = batch.count == 0 || batch.boot == boots_.boot();
    h.boot = current ? boots_.boot() : batch.boot;
    // The nonce names this boot of this board; a past boot's is not known any more.
    h.boot_nonce = current ? boot_nonce_ : 0;
    // A past boot's batch: its readings were all measured before its last reading, and the
    // counters and the reset that started this boot are not that boot's.
    h.uptime_ms = current ? uptime_ms : batch.last_uptime_ms;
    h.dropped = current ? store_.dropped() : 0;
    h.meter_errors = current ? meter_errors : nullptr;
    h.reset = current ? reset_ : nullptr;

    BatchReadings src(store_, batch);
    uint32_t ack = 0;
    bool got_ack = false;
    uint32_t started = t.now_ms();
    SendResult r = attempt(t, h, src, &ack, &got_ack);
    // The attempt's own duration counts: the wait runs from its end.
    uint64_t now = uptime_ms + elapsed(t.now_ms(), started);
    if (r == SEND_ACKED && batch.count > 0 && !got_ack) {
        r = SEND_BAD_REPLY;
    }
    if (r != SEND_ACKED) {
        if (r == SEND_REFUSED && status_ == 413 && batch_max_ > 1) {
            batch_max_ = static_cast<uint16_t>(batch_max_ / 2);
        }
        schedule(now, backoff_.failed(random, retry_after_s_ * 1000u));
        return r;
    }
    backoff_.succeeded();
    if (h.boot == boots_.boot() && !anchored_) {
        boots_.mark_anchored();
        anchored_ = true;
    }
    if (batch.count == 0) {
        schedule(now, store_.pending() ? 0 : config_.send_interval_ms);
        return SEND_HEARTBEAT;
    }
    store_.acknowledge(batch, ack);
    // A backlog goes out back to back; an up-to-date device sends once per interval.
    schedule(now, store_.pending() && batch.count == batch_max_ ? 0 : config_.send_interval_ms);
    return SEND_ACKED;
}

}  // namespace em

// Every reading not yet acknowledged, oldest first: the older ones in the SD log (if any), the
// newer ones in the RAM ring. A reading is forgotten only when an acknowledgement covers it, or
// counted as dropped when there is no room for it anywhere.
#ifndef EM_STORE_H
#define EM_STORE_H

#include "boot_book.h"
#include "ring.h"
#include "spill_log.h"

namespace em {

enum BatchSource : uint8_t { FROM_NOTHING, FROM_LOG, FROM_RING };

// A run of readings of one boot, in the order they were measured.
struct Batch {
    BatchSource source;
    uint32_t boot;
    uint16_t count;
    uint32_t first_offset;  // in the log
    uint32_t first_seq;
    uint32_t last_seq;
    uint64_t last_uptime_ms;
};

class Store {
public:
    // `log` may be null (no card). `spill_chunk` readings move to the card at once, so the card
    // is written (and synced) once per chunk rather than once per reading.
    Store(RecordRing& ring, SpillLog* log, uint32_t boot, AnchorBook& anchors,
          uint16_t spill_chunk);

    void add(const Reading& r);
    // Move every reading in RAM to the card (before a deliberate reset); false if some stay.
    bool flush_to_card();

    // The oldest sendable readings, at most `max` of them. Readings of an earlier boot the
    // collector never anchored cannot be placed in time: they are dropped here and counted.
    bool plan(uint16_t max, Batch& b);
    bool get(const Batch& b, uint16_t i, Reading& r);
    // The collector made every reading of `b` with seq <= ack durable.
    void acknowledge(const Batch& b, uint32_t ack);

    uint32_t dropped() const { return dropped_; }
    uint32_t spilled() const { return spilled_; }
    uint16_t in_ram() const { return ring_.size(); }
    uint32_t on_card() const { return log_ != nullptr ? log_->pending_records() : 0; }
    bool card_usable() const { return log_ != nullptr && log_->usable(); }
    uint32_t card_failures() const { return log_ != nullptr ? log_->failures() : 0; }
    // Records of boots the collector cannot place, skipped at most this many per plan.
    static const uint16_t SKIP_SLICE = 64;
    bool pending() { return !ring_.empty() || on_card() > 0; }

private:
    bool spill();
    bool skip_unsendable();
    bool plan_log(uint16_t max, Batch& b);
    bool plan_ring(uint16_t max, Batch& b);

    RecordRing& ring_;
    SpillLog* log_;
    uint32_t boot_;
    AnchorBook& anchors_;
    uint16_t spill_chunk_;
    uint32_t dropped_;
    uint32_t spilled_;
};

}  // namespace em

#endif

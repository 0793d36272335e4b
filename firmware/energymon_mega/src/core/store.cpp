#include "store.h"

namespace em {

Store::Store(RecordRing& ring, SpillLog* log, uint32_t boot, AnchorBook& anchors,
             uint16_t spill_chunk)
    : ring_(ring),
      log_(log),
      boot_(boot),
      anchors_(anchors),
      spill_chunk_(spill_chunk == 0 ? 1 : spill_chunk),
      dropped_(0),
      spilled_(0) {}

bool Store::spill() {
    if (log_ == nullptr || !log_->usable()) {
        return false;
    }
    // The oldest readings go to the end of the log, so the log stays older than the ring.
    // They are forgotten from RAM only after the card has them; if the second part fails, the
    // first part stays in RAM as well and is later sent twice, which the collector tolerates.
    uint16_t first = 0;
    const uint8_t* run = ring_.oldest_run(spill_chunk_, &first);
    uint16_t total = spill_chunk_ < ring_.size() ? spill_chunk_ : ring_.size();
    if (!log_->append(run, first)) {
        return false;
    }
    if (total > first) {
        uint16_t second = 0;
        RecordRing tail = ring_;
        tail.pop(first);
        const uint8_t* rest = tail.oldest_run(static_cast<uint16_t>(total - first), &second);
        if (!log_->append(rest, second)) {
            return false;
        }
    }
    ring_.pop(total);
    spilled_ += total;
    return true;
}

void Store::add(const Reading& r) {
    if (ring_.full() && !spill()) {
        ++dropped_;
        return;
    }
    ring_.push(r);
}

bool Store::flush_to_card() {
    while (!ring_.empty()) {
        if (!spill()) {
            return false;
        }
    }
    return true;
}

bool Store::skip_unsendable() {
    bool skipped = false;
    uint32_t offset = log_->cursor();
    // A long run of unsendable records is skipped a slice per plan, so no single call outlasts
    // the watchdog however large the backlog is.
    for (uint16_t n = 0; offset < log_->end(); ++n) {
        if (n == SKIP_SLICE) {
            log_->advance(offset);
            return false;
        }
        Reading r;
        bool intact = false;
        if (!log_->read(offset, r, intact)) {
            return false;
        }
        if (intact && (r.boot == boot_ || anchors_.was_anchored(r.boot))) {
            break;
        }
        ++dropped_;
        skipped = true;
        offset += RECORD_LEN;
    }
    return !skipped || log_->advance(offset);
}

bool Store::plan_log(uint16_t max, Batch& b) {
    if (!skip_unsendable() || !log_->pending()) {
        return false;
    }
    uint32_t offset = log_->cursor();
    Reading r;
    bool intact = false;
    if (!log_->read(offset, r, intact)) {
        return false;
    }
    b.source = FROM_LOG;
    b.boot = r.boot;
    b.count = 1;
    b.first_offset = offset;
    b.first_seq = r.seq;
    b.last_seq = r.seq;
    b.last_uptime_ms = r.uptime_ms;
    // A batch is one boot's run; a damaged record ends it and is skipped by the next plan.
    for (offset += RECORD_LEN; b.count < max && offset < log_->end(); offset += RECORD_LEN) {
        if (!log_->read(offset, r, intact)) {
            return false;
        }
        if (!intact || r.boot != b.boot) {
            break;
        }
        ++b.count;
        b.last_seq = r.seq;
        b.last_uptime_ms = r.uptime_ms;
    }
    return true;
}

bool Store::plan_ring(uint16_t max, Batch& b) {
    Reading r;
    // A record that no longer decodes (RAM corrupted) would block every later batch.
    while (!ring_.empty() && !ring_.at(0, r)) {
        ring_.pop(1);
        ++dropped_;
    }
    if (ring_.empty()) {
        return false;
    }
    b.source = FROM_RING;
    b.boot = boot_;
    b.first_offset = 0;
    b.count = 1;
    b.first_seq = r.seq;
    b.last_seq = r.seq;
    b.last_uptime_ms = r.uptime_ms;
    uint16_t limit = ring_.size() < max ? ring_.size() : max;
    while (b.count < limit && ring_.at(b.count, r)) {
        ++b.count;
        b.last_seq = r.seq;
        b.last_uptime_ms = r.uptime_ms;
    }
    return true;
}

bool Store::plan(uint16_t max, Batch& b) {
    b.source = FROM_NOTHING;
    b.count = 0;
    if (max == 0) {
        return false;
    }
    if (log_ != nullptr && log_->pending() && plan_log(max, b)) {
        return true;
    }
    // A card that just failed leaves its records on it; the ring carries on meanwhile.
    if (plan_ring(max, b)) {
        return true;
    }
    b.source = FROM_NOTHING;
    b.count = 0;
    return false;
}

bool Store::get(const Batch& b, uint16_t i, Reading& r) {
    if (i >= b.count) {
        return false;
    }
    if (b.source == FROM_RING) {
        return ring_.at(i, r);
    }
    bool intact = false;
    return log_ != nullptr &&
           log_->read(b.first_offset + static_cast<uint32_t>(i) * RECORD_LEN, r, intact) &&
           intact;
}

void Store::acknowledge(const Batch& b, uint32_t ack) {
    if (b.count == 0 || ack < b.first_seq) {
        return;
    }
    uint32_t covered = ack < b.last_seq ? ack : b.last_seq;
    if (b.source == FROM_RING) {
        // Readings spilled while the request was in flight are on the card now; they will be
        // sent again and counted as duplicates, never lost.
        Reading r;
        while (ring_.at(0, r) && r.boot == b.boot && r.seq <= covered) {
            ring_.pop(1);
        }
        return;
    }
    if (log_ == nullptr || log_->cursor() != b.first_offset) {
        return;
    }
    uint16_t n = 0;
    while (n < b.count) {
        Reading r;
        if (!get(b, n, r) || r.seq > covered) {
            break;
        }
        ++n;
    }
    log_->advance(b.first_offset + static_cast<uint32_t>(n) * RECORD_LEN);
}

}  // namespace em

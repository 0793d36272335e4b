#include "ring.h"

namespace em {

RecordRing::RecordRing(uint8_t* memory, uint16_t capacity)
    : memory_(memory), capacity_(capacity), head_(0), size_(0) {}

uint8_t* RecordRing::slot(uint16_t i) const {
    uint16_t index = static_cast<uint16_t>((static_cast<uint32_t>(head_) + i) % capacity_);
    return memory_ + static_cast<uint32_t>(index) * RECORD_LEN;
}

void RecordRing::push(const Reading& r) {
    if (full()) {
        return;
    }
    record_encode(r, slot(size_));
    ++size_;
}

bool RecordRing::at(uint16_t i, Reading& r) const {
    return i < size_ && record_decode(slot(i), r);
}

void RecordRing::pop(uint16_t n) {
    if (n > size_) {
        n = size_;
    }
    head_ = static_cast<uint16_t>((static_cast<uint32_t>(head_) + n) % capacity_);
    size_ = static_cast<uint16_t>(size_ - n);
}

const uint8_t* RecordRing::oldest_run(uint16_t wanted, uint16_t* count) const {
    uint16_t n = wanted < size_ ? wanted : size_;
    uint16_t to_end = static_cast<uint16_t>(capacity_ - head_);
    *count = n < to_end ? n : to_end;
    return slot(0);
}

}  // namespace em

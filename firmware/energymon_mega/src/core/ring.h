// The RAM ring of unacknowledged readings, oldest first, over memory the caller provides (a static
// array in the sketch, so its size shows in the static RAM figure).
#ifndef EM_RING_H
#define EM_RING_H

#include "record.h"

namespace em {

class RecordRing {
public:
    RecordRing(uint8_t* memory, uint16_t capacity);

    uint16_t size() const { return size_; }
    uint16_t capacity() const { return capacity_; }
    bool empty() const { return size_ == 0; }
    bool full() const { return size_ == capacity_; }

    void push(const Reading& r);  // the caller checks full() first
    bool at(uint16_t i, Reading& r) const;  // i = 0 is the oldest
    void pop(uint16_t n);                   // forget the n oldest

    // The raw bytes of the oldest records: `*count` of them are contiguous in memory.
    const uint8_t* oldest_run(uint16_t wanted, uint16_t* count) const;

private:
    uint8_t* slot(uint16_t i) const;

    uint8_t* memory_;
    uint16_t capacity_;
    uint16_t head_;  // index of the oldest
    uint16_t size_;
};

}  // namespace em

#endif

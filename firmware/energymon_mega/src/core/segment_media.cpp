#include "segment_media.h"

namespace em {

bool SegmentedMedia::begin() {
    bool any = false;
    uint32_t first = 0;
    uint32_t last = 0;
    uint32_t last_size = 0;
    if (!files_.scan(&any, &first, &last, &last_size)) {
        return false;
    }
    first_ = any ? first : 0;
    end_ = any ? last * segment_bytes_ + last_size : 0;
    uint64_t limit = static_cast<uint64_t>(files_.cluster_bytes()) * MAX_CLUSTERS;
    limit_ = limit < MAX_END ? static_cast<uint32_t>(limit) : MAX_END;
    return true;
}

bool SegmentedMedia::read(uint32_t offset, uint8_t* data, uint16_t len) {
    while (len > 0) {
        uint32_t seg = offset / segment_bytes_;
        uint32_t pos = offset % segment_bytes_;
        uint32_t room = segment_bytes_ - pos;
        uint16_t n = room < len ? static_cast<uint16_t>(room) : len;
        if (seg < first_ || !files_.read(seg, pos, data, n)) {
            return false;
        }
        offset += n;
        data += n;
        len = static_cast<uint16_t>(len - n);
    }
    return true;
}

bool SegmentedMedia::append(const uint8_t* data, uint16_t len) {
    while (len > 0) {
        uint32_t seg = end_ / segment_bytes_;
        uint32_t room = segment_bytes_ - end_ % segment_bytes_;
        uint16_t n = room < len ? static_cast<uint16_t>(room) : len;
        // A segment is made durable before the next one is started: the log never has a hole.
        if (!files_.append(seg, data, n) || (n < len && !files_.sync())) {
            return false;
        }
        end_ += n;
        data += n;
        len = static_cast<uint16_t>(len - n);
    }
    return true;
}

bool SegmentedMedia::release(uint32_t before) {
    uint32_t keep_from = before / segment_bytes_;
    while (first_ < keep_from) {
        if (!files_.remove(first_)) {
            return false;
        }
        ++first_;
    }
    return true;
}

bool SegmentedMedia::erase() {
    uint32_t last = end_ == 0 ? first_ : (end_ - 1) / segment_bytes_;
    for (uint32_t seg = first_; seg <= last && end_ != 0; ++seg) {
        if (!files_.remove(seg)) {
            return false;
        }
    }
    first_ = 0;
    end_ = 0;
    return true;
}

}  // namespace em

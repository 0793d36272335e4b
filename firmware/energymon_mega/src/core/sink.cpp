#include "sink.h"

namespace em {

ChunkWriter::ChunkWriter(ByteSink& downstream, uint8_t* buffer, uint16_t capacity)
    : down_(downstream),
      buffer_(buffer),
      capacity_(capacity > MAX_CHUNK ? MAX_CHUNK : capacity),
      used_(0),
      failed_(false) {}

bool ChunkWriter::put(const uint8_t* data, uint16_t len) {
    while (len > 0 && !failed_) {
        uint16_t room = static_cast<uint16_t>(capacity_ - used_);
        uint16_t n = len < room ? len : room;
        memcpy(buffer_ + used_, data, n);
        used_ = static_cast<uint16_t>(used_ + n);
        data += n;
        len = static_cast<uint16_t>(len - n);
        if (used_ == capacity_) {
            flush();
        }
    }
    return !failed_;
}

bool ChunkWriter::flush() {
    if (!failed_ && used_ > 0) {
        failed_ = !down_.put(buffer_, used_);
        used_ = 0;
    }
    return !failed_;
}

}  // namespace em

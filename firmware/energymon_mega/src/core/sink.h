// Byte sinks the request is written through: one that only counts (to learn Content-Length
// without holding the body), and one that forwards in chunks no larger than its buffer, because
// the W5100 silently truncates a single write over 2 KB.
#ifndef EM_SINK_H
#define EM_SINK_H

#include "em_base.h"

namespace em {

const uint16_t MAX_CHUNK = 2048;

class ByteSink {
public:
    virtual bool put(const uint8_t* data, uint16_t len) = 0;
};

class CountingSink : public ByteSink {
public:
    CountingSink() : count_(0) {}
    bool put(const uint8_t*, uint16_t len) override {
        count_ += len;
        return true;
    }
    uint32_t count() const { return count_; }

private:
    uint32_t count_;
};

class ChunkWriter : public ByteSink {
public:
    // `capacity` is clamped to MAX_CHUNK.
    ChunkWriter(ByteSink& downstream, uint8_t* buffer, uint16_t capacity);
    bool put(const uint8_t* data, uint16_t len) override;
    bool flush();

private:
    ByteSink& down_;
    uint8_t* buffer_;
    uint16_t capacity_;
    uint16_t used_;
    bool failed_;
};

}  // namespace em

#endif

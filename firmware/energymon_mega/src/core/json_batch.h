// The canonical JSON body of POST /api/v1/readings (docs/api.md, "Canonical encoding"): no white
// space, keys in contract order, `boot_nonce`, `dropped` and `meter_errors` only when non-zero,
// `reset` only when given, every number printed from the meter's raw integers. Byte for byte what
// the Python fake device sends.
#ifndef EM_JSON_BATCH_H
#define EM_JSON_BATCH_H

#include "reset_cause.h"
#include "sink.h"

namespace em {

struct BatchHeader {
    FlashStr device;
    uint32_t boot;
    uint32_t boot_nonce;  // 0: not sent
    uint64_t uptime_ms;
    uint32_t dropped;
    const uint32_t* meter_errors;  // per sensor, or null
    const ResetReport* reset;      // null: not sent (a past boot's batch, or not known)
    const FlashStr* sensors;       // names, in configuration order
    uint8_t sensor_count;
};

class ReadingSource {
public:
    virtual uint16_t count() = 0;
    virtual bool get(uint16_t i, Reading& r) = 0;
};

// False when the sink refused bytes or a reading could not be read.
bool encode_batch(ByteSink& out, const BatchHeader& h, ReadingSource& readings);

// Building blocks, shared with the HTTP head.
class Printer {
public:
    explicit Printer(ByteSink& out) : out_(out), ok_(true) {}
    void bytes(const uint8_t* data, uint16_t len);
    void ch(char c);
    void flash(FlashStr s);          // verbatim
    void json_string(FlashStr s);    // quoted and escaped like Python's json.dumps
    void u32(uint32_t v);
    void u64(uint64_t v);
    void fixed(uint32_t raw, uint8_t decimals);  // raw / 10^decimals with exactly `decimals` digits
    bool ok() const { return ok_; }

private:
    ByteSink& out_;
    bool ok_;
};

}  // namespace em

#endif

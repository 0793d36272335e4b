// When to try the collector again after a failure: exponential back-off with jitter, so a
// collector that comes back is not hit by every device at the same instant, and a collector that
// asks for time (503 with Retry-After) gets it.
#ifndef EM_RETRY_H
#define EM_RETRY_H

#include "em_base.h"

namespace em {

class Backoff {
public:
    Backoff(uint32_t base_ms, uint32_t max_ms) : base_ms_(base_ms), max_ms_(max_ms), failures_(0) {}

    // The wait before the next attempt after one more failure. The nominal wait doubles from
    // base to max; the actual one is drawn from [nominal/2, nominal] with `random`.
    uint32_t failed(uint16_t random, uint32_t retry_after_ms = 0);
    void succeeded() { failures_ = 0; }
    uint16_t failures() const { return failures_; }
    uint32_t nominal_ms(uint16_t failures) const;

    // A collector's Retry-After is honoured up to this.
    static const uint32_t RETRY_AFTER_CAP_MS = 600000u;

private:
    uint32_t base_ms_;
    uint32_t max_ms_;
    uint16_t failures_;
};

}  // namespace em

#endif

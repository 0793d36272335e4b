#include "retry.h"

namespace em {

uint32_t Backoff::nominal_ms(uint16_t failures) const {
    if (failures == 0) {
        return 0;
    }
    uint32_t d = base_ms_;
    for (uint16_t i = 1; i < failures && d < max_ms_; ++i) {
        d = d > max_ms_ / 2 ? max_ms_ : d * 2u;
    }
    return d < max_ms_ ? d : max_ms_;
}

uint32_t Backoff::failed(uint16_t random, uint32_t retry_after_ms) {
    if (failures_ < 0xFFFF) {
        ++failures_;
    }
    uint32_t nominal = nominal_ms(failures_);
    uint32_t half = nominal / 2u;
    uint32_t wait = half + static_cast<uint32_t>(random) % (nominal - half + 1u);
    if (retry_after_ms > RETRY_AFTER_CAP_MS) {
        retry_after_ms = RETRY_AFTER_CAP_MS;
    }
    return wait > retry_after_ms ? wait : retry_after_ms;
}

}  // namespace em

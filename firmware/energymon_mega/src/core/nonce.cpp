#include "nonce.h"

namespace em {

// Jenkins' one-at-a-time hash: every input bit reaches every output bit, cheaply on an AVR.
void EntropyPool::add(uint16_t sample) {
    for (uint8_t i = 0; i < 2; ++i) {
        hash_ += static_cast<uint8_t>(sample >> (8 * i));
        hash_ += hash_ << 10;
        hash_ ^= hash_ >> 6;
    }
    ++samples_;
}

uint32_t EntropyPool::nonce() const {
    uint32_t h = hash_;
    h += h << 3;
    h ^= h >> 11;
    h += h << 15;
    return h != 0 ? h : 1u;
}

}  // namespace em

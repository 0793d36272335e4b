// The boot nonce: a random number per boot that tells the collector this board's boot N from
// another board's (or an erased EEPROM's) boot N. An AVR has no random source, so noisy samples
// (the watchdog oscillator's jitter against the crystal, floating ADC inputs) are mixed here.
#ifndef EM_NONCE_H
#define EM_NONCE_H

#include "em_base.h"

namespace em {

class EntropyPool {
public:
    EntropyPool() : hash_(0), samples_(0) {}
    void add(uint16_t sample);
    uint16_t samples() const { return samples_; }
    // Never 0: the contract reserves it for "no nonce".
    uint32_t nonce() const;

private:
    uint32_t hash_;
    uint16_t samples_;
};

}  // namespace em

#endif

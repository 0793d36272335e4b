// What the on-board LED shows, as a function of the device's state and the time, so the patterns
// are defined (and tested) in one place.
#ifndef EM_DIAG_H
#define EM_DIAG_H

#include "em_base.h"

namespace em {

enum Health : uint8_t {
    HEALTH_OK = 0,          // a short blink every two seconds
    HEALTH_METER_MISSING,   // two short blinks a second
    HEALTH_COLLECTOR_DOWN,  // 5 Hz blinking: readings are piling up
    HEALTH_NO_NETWORK,      // steady on: no shield or no link
};

// Worst first: the LED shows only the most serious condition.
Health overall_health(bool network_up, bool collector_ok, bool all_meters_answer);
bool led_on(Health h, uint32_t now_ms);

}  // namespace em

#endif

#include "diag.h"

namespace em {

Health overall_health(bool network_up, bool collector_ok, bool all_meters_answer) {
    if (!network_up) {
        return HEALTH_NO_NETWORK;
    }
    if (!collector_ok) {
        return HEALTH_COLLECTOR_DOWN;
    }
    return all_meters_answer ? HEALTH_OK : HEALTH_METER_MISSING;
}

bool led_on(Health h, uint32_t now_ms) {
    switch (h) {
        case HEALTH_OK:
            return now_ms % 2000u < 50u;
        case HEALTH_METER_MISSING: {
            uint32_t t = now_ms % 1000u;
            return t < 80u || (t >= 240u && t < 320u);
        }
        case HEALTH_COLLECTOR_DOWN:
            return now_ms % 200u < 100u;
        case HEALTH_NO_NETWORK:
            return true;
    }
    return true;
}

}  // namespace em

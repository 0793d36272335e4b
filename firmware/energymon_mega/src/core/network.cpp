#include "network.h"

namespace em {

Network::Network(Nic& nic, const NetworkConfig& config)
    : nic_(nic),
      config_(config),
      up_(false),
      has_lease_(!config.dhcp),
      tried_lease_(false),
      troubled_(false),
      last_lease_try_ms_(0),
      trouble_since_ms_(0),
      last_reinit_ms_(0),
      reinits_(0),
      lease_requests_(0) {}

void Network::request_lease(uint64_t uptime_ms) {
    tried_lease_ = true;
    last_lease_try_ms_ = uptime_ms;
    ++lease_requests_;
    has_lease_ = nic_.request_lease();
}

void Network::note_trouble(uint64_t uptime_ms) {
    if (!troubled_) {
        troubled_ = true;
        trouble_since_ms_ = uptime_ms;
        last_reinit_ms_ = uptime_ms;
    }
}

bool Network::service(uint64_t uptime_ms) {
    up_ = nic_.link_up();
    if (troubled_ && uptime_ms - trouble_since_ms_ >= config_.reinit_after_ms &&
        uptime_ms - last_reinit_ms_ >= config_.reinit_after_ms) {
        // Sockets or the chip itself may be wedged in a way no error reports: start it afresh.
        last_reinit_ms_ = uptime_ms;
        ++reinits_;
        bool ok = nic_.reinit();
        has_lease_ = ok && !config_.dhcp;
        tried_lease_ = false;
        up_ = ok && nic_.link_up();
    }
    if (up_ && config_.dhcp) {
        if (!has_lease_) {
            // A request blocks for seconds: one per retry interval, not one per pass.
            if (!tried_lease_ || uptime_ms - last_lease_try_ms_ >= config_.lease_retry_ms) {
                request_lease(uptime_ms);
            }
        } else if (nic_.maintain() == DHCP_REBIND_FAILED) {
            // A failed renewal leaves the lease valid until it has to be rebound: keep sending.
            has_lease_ = false;
            tried_lease_ = true;
            last_lease_try_ms_ = uptime_ms;
        }
    }
    if (!up()) {
        note_trouble(uptime_ms);
    }
    return up();
}

void Network::collector_result(uint64_t uptime_ms, bool reached) {
    if (reached) {
        troubled_ = false;
        return;
    }
    note_trouble(uptime_ms);
}

bool Network::wants_board_reset(uint64_t uptime_ms) const {
    return troubled_ && reinits_ > 0 && uptime_ms - trouble_since_ms_ >= config_.last_resort_ms;
}

}  // namespace em

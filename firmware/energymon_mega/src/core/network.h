// Keeping the Ethernet side usable for months without a hand on the board: DHCP leases that are
// lost, renewed or rebound, retries that each fit inside the watchdog window, and a W5100 that is
// re-initialised when the collector stays unreachable. Every wait runs on the 64-bit uptime, so a
// state held for weeks ends on time.
#ifndef EM_NETWORK_H
#define EM_NETWORK_H

#include "em_base.h"

namespace em {

// The Ethernet library's DHCP maintenance results.
enum DhcpCheck : uint8_t {
    DHCP_NOTHING = 0,
    DHCP_RENEW_FAILED = 1,
    DHCP_RENEWED = 2,
    DHCP_REBIND_FAILED = 3,
    DHCP_REBOUND = 4,
};

// The W5100 as the sketch drives it; tests fake a LAN and a DHCP server.
class Nic {
public:
    // Ask for a lease; blocks for at most the configured DHCP timeouts.
    virtual bool request_lease() = 0;
    virtual DhcpCheck maintain() = 0;
    virtual bool link_up() = 0;
    // Reset the chip and set it up again (addresses, retransmission settings); with a static
    // address the result is final, with DHCP a lease must be asked for afterwards.
    virtual bool reinit() = 0;
};

struct NetworkConfig {
    bool dhcp;
    uint32_t lease_retry_ms;   // between lease requests while there is none
    uint32_t reinit_after_ms;  // of an unreachable collector, before the chip is reset
    uint32_t last_resort_ms;   // of an unreachable collector, before the board is reset
};

class Network {
public:
    Network(Nic& nic, const NetworkConfig& config);

    // Once per loop pass; returns whether requests can be sent now.
    bool service(uint64_t uptime_ms);
    bool up() const { return up_ && has_lease_; }
    bool has_lease() const { return has_lease_; }

    // Whether the last request reached the collector (any HTTP answer counts: the network
    // works); no network counts as not reached.
    void collector_result(uint64_t uptime_ms, bool reached);
    // The W5100 was reset and the collector is still out of reach after the last-resort period.
    bool wants_board_reset(uint64_t uptime_ms) const;

    uint16_t reinits() const { return reinits_; }
    uint16_t lease_requests() const { return lease_requests_; }

private:
    void request_lease(uint64_t uptime_ms);
    void note_trouble(uint64_t uptime_ms);

    Nic& nic_;
    const NetworkConfig& config_;
    bool up_;
    bool has_lease_;
    bool tried_lease_;
    bool troubled_;
    uint64_t last_lease_try_ms_;
    uint64_t trouble_since_ms_;
    uint64_t last_reinit_ms_;
    uint16_t reinits_;
    uint16_t lease_requests_;
};

}  // namespace em

#endif

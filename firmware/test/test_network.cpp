// The network keeper against a fake W5100 and DHCP server: leases lost, renewed and rebound,
// retries paced to fit the watchdog, a wedged chip re-initialised, and the device parked for
// weeks without a lease before the server comes back.
#include "../energymon_mega/src/core/network.h"
#include "unit.h"

using namespace em;
UT_FILE;

namespace {

const uint64_t SECOND = 1000ULL;
const uint64_t MINUTE = 60ULL * SECOND;
const uint64_t DAY = 86400ULL * SECOND;
const uint16_t PARK_DAYS[4] = {25, 26, 40, 50};

class FakeNic : public Nic {
public:
    FakeNic() : server(true), link(true), wedged(false), check(DHCP_NOTHING), requests(0), reinit_calls(0) {}
    bool request_lease() override {
        ++requests;
        return server && !wedged;
    }
    DhcpCheck maintain() override {
        DhcpCheck c = check;
        check = DHCP_NOTHING;
        return c;
    }
    bool link_up() override { return link; }
    bool reinit() override {
        ++reinit_calls;
        wedged = false;
        return true;
    }
    bool server;
    bool link;
    bool wedged;
    DhcpCheck check;
    uint32_t requests;
    uint16_t reinit_calls;
};

const NetworkConfig DHCP_CONFIG = {true, 30 * SECOND, 10 * MINUTE, 60 * MINUTE};

}  // namespace

TEST(failed_renewal_keeps_sending_until_rebind_fails) {
    FakeNic nic;
    Network net(nic, DHCP_CONFIG);
    CHECK(net.service(1000));
    nic.check = DHCP_RENEW_FAILED;
    CHECK(net.service(2000));
    CHECK(net.up());
    nic.check = DHCP_REBIND_FAILED;
    nic.server = false;
    CHECK(!net.service(3000));
    // The next request waits for the retry interval rather than blocking every pass.
    uint32_t before = nic.requests;
    CHECK(!net.service(3000 + 29 * SECOND));
    CHECK_EQ(nic.requests, before);
    nic.server = true;
    CHECK(net.service(3000 + 30 * SECOND));
    CHECK_EQ(nic.requests, before + 1);
}

TEST(dhcp_lost_for_weeks_regains_the_lease_within_one_retry) {
    for (uint8_t i = 0; i < 4; ++i) {
        FakeNic nic;
        Network net(nic, DHCP_CONFIG);
        // Lost on uptime day 25, just before the millis() counter's sign bit flips.
        uint64_t t = 25 * DAY - 2 * MINUTE;
        CHECK(net.service(t));
        nic.server = false;
        nic.check = DHCP_REBIND_FAILED;
        net.service(t);
        uint32_t asked = nic.requests;
        uint64_t end = t + PARK_DAYS[i] * DAY;
        while (t < end) {
            t += MINUTE;
            CHECK(!net.service(t));
        }
        // Every minute of the outage asked again (the retry interval is shorter).
        CHECK_EQ(nic.requests - asked, PARK_DAYS[i] * 1440UL);
        nic.server = true;
        uint64_t back = t;
        while (!net.service(t) && t - back < 2 * MINUTE) {
            t += SECOND;
        }
        CHECK(net.up());
        CHECK(t - back <= 30 * SECOND);
    }
}

TEST(link_down_for_weeks_comes_back_at_once) {
    for (uint8_t i = 0; i < 4; ++i) {
        FakeNic nic;
        Network net(nic, DHCP_CONFIG);
        uint64_t t = 10 * SECOND;
        CHECK(net.service(t));
        nic.link = false;
        for (uint64_t end = t + PARK_DAYS[i] * DAY; t < end; t += 10 * MINUTE) {
            CHECK(!net.service(t));
        }
        nic.link = true;
        CHECK(net.service(t));
    }
}

TEST(unreachable_collector_reinitialises_the_chip_then_asks_for_a_board_reset) {
    FakeNic nic;
    Network net(nic, DHCP_CONFIG);
    uint64_t t = 5 * SECOND;
    CHECK(net.service(t));
    net.collector_result(t, false);
    for (; t < 5 * SECOND + 9 * MINUTE; t += SECOND) {
        net.service(t);
        net.collector_result(t, false);
    }
    CHECK_EQ(nic.reinit_calls, 0);
    for (; t < 5 * SECOND + 11 * MINUTE; t += SECOND) {
        net.service(t);
        net.collector_result(t, false);
    }
    CHECK_EQ(nic.reinit_calls, 1);
    // After the chip reset a lease is asked for again.
    CHECK(nic.requests >= 2);
    CHECK(!net.wants_board_reset(t));
    for (; t < 5 * SECOND + 61 * MINUTE; t += SECOND) {
        net.service(t);
        net.collector_result(t, false);
    }
    CHECK_EQ(nic.reinit_calls, 6);
    CHECK(net.wants_board_reset(t));
    // One answer and the trouble is over.
    net.collector_result(t, true);
    CHECK(!net.wants_board_reset(t));
    net.service(t + 30 * MINUTE);
    CHECK_EQ(nic.reinit_calls, 6);
}

TEST(static_address_needs_no_lease) {
    FakeNic nic;
    const NetworkConfig fixed = {false, 30 * SECOND, 10 * MINUTE, 60 * MINUTE};
    Network net(nic, fixed);
    CHECK(net.service(1));
    CHECK_EQ(nic.requests, 0);
    nic.link = false;
    CHECK(!net.service(2));
}

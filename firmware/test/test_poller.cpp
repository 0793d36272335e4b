// The poller against simulated meters on 9600-baud wires: one bus or three, meters missing or
// garbled, the micros() wrap, and the cycle time against the budget in docs/BENCHMARKS.md.
#include "../energymon_mega/src/core/poller.h"
#include "../energymon_mega/src/core/timing.h"
#include "fakes.h"
#include "unit.h"

using namespace em;
UT_FILE;

namespace {

const uint32_t LOOP_US = 200;         // how often the simulated loop services the poller
const uint32_t TURNAROUND_US = 2000;  // as in the budget
const PollTiming TIMING = {100000UL, 3646UL, 34376UL};

struct Results : PollListener {
    Results() { memset(this->got, 0, sizeof(got)); memset(failures, 0, sizeof(failures)); }
    void on_measurement(uint8_t meter, const Measurement& m, uint32_t age_us) override {
        got[meter] = true;
        values[meter] = m;
        ages[meter] = age_us;
    }
    void on_failure(uint8_t meter, ReplyStatus why, uint8_t) override {
        failures[meter] = why;
    }
    bool got[MAX_METERS];
    Measurement values[MAX_METERS];
    uint32_t ages[MAX_METERS];
    uint8_t failures[MAX_METERS];
};

Measurement meter_value(uint8_t i) {
    Measurement m;
    m.voltage_dv = static_cast<uint16_t>(2290 + i);
    m.current_ma = 70000UL + i;
    m.power_dw = 161000UL + i;
    m.energy_wh = 9999990UL - i;
    m.frequency_dhz = 500;
    m.power_factor_centi = static_cast<uint16_t>(90 + i);
    m.alarm = i == 2;
    return m;
}

// Runs one cycle from `start`; returns its length in microseconds.
uint32_t run_cycle(MeterPoller& poller, uint32_t& clock, Results& out) {
    uint32_t start = clock;
    poller.start_cycle(clock);
    while (poller.busy() && elapsed(clock, start) < 1000000UL) {
        poller.service(clock, out);
        clock += LOOP_US;
    }
    return elapsed(clock, start);
}

}  // namespace

TEST(three_meters_on_one_bus_within_budget) {
    uint32_t clock = 1000;
    fake::Bus bus(&clock);
    bus.latency_us = TURNAROUND_US;
    for (uint8_t i = 0; i < 3; ++i) {
        bus.add_meter(static_cast<uint8_t>(i + 1), meter_value(i));
    }
    SerialLink* links[MAX_BUSES] = {&bus, nullptr, nullptr};
    const MeterDef meters[3] = {{0, 1}, {0, 2}, {0, 3}};
    MeterPoller poller(meters, 3, links, TIMING);
    Results out;
    uint32_t took = run_cycle(poller, clock, out);
    for (uint8_t i = 0; i < 3; ++i) {
        CHECK(out.got[i]);
        CHECK_EQ(out.values[i].energy_wh, 9999990UL - i);
        CHECK_EQ(out.values[i].current_ma, 70000UL + i);
        CHECK_EQ(out.failures[i], REPLY_OK);
    }
    CHECK(out.values[2].alarm);
    CHECK_EQ(bus.requests, 3);
    const uint8_t buses[3] = {0, 0, 0};
    uint32_t budget = poll_cycle_us(buses, 3, 9600, 10, TURNAROUND_US);
    // The simulation adds the loop's sampling delay to each reply and gap.
    CHECK(took <= budget + 6 * LOOP_US);
    CHECK(took + 6 * LOOP_US >= budget);
    CHECK(took <= 150000UL);
    ut::out_flash(PSTR_OR("     three meters, one bus, simulated 9600-baud wire: "));
    ut::out_u32(took);
    ut::out_flash(PSTR_OR(" us (budget "));
    ut::out_u32(budget);
    ut::out_flash(PSTR_OR(" us)\n"));
}

TEST(one_meter_per_port_polls_in_parallel) {
    uint32_t clock = 5;
    fake::Bus a(&clock);
    fake::Bus b(&clock);
    fake::Bus c(&clock);
    a.add_meter(1, meter_value(0));
    b.add_meter(1, meter_value(1));
    c.add_meter(1, meter_value(2));
    a.latency_us = b.latency_us = c.latency_us = TURNAROUND_US;
    SerialLink* links[MAX_BUSES] = {&a, &b, &c};
    const MeterDef meters[3] = {{0, 1}, {1, 1}, {2, 1}};
    MeterPoller poller(meters, 3, links, TIMING);
    Results out;
    uint32_t took = run_cycle(poller, clock, out);
    CHECK(out.got[0] && out.got[1] && out.got[2]);
    CHECK(took <= meter_poll_us(9600, 10, TURNAROUND_US) + 2 * LOOP_US);
    ut::out_flash(PSTR_OR("     three meters, one per port, simulated: "));
    ut::out_u32(took);
    ut::out_flash(PSTR_OR(" us\n"));
}

TEST(missing_meter_is_a_failure_not_zeros) {
    uint32_t clock = 0;
    fake::Bus bus(&clock);
    bus.add_meter(1, meter_value(0));
    bus.add_meter(3, meter_value(2));  // address 2 is configured but silent (no mains)
    SerialLink* links[MAX_BUSES] = {&bus, nullptr, nullptr};
    const MeterDef meters[3] = {{0, 1}, {0, 2}, {0, 3}};
    MeterPoller poller(meters, 3, links, TIMING);
    Results out;
    uint32_t took = run_cycle(poller, clock, out);
    CHECK(out.got[0]);
    CHECK(!out.got[1]);
    CHECK_EQ(out.failures[1], REPLY_TIMEOUT);
    CHECK(out.got[2]);
    CHECK(took >= TIMING.reply_timeout_us);
}

TEST(garbled_reply_is_rejected_and_next_cycle_recovers) {
    uint32_t clock = 0;
    fake::Bus bus(&clock);
    bus.add_meter(1, meter_value(0));
    SerialLink* links[MAX_BUSES] = {&bus, nullptr, nullptr};
    const MeterDef meters[1] = {{0, 1}};
    MeterPoller poller(meters, 1, links, TIMING);
    Results out;
    bus.corrupt_next = true;
    run_cycle(poller, clock, out);
    CHECK(!out.got[0]);
    CHECK_EQ(out.failures[0], REPLY_BAD_CRC);
    Results again;
    run_cycle(poller, clock, again);
    CHECK(again.got[0]);
}

TEST(cycle_across_the_micros_wrap) {
    uint32_t clock = 0xFFFFFFFFUL - 30000UL;
    fake::Bus bus(&clock);
    bus.add_meter(1, meter_value(0));
    bus.add_meter(2, meter_value(1));
    SerialLink* links[MAX_BUSES] = {&bus, nullptr, nullptr};
    const MeterDef meters[2] = {{0, 1}, {0, 2}};
    MeterPoller poller(meters, 2, links, TIMING);
    Results out;
    uint32_t took = run_cycle(poller, clock, out);
    CHECK(out.got[0] && out.got[1]);
    CHECK(took < 100000UL);
}

TEST(reading_is_dated_when_the_reply_arrived_not_when_processed) {
    uint32_t clock = 5000;
    fake::Bus bus(&clock);
    bus.add_meter(1, meter_value(0));
    SerialLink* links[MAX_BUSES] = {&bus, nullptr, nullptr};
    const MeterDef meters[1] = {{0, 1}};
    MeterPoller poller(meters, 1, links, TIMING);
    Results out;
    poller.start_cycle(clock);
    poller.service(clock, out);
    // A blocking library call holds the loop for six seconds while the reply comes in.
    clock += 6000000UL;
    poller.service(clock, out);
    CHECK(out.got[0]);
    // Measured about one wire time after the request, so six seconds before it was processed.
    CHECK(out.ages[0] >= 6000000UL - 40000UL && out.ages[0] <= 6000000UL - 30000UL);

    clock += 4000;
    poller.service(clock, out);
    Results prompt;
    uint32_t took = run_cycle(poller, clock, prompt);
    CHECK(prompt.got[0] && took < 100000UL);
    CHECK(prompt.ages[0] < 5000UL);
}

// The sketch's static_asserts on its meter table, each rule shown to reject what it must.
constexpr MeterDef ALONE_GENERAL[3] = {{0, GENERAL_ADDRESS}, {1, GENERAL_ADDRESS}, {2, GENERAL_ADDRESS}};
constexpr MeterDef SHARED_DISTINCT[3] = {{0, 0x01}, {0, 0x02}, {1, GENERAL_ADDRESS}};
constexpr MeterDef BROADCAST[2] = {{0, 0x00}, {1, 0x01}};
constexpr MeterDef DUPLICATE[3] = {{0, 0x05}, {1, 0x05}, {0, 0x05}};
constexpr MeterDef GENERAL_SHARED[2] = {{2, 0x01}, {2, GENERAL_ADDRESS}};
constexpr MeterDef BEYOND_GENERAL[1] = {{0, 0xF9}};

TEST(meter_address_rules_checked_at_compile_time) {
    static_assert(no_broadcast_address(ALONE_GENERAL, 3) && distinct_addresses_per_bus(ALONE_GENERAL, 3) &&
                      general_address_alone(ALONE_GENERAL, 3) && address_in_range(ALONE_GENERAL, 3),
                  "the default: one meter per port, each on the general address");
    static_assert(no_broadcast_address(SHARED_DISTINCT, 3) && distinct_addresses_per_bus(SHARED_DISTINCT, 3) &&
                      general_address_alone(SHARED_DISTINCT, 3),
                  "two meters sharing a port with their own addresses");
    static_assert(!no_broadcast_address(BROADCAST, 2), "0x00 is rejected");
    static_assert(!distinct_addresses_per_bus(DUPLICATE, 3), "a duplicate on one port is rejected");
    static_assert(distinct_addresses_per_bus(DUPLICATE, 2), "the same address on two ports is fine");
    static_assert(!general_address_alone(GENERAL_SHARED, 2), "0xF8 on a shared port is rejected");
    static_assert(!address_in_range(BEYOND_GENERAL, 1), "above 0xF8 is rejected");
    CHECK(general_address_alone(ALONE_GENERAL, 3));
}

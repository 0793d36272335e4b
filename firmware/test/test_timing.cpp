// Wrap-safe interval arithmetic, the 64-bit uptime, and the poll cycle budget of the reference's
// wire timings (docs/BENCHMARKS.md quotes these figures).
#include "../energymon_mega/src/core/timing.h"
#include "unit.h"

using namespace em;
UT_FILE;

TEST(elapsed_across_the_wrap) {
    CHECK_EQ(elapsed(5, 0xFFFFFFFBUL), 10);
    CHECK_EQ(elapsed(1000, 0), 1000);
}

TEST(uptime_survives_millis_wrap) {
    Uptime u;
    CHECK_EQ(u.update(0xFFFFFF00UL), 0xFFFFFF00UL);
    uint64_t after = u.update(0x10);
    CHECK(after == 0x100000010ULL);
    CHECK(u.update(0x20) == 0x100000020ULL);
    CHECK(u.update(0x05) == 0x200000005ULL);
}

TEST(poll_clock_counts_missed_cycles_and_never_stalls) {
    PollClock clock(1000);
    uint32_t missed = 99;
    CHECK(clock.due(12345, &missed));
    CHECK_EQ(missed, 0);
    CHECK(!clock.due(13344, &missed));
    CHECK(clock.due(13350, &missed));
    CHECK_EQ(missed, 0);
    // A DHCP request held the loop for six seconds: six cycles missed, then on schedule again.
    CHECK(clock.due(20400, &missed));
    CHECK_EQ(missed, 6);
    CHECK(!clock.due(21399, &missed));
    CHECK(clock.due(21400, &missed));
    CHECK_EQ(missed, 0);
    // Parked across the millis() wrap and beyond: the next cycle is never more than one away.
    const uint64_t DAY = 86400000ULL;
    const uint16_t days[4] = {25, 26, 40, 50};
    for (uint8_t i = 0; i < 4; ++i) {
        PollClock c(1000);
        uint64_t t = 1000;
        c.due(t, &missed);
        for (uint64_t end = t + days[i] * DAY; t < end; t += DAY / 2) {
            CHECK(c.due(t + DAY / 2, &missed));
        }
        CHECK(!c.due(t + 999, &missed));
        CHECK(c.due(t + 1000, &missed));
    }
}

TEST(wire_times_at_9600_8n1) {
    CHECK_EQ(wire_time_us(1, 9600, 10), 1042);
    CHECK_EQ(wire_time_us(8, 9600, 10), 8334);
    CHECK_EQ(wire_time_us(25, 9600, 10), 26042);
    CHECK_EQ(modbus_gap_us(9600, 10), 3646);
}

TEST(poll_cycle_budget) {
    const uint32_t turnaround = 2000;
    CHECK_EQ(meter_poll_us(9600, 10, turnaround), 40022);
    const uint8_t one_bus[3] = {0, 0, 0};
    const uint8_t three_buses[3] = {0, 1, 2};
    const uint8_t two_and_one[3] = {0, 0, 2};
    CHECK_EQ(poll_cycle_us(one_bus, 3, 9600, 10, turnaround), 120066);
    CHECK_EQ(poll_cycle_us(three_buses, 3, 9600, 10, turnaround), 40022);
    CHECK_EQ(poll_cycle_us(two_and_one, 3, 9600, 10, turnaround), 80044);
    CHECK(poll_cycle_us(one_bus, 3, 9600, 10, turnaround) <= 150000UL);
    // The physical floor: wire time and the Modbus gap alone.
    CHECK_EQ(poll_cycle_us(one_bus, 3, 9600, 10, 0), 114066);
}

#include "../energymon_mega/src/core/diag.h"

TEST(led_patterns) {
    CHECK_EQ(overall_health(false, false, false), HEALTH_NO_NETWORK);
    CHECK_EQ(overall_health(true, false, false), HEALTH_COLLECTOR_DOWN);
    CHECK_EQ(overall_health(true, true, false), HEALTH_METER_MISSING);
    CHECK_EQ(overall_health(true, true, true), HEALTH_OK);
    uint16_t on[4] = {0, 0, 0, 0};
    for (uint32_t t = 0; t < 2000; t += 10) {
        for (uint8_t h = 0; h < 4; ++h) {
            on[h] = static_cast<uint16_t>(on[h] + (led_on(static_cast<Health>(h), 0xFFFFF000UL + t) ? 1 : 0));
        }
    }
    CHECK(on[HEALTH_OK] > 0 && on[HEALTH_OK] <= 10);
    CHECK(on[HEALTH_METER_MISSING] > on[HEALTH_OK]);
    CHECK(on[HEALTH_COLLECTOR_DOWN] > on[HEALTH_METER_MISSING]);
    CHECK_EQ(on[HEALTH_NO_NETWORK], 200);
}

#include "../energymon_mega/src/core/names.h"

TEST(name_rules_of_the_contract) {
    static_assert(name_valid("mega-01"), "plain name");
    static_assert(name_valid("K\xc3\xbc" "che \"alt\""), "UTF-8 and quotes are allowed");
    static_assert(!name_valid(""), "empty");
    static_assert(!name_valid(" lead"), "leading space");
    static_assert(!name_valid("trail "), "trailing space");
    static_assert(!name_valid("back\\slash"), "backslash");
    static_assert(!name_valid("tab\there"), "control character");
    static_assert(name_valid("0123456789012345678901234567890123456789012345678901234567890123"), "64");
    static_assert(!name_valid("01234567890123456789012345678901234567890123456789012345678901234"), "65");
    // 64 two-byte characters are 64 characters, not 128.
    static_assert(name_chars("\xc3\xbc\xc3\xbc") == 2, "counts characters");
    CHECK(name_valid("pzem1"));
}

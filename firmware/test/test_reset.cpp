// The reset cause worked out from the .noinit marker, as on a Mega whose bootloader cleared
// MCUSR: power-on (random RAM), watchdog with the stage it hit, a requested reset, the button;
// the watchdog-reset counters and the start-up back-off of a reset loop.
#include "../energymon_mega/src/core/reset_cause.h"
#include "unit.h"

using namespace em;
UT_FILE;

TEST(reset_cause_survives_a_bootloader_that_clears_mcusr) {
    ResetMarker m;
    memset(&m, 0x5A, sizeof(m));  // RAM after a power cut
    uint8_t stage = 99;
    CHECK_EQ(reset_cause_at_boot(m, 0, &stage), RESET_POWER_ON);
    CHECK_EQ(stage, STAGE_BOOT);
    reset_marker_stage(m, STAGE_SEND);
    reset_marker_expect(m, RESET_WATCHDOG);  // the watchdog's interrupt, just before the reset
    CHECK_EQ(reset_cause_at_boot(m, 0, &stage), RESET_WATCHDOG);
    CHECK_EQ(stage, STAGE_SEND);
    CHECK_EQ(m.watchdog_total, 1);
    reset_marker_stage(m, STAGE_DHCP);
    CHECK_EQ(reset_cause_at_boot(m, 0, &stage), RESET_EXTERNAL);  // the button: RAM kept
    CHECK_EQ(stage, STAGE_DHCP);
    CHECK_EQ(m.watchdog_streak, 0);
    CHECK_EQ(m.watchdog_total, 1);
    reset_marker_expect(m, RESET_REQUESTED);
    CHECK_EQ(reset_cause_at_boot(m, 0, &stage), RESET_REQUESTED);
    // A bootloader that leaves MCUSR alone is believed.
    CHECK_EQ(reset_cause_at_boot(m, MCUSR_WDRF, &stage), RESET_WATCHDOG);
    CHECK_EQ(reset_cause_at_boot(m, MCUSR_PORF, &stage), RESET_POWER_ON);
    CHECK_EQ(m.watchdog_total, 0);
    // One flipped bit (a brown-out that damaged RAM) is not trusted.
    reset_marker_expect(m, RESET_WATCHDOG);
    m.stage ^= 0x01;
    CHECK_EQ(reset_cause_at_boot(m, 0, &stage), RESET_POWER_ON);
}

TEST(repeated_watchdog_resets_back_off) {
    ResetMarker m;
    memset(&m, 0, sizeof(m));
    uint8_t stage = 0;
    reset_cause_at_boot(m, 0, &stage);
    for (uint8_t i = 0; i < 10; ++i) {
        reset_marker_expect(m, RESET_WATCHDOG);
        reset_cause_at_boot(m, 0, &stage);
    }
    CHECK_EQ(m.watchdog_streak, 10);
    CHECK_EQ(m.watchdog_total, 10);
    CHECK_EQ(watchdog_backoff_ms(0), 0);
    CHECK_EQ(watchdog_backoff_ms(2), 0);
    CHECK_EQ(watchdog_backoff_ms(3), 30000UL);
    CHECK_EQ(watchdog_backoff_ms(4), 60000UL);
    CHECK_EQ(watchdog_backoff_ms(100), 1800000UL);
    CHECK_EQ(watchdog_backoff_ms(0xFFFF), 1800000UL);
    reset_marker_healthy(m);
    CHECK_EQ(m.watchdog_streak, 0);
    reset_marker_expect(m, RESET_WATCHDOG);
    reset_cause_at_boot(m, 0, &stage);
    CHECK_EQ(m.watchdog_streak, 1);
    CHECK_EQ(m.watchdog_total, 11);
}

#include "../energymon_mega/src/core/nonce.h"

TEST(boot_nonce_mixes_every_sample_and_is_never_zero) {
    EntropyPool none;
    CHECK(none.nonce() != 0);
    EntropyPool zeros;
    for (uint8_t i = 0; i < 64; ++i) {
        zeros.add(0);
    }
    CHECK(zeros.nonce() != 0);
    // One different low bit in one sample (the jitter) changes about half the nonce's bits.
    EntropyPool a;
    EntropyPool b;
    for (uint8_t i = 0; i < 64; ++i) {
        a.add(static_cast<uint16_t>(1000 + i));
        b.add(static_cast<uint16_t>(1000 + i + (i == 40 ? 1 : 0)));
    }
    uint32_t diff = a.nonce() ^ b.nonce();
    uint8_t bits = 0;
    for (; diff != 0; diff &= diff - 1) {
        ++bits;
    }
    CHECK(bits >= 8 && bits <= 24);
    CHECK_EQ(a.samples(), 64);
}

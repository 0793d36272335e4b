#include "reset_cause.h"

#include "crc16.h"

namespace em {

static const uint16_t MARKER_MAGIC = 0x5EA1;
static const uint8_t NOTHING_EXPECTED = 0xFF;
static const uint8_t BACKOFF_FREE_RESETS = 3;
static const uint32_t BACKOFF_BASE_MS = 30000UL;
static const uint32_t BACKOFF_CAP_MS = 1800000UL;

static uint16_t marker_check(const ResetMarker& m) {
    return crc16_modbus(reinterpret_cast<const uint8_t*>(&m), offsetof(ResetMarker, check));
}

static void seal(ResetMarker& m) {
    m.check = marker_check(m);
}

ResetCause reset_cause_at_boot(ResetMarker& m, uint8_t mcusr, uint8_t* last_stage) {
    bool valid = m.magic == MARKER_MAGIC && m.check == marker_check(m);
    ResetCause cause = RESET_EXTERNAL;
    if (!valid || (mcusr & MCUSR_PORF) != 0) {
        cause = RESET_POWER_ON;
    } else if (m.pending == RESET_WATCHDOG || (mcusr & MCUSR_WDRF) != 0) {
        cause = RESET_WATCHDOG;
    } else if (m.pending == RESET_REQUESTED) {
        cause = RESET_REQUESTED;
    }
    *last_stage = valid ? m.stage : static_cast<uint8_t>(STAGE_BOOT);
    if (cause == RESET_POWER_ON) {
        m.watchdog_streak = 0;
        m.watchdog_total = 0;
    } else if (cause == RESET_WATCHDOG) {
        m.watchdog_streak = static_cast<uint16_t>(m.watchdog_streak < 0xFFFF ? m.watchdog_streak + 1 : 0xFFFF);
        ++m.watchdog_total;
    } else {
        m.watchdog_streak = 0;
    }
    m.magic = MARKER_MAGIC;
    m.stage = STAGE_BOOT;
    m.pending = NOTHING_EXPECTED;
    seal(m);
    return cause;
}

ResetReport reset_report_at_boot(ResetMarker& m, uint8_t mcusr) {
    ResetReport r;
    uint8_t last_stage = STAGE_BOOT;
    r.cause = reset_cause_at_boot(m, mcusr, &last_stage);
    r.stage = static_cast<Stage>(last_stage);
    r.watchdog_resets = m.watchdog_total;
    return r;
}

void reset_marker_expect(ResetMarker& m, ResetCause cause) {
    m.pending = cause;
    seal(m);
}

void reset_marker_stage(ResetMarker& m, Stage stage) {
    m.stage = stage;
    seal(m);
}

void reset_marker_healthy(ResetMarker& m) {
    if (m.watchdog_streak != 0) {
        m.watchdog_streak = 0;
        seal(m);
    }
}

uint32_t watchdog_backoff_ms(uint16_t streak) {
    if (streak < BACKOFF_FREE_RESETS) {
        return 0;
    }
    uint32_t wait = BACKOFF_BASE_MS;
    for (uint16_t i = BACKOFF_FREE_RESETS; i < streak && wait < BACKOFF_CAP_MS; ++i) {
        wait *= 2u;
    }
    return wait < BACKOFF_CAP_MS ? wait : BACKOFF_CAP_MS;
}

static const char k_power_on[] EM_FLASH = "power-on";
static const char k_watchdog[] EM_FLASH = "watchdog";
static const char k_requested[] EM_FLASH = "recovery (network wedged)";
static const char k_external[] EM_FLASH = "reset button or brown-out";

const char* reset_cause_name(ResetCause c) {
    switch (c) {
        case RESET_POWER_ON: return k_power_on;
        case RESET_WATCHDOG: return k_watchdog;
        case RESET_REQUESTED: return k_requested;
        case RESET_EXTERNAL: return k_external;
    }
    return k_external;
}

}  // namespace em

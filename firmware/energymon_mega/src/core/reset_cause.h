// Why the board restarted, although the Mega's stock bootloader clears MCUSR before the sketch
// runs: a marker in RAM that a reset does not clear (.noinit) carries the watchdog's last word
// and the stage the loop was in across the reset. A power cut leaves the RAM random, so a marker
// that does not check out means power-on.
#ifndef EM_RESET_CAUSE_H
#define EM_RESET_CAUSE_H

#include "em_base.h"

namespace em {

enum ResetCause : uint8_t {
    RESET_POWER_ON = 0,
    RESET_WATCHDOG,   // the loop stopped petting the watchdog (the stage says where)
    RESET_REQUESTED,  // the firmware gave up on a wedged network and let the watchdog reset
    RESET_EXTERNAL,   // the reset button, a brown-out, or a programmer
};

// Where the loop was, recorded before every step that can block for long.
enum Stage : uint8_t {
    STAGE_BOOT = 0,
    STAGE_METERS,
    STAGE_NETWORK,
    STAGE_DHCP,
    STAGE_SEND,
    STAGE_CARD,
    STAGE_IDLE,
};

struct ResetMarker {
    uint16_t magic;
    uint8_t stage;
    uint8_t pending;        // what the firmware expects the next reset to be, or 0xFF
    uint16_t watchdog_streak;  // watchdog resets in a row, without a healthy run between
    uint32_t watchdog_total;   // since power-on
    uint16_t check;
};

// Called once at start-up: classifies the reset that just happened (AVR MCUSR bits are used when
// a bootloader left them), updates the counters and re-arms the marker for this run.
ResetCause reset_cause_at_boot(ResetMarker& m, uint8_t mcusr, uint8_t* last_stage);

// What the collector is told, in every request of this boot, about the reset that started it
// (docs/api.md, `reset`).
struct ResetReport {
    ResetCause cause;
    Stage stage;               // where the loop was; sent only after a watchdog or requested reset
    uint32_t watchdog_resets;  // since power-on
};

// reset_cause_at_boot, with its figures gathered for the collector.
ResetReport reset_report_at_boot(ResetMarker& m, uint8_t mcusr);

// From the watchdog's early-warning interrupt, or before a requested reset.
void reset_marker_expect(ResetMarker& m, ResetCause cause);
void reset_marker_stage(ResetMarker& m, Stage stage);
// The run has been healthy long enough: watchdog resets so far were not a loop.
void reset_marker_healthy(ResetMarker& m);

// How long to wait before starting after `streak` watchdog resets in a row: nothing for the
// first few (a one-off hang), then doubling up to a cap, so a board in a reset loop neither
// wears its EEPROM nor hammers the network and the card.
uint32_t watchdog_backoff_ms(uint16_t streak);

const char* reset_cause_name(ResetCause c);  // in flash

// The MCUSR bits of the AVR (the same on every ATmega).
const uint8_t MCUSR_PORF = 0x01;
const uint8_t MCUSR_EXTRF = 0x02;
const uint8_t MCUSR_BORF = 0x04;
const uint8_t MCUSR_WDRF = 0x08;

}  // namespace em

#endif

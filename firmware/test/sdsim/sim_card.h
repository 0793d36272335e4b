// A simulated SD card under the real SD 1.3.0 library: the library's Sd2Card interface, served
// from a FAT32 volume described by a few numbers (no image in the AVR's RAM). The spill log's
// segment files hold records made up from their offsets; blocks the library writes to the FAT and
// the directories are kept, segment data written is counted and dropped. Every block the library
// reads or writes is counted, so its SPI time can be added to the CPU time measured under simavr.
#ifndef EM_SIM_CARD_H
#define EM_SIM_CARD_H

#include <stdint.h>

namespace sim {

struct Volume {
    uint8_t blocks_per_cluster;
    uint32_t segment_bytes;
    uint32_t backlog_records;  // in segment files S0000000.BIN on
    uint32_t record_boot;
};

void configure(const Volume& v);

struct Counters {
    uint32_t blocks_read;
    uint32_t blocks_written;
    uint32_t sim_cycles;  // spent making up blocks: not the library's cost
    bool overflow;        // more metadata blocks written than the simulation keeps
    bool refuse_writes;   // the card stops confirming writes (pulled out, worn)
};
extern Counters counters;

// A cycle counter on Timer1 (clk/1) with its overflows, for timing the library on the AVR.
void clock_start();
uint32_t cycles();

}  // namespace sim

#endif

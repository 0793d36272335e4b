// The spill log's per-batch cost on the ATmega2560 (under simavr) with the real SD 1.3.0 library
// (SdVolume, SdFile) over a simulated card holding a backlog of EM_SIM_DAYS days in segment
// files with EM_SIM_CLUSTER_BLOCKS blocks per cluster. Prints the CPU time and the blocks moved of
// start-up, of the first batch, of the steady batches once both files are open, and of opening
// the next segment (once per segment, a directory search as long as the list of segments).
#include <Arduino.h>
#include <avr/sleep.h>

#include "../../energymon_mega/arduino_glue.h"
#include "../../energymon_mega/src/core/store.h"
#include "sim_card.h"

namespace {

const uint32_t BOOT = 7;
const uint32_t READINGS_PER_DAY = 3UL * 86400UL;
const uint32_t SEGMENT_READINGS = 28672UL;
const uint16_t BATCH = 50;
const uint8_t WARM_UP = 8;
const uint8_t BATCHES = WARM_UP + 24;
// As in the host test: a backlog ending at the same place in its last segment for every length.
const uint32_t BACKLOG = READINGS_PER_DAY + (EM_SIM_DAYS - 1UL) * READINGS_PER_DAY /
                                                SEGMENT_READINGS * SEGMENT_READINGS;

uint8_t g_ring_memory[12 * em::RECORD_LEN];

class Anchored : public em::AnchorBook {
public:
    bool was_anchored(uint32_t boot) override { return boot == BOOT; }
};

void report(const __FlashStringHelper* what, uint32_t cycles, uint32_t blocks_read, uint32_t blocks_written) {
    Serial.print(what);
    Serial.print(F(" cpu_us="));
    Serial.print(cycles / 16u);
    Serial.print(F(" blocks_read="));
    Serial.print(blocks_read);
    Serial.print(F(" blocks_written="));
    Serial.println(blocks_written);
}

}  // namespace

void setup() {
    Serial.begin(115200);
    sim::clock_start();
    sim::Volume v = {EM_SIM_CLUSTER_BLOCKS, SEGMENT_READINGS * em::RECORD_LEN, BACKLOG, BOOT};
    sim::configure(v);
    Serial.print(F("SDSIM days="));
    Serial.print(EM_SIM_DAYS);
    Serial.print(F(" cluster_bytes="));
    Serial.print(512UL * EM_SIM_CLUSTER_BLOCKS);
    Serial.print(F(" backlog_readings="));
    Serial.println(BACKLOG);

    static SdSegments files(4);
    static em::SegmentedMedia media(files, SEGMENT_READINGS * em::RECORD_LEN);
    static em::SpillLog log(media);
    uint32_t t0 = sim::cycles();
    bool ok = files.begin() && media.begin() && log.open();
    report(F("SDSIM startup"), sim::cycles() - t0 - sim::counters.sim_cycles,
           sim::counters.blocks_read, sim::counters.blocks_written);
    static Anchored anchors;
    static em::RecordRing ring(g_ring_memory, 12);
    static em::Store store(ring, &log, BOOT + 1, anchors, 4);
    ok = ok && log.pending_records() == BACKLOG;

    uint32_t seq = 0;
    uint32_t steady_cycles = 0;
    uint32_t steady_read = 0;
    uint32_t steady_written = 0;
    uint32_t worst = 0;
    for (uint8_t b = 0; b < BATCHES && ok; ++b) {
        sim::Counters before = sim::counters;
        uint32_t start = sim::cycles();
        for (uint8_t i = 0; i < 3; ++i) {
            em::Reading r;
            memset(&r, 0, sizeof(r));
            r.boot = BOOT + 1;
            r.seq = ++seq;
            store.add(r);
        }
        em::Batch batch;
        ok = store.plan(BATCH, batch) && batch.count == BATCH;
        for (uint8_t pass = 0; pass < 2 && ok; ++pass) {
            for (uint16_t i = 0; i < batch.count && ok; ++i) {
                em::Reading r;
                ok = store.get(batch, i, r) && r.boot == BOOT;
            }
        }
        store.acknowledge(batch, batch.last_seq);
        uint32_t took = sim::cycles() - start - (sim::counters.sim_cycles - before.sim_cycles);
        uint32_t read = sim::counters.blocks_read - before.blocks_read;
        uint32_t written = sim::counters.blocks_written - before.blocks_written;
        if (b == 0) {
            report(F("SDSIM first_batch"), took, read, written);
        }
        if (b < WARM_UP) {
            continue;
        }
        steady_cycles += took;
        steady_read += read;
        steady_written += written;
        worst = took > worst ? took : worst;
    }
    ok = ok && !sim::counters.overflow && store.card_failures() == 0;
    const uint8_t n = BATCHES - WARM_UP;
    report(F("SDSIM batch_average"), steady_cycles / n, steady_read / n, steady_written / n);
    Serial.print(F("SDSIM batch_worst cpu_us="));
    Serial.println(worst / 16u);

    sim::Counters before = sim::counters;
    uint32_t start = sim::cycles();
    uint8_t raw[em::RECORD_LEN];
    ok = ok && files.read(1, 0, raw, em::RECORD_LEN);
    report(F("SDSIM segment_open"),
           sim::cycles() - start - (sim::counters.sim_cycles - before.sim_cycles),
           sim::counters.blocks_read - before.blocks_read,
           sim::counters.blocks_written - before.blocks_written);
    // The first segment created after the card was mounted: SD 1.x searches the FAT for a free
    // cluster from its start, across every cluster in use before it.
    uint32_t last = (BACKLOG * em::RECORD_LEN - 1) / (SEGMENT_READINGS * em::RECORD_LEN);
    before = sim::counters;
    start = sim::cycles();
    ok = ok && files.append(last + 1, raw, em::RECORD_LEN) && files.sync();
    report(F("SDSIM segment_create"),
           sim::cycles() - start - (sim::counters.sim_cycles - before.sim_cycles),
           sim::counters.blocks_read - before.blocks_read,
           sim::counters.blocks_written - before.blocks_written);
    // A card that takes the data into the library's cache but refuses the write to flash: the sync
    // reports it, the readings stay in RAM and the failure is counted.
    sim::counters.refuse_writes = true;
    const uint16_t room = static_cast<uint16_t>(12 - store.in_ram());
    uint32_t failures = store.card_failures();
    for (uint8_t i = 0; i < 12; ++i) {
        em::Reading r;
        memset(&r, 0, sizeof(r));
        r.boot = BOOT + 1;
        r.seq = ++seq;
        store.add(r);
    }
    bool kept = store.card_failures() == failures + 1 && !store.card_usable() &&
                store.in_ram() == 12 && store.dropped() == 12u - room;
    Serial.print(F("SDSIM refused_write kept_in_ram="));
    Serial.print(store.in_ram());
    Serial.print(F(" card_failures="));
    Serial.print(store.card_failures());
    Serial.print(F(" dropped="));
    Serial.println(store.dropped());
    ok = ok && kept;
    Serial.println(ok ? F("SDSIM RESULT: PASS") : F("SDSIM RESULT: FAIL"));
    Serial.flush();
    cli();
    sleep_enable();
    sleep_cpu();
}

void loop() {}

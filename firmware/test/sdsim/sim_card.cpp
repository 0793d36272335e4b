#include "sim_card.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <string.h>
#include <utility/Sd2Card.h>
#include <utility/FatStructs.h>

#include "../../energymon_mega/src/core/record.h"

namespace sim {

Counters counters;

static volatile uint16_t g_overflows = 0;
ISR(TIMER1_OVF_vect) {
    ++g_overflows;
}

void clock_start() {
    TCCR1A = 0;
    TCCR1B = _BV(CS10);
    TIMSK1 |= _BV(TOIE1);
}

uint32_t cycles() {
    uint8_t sreg = SREG;
    cli();
    uint16_t t = TCNT1;
    uint16_t hi = g_overflows;
    if ((TIFR1 & _BV(TOV1)) && t < 0x8000) {
        ++hi;
    }
    SREG = sreg;
    return (static_cast<uint32_t>(hi) << 16) | t;
}

// Layout: boot sector, one FAT, then clusters: the root directory, the log's directory, the
// cursor file's cluster, then the segments back to back, then free space.
static const uint32_t TOTAL_BLOCKS = 8388608UL;  // a card of four GiB
static const uint16_t RESERVED = 32;
static const uint32_t ROOT_CLUSTER = 2;
static const uint32_t LOG_DIR_CLUSTER = 3;

static Volume g_v;
static uint32_t g_fat_blocks;
static uint32_t g_data_start;
static uint32_t g_cluster_bytes;
static uint32_t g_dir_clusters;
static uint32_t g_cursor_cluster;
static uint32_t g_first_segment_cluster;
static uint32_t g_segment_clusters;
static uint32_t g_segments;
static uint32_t g_last_segment_bytes;

struct Kept {
    uint32_t block;
    uint8_t data[512];
};
static const uint8_t KEPT = 6;
static Kept g_kept[KEPT];
static uint8_t g_kept_count = 0;

void configure(const Volume& v) {
    g_v = v;
    g_cluster_bytes = 512UL * v.blocks_per_cluster;
    uint32_t clusters = TOTAL_BLOCKS / v.blocks_per_cluster;
    g_fat_blocks = (clusters * 4UL + 511) / 512;
    g_data_start = RESERVED + g_fat_blocks;
    uint32_t bytes = v.backlog_records * em::RECORD_LEN;
    g_segments = bytes == 0 ? 0 : (bytes - 1) / v.segment_bytes + 1;
    g_last_segment_bytes = bytes - (g_segments == 0 ? 0 : (g_segments - 1) * v.segment_bytes);
    g_dir_clusters = ((g_segments + 8) * 32UL + g_cluster_bytes - 1) / g_cluster_bytes;
    g_cursor_cluster = LOG_DIR_CLUSTER + g_dir_clusters;
    g_first_segment_cluster = g_cursor_cluster + 1;
    g_segment_clusters = v.segment_bytes / g_cluster_bytes;
    g_kept_count = 0;
    memset(&counters, 0, sizeof(counters));
}

static uint32_t segment_first_cluster(uint32_t seg) {
    return g_first_segment_cluster + seg * g_segment_clusters;
}

static uint32_t fat_entry(uint32_t c) {
    if (c < 2) {
        return 0x0FFFFFFFUL;
    }
    if (c == ROOT_CLUSTER || c == g_cursor_cluster) {
        return 0x0FFFFFFFUL;
    }
    if (c < g_cursor_cluster) {
        return c + 1 == g_cursor_cluster ? 0x0FFFFFFFUL : c + 1;
    }
    uint32_t used = g_segments == 0 ? 0
                                    : (g_segments - 1) * g_segment_clusters +
                                          (g_last_segment_bytes + g_cluster_bytes - 1) / g_cluster_bytes;
    uint32_t i = c - g_first_segment_cluster;
    if (i >= used) {
        return 0;
    }
    bool last_of_file = (i + 1) % g_segment_clusters == 0 || i + 1 == used;
    return last_of_file ? 0x0FFFFFFFUL : c + 1;
}

static void name83(dir_t* d, const char* name, const char* ext) {
    memset(d->name, ' ', 11);
    memcpy(d->name, name, strlen(name));
    memcpy(d->name + 8, ext, strlen(ext));
}

static void entry(dir_t* d, uint32_t cluster, uint32_t size, uint8_t attributes) {
    d->attributes = attributes;
    d->firstClusterHigh = static_cast<uint16_t>(cluster >> 16);
    d->firstClusterLow = static_cast<uint16_t>(cluster);
    d->fileSize = size;
}

static void log_dir_block(uint32_t index, uint8_t* out) {
    dir_t* d = reinterpret_cast<dir_t*>(out);
    for (uint8_t k = 0; k < 16; ++k) {
        uint32_t n = index * 16 + k;
        if (n == 0) {
            name83(d + k, ".", "");
            entry(d + k, LOG_DIR_CLUSTER, 0, DIR_ATT_DIRECTORY);
        } else if (n == 1) {
            name83(d + k, "..", "");
            entry(d + k, 0, 0, DIR_ATT_DIRECTORY);
        } else if (n == 2) {
            name83(d + k, "CURSOR", "BIN");
            entry(d + k, g_cursor_cluster, 0, DIR_ATT_ARCHIVE);
        } else if (n - 3 < g_segments) {
            uint32_t seg = n - 3;
            char name[9];
            static const char HEX_DIGITS[] = "0123456789ABCDEF";
            name[0] = 'S';
            for (uint8_t i = 0; i < 7; ++i) {
                name[7 - i] = HEX_DIGITS[(seg >> (4 * i)) & 0xF];
            }
            name[8] = 0;
            name83(d + k, name, "BIN");
            uint32_t size = seg + 1 == g_segments ? g_last_segment_bytes : g_v.segment_bytes;
            entry(d + k, segment_first_cluster(seg), size, DIR_ATT_ARCHIVE);
        }
    }
}

static void segment_data(uint32_t seg, uint32_t pos, uint8_t* out) {
    uint32_t offset = seg * g_v.segment_bytes + pos;
    uint8_t rec[em::RECORD_LEN];
    uint32_t have = 0xFFFFFFFFUL;
    for (uint16_t i = 0; i < 512; ++i) {
        uint32_t n = (offset + i) / em::RECORD_LEN;
        if (n != have) {
            em::Reading r;
            memset(&r, 0, sizeof(r));
            r.boot = g_v.record_boot;
            r.seq = n + 1;
            r.uptime_ms = 1000ULL * (n + 1);
            r.m.voltage_dv = 2300;
            r.m.frequency_dhz = 500;
            em::record_encode(r, rec);
            have = n;
        }
        out[i] = rec[(offset + i) % em::RECORD_LEN];
    }
}

static void make_block(uint32_t block, uint8_t* out) {
    memset(out, 0, 512);
    if (block == 0) {
        fbs_t* fbs = reinterpret_cast<fbs_t*>(out);
        fbs->bpb.bytesPerSector = 512;
        fbs->bpb.sectorsPerCluster = g_v.blocks_per_cluster;
        fbs->bpb.reservedSectorCount = RESERVED;
        fbs->bpb.fatCount = 1;
        fbs->bpb.totalSectors32 = TOTAL_BLOCKS;
        fbs->bpb.sectorsPerFat32 = g_fat_blocks;
        fbs->bpb.fat32RootCluster = ROOT_CLUSTER;
        fbs->bootSectorSig0 = BOOTSIG0;
        fbs->bootSectorSig1 = BOOTSIG1;
        return;
    }
    if (block < RESERVED) {
        return;
    }
    if (block < g_data_start) {
        uint32_t* fat = reinterpret_cast<uint32_t*>(out);
        uint32_t first = (block - RESERVED) * 128UL;
        for (uint8_t i = 0; i < 128; ++i) {
            fat[i] = fat_entry(first + i);
        }
        return;
    }
    uint32_t cluster = (block - g_data_start) / g_v.blocks_per_cluster + 2;
    uint32_t in_cluster = (block - g_data_start) % g_v.blocks_per_cluster;
    if (cluster == ROOT_CLUSTER) {
        if (in_cluster == 0) {
            dir_t* d = reinterpret_cast<dir_t*>(out);
            name83(d, "EMSEG", "");
            entry(d, LOG_DIR_CLUSTER, 0, DIR_ATT_DIRECTORY);
        }
        return;
    }
    if (cluster < g_cursor_cluster) {
        log_dir_block((cluster - LOG_DIR_CLUSTER) * g_v.blocks_per_cluster + in_cluster, out);
        return;
    }
    if (cluster == g_cursor_cluster) {
        return;
    }
    uint32_t i = cluster - g_first_segment_cluster;
    uint32_t seg = i / g_segment_clusters;
    if (seg < g_segments) {
        segment_data(seg, ((i % g_segment_clusters) * g_v.blocks_per_cluster + in_cluster) * 512UL, out);
    }
}

static Kept* kept(uint32_t block) {
    for (uint8_t i = 0; i < g_kept_count; ++i) {
        if (g_kept[i].block == block) {
            return &g_kept[i];
        }
    }
    return nullptr;
}

static bool is_metadata(uint32_t block) {
    return block < g_data_start ||
           (block - g_data_start) / g_v.blocks_per_cluster + 2 <= g_cursor_cluster;
}

}  // namespace sim

// ---- the library's card interface --------------------------------------------------------------
uint8_t Sd2Card::init(uint8_t, uint8_t chipSelectPin) {
    chipSelectPin_ = chipSelectPin;
    type(SD_CARD_TYPE_SDHC);
    return true;
}

uint8_t Sd2Card::readBlock(uint32_t block, uint8_t* dst) {
    uint32_t t0 = sim::cycles();
    ++sim::counters.blocks_read;
    sim::Kept* k = sim::kept(block);
    if (k != nullptr) {
        memcpy(dst, k->data, 512);
    } else {
        sim::make_block(block, dst);
    }
    sim::counters.sim_cycles += sim::cycles() - t0;
    return true;
}

uint8_t Sd2Card::readData(uint32_t block, uint16_t offset, uint16_t count, uint8_t* dst) {
    uint8_t buf[512];
    if (!readBlock(block, buf)) {
        return false;
    }
    memcpy(dst, buf + offset, count);
    return true;
}

uint8_t Sd2Card::writeBlock(uint32_t block, const uint8_t* src, uint8_t) {
    if (sim::counters.refuse_writes) {
        return false;
    }
    uint32_t t0 = sim::cycles();
    ++sim::counters.blocks_written;
    if (sim::is_metadata(block)) {
        sim::Kept* k = sim::kept(block);
        if (k == nullptr) {
            if (sim::g_kept_count == sim::KEPT) {
                sim::counters.overflow = true;
                return false;
            }
            k = &sim::g_kept[sim::g_kept_count++];
            k->block = block;
        }
        memcpy(k->data, src, 512);
    }
    sim::counters.sim_cycles += sim::cycles() - t0;
    return true;
}

uint8_t Sd2Card::isBusy(void) {
    return false;
}

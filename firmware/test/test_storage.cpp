// The record format, the RAM ring, the SD log with its cursor, and the store that puts them
// together: readings leave only when acknowledged, oldest first, and every loss is counted.
#include "../energymon_mega/src/core/store.h"
#include "buffers.h"
#include "fakes.h"
#include "unit.h"

using namespace em;
UT_FILE;

namespace {

uint8_t* const g_media = buffers::media;
const uint32_t MEDIA_BYTES = sizeof(buffers::media);
uint8_t* const g_ring = buffers::ring;

bool same_reading(const Reading& a, const Reading& b) {
    return a.boot == b.boot && a.seq == b.seq && a.uptime_ms == b.uptime_ms &&
           a.sensor == b.sensor && a.m.voltage_dv == b.m.voltage_dv &&
           a.m.current_ma == b.m.current_ma && a.m.power_dw == b.m.power_dw &&
           a.m.energy_wh == b.m.energy_wh && a.m.frequency_dhz == b.m.frequency_dhz &&
           a.m.power_factor_centi == b.m.power_factor_centi && a.m.alarm == b.m.alarm;
}

// Collects what a batch holds and acknowledges it the way the collector would.
uint32_t drain(Store& store, uint16_t max, uint32_t* seqs, uint16_t cap, uint32_t* boots = nullptr) {
    uint32_t n = 0;
    Batch b;
    while (store.plan(max, b)) {
        for (uint16_t i = 0; i < b.count; ++i) {
            Reading r;
            if (!store.get(b, i, r)) {
                return n;
            }
            if (n < cap) {
                seqs[n] = r.seq;
                if (boots != nullptr) {
                    boots[n] = r.boot;
                }
            }
            ++n;
        }
        store.acknowledge(b, b.last_seq);
    }
    return n;
}

}  // namespace

TEST(record_round_trip_and_extremes) {
    uint8_t raw[RECORD_LEN];
    Reading a = fake::reading(4294967295UL, 4294967295UL, 2);
    a.uptime_ms = 0xFFFFFFFFFFFFULL;
    a.m.voltage_dv = 0xFFFF;
    a.m.current_ma = 0xFFFFFFFFUL;
    a.m.power_factor_centi = 0xFFFF;
    record_encode(a, raw);
    Reading b;
    CHECK(record_decode(raw, b));
    CHECK(same_reading(a, b));
    // Every single corrupted byte is noticed.
    uint8_t caught = 0;
    for (uint8_t i = 0; i < RECORD_LEN; ++i) {
        raw[i] ^= 0x04;
        if (!record_decode(raw, b)) {
            ++caught;
        }
        raw[i] ^= 0x04;
    }
    CHECK_EQ(caught, RECORD_LEN);
    memset(raw, 0, sizeof(raw));
    CHECK(!record_decode(raw, b));
}

TEST(ring_fifo_and_wrap) {
    RecordRing ring(g_ring, 8);
    for (uint32_t s = 1; s <= 8; ++s) {
        ring.push(fake::reading(1, s));
    }
    CHECK(ring.full());
    ring.pop(5);
    for (uint32_t s = 9; s <= 13; ++s) {
        ring.push(fake::reading(1, s));
    }
    Reading r;
    for (uint16_t i = 0; i < 8; ++i) {
        CHECK(ring.at(i, r));
        CHECK_EQ(r.seq, 6 + i);
    }
    uint16_t run = 0;
    ring.oldest_run(8, &run);
    CHECK_EQ(run, 3);  // slots 5..7, then the wrap
    CHECK(!ring.at(8, r));
}

TEST(log_append_read_advance_erase) {
    fake::Media media(g_media, MEDIA_BYTES);
    SpillLog log(media);
    CHECK(log.open());
    uint8_t recs[3 * RECORD_LEN];
    for (uint8_t i = 0; i < 3; ++i) {
        record_encode(fake::reading(7, 100 + i), recs + i * RECORD_LEN);
    }
    CHECK(log.append(recs, 3));
    CHECK_EQ(log.pending_records(), 3);
    Reading r;
    bool intact = false;
    CHECK(log.read(RECORD_LEN, r, intact) && intact && r.seq == 101);
    CHECK(log.advance(2 * RECORD_LEN));
    // A fresh open finds the cursor where it was left.
    SpillLog again(media);
    CHECK(again.open());
    CHECK_EQ(again.cursor(), 2 * RECORD_LEN);
    CHECK_EQ(again.pending_records(), 1);
    CHECK(again.advance(3 * RECORD_LEN));
    CHECK_EQ(media.erases, 1);
    CHECK_EQ(media.size(), 0);
    CHECK_EQ(again.cursor(), 0);
    CHECK(!again.pending());
}

TEST(log_torn_tail_is_realigned_and_skipped) {
    fake::Media media(g_media, MEDIA_BYTES);
    SpillLog log(media);
    CHECK(log.open());
    uint8_t rec[RECORD_LEN];
    record_encode(fake::reading(3, 1), rec);
    CHECK(log.append(rec, 1));
    // A power cut 10 bytes into the next append.
    media.append(rec, RECORD_LEN);
    media.power_cut(10);
    CHECK_EQ(media.size(), RECORD_LEN + 10);
    SpillLog after(media);
    CHECK(after.open());
    CHECK_EQ(after.end(), 2 * RECORD_LEN);
    Reading r;
    bool intact = true;
    CHECK(after.read(RECORD_LEN, r, intact));
    CHECK(!intact);
    record_encode(fake::reading(4, 1), rec);
    CHECK(after.append(rec, 1));
    CHECK(after.read(2 * RECORD_LEN, r, intact) && intact && r.boot == 4);
}

TEST(log_cursor_survives_a_torn_meta_write) {
    fake::Media media(g_media, MEDIA_BYTES);
    SpillLog log(media);
    CHECK(log.open());
    uint8_t recs[4 * RECORD_LEN];
    for (uint8_t i = 0; i < 4; ++i) {
        record_encode(fake::reading(1, i + 1), recs + i * RECORD_LEN);
    }
    CHECK(log.append(recs, 4));
    CHECK(log.advance(RECORD_LEN));
    CHECK(log.advance(2 * RECORD_LEN));
    // Tear the newest slot: the other still says one record in.
    uint8_t newest = (media.meta()[2] > media.meta()[META_SLOT_LEN + 2]) ? 0 : META_SLOT_LEN;
    media.meta()[newest + 7] ^= 0xFF;
    SpillLog after(media);
    CHECK(after.open());
    CHECK_EQ(after.cursor(), RECORD_LEN);
}

TEST(log_cursor_past_end_after_cut_during_erase) {
    fake::Media media(g_media, MEDIA_BYTES);
    SpillLog log(media);
    CHECK(log.open());
    uint8_t rec[RECORD_LEN];
    record_encode(fake::reading(1, 1), rec);
    CHECK(log.append(rec, 1));
    CHECK(log.append(rec, 1));
    CHECK(log.advance(RECORD_LEN));
    media.erase();  // deleted, but the cursor was never reset
    SpillLog after(media);
    CHECK(after.open());
    CHECK_EQ(after.cursor(), 0);
    CHECK(after.append(rec, 1));
    CHECK_EQ(after.pending_records(), 1);
}

TEST(no_card_ring_keeps_oldest_and_counts_drops) {
    RecordRing ring(g_ring, 8);
    fake::Anchors anchors;
    Store store(ring, nullptr, 1, anchors, 4);
    for (uint32_t s = 1; s <= 11; ++s) {
        store.add(fake::reading(1, s));
    }
    CHECK_EQ(store.in_ram(), 8);
    CHECK_EQ(store.dropped(), 3);
    uint32_t seqs[16];
    CHECK_EQ(drain(store, 3, seqs, 16), 8);
    for (uint8_t i = 0; i < 8; ++i) {
        CHECK_EQ(seqs[i], i + 1);
    }
    CHECK(!store.pending());
}

TEST(spill_to_card_and_replay_oldest_first) {
    fake::Media media(g_media, MEDIA_BYTES);
    SpillLog log(media);
    CHECK(log.open());
    RecordRing ring(g_ring, 8);
    fake::Anchors anchors;
    Store store(ring, &log, 1, anchors, 4);
    const uint32_t total = 40;
    for (uint32_t s = 1; s <= total; ++s) {
        store.add(fake::reading(1, s, static_cast<uint8_t>(s % 3)));
    }
    CHECK_EQ(store.dropped(), 0);
    CHECK_EQ(store.in_ram() + store.on_card(), total);
    CHECK(store.on_card() >= 32);
    CHECK_EQ(media.syncs, store.spilled() / 4);  // one sync per chunk, not per reading
    uint32_t seqs[48];
    CHECK_EQ(drain(store, 5, seqs, 48), total);
    bool ordered = true;
    for (uint32_t i = 0; i < total; ++i) {
        ordered = ordered && seqs[i] == i + 1;
    }
    CHECK(ordered);
    CHECK_EQ(media.size(), 0);  // erased once all of it was acknowledged
}

TEST(partial_ack_forgets_only_what_it_covers) {
    fake::Media media(g_media, MEDIA_BYTES);
    SpillLog log(media);
    CHECK(log.open());
    RecordRing ring(g_ring, 8);
    fake::Anchors anchors;
    Store store(ring, &log, 1, anchors, 8);
    for (uint32_t s = 1; s <= 12; ++s) {
        store.add(fake::reading(1, s));
    }
    Batch b;
    CHECK(store.plan(6, b));
    CHECK_EQ(b.source, FROM_LOG);
    CHECK_EQ(b.first_seq, 1);
    store.acknowledge(b, 3);
    CHECK(store.plan(6, b));
    CHECK_EQ(b.first_seq, 4);
    store.acknowledge(b, 0);  // nothing covered
    CHECK(store.plan(6, b));
    CHECK_EQ(b.first_seq, 4);
    // From the ring: only seqs up to the ack leave.
    store.acknowledge(b, b.last_seq);
    CHECK(store.plan(10, b));
    CHECK_EQ(b.source, FROM_RING);
    CHECK_EQ(b.first_seq, 9);
    store.acknowledge(b, 10);
    CHECK(store.plan(10, b));
    CHECK_EQ(b.first_seq, 11);
    CHECK_EQ(b.count, 2);
}

TEST(previous_boot_replayed_only_if_anchored) {
    fake::Media media(g_media, MEDIA_BYTES);
    {
        SpillLog log(media);
        CHECK(log.open());
        uint8_t rec[RECORD_LEN];
        for (uint32_t s = 1; s <= 3; ++s) {
            record_encode(fake::reading(5, s), rec);
            log.append(rec, 1);
        }
        for (uint32_t s = 1; s <= 2; ++s) {
            record_encode(fake::reading(6, s), rec);
            log.append(rec, 1);
        }
    }
    SpillLog log(media);
    CHECK(log.open());
    RecordRing ring(g_ring, 8);
    fake::Anchors anchors;
    anchors.anchored_boot = 6;  // boot 5 never reached the collector
    Store store(ring, &log, 7, anchors, 4);
    store.add(fake::reading(7, 1));
    uint32_t seqs[8];
    uint32_t boots[8];
    CHECK_EQ(drain(store, 10, seqs, 8, boots), 3);
    CHECK_EQ(store.dropped(), 3);
    CHECK_EQ(boots[0], 6);
    CHECK_EQ(boots[1], 6);
    CHECK_EQ(boots[2], 7);
    CHECK_EQ(seqs[2], 1);
}

TEST(batch_stops_at_boot_change_and_damaged_record) {
    fake::Media media(g_media, MEDIA_BYTES);
    SpillLog log(media);
    CHECK(log.open());
    uint8_t rec[RECORD_LEN];
    record_encode(fake::reading(8, 1), rec);
    log.append(rec, 1);
    record_encode(fake::reading(8, 2), rec);
    rec[20] ^= 1;  // damaged on the card
    log.append(rec, 1);
    record_encode(fake::reading(8, 3), rec);
    log.append(rec, 1);
    RecordRing ring(g_ring, 8);
    fake::Anchors anchors;
    Store store(ring, &log, 8, anchors, 4);
    Batch b;
    CHECK(store.plan(10, b));
    CHECK_EQ(b.count, 1);
    store.acknowledge(b, 1);
    CHECK(store.plan(10, b));
    CHECK_EQ(b.first_seq, 3);
    CHECK_EQ(store.dropped(), 1);
}

TEST(card_failure_degrades_to_ram_and_counts) {
    fake::Media media(g_media, MEDIA_BYTES);
    SpillLog log(media);
    CHECK(log.open());
    RecordRing ring(g_ring, 8);
    fake::Anchors anchors;
    Store store(ring, &log, 1, anchors, 4);
    for (uint32_t s = 1; s <= 8; ++s) {
        store.add(fake::reading(1, s));
    }
    media.fail_after(0);
    for (uint32_t s = 9; s <= 12; ++s) {
        store.add(fake::reading(1, s));
    }
    CHECK(!store.card_usable());
    CHECK_EQ(store.in_ram(), 8);
    CHECK_EQ(store.dropped(), 4);
    uint32_t seqs[8];
    CHECK_EQ(drain(store, 8, seqs, 8), 8);
    CHECK_EQ(seqs[7], 8);
}

TEST(ring_batch_in_flight_survives_a_spill) {
    fake::Media media(g_media, MEDIA_BYTES);
    SpillLog log(media);
    CHECK(log.open());
    RecordRing ring(g_ring, 8);
    fake::Anchors anchors;
    Store store(ring, &log, 1, anchors, 4);
    for (uint32_t s = 1; s <= 8; ++s) {
        store.add(fake::reading(1, s));
    }
    Batch b;
    CHECK(store.plan(8, b));
    // Readings keep coming while the request is in flight: 1..4 move to the card.
    store.add(fake::reading(1, 9));
    store.acknowledge(b, 8);
    // 1..4 come again from the card (duplicates for the collector), then 9; nothing is lost.
    uint32_t seqs[8];
    CHECK_EQ(drain(store, 8, seqs, 8), 5);
    CHECK_EQ(seqs[0], 1);
    CHECK_EQ(seqs[4], 9);
}

TEST(boot_counter_and_anchor_window) {
    fake::Eeprom eeprom;
    BootBook first(eeprom);
    CHECK_EQ(first.begin(), 1);
    CHECK(!first.was_anchored(1));
    first.mark_anchored();
    CHECK(first.was_anchored(1));
    BootBook second(eeprom);
    CHECK_EQ(second.begin(), 2);
    CHECK(second.was_anchored(1));
    CHECK(!second.was_anchored(2));
    CHECK(!second.was_anchored(3));
    CHECK(!second.was_anchored(0));
    // A torn write of the newest slot falls back to the previous count.
    eeprom.mem[BootBook::slot_address(2) + 3] ^= 0x55;
    BootBook third(eeprom);
    CHECK_EQ(third.begin(), 2);
    // Boots older than the window are not trusted, even if their bit was set.
    BootBook many(eeprom);
    uint32_t last = 0;
    for (uint16_t i = 0; i < BootBook::WINDOW; ++i) {
        last = many.begin();
    }
    CHECK_EQ(last, 2 + BootBook::WINDOW);
    CHECK(!many.was_anchored(1));
    CHECK(!many.was_anchored(2 + BootBook::WINDOW - 1));
}

TEST(boot_counter_beyond_sixteen_bits) {
    fake::Eeprom eeprom;
    uint8_t slot[8] = {'B', '7', 0xFF, 0xFF, 0x00, 0x00, 0, 0};  // boot 65535
    uint16_t crc = 0;
    {
        extern uint16_t crc_for_test(const uint8_t*, uint16_t);
        crc = crc_for_test(slot, 6);
    }
    slot[6] = static_cast<uint8_t>(crc);
    slot[7] = static_cast<uint8_t>(crc >> 8);
    memcpy(eeprom.mem, slot, 8);
    BootBook book(eeprom);
    CHECK_EQ(book.begin(), 0x10000UL);
    BootBook next(eeprom);
    CHECK_EQ(next.begin(), 0x10001UL);
}

TEST(boot_slots_are_wear_levelled) {
    fake::Eeprom eeprom;
    uint32_t boots = 0;
    const uint16_t N = 20 * BootBook::SLOTS;
    for (uint16_t i = 0; i < N; ++i) {
        BootBook book(eeprom);
        boots = book.begin();
    }
    CHECK_EQ(boots, N);
    // Each slot byte changes at most once per visit, one visit per SLOTS boots.
    uint8_t worst = 0;
    for (uint8_t slot = 0; slot < BootBook::SLOTS; ++slot) {
        for (uint8_t i = 0; i < BootBook::SLOT_LEN; ++i) {
            uint8_t w = eeprom.writes_at[BootBook::slot_address(slot) + i];
            worst = w > worst ? w : worst;
        }
    }
    CHECK(worst <= N / BootBook::SLOTS);
    // A count left by earlier firmware in its two slots is carried on.
    fake::Eeprom old;
    BootBook first(old);
    first.begin();
    memset(old.mem + BootBook::MORE_SLOTS_AT, 0xFF, BootBook::END - BootBook::MORE_SLOTS_AT);
    BootBook upgraded(old);
    CHECK_EQ(upgraded.begin(), 2);
}

#include "../energymon_mega/src/core/crc16.h"
uint16_t crc_for_test(const uint8_t* d, uint16_t n) {
    return em::crc16_modbus(d, n);
}

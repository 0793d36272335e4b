// The spill log's card work per batch, against a model of SD 1.x's files: a handle's backward
// seek walks the cluster chain from the file's start, a forward one from where it is. With bounded
// segments, one handle appending and one reading, a batch costs the same at 1 and at 100 days of
// backlog; the single growing file of earlier firmware is shown to grow with it. Also: a sync the
// card refuses keeps the readings in RAM and is counted; a card that failed is taken back.
#include "../energymon_mega/src/core/segment_media.h"
#include "../energymon_mega/src/core/store.h"
#include "buffers.h"
#include "fakes.h"
#include "unit.h"

using namespace em;
UT_FILE;

namespace {

const uint32_t BOOT = 7;
const uint32_t READINGS_PER_DAY = 3UL * 86400UL;
const uint32_t SEGMENT = 28672UL * RECORD_LEN;
const uint32_t ONE_FILE = 119304647UL * RECORD_LEN;  // the largest whole number of records
// `days` of readings, give or take part of a segment, ending at the same place in its last segment
// as one day does, so appends cross cluster boundaries at the same points.
uint32_t backlog(uint32_t days) {
    const uint32_t per_segment = SEGMENT / RECORD_LEN;
    return READINGS_PER_DAY + (days - 1) * READINGS_PER_DAY / per_segment * per_segment;
}
const uint16_t BATCHES = 24;

// Numbered files as SD 1.x handles them; records are made up from their offset, so a backlog of
// months needs no memory. Counts cluster-chain steps and data blocks touched.
class SdModel : public SegmentFiles {
public:
    SdModel(uint32_t cluster, uint32_t segment, uint32_t records, bool shared_handle)
        : steps(0), blocks(0), opens(0), removes(0), fail_syncs(false), cluster_(cluster),
          segment_(segment), shared_(shared_handle) {
        uint32_t end = records * RECORD_LEN;
        first_ = 0;
        last_ = end == 0 ? 0 : (end - 1) / segment;
        last_size_ = end - last_ * segment;
        any_ = end != 0;
        writer_.seg = last_;
        writer_.pos = last_size_;
        reader_.seg = 0xFFFFFFFFUL;
        reader_.pos = 0;
    }
    uint32_t cluster_bytes() override { return cluster_; }
    bool scan(bool* any, uint32_t* first, uint32_t* last, uint32_t* last_size) override {
        *any = any_;
        *first = first_;
        *last = last_;
        *last_size = last_size_;
        return true;
    }
    bool append(uint32_t seg, const uint8_t*, uint16_t len) override {
        if (seg != last_ || !any_) {
            last_ = seg;
            last_size_ = 0;
            any_ = true;
            writer_.seg = seg;
            writer_.pos = 0;
            ++opens;
        }
        Handle& h = shared_ ? reader_ : writer_;
        if (shared_ && h.seg != seg) {
            h.seg = seg;
            h.pos = 0;
        }
        seek(h, last_size_);
        touch(h, len);
        last_size_ += len;
        return true;
    }
    bool sync() override { return !fail_syncs; }
    bool read(uint32_t seg, uint32_t pos, uint8_t* data, uint16_t len) override {
        Handle& h = (!shared_ && seg == writer_.seg && seg == last_) ? writer_ : reader_;
        if (h.seg != seg) {
            h.seg = seg;
            h.pos = 0;
            ++opens;
        }
        seek(h, pos);
        touch(h, len);
        uint32_t offset = seg * segment_ + pos;
        for (uint16_t done = 0; done < len; done = static_cast<uint16_t>(done + RECORD_LEN)) {
            Reading r = fake::reading(BOOT, (offset + done) / RECORD_LEN + 1);
            record_encode(r, data + done);
        }
        return true;
    }
    bool remove(uint32_t seg) override {
        ++removes;
        first_ = seg + 1;
        if (reader_.seg == seg) {
            reader_.seg = 0xFFFFFFFFUL;
        }
        return true;
    }
    bool read_meta(uint8_t* data, uint8_t len) override {
        memset(data, 0xFF, len);
        return true;
    }
    bool write_meta(uint8_t, const uint8_t*, uint8_t) override {
        ++blocks;
        return true;
    }

    uint32_t cost() const { return steps + blocks; }

    uint32_t steps;
    uint32_t blocks;
    uint32_t opens;
    uint32_t removes;
    bool fail_syncs;

private:
    struct Handle {
        uint32_t seg;
        uint32_t pos;
    };
    // SdFile::seekSet of SD 1.x.
    void seek(Handle& h, uint32_t pos) {
        if (pos == h.pos) {
            return;
        }
        uint32_t now_at = h.pos == 0 ? 0 : (h.pos - 1) / cluster_;
        uint32_t to = pos == 0 ? 0 : (pos - 1) / cluster_;
        steps += (to < now_at || h.pos == 0) ? to : to - now_at;
        h.pos = pos;
    }
    void touch(Handle& h, uint16_t len) {
        uint32_t first_block = h.pos / 512u;
        uint32_t last_block = (h.pos + len - 1) / 512u;
        blocks += last_block - first_block + 1;
        steps += (h.pos + len - 1) / cluster_ - h.pos / cluster_;
        h.pos += len;
    }

    uint32_t cluster_;
    uint32_t segment_;
    bool shared_;
    bool any_;
    uint32_t first_;
    uint32_t last_;
    uint32_t last_size_;
    Handle writer_;
    Handle reader_;
};

const uint16_t BATCH = 50;
const uint16_t RING = 12;

// Runs `batches` sends of the backlog (each read twice, as the uplink encodes twice) while new
// readings keep spilling; returns the model's cost of all of them.
uint32_t batch_cost(SdModel& model, uint32_t segment, uint16_t batches) {
    SegmentedMedia media(model, segment);
    CHECK(media.begin());
    SpillLog log(media);
    CHECK(log.open());
    fake::Anchors anchors;
    anchors.anchored_boot = BOOT;
    RecordRing ring(buffers::ring, RING);
    Store store(ring, &log, BOOT + 1, anchors, 4);
    uint32_t seq = 0;
    uint32_t before = model.cost();
    for (uint16_t b = 0; b < batches; ++b) {
        for (uint8_t i = 0; i < 3; ++i) {
            store.add(fake::reading(BOOT + 1, ++seq));
        }
        Batch batch;
        CHECK(store.plan(BATCH, batch));
        CHECK_EQ(batch.count, BATCH);
        for (uint8_t pass = 0; pass < 2; ++pass) {
            for (uint16_t i = 0; i < batch.count; ++i) {
                Reading r;
                CHECK(store.get(batch, i, r));
            }
        }
        store.acknowledge(batch, batch.last_seq);
    }
    return model.cost() - before;
}

}  // namespace

// The longest backlog each cluster size allows (SegmentedMedia::MAX_CLUSTERS), against one day.
TEST(sd_batch_cost_is_the_same_at_one_and_at_a_hundred_days_of_backlog) {
    const uint32_t clusters[3] = {32768, 4096, 512};
    const uint32_t days[3] = {100, 28, 3};
    for (uint8_t c = 0; c < 3; ++c) {
        CHECK(backlog(days[c]) * RECORD_LEN <= SegmentedMedia::MAX_CLUSTERS * clusters[c]);
        SdModel day(clusters[c], SEGMENT, backlog(1), false);
        SdModel longest(clusters[c], SEGMENT, backlog(days[c]), false);
        uint32_t at_day = batch_cost(day, SEGMENT, BATCHES) / BATCHES;
        uint32_t at_longest = batch_cost(longest, SEGMENT, BATCHES) / BATCHES;
        CHECK_EQ(at_longest, at_day);
        CHECK(at_day < 400);
        ut::out_flash(PSTR_OR("     card work per batch (cluster steps + blocks), cluster "));
        ut::out_u32(clusters[c]);
        ut::out_flash(PSTR_OR(" B: 1 day "));
        ut::out_u32(at_day);
        ut::out_flash(PSTR_OR(", "));
        ut::out_u32(days[c]);
        ut::out_flash(PSTR_OR(" days "));
        ut::out_u32(at_longest);
        ut::out_char('\n');
    }
    // The single file with one handle of earlier firmware: the cost grows with the backlog.
    SdModel day(65536, ONE_FILE, backlog(1), true);
    SdModel hundred(65536, ONE_FILE, backlog(100), true);
    uint32_t old_day = batch_cost(day, ONE_FILE, BATCHES) / BATCHES;
    uint32_t old_hundred = batch_cost(hundred, ONE_FILE, BATCHES) / BATCHES;
    CHECK(old_hundred > 10 * old_day);
    ut::out_flash(PSTR_OR("     one file, one handle (earlier firmware), cluster 65536 B: 1 day "));
    ut::out_u32(old_day);
    ut::out_flash(PSTR_OR(", 100 days "));
    ut::out_u32(old_hundred);
    ut::out_char('\n');
}

TEST(acknowledged_segments_are_deleted) {
    const uint32_t small = 100UL * RECORD_LEN;
    SdModel model(4096, small, 1000, false);
    SegmentedMedia media(model, small);
    CHECK(media.begin());
    CHECK_EQ(media.segments(), 10);
    SpillLog log(media);
    CHECK(log.open());
    CHECK(log.advance(250UL * RECORD_LEN));
    CHECK_EQ(model.removes, 2);
    CHECK_EQ(media.segments(), 8);
    CHECK(log.advance(1000UL * RECORD_LEN));
    CHECK_EQ(media.segments(), 0);
    CHECK_EQ(model.removes, 10);
}

TEST(refused_sync_keeps_readings_in_ram_and_is_counted) {
    fake::Media card(buffers::media, sizeof(buffers::media));
    SpillLog log(card);
    CHECK(log.open());
    fake::Anchors anchors;
    RecordRing ring(buffers::ring, RING);
    Store store(ring, &log, 3, anchors, 4);
    card.fail_syncs = true;
    for (uint32_t seq = 1; seq <= RING + 1; ++seq) {
        store.add(fake::reading(3, seq));
    }
    CHECK_EQ(store.in_ram(), RING);
    CHECK_EQ(store.on_card(), 0);
    CHECK_EQ(store.card_failures(), 1);
    CHECK_EQ(store.dropped(), 1);
    CHECK(!store.card_usable());
    // The card is taken back after the back-off, and the readings move on to it.
    card.fail_syncs = false;
    CHECK(log.open());
    store.add(fake::reading(3, RING + 2));
    CHECK(store.card_usable());
    CHECK_EQ(store.on_card(), 4 + 4);  // the records written before the refused sync, and a chunk
    CHECK_EQ(store.in_ram(), RING - 4 + 1);
}

TEST(unsendable_backlog_is_skipped_a_slice_at_a_time) {
    fake::Media card(buffers::media, sizeof(buffers::media));
    SpillLog log(card);
    CHECK(log.open());
    uint8_t rec[RECORD_LEN];
    const uint16_t n = buffers::MEDIA_RECORDS;
    for (uint16_t i = 0; i < n; ++i) {
        record_encode(fake::reading(2, i + 1u), rec);
        CHECK(log.append(rec, 1));
    }
    fake::Anchors anchors;  // boot 2 was never anchored
    RecordRing ring(buffers::ring, RING);
    Store store(ring, &log, 3, anchors, 4);
    Batch b;
    uint16_t plans = 0;
    while (log.pending() && plans < 100) {
        store.plan(BATCH, b);
        ++plans;
    }
    CHECK_EQ(plans, (n + Store::SKIP_SLICE - 1) / Store::SKIP_SLICE);
    CHECK_EQ(store.dropped(), n);
}

TEST(log_stops_at_the_offset_limit_without_failing_the_card) {
    const uint32_t records = MAX_END / RECORD_LEN - 1;
    SdModel model(65536, SEGMENT, records, false);
    SegmentedMedia media(model, SEGMENT);
    CHECK(media.begin());
    SpillLog log(media);
    CHECK(log.open());
    uint8_t rec[2 * RECORD_LEN];
    record_encode(fake::reading(BOOT, 1), rec);
    record_encode(fake::reading(BOOT, 2), rec + RECORD_LEN);
    CHECK(log.append(rec, 1));
    CHECK(!log.append(rec, 1));
    CHECK(log.usable());
    CHECK_EQ(log.failures(), 0);
    CHECK_EQ(log.end(), MAX_END);
}

TEST(log_is_kept_to_a_cluster_count_the_first_allocation_can_search_in_time) {
    const uint32_t limit = SegmentedMedia::MAX_CLUSTERS * 512UL / RECORD_LEN;
    SdModel model(512, SEGMENT, limit - 1, false);
    SegmentedMedia media(model, SEGMENT);
    CHECK(media.begin());
    CHECK_EQ(media.limit_bytes(), SegmentedMedia::MAX_CLUSTERS * 512UL);
    SpillLog log(media);
    CHECK(log.open());
    uint8_t rec[RECORD_LEN];
    record_encode(fake::reading(BOOT, 1), rec);
    CHECK(log.append(rec, 1));
    CHECK(!log.append(rec, 1));
    CHECK(log.usable());
    CHECK_EQ(log.failures(), 0);
    // Acknowledged segments give their room back.
    CHECK(log.advance(SEGMENT));
    CHECK(log.append(rec, 1));
}

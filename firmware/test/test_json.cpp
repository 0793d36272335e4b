// The canonical encoding against every golden case of tests/contract/golden/ (the same files the
// Python fake device is tested with), and the number printing it is built from.
#include "../energymon_mega/src/core/json_batch.h"
#include "buffers.h"
#include "golden_cases.h"
#include "unit.h"

using namespace em;
UT_FILE;

namespace {

// Compares what it is given with bytes in flash, position by position.
class ExpectSink : public ByteSink {
public:
    ExpectSink(const char* flash, uint16_t len) : expected_(flash), len_(len), pos_(0), mismatch_at_(-1) {}
    bool put(const uint8_t* data, uint16_t n) override {
        for (uint16_t i = 0; i < n; ++i, ++pos_) {
            if (mismatch_at_ < 0 && (pos_ >= len_ || data[i] != flash_byte(expected_ + pos_))) {
                mismatch_at_ = pos_;
            }
        }
        return true;
    }
    bool matched() const { return mismatch_at_ < 0 && pos_ == len_; }
    int32_t mismatch_at() const { return mismatch_at_ < 0 ? static_cast<int32_t>(pos_) : mismatch_at_; }

private:
    const char* expected_;
    uint16_t len_;
    int32_t pos_;
    int32_t mismatch_at_;
};

// Records the largest write it was given.
class ChunkSpy : public ByteSink {
public:
    ChunkSpy(ByteSink& next) : next_(next), largest_(0), writes_(0) {}
    bool put(const uint8_t* data, uint16_t n) override {
        largest_ = n > largest_ ? n : largest_;
        ++writes_;
        return next_.put(data, n);
    }
    uint16_t largest() const { return largest_; }
    uint16_t writes() const { return writes_; }

private:
    ByteSink& next_;
    uint16_t largest_;
    uint16_t writes_;
};

class FlashReadings : public ReadingSource {
public:
    FlashReadings(const Reading* flash, uint16_t n) : flash_(flash), n_(n) {}
    uint16_t count() override { return n_; }
    bool get(uint16_t i, Reading& r) override {
        ut::flash_copy(&r, flash_ + i, sizeof(Reading));
        return true;
    }

private:
    const Reading* flash_;
    uint16_t n_;
};

struct Loaded {
    golden::Case c;
    FlashStr sensors[MAX_METERS];
    uint32_t errors[MAX_METERS];
    ResetReport reset;
    BatchHeader h;
    explicit Loaded(uint8_t i) {
        ut::flash_copy(&c, &golden::CASES[i], sizeof(c));
        ut::flash_copy(errors, c.meter_errors, sizeof(errors));
        for (uint8_t s = 0; s < MAX_METERS; ++s) {
            sensors[s] = FlashStr{c.sensors[s]};
        }
        h.device = FlashStr{c.device};
        h.boot = c.boot;
        h.boot_nonce = c.boot_nonce;
        h.uptime_ms = c.uptime_ms;
        h.dropped = c.dropped;
        h.meter_errors = errors;
        reset.cause = c.reset_cause;
        reset.stage = c.reset_stage;
        reset.watchdog_resets = c.watchdog_resets;
        h.reset = c.has_reset ? &reset : nullptr;
        h.sensors = sensors;
        h.sensor_count = c.sensor_count;
    }
};

class StringSink : public ByteSink {
public:
    StringSink() : len(0) { buf[0] = 0; }
    bool put(const uint8_t* d, uint16_t n) override {
        for (uint16_t i = 0; i < n && len + 1u < sizeof(buf); ++i) {
            buf[len++] = static_cast<char>(d[i]);
        }
        buf[len] = 0;
        return true;
    }
    char buf[160];
    uint8_t len;
};

bool prints(void (*fn)(Printer&), const char* expected) {
    StringSink s;
    Printer p(s);
    fn(p);
    return strcmp(s.buf, expected) == 0;
}

class NoReadings : public ReadingSource {
public:
    uint16_t count() override { return 0; }
    bool get(uint16_t, Reading&) override { return false; }
};

// A heartbeat of device "d" carrying this reset report, compared with the expected body (in flash).
bool heartbeat_with_reset(ResetCause cause, Stage stage, uint32_t watchdog_resets, const char* expected) {
    static const char device[] EM_FLASH = "d";
    ResetReport r;
    r.cause = cause;
    r.stage = stage;
    r.watchdog_resets = watchdog_resets;
    BatchHeader h;
    h.device = FlashStr{device};
    h.boot = 1;
    h.boot_nonce = 0;
    h.uptime_ms = 0;
    h.dropped = 0;
    h.meter_errors = nullptr;
    h.reset = &r;
    h.sensors = nullptr;
    h.sensor_count = 0;
    NoReadings none;
    StringSink s;
    if (!encode_batch(s, h, none) || s.len != flash_strlen(FlashStr{expected})) {
        return false;
    }
    for (uint8_t i = 0; i < s.len; ++i) {
        if (static_cast<uint8_t>(s.buf[i]) != flash_byte(expected + i)) {
            return false;
        }
    }
    return true;
}

}  // namespace

TEST(reset_stage_only_after_a_watchdog_or_requested_reset) {
    CHECK(heartbeat_with_reset(
        RESET_REQUESTED, STAGE_NETWORK, 4294967295UL,
        PSTR_OR("{\"device\":\"d\",\"boot\":1,\"uptime_ms\":0,\"reset\":{\"cause\":\"requested\","
        "\"stage\":\"network\",\"watchdog_resets\":4294967295},\"readings\":[]}")));
    CHECK(heartbeat_with_reset(
        RESET_WATCHDOG, STAGE_IDLE, 1,
        PSTR_OR("{\"device\":\"d\",\"boot\":1,\"uptime_ms\":0,\"reset\":{\"cause\":\"watchdog\","
        "\"stage\":\"idle\",\"watchdog_resets\":1},\"readings\":[]}")));
    // After the button the marker still holds the stage the loop was in: not sent.
    CHECK(heartbeat_with_reset(
        RESET_EXTERNAL, STAGE_DHCP, 2,
        PSTR_OR("{\"device\":\"d\",\"boot\":1,\"uptime_ms\":0,\"reset\":{\"cause\":\"external\","
        "\"watchdog_resets\":2},\"readings\":[]}")));
    // A stage or cause this firmware has no name for is left out, never sent as a wrong one.
    CHECK(heartbeat_with_reset(
        RESET_WATCHDOG, static_cast<Stage>(STAGE_IDLE + 1), 3,
        PSTR_OR("{\"device\":\"d\",\"boot\":1,\"uptime_ms\":0,\"reset\":{\"cause\":\"watchdog\","
        "\"watchdog_resets\":3},\"readings\":[]}")));
    CHECK(heartbeat_with_reset(
        static_cast<ResetCause>(RESET_EXTERNAL + 1), STAGE_SEND, 3,
        PSTR_OR("{\"device\":\"d\",\"boot\":1,\"uptime_ms\":0,\"readings\":[]}")));
}

TEST(golden_cases_exist) {
    CHECK(golden::CASE_COUNT >= 7);
}

TEST(every_golden_body_byte_for_byte) {
    for (uint8_t i = 0; i < golden::CASE_COUNT; ++i) {
        Loaded g(i);
        FlashReadings src(g.c.readings, g.c.reading_count);
        ExpectSink expect(g.c.body, g.c.body_len);
        bool ok = encode_batch(expect, g.h, src);
        CHECK(ok);
        if (!expect.matched()) {
            ut::out_flash(g.c.name);
            ut::out_char('\n');
            CHECK_EQ(expect.mismatch_at(), g.c.body_len);
        }
        CountingSink counter;
        encode_batch(counter, g.h, src);
        CHECK_EQ(counter.count(), g.c.body_len);
    }
}

TEST(chunked_output_is_the_same_bytes_in_small_writes) {
    uint8_t buffer[7];
    for (uint8_t i = 0; i < golden::CASE_COUNT; ++i) {
        Loaded g(i);
        FlashReadings src(g.c.readings, g.c.reading_count);
        ExpectSink expect(g.c.body, g.c.body_len);
        ChunkSpy spy(expect);
        ChunkWriter w(spy, buffer, sizeof(buffer));
        CHECK(encode_batch(w, g.h, src) && w.flush());
        CHECK(expect.matched());
        CHECK(spy.largest() <= sizeof(buffer));
        CHECK_EQ(spy.writes(), (g.c.body_len + 6u) / 7u);
    }
}

TEST(chunk_writer_never_exceeds_two_kilobytes) {
    // A buffer larger than the limit: the writer must still forward at most MAX_CHUNK at once.
    CountingSink counter;
    ChunkSpy spy(counter);
    ChunkWriter w(spy, buffers::media, sizeof(buffers::media));
    for (uint16_t i = 0; i < 5000; ++i) {
        uint8_t b = static_cast<uint8_t>(i);
        w.put(&b, 1);
    }
    w.flush();
    CHECK_EQ(spy.largest(), MAX_CHUNK);
    CHECK_EQ(counter.count(), 5000);
}

TEST(fixed_point_printing) {
    CHECK(prints([](Printer& p) { p.fixed(0, 3); }, "0.000"));
    CHECK(prints([](Printer& p) { p.fixed(2300, 1); }, "230.0"));
    CHECK(prints([](Printer& p) { p.fixed(5, 2); }, "0.05"));
    CHECK(prints([](Printer& p) { p.fixed(100, 2); }, "1.00"));
    CHECK(prints([](Printer& p) { p.fixed(65536, 3); }, "65.536"));
    CHECK(prints([](Printer& p) { p.fixed(4294967295UL, 3); }, "4294967.295"));
    CHECK(prints([](Printer& p) { p.fixed(4294967295UL, 1); }, "429496729.5"));
    CHECK(prints([](Printer& p) { p.u32(4294967295UL); }, "4294967295"));
    CHECK(prints([](Printer& p) { p.u32(0); }, "0"));
}

TEST(sixty_four_bit_uptime_printing) {
    CHECK(prints([](Printer& p) { p.u64(0); }, "0"));
    CHECK(prints([](Printer& p) { p.u64(999999999ULL); }, "999999999"));
    CHECK(prints([](Printer& p) { p.u64(1000000000ULL); }, "1000000000"));
    CHECK(prints([](Printer& p) { p.u64(1000000005ULL); }, "1000000005"));
    CHECK(prints([](Printer& p) { p.u64(4294967296ULL); }, "4294967296"));
    CHECK(prints([](Printer& p) { p.u64(281474976710655ULL); }, "281474976710655"));
    CHECK(prints([](Printer& p) { p.u64(18446744073709551615ULL); }, "18446744073709551615"));
}

TEST(json_string_escapes_like_python) {
    static const char odd[] EM_FLASH = "a\"b\\c\n\x01\x1f\x7f";
    CHECK(prints([](Printer& p) { p.json_string(FlashStr{odd}); }, "\"a\\\"b\\\\c\\n\\u0001\\u001f\x7f\""));
}

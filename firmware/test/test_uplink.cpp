// The uplink against a fake collector that parses each request as it streams in: the contract's
// head, chunk sizes, the first-request heartbeat, acknowledgements, back-off, 413/503, the boot's
// reset report, and a long run with outages where every reading must arrive (or, without a card,
// be counted as dropped).
#include "../energymon_mega/src/core/uplink.h"
#include "buffers.h"
#include "fakes.h"
#include "unit.h"

using namespace em;
UT_FILE;

namespace {

const uint16_t CHUNK = 64;
const uint16_t MAX_SEQ = 1024;
const char DEVICE[] EM_FLASH = "mega-01";
const char KEY[] EM_FLASH = "k";
const char S0[] EM_FLASH = "pzem1";
const char S1[] EM_FLASH = "pzem2";
const char S2[] EM_FLASH = "pzem3";
const FlashStr SENSORS[3] = {{S0}, {S1}, {S2}};
const char HEAD[] EM_FLASH =
    "POST /api/v1/readings HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer k\r\n"
    "Content-Type: application/json\r\nContent-Length: ";
const char OK_HEAD[] EM_FLASH = "HTTP/1.1 200 OK\r\ncontent-length: ";
const char ACK_OPEN[] EM_FLASH = "{\"ack\":";
const char ACK_CLOSE[] EM_FLASH = ",\"accepted\":0,\"duplicates\":0,\"rejected\":[]}";
const char NULL_WORD[] EM_FLASH = "null";
const char BUSY[] EM_FLASH =
    "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 20\r\ncontent-length: 2\r\n\r\n{}";
const char TOO_LARGE[] EM_FLASH = "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 2\r\n\r\n{}";

enum Mode : uint8_t { UP, DOWN, SILENT, BUSY_503, LIMIT_413, STALLED };

void copy_text(char* to, size_t capacity, const char* from) {
    size_t n = strlen(from);
    n = n < capacity - 1 ? n : capacity - 1;
    memcpy(to, from, n);
    to[n] = 0;
}

// Streams one JSON body and keeps what the tests look at.
struct BodyScan {
    void reset() {
        in_string = false;
        key_len = 0;
        key[0] = 0;
        have_num = false;
        num = 0;
        boot = 0;
        nonce = 0;
        uptime = 0;
        dropped = 0;
        readings = 0;
        max_seq = 0;
        first_seq = 0;
        meter_errors = false;
        saw_boot = false;
        saw_uptime = false;
        saw_reset = false;
        prev[0] = 0;
        cause[0] = 0;
        stage[0] = 0;
        watchdog_resets = 0;
    }
    bool key_is(const char* k) const { return strcmp(key, k) == 0; }
    void number_done() {
        if (!have_num) {
            return;
        }
        have_num = false;
        if (key_is("boot") && !saw_boot) {
            boot = static_cast<uint32_t>(num);
            saw_boot = true;
        } else if (key_is("uptime_ms") && !saw_uptime) {
            uptime = num;
            saw_uptime = true;
        } else if (key_is("boot_nonce")) {
            nonce = static_cast<uint32_t>(num);
        } else if (key_is("dropped")) {
            dropped = static_cast<uint32_t>(num);
        } else if (key_is("watchdog_resets")) {
            watchdog_resets = static_cast<uint32_t>(num);
        } else if (key_is("seq")) {
            ++readings;
            if (first_seq == 0) {
                first_seq = static_cast<uint32_t>(num);
            }
            max_seq = static_cast<uint32_t>(num);
        }
    }
    void feed(uint8_t c) {
        if (in_string) {
            if (c == '"') {
                in_string = false;
                key[key_len] = 0;
                if (key_is("meter_errors")) {
                    meter_errors = true;
                }
                saw_reset = saw_reset || key_is("reset");
                // A string after the key "cause" or "stage" is that key's value.
                if (strcmp(prev, "cause") == 0) {
                    copy_text(cause, sizeof(cause), key);
                } else if (strcmp(prev, "stage") == 0) {
                    copy_text(stage, sizeof(stage), key);
                }
            } else if (key_len < sizeof(key) - 1) {
                key[key_len++] = static_cast<char>(c);
            }
            return;
        }
        if (c >= '0' && c <= '9') {
            num = have_num ? num * 10u + (c - '0') : static_cast<uint64_t>(c - '0');
            have_num = true;
            return;
        }
        number_done();
        if (c == '"') {
            in_string = true;
            copy_text(prev, sizeof(prev), key);
            key_len = 0;
        }
    }
    bool in_string;
    char key[16];
    uint8_t key_len;
    bool have_num;
    uint64_t num;
    uint32_t boot;
    uint32_t nonce;
    uint64_t uptime;
    uint32_t dropped;
    uint16_t readings;
    uint32_t first_seq;
    uint32_t max_seq;
    bool meter_errors;
    bool saw_boot;
    bool saw_uptime;
    bool saw_reset;
    char prev[16];  // the string before the last one
    char cause[12];
    char stage[12];
    uint32_t watchdog_resets;
};

class FakeCollector : public Transport {
public:
    FakeCollector()
        : Transport(2000), mode(UP), clock(0), requests(0), largest_write(0), limit(1000), idles(0) {
        memset(seen, 0, sizeof(seen));
    }
    bool open() override {
        clock += 1;
        if (mode == DOWN) {
            clock += 1000;  // the connect timeout
            return false;
        }
        head_len = 0;
        head_done = false;
        head_ok = true;
        body_read = 0;
        content_length = 0;
        reply_len = 0;
        reply_pos = 0;
        replied = false;
        scan.reset();
        ++requests;
        return true;
    }
    // A W5100's TX buffer, as seen through the Ethernet library; a stalled collector reads the
    // head and then nothing more.
    uint16_t room() override { return mode == STALLED && head_done ? 0 : 2048; }
    bool write_now(const uint8_t* d, uint16_t n) override {
        largest_write = n > largest_write ? n : largest_write;
        for (uint16_t i = 0; i < n; ++i) {
            take(d[i]);
        }
        return true;
    }
    int16_t read_byte() override {
        return reply_pos < reply_len ? reply[reply_pos++] : -1;
    }
    bool connected() override { return mode == SILENT || reply_pos < reply_len || !replied; }
    void close() override {}
    uint32_t now_ms() override { return static_cast<uint32_t>(clock); }
    void idle() override {
        clock += 10;
        ++idles;
    }

    Mode mode;
    uint64_t clock;  // the device's uptime; now_ms() is its 32-bit millis()
    uint16_t requests;
    uint16_t largest_write;
    uint16_t limit;
    uint32_t idles;
    BodyScan scan;  // the last request
    bool head_ok;
    uint8_t seen[MAX_SEQ / 8];

    bool was_seen(uint32_t seq) const { return seq < MAX_SEQ && (seen[seq / 8] & (1u << (seq % 8))) != 0; }

private:
    void take(uint8_t c) {
        if (!head_done) {
            if (head_len < sizeof(head)) {
                head[head_len++] = static_cast<char>(c);
            }
            if (head_len >= 4 && memcmp(head + head_len - 4, "\r\n\r\n", 4) == 0) {
                head_done = true;
                check_head();
            }
            return;
        }
        ++body_read;
        scan.feed(c);
        if (body_read == content_length) {
            scan.number_done();
            respond();
        }
    }
    void check_head() {
        uint16_t i = 0;
        for (; flash_byte(HEAD + i) != 0; ++i) {
            head_ok = head_ok && i < head_len && static_cast<uint8_t>(head[i]) == flash_byte(HEAD + i);
        }
        content_length = 0;
        while (i < head_len && head[i] >= '0' && head[i] <= '9') {
            content_length = content_length * 10u + static_cast<uint32_t>(head[i++] - '0');
        }
        const char tail[] = "\r\nConnection: close\r\n\r\n";
        head_ok = head_ok && head_len - i == sizeof(tail) - 1 && memcmp(head + i, tail, sizeof(tail) - 1) == 0;
    }
    void add_flash(const char* s) {
        for (; flash_byte(s) != 0 && reply_len < sizeof(reply); ++s) {
            reply[reply_len++] = flash_byte(s);
        }
    }
    void add_number(uint32_t v) {
        char d[10];
        uint8_t n = 0;
        do {
            d[n++] = static_cast<char>('0' + v % 10u);
            v /= 10u;
        } while (v != 0);
        while (n > 0) {
            reply[reply_len++] = static_cast<uint8_t>(d[--n]);
        }
    }
    void respond() {
        replied = true;
        clock += 5;
        if (mode == SILENT) {
            return;
        }
        if (mode == BUSY_503) {
            add_flash(BUSY);
            return;
        }
        if (mode == LIMIT_413 && scan.readings > limit) {
            add_flash(TOO_LARGE);
            return;
        }
        for (uint32_t s = scan.first_seq; scan.readings > 0 && s <= scan.max_seq && s < MAX_SEQ; ++s) {
            seen[s / 8] = static_cast<uint8_t>(seen[s / 8] | (1u << (s % 8)));
        }
        // The body first, to learn its length.
        uint8_t body[80];
        uint8_t body_len = 0;
        uint16_t saved = reply_len;
        reply_len = 0;
        add_flash(ACK_OPEN);
        if (scan.readings == 0) {
            add_flash(NULL_WORD);
        } else {
            add_number(scan.max_seq);
        }
        add_flash(ACK_CLOSE);
        body_len = static_cast<uint8_t>(reply_len);
        memcpy(body, reply, body_len);
        reply_len = saved;
        add_flash(OK_HEAD);
        add_number(body_len);
        reply[reply_len++] = '\r';
        reply[reply_len++] = '\n';
        reply[reply_len++] = '\r';
        reply[reply_len++] = '\n';
        memcpy(reply + reply_len, body, body_len);
        reply_len = static_cast<uint16_t>(reply_len + body_len);
    }

    char head[200];
    uint16_t head_len;
    bool head_done;
    uint32_t content_length;
    uint32_t body_read;
    uint8_t reply[200];
    uint16_t reply_len;
    uint16_t reply_pos;
    bool replied;
};

UplinkConfig config() {
    UplinkConfig c;
    c.collector.ip[0] = 127;
    c.collector.ip[1] = 0;
    c.collector.ip[2] = 0;
    c.collector.ip[3] = 1;
    c.collector.port = 8080;
    c.collector.key = FlashStr{KEY};
    c.device = FlashStr{DEVICE};
    c.sensors = SENSORS;
    c.sensor_count = 3;
    c.batch_max = 16;
    c.send_interval_ms = 1000;
    c.heartbeat_ms = 30000;
    c.reply_timeout_ms = 5000;
    c.backoff_base_ms = 1000;
    c.backoff_max_ms = 60000;
    return c;
}

uint8_t* const g_media = buffers::media;
uint8_t* const g_ring = buffers::ring;
uint8_t g_chunk[CHUNK];

struct Rig {
    fake::Eeprom eeprom;
    BootBook boots;
    fake::Media media;
    SpillLog log;
    RecordRing ring;
    Store store;
    UplinkConfig cfg;
    Uplink uplink;
    FakeCollector collector;
    uint32_t meter_errors[3];
    uint32_t seq;
    Rig(bool card)
        : boots(eeprom),
          media(g_media, sizeof(buffers::media)),
          log(media),
          ring(g_ring, 12),
          store(ring, card ? &log : nullptr, (boots.begin(), log.open(), boots.boot()), boots, 4),
          cfg(config()),
          uplink(cfg, store, boots, g_chunk, CHUNK),
          seq(0) {
        meter_errors[0] = 0;
        meter_errors[1] = 3;
        meter_errors[2] = 0;
    }
    void measure(uint8_t n) {
        for (uint8_t i = 0; i < n; ++i) {
            Reading r = fake::reading(boots.boot(), ++seq, static_cast<uint8_t>(i % 3));
            r.uptime_ms = collector.clock;
            store.add(r);
        }
    }
    SendResult step() { return uplink.step(collector, collector.clock, meter_errors, 12345); }
    // One simulated second: three readings, then whatever sending is due.
    void second() {
        measure(3);
        uint64_t end = collector.clock + 1000;
        while (collector.clock < end) {
            if (step() == SEND_IDLE) {
                collector.clock += 50;
            }
        }
    }
};

}  // namespace

TEST(first_request_is_a_heartbeat_that_anchors_the_boot) {
    Rig rig(true);
    rig.measure(3);
    CHECK(!rig.boots.was_anchored(1));
    CHECK_EQ(rig.step(), SEND_HEARTBEAT);
    CHECK(rig.collector.head_ok);
    CHECK_EQ(rig.collector.scan.readings, 0);
    CHECK_EQ(rig.collector.scan.boot, 1);
    CHECK(rig.collector.scan.meter_errors);
    CHECK(rig.boots.was_anchored(1));
    CHECK(rig.uplink.anchored());
    // Pending readings go out at once after it.
    CHECK_EQ(rig.step(), SEND_ACKED);
    CHECK_EQ(rig.collector.scan.readings, 3);
    CHECK_EQ(rig.collector.scan.max_seq, 3);
    CHECK(!rig.store.pending());
    CHECK(rig.collector.largest_write <= CHUNK);
    // Up to date: nothing is due until the interval has passed.
    rig.measure(1);
    CHECK_EQ(rig.step(), SEND_IDLE);
    rig.collector.clock += 1000;
    CHECK_EQ(rig.step(), SEND_ACKED);
}

TEST(heartbeat_when_idle) {
    Rig rig(false);
    CHECK_EQ(rig.step(), SEND_HEARTBEAT);
    rig.collector.clock += 29000;
    CHECK_EQ(rig.step(), SEND_IDLE);
    rig.collector.clock += 1000;
    CHECK_EQ(rig.step(), SEND_HEARTBEAT);
}

TEST(failures_back_off_and_keep_readings) {
    Rig rig(true);
    rig.step();
    rig.measure(5);
    rig.collector.mode = DOWN;
    rig.collector.clock += 1000;
    CHECK_EQ(rig.step(), SEND_CONNECT_FAILED);
    CHECK_EQ(rig.uplink.failures(), 1);
    uint32_t wait1 = rig.uplink.next_in_ms(rig.collector.clock);
    CHECK(wait1 >= 500 && wait1 <= 1000);
    rig.collector.clock += wait1;
    CHECK_EQ(rig.step(), SEND_CONNECT_FAILED);
    uint32_t wait2 = rig.uplink.next_in_ms(rig.collector.clock);
    CHECK(wait2 >= 1000 && wait2 <= 2000);
    CHECK_EQ(rig.store.in_ram(), 5);
    rig.collector.mode = SILENT;
    rig.collector.clock += wait2;
    CHECK_EQ(rig.step(), SEND_TIMEOUT);
    CHECK(rig.collector.idles > 0);  // meters are polled while waiting
    CHECK_EQ(rig.store.in_ram(), 5);
    rig.collector.mode = UP;
    rig.collector.clock += rig.uplink.next_in_ms(rig.collector.clock);
    CHECK_EQ(rig.step(), SEND_ACKED);
    CHECK_EQ(rig.uplink.failures(), 0);
    CHECK(!rig.store.pending());
}

TEST(busy_collector_is_given_its_retry_after) {
    Rig rig(false);
    rig.step();
    rig.measure(2);
    rig.collector.clock += 1000;
    rig.collector.mode = BUSY_503;
    CHECK_EQ(rig.step(), SEND_REFUSED);
    CHECK_EQ(rig.uplink.status(), 503);
    CHECK(rig.uplink.next_in_ms(rig.collector.clock) >= 20000);
    CHECK_EQ(rig.store.in_ram(), 2);
}

TEST(too_large_halves_the_batch) {
    Rig rig(false);
    rig.step();
    rig.measure(12);
    rig.collector.mode = LIMIT_413;
    rig.collector.limit = 5;
    uint8_t attempts = 0;
    while (rig.store.pending() && attempts < 20) {
        rig.collector.clock += rig.uplink.next_in_ms(rig.collector.clock);
        rig.step();
        ++attempts;
    }
    CHECK(!rig.store.pending());
    CHECK_EQ(rig.uplink.batch_max(), 4);
    for (uint32_t s = 1; s <= 12; ++s) {
        CHECK(rig.collector.was_seen(s));
    }
}

TEST(previous_boot_backlog_is_sent_with_its_own_boot) {
    Rig rig(true);
    rig.step();  // boot 1 anchored
    rig.collector.mode = DOWN;
    for (uint8_t i = 0; i < 6; ++i) {
        rig.second();
    }
    uint32_t on_card = rig.store.on_card();
    CHECK(on_card > 0);
    // Restart: boot 2, same EEPROM and card; what was in RAM is lost with the power.
    BootBook boots(rig.eeprom);
    CHECK_EQ(boots.begin(), 2);
    SpillLog log(rig.media);
    CHECK(log.open());
    RecordRing ring(g_ring, 12);
    Store store(ring, &log, 2, boots, 4);
    UplinkConfig cfg = config();
    Uplink uplink(cfg, store, boots, g_chunk, CHUNK);
    uplink.set_boot_nonce(0xC0FFEE01UL);
    FakeCollector c;
    c.clock = 500;
    uint32_t errors[3] = {7, 0, 0};
    CHECK_EQ(uplink.step(c, c.clock, errors, 0), SEND_HEARTBEAT);
    CHECK_EQ(c.scan.boot, 2);
    CHECK_EQ(c.scan.nonce, 0xC0FFEE01UL);
    CHECK_EQ(uplink.step(c, c.clock, errors, 0), SEND_ACKED);
    CHECK_EQ(c.scan.boot, 1);
    CHECK_EQ(c.scan.nonce, 0);  // boot 1's nonce is not known any more: not sent
    CHECK_EQ(c.scan.readings, on_card < cfg.batch_max ? on_card : cfg.batch_max);
    CHECK(!c.scan.meter_errors);  // boot 2's counters are not boot 1's
    CHECK(c.scan.uptime >= 1000);  // the last reading's uptime, not boot 2's 500 ms
    CHECK_EQ(store.dropped(), 0);
}

TEST(collector_that_stops_reading_costs_the_stall_time_not_the_watchdog) {
    Rig rig(false);
    rig.step();
    rig.measure(5);
    rig.collector.mode = STALLED;
    rig.collector.clock += 1000;
    uint64_t from = rig.collector.clock;
    uint32_t idles = rig.collector.idles;
    CHECK_EQ(rig.step(), SEND_WRITE_FAILED);
    CHECK(rig.collector.clock - from >= 2000 && rig.collector.clock - from <= 2100);
    CHECK(rig.collector.idles - idles >= 190);  // the meters were polled meanwhile
    CHECK_EQ(rig.store.in_ram(), 5);
}

TEST(boot_nonce_goes_with_every_request_of_the_boot) {
    Rig rig(true);
    rig.uplink.set_boot_nonce(4294967295UL);
    for (uint8_t i = 0; i < 3; ++i) {
        rig.second();
        CHECK_EQ(rig.collector.scan.boot, 1);
        CHECK_EQ(rig.collector.scan.nonce, 4294967295UL);
    }
    CHECK(rig.collector.requests >= 3);
}

namespace {

// A string the fake collector kept against one in flash.
bool text_is(const char* got, const char* expected) {
    uint8_t i = 0;
    for (; flash_byte(expected + i) != 0; ++i) {
        if (static_cast<uint8_t>(got[i]) != flash_byte(expected + i)) {
            return false;
        }
    }
    return got[i] == 0;
}

}  // namespace

TEST(watchdog_reset_goes_with_every_request_of_its_boot_not_with_old_boot_batches) {
    ResetMarker marker;
    memset(&marker, 0x5A, sizeof(marker));  // RAM after a power cut
    ResetReport power_on = reset_report_at_boot(marker, 0);
    Rig rig(true);
    rig.uplink.set_reset_report(&power_on);
    rig.second();
    CHECK_EQ(rig.collector.scan.boot, 1);
    CHECK(rig.collector.scan.saw_reset);
    CHECK(text_is(rig.collector.scan.cause, PSTR_OR("power_on")));
    CHECK(text_is(rig.collector.scan.stage, PSTR_OR("")));
    CHECK_EQ(rig.collector.scan.watchdog_resets, 0);
    // The collector goes away and boot 1's readings go to the card. Then the loop hangs twice,
    // as the sketch records it: boot 2 in DHCP before it sent anything, boot 3 while sending.
    rig.collector.mode = DOWN;
    for (uint8_t i = 0; i < 6; ++i) {
        rig.second();
    }
    uint32_t on_card = rig.store.on_card();
    CHECK(on_card > 0);
    reset_marker_stage(marker, STAGE_DHCP);
    reset_marker_expect(marker, RESET_WATCHDOG);
    reset_report_at_boot(marker, 0);
    CHECK_EQ(BootBook(rig.eeprom).begin(), 2);
    reset_marker_stage(marker, STAGE_SEND);
    reset_marker_expect(marker, RESET_WATCHDOG);
    ResetReport report = reset_report_at_boot(marker, 0);
    CHECK_EQ(report.cause, RESET_WATCHDOG);

    BootBook boots(rig.eeprom);
    CHECK_EQ(boots.begin(), 3);
    SpillLog log(rig.media);
    CHECK(log.open());
    RecordRing ring(g_ring, 12);
    Store store(ring, &log, 3, boots, 4);
    UplinkConfig cfg = config();
    Uplink uplink(cfg, store, boots, g_chunk, CHUNK);
    uplink.set_reset_report(&report);
    FakeCollector c;
    uint32_t errors[3] = {0, 0, 0};
    uint32_t seq = 0;
    uint16_t current = 0;
    uint16_t past = 0;
    for (uint16_t i = 0; i < 2000 && (current < 5 || store.pending()); ++i) {
        if (i % 20 == 0) {
            Reading r = fake::reading(3, ++seq, 0);
            r.uptime_ms = c.clock;
            store.add(r);
        }
        uint16_t requests = c.requests;
        uplink.step(c, c.clock, errors, 0);
        c.clock += 50;
        if (c.requests == requests) {
            continue;
        }
        if (c.scan.boot == 3) {
            ++current;
            CHECK(c.scan.saw_reset);
            CHECK(text_is(c.scan.cause, PSTR_OR("watchdog")));
            CHECK(text_is(c.scan.stage, PSTR_OR("send")));
            CHECK_EQ(c.scan.watchdog_resets, 2);
        } else {
            ++past;
            CHECK_EQ(c.scan.boot, 1);
            // Boot 1 started at power-on; boot 3's reset is not its story.
            CHECK(!c.scan.saw_reset);
            CHECK(text_is(c.scan.cause, PSTR_OR("")));
        }
    }
    CHECK(past > 0);
    CHECK(current >= 5);
    CHECK(!store.pending());
    CHECK_EQ(store.dropped(), 0);
}

TEST(long_outage_with_card_loses_nothing) {
    Rig rig(true);
    rig.second();
    rig.collector.mode = DOWN;
    // Longer than the ring lasts (12 readings = 4 s), shorter than the card holds.
#ifdef __AVR__
    const uint8_t outage_s = 20;
#else
    const uint8_t outage_s = 200;
#endif
    for (uint8_t i = 0; i < outage_s; ++i) {
        rig.second();
    }
    CHECK(rig.store.on_card() > 0);
    rig.collector.mode = UP;
    for (uint16_t i = 0; i < 400 && rig.store.pending(); ++i) {
        rig.second();
    }
    for (uint8_t i = 0; i < 90 && rig.store.pending(); ++i) {
        rig.collector.clock += 1000;
        rig.step();
    }
    rig.collector.clock += 1000;
    rig.step();
    CHECK(!rig.store.pending());
    CHECK_EQ(rig.store.dropped(), 0);
    uint32_t missing = 0;
    for (uint32_t s = 1; s <= rig.seq; ++s) {
        missing += rig.collector.was_seen(s) ? 0 : 1;
    }
    CHECK_EQ(missing, 0);
    CHECK_EQ(rig.media.size(), 0);
    CHECK(rig.collector.largest_write <= CHUNK);
}

TEST(outage_without_card_counts_every_drop_and_reports_it) {
    Rig rig(false);
    rig.second();
    rig.collector.mode = DOWN;
    for (uint8_t i = 0; i < 10; ++i) {
        rig.second();
    }
    uint32_t dropped = rig.store.dropped();
    CHECK(dropped > 0);
    rig.collector.mode = UP;
    for (uint8_t i = 0; i < 90 && (rig.store.pending() || rig.collector.scan.dropped == 0); ++i) {
        rig.second();
    }
    // More may drop while the back-off runs out; the collector hears the final count.
    CHECK(rig.store.dropped() >= dropped);
    CHECK_EQ(rig.collector.scan.dropped, rig.store.dropped());
    uint32_t missing = 0;
    for (uint32_t s = 1; s <= rig.seq; ++s) {
        missing += rig.collector.was_seen(s) ? 0 : 1;
    }
    CHECK_EQ(missing, rig.store.dropped());
}

namespace {

const uint64_t DAY_MS = 86400000ULL;
const uint16_t PARK_DAYS[4] = {25, 26, 40, 50};

// Steps every 50 ms until something is sent successfully; returns how long that took.
uint64_t until_delivered(Rig& rig) {
    uint64_t from = rig.collector.clock;
    while (rig.collector.clock - from < 120000ULL) {
        SendResult r = rig.step();
        if (r == SEND_ACKED || r == SEND_HEARTBEAT) {
            break;
        }
        rig.collector.clock += 50;
    }
    return rig.collector.clock - from;
}

}  // namespace

TEST(uplink_down_for_weeks_sends_as_soon_as_the_network_returns) {
    for (uint8_t i = 0; i < 4; ++i) {
        Rig rig(true);
        rig.collector.clock = 3 * DAY_MS;
        rig.second();
        // A failure arms the back-off; then the network goes away and nothing is attempted.
        rig.collector.mode = DOWN;
        rig.measure(3);
        CHECK_EQ(rig.step(), SEND_CONNECT_FAILED);
        rig.collector.clock += PARK_DAYS[i] * DAY_MS;
        rig.collector.mode = UP;
        CHECK(until_delivered(rig) <= 50);
        CHECK(rig.collector.was_seen(rig.seq));
    }
}

TEST(collector_refusing_for_weeks_is_retried_within_the_backoff_cap) {
    const Mode refusals[2] = {BUSY_503, DOWN};
    for (uint8_t m = 0; m < 2; ++m) {
        for (uint8_t i = 0; i < 4; ++i) {
            Rig rig(true);
            rig.collector.clock = 24 * DAY_MS;
            rig.second();
            rig.collector.mode = refusals[m];
            uint64_t end = rig.collector.clock + PARK_DAYS[i] * DAY_MS;
            uint32_t attempts = 0;
            // The loop is held up for an hour at a time: every attempt is due and refused.
            for (uint32_t hour = 0; rig.collector.clock < end; ++hour) {
                if (hour % 24 == 0) {
                    rig.measure(1);
                }
                attempts += rig.step() != SEND_IDLE ? 1u : 0u;
                rig.collector.clock += 3600000ULL;
            }
            CHECK_EQ(attempts, PARK_DAYS[i] * 24UL);
            rig.collector.mode = UP;
            CHECK(until_delivered(rig) <= 600000ULL);
            for (uint16_t n = 0; rig.store.pending() && n < 200; ++n) {
                until_delivered(rig);
            }
            CHECK(rig.collector.was_seen(rig.seq));
            CHECK_EQ(rig.store.dropped(), 0);
        }
    }
}

// The request head, the reply parser (status, Retry-After, the top-level "ack" only), and the
// back-off policy.
#include "../energymon_mega/src/core/http.h"
#include "../energymon_mega/src/core/retry.h"
#include "unit.h"

using namespace em;
UT_FILE;

namespace {

class Buffer : public ByteSink {
public:
    Buffer() : len(0) {}
    bool put(const uint8_t* d, uint16_t n) override {
        for (uint16_t i = 0; i < n && len < sizeof(buf) - 1; ++i) {
            buf[len++] = static_cast<char>(d[i]);
        }
        buf[len] = 0;
        return true;
    }
    char buf[200];
    uint16_t len;
};

bool equals_flash(const char* ram, uint16_t len, const char* flash) {
    uint16_t i = 0;
    for (; i < len; ++i) {
        if (flash_byte(flash + i) != static_cast<uint8_t>(ram[i])) {
            return false;
        }
    }
    return flash_byte(flash + i) == 0;
}

void feed(ResponseParser& p, const char* flash) {
    for (; flash_byte(flash) != 0; ++flash) {
        p.feed(flash_byte(flash));
    }
}

const char KEY[] EM_FLASH = "s3cret-key";

}  // namespace

TEST(request_head_exact) {
    static const char expected[] EM_FLASH =
        "POST /api/v1/readings HTTP/1.1\r\n"
        "Host: 192.168.1.10:8080\r\n"
        "Authorization: Bearer s3cret-key\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 70000\r\n"
        "Connection: close\r\n"
        "\r\n";
    Collector c = {{192, 168, 1, 10}, 8080, FlashStr{KEY}};
    Buffer b;
    CHECK(write_request_head(b, c, 70000UL));
    CHECK(equals_flash(b.buf, b.len, expected));
}

TEST(reply_200_with_ack) {
    static const char r[] EM_FLASH =
        "HTTP/1.1 200 OK\r\ndate: x\r\nContent-Length: 54\r\ncontent-type: application/json\r\n\r\n"
        "{\"ack\":1041,\"accepted\":1,\"duplicates\":0,\"rejected\":[]}";
    ResponseParser p;
    feed(p, r);
    CHECK_EQ(p.status(), 200);
    CHECK(p.complete());
    CHECK(p.has_ack());
    CHECK(!p.ack_is_null());
    CHECK_EQ(p.ack(), 1041);
}

TEST(reply_ack_null_for_heartbeat) {
    static const char r[] EM_FLASH =
        "HTTP/1.1 200 OK\r\ncontent-length: 54\r\n\r\n"
        "{\"ack\":null,\"accepted\":0,\"duplicates\":0,\"rejected\":[]}";
    ResponseParser p;
    feed(p, r);
    CHECK(p.complete());
    CHECK(p.has_ack());
    CHECK(p.ack_is_null());
}

TEST(reply_ack_only_at_top_level) {
    static const char r[] EM_FLASH =
        "HTTP/1.1 200 OK\r\n\r\n"
        "{\"rejected\":[{\"seq\":5,\"reason\":\"\\\"ack\\\":7\"}],\"x\":{\"ack\":9},\"acks\":3,"
        "\"ack\" : 4294967295 }";
    ResponseParser p;
    feed(p, r);
    CHECK(p.has_ack());
    CHECK_EQ(p.ack(), 4294967295UL);
    CHECK(!p.complete());  // no Content-Length: the caller waits for the close
}

TEST(reply_cut_short_is_no_ack) {
    static const char r[] EM_FLASH = "HTTP/1.1 200 OK\r\ncontent-length: 40\r\n\r\n{\"ack\":10";
    ResponseParser p;
    feed(p, r);
    CHECK(!p.has_ack());
    static const char n[] EM_FLASH = "HTTP/1.1 200 OK\r\n\r\n{\"ack\":nul";
    ResponseParser q;
    feed(q, n);
    CHECK(!q.has_ack());
    static const char f[] EM_FLASH = "HTTP/1.1 200 OK\r\n\r\n{\"ack\":1.5}";
    ResponseParser s;
    feed(s, f);
    CHECK(!s.has_ack());
    static const char big[] EM_FLASH = "HTTP/1.1 200 OK\r\n\r\n{\"ack\":4294967296}";
    ResponseParser t;
    feed(t, big);
    CHECK(!t.has_ack());
}

TEST(reply_errors_and_retry_after) {
    static const char r[] EM_FLASH =
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\ncontent-length: 45\r\n\r\n"
        "{\"error\":\"not_durable\",\"detail\":\"spool full\"}";
    ResponseParser p;
    feed(p, r);
    CHECK_EQ(p.status(), 503);
    CHECK_EQ(p.retry_after_s(), 30);
    CHECK(p.complete());
    CHECK(!p.has_ack());
    static const char d[] EM_FLASH = "HTTP/1.0 413 Payload Too Large\r\nretry-after: Wed, 21 Oct 2015\r\n\r\n";
    ResponseParser q;
    feed(q, d);
    CHECK_EQ(q.status(), 413);
    CHECK_EQ(q.retry_after_s(), 0);
    static const char junk[] EM_FLASH = "garbage\r\n\r\n";
    ResponseParser z;
    feed(z, junk);
    CHECK_EQ(z.status(), 0);
}

TEST(backoff_doubles_to_the_cap) {
    Backoff b(1000, 60000);
    CHECK_EQ(b.nominal_ms(1), 1000);
    CHECK_EQ(b.nominal_ms(2), 2000);
    CHECK_EQ(b.nominal_ms(6), 32000);
    CHECK_EQ(b.nominal_ms(7), 60000);
    CHECK_EQ(b.nominal_ms(60000), 60000);
    CHECK_EQ(b.failed(0), 500);
    CHECK_EQ(b.failed(0xFFFF), 2000 / 2 + 0xFFFFu % 1001u);
    for (uint8_t i = 0; i < 20; ++i) {
        uint32_t w = b.failed(static_cast<uint16_t>(i * 977u));
        CHECK(w >= b.nominal_ms(b.failures()) / 2 && w <= b.nominal_ms(b.failures()));
    }
    b.succeeded();
    CHECK_EQ(b.failures(), 0);
    CHECK_EQ(b.failed(0), 500);
}

TEST(backoff_honours_retry_after_with_a_cap) {
    Backoff b(1000, 60000);
    CHECK_EQ(b.failed(0, 30000), 30000);
    CHECK_EQ(b.failed(0, 3600000UL), Backoff::RETRY_AFTER_CAP_MS);
    Backoff many(1000, 60000);
    for (uint32_t i = 0; i < 70000UL; ++i) {
        many.failed(0);
    }
    CHECK_EQ(many.failures(), 0xFFFF);
    CHECK_EQ(many.failed(0), 30000);
    CHECK_EQ(many.failed(0xFFFF), 30000 + 0xFFFFu % 30001u);
}

// The HTTP/1.1 exchange with the collector: the request head, and a byte-at-a-time parser of the
// reply that keeps only what the device acts on (status, Retry-After, the body's top-level "ack").
#ifndef EM_HTTP_H
#define EM_HTTP_H

#include "json_batch.h"

namespace em {

struct Collector {
    uint8_t ip[4];
    uint16_t port;
    FlashStr key;  // the device key, sent as a bearer token
};

bool write_request_head(ByteSink& out, const Collector& c, uint32_t content_length);

class ResponseParser {
public:
    ResponseParser() { reset(); }
    void reset();
    void feed(uint8_t c);

    // True once the head is read and Content-Length bytes of body have followed.
    bool complete() const;
    uint16_t status() const { return status_; }
    // Only a finished value counts: a number cut off by a closed connection is not an ack.
    bool has_ack() const { return ack_is_number() || ack_is_null(); }
    bool ack_is_null() const { return ack_state_ == ACK_NULL && null_matched_ == 4; }
    uint32_t ack() const { return ack_; }
    uint32_t retry_after_s() const { return retry_after_s_; }

private:
    enum Part : uint8_t { STATUS_LINE, HEADER, BODY };
    enum AckState : uint8_t { ACK_NONE, ACK_AWAIT_VALUE, ACK_NUMBER, ACK_NULL, ACK_BAD };
    static const uint8_t LINE_MAX = 24;

    bool ack_is_number() const { return ack_state_ == ACK_NUMBER && null_matched_ != 0xFF; }
    void end_line();
    void body_byte(uint8_t c);

    Part part_;
    uint16_t status_;
    uint8_t line_len_;
    char line_[LINE_MAX];
    bool has_length_;
    uint32_t content_length_;
    uint32_t body_read_;
    uint32_t retry_after_s_;
    // JSON scanning of the body: depth, inside a string, after a backslash, key being read.
    uint8_t depth_;
    bool in_string_;
    bool escaped_;
    bool expect_key_;
    bool key_is_ack_;
    uint8_t key_len_;
    AckState ack_state_;
    uint8_t null_matched_;
    uint32_t ack_;
};

}  // namespace em

#endif

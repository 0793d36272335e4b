#include "http.h"

namespace em {

static const char k_post[] EM_FLASH = "POST /api/v1/readings HTTP/1.1\r\nHost: ";
static const char k_auth[] EM_FLASH = "\r\nAuthorization: Bearer ";
static const char k_type[] EM_FLASH = "\r\nContent-Type: application/json\r\nContent-Length: ";
static const char k_close[] EM_FLASH = "\r\nConnection: close\r\n\r\n";
static const char k_content_length[] EM_FLASH = "content-length:";
static const char k_retry_after[] EM_FLASH = "retry-after:";

bool write_request_head(ByteSink& out, const Collector& c, uint32_t content_length) {
    Printer p(out);
    p.flash(FlashStr{k_post});
    for (uint8_t i = 0; i < 4; ++i) {
        if (i > 0) {
            p.ch('.');
        }
        p.u32(c.ip[i]);
    }
    p.ch(':');
    p.u32(c.port);
    p.flash(FlashStr{k_auth});
    p.flash(c.key);
    p.flash(FlashStr{k_type});
    p.u32(content_length);
    p.flash(FlashStr{k_close});
    return p.ok();
}

void ResponseParser::reset() {
    part_ = STATUS_LINE;
    status_ = 0;
    line_len_ = 0;
    has_length_ = false;
    content_length_ = 0;
    body_read_ = 0;
    retry_after_s_ = 0;
    depth_ = 0;
    in_string_ = false;
    escaped_ = false;
    expect_key_ = false;
    key_is_ack_ = false;
    key_len_ = 0;
    ack_state_ = ACK_NONE;
    null_matched_ = 0;
    ack_ = 0;
}

bool ResponseParser::complete() const {
    return part_ == BODY && has_length_ && body_read_ >= content_length_;
}

// Case-insensitive prefix match of a header line against a lowercase name; returns the value.
static const char* header_value(const char* line, uint8_t len, FlashStr name) {
    uint8_t i = 0;
    for (; flash_byte(name.p + i) != 0; ++i) {
        if (i >= len) {
            return nullptr;
        }
        char c = line[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        if (c != static_cast<char>(flash_byte(name.p + i))) {
            return nullptr;
        }
    }
    while (i < len && line[i] == ' ') {
        ++i;
    }
    return line + i;
}

static bool parse_digits(const char* p, const char* end, uint32_t* out) {
    uint32_t v = 0;
    if (p >= end || *p < '0' || *p > '9') {
        return false;
    }
    for (; p < end && *p >= '0' && *p <= '9'; ++p) {
        uint32_t d = static_cast<uint32_t>(*p - '0');
        if (v > (0xFFFFFFFFu - d) / 10u) {
            return false;
        }
        v = v * 10u + d;
    }
    *out = v;
    return true;
}

void ResponseParser::end_line() {
    const char* end = line_ + line_len_;
    if (part_ == STATUS_LINE) {
        // "HTTP/1.1 200 OK": the three digits after the first space.
        uint8_t i = 0;
        while (i < line_len_ && line_[i] != ' ') {
            ++i;
        }
        uint32_t code = 0;
        if (i < line_len_ && parse_digits(line_ + i + 1, end, &code) && code < 1000) {
            status_ = static_cast<uint16_t>(code);
        }
        part_ = HEADER;
    } else if (line_len_ == 0) {
        part_ = BODY;
    } else {
        const char* v = header_value(line_, line_len_, FlashStr{k_content_length});
        if (v != nullptr) {
            has_length_ = parse_digits(v, end, &content_length_);
        }
        v = header_value(line_, line_len_, FlashStr{k_retry_after});
        if (v != nullptr && !parse_digits(v, end, &retry_after_s_)) {
            retry_after_s_ = 0;  // an HTTP date: fall back to the device's own back-off
        }
    }
    line_len_ = 0;
}

void ResponseParser::body_byte(uint8_t c) {
    ++body_read_;
    if (in_string_) {
        if (escaped_) {
            escaped_ = false;
            key_is_ack_ = false;
        } else if (c == '\\') {
            escaped_ = true;
        } else if (c == '"') {
            in_string_ = false;
            if (expect_key_ && key_is_ack_ && key_len_ == 3 && depth_ == 1) {
                ack_state_ = ACK_AWAIT_VALUE;
            }
            expect_key_ = false;
        } else if (expect_key_) {
            static const char k_ack[] EM_FLASH = "ack";
            key_is_ack_ = key_is_ack_ && key_len_ < 3 && c == flash_byte(k_ack + key_len_);
            ++key_len_;
        }
        return;
    }
    if (ack_state_ == ACK_AWAIT_VALUE) {
        if (c == ' ' || c == ':' || c == '\t' || c == '\r' || c == '\n') {
            return;
        }
        if (c >= '0' && c <= '9') {
            ack_ = static_cast<uint32_t>(c - '0');
            ack_state_ = ACK_NUMBER;
            null_matched_ = 0xFF;  // reading digits
            return;
        }
        if (c == 'n') {
            ack_state_ = ACK_NULL;
            null_matched_ = 1;
            return;
        }
        ack_state_ = ACK_BAD;
        return;
    }
    if (ack_state_ == ACK_NUMBER && null_matched_ == 0xFF) {
        if (c >= '0' && c <= '9') {
            uint32_t d = static_cast<uint32_t>(c - '0');
            if (ack_ > (0xFFFFFFFFu - d) / 10u) {
                ack_state_ = ACK_BAD;
                return;
            }
            ack_ = ack_ * 10u + d;
            return;
        }
        if (c == '.' || c == 'e' || c == 'E') {
            ack_state_ = ACK_BAD;
            return;
        }
        null_matched_ = 0;
    }
    if (ack_state_ == ACK_NULL && null_matched_ > 0 && null_matched_ < 4) {
        static const char k_null[] EM_FLASH = "null";
        if (c != flash_byte(k_null + null_matched_)) {
            ack_state_ = ACK_BAD;
            return;
        }
        ++null_matched_;
        return;
    }
    switch (c) {
        case '{':
            ++depth_;
            expect_key_ = depth_ == 1;
            break;
        case '[':
            ++depth_;
            expect_key_ = false;
            break;
        case '}':
        case ']':
            if (depth_ > 0) {
                --depth_;
            }
            break;
        case ',':
            expect_key_ = depth_ == 1;
            break;
        case '"':
            in_string_ = true;
            key_is_ack_ = expect_key_;
            key_len_ = 0;
            break;
        default:
            break;
    }
}

void ResponseParser::feed(uint8_t c) {
    if (part_ == BODY) {
        body_byte(c);
        return;
    }
    if (c == '\n') {
        end_line();
    } else if (c != '\r' && line_len_ < LINE_MAX) {
        line_[line_len_++] = static_cast<char>(c);
    }
}

}  // namespace em

#include "modbus.h"

#include "crc16.h"

namespace em {

static const char k_reply_ok[] EM_FLASH = "ok";
static const char k_reply_incomplete[] EM_FLASH = "incomplete";
static const char k_reply_timeout[] EM_FLASH = "timeout";
static const char k_reply_bad_crc[] EM_FLASH = "bad crc";
static const char k_reply_wrong_address[] EM_FLASH = "wrong address";
static const char k_reply_wrong_function[] EM_FLASH = "wrong function";
static const char k_reply_wrong_count[] EM_FLASH = "wrong byte count";
static const char k_reply_exception[] EM_FLASH = "exception";
static const char k_reply_not_echo[] EM_FLASH = "not an echo";

FlashStr reply_status_name(ReplyStatus s) {
    switch (s) {
        case REPLY_OK: return FlashStr{k_reply_ok};
        case REPLY_INCOMPLETE: return FlashStr{k_reply_incomplete};
        case REPLY_TIMEOUT: return FlashStr{k_reply_timeout};
        case REPLY_BAD_CRC: return FlashStr{k_reply_bad_crc};
        case REPLY_WRONG_ADDRESS: return FlashStr{k_reply_wrong_address};
        case REPLY_WRONG_FUNCTION: return FlashStr{k_reply_wrong_function};
        case REPLY_WRONG_COUNT: return FlashStr{k_reply_wrong_count};
        case REPLY_EXCEPTION: return FlashStr{k_reply_exception};
        case REPLY_NOT_ECHO: return FlashStr{k_reply_not_echo};
    }
    return FlashStr{k_reply_timeout};
}

uint8_t modbus_seal(uint8_t* frame, uint8_t len) {
    uint16_t crc = crc16_modbus(frame, len);
    frame[len] = static_cast<uint8_t>(crc & 0xFF);
    frame[len + 1] = static_cast<uint8_t>(crc >> 8);
    return static_cast<uint8_t>(len + 2);
}

bool modbus_crc_ok(const uint8_t* frame, uint8_t len) {
    if (len < 3) {
        return false;
    }
    uint16_t crc = crc16_modbus(frame, static_cast<uint16_t>(len - 2));
    return frame[len - 2] == static_cast<uint8_t>(crc & 0xFF) &&
           frame[len - 1] == static_cast<uint8_t>(crc >> 8);
}

static uint8_t header(uint8_t* out, uint8_t address, uint8_t function, uint16_t a, uint16_t b) {
    out[0] = address;
    out[1] = function;
    out[2] = static_cast<uint8_t>(a >> 8);
    out[3] = static_cast<uint8_t>(a & 0xFF);
    out[4] = static_cast<uint8_t>(b >> 8);
    out[5] = static_cast<uint8_t>(b & 0xFF);
    return modbus_seal(out, 6);
}

uint8_t modbus_read_request(uint8_t* out, uint8_t address, uint8_t function, uint16_t first,
                            uint16_t count) {
    return header(out, address, function, first, count);
}

uint8_t modbus_write_single_request(uint8_t* out, uint8_t address, uint16_t reg, uint16_t value) {
    return header(out, address, FC_WRITE_SINGLE, reg, value);
}

uint8_t pzem_reset_energy_request(uint8_t* out, uint8_t address) {
    out[0] = address;
    out[1] = FC_RESET_ENERGY;
    return modbus_seal(out, 2);
}

uint8_t modbus_reply_length(const uint8_t* rx, uint8_t len, uint8_t function, uint16_t count) {
    if (len >= 2 && (rx[1] & EXCEPTION_FLAG) != 0) {
        return EXCEPTION_LEN;
    }
    if (function == FC_WRITE_SINGLE) {
        return REQUEST_LEN;
    }
    if (function == FC_RESET_ENERGY) {
        return RESET_ENERGY_LEN;
    }
    uint16_t n = static_cast<uint16_t>(3u + 2u * count + 2u);
    return n > MAX_FRAME ? MAX_FRAME : static_cast<uint8_t>(n);
}

static bool address_matches(uint8_t asked, uint8_t got) {
    return asked == GENERAL_ADDRESS || asked == got;
}

// The checks common to both kinds of reply: CRC first, so a corrupted byte is reported as such.
static ReplyStatus check_exception(const uint8_t* rx, uint8_t len, uint8_t address,
                                   uint8_t function, uint8_t* exception_code) {
    if (len == EXCEPTION_LEN && rx[1] == static_cast<uint8_t>(function | EXCEPTION_FLAG)) {
        if (!modbus_crc_ok(rx, len)) {
            return REPLY_BAD_CRC;
        }
        if (!address_matches(address, rx[0])) {
            return REPLY_WRONG_ADDRESS;
        }
        if (exception_code != nullptr) {
            *exception_code = rx[2];
        }
        return REPLY_EXCEPTION;
    }
    return REPLY_OK;
}

ReplyStatus modbus_check_read_reply(const uint8_t* rx, uint8_t len, uint8_t address,
                                    uint8_t function, uint16_t count, uint8_t* exception_code) {
    if (len < EXCEPTION_LEN) {
        return len == 0 ? REPLY_TIMEOUT : REPLY_INCOMPLETE;
    }
    ReplyStatus ex = check_exception(rx, len, address, function, exception_code);
    if (ex != REPLY_OK) {
        return ex;
    }
    if (!modbus_crc_ok(rx, len)) {
        return REPLY_BAD_CRC;
    }
    if (!address_matches(address, rx[0])) {
        return REPLY_WRONG_ADDRESS;
    }
    if (rx[1] != function) {
        return REPLY_WRONG_FUNCTION;
    }
    uint16_t data_bytes = static_cast<uint16_t>(2u * count);
    if (rx[2] != data_bytes || len != 3u + data_bytes + 2u) {
        return REPLY_WRONG_COUNT;
    }
    return REPLY_OK;
}

ReplyStatus modbus_check_echo(const uint8_t* request, uint8_t request_len, const uint8_t* rx,
                              uint8_t len, uint8_t* exception_code) {
    if (len == 0) {
        return REPLY_TIMEOUT;
    }
    ReplyStatus ex = check_exception(rx, len, request[0], request[1], exception_code);
    if (ex != REPLY_OK) {
        return ex;
    }
    if (len < request_len) {
        return REPLY_INCOMPLETE;
    }
    if (!modbus_crc_ok(rx, len)) {
        return REPLY_BAD_CRC;
    }
    if (len != request_len || memcmp(request, rx, len) != 0) {
        return REPLY_NOT_ECHO;
    }
    return REPLY_OK;
}

uint16_t modbus_register(const uint8_t* rx, uint8_t index) {
    const uint8_t* p = rx + 3 + 2 * index;
    return static_cast<uint16_t>((static_cast<uint16_t>(p[0]) << 8) | p[1]);
}

static uint32_t low_word_first(const uint8_t* rx, uint8_t lo_index) {
    return static_cast<uint32_t>(modbus_register(rx, lo_index)) |
           (static_cast<uint32_t>(modbus_register(rx, static_cast<uint8_t>(lo_index + 1))) << 16);
}

Measurement pzem_decode(const uint8_t* rx) {
    Measurement m;
    m.voltage_dv = modbus_register(rx, 0);
    m.current_ma = low_word_first(rx, 1);
    m.power_dw = low_word_first(rx, 3);
    m.energy_wh = low_word_first(rx, 5);
    m.frequency_dhz = modbus_register(rx, 7);
    m.power_factor_centi = modbus_register(rx, 8);
    m.alarm = modbus_register(rx, 9) == 0xFFFF;
    return m;
}

}  // namespace em

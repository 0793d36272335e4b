// Every frame of the reference's test-vector table (docs: shared/reference/pzem-004t.md):
// built byte for byte, validated, decoded, and each corruption rejected for the right reason.
#include "../energymon_mega/src/core/crc16.h"
#include "../energymon_mega/src/core/modbus.h"
#include "unit.h"

using namespace em;
UT_FILE;

namespace {

const uint8_t V1[] EM_FLASH = {0x01, 0x04, 0x00, 0x00, 0x00, 0x0A, 0x70, 0x0D};
const uint8_t V2[] EM_FLASH = {0x02, 0x04, 0x00, 0x00, 0x00, 0x0A, 0x70, 0x3E};
const uint8_t V3[] EM_FLASH = {0xF8, 0x04, 0x00, 0x00, 0x00, 0x0A, 0x64, 0x64};
const uint8_t V4[] EM_FLASH = {0x01, 0x04, 0x14, 0x08, 0xD1, 0x00, 0x6C, 0x00, 0x00,
                               0x00, 0xF4, 0x00, 0x00, 0x00, 0x26, 0x00, 0x00, 0x01,
                               0xF4, 0x00, 0x64, 0x00, 0x00, 0x51, 0x34};
const uint8_t V5[] EM_FLASH = {0x01, 0x04, 0x14, 0x04, 0xD0, 0x63, 0x46, 0x00, 0x01,
                               0x90, 0xFC, 0x00, 0x00, 0x1D, 0xEA, 0x00, 0x02, 0x02,
                               0x58, 0x00, 0x21, 0x00, 0x00, 0xD4, 0xBB};
const uint8_t V6[] EM_FLASH = {0x01, 0x04, 0x14, 0x08, 0xFD, 0xE2, 0x40, 0x00, 0x01,
                               0x6E, 0xFF, 0x00, 0x00, 0xD6, 0x87, 0x00, 0x12, 0x01,
                               0xF4, 0x00, 0x5F, 0xFF, 0xFF, 0x64, 0x5D};
const uint8_t V7[] EM_FLASH = {0xF8, 0x06, 0x00, 0x02, 0x00, 0x01, 0xFD, 0xA3};
const uint8_t V8[] EM_FLASH = {0x01, 0x06, 0x00, 0x01, 0x08, 0xFC, 0xDF, 0x8B};
const uint8_t V9A[] EM_FLASH = {0x01, 0x42, 0x80, 0x11};
const uint8_t V9B[] EM_FLASH = {0xF8, 0x42, 0xC2, 0x41};
const uint8_t V10[] EM_FLASH = {0x01, 0x84, 0x02, 0xC2, 0xC1};

struct Frame {
    uint8_t b[MAX_FRAME];
    uint8_t len;
    Frame(const uint8_t* flash, uint8_t n) : len(n) { ut::flash_copy(b, flash, n); }
};

bool same(const uint8_t* a, const Frame& f, uint8_t len) {
    return len == f.len && memcmp(a, f.b, len) == 0;
}

ReplyStatus check_pzem(const Frame& f, uint8_t address, uint8_t* code) {
    return modbus_check_read_reply(f.b, f.len, address, FC_READ_INPUT, PZEM_REGISTERS, code);
}

}  // namespace

TEST(crc_check_value) {
    const uint8_t digits[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
    CHECK_EQ(crc16_modbus(digits, 9), 0x4B37);
    CHECK_EQ(crc16_modbus(digits, 0), 0xFFFF);
}

TEST(vectors_1_2_3_read_requests) {
    uint8_t out[REQUEST_LEN];
    CHECK(same(out, Frame(V1, 8), modbus_read_request(out, 0x01, FC_READ_INPUT, 0, 10)));
    CHECK(same(out, Frame(V2, 8), modbus_read_request(out, 0x02, FC_READ_INPUT, 0, 10)));
    CHECK(same(out, Frame(V3, 8), modbus_read_request(out, 0xF8, FC_READ_INPUT, 0, 10)));
    CHECK(modbus_crc_ok(Frame(V1, 8).b, 8));
    CHECK(modbus_crc_ok(Frame(V2, 8).b, 8));
    CHECK(modbus_crc_ok(Frame(V3, 8).b, 8));
}

TEST(vector_4_decodes) {
    Frame f(V4, 25);
    uint8_t code = 0xEE;
    CHECK_EQ(modbus_reply_length(f.b, 2, FC_READ_INPUT, 10), 25);
    CHECK_EQ(check_pzem(f, 0x01, &code), REPLY_OK);
    Measurement m = pzem_decode(f.b);
    CHECK_EQ(m.voltage_dv, 2257);
    CHECK_EQ(m.current_ma, 108);
    CHECK_EQ(m.power_dw, 244);
    CHECK_EQ(m.energy_wh, 38);
    CHECK_EQ(m.frequency_dhz, 500);
    CHECK_EQ(m.power_factor_centi, 100);
    CHECK(!m.alarm);
}

TEST(vector_5_high_words) {
    Frame f(V5, 25);
    CHECK_EQ(check_pzem(f, 0x01, nullptr), REPLY_OK);
    Measurement m = pzem_decode(f.b);
    CHECK_EQ(m.voltage_dv, 1232);
    CHECK_EQ(m.current_ma, 90950UL);
    CHECK_EQ(m.power_dw, 37116UL);
    CHECK_EQ(m.energy_wh, 138730UL);
    CHECK_EQ(m.frequency_dhz, 600);
    CHECK_EQ(m.power_factor_centi, 33);
    CHECK(!m.alarm);
}

TEST(vector_6_alarm_and_large_values) {
    Frame f(V6, 25);
    CHECK_EQ(check_pzem(f, 0x01, nullptr), REPLY_OK);
    Measurement m = pzem_decode(f.b);
    CHECK_EQ(m.voltage_dv, 2301);
    CHECK_EQ(m.current_ma, 123456UL);
    CHECK_EQ(m.power_dw, 28415UL);
    CHECK_EQ(m.energy_wh, 1234567UL);
    CHECK_EQ(m.frequency_dhz, 500);
    CHECK_EQ(m.power_factor_centi, 95);
    CHECK(m.alarm);
}

TEST(general_address_accepts_the_module_answering) {
    CHECK_EQ(check_pzem(Frame(V4, 25), GENERAL_ADDRESS, nullptr), REPLY_OK);
    CHECK_EQ(check_pzem(Frame(V4, 25), 0x02, nullptr), REPLY_WRONG_ADDRESS);
}

TEST(vectors_7_8_write_single_echo) {
    uint8_t out[REQUEST_LEN];
    Frame v7(V7, 8);
    Frame v8(V8, 8);
    CHECK(same(out, v7, modbus_write_single_request(out, 0xF8, 0x0002, 0x0001)));
    CHECK_EQ(modbus_check_echo(out, 8, v7.b, v7.len, nullptr), REPLY_OK);
    CHECK(same(out, v8, modbus_write_single_request(out, 0x01, 0x0001, 2300)));
    CHECK_EQ(modbus_check_echo(out, 8, v8.b, v8.len, nullptr), REPLY_OK);
    CHECK_EQ(modbus_reply_length(v8.b, 2, FC_WRITE_SINGLE, 1), 8);
    // An intact frame that is not the echo: the threshold written back differs.
    Frame other(V8, 8);
    other.b[5] = 0xFD;
    modbus_seal(other.b, 6);
    CHECK_EQ(modbus_check_echo(out, 8, other.b, 8, nullptr), REPLY_NOT_ECHO);
    CHECK_EQ(modbus_check_echo(out, 8, v8.b, 7, nullptr), REPLY_INCOMPLETE);
    CHECK_EQ(modbus_check_echo(out, 8, v8.b, 0, nullptr), REPLY_TIMEOUT);
}

TEST(vector_9_reset_energy_echo) {
    uint8_t out[RESET_ENERGY_LEN];
    Frame a(V9A, 4);
    Frame b(V9B, 4);
    CHECK(same(out, a, pzem_reset_energy_request(out, 0x01)));
    CHECK_EQ(modbus_check_echo(out, 4, a.b, 4, nullptr), REPLY_OK);
    CHECK_EQ(modbus_reply_length(a.b, 2, FC_RESET_ENERGY, 0), 4);
    CHECK(same(out, b, pzem_reset_energy_request(out, 0xF8)));
    CHECK_EQ(modbus_check_echo(out, 4, b.b, 4, nullptr), REPLY_OK);
    b.b[3] ^= 0x01;
    CHECK_EQ(modbus_check_echo(out, 4, b.b, 4, nullptr), REPLY_BAD_CRC);
}

TEST(vector_10_exception_reply) {
    Frame f(V10, 5);
    uint8_t code = 0;
    CHECK_EQ(modbus_reply_length(f.b, 2, FC_READ_INPUT, 10), EXCEPTION_LEN);
    CHECK_EQ(check_pzem(f, 0x01, &code), REPLY_EXCEPTION);
    CHECK_EQ(code, 0x02);
    // The same exception as the answer to a write.
    uint8_t req[REQUEST_LEN];
    modbus_write_single_request(req, 0x01, 0x0001, 2300);
    Frame w(V10, 5);
    w.b[1] = 0x86;
    modbus_seal(w.b, 3);
    code = 0;
    CHECK_EQ(modbus_check_echo(req, 8, w.b, 5, &code), REPLY_EXCEPTION);
    CHECK_EQ(code, 0x02);
    f.b[4] ^= 0x40;
    CHECK_EQ(check_pzem(f, 0x01, &code), REPLY_BAD_CRC);
}

TEST(every_single_bit_error_is_rejected) {
    Frame good(V6, 25);
    uint16_t rejected = 0;
    for (uint8_t i = 0; i < good.len; ++i) {
        for (uint8_t bit = 0; bit < 8; ++bit) {
            Frame f(V6, 25);
            f.b[i] ^= static_cast<uint8_t>(1u << bit);
            if (check_pzem(f, 0x01, nullptr) != REPLY_OK) {
                ++rejected;
            }
        }
    }
    CHECK_EQ(rejected, 25u * 8u);
}

TEST(wrong_fields_with_valid_crc) {
    uint8_t code = 0;
    Frame f(V4, 25);
    f.b[0] = 0x02;
    modbus_seal(f.b, 23);
    CHECK_EQ(check_pzem(f, 0x01, &code), REPLY_WRONG_ADDRESS);
    Frame g(V4, 25);
    g.b[1] = 0x03;
    modbus_seal(g.b, 23);
    CHECK_EQ(check_pzem(g, 0x01, &code), REPLY_WRONG_FUNCTION);
    Frame h(V4, 25);
    h.b[2] = 0x12;
    modbus_seal(h.b, 23);
    CHECK_EQ(check_pzem(h, 0x01, &code), REPLY_WRONG_COUNT);
    // A shorter but self-consistent frame (9 registers) is still the wrong answer.
    Frame s(V4, 25);
    s.b[2] = 0x12;
    modbus_seal(s.b, 21);
    s.len = 23;
    CHECK_EQ(check_pzem(s, 0x01, &code), REPLY_WRONG_COUNT);
    Frame t(V4, 25);
    CHECK_EQ(modbus_check_read_reply(t.b, 0, 0x01, FC_READ_INPUT, 10, &code), REPLY_TIMEOUT);
    CHECK_EQ(modbus_check_read_reply(t.b, 3, 0x01, FC_READ_INPUT, 10, &code), REPLY_INCOMPLETE);
    CHECK_EQ(modbus_check_read_reply(t.b, 24, 0x01, FC_READ_INPUT, 10, &code), REPLY_BAD_CRC);
}

TEST(a_valid_all_zero_reply_is_a_reading_not_a_failure) {
    // Load off: I, P, PF are zero in a valid reply. Only a reply decides; silence never does.
    uint8_t f[PZEM_REPLY_LEN];
    memset(f, 0, sizeof(f));
    f[0] = 0x01;
    f[1] = FC_READ_INPUT;
    f[2] = 20;
    f[3] = 0x08;
    f[4] = 0xFC;
    modbus_seal(f, 23);
    CHECK_EQ(modbus_check_read_reply(f, 25, 0x01, FC_READ_INPUT, 10, nullptr), REPLY_OK);
    Measurement m = pzem_decode(f);
    CHECK_EQ(m.voltage_dv, 2300);
    CHECK_EQ(m.current_ma, 0);
}

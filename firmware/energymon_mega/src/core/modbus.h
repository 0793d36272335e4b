// Modbus-RTU framing as the PZEM-004T v3 speaks it: building requests, deciding when a reply is
// complete, and validating it (address, function, byte count, CRC) before anything is decoded.
#ifndef EM_MODBUS_H
#define EM_MODBUS_H

#include "em_base.h"

namespace em {

const uint8_t FC_READ_HOLDING = 0x03;
const uint8_t FC_READ_INPUT = 0x04;
const uint8_t FC_WRITE_SINGLE = 0x06;
const uint8_t FC_RESET_ENERGY = 0x42;
const uint8_t EXCEPTION_FLAG = 0x80;

// Every module answers this address; only safe with a single module on the line.
const uint8_t GENERAL_ADDRESS = 0xF8;

const uint8_t REQUEST_LEN = 8;       // read or write-single request
const uint8_t RESET_ENERGY_LEN = 4;  // addr, 0x42, CRC
const uint8_t EXCEPTION_LEN = 5;     // addr, fc|0x80, code, CRC
const uint8_t PZEM_REGISTERS = 10;
const uint8_t PZEM_REPLY_LEN = 3 + 2 * PZEM_REGISTERS + 2;
const uint8_t MAX_FRAME = PZEM_REPLY_LEN;

enum ReplyStatus : uint8_t {
    REPLY_OK = 0,
    REPLY_INCOMPLETE,   // fewer bytes than the frame announces
    REPLY_TIMEOUT,      // nothing or not enough before the deadline
    REPLY_BAD_CRC,
    REPLY_WRONG_ADDRESS,
    REPLY_WRONG_FUNCTION,
    REPLY_WRONG_COUNT,  // byte count field or frame length not what was asked for
    REPLY_EXCEPTION,    // a well-formed exception reply
    REPLY_NOT_ECHO,     // a write or reset reply that is not the request's echo
};

FlashStr reply_status_name(ReplyStatus s);

// Append the CRC (low byte first) to `len` bytes of `frame`; returns the new length.
uint8_t modbus_seal(uint8_t* frame, uint8_t len);
bool modbus_crc_ok(const uint8_t* frame, uint8_t len);

uint8_t modbus_read_request(uint8_t* out, uint8_t address, uint8_t function, uint16_t first,
                            uint16_t count);
uint8_t modbus_write_single_request(uint8_t* out, uint8_t address, uint16_t reg, uint16_t value);
uint8_t pzem_reset_energy_request(uint8_t* out, uint8_t address);

// How many bytes the reply to a request with `function` reading `count` registers will have,
// given the first `len` bytes received: an exception is shorter than the normal reply.
uint8_t modbus_reply_length(const uint8_t* rx, uint8_t len, uint8_t function, uint16_t count);

// Validate a reply to a read of `count` registers. A request to the general address accepts any
// replying address (the datasheet does not say which address the module answers with).
ReplyStatus modbus_check_read_reply(const uint8_t* rx, uint8_t len, uint8_t address,
                                    uint8_t function, uint16_t count, uint8_t* exception_code);

// Validate the reply to a write-single (0x06) or reset-energy (0x42) request: an exact echo.
ReplyStatus modbus_check_echo(const uint8_t* request, uint8_t request_len, const uint8_t* rx,
                              uint8_t len, uint8_t* exception_code);

// The value of register `index` in a validated read reply (big-endian on the wire).
uint16_t modbus_register(const uint8_t* rx, uint8_t index);

// Decode a validated 10-register PZEM reply. 32-bit quantities come low word first.
Measurement pzem_decode(const uint8_t* rx);

}  // namespace em

#endif

// The thin layer between the portable core and the Arduino libraries: serial ports, the Ethernet
// client, the SD card files and the EEPROM, each adapted to the interface the core expects.
#ifndef EM_ARDUINO_GLUE_H
#define EM_ARDUINO_GLUE_H

#include <Arduino.h>
#include <Ethernet.h>
#include <SD.h>

#include "src/core/boot_book.h"
#include "src/core/poller.h"
#include "src/core/spill_log.h"
#include "src/core/uplink.h"

class HardwareLink : public em::SerialLink {
public:
    explicit HardwareLink(HardwareSerial& port) : port_(port) {}
    int16_t read_byte() override { return static_cast<int16_t>(port_.read()); }
    void write_bytes(const uint8_t* data, uint8_t len) override { port_.write(data, len); }

private:
    HardwareSerial& port_;
};

class EthernetTransport : public em::Transport {
public:
    EthernetTransport(const uint8_t* ip, uint16_t port, void (*idle)())
        : ip_(ip[0], ip[1], ip[2], ip[3]), port_(port), idle_(idle) {}
    void set_connect_timeout(uint16_t ms) { client_.setConnectionTimeout(ms); }
    bool open() override;
    bool put(const uint8_t* data, uint16_t len) override;
    int16_t read_byte() override;
    bool connected() override;
    void close() override { client_.stop(); }
    uint32_t now_ms() override { return millis(); }
    void idle() override { idle_(); }

private:
    EthernetClient client_;
    IPAddress ip_;
    uint16_t port_;
    void (*idle_)();
};

// The spill log as two files: EMLOG.BIN (the records, append-only) and EMCUR.BIN (the cursor).
class SdMedia : public em::LogMedia {
public:
    bool begin();
    uint32_t size() override;
    bool read(uint32_t offset, uint8_t* data, uint16_t len) override;
    bool append(const uint8_t* data, uint16_t len) override;
    bool sync() override;
    bool erase() override;
    bool read_meta(uint8_t* data, uint8_t len) override;
    bool write_meta(uint8_t offset, const uint8_t* data, uint8_t len) override;

private:
    File log_;
    File meta_;
};

class AvrEeprom : public em::Eeprom {
public:
    uint8_t read(uint16_t address) override;
    void write(uint16_t address, uint8_t value) override;
};

#endif

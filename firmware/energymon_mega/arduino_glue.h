// The thin layer between the portable core and the Arduino libraries: serial ports, the Ethernet
// client and the W5100, the SD card's segment files and the EEPROM, each adapted to the interface
// the core expects.
#ifndef EM_ARDUINO_GLUE_H
#define EM_ARDUINO_GLUE_H

#include <Arduino.h>
#include <Ethernet.h>
#include <SD.h>

#include "src/core/boot_book.h"
#include "src/core/network.h"
#include "src/core/poller.h"
#include "src/core/segment_media.h"
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
    EthernetTransport(const uint8_t* ip, uint16_t port, uint16_t stall_ms, void (*idle)())
        : em::Transport(stall_ms), ip_(ip[0], ip[1], ip[2], ip[3]), port_(port), idle_(idle) {}
    void set_connect_timeout(uint16_t ms) { client_.setConnectionTimeout(ms); }
    bool open() override;
    uint16_t room() override;
    bool write_now(const uint8_t* data, uint16_t len) override;
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

struct NicSettings {
    uint8_t* mac;
    bool dhcp;
    IPAddress ip;
    IPAddress dns;
    IPAddress gateway;
    IPAddress subnet;
    uint16_t dhcp_timeout_ms;
    uint16_t dhcp_response_ms;
    uint16_t retransmission_ms;
    uint8_t retransmissions;
    uint16_t connect_timeout_ms;
};

class W5100Nic : public em::Nic {
public:
    W5100Nic(const NicSettings& s, EthernetTransport& transport) : s_(s), transport_(transport) {}
    // First start; with DHCP the lease is asked for by the network keeper.
    void begin();
    bool present() const;
    bool request_lease() override;
    em::DhcpCheck maintain() override;
    bool link_up() override;
    bool reinit() override;

private:
    void configure();
    const NicSettings& s_;
    EthernetTransport& transport_;
};

// Segment files in one directory of the card, through SD 1.x's SdFile, whose sync() reports
// whether the card took the data (File::flush() of the SD wrapper does not). One handle appends,
// another reads, so neither seeks back across the other's work.
class SdSegments : public em::SegmentFiles {
public:
    explicit SdSegments(uint8_t cs_pin) : cs_pin_(cs_pin), writer_seg_(0), reader_seg_(0) {}
    // Start (or restart, after a failure) the card, its volume and the log's directory.
    bool begin();

    uint32_t cluster_bytes() override { return 512UL * volume_.blocksPerCluster(); }
    bool scan(bool* any, uint32_t* first, uint32_t* last, uint32_t* last_size) override;
    bool append(uint32_t seg, const uint8_t* data, uint16_t len) override;
    bool sync() override;
    bool read(uint32_t seg, uint32_t pos, uint8_t* data, uint16_t len) override;
    bool remove(uint32_t seg) override;
    bool read_meta(uint8_t* data, uint8_t len) override;
    bool write_meta(uint8_t offset, const uint8_t* data, uint8_t len) override;

private:
    void close_all();
    uint8_t cs_pin_;
    Sd2Card card_;
    SdVolume volume_;
    SdFile root_;
    SdFile dir_;
    SdFile meta_;
    SdFile writer_;
    SdFile reader_;
    uint32_t writer_seg_;
    uint32_t reader_seg_;
};

class AvrEeprom : public em::Eeprom {
public:
    uint8_t read(uint16_t address) override;
    void write(uint16_t address, uint8_t value) override;
};

#endif

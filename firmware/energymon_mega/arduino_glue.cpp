#include "arduino_glue.h"

#include <avr/eeprom.h>
#include <avr/wdt.h>
#include <utility/w5100.h>

static const char LOG_DIR[] = "EMSEG";
static const char META_FILE[] = "CURSOR.BIN";

// ---- Ethernet ---------------------------------------------------------------------------------
bool EthernetTransport::open() {
    return client_.connect(ip_, port_) == 1;
}

uint16_t EthernetTransport::room() {
    int n = client_.availableForWrite();
    return n > 0 ? static_cast<uint16_t>(n) : 0;
}

bool EthernetTransport::write_now(const uint8_t* data, uint16_t len) {
    return client_.write(data, len) == len;
}

int16_t EthernetTransport::read_byte() {
    return client_.available() > 0 ? static_cast<int16_t>(client_.read()) : -1;
}

bool EthernetTransport::connected() {
    return client_.connected() || client_.available() > 0;
}

void W5100Nic::configure() {
    // The chip doubles its retransmission timeout on every retry; these two settings bound how
    // long a dead collector holds a send (docs/firmware.md gives the total).
    Ethernet.setRetransmissionTimeout(s_.retransmission_ms);
    Ethernet.setRetransmissionCount(s_.retransmissions);
    transport_.set_connect_timeout(s_.connect_timeout_ms);
}

void W5100Nic::begin() {
    if (s_.dhcp) {
        // Only sets the chip up: the keeper asks for the lease with timeouts that fit the watchdog.
        Ethernet.begin(s_.mac, IPAddress(0, 0, 0, 0), IPAddress(0, 0, 0, 0), IPAddress(0, 0, 0, 0),
                       IPAddress(0, 0, 0, 0));
    } else {
        Ethernet.begin(s_.mac, s_.ip, s_.dns, s_.gateway, s_.subnet);
    }
    configure();
}

bool W5100Nic::present() const {
    return Ethernet.hardwareStatus() != EthernetNoHardware;
}

bool W5100Nic::request_lease() {
    wdt_reset();
    bool ok = Ethernet.begin(s_.mac, s_.dhcp_timeout_ms, s_.dhcp_response_ms) == 1;
    wdt_reset();
    configure();
    return ok;
}

em::DhcpCheck W5100Nic::maintain() {
    wdt_reset();
    return static_cast<em::DhcpCheck>(Ethernet.maintain());
}

bool W5100Nic::link_up() {
    return present() && Ethernet.linkStatus() != LinkOFF;
}

bool W5100Nic::reinit() {
    transport_.close();
    // The chip's own reset: every register, socket and buffer back to its power-on state.
    SPI.beginTransaction(SPI_ETHERNET_SETTINGS);
    W5100.writeMR(0x80);
    bool done = false;
    for (uint8_t i = 0; i < 20 && !done; ++i) {
        done = W5100.readMR() == 0;
        if (!done) {
            delay(1);
        }
    }
    SPI.endTransaction();
    begin();
    return done && present();
}

// ---- SD card -----------------------------------------------------------------------------------
static void segment_name(uint32_t seg, char* name) {
    static const char HEX_DIGITS[] = "0123456789ABCDEF";
    name[0] = 'S';
    for (uint8_t i = 0; i < 7; ++i) {
        name[7 - i] = HEX_DIGITS[(seg >> (4 * i)) & 0xF];
    }
    memcpy(name + 8, ".BIN", 5);
}

static bool segment_number(const dir_t& e, uint32_t* seg) {
    if (!DIR_IS_FILE(&e) || e.name[0] != 'S' || memcmp(e.name + 8, "BIN", 3) != 0) {
        return false;
    }
    uint32_t v = 0;
    for (uint8_t i = 1; i < 8; ++i) {
        char c = static_cast<char>(e.name[i]);
        uint8_t d = c >= '0' && c <= '9' ? c - '0' : (c >= 'A' && c <= 'F' ? c - 'A' + 10 : 0xFF);
        if (d == 0xFF) {
            return false;
        }
        v = (v << 4) | d;
    }
    *seg = v;
    return true;
}

void SdSegments::close_all() {
    writer_.close();
    reader_.close();
    meta_.close();
    dir_.close();
    root_.close();
}

bool SdSegments::begin() {
    close_all();
    if (!card_.init(SPI_HALF_SPEED, cs_pin_) || !volume_.init(&card_) || !root_.openRoot(&volume_)) {
        return false;
    }
    if (!dir_.open(&root_, LOG_DIR, O_READ) && !dir_.makeDir(&root_, LOG_DIR)) {
        return false;
    }
    return meta_.open(&dir_, META_FILE, O_RDWR | O_CREAT);
}

bool SdSegments::scan(bool* any, uint32_t* first, uint32_t* last, uint32_t* last_size) {
    *any = false;
    dir_t e;
    dir_.rewind();
    int8_t got = 0;
    for (uint16_t n = 0; (got = dir_.readDir(&e)) > 0; ++n) {
        if ((n & 0x3F) == 0) {
            wdt_reset();
        }
        uint32_t seg = 0;
        if (!segment_number(e, &seg)) {
            continue;
        }
        if (!*any || seg < *first) {
            *first = seg;
        }
        if (!*any || seg > *last) {
            *last = seg;
            *last_size = e.fileSize;
        }
        *any = true;
    }
    return got == 0;
}

bool SdSegments::append(uint32_t seg, const uint8_t* data, uint16_t len) {
    if (!writer_.isOpen() || writer_seg_ != seg) {
        if (writer_.isOpen() && (!writer_.sync() || !writer_.close())) {
            return false;
        }
        char name[13];
        segment_name(seg, name);
        if (!writer_.open(&dir_, name, O_RDWR | O_CREAT | O_APPEND)) {
            return false;
        }
        writer_seg_ = seg;
    }
    return writer_.write(data, len) == len;
}

bool SdSegments::sync() {
    return !writer_.isOpen() || writer_.sync();
}

bool SdSegments::read(uint32_t seg, uint32_t pos, uint8_t* data, uint16_t len) {
    // The segment being appended to is read through its own handle: a second handle would not
    // see what was appended after it was opened.
    SdFile* f = &reader_;
    if (writer_.isOpen() && writer_seg_ == seg) {
        f = &writer_;
    } else if (!reader_.isOpen() || reader_seg_ != seg) {
        reader_.close();
        char name[13];
        segment_name(seg, name);
        if (!reader_.open(&dir_, name, O_READ)) {
            return false;
        }
        reader_seg_ = seg;
    }
    return f->seekSet(pos) && f->read(data, len) == static_cast<int16_t>(len);
}

bool SdSegments::remove(uint32_t seg) {
    wdt_reset();
    if (reader_.isOpen() && reader_seg_ == seg) {
        reader_.close();
    }
    if (writer_.isOpen() && writer_seg_ == seg) {
        writer_.close();
    }
    char name[13];
    segment_name(seg, name);
    SdFile f;
    // Already gone (a power cut after the delete, before the cursor moved on) is fine.
    return !f.open(&dir_, name, O_WRITE) || f.remove();
}

bool SdSegments::read_meta(uint8_t* data, uint8_t len) {
    memset(data, 0xFF, len);  // a new, empty file reads as "no cursor yet"
    uint32_t have = meta_.fileSize();
    uint8_t n = have < len ? static_cast<uint8_t>(have) : len;
    return meta_.seekSet(0) && (n == 0 || meta_.read(data, n) == n);
}

bool SdSegments::write_meta(uint8_t offset, const uint8_t* data, uint8_t len) {
    // A shorter file is first padded, so the slot lands at its offset.
    while (meta_.fileSize() < offset) {
        if (!meta_.seekEnd() || meta_.write(static_cast<uint8_t>(0xFF)) != 1) {
            return false;
        }
    }
    return meta_.seekSet(offset) && meta_.write(data, len) == len && meta_.sync();
}

// ---- EEPROM ------------------------------------------------------------------------------------
uint8_t AvrEeprom::read(uint16_t address) {
    return eeprom_read_byte(reinterpret_cast<const uint8_t*>(address));
}

void AvrEeprom::write(uint16_t address, uint8_t value) {
    eeprom_update_byte(reinterpret_cast<uint8_t*>(address), value);
}

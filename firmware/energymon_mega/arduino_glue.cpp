#include "arduino_glue.h"

#include <avr/eeprom.h>

static const char LOG_FILE[] = "EMLOG.BIN";
static const char META_FILE[] = "EMCUR.BIN";

bool EthernetTransport::open() {
    return client_.connect(ip_, port_) == 1;
}

bool EthernetTransport::put(const uint8_t* data, uint16_t len) {
    // The core never hands over more than one chunk (at most 2 KB) at a time.
    return client_.write(data, len) == len;
}

int16_t EthernetTransport::read_byte() {
    return client_.available() > 0 ? static_cast<int16_t>(client_.read()) : -1;
}

bool EthernetTransport::connected() {
    return client_.connected() || client_.available() > 0;
}

bool SdMedia::begin() {
    log_ = SD.open(LOG_FILE, FILE_WRITE);  // read, write, create, append
    meta_ = SD.open(META_FILE, O_READ | O_WRITE | O_CREAT);
    return log_ && meta_;
}

uint32_t SdMedia::size() {
    return log_.size();
}

bool SdMedia::read(uint32_t offset, uint8_t* data, uint16_t len) {
    return log_.seek(offset) && log_.read(data, len) == static_cast<int>(len);
}

bool SdMedia::append(const uint8_t* data, uint16_t len) {
    // O_APPEND: every write goes to the end, whatever the last read's position.
    return log_.write(data, len) == len;
}

bool SdMedia::sync() {
    log_.flush();
    return log_.getWriteError() == 0;
}

bool SdMedia::erase() {
    log_.close();
    if (!SD.remove(LOG_FILE)) {
        return false;
    }
    log_ = SD.open(LOG_FILE, FILE_WRITE);
    return static_cast<bool>(log_);
}

bool SdMedia::read_meta(uint8_t* data, uint8_t len) {
    memset(data, 0xFF, len);  // a new, empty file reads as "no cursor yet"
    uint32_t have = meta_.size();
    uint8_t n = have < len ? static_cast<uint8_t>(have) : len;
    return meta_.seek(0) && (n == 0 || meta_.read(data, n) == n);
}

bool SdMedia::write_meta(uint8_t offset, const uint8_t* data, uint8_t len) {
    // A shorter file is first padded, so the slot lands at its offset.
    while (meta_.size() < offset) {
        meta_.seek(meta_.size());
        if (meta_.write(static_cast<uint8_t>(0xFF)) != 1) {
            return false;
        }
    }
    if (!meta_.seek(offset) || meta_.write(data, len) != len) {
        return false;
    }
    meta_.flush();
    return meta_.getWriteError() == 0;
}

uint8_t AvrEeprom::read(uint16_t address) {
    return eeprom_read_byte(reinterpret_cast<const uint8_t*>(address));
}

void AvrEeprom::write(uint16_t address, uint8_t value) {
    eeprom_update_byte(reinterpret_cast<uint8_t*>(address), value);
}

#include "spill_log.h"

#include "crc16.h"

namespace em {

static bool slot_decode(const uint8_t* s, uint32_t* generation, uint32_t* cursor) {
    if (s[0] != 'E' || s[1] != 'L' || get_u16(s + 10) != crc16_modbus(s, 10)) {
        return false;
    }
    *generation = get_u32(s + 2);
    *cursor = get_u32(s + 6);
    return true;
}

bool SpillLog::failed() {
    usable_ = false;
    ++failures_;
    return false;
}

bool SpillLog::open() {
    usable_ = false;
    uint8_t meta[META_LEN];
    if (!media_.read_meta(meta, META_LEN)) {
        return failed();
    }
    // Two slots written alternately: a cut during one write leaves the other intact.
    bool found = false;
    for (uint8_t i = 0; i < 2; ++i) {
        uint32_t g = 0;
        uint32_t c = 0;
        if (slot_decode(meta + i * META_SLOT_LEN, &g, &c) && (!found || g > generation_)) {
            found = true;
            generation_ = g;
            cursor_ = c;
        }
    }
    if (!found) {
        generation_ = 0;
        cursor_ = 0;
    }
    end_ = media_.size();
    uint8_t torn = static_cast<uint8_t>(end_ % RECORD_LEN);
    if (torn != 0) {
        // Pad the torn record to a whole (invalid) one so later appends stay aligned.
        uint8_t pad[RECORD_LEN];
        memset(pad, 0, sizeof(pad));
        if (!media_.append(pad, static_cast<uint16_t>(RECORD_LEN - torn)) || !media_.sync()) {
            return failed();
        }
        end_ = media_.size();
    }
    usable_ = true;
    if (cursor_ > end_ || cursor_ % RECORD_LEN != 0) {
        // The log was deleted after the cursor was last written, or the cursor is not ours.
        return write_cursor(0);
    }
    // A power cut may have come between a cursor write and the release it allowed.
    return media_.release(cursor_) || failed();
}

bool SpillLog::write_cursor(uint32_t cursor) {
    uint8_t s[META_SLOT_LEN];
    uint32_t g = generation_ + 1;
    s[0] = 'E';
    s[1] = 'L';
    put_u32(s + 2, g);
    put_u32(s + 6, cursor);
    put_u16(s + 10, crc16_modbus(s, 10));
    if (!media_.write_meta(static_cast<uint8_t>((g & 1u) * META_SLOT_LEN), s, META_SLOT_LEN)) {
        return failed();
    }
    generation_ = g;
    cursor_ = cursor;
    return true;
}

bool SpillLog::append(const uint8_t* records, uint16_t count) {
    if (!usable_) {
        return false;
    }
    uint16_t len = static_cast<uint16_t>(count * RECORD_LEN);
    // A full log (offsets are 32-bit, and the medium may set its own limit) takes nothing more
    // until the collector drains it, and the card stays usable for that.
    if (end_ > MAX_END - len || !media_.has_room(len)) {
        return false;
    }
    if (!media_.append(records, len) || !media_.sync()) {
        return failed();
    }
    end_ += len;
    return true;
}

bool SpillLog::read(uint32_t offset, Reading& r, bool& intact) {
    uint8_t raw[RECORD_LEN];
    if (!usable_ || offset + RECORD_LEN > end_) {
        usable_ = false;
        return false;
    }
    if (!media_.read(offset, raw, RECORD_LEN)) {
        return failed();
    }
    intact = record_decode(raw, r);
    return true;
}

bool SpillLog::advance(uint32_t offset) {
    if (!usable_ || offset <= cursor_ || offset > end_) {
        return usable_;
    }
    if (offset == end_) {
        // Everything is acknowledged: delete the log so the card never fills with old records.
        // If power fails between the two steps, open() finds the cursor past the end and resets.
        if (!media_.erase()) {
            return failed();
        }
        end_ = 0;
        return write_cursor(0);
    }
    return write_cursor(offset) && (media_.release(offset) || failed());
}

}  // namespace em

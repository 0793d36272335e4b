// The SD card's append-only log of readings the RAM ring could not hold, and the durable cursor
// that says how much of it the collector has acknowledged. Records are never rewritten; the
// whole log is deleted only once every record in it is acknowledged.
#ifndef EM_SPILL_LOG_H
#define EM_SPILL_LOG_H

#include "record.h"

namespace em {

// What the log needs of a storage medium. The sketch implements it with two files on the SD
// card; tests with memory that can be made to fail.
class LogMedia {
public:
    virtual uint32_t size() = 0;
    virtual bool read(uint32_t offset, uint8_t* data, uint16_t len) = 0;
    virtual bool append(const uint8_t* data, uint16_t len) = 0;
    virtual bool sync() = 0;   // make everything appended so far survive a power cut
    virtual bool erase() = 0;  // delete the whole log
    // Everything before `offset` is acknowledged: the medium may free it.
    virtual bool release(uint32_t offset) = 0;
    // Whether `len` more bytes may be appended; a medium with no limit of its own says yes.
    virtual bool has_room(uint16_t len) = 0;
    // The small cursor area, written in place and synced before returning.
    virtual bool read_meta(uint8_t* data, uint8_t len) = 0;
    virtual bool write_meta(uint8_t offset, const uint8_t* data, uint8_t len) = 0;
};

const uint8_t META_SLOT_LEN = 12;  // 'E' 'L' generation cursor CRC
const uint8_t META_LEN = 2 * META_SLOT_LEN;
// The largest log: the last whole record below the 32-bit offset limit.
const uint32_t MAX_END = 0xFFFFFFFFUL / RECORD_LEN * RECORD_LEN;

class SpillLog {
public:
    explicit SpillLog(LogMedia& media)
        : media_(media), usable_(false), cursor_(0), end_(0), generation_(0), failures_(0) {}

    // Find the cursor and the end of the log, and realign a tail torn by a power cut.
    // Returns false (and stays unusable) when the medium does not work. Called again to retry a
    // card that failed.
    bool open();
    bool usable() const { return usable_; }
    void fail() { usable_ = false; }

    uint32_t cursor() const { return cursor_; }
    uint32_t end() const { return end_; }
    bool pending() const { return usable_ && cursor_ < end_; }
    uint32_t pending_records() const { return usable_ ? (end_ - cursor_) / RECORD_LEN : 0; }
    // Appends, syncs, reads or cursor writes the card refused since start-up.
    uint32_t failures() const { return failures_; }

    // Append whole records and sync them; false (and unusable) on any failure.
    bool append(const uint8_t* records, uint16_t count);
    // Read the record at `offset`; `intact` says whether it decoded. False on an I/O failure.
    bool read(uint32_t offset, Reading& r, bool& intact);
    // Everything before `offset` is acknowledged or abandoned: persist that.
    bool advance(uint32_t offset);

private:
    bool write_cursor(uint32_t cursor);
    bool failed();

    LogMedia& media_;
    bool usable_;
    uint32_t cursor_;
    uint32_t end_;
    uint32_t generation_;
    uint32_t failures_;
};

}  // namespace em

#endif

// The spill log's medium as a run of numbered segment files of bounded size, so the cost of any
// one operation does not grow with the backlog: SD 1.x walks a file's cluster chain from its start
// on every backward seek, and a single ever-growing file made that walk (and the watchdog window
// it has to fit in) as long as the backlog. Segments the collector has acknowledged are deleted.
#ifndef EM_SEGMENT_MEDIA_H
#define EM_SEGMENT_MEDIA_H

#include "spill_log.h"

namespace em {

// What the card offers: numbered files. The sketch implements it with SD 1.x's SdFile (one
// handle appending, one reading); tests with a model that counts the card work of each call.
class SegmentFiles {
public:
    virtual uint32_t cluster_bytes() = 0;
    // The segments present: whether any, the lowest and highest number, the highest's size.
    virtual bool scan(bool* any, uint32_t* first, uint32_t* last, uint32_t* last_size) = 0;
    // Append to segment `seg`, created if missing; it becomes the one appended to.
    virtual bool append(uint32_t seg, const uint8_t* data, uint16_t len) = 0;
    // Make what was appended durable; false when the card did not confirm it.
    virtual bool sync() = 0;
    virtual bool read(uint32_t seg, uint32_t pos, uint8_t* data, uint16_t len) = 0;
    virtual bool remove(uint32_t seg) = 0;
    virtual bool read_meta(uint8_t* data, uint8_t len) = 0;
    virtual bool write_meta(uint8_t offset, const uint8_t* data, uint8_t len) = 0;
};

class SegmentedMedia : public LogMedia {
public:
    // `segment_bytes` must be a whole number of records, so no record straddles two files.
    SegmentedMedia(SegmentFiles& files, uint32_t segment_bytes)
        : files_(files), segment_bytes_(segment_bytes), first_(0), end_(0), limit_(0) {}

    // The first file created after the card is mounted makes SD 1.x search the FAT from its
    // start for a free cluster, across every cluster the log holds: the log is kept to this many
    // clusters, so that search stays well inside the watchdog window (docs/firmware.md).
    static const uint32_t MAX_CLUSTERS = 65536UL;

    // Find the segments on the card; false when the card does not answer.
    bool begin();

    uint32_t size() override { return end_; }
    bool read(uint32_t offset, uint8_t* data, uint16_t len) override;
    bool append(const uint8_t* data, uint16_t len) override;
    bool sync() override { return files_.sync(); }
    bool erase() override;
    bool release(uint32_t before) override;
    bool has_room(uint16_t len) override { return end_ + len - first_ * segment_bytes_ <= limit_; }
    uint32_t limit_bytes() const { return limit_; }
    bool read_meta(uint8_t* data, uint8_t len) override { return files_.read_meta(data, len); }
    bool write_meta(uint8_t offset, const uint8_t* data, uint8_t len) override {
        return files_.write_meta(offset, data, len);
    }

    uint32_t segments() const { return end_ == 0 ? 0 : (end_ - 1) / segment_bytes_ + 1 - first_; }

private:
    SegmentFiles& files_;
    uint32_t segment_bytes_;
    uint32_t first_;  // lowest segment still on the card
    uint32_t end_;
    uint32_t limit_;  // bytes the log may hold on this card
};

}  // namespace em

#endif

// Memory the tests share, so the AVR image (8 KB of RAM) holds one card and one ring, not one
// per test file.
#ifndef EM_TEST_BUFFERS_H
#define EM_TEST_BUFFERS_H

#include "../energymon_mega/src/core/record.h"

namespace buffers {

#ifdef __AVR__
const uint16_t MEDIA_RECORDS = 64;
#else
const uint16_t MEDIA_RECORDS = 1024;
#endif
const uint16_t RING_RECORDS = 12;

extern uint8_t media[MEDIA_RECORDS * em::RECORD_LEN];
extern uint8_t ring[RING_RECORDS * em::RECORD_LEN];

}  // namespace buffers

#endif

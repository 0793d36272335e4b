#include "buffers.h"

namespace buffers {

uint8_t media[MEDIA_RECORDS * em::RECORD_LEN];
uint8_t ring[RING_RECORDS * em::RECORD_LEN];

}  // namespace buffers

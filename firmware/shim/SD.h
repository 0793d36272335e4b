// Compile-only stand-in for SD 1.2.4 (see README.md): the API the sketch uses, no behaviour.
#ifndef __SD_H__
#define __SD_H__

#include <Arduino.h>

#define O_READ 0x01
#define O_WRITE 0x02
#define O_APPEND 0x04
#define O_CREAT 0x10
#define FILE_READ O_READ
#define FILE_WRITE (O_READ | O_WRITE | O_CREAT | O_APPEND)

class SdFile;

namespace SDLib {

class File : public Stream {
public:
    File();
    virtual size_t write(uint8_t);
    virtual size_t write(const uint8_t* buf, size_t size);
    virtual int availableForWrite();
    virtual int read();
    virtual int peek();
    virtual int available();
    virtual void flush();
    int read(void* buf, uint16_t nbyte);
    bool seek(uint32_t pos);
    uint32_t position();
    uint32_t size();
    void close();
    operator bool();
    using Print::write;

private:
    char _name[13];
    SdFile* _file;
};

class SDClass {
public:
    bool begin(uint8_t csPin);
    File open(const char* filename, uint8_t mode = FILE_READ);
    bool remove(const char* filepath);
};

extern SDClass SD;

}  // namespace SDLib

using namespace SDLib;

#endif

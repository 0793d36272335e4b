// Bodies for the compile-only stand-ins: no shield, no card. Never flashed to a board.
#include "Ethernet.h"
#include "SD.h"

EthernetClass Ethernet;

int EthernetClass::begin(uint8_t*, unsigned long, unsigned long) { return 0; }
int EthernetClass::maintain() { return 0; }
EthernetLinkStatus EthernetClass::linkStatus() { return LinkOFF; }
EthernetHardwareStatus EthernetClass::hardwareStatus() { return EthernetNoHardware; }
void EthernetClass::begin(uint8_t*, IPAddress, IPAddress, IPAddress, IPAddress) {}
void EthernetClass::init(uint8_t) {}
IPAddress EthernetClass::localIP() { return IPAddress(0, 0, 0, 0); }
void EthernetClass::setRetransmissionTimeout(uint16_t) {}
void EthernetClass::setRetransmissionCount(uint8_t) {}

int EthernetClient::connect(IPAddress, uint16_t) { return 0; }
int EthernetClient::connect(const char*, uint16_t) { return 0; }
size_t EthernetClient::write(uint8_t) { return 0; }
size_t EthernetClient::write(const uint8_t*, size_t) { return 0; }
int EthernetClient::available() { return 0; }
int EthernetClient::read() { return -1; }
int EthernetClient::read(uint8_t*, size_t) { return -1; }
int EthernetClient::peek() { return -1; }
void EthernetClient::flush() {}
void EthernetClient::stop() {}
uint8_t EthernetClient::connected() { return 0; }

namespace SDLib {

SDClass SD;

File::File() : _file(nullptr) { _name[0] = 0; }
size_t File::write(uint8_t) { return 0; }
size_t File::write(const uint8_t*, size_t) { return 0; }
int File::availableForWrite() { return 0; }
int File::read() { return -1; }
int File::peek() { return -1; }
int File::available() { return 0; }
void File::flush() {}
int File::read(void*, uint16_t) { return -1; }
bool File::seek(uint32_t) { return false; }
uint32_t File::position() { return 0; }
uint32_t File::size() { return 0; }
void File::close() {}
File::operator bool() { return _file != nullptr; }

bool SDClass::begin(uint8_t) { return false; }
File SDClass::open(const char*, uint8_t) { return File(); }
bool SDClass::remove(const char*) { return false; }

}  // namespace SDLib

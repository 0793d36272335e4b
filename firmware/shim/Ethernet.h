// Compile-only stand-in for Ethernet 2.0.2 (see README.md): the API the sketch uses, no behaviour.
#ifndef ethernet_h_
#define ethernet_h_

#include <Arduino.h>
#include <Client.h>
#include <IPAddress.h>

#define MAX_SOCK_NUM 8

enum EthernetLinkStatus { Unknown, LinkON, LinkOFF };
enum EthernetHardwareStatus { EthernetNoHardware, EthernetW5100, EthernetW5200, EthernetW5500 };

class EthernetClass {
public:
    static int begin(uint8_t* mac, unsigned long timeout = 60000, unsigned long responseTimeout = 4000);
    static int maintain();
    static EthernetLinkStatus linkStatus();
    static EthernetHardwareStatus hardwareStatus();
    static void begin(uint8_t* mac, IPAddress ip, IPAddress dns, IPAddress gateway, IPAddress subnet);
    static void init(uint8_t sspin = 10);
    static IPAddress localIP();
    void setRetransmissionTimeout(uint16_t milliseconds);
    void setRetransmissionCount(uint8_t num);
};

extern EthernetClass Ethernet;

class EthernetClient : public Client {
public:
    EthernetClient() : _sockindex(MAX_SOCK_NUM), _timeout(1000) {}
    virtual ~EthernetClient() {}
    virtual int connect(IPAddress ip, uint16_t port);
    virtual int connect(const char* host, uint16_t port);
    virtual size_t write(uint8_t);
    virtual size_t write(const uint8_t* buf, size_t size);
    virtual int available();
    virtual int read();
    virtual int read(uint8_t* buf, size_t size);
    virtual int peek();
    virtual void flush();
    virtual void stop();
    virtual uint8_t connected();
    virtual operator bool() { return _sockindex < MAX_SOCK_NUM; }
    virtual void setConnectionTimeout(uint16_t timeout) { _timeout = timeout; }
    using Print::write;

private:
    uint8_t _sockindex;
    uint16_t _timeout;
};

#endif

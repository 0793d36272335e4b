// energymon firmware for an Arduino Mega 2560 with a W5100 Ethernet shield: polls up to three
// PZEM-004T v3 meters and sends their readings to the energymon collector without losing any on
// the way. The logic lives in src/core (portable, unit-tested); this file wires it to the board.
// Configuration: config.h. Documentation: docs/firmware.md.

#include <Arduino.h>
#include <Ethernet.h>
#include <SD.h>
#include <avr/wdt.h>

#include "arduino_glue.h"
#include "config.h"
#include "src/core/diag.h"
#include "src/core/names.h"
#include "src/core/poller.h"
#include "src/core/store.h"
#include "src/core/timing.h"
#include "src/core/uplink.h"

// ---- configuration checks ------------------------------------------------------------------
static_assert(EM_METER_COUNT >= 1 && EM_METER_COUNT <= em::MAX_METERS, "1 to 3 meters");
static_assert(em::name_valid(EM_DEVICE_NAME), "EM_DEVICE_NAME breaks the contract's name rules");
static_assert(em::name_valid(EM_METER1_NAME), "EM_METER1_NAME breaks the contract's name rules");
static_assert(EM_METER1_PORT >= 1 && EM_METER1_PORT <= 3, "meter ports are Serial1..Serial3");
#if EM_METER_COUNT >= 2
static_assert(em::name_valid(EM_METER2_NAME), "EM_METER2_NAME breaks the contract's name rules");
static_assert(EM_METER2_PORT >= 1 && EM_METER2_PORT <= 3, "meter ports are Serial1..Serial3");
#endif
#if EM_METER_COUNT >= 3
static_assert(em::name_valid(EM_METER3_NAME), "EM_METER3_NAME breaks the contract's name rules");
static_assert(EM_METER3_PORT >= 1 && EM_METER3_PORT <= 3, "meter ports are Serial1..Serial3");
#endif
static_assert(EM_RING_READINGS >= EM_SPILL_CHUNK && EM_SPILL_CHUNK >= 1, "ring holds a chunk");
static_assert(EM_BATCH_MAX >= 1 && EM_BATCH_MAX <= 1000, "the collector takes 1000 at most");
static_assert(EM_POLL_INTERVAL_MS >= 200, "the PZEM refreshes about once a second");

// ---- constant data, in flash ---------------------------------------------------------------
static const char DEVICE_NAME[] PROGMEM = EM_DEVICE_NAME;
static const char DEVICE_KEY[] PROGMEM = EM_DEVICE_KEY;
static const char METER1_NAME[] PROGMEM = EM_METER1_NAME;
#if EM_METER_COUNT >= 2
static const char METER2_NAME[] PROGMEM = EM_METER2_NAME;
#endif
#if EM_METER_COUNT >= 3
static const char METER3_NAME[] PROGMEM = EM_METER3_NAME;
#endif

static const em::FlashStr SENSOR_NAMES[EM_METER_COUNT] = {
    {METER1_NAME},
#if EM_METER_COUNT >= 2
    {METER2_NAME},
#endif
#if EM_METER_COUNT >= 3
    {METER3_NAME},
#endif
};
static const em::MeterDef METERS[EM_METER_COUNT] = {
    {EM_METER1_PORT - 1, EM_METER1_ADDRESS},
#if EM_METER_COUNT >= 2
    {EM_METER2_PORT - 1, EM_METER2_ADDRESS},
#endif
#if EM_METER_COUNT >= 3
    {EM_METER3_PORT - 1, EM_METER3_ADDRESS},
#endif
};
static uint8_t MAC[6] = {EM_MAC};
static const uint8_t COLLECTOR_IP[4] = {EM_COLLECTOR_IP};

// ---- state -----------------------------------------------------------------------------------
// The reset cause, read before anything can clear it; and the watchdog stopped before the
// bootloader's or setup's delays can trip it again.
uint8_t g_reset_flags __attribute__((section(".noinit")));
void early_init() __attribute__((naked, used, section(".init3")));
void early_init() {
    g_reset_flags = MCUSR;
    MCUSR = 0;
    wdt_disable();
}

static uint8_t g_ring_memory[EM_RING_READINGS * em::RECORD_LEN];
static uint8_t g_chunk[256];

static AvrEeprom g_eeprom;
static em::BootBook g_boots(g_eeprom);
static SdMedia g_card;
static em::SpillLog g_log(g_card);
static em::RecordRing g_ring(g_ring_memory, EM_RING_READINGS);
static em::Store* g_store = nullptr;
static em::Uplink* g_uplink = nullptr;
static em::Uptime g_uptime;

static HardwareLink g_link1(Serial1);
static HardwareLink g_link2(Serial2);
static HardwareLink g_link3(Serial3);
static em::SerialLink* const LINKS[em::MAX_BUSES] = {&g_link1, &g_link2, &g_link3};
static const em::PollTiming POLL_TIMING = {EM_METER_TIMEOUT_MS * 1000UL, 3646UL};
static em::MeterPoller g_poller(METERS, EM_METER_COUNT, LINKS, POLL_TIMING);

static uint32_t g_seq = 0;
static uint32_t g_meter_errors[EM_METER_COUNT];
static bool g_meter_ok[EM_METER_COUNT];
static uint32_t g_next_poll_ms = 0;
static bool g_network_up = false;
static uint32_t g_next_network_try_ms = 0;
static em::SendResult g_last_result = em::SEND_IDLE;

static void service_meters();
static EthernetTransport g_transport(COLLECTOR_IP, EM_COLLECTOR_PORT, service_meters);

static const em::UplinkConfig UPLINK = {
    {{EM_COLLECTOR_IP}, EM_COLLECTOR_PORT, {DEVICE_KEY}},
    {DEVICE_NAME},
    SENSOR_NAMES,
    EM_METER_COUNT,
    EM_BATCH_MAX,
    EM_SEND_INTERVAL_MS,
    EM_HEARTBEAT_MS,
    EM_REPLY_TIMEOUT_MS,
    EM_BACKOFF_BASE_MS,
    EM_BACKOFF_MAX_MS,
};

// ---- console ---------------------------------------------------------------------------------
static void print_flash(em::FlashStr s) {
    Serial.print(reinterpret_cast<const __FlashStringHelper*>(s.p));
}

static void stamp() {
    Serial.print('[');
    Serial.print(static_cast<uint32_t>(g_uptime.now() / 1000u));
    Serial.print(F("s] "));
}

static void print_status() {
    stamp();
    Serial.print(F("boot "));
    Serial.print(g_boots.boot());
    Serial.print(F(" seq "));
    Serial.print(g_seq);
    Serial.print(F(" ram "));
    Serial.print(g_store->in_ram());
    Serial.print('/');
    Serial.print(EM_RING_READINGS);
    Serial.print(F(" card "));
    if (g_store->card_usable()) {
        Serial.print(g_store->on_card());
    } else {
        Serial.print(F("none"));
    }
    Serial.print(F(" dropped "));
    Serial.print(g_store->dropped());
    Serial.print(F(" ip "));
    Serial.print(Ethernet.localIP());
    Serial.print(F(" collector "));
    print_flash(em::send_result_name(g_last_result));
    Serial.print(F(" http "));
    Serial.print(g_uplink->status());
    Serial.print(F(" failures "));
    Serial.print(g_uplink->failures());
    for (uint8_t i = 0; i < EM_METER_COUNT; ++i) {
        Serial.print(' ');
        print_flash(SENSOR_NAMES[i]);
        Serial.print(g_meter_ok[i] ? F(" ok/") : F(" MISSING/"));
        Serial.print(g_meter_errors[i]);
    }
    Serial.println();
}

// ---- meters ----------------------------------------------------------------------------------
class Readings : public em::PollListener {
public:
    void on_measurement(uint8_t meter, const em::Measurement& m) override {
        em::Reading r;
        r.boot = g_boots.boot();
        r.seq = ++g_seq;
        r.uptime_ms = g_uptime.update(millis());
        r.sensor = meter;
        r.m = m;
        g_store->add(r);
        if (!g_meter_ok[meter]) {
            g_meter_ok[meter] = true;
            stamp();
            print_flash(SENSOR_NAMES[meter]);
            Serial.println(F(" answers"));
        }
    }
    void on_failure(uint8_t meter, em::ReplyStatus why, uint8_t code) override {
        ++g_meter_errors[meter];
        if (g_meter_ok[meter] || g_meter_errors[meter] == 1) {
            g_meter_ok[meter] = false;
            stamp();
            print_flash(SENSOR_NAMES[meter]);
            Serial.print(F(" missing: "));
            print_flash(em::reply_status_name(why));
            if (why == em::REPLY_EXCEPTION) {
                Serial.print(F(" code "));
                Serial.print(code);
            }
            Serial.println();
        }
    }
};
static Readings g_readings;

// Polls on schedule; also called while waiting for the collector, so polling never stalls on it.
static void service_meters() {
    wdt_reset();
    uint32_t now = millis();
    g_uptime.update(now);
    if (em::reached(now, g_next_poll_ms) && !g_poller.busy()) {
        g_poller.start_cycle(micros());
        g_next_poll_ms += EM_POLL_INTERVAL_MS;
        // After a long block (DHCP, a dead connection) start afresh rather than catch up.
        if (em::reached(now, g_next_poll_ms)) {
            g_next_poll_ms = now + EM_POLL_INTERVAL_MS;
        }
    }
    g_poller.service(micros(), g_readings);
}

// ---- network ---------------------------------------------------------------------------------
static void start_network() {
    Ethernet.init(EM_ETHERNET_CS_PIN);
#if EM_USE_DHCP
    stamp();
    Serial.println(F("DHCP..."));
    // Bounded below the watchdog's 8 s.
    g_network_up = Ethernet.begin(MAC, 6000UL, 2000UL) == 1;
#else
    Ethernet.begin(MAC, IPAddress(EM_STATIC_IP), IPAddress(EM_STATIC_DNS),
                   IPAddress(EM_STATIC_GATEWAY), IPAddress(EM_STATIC_SUBNET));
    g_network_up = Ethernet.hardwareStatus() != EthernetNoHardware;
#endif
    wdt_reset();
    // Fewer retransmissions than the library's default (8): a dead collector costs less time.
    Ethernet.setRetransmissionTimeout(200);
    Ethernet.setRetransmissionCount(3);
    g_transport.set_connect_timeout(EM_CONNECT_TIMEOUT_MS);
    stamp();
    if (Ethernet.hardwareStatus() == EthernetNoHardware) {
        Serial.println(F("no Ethernet shield found"));
        g_network_up = false;
        return;
    }
    Serial.print(g_network_up ? F("network up, ip ") : F("network not up, ip "));
    Serial.println(Ethernet.localIP());
}

static void service_network() {
    bool link = Ethernet.linkStatus() != LinkOFF && Ethernet.hardwareStatus() != EthernetNoHardware;
#if EM_USE_DHCP
    if (!g_network_up) {
        // DHCP blocks for seconds: retried every half minute, not every pass.
        if (!link || !em::reached(millis(), g_next_network_try_ms)) {
            return;
        }
        g_next_network_try_ms = millis() + 30000UL;
        g_network_up = Ethernet.begin(MAC, 6000UL, 2000UL) == 1;
        wdt_reset();
        if (g_network_up) {
            stamp();
            Serial.print(F("network up, ip "));
            Serial.println(Ethernet.localIP());
        }
        return;
    }
    uint8_t m = Ethernet.maintain();
    if (m == 1 || m == 3) {  // renew or rebind failed
        stamp();
        Serial.println(F("DHCP lease lost"));
        g_network_up = false;
        return;
    }
#endif
    if (link != g_network_up) {
        stamp();
        Serial.println(link ? F("link up") : F("link down"));
    }
    g_network_up = link;
}

// ---- setup and loop --------------------------------------------------------------------------
void setup() {
    Serial.begin(EM_CONSOLE_BAUD);
    pinMode(EM_LED_PIN, OUTPUT);
    digitalWrite(EM_LED_PIN, HIGH);
    // The SPI master must own pin 53; both SPI devices deselected before either is started.
    pinMode(53, OUTPUT);
    pinMode(EM_SD_CS_PIN, OUTPUT);
    digitalWrite(EM_SD_CS_PIN, HIGH);
    pinMode(EM_ETHERNET_CS_PIN, OUTPUT);
    digitalWrite(EM_ETHERNET_CS_PIN, HIGH);

    uint32_t boot = g_boots.begin();
    Serial.print(F("energymon firmware, device "));
    print_flash(em::FlashStr{DEVICE_NAME});
    Serial.print(F(", boot "));
    Serial.print(boot);
    Serial.print(F(", reset by"));
    if (g_reset_flags & _BV(WDRF)) Serial.print(F(" watchdog"));
    if (g_reset_flags & _BV(BORF)) Serial.print(F(" brown-out"));
    if (g_reset_flags & _BV(EXTRF)) Serial.print(F(" reset button"));
    if (g_reset_flags & _BV(PORF)) Serial.print(F(" power-on"));
    Serial.println();
    wdt_enable(WDTO_8S);

    bool card = false;
#if EM_USE_SD
    card = SD.begin(EM_SD_CS_PIN) && g_card.begin() && g_log.open();
#endif
    wdt_reset();
    static em::Store store(g_ring, card ? &g_log : nullptr, boot, g_boots, EM_SPILL_CHUNK);
    static em::Uplink uplink(UPLINK, store, g_boots, g_chunk, sizeof(g_chunk));
    g_store = &store;
    g_uplink = &uplink;
    stamp();
    if (card) {
        Serial.print(F("SD card: "));
        Serial.print(g_log.pending_records());
        Serial.println(F(" readings waiting"));
    } else {
        Serial.println(F("no SD card: RAM ring only"));
    }

    for (uint8_t i = 0; i < EM_METER_COUNT; ++i) {
        g_meter_ok[i] = true;
        g_meter_errors[i] = 0;
    }
    Serial1.begin(9600);
    Serial2.begin(9600);
    Serial3.begin(9600);
    start_network();
    randomSeed(micros() ^ (static_cast<uint32_t>(MAC[5]) << 16) ^ analogRead(A0));
    g_next_poll_ms = millis();
}

void loop() {
    service_meters();
    // The network waits while a poll cycle runs, so the cycle keeps its wire timing.
    if (!g_poller.busy()) {
        service_network();
        if (g_network_up) {
            em::SendResult r = g_uplink->step(g_transport, g_uptime.update(millis()),
                                              g_meter_errors, static_cast<uint16_t>(random(0x10000L)));
            if (r != em::SEND_IDLE) {
                bool was_ok = g_last_result == em::SEND_ACKED || g_last_result == em::SEND_HEARTBEAT;
                bool ok = r == em::SEND_ACKED || r == em::SEND_HEARTBEAT;
                if (ok != was_ok) {
                    stamp();
                    Serial.print(F("collector: "));
                    print_flash(em::send_result_name(r));
                    if (r == em::SEND_REFUSED) {
                        Serial.print(F(" HTTP "));
                        Serial.print(g_uplink->status());
                    }
                    Serial.println();
                }
                g_last_result = r;
            }
        }
    }
    if (Serial.available() > 0 && Serial.read() == 's') {
        print_status();
    }
    bool meters_ok = true;
    for (uint8_t i = 0; i < EM_METER_COUNT; ++i) {
        meters_ok = meters_ok && g_meter_ok[i];
    }
    bool collector_ok = g_uplink->failures() == 0;
    digitalWrite(EM_LED_PIN,
                 em::led_on(em::overall_health(g_network_up, collector_ok, meters_ok), millis())
                     ? HIGH
                     : LOW);
}

// energymon firmware for an Arduino Mega 2560 with a W5100 Ethernet shield: polls up to three
// PZEM-004T v3 meters and sends their readings to the energymon collector without losing any on
// the way. The logic lives in src/core (portable, unit-tested); this file wires it to the board.
// Configuration: config.h. Documentation: docs/firmware.md.

#include <Arduino.h>
#include <Ethernet.h>
#include <SD.h>
#include <avr/interrupt.h>
#include <avr/wdt.h>

#include "arduino_glue.h"
#include "config.h"
#include "src/core/diag.h"
#include "src/core/names.h"
#include "src/core/network.h"
#include "src/core/nonce.h"
#include "src/core/poller.h"
#include "src/core/reset_cause.h"
#include "src/core/segment_media.h"
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
static_assert(EM_DHCP_TIMEOUT_MS + 2UL * EM_DHCP_RESPONSE_MS <= 5000UL,
              "a lease request must end well inside the watchdog's window");
static_assert(EM_SEGMENT_READINGS >= EM_BATCH_MAX, "a segment holds a batch");

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
static constexpr em::MeterDef METERS[EM_METER_COUNT] = {
    {EM_METER1_PORT - 1, EM_METER1_ADDRESS},
#if EM_METER_COUNT >= 2
    {EM_METER2_PORT - 1, EM_METER2_ADDRESS},
#endif
#if EM_METER_COUNT >= 3
    {EM_METER3_PORT - 1, EM_METER3_ADDRESS},
#endif
};
static_assert(em::no_broadcast_address(METERS, EM_METER_COUNT),
              "address 0x00 is the broadcast address: no meter answers it");
static_assert(em::address_in_range(METERS, EM_METER_COUNT), "meter addresses end at 0xF8");
static_assert(em::distinct_addresses_per_bus(METERS, EM_METER_COUNT),
              "two meters on one port have the same address");
static_assert(em::general_address_alone(METERS, EM_METER_COUNT),
              "0xF8 (every module answers it) only for a meter alone on its port");

static uint8_t MAC[6] = {EM_MAC};
static const uint8_t COLLECTOR_IP[4] = {EM_COLLECTOR_IP};

// ---- reset cause -----------------------------------------------------------------------------
// MCUSR as the bootloader left it (the stock one clears it), and the marker that survives a reset.
uint8_t g_mcusr __attribute__((section(".noinit")));
em::ResetMarker g_marker __attribute__((section(".noinit")));
void early_init() __attribute__((naked, used, section(".init3")));
void early_init() {
    g_mcusr = MCUSR;
    MCUSR = 0;
    wdt_disable();
}

// Set while the boot nonce is gathered: the watchdog then only ticks, and each tick samples the
// crystal-clocked timer against the watchdog's own free-running oscillator.
static volatile bool g_gathering = false;
static volatile uint16_t g_jitter = 0;
static volatile bool g_jitter_ready = false;

// The watchdog first interrupts, then resets: the interrupt records what it cut short.
ISR(WDT_vect) {
    if (g_gathering) {
        g_jitter = TCNT1 ^ (static_cast<uint16_t>(TCNT0) << 8);
        g_jitter_ready = true;
        return;
    }
    em::reset_marker_expect(g_marker, em::RESET_WATCHDOG);
    wdt_enable(WDTO_15MS);
    for (;;) {
    }
}

static void watchdog_start() {
    wdt_enable(WDTO_8S);
    WDTCSR |= _BV(WDIE);
}

static void stage(em::Stage s) {
    em::reset_marker_stage(g_marker, s);
}

// ---- state -----------------------------------------------------------------------------------
static uint8_t g_ring_memory[EM_RING_READINGS * em::RECORD_LEN];
static uint8_t g_chunk[256];

static AvrEeprom g_eeprom;
static em::BootBook g_boots(g_eeprom);
static SdSegments g_files(EM_SD_CS_PIN);
static em::SegmentedMedia g_media(g_files, EM_SEGMENT_READINGS * em::RECORD_LEN);
static em::SpillLog g_log(g_media);
static em::RecordRing g_ring(g_ring_memory, EM_RING_READINGS);
static em::Store* g_store = nullptr;
static em::Uplink* g_uplink = nullptr;
static em::Uptime g_uptime;
static em::ResetReport g_reset;
static uint32_t g_boot_nonce = 0;

static HardwareLink g_link1(Serial1);
static HardwareLink g_link2(Serial2);
static HardwareLink g_link3(Serial3);
static em::SerialLink* const LINKS[em::MAX_BUSES] = {&g_link1, &g_link2, &g_link3};
static const em::PollTiming POLL_TIMING = {
    EM_METER_TIMEOUT_MS * 1000UL, em::modbus_gap_us(9600, 10),
    em::wire_time_us(em::REQUEST_LEN + em::PZEM_REPLY_LEN, 9600, 10)};
static em::MeterPoller g_poller(METERS, EM_METER_COUNT, LINKS, POLL_TIMING);
static em::PollClock g_poll_clock(EM_POLL_INTERVAL_MS);

static uint32_t g_seq = 0;
static uint32_t g_meter_errors[EM_METER_COUNT];
static uint32_t g_missed_polls = 0;
static bool g_meter_ok[EM_METER_COUNT];
static em::SendResult g_last_result = em::SEND_IDLE;
static uint64_t g_card_tried_ms = 0;
static uint32_t g_card_wait_ms = EM_CARD_RETRY_MS;

static void service_meters();
static EthernetTransport g_transport(COLLECTOR_IP, EM_COLLECTOR_PORT, EM_SEND_STALL_MS,
                                     service_meters);
static const NicSettings NIC = {
    MAC,
    EM_USE_DHCP != 0,
    IPAddress(EM_STATIC_IP),
    IPAddress(EM_STATIC_DNS),
    IPAddress(EM_STATIC_GATEWAY),
    IPAddress(EM_STATIC_SUBNET),
    EM_DHCP_TIMEOUT_MS,
    EM_DHCP_RESPONSE_MS,
    EM_RETRANSMISSION_MS,
    EM_RETRANSMISSIONS,
    EM_CONNECT_TIMEOUT_MS,
};
static W5100Nic g_nic(NIC, g_transport);
static const em::NetworkConfig NETWORK = {
    EM_USE_DHCP != 0, EM_LEASE_RETRY_MS, EM_REINIT_AFTER_MS, EM_LAST_RESORT_MS};
static em::Network g_network(g_nic, NETWORK);

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

static uint64_t uptime() {
    return g_uptime.update(millis());
}

// ---- console ---------------------------------------------------------------------------------
static void print_flash(em::FlashStr s) {
    Serial.print(reinterpret_cast<const __FlashStringHelper*>(s.p));
}

static void print_flash(const char* s) {
    Serial.print(reinterpret_cast<const __FlashStringHelper*>(s));
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
    Serial.print(F(" nonce "));
    Serial.print(g_boot_nonce);
    Serial.print(F(" seq "));
    Serial.print(g_seq);
    Serial.print(F(" ram "));
    Serial.print(g_store->in_ram());
    Serial.print('/');
    Serial.print(EM_RING_READINGS);
    Serial.print(F(" card "));
    if (g_store->card_usable()) {
        Serial.print(g_store->on_card());
        Serial.print(F(" in "));
        Serial.print(g_media.segments());
        Serial.print(F(" files"));
    } else {
        Serial.print(F("none"));
    }
    Serial.print(F(" card failures "));
    Serial.print(g_store->card_failures());
    Serial.print(F(" dropped "));
    Serial.print(g_store->dropped());
    Serial.print(F(" missed polls "));
    Serial.print(g_missed_polls);
    Serial.print(F(" ip "));
    Serial.print(Ethernet.localIP());
    Serial.print(F(" lease requests "));
    Serial.print(g_network.lease_requests());
    Serial.print(F(" chip resets "));
    Serial.print(g_network.reinits());
    Serial.print(F(" collector "));
    print_flash(em::send_result_name(g_last_result));
    Serial.print(F(" http "));
    Serial.print(g_uplink->status());
    Serial.print(F(" failures "));
    Serial.print(g_uplink->failures());
    Serial.print(F(" watchdog resets "));
    Serial.print(g_marker.watchdog_total);
    Serial.print('/');
    Serial.print(g_marker.watchdog_streak);
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
    void on_measurement(uint8_t meter, const em::Measurement& m, uint32_t age_us) override {
        em::Reading r;
        r.boot = g_boots.boot();
        r.seq = ++g_seq;
        r.uptime_ms = uptime() - age_us / 1000u;
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
// Polls a blocking call made impossible are counted as errors of every meter.
static void service_meters() {
    wdt_reset();
    uint32_t missed = 0;
    if (!g_poller.busy() && g_poll_clock.due(uptime(), &missed)) {
        g_poller.start_cycle(micros());
        if (missed > 0) {
            g_missed_polls += missed;
            for (uint8_t i = 0; i < EM_METER_COUNT; ++i) {
                g_meter_errors[i] += missed;
            }
        }
    }
    g_poller.service(micros(), g_readings);
}

// ---- network, card, recovery -----------------------------------------------------------------
static void service_network() {
    bool was_up = g_network.up();
    stage(em::STAGE_DHCP);
    bool up = g_network.service(uptime());
    stage(em::STAGE_NETWORK);
    if (up != was_up) {
        stamp();
        Serial.print(up ? F("network up, ip ") : F("network down, ip "));
        Serial.println(Ethernet.localIP());
    }
    if (!up) {
        return;
    }
    stage(em::STAGE_SEND);
    uint64_t now = uptime();
    em::SendResult r = g_uplink->step(g_transport, now, g_meter_errors,
                                      static_cast<uint16_t>(random(0x10000L)));
    stage(em::STAGE_NETWORK);
    if (r == em::SEND_IDLE) {
        return;
    }
    // Any HTTP answer shows the network and the chip work, whatever the collector said; a card
    // that could not be read says nothing about the network.
    if (r != em::SEND_STORE_FAILED) {
        g_network.collector_result(uptime(), r == em::SEND_ACKED || r == em::SEND_HEARTBEAT ||
                                                 r == em::SEND_REFUSED || r == em::SEND_BAD_REPLY);
    }
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

static bool start_card() {
    stage(em::STAGE_CARD);
    bool ok = g_files.begin() && g_media.begin() && g_log.open();
    wdt_reset();
    stage(em::STAGE_IDLE);
    return ok;
}

// A card that failed (pulled, worn, a write the card did not confirm) is started again after a
// back-off, so one bad moment does not leave the device without its buffer until a reboot.
static void service_card() {
#if EM_USE_SD
    uint64_t now = uptime();
    if (g_log.usable() || now - g_card_tried_ms < g_card_wait_ms) {
        return;
    }
    g_card_tried_ms = now;
    bool ok = start_card();
    stamp();
    Serial.print(F("SD card "));
    Serial.println(ok ? F("back") : F("still failing"));
    g_card_wait_ms = ok ? EM_CARD_RETRY_MS
                        : (g_card_wait_ms < EM_CARD_RETRY_MAX_MS / 2 ? g_card_wait_ms * 2u
                                                                     : EM_CARD_RETRY_MAX_MS);
#endif
}

static void service_recovery() {
    uint64_t now = uptime();
    if (now >= EM_HEALTHY_AFTER_MS && g_uplink->failures() == 0 && g_network.up()) {
        em::reset_marker_healthy(g_marker);
    }
    // The last resort, only when it loses nothing: the boot is anchored, so its readings on the
    // card stay sendable after the reset.
    if (g_network.wants_board_reset(now) && g_uplink->anchored() && g_store->card_usable() &&
        g_store->flush_to_card()) {
        stamp();
        Serial.println(F("network still wedged after chip resets: resetting the board"));
        Serial.flush();
        em::reset_marker_expect(g_marker, em::RESET_REQUESTED);
        wdt_disable();
        wdt_enable(WDTO_15MS);
        for (;;) {
        }
    }
}

// ---- start-up --------------------------------------------------------------------------------
// The boot nonce from what an AVR has of noise: the watchdog's RC oscillator drifts against the
// crystal, so the timer read at each watchdog tick varies in its low bits; floating analog inputs
// add their conversion noise.
static uint32_t gather_nonce() {
    em::EntropyPool pool;
    cli();
    wdt_reset();
    WDTCSR = _BV(WDCE) | _BV(WDE);
    WDTCSR = _BV(WDIE);
    g_gathering = true;
    sei();
    while (pool.samples() < 64) {
        if (g_jitter_ready) {
            g_jitter_ready = false;
            pool.add(g_jitter);
            pool.add(static_cast<uint16_t>(analogRead(A15)));
        }
    }
    cli();
    g_gathering = false;
    wdt_reset();
    WDTCSR = _BV(WDCE) | _BV(WDE);
    WDTCSR = 0;
    sei();
    pool.add(static_cast<uint16_t>(micros()));
    return pool.nonce();
}

static void wait_after_watchdog_loop() {
    uint32_t wait = em::watchdog_backoff_ms(g_marker.watchdog_streak);
    if (wait == 0) {
        return;
    }
    Serial.print(F("repeated watchdog resets: waiting "));
    Serial.print(wait / 1000u);
    Serial.println(F(" s before starting"));
    uint32_t from = millis();
    while (millis() - from < wait) {
        wdt_reset();
        digitalWrite(EM_LED_PIN, (millis() / 100u) % 2u == 0 ? HIGH : LOW);
    }
}

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

    g_reset = em::reset_report_at_boot(g_marker, g_mcusr);
    Serial.print(F("energymon firmware, device "));
    print_flash(em::FlashStr{DEVICE_NAME});
    Serial.print(F(", reset by "));
    print_flash(em::reset_cause_name(g_reset.cause));
    if (g_reset.cause == em::RESET_WATCHDOG) {
        Serial.print(F(" in stage "));
        Serial.print(static_cast<uint8_t>(g_reset.stage));
    }
    Serial.print(F(", watchdog resets "));
    Serial.print(g_reset.watchdog_resets);
    Serial.println();
    watchdog_start();
    wait_after_watchdog_loop();

    g_boot_nonce = gather_nonce();
    watchdog_start();
    uint32_t boot = g_boots.begin();
    stamp();
    Serial.print(F("boot "));
    Serial.print(boot);
    Serial.print(F(", nonce "));
    Serial.println(g_boot_nonce);

    bool card = false;
#if EM_USE_SD
    card = start_card();
#endif
    static em::Store store(g_ring, EM_USE_SD ? &g_log : nullptr, boot, g_boots, EM_SPILL_CHUNK);
    static em::Uplink uplink(UPLINK, store, g_boots, g_chunk, sizeof(g_chunk));
    uplink.set_boot_nonce(g_boot_nonce);
    uplink.set_reset_report(&g_reset);
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
    stage(em::STAGE_NETWORK);
    g_nic.begin();
    wdt_reset();
    stamp();
    Serial.println(g_nic.present() ? F("Ethernet shield found") : F("no Ethernet shield found"));
    randomSeed(g_boot_nonce);
}

void loop() {
    stage(em::STAGE_METERS);
    service_meters();
    // The network waits while a poll cycle runs, so the cycle keeps its wire timing.
    if (!g_poller.busy()) {
        service_network();
        service_card();
        service_recovery();
    }
    stage(em::STAGE_IDLE);
    if (Serial.available() > 0 && Serial.read() == 's') {
        print_status();
    }
    bool meters_ok = true;
    for (uint8_t i = 0; i < EM_METER_COUNT; ++i) {
        meters_ok = meters_ok && g_meter_ok[i];
    }
    bool collector_ok = g_uplink->failures() == 0;
    digitalWrite(EM_LED_PIN,
                 em::led_on(em::overall_health(g_network.up(), collector_ok, meters_ok), millis())
                     ? HIGH
                     : LOW);
}

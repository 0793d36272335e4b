// The one file to edit before flashing: where the collector is, who this device is, how it
// reaches the network, and which meters it reads. docs/firmware.md explains every entry.
#ifndef EM_CONFIG_H
#define EM_CONFIG_H

// ---- Collector ---------------------------------------------------------------------------------
// By IP address, never by name: DNS lookups block the loop.
#define EM_COLLECTOR_IP 192, 168, 1, 10
#define EM_COLLECTOR_PORT 8080

// ---- This device -------------------------------------------------------------------------------
// The name must be listed in the collector's device keys (ENERGYMON_DEVICE_KEYS) with this key.
#define EM_DEVICE_NAME "mega-01"
#define EM_DEVICE_KEY "change-me"

// ---- Network -----------------------------------------------------------------------------------
// Every device on the LAN needs its own MAC; shields often carry one on a sticker.
#define EM_MAC 0xDE, 0xAD, 0xBE, 0xEF, 0xFE, 0x01
// 1: DHCP (renewed with Ethernet.maintain()); 0: the static addresses below.
#define EM_USE_DHCP 1
#define EM_STATIC_IP 192, 168, 1, 50
#define EM_STATIC_DNS 192, 168, 1, 1
#define EM_STATIC_GATEWAY 192, 168, 1, 1
#define EM_STATIC_SUBNET 255, 255, 255, 0

// ---- Meters ------------------------------------------------------------------------------------
// Up to three PZEM-004T v3. PORT is the Mega's hardware serial port (1, 2 or 3); meters on the
// same port share that bus and need distinct Modbus addresses (0x01..0xF7; 0xF8 only alone).
#define EM_METER_COUNT 3
#define EM_METER1_NAME "pzem1"
#define EM_METER1_PORT 1
#define EM_METER1_ADDRESS 0x01
#define EM_METER2_NAME "pzem2"
#define EM_METER2_PORT 2
#define EM_METER2_ADDRESS 0x01
#define EM_METER3_NAME "pzem3"
#define EM_METER3_PORT 3
#define EM_METER3_ADDRESS 0x01

// ---- Timing (milliseconds) ---------------------------------------------------------------------
#define EM_POLL_INTERVAL_MS 1000UL
#define EM_METER_TIMEOUT_MS 100UL
#define EM_SEND_INTERVAL_MS 1000UL
#define EM_HEARTBEAT_MS 30000UL
#define EM_REPLY_TIMEOUT_MS 5000UL
#define EM_CONNECT_TIMEOUT_MS 1000U
#define EM_BACKOFF_BASE_MS 1000UL
#define EM_BACKOFF_MAX_MS 60000UL

// ---- Buffering ---------------------------------------------------------------------------------
// Readings held in RAM (36 bytes each) before they spill to the SD card.
#define EM_RING_READINGS 80
// Readings moved to the card in one write; readings per request.
#define EM_SPILL_CHUNK 16
#define EM_BATCH_MAX 50
// 0 runs without the card even if one is inserted.
#define EM_USE_SD 1

// ---- Pins and console --------------------------------------------------------------------------
#define EM_SD_CS_PIN 4
#define EM_ETHERNET_CS_PIN 10
#define EM_LED_PIN 13
#define EM_CONSOLE_BAUD 115200UL

#endif

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

// DHCP: how long one lease request may block (the whole exchange, and one reply), and how often
// it is retried while there is no lease. A request must end well inside the watchdog window.
#define EM_DHCP_TIMEOUT_MS 2500U
#define EM_DHCP_RESPONSE_MS 1000U
#define EM_LEASE_RETRY_MS 30000UL

// ---- Meters ------------------------------------------------------------------------------------
// Up to three PZEM-004T v3. PORT is the Mega's hardware serial port (Serial1..Serial3). A meter
// alone on its port can use the general address 0xF8, which every module answers whatever address
// it was set to. Meters sharing a port need their own addresses, set beforehand (see
// docs/firmware.md). The build stops on the broadcast address 0x00, on duplicates on one port,
// and on the general address on a shared port.
#define EM_METER_COUNT 3
#define EM_METER1_NAME "pzem1"
#define EM_METER1_PORT 1
#define EM_METER1_ADDRESS 0xF8
#define EM_METER2_NAME "pzem2"
#define EM_METER2_PORT 2
#define EM_METER2_ADDRESS 0xF8
#define EM_METER3_NAME "pzem3"
#define EM_METER3_PORT 3
#define EM_METER3_ADDRESS 0xF8

// ---- Timing (milliseconds) ---------------------------------------------------------------------
#define EM_POLL_INTERVAL_MS 1000UL
#define EM_METER_TIMEOUT_MS 100UL
#define EM_SEND_INTERVAL_MS 1000UL
#define EM_HEARTBEAT_MS 30000UL
#define EM_REPLY_TIMEOUT_MS 5000UL
#define EM_CONNECT_TIMEOUT_MS 1000U
// The W5100's first retransmission timeout and the number of retries; the chip doubles the
// timeout on every retry (docs/firmware.md gives the total a dead peer costs).
#define EM_RETRANSMISSION_MS 200U
#define EM_RETRANSMISSIONS 2
// A collector that stops reading: the send is abandoned when no TX space frees up this long.
#define EM_SEND_STALL_MS 2000U
#define EM_BACKOFF_BASE_MS 1000UL
#define EM_BACKOFF_MAX_MS 60000UL

// ---- Recovery ----------------------------------------------------------------------------------
// Collector out of reach (or no network) this long: the W5100 is reset and set up again, and again
// after as long. After the last-resort period the board resets itself through the watchdog, but
// only once this boot is anchored and the card holds the readings, so nothing is lost by it.
#define EM_REINIT_AFTER_MS 600000UL
#define EM_LAST_RESORT_MS 3600000UL
// A card that failed is started again after this, doubling up to the cap.
#define EM_CARD_RETRY_MS 60000UL
#define EM_CARD_RETRY_MAX_MS 1800000UL
// A run this long without trouble ends a series of watchdog resets (and its start-up back-off).
#define EM_HEALTHY_AFTER_MS 600000UL

// ---- Buffering ---------------------------------------------------------------------------------
// Readings held in RAM (36 bytes each) before they spill to the SD card.
#define EM_RING_READINGS 80
// Readings moved to the card in one write; readings per request.
#define EM_SPILL_CHUNK 16
#define EM_BATCH_MAX 50
// 0 runs without the card even if one is inserted.
#define EM_USE_SD 1
// Readings per segment file on the card: bounds the cluster chain SD 1.x walks on a seek back.
#define EM_SEGMENT_READINGS 28672UL

// ---- Pins and console --------------------------------------------------------------------------
#define EM_SD_CS_PIN 4
#define EM_ETHERNET_CS_PIN 10
#define EM_LED_PIN 13
#define EM_CONSOLE_BAUD 115200UL

#endif

#!/usr/bin/env bash
# The firmware's CI: host unit tests, the core and its tests built for the ATmega2560 and run
# under simavr, the whole sketch compiled against Debian's Arduino AVR core and SPI plus the real
# Ethernet and SD libraries of ../shared/arduino-libraries, flash and static RAM reported, and a
# failure if static RAM exceeds 6 KB. Needs: g++ make python3 gcc-avr avr-libc
# arduino-core-avr simavr (Debian packages).
set -euo pipefail
cd "$(dirname "$0")"

echo "== host unit tests (g++, ASan/UBSan, golden files of tests/contract/golden) =="
make --no-print-directory -s test

echo "== portable core for the ATmega2560 (avr-gcc $(avr-gcc -dumpversion)) =="
make --no-print-directory -s avr-core

echo "== unit tests on the ATmega2560 under simavr =="
make --no-print-directory -s avr-test
make --no-print-directory -s simavr

echo "== whole sketch against arduino-core-avr, SPI, Ethernet 2.0.2 and SD 1.3.0 =="
make --no-print-directory -s sketch

echo "== SD log per batch on the ATmega2560 under simavr: real SD 1.3.0, simulated card =="
bash tools/sd_cost.sh build/sketch

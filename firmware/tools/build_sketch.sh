#!/usr/bin/env bash
# Compile and link the whole sketch for the ATmega2560 against Debian's arduino-core-avr, with the
# compile-only Ethernet/SD stand-ins of firmware/shim, then report flash and static RAM and fail
# if static RAM, plus an allowance for the real Ethernet and SD libraries, exceeds the budget.
set -euo pipefail

OUT=${1:-build/sketch}
HERE=$(cd "$(dirname "$0")/.." && pwd)
AVR_CORE=${ARDUINO_AVR_CORE:-/usr/share/arduino/hardware/arduino/avr}
RAM_BUDGET=6144
# Static RAM of the real libraries that the stand-ins do not have, from their sources:
# SD 1.2.4 ~600 B (the 512-byte block cache, volume, card and root objects), Ethernet 2.0.2
# ~240 B (DHCP state and its UDP socket, socket table, server ports, vtables). Rounded up.
LIB_ALLOWANCE=1024

if [[ ! -f "$AVR_CORE/cores/arduino/Arduino.h" ]]; then
    echo "arduino-core-avr not found at $AVR_CORE (apt-get install arduino-core-avr)" >&2
    exit 2
fi

mkdir -p "$OUT/core" "$OUT/sketch"
DEFS=(-mmcu=atmega2560 -DF_CPU=16000000L -DARDUINO=10807 -DARDUINO_AVR_MEGA2560 -DARDUINO_ARCH_AVR)
INC=(-I"$AVR_CORE/cores/arduino" -I"$AVR_CORE/variants/mega")
# The Arduino IDE's flags for this core (platform.txt), without LTO, which Debian's avr-gcc 5.4
# toolchain does not ship a linker plugin for.
CFLAGS=(-c -g -Os -w -std=gnu11 -ffunction-sections -fdata-sections)
CXXFLAGS=(-c -g -Os -std=gnu++11 -fpermissive -fno-exceptions -ffunction-sections -fdata-sections
          -fno-threadsafe-statics -Wno-error=narrowing)
SKETCH_WARN=(-Wall -Wextra -Werror -Wno-error=unused-parameter)

objs=()
for src in "$AVR_CORE"/cores/arduino/*.c "$AVR_CORE"/cores/arduino/*.cpp "$AVR_CORE"/cores/arduino/*.S; do
    obj="$OUT/core/$(basename "$src").o"
    case "$src" in
        *.c) avr-gcc "${CFLAGS[@]}" "${DEFS[@]}" "${INC[@]}" "$src" -o "$obj" ;;
        # avr-libc's float.h (found before GCC's) lacks DECIMAL_DIG, which WString.cpp of core
        # 1.8.7 expects; the compiler's own value is the right one.
        *.cpp) avr-g++ "${CXXFLAGS[@]}" -w -DDECIMAL_DIG=__DECIMAL_DIG__ "${DEFS[@]}" "${INC[@]}" "$src" -o "$obj" ;;
        *.S) avr-gcc -c -g -x assembler-with-cpp "${DEFS[@]}" "${INC[@]}" "$src" -o "$obj" ;;
    esac
    objs+=("$obj")
done
rm -f "$OUT/core.a"
avr-gcc-ar rcs "$OUT/core.a" "${objs[@]}" 2>/dev/null || avr-ar rcs "$OUT/core.a" "${objs[@]}"

SK="$HERE/energymon_mega"
SINC=(-I"$HERE/shim" -I"$SK")
sketch_objs=()
# The .ino is valid C++ as written (no generated prototypes needed); the IDE adds Arduino.h.
avr-g++ "${CXXFLAGS[@]}" "${SKETCH_WARN[@]}" "${DEFS[@]}" "${INC[@]}" "${SINC[@]}" \
    -x c++ -include Arduino.h "$SK/energymon_mega.ino" -o "$OUT/sketch/energymon_mega.ino.o"
sketch_objs+=("$OUT/sketch/energymon_mega.ino.o")
for src in "$SK"/*.cpp "$SK"/src/core/*.cpp; do
    obj="$OUT/sketch/$(basename "$src").o"
    avr-g++ "${CXXFLAGS[@]}" "${SKETCH_WARN[@]}" "${DEFS[@]}" "${INC[@]}" "${SINC[@]}" "$src" -o "$obj"
    sketch_objs+=("$obj")
done
avr-g++ "${CXXFLAGS[@]}" -w "${DEFS[@]}" "${INC[@]}" "${SINC[@]}" "$HERE/shim/shim.cpp" -o "$OUT/sketch/shim.o"
sketch_objs+=("$OUT/sketch/shim.o")

avr-gcc -Os -g -Wl,--gc-sections -mmcu=atmega2560 -o "$OUT/energymon_mega.elf" \
    "${sketch_objs[@]}" "$OUT/core.a" -lm
avr-objcopy -O ihex -R .eeprom "$OUT/energymon_mega.elf" "$OUT/energymon_mega.hex"

section() {
    avr-size -A "$OUT/energymon_mega.elf" | awk -v s="$1" '$1 == s { print $2; found=1 } END { if (!found) print 0 }'
}
text=$(section .text)
data=$(section .data)
bss=$(section .bss)
noinit=$(section .noinit)
static=$((data + bss + noinit))
projected=$((static + LIB_ALLOWANCE))
ring_hex=$(avr-nm -S -C "$OUT/energymon_mega.elf" | awk '/g_ring_memory/ { print $2 }')
ring=$((16#${ring_hex:-0}))

echo "== firmware image: energymon_mega.elf (ATmega2560) =="
avr-size -C --mcu=atmega2560 "$OUT/energymon_mega.elf" | sed -n '/Program/,/Data/p'
echo "flash: $((text + data)) bytes of 253952 (.text $text + .data $data)"
echo "static RAM (.data+.bss+.noinit) of this image: $static bytes (RAM ring: ${ring:-?} bytes)"
echo "  + allowance for the real Ethernet and SD libraries: $LIB_ALLOWANCE bytes"
echo "  = projected static RAM on the board: $projected bytes of 8192; budget $RAM_BUDGET"
echo "  leaves for stack and heap: $((8192 - projected)) bytes"
echo "compiled: the sketch, its glue, the core, the Arduino AVR core (Debian arduino-core-avr);"
echo "stand-ins, not compiled: the Ethernet and SD libraries (firmware/shim)."
if (( static > RAM_BUDGET )); then
    echo "FAIL: static RAM $static > $RAM_BUDGET" >&2
    exit 1
fi
if (( projected > RAM_BUDGET )); then
    echo "FAIL: projected static RAM $projected > $RAM_BUDGET" >&2
    exit 1
fi

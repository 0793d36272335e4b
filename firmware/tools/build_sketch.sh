#!/usr/bin/env bash
# Compile and link the whole sketch for the ATmega2560 as the Arduino IDE would: Debian's
# arduino-core-avr with its SPI library, and the real Ethernet 2.0.2 and SD 1.3.0 libraries from
# ../shared/arduino-libraries (next to the repository). Our code is built with -Wall -Wextra
# -Werror, the third-party code with the IDE's own flags. Reports flash and static RAM and fails
# if static RAM exceeds the budget.
set -euo pipefail

OUT=${1:-build/sketch}
HERE=$(cd "$(dirname "$0")/.." && pwd)
AVR_CORE=${ARDUINO_AVR_CORE:-/usr/share/arduino/hardware/arduino/avr}
LIBS=${ARDUINO_LIBRARIES:-$HERE/../../shared/arduino-libraries}
RAM_BUDGET=6144

if [[ ! -f "$AVR_CORE/cores/arduino/Arduino.h" ]]; then
    echo "arduino-core-avr not found at $AVR_CORE (apt-get install arduino-core-avr)" >&2
    exit 2
fi
if [[ ! -f "$LIBS/Ethernet/src/Ethernet.h" || ! -f "$LIBS/SD/src/SD.h" ]]; then
    echo "FAIL: the Arduino Ethernet and SD libraries are not at $LIBS" >&2
    echo "  CI places a read-only copy of shared/ beside the repository (../shared/arduino-libraries);" >&2
    echo "  elsewhere install Ethernet@2.0.2 and SD@1.3.0 and set ARDUINO_LIBRARIES to their parent." >&2
    exit 2
fi
LIBS=$(cd "$LIBS" && pwd)
SPI_DIR="$AVR_CORE/libraries/SPI/src"

mkdir -p "$OUT/core" "$OUT/libs" "$OUT/sketch"
DEFS=(-mmcu=atmega2560 -DF_CPU=16000000L -DARDUINO=10807 -DARDUINO_AVR_MEGA2560 -DARDUINO_ARCH_AVR)
INC=(-I"$AVR_CORE/cores/arduino" -I"$AVR_CORE/variants/mega")
LIB_INC=(-I"$SPI_DIR" -I"$LIBS/Ethernet/src" -I"$LIBS/SD/src")
# The Arduino IDE's flags for this core (platform.txt), without LTO, which Debian's avr-gcc 5.4
# toolchain does not ship a linker plugin for.
CFLAGS=(-c -g -Os -w -std=gnu11 -ffunction-sections -fdata-sections)
CXXFLAGS=(-c -g -Os -std=gnu++11 -fpermissive -fno-exceptions -ffunction-sections -fdata-sections
          -fno-threadsafe-statics -Wno-error=narrowing)
OUR_WARN=(-Wall -Wextra -Werror)

compile_third_party() {  # source, object directory
    local src=$1 obj="$2/$(basename "$1").o"
    case "$src" in
        *.c) avr-gcc "${CFLAGS[@]}" "${DEFS[@]}" "${INC[@]}" "${LIB_INC[@]}" "$src" -o "$obj" ;;
        # avr-libc's float.h (found before GCC's) lacks DECIMAL_DIG, which WString.cpp of core
        # 1.8.7 expects; the compiler's own value is the right one.
        *.cpp) avr-g++ "${CXXFLAGS[@]}" -w -DDECIMAL_DIG=__DECIMAL_DIG__ "${DEFS[@]}" "${INC[@]}" \
                   "${LIB_INC[@]}" "$src" -o "$obj" ;;
        *.S) avr-gcc -c -g -x assembler-with-cpp "${DEFS[@]}" "${INC[@]}" "$src" -o "$obj" ;;
    esac
    echo "$obj"
}

objs=()
for src in "$AVR_CORE"/cores/arduino/*.c "$AVR_CORE"/cores/arduino/*.cpp "$AVR_CORE"/cores/arduino/*.S; do
    objs+=("$(compile_third_party "$src" "$OUT/core")")
done
rm -f "$OUT/core.a"
avr-gcc-ar rcs "$OUT/core.a" "${objs[@]}" 2>/dev/null || avr-ar rcs "$OUT/core.a" "${objs[@]}"

lib_objs=()
for src in "$SPI_DIR"/*.cpp "$LIBS"/Ethernet/src/*.cpp "$LIBS"/Ethernet/src/utility/*.cpp \
           "$LIBS"/SD/src/*.cpp "$LIBS"/SD/src/utility/*.cpp; do
    lib_objs+=("$(compile_third_party "$src" "$OUT/libs")")
done

SK="$HERE/energymon_mega"
SINC=(-I"$SK")
sketch_objs=()
# The .ino is valid C++ as written (no generated prototypes needed); the IDE adds Arduino.h.
avr-g++ "${CXXFLAGS[@]}" "${OUR_WARN[@]}" "${DEFS[@]}" "${INC[@]}" "${LIB_INC[@]}" "${SINC[@]}" \
    -x c++ -include Arduino.h "$SK/energymon_mega.ino" -o "$OUT/sketch/energymon_mega.ino.o"
sketch_objs+=("$OUT/sketch/energymon_mega.ino.o")
for src in "$SK"/*.cpp "$SK"/src/core/*.cpp; do
    obj="$OUT/sketch/$(basename "$src").o"
    avr-g++ "${CXXFLAGS[@]}" "${OUR_WARN[@]}" "${DEFS[@]}" "${INC[@]}" "${LIB_INC[@]}" "${SINC[@]}" \
        "$src" -o "$obj"
    sketch_objs+=("$obj")
done

avr-gcc -Os -g -Wl,--gc-sections -mmcu=atmega2560 -o "$OUT/energymon_mega.elf" \
    "${sketch_objs[@]}" "${lib_objs[@]}" "$OUT/core.a" -lm
avr-objcopy -O ihex -R .eeprom "$OUT/energymon_mega.elf" "$OUT/energymon_mega.hex"

section() {
    avr-size -A "$OUT/energymon_mega.elf" | awk -v s="$1" '$1 == s { print $2; found=1 } END { if (!found) print 0 }'
}
text=$(section .text)
data=$(section .data)
bss=$(section .bss)
noinit=$(section .noinit)
static=$((data + bss + noinit))
ring_hex=$(avr-nm -S -C "$OUT/energymon_mega.elf" | awk '/g_ring_memory/ { print $2 }')
ring=$((16#${ring_hex:-0}))

echo "== firmware image: energymon_mega.elf (ATmega2560) =="
avr-size -C --mcu=atmega2560 "$OUT/energymon_mega.elf" | sed -n '/Program/,/Data/p'
echo "flash: $((text + data)) bytes of 253952 (.text $text + .data $data)"
echo "static RAM (.data+.bss+.noinit): $static bytes of 8192; budget $RAM_BUDGET (RAM ring: ${ring} bytes)"
echo "  leaves for stack and heap: $((8192 - static)) bytes"
echo "compiled and linked: the sketch, its glue and core (-Wall -Wextra -Werror), the Arduino AVR core"
echo "and SPI (Debian arduino-core-avr), Ethernet $(sed -n 's/^version=//p' "$LIBS/Ethernet/library.properties")" \
     "and SD $(sed -n 's/^version=//p' "$LIBS/SD/library.properties") from $LIBS."
stack=$(python3 "$HERE/tools/stack_estimate.py" "$OUT/energymon_mega.elf" --indirect service_meters |
        tee "$OUT/stack.txt" | awk '/^stack estimate:/ { print $3 }')
echo "stack depth estimate (pessimistic, tools/stack_estimate.py): $stack bytes;" \
     "headroom left: $((8192 - static - stack)) bytes"
if (( static > RAM_BUDGET )); then
    echo "FAIL: static RAM $static > $RAM_BUDGET" >&2
    exit 1
fi
if (( 8192 - static - stack < 256 )); then
    echo "FAIL: less than 256 bytes between the stack estimate and static RAM" >&2
    exit 1
fi

#!/usr/bin/env bash
# The spill log's per-batch cost on the ATmega2560 under simavr, with the real SD 1.3.0 library
# (SdVolume, SdFile) over a simulated card (test/sdsim): one image per backlog length and cluster
# size, each at one day and at the longest backlog that cluster size allows (SegmentedMedia keeps
# the log to a bounded number of clusters). Reuses the objects of tools/build_sketch.sh in the
# same directory. Fails unless every run passes and the steady per-batch cost of the long backlog
# equals that of one day (CPU time within half a percent, blocks within one).
set -euo pipefail

OUT=${1:-build/sketch}
HERE=$(cd "$(dirname "$0")/.." && pwd)
AVR_CORE=${ARDUINO_AVR_CORE:-/usr/share/arduino/hardware/arduino/avr}
LIBS=$(cd "${ARDUINO_LIBRARIES:-$HERE/../../shared/arduino-libraries}" && pwd)
SIMAVR=${SIMAVR:-simavr}
if [[ ! -f "$OUT/core.a" ]]; then
    echo "run tools/build_sketch.sh $OUT first" >&2
    exit 2
fi

DEFS=(-mmcu=atmega2560 -DF_CPU=16000000L -DARDUINO=10807 -DARDUINO_AVR_MEGA2560 -DARDUINO_ARCH_AVR)
INC=(-I"$AVR_CORE/cores/arduino" -I"$AVR_CORE/variants/mega" -I"$AVR_CORE/libraries/SPI/src"
     -I"$LIBS/Ethernet/src" -I"$LIBS/SD/src")
CXXFLAGS=(-c -g -Os -std=gnu++11 -fno-exceptions -ffunction-sections -fdata-sections
          -fno-threadsafe-statics -Wall -Wextra -Werror)
SIM="$OUT/sdsim"
mkdir -p "$SIM"

avr-g++ "${CXXFLAGS[@]}" "${DEFS[@]}" "${INC[@]}" "$HERE/test/sdsim/sim_card.cpp" -o "$SIM/sim_card.o"
ours=()
for o in "$OUT"/sketch/*.o; do
    [[ $(basename "$o") == energymon_mega.ino.o ]] || ours+=("$o")
done
libs=()
for o in "$OUT"/libs/*.o; do
    case $(basename "$o") in
        Sd2Card.cpp.o | SD.cpp.o | File.cpp.o) ;;
        *) libs+=("$o") ;;
    esac
done

status=0
for pair in ${SD_COST_CASES:-64:100 8:28 1:3}; do
    blocks=${pair%%:*}
    long=${pair##*:}
    declare -A avg=()
    for days in 1 "$long"; do
        name="sd_cost_${days}d_$((blocks * 512))"
        avr-g++ "${CXXFLAGS[@]}" "${DEFS[@]}" "${INC[@]}" -DEM_SIM_DAYS="${days}UL" \
            -DEM_SIM_CLUSTER_BLOCKS="$blocks" "$HERE/test/sdsim/sd_cost_avr.cpp" -o "$SIM/$name.o"
        avr-gcc -Os -Wl,--gc-sections -mmcu=atmega2560 -o "$SIM/$name.elf" "$SIM/$name.o" \
            "$SIM/sim_card.o" "${ours[@]}" "${libs[@]}" "$OUT/core.a" -lm
        log=$(timeout 300 "$SIMAVR" -m atmega2560 -f 16000000 "$SIM/$name.elf" 2>&1 |
              sed 's/\x1b\[[0-9;]*m//g; s/\.$//' | grep '^SDSIM' || true)
        echo "$log"
        if ! grep -q 'SDSIM RESULT: PASS' <<<"$log"; then
            echo "FAIL: $name did not pass" >&2
            status=1
        fi
        avg[$days]=$(awk '/batch_average/ { gsub(/[a-z_]+=|[.\r]/, ""); print $3, $4, $5 }' <<<"$log")
    done
    read -r cpu1 read1 written1 <<<"${avg[1]:-0 0 0}"
    read -r cpu2 read2 written2 <<<"${avg[$long]:-0 0 0}"
    if (( cpu1 == 0 || 200 * (cpu1 > cpu2 ? cpu1 - cpu2 : cpu2 - cpu1) > cpu1 ||
          (read1 > read2 ? read1 - read2 : read2 - read1) > 1 || written1 != written2 )); then
        echo "FAIL: per-batch cost differs: 1 day ${avg[1]}, $long days ${avg[$long]}" >&2
        status=1
    else
        echo "per-batch cost, $((blocks * 512)) B clusters: 1 day cpu ${cpu1} us, ${read1} blocks read," \
             "${written1} written; $long days cpu ${cpu2} us, ${read2} read, ${written2} written: the same"
    fi
done
exit $status

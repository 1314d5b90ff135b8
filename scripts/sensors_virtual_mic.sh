#!/usr/bin/env bash
# A virtual microphone without kernel modules: a private PulseAudio daemon with a null sink whose
# monitor is the default capture device, plus the 10 ms keep-alive stream an idle null sink needs.
#
#   eval "$(scripts/sensors_virtual_mic.sh start /tmp/vmic)"   # exports XDG_RUNTIME_DIR, HOME, PULSE_*
#   PULSE_SINK=vsink espeak-ng "hello"                          # play into the sink (or sox / paplay)
#   policystack sensors list                                    # PortAudio now lists 'pulse' and 'default'
#   scripts/sensors_virtual_mic.sh stop /tmp/vmic
#
# Needs: apt-get install --no-install-recommends pulseaudio pulseaudio-utils libasound2-plugins
# (tests and benchmarks do the same from Python: sensors/virtual_audio.py).
set -euo pipefail
cmd=${1:-}; D=${2:-/tmp/policystack-vmic}; RATE=${RATE:-16000}
case "$cmd" in
start)
  for t in pulseaudio pactl pacat; do command -v "$t" >/dev/null || { echo "missing $t: apt-get install pulseaudio pulseaudio-utils" >&2; exit 1; }; done
  mkdir -p "$D/run" "$D/home"; chmod 700 "$D/run"
  export XDG_RUNTIME_DIR="$D/run" HOME="$D/home" PULSE_SERVER="unix:$D/run/native" PULSE_SINK=vsink \
         PULSE_CLIENTCONFIG="$D/client.conf"
  echo "autospawn = no" > "$D/client.conf"
  cat > "$D/ci.pa" <<PA
load-module module-native-protocol-unix auth-anonymous=1 socket=$D/run/native
load-module module-null-sink sink_name=vsink rate=$RATE channels=1
set-default-sink vsink
set-default-source vsink.monitor
PA
  pulseaudio -n -F "$D/ci.pa" --daemonize=no --exit-idle-time=-1 --log-target=file:"$D/pulse.log" \
    </dev/null >/dev/null 2>&1 & echo $! > "$D/pulseaudio.pid"
  for _ in $(seq 1 200); do pactl info >/dev/null 2>&1 && break; sleep 0.05; done
  pactl info >/dev/null || { echo "pulseaudio did not start; see $D/pulse.log" >&2; exit 1; }
  pacat --playback --device=vsink --rate="$RATE" --channels=1 --format=s16le --latency-msec=10 </dev/zero \
    >/dev/null 2>&1 & echo $! > "$D/keepalive.pid"
  # the idle sink queued a ~2 s block before the keep-alive asked for 10 ms: wait for it to drain
  for _ in $(seq 1 100); do
    lat=$(pactl list sinks | sed -n 's/.*Latency: \([0-9]*\) usec.*/\1/p' | head -1)
    [ -n "$lat" ] && [ "$lat" -lt 50000 ] && break; sleep 0.05
  done
  for v in XDG_RUNTIME_DIR HOME PULSE_SERVER PULSE_SINK PULSE_CLIENTCONFIG; do echo "export $v='${!v}'"; done
  ;;
stop)
  for f in keepalive pulseaudio; do
    [ -f "$D/$f.pid" ] && kill "$(cat "$D/$f.pid")" 2>/dev/null || true; rm -f "$D/$f.pid"
  done
  ;;
*) echo "usage: $0 start|stop [dir]" >&2; exit 2 ;;
esac

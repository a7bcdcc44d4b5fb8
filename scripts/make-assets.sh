#!/usr/bin/env bash
# Makes the fake gateway's sample files with ffmpeg (Debian: apt-get install -y ffmpeg):
#   sample.png  640x360 picture of a sunset: the image users send in the demo and in tests
#   sample.mp4  4 s, 320x180, H.264, the same scene with the sun going down: what the fake
#               gateway serves as every finished task's video
# Both are drawn by ffmpeg's own filters (no input files) with bit-exact flags, so a rerun
# gives the same bytes with the same ffmpeg version. The outputs are committed; rerun this
# only to change them:  scripts/make-assets.sh [output-dir]
set -euo pipefail
dir="${1:-$(dirname "${BASH_SOURCE[0]}")/../overlays/kling_i2v/testing/assets}"
mkdir -p "$dir"
command -v ffmpeg >/dev/null || { echo "make-assets: ffmpeg not found (apt-get install -y ffmpeg)" >&2; exit 1; }

# The scene at time t: a sky gradient, a sun at height Y(t), the ground and a tree in front.
scene() {  # $1 = expression for the sun's centre height in pixels
  local sun="lt(hypot(X-430\,Y-($1))\,48)" k="min(Y/300\,1)"
  printf '%s' \
    "color=c=black:size=640x360:rate=24,format=rgb24," \
    "geq=r='if($sun\,255\,27+215*$k)':g='if($sun\,214\,31+109*$k)':b='if($sun\,120\,94-38*$k)'," \
    "drawbox=x=0:y=250:w=640:h=110:color=0x20302a:t=fill," \
    "drawbox=x=90:y=190:w=26:h=60:color=0x15201c:t=fill," \
    "drawbox=x=70:y=150:w=66:h=50:color=0x1d3a2c:t=fill"
}

in=(-hide_banner -loglevel error -y -f lavfi -i)
out=(-map_metadata -1 -fflags +bitexact -flags +bitexact)

ffmpeg "${in[@]}" "$(scene 210)" -frames:v 1 "${out[@]}" "$dir/sample.png"

ffmpeg "${in[@]}" "$(scene '210+15*T'),scale=320:180,format=yuv420p" \
  -t 4 -c:v libx264 -preset veryslow -crf 30 -tune stillimage -profile:v main \
  -threads 1 -movflags +faststart "${out[@]}" "$dir/sample.mp4"

ls -l "$dir/sample.png" "$dir/sample.mp4"

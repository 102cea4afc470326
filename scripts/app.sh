#!/usr/bin/env bash
# Set up on a fresh Linux machine, then start TL Studio on http://127.0.0.1:8501
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m streamlit run server.py "$@"  # app.py behind the upload gate (studio/access.py)

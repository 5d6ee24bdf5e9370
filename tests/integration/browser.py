"""Debian's Chromium for the browser tests: found on PATH, or installed with apt-get
when missing and we are root (as deploy/local/services.py does for redis-server)."""

from __future__ import annotations

import os
import shutil
import subprocess

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
"""Without the background-networking flags Chromium keeps trying Google's hosts, which a
closed network refuses (many connections at a time)."""


PACKAGES = ("chromium", "fonts-wqy-microhei")
"""Debian's Chromium, and a Chinese font: without one the desk's plates, place names and
texts to drivers are drawn as boxes."""


def chromium_executable() -> str:
    found = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if found and _has_chinese_font():
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        if found:
            return found  # (pages are still tested; only Chinese text shows as boxes)
        raise RuntimeError("Chromium is not installed (Debian: apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-q", *PACKAGES], env=env, check=True,
                   capture_output=True)
    found = shutil.which("chromium")
    if not found:
        raise RuntimeError("chromium is still not on PATH after installing it")
    return found


def _has_chinese_font() -> bool:
    if not shutil.which("fc-list"):
        return False
    listed = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True)
    return bool(listed.stdout.strip())

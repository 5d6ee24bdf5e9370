"""``python -m yrd_hazmat.uplink``: the uplink process (until SIGTERM or SIGINT)."""

from __future__ import annotations

import asyncio
import logging

from ..config import get_settings
from .process import run_until_signalled


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(run_until_signalled(get_settings()))


if __name__ == "__main__":
    main()

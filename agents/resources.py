"""Emergency resources at run time: every worker follows the compacted resources topic.

A task on every worker reads ``yrd.resources`` from its start over all partitions
(:class:`~yrd_hazmat.follow.Follower`, which reconnects by itself when the broker goes
away) and keeps following it, so a resource put out of service (or back) is proposed,
or no longer, from the next batch on; a null value removes the resource. Invalid
records are logged and leave the resources untouched. ``YRD_RESOURCES_FILE`` (read at
start) gives the first set; the topic adds to and overrides it.
"""

from __future__ import annotations

from yrd_hazmat.follow import Follower

from agents.app import app, settings
from agents.process_pings import processor


@app.task
async def follow_resources() -> None:
    """Follow the resources topic for as long as the worker runs."""
    await Follower(settings.kafka_options(), settings.topic_resources,
                   processor.resources.apply).run()

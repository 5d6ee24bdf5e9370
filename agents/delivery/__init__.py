"""How the worker gets its records and makes them durable: every adaptation of Faust and
aiokafka, in one package, so an upgrade of either is one reading.

- :mod:`.transport`: one Faust event per fetched partition batch, offsets committed by
  checkpoint (below), unreadable batches skipped, seeks on the consumer thread;
- :mod:`.positions`: where each partition's processing resumes, batches delivered again
  or from too far (sought back), and the watchdog for a partition that stops delivering;
- :mod:`.checkpoint`: the order that makes a batch durable across a kill -9;
- :mod:`.outputs`: records sent and tracked until the broker acknowledged them;
- :mod:`.private`: every private field of Faust and aiokafka this package touches, listed
  (``tests/unit/test_delivery_private.py`` checks them against the installed versions).

Batch delivery, in detail:

Faust delivers every Kafka record as its own event: the conductor, a channel
queue and the stream's drain loop run per record, which caps a worker at a few
thousand records per second whatever the rules cost. The transport extends Faust
where it is meant to be extended, its transport (registered under the URL
scheme ``yrdkafka://`` through the ``faust.transports`` entry point, the way
Faust registers its own), with a consumer that changes two things for the
topics an app declares *batched* (``app.batch_topics``):

- **Delivery**: all records fetched for one partition arrive as one
  :class:`BatchMessage` whose ``value`` is the list of aiokafka records, in
  offset order. Records of other topics are delivered one by one, as stock
  Faust does.
- **Commits**: Faust's per-record acknowledgement is off for batched topics
  (``acks=False`` on their topics). The consumer commits, for each partition,
  the offset the application declared *checkpointed* with
  :meth:`BatchConsumer.checkpointed`: every record below it has been processed
  and its effects (alerts, dead letters, vehicle state) acknowledged by the
  broker. Faust's own commit loop, its commit on rebalance and on stop then
  commit exactly that, never an offset whose records were dropped or still in
  flight (stock Faust acknowledges events it skips after a rebalance, and the
  event a stopping worker was processing).

Everything else is Faust's: group membership, rebalancing, table recovery,
seeking back to the committed offsets after a rebalance.
"""

from agents.delivery.transport import SCHEME, BatchConsumer, BatchMessage, Transport, register

__all__ = ["SCHEME", "BatchConsumer", "BatchMessage", "Transport", "register"]

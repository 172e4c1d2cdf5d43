"""The outbound federation queue: this node's PDUs and EDUs, delivered to each destination.

- :class:`FederationSender` (``sender.py``): ``enqueue_pdu``, ``enqueue_edu``, ``start``,
  ``wake_destination``, ``stop``; group-commits enqueued items to
  :class:`storage.federation_queue.FederationQueueStore`.
- :class:`DestinationQueue` (``destination.py``): one destination's loop (one transaction in
  flight, batches of <= 50 PDUs and <= 100 EDUs, back-off, catch-up).
- ``policy.py``: the limits, the back-off schedule and how a failed send is read.
- :class:`QueueExpiry` (``expiry.py``): what is queued longer than the maximum age is deleted
  and counted, never sent late.
"""

from federation.sender.destination import DestinationQueue
from federation.sender.policy import (
    MAX_EDUS_PER_TRANSACTION,
    MAX_PDUS_PER_TRANSACTION,
    MAX_RETRY_INTERVAL_MS,
    MIN_RETRY_INTERVAL_MS,
)
from federation.sender.sender import FederationSender

__all__ = [
    "DestinationQueue",
    "FederationSender",
    "MAX_EDUS_PER_TRANSACTION",
    "MAX_PDUS_PER_TRANSACTION",
    "MAX_RETRY_INTERVAL_MS",
    "MIN_RETRY_INTERVAL_MS",
]

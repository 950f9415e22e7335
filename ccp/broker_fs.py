"""`make run`'s embedded broker: kombu's file-system transport, with each message written whole.

kombu writes a message straight into the queue folder under its final name, so a consumer polling the
folder can open it half-written, fail to decode it, and stop consuming (seen with a rollout's driver,
which sends a message every few seconds). Here a message is written under a name no consumer matches,
flushed, then renamed into place: a rename within one folder is atomic, so a consumer sees a message
whole or not at all. Registered as the `ccpfs://` transport (ccp/celery.py); used when no Redis is set.
"""

import os
import uuid

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

SCHEME = "ccpfs"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(filesystem.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        # Consumers only look at names whose part after the first dot is "<queue>.msg": this one is not.
        partial = os.path.join(self.data_folder_out, f".partial-{uuid.uuid4().hex}")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
                f.flush()
                os.fsync(f.fileno())
            os.rename(partial, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            try:
                os.unlink(partial)
            except OSError:
                pass
            raise filesystem.ChannelError(f"Cannot add a message to {self.data_folder_out!r}") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> None:
    TRANSPORT_ALIASES.setdefault(SCHEME, "ccp.broker_fs:Transport")

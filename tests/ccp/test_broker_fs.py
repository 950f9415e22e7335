"""`make run`'s embedded broker (ccpfs://): a message is never seen half-written. A reader polling the
queue folder the way kombu's consumer does (list, pick `<…>.<queue>.msg`, read, decode) while large
messages are published never reads one it cannot decode; messages go through a real kombu queue."""

import json
import threading

from kombu import Connection
from kombu.transport import TRANSPORT_ALIASES

from ccp import broker_fs
from ccp.celery import app

QUEUE = "ccp-broker-test"


def connection(tmp_path) -> Connection:
    folder = tmp_path / "queue"
    folder.mkdir(exist_ok=True)
    (tmp_path / "processed").mkdir(exist_ok=True)
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "processed_folder": str(tmp_path / "processed"),
        "store_processed": False,
    }
    return Connection(f"{broker_fs.SCHEME}://", transport_options=options)


def test_the_transport_is_registered_wherever_the_celery_app_is_loaded():
    assert app.main == "ccp"
    assert TRANSPORT_ALIASES[broker_fs.SCHEME] == "ccp.broker_fs:Transport"


def test_a_polling_reader_never_sees_a_half_written_message(tmp_path):
    folder = tmp_path / "queue"
    stop, seen, broken = threading.Event(), set(), []

    def poll() -> None:
        while not stop.is_set():
            for name in sorted(p.name for p in folder.iterdir()) if folder.exists() else []:
                if name.partition(".")[2] != f"{QUEUE}.msg" or name in seen:
                    continue
                try:
                    data = (folder / name).read_bytes()
                except FileNotFoundError:
                    continue
                try:
                    json.loads(data)
                except ValueError:
                    broken.append((name, len(data)))
                seen.add(name)

    reader = threading.Thread(target=poll)
    big = "x" * (512 * 1024)  # large enough that a write takes several system calls
    with connection(tmp_path) as conn:
        reader.start()
        try:
            queue = conn.SimpleQueue(QUEUE)
            for n in range(120):
                queue.put({"n": n, "payload": big})
        finally:
            stop.set()
            reader.join()
        assert broken == []
        assert len(seen) >= 1
        # The messages arrive whole, in order, through kombu's own consumer.
        got = []
        for _ in range(120):
            message = queue.get(timeout=10)
            got.append(message.payload["n"])
            assert len(message.payload["payload"]) == len(big)
            message.ack()
        assert got == list(range(120))
        assert not [p for p in folder.iterdir() if p.name.startswith(".partial-")]

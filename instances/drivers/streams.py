"""File-like ends of a command's stdout and stdin, with bounded memory."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator

# Chunk size of stream iteration: big enough that per-chunk Python overhead is noise at 500 MB/s,
# small enough that memory stays flat.
CHUNK_SIZE = 256 * 1024
# A failed command's stderr is kept only this far back.
STDERR_KEEP = 64 * 1024


class Tail:
    """The last `limit` bytes written to it, collected by a thread (so stderr never blocks a command)."""

    def __init__(self, limit: int = STDERR_KEEP):
        self.limit = limit
        self._data = bytearray()
        self._thread: threading.Thread | None = None

    def add(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > self.limit:
            del self._data[: len(self._data) - self.limit]

    def drain_in_background(self, read: Callable[[int], bytes]) -> None:
        """Read with `read` until it returns b'' (EOF), keeping the tail."""

        def pump() -> None:
            while True:
                try:
                    chunk = read(32768)
                except TimeoutError:
                    continue  # quiet for a while (an SSH channel's idle timeout); keep listening
                except (OSError, EOFError):
                    return  # the stream was closed under us: the command is being torn down
                if not chunk:
                    return
                self.add(chunk)

        self._thread = threading.Thread(target=pump, name="ccp-stderr", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def data(self) -> bytes:
        return bytes(self._data)


class CommandOutput(io.RawIOBase):
    """The stdout of a running command: `read(n)`, `readinto`, or iterate for fixed-size chunks."""

    def __init__(self, read_some: Callable[[int], bytes], chunk_size: int = CHUNK_SIZE):
        super().__init__()
        self._read_some = read_some
        self.chunk_size = chunk_size
        self.at_eof = False
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.at_eof:
            return 0
        data = self._read_some(len(buffer))
        if not data:
            self.at_eof = True
            return 0
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        """Chunks of exactly `chunk_size` bytes (the last one may be shorter)."""
        buffer = bytearray(self.chunk_size)
        view = memoryview(buffer)
        while True:
            filled = 0
            while filled < self.chunk_size:
                n = self.readinto(view[filled:])
                if n == 0:
                    break
                filled += n
            if filled == 0:
                return
            yield bytes(view[:filled])
            if filled < self.chunk_size:
                return


class CommandInput(io.RawIOBase):
    """The stdin of a running command. `write` blocks while the node is not keeping up.

    Once the block has ended, `exit_code`, `stdout` and `stderr` (their last 64 KiB) tell how the
    command finished, e.g. which image `docker load` loaded.
    """

    def __init__(self, send_all: Callable[[bytes | memoryview], None]):
        super().__init__()
        self._send_all = send_all
        self.bytes_written = 0
        self.exit_code: int | None = None
        self.stdout = b""
        self.stderr = b""

    def finished(self, exit_code: int, stdout: Tail, stderr: Tail) -> None:
        self.exit_code, self.stdout, self.stderr = exit_code, stdout.data, stderr.data

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        self._send_all(view)
        self.bytes_written += len(view)
        return len(view)

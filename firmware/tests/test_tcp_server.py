# The Modbus TCP server's client tasks: a client that cannot get its buffers (no heap left) is
# refused on its own, and the server keeps its count right; it never takes the node down.
import asyncio

import nsp.tcp as tcp


class FakeWriter:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True

    async def wait_closed(self):
        pass

    def get_extra_info(self, name):
        return ("192.168.1.20", 50000) if name == "peername" else None  # as the ESP32 port gives


class EofReader:
    async def readinto(self, buf):
        return 0  # the client hung up at once


def _no_heap(engine, peer=None):
    raise MemoryError("memory allocation failed, allocating 260 bytes")


def test_client_without_heap_is_refused_not_fatal():
    server = tcp.TcpServer(engine=None)
    writer = FakeWriter()
    real = tcp.TcpFramer
    tcp.TcpFramer = _no_heap
    try:
        asyncio.run(server._client(EofReader(), writer))  # must not raise
    finally:
        tcp.TcpFramer = real
    assert server.refused == 1
    assert server.clients == 0
    assert writer.closed


def test_client_over_the_cap_is_refused():
    server = tcp.TcpServer(engine=None, max_clients=0)
    writer = FakeWriter()
    asyncio.run(server._client(EofReader(), writer))
    assert server.refused == 1 and server.clients == 0 and writer.closed


def test_client_that_hangs_up_is_released():
    server = tcp.TcpServer(engine=None)
    writer = FakeWriter()
    asyncio.run(server._client(EofReader(), writer))
    assert server.refused == 0 and server.clients == 0 and writer.closed

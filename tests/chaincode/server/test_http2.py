"""The server's own HTTP/2 engine at the frame level, and TLS (with client certificates)
on both engines."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import socket
import ssl
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chaincode.server import ChaincodeServer, TlsFiles

from .conftest import CCID, Running, start_server
from .helpers import read
from .peer import TestPeer

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, GOAWAY = 0x0, 0x1, 0x4, 0x7
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def frames(sock: socket.socket) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, stream, payload) of each frame until the connection closes."""
    buf = b""
    while True:
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n = int.from_bytes(buf[:3], "big")
            stream = struct.unpack(">I", buf[5:9])[0] & 0x7FFFFFFF
            yield buf[3], buf[4], stream, buf[9 : 9 + n]
            buf = buf[9 + n :]
        chunk = sock.recv(65536)
        if not chunk:
            return
        buf += chunk


@pytest.fixture(scope="module")
def http2() -> Iterator[Running]:
    run = start_server(engine="http2")
    yield run
    run.stop()


def dial(run: Running) -> socket.socket:
    host, port = run.address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def test_not_http2_is_refused_with_goaway_and_the_server_goes_on(http2: Running) -> None:
    with dial(http2) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        kinds = [kind for kind, _f, _s, _p in frames(sock)]
    assert kinds[-1] == GOAWAY  # then the connection closed
    peer = TestPeer.connect(http2.address)
    assert read(peer, "GetMembers").status == 200
    peer.close()


def test_a_stream_registers_and_a_compressed_message_ends_it_with_unimplemented(
    http2: Running,
) -> None:
    with dial(http2) as sock:
        # any header block: every stream is a Connect call (headers are not decoded)
        sock.sendall(PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, END_HEADERS, 1, b"\x83"))
        seen = []
        for kind, flags, stream, payload in frames(sock):
            seen.append((kind, flags, stream))
            if kind == DATA and stream == 1:
                assert payload[0] == 0  # uncompressed, then the REGISTER message
                from chaincode.server._pb import chaincode_pb2, chaincode_shim_pb2

                msg = chaincode_shim_pb2.ChaincodeMessage.FromString(payload[5:])
                assert msg.type == chaincode_shim_pb2.ChaincodeMessage.REGISTER
                assert chaincode_pb2.ChaincodeID.FromString(msg.payload).name == CCID
                sock.sendall(frame(DATA, 0, 1, b"\x01\x00\x00\x00\x01x"))  # compressed flag
            if kind == HEADERS and flags & END_STREAM:
                assert stream == 1
                assert b"grpc-status\x0212" in payload  # literal, no Huffman: UNIMPLEMENTED
                break
    assert (SETTINGS, 0, 0) in seen  # ours
    assert (SETTINGS, 1, 0) in seen  # the ACK of the client's
    assert http2.on_loop(http2.server.in_flight) == 0


def test_a_closed_streams_headers_and_the_peers_goaway_keep_the_connection(
    http2: Running,
) -> None:
    with dial(http2) as sock:
        # stream 1 opened and half-closed at once: its session ends with grpc-status 0
        sock.sendall(PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, 0x5, 1, b"\x83"))
        ended = []
        for kind, flags, stream, payload in frames(sock):
            if kind == HEADERS and flags & END_STREAM:
                ended.append((stream, b"grpc-status\x010" in payload))
                if stream == 1:  # stray HEADERS for it, a GOAWAY, then a new stream
                    goaway = struct.pack(">II", 0, 0)
                    sock.sendall(
                        frame(HEADERS, 0x5, 1, b"\x83")
                        + frame(GOAWAY, 0, 0, goaway)
                        + frame(HEADERS, END_HEADERS, 3, b"\x83")
                    )
            if kind == DATA and stream == 3:
                break  # REGISTER on the new stream: the connection lived on
            assert kind != GOAWAY
    assert ended[0] == (1, True)


# ---------------------------------------------------------------------------- TLS
def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _pem(obj: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def tls_material() -> dict[str, bytes]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test CA", ca_key, None, ca=True)
    server_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    return {
        "ca": _pem(ca),
        "server_cert": _pem(_cert("localhost", server_key, (ca, ca_key), ca=False)),
        "server_key": _pem(server_key),
        "client_cert": _pem(_cert("peer0", client_key, (ca, ca_key), ca=False)),
        "client_key": _pem(client_key),
    }


@pytest.mark.parametrize("engine", ["http2", "grpcio"])
def test_mutual_tls(engine: str, tls_material: dict[str, bytes], tmp_path: Path) -> None:
    m = tls_material
    run = start_server(
        engine=engine, tls=TlsFiles(m["server_cert"], m["server_key"], client_ca=m["ca"])
    )
    try:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=m["ca"],
            private_key=m["client_key"],
            certificate_chain=m["client_cert"],
        )
        peer = TestPeer.connect(run.address, credentials=credentials, server_name="localhost")
        assert peer.registered_as == CCID
        assert read(peer, "GetMembers").status == 200
        peer.close()
        # without a client certificate the server does not talk
        (tmp_path / "ca.pem").write_bytes(m["ca"])
        context = ssl.create_default_context(cafile=tmp_path / "ca.pem")
        context.set_alpn_protocols(["h2"])
        host, port = run.address.rsplit(":", 1)
        with (
            pytest.raises((ssl.SSLError, ConnectionError)),
            socket.create_connection((host, int(port)), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
            if not sock.recv(1024):
                raise ConnectionError("closed without a word")
    finally:
        run.stop()


def test_unusable_tls_material_is_a_precise_error() -> None:
    server = ChaincodeServer("127.0.0.1:0", CCID, tls=TlsFiles(b"not a cert", b"not a key"))
    with pytest.raises(ValueError, match="TLS certificate or key cannot be used"):
        asyncio.run(server.start())


def test_messages_larger_than_frames_and_windows_travel_both_ways(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1 MiB value read (many DATA frames in) and answered (many frames out, waiting
    for the peer's WINDOW_UPDATEs: its window stays at 64 KiB), on both engines."""
    peer = TestPeer.connect(running.address, options=[("grpc.http2.bdp_probe", 0)])
    from chaincode import router
    from chaincode.context import Context

    big = bytes(range(256)) * 4096  # 1 MiB; its hex answer stays under 4 MiB
    peer.state["big"] = big
    peer.keys = ["big"]
    seen: dict[str, Any] = {}

    def body(ctx: Context, args: list[str]) -> Any:
        value = ctx.stub.get_state("big")
        seen["equal"] = value == big
        return {"echo": (value or b"").hex()}

    monkeypatch.setitem(router.FUNCTIONS, "Probe", body)
    response = TestPeer.response(peer.invoke(["Probe", "x" * 200_000]).result(30))
    assert response.status == 200 and seen["equal"]
    assert bytes.fromhex(json.loads(response.payload)["echo"]) == big
    peer.close()
    assert peer.violations == []

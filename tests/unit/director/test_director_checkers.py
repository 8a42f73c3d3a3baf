"""Each check against a peer that speaks its protocol on loopback, good and bad answers.

The peers are small asyncio servers written here (or aiosmtpd); the lab tests
run the checks against real nginx, MariaDB, a DNS server and an SMTP server.
"""

import asyncio
import hashlib
import struct
import subprocess
import sys
from collections.abc import Callable

import pytest

from vigil.director.checkers import checker_for, dns, radius
from vigil.director.checkers.base import CheckRequest
from vigil.director.settings import CheckSpec
from vigil.lvs.table import ServiceKey

VIRTUAL = ServiceKey.tcp("198.51.100.100", 80)


def request(port, spec=None, request="/", receive="", protocol="tcp", timeout=2.0):
    return CheckRequest("127.0.0.1", port, protocol, spec or CheckSpec(), request, receive,
                        VIRTUAL, port, timeout)


def run_check(kind, service, req):
    async def go():
        async with asyncio.timeout(req.timeout):
            return await checker_for(kind, service)(req)
    return go


async def with_server(handler, body: Callable):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        return await body(server.sockets[0].getsockname()[1])
    finally:
        server.close()


def lines_server(script: list[tuple[str | None, str]]):
    """A peer that sends greeting/replies: (expected command prefix or None, reply)."""
    async def handler(reader, writer):
        try:
            for expect, reply in script:
                if expect is not None:
                    line = (await reader.readline()).decode()
                    if not line.startswith(expect):
                        writer.write(b"500 unexpected\r\n")
                        break
                writer.write(reply.encode())
                await writer.drain()
        finally:
            writer.close()
    return handler


def check_against(handler, kind, service, **kw):
    async def body(port):
        return await run_check(kind, service, request(port, **kw))()
    return asyncio.run(with_server(handler, body))


def http_handler(status="200 OK", body=b"hello rs1"):
    async def handler(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        handler.seen.append(head.decode())
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()
    handler.seen = []
    return handler


def test_http_status_body_and_host_header():
    handler = http_handler()
    ok = check_against(handler, "negotiate", "http",
                       spec=CheckSpec(service="http", virtualhost="www.example.com"),
                       request="/index.html", receive="rs[12]")
    assert ok.ok and ok.message == "200 OK"
    assert handler.seen[0].startswith("GET /index.html HTTP/1.0\r\nHost: www.example.com\r\n")
    bad_body = check_against(http_handler(), "negotiate", "http", receive="^nope")
    assert not bad_body.ok and "does not match" in bad_body.message
    error = check_against(http_handler("503 Service Unavailable"), "negotiate", "http")
    assert not error.ok and error.message == "status 503 Service Unavailable"
    redirect = check_against(http_handler("302 Found"), "negotiate", "http",
                             spec=CheckSpec(status_codes=((200, 399),)))
    assert redirect.ok


def test_https_with_sni_against_a_self_signed_certificate(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=www.example.com", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    names = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)

    async def body(port):
        spec = CheckSpec(service="https", virtualhost="www.example.com")
        unverified = await run_check("negotiate", "https", request(port, spec=spec))()
        strict = CheckSpec(service="https", virtualhost="www.example.com", tls_verify=True)
        refused = await run_check("negotiate", "https", request(port, spec=strict))()
        trusted = CheckSpec(service="https", virtualhost="www.example.com", tls_verify=True,
                            tls_ca=str(cert))
        verified = await run_check("negotiate", "https", request(port, spec=trusted))()
        return unverified, refused, verified

    async def main():
        server = await asyncio.start_server(http_handler(), "127.0.0.1", 0, ssl=context)
        try:
            return await body(server.sockets[0].getsockname()[1])
        finally:
            server.close()

    unverified, refused, verified = asyncio.run(main())
    assert unverified.ok, unverified
    assert not refused.ok and "certificate" in refused.message
    assert verified.ok, verified
    assert "www.example.com" in names


def test_smtp_pop_imap_nntp_greetings():
    smtp_ok = lines_server([(None, "220 mx ESMTP\r\n"), ("HELO", "250 hi\r\n"),
                            ("QUIT", "221\r\n")])
    assert check_against(smtp_ok, "negotiate", "smtp").ok
    smtp_busy = lines_server([(None, "554 go away\r\n")])
    assert check_against(smtp_busy, "negotiate", "smtp").message == "554 go away"
    pop_login = lines_server([(None, "+OK ready\r\n"), ("USER u", "+OK\r\n"),
                              ("PASS p", "-ERR bad password\r\n")])
    result = check_against(pop_login, "negotiate", "pop",
                           spec=CheckSpec(login="u", passwd="p"))
    assert not result.ok and "bad password" in result.message
    pop_anon = lines_server([(None, "+OK ready\r\n"), ("QUIT", "+OK\r\n")])
    assert check_against(pop_anon, "negotiate", "pop").ok
    imap = lines_server([(None, "* OK IMAP4rev1\r\n"), ('v1 LOGIN "u" "p"', "v1 OK done\r\n"),
                         ("v2 LOGOUT", "* BYE\r\nv2 OK\r\n")])
    assert check_against(imap, "negotiate", "imap", spec=CheckSpec(login="u", passwd="p")).ok
    nntp_ok = lines_server([(None, "200 news ready\r\n")])
    assert check_against(nntp_ok, "negotiate", "nntp").ok
    nntp_bad = lines_server([(None, "502 no permission\r\n")])
    assert not check_against(nntp_bad, "negotiate", "nntp").ok


def test_simpletcp_sends_the_request_and_matches_a_line():
    async def echo_upper(reader, writer):
        data = await reader.read()  # until our half-close
        writer.write(b"banner\r\n" + data.upper())
        await writer.drain()
        writer.close()
    good = check_against(echo_upper, "negotiate", "simpletcp", request="/ping\\n", receive="PING")
    assert good.ok
    bad = check_against(echo_upper, "negotiate", "simpletcp", request="/ping\\n", receive="pong")
    assert not bad.ok


def test_ftp_fetches_the_file_in_passive_mode():
    async def ftp(reader, writer):
        data_server = await asyncio.start_server(data_handler, "127.0.0.1", 0)
        port = data_server.sockets[0].getsockname()[1]
        script = [(None, "220 ftp\r\n"), ("USER anonymous", "331 pass\r\n"),
                  ("PASS", "230 in\r\n"), ("CWD /", "250 ok\r\n"), ("TYPE I", "200 ok\r\n"),
                  ("PASV", f"227 Entering (127,0,0,1,{port // 256},{port % 256})\r\n"),
                  ("RETR index.txt", "150 here\r\n")]
        await lines_server([*script, (None, "226 done\r\n")])(reader, writer)
        data_server.close()

    async def data_handler(reader, writer):
        writer.write(b"welcome to rs1\n")
        await writer.drain()
        writer.close()

    assert check_against(ftp, "negotiate", "ftp", request="/index.txt", receive="rs1").ok
    assert not check_against(ftp, "negotiate", "ftp", request="/index.txt", receive="rs2").ok


class UdpPeer(asyncio.DatagramProtocol):
    def __init__(self, answer):
        self.answer = answer

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        reply = self.answer(data)
        if reply is not None:
            self.transport.sendto(reply, addr)


def check_udp(answer, service, **kw):
    async def main():
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: UdpPeer(answer), local_addr=("127.0.0.1", 0))
        try:
            port = transport.get_extra_info("sockname")[1]
            return await run_check("negotiate", service,
                                   request(port, protocol="udp", **kw))()
        finally:
            transport.close()
    return asyncio.run(main())


def dns_answer(address: str):
    def answer(query: bytes) -> bytes:
        ident = query[:2]
        question = query[12:]
        record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes(
            int(x) for x in address.split("."))
        return ident + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + record
    return answer


def test_dns_a_record_must_match_receive():
    good = check_udp(dns_answer("198.51.100.7"), "dns", request="/www.example.com",
                     receive=r"198\.51\.100\.7")
    assert good.ok and good.message == "www.example.com -> 198.51.100.7"
    bad = check_udp(dns_answer("203.0.113.9"), "dns", request="/www.example.com",
                    receive=r"198\.51\.100\.7")
    assert not bad.ok and "mismatch" in bad.message
    assert dns.question("198.51.100.7") == ("7.100.51.198.in-addr.arpa", dns.TYPE_PTR)


def test_dns_waits_for_the_engine_timeout_when_the_server_stays_silent():
    with pytest.raises(TimeoutError):
        check_udp(lambda q: None, "dns", request="/x.example", receive=".", timeout=0.3)


def test_radius_any_authentic_reply_is_up_a_wrong_secret_is_down():
    def server(secret):
        def answer(packet):
            code = 3  # reject: still an answer
            body = struct.pack("!BBH", code, packet[1], 20)
            auth = hashlib.md5(body + packet[4:20] + secret).digest()
            return body + auth
        return answer
    spec = CheckSpec(login="probe", passwd="pw", secret="s3cret")
    assert check_udp(server(b"s3cret"), "radius", spec=spec).message == "access-reject"
    assert not check_udp(server(b"other"), "radius", spec=spec).ok
    hidden = radius.hide_password(b"pw", b"s", b"A" * 16)
    assert len(hidden) == 16


def test_sip_options_needs_200_ok():
    ok = check_udp(lambda p: b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"
                   if p.startswith(b"OPTIONS sip:") else None, "sip")
    assert ok.ok
    busy = check_udp(lambda p: b"SIP/2.0 486 Busy Here\r\n\r\n", "sip")
    assert not busy.ok and "486" in busy.message


def test_pgsql_md5_login_and_rows():
    async def pg(reader, writer):
        length = struct.unpack("!I", await reader.readexactly(4))[0]
        await reader.readexactly(length - 4)
        writer.write(b"R" + struct.pack("!II", 12, 5) + b"salt")
        kind = await reader.readexactly(1)
        length = struct.unpack("!I", await reader.readexactly(4))[0]
        password = await reader.readexactly(length - 4)
        inner = hashlib.md5(b"secretvigil").hexdigest()
        expected = b"md5" + hashlib.md5(inner.encode() + b"salt").hexdigest().encode() + b"\0"
        if kind != b"p" or password != expected:
            error = b"SFATAL\0MPassword authentication failed\0\0"
            writer.write(b"E" + struct.pack("!I", len(error) + 4) + error)
            writer.close()
            return
        writer.write(b"R" + struct.pack("!II", 8, 0) + b"Z" + struct.pack("!I", 5) + b"I")
        await reader.readexactly(1)
        length = struct.unpack("!I", await reader.readexactly(4))[0]
        await reader.readexactly(length - 4)
        row = struct.pack("!HI", 1, 1) + b"1"
        writer.write(b"D" + struct.pack("!I", len(row) + 4) + row)
        writer.write(b"Z" + struct.pack("!I", 5) + b"I")
        await writer.drain()
        writer.close()

    spec = CheckSpec(login="vigil", passwd="secret", database="db")
    assert check_against(pg, "negotiate", "pgsql", spec=spec, request="/SELECT 1").ok
    wrong = CheckSpec(login="vigil", passwd="wrong", database="db")
    result = check_against(pg, "negotiate", "pgsql", spec=wrong, request="/SELECT 1")
    assert not result.ok and "authentication failed" in result.message


def test_external_gets_ldirectord_arguments_and_is_killed_on_timeout(tmp_path):
    script = tmp_path / "check.sh"
    script.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\nexit ${{EXIT:-0}}\n")
    script.chmod(0o755)
    spec = CheckSpec(checktype="external", checkcommand=str(script))
    req = CheckRequest("198.51.100.1", 8080, "tcp", spec, "/", "", VIRTUAL, 8080, 5.0)
    assert asyncio.run(run_check("external", "none", req)()).ok
    assert (tmp_path / "args").read_text().split() == [
        "198.51.100.100", "80", "198.51.100.1", "8080"]
    failing = CheckSpec(checktype="external", checkcommand="/bin/false")
    result = asyncio.run(run_check("external", "none", CheckRequest(
        "198.51.100.1", 80, "tcp", failing, "/", "", VIRTUAL, 80, 5.0))())
    assert not result.ok and result.message == "exit 1"
    hung = tmp_path / "hung.sh"
    hung.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/pid\nexec sleep 60\n")
    hung.chmod(0o755)
    slow = CheckSpec(checktype="external", checkcommand=str(hung))
    result = asyncio.run(checker_for("external", "none")(CheckRequest(
        "198.51.100.1", 80, "tcp", slow, "/", "", VIRTUAL, 80, 0.5)))
    assert result.message == "check command killed after 0.5 s"
    pid = int((tmp_path / "pid").read_text())
    assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0


@pytest.mark.skipif(sys.platform != "linux", reason="ICMP sockets are Linux here")
def test_ping_loopback():
    result = asyncio.run(run_check("ping", "none", request(0))())
    assert result.ok, result


@pytest.mark.parametrize("receive, body", [
    (r"(x+x+)+y", b"x" * 26),      # backtracks exponentially in Python's re
    (r"^(a|a)*$", b"a" * 40 + b"!"),  # and this one in the regex module
])
def test_a_backtracking_receive_pattern_never_stalls_the_check_engine(receive, body):
    async def main():
        gaps = []

        async def ticker():
            last = asyncio.get_running_loop().time()
            while True:
                await asyncio.sleep(0.01)
                now = asyncio.get_running_loop().time()
                gaps.append(now - last)
                last = now

        ticking = asyncio.get_running_loop().create_task(ticker())
        try:
            async def body_check(port):
                return await run_check("negotiate", "http",
                                       request(port, receive=receive, timeout=5.0))()
            result = await with_server(http_handler(body=body), body_check)
        finally:
            ticking.cancel()
        return result, max(gaps, default=0.0)

    result, worst_gap = asyncio.run(main())
    assert not result.ok
    assert "does not match" in result.message or "gave up after" in result.message
    assert worst_gap < 0.25, f"the event loop stood still for {worst_gap:.2f} s"


def test_a_receive_pattern_that_is_not_a_regex_is_refused_by_the_check():
    result = check_against(http_handler(), "negotiate", "http", receive="rs(")
    assert not result.ok and "not a regular expression" in result.message

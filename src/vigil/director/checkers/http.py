"""http, https, http_proxy: fetch a URL, match the status and the body.

As ldirectord: `request` is the path (or a full http:// URL that overrides
address and port), `virtualhost` the Host header (default: the real server's
address), `httpmethod` GET or HEAD, `receive` a regex the body must match.
Status codes default to any 2xx (configurable ranges). https sends SNI for
the virtual host and verifies the certificate only when asked. Redirects are
not followed: a 3xx is an answer to judge, accepted only if configured.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from vigil import patterns
from vigil.director.checkers.base import (
    READ_LIMIT,
    CheckRequest,
    CheckResult,
    close_stream,
    describe,
    open_stream,
)


def target(request: CheckRequest, tls: bool) -> tuple[str, int, str, str]:
    """(address, port, path, host header) for this check."""
    address, port, path = request.address, request.port, request.request or "/"
    if path.startswith(("http://", "https://")):
        url = urlsplit(path)
        address = url.hostname or address
        port = url.port or (443 if url.scheme == "https" else 80)
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
    elif not path.startswith("/"):
        path = "/" + path
    host = request.spec.virtualhost or (f"[{address}]" if ":" in address else address)
    default_port = 443 if tls else 80
    if port != default_port and not request.spec.virtualhost:
        host = f"{host}:{port}"
    return address, port, path, host


async def fetch(request: CheckRequest, tls: bool, proxy: bool = False) -> CheckResult:
    spec = request.spec
    if proxy:
        address, port = request.address, request.port
        path = request.request
        host = urlsplit(path).netloc
    else:
        address, port, path, host = target(request, tls)
    sni = spec.virtualhost if tls else None
    try:
        reader, writer = await open_stream(request, tls=tls, server_hostname=sni,
                                           address=address, port=port)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    try:
        writer.write(
            f"{spec.httpmethod} {path} HTTP/1.0\r\nHost: {host}\r\n"
            "User-Agent: vigil-director\r\nAccept: */*\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        answer = await reader.read(READ_LIMIT)
        while chunk := await reader.read(READ_LIMIT):
            if len(answer) >= READ_LIMIT:
                break
            answer += chunk
    except Exception as exc:
        return CheckResult.down(describe(exc))
    finally:
        await close_stream(writer)
    return await judge(answer, request)


async def judge(answer: bytes, request: CheckRequest) -> CheckResult:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return CheckResult.down(f"not an HTTP answer: {status_line[:80]!r}")
    status = int(parts[1])
    if not any(low <= status <= high for low, high in request.spec.status_codes):
        return CheckResult.down(f"status {status_line[9:].strip() or status}")
    if request.receive and request.spec.httpmethod != "HEAD":
        text = body.decode(errors="replace")
        try:
            if not await patterns.search(request.receive, text):
                return CheckResult.down(f"{status} but body does not match "
                                        f"{request.receive!r}")
        except patterns.PatternProblem as exc:
            return CheckResult.down(str(exc))
    return CheckResult.up(status_line[9:].strip() or str(status))


async def check_http(request: CheckRequest) -> CheckResult:
    return await fetch(request, tls=False)


async def check_https(request: CheckRequest) -> CheckResult:
    return await fetch(request, tls=True)


async def check_http_proxy(request: CheckRequest) -> CheckResult:
    return await fetch(request, tls=False, proxy=True)

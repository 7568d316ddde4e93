"""Fetching packshots from URLs a seller wrote, as a service that fetches untrusted URLs must.

- http and https only;
- the host is resolved once and every address checked: loopback, private, link-local
  (cloud metadata at 169.254.169.254 included), multicast, reserved and other non-global
  addresses are refused unless the operator allowed that host or network
  (`image_allow_hosts`); the connection goes to the checked address (no second lookup that
  DNS rebinding could change), with the original host name for the Host header and TLS;
- redirects are followed by hand, at most `MAX_REDIRECTS`, each hop checked the same way;
- the body is streamed with a size cap and an overall deadline, so a 2 GiB body is never
  held in memory and a server that trickles one byte every few seconds is cut off;
- downloads in flight at once are bounded, so slow images cannot hold every worker thread
  while text-only pairs wait.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from urllib.parse import urljoin, urlsplit

import httpx

MAX_IMAGE_BYTES = 20 * 1024 * 1024
DEADLINE_SECONDS = 30.0
MAX_REDIRECTS = 3
_DOWNLOADS = threading.BoundedSemaphore(4)


class FetchRefused(Exception):
    """The URL may not be fetched, or the fetch failed; the message is the recorded reason."""


def _allowed(host: str, address: ipaddress._BaseAddress, allow: str) -> bool:
    for entry in (e.strip() for e in allow.split(",") if e.strip()):
        if entry.casefold() == host.casefold():
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def check_address(host: str, address: str, allow: str = "") -> None:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        if not _allowed(host, ip, allow):
            raise FetchRefused(f"image URL refused: {host} resolves to a non-public address "
                               f"({ip}); allow it with --image-allow-hosts if it is your own "
                               f"image server")


def resolve(host: str, port: int, allow: str = "") -> str:
    """The first address of `host`, after checking every address it resolves to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchRefused(f"image URL host does not resolve: {host}") from exc
    addresses = [info[4][0] for info in infos]
    for address in addresses:
        check_address(host, address, allow)
    return addresses[0]


def fetch(url: str, allow: str = "", max_bytes: int = MAX_IMAGE_BYTES,
          deadline: float = DEADLINE_SECONDS) -> bytes:
    """The body of `url`, or FetchRefused with a reason safe to record."""
    end = time.monotonic() + deadline
    with _DOWNLOADS, httpx.Client(timeout=httpx.Timeout(min(deadline, 10.0)),
                                  follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchRefused(f"image URL refused: only http(s) URLs ({parts.scheme!r})")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = resolve(parts.hostname, port, allow)
            host = f"[{address}]" if ":" in address else address
            pinned = parts._replace(netloc=f"{host}:{port}").geturl()
            headers = {"Host": parts.netloc.rpartition("@")[2], "Accept": "image/*"}
            try:
                with client.stream("GET", pinned, headers=headers,
                                   extensions={"sni_hostname": parts.hostname}) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        continue
                    if response.status_code >= 400:
                        raise FetchRefused(f"image URL failed: HTTP {response.status_code}")
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > max_bytes:
                        raise FetchRefused(f"image larger than {max_bytes // 2**20} MB")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise FetchRefused(f"image larger than {max_bytes // 2**20} MB")
                        if time.monotonic() > end:
                            raise FetchRefused(f"image download took over {deadline:g} s")
                    return bytes(body)
            except httpx.HTTPError as exc:
                raise FetchRefused(f"image URL failed: {type(exc).__name__}") from exc
        raise FetchRefused(f"image URL refused: more than {MAX_REDIRECTS} redirects")

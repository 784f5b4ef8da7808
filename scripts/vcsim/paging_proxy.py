#!/usr/bin/env python3
"""vCenter-style result paging in front of vcsim (govmomi 0.24.2).

vcsim ignores RetrieveOptions.maxObjects in RetrievePropertiesEx and has no
ContinueRetrievePropertiesEx / CancelRetrievePropertiesEx, so every retrieve is one page.
A real vCenter pages: at most ~100 ObjectContents per RetrieveResult, a <token> when more
remain, ContinueRetrievePropertiesEx(token) for the next page (the last one without token).
This plain-HTTP reverse proxy adds that behaviour so clients' paging loops and round-trip
counts can be tested against vcsim:

  * RetrievePropertiesEx: forwarded unchanged; if the result holds more objects than
    min(maxObjects, --page-cap) (no maxObjects: --page-cap, like vCenter's server policy),
    the top-level <objects> children of returnval are cut into pages (byte slices of vcsim's
    response, so namespaces and xsi:type attributes stay byte-for-byte), the first page is
    returned with <token> (first child, per the WSDL: RetrieveResult = token?, objects*) and
    the rest is kept under the token.
  * ContinueRetrievePropertiesEx(token): answered from the kept pages in vcsim's envelope,
    with a token while pages remain. CancelRetrievePropertiesEx(token) drops them.
    Unknown/expired/consumed token (or another session's): HTTP 500 SOAP fault
    InvalidArgument(invalidProperty=token), as vCenter does.
  * Everything else (Login, faults with status 500, Set-Cookie, GET
    /sdk/vimServiceVersions.xml, ...) is relayed unchanged.

Kept pages are dropped when fully consumed or after --token-ttl seconds without use (600).

Usage:
  python3 scripts/vcsim/paging_proxy.py --upstream https://127.0.0.1:PORT/sdk \
      [--listen 127.0.0.1:0] [--page-cap 100] [--token-ttl 600] [--verbose]
Prints "PROXY_URL=http://HOST:PORT/sdk" then "PROXY_READY" on stdout, serves until
SIGTERM/SIGINT. HTTPS upstreams are used without certificate verification (vcsim's
certificate is self-signed). Python 3 standard library only.
"""
import argparse
import http.client
import http.server
import re
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
VIM25_NS = "urn:vim25"

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones we recompute.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade", "content-length", "host",
}

# A qualified name's optional prefix: "soapenv:", "vim25:", "" ...
_PFX = rb"(?:[A-Za-z_][\w.\-]*:)?"
RE_RESP_START = re.compile(rb"<(" + _PFX + rb")RetrievePropertiesExResponse(?=[\s/>])[^>]*?(/?)>")
RE_RETURNVAL_END = re.compile(rb"</" + _PFX + rb"returnval\s*>")
RE_OBJECTS_TAG = re.compile(rb"<(/?)(" + _PFX + rb")objects(?=[\s/>])[^>]*?(/?)>")

# Used only when no upstream response is at hand (unknown token): vcsim's envelope.
FALLBACK_ENVELOPE_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" '
    b'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    b'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
)
FALLBACK_ENVELOPE_TAIL = b"</soapenv:Body></soapenv:Envelope>"
XML_CONTENT_TYPE = "text/xml; charset=utf-8"


def log(msg):
    print(f"paging_proxy: {msg}", file=sys.stderr, flush=True)


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def local(tag):
    return tag.rsplit("}", 1)[-1]


def session_of(cookie_header):
    """vmware_soap_session cookie value (None when absent), to tie tokens to a session."""
    if not cookie_header:
        return None
    m = re.search(r"(?:^|;)\s*vmware_soap_session=\"?([^\";]*)", cookie_header)
    return m.group(1) if m else None


# ---- request classification ----------------------------------------------------------------
def classify(body):
    """('retrieve', maxObjects or None) | ('continue', token) | ('cancel', token) | None."""
    if b"RetrievePropertiesEx" not in body:
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    body_el = next((c for c in root if local(c.tag) == "Body"), None)
    if body_el is None or len(body_el) == 0:
        return None
    call = body_el[0]
    name = local(call.tag)
    if name == "RetrievePropertiesEx":
        for c in call:
            if local(c.tag) == "options":
                for o in c:
                    if local(o.tag) == "maxObjects" and (o.text or "").strip():
                        try:
                            return ("retrieve", int(o.text.strip()))
                        except ValueError:
                            return ("retrieve", None)
        return ("retrieve", None)
    if name in ("ContinueRetrievePropertiesEx", "CancelRetrievePropertiesEx"):
        token = next(((c.text or "").strip() for c in call if local(c.tag) == "token"), "")
        return ("continue" if name.startswith("Continue") else "cancel", token)
    return None


# ---- response splitting --------------------------------------------------------------------
class Split:
    """A RetrievePropertiesExResponse cut at its returnval's top-level <objects> children."""

    def __init__(self, pre, post, objects, prefix):
        self.pre = pre  # bytes up to and including <returnval ...>
        self.post = post  # bytes from </returnval> to the end
        self.objects = objects  # list of bytes, one top-level <objects>...</objects> each
        self.prefix = prefix  # namespace prefix of objects (b"" for vcsim), used for <token>


def objects_tags(resp, start, end):
    """RE_OBJECTS_TAG matches in resp[start:end], in order. Same result as
    RE_OBJECTS_TAG.finditer(resp, start, end) but ~15x faster on vcsim's multi-MB results:
    it looks for the word, not at every '<' (a 1,000-VM result has ~350,000 tags)."""
    i = resp.find(b"objects", start, end)
    while i >= 0:
        lt = resp.rfind(b"<", max(start, i - 200), i)
        if lt >= 0:
            t = RE_OBJECTS_TAG.match(resp, lt, end)
            if t and t.end(2) == i:
                yield t
        i = resp.find(b"objects", i + 7, end)


def split_response(resp):
    """Returns a Split, or None when the response isn't a plain, splittable RetrieveResult
    (fault, no/empty returnval, already carries a token, unexpected content)."""
    m = RE_RESP_START.search(resp)
    if not m or m.group(2):  # absent, or <RetrievePropertiesExResponse/>
        return None
    rprefix = m.group(1)
    rv_start = re.compile(rb"<" + _PFX + rb"returnval(?=[\s/>])[^>]*?(/?)>").search(resp, m.end())
    if not rv_start or rv_start.group(1):  # no returnval, or <returnval/>
        return None
    resp_end = resp.rfind(b"</" + rprefix + b"RetrievePropertiesExResponse>")
    if resp_end < rv_start.end():
        return None
    # returnval is the response element's only child: its end tag is the last one before.
    rv_end = resp.rfind(b"</", rv_start.end(), resp_end)
    if rv_end < 0 or not RE_RETURNVAL_END.match(resp, rv_end) or resp[rv_end:resp_end].count(b"<") != 1:
        return None

    objects, depth, start, prefix, last_end = [], 0, 0, None, rv_start.end()
    for t in objects_tags(resp, rv_start.end(), rv_end):
        closing, selfclosing = bool(t.group(1)), bool(t.group(3))
        if depth == 0:
            if closing:
                return None  # unbalanced
            if resp[last_end:t.start()].strip():
                return None  # something other than objects at top level (e.g. a token)
            if prefix is None:
                prefix = t.group(2)
            if selfclosing:
                objects.append(resp[t.start():t.end()])
                last_end = t.end()
            else:
                start, depth = t.start(), 1
        elif selfclosing:
            continue
        elif closing:
            depth -= 1
            if depth == 0:
                objects.append(resp[start:t.end()])
                last_end = t.end()
        else:
            depth += 1
    if depth != 0 or resp[last_end:rv_end].strip() or not objects:
        return None
    return Split(resp[:rv_start.end()], resp[rv_end:], objects, prefix)


def continue_envelope(split):
    """(pre, post) for a ContinueRetrievePropertiesExResponse mirroring the original one."""
    m = RE_RESP_START.search(split.pre)
    name_at = m.start() + 1 + len(m.group(1))
    pre = split.pre[:name_at] + b"Continue" + split.pre[name_at:]
    end_tag = b"</" + m.group(1) + b"RetrievePropertiesExResponse>"
    i = split.post.find(end_tag)
    post = split.post[:i + 2 + len(m.group(1))] + b"Continue" + split.post[i + 2 + len(m.group(1)):]
    return pre, post


class Pages:
    def __init__(self, pages, pre, post, prefix, content_type, session, total):
        self.pages = pages  # remaining pages (list of bytes)
        self.pre, self.post, self.prefix = pre, post, prefix
        self.content_type = content_type
        self.session = session
        self.total = total
        self.served = 1
        self.count = len(pages) + 1
        self.used = time.monotonic()


class Store:
    def __init__(self, ttl):
        self.ttl = ttl
        self.lock = threading.Lock()
        self.entries = {}

    def _purge(self, now):
        for t in [t for t, e in self.entries.items() if now - e.used > self.ttl]:
            del self.entries[t]

    def put(self, entry):
        token = uuid.uuid4().hex
        with self.lock:
            self._purge(time.monotonic())
            self.entries[token] = entry
        return token

    def take(self, token, session):
        """Next page for token: (entry, page bytes, more?) or None. Drops consumed entries."""
        with self.lock:
            now = time.monotonic()
            self._purge(now)
            e = self.entries.get(token)
            if e is None or (e.session is not None and e.session != session):
                return None
            page = e.pages.pop(0)
            e.served += 1
            e.used = now
            if not e.pages:
                del self.entries[token]
            return e, page, bool(e.pages)

    def cancel(self, token, session):
        with self.lock:
            e = self.entries.get(token)
            if e is None or (e.session is not None and e.session != session):
                return False
            del self.entries[token]
            return True


# ---- upstream connections ------------------------------------------------------------------
class Upstream:
    """A small LIFO pool of persistent http.client connections to the upstream."""

    def __init__(self, url):
        u = urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise SystemExit(f"paging_proxy: --upstream must be http(s)://..., got {url!r}")
        self.https = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.https else 80)
        self.base = (u.path or "/sdk").rstrip("/") or "/"
        self.ctx = ssl._create_unverified_context() if self.https else None
        self.lock = threading.Lock()
        self.idle = []

    def _new(self):
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=300, context=self.ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=300)

    def path_for(self, path):
        """Client path under /sdk -> the upstream's base path."""
        if path == "/sdk" or path.startswith(("/sdk/", "/sdk?")):
            return (self.base if self.base != "/" else "") + path[4:] or "/"
        return path

    def request(self, method, path, body, headers):
        """Returns (status, reason, [(header, value)], body bytes)."""
        for attempt in (0, 1):
            with self.lock:
                conn = self.idle.pop() if self.idle else None
            reused = conn is not None
            if conn is None:
                conn = self._new()
            try:
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                conn.close()
                if reused and attempt == 0:
                    continue  # stale keep-alive connection: retry once on a fresh one
                raise
            except BaseException:
                conn.close()
                raise
            if r.will_close:
                conn.close()
            else:
                with self.lock:
                    self.idle.append(conn)
            return r.status, r.reason, r.getheaders(), data
        raise AssertionError("unreachable")


# ---- the proxy -----------------------------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "paging-proxy"

    # set by main()
    upstream = None
    store = None
    page_cap = 100
    verbose = False

    def log_message(self, fmt, *args):
        pass  # no per-request access log; --verbose logs paged calls only

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, reason, headers, body):
        """One write for status line, headers and body (no Nagle/delayed-ACK stalls)."""
        lines = [f"HTTP/1.1 {status} {reason}\r\n"]
        for k, v in headers:
            if k.lower() not in HOP_BY_HOP:
                lines.append(f"{k}: {v}\r\n")
        if self.close_connection:
            lines.append("Connection: close\r\n")
        length = len(body)
        if self.command == "HEAD":  # no body; announce the upstream's length
            length = next((v for k, v in headers if k.lower() == "content-length"), 0)
        lines.append(f"Content-Length: {length}\r\n\r\n")
        out = "".join(lines).encode("latin-1")
        self.wfile.write(out + body if self.command != "HEAD" else out)

    def _forward(self, body, drop_accept_encoding=False):
        headers = {}
        for k, v in self.headers.items():
            kl = k.lower()
            if kl in HOP_BY_HOP or (drop_accept_encoding and kl == "accept-encoding"):
                continue
            headers[k] = v if k not in headers else headers[k] + ("; " if kl == "cookie" else ", ") + v
        if body or self.command in ("POST", "PUT"):
            headers["Content-Length"] = str(len(body))
        return self.upstream.request(self.command, self.upstream.path_for(self.path), body or None, headers)

    def _relay(self, body):
        try:
            status, reason, headers, data = self._forward(body)
        except Exception as e:  # upstream unreachable
            self.close_connection = True
            self._send(502, "Bad Gateway", [("Content-Type", "text/plain")], f"upstream: {e}\n".encode())
            return
        self._send(status, reason, headers, data)

    def do_GET(self):
        self._relay(b"")

    do_HEAD = do_GET

    def do_POST(self):
        body = self._read_body()
        kind = classify(body)
        if kind is None:
            return self._relay(body)
        if kind[0] == "retrieve":
            return self._retrieve(body, kind[1])
        if kind[0] == "continue":
            return self._continue(kind[1])
        return self._cancel(kind[1])

    def _retrieve(self, body, max_objects):
        t0 = time.perf_counter()
        try:
            status, reason, headers, data = self._forward(body, drop_accept_encoding=True)
        except Exception as e:
            self.close_connection = True
            self._send(502, "Bad Gateway", [("Content-Type", "text/plain")], f"upstream: {e}\n".encode())
            return
        t1 = time.perf_counter()
        page = self.page_cap if not max_objects or max_objects <= 0 else min(max_objects, self.page_cap)
        encoded = any(k.lower() == "content-encoding" and v.lower() != "identity" for k, v in headers)
        split = split_response(data) if status == 200 and not encoded else None
        if split is None or len(split.objects) <= page:
            if self.verbose:
                n = len(split.objects) if split else "?"
                log(f"RetrievePropertiesEx maxObjects={max_objects} page={page}: {n} objects, "
                    f"HTTP {status}, {len(data)} bytes passed through (upstream {(t1 - t0) * 1e3:.1f} ms, "
                    f"proxy {(time.perf_counter() - t1) * 1e3:.1f} ms)")
            return self._send(status, reason, headers, data)
        objs = split.objects
        pages = [b"".join(objs[i:i + page]) for i in range(0, len(objs), page)]
        cpre, cpost = continue_envelope(split)
        ctype = next((v for k, v in headers if k.lower() == "content-type"), XML_CONTENT_TYPE)
        entry = Pages(pages[1:], cpre, cpost, split.prefix, ctype,
                      session_of(self.headers.get("Cookie")), len(objs))
        token = self.store.put(entry)
        out = split.pre + self._token(split.prefix, token) + pages[0] + split.post
        if self.verbose:
            log(f"RetrievePropertiesEx maxObjects={max_objects} page={page}: {len(objs)} objects, "
                f"{len(data)} bytes -> {len(pages)} pages, token {token} (upstream {(t1 - t0) * 1e3:.1f} ms, "
                f"proxy {(time.perf_counter() - t1) * 1e3:.1f} ms)")
        self._send(status, reason, headers, out)

    @staticmethod
    def _token(prefix, token):
        p = prefix or b""
        return b"<" + p + b"token>" + xml_escape(token).encode() + b"</" + p + b"token>"

    def _continue(self, token):
        got = self.store.take(token, session_of(self.headers.get("Cookie")))
        if got is None:
            if self.verbose:
                log(f"ContinueRetrievePropertiesEx token {token!r}: unknown -> InvalidArgument")
            return self._invalid_token()
        e, page, more = got
        out = e.pre + (self._token(e.prefix, token) if more else b"") + page + e.post
        if self.verbose:
            log(f"ContinueRetrievePropertiesEx token {token}: page {e.served}/{e.count}"
                f"{'' if more else ' (last)'}")
        self._send(200, "OK", [("Date", self.date_time_string()), ("Content-Type", e.content_type)], out)

    def _cancel(self, token):
        ok = self.store.cancel(token, session_of(self.headers.get("Cookie")))
        if self.verbose:
            log(f"CancelRetrievePropertiesEx token {token!r}: {'dropped' if ok else 'unknown'}")
        if not ok:
            return self._invalid_token()
        out = (FALLBACK_ENVELOPE_HEAD + b'<CancelRetrievePropertiesExResponse xmlns="urn:vim25">'
               b"</CancelRetrievePropertiesExResponse>" + FALLBACK_ENVELOPE_TAIL)
        self._send(200, "OK", [("Date", self.date_time_string()), ("Content-Type", XML_CONTENT_TYPE)], out)

    def _invalid_token(self):
        out = (FALLBACK_ENVELOPE_HEAD
               + b"<soapenv:Fault><faultcode>ServerFaultCode</faultcode>"
               b"<faultstring>A specified parameter was not correct: token</faultstring><detail>"
               b'<InvalidArgumentFault xmlns="urn:vim25" xsi:type="InvalidArgument">'
               b"<invalidProperty>token</invalidProperty></InvalidArgumentFault>"
               b"</detail></soapenv:Fault>" + FALLBACK_ENVELOPE_TAIL)
        self._send(500, "Internal Server Error",
                   [("Date", self.date_time_string()), ("Content-Type", XML_CONTENT_TYPE)], out)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # don't wait for idle keep-alive clients on shutdown
    allow_reuse_address = True
    request_queue_size = 64


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--upstream", required=True, help="vcsim SDK URL, e.g. https://127.0.0.1:8989/sdk")
    ap.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0 = a free one)")
    ap.add_argument("--page-cap", type=int, default=100, help="most objects per page (default 100)")
    ap.add_argument("--token-ttl", type=float, default=600, help="seconds an unused token lives (600)")
    ap.add_argument("--verbose", action="store_true", help="log each paged call on stderr")
    a = ap.parse_args()
    if a.page_cap < 1:
        ap.error("--page-cap must be >= 1")

    host, _, port = a.listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    Handler.upstream = Upstream(a.upstream)
    Handler.store = Store(a.token_ttl)
    Handler.page_cap = a.page_cap
    Handler.verbose = a.verbose
    if ":" in host:
        Server.address_family = socket.AF_INET6
    server = Server((host, int(port or 0)), Handler)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # A parent may start us with these blocked (Swift Testing's worker threads do), and the
    # mask is inherited: without this, SIGTERM would never arrive.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    shown = f"[{host}]" if ":" in host else host
    print(f"PROXY_URL=http://{shown}:{server.server_address[1]}/sdk", flush=True)
    print("PROXY_READY", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

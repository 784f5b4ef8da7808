#!/usr/bin/env python3
"""pyVmomi side of converge-bench's "observe all VMs" comparison.

Reads every VirtualMachine's properties the way pyVmomi users are told to read many VMs fast:
a ContainerView over rootFolder plus one PropertyCollector RetrievePropertiesEx (TraversalSpec
over the view's `view` property, paged with RetrieveOptions.maxObjects), then
ContinueRetrievePropertiesEx until no token is left, building name -> {property: value}.

Usage: observe_vms.py URL USER PASSWORD [--insecure] [--repeat N] [--warmup N] [--page-size 100]
  URL is e.g. https://127.0.0.1:8989/sdk (or http://...; a bare host:port means https).
Prints ONE JSON line on stdout:
  {"tool":"pyvmomi","version":...,"vms":N,"roundTrips":K,"seconds":median,"allSeconds":[...],
   "loginSeconds":...,  + extra keys: pages, pageSize, loginRoundTrips, calls, scheme, python}
roundTrips = HTTP requests (all POSTs: SOAP calls) sent during one observe, counted at
http.client level; login's requests (version discovery GETs, RetrieveContent, Login) are
reported separately in loginRoundTrips.
"""
import argparse
import http.client
import importlib.metadata
import json
import platform
import ssl
import statistics
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

from pyVim.connect import SmartConnect, Disconnect
from pyVmomi import vim, vmodl, SoapAdapter

PROPERTIES = [
    "name",
    "customValue",
    "config.hardware.numCPU",
    "config.hardware.memoryMB", "config.cpuHotAddEnabled", "config.memoryHotAddEnabled",
    "config.hardware.device",
    "config.annotation",
    "config.guestId",
    "config.template",
    "runtime.powerState",
    "guest.ipAddress",
    "resourcePool",
    "parent",
    "datastore",
    "network",
    "snapshot",
    "capability.snapshotOperationsSupported",
]

# ---- round-trip counting -------------------------------------------------------------------
# Every request pyVmomi sends (SOAP POSTs through SoapStubAdapter's pooled connections, and the
# GETs of SmartConnect's version discovery) goes through http.client.HTTPConnection.request
# (HTTPSConnection and pyVmomi's own connection classes inherit it).
http_requests = Counter()  # method -> count
soap_calls = Counter()  # SOAP method wsdlName -> count

_orig_request = http.client.HTTPConnection.request


def _counting_request(self, method, url, *args, **kwargs):
    http_requests[method] += 1
    return _orig_request(self, method, url, *args, **kwargs)


http.client.HTTPConnection.request = _counting_request

_orig_invoke = SoapAdapter.SoapStubAdapter.InvokeMethod


def _counting_invoke(self, mo, info, args, *rest, **kwargs):
    soap_calls[info.wsdlName] += 1
    return _orig_invoke(self, mo, info, args, *rest, **kwargs)


SoapAdapter.SoapStubAdapter.InvokeMethod = _counting_invoke


def reset_counters():
    http_requests.clear()
    soap_calls.clear()


# ---- the observe ---------------------------------------------------------------------------
def observe(content, page_size, properties):
    """Create view -> RetrievePropertiesEx -> ContinueRetrievePropertiesEx* -> DestroyView.
    Returns (vms: dict name -> props dict, pages)."""
    pc = content.propertyCollector
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        traversal = vmodl.query.PropertyCollector.TraversalSpec(
            name="traverseEntities", path="view", skip=False, type=vim.view.ContainerView)
        obj_spec = vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])
        prop_spec = vmodl.query.PropertyCollector.PropertySpec(
            type=vim.VirtualMachine, pathSet=properties, all=False)
        filter_spec = vmodl.query.PropertyCollector.FilterSpec(objectSet=[obj_spec], propSet=[prop_spec])
        options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=page_size)

        vms = {}
        pages = 0
        result = pc.RetrievePropertiesEx([filter_spec], options)
        while result is not None:
            pages += 1
            for oc in result.objects:
                props = {"_moref": oc.obj._moId}
                for p in oc.propSet:
                    props[p.name] = p.val
                name = props.get("name", oc.obj._moId)
                if name in vms:  # duplicate names are legal in vSphere; keep both
                    name = f"{name} ({oc.obj._moId})"
                vms[name] = props
            if not result.token:
                break
            result = pc.ContinueRetrievePropertiesEx(result.token)
        return vms, pages
    finally:
        view.DestroyView()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("user")
    ap.add_argument("password")
    ap.add_argument("--insecure", action="store_true", help="don't verify the server's TLS certificate")
    ap.add_argument("--repeat", type=int, default=1, help="measured runs (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (default 1)")
    ap.add_argument("--page-size", type=int, default=100, help="RetrieveOptions.maxObjects")
    ap.add_argument("--properties", help="comma-separated VirtualMachine properties (default: the list above); "
                    "converge-bench passes the Swift provider's own list")
    a = ap.parse_args()

    u = urlsplit(a.url if "://" in a.url else "https://" + a.url)
    scheme = u.scheme or "https"
    port = u.port or (80 if scheme == "http" else 443)
    path = u.path or "/sdk"

    connect_args = dict(protocol=scheme, host=u.hostname, port=port, user=a.user, pwd=a.password, path=path)
    if scheme == "https":
        if a.insecure:
            connect_args["disableSslCertValidation"] = True
        else:
            # pyVmomi silently skips verification for localhost/127.0.0.1/::1 when no context is
            # given; pass a verifying one so that "no --insecure" really means verify.
            connect_args["sslContext"] = ssl.create_default_context()

    reset_counters()
    t0 = time.perf_counter()
    si = SmartConnect(**connect_args)
    content = si.RetrieveContent()
    login_seconds = time.perf_counter() - t0
    login_round_trips = sum(http_requests.values())
    login_calls = dict(soap_calls)

    try:
        all_seconds = []
        round_trips = None
        calls = None
        pages = None
        vms = {}
        for i in range(a.warmup + a.repeat):
            vms = None  # free the previous run's objects outside the timed region
            reset_counters()
            t = time.perf_counter()
            vms, pages = observe(content, a.page_size, a.properties.split(",") if a.properties else PROPERTIES)
            dt = time.perf_counter() - t
            rt = sum(http_requests.values())
            if i >= a.warmup:
                all_seconds.append(dt)
            if round_trips is not None and rt != round_trips:
                print(f"observe_vms: warning: round trips changed {round_trips} -> {rt}", file=sys.stderr)
            round_trips, calls = rt, dict(soap_calls)
    finally:
        Disconnect(si)

    print(json.dumps({
        "tool": "pyvmomi",
        "version": importlib.metadata.version("pyvmomi"),
        "vms": len(vms),
        "roundTrips": round_trips,
        "seconds": round(statistics.median(all_seconds), 6),
        "allSeconds": [round(s, 6) for s in all_seconds],
        "loginSeconds": round(login_seconds, 6),
        "loginRoundTrips": login_round_trips,
        "loginCalls": login_calls,
        "pages": pages,
        "pageSize": a.page_size,
        "calls": calls,
        "scheme": scheme,
        "python": platform.python_version(),
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()

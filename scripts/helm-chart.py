#!/usr/bin/env python3
"""Lints and installs a chart with Helm's own library (helm-sdkpy), for the chart tests.

    helm-chart.py lint CHART
    helm-chart.py install CHART RELEASE NAMESPACE KUBECONFIG VALUES_JSON
    helm-chart.py uninstall RELEASE NAMESPACE KUBECONFIG

Prints the result as JSON on stdout (`install`: the release, with its rendered manifest);
exits 1 with the error on stderr when Helm refuses.
"""
import asyncio
import json
import sys

import helm_sdkpy


async def main(arguments):
    command = arguments[0]
    if command == "lint":
        result = await helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(arguments[1])
    elif command == "install":
        chart, release, namespace, kubeconfig, values = arguments[1:6]
        configuration = helm_sdkpy.Configuration(namespace=namespace, kubeconfig=kubeconfig)
        # No kubelet runs on the test API server: pods never start, so do not wait for them.
        result = await helm_sdkpy.Install(configuration).run(
            release, chart, values=json.loads(values), create_namespace=True, wait=False, timeout=120)
    elif command == "uninstall":
        release, namespace, kubeconfig = arguments[1:4]
        configuration = helm_sdkpy.Configuration(namespace=namespace, kubeconfig=kubeconfig)
        result = await helm_sdkpy.Uninstall(configuration).run(release, wait=False)
    else:
        raise SystemExit(f"unknown command {command}")
    json.dump(result, sys.stdout, default=str)


try:
    asyncio.run(main(sys.argv[1:]))
except helm_sdkpy.HelmError as error:
    print(f"helm: {error}", file=sys.stderr)
    sys.exit(1)

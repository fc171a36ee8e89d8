"""Helm 4's own library (PyPI `helm-sdkpy`) driven for the chart test: `lint CHART`, and
`install|upgrade KUBECONFIG NAMESPACE RELEASE CHART VALUES_JSON [--take-ownership]`. Prints
the result as JSON; on failure prints Helm's message on stderr and exits 1."""

import asyncio
import json
import sys

import helm_sdkpy as helm


def main(argv):
    command = argv[1]
    if command == "lint":
        result = asyncio.run(helm.Lint(helm.Configuration()).run(argv[2]))
    elif command == "install":
        kubeconfig, namespace, release, chart, values = argv[2:7]
        config = helm.Configuration(namespace=namespace, kubeconfig=kubeconfig)
        result = asyncio.run(
            helm.Install(config).run(
                release,
                chart,
                values=json.loads(values),
                create_namespace=True,
                # Nothing runs the operator's image here: the objects are what is checked.
                wait=False,
                timeout=60,
                take_ownership="--take-ownership" in argv[7:],
            )
        )
    elif command == "upgrade":
        kubeconfig, namespace, release, chart, values = argv[2:7]
        config = helm.Configuration(namespace=namespace, kubeconfig=kubeconfig)
        result = asyncio.run(
            helm.Upgrade(config).run(
                release,
                chart,
                values=json.loads(values),
                wait=False,
                timeout=60,
                take_ownership="--take-ownership" in argv[7:],
            )
        )
    else:
        raise SystemExit(f"unknown command {command!r}")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except helm.HelmError as error:
        print(error, file=sys.stderr)
        sys.exit(1)

"""A FAKE ``pulumi`` CLI (tests only): records its arguments and answers like the real one would for the
few commands the Automation API issues. It deploys nothing. ``FAKE_PULUMI_MODE`` picks a scenario:
``ok`` (default), ``locked`` (another update holds the lock), ``fail`` (a resource fails), ``policy`` (a
mandatory policy violation).
"""

import json
import os
import sys

STACK = "urn:pulumi:dev::skyendpoints::pulumi:pulumi:Stack::skyendpoints-dev"
SVC = (
    "urn:pulumi:dev::skyendpoints::skyendpoints:index:Endpoint$skyendpoints:index:ClusterSlice$"
    "kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService::glm-east-llmisvc"
)


def main(argv):
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as fh:
        fh.write(json.dumps(argv) + "\n")
    mode = os.environ.get("FAKE_PULUMI_MODE", "ok")
    args = [a for a in argv if a != "--non-interactive"]
    if args[:1] == ["version"]:
        # <= 3.205 makes the Automation API read engine events from a file (--event-log PATH) instead of
        # its gRPC event stream, so this script can replay them.
        print("v3.200.0")
        return 0
    cmd = args[0] if args else ""
    if cmd in ("preview", "up"):
        if mode == "locked":
            sys.stderr.write(
                "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) "
                "to end or delete the lock file with `pulumi cancel`.\n  file:///s/.pulumi/locks/x.json: "
                "created by someone@host (pid 4242) at 2026-11-29T02:00:00Z\n"
            )
            return 255
        log = args[args.index("--event-log") + 1] if "--event-log" in args else None
        events = [
            {"resourcePreEvent": {"metadata": {"op": "create", "urn": SVC, "type": SVC.split("$")[-1].split("::")[0]}}}
        ]
        if mode == "policy":  # what the engine reports for a mandatory CrossGuard violation
            events.append(
                {
                    "policyEvent": {
                        "resourceUrn": SVC,
                        "message": "GPU pod has no priorityClassName; use one of: skyendpoints-inference",
                        "color": "never",
                        "policyName": "gpu-priority-class",
                        "policyPackName": "skyendpoints",
                        "policyPackVersion": "0.1.0",
                        "policyPackVersionTag": "0.1.0",
                        "enforcementLevel": "mandatory",
                    }
                }
            )
        if mode == "fail":
            events.append(
                {
                    "diagnosticEvent": {
                        "message": "error: dial tcp 10.0.0.7:6443: connect: connection refused\n",
                        "severity": "error",
                        "urn": SVC,
                        "color": "never",
                    }
                }
            )
            events.append(
                {"resOpFailedEvent": {"metadata": {"op": "create", "urn": SVC, "type": "x"}, "status": 1, "steps": 1}}
            )
        else:
            events.append({"resOutputsEvent": {"metadata": {"op": "create", "urn": SVC, "type": "x"}}})
        events.append({"summaryEvent": {"resourceChanges": {"create": 1}}})
        events.append({"cancelEvent": {}})
        if log:
            with open(log, "a") as fh:
                for i, e in enumerate(events):
                    fh.write(json.dumps({"sequence": i, "timestamp": 0, **e}) + "\n")
        if mode == "policy":
            sys.stderr.write("error: preview failed\n")
            return 255
        if mode == "fail":
            sys.stderr.write("error: update failed\n")
            return 255
        print("Resources:\n    + 1 to create")
        return 0
    if args[:2] == ["stack", "output"]:
        outputs = {
            "endpoints": {"glm": {"url": "https://glm.example.com"}},
            "api_keys": {"glm": {"glm-api-key/api-key": "k"}},
        }
        if os.environ.get("FAKE_PULUMI_SEED_OUTPUT"):  # the backend's copy of the API-key seed
            outputs["sky_api_key_seed"] = os.environ["FAKE_PULUMI_SEED_OUTPUT"]
        print(json.dumps(outputs))
        return 0
    if args[:1] == ["config"] and "--json" in args:  # this workspace's stack config: empty
        print("{}")
        return 0
    if args[:2] == ["config", "set"] and "--secret" in args and "--stdin" not in args:
        # The value comes on stdin (never on the command line): record it for the test.
        with open(os.environ["FAKE_PULUMI_LOG"] + ".stdin", "a") as fh:
            fh.write(json.dumps({"key": args[-1], "stdin": sys.stdin.read()}) + "\n")
        return 0
    if args[:2] == ["stack", "history"]:
        print(
            json.dumps(
                [
                    {
                        "kind": "update",
                        "startTime": "2026-11-29T02:00:00.000Z",
                        "message": "",
                        "environment": {},
                        "config": {},
                        "result": "succeeded",
                        "endTime": "2026-11-29T02:00:01.000Z",
                        "resourceChanges": {"create": 1},
                    }
                ]
            )
        )
        return 0
    if args[:2] == ["stack", "export"]:
        print(json.dumps({"version": 3, "deployment": {"resources": [{"urn": STACK, "type": "pulumi:pulumi:Stack"}]}}))
        return 0
    return 0  # stack select/init, config set, stack import, ...


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

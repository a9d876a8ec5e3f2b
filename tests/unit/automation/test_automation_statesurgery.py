"""Dropping and restoring one cluster's resources in an exported deployment (pure JSON in, JSON out).

The deployment below has the shape ``pulumi stack export`` writes (urn/type/custom/parent/provider/
dependencies/propertyDependencies); it is hand-built because no engine runs here.
"""

from __future__ import annotations

from skyendpoints_iac.automation import statesurgery as ss

STACK = "urn:pulumi:dev::skyendpoints::pulumi:pulumi:Stack::skyendpoints-dev"


def urn(chain: str, name: str) -> str:
    return f"urn:pulumi:dev::skyendpoints::{chain}::{name}"


def deployment() -> dict:
    res = [{"urn": STACK, "type": "pulumi:pulumi:Stack", "custom": False}]
    for c in ("a", "b"):
        plat = urn("skyendpoints:index:ClusterPlatform", f"platform-{c}")
        prov = urn("pulumi:providers:kubernetes", f"k8s-{c}")
        slice_ = urn("skyendpoints:index:Endpoint$skyendpoints:index:ClusterSlice", f"glm-{c}")
        res += [
            {
                "urn": prov,
                "type": "pulumi:providers:kubernetes",
                "custom": True,
                "id": f"id-{c}",
                "parent": STACK,
                "inputs": {
                    "clusterIdentifier": c,
                    "context": f"ctx-{c}",
                    "kubeconfig": {
                        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                        "ciphertext": "xyz",
                    },
                },
            },
            {"urn": plat, "type": "skyendpoints:index:ClusterPlatform", "custom": False, "parent": STACK},
            {
                "urn": urn("skyendpoints:index:ClusterPlatform$kubernetes:core/v1:Namespace", f"platform-{c}-ns"),
                "type": "kubernetes:core/v1:Namespace",
                "custom": True,
                "parent": plat,
                "provider": f"{prov}::id-{c}",
                "id": "ns",
            },
        ]
        if c == "a":
            res.append(
                {
                    "urn": urn("skyendpoints:index:Endpoint", "glm"),
                    "type": "skyendpoints:index:Endpoint",
                    "custom": False,
                    "parent": STACK,
                }
            )
        res += [
            {
                "urn": slice_,
                "type": "skyendpoints:index:ClusterSlice",
                "custom": False,
                "parent": urn("skyendpoints:index:Endpoint", "glm"),
            },
            {
                "urn": urn(
                    "skyendpoints:index:Endpoint$skyendpoints:index:ClusterSlice$kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService",
                    f"glm-{c}-llmisvc",
                ),
                "type": "kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService",
                "custom": True,
                "parent": slice_,
                "provider": f"{prov}::id-{c}",
                "id": "sky-glm/glm",
                "dependencies": [
                    urn("skyendpoints:index:ClusterPlatform$kubernetes:core/v1:Namespace", f"platform-{c}-ns")
                ],
            },
        ]
    gw_deps = [
        urn(
            "skyendpoints:index:Endpoint$skyendpoints:index:ClusterSlice$kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService",
            f"glm-{c}-llmisvc",
        )
        for c in ("a", "b")
    ]
    res.append(
        {
            "urn": urn("skyendpoints:index:GlobalGateway", "front-door"),
            "type": "skyendpoints:index:GlobalGateway",
            "custom": False,
            "parent": STACK,
            "dependencies": list(gw_deps),
            "propertyDependencies": {"targets": list(gw_deps)},
        }
    )
    return {"manifest": {}, "resources": res}


def names(resources) -> set[str]:
    return {r["urn"].rsplit("::", 1)[-1] for r in resources}


def test_drop_removes_provider_users_and_emptied_components():
    new, gone = ss.drop_cluster(deployment(), "b")
    assert names(gone) == {"k8s-b", "platform-b", "platform-b-ns", "glm-b", "glm-b-llmisvc"}
    kept = names(new["resources"])
    assert {"k8s-a", "platform-a", "platform-a-ns", "glm", "glm-a", "glm-a-llmisvc", "front-door"} <= kept
    assert not kept & names(gone)


def test_drop_cuts_references_to_dropped_resources():
    new, _ = ss.drop_cluster(deployment(), "b")
    gw = next(r for r in new["resources"] if r["urn"].endswith("front-door"))
    assert all("glm-b" not in u for u in gw["dependencies"]) and len(gw["dependencies"]) == 1
    assert all("glm-b" not in u for u in gw["propertyDependencies"]["targets"])


def test_drop_matches_by_context_too_and_leaves_input_untouched():
    original = deployment()
    for r in original["resources"]:
        if r["type"] == ss.PROVIDER_TYPE:
            r["inputs"].pop("clusterIdentifier")
    _, gone = ss.drop_cluster(original, "b", context="ctx-b")
    assert "k8s-b" in names(gone)
    assert len(original["resources"]) == len(deployment()["resources"])  # pure: input not mutated


def test_drop_of_unknown_cluster_is_a_noop():
    new, gone = ss.drop_cluster(deployment(), "zz")
    assert gone == [] and new == deployment()


def test_restore_round_trip_and_ordering():
    new, gone = ss.drop_cluster(deployment(), "b")
    back = ss.restore_cluster(new, gone)
    assert names(back["resources"]) == names(deployment()["resources"])
    seen: set[str] = set()
    for r in back["resources"]:  # every parent and provider precedes its user: the engine's integrity rule
        if r.get("parent"):
            assert r["parent"] in seen, r["urn"]
        if r.get("provider"):
            assert r["provider"].split("::id-")[0] in seen, r["urn"]
        seen.add(r["urn"])
    assert ss.restore_cluster(back, gone) == back  # idempotent


def test_restore_cuts_links_to_resources_that_are_gone():
    new, gone = ss.drop_cluster(deployment(), "b")
    for entry in gone:  # pretend the Endpoint component was deleted meanwhile
        if entry.get("parent", "").endswith("::glm"):
            entry["parent"] = urn("skyendpoints:index:Endpoint", "deleted")
    back = ss.restore_cluster(new, gone)
    slice_b = next(r for r in back["resources"] if r["urn"].endswith("::glm-b"))
    assert slice_b["parent"] == STACK


def test_clusters_in_state_and_summary():
    res = deployment()["resources"]
    assert ss.clusters_in_state(res, {"a": "ctx-a", "b": None, "c": None}) == ["a", "b"]
    _, gone = ss.drop_cluster(deployment(), "a")
    lines = ss.summarise(gone)
    assert "pulumi:providers:kubernetes k8s-a" in lines
    assert not any("ciphertext" in ln for ln in lines)


def test_the_stack_resource_is_never_dropped():
    only_b = [r for r in deployment()["resources"] if r["type"] == "pulumi:pulumi:Stack" or "-b" in r["urn"]]
    new, gone = ss.drop_cluster({"resources": only_b}, "b")
    assert [r["type"] for r in new["resources"]] == ["pulumi:pulumi:Stack"]
    assert all(r["type"] != "pulumi:pulumi:Stack" for r in gone)

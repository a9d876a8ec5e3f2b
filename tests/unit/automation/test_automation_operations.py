"""``up``/``down``/``rollback`` logic with the engine boundary FAKED (``FakeEngine``: no pulumi CLI runs in
unit tests). Placement, spec loading, revision records and failure summaries are the real code. The real
engine runs these same functions in the local-fleet e2e tests."""

from __future__ import annotations

import pytest
from _automation_fakes import FakeBackend, RecordingUi, cluster_update_events

from skyendpoints_iac.automation.engine import StackLocked
from skyendpoints_iac.automation.operations import NothingPlaced, Runtime, UpdateFailed, down, rollback, up
from skyendpoints_iac.automation.program import deployment_inputs
from skyendpoints_iac.errors import InvalidInput, SkyError
from tests.conftest import EXAMPLES

FLEET = str(EXAMPLES / "fleet.yaml")
GLM = (EXAMPLES / "glm-prod.yaml").read_text()


def spec(name="glm-prod", replicas=2, acc="B200:8", extra=""):
    return f"name: {name}\nmodel: zai-org/GLM-5.2\nresources:\n  accelerators: {acc}\nreplicas: {replicas}\n{extra}"


@pytest.fixture
def world(tmp_path):
    backend, ui = FakeBackend(), RecordingUi()
    rt = Runtime(env="dev", state_dir=tmp_path, engine_factory=backend.factory, ui=ui)
    return rt, backend, ui


def test_up_places_previews_confirms_updates_and_records(world):
    rt, backend, ui = world
    backend.events = cluster_update_events(["coreweave-us-east"], endpoint="glm-prod")
    result = up(rt, GLM, "glm-prod.yaml", FLEET)
    assert backend.ops() == ["preview", "up"]
    desired = backend.calls[-1][1]
    assert set(desired.endpoints) == {"glm-prod"} and desired.endpoints["glm-prod"].placement is result.placement
    assert ui.questions == ["Deploy glm-prod to environment 'dev'?"]
    assert ui.plans[0][1] == {"create": 2 * len(result.placement.clusters)}
    assert result.url == "https://glm-prod.example.com" and result.revision.rev == 1
    assert result.revision.action == "up" and result.revision.outcome == "succeeded"
    # every fleet cluster gets its platform (failover targets are ready); none was purged
    assert desired.platform_clusters == {"gke-us-east", "coreweave-us-east", "onprem-eu"}
    assert rt.records.purged() == set()
    # what the real program receives: every placement pinned, so it deploys exactly what was shown
    inputs = deployment_inputs(desired)
    assert [s.name for s in inputs.specs] == ["glm-prod"] and inputs.placements["glm-prod"] is result.placement


def test_declined_confirmation_and_preview_only_change_nothing(world):
    rt, backend, ui = world
    assert up(rt, GLM, "g.yaml", FLEET, preview_only=True).applied is False
    ui.answer = False
    with pytest.raises(SkyError, match="cancelled; nothing was changed"):
        up(rt, GLM, "g.yaml", FLEET)
    assert backend.ops() == ["preview", "preview"] and rt.store.history("dev", "glm-prod") == []


def test_unplaced_fixed_replicas_refused_unless_allow_partial(world):
    rt, backend, _ = world
    big = spec(replicas=40)
    with pytest.raises(SkyError, match=r"(?s)glm-prod: \d+ of 40 replicas fit on no cluster .*--allow-partial") as exc:
        up(rt, big, "big.yaml", FLEET, yes=True)
    assert exc.value.exit_code == 1 and backend.ops() == []
    result = up(rt, big, "big.yaml", FLEET, yes=True, allow_partial=True)
    assert result.placement.unplaced > 0 and "deploying the rest (--allow-partial)" in result.revision.message


def test_nothing_placeable_is_refused_even_with_allow_partial(world):
    rt, _, _ = world
    with pytest.raises(NothingPlaced, match="no cluster can run a replica"):
        up(rt, spec(acc="A100:8"), "a.yaml", FLEET, yes=True, allow_partial=True)


def test_invalid_spec_text_is_invalid_input(world):
    rt, _, _ = world
    with pytest.raises(InvalidInput):
        up(rt, "name: x\n", "bad.yaml", FLEET, yes=True)


def test_failed_update_is_summarised_and_recorded_and_next_up_repairs(world):
    rt, backend, _ = world
    backend.events = cluster_update_events(
        ["coreweave-us-east"],
        endpoint="glm-prod",
        fail="coreweave-us-east",
        why="error: timed out waiting for the condition",
    )
    backend.fail_on["up"] = "error: update failed"
    with pytest.raises(UpdateFailed) as exc:
        up(rt, GLM, "g.yaml", FLEET, yes=True)
    text = str(exc.value)
    assert "coreweave-us-east/glm-prod: kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService" in text
    assert "timed out waiting" in text and "sky endpoint logs" in text
    [rev] = rt.store.history("dev", "glm-prod")
    assert rev.outcome == "failed" and rt.store.live("dev") == {}
    backend.fail_on.clear()
    backend.events = []
    assert up(rt, GLM, "g.yaml", FLEET, yes=True).revision.rev == 2


def test_second_up_keeps_replicas_where_they_are(world):
    rt, _backend, _ = world
    first = up(rt, GLM, "g.yaml", FLEET, yes=True).placement
    second = up(rt, spec(replicas=3), "g.yaml", None, yes=True).placement  # fleet remembered
    for p in first.placements:
        assert second.cluster(p.cluster).replicas >= p.replicas
    assert rt.store.last_good("dev", "glm-prod").rev == 2


def test_other_endpoints_of_the_env_stay_in_the_program(world):
    rt, backend, _ = world
    up(rt, GLM, "g.yaml", FLEET, yes=True)
    up(rt, spec(name="h100-chat", acc="H100:8", replicas=1), "h.yaml", None, yes=True)
    assert set(backend.calls[-1][1].endpoints) == {"glm-prod", "h100-chat"}


def test_down_keeps_shared_platforms_and_purge_removes_only_unused(world):
    rt, backend, _ = world
    glm = up(rt, GLM, "g.yaml", FLEET, yes=True).placement
    h = up(rt, spec(name="h100-chat", acc="H100:8", replicas=1), "h.yaml", None, yes=True).placement
    down(rt, "h100-chat", yes=True)
    d = backend.calls[-1][1]
    assert set(d.endpoints) == {"glm-prod"} and d.used_clusters == set(glm.clusters)
    assert set(h.clusters) <= d.platform_clusters  # kept although unused (no --purge-platform)
    assert set(rt.store.live("dev")) == {"glm-prod"}
    down(rt, "glm-prod", yes=True, purge_platform=True)
    # last endpoint gone, platforms purged: an update that deletes every resource and keeps only the record
    assert backend.ops()[-1] == "up" and backend.calls[-1][1].platform_clusters == set()
    assert backend.outputs["sky_record"]["purged_platforms"] == ["coreweave-us-east", "gke-us-east", "onprem-eu"]
    assert backend.outputs["sky_record"]["endpoints"] == {}
    assert rt.records.purged() == {"gke-us-east", "coreweave-us-east", "onprem-eu"} and rt.store.live("dev") == {}
    # an endpoint placed again brings its clusters' platforms back, and only those
    again = up(rt, GLM, "g.yaml", FLEET, yes=True).placement
    assert backend.calls[-1][1].platform_clusters == set(again.clusters)
    assert rt.records.purged() == {"gke-us-east", "coreweave-us-east", "onprem-eu"} - set(again.clusters)


def test_down_purge_never_removes_a_platform_in_use(world):
    rt, backend, ui = world
    glm = up(rt, GLM, "g.yaml", FLEET, yes=True).placement
    up(rt, spec(name="h100-chat", acc="H100:8", replicas=1), "h.yaml", None, yes=True)
    down(rt, "h100-chat", yes=True, purge_platform=True)
    d = backend.calls[-1][1]
    assert d.platform_clusters == set(glm.clusters)  # exactly the clusters still in use
    assert [c.name for c in d.program_fleet().clusters] == [
        c for c in ("gke-us-east", "coreweave-us-east", "onprem-eu") if c in glm.clusters
    ]
    assert any(line.startswith("removing unused platforms:") for line in ui.lines)


def test_down_unknown_endpoint(world):
    rt, _, _ = world
    up(rt, GLM, "g.yaml", FLEET, yes=True)
    with pytest.raises(SkyError, match=r"'nope' is not deployed in environment 'dev' \(deployed: glm-prod\)"):
        down(rt, "nope", yes=True)


def test_rollback_redeploys_an_earlier_spec_as_a_new_revision(world):
    rt, backend, _ = world
    up(rt, GLM, "g.yaml", FLEET, yes=True)
    up(rt, spec(replicas=3), "g.yaml", None, yes=True)
    result = rollback(rt, "glm-prod", 1, yes=True)
    assert result.revision.rev == 3 and result.revision.action == "rollback"
    assert result.revision.spec_text == GLM
    assert backend.calls[-1][1].endpoints["glm-prod"].spec.replicas == 2
    with pytest.raises(SkyError, match="no revision 7"):
        rollback(rt, "glm-prod", 7, yes=True)


def test_held_lock_is_reported_and_nothing_recorded(world):
    rt, backend, _ = world
    backend.locked = True
    with pytest.raises(StackLocked):
        up(rt, GLM, "g.yaml", FLEET, yes=True)
    assert rt.store.history("dev", "glm-prod") == []


def test_lock_message_names_the_stale_lock_dir():
    from skyendpoints_iac.automation.backend import Backend
    from skyendpoints_iac.automation.engine import lock_message

    msg = lock_message(
        "prod",
        Backend("file:///s/state", __import__("pathlib").Path("/s")),
        " stderr: error: the stack is currently locked by 1 lock(s). Either wait ...\n"
        "  file:///s/.pulumi/locks/x.json: created by someone@host (pid 42) at 2026-11-29\n",
    )
    assert msg.startswith("stack 'prod' is locked by another update") and "nothing was changed" in msg
    assert "/s/state/.pulumi/locks/organization/skyendpoints/prod/" in msg
    assert "\n  the stack is currently locked by 1 lock(s)" in msg and "stderr:" not in msg
    assert "created by someone@host (pid 42)" in msg


def test_no_fleet_anywhere_is_invalid_input(world):
    rt, _, _ = world
    with pytest.raises(InvalidInput, match="no recorded fleet file: pass --fleet"):
        up(rt, GLM, "g.yaml", None, yes=True)


def test_a_fleet_that_drops_another_endpoints_cluster_is_refused(world, tmp_path):
    rt, _backend, _ = world
    h = up(rt, spec(name="h100-chat", acc="H100:8", replicas=1), "h.yaml", FLEET, yes=True).placement
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text("clusters:\n  - {name: coreweave-us-east, nodes: [{accelerator: B200, gpus: 8, count: 2}]}\n")
    with pytest.raises(
        InvalidInput, match=f"cluster '{h.clusters[0]}' is missing, but endpoint 'h100-chat' runs there"
    ):
        up(rt, GLM, "g.yaml", str(smaller), yes=True)

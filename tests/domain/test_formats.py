"""GitOps formats: the kustomize images: edit and per-image Helm keys, over a corpus with exact expected bytes.

Each folder of tests/testdata/formats holds ``input.yaml``, ``case.json`` (the edit asked for, and the
refusal code when it must be refused) and, unless refused, ``expected.yaml``: the exact bytes the edit
must produce. The expected files were written by hand-checked diffs, one per case (see its "note").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tagrelay.config import App
from tagrelay.domain.gitops_format import GitOpsEdit, GitOpsFormat, HelmValues, Kustomize
from tagrelay.domain.kustomize_patch import ImageChange, ImageFields, read_images, set_images
from tagrelay.domain.values_patch import InvalidEditRequest, ValuesFileError, plan_values, read_values

CORPUS = Path(__file__).resolve().parent.parent / "testdata" / "formats"
CASES = sorted(path.name for path in CORPUS.iterdir() if path.is_dir())
WEB = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mosaic-life/web"
DIGEST = "sha256:" + "ab" * 32


def read_exact(path: Path) -> str:
    # Not read_text: text mode would turn CRLF into LF and hide what is under test.
    return path.read_bytes().decode("utf-8")


def spec(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((CORPUS / name / "case.json").read_text())
    return result


def format_and_digests(case: dict[str, Any]) -> tuple[GitOpsFormat | None, str, dict[str, str]]:
    """The case as a GitOpsFormat (each image named after its entry or key), the tag and the digests;
    None when the case is not one tag for every image with all or no digests (kustomize pins all or none)."""
    if case["format"] == "kustomize":
        images = case["images"]
        tags = {change["tag"] for change in images.values()}
        digests = {name: change["digest"] for name, change in images.items() if "digest" in change}
        if len(tags) != 1 or (digests and len(digests) != len(images)):
            return None, "", {}
        return Kustomize(names={name: name for name in images}, pin=bool(digests)), tags.pop(), digests
    values: dict[str, str] = case["values"]
    tag_keys = {key: key for key, value in values.items() if not value.startswith("sha256:")}
    digest_keys = {key: key for key, value in values.items() if value.startswith("sha256:")}
    (tag,) = {values[key] for key in tag_keys}
    return HelmValues(tag_keys=tag_keys, digest_keys=digest_keys), tag, {key: values[key] for key in digest_keys}


def test_the_corpus_has_every_kind_of_file_the_issue_names() -> None:
    inputs = {name: (CORPUS / name / "input.yaml").read_bytes() for name in CASES}
    assert len(CASES) >= 15
    assert sum(spec(name)["format"] == "kustomize" for name in CASES) >= 10
    assert sum(spec(name)["format"] == "helm" for name in CASES) >= 5
    assert any(b"\r\n" in data for data in inputs.values()), "CRLF"
    assert any(b"#" in data for data in inputs.values()), "comments"
    assert any(b"[{" in data or b"- {" in data for data in inputs.values()), "flow style"
    assert any(b"&" in data and b"*" in data for data in inputs.values()), "anchors"
    assert {"duplicate_image", "duplicate_key", "image_missing"} <= {spec(name).get("refused") for name in CASES}
    missing_fields = [name for name in CASES if "missing" in name and "refused" not in spec(name)]
    assert len(missing_fields) >= 3, "missing newTag / digest fields"
    for name in CASES:
        assert (CORPUS / name / "expected.yaml").exists() != ("refused" in spec(name)), name


@pytest.mark.parametrize("name", CASES)
def test_corpus_edit_gives_the_exact_expected_bytes(name: str) -> None:
    case = spec(name)
    before = read_exact(CORPUS / name / "input.yaml")

    if "refused" in case:
        with pytest.raises(ValuesFileError) as refused:
            edit_as_asked(case, before)
        assert refused.value.code == case["refused"], str(refused.value)
        assert refused.value.line is None or refused.value.line >= 1
        return

    after, changed = edit_as_asked(case, before)
    expected = (CORPUS / name / "expected.yaml").read_bytes()
    assert after.encode("utf-8") == expected
    assert changed == (expected != before.encode("utf-8"))
    # YAML readers see the strings asked for (never a float), and a second edit changes nothing.
    loaded = json.dumps(YAML(typ="safe", pure=True).load(after))
    assert all(f'"{value}"' in loaded for value in asked_values(case))
    assert edit_as_asked(case, after) == (after, False)


def edit_as_asked(case: dict[str, Any], text: str) -> tuple[str, bool]:
    if case["format"] == "kustomize":
        changes = {name: ImageChange(change["tag"], change.get("digest")) for name, change in case["images"].items()}
        kustomize_edit = set_images(text, changes)
        assert read_images(kustomize_edit.text, list(changes)) == {
            name: ImageFields(change.tag, change.digest or kustomize_edit.previous[name].digest)
            for name, change in changes.items()
        }
        return kustomize_edit.text, bool(kustomize_edit.changed)
    plan = plan_values(text, case["values"])
    assert read_values(plan.text, list(case["values"])) == case["values"]
    return plan.text, bool(plan.changed)


def asked_values(case: dict[str, Any]) -> list[str]:
    if case["format"] == "kustomize":
        return [value for change in case["images"].values() for value in change.values()]
    return list(case["values"].values())


@pytest.mark.parametrize(
    "name", [name for name in CASES if "refused" not in spec(name) and format_and_digests(spec(name))[0] is not None]
)
def test_corpus_through_the_format_seam(name: str) -> None:
    """The same files through GitOpsFormat, where the case is one tag for every image (as the promoter asks)."""
    case = spec(name)
    before = read_exact(CORPUS / name / "input.yaml")
    gitops_format, tag, digests = format_and_digests(case)
    assert gitops_format is not None
    edit = gitops_format.plan(before, tag, digests)
    assert edit.text.encode("utf-8") == (CORPUS / name / "expected.yaml").read_bytes()
    deployed = gitops_format.read(edit.text)
    assert set(deployed.tags.values()) == {tag}
    assert {image: digest for image, digest in deployed.digests.items() if image in digests} == digests
    assert gitops_format.plan(edit.text, tag, digests) == GitOpsEdit(text=edit.text, previous=deployed, fields=())


def test_previous_values_are_reported_per_image() -> None:
    text = read_exact(CORPUS / "helm-per-image-keys-with-digests" / "input.yaml")
    helm = HelmValues(
        tag_keys={"web": "web.image.tag", "api": "api.image.tag"},
        digest_keys={"web": "web.image.digest", "api": "api.image.digest"},
    )
    edit = helm.plan(text, "prod-cf3124b", {"web": DIGEST, "api": DIGEST})
    assert edit.previous.tags == {"web": "prod-545ef16", "api": "prod-545ef16"}
    assert edit.previous.digests == {"web": "", "api": "sha256:" + "e5" * 32}
    assert edit.previous.tag == "prod-545ef16" and not edit.previous.mixed
    assert edit.fields == ("web.image.tag", "api.image.tag", "web.image.digest", "api.image.digest")


def test_images_running_different_tags_are_all_reported() -> None:
    helm = HelmValues(tag_keys={"web": "web.tag", "api": "api.tag"})
    deployed = helm.read("web:\n  tag: prod-2222222\napi:\n  tag: prod-1111111\n")
    assert deployed.mixed
    assert deployed.tag == "prod-2222222"
    assert deployed.distinct_tags == ["prod-2222222", "prod-1111111"]


def test_pinning_without_a_digest_is_an_invalid_request() -> None:
    with pytest.raises(InvalidEditRequest, match="no digest for web"):
        Kustomize(names={"web": WEB}, pin=True).plan(f"images:\n- name: {WEB}\n", "abc1234", {})
    with pytest.raises(InvalidEditRequest, match="no digest for web"):
        HelmValues(tag_keys={"web": "t"}, digest_keys={"web": "d"}).plan("t: a\nd: b\n", "abc1234", {})


@pytest.mark.parametrize(
    ("tag", "digest"),
    [("not a tag", None), ("-leading-dash", None), ("abc1234", "sha256:short"), ("abc1234", "sha512:" + "a" * 128)],
)
def test_an_invalid_tag_or_digest_is_refused_before_the_file_is_read(tag: str, digest: str | None) -> None:
    with pytest.raises(InvalidEditRequest):
        set_images("this is: [not, parsed", {WEB: ImageChange(tag, digest)})


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "images:\n- name: w\n  newTag: old # c\n",
            'images:\n- name: w\n  newTag: "new" # c\n',
            id="inline-comment",
        ),
        pytest.param("images:\n- name: w\n", 'images:\n- name: w\n  newTag: "new"\n', id="added"),
        pytest.param("images:\n- name: w", 'images:\n- name: w\n  newTag: "new"', id="added-at-end-of-file"),
        pytest.param(
            "images:\n  - name: w\n    newName: x # why\n\n  - name: v\n",
            'images:\n  - name: w\n    newName: x # why\n    newTag: "new"\n\n  - name: v\n',
            id="added-before-blank-line",
        ),
        pytest.param("images: [{name: w}]\n", 'images: [{name: w, newTag: "new"}]\n', id="flow-added"),
        pytest.param("images: [{name: w, }]\n", 'images: [{name: w, newTag: "new", }]\n', id="flow-trailing-comma"),
        pytest.param("images:\n- name: w\n  newTag: ''\n", 'images:\n- name: w\n  newTag: "new"\n', id="empty-quoted"),
        pytest.param(
            "images:\n- newName: x\n  name: w\n", 'images:\n- newName: x\n  name: w\n  newTag: "new"\n', id="name-last"
        ),
    ],
)
def test_kustomize_value_styles(before: str, after: str) -> None:
    assert set_images(before, {"w": ImageChange("new")}).text == after


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("resources: [a.yaml]\n", "key_missing"),
        ("images:\n", "image_missing"),
        ("images: []\n", "image_missing"),
        ("- name: w\n", "not_a_mapping"),
        ("images:\n- w\n", "unsupported_value"),
        ("images:\n- newTag: a\n", "unsupported_value"),
        ("images:\n- name: w\n  newTag: [a]\n", "unsupported_value"),
        ("images:\n- name: w\n  newTag: !!str a\n", "unsupported_value"),
        ("images:\n- name: w\n  newTag: |\n    a\n", "unsupported_value"),
        ("base: &b {name: w, newTag: a}\nimages:\n- *b\n", "unsupported_value"),
        ("d: &d {newTag: a}\nimages:\n- name: w\n  <<: *d\n", "unsupported_value"),
        ("images:\n- name: w\n  newName:\n    host: x\n", "unsupported_value"),
        ("images:\n- name: w\n  newTag: a\n<<<<<<< HEAD\n", "unparsable"),
        ("images:\n- {name: w, newTag: a}\n- {name: w}\n", "duplicate_image"),
    ],
)
def test_kustomize_refusals(text: str, code: str) -> None:
    with pytest.raises(ValuesFileError) as refused:
        set_images(text, {"w": ImageChange("new")})
    assert refused.value.code == code, str(refused.value)
    # The message says what to do by hand.
    assert any(
        word in str(refused.value) for word in ("Add", "add", "Fix", "write", "merge", "Merge", "by hand", "Remove")
    )


def test_read_images_reports_absent_fields_as_none() -> None:
    text = f"images:\n- name: {WEB}\n  digest: {DIGEST}\n- name: b\n  newTag: '7'\n"
    images = read_images(text, [WEB, "b"])
    assert (images[WEB].tag, images[WEB].digest) == (None, DIGEST)
    assert (images["b"].tag, images["b"].digest) == ("7", None)


def _app(gitops: dict[str, Any]) -> App:
    return App.model_validate(
        {
            "source_repo": "mosaic-stories/mosaic-life",
            "registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "images": ["mosaic-life/web", "mosaic-life/api"],
            "gitops": {"repo": "mosaic-stories/gitops", **gitops},
            "environments": {"prod": {"branch": "main"}},
            "signature": "none",
        }
    )


def test_configuration_chooses_the_format() -> None:
    helm = _app({})
    assert helm.gitops_format == HelmValues(
        tag_keys={"mosaic-life/web": "global.imageTag", "mosaic-life/api": "global.imageTag"}
    )
    assert helm.gitops.values_path("prod") == "environments/prod/values.yaml"
    per_image = _app(
        {
            "keys": {"mosaic-life/web": "web.image.tag", "mosaic-life/api": "api.image.tag"},
            "digest_keys": {"mosaic-life/web": "web.image.digest"},
        }
    )
    assert per_image.gitops_format == HelmValues(
        tag_keys={"mosaic-life/web": "web.image.tag", "mosaic-life/api": "api.image.tag"},
        digest_keys={"mosaic-life/web": "web.image.digest"},
    )
    kustomize = _app({"format": "kustomize", "pin_digests": True, "images": {"mosaic-life/api": "api"}})
    assert kustomize.gitops_format == Kustomize(names={"mosaic-life/web": WEB, "mosaic-life/api": "api"}, pin=True)
    assert kustomize.gitops.values_path("prod") == "environments/prod/kustomization.yaml"


@pytest.mark.parametrize(
    ("gitops", "problem"),
    [
        ({"keys": {"mosaic-life/web": "web.image.tag"}}, "no key for ['mosaic-life/api']"),
        ({"keys": {"mosaic-life/web": "a.tag", "mosaic-life/api": "a.tag"}}, "same key path to two images"),
        ({"key": "x.y", "keys": {"mosaic-life/web": "a", "mosaic-life/api": "b"}}, "not both"),
        ({"digest_keys": {"mosaic-life/nope": "d"}}, "not among images"),
        ({"digest_keys": {"mosaic-life/web": "global.imageTag"}}, "also a tag key"),
        ({"format": "kustomize", "keys": {"mosaic-life/web": "a", "mosaic-life/api": "b"}}, "only for format helm"),
        ({"pin_digests": True}, "only for format kustomize"),
        ({"format": "jsonnet"}, "format"),
        ({"write": "push"}, "write"),
    ],
)
def test_configuration_refuses_options_that_do_not_fit(gitops: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        _app(gitops)

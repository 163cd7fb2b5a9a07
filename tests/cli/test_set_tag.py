"""`tagrelay set-tag`: the byte-exact edit on a local file, its output, and every refusal leaving the file alone."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tagrelay.cli.main import main

CORPUS_DIR = Path(__file__).resolve().parent.parent / "testdata" / "values"
STAGING_4F831A8 = CORPUS_DIR / "seed-4f831a8-staging-quoted-tag-header-comment.yaml"
CONSOLE_SCRIPT = Path(sys.executable).parent / "tagrelay"
AN_HOUR_AGO_NS = 1_700_000_000_000_000_000


@pytest.fixture
def gitops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clone-like folder with the seed's staging values, as the working directory."""
    values = tmp_path / "environments" / "staging" / "values.yaml"
    values.parent.mkdir(parents=True)
    shutil.copyfile(STAGING_4F831A8, values)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fingerprint(path: Path) -> tuple[bytes, int, int]:
    status = path.stat()
    return path.read_bytes(), status.st_mtime_ns, stat.S_IMODE(status.st_mode)


def age(path: Path) -> None:
    # An old mtime, so that any rewrite, however fast, shows up as a changed mtime.
    os.utime(path, ns=(AN_HOUR_AGO_NS, AN_HOUR_AGO_NS))


def write_and_age(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    age(path)
    return path


def test_sets_the_tag_and_says_what_it_changed(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = gitops / "environments/staging/values.yaml"
    before = values.read_bytes()

    code = main(["set-tag", "environments/staging/values.yaml", "--tag", "staging-0d1e2f3"])

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out == 'environments/staging/values.yaml: global.imageTag "staging-545ef16" -> "staging-0d1e2f3"\n'
    assert before.count(b'"staging-545ef16"') == 1
    assert values.read_bytes() == before.replace(b'"staging-545ef16"', b'"staging-0d1e2f3"')


def test_an_unquoted_tag_is_written_quoted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = tmp_path / "values.yaml"
    shutil.copyfile(CORPUS_DIR / "seed-290cffc-prod-unquoted-tag.yaml", values)
    before = values.read_bytes()

    assert main(["set-tag", str(values), "--tag", "prod-0a1b2c3"]) == 0

    assert values.read_bytes() == before.replace(b"imageTag: prod-cf3124b\n", b'imageTag: "prod-0a1b2c3"\n')
    assert capsys.readouterr().out.endswith('global.imageTag "prod-cf3124b" -> "prod-0a1b2c3"\n')


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        (
            "crlf-line-endings.yaml",
            b'imageTag: "prod-1a2b3c4" # set by CI\r\n',
            b'imageTag: "prod-9a9b9c9" # set by CI\r\n',
        ),
        ("utf8-bom.yaml", b'imageTag: "staging-3344556"\n', b'imageTag: "prod-9a9b9c9"\n'),
        (
            "crlf-no-final-newline-tag-on-last-line.yaml",
            b"imageTag: staging-9f8e7d6",
            b'imageTag: "prod-9a9b9c9"',
        ),
        (
            "unicode-comments-and-values.yaml",
            'imageTag: "prod-8899eef" # étiquette'.encode(),
            'imageTag: "prod-9a9b9c9" # étiquette'.encode(),
        ),
    ],
)
def test_line_ends_bom_and_non_ascii_bytes_survive(tmp_path: Path, name: str, old: bytes, new: bytes) -> None:
    values = tmp_path / name
    shutil.copyfile(CORPUS_DIR / name, values)
    before = values.read_bytes()

    assert main(["set-tag", str(values), "--tag", "prod-9a9b9c9"]) == 0

    assert before.count(old) == 1
    assert values.read_bytes() == before.replace(old, new)


def test_key_option_edits_another_key_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs_values = tmp_path / "docs-values.yaml"
    shutil.copyfile(CORPUS_DIR / "998b498-docs-values-no-final-newline.yaml", docs_values)

    assert main(["set-tag", str(docs_values), "--key", "image.tag", "--tag", "prod-cf3124b"]) == 0

    assert docs_values.read_bytes() == b'image:\n  tag: "prod-cf3124b"'
    assert capsys.readouterr().out.endswith(': image.tag "latest" -> "prod-cf3124b"\n')


def test_an_absent_value_is_reported_as_no_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = write_and_age(tmp_path / "values.yaml", b"global:\n  imageTag: # CI\n")

    assert main(["set-tag", str(values), "--tag", "abc1234"]) == 0

    assert values.read_bytes() == b'global:\n  imageTag: "abc1234" # CI\n'
    assert capsys.readouterr().out.endswith('global.imageTag (no value) -> "abc1234"\n')


def test_already_set_writes_nothing(gitops: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = gitops / "environments/staging/values.yaml"
    age(values)
    before = fingerprint(values)

    code = main(["set-tag", "environments/staging/values.yaml", "--tag", "staging-545ef16"])

    assert code == 0
    assert capsys.readouterr().out == (
        'environments/staging/values.yaml: global.imageTag already "staging-545ef16"; nothing to do\n'
    )
    assert fingerprint(values) == before


def test_permissions_are_kept_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    values = write_and_age(tmp_path / "values.yaml", b"global:\n  imageTag: old\n")
    values.chmod(0o640)

    assert main(["set-tag", str(values), "--tag", "abc1234"]) == 0

    assert stat.S_IMODE(values.stat().st_mode) == 0o640
    assert sorted(path.name for path in tmp_path.iterdir()) == ["values.yaml"]


def test_a_symlink_stays_a_link_and_its_target_is_edited(tmp_path: Path) -> None:
    target = write_and_age(tmp_path / "real-values.yaml", b"global:\n  imageTag: old\n")
    link = tmp_path / "values.yaml"
    link.symlink_to(target.name)

    assert main(["set-tag", str(link), "--tag", "abc1234"]) == 0

    assert link.is_symlink()
    assert target.read_bytes() == b'global:\n  imageTag: "abc1234"\n'


# --- refusals leave the file exactly as it was --------------------------------------------------


def refused(path: Path, argv_tail: list[str], capsys: pytest.CaptureFixture[str], expected_code: int = 1) -> str:
    """Run set-tag on ``path``, expect a refusal, check the file is untouched; return stderr."""
    age(path)
    before = fingerprint(path)

    code = main(["set-tag", str(path), *argv_tail])

    out, err = capsys.readouterr()
    assert (code, out) == (expected_code, "")
    assert err.startswith("tagrelay: ")
    assert err.endswith(" Nothing was changed.\n")
    assert ".. Nothing" not in err
    assert fingerprint(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    return err


@pytest.mark.parametrize("tag", ["has space", "a:b", '"quoted"', ".dot-first", "x" * 129])
def test_an_invalid_tag_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], tag: str) -> None:
    values = write_and_age(tmp_path / "values.yaml", b"global:\n  imageTag: old\n")
    err = refused(values, ["--tag", tag], capsys, expected_code=2)
    assert "not a valid image tag" in err


def test_a_malformed_key_path_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = write_and_age(tmp_path / "values.yaml", b"global:\n  imageTag: old\n")
    err = refused(values, ["--key", "global..imageTag", "--tag", "abc1234"], capsys, expected_code=2)
    assert "not a key path" in err


def test_the_3dd1a81_duplicate_web_key_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = tmp_path / "values.yaml"
    shutil.copyfile(CORPUS_DIR / "refused" / "seed-3dd1a81-staging-duplicate-web-key.yaml", values)
    err = refused(values, ["--tag", "staging-0d1e2f3"], capsys)
    assert f"{values}: duplicate key: 'web' at line 113 (first at line 8)" in err


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"global:\n  registry: r\n", "has no key 'imageTag'"),
        (b"global:\n  - imageTag: old\n", "which is a list, not a mapping"),
        (b"global:\n  imageTag: [old\n", "not valid YAML at line"),
        (b"global:\n  imageTag: old\n---\nglobal:\n  imageTag: old\n", "2 YAML documents"),
        (b"global:\n  imageTag: |\n    old\n", "block scalar"),
    ],
)
def test_a_file_that_cannot_be_edited_safely_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, reason: str
) -> None:
    values = write_and_age(tmp_path / "values.yaml", content)
    assert reason in refused(values, ["--tag", "abc1234"], capsys)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = write_and_age(tmp_path / "values.yaml", "# Configuración\nglobal:\n  imageTag: old\n".encode("latin-1"))
    err = refused(values, ["--tag", "abc1234"], capsys)
    assert "not UTF-8 (byte 0xf3 at offset 13)" in err


def test_a_missing_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["set-tag", str(tmp_path / "absent.yaml"), "--tag", "abc1234"])
    assert code == 1
    assert "absent.yaml: cannot read the file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_file_and_no_temporary_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    values = write_and_age(tmp_path / "values.yaml", b"global:\n  imageTag: old\n")
    before = fingerprint(values)

    def failing_replace(source: object, destination: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    # A failure at the last step (the rename) is the one that could leave debris behind.
    monkeypatch.setattr(os, "replace", failing_replace)
    code = main(["set-tag", str(values), "--tag", "abc1234"])

    assert code == 1
    assert "cannot write the file (Invalid cross-device link)" in capsys.readouterr().err
    assert fingerprint(values) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["values.yaml"]


def test_help_explains_and_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["set-tag", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "changing nothing else" in out
    assert "duplicate key" in out
    assert "example:" in out
    assert "tagrelay set-tag environments/prod/values.yaml --tag prod-cf3124b" in out


# --- through the installed console script ------------------------------------------------------


def test_console_script_sets_the_tag(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    shutil.copyfile(CORPUS_DIR / "seed-84c71ec-prod-inline-trailing-comment.yaml", values)
    before = values.read_bytes()

    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "set-tag", "values.yaml", "--tag", "prod-cf3124b"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == 'values.yaml: global.imageTag "62b2d1c" -> "prod-cf3124b"\n'
    assert values.read_bytes() == before.replace(
        b'imageTag: "62b2d1c" # Will be set', b'imageTag: "prod-cf3124b" # Will be set'
    )


def test_console_script_refusal_exits_non_zero(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    shutil.copyfile(CORPUS_DIR / "refused" / "seed-3dd1a81-staging-duplicate-web-key.yaml", values)
    before = values.read_bytes()

    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "set-tag", "values.yaml", "--tag", "staging-0d1e2f3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert "duplicate key: 'web' at line 113" in result.stderr
    assert values.read_bytes() == before


# --- kustomize and digest keys (docs/formats.md) ------------------------------------------------

FORMATS_DIR = Path(__file__).resolve().parent.parent / "testdata" / "formats"
WEB_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mosaic-life/web"
DIGEST = "sha256:" + "3f" * 32


def corpus_copy(tmp_path: Path, case: str) -> Path:
    target = tmp_path / "kustomization.yaml"
    shutil.copyfile(FORMATS_DIR / case / "input.yaml", target)
    age(target)
    return target


@pytest.mark.parametrize(
    ("case", "extra"),
    [
        ("kustomize-block-with-comments", []),
        ("kustomize-crlf-missing-fields-no-final-newline", ["--digest", DIGEST]),
        ("kustomize-missing-digest", ["--digest", DIGEST]),
        ("kustomize-anchors", []),
    ],
)
def test_kustomize_entry_is_edited_to_the_exact_expected_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, extra: list[str]
) -> None:
    target = corpus_copy(tmp_path, case)

    code = main(
        ["set-tag", str(target), "--format", "kustomize", "--image", WEB_IMAGE, "--tag", "prod-cf3124b", *extra]
    )

    assert code == 0, capsys.readouterr().err
    assert target.read_bytes() == (FORMATS_DIR / case / "expected.yaml").read_bytes()
    assert f'{WEB_IMAGE} newTag "prod-545ef16" -> "prod-cf3124b"' in capsys.readouterr().out or extra


def test_helm_digest_key_is_written_beside_the_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = tmp_path / "values.yaml"
    write_and_age(values, b'web:\n  image:\n    tag: prod-545ef16 # CI\n    digest: ""\n')

    code = main(
        [
            "set-tag",
            str(values),
            "--key",
            "web.image.tag",
            "--tag",
            "prod-cf3124b",
            "--digest-key",
            "web.image.digest",
            "--digest",
            DIGEST,
        ]
    )

    assert code == 0
    assert values.read_bytes() == f'web:\n  image:\n    tag: "prod-cf3124b" # CI\n    digest: "{DIGEST}"\n'.encode()
    assert capsys.readouterr().out == (
        f'{values}: web.image.tag "prod-545ef16" -> "prod-cf3124b", web.image.digest "" -> "{DIGEST}"\n'
    )


@pytest.mark.parametrize(
    ("case", "args", "exit_code", "says"),
    [
        ("kustomize-name-missing", ["--format", "kustomize", "--image", WEB_IMAGE], 1, "no entry with name"),
        ("kustomize-duplicate-name", ["--format", "kustomize", "--image", WEB_IMAGE], 1, "more than once"),
        ("kustomize-duplicate-key", ["--format", "kustomize", "--image", WEB_IMAGE], 1, "duplicate key"),
        ("kustomize-block-with-comments", ["--format", "kustomize"], 2, "needs --image NAME"),
        ("kustomize-block-with-comments", ["--format", "kustomize", "--image", "x", "--key", "a.b"], 2, "--key"),
        ("kustomize-block-with-comments", ["--image", WEB_IMAGE], 2, "--image is for --format kustomize"),
        ("kustomize-block-with-comments", ["--digest", DIGEST], 2, "go together"),
        ("kustomize-block-with-comments", ["--digest-key", "a.d"], 2, "go together"),
        (
            "kustomize-block-with-comments",
            ["--format", "kustomize", "--image", WEB_IMAGE, "--digest", "sha256:abc"],
            2,
            "not a digest",
        ),
        (
            "helm-per-image-digest-key-missing",
            ["--key", "web.image.tag", "--digest-key", "web.image.digest", "--digest", DIGEST],
            1,
            "not found",
        ),
    ],
)
def test_every_format_refusal_exits_non_zero_and_leaves_the_file_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, args: list[str], exit_code: int, says: str
) -> None:
    target = corpus_copy(tmp_path, case)
    before = fingerprint(target)

    code = main(["set-tag", str(target), "--tag", "prod-cf3124b", *args])

    out, err = capsys.readouterr()
    assert code == exit_code
    assert says in err and out == ""
    assert fingerprint(target) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kustomization.yaml"]

"""The GitOps format seam: how a file says what an environment runs, and how tagrelay plans its edit.

Every reader and writer of the GitOps file (the promoter, the environment healer, operator requests,
``tagrelay status`` and ``set-tag``) goes through a ``GitOpsFormat``; none knows a key path or a
kustomization. Two formats exist, both byte-exact (only the changed scalars change; new values are
always double-quoted):

- ``HelmValues``: a Helm values file; one key for the app's tag (``global.imageTag``), or one key per
  image (``web.image.tag``), and optionally a digest key per image (digest pinning).
- ``Kustomize``: a kustomization's ``images:`` entries (``newTag``, and ``digest`` when pinning).

A format is pure: text in, text out; ``ValuesFileError`` says why a file cannot be edited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from tagrelay.domain.kustomize_patch import ImageChange, read_images, set_images
from tagrelay.domain.values_patch import plan_values, read_values
from tagrelay.domain.yaml_splice import InvalidEditRequest


@dataclass(frozen=True)
class Deployed:
    """What the file says each image of the app runs (in the app's image order)."""

    tags: dict[str, str | None]  # image -> tag (None when the value is empty)
    digests: dict[str, str | None] = field(default_factory=dict)  # image -> digest, where digests are pinned

    @property
    def tag(self) -> str | None:
        """The environment's tag: the first image's (all images carry the same one unless edited by hand)."""
        return next(iter(self.tags.values()), None)

    @property
    def distinct_tags(self) -> list[str]:
        """Every tag some image runs, first image's first: what the no-downgrade guard must compare with."""
        return list(dict.fromkeys(tag for tag in self.tags.values() if tag))

    @property
    def mixed(self) -> bool:
        return len(set(self.tags.values())) > 1


@dataclass(frozen=True)
class GitOpsEdit:
    text: str  # the new file content (the input itself when nothing changes)
    previous: Deployed
    fields: tuple[str, ...]  # what was written, e.g. ("web.image.tag", "web.image.digest"); () when nothing

    @property
    def changed(self) -> bool:
        return bool(self.fields)


class GitOpsFormat(Protocol):
    """Reads the deployed tags of a GitOps file and plans the edit that deploys a release."""

    @property
    def pins_digests(self) -> bool:
        """Whether the edit writes digests (then ``plan`` needs one for each pinned image)."""
        ...

    def describe(self) -> str:
        """What the edit sets, for messages: ``global.imageTag``, ``kustomize images newTag``, ..."""
        ...

    def read(self, text: str) -> Deployed:
        """What the file deploys. Raises ValuesFileError for a file ``plan`` would refuse."""
        ...

    def plan(self, text: str, tag: str, digests: Mapping[str, str]) -> GitOpsEdit:
        """The file with ``tag`` (and each pinned image's digest) written, every other byte unchanged."""
        ...


@dataclass(frozen=True)
class HelmValues:
    """A Helm values file: ``tag_keys`` maps each image to the key path of its tag (several images may
    share one key: the app's single ``global.imageTag``); ``digest_keys`` pins the digests it names."""

    tag_keys: Mapping[str, str]
    digest_keys: Mapping[str, str] = field(default_factory=dict)

    @property
    def pins_digests(self) -> bool:
        return bool(self.digest_keys)

    def describe(self) -> str:
        keys = list(dict.fromkeys([*self.tag_keys.values(), *self.digest_keys.values()]))
        return ", ".join(keys)

    def read(self, text: str) -> Deployed:
        paths = list(dict.fromkeys([*self.tag_keys.values(), *self.digest_keys.values()]))
        values = read_values(text, paths)
        return Deployed(
            tags={image: values[key] for image, key in self.tag_keys.items()},
            digests={image: values[key] for image, key in self.digest_keys.items()},
        )

    def plan(self, text: str, tag: str, digests: Mapping[str, str]) -> GitOpsEdit:
        values: dict[str, str] = {key: tag for key in self.tag_keys.values()}
        for image, key in self.digest_keys.items():
            values[key] = _digest_for(image, digests)
        planned = plan_values(text, values)
        previous = Deployed(
            tags={image: planned.previous[key] for image, key in self.tag_keys.items()},
            digests={image: planned.previous[key] for image, key in self.digest_keys.items()},
        )
        return GitOpsEdit(text=planned.text, previous=previous, fields=planned.changed)


@dataclass(frozen=True)
class Kustomize:
    """A kustomization: ``names`` maps each image to the ``name`` of its ``images:`` entry."""

    names: Mapping[str, str]
    pin: bool = False

    @property
    def pins_digests(self) -> bool:
        return self.pin

    def describe(self) -> str:
        fields = "newTag and digest" if self.pin else "newTag"
        return f"images {fields} of {', '.join(self.names.values())}"

    def read(self, text: str) -> Deployed:
        entries = read_images(text, list(self.names.values()))
        return Deployed(
            tags={image: entries[name].tag for image, name in self.names.items()},
            digests={image: entries[name].digest for image, name in self.names.items()} if self.pin else {},
        )

    def plan(self, text: str, tag: str, digests: Mapping[str, str]) -> GitOpsEdit:
        changes = {
            name: ImageChange(tag, _digest_for(image, digests) if self.pin else None)
            for image, name in self.names.items()
        }
        edit = set_images(text, changes)
        previous = Deployed(
            tags={image: edit.previous[name].tag for image, name in self.names.items()},
            digests={image: edit.previous[name].digest for image, name in self.names.items()} if self.pin else {},
        )
        return GitOpsEdit(text=edit.text, previous=previous, fields=edit.changed)


def _digest_for(image: str, digests: Mapping[str, str]) -> str:
    digest = digests.get(image)
    if digest is None:
        raise InvalidEditRequest(f"no digest for {image}: digest pinning writes the digest of every pinned image")
    return digest

"""Renders a kustomization the way `kubectl kustomize` does, for the subset of kustomize that
`k8s/` uses: `resources` (files, or folders holding a kustomization.yaml), `namespace`,
`images` (newName, newTag) and `patches` given by `path` alone (strategic-merge patches, matched
to a resource by kind and name). Anything else in a kustomization is refused, so a manifest that
starts to need more of kustomize fails here instead of being rendered wrong.

kustomize itself is not installed on this machine (no download beyond the package registries);
on one that has it, `kubectl kustomize k8s/overlays/staging` gives the same objects.

    python -m tests.deploy.render k8s/overlays/staging    # the objects, as one YAML stream
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

KUSTOMIZATION = "kustomization.yaml"
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}

# The lists that a strategic-merge patch merges item by item, by this key (the patchMergeKey of
# the Kubernetes API for these fields); every other list is replaced whole, as the API does.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


class RenderError(Exception):
    """The kustomization uses something this renderer does not do; the message says what."""


def render(folder: Path) -> list[Obj]:
    """The objects that `kubectl kustomize folder` would print."""
    path = folder / KUSTOMIZATION
    spec = yaml.safe_load(path.read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise RenderError(f"{path}: fields this renderer does not do: {sorted(unknown)}")
    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        target = folder / entry
        objects += render(target) if target.is_dir() else load_objects(target)
    for patch_entry in spec.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise RenderError(f"{path}: only `path:` patches are rendered, got {patch_entry}")
        for patch in load_objects(folder / patch_entry["path"]):
            apply_patch(objects, patch, path)
    for image in spec.get("images", []):
        set_image(objects, image)
    if "namespace" in spec:
        for obj in objects:
            obj.setdefault("metadata", {})["namespace"] = spec["namespace"]
    return objects


def load_objects(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def apply_patch(objects: list[Obj], patch: Obj, where: Path) -> None:
    kind, name = patch.get("kind"), patch.get("metadata", {}).get("name")
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    if len(matches) != 1:
        raise RenderError(f"{where}: the patch for {kind}/{name} matches {len(matches)} objects")
    merged = merge(matches[0], patch)
    matches[0].clear()
    matches[0].update(merged)


def merge(base: Any, patch: Any, field: str = "") -> Any:
    """A strategic-merge patch: maps merged key by key (a null deletes the key), the lists of
    MERGE_KEYS merged item by item, any other value replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value, key)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        out_list = copy.deepcopy(base)
        for item in patch:
            found = [i for i, old in enumerate(out_list) if old.get(key) == item.get(key)]
            if found:
                out_list[found[0]] = merge(out_list[found[0]], item, field)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def set_image(objects: list[Obj], image: Obj) -> None:
    """kustomize's `images:`: every container whose image is `name` (any tag) gets the new
    name and tag."""
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.deploy.render FOLDER", file=sys.stderr)
        return 2
    print(yaml.safe_dump_all(render(Path(argv[0])), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

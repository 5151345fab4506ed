"""Shareable model directories: what a person needs to use a reward model elsewhere.

``export_model(model, out)`` writes a directory that ``huggingface_hub.upload_folder`` can
publish unchanged and :meth:`RewardModel.load` reads back (locally or, by repo id, from the
hub)::

    README.md           model card (YAML front matter: license, base_model, tags; then the
                        model, its groups with training counts and held-out accuracy, the
                        calibration summary, the data source, usage)
    config.json         what the model is, for people and hub tooling (model_type "pluralrm")
    model.json          pluralrm's own metadata (RewardModel.save's; paths relative: ./backbone)
    schema.json         the group schema (attributes, vocabularies, groups, training counts)
    annotators.json
    model.safetensors   every parameter of the reward network, by NNX path ("head/w0", ...)
    backbone/           transformer/encoder backbones: the base model's config.json, weights
                        and tokenizer files (the network is built from them, then overwritten
                        by model.safetensors)

Weights are safetensors (no pickle, no Orbax layout to reconstruct). Relative ``./`` paths in
``model.json`` resolve against the model directory (:func:`localize_paths`), and every file
the export listed must be present: a missing tokenizer file is an error that names it.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pluralrm.errors import CheckpointError
from pluralrm.models.artefacts import TOKENIZER_FILES, localize_paths

SAFETENSORS_FILE = "model.safetensors"
BACKBONE_DIR = "backbone"
# Files of a Hugging Face model directory that building the backbone and its tokenizer reads.
BACKBONE_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json",
                  "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
                  "vocab.json", "merges.txt", "tokenizer.model", "sentencepiece.bpe.model", "spiece.model",
                  "chat_template.jinja", "chat_template.json", "modules.json", "sentence_bert_config.json",
                  "config_sentence_transformers.json", "1_Pooling/config.json")


# ---------------------------------------------------------------------- weights as safetensors
def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{name}/"))
        else:
            out[name] = value
    return out


def save_safetensors(state: Mapping[str, Any], file: Path) -> None:
    """Writes a pure-dict parameter tree as safetensors, one tensor per ``a/b/c`` path."""
    from safetensors.flax import save_file

    save_file({k: v for k, v in _flat(state).items()}, str(file), metadata={"format": "pluralrm"})


def load_safetensors(target: Mapping[str, Any], file: Path) -> dict[str, Any]:
    """Reads ``file`` into the structure of ``target`` (a pure-dict tree), checking every
    tensor's presence, shape and dtype first. Raises CheckpointError naming the first mismatch."""
    from safetensors import safe_open

    if not file.is_file():
        raise CheckpointError(f"{file} is missing: the model directory has no weights")
    expected = _flat(target)
    try:
        with safe_open(str(file), framework="flax") as f:
            names = set(f.keys())
            missing = sorted(set(expected) - names)
            extra = sorted(names - set(expected))
            if missing or extra:
                raise CheckpointError(f"{file}: tensors do not match this model (missing {missing[:5]}, "
                                      f"unexpected {extra[:5]})")
            loaded = {}
            for name, want in expected.items():
                tensor = f.get_tensor(name)
                if tuple(tensor.shape) != tuple(np.shape(want)) or tensor.dtype != want.dtype:
                    raise CheckpointError(f"{file}: tensor {name!r} is {tensor.dtype}{list(tensor.shape)}, this "
                                          f"model needs {want.dtype}{list(np.shape(want))}")
                loaded[name] = tensor
    except CheckpointError:
        raise
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{file}: not a readable safetensors file ({e})") from None

    def rebuild(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        return {k: rebuild(v, f"{prefix}{k}/") if isinstance(v, Mapping) else loaded[f"{prefix}{k}"]
                for k, v in tree.items()}

    return rebuild(target)


# ---------------------------------------------------------------------- export
def export_model(model: Any, out: str | Path, *, run_dir: str | Path | None = None, license: str = "other",
                 data_source: str | None = None, overwrite: bool = False) -> Path:
    """Writes the shareable directory of ``model`` to ``out`` (see the module docstring).

    Args:
      model: a RewardModel. run_dir: its training run, for the card's held-out accuracy per
        group and data source (``summary.json``, ``config.yaml``). license: the card's licence
        (an SPDX id such as ``apache-2.0``, or ``other``). data_source: overrides the run's.
      overwrite: replace a non-empty ``out``.
    Returns:
      ``out`` as an absolute path.
    """
    from pluralrm.atomic import atomic_entries
    from pluralrm.models.model_files import write_model_metadata
    from pluralrm.models.net import saved_state

    out = Path(out).absolute()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise CheckpointError(f"{out} exists and is not empty: choose another --out or pass --overwrite")
    backbone = model.config.backbone
    files: list[str] = []
    with atomic_entries(out) as stage:
        write_model_metadata(stage, model.config, model.schema, model.featurizer, model.annotators,
                             model.temperatures)
        save_safetensors(saved_state(model.net).to_pure_dict(), stage / SAFETENSORS_FILE)
        meta = json.loads((stage / "model.json").read_text())
        if backbone.type in ("transformer", "frozen") and backbone.path:
            files = _copy_backbone(backbone.path, stage / BACKBONE_DIR)
            for section in (meta["config"]["backbone"], meta["featurizer"]):
                if section.get("path") == backbone.path:
                    section["path"] = f"./{BACKBONE_DIR}"
            meta["export"] = {"files": files}
        (stage / "model.json").write_text(json.dumps(meta, indent=1))
        run = _run_facts(Path(run_dir)) if run_dir is not None else {}
        source = data_source or run.get("data_source") or "not recorded"
        (stage / "config.json").write_text(json.dumps(hub_config(model, files), indent=1))
        (stage / "README.md").write_text(model_card(model, run.get("eval"), source, license, files))
    if (out / "weights").is_dir():  # an Orbax save overwritten by the export: load would prefer it
        shutil.rmtree(out / "weights")
    return out


def _copy_backbone(path: str, target: Path) -> list[str]:
    from pluralrm.models.transformer.presets import resolve_pretrained

    if path.endswith(".npz"):
        raise CheckpointError(f"backbone.path {path} is an embedding table: such a model scores only the texts in "
                              "the table and cannot be exported for use elsewhere; train on an encoder directory")
    source = resolve_pretrained(path).directory
    copied = []
    for name in BACKBONE_FILES:
        if (source / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, target / name)
            copied.append(f"{BACKBONE_DIR}/{name}")
    for shard in sorted(source.glob("model-*-of-*.safetensors")):
        shutil.copyfile(shard, target / shard.name)
        copied.append(f"{BACKBONE_DIR}/{shard.name}")
    if not any(Path(c).name in TOKENIZER_FILES for c in copied):
        raise CheckpointError(f"{source}: no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...) to export")
    return copied


def _run_facts(run_dir: Path) -> dict[str, Any]:
    import yaml

    facts: dict[str, Any] = {}
    summary = run_dir / "summary.json"
    if summary.is_file():
        final = (json.loads(summary.read_text()) or {}).get("final_eval") or {}
        facts["eval"] = final.get("groups")
    config = run_dir / "config.yaml"
    if config.is_file():
        data = (yaml.safe_load(config.read_text()) or {}).get("data") or {}
        facts["data_source"] = data.get("path") or "the bundled synthetic society (pluralrm.simulate, preset default)"
    return facts


def hub_config(model: Any, files: list[str]) -> dict[str, Any]:
    """``config.json``: a description for people and hub tooling (pluralrm reads model.json)."""
    from pluralrm import __version__

    b, h = model.config.backbone, model.config.head
    return {
        "model_type": "pluralrm",
        "architectures": ["PluralRewardModel"],
        "pluralrm_version": __version__,
        "library_name": "pluralrm",
        "backbone": {"type": b.type, "base_model": _base_model(model) or None},
        "head": {"type": h.type},
        "group_attributes": list(model.schema.attributes),
        "groups": model.group_labels,
        "num_groups": model.schema.num_groups,
        "weights": SAFETENSORS_FILE,
        "backbone_files": files,
    }


def _base_model(model: Any) -> str:
    path = model.config.backbone.path
    return Path(path).name if path and os.sep in path else path


def model_card(model: Any, eval_groups: list[dict] | None, data_source: str, license: str,
               files: list[str]) -> str:
    """The ``README.md`` model card (see the module docstring)."""
    b, h = model.config.backbone, model.config.head
    base = _base_model(model)
    accuracy = {g["group"]: g for g in eval_groups or []}
    front = ["---", f"license: {license}", "library_name: pluralrm",
             "tags:", "- reward-model", "- pluralistic-alignment", "- rlhf"]
    if base:
        front.append(f"base_model: {base}")
    front.append("---")
    lines = [*front, "", "# pluralrm reward model", "",
             "A reward model conditioned on who is judging: it scores a response to a prompt for each "
             "group of annotators in its schema (and a shared, pooled reward).", "",
             "## Model", "",
             f"- Backbone: `{b.type}`" + (f" (base model `{base}`)" if base else " (no pretrained base model)"),
             f"- Head: `{h.type}`",
             f"- Group attributes: {', '.join(f'`{a}`' for a in model.schema.attributes) or 'none'}",
             f"- Weights: `{SAFETENSORS_FILE}` (safetensors)" + (f"; base model and tokenizer files in "
                                                                 f"`{BACKBONE_DIR}/`" if files else ""),
             "", "## Groups", "",
             "| group | training comparisons | held-out accuracy | held-out comparisons |",
             "|---|---:|---:|---:|"]
    for label, count in zip(model.group_labels, model.schema.group_counts):
        ev = accuracy.get(label)
        acc = f"{ev['accuracy']:.3f}" if ev and ev.get("accuracy") is not None else "n/a"
        lines.append(f"| {label} | {int(count)} | {acc} | {ev['count'] if ev else 'n/a'} |")
    if "all" in accuracy:
        ev = accuracy["all"]
        lines.append(f"| all | {int(sum(model.schema.group_counts))} | {ev['accuracy']:.3f} | {ev['count']} |")
    if not eval_groups:
        lines += ["", "Held-out accuracy: not recorded (export from a training run with evaluation data)."]
    lines += ["", "## Calibration", ""]
    if model.temperatures:
        lines += ["Per-group temperatures fitted by `pluralrm calibrate --fit-temperatures` (P(a ≻ b) = "
                  "σ((r_a − r_b) / T)); applied automatically by `predict*`:", "",
                  "| group | temperature |", "|---|---:|"]
        lines += [f"| {g} | {t:.3f} |" for g, t in sorted(model.temperatures.items())]
    else:
        lines.append("Not calibrated: no temperatures fitted (run `pluralrm calibrate --fit-temperatures`).")
    lines += ["", "## Data", "", f"Trained on: {data_source}.", "",
              "## Use", "", "```python", "import pluralrm as prm",
              'rm = prm.RewardModel.load("THIS_DIRECTORY_OR_HUB_ID")',
              f'rm.score(["prompt"], ["response"], groups="{model.group_labels[0] if model.group_labels else ""}")',
              "```", "",
              "As a reward for RLHF: `pluralrm.integrations.trl.reward_function(...)` (TRL's GRPOTrainer) or "
              "`pluralrm serve --checkpoint THIS_DIRECTORY` (OpenRLHF's `--remote_rm_url .../get_reward`).", "",
              "## Licence", "", f"{license} (the licence of these weights; check the base model's and the "
                                f"training data's terms too).", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------- the hub
def looks_like_hub_id(text: str) -> bool:
    """``owner/name`` with no path-like parts (a local path that does not exist may look alike)."""
    parts = text.split("/")
    return (len(parts) == 2 and all(p and not p.startswith(".") and " " not in p for p in parts)
            and not text.startswith(("/", "~")))


def fetch_from_hub(repo_id: str) -> Path:
    """Downloads (or finds in the local cache) the model directory of ``repo_id``.

    Raises:
      CheckpointError: naming the id when the hub cannot be reached (offline, no such repo)
      and the cache does not hold it.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(f"{repo_id}: no such local directory; loading it from the Hugging Face hub needs "
                              "huggingface_hub (pip install huggingface_hub)") from None
    try:
        return Path(snapshot_download(repo_id))
    except Exception as e:  # offline mode, network errors, missing repos: one message naming the id
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        why = "HF_HUB_OFFLINE is set and it is not in the local cache" if offline else f"{type(e).__name__}: {e}"
        raise CheckpointError(f"{repo_id}: no such local directory, and the Hugging Face hub model {repo_id!r} "
                              f"could not be fetched ({why}). Pass a local model directory, or download it where "
                              f"the hub is reachable (hf download {repo_id} --local-dir DIR)") from None


__all__ = ["SAFETENSORS_FILE", "export_model", "fetch_from_hub", "hub_config", "load_safetensors",
           "localize_paths", "looks_like_hub_id", "model_card", "save_safetensors"]
